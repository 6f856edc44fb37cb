//! A backup file given to `tessera-node restore`: any file is restored or
//! refused without panicking, and a restore never writes outside the data
//! directory. (The fuzzer learns to write a matching digest, so well-formed
//! input must be handled up to the seal, which it cannot forge: restore then
//! refuses it and leaves nothing behind.)
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
    static KEY: std::sync::OnceLock<std::sync::Arc<tessera_node::signing::SigningKey>> =
        std::sync::OnceLock::new();
    let signing = KEY.get_or_init(|| {
        let pk8 = tessera_node::signing::SigningKey::generate_pkcs8();
        std::sync::Arc::new(tessera_node::signing::SigningKey::from_pkcs8(&pk8).expect("key"))
    });
    let to = tessera_node::backup::RestoreTo {
        data_dir: &target,
        own: &own,
        signing,
        checkpoint_every: 0,
        force: false,
    };
    let _ = tessera_node::backup::restore(&file, &to);
    for entry in std::fs::read_dir(dir.path()).expect("list") {
        let name = entry.expect("entry").file_name();
        assert!(
            name == "in.tbk" || name == "data",
            "restore wrote outside the data directory: {name:?}"
        );
    }
});
