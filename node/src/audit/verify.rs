//! Re-walking the chain: from the sled tree ([`AuditLog::verify`]) or from an
//! export ([`verify_jsonl`]), through one walker, so both apply the same
//! checks in the same order and name the first bad entry the same way.

use std::io::BufRead;

use super::AuditError;
use super::chain::AuditLog;
use super::entry::{
    CHECKPOINT_TAG, Checkpoint, CheckpointLine, ENTRY_TAG, Entry, key_seq, tree_key,
};
use crate::signing::PublicKey;
use crate::store::StoreError;

/// What a successful walk saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Seq of the first entry (1 for a whole chain; more for a partial export).
    pub first_seq: u64,
    /// Seq of the last entry (0: empty).
    pub last_seq: u64,
    pub entries: u64,
    pub checkpoints: u64,
    /// Seq of the newest valid checkpoint.
    pub last_checkpoint: Option<u64>,
    /// Hash of the last entry (compare it with a checkpoint held elsewhere).
    pub head_hash: Option<[u8; 32]>,
}

impl VerifyReport {
    /// Entries after the newest checkpoint: their order and content are
    /// checked, but nothing signed stops them being cut off.
    pub fn unsigned_tail(&self) -> u64 {
        match self.last_checkpoint {
            Some(c) => self.last_seq - c,
            None => self.entries,
        }
    }
}

struct Last {
    seq: u64,
    hash: [u8; 32],
    time: u64,
}

/// Checks entries and checkpoints fed in chain order.
struct Walker<'k> {
    keys: &'k [PublicKey],
    /// Whether the first entry must be entry 1 (false for a partial export).
    from_genesis: bool,
    first: Option<u64>,
    last: Option<Last>,
    entries: u64,
    checkpoints: u64,
    last_checkpoint: Option<u64>,
    /// `checkpoint_every` in effect, as the chain's own interval entries say
    /// (0: none, or not seen yet).
    every: u64,
    /// An entry whose checkpoint must come before the next entry.
    owed: Option<u64>,
}

impl<'k> Walker<'k> {
    fn new(keys: &'k [PublicKey], from_genesis: bool) -> Self {
        Self {
            keys,
            from_genesis,
            first: None,
            last: None,
            entries: 0,
            checkpoints: 0,
            last_checkpoint: None,
            every: 0,
            owed: None,
        }
    }

    /// Fails if a checkpoint the interval asks for did not follow its entry.
    fn settle(&self) -> Result<(), AuditError> {
        match self.owed {
            Some(at) => Err(AuditError::broken(
                at,
                format!(
                    "checkpoint at {at}: missing (the chain signs every {} entries)",
                    self.every
                ),
            )),
            None => Ok(()),
        }
    }

    /// Checks that `seq` is the next one expected.
    fn expect(&self, seq: u64) -> Result<(), AuditError> {
        let expected = match &self.last {
            Some(l) => l.seq + 1,
            None if self.from_genesis => 1,
            None => seq,
        };
        if seq == expected {
            return Ok(());
        }
        let problem = match &self.last {
            None => format!("entry {expected} missing (the chain starts at {seq})"),
            Some(l) if seq > expected => format!("entry {expected} missing (gap after {})", l.seq),
            Some(l) => format!(
                "entry {expected} missing or out of order (entry {seq} follows entry {})",
                l.seq
            ),
        };
        Err(AuditError::broken(expected, problem))
    }

    fn entry(&mut self, e: &Entry) -> Result<(), AuditError> {
        self.settle()?;
        self.expect(e.seq)?;
        let seq = e.seq;
        e.check()
            .map_err(|problem| AuditError::broken(seq, format!("entry {seq}: {problem}")))?;
        match &self.last {
            Some(l) if e.prev_hash != l.hash => {
                return Err(AuditError::broken(
                    seq,
                    format!("entry {seq}: prev_hash does not match entry {}", l.seq),
                ));
            }
            Some(l) if e.time < l.time => {
                return Err(AuditError::broken(
                    seq,
                    format!("entry {seq}: time is before entry {}'s", l.seq),
                ));
            }
            None if seq == 1 && e.prev_hash != super::GENESIS_PREV_HASH => {
                return Err(AuditError::broken(
                    1,
                    "entry 1: prev_hash is not the genesis value (32 zero bytes)",
                ));
            }
            _ => {}
        }
        self.first.get_or_insert(seq);
        self.last = Some(Last {
            seq,
            hash: e.hash,
            time: e.time,
        });
        self.entries += 1;
        if let Some(every) = super::interval::of(e) {
            self.every = every;
        }
        if self.every > 0 && seq.is_multiple_of(self.every) {
            self.owed = Some(seq);
        }
        Ok(())
    }

