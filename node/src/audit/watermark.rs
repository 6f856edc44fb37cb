//! The durable watermark: a small file beside the database, outside sled,
//! naming the newest audit entry known to be on disk (`SEQ HASH`), written
//! after every flush of the chain. sled 0.34 reads a damaged log as if it
//! ended just before the damage, and opens without a word; the chain then
//! ends before the watermark, and the node refuses to open it. A data
//! directory copied back from an older state is caught the same way.
//!
//! The file is written without a sync of its own, after the database's
//! flush: it can only lag what is on disk, never lead it.

use std::path::{Path, PathBuf};

use super::AuditError;
use super::chain::AuditLog;

/// Where the watermark lives and what it last said.
#[derive(Debug)]
pub(super) struct Watermark {
    path: PathBuf,
}

impl Watermark {
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
        }
    }

    /// The recorded (seq, hash), if the file exists and reads.
    fn read(&self) -> Option<(u64, [u8; 32])> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let (seq, hash) = text.trim().split_once(' ')?;
        let hash: [u8; 32] = hex::decode(hash).ok()?.try_into().ok()?;
        Some((seq.parse().ok()?, hash))
    }

    /// Records that entry `seq` with `hash` is on disk. A failure is logged:
    /// the watermark only ever lags.
    pub(super) fn write(&self, seq: u64, hash: &[u8; 32]) {
        let tmp = self.path.with_extension("tmp");
        let text = format!("{seq} {}\n", hex::encode(hash));
        let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(error) = written {
            tracing::warn!(%error, "cannot write the audit watermark");
        }
    }

    /// Fails if the chain in `log` ends before the watermark, or holds
    /// another entry where the watermark says.
    pub(super) fn check(&self, log: &AuditLog) -> Result<(), AuditError> {
        let Some((seq, hash)) = self.read() else {
            return Ok(());
        };
        let head = log.len();
        if head < seq {
            return Err(AuditError::Corrupt {
                seq: head + 1,
                problem: format!(
                    "missing: the chain ends at {head}, but {seq} entries were on disk (the database files are damaged, or older than this node's state)"
                ),
            });
        }
        match log.entry(seq)? {
            Some(e) if e.hash == hash => Ok(()),
            _ => Err(AuditError::Corrupt {
                seq,
                problem: "differs from the entry that was on disk (the database files are damaged or were replaced)".into(),
            }),
        }
    }
}
