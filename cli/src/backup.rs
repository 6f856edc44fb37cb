//! `tessera backup --out FILE`: a copy of the node's data while it runs.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use tessera_proto::v1::BackupRequest;

use crate::client::{CliConfig, explain_call};

/// Streams the node's backup into `path` (mode 0600, written atomically).
pub async fn run(cfg: &CliConfig, path: &Path, out: &mut impl Write) -> anyhow::Result<u64> {
    let tmp = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    let mut stream = cfg
        .operator()?
        .backup(BackupRequest {})
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    let mut bytes = 0u64;
    let result: anyhow::Result<()> = async {
        while let Some(chunk) = stream.message().await.map_err(|s| explain_call(cfg, &s))? {
            file.write_all(&chunk.data)?;
            bytes += chunk.data.len() as u64;
        }
        file.sync_all()?;
        // A complete backup ends with its digest record; check before keeping it.
        tessera_node::backup::read(std::fs::File::open(&tmp)?, |_| Ok(()))
            .map_err(|e| anyhow::anyhow!("the backup received is not complete: {e}"))?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    writeln!(
        out,
        "backup of {} written to {} ({bytes} bytes); restore with `tessera-node restore --config node.toml --from {}`",
        cfg.agency,
        path.display(),
        path.display()
    )?;
    Ok(bytes)
}
