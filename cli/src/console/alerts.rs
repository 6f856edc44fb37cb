//! The Alerts page: the review queue (unread or all), acknowledge, add a
//! note, mark a false positive with a reason (the node then leaves the pair
//! out of its screening and watch results; undo below), escalate to a
//! consultation with the notice's agency.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Form, Path, Query};
use axum::response::{Html, Redirect};
use serde::Deserialize;
use tessera_proto::v1::{
    Alert, AlertReview, AlertReviewsRequest, AlertsRequest, ClearFalsePositiveRequest,
    ConsultOpenRequest, ListFalsePositivesRequest, MarkFalsePositiveRequest, ReviewAlertRequest,
    mark_false_positive_request::Subject,
};

use super::auth::{Session, check_csrf};
use super::page::{csrf_field, esc, iso_ms, layout, message, url_part};
use super::screen::{held_by, why};
use super::{PageError, Shared};

#[derive(Debug, Deserialize)]
pub struct Filter {
    #[serde(default)]
    show: String,
    done: Option<String>,
}

fn kind_words(a: &Alert) -> String {
    match a.kind.as_str() {
        "watch_update" if a.update == "ended" => "watch: notice no longer in force".to_owned(),
        "watch_update" => "watch: notice changed".to_owned(),
        other => other.replace('_', " "),
    }
}

fn alert_row(a: &Alert, review: Option<&AlertReview>, csrf: &str) -> String {
    let m = a.r#match.clone().unwrap_or_default();
    let read = review.is_some_and(|r| r.acknowledged);
    let mut notes = String::new();
    for n in review.map(|r| r.notes.as_slice()).unwrap_or_default() {
        let _ = write!(
            notes,
            r#"<li><span class="muted">{}</span> {}</li>"#,
            iso_ms(n.at_ms),
            esc(&n.text)
        );
    }
    let seq = a.seq;
    let notice = format!("{}/{}", m.origin, m.serial);
    let what = match a.kind.as_str() {
        "consultation" => format!(
            r#"Consultation <a href="/consultations/{}">{}</a> with {}: {}"#,
            url_part(&a.reference),
            esc(&a.reference),
            esc(&m.peer),
            esc(&m.action)
        ),
        "review" => format!(
            "Our notice {}: {} {}; renew or revoke it",
            esc(&a.reference),
            esc(&m.action),
            esc(&m.decision_date)
        ),
        _ => format!(
            r#"<a href="/notices/{}/{}">{}</a> held by {} · <span class="why">{}</span> · {} · score {:.2}<br><span class="muted">contact: {}</span>"#,
            url_part(&m.origin),
            url_part(&m.serial),
            esc(&notice),
            esc(&held_by(&m)),
            esc(&why(&m)),
            esc(&m.strength),
            m.score,
            esc(if m.contact.is_empty() {
                "-"
            } else {
                &m.contact
            })
        ),
    };
    let mut actions = String::new();
    if !read {
        let _ = write!(
            actions,
            r#"<form class="inline" method="post" action="/alerts/{seq}/review">{csrf}<input type="hidden" name="acknowledge" value="true"><button type="submit" class="secondary">Acknowledge</button></form>"#
        );
    }
    let _ = write!(
        actions,
        r#"<details><summary>Add a note</summary><form class="inline" method="post" action="/alerts/{seq}/review">{csrf}<label for="note{seq}" class="hint">Note</label><input type="text" id="note{seq}" name="note" required><button type="submit" class="secondary">Save note</button></form></details>"#
    );
    if a.watch_id != 0 && matches!(a.kind.as_str(), "watch" | "investigation" | "watch_update") {
        let _ = write!(
            actions,
            r#"<details><summary>False positive</summary><form class="inline" method="post" action="/alerts/{seq}/false-positive">{csrf}<label for="fp{seq}" class="hint">Why is it not the same party?</label><input type="text" id="fp{seq}" name="reason" required><button type="submit" class="danger">Mark false positive</button></form></details>"#
        );
    }
    if !m.own && !m.origin.is_empty() && matches!(a.kind.as_str(), "watch" | "watch_update") {
        let _ = write!(
            actions,
            r#"<details><summary>Escalate to a consultation</summary><form method="post" action="/alerts/{seq}/escalate">{csrf}<label for="sum{seq}">Transaction summary for {notice_e}'s agency</label><textarea id="sum{seq}" name="summary" required></textarea><label for="days{seq}">Working days to answer</label><input type="number" id="days{seq}" name="days" min="1" max="30" value="10" style="width:6em"> <button type="submit">Open consultation</button></form></details>"#,
            notice_e = esc(&notice)
        );
    }
    format!(
        r#"<tr class="{class}"><td>#{seq}<br>{state}</td><td>{when}</td><td>{kind}{watch}</td><td>{what}{notes_list}</td><td>{actions}</td></tr>"#,
        class = if read { "" } else { "unread" },
        state = if read {
            r#"<span class="badge ok">read</span>"#
        } else {
            r#"<span class="badge warn">unread</span>"#
        },
        when = iso_ms(a.at_ms),
        kind = esc(&kind_words(a)),
        watch = if a.watch_id == 0 {
            String::new()
        } else {
            format!(
                r#"<br><span class="muted">watch entry {} · {}</span>"#,
                a.watch_id,
                esc(&a.reference)
            )
        },
        notes_list = if notes.is_empty() {
            String::new()
        } else {
            format!("<ul>{notes}</ul>")
        },
    )
}

