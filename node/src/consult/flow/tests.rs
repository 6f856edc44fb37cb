//! Tests of consultations as two nodes run them.

use super::*;
use tessera_proto::v1::ConsultAnswer;

use super::super::deliver::Delivered;
use crate::alerts::AlertSink;

fn c(due: &str) -> Consultation {
    Consultation {
        id: "FR-SBDU-C1".into(),
        due: due.into(),
        ..Consultation::default()
    }
}

#[test]
fn state_follows_the_stated_due_day_across_weekends_and_holidays() {
    let d = |s| dates::parse(s).unwrap();
    let plain = WorkCalendar::new([]);
    // Due Friday 2026-12-04.
    let due = c("2026-12-04");
    assert_eq!(state(&due, d("2026-11-30"), &plain), ConsultState::Open);
    assert_eq!(
        state(&due, d("2026-12-02"), &plain),
        ConsultState::DueSoon {
            working_days_left: 2
        }
    );
    assert_eq!(
        state(&due, d("2026-12-04"), &plain),
        ConsultState::DueSoon {
            working_days_left: 0
        }
    );
    // The weekend after a Friday deadline is overdue by no working day yet; Monday by one.
    assert_eq!(
        state(&due, d("2026-12-06"), &plain),
        ConsultState::Overdue {
            working_days_late: 0
        }
    );
    assert_eq!(
        state(&due, d("2026-12-07"), &plain),
        ConsultState::Overdue {
            working_days_late: 1
        }
    );
    // A holiday on that Monday does not count.
    let holiday = WorkCalendar::new([d("2026-12-07")]);
    assert_eq!(
        state(&due, d("2026-12-07"), &holiday),
        ConsultState::Overdue {
            working_days_late: 0
        }
    );
    // Answered or closed wins over the calendar; an overdue one is never closed by itself.
    let mut answered = c("2026-12-04");
    answered.answer = Some(ConsultAnswer {
        answer: "objection".into(),
        text: "x".into(),
    });
    assert_eq!(
        state(&answered, d("2027-06-01"), &plain),
        ConsultState::Answered
    );
    assert!(matches!(
        state(&due, d("2027-06-01"), &plain),
        ConsultState::Overdue { .. }
    ));
}

/// One node of a two-node federation: its consultations, their
/// delivery to the other node, and what it stores and alerts.
struct Side {
    _dir: tempfile::TempDir,
    agency: AgencyId,
    consultations: Arc<Consultations>,
    consults: Arc<ConsultStore>,
    notices: Arc<NoticeStore>,
    alerts: Arc<crate::alerts::AlertStore>,
    audit: AuditSink,
    peers: crate::exchange::fake::FakePeers,
    delivery: super::super::deliver::StepDelivery,
}

fn side(
    me: &str,
    other: &str,
    key: &Arc<SigningKey>,
    other_key: &SigningKey,
    shared_holidays: Option<Arc<dyn SharedHolidays>>,
) -> Side {
    use crate::test_support::{agency, audit_on, temp_store};
    let (dir, store) = temp_store();
    let (me, other) = (agency(me), agency(other));
    let notices = Arc::new(NoticeStore::open(&store, me.clone()).unwrap());
    let consults = Arc::new(ConsultStore::open(&store).unwrap());
    let alerts = Arc::new(crate::alerts::AlertStore::open(&store).unwrap());
    let audit = audit_on(&store);
    let wakers = Wakers::new(std::slice::from_ref(&other));
    let peers = crate::exchange::fake::FakePeers::new();
    peers.add(&other, crate::exchange::fake::FakePeer::default());
    let issuer = Arc::new(Issuer {
        agency: me.clone(),
        notices: notices.clone(),
        signing: key.clone(),
        policy: crate::policy::Policy::new(
            me.clone(),
            [other.clone()],
            std::collections::BTreeMap::default(),
        ),
        default_to: "local".into(),
        store: store.clone(),
        wakers: wakers.clone(),
    });
    let consultations = Arc::new(Consultations {
        agency: me.clone(),
        consults: consults.clone(),
        signing: key.clone(),
        pinned: PinnedKeys::new([(other.clone(), *other_key.public())]),
        notices: notices.clone(),
        issuer,
        grant_to: "all".into(),
        alerts: AlertSink::new(alerts.clone(), audit.clone()),
        audit: audit.clone(),
        calendar: WorkCalendar::default(),
        shared_holidays,
        store,
        wakers: wakers.clone(),
    });
    let delivery = super::super::deliver::StepDelivery {
        peer: other.clone(),
        consultations: consultations.clone(),
        client: Arc::new(peers.clone()),
        wake: wakers.peer(&other),
        retry: crate::backoff::RetryPolicy::new(
            Duration::from_millis(250),
            Duration::from_secs(30),
        ),
    };
    Side {
        _dir: dir,
        agency: me,
        consultations,
        consults,
        notices,
        alerts,
        audit,
        peers,
        delivery,
    }
}

