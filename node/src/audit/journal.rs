//! The audit journal: a file beside the database that makes an audit entry durable
//! without flushing the whole database.
//!
//! An answer leaves the node only once its audit entry is on disk (an evaluation
//! answered just before `kill -9` is audited when the node starts again). Flushing sled makes
//! *everything* written so far durable, so while a large import or index build is being
//! written, each answer waited for those writes too. Instead, each entry is appended to
//! this journal as it is recorded, and an answer waits for one `fdatasync` of the journal
//! (shared by every answer waiting at that moment). sled is flushed as before by the
//! node's own flushes; once a flush covers the journal's entries, they are dropped.
//!
//! At start the journal is replayed: entries after the chain's last entry in sled (lost
//! with sled's unflushed writes in a crash) are put back, each checked to follow the one
//! before it (seq, previous hash, own hash). A record cut short by the crash was never
//! acknowledged and is ignored; anything else that does not follow is refused, as a
//! damaged chain is.
//!
//! Record: `entry length:u32 · entry JSON · checkpoint length:u32 · checkpoint JSON`
//! (length 0: no checkpoint), big-endian lengths. An entry length of 0 ends the records.
//!
//! The file is kept written with zeros ahead of its records ([`ROOM`] at a time), and a
//! record is written over those zeros. Its `fdatasync` then writes data only: appending
//! would change the file's size and blocks, and on ext4 a metadata change waits for the
//! filesystem's journal commit, which writes out first the data of every file written
//! meanwhile, here the database's own writes of an import or an index build. Dropping the
//! records a database flush covers zeroes them in place, for the same reason. Only
//! writing more zeros (rare) changes the file's size.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::AuditError;
use super::entry::{Checkpoint, Entry};

/// Journal size past which the next durable wait flushes the database instead and
/// drops what it covers.
pub(super) const COMPACT_AT: u64 = 4 * 1024 * 1024;

/// Zeros written ahead of the records at a time.
pub(super) const ROOM: u64 = 1024 * 1024;

/// One record read back: the entry and, if it carried one, its checkpoint.
pub(super) struct Record {
    pub entry: Entry,
    pub entry_bytes: Vec<u8>,
    pub checkpoint: Option<(Checkpoint, Vec<u8>)>,
}

#[derive(Debug)]
struct Open {
    file: File,
    /// Bytes of records written.
    len: u64,
    /// Size of the file: the records, then zeros.
    room: u64,
    /// Seq of the newest entry written (0: none).
    last: u64,
}

/// The journal file, open for appending.
#[derive(Debug)]
pub(super) struct Journal {
    path: PathBuf,
    open: Mutex<Open>,
    /// Size past which [`Journal::wants_compaction`] says so.
    pub(super) compact_at: u64,
}

fn io(e: std::io::Error) -> AuditError {
    AuditError::Journal(e)
}

fn corrupt(seq: u64, problem: &str) -> AuditError {
    AuditError::Corrupt {
        seq,
        problem: format!("in the audit journal: {problem}"),
    }
}

impl Journal {
    /// Opens (or creates) the journal at `path` and reads back its whole records.
    pub(super) fn open(path: &Path) -> Result<(Self, Vec<Record>), AuditError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let (records, whole) = parse(&bytes)?;
        if bytes[whole..].iter().any(|b| *b != 0) {
            // A record cut short by a crash: never acknowledged; zeroed so that the next
            // record starts clean.
            zero(&file, whole as u64, bytes.len() as u64)?;
        }
        let last = records.last().map_or(0, |r| r.entry.seq);
        let journal = Self {
            path: path.to_owned(),
            open: Mutex::new(Open {
                file,
                len: whole as u64,
                room: bytes.len() as u64,
                last,
            }),
            compact_at: COMPACT_AT,
        };
        Ok((journal, records))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one entry (and its checkpoint). Not durable until [`Journal::sync`].
    pub(super) fn append(
        &self,
        seq: u64,
        entry: &[u8],
        checkpoint: Option<&[u8]>,
    ) -> Result<(), AuditError> {
        let mut record = Vec::new();
        frame(&mut record, entry, checkpoint.unwrap_or_default())
            .map_err(|()| corrupt(seq, "record too long"))?;
        let mut open = self.lock();
        let end = open.len + record.len() as u64;
        if end > open.room {
            let room = end.div_ceil(ROOM) * ROOM;
            write_zeros(&open.file, open.room, room)?;
            open.room = room;
        }
        if let Err(e) = open.file.write_all_at(&record, open.len) {
            // Part of a record would misalign every record after it: zero it again.
            let _ = write_zeros(&open.file, open.len, end);
            return Err(io(e));
        }
        open.len = end;
        open.last = seq;
        Ok(())
    }

    /// Makes every record appended so far durable; blocking.
    pub(super) fn sync(&self) -> Result<(), AuditError> {
        let file = self.lock().file.try_clone().map_err(io)?;
        file.sync_data().map_err(io)
    }

