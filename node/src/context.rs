//! The state every part of a running node shares.

use std::net::SocketAddr;
use std::sync::Arc;

use tessera_proto::v1::NodeInfo;

use crate::config::NodeConfig;
use crate::identity::AgencyId;
use crate::peers::PeerTable;
use crate::signing::SigningKey;
use crate::store::Store;
use crate::tls::TlsState;

/// The software version reported to peers and operators.
pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What this node can do, announced in Hello.
pub const CAPABILITIES: &[&str] = &["hello/1"];

/// Shared node state.
#[derive(Debug)]
pub struct Context {
    pub config: NodeConfig,
    pub agency: AgencyId,
    pub signing: SigningKey,
    pub tls: Arc<TlsState>,
    pub peers: Arc<PeerTable>,
    pub store: Store,
    pub federation_addr: SocketAddr,
    pub operator_addr: SocketAddr,
    /// Unix seconds.
    pub started_at: i64,
}

impl Context {
    /// How this node introduces itself.
    pub fn node_info(&self) -> NodeInfo {
        NodeInfo {
            agency: self.agency.to_string(),
            software_version: SOFTWARE_VERSION.into(),
            protocol_version: tessera_proto::PROTOCOL_VERSION,
            signing_key_id: self.signing.public().key_id(),
            capabilities: CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
        }
    }
}
