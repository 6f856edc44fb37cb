//! Trusted operators among an application's parties: a party is one when
//! any of its identifiers is one of a member's record's identifiers. A
//! record that is not valid is named in the reasons and never counts.

use tessera_proto::v1::{Application, TrustedHit};
use tonic::Status;

use super::Checking;
use crate::bloc::charters::HeldRecord;
use crate::bloc::trusted;
use crate::service::operator::bloc::BlocDesk;

impl BlocDesk {
    /// The valid records the application's parties match; records of
    /// another standing go to `reasons`.
    pub(super) fn trusted_hits(
        &self,
        c: &Checking<'_>,
        app: &Application,
        reasons: &mut Vec<String>,
    ) -> Result<Vec<TrustedHit>, Status> {
        let records = self.charters.trusted(c.t)?;
        let mut hits = Vec::new();
        for (i, rp) in app.parties.iter().enumerate() {
            let Some(party) = &rp.party else { continue };
            for held in &records {
                let Some(listed) = &held.record.party else {
                    continue;
                };
                let on = trusted::matched_on(party, listed);
                if on.is_empty() || !(held.origin == c.me || c.recognises("trusted")) {
                    continue;
                }
                if held.record.standing != "valid" {
                    reasons.push(format!(
                        "party {i} is in {}'s {} programme but its status is {}",
                        held.origin, held.record.programme, held.record.standing
                    ));
                    continue;
                }
                hits.push(hit(c, i as u32, held, on));
            }
        }
        Ok(hits)
    }
}

fn hit(c: &Checking<'_>, party: u32, held: &HeldRecord, matched_on: Vec<String>) -> TrustedHit {
    TrustedHit {
        party,
        member: held.origin.clone(),
        serial: held.serial.clone(),
        programme: held.record.programme.clone(),
        validated_on: held.record.validated_on.clone(),
        scope_items: held.record.scope_items.clone(),
        scope_destinations: held.record.scope_destinations.clone(),
        in_scope: trusted::in_scope(&held.record, &c.tx.control_entries, &c.tx.destination),
        matched_on,
    }
}
