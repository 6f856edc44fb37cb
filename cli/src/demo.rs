//! `tessera demo`: three agencies on this machine, a guided run, then exit 0.

use std::io::Write;
use std::time::{Duration, Instant};

use tessera_node::notice::json;
use tessera_node::party::Party;
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
    let fed = LocalFederation::start_with(&AGENCIES, Duration::from_millis(250), |cfg| {
        cfg.sync.pull_interval_ms = 500;
        cfg.privacy.contact = format!("{} licensing desk (demo)", cfg.agency);
        // DE-BAFA shows FR-SBDU a summary of its denials; the others a pointer.
        if cfg.agency == "DE-BAFA" {
            for p in &mut cfg.peers {
                p.disclosure = Some(tessera_node::policy::DisclosureLevel::Summary);
            }
        }
    })
    .await?;
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

    let (de, us) = (&fed.nodes[0], &fed.nodes[2]);
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
    if us_has_de {
        anyhow::bail!("distribution was not respected");
    }

    screen_and_consult(&fed, &list, out).await?;

    writeln!(
        out,
        "\n10. Oversight: `tessera audit verify` on every node ..."
    )?;
    for node in &fed.nodes {
        let mut line = Vec::new();
        crate::audit::verify(&node.cli, false, false, &mut line).await?;
        write!(out, "   {}", String::from_utf8_lossy(&line))?;
    }
    fed.shutdown().await?;
    writeln!(out, "\nDemo finished: all nodes stopped cleanly.")?;
    Ok(())
}

/// Steps 7 to 9: FR-SBDU screens a licence application privately, then
/// consults DE-BAFA about the denial it matched.
async fn screen_and_consult(
    fed: &LocalFederation,
    list: &std::path::Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (de, fr) = (&fed.nodes[0], &fed.nodes[1]);
    let listed = tessera_node::lists::read(tessera_node::lists::Format::Csl, list)?
        .into_iter()
        .flatten()
        .find(|r| !r.party.countries.is_empty())
        .ok_or_else(|| anyhow::anyhow!("the embedded Entity List has no entry with a country"))?;
    let denial = json::parse(DENIAL).map_err(|e| anyhow::anyhow!(e))?;
    let end_user = denial
        .denial
        .as_ref()
        .and_then(|d| d.parties.iter().find(|p| p.role == "end-user"))
        .map(|p| p.party.clone())
        .ok_or_else(|| anyhow::anyhow!("the example denial has no end user"))?;
    let parties = vec![
        Party {
            name: "Atelier Exemple de Mecanique SARL".into(),
            countries: vec!["FR".into()],
            ..Party::default()
        },
        Party {
            name: listed.party.name.clone(),
            countries: listed.party.countries.clone(),
            ..Party::default()
        },
        Party {
            name: end_user.name.to_uppercase().replace([',', '.'], ""),
            countries: end_user.countries.clone(),
            ..Party::default()
        },
        // The same end user misspelt, without its country: found as a fuzzy name.
        Party {
            name: end_user
                .name
                .replace("Example", "Exampel")
                .replace("Engineering", "Enginering"),
            ..Party::default()
        },
    ];
    writeln!(
        out,
        "\n7. FR-SBDU screens the four parties of a licence application against every peer"
    )?;
    writeln!(
        out,
        "   (`tessera screen --file application.jsonl`): keys are blinded, peers evaluate them"
    )?;
    writeln!(
        out,
        "   without seeing them, and only matches with what each holder discloses come back ...\n"
    )?;
    wait_for_indexes(fed).await?;
    let mut report = Vec::new();
    let result = crate::matching::screen(&fr.cli, &parties, false, &mut report).await?;
    for line in String::from_utf8_lossy(&report).lines() {
        writeln!(out, "   {line}")?;
    }
    let hit = result
        .results
        .iter()
        .flat_map(|r| r.matches.iter())
        .find(|m| m.origin == "DE-BAFA")
        .ok_or_else(|| anyhow::anyhow!("screening found no match on DE-BAFA's denial"))?;

    writeln!(
        out,
        "\n8. FR-SBDU consults DE-BAFA before granting (`tessera consult open --match {}/{}`) ...",
        hit.origin, hit.serial
    )?;
    let summary = fed.root.join("transaction.txt");
    std::fs::write(
        &summary,
        "Two five-axis machining centres (2B001.b) for the same end user; stated end use: civil aerospace.\n",
    )?;
    let mut sink = Vec::new();
    let opened = crate::consult::open(
        &fr.cli,
        &format!("{}/{}", hit.origin, hit.serial),
        &summary,
        0,
        false,
        &mut sink,
    )
    .await?;
    for line in String::from_utf8_lossy(&sink).lines() {
        writeln!(out, "   {}", line.trim_start())?;
    }
    let id = opened.consultation.map(|c| c.id).unwrap_or_default();

    writeln!(
        out,
        "9. DE-BAFA answers (`tessera consult respond {id} --answer objection`) ..."
    )?;
    let started = Instant::now();
    loop {
        let mut sink = Vec::new();
        match crate::consult::respond(
            &de.cli,
            &id,
            "objection",
            "same end user and items as our denial",
            false,
            &mut sink,
        )
        .await
        {
            Ok(()) => break,
            Err(_) if started.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
    let started = Instant::now();
    loop {
        let mut view = Vec::new();
        crate::consult::show(&fr.cli, &id, false, &mut view).await?;
        let text = String::from_utf8_lossy(&view).into_owned();
        if text.contains("answer: objection") || started.elapsed() > Duration::from_secs(20) {
            for line in text.lines().take(2) {
                writeln!(out, "   at FR-SBDU: {line}")?;
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits until every node has indexed its own notices and FR-SBDU holds each peer's
/// index whole. US-BIS indexes its 2,001 imported notices for each peer at a low priority,
/// which takes some seconds; until then a screen says, rightly, that US-BIS's answer is no
/// clear.
async fn wait_for_indexes(fed: &LocalFederation) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let mut statuses = Vec::new();
        for node in &fed.nodes {
            statuses.push(
                node.operator()?
                    .status(StatusRequest {})
                    .await?
                    .into_inner(),
            );
        }
        let fr = &statuses[1];
        let whole = fr.peers.iter().all(|p| {
            let served = statuses
                .iter()
                .find(|s| s.agency == p.agency)
                .and_then(|s| s.peers.iter().find(|q| q.agency == fr.agency))
                .map(|q| q.served_rows);
            p.index_rows > 0 && Some(p.index_rows) == served
        });
        if whole && statuses.iter().all(|s| s.unindexed_notices == 0) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(120) {
            anyhow::bail!("FR-SBDU did not receive its peers' whole indexes within 2 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
