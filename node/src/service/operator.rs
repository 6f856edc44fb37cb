//! The Operator surface (own CLI ↔ own node).

use std::sync::Arc;

use tessera_proto::v1::operator_server::Operator;
use tessera_proto::v1::{PeerStatus, StatusRequest, StatusResponse};
use tonic::{Request, Response, Status};

use crate::context::{Context, SOFTWARE_VERSION};

/// Operator handlers.
#[derive(Debug, Clone)]
pub struct OperatorService {
    pub ctx: Arc<Context>,
}

#[tonic::async_trait]
impl Operator for OperatorService {
    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        super::caller(&request)?;
        let peers = self
            .ctx
            .peers
            .snapshot()
            .into_iter()
            .map(|(agency, endpoint, state)| {
                let info = state.info.unwrap_or_default();
                PeerStatus {
                    agency: agency.to_string(),
                    endpoint,
                    reachable: state.reachable,
                    last_seen_ms: state.last_seen_ms,
                    rtt_us: state.rtt.map_or(0, |d| d.as_micros() as u64),
                    last_error: state.last_error.unwrap_or_default(),
                    software_version: info.software_version,
                    protocol_version: info.protocol_version,
                    signing_key_id: info.signing_key_id,
                    capabilities: info.capabilities,
                }
            })
            .collect();
        Ok(Response::new(StatusResponse {
            agency: self.ctx.agency.to_string(),
            software_version: SOFTWARE_VERSION.into(),
            protocol_version: tessera_proto::PROTOCOL_VERSION,
            signing_key_id: self.ctx.signing.public().key_id(),
            federation_address: self.ctx.federation_addr.to_string(),
            peers,
            started_at: self.ctx.started_at,
        }))
    }
}
