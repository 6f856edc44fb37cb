//! What the node's unit tests build their workers from: a temporary
//! store, an audit chain, signing keys and agency ids. No socket, no TLS.

use std::sync::Arc;

use crate::audit::{AuditLog, AuditSink};
use crate::identity::AgencyId;
use crate::signing::SigningKey;
use crate::store::Store;

/// Runs an async test's body on a current-thread runtime of its own, as `#[tokio::test]`
/// does, but gives the runtime ten seconds to shut down when the body ends or fails. A
/// `#[tokio::test]` runtime dropped while a failed assertion unwinds waits without end for
/// a blocking task still running (a store flushing on drop): the failure would hang the
/// suite instead of being reported.
pub fn run<F: std::future::Future>(body: F) -> F::Output {
    bounded(tokio::runtime::Builder::new_current_thread(), body)
}

/// [`run`] with the runtime's clock paused, as `#[tokio::test(start_paused = true)]`.
pub fn run_paused<F: std::future::Future>(body: F) -> F::Output {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.start_paused(true);
    bounded(builder, body)
}

fn bounded<F: std::future::Future>(mut builder: tokio::runtime::Builder, body: F) -> F::Output {
    let runtime = builder.enable_all().build().expect("a test runtime");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(body)));
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// An agency id written in a test.
pub fn agency(s: &str) -> AgencyId {
    s.parse().expect("a valid agency id")
}

/// A fresh Ed25519 signing key.
pub fn signing_key() -> Arc<SigningKey> {
    Arc::new(SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).expect("a fresh key"))
}

/// A sled store in a temporary directory (kept while the guard lives).
/// Opens the store at `path` again after a drop: sled's background flusher may hold the
/// lock file for a moment after the last handle went, so a reopen retries briefly.
pub fn reopen(path: &std::path::Path) -> Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Store::open(path) {
            Ok(store) => return store,
            Err(e) if std::time::Instant::now() > deadline => panic!("reopen: {e}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}

pub fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path()).expect("a store");
    (dir, store)
}

/// An audit chain over `store`.
pub fn audit_on(store: &Store) -> AuditSink {
    AuditSink::new(Arc::new(
        AuditLog::open(store, signing_key(), 0).expect("an audit chain"),
    ))
}

/// An audit chain in a store of its own.
pub fn audit_sink() -> (tempfile::TempDir, AuditSink) {
    let (dir, store) = temp_store();
    let audit = audit_on(&store);
    (dir, audit)
}

/// The actions audited so far, in order.
pub fn audited(audit: &AuditSink) -> Vec<String> {
    (1..=audit.log().len())
        .filter_map(|seq| audit.log().entry(seq).ok().flatten())
        .map(|e| e.action)
        .collect()
}

/// An organisation in `country`.
pub fn org(name: &str, country: &str) -> crate::party::Party {
    crate::party::Party {
        name: name.into(),
        countries: vec![country.into()],
        ..crate::party::Party::default()
    }
}

/// A denial in force of `origin` naming `parties` as end users, to `to`.
pub fn denial(
    origin: &str,
    serial: &str,
    to: &str,
    parties: &[crate::party::Party],
) -> tessera_proto::v1::Notice {
    use tessera_proto::v1::{
        DenialAction, DenialNotice, Item, Marking, Notice, NoticeStatus, PartyRole, RegimeBasis,
        RoledParty, notice::Body,
    };
    Notice {
        origin: origin.into(),
        serial: serial.into(),
        version: 1,
        issued_at: 1_767_225_600,
        marking: Marking::Amber as i32,
        distribution: Some(crate::policy::parse_to(to).expect("a distribution")),
        body: Some(Body::Denial(DenialNotice {
            authority_reference: format!("REF-{serial}"),
            regime_basis: RegimeBasis::Wassenaar as i32,
            action: DenialAction::Refuse as i32,
            decision_date: "2026-02-02".into(),
            items: vec![Item {
                control_entry: "3A001".into(),
                ..Item::default()
            }],
            parties: parties
                .iter()
                .map(|p| RoledParty {
                    role: PartyRole::EndUser as i32,
                    party: Some(crate::notice::json::party_to_wire(p)),
                })
                .collect(),
            destination: "BY".into(),
            status: NoticeStatus::InForce as i32,
            ..DenialNotice::default()
        })),
        ..Notice::default()
    }
}

/// The peer [`index_delta`] builds rows for.
const TEST_PEER: &str = "XX-TEST";

