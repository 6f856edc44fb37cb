//! Tests of the consultation state machine.

use super::*;

fn d(s: &str) -> Date {
    dates::parse(s).unwrap()
}

const OPENED: &str = "2026-11-02"; // a Monday

fn open() -> ConsultOpen {
    ConsultOpen {
        denial_origin: "FR-SBDU".into(),
        denial_serial: "FR-2026-000001".into(),
        summary: "two lathes".into(),
        opened_on: OPENED.into(),
        days: 10,
        due: "2026-11-16".into(),
    }
}

/// Every state a consultation can be in, as the flags that matter.
fn states() -> Vec<(Role, bool, bool, bool)> {
    let mut out = Vec::new();
    for role in [Role::Consulting, Role::Consulted] {
        for answered in [false, true] {
            for closed in [false, true] {
                for extended in [false, true] {
                    out.push((role, answered, closed, extended));
                }
            }
        }
    }
    out
}

fn consultation(role: Role, answered: bool, closed: bool, extended: bool) -> Consultation {
    Consultation {
        id: "DE-BAFA-C1".into(),
        role: role.as_str().into(),
        peer: "FR-SBDU".into(),
        open: Some(open()),
        answer: answered.then(|| ConsultAnswer {
            answer: "objection".into(),
            text: "no".into(),
        }),
        decision: closed.then(|| ConsultDecision {
            decision: "refused".into(),
            text: String::new(),
        }),
        extended,
        days: if extended { 20 } else { 10 },
        due: "2026-11-16".into(),
        ..Consultation::default()
    }
}

