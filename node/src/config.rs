//! The node's TOML configuration: every key, its default, and its validation.
//!
//! `NodeConfig::load` reads and validates a file before any runtime starts, so
//! a bad key stops the daemon with exit code 64 and a message naming the key.
//! Closed sets (disclosure levels, the log format) are enums that serde
//! refuses to read with a typo, and a parse error names the key it is at
//! (`peers[1].disclosure`); [`NodeConfig::validate`] checks what types cannot
//! (addresses, files, ranges, references between keys).
//! Relative paths are resolved against the directory of the config file.
//! This module owns no I/O beyond reading the config file itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::identity::AgencyId;
use crate::policy::DisclosureLevel;

/// A configuration problem, naming the key and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {}{message}", key_prefix(.key.as_deref()))]
    Parse {
        path: PathBuf,
        /// The key the error is at, when the parser says where.
        key: Option<String>,
        message: String,
    },
    #[error("config key `{key}`: {problem}")]
    Invalid { key: String, problem: String },
}

fn key_prefix(key: Option<&str>) -> String {
    key.map(|k| format!("key `{k}`: ")).unwrap_or_default()
}

/// The dotted path (`peers[1].disclosure`) of the innermost key or value of
/// the TOML `text` that covers byte `at`.
fn key_at(text: &str, at: usize) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    fn walk(table: &DeTable<'_>, at: usize, path: &str, best: &mut Option<String>) {
        for (key, value) in table {
            let here = if path.is_empty() {
                key.get_ref().to_string()
            } else {
                format!("{path}.{}", key.get_ref())
            };
            if key.span().contains(&at) || value.span().contains(&at) {
                *best = Some(here.clone());
            }
            descend(value.get_ref(), at, &here, best);
        }
    }
    fn descend(value: &DeValue<'_>, at: usize, path: &str, best: &mut Option<String>) {
        match value {
            DeValue::Table(t) => walk(t, at, path, best),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let here = format!("{path}[{i}]");
                    if item.span().contains(&at) {
                        *best = Some(here.clone());
                    }
                    descend(item.get_ref(), at, &here, best);
                }
            }
            _ => {}
        }
    }
    let doc = DeTable::parse(text).ok()?;
    let mut best = None;
    walk(doc.get_ref(), at, "", &mut best);
    best
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    #[default]
    Text,
    /// One JSON object per line, for collectors.
    Json,
}

impl ConfigError {
    fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// The whole node configuration (`node.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's agency, e.g. `DE-BAFA`. Must match the SAN URI of `tls.cert`.
    pub agency: String,
    /// Where sled keeps the node's data. Default: `data` beside the config file.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The peer-facing listener.
    pub federation: ListenConfig,
    /// The operator-facing listener (the `tessera` CLI).
    pub operator: ListenConfig,
    pub tls: TlsConfig,
    pub signing: SigningConfig,
    #[serde(default)]
    pub hello: HelloConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub notices: NoticesConfig,
    #[serde(default)]
    pub sync: SyncConfig,
    #[serde(default)]
    pub privacy: PrivacyConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    #[serde(default)]
    pub consult: ConsultConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    /// Sharing groups: name → member agencies. Membership is this node's word,
    /// never a receiver's claim. An empty group reaches nobody.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// The peer agencies this node federates with.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
}

/// A listening address.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// `host:port` to listen on.
    pub listen: String,
}

/// Certificates, keys and trust.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM bundle(s) of the consortium CA(s) trusted for peers and operators.
    pub ca: Vec<PathBuf>,
    /// PEM CRL file(s); re-read on SIGHUP. Default: none.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// This node's certificate chain (PEM), SAN URI `urn:tessera:node:<agency>`.
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// Accept certificates whose issuer has no CRL in `crls`. Default: false
    /// when CRLs are configured (refuse what cannot be checked).
    #[serde(default)]
    pub allow_unknown_revocation: bool,
    /// Seconds a client has to finish the TLS handshake. Default: 10.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout_secs: u64,
    /// Milliseconds a client has, after its TCP connect, to send its
    /// ClientHello. Default: 2000.
    #[serde(default = "default_client_hello_timeout")]
    pub client_hello_timeout_ms: u64,
    /// Connections one peer agency may hold open on the federation port at
    /// once (more are answered RESOURCE_EXHAUSTED and closed). Default: 8.
    #[serde(default = "default_max_connections_per_peer")]
    pub max_connections_per_peer: usize,
    /// MiB per second of requests read from one peer agency on the federation port, all
    /// its connections together (reading waits beyond it). Default: 16.
    #[serde(default = "default_peer_read_mib_per_sec")]
    pub peer_read_mib_per_sec: u64,
}

