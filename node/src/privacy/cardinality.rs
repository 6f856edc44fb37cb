//! Overlap counting, PSI-cardinality (docs/architecture.md, "Private matching", point 6): the querier Q learns how many of
//! its keys are in the holder H's list, not which; H learns how many keys Q sent.
//!
//! ## Protocol (one session)
//!
//! 1. H draws a fresh session key `c` (never the screening key `k_HQ`, never reused) and
//!    sends its set `T = sort{ T(c·H(y)) : y in H's keys }`, where `H` is hash-to-group
//!    (RFC 9380 `expand_message_xmd` SHA-512 + ristretto255 Elligator, as RFC 9497, but
//!    under its own domain tag) and `T(P) = SHA-512(dst ‖ encode(P))[0..16]`.
//! 2. Q deduplicates its keys `x_1..x_n`, draws ONE blind `r`, sends `B_i = r·H(x_i)` in a
//!    random order.
//! 3. H checks every `B_i` is a valid non-identity point and answers `Z = shuffle(c·B_i)`.
//! 4. Q computes `T(r⁻¹·Z_j) = T(c·H(x_π(j)))` for every `j` and counts those in `T`.
//!
//! Why these choices:
//! * **Shared blind.** With one blind per element Q could try every `r_i⁻¹` on every `Z_j`
//!   and see which combination lands in `T`, undoing the shuffle. With one `r`, unblinding
//!   yields the multiset `{c·H(x_i)}` with no link to positions, and linking `c·H(x_i)` to
//!   `H(x_i)` without `c` is the decisional Diffie-Hellman problem.
//! * **Not the screening OPRF.** Q holds a replica of H's screening index, tagged with
//!   `OPRF(k_HQ, x) = Hash(x, k_HQ·H(x))`. Were `c = k_HQ`, Q could finalise every
//!   unblinded `Z_j` with every `x_i` (n² hashes) and look the results up: membership of
//!   each key. Hence a separate key, a separate hash-to-group domain, and set tags that
//!   hash only the point, never the input, so trial pairing gives nothing.
//! * **Fresh `c` per session.** With a reused `c`, the values `c·H(x)` repeat across
//!   sessions and two requests differing in one key would reveal that key's value and its
//!   membership at no extra cost. A fresh `c` costs H one scalar multiplication per listed
//!   key per session (the set `T`, 16 bytes a key on the wire).
//! * **What remains.** The count itself is the leak PSI-cardinality accepts: a request
//!   with one key, or two requests differing in one key, reveal that key's membership.
//!   Budgets (every key counts), a minimum batch size set by the service, and the audit
//!   of every count bound this. The count is as honest as H, which can always misstate its
//!   own list; Q's privacy does not depend on H's honesty (Q sends only blinded points and
//!   keeps the count).
//!
//! `voprf` 0.5 has no shared-blind API (each `VoprfClient::blind` draws its own scalar,
//! and the deterministic variant sits behind its `danger` feature), so this uses
//! `curve25519-dalek` 4 (the version `voprf` uses) directly, with `voprf`'s public
//! `Group::hash_to_curve` for the hash-to-group.

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand::rngs::OsRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use sha2::{Digest, Sha512};
use voprf::{Group, Ristretto255};
use zeroize::Zeroize;

use super::PrivacyError;
use super::oprf::Element;

const HASH_DST: &[u8] = b"tessera-cardinality-v1-HashToGroup-ristretto255-SHA512";
const TAG_DST: &[u8] = b"tessera-cardinality-v1-SetTag";

/// Bytes of a set tag.
pub const SET_TAG_LEN: usize = 16;
/// A holder's set entry for one session.
pub type SetTag = [u8; SET_TAG_LEN];

/// The holder's side of one session. The key is dropped (zeroised) with it.
pub struct CardinalityHolder {
    key: Scalar,
}

/// The holder's set for one session, sorted (which also hides the list's order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolderSet {
    tags: Vec<SetTag>,
}

/// The querier's side of one session: the shared blind. Zeroised on drop.
pub struct CardinalityQuery {
    blind: Scalar,
    sent: usize,
}

