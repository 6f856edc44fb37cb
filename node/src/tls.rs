//! rustls configurations for both directions, CRLs, and reload.
//!
//! Every connection is TLS 1.3 with the ring provider. Servers require a client
//! certificate chaining to the consortium CA bundle and not revoked by any
//! configured CRL. Clients check both the server's certificate chain and that
//! its SAN URI names the node they meant to reach. `TlsState` holds the current
//! material and swaps it atomically on reload; a failed reload keeps the old.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::config::TlsConfig;
use crate::identity::{AgencyId, Identity, Role};

/// A problem with TLS material, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {message}")]
    Read {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{what} {path} contains no {expected}")]
    Empty {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("cannot build the TLS configuration: {0}")]
    Build(String),
}

/// The ring provider, shared by every config.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate in a PEM file.
pub fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| TlsError::Read {
            what,
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_owned(),
            expected: "certificate",
        });
    }
    Ok(certs)
}

/// Reads a PEM private key.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Read {
        what: "private key",
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| TlsError::Read {
            what: "CRL",
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if crls.is_empty() {
        return Err(TlsError::Empty {
            what: "CRL file",
            path: path.to_owned(),
            expected: "CRL",
        });
    }
    Ok(crls)
}

/// A certificate's issuer and serial, as raw DER, to match against CRLs.
pub type CertRef = (Vec<u8>, Vec<u8>);

/// Issuer and serial of a DER certificate.
pub fn cert_ref(der: &[u8]) -> Option<CertRef> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    Some((
        cert.tbs_certificate.issuer.as_raw().to_vec(),
        cert.tbs_certificate.raw_serial().to_vec(),
    ))
}

/// Everything read from disk: trust anchors, CRLs, own chain and key.
#[derive(Debug)]
pub struct TlsMaterial {
    roots: Arc<RootCertStore>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    revoked: HashSet<CertRef>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    allow_unknown_revocation: bool,
}

impl TlsMaterial {
    /// Reads the files named by the config.
    pub fn load(cfg: &TlsConfig) -> Result<Self, TlsError> {
        Self::from_files(
            &cfg.ca,
            &cfg.crls,
            &cfg.cert,
            &cfg.key,
            cfg.allow_unknown_revocation,
        )
    }

    pub fn from_files(
        ca: &[PathBuf],
        crl_files: &[PathBuf],
        cert: &Path,
        key: &Path,
        allow_unknown_revocation: bool,
    ) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        for path in ca {
            for cert in read_certs("CA bundle", path)? {
                roots.add(cert).map_err(|e| TlsError::Read {
                    what: "CA bundle",
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            }
        }
        let mut crls = Vec::new();
        for path in crl_files {
            crls.extend(read_crls(path)?);
        }
        let mut revoked = HashSet::new();
        for crl in &crls {
            if let Ok((_, parsed)) = CertificateRevocationList::from_der(crl) {
                let issuer = parsed.tbs_cert_list.issuer.as_raw().to_vec();
                for entry in parsed.iter_revoked_certificates() {
                    revoked.insert((issuer.clone(), entry.raw_serial().to_vec()));
                }
            }
        }
        Ok(Self {
            roots: Arc::new(roots),
            crls,
            revoked,
            chain: read_certs("certificate", cert)?,
            key: read_key(key)?,
            allow_unknown_revocation,
        })
    }

    /// Whether a certificate (issuer, serial) is on a loaded CRL.
    pub fn is_revoked(&self, cert: &CertRef) -> bool {
        self.revoked.contains(cert)
    }

    /// The identity in this material's own certificate.
    pub fn own_identity(&self) -> Option<Identity> {
        self.chain
            .first()
            .and_then(|c| Identity::from_cert_der(c).ok())
    }

    /// The listener configuration: TLS 1.3, client certificate required.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let mut verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider());
        if !self.crls.is_empty() {
            verifier = verifier.with_crls(self.crls.clone());
            if self.allow_unknown_revocation {
                verifier = verifier.allow_unknown_revocation_status();
            }
        }
        let verifier = verifier
            .build()
            .map_err(|e| TlsError::Build(e.to_string()))?;
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Build(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Build(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// A client configuration that only accepts a server whose certificate
    /// names node `expected`.
    pub fn client_config(&self, expected: &AgencyId) -> Result<Arc<ClientConfig>, TlsError> {
        let mut inner = WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider());
        if !self.crls.is_empty() {
            inner = inner.with_crls(self.crls.clone());
            if self.allow_unknown_revocation {
                inner = inner.allow_unknown_revocation_status();
            }
        }
        let inner = inner.build().map_err(|e| TlsError::Build(e.to_string()))?;
        let verifier = Arc::new(NodeServerVerifier {
            inner,
            expected: expected.clone(),
        });
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Build(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| TlsError::Build(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

/// rustls' own WebPKI server verification, then: the certificate must carry
/// `urn:tessera:node:<expected>`.
#[derive(Debug)]
struct NodeServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    expected: AgencyId,
}

impl ServerCertVerifier for NodeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        match Identity::from_cert_der(end_entity) {
            Ok(Identity {
                agency,
                role: Role::Node,
            }) if agency == self.expected => Ok(ServerCertVerified::assertion()),
            _ => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// One consistent set of configurations, swapped whole on reload.
#[derive(Debug)]
pub struct TlsSnapshot {
    pub material: TlsMaterial,
    pub server: Arc<ServerConfig>,
    /// Bumped on every successful reload, so peer clients can rebuild.
    pub generation: u64,
}

/// The node's current TLS state.
#[derive(Debug)]
pub struct TlsState {
    config: TlsConfig,
    current: RwLock<Arc<TlsSnapshot>>,
}

impl TlsState {
    pub fn load(config: &TlsConfig) -> Result<Self, TlsError> {
        let material = TlsMaterial::load(config)?;
        let server = material.server_config()?;
        Ok(Self {
            config: config.clone(),
            current: RwLock::new(Arc::new(TlsSnapshot {
                material,
                server,
                generation: 0,
            })),
        })
    }

    pub fn current(&self) -> Arc<TlsSnapshot> {
        // A poisoned lock means a panic while swapping an Arc: the old value is intact.
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Re-reads certificates, key, CA bundle and CRLs. On error the old state stays.
    pub fn reload(&self) -> Result<u64, TlsError> {
        let material = TlsMaterial::load(&self.config)?;
        let server = material.server_config()?;
        let mut guard = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let generation = guard.generation + 1;
        *guard = Arc::new(TlsSnapshot {
            material,
            server,
            generation,
        });
        Ok(generation)
    }
}
