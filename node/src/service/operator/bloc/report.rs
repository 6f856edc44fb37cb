//! The pilot report: this member's figures and every other member's,
//! asked over the federation and verified under each member's pinned key.

use std::time::Duration;

use tessera_proto::v1::{
    MemberFigures, PilotAnnualRequest, PilotAnnualResponse, PilotFiguresRequest,
    PilotReportRequest, PilotReportResponse,
};
use tonic::Status;

use super::BlocDesk;
use crate::bloc::charter::Tallied;
use crate::bloc::pilot::{self, Period};
use crate::identity::AgencyId;
use crate::notice::dates;

/// How long a member has to send its pilot figures.
const FIGURES_TIMEOUT: Duration = Duration::from_secs(10);

impl BlocDesk {
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

    /// This member's annual-report figures: its own records only, asked of
    /// no one.
    pub fn pilot_annual(
        &self,
        request: &PilotAnnualRequest,
    ) -> Result<PilotAnnualResponse, Status> {
        let period = Period::parse(&request.from, &request.to)?;
        Ok(self.pilot.annual(period)?)
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
