//! `tessera demo`: three agencies on this machine, a guided run, then exit 0.

use std::io::Write;
use std::time::{Duration, Instant};

use tessera_node::notice::json;
use tessera_proto::v1::{IssueNoticeRequest, StatusRequest};

use crate::federation::LocalFederation;

/// The agencies of the demo, in port order.
pub const AGENCIES: [&str; 3] = ["DE-BAFA", "FR-SBDU", "US-BIS"];

/// The BIS Entity List rows of the Consolidated Screening List (public domain).
const ENTITY_LIST: &[u8] = include_bytes!("../../fixtures/lists/entity_list.csv");
/// An example denial (see docs/notices.md).
const DENIAL: &str = include_str!("../../examples/notices/denial.json");

/// Runs the guided demo, narrating to `out`.
pub async fn run(out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "Tessera demo: three export-control agencies on this machine.\n"
    )?;
    writeln!(
        out,
        "1. Making a dev CA, node and operator certificates and signing keys for {} ...",
        AGENCIES.join(", ")
    )?;
    let fed = LocalFederation::start(&AGENCIES, Duration::from_millis(250)).await?;
    writeln!(out, "   written under {}", fed.root.display())?;
    writeln!(
        out,
        "2. Starting three nodes: federation and operator ports over mutual TLS 1.3 ..."
    )?;
    let statuses = fed.wait_all_reachable(Duration::from_secs(30)).await?;
    writeln!(
        out,
        "3. Every node greeted both peers. Status of each, as `tessera status` shows it:\n"
    )?;
    let now = tessera_node::peers::now_ms();
    for s in &statuses {
        writeln!(out, "{}", crate::status::render(s, now))?;
    }

    let (de, fr, us) = (&fed.nodes[0], &fed.nodes[1], &fed.nodes[2]);
    writeln!(
        out,
        "4. US-BIS imports the BIS Entity List (2,001 entries of the Consolidated Screening List)"
    )?;
    writeln!(
        out,
        "   as signed denial notices for both peers: `tessera notice import --format csl --to all` ..."
    )?;
    let list = fed.root.join("entity_list.csv");
    std::fs::write(&list, ENTITY_LIST)?;
    let mut report = Vec::new();
    crate::notices::import(
        &us.cli,
        tessera_node::lists::Format::Csl,
        &list,
        Some("all"),
        &mut report,
    )
    .await?;
    write!(out, "   {}", String::from_utf8_lossy(&report))?;

    writeln!(
        out,
        "5. DE-BAFA issues a licence denial for FR-SBDU only (`tessera notice issue --to peer:FR-SBDU`) ..."
    )?;
    let mut denial = json::parse(DENIAL)
        .map_err(|e| anyhow::anyhow!(e))?
        .to_notice()?;
    denial.distribution = Some(tessera_node::policy::parse_to("peer:FR-SBDU")?);
    let issued = de
        .operator()?
        .issue_notice(IssueNoticeRequest {
            notice: Some(denial),
        })
        .await
        .map_err(|s| crate::client::explain_call(&de.cli, &s))?
        .into_inner();
    writeln!(
        out,
        "   {}/{} signed and stored; goes to {}",
        issued.origin,
        issued.serial,
        issued.recipients.join(", ")
    )?;

    writeln!(
        out,
        "6. Waiting for the notices to arrive where they may go ..."
    )?;
    let started = Instant::now();
    let expect = |node: &str, origin: &str| -> u64 {
        match (node, origin) {
            (_, "US-BIS") => 2_001,
            ("FR-SBDU" | "DE-BAFA", "DE-BAFA") => 1,
            _ => 0,
        }
    };
    let mut rows = Vec::new();
    loop {
        rows.clear();
        let mut done = true;
        for node in &fed.nodes {
            let s = node
                .operator()?
                .status(StatusRequest {})
                .await?
                .into_inner();
            let counts: Vec<u64> = AGENCIES
                .iter()
                .map(|o| s.notices_by_origin.get(*o).copied().unwrap_or(0))
                .collect();
            for (o, c) in AGENCIES.iter().zip(&counts) {
                done &= *c == expect(&node.agency, o);
            }
            rows.push((node.agency.clone(), counts));
        }
        if done || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut table = vec![[
        "NODE".to_owned(),
        "FROM DE-BAFA".to_owned(),
        "FROM FR-SBDU".to_owned(),
        "FROM US-BIS".to_owned(),
    ]];
    for (agency, counts) in &rows {
        table.push([
            agency.clone(),
            counts[0].to_string(),
            counts[1].to_string(),
            counts[2].to_string(),
        ]);
    }
    writeln!(
        out,
        "   after {:.1} s, notices held by each node (signatures verified on arrival):\n",
        started.elapsed().as_secs_f64()
    )?;
    for line in crate::table::render(&table).lines() {
        writeln!(out, "   {line}")?;
    }
    let us_has_de = rows.iter().any(|(a, c)| a == "US-BIS" && c[0] > 0);
    writeln!(
        out,
        "\n   US-BIS holds {} of DE-BAFA's denial: it was addressed to FR-SBDU only.",
        if us_has_de {
            "a copy (this is a bug)"
        } else {
            "no copy"
        }
    )?;
    let _ = fr;
    fed.shutdown().await?;
    writeln!(out, "\nDemo finished: all nodes stopped cleanly.")?;
    if us_has_de {
        anyhow::bail!("distribution was not respected");
    }
    Ok(())
}