fn default_max_connections_per_peer() -> usize {
    8
}

fn default_peer_read_mib_per_sec() -> u64 {
    16
}

/// The agency's Ed25519 signing key for notices and audit checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// PKCS#8 (DER) Ed25519 private key.
    pub key: PathBuf,
}

/// Hello: how often the node greets its peers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelloConfig {
    /// Milliseconds between greetings to each peer. Default: 10000.
    #[serde(default = "default_hello_interval")]
    pub interval_ms: u64,
    /// Milliseconds before a greeting counts as failed. Default: 5000.
    #[serde(default = "default_hello_timeout")]
    pub timeout_ms: u64,
}

impl Default for HelloConfig {
    fn default() -> Self {
        Self {
            interval_ms: default_hello_interval(),
            timeout_ms: default_hello_timeout(),
        }
    }
}

/// Logging.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`. Default: `text`.
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter such as `info` or `tessera_node=debug`. Default: `info`.
    /// `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: default_log_level(),
        }
    }
}

/// Notices issued by this node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticesConfig {
    /// Distribution of a notice that names none: `local`, `all`,
    /// `peer:B[,C]` or `group:G`. Default: `local` (share nothing unless asked).
    #[serde(default = "default_to")]
    pub default_to: String,
    /// Days before a review date (a denial's `review_due`, an enforcement
    /// notice's `expires`) at which the operator is reminded; a passed date
    /// is reminded again. Default: 90.
    #[serde(default = "default_review_warning_days")]
    pub review_warning_days: u32,
}

impl Default for NoticesConfig {
    fn default() -> Self {
        Self {
            default_to: default_to(),
            review_warning_days: default_review_warning_days(),
        }
    }
}

/// Replication of notices to and from peers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Most notices in one push (one fsync at the receiver). Default: 2000.
    #[serde(default = "default_push_batch")]
    pub push_batch: usize,
    /// Milliseconds between pulls from each peer (also pulled when a peer
    /// becomes reachable). Default: 30000.
    #[serde(default = "default_pull_interval")]
    pub pull_interval_ms: u64,
    /// First retry delay after a failed push, doubled up to `retry_max_ms`. Default: 250.
    #[serde(default = "default_retry_min")]
    pub retry_min_ms: u64,
    /// Longest retry delay. Default: 30000.
    #[serde(default = "default_retry_max")]
    pub retry_max_ms: u64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            push_batch: default_push_batch(),
            pull_interval_ms: default_pull_interval(),
            retry_min_ms: default_retry_min(),
            retry_max_ms: default_retry_max(),
        }
    }
}

/// Private matching: what this node discloses and how much it answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// What a peer learns about a match: `pointer` (origin, reference,
    /// contact, strength), `summary` (+ action, control entries, decision
    /// date, destination) or `full` (+ the notice). Default: `pointer`.
    #[serde(default)]
    pub default_disclosure: DisclosureLevel,
    /// The contact pointer in this agency's labels (who to call about a match).
    #[serde(default)]
    pub contact: String,
    /// Keys a peer may have evaluated per day. Default: 1000000 (about 25,000 parties at
    /// some 40 keys each with fuzzy names).
    #[serde(default = "default_keys_per_day")]
    pub keys_per_day: u64,
    /// Most keys a peer may have evaluated at once. Default: 50000.
    #[serde(default = "default_burst")]
    pub burst: u64,
    /// Fewest distinct keys a peer's overlap count (Cardinality) may carry. Default: 100.
    #[serde(default = "default_min_overlap_batch")]
    pub min_overlap_batch: usize,
    /// Seconds one overlap session key and set serve a peer. Default: 3600.
    #[serde(default = "default_overlap_session")]
    pub overlap_session_secs: u64,
    /// Keys a peer's overlap counts may have evaluated per day, a budget apart from
    /// screening's. Default: 2000000.
    #[serde(default = "default_overlap_keys_per_day")]
    pub overlap_keys_per_day: u64,
    /// Most keys one overlap session may take at once (its set and its first batch).
    /// Default: 1000000.
    #[serde(default = "default_overlap_burst")]
    pub overlap_burst: u64,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            default_disclosure: DisclosureLevel::default(),
            contact: String::new(),
            keys_per_day: default_keys_per_day(),
            burst: default_burst(),
            min_overlap_batch: default_min_overlap_batch(),
            overlap_session_secs: default_overlap_session(),
            overlap_keys_per_day: default_overlap_keys_per_day(),
            overlap_burst: default_overlap_burst(),
        }
    }
}

