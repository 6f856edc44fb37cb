//! A signed notice from a peer: arbitrary bytes under an arbitrary
//! signature are refused; arbitrary bytes under a valid signature are
//! decoded and validated without panicking, one by one and in batches.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera_node::notice::seal::{CONTEXT, open, open_many};
use tessera_node::signing::SigningKey;
use tessera_proto::v1::SignedNotice;

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).expect("key"))
}

fuzz_target!(|data: &[u8]| {
    let key = key();
    let (signature, notice) = data.split_at(data.len().min(64));
    let forged = SignedNotice {
        notice: notice.to_vec(),
        origin: "DE-BAFA".into(),
        key_id: key.public().key_id(),
        signature: signature.to_vec(),
    };
    assert!(
        open(&forged, key.public()).is_err(),
        "a forged signature was accepted"
    );
    let signed = SignedNotice {
        signature: key.sign(CONTEXT, notice),
        ..forged.clone()
    };
    let one = open(&signed, key.public());
    let many = open_many(&[&forged, &signed], key.public());
    assert!(
        many[0].is_err(),
        "a forged signature was accepted in a batch"
    );
    assert_eq!(
        one.is_ok(),
        many[1].is_ok(),
        "batch and single opening disagree"
    );
});
