//! The federation calls this node makes, behind one trait: [`PeerClient`].
//!
//! Workers (greetings, pushes, pulls, index replication, screening, watch
//! lists, deconfliction, overlap counts, consultations) hold an
//! `Arc<dyn PeerClient>` and never a channel, so that each is unit-tested
//! against the in-memory fake (`exchange::fake`) without a socket. The
//! production implementation is [`TonicPeers`]: gRPC over mutual TLS, one
//! lazily connected channel per peer (see `peers::PeerTable::channel`).
//!
//! Timeouts are the caller's: a worker wraps a call in
//! `tokio::time::timeout` with its own limit, so that a slow peer is tested
//! with paused time.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use tessera_proto::v1::federation_client::FederationClient;
use tessera_proto::v1::{
    AuditCheckpoint, AuditHeadRequest, CardinalityRequest, CardinalityResponse, ConsultAck,
    DeconflictHitRequest, EvaluateRequest, EvaluateResponse, FeedItem, HeldAnchorsRequest,
    HelloRequest, HelloResponse, IndexDelta, PilotFiguresRequest, PullIndexRequest,
    PullNoticesRequest, PushNoticesRequest, PushNoticesResponse, ReportOverlapRequest,
    ReportOverlapResponse, SignedMessage,
};
use tonic::Code;
use tonic::transport::Channel;

use crate::identity::AgencyId;
use crate::peers::PeerTable;
use crate::tls::TlsState;

/// Why a call to a peer gave no answer. The reason is one plain sentence
/// for an operator; it never holds party data (a peer's status message is
/// about its own refusal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// No call was made: the peer is not configured, or no TLS client
    /// configuration could be made for it.
    #[error("{0}")]
    NoChannel(String),
    /// The peer refused the call, or the transport failed; `code` is the
    /// gRPC status (UNAVAILABLE for a transport failure).
    #[error("{reason}")]
    Call { code: Code, reason: String },
}

impl PeerError {
    /// The status code of the failure (UNAVAILABLE when no call was made).
    pub fn code(&self) -> Code {
        match self {
            Self::NoChannel(_) => Code::Unavailable,
            Self::Call { code, .. } => *code,
        }
    }

    /// A failed call, explained (see `dial::explain`).
    pub fn from_status(status: &tonic::Status) -> Self {
        Self::Call {
            code: status.code(),
            reason: crate::dial::explain(status),
        }
    }

    /// A transport-level failure in plain words (tests and fakes).
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::Call {
            code: Code::Unavailable,
            reason: reason.into(),
        }
    }

    /// The peer's own status message, for refusals that a person acts on
    /// (over budget, a retired epoch).
    pub fn reason(&self) -> &str {
        match self {
            Self::NoChannel(r) | Self::Call { reason: r, .. } => r,
        }
    }
}

impl From<tonic::Status> for PeerError {
    fn from(status: tonic::Status) -> Self {
        Self::from_status(&status)
    }
}

/// A stream of items from a peer.
pub type PeerStream<T> = BoxStream<'static, Result<T, PeerError>>;

/// The federation RPCs this node calls on a peer. One method per RPC of
/// `proto/tessera/v1/federation.proto` that a worker uses; a new federation
/// RPC gets a method here, in [`TonicPeers`] and in the fake.
#[tonic::async_trait]
pub trait PeerClient: Send + Sync + std::fmt::Debug {
    async fn hello(
        &self,
        peer: &AgencyId,
        request: HelloRequest,
    ) -> Result<HelloResponse, PeerError>;

    async fn push_notices(
        &self,
        peer: &AgencyId,
        request: PushNoticesRequest,
    ) -> Result<PushNoticesResponse, PeerError>;

    /// The peer's feed after `after` (what it lets us see), as a stream.
    async fn pull_notices(
        &self,
        peer: &AgencyId,
        after: u64,
    ) -> Result<PeerStream<FeedItem>, PeerError>;

    /// The peer's index for us, as deltas after position `after`.
    async fn pull_index(
        &self,
        peer: &AgencyId,
        after: u64,
    ) -> Result<PeerStream<IndexDelta>, PeerError>;

    async fn evaluate(
        &self,
        peer: &AgencyId,
        request: EvaluateRequest,
    ) -> Result<EvaluateResponse, PeerError>;

    async fn cardinality(
        &self,
        peer: &AgencyId,
        request: CardinalityRequest,
    ) -> Result<CardinalityResponse, PeerError>;

    async fn report_overlap(
        &self,
        peer: &AgencyId,
        request: ReportOverlapRequest,
    ) -> Result<ReportOverlapResponse, PeerError>;

    async fn deconflict_hit(
        &self,
        peer: &AgencyId,
        request: DeconflictHitRequest,
    ) -> Result<(), PeerError>;

    async fn consult(&self, peer: &AgencyId, step: SignedMessage) -> Result<ConsultAck, PeerError>;

    /// The peer's newest signed audit checkpoint.
    async fn audit_head(&self, peer: &AgencyId) -> Result<AuditCheckpoint, PeerError>;

    /// Our checkpoints that the peer keeps.
    async fn held_anchors(&self, peer: &AgencyId) -> Result<Vec<AuditCheckpoint>, PeerError>;

    /// A bloc member's signed pilot figures.
    async fn pilot_figures(
        &self,
        peer: &AgencyId,
        request: PilotFiguresRequest,
    ) -> Result<SignedMessage, PeerError>;
}

