//! Keys and values of the sled trees, typed: the one place that encodes
//! positions, counters and text fields into keys, decodes them and stored
//! messages back, and turns every failure into a [`StoreError`] that names
//! the tree and the kind of record (never the key's bytes: a key can hold a
//! serial or a tag).
//!
//! Each store keeps its own layout, documented at the top of its file, and
//! writes it with [`Key`]; it reads through a [`Tree`], so that a read error
//! or an unreadable record always reaches the caller as an error, never as
//! "nothing found".
//!
//! ## Layout conventions
//!
//! A key starts with a one-byte tag. Text fields that something follows end
//! with a 0 byte ([`Key::field`]); a text field at the end of a key has none
//! ([`Key::text`]). Numbers are big-endian, so keys sort by them.

use std::cell::Cell;

use prost::Message;

use super::{Store, StoreError};

/// A key under construction: a tag, then fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Key(Vec<u8>);

impl Key {
    /// A key starting with `tag`.
    pub fn tag(tag: u8) -> Self {
        let mut k = Vec::with_capacity(48);
        k.push(tag);
        Self(k)
    }

    /// A key made of one literal name (a counter, a cursor).
    pub fn name(name: &[u8]) -> Self {
        Self(name.to_vec())
    }

    /// A text field that other fields follow: its bytes, then 0.
    pub fn field(mut self, text: &str) -> Self {
        self.0.extend_from_slice(text.as_bytes());
        self.0.push(0);
        self
    }

    /// A text field that ends the key (no terminator).
    pub fn text(mut self, text: &str) -> Self {
        self.0.extend_from_slice(text.as_bytes());
        self
    }

