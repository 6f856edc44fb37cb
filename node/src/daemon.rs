//! The `tessera-node` program: parses and validates the config before any
//! runtime starts (exit 64 naming the bad key), then runs the node until
//! SIGINT or SIGTERM; SIGHUP re-reads certificates and CRLs.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::NodeConfig;
use clap::Parser;

/// Exit code for a configuration error (EX_CONFIG is 78; sysexits' EX_USAGE is 64).
const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(
    name = "tessera-node",
    version,
    about = "Tessera node: shares licence denials with peer agencies over mutual TLS"
)]
struct Args {
    /// Path to node.toml.
    #[arg(long, global = true, env = "TESSERA_NODE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Restore a backup (from `tessera backup`) into the node's data directory.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// Replace a data directory that is not empty.
        #[arg(long)]
        force: bool,
    },
}

/// The whole `tessera-node` program: parse, validate, run.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let Some(path) = args.config.as_deref() else {
        eprintln!("tessera-node: no config: pass --config node.toml or set TESSERA_NODE_CONFIG");
        return ExitCode::from(EXIT_CONFIG);
    };
    let config = match NodeConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tessera-node: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(Command::Restore { from, force }) = &args.command {
        let Ok(own) = config.agency.parse::<crate::identity::AgencyId>() else {
            eprintln!("tessera-node: agency: not an agency id");
            return ExitCode::from(EXIT_CONFIG);
        };
        return match crate::backup::restore(from, &config.data_dir, &own, *force) {
            Ok(s) => {
                println!(
                    "restored {} trees, {} entries and {} key files into {}; start the node to resume sync from its cursors",
                    s.trees,
                    s.entries,
                    s.files,
                    config.data_dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tessera-node restore: {e}");
                ExitCode::FAILURE
            }
        };
    }
    crate::logging::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tessera-node: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "node stopped");
            eprintln!("tessera-node: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: NodeConfig) -> Result<(), crate::NodeError> {
    use tokio::signal::unix::{SignalKind, signal};
    let node = crate::Node::bind(config).await?;
    let reloader = node.reloader();
    if let Ok(mut hup) = signal(SignalKind::hangup()) {
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let _ = reloader.reload();
            }
        });
    }
    let shutdown = async {
        let term = signal(SignalKind::terminate());
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    node.serve(shutdown).await
}
