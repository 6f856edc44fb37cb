//! The consultation state machine, as a pure function:
//! [`step`]`(state, step, env) → (state, effects)`.
//!
//! A consultation is opened by the consulting agency (about to grant what
//! the other denied), answered by the denying agency (no objection,
//! objection, more information), possibly extended once by either side,
//! given more information by the consulting agency (asked for or of its own
//! accord; it answers a pending "more information", which the denying agency
//! then answers anew, within the same deadline), and closed by the consulting
//! agency's decision. Each side keeps the same
//! record; a step is taken either by us (from the operator API) or by the
//! peer (a signed message it sent). This module decides whether a step is
//! allowed and what it changes; it signs, stores, sends and alerts nothing:
//! it returns [`Effect`]s that `consult::flow` carries out.
//!
//! Wire forms (`Consultation.role`, `ConsultAnswer.answer`,
//! `ConsultDecision.decision`) are the `as_str` of the enums here.

use std::fmt;
use std::str::FromStr;

use tessera_proto::v1::{
    ConsultAnswer, ConsultDecision, ConsultExtend, ConsultInform, ConsultOpen, Consultation,
    consult_message::Kind,
};
use time::Date;

use super::deadline::{self, ConsultState, Deadline, MAX_DAYS, WorkCalendar};
use crate::notice::dates;

/// Declares a closed set of words: the enum, `as_str`, `ALL`, `FromStr`.
macro_rules! words {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
        pub enum $name { $($(#[$vm])* #[value(name = $s)] $v),+ }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$v),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;
            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let all: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    UnknownWord(format!("{}: {}", $what, all.join(", ")))
                })
            }
        }
    };
}

/// A word outside a closed set; says which words there are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnknownWord(String);

words!(
    /// Our side of a consultation.
    Role, "role" {
        /// We opened it: we are about to grant what the peer denied.
        Consulting = "consulting",
        /// It is about our denial.
        Consulted = "consulted",
    }
);

words!(
    /// The denying agency's answer.
    Answer, "answer" {
        NoObjection = "no-objection",
        Objection = "objection",
        MoreInformation = "more-information",
    }
);

words!(
    /// The consulting agency's decision, which closes the consultation.
    Decision, "decision" {
        Granted = "granted",
        Refused = "refused",
        Withdrawn = "withdrawn",
    }
);

/// Who takes a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum By {
    /// Our operator.
    Us,
    /// The peer, in a signed message (already verified).
    Peer,
}

/// One step of a consultation, its fields already read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Opens a consultation: by us (we consult the peer about its denial)
    /// or by the peer (it consults us about ours).
    Open {
        by: By,
        id: String,
        peer: String,
        open: ConsultOpen,
    },
    Answer {
        by: By,
        answer: Answer,
        text: String,
    },
    /// By us: extend to `days` (the due day follows from our calendar).
    /// By the peer: `days` and the `due` day it computed.
    Extend { by: By, days: u32, due: String },
    /// The consulting agency provides information. A pending answer
    /// "more-information" is thereby answered: the consultation waits for
    /// the denying agency's answer again. The deadline does not move.
    Inform { by: By, text: String },
    Decide {
        by: By,
        decision: Decision,
        text: String,
    },
    /// A new day: a consultation due soon or overdue reminds our operator,
    /// once per stage.
    Tick,
}

/// What the transport does after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Sign this step and queue it for the peer (a step of ours).
    Send(Kind),
    /// Tell our operator; the word names the step or the reminder stage.
    Alert(&'static str),
    /// "Granted despite a denial": issue the grant notice to the bloc.
    GrantNotice,
}

/// Why a step was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The step does not fit where the consultation stands (closed, the
    /// wrong side, already extended): FAILED_PRECONDITION on both ports.
    #[error("{0}")]
    State(String),
    /// A peer's step that the protocol never allows here.
    #[error("{0}")]
    NotAllowed(&'static str),
}

/// What the machine reads besides the state: the calendar and today.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    pub calendar: &'a WorkCalendar,
    pub today: Date,
}

/// Where a consultation stands on `today`, counted with `cal`.
pub fn state(c: &Consultation, today: Date, cal: &WorkCalendar) -> ConsultState {
    let answered = c.answer.is_some();
    let closed = c.decision.is_some();
    match dates::parse(&c.due) {
        Some(due) => deadline::state_for_due(due, today, answered, closed, cal),
        None if closed => ConsultState::Closed,
        None if answered => ConsultState::Answered,
        None => ConsultState::Open,
    }
}

/// The role stored in a consultation.
pub fn role_of(c: &Consultation) -> Option<Role> {
    c.role.parse().ok()
}

fn state_err(s: &str) -> Refusal {
    Refusal::State(s.to_owned())
}

