//! Every decoder that reads bytes from a peer or a file takes arbitrary
//! input without panicking, and refuses what it cannot verify (property
//! tests, run with every `cargo test`; the same decoders have libFuzzer
//! targets in `fuzz/`).

use proptest::prelude::*;
use prost::Message;
use tessera_node::privacy::{self, IndexEntry, label_bytes};
use tessera_node::signing::SigningKey;
use tessera_proto::v1::{IndexDelta, SignedNotice};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn signed_notices_from_junk_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048), sig in proptest::collection::vec(any::<u8>(), 0..80)) {
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).expect("key");
        let env = SignedNotice {
            notice: bytes,
            origin: "DE-BAFA".into(),
            key_id: key.public().key_id(),
            signature: sig,
        };
        prop_assert!(tessera_node::notice::seal::open(&env, key.public()).is_err());
    }

    #[test]
    fn notices_decode_or_fail_and_validation_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(n) = tessera_proto::v1::Notice::decode(bytes.as_slice()) {
            let _ = tessera_node::notice::validate::notice(&n);
        }
    }

    #[test]
    fn index_rows_and_labels_from_junk(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = IndexEntry::from_bytes(&bytes);
        let _ = label_bytes::decode(&bytes);
        let y = [7u8; 64];
        if let Ok(entry) = IndexEntry::from_bytes(&bytes) {
            // A row that was not sealed under this output never opens.
            prop_assert!(entry.open(&y).is_err());
        }
    }

    #[test]
    fn index_deltas_decode_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        if let Ok(d) = IndexDelta::decode(bytes.as_slice()) {
            for a in &d.adds {
                let _ = IndexEntry::from_bytes(a);
            }
        }
    }

    #[test]
    fn blinded_elements_from_junk_are_refused(elems in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8)) {
        let key = privacy::OprfKey::generate(1);
        // Random bytes are almost never valid ristretto points; either way no panic.
        let _ = privacy::evaluate_blinded(&key, &elems);
    }

    #[test]
    fn oprf_answers_from_junk_are_refused(
        elems in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..5),
        proof in proptest::collection::vec(any::<u8>(), 0..80),
        flip in any::<usize>(),
    ) {
        let key = privacy::OprfKey::generate(1);
        let pk = key.public_key_bytes();
        let inputs: [&[u8]; 3] = [b"mk2|t|A", b"mk2|t|B", b"mk2|t|C"];
        let (state, blinded) = privacy::blind(&inputs).unwrap();
        // Junk elements and a junk proof: refused, whatever their lengths.
        prop_assert!(privacy::finalize(&state, &elems, &proof, &pk).is_err());
        // The holder's own elements with a proof it did not make: refused.
        let (evaluated, real) = privacy::evaluate_blinded(&key, &blinded).unwrap();
        if proof != real {
            prop_assert!(privacy::finalize(&state, &evaluated, &proof, &pk).is_err());
        }
        // One bit of one element changed under the real proof: refused.
        let bit = flip % (evaluated.len() * 32 * 8);
        let mut changed = evaluated.clone();
        changed[bit / 256][(bit / 8) % 32] ^= 1 << (bit % 8);
        prop_assert!(privacy::finalize(&state, &changed, &real, &pk).is_err());
        // Under another public key: refused.
        let other = privacy::OprfKey::generate(1).public_key_bytes();
        prop_assert!(privacy::finalize(&state, &evaluated, &real, &other).is_err());
        prop_assert!(privacy::finalize(&state, &evaluated, &real, &pk).is_ok());
    }

    #[test]
    fn backups_from_junk_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let mut items = 0;
        let r = tessera_node::backup::read(bytes.as_slice(), |_| { items += 1; Ok(()) });
        prop_assert!(r.is_err());
    }
}
