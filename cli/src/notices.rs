//! `tessera notice ...`: issue, import, list, show, amend, renew, revoke.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;
use tessera_node::lists::{self, Format};
use tessera_node::notice::from_list;
use tessera_node::notice::json::{self, NoticeJson};
use tessera_node::policy;
use tessera_proto::v1::{
    ChangeNoticeRequest, ImportNoticesRequest, IssueNoticeRequest, IssueNoticeResponse,
    ListNoticesRequest, Notice, NoticeView, ShowNoticeRequest, change_notice_request, notice::Body,
};

use crate::client::{CliConfig, explain_call};

/// Notices sent per import call.
const IMPORT_BATCH: usize = 500;

fn read_notice_file(path: &Path) -> anyhow::Result<Notice> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let parsed = json::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    parsed
        .to_notice()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn apply_to(notice: &mut Notice, to: Option<&str>) -> anyhow::Result<()> {
    if let Some(to) = to {
        notice.distribution = Some(policy::parse_to(to)?);
    }
    Ok(())
}

fn print_issued(
    out: &mut impl Write,
    r: &IssueNoticeResponse,
    as_json: bool,
) -> anyhow::Result<()> {
    if as_json {
        #[derive(Serialize)]
        struct J<'a> {
            origin: &'a str,
            serial: &'a str,
            version: u32,
            seq: u64,
            recipients: &'a [String],
        }
        serde_json::to_writer(
            &mut *out,
            &J {
                origin: &r.origin,
                serial: &r.serial,
                version: r.version,
                seq: r.seq,
                recipients: &r.recipients,
            },
        )?;
        writeln!(out)?;
    } else {
        let to = if r.recipients.is_empty() {
            "no peer (local)".to_owned()
        } else {
            r.recipients.join(", ")
        };
        writeln!(
            out,
            "{}/{} version {}: stored and signed; goes to {to}",
            r.origin, r.serial, r.version
        )?;
    }
    Ok(())
}