/// Each side's deliveries reach the other's `receive`, as the
/// Federation surface would call it.
fn connect(a: &Side, b: &Side) {
    for (from, to) in [(a, b), (b, a)] {
        let receiver = to.consultations.clone();
        let sender = from.agency.clone();
        from.peers.update(&to.agency, |p| {
            p.on_consult = Some(Arc::new(move |step: SignedMessage| {
                receiver
                    .receive(&sender, &step)
                    .map(|duplicate| tessera_proto::v1::ConsultAck { duplicate })
                    .map_err(|e| tonic::Status::from(e).into())
            }));
        });
    }
}

/// FR-SBDU (about to grant) and DE-BAFA (whose denial S-1 it matched).
fn federation() -> (Side, Side) {
    federation_with(None)
}

fn federation_with(shared: Option<Arc<dyn SharedHolidays>>) -> (Side, Side) {
    let (ka, kb) = (
        crate::test_support::signing_key(),
        crate::test_support::signing_key(),
    );
    let a = side("FR-SBDU", "DE-BAFA", &ka, &kb, shared.clone());
    let b = side("DE-BAFA", "FR-SBDU", &kb, &ka, shared);
    let their_denial = crate::test_support::denial("DE-BAFA", "S-1", "all", &[]);
    b.notices
        .writer()
        .append_own(their_denial, std::slice::from_ref(&a.agency), &kb)
        .unwrap();
    connect(&a, &b);
    (a, b)
}

/// FR-SBDU consults DE-BAFA about S-1; the consultation's id.
async fn open(a: &Side) -> String {
    a.consultations
        .open("DE-BAFA", "S-1", "two lathes", 10)
        .await
        .unwrap()
        .consultation
        .unwrap()
        .id
}

