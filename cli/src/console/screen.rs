//! The Screen page: one party with every party field, or a batch file; the
//! job page with its progress bar and the results, strongest first, each
//! with why it matched and which of the party's names did; a false positive
//! marked from a result.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Form, Path, Query};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tessera_node::notice::json::party_to_wire;
use tessera_proto::v1::{MarkFalsePositiveRequest, Match, mark_false_positive_request::Subject};

use super::auth::{Session, check_csrf};
use super::batch::{self, Job, Outcome};
use super::page::{
    Done, csrf_field, esc, flash, iso_s, layout, layout_with_head, message, url_part,
};
use super::parties::{self, MAX_BATCH, PartyForm};
use super::{PageError, Shared};

/// Results shown on the page; the CSV report has every one.
const SHOWN: usize = 300;

/// `GET /screen`.
pub async fn form(state: Shared, Extension(session): Extension<Session>) -> Html<String> {
    let csrf = csrf_field(&session);
    let body = format!(
        r#"<p>Screening asks every peer privately: a peer learns how many keys were asked, never which. A peer that does not answer is shown as <em>not screened</em>, never as a clear.</p>
<form method="post" action="/screen" id="screen-one">{csrf}
<fieldset><legend>One party</legend>
<div class="grid">
<div><label for="name">Name <span class="hint">(required)</span></label><input type="text" id="name" name="name" required autocomplete="off"></div>
<div><label for="kind">Kind</label><select id="kind" name="kind"><option value="organisation">Organisation</option><option value="person">Person</option><option value="vessel">Vessel</option><option value="aircraft">Aircraft</option></select></div>
<div><label for="countries">Countries <span class="hint">(codes or names, comma-separated)</span></label><input type="text" id="countries" name="countries" autocomplete="off"></div>
<div><label for="birth_date">Birth date <span class="hint">(YYYY, YYYY-MM or YYYY-MM-DD)</span></label><input type="text" id="birth_date" name="birth_date" autocomplete="off" pattern="[0-9]{{4}}(-[0-9]{{2}}(-[0-9]{{2}})?)?"></div>
<div><label for="aliases">Aliases <span class="hint">(one per line)</span></label><textarea id="aliases" name="aliases"></textarea></div>
<div><label for="script_names">Names in original script <span class="hint">(one per line)</span></label><textarea id="script_names" name="script_names"></textarea></div>
<div><label for="ids">Identifiers <span class="hint">(one per line: TYPE:VALUE or TYPE:COUNTRY:VALUE, e.g. LEI:5299… or PASSPORT:RU:…)</span></label><textarea id="ids" name="ids"></textarea></div>
<div><label for="addresses">Addresses <span class="hint">(one per line)</span></label><textarea id="addresses" name="addresses"></textarea></div>
</div>
<p><button type="submit">Screen this party</button></p>
</fieldset></form>
<form method="post" action="/screen/batch" enctype="multipart/form-data" id="screen-batch">{csrf}
<fieldset><legend>A batch</legend>
<label for="file">File <span class="hint">(JSON Lines: one party object per line; or CSV with a header row: name, kind, aliases, original_script_names, ids, countries, addresses, birth_date — several values separated by “;”; at most {MAX_BATCH} parties)</span></label>
<input type="file" id="file" name="file" accept=".jsonl,.json,.csv,.txt,text/csv,application/json" required>
<p><button type="submit">Screen the batch</button></p>
</fieldset></form>"#
    );
    layout(state.agency(), "Screen", "/screen", &body)
}

/// `POST /screen`: one party.
pub async fn one(
    state: Shared,
    Extension(session): Extension<Session>,
    Form(form): Form<PartyForm>,
) -> Result<Redirect, PageError> {
    check_csrf(&session, &form.csrf)?;
    let party = form.to_party()?;
    let id = batch::start(&state, &session.id, "form", vec![party]);
    Ok(Redirect::to(&format!("/screen/jobs/{id}")))
}

/// `POST /screen/batch`: an uploaded file.
pub async fn batch(
    state: Shared,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Redirect, PageError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let fields = parties::multipart(content_type, &body)?;
    let csrf = fields
        .iter()
        .find(|f| f.name == "csrf")
        .map(|f| String::from_utf8_lossy(&f.data).into_owned())
        .unwrap_or_default();
    check_csrf(&session, &csrf)?;
    let file = fields
        .iter()
        .find(|f| f.name == "file")
        .ok_or_else(|| PageError::BadInput("choose a file to screen".into()))?;
    let file_name = file.file_name.clone().unwrap_or_else(|| "upload".into());
    let list = parties::parse_batch(&file_name, &file.data)?;
    let id = batch::start(&state, &session.id, &file_name, list);
    Ok(Redirect::to(&format!("/screen/jobs/{id}")))
}