    /// A checkpoint must come right after the entry it signs.
    fn checkpoint(&mut self, c: &Checkpoint) -> Result<(), AuditError> {
        let at = c.seq;
        let fail = |problem: &str| AuditError::broken(at, format!("checkpoint at {at}: {problem}"));
        let Some(last) = self.last.as_ref().filter(|l| l.seq == at) else {
            return Err(fail(&format!("entry {at} does not precede it")));
        };
        if c.entry_hash != last.hash {
            return Err(fail(&format!("signed hash does not match entry {at}")));
        }
        c.verify(self.keys).map_err(fail)?;
        if self.owed == Some(at) {
            self.owed = None;
        }
        self.checkpoints += 1;
        self.last_checkpoint = Some(at);
        Ok(())
    }

    fn finish(self) -> Result<VerifyReport, AuditError> {
        self.settle()?;
        Ok(VerifyReport {
            first_seq: self.first.unwrap_or(0),
            last_seq: self.last.as_ref().map_or(0, |l| l.seq),
            entries: self.entries,
            checkpoints: self.checkpoints,
            last_checkpoint: self.last_checkpoint,
            head_hash: self.last.map(|l| l.hash),
        })
    }
}

impl AuditLog {
    /// Re-walks the whole stored chain: seqs contiguous from 1, every entry's
    /// details and hash recomputed, every `prev_hash` equal to the previous
    /// entry's hash, every checkpoint signed by one of `keys` over the hash
    /// at its seq, and nothing missing from the end that this process wrote.
    /// Fails with [`AuditError::Broken`] naming the first bad entry.
    pub fn verify(&self, keys: &[PublicKey]) -> Result<VerifyReport, AuditError> {
        // Entries up to the head seen now: appends made during the walk are
        // left for the next one.
        let recorded = self.head().seq;
        let mut walker = Walker::new(keys, true);
        let mut checkpoints = self.tree.scan_prefix([CHECKPOINT_TAG]);
        let mut next_checkpoint = || -> Result<Option<Checkpoint>, AuditError> {
            let Some(kv) = checkpoints.next() else {
                return Ok(None);
            };
            let (k, v) = kv.map_err(StoreError::sled("reading audit checkpoints"))?;
            let at = key_seq(&k).unwrap_or(0);
            let c: Checkpoint = serde_json::from_slice(&v)
                .map_err(|_| AuditError::broken(at, format!("checkpoint at {at}: unreadable")))?;
            if c.seq != at {
                return Err(AuditError::broken(
                    at,
                    format!("checkpoint at {at}: the record stored there says {}", c.seq),
                ));
            }
            Ok(Some(c))
        };
        let mut pending = next_checkpoint()?;

        for kv in self
            .tree
            .range(tree_key(ENTRY_TAG, 0)..=tree_key(ENTRY_TAG, recorded))
        {
            let (k, v) = kv.map_err(StoreError::sled("reading the audit chain"))?;
            let expected = walker.last.as_ref().map_or(1, |l| l.seq + 1);
            let Some(seq) = key_seq(&k) else {
                return Err(AuditError::broken(
                    expected,
                    format!(
                        "entry {expected}: a malformed key follows entry {}",
                        expected - 1
                    ),
                ));
            };
            walker.expect(seq)?;
            let entry: Entry = serde_json::from_slice(&v).map_err(|_| {
                AuditError::broken(seq, format!("entry {seq}: unreadable (not an audit entry)"))
            })?;
            if entry.seq != seq {
                return Err(AuditError::broken(
                    seq,
                    format!(
                        "entry {seq}: the record stored there is entry {} (moved or swapped)",
                        entry.seq
                    ),
                ));
            }
            walker.entry(&entry)?;
            while let Some(c) = pending.take_if(|c| c.seq <= seq) {
                walker.checkpoint(&c)?;
                pending = next_checkpoint()?;
            }
        }
        // Checkpoints beyond the walked entries: fine if their entries were
        // appended during the walk, evidence of a cut-off tail otherwise.
        while let Some(c) = pending {
            if c.seq > self.head().seq {
                walker.checkpoint(&c)?;
            }
            pending = next_checkpoint()?;
        }
        let report = walker.finish()?;
        if report.last_seq < recorded {
            let missing = report.last_seq + 1;
            return Err(AuditError::broken(
                missing,
                format!(
                    "entry {missing} missing (the chain ends at {}, but {recorded} were recorded)",
                    report.last_seq
                ),
            ));
        }
        Ok(report)
    }
}

