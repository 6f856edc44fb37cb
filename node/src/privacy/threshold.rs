//! Threshold sealing of fuzzy names (docs/private-matching.md §2.2): a listed name's
//! secret `s` is split t-of-n with Shamir's scheme over ristretto255's scalar field, one
//! share per slot; each share is sealed once under a random slot key, the slot key is
//! given by a short pointer row under the OPRF output of every alternative of its slot, and
//! the name's label is sealed under a key derived from `s`. A querier holding `t` slots'
//! alternatives interpolates `s` and opens the label; with fewer it holds points of a
//! random polynomial of degree `t − 1`, which say nothing of `s`.
//!
//! Record bytes (the plaintext of a sealed index row, told apart by their first byte):
//!
//! ```text
//! 1  label (label_bytes)                        an exact key's row
//! 2  handle:16 · x:u8 · t:u8 · n:u8 · share:32   one share of a name (under its slot key)
//! 3  tokens:u8 · slots:u8 · count:u8 · count × common · label key:16    a name
//!    common = exact:8 · sound:8 · m:u8 · m × spelling:8 (sorted)
//! ```
//!
//! A notice's label is sealed once (record 1) under a random *label key*, as a share is
//! under its slot key; exact keys point to it and a name record names it.
//!
//! A pointer row is not sealed: its 24 bytes (where a sealed row has its nonce, with no
//! ciphertext after them) are `slot key:16 · relation:u8 · 0:7` XOR `y[16..40]`. Only the
//! holder of `y` finds the row (its tag is `y[0..16]`) and unmasks it; the seven zero bytes
//! tell a pointer from a row that is not one.
//!
//! Pure code: no party data is logged, nothing panics on bytes from a peer.

use curve25519_dalek::scalar::Scalar;
use rand::RngCore;
use sha2::{Digest, Sha512};

use super::PrivacyError;
use super::label::Label;
use super::label_bytes;
use super::oprf::OprfOutput;

/// Bytes of a name handle: groups the shares of one listed name.
pub const HANDLE_LEN: usize = 16;
/// Bytes of a common-token digest.
pub const DIGEST_LEN: usize = 8;
/// Most slots a name may have (share points are one byte).
pub const MAX_SLOTS: usize = 255;

/// First byte of a sealed record: a label, a share, a name.
pub const RECORD_LABEL: u8 = 1;
pub const RECORD_SHARE: u8 = 2;
pub const RECORD_NAME: u8 = 3;
const SHARE_LEN: usize = 1 + HANDLE_LEN + 3 + 32;
/// Bytes of a slot key.
pub const SLOT_KEY_LEN: usize = 16;
/// Bytes of a pointer row's body (the length of a sealed row's nonce).
pub const POINTER_LEN: usize = 24;

pub type Handle = [u8; HANDLE_LEN];
pub type SlotKey = [u8; SLOT_KEY_LEN];
pub type CommonDigest = [u8; DIGEST_LEN];

