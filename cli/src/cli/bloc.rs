//! `tessera bloc`, `tessera trusted`, `tessera application` and `tessera
//! pilot`: regional blocs (docs/blocs.md).

use std::io::Write;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use super::Global;

#[derive(Subcommand)]
pub enum BlocCommand {
    /// Sign a bloc charter: your charter notice goes to the bloc's group.
    Sign {
        #[arg(long)]
        file: PathBuf,
    },
    /// Members, signatures and versions of a bloc's charter.
    Status {
        #[arg(long)]
        bloc: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TrustedFormat {
    Jsonl,
    Csv,
}

#[derive(Subcommand)]
pub enum TrustedCommand {
    /// Publish trusted-operator records (a daily delta: unchanged records are not sent again).
    Import {
        #[arg(long)]
        format: TrustedFormat,
        file: PathBuf,
        /// The bloc's group: group:G (or local).
        #[arg(long)]
        to: String,
    },
    /// Suspend one of your records; every member receives it at once.
    Suspend {
        serial: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift a suspension.
    Reinstate {
        serial: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Revoke one of your records (also when the operator withdraws its consent).
    Revoke {
        serial: String,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Records held: yours and the bloc's.
    List {
        #[arg(long, default_value = "")]
        origin: String,
    },
}

#[derive(Subcommand)]
pub enum ApplicationCommand {
    /// Screen an application against every member; answers consult, clear, trusted or
    /// not-fully-screened.
    Check {
        #[arg(long)]
        file: PathBuf,
        /// The bloc; default: the only bloc you signed a charter of.
        #[arg(long, default_value = "")]
        bloc: String,
        /// Open the consultations the answer calls for.
        #[arg(long)]
        consult: bool,
    },
    /// Record your decision on a checked application (pilot figures).
    Decide {
        reference: String,
        #[arg(long, value_parser = ["granted", "refused"])]
        decision: String,
        /// YYYY-MM-DD; default today.
        #[arg(long, default_value = "")]
        on: String,
    },
}

#[derive(Subcommand)]
pub enum PilotCommand {
    /// The bloc's pilot figures: each member's signed counts.
    Report {
        #[arg(long)]
        group: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// CSV instead of a table.
        #[arg(long)]
        csv: bool,
        /// Also write decision-times.svg and consultations.svg into this folder.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Your annual-report figures (Recommendation (EU) 2024/214): authorisations and
    /// denials by item category and destination, from your own records.
    Annual {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Write CSV to this file (`-`: standard output) instead of printing a table.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
}

pub async fn bloc(cmd: &BlocCommand, global: &Global, out: &mut impl Write) -> anyhow::Result<()> {
    let cfg = global.config()?;
    match cmd {
        BlocCommand::Sign { file } => crate::bloc::sign(&cfg, file, global.json, out)
            .await
            .map(drop),
        BlocCommand::Status { bloc } => crate::bloc::status(&cfg, bloc, global.json, out)
            .await
            .map(drop),
    }
}

pub async fn trusted(
    cmd: &TrustedCommand,
    global: &Global,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let cfg = global.config()?;
    let json = global.json;
    match cmd {
        TrustedCommand::Import { format, file, to } => {
            let format = match format {
                TrustedFormat::Jsonl => "jsonl",
                TrustedFormat::Csv => "csv",
            };
            let s = crate::bloc::trusted_import(&cfg, format, file, to, json, out).await?;
            if s.refused > 0 {
                anyhow::bail!("{} record(s) refused (see above)", s.refused);
            }
            Ok(())
        }
        TrustedCommand::Suspend { serial, reason } => {
            crate::bloc::trusted_change(&cfg, serial, "suspend", reason, json, out)
                .await
                .map(drop)
        }
        TrustedCommand::Reinstate { serial, reason } => {
            crate::bloc::trusted_change(&cfg, serial, "reinstate", reason, json, out)
                .await
                .map(drop)
        }
        TrustedCommand::Revoke { serial, reason } => {
            crate::bloc::trusted_change(&cfg, serial, "revoke", reason, json, out)
                .await
                .map(drop)
        }
        TrustedCommand::List { origin } => crate::bloc::trusted_list(&cfg, origin, json, out)
            .await
            .map(drop),
    }
}

pub async fn application(
    cmd: &ApplicationCommand,
    global: &Global,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let cfg = global.config()?;
    match cmd {
        ApplicationCommand::Check {
            file,
            bloc,
            consult,
        } => crate::bloc::application_check(&cfg, file, bloc, *consult, global.json, out)
            .await
            .map(drop),
        ApplicationCommand::Decide {
            reference,
            decision,
            on,
        } => crate::bloc::application_decide(&cfg, reference, decision, on, global.json, out)
            .await
            .map(drop),
    }
}

pub async fn pilot(
    cmd: &PilotCommand,
    global: &Global,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let cfg = global.config()?;
    match cmd {
        PilotCommand::Report {
            group,
            from,
            to,
            csv,
            svg,
        } => {
            let format = if global.json {
                crate::pilot::Format::Json
            } else if *csv {
                crate::pilot::Format::Csv
            } else {
                crate::pilot::Format::Table
            };
            crate::bloc::pilot_report(&cfg, group, from, to, format, svg.as_deref(), out)
                .await
                .map(drop)
        }
        PilotCommand::Annual { from, to, csv } => {
            use crate::bloc::{AnnualFormat, pilot_annual};
            match csv {
                Some(path) if path.as_os_str() != "-" => {
                    let mut bytes = Vec::new();
                    let r = pilot_annual(&cfg, from, to, AnnualFormat::Csv, &mut bytes).await?;
                    std::fs::write(path, bytes)
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                    writeln!(
                        out,
                        "{}: {} rows ({} authorisations, {} denials)",
                        path.display(),
                        r.rows.len(),
                        r.authorisations,
                        r.denials
                    )?;
                    Ok(())
                }
                Some(_) => pilot_annual(&cfg, from, to, AnnualFormat::Csv, out)
                    .await
                    .map(drop),
                None if global.json => pilot_annual(&cfg, from, to, AnnualFormat::Json, out)
                    .await
                    .map(drop),
                None => pilot_annual(&cfg, from, to, AnnualFormat::Table, out)
                    .await
                    .map(drop),
            }
        }
    }
}