/// `notice issue --file N.json [--to ...]`.
pub async fn issue(
    cfg: &CliConfig,
    file: &Path,
    to: Option<&str>,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut notice = read_notice_file(file)?;
    apply_to(&mut notice, to)?;
    let mut client = cfg.operator()?;
    let r = client
        .issue_notice(IssueNoticeRequest {
            notice: Some(notice),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    print_issued(out, &r, as_json)
}

/// The totals of an import.
#[derive(Debug, Default, Serialize)]
pub struct ImportSummary {
    pub read: usize,
    pub unreadable: usize,
    pub skipped: usize,
    pub merged: usize,
    pub created: u32,
    pub updated: u32,
    pub unchanged: u32,
    pub refused: usize,
}

/// Unreadable rows reported one by one; the rest are counted.
const SHOWN_ROW_ERRORS: usize = 20;

/// `notice import --format F FILE [--to ...]`: streams the list here, sends
/// notices in batches; bad rows are reported by line (the first 20) and
/// skipped, and counted in the summary. Fails when no row could be read.
pub async fn import(
    cfg: &CliConfig,
    format: Format,
    file: &Path,
    to: Option<&str>,
    out: &mut impl Write,
) -> anyhow::Result<ImportSummary> {
    let distribution = to.map(policy::parse_to).transpose()?;
    let mut summary = ImportSummary::default();
    let mut records = Vec::new();
    let mut err = std::io::stderr().lock();
    let mut shown = Ok(());
    lists::read_each(format, file, |row| {
        summary.read += 1;
        match row {
            Ok(r) => records.push(r),
            Err(e) => {
                summary.unreadable += 1;
                if summary.unreadable <= SHOWN_ROW_ERRORS && shown.is_ok() {
                    shown = writeln!(err, "{}: {e}; row skipped", file.display());
                }
            }
        }
    })?;
    shown?;
    if summary.unreadable > SHOWN_ROW_ERRORS {
        writeln!(
            err,
            "{}: {} more unreadable rows skipped (not shown)",
            file.display(),
            summary.unreadable - SHOWN_ROW_ERRORS
        )?;
    }
    if records.is_empty() {
        anyhow::bail!(
            "{}: nothing imported: no row could be read as {format} ({} rows read, {} unreadable)",
            file.display(),
            summary.read,
            summary.unreadable
        );
    }
    let converted = from_list::convert(format, records);
    summary.skipped = converted.skipped;
    summary.merged = converted.merged;
    let total = converted.notices.len();
    let bar = progress(total as u64);
    let mut client = cfg.operator()?;
    for chunk in converted.notices.chunks(IMPORT_BATCH) {
        let notices = chunk
            .iter()
            .map(|(_, n)| {
                let mut n = n.clone();
                if let Some(d) = &distribution {
                    n.distribution = Some(d.clone());
                }
                n
            })
            .collect();
        let lines: Vec<u64> = chunk.iter().map(|(l, _)| *l).collect();
        let r = import_batch(cfg, &mut client, notices, &lines, file, "line", &mut err).await?;
        summary.created += r.created;
        summary.updated += r.updated;
        summary.unchanged += r.unchanged;
        summary.refused += r.refused.len();
        if let Some(bar) = &bar {
            bar.inc(chunk.len() as u64);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    writeln!(
        out,
        "{}: {} rows read; {} notices created, {} updated, {} unchanged; {} refused, {} unreadable rows, {} merged into an entry with the same id, {} not on an imported list",
        file.display(),
        summary.read,
        summary.created,
        summary.updated,
        summary.unchanged,
        summary.refused,
        summary.unreadable,
        summary.merged,
        summary.skipped
    )?;
    Ok(summary)
}

/// Sends one batch of an import. Each refusal is one line on `err`:
/// `FILE: <what> N: reason; not imported`, N from `lines` (the batch's
/// positions in the file).
pub async fn import_batch(
    cfg: &CliConfig,
    client: &mut tessera_proto::v1::operator_client::OperatorClient<tonic::transport::Channel>,
    notices: Vec<tessera_proto::v1::Notice>,
    lines: &[u64],
    file: &Path,
    what: &str,
    err: &mut impl Write,
) -> anyhow::Result<tessera_proto::v1::ImportNoticesResponse> {
    let r = client
        .import_notices(ImportNoticesRequest { notices })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    for refusal in &r.refused {
        let n = lines.get(refusal.index as usize).copied().unwrap_or(0);
        writeln!(
            err,
            "{}: {what} {n}: {}; not imported",
            file.display(),
            refusal.reason
        )?;
    }
    Ok(r)
}

fn progress(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} importing [{bar:40}] {pos}/{len} notices ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

/// One row of `notice list`, also its JSON form.
#[derive(Debug, Serialize)]
pub struct NoticeOut {
    pub origin: String,
    pub serial: String,
    pub version: u32,
    pub seq: u64,
    pub issued_at: i64,
    pub kind: &'static str,
    pub key_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    pub notice: NoticeJson,
}

fn out_of(v: &NoticeView) -> Option<NoticeOut> {
    let n = v.notice.as_ref()?;
    Some(NoticeOut {
        origin: n.origin.clone(),
        serial: n.serial.clone(),
        version: n.version,
        seq: n.seq,
        issued_at: n.issued_at,
        kind: match n.body {
            Some(Body::Denial(_)) => "denial",
            Some(Body::Enforcement(_)) => "enforcement",
            Some(Body::Grant(_)) => "grant",
            Some(Body::Charter(_)) => "charter",
            Some(Body::Trusted(_)) => "trusted",
            None => "-",
        },
        key_id: v.key_id.clone(),
        recipients: v.recipients.clone(),
        notice: NoticeJson::from_notice(n),
    })
}

/// `notice list [--origin A] [--kind K]`.
pub async fn list(
    cfg: &CliConfig,
    origin: Option<&str>,
    kind: Option<&str>,
    limit: u32,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut client = cfg.operator()?;
    let r = client
        .list_notices(ListNoticesRequest {
            origin: origin.unwrap_or_default().to_owned(),
            kind: kind.unwrap_or_default().to_owned(),
            limit,
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    let rows: Vec<NoticeOut> = r.notices.iter().filter_map(out_of).collect();
    if as_json {
        for row in &rows {
            serde_json::to_writer(&mut *out, row)?;
            writeln!(out)?;
        }
        return Ok(());
    }
    let mut table = vec![[
        "NOTICE".to_owned(),
        "V".to_owned(),
        "KIND".to_owned(),
        "STATUS".to_owned(),
        "TLP".to_owned(),
        "DECIDED".to_owned(),
        "REFERENCE".to_owned(),
        "TO".to_owned(),
    ]];
    for row in &rows {
        let (status, decided, reference) = match (&row.notice.denial, &row.notice.enforcement) {
            (Some(d), _) => (
                d.status.clone(),
                d.decision_date.clone(),
                d.authority_reference.clone(),
            ),
            (_, Some(e)) => (e.status.clone(), e.event_date.clone(), e.kind.clone()),
            // A grant after a consultation: its answer, date and the denial it concerns.
            _ => match &row.notice.grant {
                Some(g) => (
                    format!("granted ({})", g.answer),
                    g.decision_date.clone(),
                    format!("after {}", g.denial),
                ),
                None => ("-".into(), String::new(), String::new()),
            },
        };
        table.push([
            format!("{}/{}", row.origin, row.serial),
            row.version.to_string(),
            row.kind.to_owned(),
            status,
            row.notice.marking.clone().unwrap_or_default(),
            if decided.is_empty() {
                "-".into()
            } else {
                decided
            },
            reference.chars().take(40).collect(),
            row.notice.to.clone().unwrap_or_default(),
        ]);
    }
    write!(out, "{}", crate::table::render(&table))?;
    writeln!(out, "{} of {} notices", rows.len(), r.total)?;
    Ok(())
}

/// Splits `AGENCY/SERIAL`.
pub fn split_ref(s: &str) -> anyhow::Result<(&str, &str)> {
    s.split_once('/')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!("{s:?} is not AGENCY/SERIAL, e.g. DE-BAFA/DE-BAFA-2026-000001")
        })
}

/// `notice show A/SERIAL`: every version, oldest first.
pub async fn show(
    cfg: &CliConfig,
    reference: &str,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (origin, serial) = split_ref(reference)?;
    let mut client = cfg.operator()?;
    let r = client
        .show_notice(ShowNoticeRequest {
            origin: origin.to_owned(),
            serial: serial.to_owned(),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    let rows: Vec<NoticeOut> = r.versions.iter().filter_map(out_of).collect();
    if as_json {
        serde_json::to_writer_pretty(&mut *out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    for row in &rows {
        let issued = time::OffsetDateTime::from_unix_timestamp(row.issued_at)
            .map(|t| t.date().to_string())
            .unwrap_or_default();
        writeln!(
            out,
            "{}/{} version {} ({}, issued {issued}, feed #{}, signed by key {})",
            row.origin, row.serial, row.version, row.kind, row.seq, row.key_id
        )?;
        if !row.recipients.is_empty() {
            writeln!(out, "  sent to: {}", row.recipients.join(", "))?;
        }
        let body = serde_json::to_string_pretty(&row.notice)?;
        for line in body.lines() {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

/// What `amend`, `renew` and `revoke` change.
pub enum ChangeArg<'a> {
    Amend(&'a Path),
    Renew(Option<String>),
    Revoke(String),
}

/// `notice amend|renew|revoke A/SERIAL ...`: a new version.
pub async fn change(
    cfg: &CliConfig,
    reference: &str,
    change: ChangeArg<'_>,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (origin, serial) = split_ref(reference)?;
    if origin != cfg.agency {
        anyhow::bail!(
            "{reference} belongs to {origin}: only the origin agency can change its notices"
        );
    }
    let change = match change {
        ChangeArg::Amend(file) => change_notice_request::Change::Amend(read_notice_file(file)?),
        ChangeArg::Renew(until) => {
            change_notice_request::Change::RenewUntil(until.unwrap_or_default())
        }
        ChangeArg::Revoke(reason) => change_notice_request::Change::RevokeReason(reason),
    };
    let mut client = cfg.operator()?;
    let r = client
        .change_notice(ChangeNoticeRequest {
            serial: serial.to_owned(),
            change: Some(change),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    print_issued(out, &r, as_json)
}

/// Parses `--format`.
pub fn parse_format(s: &str) -> anyhow::Result<Format> {
    match s.to_ascii_lowercase().as_str() {
        "csl" => Ok(Format::Csl),
        "dpl" => Ok(Format::Dpl),
        "sdn" => Ok(Format::Sdn),
        "jsonl" => Ok(Format::Jsonl),
        "ftm" => Ok(Format::Ftm),
        "un" => Ok(Format::Un),
        other => Err(crate::usage::usage(format!(
            "--format {other:?}: use csl, dpl, sdn, jsonl, ftm or un"
        ))),
    }
}