fn alert_words(s: &Side) -> Vec<String> {
    s.alerts
        .after(0)
        .unwrap()
        .into_iter()
        .map(|a| a.r#match.unwrap_or_default().action)
        .collect()
}

#[test]
fn a_consultation_runs_its_course_between_two_nodes() {
    crate::test_support::run(async {
        let (a, b) = federation();
        let opened = a
            .consultations
            .open("DE-BAFA", "S-1", "two lathes for a university", 10)
            .await
            .unwrap();
        let id = opened.consultation.unwrap().id;
        assert_eq!(id, "FR-SBDU-C1");
        assert_eq!(opened.undelivered, 1);
        assert_eq!(a.delivery.deliver_pending().await.unwrap(), Delivered::All);
        let theirs = b.consultations.show(&id).unwrap();
        assert_eq!(theirs.consultation.as_ref().unwrap().role, "consulted");
        assert_eq!(alert_words(&b), ["open"]);

        b.consultations
            .respond(&id, "objection", "the end user is listed")
            .await
            .unwrap();
        b.delivery.deliver_pending().await.unwrap();
        let ours = a.consultations.show(&id).unwrap();
        assert_eq!(ours.state, "answered");
        assert_eq!(alert_words(&a), ["answer"]);

        a.consultations.extend(&id, 20).await.unwrap();
        a.delivery.deliver_pending().await.unwrap();
        let theirs = b.consultations.show(&id).unwrap().consultation.unwrap();
        assert!(theirs.extended && theirs.days == 20);

        a.consultations
            .decide(&id, "granted", "the export is for civil research")
            .await
            .unwrap();
        // Granted despite a denial: a notice of ours.
        let grants = a.notices.list_latest(Some("FR-SBDU")).unwrap();
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].recipients, ["DE-BAFA"]);
        a.delivery.deliver_pending().await.unwrap();
        assert_eq!(b.consultations.show(&id).unwrap().state, "closed");
        assert_eq!(alert_words(&b), ["open", "extend", "decision"]);
        // Every step, sent and received, is audited on both sides.
        for s in [&a, &b] {
            let steps = crate::test_support::audited(&s.audit)
                .iter()
                .filter(|x| *x == "consultation_step")
                .count();
            assert_eq!(steps, 4, "{}", s.agency);
        }
        assert!(a.consults.outbox(&b.agency).unwrap().is_empty());
    });
}

#[test]
fn information_asked_for_reaches_the_denying_agency_which_answers_again() {
    crate::test_support::run(async {
        let (a, b) = federation();
        let id = open(&a).await;
        a.delivery.deliver_pending().await.unwrap();
        b.consultations
            .respond(&id, "more-information", "Who operates the workshop?")
            .await
            .unwrap();
        b.delivery.deliver_pending().await.unwrap();
        assert_eq!(a.consultations.show(&id).unwrap().state, "answered");

        let informed = a
            .consultations
            .inform(&id, "The physics department of the university.")
            .await
            .unwrap();
        assert_eq!(informed.state, "open", "waiting for the answer again");
        assert_eq!(informed.undelivered, 1);
        a.delivery.deliver_pending().await.unwrap();
        let theirs = b.consultations.show(&id).unwrap();
        assert_eq!(theirs.state, "open");
        let c = theirs.consultation.unwrap();
        assert_eq!(c.answer, None);
        assert_eq!(c.days, 10, "the deadline does not move");
        assert!(matches!(
            c.steps.last().and_then(|s| s.kind.as_ref()),
            Some(Kind::Inform(i)) if i.text == "The physics department of the university."
        ));
        assert_eq!(alert_words(&b), ["open", "information"]);

        b.consultations
            .respond(&id, "no-objection", "")
            .await
            .unwrap();
        b.delivery.deliver_pending().await.unwrap();
        let ours = a.consultations.show(&id).unwrap().consultation.unwrap();
        assert_eq!(ours.answer.unwrap().answer, "no-objection");
        // Audited as a step on both sides, without its text.
        for s in [&a, &b] {
            let entries = crate::test_support::audited(&s.audit);
            assert_eq!(
                entries.iter().filter(|x| *x == "consultation_step").count(),
                4,
                "{}",
                s.agency
            );
            let log = s.audit.log();
            for seq in 1..=log.len() {
                let entry = format!("{:?}", log.entry(seq).unwrap());
                assert!(!entry.contains("physics"), "{entry}");
            }
        }
    });
}

#[test]
fn steps_wait_while_the_peer_is_down_and_arrive_once() {
    crate::test_support::run(async {
        let (a, b) = federation();
        a.peers.update(&b.agency, |p| p.down = true);
        let id = open(&a).await;
        assert_eq!(
            a.delivery.deliver_pending().await.unwrap(),
            Delivered::Stopped
        );
        assert_eq!(a.consults.outbox(&b.agency).unwrap().len(), 1);
        assert!(b.consultations.show(&id).is_err());
        a.peers.update(&b.agency, |p| p.down = false);
        assert_eq!(a.delivery.deliver_pending().await.unwrap(), Delivered::All);
        assert_eq!(
            a.delivery.deliver_pending().await.unwrap(),
            Delivered::Nothing
        );
        // Delivered twice (an acknowledgement lost): applied once.
        let step = a.peers.peer(&b.agency).steps[0].clone();
        assert!(b.consultations.receive(&a.agency, &step).unwrap());
        assert_eq!(alert_words(&b), ["open"]);
    });
}

