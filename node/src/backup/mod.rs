//! Backup while the node runs, and restore into a fresh data directory.
//!
//! A backup holds every sled tree, key by key, and the OPRF key files, in a
//! simple framed format, sealed with the agency's Ed25519 signing key:
//!
//! ```text
//! "TESSERA-BACKUP\n" version:be32(=2)
//! 'A' len:be32 agency                 whose data this is (always first)
//! 'T' len:be32 tree-name              start of a tree
//! 'K' len:be32 key len:be32 value     one entry of the current tree
//! 'F' len:be32 path len:be32 bytes    a file under the data directory (OPRF keys)
//! 'E' sha256:32                       end; the digest covers every byte before 'E'
//! 'S' len:be32 key-id len:be32 sig    Ed25519 over the framing of `signing`:
//!                                     "tessera/backup/v2" || 0x00 || str32(agency) || sha256
//! ```
//!
//! Restore refuses a backup of another agency, one whose signature does not
//! verify under this agency's signing key (a changed file: the digest alone
//! is not keyed, anyone can recompute it), and an unsigned backup (format
//! version 1). The node audits every backup it writes (`backup_made`) and
//! restore appends `backup_restored` to the restored chain.
//!
//! The node keeps writing while a backup runs, so entries written meanwhile
//! may or may not be in it. Every part of the state is self-healing on
//! restore: notices and index deltas are re-pulled from the cursors the
//! backup holds, applying one twice is a no-op, and outbox items are re-sent.
//! What is derived from the stored notice versions (counts, our own feed,
//! newest versions) is rebuilt from them on restore, since those entries
//! sort before the versions and may be older in the backup. Restore
//! verifies the digest and the signature before anything becomes the
//! node's data.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::identity::AgencyId;
use crate::signing::{PublicKey, SigningKey};

mod restore;

pub use restore::{RestoreTo, restore};

const MAGIC: &[u8] = b"TESSERA-BACKUP\n";
const VERSION: u32 = 2;
/// Domain separation for a backup's seal.
pub const CONTEXT: &str = "tessera/backup/v2";
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
    #[error(
        "this backup is unsigned (format 1) and cannot be checked: make a new backup with this version"
    )]
    Unsigned,
    #[error(
        "this is a backup of {found}, not of {own}: a node restores only its own agency's backups"
    )]
    OtherAgency { found: String, own: String },
    #[error(
        "the backup's signature does not verify under this agency's signing key (signing.key): the file was changed, or sealed with another key"
    )]
    BadSeal,
    #[error("the restored audit chain: {0}")]
    Audit(String),
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

/// How a backup ends: whose it is, its digest, and the seal over both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub agency: String,
    pub digest: [u8; 32],
    pub key_id: String,
    pub signature: Vec<u8>,
}

fn sealed_bytes(agency: &str, digest: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(4 + agency.len() + 32);
    m.extend_from_slice(&(agency.len() as u32).to_be_bytes());
    m.extend_from_slice(agency.as_bytes());
    m.extend_from_slice(digest);
    m
}

impl Seal {
    /// Checks that the backup is `own`'s and sealed with `key`.
    pub fn check(&self, own: &AgencyId, key: &PublicKey) -> Result<(), BackupError> {
        if self.agency != own.as_str() {
            return Err(BackupError::OtherAgency {
                found: self.agency.clone(),
                own: own.to_string(),
            });
        }
        key.verify(
            CONTEXT,
            &sealed_bytes(&self.agency, &self.digest),
            &self.signature,
        )
        .map_err(|_| BackupError::BadSeal)
    }

    /// The digest, hex (as audited).
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }
}