/// `GET /alerts?show=unread|all`.
pub async fn page(
    state: Shared,
    Extension(session): Extension<Session>,
    Query(filter): Query<Filter>,
) -> Result<Html<String>, PageError> {
    let (mut a, mut b, mut c) = (state.op(), state.op(), state.op());
    let (alerts, reviews, fps) = tokio::join!(
        a.alerts(AlertsRequest { after: 0 }),
        b.alert_reviews(AlertReviewsRequest {}),
        c.list_false_positives(ListFalsePositivesRequest {}),
    );
    let alerts = alerts.map_err(|s| state.failed(&s))?.into_inner().alerts;
    let reviews: BTreeMap<u64, AlertReview> = reviews
        .map_err(|s| state.failed(&s))?
        .into_inner()
        .reviews
        .into_iter()
        .map(|r| (r.seq, r))
        .collect();
    let all = filter.show == "all";
    let csrf = csrf_field(&session);
    let mut body = filter
        .done
        .as_deref()
        .map(|d| message("ok", d))
        .unwrap_or_default();
    let unread = alerts
        .iter()
        .filter(|a| !reviews.get(&a.seq).is_some_and(|r| r.acknowledged))
        .count();
    let _ = write!(
        body,
        r#"<p role="navigation" aria-label="Filter">Show: {} · {}</p>"#,
        if all {
            format!(r#"<a href="/alerts">unread ({unread})</a>"#)
        } else {
            format!(r#"<strong aria-current="true">unread ({unread})</strong>"#)
        },
        if all {
            format!(
                r#"<strong aria-current="true">all ({})</strong>"#,
                alerts.len()
            )
        } else {
            format!(r#"<a href="/alerts?show=all">all ({})</a>"#, alerts.len())
        }
    );
    body.push_str(r#"<table><thead><tr><th scope="col">Alert</th><th scope="col">Raised</th><th scope="col">Kind</th><th scope="col">What</th><th scope="col">Actions</th></tr></thead><tbody>"#);
    let mut shown = 0;
    for a in alerts.iter().rev() {
        let review = reviews.get(&a.seq);
        if !all && review.is_some_and(|r| r.acknowledged) {
            continue;
        }
        shown += 1;
        body.push_str(&alert_row(a, review, &csrf));
    }
    if shown == 0 {
        body.push_str(r#"<tr><td colspan="5">No alerts to review.</td></tr>"#);
    }
    body.push_str("</tbody></table>");

    body.push_str(r#"<h2 id="false-positives">False positives</h2><p>Pairs of a party and a notice judged not to be the same. They are left out of this node's screening and watch results until cleared. The party is kept only as a keyed digest.</p>"#);
    match fps {
        Ok(r) => {
            let list = r.into_inner().false_positives;
            if list.is_empty() {
                body.push_str("<p>None.</p>");
            } else {
                body.push_str(r#"<table><thead><tr><th scope="col">Marked</th><th scope="col">Party (digest)</th><th scope="col">Notice</th><th scope="col">Reason</th><th scope="col">Undo</th></tr></thead><tbody>"#);
                for f in &list {
                    let _ = write!(
                        body,
                        r#"<tr><td>{}</td><td><code>{}…</code></td><td>{}/{}</td><td>{}</td><td><form class="inline" method="post" action="/false-positives/clear">{csrf}<input type="hidden" name="party_digest" value="{}"><input type="hidden" name="origin" value="{}"><input type="hidden" name="serial" value="{}"><button type="submit" class="secondary">Clear</button></form></td></tr>"#,
                        iso_ms(f.at_ms),
                        esc(f.party_digest.get(..12).unwrap_or_default()),
                        esc(&f.origin),
                        esc(&f.serial),
                        esc(&f.reason),
                        esc(&f.party_digest),
                        esc(&f.origin),
                        esc(&f.serial),
                    );
                }
                body.push_str("</tbody></table>");
            }
        }
        Err(s) => body.push_str(&message("bad", &state.failed(&s).to_string())),
    }
    Ok(layout(state.agency(), "Alerts review", "/alerts", &body))
}

#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    csrf: String,
    #[serde(default)]
    acknowledge: Option<String>,
    #[serde(default)]
    note: String,
}

fn back(done: &str) -> Redirect {
    Redirect::to(&format!("/alerts?done={}", url_part(done)))
}

/// `POST /alerts/{seq}/review`: acknowledge and/or note.
pub async fn review(
    state: Shared,
    Extension(session): Extension<Session>,
    Path(seq): Path<u64>,
    Form(form): Form<ReviewForm>,
) -> Result<Redirect, PageError> {
    check_csrf(&session, &form.csrf)?;
    let acknowledge = form.acknowledge.is_some();
    state
        .op()
        .review_alert(ReviewAlertRequest {
            seq,
            acknowledge,
            note: form.note,
        })
        .await
        .map_err(|s| state.failed(&s))?;
    Ok(back(&if acknowledge {
        format!("Alert #{seq} acknowledged")
    } else {
        format!("Note added to alert #{seq}")
    }))
}

async fn alert(state: &Shared, seq: u64) -> Result<Alert, PageError> {
    state
        .op()
        .alerts(AlertsRequest {
            after: seq.saturating_sub(1),
        })
        .await
        .map_err(|s| state.failed(&s))?
        .into_inner()
        .alerts
        .into_iter()
        .find(|a| a.seq == seq)
        .ok_or_else(|| PageError::NotFound(format!("alert #{seq}")))
}

#[derive(Debug, Deserialize)]
pub struct ReasonForm {
    csrf: String,
    reason: String,
}

/// `POST /alerts/{seq}/false-positive`: the watched party and the alert's notice.
pub async fn false_positive(
    state: Shared,
    Extension(session): Extension<Session>,
    Path(seq): Path<u64>,
    Form(form): Form<ReasonForm>,
) -> Result<Redirect, PageError> {
    check_csrf(&session, &form.csrf)?;
    let a = alert(&state, seq).await?;
    let m = a.r#match.unwrap_or_default();
    let mut op = state.op();
    op.mark_false_positive(MarkFalsePositiveRequest {
        subject: Some(Subject::WatchId(a.watch_id)),
        origin: m.origin.clone(),
        serial: m.serial.clone(),
        reason: form.reason,
    })
    .await
    .map_err(|s| state.failed(&s))?;
    // Reviewed: a false positive needs no more attention.
    op.review_alert(ReviewAlertRequest {
        seq,
        acknowledge: true,
        note: String::new(),
    })
    .await
    .map_err(|s| state.failed(&s))?;
    Ok(back(&format!(
        "Alert #{seq}: {}/{} marked a false positive for watch entry {}; it is left out of screening and watch results from now on",
        m.origin, m.serial, a.watch_id
    )))
}

#[derive(Debug, Deserialize)]
pub struct EscalateForm {
    csrf: String,
    summary: String,
    #[serde(default)]
    days: u32,
}

/// `POST /alerts/{seq}/escalate`: a consultation with the notice's agency.
pub async fn escalate(
    state: Shared,
    Extension(session): Extension<Session>,
    Path(seq): Path<u64>,
    Form(form): Form<EscalateForm>,
) -> Result<Redirect, PageError> {
    check_csrf(&session, &form.csrf)?;
    let a = alert(&state, seq).await?;
    let m = a.r#match.unwrap_or_default();
    let v = state
        .op()
        .consult_open(ConsultOpenRequest {
            denial_origin: m.origin,
            denial_serial: m.serial,
            summary: form.summary,
            days: form.days,
        })
        .await
        .map_err(|s| state.failed(&s))?
        .into_inner();
    let id = v.consultation.map(|c| c.id).unwrap_or_default();
    Ok(Redirect::to(&format!(
        "/consultations/{}?done={}",
        url_part(&id),
        url_part(&format!("Consultation {id} opened from alert #{seq}"))
    )))
}

#[derive(Debug, Deserialize)]
pub struct ClearForm {
    csrf: String,
    party_digest: String,
    origin: String,
    serial: String,
}

/// `POST /false-positives/clear`: undo.
pub async fn clear_false_positive(
    state: Shared,
    Extension(session): Extension<Session>,
    Form(form): Form<ClearForm>,
) -> Result<Redirect, PageError> {
    check_csrf(&session, &form.csrf)?;
    state
        .op()
        .clear_false_positive(ClearFalsePositiveRequest {
            party_digest: form.party_digest,
            origin: form.origin.clone(),
            serial: form.serial.clone(),
        })
        .await
        .map_err(|s| state.failed(&s))?;
    Ok(back(&format!(
        "False positive cleared: {}/{} is screened for that party again",
        form.origin, form.serial
    )))
}