    /// Whether the journal has grown past its compaction size.
    pub(super) fn wants_compaction(&self) -> bool {
        self.lock().len >= self.compact_at
    }

    /// Drops every record through `seq`, now on disk in the database. The records
    /// after it (appended while the database was flushed) are kept, in a new file that
    /// replaces the old one atomically.
    pub(super) fn covered_through(&self, seq: u64) -> Result<(), AuditError> {
        let mut open = self.lock();
        if open.last <= seq {
            zero(&open.file, 0, open.len)?;
            open.len = 0;
            return Ok(());
        }
        let mut bytes = Vec::new();
        let mut reader = File::open(&self.path).map_err(io)?;
        reader.read_to_end(&mut bytes).map_err(io)?;
        let (records, _) = parse(&bytes)?;
        let mut kept = Vec::new();
        for r in records.iter().filter(|r| r.entry.seq > seq) {
            let checkpoint = r.checkpoint.as_ref().map_or(&[][..], |(_, b)| b.as_slice());
            // Read back from this file, so each part's length fits its prefix.
            frame(&mut kept, &r.entry_bytes, checkpoint)
                .map_err(|()| corrupt(r.entry.seq, "record too long"))?;
        }
        let room = (kept.len() as u64).div_ceil(ROOM).max(1) * ROOM;
        let tmp = self.path.with_extension("journal.tmp");
        {
            let mut f = File::create(&tmp).map_err(io)?;
            f.write_all(&kept).map_err(io)?;
            write_zeros(&f, kept.len() as u64, room)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        open.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(io)?;
        open.len = kept.len() as u64;
        open.room = room;
        Ok(())
    }
}

/// Bytes of whole records in the journal at `path` (the zeros ahead of them not counted).
#[cfg(test)]
pub(super) fn records_len(path: &Path) -> u64 {
    let bytes = std::fs::read(path).expect("journal");
    parse(&bytes).expect("journal records").1 as u64
}

/// Writes zeros over `from..to` of `file`.
fn write_zeros(file: &File, from: u64, to: u64) -> Result<(), AuditError> {
    const CHUNK: u64 = 64 * 1024;
    let zeros = vec![0u8; CHUNK.min(to.saturating_sub(from)) as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len() as u64);
        file.write_all_at(&zeros[..n as usize], at).map_err(io)?;
        at += n;
    }
    Ok(())
}

/// Zeroes the records at `from..to` durably, the length that starts them first: on disk
/// the journal ends at `from` at every moment, even if the rest were only partly written
/// when the node stopped (pages do not reach the disk in the order they were written).
fn zero(file: &File, from: u64, to: u64) -> Result<(), AuditError> {
    if from >= to {
        return Ok(());
    }
    write_zeros(file, from, (from + 4).min(to))?;
    file.sync_data().map_err(io)?;
    write_zeros(file, from + 4, to)?;
    file.sync_data().map_err(io)
}

/// Appends one record (`entry`, then `checkpoint`, each after its length) to `out`; `Err`
/// if a part is longer than a length prefix can say.
fn frame(out: &mut Vec<u8>, entry: &[u8], checkpoint: &[u8]) -> Result<(), ()> {
    for part in [entry, checkpoint] {
        let len = u32::try_from(part.len()).map_err(|_| ())?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part);
    }
    Ok(())
}

/// The whole records in `bytes`, and how many bytes they take. The records end at an
/// entry length of 0 (the zeros ahead of them) or at the end of the file; a record cut
/// short at the end (by a crash while it was written, so never acknowledged) is left out,
/// whether its bytes run past the file or read as nothing where only zeros follow.
fn parse(bytes: &[u8]) -> Result<(Vec<Record>, usize), AuditError> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while let Some((entry_bytes, after_entry)) = part(bytes, at) {
        if entry_bytes.is_empty() {
            break;
        }
        let Some((checkpoint_bytes, after)) = part(bytes, after_entry) else {
            break;
        };
        let last_record = bytes[after..].iter().all(|b| *b == 0);
        let seq_hint = records.last().map_or(0, |r: &Record| r.entry.seq + 1);
        let Ok(entry) = serde_json::from_slice::<Entry>(entry_bytes) else {
            if last_record {
                break;
            }
            return Err(corrupt(seq_hint, "a record is not an audit entry"));
        };
        let checkpoint = if checkpoint_bytes.is_empty() {
            None
        } else {
            let Ok(c) = serde_json::from_slice::<Checkpoint>(checkpoint_bytes) else {
                if last_record {
                    break;
                }
                return Err(corrupt(entry.seq, "a record's checkpoint does not read"));
            };
            Some((c, checkpoint_bytes.to_vec()))
        };
        records.push(Record {
            entry,
            entry_bytes: entry_bytes.to_vec(),
            checkpoint,
        });
        at = after;
    }
    Ok((records, at))
}

/// The length-prefixed part at `at`: its bytes and where the next begins.
fn part(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let len = u32::from_be_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?) as usize;
    let start = at + 4;
    let end = start.checked_add(len)?;
    Some((bytes.get(start..end)?, end))
}
