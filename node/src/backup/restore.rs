//! Restore: a backup read into a staging directory, checked (digest,
//! agency, seal), repaired, audited, and only then moved into place.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{BackupError, Item, Seal, Summary, read};
use crate::audit::{Action, AuditLog};
use crate::identity::AgencyId;
use crate::notice::store::NoticeStore;
use crate::signing::SigningKey;

/// Who restores, with what key, and how.
#[derive(Debug, Clone)]
pub struct RestoreTo<'a> {
    pub data_dir: &'a Path,
    pub own: &'a AgencyId,
    /// This agency's signing key: checks the seal, signs the restored
    /// chain's new entry and checkpoint.
    pub signing: &'a Arc<SigningKey>,
    /// `audit.checkpoint_every`, as the node will open the chain.
    pub checkpoint_every: u64,
    pub force: bool,
}

/// Restores `from` into `data_dir`. The data is built in a sibling
/// directory and moved into place only once the whole backup verified.
pub fn restore(from: &Path, to: &RestoreTo<'_>) -> Result<(Summary, Seal), BackupError> {
    let data_dir = to.data_dir;
    let occupied = data_dir.is_dir() && std::fs::read_dir(data_dir)?.next().is_some();
    if occupied && in_use(data_dir) {
        return Err(BackupError::InUse(data_dir.to_owned()));
    }
    if occupied && !to.force {
        return Err(BackupError::NotEmpty(data_dir.to_owned()));
    }
    let staging = data_dir.with_extension("restoring");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    let result = fill(from, &staging, to);
    let done = match result {
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
    Ok(done)
}

/// Whether a node holds the database in `dir`: sled locks it while it is open. A database
/// closed a moment ago (in this process) can stay locked while sled's own threads finish,
/// so a refusal counts only once it has lasted two seconds.
fn in_use(dir: &Path) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        if sled::open(dir).is_ok() {
            return false;
        }
        if Instant::now() >= until {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads the backup into a new database at `staging` and checks its seal,
/// then makes the notices' derived entries agree with the versions it holds
/// (see [`NoticeStore::repair`]) and audits the restore on the restored
/// chain.
fn fill(from: &Path, staging: &Path, to: &RestoreTo<'_>) -> Result<(Summary, Seal), BackupError> {
    let mut summary = Summary::default();
    let seal = {
        let db = sled::open(staging)?;
        let mut tree: Option<sled::Tree> = None;
        let file = std::fs::File::open(from)?;
        let seal = read(file, |item| {
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
        seal.check(to.own, to.signing.public())?;
        let store = crate::store::Store::from_db(db.clone());
        NoticeStore::open(&store, to.own.clone())
            .map_err(|e| BackupError::Repair(e.to_string()))?
            .repair()
            .map_err(|e| BackupError::Repair(e.to_string()))?;
        let audit = |e: crate::audit::AuditError| BackupError::Audit(e.to_string());
        let log = AuditLog::open(&store, to.signing.clone(), to.checkpoint_every).map_err(audit)?;
        log.record(
            to.own.as_str(),
            Action::BackupRestored,
            "backup",
            &serde_json::json!({ "digest": seal.digest_hex(), "entries": summary.entries }),
        )
        .map_err(audit)?;
        log.checkpoint().map_err(audit)?;
        db.flush()?;
        seal
    };
    Ok((summary, seal))
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
