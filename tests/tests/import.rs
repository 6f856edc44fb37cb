//! `notice import` of the public lists: counts match the rows each format
//! should take, bad rows are reported by line and the rest imported, and a
//! second import of the same file changes nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tessera_cli::notices::{ImportSummary, import};
use tessera_node::lists::{Format, shared_data_dir};
use tessera_tests::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/lists")
        .join(name)
}

async fn run(fed: &LocalFederation, format: Format, file: &Path) -> ImportSummary {
    let mut out = Vec::new();
    import(&fed.nodes[0].cli, format, file, Some("local"), &mut out)
        .await
        .expect("import")
}

#[test]
fn fixtures_import_idempotently() {
    run_e2e(fixtures_import_idempotently_body());
}

async fn fixtures_import_idempotently_body() {
    let fed = LocalFederation::start(&["US-BIS"], Duration::from_millis(500))
        .await
        .expect("start");

    let el = run(&fed, Format::Csl, &fixture("entity_list.csv")).await;
    assert_eq!(el.created, 2_001, "{el:?}");
    assert_eq!(el.unreadable, 0);
    let again = run(&fed, Format::Csl, &fixture("entity_list.csv")).await;
    assert_eq!(
        (again.created, again.updated, again.unchanged),
        (0, 0, 2_001),
        "{again:?}"
    );

    // The CSL slice: only the four BIS export-control lists are taken.
    let csl = run(&fed, Format::Csl, &fixture("consolidated.csv")).await;
    assert_eq!(
        csl.created as usize + csl.unchanged as usize + csl.skipped,
        csl.read - csl.unreadable - csl.merged
    );
    assert!(csl.skipped > 0, "sanctions rows must be skipped: {csl:?}");

    let sdn = run(&fed, Format::Sdn, &fixture("sdn/sdn.csv")).await;
    assert!(sdn.created > 0 && sdn.refused == 0, "{sdn:?}");
    let dpl = run(&fed, Format::Dpl, &fixture("dpl.txt")).await;
    assert!(dpl.created > 0, "{dpl:?}");
    for (format, name) in [(Format::Ftm, "ftm.jsonl"), (Format::Jsonl, "parties.jsonl")] {
        let s = run(&fed, format, &fixture(name)).await;
        assert!(s.created > 0, "{name}: {s:?}");
    }
    fed.shutdown().await.expect("shutdown");
}

/// Needs the public lists of `../shared/data` (see `node/build.rs`).
#[test]
#[cfg_attr(not(shared_data), ignore = "needs ../shared/data")]
fn whole_lists_import_with_the_right_counts() {
    run_e2e(whole_lists_import_with_the_right_counts_body());
}

async fn whole_lists_import_with_the_right_counts_body() {
    let data = shared_data_dir().expect("../shared/data was there when this test was built");
    let fed = LocalFederation::start(&["US-BIS"], Duration::from_millis(500))
        .await
        .expect("start");

    // consolidated.csv: Entity List 2,001 + Denied Persons 462 + Unverified 201 + MEU 71.
    let csl = run(&fed, Format::Csl, &data.join("us_csl/consolidated.csv")).await;
    assert_eq!(csl.read, 14_160, "{csl:?}");
    assert_eq!(csl.created, 2_001 + 462 + 201 + 71, "{csl:?}");
    assert_eq!(csl.refused, 0, "{csl:?}");

    // The SDN list: every entity, aliases and addresses joined.
    let sdn = run(&fed, Format::Sdn, &data.join("ofac_sdn_2023-12-28/sdn.csv")).await;
    assert_eq!(sdn.created, 13_821, "{sdn:?}");
    assert_eq!(sdn.refused, 0, "{sdn:?}");
    let again = run(&fed, Format::Sdn, &data.join("ofac_sdn_2023-12-28/sdn.csv")).await;
    assert_eq!(
        (again.created, again.updated, again.unchanged),
        (0, 0, 13_821),
        "{again:?}"
    );
    fed.shutdown().await.expect("shutdown");
}

/// Runs `tessera notice import --format jsonl FILE --to local` against node 0
/// under an address-space limit of 1 GiB (so that a reader that keeps the
/// whole input fails fast instead of exhausting the machine); (exit code,
/// stdout, stderr).
fn import_cli(fed: &LocalFederation, file: &Path) -> (Option<i32>, String, String) {
    let cli = fed.nodes[0].dir.join("cli.toml");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 1048576; exec "$0" --config "$1" notice import --format jsonl "$2" --to local"#)
        .arg(cli_binary!())
        .arg(&cli)
        .arg(file)
        .output()
        .expect("run tessera");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unreadable_imports_fail_and_endless_input_is_streamed() {
    run_e2e(unreadable_imports_fail_and_endless_input_is_streamed_body());
}

async fn unreadable_imports_fail_and_endless_input_is_streamed_body() {
    let fed = LocalFederation::start(&["US-BIS"], Duration::from_millis(500))
        .await
        .expect("start");
    let dir = tempfile::tempdir().expect("tmp");

    // 1 MB of binary: no row reads, so nothing is imported and the command fails.
    let mut x: u32 = 0x9E37_79B9;
    let binary: Vec<u8> = std::iter::once(0xFF)
        .chain((0..1 << 20).map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        }))
        .collect();
    let garbage = dir.path().join("garbage.jsonl");
    std::fs::write(&garbage, &binary).expect("write");
    let (code, _, stderr) = import_cli(&fed, &garbage);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("nothing imported: no row could be read as jsonl"),
        "{stderr}"
    );
    assert!(stderr.contains("more unreadable rows skipped"), "{stderr}");

    // An endless file with no line break is read as a stream, its one row refused.
    let (code, _, stderr) = import_cli(&fed, Path::new("/dev/zero"));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("longer than 1024 KiB"), "{stderr}");
    assert!(stderr.contains("(1 rows read, 1 unreadable)"), "{stderr}");

    // Good rows around bad ones: imported, and the bad ones counted.
    let mixed = dir.path().join("mixed.jsonl");
    let mut text = String::from("{\"name\":\"Streamed Import Test Organisation\"}\n\u{1}\n");
    text.push_str(&"{".repeat((1 << 20) + 1));
    std::fs::write(&mixed, text).expect("write");
    let (code, stdout, stderr) = import_cli(&fed, &mixed);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("3 rows read; 1 notices created"),
        "{stdout}"
    );
    assert!(stdout.contains("2 unreadable rows"), "{stdout}");
    fed.shutdown().await.expect("shutdown");
}
