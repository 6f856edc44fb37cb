//! `tessera status | health | audit | demo`: the node itself, its audit chain,
//! and the guided demo.

use std::io::Write;

use clap::Subcommand;

use super::Global;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Re-walk the chain; fails naming the first bad entry.
    Verify {
        /// Also compare the chain with the checkpoints each peer keeps of it;
        /// fails if they disagree (a rewritten or cut history).
        #[arg(long)]
        against_peers: bool,
    },
    /// JSON Lines for an oversight body.
    Export {
        /// From this entry number on.
        #[arg(long)]
        since: Option<u64>,
    },
}

pub async fn status(global: &Global, out: &mut impl Write) -> anyhow::Result<()> {
    let cfg = global.config()?;
    let mut client = cfg.operator()?;
    let status = client
        .status(tessera_proto::v1::StatusRequest {})
        .await
        .map_err(|s| crate::client::explain_call(&cfg, &s))?
        .into_inner();
    if global.json {
        serde_json::to_writer_pretty(&mut *out, &crate::status::to_json(&status))?;
        writeln!(out)?;
    } else {
        write!(
            out,
            "{}",
            crate::status::render(&status, tessera_node::peers::now_ms())
        )?;
    }
    Ok(())
}

pub async fn health(global: &Global, out: &mut impl Write) -> anyhow::Result<()> {
    let cfg = global.config()?;
    let mut client = tonic_health::pb::health_client::HealthClient::new(cfg.channel()?);
    let response = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|s| crate::client::explain_call(&cfg, &s))?
        .into_inner();
    let serving =
        response.status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    if !serving {
        anyhow::bail!(
            "the node at {} is not serving (status {})",
            cfg.endpoint,
            response.status
        );
    }
    if global.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"endpoint": cfg.endpoint, "status": "serving"})
        )?;
    } else {
        writeln!(out, "serving")?;
    }
    Ok(())
}

pub async fn audit(
    cmd: &AuditCommand,
    global: &Global,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let cfg = global.config()?;
    match cmd {
        AuditCommand::Verify { against_peers } => {
            crate::audit::verify(&cfg, *against_peers, global.json, out).await
        }
        AuditCommand::Export { since } => crate::audit::export(&cfg, *since, out).await,
    }
}

pub async fn demo(out: &mut impl Write) -> anyhow::Result<()> {
    tessera_node::logging::init(&tessera_node::config::LogConfig {
        format: tessera_node::config::LogFormat::Text,
        level: "warn".into(),
    });
    crate::demo::run(out).await
}

/// `console [--listen ADDR] [--allow-remote]`: serves until Ctrl-C.
pub async fn console(
    global: &Global,
    listen: std::net::SocketAddr,
    allow_remote: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let cfg = global.config()?;
    let console = crate::console::Console::bind(cfg, listen, allow_remote).await?;
    writeln!(
        out,
        "console for {} listening on {}\nopen this link once (it signs this browser in, then stops working):\n  {}\nstop with Ctrl-C",
        global.config()?.agency,
        console.addr(),
        console.url()
    )?;
    out.flush()?;
    console
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
