//! Where a member's pilot figures come from: its applications, its
//! consultations and its grant notices, for a bloc whose charter is in
//! force. Serves both this node's own line of the report and a member's
//! request over the federation (`Federation.PilotFigures`).

use std::sync::Arc;

use tessera_proto::v1::{Notice, PilotFigures, SignedMessage, notice::Body};

use super::BlocError;
use super::applications::ApplicationBook;
use super::charters::{Charters, notice_of};
use super::pilot::{self, Period, Sources};
use crate::consult::store::ConsultStore;
use crate::identity::AgencyId;
use crate::signing::SigningKey;

/// The handles a member's figures are computed from.
#[derive(Debug)]
pub struct PilotSource {
    pub charters: Arc<Charters>,
    pub applications: Arc<ApplicationBook>,
    pub consults: Arc<ConsultStore>,
    pub signing: Arc<SigningKey>,
}

impl PilotSource {
    /// This member's figures for `bloc` over `period`.
    pub fn own(&self, bloc: &str, period: Period) -> Result<PilotFigures, BlocError> {
        let t = self.charters.in_force(bloc)?;
        let agency = self.charters.agency.to_string();
        let applications = self.applications.of_bloc(bloc)?;
        let consultations = self.consults.list()?;
        let grants: Vec<_> = self
            .charters
            .notices
            .list_latest(Some(&agency))?
            .iter()
            .filter_map(notice_of)
            .filter_map(|n: Notice| match n.body {
                Some(Body::Grant(g)) => Some(g),
                _ => None,
            })
            .collect();
        Ok(pilot::figures(
            &Sources {
                agency: &agency,
                charter: &t.charter,
                applications: &applications,
                consultations: &consultations,
                grants: &grants,
            },
            period,
        ))
    }

    /// Signed figures for `caller`, which must be a member of the charter
    /// in force.
    pub fn for_member(
        &self,
        caller: &AgencyId,
        bloc: &str,
        period: Period,
    ) -> Result<SignedMessage, BlocError> {
        let t = self.charters.in_force(bloc)?;
        if !t.charter.members.iter().any(|m| m == caller.as_str()) {
            return Err(BlocError::NotMember {
                bloc: bloc.to_owned(),
                agency: caller.to_string(),
            });
        }
        Ok(pilot::seal(&self.own(bloc, period)?, &self.signing))
    }
}