/// The first delta of a holder's index for one peer: every row of
/// `notices` at `level`, built under `key`, at position 1.
pub fn index_delta(
    key: &crate::privacy::OprfKey,
    notices: &[tessera_proto::v1::Notice],
    level: crate::policy::DisclosureLevel,
) -> tessera_proto::v1::IndexDelta {
    let mut rows: Vec<crate::privacy::RowSource> = Vec::new();
    for n in notices {
        let to: Vec<String> = vec![TEST_PEER.to_owned()];
        rows.extend(
            crate::matching::labels::sources_for_peer(n, &to, TEST_PEER, level, "desk@example")
                .expect("rows"),
        );
    }
    let entries = crate::privacy::build_sources(key, &rows).expect("rows build");
    tessera_proto::v1::IndexDelta {
        pos: 1,
        epoch: key.epoch(),
        public_key: key.public_key_bytes().to_vec(),
        reset: true,
        adds: entries
            .iter()
            .map(crate::privacy::IndexEntry::to_bytes)
            .collect(),
        removes: Vec::new(),
    }
}

/// A configured peer that answers honestly with `key`.
pub fn honest_peer(
    key: &std::sync::Arc<crate::privacy::OprfKey>,
) -> crate::exchange::fake::FakePeer {
    crate::exchange::fake::FakePeer {
        key: Some(key.clone()),
        ..crate::exchange::fake::FakePeer::default()
    }
}

/// The querier side of private matching, in memory: replicas of the
/// peers' indexes, the watch list, the hit queue and the alerts, with
/// scripted peers behind the client.
pub struct MatchingWorld {
    pub _dir: tempfile::TempDir,
    pub store: Store,
    pub peers: crate::exchange::fake::FakePeers,
    pub replicas: Arc<crate::matching::replica::Replicas>,
    pub hits: Arc<crate::matching::deconflict::HitQueue>,
    pub alerts: Arc<crate::alerts::AlertStore>,
    pub audit: AuditSink,
    pub wakers: crate::wake::Wakers,
    pub watcher: Arc<crate::matching::watch::Watcher>,
    pub sync: crate::matching::replica::ReplicaSync,
}

/// A [`MatchingWorld`] whose peers are `peers` (scripted as down until a
/// test says otherwise).
pub fn matching_world(peers: &[&str]) -> MatchingWorld {
    use crate::matching::{deconflict::HitQueue, replica, watch};
    let (dir, store) = temp_store();
    let ids: Vec<AgencyId> = peers.iter().map(|p| agency(p)).collect();
    let fake = crate::exchange::fake::FakePeers::new();
    for id in &ids {
        fake.add(
            id,
            crate::exchange::fake::FakePeer {
                down: true,
                ..Default::default()
            },
        );
    }
    let client: Arc<dyn crate::exchange::client::PeerClient> = Arc::new(fake.clone());
    let replicas = Arc::new(replica::Replicas::open(&store, &ids, None).expect("replicas"));
    let hits = Arc::new(HitQueue::open(&store).expect("hits"));
    let alerts = Arc::new(crate::alerts::AlertStore::open(&store).expect("alerts"));
    let audit = audit_on(&store);
    let wakers = crate::wake::Wakers::new(&ids);
    let watcher = Arc::new(watch::Watcher {
        watch: Arc::new(watch::WatchStore::open(&store).expect("watch")),
        replicas: replicas.clone(),
        client: client.clone(),
        alerts: crate::alerts::AlertSink::new(alerts.clone(), audit.clone()),
        hits: hits.clone(),
        wakers: wakers.clone(),
        store: store.clone(),
        peers: ids,
        own: None,
    });
    let sync = replica::ReplicaSync::new(replicas.clone(), client, store.clone(), watcher.clone());
    MatchingWorld {
        _dir: dir,
        store,
        peers: fake,
        replicas,
        hits,
        alerts,
        audit,
        wakers,
        watcher,
        sync,
    }
}

/// `origin`'s feed of `n` denials (serials `S-1`...), signed with `key`,
/// each visible to us.
pub fn signed_feed(
    origin: &str,
    key: &crate::signing::SigningKey,
    n: u64,
) -> Vec<tessera_proto::v1::FeedItem> {
    (1..=n)
        .map(|seq| {
            let mut notice = denial(
                origin,
                &format!("S-{seq}"),
                "all",
                &[org("Example Trading FZE", "AE")],
            );
            notice.seq = seq;
            tessera_proto::v1::FeedItem {
                seq,
                prev_seq: seq - 1,
                notice: Some(crate::notice::seal::seal(&notice, key)),
            }
        })
        .collect()
}
