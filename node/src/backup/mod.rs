//! Backup while the node runs, and restore into a fresh data directory.
//!
//! A backup holds every sled tree, key by key, and the OPRF key files, in a
//! simple framed format ending with a SHA-256 of everything before it:
//!
//! ```text
//! "TESSERA-BACKUP\n" version:be32(=1)
//! 'T' len:be32 tree-name              start of a tree
//! 'K' len:be32 key len:be32 value     one entry of the current tree
//! 'F' len:be32 path len:be32 bytes    a file under the data directory (OPRF keys)
//! 'E' sha256:32                       end; the digest covers every byte before 'E'
//! ```
//!
//! The node keeps writing while a backup runs, so entries written meanwhile
//! may or may not be in it. Every part of the state is self-healing on
//! restore: notices and index deltas are re-pulled from the cursors the
//! backup holds, applying one twice is a no-op, and outbox items are re-sent.
//! What is derived from the stored notice versions (counts, our own feed,
//! newest versions) is rebuilt from them on restore, since those entries
//! sort before the versions and may be older in the backup. Restore
//! verifies the digest before anything becomes the node's data.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::identity::AgencyId;
use crate::notice::store::NoticeStore;

const MAGIC: &[u8] = b"TESSERA-BACKUP\n";
const VERSION: u32 = 1;
/// Longest key, value or file accepted on restore.
const MAX_ITEM: usize = 256 * 1024 * 1024;

/// Backup and restore errors.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("backup I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("this is not a Tessera backup (or a newer version of one)")]
    NotABackup,
    #[error("the backup is truncated or corrupt: {0}")]
    Corrupt(&'static str),
    #[error(
        "the data directory {0} is not empty; restore into a fresh one (or pass --force to replace it)"
    )]
    NotEmpty(PathBuf),
    #[error("the data directory {0} is in use: stop the node before restoring")]
    InUse(PathBuf),
    #[error("the restored notices could not be checked: {0}")]
    Repair(String),
}

/// What a backup or restore moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub trees: u64,
    pub entries: u64,
    pub files: u64,
}

/// Writes `bytes` and feeds them to the digest.
struct Hashing<W> {
    inner: W,
    digest: Sha256,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.digest.update(bytes);
        self.inner.write_all(bytes)
    }

    fn put_item(&mut self, tag: u8, parts: &[&[u8]]) -> std::io::Result<()> {
        self.put(&[tag])?;
        for p in parts {
            self.put(&(p.len() as u32).to_be_bytes())?;
            self.put(p)?;
        }
        Ok(())
    }
}

/// Streams a backup of `db` and the OPRF key files of `data_dir` to `out`.
pub fn write(db: &sled::Db, data_dir: &Path, out: impl Write) -> Result<Summary, BackupError> {
    crate::store::flush_blocking(db)?;
    let mut w = Hashing {
        inner: out,
        digest: Sha256::new(),
    };
    let mut summary = Summary::default();
    w.put(MAGIC)?;
    w.put(&VERSION.to_be_bytes())?;
    for name in db.tree_names() {
        let tree = db.open_tree(&name)?;
        w.put_item(b'T', &[&name])?;
        summary.trees += 1;
        // In batches: a sled iterator must not stay open while `out`
        // blocks (sled's readers and writers share one process-wide lock).
        let mut after: Option<sled::IVec> = None;
        loop {
            let batch: Vec<(sled::IVec, sled::IVec)> = match &after {
                None => tree.iter().take(1024).collect::<Result<_, _>>()?,
                Some(k) => tree
                    .range::<&[u8], _>((
                        std::ops::Bound::Excluded(k.as_ref()),
                        std::ops::Bound::Unbounded,
                    ))
                    .take(1024)
                    .collect::<Result<_, _>>()?,
            };
            let Some(last) = batch.last().map(|(k, _)| k.clone()) else {
                break;
            };
            for (k, v) in &batch {
                w.put(b"K")?;
                w.put(&(k.len() as u32).to_be_bytes())?;
                w.put(k)?;
                w.put(&(v.len() as u32).to_be_bytes())?;
                w.put(v)?;
                summary.entries += 1;
            }
            after = Some(last);
        }
    }
    let oprf = data_dir.join("oprf");
    if oprf.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&oprf)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "key"))
            .collect();
        files.sort();
        for path in files {
            let bytes = zeroize::Zeroizing::new(std::fs::read(&path)?);
            let name = format!(
                "oprf/{}",
                path.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
            );
            w.put_item(b'F', &[name.as_bytes(), &bytes])?;
            summary.files += 1;
        }
    }
    let digest = w.digest.clone().finalize();
    w.inner.write_all(b"E")?;
    w.inner.write_all(&digest)?;
    w.inner.flush()?;
    Ok(summary)
}

