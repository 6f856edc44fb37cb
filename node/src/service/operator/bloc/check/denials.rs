//! Matched denials of bloc members, judged under the charter's rule: what is
//! known of each (the denial itself when this node holds it, else what the
//! match disclosed), and the verdict with the consultation deadline.

use tessera_proto::v1::{IdenticalDenial, Match, ScreenResponse, notice::Body};
use tonic::Status;

use super::Checking;
use crate::bloc::charters::notice_of;
use crate::bloc::rule::{self, Denied};
use crate::service::operator::bloc::BlocDesk;

/// What a matched notice is, for the check.
enum Known {
    Denial(Denied),
    /// An enforcement notice: named in the reasons when the charter recognises it.
    Enforcement,
    /// Another kind of notice: nothing to judge.
    Other,
}

impl BlocDesk {
    /// Every matched notice of a member, once each: denials judged,
    /// recognised enforcement notices named in `reasons`.
    pub(super) fn judge_matches(
        &self,
        c: &Checking<'_>,
        screened: &ScreenResponse,
        reasons: &mut Vec<String>,
    ) -> Result<Vec<IdenticalDenial>, Status> {
        let mut denials: Vec<IdenticalDenial> = Vec::new();
        for r in &screened.results {
            for m in &r.matches {
                let member = if m.own { c.me.clone() } else { m.peer.clone() };
                let seen = denials
                    .iter()
                    .any(|d| d.origin == m.origin && d.serial == m.serial);
                if seen || !c.t.charter.members.contains(&member) {
                    continue;
                }
                match self.known(m)? {
                    Known::Enforcement if c.recognises("enforcement") => reasons.push(format!(
                        "party {} matches an enforcement notice of {member} ({}): ask its contact",
                        r.index, m.serial
                    )),
                    Known::Denial(denied) if c.recognises("denial") => {
                        denials.push(self.judged(c, member, r.index, m, denied));
                    }
                    _ => {}
                }
            }
        }
        Ok(denials)
    }

    /// What is known of the notice `m` matched.
    fn known(&self, m: &Match) -> Result<Known, Status> {
        let held = self
            .charters
            .notices
            .latest(&m.origin, &m.serial)
            .map_err(Status::from)?
            .as_ref()
            .and_then(notice_of);
        Ok(match held.and_then(|n| n.body) {
            Some(Body::Denial(d)) => Known::Denial(Denied {
                strength: m.strength.clone(),
                control_entries: Some(d.items.iter().map(|i| i.control_entry.clone()).collect()),
                destination: Some(d.destination),
                end_use: Some(d.end_use),
                decision_date: Some(d.decision_date),
            }),
            Some(Body::Enforcement(_)) => Known::Enforcement,
            Some(_) => Known::Other,
            None => Known::Denial(disclosed(m)),
        })
    }

    /// The rule's verdict on one denial, with the deadline when the member
    /// is to be consulted.
    fn judged(
        &self,
        c: &Checking<'_>,
        member: String,
        party: u32,
        m: &Match,
        denied: Denied,
    ) -> IdenticalDenial {
        let verdict = rule::judge(c.rule, &c.tx, &denied, c.today);
        let deadline = if verdict.identical && member != c.me {
            self.deadline(c, &member)
        } else {
            String::new()
        };
        IdenticalDenial {
            member,
            origin: m.origin.clone(),
            serial: m.serial.clone(),
            authority_reference: m.authority_reference.clone(),
            why: verdict.why,
            identical: verdict.identical,
            party,
            strength: m.strength.clone(),
            deadline,
            consultation_id: String::new(),
            control_entries: denied.control_entries.unwrap_or_default(),
            destination: denied.destination.unwrap_or_default(),
        }
    }

    /// The due day of a consultation with `member` opened today.
    fn deadline(&self, c: &Checking<'_>, member: &str) -> String {
        let due = self
            .consultations
            .calendar_for(member)
            .add_working_days(c.today, c.t.charter.consult_days);
        crate::notice::dates::format(due)
    }
}

/// What a match disclosed of a denial this node does not hold.
fn disclosed(m: &Match) -> Denied {
    if m.disclosure == "pointer" || m.disclosure.is_empty() {
        return Denied {
            strength: m.strength.clone(),
            ..Denied::default()
        };
    }
    Denied {
        strength: m.strength.clone(),
        control_entries: Some(m.control_entries.clone()),
        destination: Some(m.destination.clone()),
        end_use: None,
        decision_date: Some(m.decision_date.clone()),
    }
}
