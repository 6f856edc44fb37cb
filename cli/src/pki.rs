//! The development PKI: a CA, its CRL, and per-agency node and operator
//! certificates with Tessera SAN URIs, made with rcgen.
//!
//! For pilots and tests only: a real agency uses its consortium's CA (see
//! `certs/README.md`). Private keys are written with mode 0600.

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

/// A PKI failure, in one sentence.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a PEM {what}")]
    NotPem { path: String, what: &'static str },
    #[error("{0}")]
    Invalid(String),
}

/// What a leaf certificate should say.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    pub common_name: String,
    pub uris: Vec<String>,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub server_auth: bool,
    pub client_auth: bool,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl LeafSpec {
    /// A node certificate: SAN URI `urn:tessera:node:<agency>`, plus DNS
    /// `localhost` and IP 127.0.0.1 for dev use; server and client usages.
    pub fn node(agency: &str, days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            common_name: format!("{agency} node"),
            uris: vec![format!("urn:tessera:node:{agency}")],
            dns: vec!["localhost".into()],
            ips: vec![IpAddr::from([127, 0, 0, 1])],
            server_auth: true,
            client_auth: true,
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(days),
        }
    }

    /// An operator certificate: `urn:tessera:operator:<agency>:<name>`, client usage.
    pub fn operator(agency: &str, name: &str, days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            common_name: format!("{agency} operator {name}"),
            uris: vec![format!("urn:tessera:operator:{agency}:{name}")],
            dns: vec![],
            ips: vec![],
            server_auth: false,
            client_auth: true,
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(days),
        }
    }
}

/// An issued certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub serial: Vec<u8>,
}

/// A certificate authority able to issue leaves and CRLs.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
    pub key_pem: String,
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // The system RNG failing is fatal for a PKI; ring reports it and we stop.
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("system random number generator failed");
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

impl Ca {
    /// A new self-signed CA valid for `days`.
    pub fn generate(name: &str, days: i64) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "Tessera development PKI");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(days);
        params.serial_number = Some(random_serial());
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads `dir/ca.pem` and `dir/ca.key`.
    pub fn load(dir: &Path) -> Result<Self, PkiError> {
        let cert_pem = read(&dir.join("ca.pem"))?;
        let key_pem = read(&dir.join("ca.key"))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|_| PkiError::NotPem {
            path: dir.join("ca.key").display().to_string(),
            what: "private key",
        })?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|_| PkiError::NotPem {
            path: dir.join("ca.pem").display().to_string(),
            what: "CA certificate",
        })?;
        Ok(Self {
            issuer,
            cert_pem,
            key_pem,
        })
    }

    /// Issues a leaf certificate with a fresh P-256 key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<Leaf, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.common_name.as_str());
        params.distinguished_name = dn;
        for uri in &spec.uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.as_str().try_into()?));
        }
        for dns in &spec.dns {
            params
                .subject_alt_names
                .push(SanType::DnsName(dns.as_str().try_into()?));
        }
        for ip in &spec.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if spec.server_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if spec.client_auth {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        let serial = random_serial();
        params.serial_number = Some(serial.clone());
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: serial.to_bytes(),
        })
    }

    /// A CRL listing `revoked` serials, numbered `number`, valid for a year.
    pub fn crl(&self, revoked: &[Vec<u8>], number: u64) -> Result<String, PkiError> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(365),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(serial),
                    revocation_time: now - Duration::minutes(1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Writes a file; private material gets mode 0600.
pub fn write(path: &Path, bytes: &[u8], private: bool) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| PkiError::Write {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// The serial number of a PEM certificate.
pub fn cert_serial(pem_path: &Path) -> Result<Vec<u8>, PkiError> {
    let text = read(pem_path)?;
    let der = pem_der(&text, "CERTIFICATE").ok_or_else(|| PkiError::NotPem {
        path: pem_path.display().to_string(),
        what: "certificate",
    })?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|_| PkiError::NotPem {
        path: pem_path.display().to_string(),
        what: "certificate",
    })?;
    Ok(cert.tbs_certificate.raw_serial().to_vec())
}

/// The revoked serials and number of a PEM CRL.
pub fn crl_contents(pem_path: &Path) -> Result<(Vec<Vec<u8>>, u64), PkiError> {
    let text = read(pem_path)?;
    let not_crl = || PkiError::NotPem {
        path: pem_path.display().to_string(),
        what: "CRL",
    };
    let der = pem_der(&text, "X509 CRL").ok_or_else(not_crl)?;
    let (_, crl) = CertificateRevocationList::from_der(&der).map_err(|_| not_crl())?;
    let serials = crl
        .iter_revoked_certificates()
        .map(|r| r.raw_serial().to_vec())
        .collect();
    let number = crl
        .crl_number()
        .map_or(0, |n| n.to_u64_digits().first().copied().unwrap_or(0));
    Ok((serials, number))
}

fn pem_der(text: &str, label: &str) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
    if label == "CERTIFICATE" {
        CertificateDer::from_pem_slice(text.as_bytes())
            .ok()
            .map(|d| d.to_vec())
    } else {
        CertificateRevocationListDer::from_pem_slice(text.as_bytes())
            .ok()
            .map(|d| d.to_vec())
    }
}

/// Adds the certificate at `cert` to `ca_dir/crl.pem`, re-signing the CRL.
/// Returns how many certificates the CRL now lists.
pub fn revoke(ca_dir: &Path, cert: &Path) -> Result<usize, PkiError> {
    let ca = Ca::load(ca_dir)?;
    let serial = cert_serial(cert)?;
    let crl_path = ca_dir.join("crl.pem");
    let (mut serials, number) = if crl_path.exists() {
        crl_contents(&crl_path)?
    } else {
        (Vec::new(), 0)
    };
    if !serials.contains(&serial) {
        serials.push(serial);
    }
    let pem = ca.crl(&serials, number + 1)?;
    write(&crl_path, pem.as_bytes(), false)?;
    Ok(serials.len())
}
