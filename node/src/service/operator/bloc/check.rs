//! The application check and the decision on an application: screening
//! through [`MatchingDesk::screen`](super::super::matching::MatchingDesk::screen),
//! judging matched denials with the charter's rule, trusted operators by
//! identifier, and the record kept for the pilot figures (never a party).

use tessera_proto::v1::{
    Application, ApplicationCheckRequest, ApplicationCheckResponse, ApplicationDecideRequest,
    ApplicationDecideResponse, IdenticalDenial, PeerProblem, ScreenRequest, TrustedHit,
    notice::Body,
};
use tonic::Status;

use super::{BlocDesk, invalid};
use crate::bloc::BlocError;
use crate::bloc::applications::ApplicationRecord;
use crate::bloc::charters::notice_of;
use crate::bloc::pilot;
use crate::bloc::rule::{self, Denied, Rule, Transaction};
use crate::bloc::trusted;
use crate::notice::dates;

/// Most parties in one application.
const MAX_PARTIES: usize = 50;

impl BlocDesk {
    /// The licensing officer's check before deciding.
    pub async fn check(
        &self,
        request: ApplicationCheckRequest,
    ) -> Result<ApplicationCheckResponse, Status> {
        let bloc = if request.bloc.is_empty() {
            self.charters.only_bloc()?
        } else {
            request.bloc.clone()
        };
        let t = self.charters.in_force(&bloc)?;
        let app = request
            .application
            .ok_or_else(|| invalid("application: missing"))?;
        let received_on = check_application(&app)?;
        let today = dates::today();
        let rule = Rule::from_name(&t.charter.identical_rule).unwrap_or(Rule::IdenticalV1);
        let screened = self
            .matching
            .screen(&ScreenRequest {
                parties: app
                    .parties
                    .iter()
                    .filter_map(|rp| rp.party.clone())
                    .collect(),
                threshold: request.threshold,
            })
            .await?;
        let me = self.me().to_string();
        let others: Vec<&String> = t.charter.members.iter().filter(|m| **m != me).collect();

        // Who did not answer, for which party.
        let mut unanswered: Vec<PeerProblem> = screened
            .unavailable
            .iter()
            .filter(|p| others.contains(&&p.peer))
            .cloned()
            .collect();
        for m in &others {
            if !screened.screened_peers.contains(m) && !unanswered.iter().any(|p| &p.peer == *m) {
                unanswered.push(PeerProblem {
                    peer: (*m).clone(),
                    reason: "not screened: not a peer this node can reach".into(),
                });
            }
        }
        for r in &screened.results {
            for peer in r.unscreened.iter().filter(|p| others.contains(p)) {
                if !unanswered.iter().any(|p| &p.peer == peer) {
                    unanswered.push(PeerProblem {
                        peer: peer.clone(),
                        reason: format!("did not answer for every key of party {}", r.index),
                    });
                }
            }
        }

        // Matched denials, judged.
        let tx = Transaction {
            control_entries: app.items.iter().map(|i| i.control_entry.clone()).collect(),
            destination: app.destination.clone(),
            end_use: app.end_use.clone(),
        };
        let mut reasons = Vec::new();
        let mut denials: Vec<IdenticalDenial> = Vec::new();
        let recognise = |k: &str| t.charter.recognised.iter().any(|r| r == k);
        let due = self
            .consultations
            .calendar()
            .add_working_days(today, t.charter.consult_days);
        for r in &screened.results {
            for m in &r.matches {
                let member = if m.own { me.clone() } else { m.peer.clone() };
                if !t.charter.members.contains(&member)
                    || denials
                        .iter()
                        .any(|d| d.origin == m.origin && d.serial == m.serial)
                {
                    continue;
                }
                let held = self
                    .charters
                    .notices
                    .latest(&m.origin, &m.serial)
                    .map_err(Status::from)?
                    .as_ref()
                    .and_then(notice_of);
                let denied = match held.and_then(|n| n.body) {
                    Some(Body::Denial(d)) => Denied {
                        strength: m.strength.clone(),
                        control_entries: Some(
                            d.items.iter().map(|i| i.control_entry.clone()).collect(),
                        ),
                        destination: Some(d.destination),
                        end_use: Some(d.end_use),
                        decision_date: Some(d.decision_date),
                    },
                    Some(Body::Enforcement(_)) => {
                        if recognise("enforcement") {
                            reasons.push(format!(
                                "party {} matches an enforcement notice of {member} ({}): ask its contact",
                                r.index, m.serial
                            ));
                        }
                        continue;
                    }
                    Some(_) => continue,
                    None if m.disclosure == "pointer" || m.disclosure.is_empty() => Denied {
                        strength: m.strength.clone(),
                        ..Denied::default()
                    },
                    None => Denied {
                        strength: m.strength.clone(),
                        control_entries: Some(m.control_entries.clone()),
                        destination: Some(m.destination.clone()),
                        end_use: None,
                        decision_date: Some(m.decision_date.clone()),
                    },
                };
                if !recognise("denial") {
                    continue;
                }
                let verdict = rule::judge(rule, &tx, &denied, today);
                let own = member == me;
                denials.push(IdenticalDenial {
                    member: member.clone(),
                    origin: m.origin.clone(),
                    serial: m.serial.clone(),
                    authority_reference: m.authority_reference.clone(),
                    why: verdict.why,
                    identical: verdict.identical,
                    party: r.index,
                    strength: m.strength.clone(),
                    deadline: if verdict.identical && !own {
                        dates::format(due)
                    } else {
                        String::new()
                    },
                    consultation_id: String::new(),
                    control_entries: denied.control_entries.unwrap_or_default(),
                    destination: denied.destination.unwrap_or_default(),
                });
            }
        }

        // Trusted operators, by any identifier.
        let mut hits: Vec<TrustedHit> = Vec::new();
        let records = self.charters.trusted(&t)?;
        for (i, rp) in app.parties.iter().enumerate() {
            let Some(party) = &rp.party else { continue };
            for held in &records {
                let Some(listed) = &held.record.party else {
                    continue;
                };
                let on = trusted::matched_on(party, listed);
                if on.is_empty() {
                    continue;
                }
                let from_member = held.origin == me || recognise("trusted");
                if !from_member {
                    continue;
                }
                if held.record.standing != "valid" {
                    reasons.push(format!(
                        "party {i} is in {}'s {} programme but its status is {}",
                        held.origin, held.record.programme, held.record.standing
                    ));
                    continue;
                }
                hits.push(TrustedHit {
                    party: i as u32,
                    member: held.origin.clone(),
                    serial: held.serial.clone(),
                    programme: held.record.programme.clone(),
                    validated_on: held.record.validated_on.clone(),
                    scope_items: held.record.scope_items.clone(),
                    scope_destinations: held.record.scope_destinations.clone(),
                    in_scope: trusted::in_scope(&held.record, &tx.control_entries, &tx.destination),
                    matched_on: on,
                });
            }
        }

        let consult: Vec<usize> = denials
            .iter()
            .enumerate()
            .filter(|(_, d)| d.identical && d.member != me)
            .map(|(i, _)| i)
            .collect();
        let answer = if !consult.is_empty() {
            "consult"
        } else if !unanswered.is_empty() {
            "not-fully-screened"
        } else if hits.iter().any(|h| h.in_scope) {
            "trusted"
        } else {
            "clear"
        };
        for d in &denials {
            let what = if d.member == me && d.identical {
                "this agency's own denial, essentially identical".to_owned()
            } else if d.identical {
                format!(
                    "essentially identical: consult {} by {}",
                    d.member, d.deadline
                )
            } else {
                "not essentially identical".to_owned()
            };
            reasons.push(format!(
                "party {} matches denial {}/{} of {}: {what} ({})",
                d.party, d.origin, d.serial, d.member, d.why
            ));
        }
        for h in &hits {
            reasons.push(format!(
                "party {} is a trusted operator of {} ({}, validated {}, matched on {}){}",
                h.party,
                h.member,
                h.programme,
                h.validated_on,
                h.matched_on.join(", "),
                if h.in_scope {
                    ""
                } else {
                    ", but this application is outside its scope"
                }
            ));
        }
        for p in &unanswered {
            reasons.push(format!("{}: {}", p.peer, p.reason));
        }
        if answer == "clear" {
            reasons.insert(
                0,
                format!(
                    "{} parties screened against {} and this agency's own lists: no essentially identical bloc denial",
                    app.parties.len(),
                    others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
            );
        }

        // Consultations, when asked for.
        if request.consult {
            for i in consult {
                let d = &denials[i];
                let summary = format!(
                    "application {}: control entries {}; destination {}",
                    app.reference,
                    tx.control_entries.join(", "),
                    tx.destination
                );
                let view = self
                    .consultations
                    .open(&d.origin, &d.serial, &summary, t.charter.consult_days)
                    .await?;
                let id = view.consultation.map(|c| c.id).unwrap_or_default();
                denials[i].consultation_id = id;
            }
        }

        let previous = self.applications.get(&app.reference)?;
        let record = ApplicationRecord {
            reference: app.reference.clone(),
            bloc: bloc.clone(),
            received_on: dates::format(received_on),
            checked_on: dates::format(today),
            answer: answer.to_owned(),
            bloc_denials_matched: denials.iter().filter(|d| d.member != me).count() as u32,
            trusted_hits: hits.len() as u32,
            consultations: denials
                .iter()
                .filter(|d| !d.consultation_id.is_empty())
                .map(|d| d.consultation_id.clone())
                .chain(previous.iter().flat_map(|p| p.consultations.clone()))
                .collect(),
            decision: previous
                .as_ref()
                .map(|p| p.decision.clone())
                .unwrap_or_default(),
            decided_on: previous.map(|p| p.decided_on).unwrap_or_default(),
        };
        self.applications.put(&record)?;
        tracing::info!(bloc = %bloc, answer, members = others.len(), "application checked");
        Ok(ApplicationCheckResponse {
            answer: answer.to_owned(),
            reasons,
            denials,
            trusted: hits,
            screened: screened
                .screened_peers
                .iter()
                .filter(|p| others.contains(p))
                .cloned()
                .collect(),
            unanswered,
            charter_version: t.charter.charter_version,
            rule: rule.name().to_owned(),
            parties: app.parties.len() as u32,
        })
    }

    /// Records the decision on a checked application.
    pub fn decide(
        &self,
        request: &ApplicationDecideRequest,
    ) -> Result<ApplicationDecideResponse, Status> {
        let mut record = self
            .applications
            .get(&request.reference)?
            .ok_or_else(|| BlocError::UnknownApplication(request.reference.clone()))?;
        if !matches!(request.decision.as_str(), "granted" | "refused") {
            return Err(invalid("decision: granted or refused"));
        }
        let on = if request.decided_on.is_empty() {
            dates::today()
        } else {
            dates::parse(&request.decided_on)
                .ok_or_else(|| invalid("decided_on: not a date (YYYY-MM-DD)"))?
        };
        let received = dates::parse(&record.received_on).unwrap_or(on);
        if on < received {
            return Err(invalid("decided_on: before the application was received"));
        }
        let t = self.charters.in_force(&record.bloc)?;
        let days =
            pilot::calendar(&t.charter, self.me().as_str()).working_days_between(received, on);
        record.decision.clone_from(&request.decision);
        record.decided_on = dates::format(on);
        self.applications.put(&record)?;
        Ok(ApplicationDecideResponse { working_days: days })
    }
}

/// Checks an application; returns the day it was received.
fn check_application(app: &Application) -> Result<time::Date, Status> {
    let r = &app.reference;
    if r.is_empty() || r.len() > 64 || r.chars().any(char::is_control) {
        return Err(invalid(
            "application.reference: 1 to 64 characters, no control characters",
        ));
    }
    if app.parties.is_empty() || app.parties.len() > MAX_PARTIES {
        return Err(invalid(format!("application.parties: 1 to {MAX_PARTIES}")));
    }
    for (i, rp) in app.parties.iter().enumerate() {
        let mut p = rp
            .party
            .clone()
            .ok_or_else(|| invalid(format!("application.parties[{i}].party: missing")))?;
        if p.kind == 0 {
            p.kind = tessera_proto::v1::PartyKind::Organisation as i32;
        }
        crate::notice::validate::party(&format!("application.parties[{i}].party"), &p)?;
    }
    if app.items.is_empty() {
        return Err(invalid(
            "application.items: at least one item with its control entry",
        ));
    }
    for (i, item) in app.items.iter().enumerate() {
        crate::notice::validate::text(
            &format!("application.items[{i}].control_entry"),
            &item.control_entry,
            true,
        )?;
    }
    crate::notice::validate::country("application.destination", &app.destination)?;
    if app.destination.is_empty() {
        return Err(invalid("application.destination: empty"));
    }
    crate::notice::validate::text("application.end_use", &app.end_use, false)?;
    if app.received_on.is_empty() {
        return Ok(dates::today());
    }
    dates::parse(&app.received_on)
        .ok_or_else(|| invalid("application.received_on: not a date (YYYY-MM-DD)"))
}