fn random_scalar(rng: &mut impl RngCore) -> Scalar {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// A fresh secret and its shares `f(1), …, f(n)` for a threshold of `t` (1 ≤ t ≤ n ≤ 255).
pub fn split(t: usize, n: usize) -> Result<(Scalar, Vec<Scalar>), PrivacyError> {
    if t == 0 || t > n || n > MAX_SLOTS {
        return Err(PrivacyError::BadThreshold { t, n });
    }
    let mut rng = rand::thread_rng();
    let coefficients: Vec<Scalar> = (0..t).map(|_| random_scalar(&mut rng)).collect();
    let shares = (1..=n as u64)
        .map(|x| {
            let x = Scalar::from(x);
            // Horner: a_0 + x (a_1 + x (a_2 + …)).
            coefficients
                .iter()
                .rev()
                .fold(Scalar::ZERO, |acc, a| acc * x + a)
        })
        .collect();
    Ok((coefficients[0], shares))
}

/// The value at 0 of the polynomial through `points` (distinct non-zero `x`). With fewer
/// points than the threshold the result is a value unrelated to the secret.
pub fn interpolate(points: &[(u8, Scalar)]) -> Option<Scalar> {
    let mut secret = Scalar::ZERO;
    for (i, (xi, yi)) in points.iter().enumerate() {
        let xi_s = Scalar::from(u64::from(*xi));
        let mut num = Scalar::ONE;
        let mut den = Scalar::ONE;
        for (j, (xj, _)) in points.iter().enumerate() {
            if i == j {
                continue;
            }
            if xj == xi || *xj == 0 {
                return None;
            }
            let xj_s = Scalar::from(u64::from(*xj));
            num *= xj_s;
            den *= xj_s - xi_s;
        }
        secret += yi * num * den.invert();
    }
    Some(secret)
}

/// One share of a listed name, as sealed under its slot key.
#[derive(Clone, PartialEq, Eq)]
pub struct ShareRecord {
    pub handle: Handle,
    /// The share point: slot index + 1.
    pub x: u8,
    pub t: u8,
    pub n: u8,
    pub share: Scalar,
}

impl std::fmt::Debug for ShareRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareRecord")
            .field("x", &self.x)
            .field("t", &self.t)
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

impl ShareRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SHARE_LEN);
        out.push(RECORD_SHARE);
        out.extend_from_slice(&self.handle);
        out.extend_from_slice(&[self.x, self.t, self.n]);
        out.extend_from_slice(self.share.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, PrivacyError> {
        if bytes.len() != SHARE_LEN {
            return Err(PrivacyError::RecordMalformed { offset: 0 });
        }
        let mut handle = [0u8; HANDLE_LEN];
        handle.copy_from_slice(&bytes[1..=HANDLE_LEN]);
        let [x, t, n] = [17, 18, 19].map(|i| bytes[i]);
        if x == 0 || x > n || t == 0 || t > n {
            return Err(PrivacyError::RecordMalformed { offset: 17 });
        }
        let mut share = [0u8; 32];
        share.copy_from_slice(&bytes[20..]);
        let share = Option::<Scalar>::from(Scalar::from_canonical_bytes(share))
            .ok_or(PrivacyError::RecordMalformed { offset: 20 })?;
        Ok(Self {
            handle,
            x,
            t,
            n,
            share,
        })
    }
}

/// The digests of one common token of a listed name, under the name's key: of the token,
/// of its sound code, and (for tokens of 4 letters or more) of the token and each of its
/// one-letter deletions, sorted.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CommonDigests {
    pub exact: CommonDigest,
    pub sound: CommonDigest,
    pub spelling: Vec<CommonDigest>,
}

/// A listed name's record, sealed under the key derived from its secret.
#[derive(Clone, PartialEq, Debug)]
pub struct NameRecord {
    /// Tokens of the listed name, distinctive or not.
    pub tokens: u8,
    pub slots: u8,
    pub common: Vec<CommonDigests>,
    /// The key of its notice's label row ([`slot_row_key`]).
    pub label_key: SlotKey,
}

impl NameRecord {
    pub fn encode(&self) -> Result<Vec<u8>, PrivacyError> {
        let mut out = vec![RECORD_NAME, self.tokens, self.slots];
        let count = u8::try_from(self.common.len()).map_err(|_| PrivacyError::LabelTooLong {
            field: "common tokens",
        })?;
        out.push(count);
        for c in &self.common {
            out.extend_from_slice(&c.exact);
            out.extend_from_slice(&c.sound);
            let m = u8::try_from(c.spelling.len()).map_err(|_| PrivacyError::LabelTooLong {
                field: "common token",
            })?;
            out.push(m);
            for d in &c.spelling {
                out.extend_from_slice(d);
            }
        }
        out.extend_from_slice(&self.label_key);
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Self, PrivacyError> {
        let malformed = |offset| PrivacyError::RecordMalformed { offset };
        let head = bytes.get(..4).ok_or(malformed(0))?;
        let (tokens, slots, count) = (head[1], head[2], head[3]);
        let mut at = 4;
        let mut take = |len: usize| -> Result<&[u8], PrivacyError> {
            let out = bytes.get(at..at + len).ok_or(malformed(at))?;
            at += len;
            Ok(out)
        };
        let digest = |b: &[u8]| {
            let mut d = [0u8; DIGEST_LEN];
            d.copy_from_slice(b);
            d
        };
        let mut common = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let exact = digest(take(DIGEST_LEN)?);
            let sound = digest(take(DIGEST_LEN)?);
            let m = take(1)?[0];
            let spelling = (0..m)
                .map(|_| take(DIGEST_LEN).map(digest))
                .collect::<Result<Vec<_>, _>>()?;
            common.push(CommonDigests {
                exact,
                sound,
                spelling,
            });
        }
        let label_key = <SlotKey>::try_from(&bytes[at..]).map_err(|_| malformed(at))?;
        Ok(Self {
            tokens,
            slots,
            common,
            label_key,
        })
    }
}