impl CardinalityHolder {
    /// A new session with a fresh key.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self {
            key: random_scalar(),
        }
    }

    /// The set `T` to send for this session; `keys` are the holder's match keys.
    pub fn holder_set<K: AsRef<[u8]> + Sync>(&self, keys: &[K]) -> Result<HolderSet, PrivacyError> {
        let tags = keys
            .par_iter()
            .enumerate()
            .map(|(index, key)| Ok(set_tag(&(hash_to_point(index, key.as_ref())? * self.key))))
            .collect::<Result<Vec<_>, PrivacyError>>()?;
        Ok(HolderSet::from_tags(tags))
    }

    /// `shuffle(c·B_i)`. Every element must be a valid, non-identity point; an error names it.
    pub fn evaluate_shuffled<E: AsRef<[u8]> + Sync>(
        &self,
        blinded: &[E],
    ) -> Result<Vec<Element>, PrivacyError> {
        if blinded.is_empty() {
            return Err(PrivacyError::BatchSize { len: 0 });
        }
        let mut out = blinded
            .par_iter()
            .enumerate()
            .map(|(index, e)| {
                Ok((decode_point(index, e.as_ref())? * self.key)
                    .compress()
                    .to_bytes())
            })
            .collect::<Result<Vec<Element>, PrivacyError>>()?;
        out.shuffle(&mut OsRng);
        Ok(out)
    }
}

impl Drop for CardinalityHolder {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl HolderSet {
    /// From the tags as received (sorted and deduplicated here, whatever the sender did).
    pub fn from_tags(mut tags: Vec<SetTag>) -> Self {
        tags.sort_unstable();
        tags.dedup();
        Self { tags }
    }

    /// The tags, sorted, for the wire.
    pub fn tags(&self) -> &[SetTag] {
        &self.tags
    }

    /// How many distinct keys the holder listed.
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    /// Whether the holder listed nothing.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    fn contains(&self, tag: &SetTag) -> bool {
        self.tags.binary_search(tag).is_ok()
    }
}

impl CardinalityQuery {
    /// Deduplicates `inputs`, blinds each with one shared blind, and returns the elements
    /// for the holder in a random order. An error names the input's position.
    pub fn blind(inputs: &[&[u8]]) -> Result<(Self, Vec<Element>), PrivacyError> {
        let mut distinct: Vec<(usize, &[u8])> = inputs.iter().copied().enumerate().collect();
        distinct.sort_unstable_by(|a, b| a.1.cmp(b.1));
        distinct.dedup_by(|a, b| a.1 == b.1);
        if distinct.is_empty() {
            return Err(PrivacyError::BatchSize { len: 0 });
        }
        let blind = random_scalar();
        let mut elements = distinct
            .par_iter()
            .map(|&(index, input)| Ok((hash_to_point(index, input)? * blind).compress().to_bytes()))
            .collect::<Result<Vec<Element>, PrivacyError>>()?;
        elements.shuffle(&mut OsRng);
        Ok((
            Self {
                blind,
                sent: elements.len(),
            },
            elements,
        ))
    }

    /// How many distinct keys were sent.
    pub fn len(&self) -> usize {
        self.sent
    }

    /// Whether nothing was sent (never, for a query made by [`CardinalityQuery::blind`]).
    pub fn is_empty(&self) -> bool {
        self.sent == 0
    }

    /// Unblinds the holder's answer and counts the keys in its set.
    pub fn count<E: AsRef<[u8]> + Sync>(
        &self,
        evaluated: &[E],
        holder: &HolderSet,
    ) -> Result<usize, PrivacyError> {
        if evaluated.len() != self.sent {
            return Err(PrivacyError::CountMismatch {
                expected: self.sent,
                got: evaluated.len(),
            });
        }
        let unblind = self.blind.invert();
        let hits = evaluated
            .par_iter()
            .enumerate()
            .map(|(index, e)| {
                Ok(usize::from(holder.contains(&set_tag(
                    &(decode_point(index, e.as_ref())? * unblind),
                ))))
            })
            .collect::<Result<Vec<usize>, PrivacyError>>()?;
        Ok(hits.into_iter().sum())
    }
}

impl Drop for CardinalityQuery {
    fn drop(&mut self) {
        self.blind.zeroize();
    }
}

fn random_scalar() -> Scalar {
    loop {
        let s = Scalar::random(&mut OsRng);
        if s != Scalar::ZERO {
            return s;
        }
    }
}

fn hash_to_point(index: usize, input: &[u8]) -> Result<RistrettoPoint, PrivacyError> {
    let point = Ristretto255::hash_to_curve::<Sha512>(&[input], &[HASH_DST])
        .map_err(|_| PrivacyError::BadInput { index })?;
    if point == RistrettoPoint::identity() {
        return Err(PrivacyError::BadInput { index });
    }
    Ok(point)
}

fn decode_point(index: usize, bytes: &[u8]) -> Result<RistrettoPoint, PrivacyError> {
    super::oprf::decode_element(index, bytes).map(|(point, _)| point)
}

