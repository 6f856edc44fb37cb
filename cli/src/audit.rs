//! `tessera audit verify | export`: the oversight trail.

use std::io::Write;

use tessera_proto::v1::{AuditExportRequest, AuditVerifyRequest};

use crate::client::{CliConfig, explain_call};

/// `audit verify`: re-walks the chain on the node; an error names the first bad entry.
pub async fn verify(cfg: &CliConfig, as_json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let r = cfg
        .operator()?
        .audit_verify(AuditVerifyRequest {})
        .await
        .map_err(|s| {
            if s.code() == tonic::Code::DataLoss {
                anyhow::anyhow!("audit chain of {} is BROKEN: {}", cfg.agency, s.message())
            } else {
                explain_call(cfg, &s)
            }
        })?
        .into_inner();
    if as_json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"agency": cfg.agency, "entries": r.entries, "checkpoints": r.checkpoints, "last_checkpoint": r.last_checkpoint, "head_hash": r.head_hash})
        )?;
    } else {
        writeln!(
            out,
            "audit chain of {}: {} entries, {} signed checkpoints (last at {}), intact; head {}",
            cfg.agency, r.entries, r.checkpoints, r.last_checkpoint, r.head_hash
        )?;
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
