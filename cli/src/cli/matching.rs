//! `tessera keys | screen | watch | deconflict | index`: party flags, and
//! the private-matching commands that take more than one flag.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Global;
use crate::keys::PartyFlags;

/// `tessera keys`: one party by flags, or JSON Lines parties on stdin.
#[derive(Args)]
pub struct KeysArgs {
    #[command(flatten)]
    party: PartyFlags,
}

/// `tessera screen`: one party by flags, or a file of them.
#[derive(Args)]
pub struct ScreenArgs {
    #[command(flatten)]
    party: PartyFlags,
    /// JSON Lines parties, one per line.
    #[arg(long, conflicts_with = "name")]
    file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum WatchCommand {
    /// Add JSON Lines parties (e.g. the parties of pending applications).
    Add {
        #[arg(long)]
        file: PathBuf,
        /// Your reference for them (application number).
        #[arg(long, default_value = "")]
        reference: String,
    },
    List,
    Remove {
        id: u64,
    },
}

#[derive(Subcommand)]
pub enum DeconflictCommand {
    /// Register investigation subjects (JSON Lines) with the case contact pointer.
    Add {
        #[arg(long)]
        file: PathBuf,
        /// Who a peer's unit should call on a hit (never a case file).
        #[arg(long)]
        contact: String,
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// Registered subjects.
    List,
}

#[derive(Subcommand)]
pub enum IndexCommand {
    /// A new OPRF key (epoch) for one peer; its index is rebuilt.
    Rotate {
        #[arg(long)]
        peer: String,
    },
}

pub fn keys(args: &KeysArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if args.party.name.is_some() {
        crate::keys::one(&args.party, out)
    } else {
        crate::keys::stream(std::io::stdin().lock(), out)
    }
}

pub async fn screen(
    args: &ScreenArgs,
    global: &Global,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    // The command line first: a usage error needs no node.
    let parties = match &args.file {
        Some(file) => crate::matching::read_parties(file)?,
        None => vec![
            args.party
                .to_party("give --name NAME or --file PARTIES.jsonl")?,
        ],
    };
    let cfg = global.config()?;
    let r = crate::matching::screen(&cfg, &parties, global.json, out).await?;
    if !r.unavailable.is_empty() {
        anyhow::bail!("{} peer(s) could not be screened", r.unavailable.len());
    }
    let keyless = r.results.iter().filter(|p| p.keys == 0).count();
    if keyless > 0 {
        anyhow::bail!("{keyless} part(ies) could not be screened: no match key");
    }
    Ok(())
}

pub async fn watch(
    cmd: &WatchCommand,
    global: &Global,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let cfg = global.config()?;
    match cmd {
        WatchCommand::Add { file, reference } => {
            let parties = crate::matching::read_parties(file)?;
            crate::matching::watch_add(&cfg, &parties, reference, "watch", "", out).await
        }
        WatchCommand::List => crate::matching::watch_list(&cfg, "watch", global.json, out).await,
        WatchCommand::Remove { id } => crate::matching::watch_remove(&cfg, *id, out).await,
    }
}

pub async fn deconflict(
    cmd: &DeconflictCommand,
    global: &Global,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let cfg = global.config()?;
    match cmd {
        DeconflictCommand::Add {
            file,
            contact,
            reference,
        } => {
            let parties = crate::matching::read_parties(file)?;
            crate::matching::watch_add(&cfg, &parties, reference, "investigation", contact, out)
                .await
        }
        DeconflictCommand::List => {
            crate::matching::watch_list(&cfg, "investigation", global.json, out).await
        }
    }
}

pub async fn index(
    cmd: &IndexCommand,
    global: &Global,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let cfg = global.config()?;
    match cmd {
        IndexCommand::Rotate { peer } => crate::matching::rotate(&cfg, peer, out).await,
    }
}
