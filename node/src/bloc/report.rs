//! Where a member's pilot figures come from: its applications, its
//! consultations and its grant notices, for a bloc whose charter is in
//! force. Serves both this node's own line of the report and a member's
//! request over the federation (`Federation.PilotFigures`).

use std::sync::Arc;

use tessera_proto::v1::{
    DenialNotice, Notice, PilotAnnualResponse, PilotFigures, SignedMessage, notice::Body,
};

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
    /// The bodies of this member's own notices that `pick` keeps, newest
    /// version of each.
    fn own_bodies<T>(&self, pick: impl Fn(Body) -> Option<T>) -> Result<Vec<T>, BlocError> {
        Ok(self
            .charters
            .notices
            .list_latest(Some(self.charters.agency.as_str()))?
            .iter()
            .filter_map(notice_of)
            .filter_map(|n: Notice| n.body.and_then(&pick))
            .collect())
    }

    /// This member's annual-report figures over `period`, from every
    /// application it decided and every denial it issued.
    pub fn annual(&self, period: Period) -> Result<PilotAnnualResponse, BlocError> {
        let denials: Vec<DenialNotice> = self.own_bodies(|b| match b {
            Body::Denial(d) => Some(d),
            _ => None,
        })?;
        Ok(super::annual::report(
            self.charters.agency.as_str(),
            period,
            &self.applications.all()?,
            &denials,
        ))
    }

    /// This member's figures for `bloc` over `period`.
    pub fn own(&self, bloc: &str, period: Period) -> Result<PilotFigures, BlocError> {
        let t = self.charters.in_force(bloc)?;
        let agency = self.charters.agency.to_string();
        let applications = self.applications.of_bloc(bloc)?;
        let consultations = self.consults.list()?;
        let grants = self.own_bodies(|b| match b {
            Body::Grant(g) => Some(g),
            _ => None,
        })?;
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