    /// Raw bytes (a tag, a nonce).
    pub fn bytes(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// A big-endian u64 (a position, a sequence number, an id).
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A big-endian u32 (a version, an epoch).
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Key> for Vec<u8> {
    fn from(k: Key) -> Self {
        k.0
    }
}

impl From<Key> for sled::IVec {
    fn from(k: Key) -> Self {
        k.0.into()
    }
}

/// A big-endian u64 at the start of `bytes`.
pub fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// A big-endian u32 at the start of `bytes`.
pub fn read_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
}

/// A sled tree that names itself in errors. Cheap to clone.
#[derive(Clone)]
pub struct Tree {
    inner: sled::Tree,
    name: &'static str,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

type Result<T> = std::result::Result<T, StoreError>;

impl Tree {
    /// Opens (or creates) the tree `name` of `store`.
    pub fn open(store: &Store, name: &'static str) -> Result<Self> {
        Ok(Self {
            inner: store.tree(name)?,
            name,
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The sled tree, for iteration that the helpers below do not cover.
    pub fn sled(&self) -> &sled::Tree {
        &self.inner
    }

    /// The error for an unreadable record of kind `record`.
    pub fn corrupt(&self, record: &'static str) -> StoreError {
        StoreError::Corrupt {
            tree: self.name,
            record,
        }
    }

    /// The error for a failed sled call on a record of kind `record`.
    pub fn failed(&self, record: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
        let tree = self.name;
        move |source| StoreError::Access {
            tree,
            record,
            source,
        }
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: impl AsRef<[u8]>, record: &'static str) -> Result<Option<sled::IVec>> {
        self.inner.get(key).map_err(self.failed(record))
    }

    /// Whether `key` holds a value.
    pub fn contains(&self, key: impl AsRef<[u8]>, record: &'static str) -> Result<bool> {
        self.inner.contains_key(key).map_err(self.failed(record))
    }

    /// Decodes a stored protobuf message of kind `record`.
    pub fn decode<M: Message + Default>(&self, bytes: &[u8], record: &'static str) -> Result<M> {
        M::decode(bytes).map_err(|_| self.corrupt(record))
    }

    /// The message under `key`, if any.
    pub fn message<M: Message + Default>(
        &self,
        key: impl AsRef<[u8]>,
        record: &'static str,
    ) -> Result<Option<M>> {
        self.get(key, record)?
            .map(|v| self.decode(&v, record))
            .transpose()
    }

    /// A big-endian u64 value of kind `record`.
    pub fn u64_of(&self, bytes: &[u8], record: &'static str) -> Result<u64> {
        read_u64(bytes).ok_or_else(|| self.corrupt(record))
    }

    /// A big-endian u32 value of kind `record`.
    pub fn u32_of(&self, bytes: &[u8], record: &'static str) -> Result<u32> {
        read_u32(bytes).ok_or_else(|| self.corrupt(record))
    }

    /// The u64 under `key`; 0 when absent, an error when unreadable.
    pub fn u64_at(&self, key: impl AsRef<[u8]>, record: &'static str) -> Result<u64> {
        match self.get(key, record)? {
            Some(v) => self.u64_of(&v, record),
            None => Ok(0),
        }
    }

    /// A big-endian u64 inside a key, after `offset` bytes of prefix.
    pub fn u64_in_key(&self, key: &[u8], offset: usize, record: &'static str) -> Result<u64> {
        key.get(offset..)
            .and_then(read_u64)
            .ok_or_else(|| self.corrupt(record))
    }

    /// Stores `value` under `key`; returns the previous value.
    pub fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl Into<sled::IVec>,
        record: &'static str,
    ) -> Result<Option<sled::IVec>> {
        self.inner
            .insert(key.as_ref(), value)
            .map_err(self.failed(record))
    }

    /// Removes `key`; returns the value it held.
    pub fn remove(
        &self,
        key: impl AsRef<[u8]>,
        record: &'static str,
    ) -> Result<Option<sled::IVec>> {
        self.inner.remove(key).map_err(self.failed(record))
    }

    /// Applies `batch` atomically, ordered against flushes (see `store::apply_batch`).
    pub fn apply(&self, batch: sled::Batch, record: &'static str) -> Result<()> {
        super::apply_batch(&self.inner, batch).map_err(self.failed(record))
    }

    /// Writes the rows of `writes` one by one, then its commit record (see [`RowWrites`]).
    pub fn apply_rows(&self, writes: RowWrites, record: &'static str) -> Result<()> {
        for (key, value) in writes.rows {
            match value {
                Some(v) => self.inner.insert(key, v),
                None => self.inner.remove(key),
            }
            .map_err(self.failed(record))?;
        }
        self.apply(writes.commit, record)
    }

    /// Adds one to the big-endian counter under `key` and returns the new
    /// value (1 for a counter never used). A counter that does not read as
    /// a number is an error, and is left as it is.
    pub fn next(&self, key: impl AsRef<[u8]>, record: &'static str) -> Result<u64> {
        let unreadable = Cell::new(false);
        let v = self
            .inner
            .update_and_fetch(key, |old| {
                let Some(old) = old else {
                    return Some(1u64.to_be_bytes().to_vec());
                };
                if let Some(n) = read_u64(old) {
                    Some(n.saturating_add(1).to_be_bytes().to_vec())
                } else {
                    unreadable.set(true);
                    Some(old.to_vec())
                }
            })
            .map_err(self.failed(record))?;
        if unreadable.get() {
            return Err(self.corrupt(record));
        }
        v.as_deref()
            .and_then(read_u64)
            .ok_or_else(|| self.corrupt(record))
    }

    /// Every (key, value) under `prefix`, in key order; the first failure
    /// ends the walk as an error.
    pub fn scan(
        &self,
        prefix: impl AsRef<[u8]>,
        record: &'static str,
    ) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + '_ {
        self.inner
            .scan_prefix(prefix)
            .map(move |kv| kv.map_err(self.failed(record)))
    }

    /// Every message under `prefix` with its key, collected (no iterator
    /// stays open after the call).
    pub fn messages<M: Message + Default>(
        &self,
        prefix: impl AsRef<[u8]>,
        record: &'static str,
    ) -> Result<Vec<(sled::IVec, M)>> {
        self.scan(prefix, record)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k, self.decode(&v, record)?))
            })
            .collect()
    }

    /// How many keys are under `prefix`.
    pub fn count(&self, prefix: impl AsRef<[u8]>, record: &'static str) -> Result<usize> {
        let mut n = 0;
        for kv in self.inner.scan_prefix(prefix).keys() {
            kv.map_err(self.failed(record))?;
            n += 1;
        }
        Ok(n)
    }
}

/// Many row writes and the record that says how far they got (a cursor), for a write
/// too large for one batch.
///
/// sled applies a batch under a process-wide lock that every other read and write of
/// the database waits for, so one batch of tens of thousands of rows holds up every
/// answer for as long as it takes. Here each row is written on its own (plain writes
/// share that lock), and the commit record goes last, atomically with whatever was put
/// in [`RowWrites::commit`]. sled recovers a prefix of its log, so a crash part-way
/// leaves rows written ahead of the cursor, to be written again, never a cursor ahead
/// of its rows. Only for rows whose early presence is harmless.
#[derive(Default)]
pub struct RowWrites {
    rows: Vec<(sled::IVec, Option<sled::IVec>)>,
    commit: sled::Batch,
}

