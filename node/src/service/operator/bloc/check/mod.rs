//! The application check and the decision on an application: screening
//! through [`MatchingDesk::screen`](super::super::matching::MatchingDesk::screen),
//! judging matched denials with the charter's rule, trusted operators by
//! identifier, and the record kept for the pilot figures (never a party).
//!
//! Layout: this file (the check's steps in order, the record, decisions),
//! `application` (what an application must hold), `coverage` (members that
//! did not answer), `denials` (matched denials judged), `operators`
//! (trusted-operator hits), `answer` (the answer and its reasons).

mod answer;
mod application;
mod coverage;
mod denials;
mod operators;

use tessera_proto::v1::{
    Application, ApplicationCheckRequest, ApplicationCheckResponse, ApplicationDecideRequest,
    ApplicationDecideResponse, IdenticalDenial, ScreenRequest, ScreenResponse, TrustedHit,
};
use time::Date;
use tonic::Status;

use super::{BlocDesk, invalid};
use crate::bloc::BlocError;
use crate::bloc::applications::ApplicationRecord;
use crate::bloc::charter::Tallied;
use crate::bloc::pilot;
use crate::bloc::rule::{Rule, Transaction};
use crate::notice::dates;
use answer::Findings;

/// What every step of one check reads.
struct Checking<'a> {
    t: &'a Tallied,
    me: String,
    /// The other members.
    others: Vec<String>,
    rule: Rule,
    today: Date,
    tx: Transaction,
}

impl Checking<'_> {
    fn recognises(&self, kind: &str) -> bool {
        self.t.charter.recognised.iter().any(|r| r == kind)
    }
}

impl BlocDesk {
    /// The licensing officer's check before deciding.
    pub async fn check(
        &self,
        request: ApplicationCheckRequest,
    ) -> Result<ApplicationCheckResponse, Status> {
        let bloc = self.bloc_or_only(&request.bloc)?;
        let t = self.charters.in_force(&bloc)?;
        let app = request
            .application
            .ok_or_else(|| invalid("application: missing"))?;
        let received_on = application::validate(&app)?;
        let screened = self.screen_parties(&app, request.threshold).await?;
        let me = self.me().to_string();
        let c = Checking {
            t: &t,
            others: t
                .charter
                .members
                .iter()
                .filter(|m| **m != me)
                .cloned()
                .collect(),
            me,
            rule: Rule::from_name(&t.charter.identical_rule).unwrap_or(Rule::IdenticalV1),
            today: dates::today(),
            tx: application::transaction(&app),
        };
        let unanswered = coverage::unanswered(&screened, &c.others);
        let mut reasons = Vec::new();
        let mut denials = self.judge_matches(&c, &screened, &mut reasons)?;
        let hits = self.trusted_hits(&c, &app, &mut reasons)?;
        let findings = Findings {
            me: &c.me,
            denials: &denials,
            hits: &hits,
            unanswered: &unanswered,
        };
        let answer = findings.answer();
        let to_consult = findings.to_consult();
        reasons.extend(findings.reasons());
        if answer == "clear" {
            reasons.insert(0, answer::clear_line(app.parties.len(), &c.others));
        }
        if request.consult {
            self.open_consultations(&c, &app, &to_consult, &mut denials)
                .await?;
        }
        self.record(&c, &app, received_on, answer, &denials, &hits)?;
        tracing::info!(bloc = %bloc, answer, members = c.others.len(), "application checked");
        Ok(ApplicationCheckResponse {
            answer: answer.to_owned(),
            reasons,
            screened: screened
                .screened_peers
                .into_iter()
                .filter(|p| c.others.contains(p))
                .collect(),
            denials,
            trusted: hits,
            unanswered,
            charter_version: t.charter.charter_version,
            rule: c.rule.name().to_owned(),
            parties: app.parties.len() as u32,
        })
    }

    /// The bloc named, or the only one this agency signed a charter of.
    fn bloc_or_only(&self, named: &str) -> Result<String, BlocError> {
        if named.is_empty() {
            self.charters.only_bloc()
        } else {
            Ok(named.to_owned())
        }
    }

    /// Screens every party against every member, as `tessera screen` does.
    async fn screen_parties(
        &self,
        app: &Application,
        threshold: f64,
    ) -> Result<ScreenResponse, Status> {
        self.matching
            .screen(&ScreenRequest {
                parties: app
                    .parties
                    .iter()
                    .filter_map(|rp| rp.party.clone())
                    .collect(),
                threshold,
            })
            .await
    }

    /// Opens a consultation for each denial of `to_consult`, with the
    /// charter's deadline; the summary holds no party.
    async fn open_consultations(
        &self,
        c: &Checking<'_>,
        app: &Application,
        to_consult: &[usize],
        denials: &mut [IdenticalDenial],
    ) -> Result<(), Status> {
        let summary = format!(
            "application {}: control entries {}; destination {}",
            app.reference,
            c.tx.control_entries.join(", "),
            c.tx.destination
        );
        for &i in to_consult {
            let d = &denials[i];
            let view = self
                .consultations
                .open(&d.origin, &d.serial, &summary, c.t.charter.consult_days)
                .await?;
            denials[i].consultation_id = view.consultation.map(|c| c.id).unwrap_or_default();
        }
        Ok(())
    }

    /// Keeps the check for the pilot figures and the annual report: counts,
    /// dates, control entries and destination, never a party. A decision
    /// already recorded stays.
    fn record(
        &self,
        c: &Checking<'_>,
        app: &Application,
        received_on: Date,
        answer: &str,
        denials: &[IdenticalDenial],
        hits: &[TrustedHit],
    ) -> Result<(), BlocError> {
        let previous = self.applications.get(&app.reference)?.unwrap_or_default();
        let opened = denials
            .iter()
            .filter(|d| !d.consultation_id.is_empty())
            .map(|d| d.consultation_id.clone());
        let record = ApplicationRecord {
            reference: app.reference.clone(),
            bloc: c.t.charter.bloc.clone(),
            received_on: dates::format(received_on),
            checked_on: dates::format(c.today),
            answer: answer.to_owned(),
            bloc_denials_matched: denials.iter().filter(|d| d.member != c.me).count() as u32,
            trusted_hits: hits.len() as u32,
            control_entries: c.tx.control_entries.clone(),
            destination: c.tx.destination.clone(),
            consultations: opened.chain(previous.consultations).collect(),
            decision: previous.decision,
            decided_on: previous.decided_on,
        };
        self.applications.put(&record)
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