fn set_tag(point: &RistrettoPoint) -> SetTag {
    let digest = Sha512::new()
        .chain_update(TAG_DST)
        .chain_update(point.compress().as_bytes())
        .finalize();
    let mut tag = [0u8; SET_TAG_LEN];
    tag.copy_from_slice(&digest[..SET_TAG_LEN]);
    tag
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::ristretto::CompressedRistretto;

    fn keys(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("mk1|name|{prefix} {i}")).collect()
    }

    #[test]
    fn counts_the_overlap() {
        let holder_keys = keys("LISTED", 50);
        let mut mine = keys("OTHER", 30);
        mine.extend_from_slice(&holder_keys[10..17]); // 7 shared
        mine.push(holder_keys[10].clone()); // a duplicate counts once
        let inputs: Vec<&[u8]> = mine.iter().map(String::as_bytes).collect();

        let holder = CardinalityHolder::new();
        let set = holder.holder_set(&holder_keys).unwrap();
        assert_eq!(set.len(), 50);
        let (query, request) = CardinalityQuery::blind(&inputs).unwrap();
        assert_eq!(query.len(), 37);
        let answer = holder.evaluate_shuffled(&request).unwrap();
        // The holder set travels as bytes.
        let received = HolderSet::from_tags(set.tags().to_vec());
        assert_eq!(query.count(&answer, &received).unwrap(), 7);

        // Another session's set (another key) matches nothing.
        let other = CardinalityHolder::new().holder_set(&holder_keys).unwrap();
        assert_eq!(query.count(&answer, &other).unwrap(), 0);
    }

    #[test]
    fn the_answer_is_shuffled() {
        let mine = keys("Q", 40);
        let inputs: Vec<&[u8]> = mine.iter().map(String::as_bytes).collect();
        let (_, request) = CardinalityQuery::blind(&inputs).unwrap();
        let holder = CardinalityHolder::new();
        let answer = holder.evaluate_shuffled(&request).unwrap();
        let in_order: Vec<Element> = request
            .iter()
            .map(|b| {
                (CompressedRistretto(*b).decompress().unwrap() * holder.key)
                    .compress()
                    .to_bytes()
            })
            .collect();
        // Same multiset, another order (40! orders: the identity has probability ~1e-48).
        assert_ne!(answer, in_order);
        let (mut a, mut b) = (answer, in_order);
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }

    #[test]
    fn request_hides_inputs_and_rejects_junk() {
        let mine = keys("SECRET NAME", 5);
        let inputs: Vec<&[u8]> = mine.iter().map(String::as_bytes).collect();
        let (query, request) = CardinalityQuery::blind(&inputs).unwrap();
        let bytes = request.concat();
        for input in &inputs {
            assert!(!bytes.windows(input.len()).any(|w| w == *input));
        }
        let holder = CardinalityHolder::new();
        let mut junk: Vec<Vec<u8>> = request.iter().map(|e| e.to_vec()).collect();
        junk[3] = vec![0xff; 32];
        assert_eq!(
            holder.evaluate_shuffled(&junk).unwrap_err(),
            PrivacyError::BadElement { index: 3 }
        );
        junk[3] = vec![0; 32];
        assert_eq!(
            holder.evaluate_shuffled(&junk).unwrap_err(),
            PrivacyError::BadElement { index: 3 }
        );
        junk[3] = vec![1; 5];
        assert_eq!(
            holder.evaluate_shuffled(&junk).unwrap_err(),
            PrivacyError::WrongLength { index: 3, len: 5 }
        );
        let empty: [Element; 0] = [];
        assert!(holder.evaluate_shuffled(&empty).is_err());

        let set = HolderSet::default();
        let answer = holder.evaluate_shuffled(&request).unwrap();
        assert_eq!(
            query.count(&answer[..4], &set).unwrap_err(),
            PrivacyError::CountMismatch {
                expected: 5,
                got: 4
            }
        );
        let mut bad = answer.clone();
        bad[1] = [0xff; 32];
        assert_eq!(
            query.count(&bad, &set).unwrap_err(),
            PrivacyError::BadElement { index: 1 }
        );
        assert!(CardinalityQuery::blind(&[]).is_err());
    }

    #[test]
    fn unblinding_recovers_the_holders_value_for_the_key() {
        let x = b"mk1|name|ACME";
        let (query, request) = CardinalityQuery::blind(&[x.as_slice()]).unwrap();
        let holder = CardinalityHolder::new();
        let answer = holder.evaluate_shuffled(&request).unwrap();
        let unblinded = CompressedRistretto(answer[0]).decompress().unwrap() * query.blind.invert();
        assert_eq!(unblinded, hash_to_point(0, x).unwrap() * holder.key);
    }
}
