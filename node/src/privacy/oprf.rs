//! The OPRF of RFC 9497 in VOPRF mode, ciphersuite ristretto255-SHA512 (`voprf` 0.5).
//!
//! A holder keeps one [`OprfKey`] per peer it serves (so a leaked index is attributable),
//! with an epoch that a rotation increments. The querier blinds its match keys ([`blind`]),
//! the holder evaluates them in one batch with one DLEQ proof ([`evaluate_blinded`]), and
//! the querier verifies the proof against the holder's published key and unblinds
//! ([`finalize`]). The holder computes the same outputs directly ([`OprfKey::evaluate`])
//! to build its index. Blinded elements are uniformly random group elements: they carry
//! nothing of the input.
//!
//! The querier blinds additively, `Cᵢ = HashToGroup(xᵢ) + rᵢ·G`, and unblinds with
//! `Dᵢ − rᵢ·pk`: both multiplications have a fixed base (the generator, and the holder's
//! public key, whose table is built once and kept), about half the cost of the RFC's
//! multiplicative `rᵢ·HashToGroup(xᵢ)` and `rᵢ⁻¹·Dᵢ`, whose base changes with every
//! element. The holder cannot tell the two apart (either element is uniformly random), and
//! the outputs are the RFC's: `Dᵢ − rᵢ·pk = k·HashToGroup(xᵢ)` when `Dᵢ = k·Cᵢ` and
//! `pk = k·G`, which the proof establishes before anything is unblinded. Additive blinding
//! is safe exactly there: with a public key the querier already holds from the holder, and
//! the proof verified against it (Jarecki, Krawczyk and Xu, PKC 2021; the CFRG drafts of
//! this RFC prescribed it for verifiable mode until a later draft kept one blinding for
//! all modes). The holder's side is the RFC's unchanged.
//!
//! Evaluating encodes a whole batch of points with one field inversion
//! ([`multiply_and_encode`]) instead of one per point; the tests check every step against
//! `voprf`.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoBasepointTable, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, VartimeMultiscalarMul};
use rand::rngs::OsRng;
use rayon::prelude::*;
use sha2::{Digest, Sha512};
use voprf::{Group, Ristretto255, VoprfServer};
use zeroize::{Zeroize, Zeroizing};

use super::PrivacyError;

type Suite = Ristretto255;

/// Bytes of an encoded group element (blinded or evaluated).
pub const ELEMENT_LEN: usize = 32;
/// Bytes of a batch DLEQ proof (two scalars).
pub const PROOF_LEN: usize = 64;
/// Most elements in one batch (the RFC's batch limit).
pub const MAX_BATCH: usize = u16::MAX as usize;
/// Bytes of a serialised [`OprfKey`]: epoch (4, big-endian) then the secret scalar (32).
pub const KEY_BYTES_LEN: usize = 4 + 32;

/// An encoded ristretto255 element.
pub type Element = [u8; ELEMENT_LEN];
/// A batch DLEQ proof.
pub type Proof = [u8; PROOF_LEN];
/// An OPRF output: `tag = y[0..16]`, AEAD key `= y[16..48]`.
pub type OprfOutput = [u8; 64];

/// A holder's OPRF key for one served peer. Secret: `Debug` shows the epoch and a public
/// key prefix only.
pub struct OprfKey {
    server: VoprfServer<Suite>,
    /// The same secret as a scalar, for the batch evaluation (zeroised on drop).
    k: Zeroizing<Scalar>,
    epoch: u32,
}

/// The secret scalar of a `voprf` server (its serialisation starts with it); none if it is
/// not a canonical non-zero scalar.
fn secret_of(server: &VoprfServer<Suite>) -> Option<Zeroizing<Scalar>> {
    let both = Zeroizing::new(server.serialize());
    let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(to_array(&both[..32]));
    Option::<Scalar>::from(Scalar::from_canonical_bytes(*bytes))
        .filter(|k| *k != Scalar::ZERO)
        .map(Zeroizing::new)
}

