//! `tessera consult`: no-undercut consultations.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use tessera_node::consult::machine::{Answer, Decision};

use super::Global;

#[derive(Subcommand)]
pub enum ConsultCommand {
    /// Consult the denying agency about a matched denial.
    Open {
        /// The matched denial: ORIGIN/SERIAL, as screening shows it.
        #[arg(long = "match")]
        reference: String,
        /// A file with what you choose to show of the transaction.
        #[arg(long)]
        summary: PathBuf,
        /// Working days to answer (at most 30).
        #[arg(long, default_value_t = 10)]
        days: u32,
    },
    List,
    Show {
        id: String,
    },
    /// Answer as the denying agency: no-objection, objection or more-information.
    Respond {
        id: String,
        #[arg(long)]
        answer: Answer,
        #[arg(long, default_value = "")]
        text: String,
    },
    /// Extend the deadline once, to at most 30 working days.
    Extend {
        id: String,
        #[arg(long)]
        days: u32,
    },
    /// Provide information to the denying agency (asked for with
    /// more-information, or of your own accord), as consulting agency.
    #[command(group(clap::ArgGroup::new("information").required(true).args(["text", "file"])))]
    Inform {
        id: String,
        /// The information, as text.
        #[arg(long)]
        text: Option<String>,
        /// A file with the information.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Record your decision: granted, refused or withdrawn.
    Decide {
        id: String,
        #[arg(long)]
        decision: Decision,
        #[arg(long, default_value = "")]
        text: String,
    },
}

pub async fn run(
    cmd: &ConsultCommand,
    global: &Global,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let cfg = global.config()?;
    let json = global.json;
    match cmd {
        ConsultCommand::Open {
            reference,
            summary,
            days,
        } => crate::consult::open(&cfg, reference, summary, *days, json, out)
            .await
            .map(drop),
        ConsultCommand::List => crate::consult::list(&cfg, json, out).await.map(drop),
        ConsultCommand::Show { id } => crate::consult::show(&cfg, id, json, out).await.map(drop),
        ConsultCommand::Respond { id, answer, text } => {
            crate::consult::respond(&cfg, id, answer.as_str(), text, json, out)
                .await
                .map(drop)
        }
        ConsultCommand::Extend { id, days } => crate::consult::extend(&cfg, id, *days, json, out)
            .await
            .map(drop),
        ConsultCommand::Inform { id, text, file } => {
            crate::consult::inform(&cfg, id, text.as_deref(), file.as_deref(), json, out).await
        }
        ConsultCommand::Decide { id, decision, text } => {
            crate::consult::decide(&cfg, id, decision.as_str(), text, json, out)
                .await
                .map(drop)
        }
    }
}
