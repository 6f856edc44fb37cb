//! `tessera audit export`: the chain as JSON Lines, one entry per line, each
//! checkpoint on the line after the entry it signs (format in the module doc
//! of `audit`). The export is a snapshot up to the head at the time it starts.

use std::io::Write;

use super::AuditError;
use super::chain::{AuditLog, read_entry};
use super::entry::{CHECKPOINT_TAG, Checkpoint, CheckpointLine, key_seq, tree_key};
use crate::store::StoreError;

/// Where an export starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Entries with this seq and after.
    Seq(u64),
    /// Entries recorded at or after this time (unix milliseconds). Times
    /// never decrease along the chain, so this is a clean cut.
    Time(u64),
}

impl AuditLog {
    /// Writes entries (and their checkpoints) from `since`, or all of them, to
    /// `out`; returns how many entries it wrote. An entry that cannot be read
    /// stops the export with [`AuditError::Corrupt`] naming it.
    pub fn export(&self, since: Option<Since>, out: &mut impl Write) -> Result<u64, AuditError> {
        let head = self.head().seq;
        let mut seq = match since {
            None => 1,
            Some(Since::Seq(s)) => s.max(1),
            Some(Since::Time(t)) => self.first_at_or_after(t, head)?,
        };
        // Collected first: a sled iterator must not stay open while `out`
        // blocks (sled's readers and writers share one process-wide lock).
        let checkpoints: Vec<sled::Result<(sled::IVec, sled::IVec)>> = self
            .tree
            .range(tree_key(CHECKPOINT_TAG, seq)..=tree_key(CHECKPOINT_TAG, head))
            .collect();
        let mut checkpoints = checkpoints.into_iter();
        let mut pending = next_checkpoint(&mut checkpoints)?;
        let mut written = 0;
        while seq <= head {
            let entry = read_entry(&self.tree, seq)?.ok_or_else(|| AuditError::Corrupt {
                seq,
                problem: "missing from the chain".into(),
            })?;
            write_line(out, &entry)?;
            written += 1;
            while let Some((at, c)) = pending.take_if(|(at, _)| *at <= seq) {
                let checkpoint: Checkpoint =
                    serde_json::from_slice(&c).map_err(|_| AuditError::Corrupt {
                        seq: at,
                        problem: "its checkpoint is unreadable".into(),
                    })?;
                write_line(out, &CheckpointLine { checkpoint })?;
                pending = next_checkpoint(&mut checkpoints)?;
            }
            seq += 1;
        }
        out.flush().map_err(AuditError::Write)?;
        Ok(written)
    }

    /// The first seq whose time is at least `t` (times never decrease, so a
    /// binary search over seqs 1..=head), or `head + 1` if none.
    fn first_at_or_after(&self, t: u64, head: u64) -> Result<u64, AuditError> {
        let (mut lo, mut hi) = (1, head + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let entry = read_entry(&self.tree, mid)?.ok_or_else(|| AuditError::Corrupt {
                seq: mid,
                problem: "missing from the chain".into(),
            })?;
            if entry.time < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

fn next_checkpoint(
    it: &mut impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
) -> Result<Option<(u64, sled::IVec)>, AuditError> {
    let Some(kv) = it.next() else {
        return Ok(None);
    };
    let (k, v) = kv.map_err(StoreError::sled("reading audit checkpoints"))?;
    let at = key_seq(&k).ok_or_else(|| AuditError::Corrupt {
        seq: 0,
        problem: "a checkpoint key is malformed".into(),
    })?;
    Ok(Some((at, v)))
}

fn write_line(out: &mut impl Write, v: &impl serde::Serialize) -> Result<(), AuditError> {
    serde_json::to_writer(&mut *out, v).map_err(|e| AuditError::Write(e.into()))?;
    out.write_all(b"\n").map_err(AuditError::Write)
}

#[cfg(test)]
mod tests {
    use super::super::chain::tests::{fill, fixture};
    use super::super::{Entry, verify_jsonl};
    use super::*;

    fn export(log: &AuditLog, since: Option<Since>) -> (u64, Vec<String>) {
        let mut out = Vec::new();
        let n = log.export(since, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        (n, text.lines().map(str::to_owned).collect())
    }

    fn entry_seqs(lines: &[String]) -> Vec<u64> {
        lines
            .iter()
            .filter(|l| !l.starts_with("{\"checkpoint\""))
            .map(|l| serde_json::from_str::<Entry>(l).unwrap().seq)
            .collect()
    }

    #[test]
    fn one_line_per_entry_with_checkpoints_after_their_entry() {
        let f = fixture(3);
        fill(&f.log, 7);
        let (n, lines) = export(&f.log, None);
        assert_eq!(n, 7);
        assert_eq!(lines.len(), 9);
        assert_eq!(entry_seqs(&lines), (1..=7).collect::<Vec<_>>());
        assert!(lines[3].starts_with("{\"checkpoint\":{\"seq\":3,"));
        assert!(lines[7].starts_with("{\"checkpoint\":{\"seq\":6,"));
        let report = verify_jsonl(lines.join("\n").as_bytes(), &[*f.key.public()]).unwrap();
        assert_eq!((report.first_seq, report.last_seq), (1, 7));
        assert_eq!((report.checkpoints, report.unsigned_tail()), (2, 1));
    }

    #[test]
    fn since_filters_by_seq_and_by_time() {
        let f = fixture(3);
        fill(&f.log, 7); // times 1000..=7000
        let (n, lines) = export(&f.log, Some(Since::Seq(5)));
        assert_eq!(n, 3);
        assert_eq!(entry_seqs(&lines), [5, 6, 7]);
        assert_eq!(lines.len(), 4, "checkpoint 6 only");
        let (_, lines) = export(&f.log, Some(Since::Time(3500)));
        assert_eq!(entry_seqs(&lines), [4, 5, 6, 7]);
        let (_, lines) = export(&f.log, Some(Since::Time(3000)));
        assert_eq!(entry_seqs(&lines), [3, 4, 5, 6, 7]);
        assert_eq!(export(&f.log, Some(Since::Time(9000))).0, 0);
        assert_eq!(export(&f.log, Some(Since::Seq(8))).0, 0);
        // A partial export verifies from where it starts.
        let (_, lines) = export(&f.log, Some(Since::Seq(2)));
        let r = verify_jsonl(lines.join("\n").as_bytes(), &[*f.key.public()]).unwrap();
        assert_eq!((r.first_seq, r.entries, r.checkpoints), (2, 6, 2));
    }

    #[test]
    fn an_edited_export_fails_verification() {
        let f = fixture(0);
        fill(&f.log, 5);
        f.log.checkpoint().unwrap();
        let (_, mut lines) = export(&f.log, None);
        let keys = [*f.key.public()];
        let original = lines.clone();
        lines[2] = lines[2].replace("peer:US-BIS", "peer:JP-METI");
        match verify_jsonl(lines.join("\n").as_bytes(), &keys) {
            Err(AuditError::Broken { seq: 3, .. }) => {}
            other => panic!("{other:?}"),
        }
        let mut lines = original.clone();
        lines.swap(1, 2);
        match verify_jsonl(lines.join("\n").as_bytes(), &keys) {
            Err(AuditError::Broken { seq: 2, problem }) => {
                assert_eq!(problem, "entry 2 missing (gap after 1)");
            }
            other => panic!("{other:?}"),
        }
        let mut lines = original;
        lines.remove(4);
        lines.insert(1, "not json".into());
        assert!(matches!(
            verify_jsonl(lines.join("\n").as_bytes(), &keys),
            Err(AuditError::Read { line: 2, .. })
        ));
    }
}
