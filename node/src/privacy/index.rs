//! The labelled index a holder keeps for one served peer (docs/architecture.md, "Private matching", point 2): for every
//! match key `x` of every entry shared with the peer, `tag(y) -> AEAD(y, label)` with
//! `y = OPRF(k_peer, x)`. [`build`] computes it on all cores; [`IndexEntry`] is one row, in
//! the compact byte form that replication sends. A fuzzy alternative's row is a pointer
//! (`threshold::mask_pointer`): the tag and 24 masked bytes, no ciphertext.

use std::collections::HashMap;

use rayon::prelude::*;

use super::PrivacyError;
use super::label::Label;
use super::oprf::{OprfKey, OprfOutput};
use super::seal::{self, AEAD_OVERHEAD, NONCE_LEN, TAG_LEN, Tag};
use super::threshold::{self, Record, SlotKey};

/// One row of a peer's index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub tag: Tag,
    pub nonce: [u8; NONCE_LEN],
    /// The sealed label (ciphertext and Poly1305 tag).
    pub sealed: Vec<u8>,
}

impl IndexEntry {
    /// Smallest valid encoding: a pointer row (tag and 24 masked bytes). A sealed row
    /// has at least an AEAD tag more.
    pub const MIN_BYTES: usize = TAG_LEN + NONCE_LEN;

    /// `tag ‖ nonce ‖ sealed`; the length is the framing's business (a protobuf `bytes`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(TAG_LEN + NONCE_LEN + self.sealed.len());
        out.extend_from_slice(&self.tag);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.sealed);
        out
    }

    /// Reads [`IndexEntry::to_bytes`] (bytes from a peer: lengths are checked).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PrivacyError> {
        if bytes.len() < Self::MIN_BYTES {
            return Err(PrivacyError::BadIndexEntry { len: bytes.len() });
        }
        let (tag_bytes, rest) = bytes.split_at(TAG_LEN);
        let (nonce_bytes, sealed) = rest.split_at(NONCE_LEN);
        if !sealed.is_empty() && sealed.len() < AEAD_OVERHEAD {
            return Err(PrivacyError::BadIndexEntry { len: bytes.len() });
        }
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(tag_bytes);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(nonce_bytes);
        Ok(Self {
            tag,
            nonce,
            sealed: sealed.to_vec(),
        })
    }

    /// Opens this entry's label with the OPRF output of a match key.
    pub fn open(&self, y: &OprfOutput) -> Result<Label, PrivacyError> {
        seal::open(y, &self.tag, &self.nonce, &self.sealed)
    }

    /// Opens this entry's record (a label, a pointer, a share or a name record) with `y`.
    pub fn open_record(&self, y: &OprfOutput) -> Result<Record, PrivacyError> {
        open_row(y, &self.tag, &self.nonce, &self.sealed)
    }
}

/// Opens a row found under `tag` with the output `y` that found it: a pointer row (no
/// ciphertext) is unmasked, a sealed row decrypted and decoded. A row that is not ours to
/// read fails with [`PrivacyError::LabelOpen`].
pub fn open_row(
    y: &OprfOutput,
    tag: &Tag,
    nonce: &[u8; NONCE_LEN],
    sealed: &[u8],
) -> Result<Record, PrivacyError> {
    if sealed.is_empty() {
        if *tag != seal::tag_of(y) {
            return Err(PrivacyError::LabelOpen);
        }
        return threshold::unmask_pointer(nonce, y).ok_or(PrivacyError::LabelOpen);
    }
    Record::decode(&seal::open_bytes(y, tag, nonce, sealed)?)
}

/// One row to build: a record sealed under 64 bytes derived from a random or secret key
/// (a notice's label under its label key, a share under its slot key, a name's record
/// under its secret), or a pointer to such a key under the OPRF output of a key string.
#[derive(Clone)]
pub enum RowSource {
    Derived {
        y: Box<OprfOutput>,
        body: Vec<u8>,
    },
    Pointer {
        input: String,
        slot: SlotKey,
        relation: u8,
    },
}

impl RowSource {
    /// Bytes of the row on the wire.
    pub fn wire_len(&self) -> usize {
        match self {
            Self::Derived { body, .. } => IndexEntry::MIN_BYTES + body.len() + AEAD_OVERHEAD,
            Self::Pointer { .. } => IndexEntry::MIN_BYTES,
        }
    }
}

