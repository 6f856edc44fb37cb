//! The operator's review of results: false positives (marked, cleared,
//! listed, and left out of screening results here; the watch list leaves
//! them out where it raises alerts) and alert reviews. Marking and clearing
//! are audited with the party's keyed digest, never the party.

use std::sync::Arc;

use tessera_proto::v1::{
    AlertReview, AlertReviewsResponse, ClearFalsePositiveRequest, FalsePositive,
    ListFalsePositivesResponse, MarkFalsePositiveRequest, Party as WireParty, PartyKind,
    ReviewAlertRequest, ScreenResponse, mark_false_positive_request::Subject,
};
use tonic::Status;

use crate::audit::{Action, AuditSink};
use crate::identity::AgencyId;
use crate::matching::watch::WatchStore;
use crate::notice::json::{party_from_wire, party_to_wire};
use crate::review::{AlertReviews, FalsePositives, ReviewError};

/// The review calls' handles.
#[derive(Debug)]
pub struct ReviewDesk {
    pub agency: AgencyId,
    pub false_positives: FalsePositives,
    pub reviews: AlertReviews,
    pub watch: Arc<WatchStore>,
    pub audit: AuditSink,
}

/// A party as the node stores it (what the watch list keeps), so that the
/// same party has the same digest however it arrives.
fn normalised(p: &WireParty) -> WireParty {
    let mut p = p.clone();
    if p.kind == 0 {
        p.kind = PartyKind::Organisation as i32;
    }
    party_to_wire(&party_from_wire(&p))
}

impl ReviewDesk {
    pub fn mark(&self, request: MarkFalsePositiveRequest) -> Result<FalsePositive, Status> {
        let party = match request.subject {
            Some(Subject::Party(p)) => {
                crate::notice::validate::party("party", &p)?;
                normalised(&p)
            }
            Some(Subject::WatchId(id)) => self
                .watch
                .get(id)?
                .and_then(|e| e.party)
                .ok_or_else(|| ReviewError::NotFound(format!("watch entry {id}")))?,
            None => {
                return Err(ReviewError::Invalid(
                    "subject: give the party or the watch entry".into(),
                )
                .into());
            }
        };
        let record =
            self.false_positives
                .mark(&party, &request.origin, &request.serial, &request.reason)?;
        self.audit.event(
            self.agency.as_str(),
            Action::FalsePositive,
            &format!("{}/{}", record.origin, record.serial),
            &serde_json::json!({"change": "marked", "party_digest": record.party_digest}),
        );
        tracing::info!(origin = %record.origin, serial = %record.serial, "false positive marked");
        Ok(record)
    }

    pub fn clear(&self, request: &ClearFalsePositiveRequest) -> Result<(), Status> {
        if !self
            .false_positives
            .clear(&request.party_digest, &request.origin, &request.serial)?
        {
            return Err(ReviewError::NotFound(format!(
                "false positive {}/{} for that party",
                request.origin, request.serial
            ))
            .into());
        }
        self.audit.event(
            self.agency.as_str(),
            Action::FalsePositive,
            &format!("{}/{}", request.origin, request.serial),
            &serde_json::json!({"change": "cleared", "party_digest": request.party_digest}),
        );
        Ok(())
    }

    pub fn list(&self) -> Result<ListFalsePositivesResponse, Status> {
        Ok(ListFalsePositivesResponse {
            false_positives: self.false_positives.list()?,
        })
    }

    /// Leaves out of a screening's results the matches marked false positive
    /// for their party (`parties` in request order), counting them per party.
    pub fn suppress(
        &self,
        parties: &[WireParty],
        response: &mut ScreenResponse,
    ) -> Result<(), Status> {
        for result in &mut response.results {
            let Some(party) = parties.get(result.index as usize) else {
                continue;
            };
            let hidden = self.false_positives.for_party(&normalised(party))?;
            let left_out = hidden.retain(&mut result.matches);
            if left_out > 0 {
                response.suppressed.insert(result.index, left_out);
            }
        }
        Ok(())
    }

    pub fn review_alert(&self, request: &ReviewAlertRequest) -> Result<AlertReview, Status> {
        let review = self
            .reviews
            .review(request.seq, request.acknowledge, &request.note)?;
        self.audit.event(
            self.agency.as_str(),
            Action::AlertReviewed,
            &format!("alert {}", request.seq),
            &serde_json::json!({"acknowledged": review.acknowledged, "notes": review.notes.len()}),
        );
        Ok(review)
    }

    pub fn alert_reviews(&self) -> Result<AlertReviewsResponse, Status> {
        Ok(AlertReviewsResponse {
            reviews: self.reviews.list()?,
        })
    }
}
