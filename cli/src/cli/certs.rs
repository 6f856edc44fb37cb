//! `tessera certs`: the development PKI, and revocation.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum CertsCommand {
    /// Make a dev CA, CRL and per-agency certificates, keys and configs.
    Dev {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// An agency id such as DE-BAFA; repeat for each agency.
        #[arg(long = "agency", required = true)]
        agencies: Vec<String>,
        /// Agency i listens for peers on base+2i and for operators on base+2i+1.
        #[arg(long, default_value_t = 7400)]
        base_port: u16,
        /// Reach each node at its lower-case agency name (containers) and listen on all interfaces.
        #[arg(long)]
        hostnames: bool,
    },
    /// Add a certificate to the CA's CRL (DIR/crl.pem); then send SIGHUP to the nodes.
    Revoke {
        /// The directory holding ca.pem, ca.key and crl.pem.
        #[arg(long)]
        ca: PathBuf,
        /// The certificate (PEM) to revoke.
        #[arg(long)]
        cert: PathBuf,
    },
}

pub fn run(cmd: &CertsCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        CertsCommand::Dev {
            out: dir,
            agencies,
            base_port,
            hostnames,
        } => {
            let made = crate::dev_certs::generate_with(dir, agencies, *base_port, *hostnames)?;
            for m in &made {
                writeln!(
                    out,
                    "{}: {} (peers on {}:{}, operators on {}:{})",
                    m.agency,
                    m.dir.display(),
                    m.host,
                    m.federation_port,
                    m.host,
                    m.operator_port
                )?;
            }
            writeln!(out, "CA and CRL: {}", dir.display())?;
        }
        CertsCommand::Revoke { ca, cert } => {
            let n = crate::pki::revoke(ca, cert)?;
            writeln!(
                out,
                "revoked; {} now lists {n} certificate(s). Send SIGHUP to each node (or restart it) to apply.",
                ca.join("crl.pem").display()
            )?;
        }
    }
    Ok(())
}
