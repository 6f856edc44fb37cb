//! The `tessera` command line: arguments, dispatch, output. Every command
//! and flag is in docs/cli.md.
//!
//! Layout: this file holds the top-level arguments and hands each command to
//! the file of its group, which declares the group's flags and runs it:
//! [`certs`] (the dev PKI), [`notice`] (notices), [`matching`] (keys,
//! screening, watch lists, alerts, deconfliction, overlaps, index keys),
//! [`consult`] (consultations), [`admin`] (status, health, backups, the
//! audit chain, evaluations, the demo). The party flags of `keys` and
//! `screen` are one struct, `keys::PartyFlags`.

mod admin;
mod bloc;
mod certs;
mod consult;
mod eval;
mod matching;
mod notice;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::client::CliConfig;

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
    Certs(certs::CertsCommand),
    /// Your node's identity and its peers: reachable, last seen, round trip.
    Status,
    /// Exit 0 if the node answers the gRPC health check as SERVING (for probes).
    Health,
    /// Licence denials and enforcement notices.
    #[command(subcommand)]
    Notice(notice::NoticeCommand),
    /// Offline: the match keys of one party, or of JSON Lines parties on stdin
    /// (without --name).
    Keys(matching::KeysArgs),
    /// Screen parties privately against every peer's denials and enforcement subjects.
    Screen(matching::ScreenArgs),
    /// Continuous screening: parties whose new matches at any peer raise alerts.
    #[command(subcommand)]
    Watch(matching::WatchCommand),
    /// Alerts raised by the watch list and deconfliction.
    Alerts {
        /// Only alerts after this number.
        #[arg(long, default_value_t = 0)]
        after: u64,
    },
    /// Investigation subjects matched privately against peers' enforcement subjects.
    #[command(subcommand)]
    Deconflict(matching::DeconflictCommand),
    /// How many of our match keys are in a peer's list (a count, nothing else).
    Overlap {
        #[arg(long)]
        peer: String,
    },
    /// Pairwise overlap counts of a group's members, optionally as an SVG heat map.
    Harmonise {
        #[arg(long)]
        group: String,
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// No-undercut consultations with the agency whose denial a licence would undercut.
    #[command(subcommand)]
    Consult(consult::ConsultCommand),
    /// Regional blocs: the charter every member signs.
    #[command(subcommand)]
    Bloc(bloc::BlocCommand),
    /// Trusted-operator records shared with a bloc.
    #[command(subcommand)]
    Trusted(bloc::TrustedCommand),
    /// The licensing officer's check of an application against the bloc.
    #[command(subcommand)]
    Application(bloc::ApplicationCommand),
    /// A bloc's pilot figures.
    #[command(subcommand)]
    Pilot(bloc::PilotCommand),
    /// The labelled indexes this node serves.
    #[command(subcommand)]
    Index(matching::IndexCommand),
    /// Copy the node's data while it runs (restore with `tessera-node restore`).
    Backup {
        #[arg(long)]
        out: PathBuf,
    },
    /// The tamper-evident audit chain.
    #[command(subcommand)]
    Audit(admin::AuditCommand),
    /// Measurements on the public lists.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Three agencies on this machine: a guided run that exits 0.
    Demo,
    /// The operator's console in a browser, on this machine (see docs/cli.md).
    Console {
        /// Address to listen on; loopback only unless --allow-remote.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Serve other machines too (put a TLS proxy in front).
        #[arg(long)]
        allow_remote: bool,
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
        // The reader went away (`tessera notice list | head`): what it read was whole.
        Err(e) if closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if crate::usage::is_usage(&e) => {
            eprintln!("tessera: {e:#} (see tessera --help)");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("tessera: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `e` is a write to a pipe whose reader has closed it.
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// What every command that talks to our node reads from the top-level flags.
struct Global {
    config: Option<PathBuf>,
    json: bool,
}

impl Global {
    /// The CLI config: `--config` or `TESSERA_CONFIG`.
    fn config(&self) -> anyhow::Result<CliConfig> {
        let path = self.config.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "no CLI config: pass --config DIR/AGENCY/cli.toml or set TESSERA_CONFIG"
            )
        })?;
        CliConfig::load(&path)
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let global = Global {
        config: cli.config,
        json: cli.json,
    };
    let out = &mut std::io::stdout().lock();
    match cli.command {
        Command::Certs(cmd) => certs::run(&cmd, out),
        Command::Status => admin::status(&global, out).await,
        Command::Health => admin::health(&global, out).await,
        Command::Notice(cmd) => notice::run(&cmd, &global, out).await,
        Command::Keys(args) => matching::keys(&args, out),
        Command::Screen(args) => matching::screen(&args, &global, out).await,
        Command::Watch(cmd) => matching::watch(&cmd, &global, out).await,
        Command::Alerts { after } => {
            let cfg = global.config()?;
            crate::matching::alerts(&cfg, after, global.json, out)
                .await
                .map(drop)
        }
        Command::Deconflict(cmd) => matching::deconflict(&cmd, &global, out).await,
        Command::Overlap { peer } => {
            let cfg = global.config()?;
            crate::matching::overlap(&cfg, &peer, global.json, out).await
        }
        Command::Harmonise { group, svg } => {
            let cfg = global.config()?;
            crate::matching::harmonise(&cfg, &group, svg.as_deref(), global.json, out).await
        }
        Command::Consult(cmd) => consult::run(&cmd, &global, out).await,
        Command::Bloc(cmd) => bloc::bloc(&cmd, &global, out).await,
        Command::Trusted(cmd) => bloc::trusted(&cmd, &global, out).await,
        Command::Application(cmd) => bloc::application(&cmd, &global, out).await,
        Command::Pilot(cmd) => bloc::pilot(&cmd, &global, out).await,
        Command::Index(cmd) => matching::index(&cmd, &global, out).await,
        Command::Backup { out: path } => {
            let cfg = global.config()?;
            crate::backup::run(&cfg, &path, out).await.map(drop)
        }
        Command::Audit(cmd) => admin::audit(&cmd, &global, out).await,
        Command::Eval(cmd) => eval::run(&cmd, out).await,
        Command::Demo => admin::demo(out).await,
        Command::Console {
            listen,
            allow_remote,
        } => admin::console(&global, listen, allow_remote, out).await,
    }
}