/// What an index row holds once opened.
#[derive(Clone, Debug)]
pub enum Record {
    /// An exact key's label.
    Label(Box<Label>),
    /// A fuzzy alternative's pointer: the key of its slot's share, and how the alternative
    /// relates to the slot's token (`fuzzy::Relation::code`).
    Pointer { slot: SlotKey, relation: u8 },
    /// One share of a fuzzy name.
    Share(ShareRecord),
    /// A fuzzy name's label.
    Name(NameRecord),
}

impl Record {
    /// Reads an opened row's plaintext (authenticated as the holder's, still checked).
    pub fn decode(bytes: &[u8]) -> Result<Self, PrivacyError> {
        match bytes.first() {
            Some(&RECORD_LABEL) => label_bytes::decode(bytes).map(|l| Self::Label(Box::new(l))),
            Some(&RECORD_SHARE) => ShareRecord::decode(bytes).map(Self::Share),
            Some(&RECORD_NAME) => NameRecord::decode(bytes).map(Self::Name),
            _ => Err(PrivacyError::RecordMalformed { offset: 0 }),
        }
    }
}

/// A fresh random slot key.
pub fn slot_key() -> SlotKey {
    let mut k = [0u8; SLOT_KEY_LEN];
    rand::thread_rng().fill_bytes(&mut k);
    k
}

/// The 64 bytes that tag and seal a slot's share row, as an OPRF output would.
pub fn slot_row_key(slot: &SlotKey) -> OprfOutput {
    let mut h = Sha512::new();
    h.update(b"tessera-mk2-slot-v1");
    h.update(slot);
    h.finalize().into()
}

/// A pointer row's body: `slot ‖ relation ‖ 0^7` masked with `y[16..40]`.
pub fn mask_pointer(slot: &SlotKey, relation: u8, y: &OprfOutput) -> [u8; POINTER_LEN] {
    let mut body = [0u8; POINTER_LEN];
    body[..SLOT_KEY_LEN].copy_from_slice(slot);
    body[SLOT_KEY_LEN] = relation;
    for (b, m) in body.iter_mut().zip(&y[16..16 + POINTER_LEN]) {
        *b ^= m;
    }
    body
}

/// Unmasks a pointer row's body with the output that found it; none when the zero bytes
/// are not zero (not a pointer, or not ours to read).
pub fn unmask_pointer(body: &[u8; POINTER_LEN], y: &OprfOutput) -> Option<Record> {
    let mut plain = *body;
    for (b, m) in plain.iter_mut().zip(&y[16..16 + POINTER_LEN]) {
        *b ^= m;
    }
    if plain[SLOT_KEY_LEN + 1..].iter().any(|&b| b != 0) {
        return None;
    }
    let mut slot = [0u8; SLOT_KEY_LEN];
    slot.copy_from_slice(&plain[..SLOT_KEY_LEN]);
    Some(Record::Pointer {
        slot,
        relation: plain[SLOT_KEY_LEN],
    })
}

/// The keys a name's secret gives: where its label row is and what seals it, and the
/// key of its common-token digests.
pub struct NameKey {
    row: OprfOutput,
    digests: [u8; 32],
}

