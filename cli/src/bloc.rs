//! Regional blocs from the command line: `bloc sign|status`, `trusted
//! import|suspend|reinstate|revoke|list`, `application check|decide` and
//! `pilot report|annual`. Each function returns what the node answered, so that
//! tests and scripts can use it as well as print it.

use std::io::Write;
use std::path::Path;

use tessera_node::bloc::json::{ApplicationJson, CharterJson, TrustedCsvRow, TrustedJson};
use tessera_proto::v1::{
    ApplicationCheckRequest, ApplicationCheckResponse, ApplicationDecideRequest,
    ApplicationDecideResponse, BlocSignRequest, BlocStatusRequest, BlocStatusResponse,
    IssueNoticeResponse, Notice, PilotAnnualRequest, PilotAnnualResponse, PilotReportRequest,
    PilotReportResponse, TrustedChangeRequest, TrustedListRequest, TrustedListResponse,
    notice::Body,
};

use crate::client::{CliConfig, explain_call};

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

fn json_line(out: &mut impl Write, v: &impl serde::Serialize) -> anyhow::Result<()> {
    writeln!(out, "{}", serde_json::to_string(v)?)?;
    Ok(())
}

/// One line for an issued version: JSON, or `text` for a person.
fn issued(
    out: &mut impl Write,
    as_json: bool,
    r: &IssueNoticeResponse,
    text: &str,
) -> anyhow::Result<()> {
    if as_json {
        json_line(
            out,
            &serde_json::json!({"origin": r.origin, "serial": r.serial, "version": r.version, "recipients": r.recipients}),
        )
    } else {
        writeln!(out, "{text}")?;
        Ok(())
    }
}

/// `bloc sign --file charter.json`.
pub async fn sign(
    cfg: &CliConfig,
    file: &Path,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<IssueNoticeResponse> {
    let c: CharterJson = serde_json::from_str(&read(file)?).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}",
            file.display(),
            tessera_node::notice::json::scrub_json_error(&e)
        )
    })?;
    let r = cfg
        .operator()?
        .bloc_sign(BlocSignRequest {
            charter: Some(c.to_wire()),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    let to = if r.recipients.is_empty() {
        "nobody new (unchanged)".to_owned()
    } else {
        r.recipients.join(", ")
    };
    let text = format!(
        "signed charter {} of bloc {} (notice version {}); goes to {to}",
        c.version, c.bloc, r.version
    );
    issued(out, as_json, &r, &text)?;
    Ok(r)
}

/// `bloc status --bloc G`.
pub async fn status(
    cfg: &CliConfig,
    bloc: &str,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<BlocStatusResponse> {
    let r = cfg
        .operator()?
        .bloc_status(BlocStatusRequest {
            bloc: bloc.to_owned(),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    if as_json {
        let versions: Vec<_> = r
            .versions
            .iter()
            .map(|v| {
                let c = v.charter.clone().unwrap_or_default();
                serde_json::json!({
                    "version": c.charter_version, "hash": v.hash, "complete": v.complete,
                    "members": c.members, "signed": v.signed, "missing": v.missing,
                    "recognised": c.recognised, "disclosure": c.disclosure,
                    "consult_days": c.consult_days, "identical_rule": c.identical_rule,
                })
            })
            .collect();
        json_line(
            out,
            &serde_json::json!({"bloc": r.bloc, "in_force": r.in_force, "versions": versions, "warnings": r.warnings}),
        )?;
        return Ok(r);
    }
    if r.in_force == 0 {
        writeln!(
            out,
            "bloc {}: no charter in force (this node does not act for the bloc)",
            r.bloc
        )?;
    } else {
        writeln!(
            out,
            "bloc {}: charter version {} in force",
            r.bloc, r.in_force
        )?;
    }
    for v in &r.versions {
        let c = v.charter.clone().unwrap_or_default();
        writeln!(
            out,
            "version {} [{}] {}: members {}",
            c.charter_version,
            &v.hash[..16.min(v.hash.len())],
            if v.complete {
                "signed by every member"
            } else {
                "INCOMPLETE"
            },
            c.members.join(", ")
        )?;
        writeln!(
            out,
            "  signed:  {}",
            if v.signed.is_empty() {
                "-".into()
            } else {
                v.signed.join(", ")
            }
        )?;
        if !v.missing.is_empty() {
            writeln!(out, "  missing: {}", v.missing.join(", "))?;
        }
        writeln!(
            out,
            "  recognised: {}; disclosure {}; consultations {} working days; rule {}",
            c.recognised.join(", "),
            c.disclosure,
            c.consult_days,
            c.identical_rule
        )?;
    }
    for w in &r.warnings {
        writeln!(out, "warning: {w}")?;
    }
    Ok(r)
}

/// What `trusted import` did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TrustedImport {
    pub read: usize,
    pub created: u32,
    pub updated: u32,
    pub unchanged: u32,
    pub refused: usize,
}

/// Reads a trusted-operator file: `jsonl` or `csv`.
pub fn read_trusted(format: &str, file: &Path) -> anyhow::Result<Vec<Result<TrustedJson, String>>> {
    let text = read(file)?;
    match format {
        "jsonl" => Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<TrustedJson>(l)
                    .map_err(|e| tessera_node::notice::json::scrub_json_error(&e))
            })
            .collect()),
        "csv" => Ok(TrustedCsvRow::read_all(&text)),
        other => anyhow::bail!("--format {other}: use jsonl or csv"),
    }
}