#[test]
fn a_slow_peer_holds_up_its_own_delivery_only() {
    crate::test_support::run_paused(async {
        let (a, b) = federation();
        a.peers
            .update(&b.agency, |p| p.delay = Duration::from_secs(8));
        a.consultations
            .open("DE-BAFA", "S-1", "two lathes", 10)
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(a.delivery.deliver_pending().await.unwrap(), Delivered::All);
        assert_eq!(started.elapsed(), Duration::from_secs(8));
    });
}

#[test]
fn a_step_that_does_not_verify_is_refused_as_permission_denied() {
    crate::test_support::run(async {
        let (a, b) = federation();
        a.peers.update(&b.agency, |p| p.down = true);
        a.consultations
            .open("DE-BAFA", "S-1", "two lathes", 10)
            .await
            .unwrap();
        let (_, step) = a.consults.outbox(&b.agency).unwrap().remove(0);
        let mut forged = step.clone();
        forged.body.push(0);
        let mut other_key = step.clone();
        other_key.key_id = "someone else".into();
        for bad in [forged, other_key] {
            let err = b.consultations.receive(&a.agency, &bad).unwrap_err();
            assert!(matches!(err, ConsultError::Unverified(_)), "{err}");
            assert_eq!(
                tonic::Status::from(err).code(),
                tonic::Code::PermissionDenied
            );
        }
        // A step about a denial the receiver never issued.
        let unknown = a.consultations.open("DE-BAFA", "S-404", "x", 10).await;
        assert!(unknown.is_ok(), "the consulting side cannot know");
        let (_, step) = a.consults.outbox(&b.agency).unwrap().pop().unwrap();
        let err = b.consultations.receive(&a.agency, &step).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no denial of ours with that serial was sent to you"
        );
        assert_eq!(
            tonic::Status::from(err).code(),
            tonic::Code::InvalidArgument
        );
    });
}

#[test]
fn a_closed_consultation_refuses_a_step_with_the_same_code_on_both_ports() {
    crate::test_support::run(async {
        let (a, b) = federation();
        let id = open(&a).await;
        a.delivery.deliver_pending().await.unwrap();
        // FR-SBDU withdraws; before that reaches DE-BAFA, DE-BAFA answers.
        a.peers.update(&b.agency, |p| p.down = true);
        a.consultations.decide(&id, "withdrawn", "").await.unwrap();
        b.consultations
            .respond(&id, "no-objection", "")
            .await
            .unwrap();
        let (_, answer) = b.consults.outbox(&a.agency).unwrap().remove(0);
        // The federation port: the peer's step on a closed consultation.
        let federation = a.consultations.receive(&b.agency, &answer).unwrap_err();
        // The operator port: our own step on it.
        let operator = a
            .consultations
            .decide(&id, "refused", "")
            .await
            .unwrap_err();
        for err in [federation, operator] {
            assert!(matches!(err, ConsultError::State(_)), "{err}");
            assert_eq!(
                tonic::Status::from(err).code(),
                tonic::Code::FailedPrecondition
            );
        }
    });
}

