//! The configured peers: what we know of each, and a channel to reach it.
//!
//! Reachability, last seen and round trip are updated by the Hello exchange in
//! both directions. Channels are built from the current TLS material and
//! rebuilt after a reload. Each peer's pinned signing key is in
//! [`PinnedKeys`]. Nothing here decides what a peer may see.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tonic::transport::Channel;

use crate::config::{NodeConfig, PeerConfig};
use crate::identity::AgencyId;
use crate::signing::PublicKey;
use crate::tls::TlsState;

/// Why no channel to a peer could be made.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{0} is not a configured peer")]
    NotConfigured(AgencyId),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Dial(#[from] crate::dial::DialError),
}

/// The peers' pinned Ed25519 keys (from config): a notice or a consultation
/// step is accepted from a peer only under its key. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct PinnedKeys(Arc<BTreeMap<AgencyId, PublicKey>>);

impl PinnedKeys {
    pub fn new(keys: impl IntoIterator<Item = (AgencyId, PublicKey)>) -> Self {
        Self(Arc::new(keys.into_iter().collect()))
    }

    /// From a validated config.
    pub fn from_config(config: &NodeConfig) -> Self {
        Self::new(config.peers.iter().filter_map(|p| {
            // validate() has checked both.
            Some((
                p.agency.parse().ok()?,
                PublicKey::from_hex(&p.signing_key).ok()?,
            ))
        }))
    }

    /// The pinned key of `peer`, if configured.
    pub fn get(&self, peer: &AgencyId) -> Option<PublicKey> {
        self.0.get(peer).copied()
    }
}

/// What a peer said about itself in its last Hello.
#[derive(Debug, Clone, Default)]
pub struct PeerInfo {
    pub software_version: String,
    pub protocol_version: u32,
    pub signing_key_id: String,
    pub capabilities: Vec<String>,
}

/// The live view of one peer.
#[derive(Debug, Clone, Default)]
pub struct PeerState {
    pub reachable: bool,
    /// Unix milliseconds of the last successful exchange either way.
    pub last_seen_ms: i64,
    pub rtt: Option<Duration>,
    pub last_error: Option<String>,
    pub info: Option<PeerInfo>,
}

struct Entry {
    config: PeerConfig,
    state: PeerState,
    channel: Option<(u64, Channel)>,
}

/// Every configured peer.
pub struct PeerTable {
    entries: Mutex<BTreeMap<AgencyId, Entry>>,
    connect_timeout: Duration,
}

impl std::fmt::Debug for PeerTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTable").finish_non_exhaustive()
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl PeerTable {
    /// Builds the table from a validated config.
    pub fn new(config: &NodeConfig) -> Self {
        Self::with_peers(&config.peers, config.hello_timeout())
    }

    /// The table of `peers` (validated), dialled with `connect_timeout`.
    pub fn with_peers(peers: &[PeerConfig], connect_timeout: Duration) -> Self {
        let mut entries = BTreeMap::new();
        for peer in peers {
            // validate() has checked it.
            let Ok(agency) = peer.agency.parse::<AgencyId>() else {
                continue;
            };
            entries.insert(
                agency,
                Entry {
                    config: peer.clone(),
                    state: PeerState::default(),
                    channel: None,
                },
            );
        }
        Self {
            entries: Mutex::new(entries),
            connect_timeout,
        }
    }

    /// A table of `peers` at made-up endpoints (never dialled in unit tests).
    #[cfg(test)]
    pub fn for_tests(peers: &[AgencyId]) -> Self {
        let configs: Vec<PeerConfig> = peers
            .iter()
            .map(|a| PeerConfig {
                agency: a.to_string(),
                endpoint: "127.0.0.1:9".into(),
                server_name: None,
                signing_key: String::new(),
                disclosure: None,
                keys_per_day: None,
                burst: None,
            })
            .collect();
        Self::with_peers(&configs, Duration::from_secs(1))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<AgencyId, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn agencies(&self) -> Vec<AgencyId> {
        self.lock().keys().cloned().collect()
    }

    pub fn contains(&self, agency: &AgencyId) -> bool {
        self.lock().contains_key(agency)
    }

    /// Whether the peer answered last time.
    pub fn is_reachable(&self, agency: &AgencyId) -> bool {
        self.lock().get(agency).is_some_and(|e| e.state.reachable)
    }

    /// A channel to the peer, built with the current TLS material.
    pub fn channel(&self, agency: &AgencyId, tls: &TlsState) -> Result<Channel, ChannelError> {
        let snapshot = tls.current();
        let mut entries = self.lock();
        let entry = entries
            .get_mut(agency)
            .ok_or_else(|| ChannelError::NotConfigured(agency.clone()))?;
        if let Some((generation, channel)) = &entry.channel
            && *generation == snapshot.generation
        {
            return Ok(channel.clone());
        }
        let client = snapshot.material.client_config(agency)?;
        let channel = crate::dial::channel(
            &entry.config.endpoint,
            entry.config.server_name.as_deref(),
            client,
            self.connect_timeout,
        )?;
        entry.channel = Some((snapshot.generation, channel.clone()));
        Ok(channel)
    }

    /// Records a successful exchange.
    pub fn seen(&self, agency: &AgencyId, rtt: Option<Duration>, info: Option<PeerInfo>) {
        if let Some(entry) = self.lock().get_mut(agency) {
            entry.state.reachable = true;
            entry.state.last_seen_ms = now_ms();
            entry.state.last_error = None;
            if rtt.is_some() {
                entry.state.rtt = rtt;
            }
            if info.is_some() {
                entry.state.info = info;
            }
        }
    }

    /// Records a failed attempt to reach the peer.
    pub fn failed(&self, agency: &AgencyId, why: String) {
        if let Some(entry) = self.lock().get_mut(agency) {
            entry.state.reachable = false;
            entry.state.last_error = Some(why);
        }
    }

    /// A snapshot for Status: (agency, endpoint, state).
    pub fn snapshot(&self) -> Vec<(AgencyId, String, PeerState)> {
        self.lock()
            .iter()
            .map(|(a, e)| (a.clone(), e.config.endpoint.clone(), e.state.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{agency, signing_key};

    #[test]
    fn a_peer_is_reachable_after_an_exchange_and_not_after_a_failure() {
        let b = agency("FR-SBDU");
        let table = PeerTable::for_tests(std::slice::from_ref(&b));
        assert!(table.contains(&b) && !table.is_reachable(&b));
        table.seen(&b, Some(Duration::from_millis(3)), None);
        assert!(table.is_reachable(&b));
        table.failed(&b, "connection refused".into());
        let (_, endpoint, state) = table.snapshot().remove(0);
        assert_eq!(endpoint, "127.0.0.1:9");
        assert!(!state.reachable);
        assert_eq!(
            state.rtt,
            Some(Duration::from_millis(3)),
            "the last known round trip"
        );
        assert_eq!(state.last_error.as_deref(), Some("connection refused"));
        // A stranger is not in the table: nothing to record.
        table.seen(&agency("US-BIS"), None, None);
        assert_eq!(table.agencies(), [b]);
    }

    #[test]
    fn pinned_keys_are_the_configured_ones_only() {
        let key = signing_key();
        let pinned = PinnedKeys::new([(agency("FR-SBDU"), *key.public())]);
        assert_eq!(
            pinned.get(&agency("FR-SBDU")).map(|k| k.key_id()),
            Some(key.public().key_id())
        );
        assert!(pinned.get(&agency("US-BIS")).is_none());
    }
}
