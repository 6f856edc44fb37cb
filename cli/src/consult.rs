//! `tessera consult ...`: no-undercut consultations.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use tessera_proto::v1::{
    ConsultDecideRequest, ConsultExtendRequest, ConsultInformRequest, ConsultListRequest,
    ConsultOpenRequest, ConsultRespondRequest, ConsultShowRequest, ConsultView,
};

use tessera_proto::v1::consult_message::Kind;

use crate::client::{CliConfig, explain_call};

#[derive(Serialize)]
struct ViewJson<'a> {
    id: &'a str,
    role: &'a str,
    peer: &'a str,
    denial: String,
    state: &'a str,
    working_days: i64,
    due: &'a str,
    days: u32,
    extended: bool,
    answer: Option<&'a str>,
    answer_text: Option<&'a str>,
    decision: Option<&'a str>,
    summary: &'a str,
    /// What the consulting agency provided, in order.
    information: Vec<&'a str>,
    undelivered: u32,
    /// Our steps the peer refused: "KIND (step N): REASON".
    refused: Vec<String>,
}

fn json(v: &ConsultView) -> Option<ViewJson<'_>> {
    let c = v.consultation.as_ref()?;
    let open = c.open.as_ref();
    Some(ViewJson {
        id: &c.id,
        role: &c.role,
        peer: &c.peer,
        denial: open
            .map(|o| format!("{}/{}", o.denial_origin, o.denial_serial))
            .unwrap_or_default(),
        state: &v.state,
        working_days: v.working_days,
        due: &c.due,
        days: c.days,
        extended: c.extended,
        answer: c.answer.as_ref().map(|a| a.answer.as_str()),
        answer_text: c.answer.as_ref().map(|a| a.text.as_str()),
        decision: c.decision.as_ref().map(|d| d.decision.as_str()),
        summary: open.map_or("", |o| o.summary.as_str()),
        information: c
            .steps
            .iter()
            .filter_map(|s| match &s.kind {
                Some(Kind::Inform(i)) => Some(i.text.as_str()),
                _ => None,
            })
            .collect(),
        undelivered: v.undelivered,
        refused: c
            .refused
            .iter()
            .map(|r| format!("{} (step {}): {}", r.kind, r.step, r.reason))
            .collect(),
    })
}

fn print(v: &ConsultView, as_json: bool, out: &mut impl Write) -> anyhow::Result<()> {
    let Some(j) = json(v) else { return Ok(()) };
    if as_json {
        serde_json::to_writer(&mut *out, &j)?;
        writeln!(out)?;
        return Ok(());
    }
    let timing = match j.state {
        "overdue" => format!(
            "OVERDUE by {} working day(s) (due {})",
            -j.working_days, j.due
        ),
        "due-soon" | "open" => format!(
            "{} working day(s) left, due {}{}",
            j.working_days,
            j.due,
            if j.extended { " (extended)" } else { "" }
        ),
        _ => format!("due {}", j.due),
    };
    writeln!(
        out,
        "{} [{}] {} with {} about denial {}: {timing}",
        j.id, j.state, j.role, j.peer, j.denial
    )?;
    if let Some(a) = j.answer {
        writeln!(
            out,
            "  answer: {a}{}",
            j.answer_text
                .filter(|t| !t.is_empty())
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        )?;
    }
    if let Some(d) = j.decision {
        writeln!(out, "  decision: {d}")?;
    }
    for r in &j.refused {
        writeln!(out, "  REFUSED by {}, not retried: {r}", j.peer)?;
    }
    if j.undelivered > 0 {
        writeln!(
            out,
            "  {} step(s) waiting for delivery to {} (retried until acknowledged)",
            j.undelivered, j.peer
        )?;
    }
    Ok(())
}

/// `consult open --match ORIGIN/SERIAL --summary FILE [--days N]`.
pub async fn open(
    cfg: &CliConfig,
    reference: &str,
    summary: &Path,
    days: u32,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<ConsultView> {
    let (origin, serial) = crate::notices::split_ref(reference)?;
    let summary = std::fs::read_to_string(summary)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", summary.display()))?;
    let v = cfg
        .operator()?
        .consult_open(ConsultOpenRequest {
            denial_origin: origin.to_owned(),
            denial_serial: serial.to_owned(),
            summary,
            days,
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    print(&v, as_json, out)?;
    Ok(v)
}

/// `consult list`.
pub async fn list(
    cfg: &CliConfig,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<Vec<ConsultView>> {
    let r = cfg
        .operator()?
        .consult_list(ConsultListRequest {})
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    for v in &r.consultations {
        print(v, as_json, out)?;
    }
    if r.consultations.is_empty() && !as_json {
        writeln!(out, "no consultations")?;
    }
    Ok(r.consultations)
}

/// `consult show ID`.
pub async fn show(
    cfg: &CliConfig,
    id: &str,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let v = cfg
        .operator()?
        .consult_show(ConsultShowRequest { id: id.to_owned() })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    print(&v, as_json, out)?;
    if !as_json && let Some(c) = &v.consultation {
        if let Some(o) = &c.open {
            writeln!(
                out,
                "  transaction summary:\n    {}",
                o.summary.trim().replace('\n', "\n    ")
            )?;
        }
        for s in &c.steps {
            writeln!(out, "  step {} from {}: {}", s.step, s.from, step_name(s))?;
        }
    }
    Ok(())
}

fn step_name(s: &tessera_proto::v1::ConsultMessage) -> String {
    match &s.kind {
        Some(Kind::Open(_)) => "opened".into(),
        Some(Kind::Answer(_)) => "answered".into(),
        Some(Kind::Extend(_)) => "extended the deadline".into(),
        Some(Kind::Inform(i)) => format!(
            "provided information:\n    {}",
            i.text.trim().replace('\n', "\n    ")
        ),
        Some(Kind::Decision(_)) => "decided".into(),
        None => "-".into(),
    }
}

/// `consult respond ID --answer A [--text T]`.
pub async fn respond(
    cfg: &CliConfig,
    id: &str,
    answer: &str,
    text: &str,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let v = cfg
        .operator()?
        .consult_respond(ConsultRespondRequest {
            id: id.to_owned(),
            answer: answer.to_owned(),
            text: text.to_owned(),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    print(&v, as_json, out)
}

/// `consult extend ID --days N`.
pub async fn extend(
    cfg: &CliConfig,
    id: &str,
    days: u32,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let v = cfg
        .operator()?
        .consult_extend(ConsultExtendRequest {
            id: id.to_owned(),
            days,
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    print(&v, as_json, out)
}

/// `consult inform ID --text T | --file FILE`.
pub async fn inform(
    cfg: &CliConfig,
    id: &str,
    text: Option<&str>,
    file: Option<&Path>,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let text = match (text, file) {
        (Some(t), _) => t.to_owned(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?,
        (None, None) => anyhow::bail!("give the information with --text or --file"),
    };
    let v = cfg
        .operator()?
        .consult_inform(ConsultInformRequest {
            id: id.to_owned(),
            text,
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    print(&v, as_json, out)
}

/// `consult decide ID --decision D [--text T]`.
pub async fn decide(
    cfg: &CliConfig,
    id: &str,
    decision: &str,
    text: &str,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let v = cfg
        .operator()?
        .consult_decide(ConsultDecideRequest {
            id: id.to_owned(),
            decision: decision.to_owned(),
            text: text.to_owned(),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    print(&v, as_json, out)
}