/// The Prometheus endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` to serve `/metrics` on, loopback only (e.g.
    /// `127.0.0.1:9464`); empty: off. Default: off. Metrics carry counts and
    /// agency ids, never party data; one node per process.
    #[serde(default)]
    pub listen: String,
}

/// The node's database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Memory sled may keep of the database's pages, in MiB. Default: 128.
    #[serde(default = "default_cache_mb")]
    pub cache_mb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            cache_mb: default_cache_mb(),
        }
    }
}

impl StorageConfig {
    fn check(&self) -> Result<(), ConfigError> {
        if (8..=65_536).contains(&self.cache_mb) {
            Ok(())
        } else {
            Err(ConfigError::invalid(
                "storage.cache_mb",
                "must be between 8 and 65536",
            ))
        }
    }
}

fn default_cache_mb() -> u64 {
    crate::store::DEFAULT_CACHE_MB
}

/// The audit chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Sign a checkpoint every this many entries (and at shutdown). Default: 1000.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: default_checkpoint_every(),
        }
    }
}

/// No-undercut consultations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsultConfig {
    /// Public holidays (`YYYY-MM-DD`) that do not count as working days. Default: none.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Where a "granted despite a denial" notice goes: `all`, `group:G`,
    /// `peer:B[,C]` or `local`. Default: `all`.
    #[serde(default = "default_grant_to")]
    pub grant_notice_to: String,
}

impl Default for ConsultConfig {
    fn default() -> Self {
        Self {
            holidays: Vec::new(),
            grant_notice_to: default_grant_to(),
        }
    }
}

/// One peer agency.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's agency id; its node certificate must carry `urn:tessera:node:<agency>`.
    pub agency: String,
    /// `host:port` of the peer's federation listener.
    pub endpoint: String,
    /// The name to verify the peer's certificate against. Default: the host of `endpoint`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// The peer's pinned Ed25519 public key, hex (32 bytes).
    pub signing_key: String,
    /// Disclosure level for this peer. Default: `privacy.default_disclosure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure: Option<DisclosureLevel>,
    /// Query budget for this peer. Default: `privacy.keys_per_day` / `privacy.burst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_handshake_timeout() -> u64 {
    10
}
fn default_client_hello_timeout() -> u64 {
    2_000
}
fn default_hello_interval() -> u64 {
    10_000
}
fn default_hello_timeout() -> u64 {
    5_000
}
fn default_grant_to() -> String {
    "all".into()
}
fn default_checkpoint_every() -> u64 {
    1_000
}
fn default_keys_per_day() -> u64 {
    1_000_000
}
fn default_burst() -> u64 {
    50_000
}
fn default_min_overlap_batch() -> usize {
    100
}
fn default_overlap_session() -> u64 {
    3_600
}
fn default_overlap_keys_per_day() -> u64 {
    2_000_000
}
fn default_overlap_burst() -> u64 {
    1_000_000
}
fn default_to() -> String {
    "local".into()
}
fn default_review_warning_days() -> u32 {
    90
}
fn default_push_batch() -> usize {
    2_000
}
fn default_pull_interval() -> u64 {
    30_000
}
fn default_retry_min() -> u64 {
    250
}
fn default_retry_max() -> u64 {
    30_000
}
fn default_log_level() -> String {
    "info".into()
}

