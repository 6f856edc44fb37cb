//! Review dates: a denial is reviewed within three years (`review_due`), an
//! enforcement notice lapses at its `expires` date. The node reminds the
//! operator of this agency's own notices whose date is near or past, once
//! per notice, date and stage, as an alert (`tessera alerts`), a log line
//! naming the serial and a metric. It never changes a status by itself:
//! the agency renews or revokes.

use std::sync::Arc;
use std::time::Duration;

use tessera_proto::v1::{Alert, Match, Notice, NoticeStatus, notice::Body};
use time::Date;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::dates;
use super::issue::status_of;
use super::store::{NoticeStore, NoticeStoreError};
use crate::alerts::{AlertKind, AlertSink};
use crate::identity::AgencyId;

/// Where a date stands as of today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Within the warning window.
    DueSoon,
    /// Passed.
    Overdue,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Self::DueSoon => "review-due-soon",
            Self::Overdue => "review-overdue",
        }
    }
}

/// The stage of `due` on `today` with a warning window of `warn_days`.
pub fn stage(due: Date, today: Date, warn_days: u32) -> Option<Stage> {
    if due < today {
        Some(Stage::Overdue)
    } else if (due - today).whole_days() <= i64::from(warn_days) {
        Some(Stage::DueSoon)
    } else {
        None
    }
}

/// The date that is tracked for a notice still in force, if any.
pub fn tracked_date(notice: &Notice) -> Option<String> {
    if matches!(
        status_of(notice),
        Some(NoticeStatus::Revoked | NoticeStatus::Expired) | None
    ) {
        return None;
    }
    match notice.body.as_ref()? {
        Body::Denial(d) => Some(d.review_due.clone()),
        Body::Enforcement(e) => Some(e.expires.clone()),
        Body::Grant(_) | Body::Charter(_) | Body::Trusted(_) => None,
    }
    .filter(|d| !d.is_empty())
}

/// The review-date check over this agency's own notices.
#[derive(Debug)]
pub struct Reviewer {
    pub agency: AgencyId,
    pub notices: Arc<NoticeStore>,
    pub alerts: AlertSink,
    /// Days before a date at which the operator is reminded.
    pub warn_days: u32,
    pub wake: Arc<Notify>,
}

impl Reviewer {
    /// Raises the reminders due as of `today`; returns how many were new.
    pub fn remind(&self, today: Date) -> Result<u32, NoticeStoreError> {
        let mut raised = 0;
        for stored in self.notices.list_latest(Some(self.agency.as_str()))? {
            let Some(notice) = stored
                .envelope
                .and_then(|e| <Notice as prost::Message>::decode(e.notice.as_slice()).ok())
            else {
                continue;
            };
            let Some(due) = tracked_date(&notice) else {
                continue;
            };
            let Some(stage) = dates::parse(&due).and_then(|d| stage(d, today, self.warn_days))
            else {
                continue;
            };
            let alert = Alert {
                kind: AlertKind::Review.as_str().into(),
                reference: format!("{}/{}", notice.origin, notice.serial),
                r#match: Some(Match {
                    origin: notice.origin.clone(),
                    serial: notice.serial.clone(),
                    action: stage.name().to_owned(),
                    decision_date: due.clone(),
                    ..Match::default()
                }),
                ..Alert::default()
            };
            let key = format!("{}\0{due}\0{}", notice.serial, stage.name());
            if let Some(a) = self.alerts.reminder(alert, &key)? {
                raised += 1;
                tracing::info!(alert = a.seq, serial = %notice.serial, due = %due, stage = stage.name(), "review reminder");
            }
        }
        Ok(raised)
    }

    /// Checks review dates at start, every hour, and shortly after our own
    /// notices change (a burst of changes, such as an import, is one check).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.remind(dates::today())).await {
                Ok(Err(error)) => tracing::error!(%error, "review reminders failed"),
                Err(error) => tracing::error!(%error, "review reminders stopped"),
                Ok(Ok(_)) => {}
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(3_600)) => {}
                () = self.wake.notified() => {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        dates::parse(s).unwrap()
    }

    #[test]
    fn stages_by_date() {
        let today = d("2026-11-26");
        assert_eq!(stage(d("2026-11-25"), today, 90), Some(Stage::Overdue));
        assert_eq!(stage(d("2026-11-26"), today, 90), Some(Stage::DueSoon));
        assert_eq!(stage(d("2027-02-24"), today, 90), Some(Stage::DueSoon));
        assert_eq!(stage(d("2027-02-25"), today, 90), None);
        assert_eq!(stage(d("2026-11-27"), today, 0), None);
    }

    #[test]
    fn only_notices_in_force_are_tracked() {
        let mut denial = tessera_proto::v1::DenialNotice {
            review_due: "2029-01-15".into(),
            status: NoticeStatus::InForce as i32,
            ..Default::default()
        };
        let notice = |body| Notice {
            body: Some(body),
            ..Default::default()
        };
        assert_eq!(
            tracked_date(&notice(Body::Denial(denial.clone()))).as_deref(),
            Some("2029-01-15")
        );
        denial.status = NoticeStatus::Revoked as i32;
        assert_eq!(tracked_date(&notice(Body::Denial(denial))), None);
        let enforcement = tessera_proto::v1::EnforcementNotice {
            expires: "2027-06-30".into(),
            status: NoticeStatus::Renewed as i32,
            ..Default::default()
        };
        assert_eq!(
            tracked_date(&notice(Body::Enforcement(enforcement))).as_deref(),
            Some("2027-06-30")
        );
        assert_eq!(
            tracked_date(&notice(Body::Grant(
                tessera_proto::v1::GrantNotice::default()
            ))),
            None
        );
    }

    #[test]
    fn each_stage_of_a_review_date_reminds_once() {
        use crate::test_support::{agency, audit_on, org, signing_key, temp_store};
        let (_dir, store) = temp_store();
        let notices = Arc::new(NoticeStore::open(&store, agency("DE-BAFA")).unwrap());
        let mut n = crate::test_support::denial("DE-BAFA", "S-1", "all", &[org("X Ltd", "AE")]);
        if let Some(Body::Denial(den)) = n.body.as_mut() {
            den.review_due = "2027-01-31".into();
        }
        notices.writer().append_own(n, &[], &signing_key()).unwrap();
        let alerts = Arc::new(crate::alerts::AlertStore::open(&store).unwrap());
        let reviewer = Reviewer {
            agency: agency("DE-BAFA"),
            notices,
            alerts: AlertSink::new(alerts.clone(), audit_on(&store)),
            warn_days: 90,
            wake: Arc::default(),
        };
        assert_eq!(reviewer.remind(d("2026-09-01")).unwrap(), 0);
        assert_eq!(reviewer.remind(d("2026-11-10")).unwrap(), 1);
        assert_eq!(reviewer.remind(d("2026-12-10")).unwrap(), 0);
        assert_eq!(reviewer.remind(d("2027-02-01")).unwrap(), 1);
        let stages: Vec<(String, String)> = alerts
            .after(0)
            .unwrap()
            .into_iter()
            .map(|a| (a.kind, a.r#match.unwrap_or_default().action))
            .collect();
        assert_eq!(
            stages,
            [
                ("review".to_owned(), "review-due-soon".to_owned()),
                ("review".to_owned(), "review-overdue".to_owned())
            ]
        );
    }
}