impl std::fmt::Debug for RowSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Derived { .. } => "RowSource::Derived",
            Self::Pointer { .. } => "RowSource::Pointer",
        })
    }
}

/// Builds one row per source, in input order, on all cores.
///
/// Each distinct pointer input is evaluated once: the names of one entry and of nearby
/// entries repeat their parts (a surname in every alias, the one-letter deletions of a
/// frequent given name), and the output depends on the input alone. On the SDN list,
/// built in the holder's chunks of 32 notices, three pointer rows in ten reuse an
/// evaluation; rebuilt in one build after a key rotation, half of them do
/// (BENCHMARKS.md, "Private matching").
pub fn build_sources(key: &OprfKey, rows: &[RowSource]) -> Result<Vec<IndexEntry>, PrivacyError> {
    // `inputs[j]` is a distinct input and the first row that has it.
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut inputs: Vec<(&str, usize)> = Vec::new();
    let evaluation: Vec<Option<usize>> = rows
        .iter()
        .enumerate()
        .map(|(index, row)| match row {
            RowSource::Pointer { input, .. } => {
                Some(*first.entry(input.as_str()).or_insert_with(|| {
                    inputs.push((input.as_str(), index));
                    inputs.len() - 1
                }))
            }
            RowSource::Derived { .. } => None,
        })
        .collect();
    drop(first);
    let outputs: Vec<OprfOutput> = inputs
        .par_iter()
        .map(|(input, index)| {
            key.evaluate(input.as_bytes())
                .map_err(|_| PrivacyError::BadInput { index: *index })
        })
        .collect::<Result<_, _>>()?;
    Ok(rows
        .par_iter()
        .zip(evaluation)
        .map(|(row, evaluation)| match (row, evaluation) {
            (RowSource::Pointer { slot, relation, .. }, Some(j)) => {
                let y = &outputs[j];
                IndexEntry {
                    tag: seal::tag_of(y),
                    nonce: threshold::mask_pointer(slot, *relation, y),
                    sealed: Vec::new(),
                }
            }
            (RowSource::Derived { y, body }, _) => seal::seal_bytes(body, y),
            (RowSource::Pointer { .. }, None) => unreachable!("every pointer row has an input"),
        })
        .collect())
}