/// `trusted import --format jsonl|csv FILE --to group:G`.
pub async fn trusted_import(
    cfg: &CliConfig,
    format: &str,
    file: &Path,
    to: &str,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<TrustedImport> {
    let rows = read_trusted(format, file)?;
    let mut summary = TrustedImport {
        read: rows.len(),
        ..TrustedImport::default()
    };
    let mut err = std::io::stderr().lock();
    let mut notices: Vec<(usize, Notice)> = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        match row.and_then(|j| j.to_notice(to).map_err(|e| e.to_string())) {
            Ok(n) => notices.push((i + 1, n)),
            Err(e) => {
                summary.refused += 1;
                writeln!(
                    err,
                    "{}: record {}: {e}; not imported",
                    file.display(),
                    i + 1
                )?;
            }
        }
    }
    let mut client = cfg.operator()?;
    for chunk in notices.chunks(500) {
        let lines: Vec<u64> = chunk.iter().map(|(l, _)| *l as u64).collect();
        let batch = chunk.iter().map(|(_, n)| n.clone()).collect();
        let r =
            crate::notices::import_batch(cfg, &mut client, batch, &lines, file, "record", &mut err)
                .await?;
        summary.created += r.created;
        summary.updated += r.updated;
        summary.unchanged += r.unchanged;
        summary.refused += r.refused.len();
    }
    if as_json {
        json_line(out, &summary)?;
    } else {
        writeln!(
            out,
            "{} records read: {} new, {} changed, {} unchanged, {} refused",
            summary.read, summary.created, summary.updated, summary.unchanged, summary.refused
        )?;
    }
    Ok(summary)
}