fn steps() -> Vec<Step> {
    let mut out = Vec::new();
    for by in [By::Us, By::Peer] {
        for answer in Answer::ALL {
            out.push(Step::Answer {
                by,
                answer: *answer,
                text: "because".into(),
            });
        }
        out.push(Step::Extend {
            by,
            days: 20,
            due: "2026-11-30".into(),
        });
        out.push(Step::Inform {
            by,
            text: "the consignee is a university workshop".into(),
        });
        for decision in Decision::ALL {
            out.push(Step::Decide {
                by,
                decision: *decision,
                text: String::new(),
            });
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Sent,
    SentAndGrant,
    Alerted(&'static str),
    State,
    NotAllowed,
}

/// The protocol's table, written independently of `step`.
fn expected(role: Role, closed: bool, extended: bool, s: &Step) -> Outcome {
    use Outcome::*;
    match s {
        Step::Answer { by: By::Us, .. } => {
            if role != Role::Consulted || closed {
                State
            } else {
                Sent
            }
        }
        Step::Answer { by: By::Peer, .. } => match (closed, role) {
            (true, _) => State,
            (false, Role::Consulting) => Alerted("answer"),
            (false, Role::Consulted) => NotAllowed,
        },
        Step::Extend { by: By::Us, .. } => {
            if closed || extended {
                State
            } else {
                Sent
            }
        }
        Step::Extend { by: By::Peer, .. } => match (closed, extended) {
            (true, _) => State,
            (false, true) => NotAllowed,
            (false, false) => Alerted("extend"),
        },
        Step::Inform { by: By::Us, .. } => {
            if role != Role::Consulting || closed {
                State
            } else {
                Sent
            }
        }
        Step::Inform { by: By::Peer, .. } => match (closed, role) {
            (true, _) => State,
            (false, Role::Consulted) => Alerted("information"),
            (false, Role::Consulting) => NotAllowed,
        },
        Step::Decide {
            by: By::Us,
            decision,
            ..
        } => {
            if role != Role::Consulting || closed {
                State
            } else if *decision == Decision::Granted {
                SentAndGrant
            } else {
                Sent
            }
        }
        Step::Decide { by: By::Peer, .. } => match (closed, role) {
            (true, _) => State,
            (false, Role::Consulted) => Alerted("decision"),
            (false, Role::Consulting) => NotAllowed,
        },
        Step::Open { .. } => NotAllowed,
        Step::Tick => unreachable!("ticks are tested apart"),
    }
}

fn outcome(r: &Result<(Consultation, Vec<Effect>), Refusal>) -> Outcome {
    match r {
        Err(Refusal::State(_)) => Outcome::State,
        Err(Refusal::NotAllowed(_)) => Outcome::NotAllowed,
        Ok((_, effects)) => match effects.as_slice() {
            [Effect::Send(_)] => Outcome::Sent,
            [Effect::Send(Kind::Decision(_)), Effect::GrantNotice] => Outcome::SentAndGrant,
            [Effect::Alert(w)] => Outcome::Alerted(w),
            other => panic!("unexpected effects {other:?}"),
        },
    }
}

#[test]
fn every_step_in_every_state_follows_the_protocol_table() {
    let cal = WorkCalendar::default();
    let env = Env {
        calendar: &cal,
        today: d(OPENED),
    };
    let mut checked = 0;
    for (role, answered, closed, extended) in states() {
        let c = consultation(role, answered, closed, extended);
        for s in steps() {
            let r = step(Some(&c), s.clone(), env);
            let want = expected(role, closed, extended, &s);
            assert_eq!(
                outcome(&r),
                want,
                "{role:?} answered={answered} closed={closed} extended={extended}: {s:?} -> {r:?}"
            );
            // A refused step changes nothing; an accepted one changes
            // exactly what it is about.
            if let Ok((next, _)) = &r {
                assert_eq!(next.id, c.id);
                assert_eq!(next.role, c.role);
                assert_eq!(next.steps, c.steps);
                match &s {
                    Step::Answer { answer, .. } => {
                        assert_eq!(next.answer.as_ref().unwrap().answer, answer.as_str());
                        assert_eq!(next.decision, c.decision);
                    }
                    Step::Decide { decision, .. } => {
                        assert_eq!(next.decision.as_ref().unwrap().decision, decision.as_str());
                        assert_eq!(next.answer, c.answer);
                    }
                    Step::Extend { .. } => {
                        assert!(next.extended && next.days == 20);
                        assert_eq!(next.due, "2026-11-30");
                    }
                    // An objection stands whatever information follows it.
                    Step::Inform { .. } => {
                        assert_eq!(next.answer, c.answer);
                        assert_eq!((&next.due, next.days), (&c.due, c.days));
                    }
                    _ => {}
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 16 * 16);
}

#[test]
fn opening_sends_or_alerts_by_side_and_only_once() {
    let cal = WorkCalendar::default();
    let env = Env {
        calendar: &cal,
        today: d(OPENED),
    };
    let ours = Step::Open {
        by: By::Us,
        id: "DE-BAFA-C1".into(),
        peer: "FR-SBDU".into(),
        open: open(),
    };
    let (c, effects) = step(None, ours.clone(), env).unwrap();
    assert_eq!(c.role, "consulting");
    assert_eq!((c.due.as_str(), c.days), ("2026-11-16", 10));
    assert_eq!(effects, [Effect::Send(Kind::Open(open()))]);
    assert_eq!(
        step(Some(&c), ours, env).unwrap_err(),
        Refusal::NotAllowed("the consultation already exists")
    );
    let theirs = Step::Open {
        by: By::Peer,
        id: "FR-SBDU-C4".into(),
        peer: "FR-SBDU".into(),
        open: open(),
    };
    let (c, effects) = step(None, theirs, env).unwrap();
    assert_eq!(c.role, "consulted");
    assert_eq!(effects, [Effect::Alert("open")]);
    // No other step starts a consultation.
    for s in steps() {
        assert!(matches!(step(None, s, env), Err(Refusal::NotAllowed(_))));
    }
    assert!(matches!(
        step(None, Step::Tick, env),
        Err(Refusal::State(_))
    ));
}

#[test]
fn our_extension_counts_working_days_from_the_opening_and_follows_the_deadline_rules() {
    let cal = WorkCalendar::new([d("2026-11-11")]);
    let env = Env {
        calendar: &cal,
        today: d(OPENED),
    };
    let c = consultation(Role::Consulted, false, false, false);
    let extend = |days| Step::Extend {
        by: By::Us,
        days,
        due: String::new(),
    };
    let (next, effects) = step(Some(&c), extend(15), env).unwrap();
    // 15 working days after Monday 2 November, skipping the holiday on the 11th.
    assert_eq!(next.due, "2026-11-24");
    assert_eq!(
        effects,
        [Effect::Send(Kind::Extend(ConsultExtend {
            days: 15,
            due: "2026-11-24".into()
        }))]
    );
    for (days, why) in [
        (31, "at most 30"),
        (10, "longer than the current 10"),
        (5, "longer than the current 10"),
    ] {
        let err = step(Some(&c), extend(days), env).unwrap_err();
        assert!(
            matches!(&err, Refusal::State(m) if m.contains(why)),
            "{days}: {err}"
        );
    }
    let mut undated = c.clone();
    undated.open = None;
    assert_eq!(
        step(Some(&undated), extend(15), env).unwrap_err(),
        Refusal::State("the consultation has no opening date".into())
    );
    // The peer's extension: at most 30 days, with a due date that reads.
    let theirs = |days, due: &str| Step::Extend {
        by: By::Peer,
        days,
        due: due.into(),
    };
    assert!(step(Some(&c), theirs(30, "2026-12-14"), env).is_ok());
    assert!(matches!(
        step(Some(&c), theirs(31, "2026-12-15"), env),
        Err(Refusal::NotAllowed(_))
    ));
    assert!(matches!(
        step(Some(&c), theirs(20, "soon"), env),
        Err(Refusal::NotAllowed(_))
    ));
}

#[test]
fn ticks_remind_once_per_stage_and_never_an_answered_or_closed_one() {
    let cal = WorkCalendar::default();
    let tick = |c: &Consultation, today: &str| {
        step(
            Some(c),
            Step::Tick,
            Env {
                calendar: &cal,
                today: d(today),
            },
        )
        .unwrap()
    };
    // Due Monday 16 November.
    let c = consultation(Role::Consulting, false, false, false);
    let (c, effects) = tick(&c, "2026-11-05");
    assert!(effects.is_empty() && c.reminded.is_empty());
    let (c, effects) = tick(&c, "2026-11-12");
    assert_eq!(effects, [Effect::Alert("due-soon")]);
    let (c, effects) = tick(&c, "2026-11-13");
    assert!(effects.is_empty(), "reminded once per stage");
    let (c, effects) = tick(&c, "2026-11-17");
    assert_eq!(effects, [Effect::Alert("overdue")]);
    let (c, effects) = tick(&c, "2026-12-17");
    assert!(effects.is_empty());
    assert_eq!(c.reminded, ["due-soon", "overdue"]);
    for (answered, closed) in [(true, false), (false, true)] {
        let c = consultation(Role::Consulting, answered, closed, false);
        assert!(tick(&c, "2026-11-30").1.is_empty());
    }
}

#[test]
fn words_round_trip_and_typos_are_refused_naming_the_choices() {
    for r in Role::ALL {
        assert_eq!(r.as_str().parse::<Role>().unwrap(), *r);
    }
    for a in Answer::ALL {
        assert_eq!(a.as_str().parse::<Answer>().unwrap(), *a);
    }
    for x in Decision::ALL {
        assert_eq!(x.as_str().parse::<Decision>().unwrap(), *x);
    }
    assert_eq!(
        "no_objection".parse::<Answer>().unwrap_err().to_string(),
        "answer: no-objection, objection, more-information"
    );
    assert_eq!(
        "grant".parse::<Decision>().unwrap_err().to_string(),
        "decision: granted, refused, withdrawn"
    );
}

#[test]
fn information_answers_a_question_and_the_denying_agency_answers_again_within_the_same_deadline() {
    let cal = WorkCalendar::default();
    let env = Env {
        calendar: &cal,
        today: d("2026-11-05"),
    };
    for (role, by, effect) in [
        (Role::Consulting, By::Us, "send"),
        (Role::Consulted, By::Peer, "inform"),
    ] {
        let mut c = consultation(role, true, false, false);
        c.answer = Some(ConsultAnswer {
            answer: Answer::MoreInformation.as_str().into(),
            text: "Who operates the workshop?".into(),
        });
        assert_eq!(state(&c, env.today, &cal), ConsultState::Answered);
        let (next, effects) = step(
            Some(&c),
            Step::Inform {
                by,
                text: "The university's physics department.".into(),
            },
            env,
        )
        .unwrap();
        match (effect, effects.as_slice()) {
            ("send", [Effect::Send(Kind::Inform(i))]) => {
                assert_eq!(i.text, "The university's physics department.");
            }
            ("inform", [Effect::Alert("information")]) => {}
            (_, other) => panic!("{role:?}: unexpected effects {other:?}"),
        }
        assert_eq!(next.answer, None, "{role:?}: the question is answered");
        assert_eq!(
            state(&next, env.today, &cal),
            ConsultState::Open,
            "{role:?}: waiting for an answer again"
        );
        assert_eq!((next.due.as_str(), next.days), ("2026-11-16", 10));
        if role == Role::Consulted {
            // The denying agency answers anew.
            let (answered, _) = step(
                Some(&next),
                Step::Answer {
                    by: By::Us,
                    answer: Answer::NoObjection,
                    text: String::new(),
                },
                env,
            )
            .unwrap();
            assert_eq!(answered.answer.unwrap().answer, "no-objection");
        }
    }
}
