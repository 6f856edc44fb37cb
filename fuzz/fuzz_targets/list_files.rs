//! A screening list given to `tessera notice import`: every format reads
//! any file into rows and row errors, or refuses it, without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_node::lists::{self, Format};

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let (format, name) = match which % 6 {
        0 => (Format::Csl, "consolidated.csv"),
        1 => (Format::Dpl, "dpl.txt"),
        2 => (Format::Sdn, "sdn.csv"),
        3 => (Format::Un, "consolidated.xml"),
        4 => (Format::Jsonl, "parties.jsonl"),
        _ => (Format::Ftm, "entities.ftm.json"),
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join(name);
    std::fs::write(&path, body).expect("write");
    let _ = lists::read(format, &path);
});
