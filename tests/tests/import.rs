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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_import_idempotently() {
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(shared_data), ignore = "needs ../shared/data")]
async fn whole_lists_import_with_the_right_counts() {
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