impl NameKey {
    pub fn derive(secret: &Scalar, handle: &Handle) -> Self {
        let mut h = Sha512::new();
        h.update(b"tessera-mk2-name-v1");
        h.update(secret.as_bytes());
        h.update(handle);
        let row: OprfOutput = h.finalize().into();
        let mut h = Sha512::new();
        h.update(b"tessera-mk2-common-v1");
        h.update(secret.as_bytes());
        h.update(handle);
        let wide = h.finalize();
        let mut digests = [0u8; 32];
        digests.copy_from_slice(&wide[..32]);
        Self { row, digests }
    }

    /// The 64 bytes that tag and seal the name's label row, as an OPRF output would.
    pub fn row_key(&self) -> &OprfOutput {
        &self.row
    }

    /// The digest of `value` of kind `kind` (`e` exact, `s` sound, `d` spelling).
    pub fn digest(&self, kind: u8, value: &str) -> CommonDigest {
        let mut h = Sha512::new();
        h.update(self.digests);
        h.update([kind]);
        h.update(value.as_bytes());
        let mut d = [0u8; DIGEST_LEN];
        d.copy_from_slice(&h.finalize()[..DIGEST_LEN]);
        d
    }
}

/// A fresh random handle.
pub fn handle() -> Handle {
    let mut h = [0u8; HANDLE_LEN];
    rand::thread_rng().fill_bytes(&mut h);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_t_shares_give_the_secret_and_t_minus_one_do_not() {
        for (t, n) in [(1, 1), (2, 3), (3, 4), (5, 6), (11, 16)] {
            let (secret, shares) = split(t, n).unwrap();
            let points: Vec<(u8, Scalar)> = shares
                .iter()
                .enumerate()
                .map(|(i, s)| (i as u8 + 1, *s))
                .collect();
            assert_eq!(interpolate(&points[..t]), Some(secret));
            assert_eq!(interpolate(&points[n - t..]), Some(secret));
            if t > 1 {
                assert_ne!(interpolate(&points[..t - 1]), Some(secret));
            }
        }
        assert!(interpolate(&[(1, Scalar::ONE), (1, Scalar::ONE)]).is_none());
        assert!(split(0, 3).is_err() && split(4, 3).is_err() && split(2, 256).is_err());
    }

    #[test]
    fn records_round_trip_and_refuse_bad_bytes() {
        let (_, shares) = split(2, 3).unwrap();
        let share = ShareRecord {
            handle: handle(),
            x: 2,
            t: 2,
            n: 3,
            share: shares[1],
        };
        let bytes = share.encode();
        assert!(matches!(Record::decode(&bytes), Ok(Record::Share(s)) if s == share));
        for cut in 0..bytes.len() {
            assert!(Record::decode(&bytes[..cut]).is_err());
        }
        let mut bad = bytes.clone();
        bad[17] = 4; // x beyond n
        assert!(Record::decode(&bad).is_err());
        let name = NameRecord {
            tokens: 3,
            slots: 2,
            common: vec![CommonDigests {
                exact: [1; 8],
                sound: [2; 8],
                spelling: vec![[3; 8], [4; 8]],
            }],
            label_key: slot_key(),
        };
        let bytes = name.encode().unwrap();
        assert!(matches!(Record::decode(&bytes), Ok(Record::Name(n)) if n == name));
        for cut in 0..bytes.len() {
            assert!(Record::decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        assert!(Record::decode(&[9, 1, 2]).is_err());
    }

    #[test]
    fn pointers_unmask_only_with_their_output() {
        let y: OprfOutput = [7u8; 64];
        let other: OprfOutput = [8u8; 64];
        let slot = slot_key();
        let body = mask_pointer(&slot, 3, &y);
        assert!(matches!(
            unmask_pointer(&body, &y),
            Some(Record::Pointer { slot: s, relation: 3 }) if s == slot
        ));
        assert!(unmask_pointer(&body, &other).is_none());
        assert_ne!(&body[..SLOT_KEY_LEN], &slot[..], "the slot key is masked");
    }
}
