//! An index delta from a peer: rows and labels from arbitrary bytes decode
//! or fail, and a row never opens under an output that did not seal it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use tessera_node::privacy::{IndexEntry, label_bytes};
use tessera_proto::v1::IndexDelta;

fuzz_target!(|data: &[u8]| {
    let _ = label_bytes::decode(data);
    if let Ok(entry) = IndexEntry::from_bytes(data) {
        assert!(
            entry.open(&[7u8; 64]).is_err(),
            "a row opened under a foreign output"
        );
    }
    if let Ok(delta) = IndexDelta::decode(data) {
        for row in &delta.adds {
            let _ = IndexEntry::from_bytes(row);
        }
    }
});
