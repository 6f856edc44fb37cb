//! Accepting connections: TCP, then the TLS 1.3 handshake, then gRPC.
//!
//! Each accepted socket gets its own task and two deadlines: a short one for
//! its ClientHello, then the rest of the handshake deadline. The accept loop
//! never waits on a handshake; a socket gets a slot (`slots`: a cap per
//! listener and per source address, and an idle socket always makes room for
//! a newer one) or is closed at once. Refusals are logged a few per window
//! (`throttle`), so a flood writes a summary, not a line per socket. Only
//! completed handshakes reach tonic, each carrying a `ConnInfo` (the peer's
//! identity as read from its certificate) that the services' guard reads per
//! request. There is no plaintext path.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use crate::identity::{Identity, IdentityError};
use crate::throttle::{Throttle, Verdict};
use crate::tls::{CertRef, TlsState, cert_ref};

mod conns;
mod slots;
pub use conns::{PeerConn, PeerConns};
pub use slots::{Refused, Slot, Slots};

/// How long a connection past its agency's cap is kept, to answer its calls
/// RESOURCE_EXHAUSTED, before it is cut.
const OVER_CAP_LINGER: Duration = Duration::from_secs(2);

/// Most handshakes in flight at once per listener.
pub const MAX_HANDSHAKES: usize = 256;
/// Most handshakes in flight at once from one source address.
pub const MAX_HANDSHAKES_PER_SOURCE: usize = 32;
/// Refusals logged one by one per window; the rest are counted.
const LOGGED_PER_WINDOW: u32 = 5;
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// How long and how many unauthenticated sockets a listener keeps.
#[derive(Debug, Clone, Copy)]
pub struct AcceptLimits {
    /// Time from the TCP connect to the ClientHello.
    pub client_hello_timeout: Duration,
    /// Time from the TCP connect to the end of the handshake.
    pub handshake_timeout: Duration,
    pub max_handshakes: usize,
    pub per_source: usize,
    /// Established connections one agency may hold (`None`: no cap, the
    /// operator port).
    pub per_peer: Option<usize>,
}

/// What a service knows about the other end of a connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub identity: Result<Identity, IdentityError>,
    /// Issuer and serial of the client certificate, to re-check against CRLs
    /// reloaded after the connection was made.
    pub cert: Option<CertRef>,
    /// The connection is past its agency's cap (the cap): its calls are
    /// refused, and it is cut shortly.
    pub over_cap: Option<usize>,
}

/// An established mutual-TLS connection.
pub struct TlsConn {
    io: TlsStream<TcpStream>,
    info: ConnInfo,
    /// Once done, the connection fails on its next read or write (a
    /// shutdown ends the answers still waiting on a peer that does not read).
    cut: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Its place among its agency's connections.
    _place: Option<PeerConn>,
}

impl TlsConn {
    fn cut(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.cut.as_mut().poll(cx).is_ready().then(|| {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the node is shutting down",
            )
        })
    }
}

impl Connected for TlsConn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.cut(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.cut(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.cut(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Accepts on `listener` until `stop` is cancelled, yielding TLS connections
/// that fail once `cut` is cancelled.
pub fn incoming(
    name: &'static str,
    listener: TcpListener,
    tls: Arc<TlsState>,
    limits: AcceptLimits,
    (stop, cut): (CancellationToken, CancellationToken),
) -> ReceiverStream<io::Result<TlsConn>> {
    let (tx, rx) = mpsc::channel(64);
    let slots = Slots::new(limits.max_handshakes, limits.per_source);
    let refusals = Arc::new(Throttle::new(LOGGED_PER_WINDOW, LOG_WINDOW));
    let conns = limits.per_peer.map(PeerConns::new);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let (tcp, remote) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: back off, keep listening.
                    if let Verdict::Write { suppressed } = refusals.event() {
                        tracing::warn!(listener = name, %error, suppressed, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let slot = match slots.admit(remote.ip()) {
                Ok(slot) => slot,
                Err(refused) => {
                    if let Verdict::Write { suppressed } = refusals.event() {
                        let reason = match refused {
                            Refused::Source => "too many handshakes from this address",
                            Refused::Listener => "too many handshakes in flight",
                        };
                        tracing::warn!(listener = name, %remote, suppressed, "{reason}; connection closed");
                    }
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let tx = tx.clone();
            let tls = tls.clone();
            let refusals = refusals.clone();
            let cut = cut.clone();
            let conns = conns.clone();
            tokio::spawn(async move {
                let room = slot.cut.clone();
                let outcome = tokio::select! {
                    () = room.cancelled() => Err("cut to make room for a newer connection".to_owned()),
                    r = handshake(tcp, &tls, &slot, limits) => r,
                };
                drop(slot);
                match outcome {
                    Ok(io) => {
                        let mut info = conn_info(&io, remote);
                        tracing::debug!(listener = name, %remote, "TLS session established");
                        let (place, cut) = match (&conns, &info.identity) {
                            (Some(conns), Ok(identity)) => match conns.admit(&identity.agency) {
                                Ok(place) => (Some(place), cut_when(cut, None)),
                                Err(cap) => {
                                    info.over_cap = Some(cap);
                                    if let Verdict::Write { suppressed } = refusals.event() {
                                        tracing::warn!(listener = name, peer = %identity.agency, cap, suppressed, "too many connections from one agency; its calls are refused and it is closed");
                                    }
                                    (None, cut_when(cut, Some(OVER_CAP_LINGER)))
                                }
                            },
                            _ => (None, cut_when(cut, None)),
                        };
                        let _ = tx
                            .send(Ok(TlsConn {
                                io,
                                info,
                                cut,
                                _place: place,
                            }))
                            .await;
                    }
                    Err(error) => {
                        if let Verdict::Write { suppressed } = refusals.event() {
                            tracing::info!(listener = name, %remote, %error, suppressed, "TLS handshake refused");
                        }
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Done once `cut` is cancelled, or after `linger`.
fn cut_when(
    cut: CancellationToken,
    linger: Option<Duration>,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        match linger {
            Some(linger) => {
                tokio::select! {
                    () = cut.cancelled() => {}
                    () = tokio::time::sleep(linger) => {}
                }
            }
            None => cut.cancelled().await,
        }
    })
}

/// The ClientHello within its deadline, then the rest of the handshake.
async fn handshake(
    tcp: TcpStream,
    tls: &TlsState,
    slot: &Slot,
    limits: AcceptLimits,
) -> Result<TlsStream<TcpStream>, String> {
    let started = tokio::time::Instant::now();
    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
    let start = tokio::time::timeout(limits.client_hello_timeout, acceptor)
        .await
        .map_err(|_| "no ClientHello in time".to_owned())?
        .map_err(|e| e.to_string())?;
    slot.hello_received();
    let rest = limits.handshake_timeout.saturating_sub(started.elapsed());
    tokio::time::timeout(rest, start.into_stream(tls.current().server.clone()))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())
}

fn conn_info(io: &TlsStream<TcpStream>, remote: SocketAddr) -> ConnInfo {
    let leaf = io
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec());
    ConnInfo {
        remote,
        identity: leaf
            .as_deref()
            .map_or(Err(IdentityError::Missing), Identity::from_cert_der),
        cert: leaf.as_deref().and_then(cert_ref),
        over_cap: None,
    }
}
