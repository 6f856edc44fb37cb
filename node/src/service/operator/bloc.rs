//! Regional blocs from the operator: signing a charter and its status,
//! trusted-operator records, the application check, decisions and the pilot
//! report. The check screens through the same path as `Operator.Screen`
//! ([`MatchingDesk::screen`]) and judges matched denials with the charter's
//! rule; it never logs a party.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tessera_proto::v1::{
    Application, ApplicationCheckRequest, ApplicationCheckResponse, ApplicationDecideRequest,
    ApplicationDecideResponse, BlocSignRequest, BlocStatusResponse, CharterVersionView,
    IdenticalDenial, IssueNoticeResponse, Marking, MemberFigures, Notice, NoticeView, PeerProblem,
    PilotFiguresRequest, PilotReportRequest, PilotReportResponse, ScreenRequest,
    TrustedChangeRequest, TrustedHit, TrustedListResponse, notice::Body,
};
use tonic::Status;

use super::matching::MatchingDesk;
use super::notices::view;
use crate::bloc::BlocError;
use crate::bloc::applications::{ApplicationBook, ApplicationRecord};
use crate::bloc::charter::{self, Tallied};
use crate::bloc::charters::{Charters, notice_of};
use crate::bloc::pilot::{self, Period};
use crate::bloc::report::PilotSource;
use crate::bloc::rule::{self, Denied, Rule, Transaction};
use crate::bloc::trusted;
use crate::consult::flow::Consultations;
use crate::exchange::client::PeerClient;
use crate::identity::AgencyId;
use crate::notice::dates;
use crate::notice::issue::{Change, Imported, Issued, Issuer};
use crate::peers::PinnedKeys;
use crate::policy::DisclosureLevel;

/// Most parties in one application.
const MAX_PARTIES: usize = 50;
/// How long a member has to send its pilot figures.
const FIGURES_TIMEOUT: Duration = Duration::from_secs(10);

/// The bloc calls' handles.
#[derive(Debug)]
pub struct BlocDesk {
    pub charters: Arc<Charters>,
    pub applications: Arc<ApplicationBook>,
    pub pilot: Arc<PilotSource>,
    pub matching: Arc<MatchingDesk>,
    pub consultations: Arc<Consultations>,
    pub issuer: Arc<Issuer>,
    pub client: Arc<dyn PeerClient>,
    pub pinned: PinnedKeys,
    /// `[groups]` of this node's configuration.
    pub groups: BTreeMap<String, Vec<String>>,
    /// The disclosure level this node grants each peer.
    pub disclosure: BTreeMap<AgencyId, DisclosureLevel>,
}

fn invalid(s: impl Into<String>) -> Status {
    Status::invalid_argument(s.into())
}

impl BlocDesk {
    fn me(&self) -> &AgencyId {
        &self.charters.agency
    }

    fn response(&self, i: Issued) -> IssueNoticeResponse {
        IssueNoticeResponse {
            origin: self.me().to_string(),
            serial: i.serial,
            version: i.version,
            seq: i.seq,
            recipients: i.recipients.iter().map(ToString::to_string).collect(),
        }
    }

    /// What differs between a charter's members and `[groups]`.
    fn group_problem(&self, bloc: &str, members: &[String]) -> Option<String> {
        let Some(group) = self.groups.get(bloc) else {
            return Some(format!(
                "bloc {bloc:?} is not a group in this node's [groups]: the charter and the bloc's records would reach nobody"
            ));
        };
        let mut configured: BTreeSet<&str> = group.iter().map(String::as_str).collect();
        configured.insert(self.me().as_str());
        let listed: BTreeSet<&str> = members.iter().map(String::as_str).collect();
        if configured == listed {
            return None;
        }
        let only_charter: Vec<&str> = listed.difference(&configured).copied().collect();
        let only_group: Vec<&str> = configured.difference(&listed).copied().collect();
        Some(format!(
            "[groups] {bloc} and the charter's members differ (only in the charter: {}; only in [groups]: {})",
            if only_charter.is_empty() {
                "none".into()
            } else {
                only_charter.join(", ")
            },
            if only_group.is_empty() {
                "none".into()
            } else {
                only_group.join(", ")
            },
        ))
    }

