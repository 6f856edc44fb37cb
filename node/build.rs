// Sets `cfg(shared_data)` when the public lists of `../shared/data` (beside
// the workspace, or at `$TESSERA_SHARED_DATA`) are there, so that the tests
// that read them run; without them those tests show as ignored ("needs
// ../shared/data"), never as passed. After adding the lists, rebuild
// (`cargo clean -p tessera-node -p tessera-tests`) or set the variable.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(shared_data)");
    println!("cargo::rerun-if-env-changed=TESSERA_SHARED_DATA");
    let dir = std::env::var_os("TESSERA_SHARED_DATA").map_or_else(
        || {
            let manifest = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
            PathBuf::from(manifest).join("../../shared/data")
        },
        PathBuf::from,
    );
    if dir.is_dir() {
        println!("cargo::rustc-cfg=shared_data");
        println!("cargo::rerun-if-changed={}", dir.display());
    } else {
        println!("cargo::rerun-if-changed=build.rs");
    }
}
