//! A backup file given to `tessera-node restore`: any file is restored or
//! refused without panicking, and a restore never writes outside the data
//! directory. (The digest detects corruption, not tampering: the fuzzer
//! learns to write a matching one, so well-formed input must be handled.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if tessera_node::backup::read(data, |_| Ok(())).is_err() {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("in.tbk");
    std::fs::write(&file, data).expect("write");
    let target = dir.path().join("data");
    let own = "DE-BAFA".parse().expect("agency");
    let _ = tessera_node::backup::restore(&file, &target, &own, false);
    for entry in std::fs::read_dir(dir.path()).expect("list") {
        let name = entry.expect("entry").file_name();
        assert!(
            name == "in.tbk" || name == "data",
            "restore wrote outside the data directory: {name:?}"
        );
    }
});