#[test]
fn the_operator_is_told_what_is_wrong_with_a_step() {
    crate::test_support::run(async {
        let (a, b) = federation();
        let id = open(&a).await;
        a.delivery.deliver_pending().await.unwrap();
        for (result, code) in [
            (
                b.consultations.respond(&id, "maybe", "").await,
                tonic::Code::InvalidArgument,
            ),
            (
                b.consultations.respond(&id, "objection", " ").await,
                tonic::Code::InvalidArgument,
            ),
            (
                a.consultations.respond(&id, "objection", "no").await,
                tonic::Code::FailedPrecondition,
            ),
            (
                b.consultations.decide(&id, "granted", "").await,
                tonic::Code::FailedPrecondition,
            ),
            (
                a.consultations.extend(&id, 31).await,
                tonic::Code::FailedPrecondition,
            ),
            (
                a.consultations.open("US-BIS", "S-1", "x", 10).await,
                tonic::Code::InvalidArgument,
            ),
            (
                a.consultations.open("DE-BAFA", "S-1", "x", 31).await,
                tonic::Code::InvalidArgument,
            ),
            (
                a.consultations
                    .respond("FR-SBDU-C9", "objection", "x")
                    .await,
                tonic::Code::NotFound,
            ),
            (
                b.consultations.inform(&id, "the consignee").await,
                tonic::Code::FailedPrecondition,
            ),
            (
                a.consultations.inform(&id, " \n").await,
                tonic::Code::InvalidArgument,
            ),
            (
                a.consultations.inform(&id, &"x".repeat(MAX_TEXT + 1)).await,
                tonic::Code::InvalidArgument,
            ),
            (
                a.consultations.inform("FR-SBDU-C9", "x").await,
                tonic::Code::NotFound,
            ),
        ] {
            let err = result.unwrap_err();
            assert_eq!(tonic::Status::from(err).code(), code);
        }
    });
}

#[test]
fn reminders_are_raised_once_per_stage() {
    crate::test_support::run(async {
        let (a, _b) = federation();
        let id = open(&a).await;
        let due =
            dates::parse(&a.consultations.show(&id).unwrap().consultation.unwrap().due).unwrap();
        assert_eq!(a.consultations.remind(due).unwrap(), 1);
        assert_eq!(a.consultations.remind(due).unwrap(), 0);
        let late = a.consultations.calendar().add_working_days(due, 1);
        assert_eq!(a.consultations.remind(late).unwrap(), 1);
        assert_eq!(alert_words(&a), ["due-soon", "overdue"]);
    });
}

/// Holidays agreed between members, as a bloc charter gives them.
#[derive(Debug)]
struct Agreed {
    members: [&'static str; 2],
    days: Vec<Date>,
}

impl SharedHolidays for Agreed {
    fn with_peer(&self, peer: &str) -> Vec<Date> {
        if self.members.contains(&peer) {
            self.days.clone()
        } else {
            Vec::new()
        }
    }
}

#[test]
fn holidays_shared_with_the_peer_move_the_deadline_on_both_sides() {
    crate::test_support::run(async {
        let today = dates::today();
        // The third working day after today is a shared holiday.
        let holiday = WorkCalendar::default().add_working_days(today, 3);
        let shared: Arc<dyn SharedHolidays> = Arc::new(Agreed {
            members: ["DE-BAFA", "FR-SBDU"],
            days: vec![holiday],
        });
        let (a, b) = federation_with(Some(shared));
        assert_eq!(
            a.consultations.calendar_for("US-BIS"),
            WorkCalendar::default(),
            "another peer keeps this agency's own calendar"
        );
        let id = open(&a).await;
        let due = a.consultations.show(&id).unwrap().consultation.unwrap().due;
        let without = WorkCalendar::default().add_working_days(today, 10);
        let with = WorkCalendar::new([holiday]).add_working_days(today, 10);
        assert_ne!(with, without);
        assert_eq!(due, dates::format(with));
        assert_eq!(a.delivery.deliver_pending().await.unwrap(), Delivered::All);
        let seen = b.consultations.show(&id).unwrap();
        assert_eq!(seen.consultation.unwrap().due, dates::format(with));
        // The denying side counts the same working days left.
        assert_eq!(seen.working_days, 10);
    });
}
