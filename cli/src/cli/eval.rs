//! `tessera eval keys | screening`: measurements of matching on the public lists.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Match-key quality on the real lists: alias recall, cross-script agreement, collisions, speed.
    Keys {
        /// The folder of the public lists (default: ../shared/data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Also write the figures as JSON here.
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// Screening quality: precision and recall on labelled pairs built from the lists,
    /// over the threshold, per family; the leakage below the threshold.
    Screening {
        /// The folder of the public lists (default: ../shared/data, else fixtures/lists).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Seed of the pair generator.
        #[arg(long, default_value_t = 20_261_202)]
        seed: u64,
        /// Most pairs per family and split.
        #[arg(long, default_value_t = 600)]
        per_family: usize,
        /// Write the generated pairs here (JSON Lines), to read them or re-use them.
        #[arg(long)]
        pairs_out: Option<PathBuf>,
        /// Measure on these labelled pairs instead of generating them: JSON Lines, one
        /// pair a line as --pairs-out writes it (`listed` and `query` parties,
        /// `positive`; `family` and `split` optional, a pair without a split counts as
        /// test). Leakage and index size are still measured on the lists of --data.
        #[arg(long, conflicts_with_all = ["seed", "per_family", "pairs_out"])]
        pairs: Option<PathBuf>,
        /// Also write the figures as JSON here.
        #[arg(long)]
        json_out: Option<PathBuf>,
        /// Fuzzy-key parameters other than the spec's, `key=value,...` (tuning only).
        #[arg(long, hide = true)]
        params: Option<String>,
        /// Write the pairs decided wrongly at the default threshold here (JSON Lines: the
        /// pair and its scores), to see what the keys miss.
        #[arg(long)]
        errors_out: Option<PathBuf>,
        /// Also screen this many of the pairs (spread over every family) through the
        /// private path of two real nodes on this machine, and compare each answer with
        /// the clear computation; 0 skips it.
        #[arg(long, default_value_t = 400)]
        private: usize,
    },
}

fn write_json(
    path: &PathBuf,
    value: &impl serde::Serialize,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(value)?)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    writeln!(out, "figures written to {}", path.display())?;
    Ok(())
}

pub async fn run(cmd: &EvalCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        EvalCommand::Keys { data, json_out } => {
            let dir = data
                .clone()
                .or_else(tessera_node::lists::shared_data_dir)
                .ok_or_else(|| anyhow::anyhow!("no list data: pass --data DIR (the folder with us_csl/, ofac_sdn_2023-12-28/, un_consolidated/)"))?;
            let report = crate::eval::keys::run(&dir);
            write!(out, "{}", report.table())?;
            if let Some(path) = json_out {
                write_json(path, &report, out)?;
            }
        }
        EvalCommand::Screening {
            data,
            seed,
            per_family,
            pairs_out,
            pairs,
            json_out,
            params,
            errors_out,
            private,
        } => {
            let params = match params {
                Some(spec) => tessera_node::party::FuzzyParams::parse(spec)
                    .map_err(|e| anyhow::anyhow!("--params: {e}"))?,
                None => tessera_node::party::FuzzyParams::default(),
            };
            let dir = data
                .clone()
                .or_else(tessera_node::lists::shared_data_dir)
                .unwrap_or_else(|| PathBuf::from("fixtures/lists"));
            let run = crate::eval::screening::Run {
                dir,
                seed: *seed,
                per_family: *per_family,
                params,
                pairs_in: pairs.clone(),
            };
            let report = run
                .report(pairs_out.as_deref(), errors_out.as_deref(), *private)
                .await?;
            write!(out, "{}", report.table())?;
            if let Some(path) = json_out {
                write_json(path, &report, out)?;
            }
        }
    }
    Ok(())
}
