//! `tessera demo`: three agencies on this machine, a guided run, then exit 0.

use std::io::Write;
use std::time::Duration;

use crate::federation::LocalFederation;

/// The agencies of the demo, in port order.
pub const AGENCIES: [&str; 3] = ["DE-BAFA", "FR-SBDU", "US-BIS"];

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
    fed.shutdown().await?;
    writeln!(out, "Demo finished: all nodes stopped cleanly.")?;
    Ok(())
}