/// Verifies an export (JSON Lines as written by [`AuditLog::export`]) with
/// the agency's pinned key(s). A partial export (`since`) may start after
/// entry 1: its entries are then anchored only by the checkpoints it holds, so
/// read [`VerifyReport::first_seq`] and [`VerifyReport::unsigned_tail`].
pub fn verify_jsonl(input: impl BufRead, keys: &[PublicKey]) -> Result<VerifyReport, AuditError> {
    let mut walker = Walker::new(keys, false);
    for (i, line) in input.lines().enumerate() {
        let n = i as u64 + 1;
        let line = line.map_err(|e| AuditError::Read {
            line: n,
            problem: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |e: serde_json::Error| AuditError::Read {
            line: n,
            problem: format!("not an audit entry or checkpoint ({e})"),
        };
        if line.trim_start().starts_with("{\"checkpoint\"") {
            let c: CheckpointLine = serde_json::from_str(&line).map_err(bad)?;
            walker.checkpoint(&c.checkpoint)?;
        } else {
            let e: Entry = serde_json::from_str(&line).map_err(bad)?;
            walker.entry(&e)?;
        }
    }
    walker.finish()
}

#[cfg(test)]
mod tests {
    use super::super::Action;
    use super::super::chain::tests::{fill, fixture};
    use super::*;
    use crate::signing::SigningKey;

    fn broken(r: Result<VerifyReport, AuditError>) -> (u64, String) {
        match r {
            Err(AuditError::Broken { seq, problem }) => (seq, problem),
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    fn stored(log: &AuditLog, tag: u8, seq: u64) -> Vec<u8> {
        log.tree.get(tree_key(tag, seq)).unwrap().unwrap().to_vec()
    }

    fn put(log: &AuditLog, tag: u8, seq: u64, bytes: &[u8]) {
        log.tree.insert(tree_key(tag, seq), bytes).unwrap();
    }

    #[test]
    fn round_trip() {
        let f = fixture(4);
        let keys = [*f.key.public()];
        assert_eq!(f.log.verify(&keys).unwrap().entries, 0);
        fill(&f.log, 10);
        let r = f.log.verify(&keys).unwrap();
        assert_eq!((r.first_seq, r.last_seq, r.entries), (1, 10, 10));
        assert_eq!((r.checkpoints, r.last_checkpoint), (2, Some(8)));
        assert_eq!(r.unsigned_tail(), 2);
        assert_eq!(r.head_hash, Some(f.log.entry(10).unwrap().unwrap().hash));
    }

    #[test]
    fn an_edited_entry_is_named() {
        let f = fixture(0);
        fill(&f.log, 20);
        let text = String::from_utf8(stored(&f.log, ENTRY_TAG, 17)).unwrap();
        let edited = text.replace("peer:US-BIS", "peer:FR-SBDU");
        assert_ne!(text, edited);
        put(&f.log, ENTRY_TAG, 17, edited.as_bytes());
        let (seq, problem) = broken(f.log.verify(&[*f.key.public()]));
        assert_eq!(seq, 17);
        assert_eq!(problem, "entry 17: content does not match its hash");
    }

    #[test]
    fn edited_details_are_named() {
        let f = fixture(0);
        fill(&f.log, 5);
        let text = String::from_utf8(stored(&f.log, ENTRY_TAG, 3)).unwrap();
        put(
            &f.log,
            ENTRY_TAG,
            3,
            text.replace("\"keys\":3", "\"keys\":30").as_bytes(),
        );
        assert_eq!(
            broken(f.log.verify(&[*f.key.public()])),
            (3, "entry 3: details do not match details_hash".into())
        );
    }

    #[test]
    fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
        let f = fixture(0);
        fill(&f.log, 5);
        let mut e = f.log.entry(3).unwrap().unwrap();
        e.object = "index:epoch-2".into();
        e.hash = super::super::entry_hash(&e);
        put(&f.log, ENTRY_TAG, 3, &serde_json::to_vec(&e).unwrap());
        assert_eq!(
            broken(f.log.verify(&[*f.key.public()])),
            (4, "entry 4: prev_hash does not match entry 3".into())
        );
    }

    #[test]
    fn garbage_bytes_are_named() {
        let f = fixture(0);
        fill(&f.log, 5);
        put(&f.log, ENTRY_TAG, 2, b"\xff\x00");
        assert_eq!(
            broken(f.log.verify(&[*f.key.public()])),
            (2, "entry 2: unreadable (not an audit entry)".into())
        );
    }

    #[test]
    fn a_gap_is_named() {
        let f = fixture(0);
        fill(&f.log, 20);
        f.log.tree.remove(tree_key(ENTRY_TAG, 17)).unwrap();
        assert_eq!(
            broken(f.log.verify(&[*f.key.public()])),
            (17, "entry 17 missing (gap after 16)".into())
        );
        f.log.tree.remove(tree_key(ENTRY_TAG, 1)).unwrap();
        assert_eq!(
            broken(f.log.verify(&[*f.key.public()])),
            (1, "entry 1 missing (the chain starts at 2)".into())
        );
    }

    #[test]
    fn a_truncated_tail_is_found_while_running() {
        let f = fixture(0);
        fill(&f.log, 5);
        f.log.tree.remove(tree_key(ENTRY_TAG, 5)).unwrap();
        assert_eq!(
            broken(f.log.verify(&[*f.key.public()])).0,
            5,
            "the log knows it wrote 5"
        );
    }

    #[test]
    fn a_checkpoint_beyond_the_chain_is_named() {
        let f = fixture(0);
        fill(&f.log, 5);
        let head = f.log.entry(5).unwrap().unwrap().hash;
        let stray = Checkpoint::sign(6, head, &f.key);
        put(
            &f.log,
            CHECKPOINT_TAG,
            6,
            &serde_json::to_vec(&stray).unwrap(),
        );
        assert_eq!(
            broken(f.log.verify(&[*f.key.public()])),
            (6, "checkpoint at 6: entry 6 does not precede it".into())
        );
    }

    #[test]
    fn a_swap_is_named() {
        let f = fixture(0);
        fill(&f.log, 20);
        let a = stored(&f.log, ENTRY_TAG, 8);
        let b = stored(&f.log, ENTRY_TAG, 9);
        put(&f.log, ENTRY_TAG, 8, &b);
        put(&f.log, ENTRY_TAG, 9, &a);
        assert_eq!(
            broken(f.log.verify(&[*f.key.public()])),
            (
                8,
                "entry 8: the record stored there is entry 9 (moved or swapped)".into()
            )
        );
    }

    #[test]
    fn a_forged_checkpoint_fails() {
        let f = fixture(5);
        fill(&f.log, 10);
        let keys = [*f.key.public()];
        assert!(f.log.verify(&keys).is_ok());
        // Signed by another key that claims the agency's key id.
        let forger = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap();
        let head = f.log.entry(10).unwrap().unwrap().hash;
        let mut forged = Checkpoint::sign(10, head, &forger);
        forged.key_id = f.key.public().key_id();
        put(
            &f.log,
            CHECKPOINT_TAG,
            10,
            &serde_json::to_vec(&forged).unwrap(),
        );
        assert_eq!(
            broken(f.log.verify(&keys)),
            (10, "checkpoint at 10: signature invalid".into())
        );
        // Signed honestly by a key that is not pinned.
        let honest = Checkpoint::sign(10, head, &forger);
        put(
            &f.log,
            CHECKPOINT_TAG,
            10,
            &serde_json::to_vec(&honest).unwrap(),
        );
        assert_eq!(
            broken(f.log.verify(&keys)),
            (
                10,
                "checkpoint at 10: signed by a key that is not pinned".into()
            )
        );
        // A genuine signature moved onto another hash.
        let mut moved: Checkpoint =
            serde_json::from_slice(&stored(&f.log, CHECKPOINT_TAG, 5)).unwrap();
        moved.entry_hash = [7; 32];
        put(
            &f.log,
            CHECKPOINT_TAG,
            5,
            &serde_json::to_vec(&moved).unwrap(),
        );
        assert_eq!(
            broken(f.log.verify(&keys)),
            (
                5,
                "checkpoint at 5: signed hash does not match entry 5".into()
            )
        );
    }

    #[test]
    fn rotated_keys_verify_with_both_pinned() {
        let f = fixture(0);
        fill(&f.log, 3);
        f.log.checkpoint().unwrap();
        let new_key =
            std::sync::Arc::new(SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap());
        let log = AuditLog::open(&f.store, new_key.clone(), 0).unwrap();
        log.record(
            "node",
            Action::ConfigReloaded,
            "signing-key",
            &serde_json::json!({}),
        )
        .unwrap();
        log.checkpoint().unwrap();
        let r = log.verify(&[*f.key.public(), *new_key.public()]).unwrap();
        assert_eq!(r.checkpoints, 2);
        assert!(log.verify(&[*new_key.public()]).is_err());
    }
}