impl OprfKey {
    /// A fresh random key.
    pub fn generate(epoch: u32) -> Self {
        // `VoprfServer::new` derives the key from 32 random bytes with empty info; it fails
        // only when every one of 256 derivation attempts yields zero (probability ~2^-64000).
        let server = VoprfServer::new(&mut OsRng).expect("key derivation from a 32-byte seed");
        // `voprf` derives a canonical non-zero scalar, which is what its serialisation holds.
        let k = secret_of(&server).expect("voprf keeps a canonical non-zero secret scalar");
        Self { server, k, epoch }
    }

    /// The key's epoch (a rotation starts a new one).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Secret bytes for storage: epoch (big-endian) then the scalar. Zeroised on drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_BYTES_LEN]> {
        let mut out = Zeroizing::new([0u8; KEY_BYTES_LEN]);
        out[..4].copy_from_slice(&self.epoch.to_be_bytes());
        // The server serialises as scalar (32) then public key (32).
        let both = Zeroizing::new(self.server.serialize());
        out[4..].copy_from_slice(&both[..32]);
        out
    }

    /// Reads [`OprfKey::to_bytes`]; rejects a wrong length, a non-canonical or zero scalar.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PrivacyError> {
        if bytes.len() != KEY_BYTES_LEN {
            return Err(PrivacyError::BadKey);
        }
        let mut epoch = [0u8; 4];
        epoch.copy_from_slice(&bytes[..4]);
        let server = VoprfServer::new_with_key(&bytes[4..]).map_err(|_| PrivacyError::BadKey)?;
        Ok(Self {
            k: secret_of(&server).ok_or(PrivacyError::BadKey)?,
            server,
            epoch: u32::from_be_bytes(epoch),
        })
    }

    /// The public key that queriers verify proofs against (published per epoch).
    pub fn public_key_bytes(&self) -> Element {
        to_array(&Suite::serialize_elem(self.server.get_public_key()))
    }

    /// The PRF itself, for building the index: `y = OPRF(k, input)`.
    pub fn evaluate(&self, input: &[u8]) -> Result<OprfOutput, PrivacyError> {
        let out = self
            .server
            .evaluate(input)
            .map_err(|_| PrivacyError::BadInput { index: 0 })?;
        Ok(to_array(&out))
    }
}

impl fmt::Debug for OprfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pk = self.public_key_bytes();
        f.debug_struct("OprfKey")
            .field("epoch", &self.epoch)
            .field(
                "public_key_prefix",
                &format_args!("{:02x}{:02x}{:02x}{:02x}", pk[0], pk[1], pk[2], pk[3]),
            )
            .finish_non_exhaustive()
    }
}

/// What the querier keeps between [`blind`] and [`finalize`]: the blinds, the blinded
/// elements and the inputs. Secret: `Debug` shows the batch size only. One state may
/// serve the answers of several holders (the same blinded elements sent to each).
pub struct BlindState {
    /// The blinds `rᵢ` (unblinding subtracts `rᵢ·pk`).
    blinds: Vec<Scalar>,
    blinded: Vec<(RistrettoPoint, Element)>,
    inputs: Vec<Vec<u8>>,
}

impl Drop for BlindState {
    fn drop(&mut self) {
        self.blinds.zeroize();
    }
}

impl BlindState {
    /// How many inputs were blinded.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether the batch is empty (never, for a state made by [`blind`]).
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

impl fmt::Debug for BlindState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlindState")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// Querier: blinds each input with its own random scalar, `HashToGroup(x) + r·G` (the
/// module doc says why additively). The elements go to the holder.
pub fn blind(inputs: &[&[u8]]) -> Result<(BlindState, Vec<Element>), PrivacyError> {
    let blinds = (0..inputs.len())
        .map(|_| Scalar::random(&mut OsRng))
        .collect();
    blind_with(inputs, blinds)
}

/// `1/2 mod ℓ`. [`RistrettoPoint::double_and_compress_batch`] encodes `2·Q` for each `Q`
/// with one field inversion for the whole batch instead of one per point; multiplying by
/// `s/2` instead of `s` makes that the encoding of `s·X`.
static HALF: std::sync::LazyLock<Scalar> = std::sync::LazyLock::new(|| Scalar::from(2u8).invert());

/// The encoding of `k·Xᵢ` for each point, with one inversion for the batch.
fn multiply_and_encode<'a>(
    k: &Scalar,
    points: impl Iterator<Item = &'a RistrettoPoint>,
) -> Vec<Element> {
    let half = Zeroizing::new(k * *HALF);
    let halves: Vec<RistrettoPoint> = points.map(|x| *half * x).collect();
    RistrettoPoint::double_and_compress_batch(&halves)
        .into_iter()
        .map(|e| e.to_bytes())
        .collect()
}

