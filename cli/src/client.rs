//! The CLI's side of the operator port: its config and a connected client.
//!
//! Before dialling, the operator certificate is checked locally so that an
//! expired or unreadable certificate gets one plain sentence, not a TLS
//! alert; after dialling, failures are explained by `tessera_node::dial`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tessera_node::identity::AgencyId;
use tessera_node::tls::TlsMaterial;
use tessera_proto::v1::operator_client::OperatorClient;
use tonic::transport::Channel;
use x509_parser::prelude::{FromDer, X509Certificate};

/// `cli.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliConfig {
    /// The local agency; the node's certificate must name it.
    pub agency: String,
    /// `host:port` of the node's operator listener.
    pub endpoint: String,
    /// TLS name to verify the node against. Default: the endpoint's host.
    #[serde(default)]
    pub server_name: Option<String>,
    pub tls: CliTls,
}

/// The operator's certificate and trust.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliTls {
    pub ca: Vec<PathBuf>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CliConfig {
    /// Reads `cli.toml`, resolving paths against its directory.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read CLI config {}: {e} (pass --config or set TESSERA_CONFIG)",
                path.display()
            )
        })?;
        let mut c: Self = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("CLI config {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        c.tls.ca.iter_mut().for_each(fix);
        fix(&mut c.tls.cert);
        fix(&mut c.tls.key);
        Ok(c)
    }

    /// A channel to the node, after checking the operator certificate locally.
    pub fn channel(&self) -> anyhow::Result<Channel> {
        let agency: AgencyId = self
            .agency
            .parse()
            .map_err(|e| anyhow::anyhow!("CLI config `agency`: {e}"))?;
        check_cert_dates(&self.tls.cert)?;
        let material =
            TlsMaterial::from_files(&self.tls.ca, &[], &self.tls.cert, &self.tls.key, true)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        let tls = material
            .client_config(&agency)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tessera_node::dial::channel(
            &self.endpoint,
            self.server_name.as_deref(),
            tls,
            Duration::from_secs(5),
        )
        .map_err(|e| anyhow::anyhow!("CLI config `endpoint`: {e}"))
    }

    /// An operator client.
    pub fn operator(&self) -> anyhow::Result<OperatorClient<Channel>> {
        Ok(OperatorClient::new(self.channel()?).max_decoding_message_size(64 << 20))
    }
}

/// Refuses, with the fix, an operator certificate that is expired or not yet valid.
pub fn check_cert_dates(path: &Path) -> anyhow::Result<()> {
    let certs = tessera_node::tls::read_certs("operator certificate", path)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(leaf) = certs.first() else {
        anyhow::bail!("operator certificate {} is empty", path.display());
    };
    let Ok((_, cert)) = X509Certificate::from_der(leaf) else {
        anyhow::bail!("operator certificate {} cannot be parsed", path.display());
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let validity = cert.validity();
    if validity.not_after.timestamp() < now {
        anyhow::bail!(
            "your operator certificate {} expired on {}; ask your CA for a new one (for dev certificates: `tessera certs dev`)",
            path.display(),
            validity.not_after
        );
    }
    if validity.not_before.timestamp() > now {
        anyhow::bail!(
            "your operator certificate {} is not valid before {}; check this machine's clock",
            path.display(),
            validity.not_before
        );
    }
    Ok(())
}

/// One sentence for a failed operator call, naming cause and fix.
pub fn explain_call(cfg: &CliConfig, status: &tonic::Status) -> anyhow::Error {
    use tonic::Code;
    if matches!(
        status.code(),
        Code::PermissionDenied | Code::Unauthenticated
    ) {
        return anyhow::anyhow!(
            "the node at {} refused this operator certificate: {} (use an operator certificate of agency {})",
            cfg.endpoint,
            status.message(),
            cfg.agency
        );
    }
    if std::error::Error::source(status).is_none() {
        return anyhow::anyhow!("{}", status.message());
    }
    let cause = tessera_node::dial::explain(status);
    let fix = if cause.contains("nothing is listening") || cause.contains("timed out") {
        "start it with `tessera-node --config node.toml`, or correct `endpoint` in the CLI config"
    } else if cause.contains("expired") {
        "renew the expired certificate with your CA"
    } else if cause.contains("revoked") {
        "this certificate was revoked: ask your CA for a new one"
    } else if cause.contains("CA it trusts") || cause.contains("CA we trust") {
        "the certificate and the CA bundle must come from the same consortium CA: check `tls.cert` and `tls.ca` in the CLI config"
    } else if cause.contains("does not name the node")
        || cause.contains("not valid for the address")
    {
        "check `endpoint`, `server_name` and `agency` in the CLI config"
    } else {
        "check the CLI config and the node's log"
    };
    anyhow::anyhow!("cannot use the node at {}: {cause}; {fix}", cfg.endpoint)
}
