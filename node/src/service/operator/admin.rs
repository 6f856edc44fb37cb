//! The audit chain (verify, against the peers' anchors too; export) and
//! backups, from the operator. Export and backup stream in chunks read off
//! the async workers.

use std::path::PathBuf;
use std::sync::Arc;

use futures::Stream;
use tessera_proto::v1::{
    AuditExportChunk, AuditExportRequest, AuditVerifyResponse, BackupChunk, PeerAnchors,
};
use tonic::Status;

use crate::audit::Action;
use crate::audit::{AuditSink, Since};
use crate::exchange::client::PeerClient;
use crate::identity::AgencyId;
use crate::signing::{PublicKey, SigningKey};
use crate::store::Store;

/// The admin calls' handles.
#[derive(Debug)]
pub struct AdminDesk {
    /// The peers that keep anchors of our chain, and how to ask them.
    pub client: Arc<dyn PeerClient>,
    pub peers: Vec<AgencyId>,
    pub audit: AuditSink,
    /// Our signing key, which signs the chain's checkpoints.
    pub signing_key: PublicKey,
    pub store: Store,
    pub data_dir: PathBuf,
    /// Seals backups as this agency's.
    pub agency: AgencyId,
    pub signing: Arc<SigningKey>,
}

/// How long a peer may take to say which anchors it keeps.
const PEER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn unreached(peer: &AgencyId, why: &str) -> PeerAnchors {
    PeerAnchors {
        peer: peer.to_string(),
        problem: format!("could not be asked: {why}"),
        ..PeerAnchors::default()
    }
}

/// A blocking task that did not finish.
fn stopped(_: tokio::task::JoinError) -> Status {
    Status::internal("the task stopped before it finished")
}

impl AdminDesk {
    pub async fn audit_verify(
        self: &Arc<Self>,
        against_peers: bool,
    ) -> Result<AuditVerifyResponse, Status> {
        let this = self.clone();
        let report =
            tokio::task::spawn_blocking(move || this.audit.log().verify(&[this.signing_key]))
                .await
                .map_err(stopped)??;
        let peers = if against_peers {
            futures::future::join_all(self.peers.iter().map(|p| self.anchors_at(p))).await
        } else {
            Vec::new()
        };
        Ok(AuditVerifyResponse {
            entries: report.entries,
            checkpoints: report.checkpoints,
            last_checkpoint: report.last_checkpoint.unwrap_or(0),
            head_hash: report.head_hash.map(hex::encode).unwrap_or_default(),
            unsigned_tail: report.unsigned_tail(),
            peers,
        })
    }

    /// What `peer` keeps of our chain, compared with it.
    async fn anchors_at(&self, peer: &AgencyId) -> PeerAnchors {
        let asked = tokio::time::timeout(PEER_TIMEOUT, self.client.held_anchors(peer)).await;
        let held = match asked {
            Ok(Ok(held)) => held,
            Ok(Err(e)) => return unreached(peer, e.reason()),
            Err(_) => return unreached(peer, "no answer in time"),
        };
        let problem =
            crate::audit::anchor::compare(self.audit.log(), &self.signing_key, peer, &held)
                .err()
                .unwrap_or_default();
        PeerAnchors {
            peer: peer.to_string(),
            anchors: held.len() as u64,
            newest: held.iter().map(|c| c.seq).max().unwrap_or(0),
            problem,
            reached: true,
        }
    }

    /// The chain as JSON Lines, from an entry number or a time on.
    pub fn audit_export(
        self: &Arc<Self>,
        request: &AuditExportRequest,
    ) -> impl Stream<Item = Result<AuditExportChunk, Status>> + Send + use<> {
        let since = if request.since_seq > 0 {
            Some(Since::Seq(request.since_seq))
        } else if request.since_ms > 0 {
            Some(Since::Time(request.since_ms as u64))
        } else {
            None
        };
        let this = self.clone();
        chunked(EXPORT_CHUNK, move |writer| {
            this.audit.log().export(since, writer)?;
            Ok(())
        })
    }

    /// Every tree and the OPRF key files, while the node runs.
    pub fn backup(
        self: &Arc<Self>,
    ) -> impl Stream<Item = Result<BackupChunk, Status>> + Send + use<> {
        let this = self.clone();
        let chunks = chunked(BACKUP_CHUNK, move |writer| {
            let (summary, seal) = crate::backup::write(
                this.store.db(),
                &this.data_dir,
                &this.agency,
                &this.signing,
                writer,
            )?;
            this.audit.event(
                this.agency.as_str(),
                Action::BackupMade,
                "backup",
                &serde_json::json!({ "digest": seal.digest_hex(), "entries": summary.entries }),
            );
            tracing::info!(
                trees = summary.trees,
                entries = summary.entries,
                files = summary.files,
                "backup written"
            );
            Ok(())
        });
        tokio_stream::StreamExt::map(chunks, |chunk| {
            chunk.map(|c: AuditExportChunk| BackupChunk { data: c.jsonl })
        })
    }
}

/// Runs `write` off the async workers and streams what it writes in
/// chunks of about `chunk` bytes; its error, if any, ends the stream.
fn chunked(
    chunk: usize,
    write: impl FnOnce(&mut ChunkWriter) -> Result<(), Status> + Send + 'static,
) -> impl Stream<Item = Result<AuditExportChunk, Status>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut writer = ChunkWriter {
            tx,
            buf: Vec::new(),
            chunk,
        };
        match write(&mut writer) {
            Ok(()) => {
                let _ = std::io::Write::flush(&mut writer);
            }
            Err(status) => {
                let _ = writer.tx.blocking_send(Err(status));
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Export chunks of about 64 KiB; backup chunks of about 1 MiB.
const EXPORT_CHUNK: usize = 64 * 1024;
const BACKUP_CHUNK: usize = 1 << 20;

/// Streams what a writer writes, in chunks.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Result<AuditExportChunk, Status>>,
    buf: Vec<u8>,
    chunk: usize,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= self.chunk {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let jsonl = std::mem::take(&mut self.buf);
        self.tx
            .blocking_send(Ok(AuditExportChunk { jsonl }))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "export cancelled"))
    }
}
