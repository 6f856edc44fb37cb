//! `AuditLog`: appends entries to the `audit` tree under one lock and writes
//! signed checkpoints.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::AuditError;
use super::action::Action;
use super::entry::{
    CHECKPOINT_TAG, Checkpoint, ENTRY_TAG, Entry, GENESIS_PREV_HASH, entry_hash, key_seq, tree_key,
};
use super::interval;
use super::journal::Journal;
use super::watermark::Watermark;
use crate::signing::SigningKey;
use crate::store::{Store, StoreError};

pub(super) const TREE: &str = "audit";

/// Longest `actor` or `object`, in bytes.
const MAX_FIELD: usize = 256;
/// Longest canonical `details`, in bytes.
const MAX_DETAILS: usize = 16 * 1024;

/// The end of the chain, as this process last wrote it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    pub seq: u64,
    pub hash: [u8; 32],
    pub time: u64,
    /// Seq of the newest checkpoint (0: none).
    pub checkpointed: u64,
}

/// The audit chain of this node. Safe to share between tasks.
pub struct AuditLog {
    pub(super) tree: sled::Tree,
    signing: Arc<SigningKey>,
    checkpoint_every: u64,
    head: Mutex<Head>,
    /// Seq through which the chain is known to be on disk; held while a
    /// flush runs, so that callers waiting on one flush share it.
    durable: tokio::sync::Mutex<u64>,
    /// Written after each flush (none in tests that do not ask for one).
    watermark: Option<Watermark>,
    /// Makes entries durable without flushing the database (none in tests that do not
    /// ask for one: every durable wait then flushes the database).
    journal: Option<Arc<Journal>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("len", &self.len())
            .field("checkpoint_every", &self.checkpoint_every)
            .finish_non_exhaustive()
    }
}

/// Reads the entry stored under `seq` (`None` if absent).
pub(super) fn read_entry(tree: &sled::Tree, seq: u64) -> Result<Option<Entry>, AuditError> {
    let Some(bytes) = tree
        .get(tree_key(ENTRY_TAG, seq))
        .map_err(StoreError::sled("reading the audit chain"))?
    else {
        return Ok(None);
    };
    let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| AuditError::Corrupt {
        seq,
        problem: format!("not an audit entry ({e})"),
    })?;
    if entry.seq != seq {
        return Err(AuditError::Corrupt {
            seq,
            problem: format!("the record stored there says seq {}", entry.seq),
        });
    }
    Ok(Some(entry))
}

/// The newest key with `tag` in the tree, as a seq.
fn last_seq(tree: &sled::Tree, tag: u8) -> Result<Option<u64>, AuditError> {
    match tree.scan_prefix([tag]).next_back() {
        None => Ok(None),
        Some(kv) => {
            let (k, _) = kv.map_err(StoreError::sled("opening the audit chain"))?;
            key_seq(&k).map(Some).ok_or_else(|| AuditError::Corrupt {
                seq: 0,
                problem: "a key in the audit tree is malformed".into(),
            })
        }
    }
}

fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

fn check_field(field: &'static str, value: &str) -> Result<(), AuditError> {
    let problem = if value.is_empty() {
        "is empty"
    } else if value.len() > MAX_FIELD {
        "is longer than 256 bytes"
    } else if value.chars().any(char::is_control) {
        "holds a control character"
    } else {
        return Ok(());
    };
    Err(AuditError::Invalid {
        field,
        problem: problem.into(),
    })
}

impl AuditLog {
    /// Opens the chain in `store`. `checkpoint_every` = N signs a checkpoint
    /// on every N-th entry (0: only on demand). Fails if the newest entry
    /// cannot be read, or if a checkpoint lies beyond it (entries were cut
    /// off the end): extending such a chain would write over the evidence.
    pub fn open(
        store: &Store,
        signing: Arc<SigningKey>,
        checkpoint_every: u64,
    ) -> Result<Self, AuditError> {
        let log = Self::open_chain(store, signing, checkpoint_every)?;
        log.record_interval()?;
        Ok(log)
    }