impl NodeConfig {
    /// Reads, resolves and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            key: e.span().and_then(|span| key_at(&text, span.start)),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    /// Makes every relative path absolute against `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        self.tls.ca.iter_mut().for_each(fix);
        self.tls.crls.iter_mut().for_each(fix);
        fix(&mut self.tls.cert);
        fix(&mut self.tls.key);
        fix(&mut self.signing.key);
    }

    /// Checks every key that can be checked without the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let own: AgencyId = self
            .agency
            .parse()
            .map_err(|e| ConfigError::invalid("agency", format!("{e}")))?;
        parse_listen("federation.listen", &self.federation.listen)?;
        parse_listen("operator.listen", &self.operator.listen)?;
        if self.tls.ca.is_empty() {
            return Err(ConfigError::invalid(
                "tls.ca",
                "at least one CA bundle is required",
            ));
        }
        for (i, p) in self.tls.ca.iter().enumerate() {
            must_exist(&format!("tls.ca[{i}]"), p)?;
        }
        for (i, p) in self.tls.crls.iter().enumerate() {
            must_exist(&format!("tls.crls[{i}]"), p)?;
        }
        must_exist("tls.cert", &self.tls.cert)?;
        must_exist("tls.key", &self.tls.key)?;
        must_exist("signing.key", &self.signing.key)?;
        if self.tls.handshake_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "tls.handshake_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.tls.client_hello_timeout_ms < 100 {
            return Err(ConfigError::invalid(
                "tls.client_hello_timeout_ms",
                "must be at least 100",
            ));
        }
        if self.tls.max_connections_per_peer == 0 {
            return Err(ConfigError::invalid(
                "tls.max_connections_per_peer",
                "must be at least 1",
            ));
        }
        if self.tls.peer_read_mib_per_sec == 0 {
            return Err(ConfigError::invalid(
                "tls.peer_read_mib_per_sec",
                "must be at least 1",
            ));
        }
        if self.hello.interval_ms < 50 {
            return Err(ConfigError::invalid(
                "hello.interval_ms",
                "must be at least 50",
            ));
        }
        if self.hello.timeout_ms == 0 {
            return Err(ConfigError::invalid(
                "hello.timeout_ms",
                "must be at least 1",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::invalid(
                "log.level",
                format!("{:?} is not a tracing filter", self.log.level),
            ));
        }
        if self.sync.push_batch == 0 || self.sync.push_batch > 5_000 {
            return Err(ConfigError::invalid(
                "sync.push_batch",
                "must be between 1 and 5000",
            ));
        }
        if self.sync.pull_interval_ms < 100 {
            return Err(ConfigError::invalid(
                "sync.pull_interval_ms",
                "must be at least 100",
            ));
        }
        if self.sync.retry_min_ms == 0 {
            return Err(ConfigError::invalid(
                "sync.retry_min_ms",
                "must be at least 1",
            ));
        }
        self.storage.check()?;
        if self.notices.review_warning_days > 1_095 {
            return Err(ConfigError::invalid(
                "notices.review_warning_days",
                "must be at most 1095 (three years, the review period itself)",
            ));
        }
        if self.sync.retry_max_ms < self.sync.retry_min_ms {
            return Err(ConfigError::invalid(
                "sync.retry_max_ms",
                "must be at least sync.retry_min_ms",
            ));
        }
        if !self.metrics.listen.is_empty() {
            let addr = parse_listen("metrics.listen", &self.metrics.listen)?;
            if !addr.ip().is_loopback() {
                return Err(ConfigError::invalid(
                    "metrics.listen",
                    "the metrics endpoint is plain HTTP and must listen on a loopback address such as 127.0.0.1:9464",
                ));
            }
        }
        for (i, h) in self.consult.holidays.iter().enumerate() {
            if crate::notice::dates::parse(h).is_none() {
                return Err(ConfigError::invalid(
                    format!("consult.holidays[{i}]"),
                    format!("{h:?} is not a date (YYYY-MM-DD)"),
                ));
            }
        }
        if self.privacy.keys_per_day == 0 {
            return Err(ConfigError::invalid(
                "privacy.keys_per_day",
                "must be at least 1",
            ));
        }
        if self.privacy.overlap_burst == 0 {
            return Err(ConfigError::invalid(
                "privacy.overlap_burst",
                "must be at least 1",
            ));
        }
        if self.privacy.burst == 0 {
            return Err(ConfigError::invalid("privacy.burst", "must be at least 1"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, peer) in self.peers.iter().enumerate() {
            let key = format!("peers[{i}]");
            let agency: AgencyId = peer
                .agency
                .parse()
                .map_err(|e| ConfigError::invalid(format!("{key}.agency"), format!("{e}")))?;
            if agency == own {
                return Err(ConfigError::invalid(
                    format!("{key}.agency"),
                    "a node cannot be its own peer",
                ));
            }
            if !seen.insert(agency) {
                return Err(ConfigError::invalid(
                    format!("{key}.agency"),
                    format!("{} is listed twice", peer.agency),
                ));
            }
            split_endpoint(&peer.endpoint).ok_or_else(|| {
                ConfigError::invalid(
                    format!("{key}.endpoint"),
                    format!("{:?} is not host:port", peer.endpoint),
                )
            })?;
            if peer.keys_per_day == Some(0) {
                return Err(ConfigError::invalid(
                    format!("{key}.keys_per_day"),
                    "must be at least 1",
                ));
            }
            if peer.burst == Some(0) {
                return Err(ConfigError::invalid(
                    format!("{key}.burst"),
                    "must be at least 1",
                ));
            }
            crate::signing::PublicKey::from_hex(&peer.signing_key)
                .map_err(|e| ConfigError::invalid(format!("{key}.signing_key"), e.to_string()))?;
        }
        for (name, members) in &self.groups {
            for (i, m) in members.iter().enumerate() {
                let key = format!("groups.{name}[{i}]");
                let agency: AgencyId = m
                    .parse()
                    .map_err(|e| ConfigError::invalid(key.clone(), format!("{e}")))?;
                if agency != own && !self.peers.iter().any(|p| p.agency == agency.as_str()) {
                    return Err(ConfigError::invalid(
                        key,
                        format!("{m} is not a configured peer"),
                    ));
                }
            }
        }
        let grant = crate::policy::parse_to(&self.consult.grant_notice_to)
            .map_err(|e| ConfigError::invalid("consult.grant_notice_to", e.to_string()))?;
        if let Err(e) = crate::policy::recipients(&grant, self) {
            return Err(ConfigError::invalid(
                "consult.grant_notice_to",
                e.to_string(),
            ));
        }
        let to = crate::policy::parse_to(&self.notices.default_to)
            .map_err(|e| ConfigError::invalid("notices.default_to", e.to_string()))?;
        if let Err(e) = crate::policy::recipients(&to, self) {
            return Err(ConfigError::invalid("notices.default_to", e.to_string()));
        }
        Ok(())
    }

    /// The validated own agency id.
    pub fn agency_id(&self) -> AgencyId {
        // validate() has checked it.
        self.agency
            .parse()
            .unwrap_or_else(|_| AgencyId::unchecked(&self.agency))
    }

    pub fn hello_interval(&self) -> Duration {
        Duration::from_millis(self.hello.interval_ms)
    }

    pub fn hello_timeout(&self) -> Duration {
        Duration::from_millis(self.hello.timeout_ms)
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.tls.handshake_timeout_secs)
    }

    /// How long and how many unauthenticated sockets each listener keeps.
    pub fn accept_limits(&self) -> crate::listener::AcceptLimits {
        crate::listener::AcceptLimits {
            client_hello_timeout: Duration::from_millis(self.tls.client_hello_timeout_ms)
                .min(self.handshake_timeout()),
            handshake_timeout: self.handshake_timeout(),
            max_handshakes: crate::listener::MAX_HANDSHAKES,
            per_source: crate::listener::MAX_HANDSHAKES_PER_SOURCE,
            per_peer: Some(self.tls.max_connections_per_peer),
        }
    }

    /// The disclosure level for `peer`.
    pub fn disclosure_for(&self, peer: &AgencyId) -> DisclosureLevel {
        self.peer(peer)
            .and_then(|p| p.disclosure)
            .unwrap_or(self.privacy.default_disclosure)
    }

    /// (keys per day, burst) for `peer`.
    pub fn budget_for(&self, peer: &AgencyId) -> (u64, u64) {
        let p = self.peer(peer);
        (
            p.and_then(|p| p.keys_per_day)
                .unwrap_or(self.privacy.keys_per_day),
            p.and_then(|p| p.burst).unwrap_or(self.privacy.burst),
        )
    }

    /// The peer entry for `agency`, if configured.
    pub fn peer(&self, agency: &AgencyId) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.agency == agency.as_str())
    }
}

