//! False positives: (party, notice) pairs the operator judged not to be the
//! same party. Stored under an HMAC-SHA256 digest of the party's identifying
//! fields (kind, primary name, identifiers, countries, birth date; spelling
//! and order normalised) with a key kept in this node's store, so that the
//! same party screened again is recognised without the party being kept.

use std::collections::BTreeSet;

use prost::Message;
use rand::RngCore;
use ring::hmac;
use tessera_proto::v1::{FalsePositive, Match, Party as WireParty};

use super::ReviewError;
use crate::store::{Store, StoreError};

const TREE: &str = "false_positives";
/// The digest key's record.
const KEY: &[u8] = b"key";
/// Prefix of a pair's record: digest (32 bytes), origin, 0, serial.
const PAIR: u8 = b'p';

/// The false positives of this node.
#[derive(Debug, Clone)]
pub struct FalsePositives {
    tree: sled::Tree,
    key: hmac::Key,
}

fn access(record: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
    move |source| StoreError::Access {
        tree: TREE,
        record,
        source,
    }
}

fn pair_key(digest: &[u8], origin: &str, serial: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + digest.len() + origin.len() + 1 + serial.len());
    k.push(PAIR);
    k.extend_from_slice(digest);
    k.extend_from_slice(origin.as_bytes());
    k.push(0);
    k.extend_from_slice(serial.as_bytes());
    k
}

