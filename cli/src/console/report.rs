//! The screening report as CSV: the counts at the top, then one row per
//! party and match (a party without a match has one row with the match
//! columns empty), strongest first within a party.

use axum::Extension;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::auth::Session;
use super::batch::{Job, Outcome};
use super::page::iso_s;
use super::screen::{held_by, why};
use super::{PageError, Shared};

/// The report of `job`.
pub fn render(job: &Job) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let counts = job.counts();
    let count = |o| counts.get(&o).copied().unwrap_or(0).to_string();
    w.write_record(["screened", &iso_s(job.started_s), &job.source])?;
    w.write_record(["parties", &job.results.len().to_string()])?;
    w.write_record(["with a match", &count(Outcome::Match)])?;
    w.write_record(["not fully screened", &count(Outcome::NotFullyScreened)])?;
    w.write_record(["not screened", &count(Outcome::NotScreened)])?;
    w.write_record(["clear", &count(Outcome::Clear)])?;
    let matches: usize = job.results.iter().map(|r| r.matches.len()).sum();
    w.write_record(["matches", &matches.to_string()])?;
    for (peer, reason) in &job.unavailable {
        w.write_record(["not screened at", peer, reason])?;
    }
    w.write_record([""])?;
    w.write_record([
        "party",
        "name",
        "status",
        "strength",
        "score",
        "why",
        "names matched",
        "notice",
        "reference",
        "held by",
        "disclosure",
        "action",
        "contact",
        "not screened at",
    ])?;
    for result in job.ordered() {
        let party = job.parties.get(result.index as usize);
        let name = party.map_or("", |p| p.name.as_str());
        let number = (result.index + 1).to_string();
        let status = job.outcome(result).words();
        let unscreened = result.unscreened.join(" ");
        if result.matches.is_empty() {
            w.write_record([
                number.as_str(),
                name,
                status,
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                &unscreened,
            ])?;
            continue;
        }
        let names = party.map(super::parties::names).unwrap_or_default();
        for m in &result.matches {
            let matched: Vec<&str> = m
                .query_names
                .iter()
                .filter_map(|&n| names.get(n as usize).copied())
                .collect();
            w.write_record([
                number.as_str(),
                name,
                status,
                &m.strength,
                &format!("{:.2}", m.score),
                &why(m),
                &matched.join("; "),
                &format!("{}/{}", m.origin, m.serial),
                &m.authority_reference,
                &held_by(m),
                &m.disclosure,
                &m.action,
                &m.contact,
                &unscreened,
            ])?;
        }
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// `GET /screen/jobs/{id}/report.csv`.
pub async fn csv(
    state: Shared,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let job = state
        .jobs
        .get(&id, &session.id)
        .ok_or_else(|| PageError::NotFound(format!("screening {id}")))?;
    let bytes = {
        let job = job
            .lock()
            .map_err(|_| PageError::NotFound(format!("screening {id}")))?;
        if !job.finished {
            return Err(PageError::BadInput(
                "the screening is still running; download the report when it ends".into(),
            ));
        }
        render(&job).map_err(|e| PageError::BadInput(format!("report: {e}")))?
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"screening-{id}.csv\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