/// Applies `step` to `state` (`None`: no consultation yet). Returns the new
/// state and what the transport must do; the state's `steps` (the signed
/// messages) are the transport's to append.
pub fn step(
    current: Option<&Consultation>,
    step: Step,
    env: Env<'_>,
) -> Result<(Consultation, Vec<Effect>), Refusal> {
    let Some(current) = current else {
        return match step {
            Step::Open { by, id, peer, open } => Ok(opened(by, id, peer, open)),
            Step::Tick => Err(state_err("no such consultation")),
            _ => Err(Refusal::NotAllowed("no such consultation")),
        };
    };
    let mut c = current.clone();
    let closed = c.decision.is_some();
    let role = role_of(&c);
    let effects = match step {
        Step::Open { .. } => return Err(Refusal::NotAllowed("the consultation already exists")),
        Step::Tick => {
            let what = match state(&c, env.today, env.calendar) {
                ConsultState::DueSoon { .. } => "due-soon",
                ConsultState::Overdue { .. } => "overdue",
                _ => return Ok((c, Vec::new())),
            };
            if c.reminded.iter().any(|r| r == what) {
                return Ok((c, Vec::new()));
            }
            c.reminded.push(what.to_owned());
            vec![Effect::Alert(what)]
        }
        Step::Answer { by, answer, text } => {
            let a = ConsultAnswer {
                answer: answer.as_str().to_owned(),
                text,
            };
            match by {
                By::Us => {
                    if role != Some(Role::Consulted) {
                        return Err(state_err("only the denying agency answers a consultation"));
                    }
                    if closed {
                        return Err(state_err("the consultation is closed"));
                    }
                    c.answer = Some(a.clone());
                    vec![Effect::Send(Kind::Answer(a))]
                }
                By::Peer => {
                    peer_may_step(closed)?;
                    if role != Some(Role::Consulting) {
                        return Err(Refusal::NotAllowed("this step is not allowed here"));
                    }
                    c.answer = Some(a);
                    vec![Effect::Alert("answer")]
                }
            }
        }
        Step::Extend { by, days, due } => match by {
            By::Us => {
                if closed {
                    return Err(state_err("the consultation is closed"));
                }
                let opened = c
                    .open
                    .as_ref()
                    .and_then(|o| dates::parse(&o.opened_on))
                    .ok_or_else(|| state_err("the consultation has no opening date"))?;
                let mut deadline = Deadline {
                    opened,
                    days: c.days,
                    extended: c.extended,
                };
                deadline
                    .extend(days)
                    .map_err(|e| Refusal::State(e.to_string()))?;
                c.days = deadline.days;
                c.extended = true;
                c.due = dates::format(deadline.due(env.calendar));
                vec![Effect::Send(Kind::Extend(ConsultExtend {
                    days: c.days,
                    due: c.due.clone(),
                }))]
            }
            By::Peer => {
                peer_may_step(closed)?;
                if c.extended || days > MAX_DAYS || dates::parse(&due).is_none() {
                    return Err(Refusal::NotAllowed("this step is not allowed here"));
                }
                c.extended = true;
                c.days = days;
                c.due = due;
                vec![Effect::Alert("extend")]
            }
        },
        Step::Inform { by, text } => {
            let asked = c
                .answer
                .as_ref()
                .is_some_and(|a| a.answer == Answer::MoreInformation.as_str());
            let effect = match by {
                By::Us => {
                    if role != Some(Role::Consulting) {
                        return Err(state_err("only the consulting agency provides information"));
                    }
                    if closed {
                        return Err(state_err("the consultation is closed"));
                    }
                    Effect::Send(Kind::Inform(ConsultInform { text }))
                }
                By::Peer => {
                    peer_may_step(closed)?;
                    if role != Some(Role::Consulted) {
                        return Err(Refusal::NotAllowed("this step is not allowed here"));
                    }
                    Effect::Alert("information")
                }
            };
            if asked {
                c.answer = None;
            }
            vec![effect]
        }
        Step::Decide { by, decision, text } => {
            let d = ConsultDecision {
                decision: decision.as_str().to_owned(),
                text,
            };
            match by {
                By::Us => {
                    if role != Some(Role::Consulting) {
                        return Err(state_err("only the consulting agency decides"));
                    }
                    if closed {
                        return Err(state_err("the consultation is already closed"));
                    }
                    c.decision = Some(d.clone());
                    let mut effects = vec![Effect::Send(Kind::Decision(d))];
                    if decision == Decision::Granted {
                        effects.push(Effect::GrantNotice);
                    }
                    effects
                }
                By::Peer => {
                    peer_may_step(closed)?;
                    if role != Some(Role::Consulted) {
                        return Err(Refusal::NotAllowed("this step is not allowed here"));
                    }
                    c.decision = Some(d);
                    vec![Effect::Alert("decision")]
                }
            }
        }
    };
    Ok((c, effects))
}

/// A peer's step on a closed consultation is refused as such.
fn peer_may_step(closed: bool) -> Result<(), Refusal> {
    if closed {
        Err(state_err("the consultation is closed"))
    } else {
        Ok(())
    }
}

fn opened(by: By, id: String, peer: String, open: ConsultOpen) -> (Consultation, Vec<Effect>) {
    let (role, effect) = match by {
        By::Us => (Role::Consulting, Effect::Send(Kind::Open(open.clone()))),
        By::Peer => (Role::Consulted, Effect::Alert("open")),
    };
    let c = Consultation {
        id,
        role: role.as_str().to_owned(),
        peer,
        due: open.due.clone(),
        days: open.days,
        open: Some(open),
        ..Consultation::default()
    };
    (c, vec![effect])
}

#[cfg(test)]
mod tests;