/// RFC 9497 `HashToGroup` of ristretto255-SHA512 in VOPRF mode; input `index` of a batch.
fn hash_to_group(index: usize, input: &[u8]) -> Result<RistrettoPoint, PrivacyError> {
    if input.len() > usize::from(u16::MAX) {
        return Err(PrivacyError::BadInput { index });
    }
    Suite::hash_to_curve::<Sha512>(&[input], &[b"HashToGroup-", CONTEXT])
        .ok()
        .filter(|p| *p != RistrettoPoint::identity())
        .ok_or(PrivacyError::BadInput { index })
}

/// [`blind`] with the given blinds. An element that comes out as the identity (a blind of
/// `−HashToGroup(x)`'s discrete logarithm: probability 2⁻²⁵² for a random one) is an error
/// naming it, since no holder would evaluate it.
fn blind_with(
    inputs: &[&[u8]],
    blinds: Vec<Scalar>,
) -> Result<(BlindState, Vec<Element>), PrivacyError> {
    check_batch(inputs.len())?;
    // On every core of the caller's rayon pool (`matching::screen` gives screenings one of
    // their own): blinding comes before any holder can start, so a core left idle here is
    // time added to every screening.
    let blinded = inputs
        .par_iter()
        .zip(&blinds)
        .enumerate()
        .with_min_len(8)
        .map(|(index, (input, r))| {
            let c = hash_to_group(index, input)? + RistrettoPoint::mul_base(r);
            if c == RistrettoPoint::identity() {
                return Err(PrivacyError::BadInput { index });
            }
            Ok((c, c.compress().to_bytes()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let elements = blinded.iter().map(|(_, e)| *e).collect();
    let inputs = inputs.iter().map(|i| i.to_vec()).collect();
    Ok((
        BlindState {
            blinds,
            blinded,
            inputs,
        },
        elements,
    ))
}

/// Most holders' key tables kept (about 30 KB each): a node's peers' current keys, and a
/// bound whatever keys they publish.
const UNBLIND_TABLES: usize = 64;

/// The fixed-base table of a holder's public key, built once (about a millisecond) and kept
/// for its later answers. Public data only.
fn unblind_table(pk_bytes: &Element, pk: &RistrettoPoint) -> Arc<RistrettoBasepointTable> {
    type Tables = Vec<(Element, Arc<RistrettoBasepointTable>)>;
    static TABLES: Mutex<Tables> = Mutex::new(Vec::new());
    // A poisoned lock only means that another thread panicked holding it; the list is still
    // whole (each change is one step).
    let tables = || TABLES.lock().unwrap_or_else(PoisonError::into_inner);
    let cached = |tables: &Tables| {
        tables
            .iter()
            .find(|(bytes, _)| bytes == pk_bytes)
            .map(|(_, t)| t.clone())
    };
    if let Some(table) = cached(&tables()) {
        return table;
    }
    // Built outside the lock; a table another thread built meanwhile is the same.
    let table = Arc::new(RistrettoBasepointTable::create(pk));
    let mut tables = tables();
    if let Some(table) = cached(&tables) {
        return table;
    }
    if tables.len() >= UNBLIND_TABLES {
        tables.remove(0);
    }
    tables.push((*pk_bytes, table.clone()));
    table
}

/// Holder: evaluates a batch of blinded elements from a peer with `key`, with one proof.
/// Any element of the wrong length, not a point, or the identity is an error naming it.
///
/// RFC 9497 `BlindEvaluateBatch` with `GenerateProof`, the composite `M = Σ dᵢ·Cᵢ` computed
/// as one multiscalar multiplication (and `Z = k·M`, as the RFC allows the prover). The
/// tests check the proof with `voprf`'s own verifier.
pub fn evaluate_blinded<E: AsRef<[u8]>>(
    key: &OprfKey,
    blinded: &[E],
) -> Result<(Vec<Element>, Proof), PrivacyError> {
    check_batch(blinded.len())?;
    let k: &Scalar = &key.k;
    let cs = blinded
        .iter()
        .enumerate()
        .map(|(index, e)| decode_element(index, e.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let ds = multiply_and_encode(k, cs.iter().map(|(point, _)| point));
    let pk_bytes = key.public_key_bytes();
    let weights = composite_weights(&pk_bytes, cs.iter().map(|(_, c)| c).zip(&ds));
    let m = RistrettoPoint::vartime_multiscalar_mul(&weights, cs.iter().map(|(p, _)| p));
    let z = k * m;
    let r = Scalar::random(&mut OsRng);
    let t2 = RistrettoPoint::mul_base(&r);
    let t3 = r * m;
    let c = challenge(&pk_bytes, &m, &z, &t2, &t3);
    let s = r - c * k;
    let mut proof = [0u8; PROOF_LEN];
    proof[..32].copy_from_slice(c.as_bytes());
    proof[32..].copy_from_slice(s.as_bytes());
    Ok((ds, proof))
}

/// Querier: verifies the holder's batch proof against its published `public_key` and
/// unblinds (RFC 9497 `Finalize` in VOPRF mode). Outputs are in the order of the inputs
/// given to [`blind`].
///
/// The proof is checked as the RFC says, with the two composites `M = Σ dᵢ·Cᵢ` and
/// `Z = Σ dᵢ·Dᵢ` each computed as one multiscalar multiplication over the points this
/// side already holds, instead of one scalar multiplication per element: the same check
/// at about a third of the cost (`voprf` verifies element by element).
pub fn finalize<E: AsRef<[u8]>>(
    state: &BlindState,
    evaluated: &[E],
    proof: &[u8],
    public_key: &[u8],
) -> Result<Vec<OprfOutput>, PrivacyError> {
    if evaluated.len() != state.len() {
        return Err(PrivacyError::CountMismatch {
            expected: state.len(),
            got: evaluated.len(),
        });
    }
    let mut points = Vec::with_capacity(evaluated.len());
    for (index, e) in evaluated.iter().enumerate() {
        let (point, bytes) = decode_element(index, e.as_ref())?;
        points.push((point, bytes));
    }
    if proof.len() != PROOF_LEN {
        return Err(PrivacyError::BadProof);
    }
    let scalar = |b: &[u8]| {
        Option::<Scalar>::from(Scalar::from_canonical_bytes(to_array(b)))
            .ok_or(PrivacyError::BadProof)
    };
    let (c, s) = (scalar(&proof[..32])?, scalar(&proof[32..])?);
    if public_key.len() != ELEMENT_LEN {
        return Err(PrivacyError::BadPublicKey);
    }
    let pk_bytes: Element = to_array(public_key);
    let pk = CompressedRistretto(pk_bytes)
        .decompress()
        .filter(|p| *p != RistrettoPoint::identity())
        .ok_or(PrivacyError::BadPublicKey)?;
    if !proof_holds(&pk, &pk_bytes, &state.blinded, &points, c, s) {
        return Err(PrivacyError::ProofInvalid);
    }
    // `Dᵢ − rᵢ·pk = k·HashToGroup(xᵢ)`, now that the proof says `Dᵢ = k·Cᵢ`.
    let table = unblind_table(&pk_bytes, &pk);
    let unblinded: Vec<Element> = state
        .blinds
        .iter()
        .zip(&points)
        .map(|(r, (d, _))| (d - &*table * r).compress().to_bytes())
        .collect();
    let outputs = state
        .inputs
        .iter()
        .zip(&unblinded)
        .map(|(input, unblinded)| {
            let mut h = Sha512::new();
            h.update(u16_be(input.len()));
            h.update(input);
            h.update(u16_be(ELEMENT_LEN));
            h.update(unblinded);
            h.update(b"Finalize");
            h.finalize().into()
        })
        .collect();
    Ok(outputs)
}

/// The RFC 9497 context string of VOPRF mode with ristretto255-SHA512.
const CONTEXT: &[u8] = b"OPRFV1-\x01-ristretto255-SHA512";

fn u16_be(n: usize) -> [u8; 2] {
    // Every length here is at most 65535 (inputs are checked by `blind`).
    u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes()
}

/// RFC 9380 `expand_message_xmd` with SHA-512 for 64 bytes (one block: `ell` = 1).
fn expand_64(msg: &[&[u8]], dst: &[&[u8]]) -> [u8; 64] {
    let dst_len: usize = dst.iter().map(|d| d.len()).sum();
    let dst_len = u8::try_from(dst_len).unwrap_or(u8::MAX);
    let mut h = Sha512::new();
    h.update([0u8; 128]);
    for m in msg {
        h.update(m);
    }
    h.update(64u16.to_be_bytes());
    h.update([0u8]);
    for d in dst {
        h.update(d);
    }
    h.update([dst_len]);
    let b0 = h.finalize();
    let mut h = Sha512::new();
    h.update(b0);
    h.update([1u8]);
    for d in dst {
        h.update(d);
    }
    h.update([dst_len]);
    h.finalize().into()
}

/// RFC 9497 `HashToScalar` of ristretto255-SHA512 in VOPRF mode.
fn hash_to_scalar(msg: &[&[u8]]) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&expand_64(msg, &[b"HashToScalar-", CONTEXT]))
}

/// RFC 9497 `ComputeComposites` weights `dᵢ` for the public key `pk_bytes` (`B`) and the
/// encodings of each blinded element `Cᵢ` with its evaluation `Dᵢ`.
fn composite_weights<'a>(
    pk_bytes: &Element,
    pairs: impl Iterator<Item = (&'a Element, &'a Element)>,
) -> Vec<Scalar> {
    let len = u16_be(ELEMENT_LEN);
    let seed_dst: [&[u8]; 2] = [b"Seed-", CONTEXT];
    let seed_dst_len = u16_be(seed_dst.iter().map(|d| d.len()).sum());
    let mut h = Sha512::new();
    h.update(len);
    h.update(pk_bytes);
    h.update(seed_dst_len);
    for d in seed_dst {
        h.update(d);
    }
    let seed = h.finalize();
    let seed_len = u16_be(seed.len());
    pairs
        .enumerate()
        .map(|(i, (ci, di))| {
            let i = u16_be(i);
            hash_to_scalar(&[&seed_len, &seed, &i, &len, ci, &len, di, b"Composite"])
        })
        .collect()
}

/// RFC 9497 proof challenge over `B = pk`, `M`, `Z`, `t2`, `t3`.
fn challenge(
    pk_bytes: &Element,
    m: &RistrettoPoint,
    z: &RistrettoPoint,
    t2: &RistrettoPoint,
    t3: &RistrettoPoint,
) -> Scalar {
    let len = u16_be(ELEMENT_LEN);
    hash_to_scalar(&[
        &len,
        pk_bytes,
        &len,
        m.compress().as_bytes(),
        &len,
        z.compress().as_bytes(),
        &len,
        t2.compress().as_bytes(),
        &len,
        t3.compress().as_bytes(),
        b"Challenge",
    ])
}

/// RFC 9497 `VerifyProof` with `A` the generator, `B` the public key, `Cs` our blinded
/// elements and `Ds` the holder's answers.
fn proof_holds(
    pk: &RistrettoPoint,
    pk_bytes: &Element,
    cs: &[(RistrettoPoint, Element)],
    ds: &[(RistrettoPoint, Element)],
    c: Scalar,
    s: Scalar,
) -> bool {
    let weights = composite_weights(
        pk_bytes,
        cs.iter().map(|(_, c)| c).zip(ds.iter().map(|(_, d)| d)),
    );
    let m = RistrettoPoint::vartime_multiscalar_mul(&weights, cs.iter().map(|(p, _)| p));
    let z = RistrettoPoint::vartime_multiscalar_mul(&weights, ds.iter().map(|(p, _)| p));
    let t2 = RistrettoPoint::vartime_double_scalar_mul_basepoint(&c, pk, &s);
    let t3 = RistrettoPoint::vartime_multiscalar_mul([s, c], [m, z]);
    // `Scalar`'s equality is constant-time.
    challenge(pk_bytes, &m, &z, &t2, &t3) == c
}

/// Element `index` from a peer: 32 bytes of a valid, non-identity ristretto255 point, or an
/// error naming its position.
pub(crate) fn decode_element(
    index: usize,
    bytes: &[u8],
) -> Result<(RistrettoPoint, Element), PrivacyError> {
    let bytes: Element = to_array(element_bytes(index, bytes)?);
    let point = CompressedRistretto(bytes)
        .decompress()
        .filter(|p| *p != RistrettoPoint::identity())
        .ok_or(PrivacyError::BadElement { index })?;
    Ok((point, bytes))
}

pub(crate) fn check_batch(len: usize) -> Result<(), PrivacyError> {
    if len == 0 || len > MAX_BATCH {
        return Err(PrivacyError::BatchSize { len });
    }
    Ok(())
}

/// The 32 bytes of element `index`, or an error naming it.
pub(crate) fn element_bytes(index: usize, bytes: &[u8]) -> Result<&[u8], PrivacyError> {
    if bytes.len() == ELEMENT_LEN {
        Ok(bytes)
    } else {
        Err(PrivacyError::WrongLength {
            index,
            len: bytes.len(),
        })
    }
}

/// Copies a fixed-size `GenericArray` into an array. Both lengths are fixed by the
/// ciphersuite's types (32, 64), so the copy cannot panic.
fn to_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use voprf::VoprfClient;

    use super::*;

    const INPUTS: [&str; 3] = [
        "mk1|name|ACME TRADING",
        "mk1|name_country|ACME TRADING|IR",
        "mk1|id|lei|5493001KJTIIGC8Y1R12",
    ];

    fn inputs() -> Vec<&'static [u8]> {
        INPUTS.iter().map(|s| s.as_bytes()).collect()
    }

    /// The batch check is bound to every element and its position: answers swapped, or
    /// a proof of another batch, do not verify; one state serves several holders.
    #[test]
    fn the_batch_proof_binds_each_answer_to_its_element() {
        let key = OprfKey::generate(1);
        let (state, blinded) = blind(&inputs()).unwrap();
        let (mut evaluated, proof) = evaluate_blinded(&key, &blinded).unwrap();
        let other = OprfKey::generate(1);
        let (evaluated_b, proof_b) = evaluate_blinded(&other, &blinded).unwrap();
        let ys = finalize(&state, &evaluated_b, &proof_b, &other.public_key_bytes()).unwrap();
        assert_eq!(ys[0], other.evaluate(inputs()[0]).unwrap());
        let (_, proof_other_batch) = evaluate_blinded(&key, &blinded[..2]).unwrap();
        let pk = key.public_key_bytes();
        assert_eq!(
            finalize(&state, &evaluated, &proof_other_batch, &pk).unwrap_err(),
            PrivacyError::ProofInvalid
        );
        evaluated.swap(0, 1);
        assert_eq!(
            finalize(&state, &evaluated, &proof, &pk).unwrap_err(),
            PrivacyError::ProofInvalid
        );
    }

    /// The holder's proof is the RFC's: `voprf`'s own client accepts it and finalises to
    /// the same outputs as ours.
    #[test]
    fn proofs_verify_with_the_reference_implementation() {
        let key = OprfKey::generate(1);
        let blinds: Vec<Scalar> = (1..=3u64).map(|i| Scalar::from(1_000 + i)).collect();
        let mut clients = Vec::new();
        let mut blinded = Vec::new();
        for (input, r) in inputs().iter().zip(&blinds) {
            let b = VoprfClient::<Suite>::deterministic_blind_unchecked(input, *r).unwrap();
            blinded.push(to_array::<ELEMENT_LEN>(&b.message.serialize()));
            clients.push(b.state);
        }
        let (evaluated, proof) = evaluate_blinded(&key, &blinded).unwrap();
        let messages: Vec<_> = evaluated
            .iter()
            .map(|e| voprf::EvaluationElement::<Suite>::deserialize(e).unwrap())
            .collect();
        let proof = voprf::Proof::<Suite>::deserialize(&proof).unwrap();
        let pk = Suite::deserialize_elem(&key.public_key_bytes()).unwrap();
        let reference: Vec<OprfOutput> =
            VoprfClient::batch_finalize(&inputs(), &clients, &messages, &proof, pk)
                .unwrap()
                .map(|y| to_array(&y.unwrap()))
                .collect();
        for (input, y) in inputs().iter().zip(&reference) {
            assert_eq!(*y, key.evaluate(input).unwrap());
        }
    }

    /// Our blinded element is the RFC's `HashToGroup` of the input (what `voprf`'s client
    /// sends for a blind of 1) plus `r·G`: uniformly random, whatever the input.
    #[test]
    fn blinded_elements_are_the_inputs_hashed_to_the_group_plus_the_blind() {
        let blinds: Vec<Scalar> = (1..=3u64).map(|i| Scalar::from(7_000 + i)).collect();
        let (_, ours) = blind_with(&inputs(), blinds.clone()).unwrap();
        for ((input, r), element) in inputs().iter().zip(&blinds).zip(&ours) {
            let hashed = VoprfClient::<Suite>::deterministic_blind_unchecked(input, Scalar::ONE)
                .unwrap()
                .message
                .serialize();
            let hashed = CompressedRistretto(to_array(&hashed)).decompress().unwrap();
            assert_eq!(
                *element,
                (hashed + RistrettoPoint::mul_base(r)).compress().to_bytes()
            );
        }
    }

    /// Answers from many holders in turn, more than the tables kept: each output is still
    /// its own holder's.
    #[test]
    fn every_holder_is_unblinded_with_its_own_key() {
        let (state, blinded) = blind(&inputs()).unwrap();
        for _ in 0..UNBLIND_TABLES + 2 {
            let key = OprfKey::generate(1);
            let (evaluated, proof) = evaluate_blinded(&key, &blinded).unwrap();
            let ys = finalize(&state, &evaluated, &proof, &key.public_key_bytes()).unwrap();
            assert_eq!(ys[2], key.evaluate(inputs()[2]).unwrap());
        }
    }

    #[test]
    fn round_trip_equals_direct_prf() {
        let key = OprfKey::generate(1);
        let (state, blinded) = blind(&inputs()).unwrap();
        let (evaluated, proof) = evaluate_blinded(&key, &blinded).unwrap();
        let outputs = finalize(&state, &evaluated, &proof, &key.public_key_bytes()).unwrap();
        for (input, y) in inputs().iter().zip(&outputs) {
            assert_eq!(*y, key.evaluate(input).unwrap());
        }
        assert_ne!(outputs[0], outputs[1]);
    }

    #[test]
    fn evaluation_with_another_key_fails_the_proof() {
        let published = OprfKey::generate(1);
        let other = OprfKey::generate(1);
        let (state, blinded) = blind(&inputs()).unwrap();
        let (evaluated, proof) = evaluate_blinded(&other, &blinded).unwrap();
        let err = finalize(&state, &evaluated, &proof, &published.public_key_bytes()).unwrap_err();
        assert_eq!(err, PrivacyError::ProofInvalid);
    }

    #[test]
    fn tampered_element_fails_the_proof() {
        let key = OprfKey::generate(1);
        let (state, blinded) = blind(&inputs()).unwrap();
        let (mut evaluated, proof) = evaluate_blinded(&key, &blinded).unwrap();
        evaluated.swap(0, 1);
        let err = finalize(&state, &evaluated, &proof, &key.public_key_bytes()).unwrap_err();
        assert_eq!(err, PrivacyError::ProofInvalid);
    }

    #[test]
    fn malformed_elements_name_their_index() {
        let key = OprfKey::generate(1);
        let (_, mut blinded) = blind(&inputs()).unwrap();
        // 0xff..ff is not a canonical field element, so never a valid encoding.
        blinded[2] = [0xff; 32];
        assert_eq!(
            evaluate_blinded(&key, &blinded).unwrap_err(),
            PrivacyError::BadElement { index: 2 }
        );
        // Random bytes: most are not valid encodings; whichever fail must fail cleanly.
        for _ in 0..64 {
            let mut junk = [[0u8; 32]; 2];
            rand::RngCore::fill_bytes(&mut OsRng, &mut junk[1]);
            let _ = evaluate_blinded(&key, &junk);
        }
        // The identity (all zeros) is refused.
        let zero = vec![blinded[0].to_vec(), vec![0u8; 32]];
        assert_eq!(
            evaluate_blinded(&key, &zero).unwrap_err(),
            PrivacyError::BadElement { index: 1 }
        );
        let short = vec![blinded[0].to_vec(), blinded[1][..31].to_vec()];
        assert_eq!(
            evaluate_blinded(&key, &short).unwrap_err(),
            PrivacyError::WrongLength { index: 1, len: 31 }
        );
        let long = vec![[blinded[0].as_slice(), &[0u8]].concat()];
        assert_eq!(
            evaluate_blinded(&key, &long).unwrap_err(),
            PrivacyError::WrongLength { index: 0, len: 33 }
        );
        let empty: [Element; 0] = [];
        assert_eq!(
            evaluate_blinded(&key, &empty).unwrap_err(),
            PrivacyError::BatchSize { len: 0 }
        );
    }

    #[test]
    fn malformed_answers_are_errors() {
        let key = OprfKey::generate(1);
        let (state, blinded) = blind(&inputs()).unwrap();
        let (evaluated, proof) = evaluate_blinded(&key, &blinded).unwrap();
        let err = finalize(&state, &evaluated[..2], &proof, &key.public_key_bytes()).unwrap_err();
        assert_eq!(
            err,
            PrivacyError::CountMismatch {
                expected: 3,
                got: 2
            }
        );

        let (state, _) = blind(&inputs()).unwrap();
        let err = finalize(&state, &evaluated, &proof[..63], &key.public_key_bytes()).unwrap_err();
        assert_eq!(err, PrivacyError::BadProof);

        let (state, _) = blind(&inputs()).unwrap();
        let err = finalize(&state, &evaluated, &proof, &[0xff; 32]).unwrap_err();
        assert_eq!(err, PrivacyError::BadPublicKey);
    }

    #[test]
    fn blinded_request_never_contains_an_input() {
        let (_, blinded) = blind(&inputs()).unwrap();
        let request: Vec<u8> = blinded.concat();
        for input in inputs() {
            assert!(!request.windows(input.len()).any(|w| w == input));
        }
        // Blinding is randomised: the same input never gives the same element twice.
        let (_, again) = blind(&inputs()).unwrap();
        assert_ne!(blinded, again);
        assert_eq!(blind(&[]).unwrap_err(), PrivacyError::BatchSize { len: 0 });
    }

    #[test]
    fn key_bytes_round_trip_and_debug_hides_the_secret() {
        let key = OprfKey::generate(7);
        let bytes = key.to_bytes();
        let back = OprfKey::from_bytes(bytes.as_slice()).unwrap();
        assert_eq!(back.epoch(), 7);
        assert_eq!(back.public_key_bytes(), key.public_key_bytes());
        assert_eq!(back.evaluate(b"x").unwrap(), key.evaluate(b"x").unwrap());
        assert_eq!(
            OprfKey::from_bytes(&bytes[..35]).unwrap_err(),
            PrivacyError::BadKey
        );
        assert_eq!(
            OprfKey::from_bytes(&[0u8; 36]).unwrap_err(),
            PrivacyError::BadKey
        );
        let debug = format!("{key:?}");
        let secret_prefix = format!(
            "{:02x}{:02x}{:02x}{:02x}",
            bytes[4], bytes[5], bytes[6], bytes[7]
        );
        assert!(!debug.contains(&secret_prefix));
        assert!(debug.contains("epoch: 7"));
    }
}