/// Lower case, single spaces.
fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The canonical text a party's digest is taken over.
fn canonical(p: &WireParty) -> String {
    let mut ids: Vec<String> = p
        .ids
        .iter()
        .map(|i| {
            format!(
                "{}\u{1f}{}\u{1f}{}",
                fold(&i.r#type),
                fold(&i.value).replace(' ', ""),
                fold(&i.country)
            )
        })
        .collect();
    ids.sort();
    let countries: BTreeSet<String> = p.countries.iter().map(|c| fold(c)).collect();
    serde_json::json!([p.kind, fold(&p.name), ids, countries, p.birth_date.trim(),]).to_string()
}

/// Notices suppressed for one party: (origin, serial).
#[derive(Debug, Default)]
pub struct Suppressed(BTreeSet<(String, String)>);

impl Suppressed {
    pub fn contains(&self, origin: &str, serial: &str) -> bool {
        self.0.contains(&(origin.to_owned(), serial.to_owned()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Drops the suppressed matches; returns how many.
    pub fn retain(&self, matches: &mut Vec<Match>) -> u32 {
        let before = matches.len();
        matches.retain(|m| !self.contains(&m.origin, &m.serial));
        (before - matches.len()) as u32
    }
}

impl FalsePositives {
    /// Opens the store, making the digest key on first use.
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        let tree = store.tree(TREE)?;
        let secret = match tree.get(KEY).map_err(access("digest key"))? {
            Some(k) if k.len() == 32 => k.to_vec(),
            Some(_) => {
                return Err(StoreError::Corrupt {
                    tree: TREE,
                    record: "digest key",
                });
            }
            None => {
                let mut k = vec![0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut k);
                // Another opener may have won the race: keep whichever is stored.
                let _ = tree
                    .compare_and_swap(KEY, None as Option<&[u8]>, Some(k.as_slice()))
                    .map_err(access("digest key"))?;
                tree.get(KEY)
                    .map_err(access("digest key"))?
                    .map(|k| k.to_vec())
                    .ok_or(StoreError::Corrupt {
                        tree: TREE,
                        record: "digest key",
                    })?
            }
        };
        Ok(Self {
            tree,
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        })
    }

    /// The keyed digest of a party.
    pub fn digest(&self, party: &WireParty) -> Vec<u8> {
        hmac::sign(&self.key, canonical(party).as_bytes())
            .as_ref()
            .to_vec()
    }

    /// Records that `party` is not the party of notice `origin/serial`.
    pub fn mark(
        &self,
        party: &WireParty,
        origin: &str,
        serial: &str,
        reason: &str,
    ) -> Result<FalsePositive, ReviewError> {
        if origin.trim().is_empty() || serial.trim().is_empty() {
            return Err(ReviewError::Invalid(
                "origin and serial: name the notice (AGENCY and SERIAL)".into(),
            ));
        }
        if reason.trim().is_empty() {
            return Err(ReviewError::Invalid(
                "reason: say why the party is not the notice's".into(),
            ));
        }
        let digest = self.digest(party);
        let record = FalsePositive {
            party_digest: hex::encode(&digest),
            origin: origin.to_owned(),
            serial: serial.to_owned(),
            reason: reason.trim().to_owned(),
            at_ms: crate::peers::now_ms(),
        };
        self.tree
            .insert(pair_key(&digest, origin, serial), record.encode_to_vec())
            .map_err(access("false positive"))?;
        Ok(record)
    }

    /// Clears a pair; whether it was there.
    pub fn clear(&self, digest_hex: &str, origin: &str, serial: &str) -> Result<bool, ReviewError> {
        let digest = hex::decode(digest_hex)
            .ok()
            .filter(|d| d.len() == 32)
            .ok_or_else(|| ReviewError::Invalid("party_digest: 64 hex digits, as listed".into()))?;
        Ok(self
            .tree
            .remove(pair_key(&digest, origin, serial))
            .map_err(access("false positive"))?
            .is_some())
    }

    /// Every pair, oldest first.
    pub fn list(&self) -> Result<Vec<FalsePositive>, ReviewError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([PAIR]) {
            let (_, v) = item.map_err(access("false positive"))?;
            out.push(
                FalsePositive::decode(v.as_ref()).map_err(|_| StoreError::Corrupt {
                    tree: TREE,
                    record: "false positive",
                })?,
            );
        }
        out.sort_by_key(|f| f.at_ms);
        Ok(out)
    }

    /// The notices suppressed for `party`.
    pub fn for_party(&self, party: &WireParty) -> Result<Suppressed, ReviewError> {
        let mut prefix = vec![PAIR];
        prefix.extend_from_slice(&self.digest(party));
        let mut out = BTreeSet::new();
        for item in self.tree.scan_prefix(&prefix) {
            let (k, _) = item.map_err(access("false positive"))?;
            let rest = &k[prefix.len()..];
            let Some(split) = rest.iter().position(|&b| b == 0) else {
                continue;
            };
            out.insert((
                String::from_utf8_lossy(&rest[..split]).into_owned(),
                String::from_utf8_lossy(&rest[split + 1..]).into_owned(),
            ));
        }
        Ok(Suppressed(out))
    }
}

/// The notices suppressed for a watched party, read from `store`; nothing
/// when the store cannot be read (logged: results are then shown in full).
pub fn suppressed_in(store: &Store, party: Option<&WireParty>) -> Suppressed {
    let Some(party) = party else {
        return Suppressed::default();
    };
    match FalsePositives::open(store).and_then(|f| {
        f.for_party(party).map_err(|e| match e {
            ReviewError::Store(e) => e,
            _ => StoreError::Corrupt {
                tree: TREE,
                record: "false positive",
            },
        })
    }) {
        Ok(s) => s,
        Err(error) => {
            tracing::warn!(%error, "false positives unread; watch results shown in full");
            Suppressed::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_proto::v1::PartyId;

    fn store() -> Store {
        Store::from_db(sled::Config::new().temporary(true).open().expect("db"))
    }

    fn party(name: &str) -> WireParty {
        WireParty {
            kind: 2,
            name: name.into(),
            countries: vec!["RU".into()],
            ids: vec![PartyId {
                r#type: "LEI".into(),
                value: "5299 00T8".into(),
                country: String::new(),
            }],
            ..WireParty::default()
        }
    }

    #[test]
    fn a_marked_pair_is_suppressed_for_that_party_only_until_cleared() {
        let s = store();
        let fp = FalsePositives::open(&s).expect("open");
        let record = fp
            .mark(&party("Acme Trading"), "DE-BAFA", "S-1", "other LEI")
            .expect("mark");
        assert!(!record.party_digest.contains("acme"));
        // Spacing and case do not make another party.
        let again = fp.for_party(&party("  ACME   trading ")).expect("read");
        assert!(again.contains("DE-BAFA", "S-1"));
        assert!(!again.contains("DE-BAFA", "S-2"));
        assert!(
            fp.for_party(&party("Acme Trading Two"))
                .expect("read")
                .is_empty()
        );
        // The key persists: a reopened store recognises the party.
        let reopened = FalsePositives::open(&s).expect("reopen");
        assert!(
            reopened
                .for_party(&party("Acme Trading"))
                .expect("read")
                .contains("DE-BAFA", "S-1")
        );
        assert_eq!(reopened.list().expect("list").len(), 1);
        assert!(
            reopened
                .clear(&record.party_digest, "DE-BAFA", "S-1")
                .expect("clear")
        );
        assert!(
            reopened
                .for_party(&party("Acme Trading"))
                .expect("read")
                .is_empty()
        );
    }

    #[test]
    fn a_pair_needs_a_notice_and_a_reason() {
        let fp = FalsePositives::open(&store()).expect("open");
        assert!(fp.mark(&party("A"), "DE-BAFA", "S-1", " ").is_err());
        assert!(fp.mark(&party("A"), "", "S-1", "why").is_err());
        assert!(fp.clear("zz", "DE-BAFA", "S-1").is_err());
    }
}