    /// [`AuditLog::open`], keeping the audit journal in the file `journal` (see
    /// `journal`): the entries it holds after the chain's end in the database (lost with
    /// unflushed writes in a crash) are put back first, each checked to follow the one
    /// before; a journal whose entries do not follow is refused.
    pub fn open_journaled(
        store: &Store,
        signing: Arc<SigningKey>,
        checkpoint_every: u64,
        journal: &std::path::Path,
    ) -> Result<Self, AuditError> {
        let log = Self::open_chain(store, signing, checkpoint_every)?.journaled(journal)?;
        log.record_interval()?;
        Ok(log)
    }

    fn open_chain(
        store: &Store,
        signing: Arc<SigningKey>,
        checkpoint_every: u64,
    ) -> Result<Self, AuditError> {
        let tree = store.tree(TREE)?;
        let checkpointed = last_seq(&tree, CHECKPOINT_TAG)?.unwrap_or(0);
        let head = match last_seq(&tree, ENTRY_TAG)? {
            None => Head {
                seq: 0,
                hash: GENESIS_PREV_HASH,
                time: 0,
                checkpointed,
            },
            Some(seq) => {
                let entry = read_entry(&tree, seq)?.ok_or_else(|| AuditError::Corrupt {
                    seq,
                    problem: "vanished while opening".into(),
                })?;
                entry.check().map_err(|problem| AuditError::Corrupt {
                    seq,
                    problem: problem.into(),
                })?;
                Head {
                    seq,
                    hash: entry.hash,
                    time: entry.time,
                    checkpointed,
                }
            }
        };
        if head.checkpointed > head.seq {
            return Err(AuditError::Corrupt {
                seq: head.seq + 1,
                problem: format!(
                    "missing: the chain ends at {} but a checkpoint was signed at {}",
                    head.seq, head.checkpointed
                ),
            });
        }
        let log = Self {
            tree,
            signing,
            checkpoint_every,
            durable: tokio::sync::Mutex::new(head.seq),
            head: Mutex::new(head),
            watermark: None,
            journal: None,
        };
        Ok(log)
    }

    /// Keeps a durable watermark in the file `path` (see `watermark`), and
    /// fails if the chain ends before the one already there.
    pub fn watermarked(mut self, path: &std::path::Path) -> Result<Self, AuditError> {
        let mark = Watermark::new(path);
        mark.check(&self)?;
        self.watermark = Some(mark);
        Ok(self)
    }

    /// Replays the journal at `path` and keeps it (see [`AuditLog::open_journaled`]).
    fn journaled(mut self, path: &std::path::Path) -> Result<Self, AuditError> {
        let (journal, records) = Journal::open(path)?;
        let mut head = self.head();
        let mut replayed = 0u64;
        for r in records {
            if r.entry.seq <= head.seq {
                continue;
            }
            let follows = r.entry.seq == head.seq + 1 && r.entry.prev_hash == head.hash;
            if !follows || r.entry.check().is_err() {
                return Err(AuditError::Corrupt {
                    seq: r.entry.seq,
                    problem: "in the audit journal: does not follow the chain's last entry".into(),
                });
            }
            let mut batch = sled::Batch::default();
            batch.insert(tree_key(ENTRY_TAG, r.entry.seq).to_vec(), r.entry_bytes);
            if let Some((c, bytes)) = &r.checkpoint {
                if c.seq != r.entry.seq || c.entry_hash != r.entry.hash {
                    return Err(AuditError::Corrupt {
                        seq: r.entry.seq,
                        problem: "in the audit journal: a checkpoint of another entry".into(),
                    });
                }
                batch.insert(tree_key(CHECKPOINT_TAG, c.seq).to_vec(), bytes.clone());
                head.checkpointed = c.seq;
            }
            crate::store::apply_batch(&self.tree, batch)
                .map_err(StoreError::sled("replaying the audit journal"))?;
            head.seq = r.entry.seq;
            head.hash = r.entry.hash;
            head.time = r.entry.time;
            replayed += 1;
        }
        if replayed > 0 {
            tracing::warn!(
                entries = replayed,
                "audit entries put back from the journal (the node stopped without flushing)"
            );
            *self.lock() = head;
            self.durable = tokio::sync::Mutex::new(head.seq);
        }
        flush_tree(&self.tree)?;
        self.mark(head);
        journal.covered_through(head.seq)?;
        self.journal = Some(Arc::new(journal));
        Ok(self)
    }

