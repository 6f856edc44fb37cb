//! The `tessera-node` program: parses and validates the config before any
//! runtime starts (exit 64 naming the bad key), then runs the node until
//! SIGINT or SIGTERM; SIGHUP re-reads certificates and CRLs. A damaged data
//! directory stops it with exit 65 and one line naming the directory and the
//! way back (a restore), never with a panic.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::NodeConfig;
use clap::Parser;

/// Exit code for a configuration error (EX_CONFIG is 78; sysexits' EX_USAGE is 64).
const EXIT_CONFIG: u8 = 64;
/// Exit code for a damaged data directory (sysexits' EX_DATAERR).
pub const EXIT_DATA: u8 = 65;

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

/// The allocator's purge delay (mimalloc, which both node programs use; it reads its
/// options from the environment when the process starts): memory a thread frees goes back
/// to the system at once, not 10 ms later. A delayed purge is done only when that thread
/// allocates again, and many of the node's threads (the blocking pool, the index builders)
/// go idle after a burst of work: in the soak both nodes then held about 300 MiB more
/// than with no delay (BENCHMARKS.md, "Soak", tenth session). Set it to keep another.
pub const PURGE_DELAY: (&str, &str) = ("MIMALLOC_PURGE_DELAY", "0");

/// The whole `tessera-node` program: parse, validate, run.
pub fn main() -> ExitCode {
    let (name, value) = PURGE_DELAY;
    if std::env::var_os(name).is_none() {
        // The allocator has read its options already: this program starts again in its
        // own place (same process id, same arguments) with the setting. `exec` returns
        // only if it failed, and then the node runs with the allocator's defaults.
        let failed = reexec_with(name, value);
        eprintln!("tessera-node: running with the allocator's default purge delay: {failed}");
    }
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
        let signing = match crate::signing::SigningKey::load(&config.signing.key) {
            Ok(k) => std::sync::Arc::new(k),
            Err(e) => {
                eprintln!("tessera-node restore: signing.key: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let to = crate::backup::RestoreTo {
            data_dir: &config.data_dir,
            own: &own,
            signing: &signing,
            checkpoint_every: config.audit.checkpoint_every,
            force: *force,
        };
        return match crate::backup::restore(from, &to) {
            Ok((s, _)) => {
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
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let background = match crate::background::runtime(cores) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tessera-node: cannot start the background runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    crate::background::install(background.handle().clone());
    let data_dir = config.data_dir.clone();
    let served = runtime.block_on(serve(config));
    background.shutdown_timeout(std::time::Duration::from_secs(10));
    // `serve` has flushed storage; a blocking task still running (an index chunk, a sled
    // handle dropped on a blocking thread) must not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop::Node(e)) if e.is_damaged_data() => {
            tracing::error!(error = %e, "node stopped: damaged data");
            eprintln!(
                "tessera-node: {e}; the data in {} cannot be used as it is: restore it from a backup (`tessera-node restore --from FILE --force`)",
                data_dir.display()
            );
            ExitCode::from(EXIT_DATA)
        }
        Err(Stop::Node(e)) => {
            tracing::error!(error = %e, "node stopped");
            eprintln!("tessera-node: {e}");
            ExitCode::FAILURE
        }
        Err(Stop::Panicked(problem)) => {
            tracing::error!(%problem, "node stopped while opening its data");
            eprintln!(
                "tessera-node: the data in {} could not be read ({problem}); restore the data directory from a backup (`tessera-node restore --from FILE --force`)",
                data_dir.display()
            );
            ExitCode::from(EXIT_DATA)
        }
    }
}

/// Why `serve` returned.
enum Stop {
    Node(crate::NodeError),
    /// Opening the node panicked: sled 0.34 panics on some damaged pages
    /// when they are first read.
    Panicked(String),
}

/// Opens the node, with a panic while opening taken as an error: a panic
/// there comes from reading damaged files, and must not end the program
/// with a backtrace. The panic message is kept for the error line.
async fn bind(config: NodeConfig) -> Result<crate::Node, Stop> {
    use futures::FutureExt;
    let caught = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let into = caught.clone();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = crate::store::panic_text(info.payload());
        if let Ok(mut slot) = into.lock() {
            slot.get_or_insert(text);
        }
    }));
    let bound = std::panic::AssertUnwindSafe(crate::Node::bind(config))
        .catch_unwind()
        .await;
    std::panic::set_hook(default);
    match bound {
        Ok(node) => node.map_err(Stop::Node),
        Err(panic) => Err(Stop::Panicked(
            caught
                .lock()
                .ok()
                .and_then(|mut c| c.take())
                .unwrap_or_else(|| crate::store::panic_text(panic.as_ref())),
        )),
    }
}

async fn serve(config: NodeConfig) -> Result<(), Stop> {
    use tokio::signal::unix::{SignalKind, signal};
    let node = bind(config).await?;
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
    node.serve(shutdown).await.map_err(Stop::Node)
}

/// Replaces this process with this program, its arguments and `name=value` added to its
/// environment; returns only the error when that could not be done.
fn reexec_with(name: &str, value: &str) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    match std::env::current_exe() {
        Ok(me) => std::process::Command::new(me)
            .args(std::env::args_os().skip(1))
            .env(name, value)
            .exec(),
        Err(e) => e,
    }
}