/// Builds the index rows for `(match key value, label)` pairs, one row per pair, in input
/// order, on all cores. An error names the position of the offending pair.
pub fn build<K>(key: &OprfKey, entries: &[(K, Label)]) -> Result<Vec<IndexEntry>, PrivacyError>
where
    K: AsRef<[u8]> + Sync,
{
    entries
        .par_iter()
        .enumerate()
        .map(|(index, (value, label))| {
            let y = key
                .evaluate(value.as_ref())
                .map_err(|_| PrivacyError::BadInput { index })?;
            seal::seal(label, &y).map_err(|e| match e {
                PrivacyError::BadInput { .. } => PrivacyError::BadInput { index },
                other => other,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::label::tests::pointer;
    use super::super::lookup::IndexLookup;
    use super::super::oprf::{blind, evaluate_blinded, finalize};
    use super::super::seal::tag_of;
    use super::*;

    fn label(kind: &str, serial: &str) -> Label {
        Label {
            key_kind: kind.into(),
            serial: serial.into(),
            ..pointer()
        }
    }

    #[test]
    fn index_finds_listed_keys_and_nothing_else() {
        let key = OprfKey::generate(3);
        let rows = vec![
            ("mk1|name|ACME TRADING".to_string(), label("name", "S-1")),
            (
                "mk1|name_country|ACME TRADING|IR".to_string(),
                label("name_country", "S-1"),
            ),
            // The same key labels a second notice.
            ("mk1|name|ACME TRADING".to_string(), label("name", "S-2")),
            ("mk1|id|imo|9176187".to_string(), label("id", "S-3")),
        ];
        let index = IndexLookup::from_entries(build(&key, &rows).unwrap()).unwrap();
        assert_eq!(index.len(), 4);

        // The querier's side, through the blinded protocol.
        let queries: [&[u8]; 3] = [
            b"mk1|name|ACME TRADING",
            b"mk1|id|imo|9176187",
            b"mk1|name|NOT LISTED",
        ];
        let (state, blinded) = blind(&queries).unwrap();
        let (evaluated, proof) = evaluate_blinded(&key, &blinded).unwrap();
        let ys = finalize(&state, &evaluated, &proof, &key.public_key_bytes()).unwrap();

        let mut serials: Vec<String> = index
            .get(&tag_of(&ys[0]))
            .map(|e| e.open(&ys[0]).unwrap().serial)
            .collect();
        serials.sort();
        assert_eq!(serials, ["S-1", "S-2"]);
        let hits: Vec<Label> = index
            .get(&tag_of(&ys[1]))
            .map(|e| e.open(&ys[1]).unwrap())
            .collect();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].serial, "S-3");
        assert_eq!(index.get(&tag_of(&ys[2])).count(), 0);

        // Outputs under another key find nothing.
        let other = OprfKey::generate(3)
            .evaluate(b"mk1|name|ACME TRADING")
            .unwrap();
        assert_eq!(index.get(&tag_of(&other)).count(), 0);
    }

    #[test]
    fn entry_bytes_round_trip_and_reject_short_input() {
        let key = OprfKey::generate(1);
        let rows = [("mk1|name|X", pointer())];
        let entry = build(&key, &rows).unwrap().remove(0);
        let bytes = entry.to_bytes();
        assert_eq!(IndexEntry::from_bytes(&bytes).unwrap(), entry);
        // Shorter than a pointer row, or a ciphertext shorter than its AEAD tag.
        for cut in
            (0..IndexEntry::MIN_BYTES).chain(IndexEntry::MIN_BYTES + 1..IndexEntry::MIN_BYTES + 16)
        {
            assert_eq!(
                IndexEntry::from_bytes(&bytes[..cut]).unwrap_err(),
                PrivacyError::BadIndexEntry { len: cut }
            );
        }
    }

    #[test]
    fn an_oversized_key_is_named_by_position() {
        let key = OprfKey::generate(1);
        let rows = [
            ("ok".to_string(), pointer()),
            ("x".repeat(70_000), pointer()),
        ];
        assert_eq!(
            build(&key, &rows).unwrap_err(),
            PrivacyError::BadInput { index: 1 }
        );
    }

    #[test]
    fn a_repeated_input_is_evaluated_once_and_every_row_keeps_its_own_slot() {
        let key = OprfKey::generate(1);
        let pointer = |input: &str, relation: u8| RowSource::Pointer {
            input: input.to_owned(),
            slot: threshold::slot_key(),
            relation,
        };
        let rows = vec![
            pointer("mk2|t|HASSAN", 0),
            RowSource::Derived {
                y: Box::new([9u8; 64]),
                body: vec![1, 2, 3],
            },
            pointer("mk2|t|HASAN", 3),
            pointer("mk2|t|HASSAN", 0),
        ];
        let built = build_sources(&key, &rows).expect("build");
        assert_eq!(built.len(), 4);
        for (row, entry) in rows.iter().zip(&built) {
            match row {
                RowSource::Pointer {
                    input,
                    slot,
                    relation,
                } => {
                    let y = key.evaluate(input.as_bytes()).expect("evaluate");
                    assert_eq!(entry.tag, seal::tag_of(&y));
                    let opened = threshold::unmask_pointer(&entry.nonce, &y);
                    assert!(
                        matches!(opened, Some(Record::Pointer { slot: s, relation: r }) if s == *slot && r == *relation),
                        "{opened:?}"
                    );
                }
                RowSource::Derived { y, body } => {
                    assert_eq!(
                        seal::open_bytes(y, &entry.tag, &entry.nonce, &entry.sealed).expect("open"),
                        *body
                    );
                }
            }
        }
        assert_eq!(built[0].tag, built[3].tag, "one key, one tag");
        assert_ne!(built[0].nonce, built[3].nonce, "two slots, two pointers");
        // A bad input is named by the first row that has it.
        let long = "x".repeat(70_000);
        let rows = vec![pointer("ok", 0), pointer(&long, 0), pointer(&long, 0)];
        assert_eq!(
            build_sources(&key, &rows).unwrap_err(),
            PrivacyError::BadInput { index: 1 }
        );
    }
}