/// Streams a backup of `db` and the OPRF key files of `data_dir` to `out`,
/// sealed as `agency`'s with `signing`.
pub fn write(
    db: &sled::Db,
    data_dir: &Path,
    agency: &AgencyId,
    signing: &SigningKey,
    out: impl Write,
) -> Result<(Summary, Seal), BackupError> {
    crate::store::flush_blocking(db)?;
    let mut w = Hashing {
        inner: out,
        digest: Sha256::new(),
    };
    let mut summary = Summary::default();
    w.put(MAGIC)?;
    w.put(&VERSION.to_be_bytes())?;
    w.put_item(b'A', &[agency.as_str().as_bytes()])?;
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
    let digest: [u8; 32] = w.digest.clone().finalize().into();
    let seal = Seal {
        agency: agency.to_string(),
        digest,
        key_id: signing.public().key_id(),
        signature: signing.sign(CONTEXT, &sealed_bytes(agency.as_str(), &digest)),
    };
    w.inner.write_all(b"E")?;
    w.inner.write_all(&digest)?;
    w.inner.write_all(b"S")?;
    for part in [seal.key_id.as_bytes(), seal.signature.as_slice()] {
        w.inner.write_all(&(part.len() as u32).to_be_bytes())?;
        w.inner.write_all(part)?;
    }
    w.inner.flush()?;
    Ok((summary, seal))
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
        self.field_of(MAX_ITEM, true)
    }

    fn field_of(&mut self, max: usize, hash: bool) -> Result<Vec<u8>, BackupError> {
        let len = self.take(4, hash)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > max {
            return Err(BackupError::Corrupt("an item is implausibly large"));
        }
        self.take(len, hash)
    }
}