    /// Appends an interval entry if `checkpoint_every` differs from the last
    /// one recorded (see `interval`); nothing while no interval was ever
    /// asked for.
    fn record_interval(&self) -> Result<(), AuditError> {
        let cached = self
            .tree
            .get(interval::CACHE_KEY)
            .map_err(StoreError::sled("opening the audit chain"))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes);
        if cached == Some(self.checkpoint_every) || (cached.is_none() && self.checkpoint_every == 0)
        {
            return Ok(());
        }
        self.record(
            "node",
            Action::ConfigReloaded,
            interval::OBJECT,
            &interval::details(self.checkpoint_every),
        )?;
        self.tree
            .insert(interval::CACHE_KEY, &self.checkpoint_every.to_be_bytes())
            .map_err(StoreError::sled("appending to the audit chain"))?;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Head> {
        // The head changes only after a batch is applied, so a panic elsewhere
        // cannot leave it half-updated.
        self.head.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one entry and returns its seq. `details` must follow the rule
    /// in the module doc: counts, serials, agency ids, key ids, hashes — never
    /// party data. Durable once the database is flushed.
    pub fn record(
        &self,
        actor: &str,
        action: Action,
        object: &str,
        details: &Value,
    ) -> Result<u64, AuditError> {
        self.record_at(now_ms(), actor, action, object, details)
    }

    /// `record` with the clock passed in (clamped to never go back).
    pub(super) fn record_at(
        &self,
        now_ms: u64,
        actor: &str,
        action: Action,
        object: &str,
        details: &Value,
    ) -> Result<u64, AuditError> {
        check_field("actor", actor)?;
        check_field("object", object)?;
        let canonical = super::canonical_json(details).map_err(|problem| AuditError::Invalid {
            field: "details",
            problem: problem.into(),
        })?;
        if canonical.len() > MAX_DETAILS {
            return Err(AuditError::Invalid {
                field: "details",
                problem: "are longer than 16 KiB".into(),
            });
        }
        let dh: [u8; 32] = Sha256::digest(canonical.as_bytes()).into();

        let mut head = self.lock();
        let mut entry = Entry {
            seq: head.seq + 1,
            time: now_ms.max(head.time),
            actor: actor.to_owned(),
            action: action.as_str().to_owned(),
            object: object.to_owned(),
            details: details.clone(),
            details_hash: dh,
            prev_hash: head.hash,
            hash: [0; 32],
        };
        entry.hash = entry_hash(&entry);

        let key = tree_key(ENTRY_TAG, entry.seq);
        let entry_bytes = encode(&entry)?;
        let checkpoint =
            self.checkpoint_every > 0 && entry.seq.is_multiple_of(self.checkpoint_every);
        let checkpoint_bytes = if checkpoint {
            encode(&Checkpoint::sign(entry.seq, entry.hash, &self.signing))?
        } else {
            Vec::new()
        };
        if checkpoint {
            // The entry and the checkpoint it implies, atomically.
            let mut batch = sled::Batch::default();
            batch.insert(key.to_vec(), entry_bytes.as_slice());
            batch.insert(
                tree_key(CHECKPOINT_TAG, entry.seq).to_vec(),
                checkpoint_bytes.as_slice(),
            );
            crate::store::apply_batch(&self.tree, batch)
        } else {
            // One insert, not a batch: it does not wait for a flush in progress
            // (`store::apply_batch`), so an answer's audit entry is not held up by a
            // large import being flushed.
            self.tree.insert(key, entry_bytes.as_slice()).map(|_| ())
        }
        .map_err(StoreError::sled("appending to the audit chain"))?;
        if let Some(journal) = &self.journal {
            journal.append(
                entry.seq,
                &entry_bytes,
                checkpoint.then_some(checkpoint_bytes.as_slice()),
            )?;
        }
        head.seq = entry.seq;
        head.hash = entry.hash;
        head.time = entry.time;
        if checkpoint {
            head.checkpointed = entry.seq;
        }
        Ok(entry.seq)
    }

    /// Signs a checkpoint at the current head (at shutdown, or on demand).
    /// Returns its seq, or `None` if the head is already checkpointed or the
    /// chain is empty.
    pub fn checkpoint(&self) -> Result<Option<u64>, AuditError> {
        let mut head = self.lock();
        if head.seq == 0 || head.checkpointed == head.seq {
            return Ok(None);
        }
        let c = Checkpoint::sign(head.seq, head.hash, &self.signing);
        self.tree
            .insert(tree_key(CHECKPOINT_TAG, c.seq), encode(&c)?)
            .map_err(StoreError::sled("writing an audit checkpoint"))?;
        head.checkpointed = head.seq;
        Ok(Some(head.seq))
    }

    /// Entries recorded (the seq of the newest).
    pub fn len(&self) -> u64 {
        self.lock().seq
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Seq of the newest checkpoint (0: none).
    pub fn last_checkpoint(&self) -> u64 {
        self.lock().checkpointed
    }

    pub(super) fn head(&self) -> Head {
        *self.lock()
    }

    /// One entry, if recorded.
    pub fn entry(&self, seq: u64) -> Result<Option<Entry>, AuditError> {
        read_entry(&self.tree, seq)
    }

    /// Returns once entry `seq` is on disk. Callers that wait together
    /// share one flush (a group commit): whoever holds the lock flushes
    /// everything recorded so far, the others find their entry covered.
    pub async fn durable_through(&self, seq: u64) -> Result<(), AuditError> {
        let mut durable = self.durable.lock().await;
        if *durable >= seq {
            return Ok(());
        }
        let through = self.len();
        match &self.journal {
            Some(journal) if !journal.wants_compaction() => {
                let journal = journal.clone();
                tokio::task::spawn_blocking(move || journal.sync())
                    .await
                    .map_err(|_| StoreError::FlushTask("failed"))??;
            }
            _ => self.flush().await?,
        }
        *durable = through;
        Ok(())
    }

    /// `durable_through`, for a caller on a blocking thread (a walk of the
    /// feed read off the async workers).
    pub fn durable_through_blocking(&self, seq: u64) -> Result<(), AuditError> {
        let mut durable = self.durable.blocking_lock();
        if *durable >= seq {
            return Ok(());
        }
        let through = self.len();
        match &self.journal {
            Some(journal) if !journal.wants_compaction() => journal.sync()?,
            _ => {
                let head = self.head();
                flush_tree(&self.tree)?;
                self.covered(head)?;
            }
        }
        *durable = through;
        Ok(())
    }

    /// After a flush of the database that covered the chain through `head`: moves the
    /// watermark and drops the journal's records through it.
    fn covered(&self, head: Head) -> Result<(), AuditError> {
        self.mark(head);
        match &self.journal {
            Some(journal) => journal.covered_through(head.seq),
            None => Ok(()),
        }
    }

    /// Records in the watermark that the head as of `head` is on disk.
    fn mark(&self, head: Head) {
        if let Some(mark) = &self.watermark
            && head.seq > 0
        {
            mark.write(head.seq, &head.hash);
        }
    }

    /// Makes every write so far durable (the whole database, as
    /// `Store::flush` does).
    pub async fn flush(&self) -> Result<(), AuditError> {
        let head = self.head();
        let tree = self.tree.clone();
        tokio::task::spawn_blocking(move || flush_tree(&tree))
            .await
            .map_err(|_| StoreError::FlushTask("failed"))??;
        self.covered(head)
    }
}

/// Makes the chain's tree (and so the whole database) durable; blocking.
fn flush_tree(tree: &sled::Tree) -> Result<(), AuditError> {
    let _gate = crate::store::flush_gate();
    tree.flush()
        .map(|_| ())
        .map_err(|e| StoreError::sled("flushing the audit chain")(e).into())
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, AuditError> {
    // Serialising these plain structs cannot fail; map it rather than panic.
    serde_json::to_vec(v).map_err(|e| AuditError::Invalid {
        field: "entry",
        problem: e.to_string(),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;
    use std::fs::OpenOptions;
    use std::os::unix::fs::FileExt;

    pub(in crate::audit) struct Fixture {
        pub _dir: tempfile::TempDir,
        pub store: Store,
        pub key: Arc<SigningKey>,
        pub log: AuditLog,
    }

    /// A chain signing every `every` entries, as if the interval had been
    /// recorded before (no interval entry: seqs count the test's entries).
    pub(in crate::audit) fn fixture(every: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .tree(TREE)
            .unwrap()
            .insert(interval::CACHE_KEY, &every.to_be_bytes())
            .unwrap();
        let key = Arc::new(SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap());
        let log = AuditLog::open(&store, key.clone(), every).unwrap();
        Fixture {
            _dir: dir,
            store,
            key,
            log,
        }
    }

    /// Records `n` evaluation entries at times 1000, 2000, ...
    pub(in crate::audit) fn fill(log: &AuditLog, n: u64) {
        for i in 1..=n {
            log.record_at(
                i * 1000,
                "peer:US-BIS",
                Action::EvaluationServed,
                "index:epoch-1",
                &json!({"keys": i}),
            )
            .unwrap();
        }
    }

    #[test]
    fn appends_a_linked_chain() {
        let f = fixture(0);
        assert!(f.log.is_empty());
        fill(&f.log, 3);
        assert_eq!(f.log.len(), 3);
        let one = f.log.entry(1).unwrap().unwrap();
        let two = f.log.entry(2).unwrap().unwrap();
        assert_eq!(one.prev_hash, GENESIS_PREV_HASH);
        assert_eq!(two.prev_hash, one.hash);
        assert_eq!(two.details, json!({"keys": 2}));
        assert_eq!(two.action, "evaluation_served");
        assert!(f.log.entry(4).unwrap().is_none());
    }

    #[test]
    fn time_never_goes_back() {
        let f = fixture(0);
        let d = json!({});
        f.log
            .record_at(5000, "node", Action::ConfigReloaded, "config", &d)
            .unwrap();
        f.log
            .record_at(4000, "node", Action::ConfigReloaded, "config", &d)
            .unwrap();
        assert_eq!(f.log.entry(2).unwrap().unwrap().time, 5000);
    }

    #[test]
    fn reopening_continues_the_chain() {
        let f = fixture(0);
        fill(&f.log, 2);
        let two = f.log.entry(2).unwrap().unwrap();
        drop(f.log);
        let log = AuditLog::open(&f.store, f.key.clone(), 0).unwrap();
        assert_eq!(log.len(), 2);
        fill(&log, 1);
        assert_eq!(log.entry(3).unwrap().unwrap().prev_hash, two.hash);
    }

    #[test]
    fn opening_over_a_corrupt_head_names_it() {
        let f = fixture(0);
        fill(&f.log, 2);
        f.log
            .tree
            .insert(tree_key(ENTRY_TAG, 2), b"not json".as_slice())
            .unwrap();
        drop(f.log);
        match AuditLog::open(&f.store, f.key.clone(), 0) {
            Err(AuditError::Corrupt { seq: 2, .. }) => {}
            other => panic!("expected a corrupt entry 2, got {other:?}"),
        }
    }

    #[test]
    fn opening_a_chain_cut_below_its_checkpoint_is_refused() {
        let f = fixture(0);
        fill(&f.log, 5);
        f.log.checkpoint().unwrap();
        f.log.tree.remove(tree_key(ENTRY_TAG, 5)).unwrap();
        f.log.tree.remove(tree_key(ENTRY_TAG, 4)).unwrap();
        drop(f.log);
        match AuditLog::open(&f.store, f.key.clone(), 0) {
            Err(AuditError::Corrupt { seq: 4, problem }) => assert_eq!(
                problem,
                "missing: the chain ends at 3 but a checkpoint was signed at 5"
            ),
            other => panic!("expected entry 4 missing, got {other:?}"),
        }
    }

    #[test]
    fn refuses_bad_input() {
        let f = fixture(0);
        let ok = json!({"serial": "DE-BAFA/2025-0042", "version": 2});
        let refused = |actor: &str, object: &str, details: &Value| {
            matches!(
                f.log.record(actor, Action::NoticeSent, object, details),
                Err(AuditError::Invalid { .. })
            )
        };
        assert!(refused("", "notice", &ok));
        assert!(refused("peer:US-BIS", "a\nb", &ok));
        assert!(refused("peer:US-BIS", &"x".repeat(300), &ok));
        assert!(refused("peer:US-BIS", "notice", &json!({"score": 0.93})));
        assert!(refused("peer:US-BIS", "notice", &json!("x".repeat(20_000))));
        assert!(f.log.is_empty());
        assert_eq!(
            f.log
                .record("peer:US-BIS", Action::NoticeSent, "notice", &ok)
                .unwrap(),
            1
        );
    }

    #[test]
    fn checkpoints_every_n_and_on_demand() {
        let f = fixture(3);
        assert_eq!(f.log.checkpoint().unwrap(), None, "empty chain");
        fill(&f.log, 7);
        let seqs: Vec<u64> = f
            .log
            .tree
            .scan_prefix([CHECKPOINT_TAG])
            .map(|kv| key_seq(&kv.unwrap().0).unwrap())
            .collect();
        assert_eq!(seqs, [3, 6]);
        assert_eq!(f.log.last_checkpoint(), 6);
        assert_eq!(f.log.checkpoint().unwrap(), Some(7));
        assert_eq!(f.log.checkpoint().unwrap(), None, "head already signed");
        assert_eq!(f.log.last_checkpoint(), 7);
        fill(&f.log, 2); // 8, 9: 9 is a multiple of 3
        assert_eq!(f.log.last_checkpoint(), 9);
        assert_eq!(f.log.checkpoint().unwrap(), None);
    }

    #[test]
    fn concurrent_records_form_one_chain() {
        let f = fixture(10);
        std::thread::scope(|s| {
            for t in 0..4 {
                let log = &f.log;
                s.spawn(move || {
                    for i in 0..50 {
                        log.record(
                            &format!("peer:P-{t}"),
                            Action::NoticeSent,
                            "notice",
                            &json!({"i": i}),
                        )
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(f.log.len(), 200);
        let report = f.log.verify(&[*f.key.public()]).unwrap();
        assert_eq!(report.entries, 200);
        assert_eq!(report.checkpoints, 20);
    }

    #[test]
    fn a_changed_interval_is_recorded_and_deleted_checkpoints_are_named() {
        let f = fixture(0);
        fill(&f.log, 2);
        drop(f.log);
        let log = AuditLog::open(&f.store, f.key.clone(), 2).unwrap();
        assert_eq!(log.len(), 3, "the new interval is an entry");
        let e = log.entry(3).unwrap().unwrap();
        assert_eq!(interval::of(&e), Some(2));
        fill(&log, 3); // 4, 5, 6: checkpoints at 4 and 6
        assert_eq!(log.verify(&[*f.key.public()]).unwrap().checkpoints, 2);
        drop(log);
        // Reopened with the same interval: nothing more is recorded.
        let log = AuditLog::open(&f.store, f.key.clone(), 2).unwrap();
        assert_eq!(log.len(), 6);
        log.tree.remove(tree_key(CHECKPOINT_TAG, 4)).unwrap();
        match log.verify(&[*f.key.public()]) {
            Err(AuditError::Broken { seq: 4, problem }) => {
                assert_eq!(
                    problem,
                    "checkpoint at 4: missing (the chain signs every 2 entries)"
                );
            }
            other => panic!("expected checkpoint 4 missing, got {other:?}"),
        }
    }

    /// A journaled chain in a fresh directory: (dir, store, key, log, journal path).
    fn journaled(
        every: u64,
    ) -> (
        tempfile::TempDir,
        Store,
        Arc<SigningKey>,
        AuditLog,
        std::path::PathBuf,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let key = Arc::new(SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap());
        let path = dir.path().join("audit.journal");
        let log = AuditLog::open_journaled(&store, key.clone(), every, &path).unwrap();
        (dir, store, key, log, path)
    }

    /// Removes entries `from..=to` (and their checkpoints) from the tree, as a crash
    /// loses sled's unflushed writes.
    fn lose(log: &AuditLog, from: u64, to: u64) {
        for seq in from..=to {
            log.tree.remove(tree_key(ENTRY_TAG, seq)).unwrap();
            log.tree.remove(tree_key(CHECKPOINT_TAG, seq)).unwrap();
        }
    }

    #[test]
    fn entries_lost_with_unflushed_writes_come_back_from_the_journal() {
        let (_dir, store, key, log, path) = journaled(4);
        fill(&log, 10);
        let n = log.len();
        log.durable_through_blocking(n).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 0);
        let head = log.entry(n).unwrap().unwrap();
        // Entries 8.. lost, checkpoint 8 with them.
        lose(&log, 8, n);
        drop(log);
        let log = AuditLog::open_journaled(&store, key.clone(), 4, &path).unwrap();
        assert_eq!(log.len(), n);
        assert_eq!(log.entry(n).unwrap().unwrap().hash, head.hash);
        assert!(log.tree.contains_key(tree_key(CHECKPOINT_TAG, 8)).unwrap());
        log.verify(&[*key.public()]).unwrap();
        // Replayed, flushed, and dropped from the journal.
        assert_eq!(super::super::journal::records_len(&path), 0);
        // The chain goes on from there.
        fill(&log, 1);
        assert_eq!(log.len(), n + 1);
        log.verify(&[*key.public()]).unwrap();
    }

    #[test]
    fn a_record_cut_short_is_ignored_and_one_that_does_not_follow_is_refused() {
        let (_dir, store, key, log, path) = journaled(0);
        fill(&log, 5);
        let n = log.len();
        log.durable_through_blocking(n).unwrap();
        lose(&log, n, n);
        drop(log);
        // A crash in the middle of the next record: its length, half its bytes, written
        // over the zeros ahead of the records.
        let whole = super::super::journal::records_len(&path);
        assert!(whole > 0);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0, 0, 0, 90, b'{', b'"'], whole).unwrap();
        drop(f);
        let log = AuditLog::open_journaled(&store, key.clone(), 0, &path).unwrap();
        assert_eq!(log.len(), n, "the whole records are put back");
        log.verify(&[*key.public()]).unwrap();
        // Put back, then dropped; the part record zeroed with them.
        assert!(std::fs::read(&path).unwrap().iter().all(|b| *b == 0));

        // A record that does not link to the chain's end is refused.
        let mut forged = log.entry(n).unwrap().unwrap();
        lose(&log, n, n);
        drop(log);
        forged.prev_hash = [7; 32];
        forged.hash = entry_hash(&forged);
        let bytes = encode(&forged).unwrap();
        let mut record = (bytes.len() as u32).to_be_bytes().to_vec();
        record.extend_from_slice(&bytes);
        record.extend_from_slice(&0u32.to_be_bytes());
        std::fs::write(&path, record).unwrap();
        match AuditLog::open_journaled(&store, key, 0, &path) {
            Err(AuditError::Corrupt { seq, problem }) => {
                assert_eq!(seq, n);
                assert!(problem.contains("journal"), "{problem}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn records_are_written_over_zeros_so_the_journal_keeps_its_size() {
        let (_dir, _store, _key, log, path) = journaled(0);
        fill(&log, 1);
        log.durable_through_blocking(log.len()).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(size, super::super::journal::ROOM);
        let mut used = super::super::journal::records_len(&path);
        for _ in 0..20 {
            fill(&log, 1);
            log.durable_through_blocking(log.len()).unwrap();
            let now = super::super::journal::records_len(&path);
            assert!(now > used, "a record was written");
            used = now;
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                size,
                "and no byte added"
            );
        }
        // Dropped records are zeroed where they are.
        let head = log.head();
        flush_tree(&log.tree).unwrap();
        log.covered(head).unwrap();
        assert_eq!(super::super::journal::records_len(&path), 0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    }

    #[test]
    fn a_grown_journal_is_compacted_by_a_database_flush() {
        let (_dir, store, key, mut log, path) = journaled(3);
        Arc::get_mut(log.journal.as_mut().unwrap())
            .unwrap()
            .compact_at = 2048;
        for _ in 0..40 {
            fill(&log, 1);
            log.durable_through_blocking(log.len()).unwrap();
        }
        let size = super::super::journal::records_len(&path);
        assert!(size < 2048 + 1024, "journal of {size} bytes");
        let n = log.len();
        drop(log);
        let log = AuditLog::open_journaled(&store, key.clone(), 3, &path).unwrap();
        assert_eq!(log.len(), n);
        log.verify(&[*key.public()]).unwrap();
    }
}