fn find_job(
    state: &Shared,
    session: &Session,
    id: &str,
) -> Result<Arc<std::sync::Mutex<Job>>, PageError> {
    state
        .jobs
        .get(id, &session.id)
        .ok_or_else(|| PageError::NotFound(format!("screening {id}")))
}

/// `GET /screen/jobs/{id}/progress`: for the page's script.
pub async fn progress(
    state: Shared,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let job = find_job(&state, &session, &id)?;
    let json = job
        .lock()
        .map(|j| batch::progress_json(&j))
        .unwrap_or_default();
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
        .into_response())
}

/// The matched names of `m`, as the party gave them.
fn matched_names(job: &Job, index: u32, m: &Match) -> String {
    let Some(party) = job.parties.get(index as usize) else {
        return String::new();
    };
    let names = parties::names(party);
    m.query_names
        .iter()
        .filter_map(|&n| names.get(n as usize).copied())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where a match was found: a peer, or our own lists.
pub fn held_by(m: &Match) -> String {
    if m.own {
        "own list".to_owned()
    } else {
        m.peer.clone()
    }
}

/// "Why it matched" for people: the node's words, else the key kinds.
pub fn why(m: &Match) -> String {
    if m.why.is_empty() {
        m.key_kinds.join(", ")
    } else {
        m.why.clone()
    }
}

fn results_html(job: &Job, session: &Session) -> String {
    let mut out = String::new();
    let counts = job.counts();
    let count = |o| counts.get(&o).copied().unwrap_or(0);
    let _ = write!(
        out,
        r#"<div class="cards" aria-label="Counts">
<div class="card"><div class="big">{}</div>parties screened</div>
<div class="card"><div class="big">{}</div>with a match</div>
<div class="card"><div class="big">{}</div>not (fully) screened</div>
<div class="card"><div class="big">{}</div>clear</div></div>
<p><a href="/screen/jobs/{}/report.csv" download>Download the CSV report</a> (one row per party and match, counts at the top)</p>"#,
        job.results.len(),
        count(Outcome::Match),
        count(Outcome::NotScreened) + count(Outcome::NotFullyScreened),
        count(Outcome::Clear),
        url_part(&job.id)
    );
    for (peer, reason) in &job.unavailable {
        out.push_str(&message(
            "warn",
            &format!("Not screened at {peer}: {reason}. This is not a “no match”."),
        ));
    }
    let csrf = csrf_field(session);
    for result in job.ordered().into_iter().take(SHOWN) {
        let outcome = job.outcome(result);
        let party = job.parties.get(result.index as usize);
        let name = party.map_or("?", |p| p.name.as_str());
        let _ = write!(
            out,
            r#"<section class="party" aria-labelledby="p{i}"><h2 id="p{i}">{n}. {name} <span class="badge {class}">{words}</span></h2>"#,
            i = result.index,
            n = result.index + 1,
            name = esc(name),
            class = outcome.class(),
            words = outcome.words(),
        );
        if result.keys == 0 {
            out.push_str(&message(
                "warn",
                "No match key could be derived from what was given: add a country, an identifier or a fuller name.",
            ));
        }
        if !result.unscreened.is_empty() {
            let _ = write!(
                out,
                r#"<p class="warn">Not screened at: {}</p>"#,
                esc(&result.unscreened.join(", "))
            );
        }
        if let Some(n) = job.suppressed.get(&result.index) {
            let _ = write!(
                out,
                r#"<p class="muted">{n} match(es) not shown: marked false positive (see <a href="/alerts#false-positives">false positives</a>).</p>"#
            );
        }
        if result.matches.is_empty() {
            out.push_str("</section>");
            continue;
        }
        out.push_str(r#"<table><thead><tr><th scope="col">Strength</th><th scope="col" class="num">Score</th><th scope="col">Why it matched</th><th scope="col">Names that matched</th><th scope="col">Notice</th><th scope="col">Held by</th><th scope="col">What the holder shows</th><th scope="col">Not the same party?</th></tr></thead><tbody>"#);
        let mut matches: Vec<&Match> = result.matches.iter().collect();
        matches.sort_by(|a, b| {
            batch::strength_rank(&b.strength)
                .cmp(&batch::strength_rank(&a.strength))
                .then(b.score.total_cmp(&a.score))
        });
        for m in matches {
            let shows = [
                m.action.as_str(),
                &m.control_entries.join(", "),
                m.destination.as_str(),
                m.decision_date.as_str(),
            ]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" · ");
            let _ = write!(
                out,
                r#"<tr><td><span class="badge {sc}">{strength}</span></td><td class="num">{score:.2}</td><td class="why">{why}</td><td>{names}</td><td><a class="code" href="/notices/{ou}/{su}">{origin}/{serial}</a><br><span class="muted">ref {reference}</span></td><td class="code">{held}</td><td>{disclosure}{shows}<br><span class="muted">contact: {contact}</span></td>
<td><form class="inline" method="post" action="/screen/jobs/{job}/false-positive">{csrf}<input type="hidden" name="party" value="{index}"><input type="hidden" name="origin" value="{origin}"><input type="hidden" name="serial" value="{serial}"><label class="hint" for="r{index}-{su}">Reason</label><input type="text" id="r{index}-{su}" name="reason" required placeholder="e.g. other birth date"><button type="submit" class="secondary">False positive</button></form></td></tr>"#,
                sc = if m.strength == "strong" {
                    "bad"
                } else {
                    "warn"
                },
                strength = esc(&m.strength),
                score = m.score,
                why = esc(&why(m)),
                names = esc(&matched_names(job, result.index, m)),
                ou = url_part(&m.origin),
                su = url_part(&m.serial),
                origin = esc(&m.origin),
                serial = esc(&m.serial),
                reference = esc(&m.authority_reference),
                held = esc(&held_by(m)),
                disclosure = match m.disclosure.as_str() {
                    "pointer" => "a pointer only: ask the contact",
                    "summary" => "summary",
                    "full" => "the full notice",
                    other => other,
                },
                shows = if shows.is_empty() {
                    String::new()
                } else {
                    format!(": {}", esc(&shows))
                },
                contact = esc(if m.contact.is_empty() {
                    "-"
                } else {
                    &m.contact
                }),
                job = url_part(&job.id),
                index = result.index,
            );
        }
        out.push_str("</tbody></table></section>");
    }
    if job.results.len() > SHOWN {
        let _ = write!(
            out,
            "<p>The first {SHOWN} parties are shown; the CSV report has all {}.</p>",
            job.results.len()
        );
    }
    out
}

/// `GET /screen/jobs/{id}`: the progress bar, then the results.
pub async fn job(
    state: Shared,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Html<String>, PageError> {
    let job = find_job(&state, &session, &id)?;
    let job = job
        .lock()
        .map_err(|_| PageError::NotFound(format!("screening {id}")))?;
    let head = format!(
        "{} · {} part{} · started {}",
        esc(&job.source),
        job.parties.len(),
        if job.parties.len() == 1 { "y" } else { "ies" },
        iso_s(job.started_s)
    );
    if !job.finished {
        // Without script, the page refreshes itself; with it, the bar moves in place.
        let body = format!(
            r#"<p>{head}</p><div data-autorefresh="/screen/jobs/{u}/progress" aria-live="polite"><label for="bar">Progress</label><progress id="bar" value="{d}" max="{t}">{d} of {t}</progress><p data-progress-text>{d} of {t} parties screened</p></div>"#,
            u = url_part(&job.id),
            d = job.done,
            t = job.parties.len()
        );
        return Ok(layout_with_head(
            state.agency(),
            "Screening…",
            "/screen",
            r#"<noscript><meta http-equiv="refresh" content="2"></noscript>"#,
            &body,
        ));
    }
    let mut body = format!("{}<p>{head}</p>", flash(done.done.as_deref()));
    if let Some(e) = &job.error {
        body.push_str(&message(
            "bad",
            &format!("Screening stopped after {} parties: {e}", job.done),
        ));
    }
    body.push_str(&results_html(&job, &session));
    body.push_str(r#"<p><a href="/screen">Screen again</a></p>"#);
    Ok(layout(
        state.agency(),
        "Screening results",
        "/screen",
        &body,
    ))
}

#[derive(Debug, Deserialize)]
pub struct FalsePositiveForm {
    csrf: String,
    party: u32,
    origin: String,
    serial: String,
    reason: String,
}

/// `POST /screen/jobs/{id}/false-positive`: this party and this notice are
/// not the same; the node suppresses the pair from now on.
pub async fn false_positive(
    state: Shared,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<FalsePositiveForm>,
) -> Result<Redirect, PageError> {
    check_csrf(&session, &form.csrf)?;
    if form.reason.trim().is_empty() {
        return Err(PageError::BadInput(
            "reason: say why this is not the same party".into(),
        ));
    }
    let party = {
        let job = find_job(&state, &session, &id)?;
        let job = job
            .lock()
            .map_err(|_| PageError::NotFound(format!("screening {id}")))?;
        job.parties
            .get(form.party as usize)
            .map(party_to_wire)
            .ok_or_else(|| PageError::NotFound(format!("party {}", form.party + 1)))?
    };
    state
        .op()
        .mark_false_positive(MarkFalsePositiveRequest {
            subject: Some(Subject::Party(party)),
            origin: form.origin.clone(),
            serial: form.serial.clone(),
            reason: form.reason.trim().to_owned(),
        })
        .await
        .map_err(|s| state.failed(&s))?;
    let done = format!(
        "Marked a false positive: {}/{} is suppressed for this party from now on (undo under Alerts → false positives). Screen again to see the effect.",
        form.origin, form.serial
    );
    Ok(Redirect::to(&format!(
        "/screen/jobs/{}?done={}",
        url_part(&id),
        url_part(&done)
    )))
}
