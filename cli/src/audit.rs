//! `tessera audit verify | export`: the oversight trail.

use std::io::Write;

use tessera_proto::v1::{AuditExportRequest, AuditVerifyRequest, PeerAnchors};

use crate::client::{CliConfig, explain_call};

/// `audit verify [--against-peers]`: re-walks the chain on the node; an
/// error names the first bad entry. With `against_peers`, also compares it
/// with the checkpoints each peer keeps of it, and fails on a mismatch.
pub async fn verify(
    cfg: &CliConfig,
    against_peers: bool,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let r = cfg
        .operator()?
        .audit_verify(AuditVerifyRequest { against_peers })
        .await
        .map_err(|s| {
            if s.code() == tonic::Code::DataLoss {
                anyhow::anyhow!("audit chain of {} is BROKEN: {}", cfg.agency, s.message())
            } else {
                explain_call(cfg, &s)
            }
        })?
        .into_inner();
    let rewritten: Vec<&PeerAnchors> = r
        .peers
        .iter()
        .filter(|p| p.reached && !p.problem.is_empty())
        .collect();
    if as_json {
        let peers: Vec<serde_json::Value> = r
            .peers
            .iter()
            .map(|p| serde_json::json!({"peer": p.peer, "reached": p.reached, "anchors": p.anchors, "newest": p.newest, "problem": p.problem}))
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({"agency": cfg.agency, "entries": r.entries, "checkpoints": r.checkpoints, "last_checkpoint": r.last_checkpoint, "unsigned_tail": r.unsigned_tail, "head_hash": r.head_hash, "peers": peers})
        )?;
    } else {
        writeln!(
            out,
            "audit chain of {}: {} entries, {} signed checkpoints (last at {}), intact; head {}",
            cfg.agency, r.entries, r.checkpoints, r.last_checkpoint, r.head_hash
        )?;
        if r.unsigned_tail > 0 {
            writeln!(
                out,
                "  the newest {} entries are not yet signed by a checkpoint: they could be cut off unseen",
                r.unsigned_tail
            )?;
        }
        for p in &r.peers {
            match (p.reached, p.problem.is_empty()) {
                (true, true) => writeln!(
                    out,
                    "  {}: {} checkpoints kept (newest {}), all match",
                    p.peer, p.anchors, p.newest
                )?,
                (true, false) => writeln!(out, "  {}: MISMATCH: {}", p.peer, p.problem)?,
                (false, _) => writeln!(out, "  {}: {}", p.peer, p.problem)?,
            }
        }
    }
    if !rewritten.is_empty() {
        anyhow::bail!(
            "audit chain of {} does not match what its peers keep: {}",
            cfg.agency,
            rewritten
                .iter()
                .map(|p| p.problem.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    if against_peers && !r.peers.is_empty() && r.peers.iter().all(|p| !p.reached) {
        anyhow::bail!(
            "no peer could be asked for its anchors of the audit chain of {}",
            cfg.agency
        );
    }
    Ok(())
}

/// `audit export [--since SEQ]`: JSON Lines for an oversight body.
pub async fn export(
    cfg: &CliConfig,
    since: Option<u64>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut stream = cfg
        .operator()?
        .audit_export(AuditExportRequest {
            since_seq: since.unwrap_or(0),
            since_ms: 0,
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    while let Some(chunk) = stream.message().await.map_err(|s| explain_call(cfg, &s))? {
        out.write_all(&chunk.jsonl)?;
    }
    out.flush()?;
    Ok(())
}
