//! Outgoing gRPC channels over mutual TLS, and plain words for why one failed.
//!
//! Used by the node to reach its peers and by the CLI to reach its own node.
//! The rustls client config decides what the server must prove (see `tls`);
//! this module only connects and explains failures in one sentence.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::config::split_endpoint;

/// Why a channel could not be set up (before any connection attempt).
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("{0:?} is not host:port")]
    BadEndpoint(String),
    #[error("{0:?} is not a valid TLS server name")]
    BadServerName(String),
}

/// A channel to `endpoint` (`host:port`) whose TLS server name is
/// `server_name` (default: the host). Connects lazily and reconnects itself.
pub fn channel(
    endpoint: &str,
    server_name: Option<&str>,
    tls: Arc<ClientConfig>,
    connect_timeout: Duration,
) -> Result<Channel, DialError> {
    channel_tuned(endpoint, server_name, tls, connect_timeout, |ep| ep)
}

/// As [`channel`], with `tune` changing the HTTP/2 settings (window sizes and the like).
pub fn channel_tuned(
    endpoint: &str,
    server_name: Option<&str>,
    tls: Arc<ClientConfig>,
    connect_timeout: Duration,
    tune: impl FnOnce(Endpoint) -> Endpoint,
) -> Result<Channel, DialError> {
    let (host, port) =
        split_endpoint(endpoint).ok_or_else(|| DialError::BadEndpoint(endpoint.to_owned()))?;
    let name = server_name.unwrap_or(&host).to_owned();
    let server_name =
        ServerName::try_from(name.clone()).map_err(|_| DialError::BadServerName(name))?;
    // The URI is only a label for tonic; the connector below does the dialling over TLS.
    let uri = if host.contains(':') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    };
    let ep = tune(
        Endpoint::from_shared(uri)
            .map_err(|_| DialError::BadEndpoint(endpoint.to_owned()))?
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10)),
    );
    let connector = TlsConnector::from(tls);
    let target = (host, port);
    Ok(
        ep.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            let server_name = server_name.clone();
            let target = target.clone();
            async move {
                let tcp = TcpStream::connect((target.0.as_str(), target.1)).await?;
                let _ = tcp.set_nodelay(true);
                let tls = connector.connect(server_name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        })),
    )
}

const CLOSED: &str = "the other side closed the connection during set-up (it refused our certificate or TLS version)";

/// One plain sentence for a failed call: the cause, found in the error chain.
pub fn explain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut fallback = error.to_string();
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return explain_tls(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // rustls and hyper wrap their errors in io::Error, sometimes only
            // as text: look inside first.
            if let Some(inner) = io.get_ref() {
                if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                    return explain_tls(tls);
                }
                if let Some(alert) = alert_from_text(&inner.to_string()) {
                    return explain_tls(&rustls::Error::AlertReceived(alert));
                }
            }
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return "connection refused: nothing is listening there (is the node running?)"
                        .into();
                }
                std::io::ErrorKind::TimedOut => return "the connection timed out".into(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
                    return CLOSED.into();
                }
                _ => {}
            }
            if let Some(inner) = io.get_ref() {
                cur = Some(inner);
                continue;
            }
            return format!("network error: {io}");
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && (h.is_canceled() || h.is_closed() || h.is_incomplete_message())
        {
            return CLOSED.into();
        }
        if let Some(status) = e.downcast_ref::<tonic::Status>() {
            status.message().clone_into(&mut fallback);
        }
        cur = e.source();
    }
    fallback
}

/// Recovers an alert from rustls' text form ("received fatal alert: X").
fn alert_from_text(text: &str) -> Option<rustls::AlertDescription> {
    use rustls::AlertDescription as A;
    let name = text.strip_prefix("received fatal alert: ")?;
    [
        A::CertificateExpired,
        A::CertificateRevoked,
        A::UnknownCA,
        A::CertificateRequired,
        A::ProtocolVersion,
        A::BadCertificate,
        A::AccessDenied,
        A::HandshakeFailure,
    ]
    .into_iter()
    .find(|a| format!("{a:?}") == name.trim())
}

fn explain_tls(error: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match error {
        E::AlertReceived(A::CertificateExpired) => {
            "the other side refused our certificate: it has expired".into()
        }
        E::AlertReceived(A::CertificateRevoked) => {
            "the other side refused our certificate: it has been revoked".into()
        }
        E::AlertReceived(A::UnknownCA) => {
            "the other side refused our certificate: it is not issued by a CA it trusts".into()
        }
        E::AlertReceived(A::CertificateRequired) => {
            "the other side requires a client certificate and got none".into()
        }
        E::AlertReceived(A::ProtocolVersion) => {
            "the other side refused the TLS version (Tessera speaks TLS 1.3 only)".into()
        }
        E::AlertReceived(alert) => format!("the other side refused the TLS handshake ({alert:?})"),
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the server's certificate has expired".into()
        }
        E::InvalidCertificate(C::Revoked) => "the server's certificate has been revoked".into(),
        E::InvalidCertificate(C::UnknownIssuer) => {
            "the server's certificate is not issued by a CA we trust".into()
        }
        E::InvalidCertificate(C::ApplicationVerificationFailure) => {
            "the server's certificate does not name the node we meant to reach".into()
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the server's certificate is not valid for the address we dialled".into()
        }
        other => format!("TLS error: {other}"),
    }
}