/// `trusted suspend|reinstate|revoke SERIAL [--reason TEXT]`.
pub async fn trusted_change(
    cfg: &CliConfig,
    serial: &str,
    action: &str,
    reason: &str,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<IssueNoticeResponse> {
    let r = cfg
        .operator()?
        .trusted_change(TrustedChangeRequest {
            serial: serial.to_owned(),
            action: action.to_owned(),
            reason: reason.to_owned(),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    let text = format!(
        "{}/{} version {}: {action}; goes to {}",
        r.origin,
        r.serial,
        r.version,
        r.recipients.join(", ")
    );
    issued(out, as_json, &r, &text)?;
    Ok(r)
}

/// `trusted list [--origin A]`.
pub async fn trusted_list(
    cfg: &CliConfig,
    origin: &str,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<TrustedListResponse> {
    let r = cfg
        .operator()?
        .trusted_list(TrustedListRequest {
            origin: origin.to_owned(),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    for v in &r.records {
        let Some(n) = &v.notice else { continue };
        let Some(Body::Trusted(t)) = &n.body else {
            continue;
        };
        let party = t.party.clone().unwrap_or_default();
        if as_json {
            json_line(
                out,
                &serde_json::json!({
                    "origin": n.origin, "serial": n.serial, "version": n.version,
                    "programme": t.programme, "standing": t.standing, "validated_on": t.validated_on,
                    "name": party.name, "ids": party.ids.iter().map(|i| format!("{}:{}", i.r#type, i.value)).collect::<Vec<_>>(),
                    "scope_items": t.scope_items, "scope_destinations": t.scope_destinations,
                    "to": tessera_node::policy::describe(n.distribution.as_ref()),
                }),
            )?;
        } else {
            writeln!(
                out,
                "{}/{} v{}  {}  {}  validated {}  {}",
                n.origin, n.serial, n.version, t.programme, t.standing, t.validated_on, party.name
            )?;
        }
    }
    if r.records.is_empty() && !as_json {
        writeln!(out, "no trusted-operator records")?;
    }
    Ok(r)
}

/// `application check --file application.json [--bloc G] [--consult]`.
pub async fn application_check(
    cfg: &CliConfig,
    file: &Path,
    bloc: &str,
    consult: bool,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<ApplicationCheckResponse> {
    let app: ApplicationJson = serde_json::from_str(&read(file)?).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}",
            file.display(),
            tessera_node::notice::json::scrub_json_error(&e)
        )
    })?;
    let application = app
        .to_wire()
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let r = cfg
        .operator()?
        .application_check(ApplicationCheckRequest {
            bloc: bloc.to_owned(),
            application: Some(application),
            consult,
            threshold: 0.0,
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    if as_json {
        let denials: Vec<_> = r.denials.iter().map(|d| serde_json::json!({
            "member": d.member, "denial": format!("{}/{}", d.origin, d.serial),
            "authority_reference": d.authority_reference, "party": d.party, "strength": d.strength,
            "identical": d.identical, "why": d.why, "deadline": d.deadline,
            "consultation": d.consultation_id, "control_entries": d.control_entries, "destination": d.destination,
        })).collect();
        let trusted: Vec<_> = r.trusted.iter().map(|h| serde_json::json!({
            "party": h.party, "member": h.member, "record": h.serial, "programme": h.programme,
            "validated_on": h.validated_on, "scope_items": h.scope_items,
            "scope_destinations": h.scope_destinations, "in_scope": h.in_scope, "matched_on": h.matched_on,
        })).collect();
        json_line(
            out,
            &serde_json::json!({
                "answer": r.answer, "reasons": r.reasons, "denials": denials, "trusted": trusted,
                "screened": r.screened,
                "unanswered": r.unanswered.iter().map(|p| serde_json::json!({"member": p.peer, "reason": p.reason})).collect::<Vec<_>>(),
                "charter_version": r.charter_version, "rule": r.rule, "parties": r.parties,
            }),
        )?;
        return Ok(r);
    }
    writeln!(out, "{}: {}", app.reference, r.answer.to_uppercase())?;
    for reason in &r.reasons {
        writeln!(out, "  - {reason}")?;
    }
    for d in r.denials.iter().filter(|d| !d.consultation_id.is_empty()) {
        writeln!(
            out,
            "  consultation {} opened with {} (answer due {})",
            d.consultation_id, d.member, d.deadline
        )?;
    }
    writeln!(
        out,
        "  screened {} parties against {}; charter version {}, rule {}",
        r.parties,
        if r.screened.is_empty() {
            "no member".into()
        } else {
            r.screened.join(", ")
        },
        r.charter_version,
        r.rule
    )?;
    Ok(r)
}

/// `application decide REFERENCE --decision granted|refused [--on DATE]`.
pub async fn application_decide(
    cfg: &CliConfig,
    reference: &str,
    decision: &str,
    on: &str,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<ApplicationDecideResponse> {
    let r = cfg
        .operator()?
        .application_decide(ApplicationDecideRequest {
            reference: reference.to_owned(),
            decision: decision.to_owned(),
            decided_on: on.to_owned(),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    if as_json {
        json_line(
            out,
            &serde_json::json!({"reference": reference, "decision": decision, "working_days": r.working_days}),
        )?;
    } else {
        writeln!(
            out,
            "{reference}: {decision} after {} working days",
            r.working_days
        )?;
    }
    Ok(r)
}

/// `pilot report --group G --from DATE --to DATE [--csv] [--svg DIR]`.
pub async fn pilot_report(
    cfg: &CliConfig,
    bloc: &str,
    from: &str,
    to: &str,
    format: crate::pilot::Format,
    svg: Option<&Path>,
    out: &mut impl Write,
) -> anyhow::Result<PilotReportResponse> {
    let r = cfg
        .operator()?
        .pilot_report(PilotReportRequest {
            bloc: bloc.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    crate::pilot::print(&r, format, out)?;
    if let Some(dir) = svg {
        crate::pilot::write_svgs(dir, &r)?;
    }
    Ok(r)
}

/// How `pilot annual` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnualFormat {
    Table,
    Json,
    Csv,
}

/// `pilot annual --from DATE --to DATE [--csv FILE]`: this member's
/// annual-report figures by item category and destination.
pub async fn pilot_annual(
    cfg: &CliConfig,
    from: &str,
    to: &str,
    format: AnnualFormat,
    out: &mut impl Write,
) -> anyhow::Result<PilotAnnualResponse> {
    let r = cfg
        .operator()?
        .pilot_annual(PilotAnnualRequest {
            from: from.to_owned(),
            to: to.to_owned(),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    match format {
        AnnualFormat::Table => crate::annual::table(&r, out)?,
        AnnualFormat::Json => crate::annual::json(&r, out)?,
        AnnualFormat::Csv => crate::annual::csv(&r, out)?,
    }
    Ok(r)
}
