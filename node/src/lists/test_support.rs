//! Helpers shared by the unit tests: fixture paths and scratch files.

use std::path::PathBuf;

use super::{ListRecord, RowError};

/// `fixtures/lists/<name>` of the workspace.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/lists")
        .join(name)
}

/// Writes `bytes` to a fresh file under the system temp dir and returns its path.
pub fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tessera-lists-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("temp file");
    path
}

/// Splits reader output into records and row errors.
pub fn split(rows: Vec<Result<ListRecord, RowError>>) -> (Vec<ListRecord>, Vec<RowError>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for row in rows {
        match row {
            Ok(r) => ok.push(r),
            Err(e) => bad.push(e),
        }
    }
    (ok, bad)
}

/// Asserts that no error or warning text contains any of `secrets`.
pub fn assert_no_leak(errors: &[RowError], records: &[ListRecord], secrets: &[&str]) {
    let texts = errors
        .iter()
        .map(ToString::to_string)
        .chain(records.iter().flat_map(|r| r.warnings.iter().cloned()));
    for text in texts {
        for secret in secrets {
            assert!(
                !text.to_lowercase().contains(&secret.to_lowercase()),
                "message leaks a party value: {text}"
            );
        }
    }
}
