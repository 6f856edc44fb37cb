//! The configured peers: what we know of each, and a channel to reach it.
//!
//! Reachability, last seen and round trip are updated by the Hello exchange in
//! both directions. Channels are built from the current TLS material and
//! rebuilt after a reload. Nothing here decides what a peer may see.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tonic::transport::Channel;

use crate::config::{NodeConfig, PeerConfig};
use crate::identity::AgencyId;
use crate::signing::PublicKey;
use crate::tls::TlsState;

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
    signing_key: PublicKey,
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
        let mut entries = BTreeMap::new();
        for peer in &config.peers {
            // validate() has checked both.
            let (Ok(agency), Ok(signing_key)) = (
                peer.agency.parse::<AgencyId>(),
                PublicKey::from_hex(&peer.signing_key),
            ) else {
                continue;
            };
            entries.insert(
                agency,
                Entry {
                    config: peer.clone(),
                    signing_key,
                    state: PeerState::default(),
                    channel: None,
                },
            );
        }
        Self {
            entries: Mutex::new(entries),
            connect_timeout: config.hello_timeout(),
        }
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

    /// The pinned signing key of a peer.
    pub fn signing_key(&self, agency: &AgencyId) -> Option<PublicKey> {
        self.lock().get(agency).map(|e| e.signing_key)
    }

    /// A channel to the peer, built with the current TLS material.
    pub fn channel(&self, agency: &AgencyId, tls: &TlsState) -> Result<Channel, String> {
        let snapshot = tls.current();
        let mut entries = self.lock();
        let entry = entries
            .get_mut(agency)
            .ok_or_else(|| format!("{agency} is not a configured peer"))?;
        if let Some((generation, channel)) = &entry.channel
            && *generation == snapshot.generation
        {
            return Ok(channel.clone());
        }
        let client = snapshot
            .material
            .client_config(agency)
            .map_err(|e| e.to_string())?;
        let channel = crate::dial::channel(
            &entry.config.endpoint,
            entry.config.server_name.as_deref(),
            client,
            self.connect_timeout,
        )
        .map_err(|e| e.to_string())?;
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