/// Largest message accepted from or sent to a peer on the notice and
/// evaluation calls (tonic's default, 4 MiB, on the small ones).
const MAX_MESSAGE: Option<usize> = Some(64 << 20);
/// Largest message on the index and overlap calls (whole index deltas and sets).
const MAX_BULK_MESSAGE: Option<usize> = Some(256 << 20);
/// tonic's defaults.
const SMALL: Option<usize> = None;

/// [`PeerClient`] over gRPC and mutual TLS, with the channels of the peer
/// table (rebuilt after a certificate reload).
#[derive(Debug, Clone)]
pub struct TonicPeers {
    peers: Arc<PeerTable>,
    tls: Arc<TlsState>,
}

impl TonicPeers {
    pub fn new(peers: Arc<PeerTable>, tls: Arc<TlsState>) -> Self {
        Self { peers, tls }
    }

    fn client(
        &self,
        peer: &AgencyId,
        max: Option<usize>,
    ) -> Result<FederationClient<Channel>, PeerError> {
        let channel = self
            .peers
            .channel(peer, &self.tls)
            .map_err(|e| PeerError::NoChannel(e.to_string()))?;
        let client = FederationClient::new(channel);
        Ok(match max {
            Some(max) => client
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
            None => client,
        })
    }
}

fn stream<T: Send + 'static>(s: tonic::Streaming<T>) -> PeerStream<T> {
    s.map(|item| item.map_err(PeerError::from)).boxed()
}

#[tonic::async_trait]
impl PeerClient for TonicPeers {
    async fn hello(
        &self,
        peer: &AgencyId,
        request: HelloRequest,
    ) -> Result<HelloResponse, PeerError> {
        let mut client = self.client(peer, SMALL)?;
        Ok(client.hello(request).await?.into_inner())
    }

    async fn push_notices(
        &self,
        peer: &AgencyId,
        request: PushNoticesRequest,
    ) -> Result<PushNoticesResponse, PeerError> {
        let mut client = self.client(peer, MAX_MESSAGE)?;
        Ok(client.push_notices(request).await?.into_inner())
    }

    async fn pull_notices(
        &self,
        peer: &AgencyId,
        after: u64,
    ) -> Result<PeerStream<FeedItem>, PeerError> {
        let mut client = self.client(peer, MAX_MESSAGE)?;
        let response = client
            .pull_notices(PullNoticesRequest { after, limit: 0 })
            .await?;
        Ok(stream(response.into_inner()))
    }

    async fn pull_index(
        &self,
        peer: &AgencyId,
        after: u64,
    ) -> Result<PeerStream<IndexDelta>, PeerError> {
        let mut client = self.client(peer, MAX_BULK_MESSAGE)?;
        let response = client.pull_index(PullIndexRequest { after }).await?;
        Ok(stream(response.into_inner()))
    }

    async fn evaluate(
        &self,
        peer: &AgencyId,
        request: EvaluateRequest,
    ) -> Result<EvaluateResponse, PeerError> {
        let mut client = self.client(peer, MAX_MESSAGE)?;
        Ok(client.evaluate(request).await?.into_inner())
    }

    async fn cardinality(
        &self,
        peer: &AgencyId,
        request: CardinalityRequest,
    ) -> Result<CardinalityResponse, PeerError> {
        let mut client = self.client(peer, MAX_BULK_MESSAGE)?;
        Ok(client.cardinality(request).await?.into_inner())
    }

    async fn report_overlap(
        &self,
        peer: &AgencyId,
        request: ReportOverlapRequest,
    ) -> Result<ReportOverlapResponse, PeerError> {
        let mut client = self.client(peer, SMALL)?;
        Ok(client.report_overlap(request).await?.into_inner())
    }

    async fn deconflict_hit(
        &self,
        peer: &AgencyId,
        request: DeconflictHitRequest,
    ) -> Result<(), PeerError> {
        let mut client = self.client(peer, SMALL)?;
        client.deconflict_hit(request).await?;
        Ok(())
    }

    async fn consult(&self, peer: &AgencyId, step: SignedMessage) -> Result<ConsultAck, PeerError> {
        let mut client = self.client(peer, SMALL)?;
        Ok(client.consult(step).await?.into_inner())
    }

    async fn audit_head(&self, peer: &AgencyId) -> Result<AuditCheckpoint, PeerError> {
        let mut client = self.client(peer, SMALL)?;
        Ok(client.audit_head(AuditHeadRequest {}).await?.into_inner())
    }

    async fn held_anchors(&self, peer: &AgencyId) -> Result<Vec<AuditCheckpoint>, PeerError> {
        let mut client = self.client(peer, SMALL)?;
        Ok(client
            .held_anchors(HeldAnchorsRequest {})
            .await?
            .into_inner()
            .checkpoints)
    }

    async fn pilot_figures(
        &self,
        peer: &AgencyId,
        request: PilotFiguresRequest,
    ) -> Result<SignedMessage, PeerError> {
        let mut client = self.client(peer, SMALL)?;
        Ok(client.pilot_figures(request).await?.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_its_code_and_says_why_in_one_sentence() {
        let e = PeerError::from(tonic::Status::resource_exhausted(
            "query budget exhausted: 9 keys asked; retry in 3 s",
        ));
        assert_eq!(e.code(), Code::ResourceExhausted);
        assert_eq!(
            e.to_string(),
            "query budget exhausted: 9 keys asked; retry in 3 s"
        );
        let none = PeerError::NoChannel("US-BIS is not a configured peer".into());
        assert_eq!(none.code(), Code::Unavailable);
        assert_eq!(none.reason(), "US-BIS is not a configured peer");
    }
}