impl RowWrites {
    pub fn insert(&mut self, key: impl Into<sled::IVec>, value: impl Into<sled::IVec>) {
        self.rows.push((key.into(), Some(value.into())));
    }

    pub fn remove(&mut self, key: impl Into<sled::IVec>) {
        self.rows.push((key.into(), None));
    }

    /// A write that lands after every row, atomically with the other commit writes.
    pub fn commit(&mut self, key: impl Into<sled::IVec>, value: impl Into<sled::IVec>) {
        self.commit.insert(key, value);
    }

    /// A removal that lands with the commit writes.
    pub fn commit_remove(&mut self, key: impl Into<sled::IVec>) {
        self.commit.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Tree) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tree = Tree::open(&store, "test").unwrap();
        (dir, tree)
    }

    #[test]
    fn keys_lay_out_fields_as_documented() {
        let k = Key::tag(b'v').field("DE-BAFA").field("S-1").u32(2);
        assert_eq!(k.as_ref(), b"vDE-BAFA\0S-1\0\0\0\0\x02");
        let k = Key::tag(b'c').text("FR-SBDU");
        assert_eq!(k.as_ref(), b"cFR-SBDU");
        let k = Key::tag(b'o').field("FR-SBDU").u64(258);
        assert_eq!(k.into_vec(), b"oFR-SBDU\0\0\0\0\0\0\0\x01\x02");
        assert_eq!(Key::name(b"mseq").as_ref(), b"mseq");
        // Positions sort numerically.
        assert!(Key::tag(b'f').u64(255).as_ref() < Key::tag(b'f').u64(256).as_ref());
    }

    #[test]
    fn numbers_read_back_and_short_bytes_are_corrupt_naming_tree_and_record() {
        let (_dir, tree) = tree();
        assert_eq!(tree.u64_of(&7u64.to_be_bytes(), "cursor").unwrap(), 7);
        assert_eq!(tree.u32_of(&[0, 0, 1, 0], "version").unwrap(), 256);
        let err = tree.u64_of(&[1, 2, 3], "cursor").unwrap_err();
        assert_eq!(err.to_string(), "stored cursor in tree test is corrupt");
        assert_eq!(tree.u64_at(b"absent", "cursor").unwrap(), 0);
        tree.insert(b"bad", vec![1u8], "cursor").unwrap();
        assert!(matches!(
            tree.u64_at(b"bad", "cursor"),
            Err(StoreError::Corrupt {
                tree: "test",
                record: "cursor"
            })
        ));
        let key = Key::tag(b'h').field("FR-SBDU").u64(9);
        assert_eq!(tree.u64_in_key(key.as_ref(), 9, "hit").unwrap(), 9);
        assert!(tree.u64_in_key(key.as_ref(), 12, "hit").is_err());
    }

    #[test]
    fn counters_count_from_one_and_refuse_to_reset_a_corrupt_one() {
        let (_dir, tree) = tree();
        assert_eq!(tree.next(b"n", "counter").unwrap(), 1);
        assert_eq!(tree.next(b"n", "counter").unwrap(), 2);
        tree.insert(b"n", vec![9u8, 9], "counter").unwrap();
        assert!(tree.next(b"n", "counter").is_err());
        // Left as it was: nothing reuses a number.
        assert_eq!(tree.get(b"n", "counter").unwrap().unwrap().as_ref(), [9, 9]);
    }

    #[test]
    fn messages_decode_or_fail_naming_the_record() {
        let (_dir, tree) = tree();
        let alert = tessera_proto::v1::Alert {
            seq: 3,
            ..Default::default()
        };
        tree.insert(Key::tag(b'a').u64(3), alert.encode_to_vec(), "alert")
            .unwrap();
        let got: Vec<(sled::IVec, tessera_proto::v1::Alert)> =
            tree.messages([b'a'], "alert").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, alert);
        tree.insert(Key::tag(b'a').u64(4), vec![0xff, 0xff, 0xff], "alert")
            .unwrap();
        let err = tree
            .messages::<tessera_proto::v1::Alert>([b'a'], "alert")
            .unwrap_err();
        assert_eq!(err.to_string(), "stored alert in tree test is corrupt");
        assert_eq!(tree.count([b'a'], "alert").unwrap(), 2);
    }
}
