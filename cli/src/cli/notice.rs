//! `tessera notice`: issue, import, list, show, amend, renew, revoke.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use tessera_node::notice::NoticeKind;

use super::Global;
use crate::notices::{self, ChangeArg};

#[derive(Subcommand)]
pub enum NoticeCommand {
    /// Issue a notice from a JSON file (see docs/notices.md).
    Issue {
        #[arg(long)]
        file: PathBuf,
        /// local, all, peer:AGENCY[,AGENCY], group:NAME (default: the node's notices.default_to).
        #[arg(long)]
        to: Option<String>,
    },
    /// Import a public list: every entry becomes a denial; repeatable without duplicates.
    Import {
        /// csl, dpl, sdn, jsonl, ftm (or un).
        #[arg(long)]
        format: String,
        file: PathBuf,
        #[arg(long)]
        to: Option<String>,
    },
    /// The newest version of each notice.
    List {
        #[arg(long)]
        origin: Option<String>,
        /// denial, enforcement, grant, charter or trusted.
        #[arg(long)]
        kind: Option<NoticeKind>,
        /// Show at most this many (0: all).
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// Every version of AGENCY/SERIAL.
    Show { reference: String },
    /// A new version with the body of a JSON file.
    Amend {
        reference: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// A new version with a new review date (default: three years from today).
    Renew {
        reference: String,
        #[arg(long)]
        until: Option<String>,
    },
    /// A new version with status revoked.
    Revoke {
        reference: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
}

pub async fn run(cmd: &NoticeCommand, global: &Global, out: &mut impl Write) -> anyhow::Result<()> {
    // The command line first: a usage error needs no node.
    if let NoticeCommand::Import { format, .. } = cmd {
        notices::parse_format(format)?;
    }
    let cfg = global.config()?;
    let json = global.json;
    match cmd {
        NoticeCommand::Issue { file, to } => {
            notices::issue(&cfg, file, to.as_deref(), json, out).await?;
        }
        NoticeCommand::Import { format, file, to } => {
            let format = notices::parse_format(format)?;
            let mut human = Vec::new();
            let summary = notices::import(&cfg, format, file, to.as_deref(), &mut human).await?;
            if json {
                serde_json::to_writer(&mut *out, &summary)?;
                writeln!(out)?;
            } else {
                out.write_all(&human)?;
            }
        }
        NoticeCommand::List {
            origin,
            kind,
            limit,
        } => {
            notices::list(
                &cfg,
                origin.as_deref(),
                kind.map(NoticeKind::as_str),
                *limit,
                json,
                out,
            )
            .await?;
        }
        NoticeCommand::Show { reference } => {
            notices::show(&cfg, reference, json, out).await?;
        }
        NoticeCommand::Amend { reference, file } => {
            notices::change(&cfg, reference, ChangeArg::Amend(file), json, out).await?;
        }
        NoticeCommand::Renew { reference, until } => {
            notices::change(&cfg, reference, ChangeArg::Renew(until.clone()), json, out).await?;
        }
        NoticeCommand::Revoke { reference, reason } => {
            notices::change(
                &cfg,
                reference,
                ChangeArg::Revoke(reason.clone()),
                json,
                out,
            )
            .await?;
        }
    }
    Ok(())
}
