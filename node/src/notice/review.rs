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
use tokio_util::sync::CancellationToken;

use super::dates;
use super::issue::status_of;
use super::store::NoticeStoreError;
use crate::context::Context;

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
        Body::Grant(_) => None,
    }
    .filter(|d| !d.is_empty())
}

/// Raises the reminders due as of `today`; returns how many were new.
pub fn remind(ctx: &Context, today: Date) -> Result<u32, NoticeStoreError> {
    let warn_days = ctx.config.notices.review_warning_days;
    let mut raised = 0;
    for stored in ctx.notices.list_latest(Some(ctx.agency.as_str()))? {
        let Some(notice) = stored
            .envelope
            .and_then(|e| <Notice as prost::Message>::decode(e.notice.as_slice()).ok())
        else {
            continue;
        };
        let Some(due) = tracked_date(&notice) else {
            continue;
        };
        let Some(stage) = dates::parse(&due).and_then(|d| stage(d, today, warn_days)) else {
            continue;
        };
        let alert = Alert {
            kind: "review".into(),
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
        match ctx.watch.alert_once(alert, &key) {
            Ok(Some(a)) => {
                raised += 1;
                crate::telemetry::alert("review");
                tracing::info!(alert = a.seq, serial = %notice.serial, due = %due, stage = stage.name(), "review reminder");
            }
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "cannot store a review reminder"),
        }
    }
    Ok(raised)
}

/// Checks review dates at start, every hour, and shortly after our own
/// notices change (a burst of changes, such as an import, is one check).
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    loop {
        let c = ctx.clone();
        match tokio::task::spawn_blocking(move || remind(&c, dates::today())).await {
            Ok(Err(error)) => tracing::error!(%error, "review reminders failed"),
            Err(error) => tracing::error!(%error, "review reminders stopped"),
            Ok(Ok(_)) => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(3_600)) => {}
            () = ctx.review_wake.notified() => {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
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
}