fn must_exist(key: &str, path: &Path) -> Result<(), ConfigError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("{} does not exist or is not a file", path.display()),
        ))
    }
}

/// Parses a listen address (`host:port`, host an IP literal).
pub fn parse_listen(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::invalid(
            key,
            format!("{value:?} is not an IP address and port such as 127.0.0.1:7400"),
        )
    })
}

/// Splits `host:port` (IPv6 hosts in brackets) into host and port.
pub fn split_endpoint(endpoint: &str) -> Option<(String, u16)> {
    let (host, port) = endpoint.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_split() {
        assert_eq!(
            split_endpoint("127.0.0.1:7400"),
            Some(("127.0.0.1".into(), 7400))
        );
        assert_eq!(split_endpoint("[::1]:7400"), Some(("::1".into(), 7400)));
        assert_eq!(
            split_endpoint("node.example:7400"),
            Some(("node.example".into(), 7400))
        );
        assert_eq!(split_endpoint("nohost"), None);
        assert_eq!(split_endpoint(":7400"), None);
        assert_eq!(split_endpoint("a:0"), None);
        assert_eq!(split_endpoint("a:99999"), None);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<LogConfig>("format = \"json\"\nlevle = \"x\"").unwrap_err();
        assert!(err.to_string().contains("levle"), "{err}");
    }

    const MINIMAL: &str = r#"
agency = "DE-BAFA"
federation = { listen = "127.0.0.1:7400" }
operator = { listen = "127.0.0.1:7401" }
signing = { key = "signing.pk8" }

[tls]
ca = ["ca.pem"]
cert = "node.pem"
key = "node.key"

[privacy]
default_disclosure = "summary"

[[peers]]
agency = "FR-SBDU"
endpoint = "127.0.0.1:7402"
signing_key = "00"

[[peers]]
agency = "US-BIS"
endpoint = "127.0.0.1:7404"
signing_key = "00"
disclosure = "full"
"#;

    /// Loads `text` from a file, as the daemon does.
    fn load(text: &str) -> Result<NodeConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        NodeConfig::load(&path)
    }

    #[test]
    fn the_database_cache_is_bounded_by_default_and_checked() {
        let config: NodeConfig = toml::from_str(MINIMAL).unwrap();
        assert_eq!(config.storage.cache_mb, 128);
        config.storage.check().unwrap();
        let set: NodeConfig =
            toml::from_str(&format!("{MINIMAL}\n[storage]\ncache_mb = 64\n")).unwrap();
        assert_eq!(set.storage.cache_mb, 64);
        for bad in [0, 7, 65_537] {
            let err = StorageConfig { cache_mb: bad }.check().unwrap_err();
            assert!(err.to_string().contains("storage.cache_mb"), "{err}");
        }
    }

    #[test]
    fn closed_sets_are_typed_and_a_typo_fails_at_load_naming_the_key() {
        let config: NodeConfig = toml::from_str(MINIMAL).unwrap();
        let us: AgencyId = "US-BIS".parse().unwrap();
        let fr: AgencyId = "FR-SBDU".parse().unwrap();
        assert_eq!(config.disclosure_for(&us), DisclosureLevel::Full);
        assert_eq!(config.disclosure_for(&fr), DisclosureLevel::Summary);
        assert_eq!(config.log.format, LogFormat::Text);
        for (typo, key) in [
            (
                MINIMAL.replace("\"summary\"", "\"sumary\""),
                "privacy.default_disclosure",
            ),
            (
                MINIMAL.replace("\"full\"", "\"ful\""),
                "peers[1].disclosure",
            ),
            (
                format!("{MINIMAL}\n[log]\nformat = \"jsn\"\n"),
                "log.format",
            ),
            (
                MINIMAL.replace("[privacy]", "[privacy]\nburts = 3"),
                "privacy.burts",
            ),
        ] {
            let err = load(&typo).unwrap_err();
            let shown = err.to_string();
            assert!(
                matches!(&err, ConfigError::Parse { key: Some(k), .. } if k == key),
                "{shown}"
            );
            assert!(shown.contains(&format!("key `{key}`")), "{shown}");
        }
    }
}
