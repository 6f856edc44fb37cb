//! `Status`: this node's identity and what it knows of each peer.

use std::net::SocketAddr;
use std::sync::Arc;

use tessera_proto::v1::{PeerStatus, StatusResponse};
use tonic::Status;

use crate::exchange::hello::SOFTWARE_VERSION;
use crate::identity::AgencyId;
use crate::matching::holder::HolderIndex;
use crate::matching::replica::Replicas;
use crate::notice::store::NoticeStore;
use crate::peers::PeerTable;

/// What the status report reads.
#[derive(Debug)]
pub struct NodeStatus {
    pub agency: AgencyId,
    pub signing_key_id: String,
    pub federation_addr: SocketAddr,
    /// Unix seconds.
    pub started_at: i64,
    pub peers: Arc<PeerTable>,
    pub notices: Arc<NoticeStore>,
    pub replicas: Arc<Replicas>,
    pub holder: Arc<HolderIndex>,
}

impl NodeStatus {
    /// The report; a count that cannot be read fails it (never shows 0).
    pub fn report(&self) -> Result<StatusResponse, Status> {
        let mut peers = Vec::new();
        for (agency, endpoint, state) in self.peers.snapshot() {
            let info = state.info.unwrap_or_default();
            let replica = self.replicas.get(&agency);
            peers.push(PeerStatus {
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
                outbox: self.notices.outbox_len(&agency)? as u64,
                cursor: self.notices.cursor(&agency)?,
                index_rows: replica.as_ref().map_or(0, |r| r.lookup.len() as u64),
                index_epoch: replica.as_ref().map_or(0, |r| r.epoch),
                served_rows: self.holder.live_rows(&agency)? as u64,
            });
        }
        Ok(StatusResponse {
            agency: self.agency.to_string(),
            software_version: SOFTWARE_VERSION.into(),
            protocol_version: tessera_proto::PROTOCOL_VERSION,
            signing_key_id: self.signing_key_id.clone(),
            federation_address: self.federation_addr.to_string(),
            peers,
            started_at: self.started_at,
            notices_by_origin: self.notices.counts()?.into_iter().collect(),
            unindexed_notices: self.holder.unindexed(&self.notices)?,
        })
    }
}
