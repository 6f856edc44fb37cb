//! The holder's OPRF keys, one per served peer, each with an epoch.
//!
//! Keys live in `data_dir/oprf/<PEER>.key` (mode 0600, the directory 0700),
//! so that a leaked index is attributable to the peer whose key made it.
//! Rotation writes a new key with the next epoch; the peer's index is then
//! rebuilt from scratch under it. Key bytes are never logged.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::identity::AgencyId;
use crate::privacy::OprfKey;

/// A key file problem.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("OPRF key store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("OPRF key file {path} is corrupt")]
    Corrupt { path: PathBuf },
    #[error("{0} is not a configured peer")]
    UnknownPeer(String),
}

/// Every served peer's current key.
pub struct KeyRing {
    dir: PathBuf,
    keys: RwLock<BTreeMap<AgencyId, Arc<OprfKey>>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

impl KeyRing {
    /// Loads the key of each peer, generating epoch 1 where none exists.
    pub fn open(data_dir: &Path, peers: &[AgencyId]) -> Result<Self, KeyError> {
        let dir = data_dir.join("oprf");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        let mut keys = BTreeMap::new();
        for peer in peers {
            let path = dir.join(format!("{peer}.key"));
            let key = if path.exists() {
                let bytes = zeroize::Zeroizing::new(std::fs::read(&path).map_err(io(&path))?);
                OprfKey::from_bytes(&bytes).map_err(|_| KeyError::Corrupt { path: path.clone() })?
            } else {
                let key = OprfKey::generate(1);
                write_key(&path, &key)?;
                key
            };
            keys.insert(peer.clone(), Arc::new(key));
        }
        Ok(Self {
            dir,
            keys: RwLock::new(keys),
        })
    }

    /// The current key for `peer`.
    pub fn get(&self, peer: &AgencyId) -> Option<Arc<OprfKey>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(peer)
            .cloned()
    }

    /// Replaces `peer`'s key with a fresh one of the next epoch.
    pub fn rotate(&self, peer: &AgencyId) -> Result<Arc<OprfKey>, KeyError> {
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = keys
            .get(peer)
            .ok_or_else(|| KeyError::UnknownPeer(peer.to_string()))?;
        let next = OprfKey::generate(current.epoch() + 1);
        write_key(&self.dir.join(format!("{peer}.key")), &next)?;
        let next = Arc::new(next);
        keys.insert(peer.clone(), next.clone());
        Ok(next)
    }
}

fn write_key(path: &Path, key: &OprfKey) -> Result<(), KeyError> {
    let tmp = path.with_extension("key.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(key.to_bytes().as_ref()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_persist_with_0600_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let peer: AgencyId = "FR-SBDU".parse().unwrap();
        let ring = KeyRing::open(dir.path(), std::slice::from_ref(&peer)).unwrap();
        let k1 = ring.get(&peer).unwrap();
        assert_eq!(k1.epoch(), 1);
        let path = dir.path().join("oprf/FR-SBDU.key");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = KeyRing::open(dir.path(), std::slice::from_ref(&peer)).unwrap();
        assert_eq!(
            again.get(&peer).unwrap().public_key_bytes(),
            k1.public_key_bytes()
        );
        let k2 = ring.rotate(&peer).unwrap();
        assert_eq!(k2.epoch(), 2);
        assert_ne!(k2.public_key_bytes(), k1.public_key_bytes());
        let reopened = KeyRing::open(dir.path(), std::slice::from_ref(&peer)).unwrap();
        assert_eq!(reopened.get(&peer).unwrap().epoch(), 2);
    }
}