    /// Signs a charter: this member's charter notice to the bloc's group.
    pub async fn sign(&self, request: BlocSignRequest) -> Result<IssueNoticeResponse, Status> {
        let c = charter::canonical(&request.charter.ok_or_else(|| invalid("charter: missing"))?);
        charter::bloc_name("charter.bloc", &c.bloc)?;
        if let Some(problem) = self.group_problem(&c.bloc, &c.members) {
            return Err(invalid(problem));
        }
        let notice = Notice {
            serial: charter::serial(&c.bloc, c.charter_version),
            marking: Marking::Green as i32,
            distribution: Some(
                crate::policy::parse_to(&format!("group:{}", c.bloc))
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            body: Some(Body::Charter(c.clone())),
            ..Notice::default()
        };
        let serial = notice.serial.clone();
        let issued = match self.issuer.import(notice)? {
            Imported::Created(i) | Imported::Updated(i) => i,
            Imported::Unchanged => {
                let latest = self
                    .charters
                    .notices
                    .latest_entry(self.me().as_str(), &serial)
                    .map_err(Status::from)?
                    .map_or(0, |l| l.version);
                return Ok(self.response(Issued {
                    serial,
                    version: latest,
                    seq: 0,
                    recipients: Vec::new(),
                }));
            }
        };
        self.issuer.publish(&issued.recipients).await?;
        tracing::info!(bloc = %c.bloc, version = c.charter_version, "bloc charter signed");
        // A charter this signature completes comes into force here now (audited).
        let _ = self.charters.in_force(&c.bloc);
        Ok(self.response(issued))
    }

    /// Every version of a bloc's charter this node holds.
    pub fn status(&self, bloc: &str) -> Result<BlocStatusResponse, Status> {
        charter::bloc_name("bloc", bloc)?;
        let versions = self.charters.versions(bloc)?;
        if versions.is_empty() {
            return Err(BlocError::NoCharter(bloc.to_owned()).into());
        }
        let in_force = match self.charters.in_force(bloc) {
            Ok(t) => t.charter.charter_version,
            Err(BlocError::Unsigned { .. } | BlocError::NotMember { .. }) => 0,
            Err(e) => return Err(e.into()),
        };
        let mut warnings = Vec::new();
        if let Some(t) = versions
            .iter()
            .find(|t| t.charter.charter_version == in_force)
        {
            warnings.extend(self.group_problem(bloc, &t.charter.members));
            let wanted = DisclosureLevel::ALL
                .into_iter()
                .find(|l| l.as_str() == t.charter.disclosure);
            for m in &t.charter.members {
                let Ok(peer) = m.parse::<AgencyId>() else {
                    continue;
                };
                if peer == *self.me() {
                    continue;
                }
                match (self.disclosure.get(&peer), wanted) {
                    (None, _) => {
                        warnings.push(format!("{m} is not a configured peer of this node"));
                    }
                    (Some(have), Some(want)) if *have < want => warnings.push(format!(
                        "this node grants {m} {} disclosure, below the charter's {}",
                        have.as_str(),
                        want.as_str()
                    )),
                    _ => {}
                }
            }
        }
        Ok(BlocStatusResponse {
            bloc: bloc.to_owned(),
            in_force,
            versions: versions
                .into_iter()
                .rev()
                .map(|t| CharterVersionView {
                    hash: hex::encode(t.hash),
                    complete: t.complete(),
                    signed: t.signed,
                    missing: t.missing,
                    charter: Some(t.charter),
                })
                .collect(),
            warnings,
        })
    }

    /// Suspends, reinstates or revokes one of this member's records.
    pub async fn trusted_change(
        &self,
        request: TrustedChangeRequest,
    ) -> Result<IssueNoticeResponse, Status> {
        let me = self.me().to_string();
        let current = self
            .charters
            .notices
            .latest(&me, &request.serial)
            .map_err(Status::from)?
            .as_ref()
            .and_then(notice_of)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no trusted-operator record of this agency has serial {}",
                    request.serial
                ))
            })?;
        let Some(Body::Trusted(mut record)) = current.body else {
            return Err(invalid(format!(
                "{} is not a trusted-operator record",
                request.serial
            )));
        };
        let change = match request.action.as_str() {
            "revoke" => Change::Revoke(request.reason.clone()),
            "suspend" | "reinstate" => {
                record.standing = if request.action == "suspend" {
                    "suspended"
                } else {
                    "valid"
                }
                .into();
                record.reason = request.reason.clone();
                Change::Amend(Box::new(Notice {
                    body: Some(Body::Trusted(record)),
                    ..Notice::default()
                }))
            }
            _ => return Err(invalid("action: suspend, reinstate or revoke")),
        };
        let issued = self.issuer.change(&request.serial, change)?;
        self.issuer.publish(&issued.recipients).await?;
        tracing::info!(serial = %issued.serial, action = %request.action, "trusted-operator record changed");
        Ok(self.response(issued))
    }

    /// Trusted-operator records held, own and received, newest version of each.
    pub fn trusted_list(&self, origin: &str) -> Result<TrustedListResponse, Status> {
        let mut origins: BTreeSet<String> = self
            .charters
            .notices
            .counts()
            .map_err(Status::from)?
            .into_keys()
            .collect();
        origins.insert(self.me().to_string());
        let mut records: Vec<NoticeView> = Vec::new();
        for o in origins.iter().filter(|o| origin.is_empty() || *o == origin) {
            for stored in self
                .charters
                .notices
                .list_latest_with_prefix(o, trusted::SERIAL_PREFIX)
                .map_err(Status::from)?
            {
                if let Some(v) = view(stored)
                    && matches!(
                        v.notice.as_ref().and_then(|n| n.body.as_ref()),
                        Some(Body::Trusted(_))
                    )
                {
                    records.push(v);
                }
            }
        }
        Ok(TrustedListResponse { records })
    }

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

    /// The bloc view: this member's figures and every other member's, signed.
    pub async fn pilot_report(
        &self,
        request: &PilotReportRequest,
    ) -> Result<PilotReportResponse, Status> {
        let t: Tallied = self.charters.in_force(&request.bloc)?;
        let period = Period::parse(&request.from, &request.to)?;
        let own = self.pilot.own(&request.bloc, period)?;
        let sealed = pilot::seal(&own, &self.pilot.signing);
        let mut members = vec![MemberFigures {
            agency: self.me().to_string(),
            figures: Some(own),
            signature: hex::encode(&sealed.signature),
            key_id: sealed.key_id,
            problem: String::new(),
        }];
        let asks = t
            .charter
            .members
            .iter()
            .filter(|m| *m != self.me().as_str())
            .map(|m| self.member_figures(m, &request.bloc, period));
        members.extend(futures::future::join_all(asks).await);
        Ok(PilotReportResponse {
            bloc: request.bloc.clone(),
            charter_version: t.charter.charter_version,
            members,
        })
    }

    async fn member_figures(&self, member: &str, bloc: &str, period: Period) -> MemberFigures {
        let mut out = MemberFigures {
            agency: member.to_owned(),
            ..MemberFigures::default()
        };
        let Ok(peer) = member.parse::<AgencyId>() else {
            out.problem = "not an agency id".into();
            return out;
        };
        let Some(key) = self.pinned.get(&peer) else {
            out.problem =
                "not a configured peer of this node: no pinned key to verify its figures".into();
            return out;
        };
        let ask = self.client.pilot_figures(
            &peer,
            PilotFiguresRequest {
                bloc: bloc.to_owned(),
                from: dates::format(period.from),
                to: dates::format(period.to),
            },
        );
        match tokio::time::timeout(FIGURES_TIMEOUT, ask).await {
            Err(_) => out.problem = "did not answer in time".into(),
            Ok(Err(e)) => out.problem = e.to_string(),
            Ok(Ok(msg)) => match pilot::open(&msg, &key, member, bloc, period) {
                Ok(f) => {
                    out.figures = Some(f);
                    out.signature = hex::encode(&msg.signature);
                    out.key_id = msg.key_id;
                }
                Err(e) => out.problem = e.to_string(),
            },
        }
        out
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
