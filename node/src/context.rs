//! The state every part of a running node shares.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Notify;

use tessera_proto::v1::NodeInfo;

use crate::audit::{Action, AuditLog};
use crate::config::NodeConfig;
use crate::identity::AgencyId;
use crate::matching::holder::HolderIndex;
use crate::matching::keys::KeyRing;
use crate::matching::replica::Replicas;
use crate::matching::watch::WatchStore;
use crate::notice::store::NoticeStore;
use crate::peers::PeerTable;
use crate::privacy::QueryBudget;
use crate::signing::SigningKey;
use crate::store::Store;
use crate::tls::TlsState;

/// The software version reported to peers and operators.
pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What this node can do, announced in Hello.
pub const CAPABILITIES: &[&str] = &["hello/1", "notices/1", "voprf-ristretto255-sha512/1"];

/// Signals to a peer's workers that there is work.
#[derive(Debug, Default)]
pub struct Wakers {
    pub push: Notify,
    pub pull: Notify,
    pub consult: Notify,
    pub deconflict: Notify,
}

/// Shared node state.
#[derive(Debug)]
pub struct Context {
    pub config: NodeConfig,
    pub agency: AgencyId,
    pub signing: Arc<SigningKey>,
    pub tls: Arc<TlsState>,
    pub peers: Arc<PeerTable>,
    pub store: Store,
    pub notices: NoticeStore,
    pub wakers: BTreeMap<AgencyId, Arc<Wakers>>,
    /// OPRF keys of the peers we serve, and their indexes.
    pub keys: KeyRing,
    pub holder: HolderIndex,
    /// Our copies of the peers' indexes for us.
    pub replicas: Replicas,
    pub watch: WatchStore,
    pub audit: AuditLog,
    pub consults: crate::consult::store::ConsultStore,
    pub budgets: std::sync::Mutex<BTreeMap<AgencyId, QueryBudget>>,
    /// Wakes the indexer after our own notices changed.
    pub indexer_wake: Notify,
    /// Wakes the review-date check after our own notices changed.
    pub review_wake: Notify,
    pub federation_addr: SocketAddr,
    pub operator_addr: SocketAddr,
    /// Unix seconds.
    pub started_at: i64,
}

impl Context {
    /// The wakers of `peer` (a detached set for an unknown peer).
    pub fn wakers(&self, peer: &AgencyId) -> Arc<Wakers> {
        self.wakers.get(peer).cloned().unwrap_or_default()
    }

    /// Appends to the audit chain; a failure is logged, never silent.
    /// `details` carry counts, serials, agency ids and hashes only.
    pub fn audit_event(
        &self,
        actor: &str,
        action: Action,
        object: &str,
        details: &serde_json::Value,
    ) {
        if let Err(error) = self.audit.record(actor, action, object, details) {
            tracing::error!(%error, action = action.as_str(), "cannot append to the audit chain");
        }
    }

    /// Audits (and counts) an alert raised on our side.
    pub fn audit_alert(&self, peer: &AgencyId, alert: &tessera_proto::v1::Alert) {
        crate::telemetry::alert(&alert.kind);
        let m = alert.r#match.clone().unwrap_or_default();
        let action = if alert.kind == "deconfliction" {
            Action::DeconflictionAlert
        } else {
            Action::MatchDisclosed
        };
        self.audit_event(
            peer.as_str(),
            action,
            &format!("{}/{}", m.origin, m.serial),
            &serde_json::json!({ "alert": alert.seq, "watch": alert.watch_id, "disclosure": m.disclosure }),
        );
    }

    /// Tells the outbox workers of `peers` that new notices wait.
    pub fn wake_push(&self, peers: &[AgencyId]) {
        for p in peers {
            if let Some(w) = self.wakers.get(p) {
                w.push.notify_one();
            }
        }
    }

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
