//! The `tessera` command line: arguments, dispatch, output. See DESIGN.md's
//! command-line contract.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::client::CliConfig;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Operate a Tessera node: share licence denials with peer agencies"
)]
struct Cli {
    /// The CLI config (cli.toml) of your agency.
    #[arg(long, global = true, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Certificates: a development PKI, and revocation.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Your node's identity and its peers: reachable, last seen, round trip.
    Status,
    /// Three agencies on this machine: a guided run that exits 0.
    Demo,
}

#[derive(Subcommand)]
enum CertsCommand {
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

/// The whole `tessera` program.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tessera: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config(cli: &Cli) -> anyhow::Result<CliConfig> {
    let path = cli.config.clone().ok_or_else(|| {
        anyhow::anyhow!("no CLI config: pass --config DIR/AGENCY/cli.toml or set TESSERA_CONFIG")
    })?;
    CliConfig::load(&path)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match &cli.command {
        Command::Certs(CertsCommand::Dev {
            out: dir,
            agencies,
            base_port,
        }) => {
            let made = crate::dev_certs::generate(dir, agencies, *base_port)?;
            for m in &made {
                writeln!(
                    out,
                    "{}: {} (peers on 127.0.0.1:{}, operators on 127.0.0.1:{})",
                    m.agency,
                    m.dir.display(),
                    m.federation_port,
                    m.operator_port
                )?;
            }
            writeln!(out, "CA and CRL: {}", dir.display())?;
        }
        Command::Certs(CertsCommand::Revoke { ca, cert }) => {
            let n = crate::pki::revoke(ca, cert)?;
            writeln!(
                out,
                "revoked; {} now lists {n} certificate(s). Send SIGHUP to each node (or restart it) to apply.",
                ca.join("crl.pem").display()
            )?;
        }
        Command::Status => {
            let cfg = config(&cli)?;
            let mut client = cfg.operator()?;
            let status = client
                .status(tessera_proto::v1::StatusRequest {})
                .await
                .map_err(|s| crate::client::explain_call(&cfg, &s))?
                .into_inner();
            if cli.json {
                serde_json::to_writer_pretty(&mut out, &crate::status::to_json(&status))?;
                writeln!(out)?;
            } else {
                write!(
                    out,
                    "{}",
                    crate::status::render(&status, tessera_node::peers::now_ms())
                )?;
            }
        }
        Command::Demo => {
            tessera_node::logging::init(&tessera_node::config::LogConfig {
                format: "text".into(),
                level: "warn".into(),
            });
            crate::demo::run(&mut out).await?;
        }
    }
    Ok(())
}
