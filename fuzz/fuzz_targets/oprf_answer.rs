//! A holder's answer to a blinded batch: arbitrary elements and proof bytes
//! are refused, never unblinded, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_node::privacy;

fuzz_target!(|data: &[u8]| {
    let key = privacy::OprfKey::generate(1);
    let inputs: [&[u8]; 2] = [b"mk2|t|A", b"mk2|t|B"];
    let Ok((state, _)) = privacy::blind(&inputs) else {
        return;
    };
    // The first 64 bytes (or fewer) are the proof; the rest are elements of up to 32 bytes.
    let (proof, rest) = data.split_at(data.len().min(64));
    let elements: Vec<&[u8]> = rest.chunks(32).collect();
    assert!(
        privacy::finalize(&state, &elements, proof, &key.public_key_bytes()).is_err(),
        "an answer the holder did not make was accepted"
    );
});