/// Reads a whole backup, calling `each` for every item, and checks its
/// digest; returns its seal, which the caller checks against the agency's
/// key ([`Seal::check`]). Fails (after `each` has seen items) if the digest
/// does not match, so callers must not commit anything before `read`
/// returns `Ok` and the seal is checked.
pub fn read(
    input: impl Read,
    mut each: impl FnMut(Item) -> Result<(), BackupError>,
) -> Result<Seal, BackupError> {
    let mut r = Hashed {
        inner: std::io::BufReader::new(input),
        digest: Sha256::new(),
    };
    let magic = r.take(MAGIC.len() + 4, true)?;
    if &magic[..MAGIC.len()] != MAGIC {
        return Err(BackupError::NotABackup);
    }
    match u32::from_be_bytes([magic[15], magic[16], magic[17], magic[18]]) {
        VERSION => {}
        1 => return Err(BackupError::Unsigned),
        _ => return Err(BackupError::NotABackup),
    }
    if r.take(1, true)?[0] != b'A' {
        return Err(BackupError::Corrupt("the agency record is missing"));
    }
    let agency = String::from_utf8(r.field_of(64, true)?)
        .map_err(|_| BackupError::Corrupt("the agency record"))?;
    loop {
        let tag = r.take(1, false)?[0];
        if tag == b'E' {
            let expected = r.take(32, false)?;
            let digest: [u8; 32] = r.digest.clone().finalize().into();
            if digest.as_slice() != expected.as_slice() {
                return Err(BackupError::Corrupt("the digest does not match"));
            }
            if r.take(1, false)?[0] != b'S' {
                return Err(BackupError::Corrupt("the seal is missing"));
            }
            let key_id = String::from_utf8(r.field_of(64, false)?)
                .map_err(|_| BackupError::Corrupt("the seal's key id"))?;
            let signature = r.field_of(64, false)?;
            return Ok(Seal {
                agency,
                digest,
                key_id,
                signature,
            });
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

impl From<BackupError> for tonic::Status {
    fn from(e: BackupError) -> Self {
        Self::internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn own() -> AgencyId {
        "DE-BAFA".parse().unwrap()
    }

    fn key() -> Arc<SigningKey> {
        Arc::new(SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap())
    }

    /// A small data directory and its backup by `agency` with `signing`.
    fn backed_up(dir: &Path, agency: &AgencyId, signing: &SigningKey) -> (Vec<u8>, Summary) {
        let data = dir.join("data");
        let db = sled::open(&data).unwrap();
        let t = db.open_tree("notices").unwrap();
        for i in 0u32..100 {
            t.insert(i.to_be_bytes(), vec![i as u8; 10]).unwrap();
        }
        std::fs::create_dir_all(data.join("oprf")).unwrap();
        std::fs::write(data.join("oprf/FR-SBDU.key"), [7u8; 36]).unwrap();
        let mut bytes = Vec::new();
        let (s, seal) = write(&db, &data, agency, signing, &mut bytes).unwrap();
        assert_eq!(seal.agency, agency.as_str());
        (bytes, s)
    }

    fn to<'a>(dir: &'a Path, own: &'a AgencyId, signing: &'a Arc<SigningKey>) -> RestoreTo<'a> {
        RestoreTo {
            data_dir: dir,
            own,
            signing,
            checkpoint_every: 0,
            force: false,
        }
    }

    #[test]
    fn round_trip_audited_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (own, k) = (own(), key());
        let (bytes, s) = backed_up(dir.path(), &own, &k);
        assert_eq!(s.files, 1);
        assert!(s.entries >= 100);

        let file = dir.path().join("b.bak");
        std::fs::write(&file, &bytes).unwrap();
        let target = dir.path().join("restored");
        let (r, seal) = restore(&file, &to(&target, &own, &k)).unwrap();
        assert_eq!(r, s);
        {
            let store = crate::store::Store::open(&target).unwrap();
            assert_eq!(store.tree("notices").unwrap().len(), 100);
            let log = crate::audit::AuditLog::open(&store, k.clone(), 0).unwrap();
            let last = log.entry(log.len()).unwrap().unwrap();
            assert_eq!(last.action, "backup_restored");
            assert_eq!(last.details["digest"], seal.digest_hex());
            log.verify(&[*k.public()]).unwrap();
        }
        assert_eq!(
            std::fs::read(target.join("oprf/FR-SBDU.key")).unwrap(),
            vec![7u8; 36]
        );

        // Refuses an occupied directory without --force.
        assert!(matches!(
            restore(&file, &to(&target, &own, &k)),
            Err(BackupError::NotEmpty(_))
        ));

        // A flipped byte or a cut file is refused, and nothing is replaced.
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        std::fs::write(&file, &bad).unwrap();
        assert!(restore(&file, &to(&dir.path().join("x"), &own, &k)).is_err());
        std::fs::write(&file, &bytes[..bytes.len() - 10]).unwrap();
        assert!(restore(&file, &to(&dir.path().join("y"), &own, &k)).is_err());
        assert!(!dir.path().join("y").exists());
    }

    #[test]
    fn a_changed_file_with_its_digest_recomputed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (own, k) = (own(), key());
        let (mut bytes, _) = backed_up(dir.path(), &own, &k);
        // 'E' digest 'S' len key-id(16) len signature(64).
        let end = bytes.len() - (1 + 32 + 1 + 4 + 16 + 4 + 64);
        assert_eq!(bytes[end], b'E');
        bytes[end / 2] ^= 1;
        let digest = Sha256::digest(&bytes[..end]);
        bytes[end + 1..end + 33].copy_from_slice(&digest);
        let file = dir.path().join("b.bak");
        std::fs::write(&file, &bytes).unwrap();
        let target = dir.path().join("restored");
        assert!(matches!(
            restore(&file, &to(&target, &own, &k)),
            Err(BackupError::BadSeal)
        ));
        assert!(!target.exists());
    }

    #[test]
    fn another_agencys_backup_or_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (own, k) = (own(), key());
        let other: AgencyId = "XX-SOLO".parse().unwrap();
        let (bytes, _) = backed_up(dir.path(), &own, &k);
        let file = dir.path().join("b.bak");
        std::fs::write(&file, &bytes).unwrap();
        let err = restore(&file, &to(&dir.path().join("t"), &other, &k)).unwrap_err();
        assert!(matches!(err, BackupError::OtherAgency { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("a backup of DE-BAFA, not of XX-SOLO")
        );
        let err = restore(&file, &to(&dir.path().join("u"), &own, &key())).unwrap_err();
        assert!(matches!(err, BackupError::BadSeal), "{err}");
    }

    #[test]
    fn an_unsigned_format_1_backup_is_refused() {
        let mut v1 = MAGIC.to_vec();
        v1.extend_from_slice(&1u32.to_be_bytes());
        assert!(matches!(
            read(v1.as_slice(), |_| Ok(())),
            Err(BackupError::Unsigned)
        ));
    }

    #[test]
    fn backup_errors_reach_the_operator_as_internal() {
        let status = tonic::Status::from(BackupError::NotABackup);
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(status.message().contains("not a Tessera backup"));
    }
}