/// One item of a backup, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Tree(Vec<u8>),
    Entry(Vec<u8>, Vec<u8>),
    File(String, Vec<u8>),
}

/// A reader that hashes what it reads.
struct Hashed<R> {
    inner: std::io::BufReader<R>,
    digest: Sha256,
}

impl<R: Read> Hashed<R> {
    fn take(&mut self, n: usize, hash: bool) -> Result<Vec<u8>, BackupError> {
        let mut buf = vec![0u8; n];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| BackupError::Corrupt("unexpected end"))?;
        if hash {
            self.digest.update(&buf);
        }
        Ok(buf)
    }

    fn field(&mut self) -> Result<Vec<u8>, BackupError> {
        let len = self.take(4, true)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > MAX_ITEM {
            return Err(BackupError::Corrupt("an item is implausibly large"));
        }
        self.take(len, true)
    }
}

/// Reads and checks a whole backup, calling `each` for every item; fails
/// (after `each` has seen items) if the digest does not match, so callers
/// must not commit anything before `read` returns `Ok`.
pub fn read(
    input: impl Read,
    mut each: impl FnMut(Item) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    let mut r = Hashed {
        inner: std::io::BufReader::new(input),
        digest: Sha256::new(),
    };
    let magic = r.take(MAGIC.len() + 4, true)?;
    if &magic[..MAGIC.len()] != MAGIC || magic[MAGIC.len()..] != VERSION.to_be_bytes() {
        return Err(BackupError::NotABackup);
    }
    loop {
        let tag = r.take(1, false)?[0];
        if tag == b'E' {
            let expected = r.take(32, false)?;
            if r.digest.finalize().as_slice() != expected.as_slice() {
                return Err(BackupError::Corrupt("the digest does not match"));
            }
            return Ok(());
        }
        r.digest.update([tag]);
        let item = match tag {
            b'T' => Item::Tree(r.field()?),
            b'K' => {
                let k = r.field()?;
                Item::Entry(k, r.field()?)
            }
            b'F' => {
                let name =
                    String::from_utf8(r.field()?).map_err(|_| BackupError::Corrupt("file name"))?;
                Item::File(name, r.field()?)
            }
            _ => return Err(BackupError::Corrupt("unknown record")),
        };
        each(item)?;
    }
}

/// Restores `from` into `data_dir`. The data is built in a sibling
/// directory and moved into place only once the whole backup verified.
pub fn restore(
    from: &Path,
    data_dir: &Path,
    own: &AgencyId,
    force: bool,
) -> Result<Summary, BackupError> {
    let occupied = data_dir.is_dir() && std::fs::read_dir(data_dir)?.next().is_some();
    if occupied {
        // sled locks its database: if it cannot be opened, a node is using it.
        if sled::open(data_dir).is_err() {
            return Err(BackupError::InUse(data_dir.to_owned()));
        }
    }
    if occupied && !force {
        return Err(BackupError::NotEmpty(data_dir.to_owned()));
    }
    let staging = data_dir.with_extension("restoring");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    let result = fill(from, &staging, own);
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if data_dir.exists() {
        std::fs::remove_dir_all(data_dir)?;
    }
    std::fs::rename(&staging, data_dir)?;
    Ok(summary)
}

