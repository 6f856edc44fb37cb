//! Accepting connections: TCP, then the TLS 1.3 handshake, then gRPC.
//!
//! Each accepted socket gets its own task and a handshake deadline, so a slow
//! or hostile client can neither crash nor stall the listener. Only completed
//! handshakes reach tonic, each carrying a `ConnInfo` (the peer's identity as
//! read from its certificate) that the services' guard reads per request.
//! There is no plaintext path.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use crate::identity::{Identity, IdentityError};
use crate::tls::{CertRef, TlsState, cert_ref};

/// Most handshakes in flight at once per listener.
const MAX_HANDSHAKES: usize = 256;

/// What a service knows about the other end of a connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub identity: Result<Identity, IdentityError>,
    /// Issuer and serial of the client certificate, to re-check against CRLs
    /// reloaded after the connection was made.
    pub cert: Option<CertRef>,
}

/// An established mutual-TLS connection.
pub struct TlsConn {
    io: TlsStream<TcpStream>,
    info: ConnInfo,
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
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
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
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Accepts on `listener` until `stop` is cancelled, yielding TLS connections.
pub fn incoming(
    name: &'static str,
    listener: TcpListener,
    tls: Arc<TlsState>,
    handshake_timeout: Duration,
    stop: CancellationToken,
) -> ReceiverStream<io::Result<TlsConn>> {
    let (tx, rx) = mpsc::channel(64);
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
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
                    tracing::warn!(listener = name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!(listener = name, %remote, "too many handshakes in flight; connection dropped");
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = TlsAcceptor::from(tls.current().server.clone());
            let tx = tx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(io)) => {
                        let leaf = io
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| c.as_ref().to_vec());
                        let info = ConnInfo {
                            remote,
                            identity: leaf
                                .as_deref()
                                .map_or(Err(IdentityError::Missing), Identity::from_cert_der),
                            cert: leaf.as_deref().and_then(cert_ref),
                        };
                        tracing::debug!(listener = name, %remote, "TLS session established");
                        let _ = tx.send(Ok(TlsConn { io, info })).await;
                    }
                    Ok(Err(error)) => {
                        tracing::info!(listener = name, %remote, %error, "TLS handshake refused");
                    }
                    Err(_) => {
                        tracing::info!(listener = name, %remote, "TLS handshake timed out");
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