/// Reads the backup into a new database at `staging`, then makes the
/// notices' derived entries agree with the versions it holds (see
/// [`NoticeStore::repair`]).
fn fill(from: &Path, staging: &Path, own: &AgencyId) -> Result<Summary, BackupError> {
    let mut summary = Summary::default();
    {
        let db = sled::open(staging)?;
        let mut tree: Option<sled::Tree> = None;
        let file = std::fs::File::open(from)?;
        read(file, |item| {
            match item {
                Item::Tree(name) => {
                    tree = Some(db.open_tree(name)?);
                    summary.trees += 1;
                }
                Item::Entry(k, v) => {
                    tree.as_ref()
                        .ok_or(BackupError::Corrupt("an entry before any tree"))?
                        .insert(k, v)?;
                    summary.entries += 1;
                }
                Item::File(name, bytes) => {
                    let rel = Path::new(&name);
                    let safe = rel
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)));
                    if !safe || !name.starts_with("oprf/") {
                        return Err(BackupError::Corrupt(
                            "a file path outside the data directory",
                        ));
                    }
                    let path = staging.join(rel);
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    write_private(&path, &bytes)?;
                    summary.files += 1;
                }
            }
            Ok(())
        })?;
        let store = crate::store::Store::from_db(db.clone());
        NoticeStore::open(&store, own.clone())
            .map_err(|e| BackupError::Repair(e.to_string()))?
            .repair()
            .map_err(|e| BackupError::Repair(e.to_string()))?;
        db.flush()?;
    }
    Ok(summary)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

impl From<BackupError> for tonic::Status {
    fn from(e: BackupError) -> Self {
        Self::internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> AgencyId {
        "DE-BAFA".parse().unwrap()
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let db = sled::open(&data).unwrap();
        let t = db.open_tree("notices").unwrap();
        for i in 0u32..100 {
            t.insert(i.to_be_bytes(), vec![i as u8; 10]).unwrap();
        }
        std::fs::create_dir_all(data.join("oprf")).unwrap();
        std::fs::write(data.join("oprf/FR-SBDU.key"), [7u8; 36]).unwrap();
        let mut bytes = Vec::new();
        let s = write(&db, &data, &mut bytes).unwrap();
        assert_eq!(s.files, 1);
        assert!(s.entries >= 100);
        drop(db);

        let file = dir.path().join("b.bak");
        std::fs::write(&file, &bytes).unwrap();
        let target = dir.path().join("restored");
        let r = restore(&file, &target, &own(), false).unwrap();
        assert_eq!(r, s);
        let db2 = sled::open(&target).unwrap();
        assert_eq!(db2.open_tree("notices").unwrap().len(), 100);
        assert_eq!(
            std::fs::read(target.join("oprf/FR-SBDU.key")).unwrap(),
            vec![7u8; 36]
        );
        drop(db2);

        // Refuses an occupied directory without --force.
        assert!(matches!(
            restore(&file, &target, &own(), false),
            Err(BackupError::NotEmpty(_))
        ));

        // A flipped byte or a cut file is refused, and nothing is replaced.
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        std::fs::write(&file, &bad).unwrap();
        assert!(restore(&file, &dir.path().join("x"), &own(), false).is_err());
        std::fs::write(&file, &bytes[..bytes.len() - 10]).unwrap();
        assert!(restore(&file, &dir.path().join("y"), &own(), false).is_err());
        assert!(!dir.path().join("y").exists());
    }

    #[test]
    fn backup_errors_reach_the_operator_as_internal() {
        let status = tonic::Status::from(BackupError::NotABackup);
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(status.message().contains("not a Tessera backup"));
    }
}
