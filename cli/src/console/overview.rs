//! The Overview page: peers (reachable, last exchange, outbox backlog),
//! notices by kind and status, unread alerts, consultations due within five
//! working days, and the audit chain's state.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use axum::Extension;
use axum::response::Html;
use tessera_proto::v1::{
    AlertReviewsRequest, AlertsRequest, AuditVerifyRequest, ConsultListRequest, ListNoticesRequest,
    StatusRequest, notice::Body,
};

use super::auth::Session;
use super::page::{esc, iso_ms, iso_s, layout, message};
use super::{PageError, Shared};

/// Consultations due within this many working days are listed.
const DUE_WITHIN: i64 = 5;

/// `GET /`.
pub async fn page(
    state: Shared,
    Extension(_session): Extension<Session>,
) -> Result<Html<String>, PageError> {
    let (mut a, mut b, mut c, mut d, mut e, mut f) = (
        state.op(),
        state.op(),
        state.op(),
        state.op(),
        state.op(),
        state.op(),
    );
    let (status, notices, alerts, reviews, consults, audit) = tokio::join!(
        a.status(StatusRequest {}),
        b.list_notices(ListNoticesRequest::default()),
        c.alerts(AlertsRequest { after: 0 }),
        d.alert_reviews(AlertReviewsRequest {}),
        e.consult_list(ConsultListRequest {}),
        f.audit_verify(AuditVerifyRequest::default()),
    );
    let status = status.map_err(|s| state.failed(&s))?.into_inner();
    let mut body = String::new();
    let _ = write!(
        body,
        "<p>Node of <strong>{}</strong>, software {}, running since {}, signing key {}.</p>",
        esc(&status.agency),
        esc(&status.software_version),
        iso_s(status.started_at),
        esc(&status.signing_key_id)
    );

    // The cards.
    let unread = match (&alerts, &reviews) {
        (Ok(a), Ok(r)) => {
            let read: BTreeSet<u64> = r
                .get_ref()
                .reviews
                .iter()
                .filter(|r| r.acknowledged)
                .map(|r| r.seq)
                .collect();
            let unread = a
                .get_ref()
                .alerts
                .iter()
                .filter(|a| !read.contains(&a.seq))
                .count();
            unread.to_string()
        }
        _ => "?".to_owned(),
    };
    let due: Vec<_> = consults
        .as_ref()
        .map(|r| {
            r.get_ref()
                .consultations
                .iter()
                .filter(|v| {
                    v.state == "overdue"
                        || (matches!(v.state.as_str(), "due-soon" | "open")
                            && v.working_days <= DUE_WITHIN)
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let reachable = status.peers.iter().filter(|p| p.reachable).count();
    let audit_card = match &audit {
        Ok(v) => format!(
            r#"<span class="badge ok">verified</span><br>{} entries, {} checkpoints"#,
            v.get_ref().entries,
            v.get_ref().checkpoints
        ),
        Err(s) => format!(
            r#"<span class="badge bad">does not verify</span><br>{}"#,
            esc(s.message())
        ),
    };
    let _ = write!(
        body,
        r#"<div class="cards">
<div class="card"><div class="big">{reachable} / {}</div>peers reachable</div>
<div class="card"><div class="big"><a href="/alerts">{unread}</a></div>unread alerts</div>
<div class="card"><div class="big"><a href="/consultations">{}</a></div>consultations due within {DUE_WITHIN} working days or overdue</div>
<div class="card">Audit chain<br>{audit_card}</div></div>"#,
        status.peers.len(),
        due.len()
    );

    // Peers.
    body.push_str(r#"<h2>Peers</h2><table><thead><tr><th scope="col">Agency</th><th scope="col">State</th><th scope="col">Last exchange</th><th scope="col" class="num">Round trip</th><th scope="col" class="num">Outbox backlog</th><th scope="col" class="num">Index rows held</th><th scope="col">Software</th></tr></thead><tbody>"#);
    for p in &status.peers {
        let state_cell = if p.reachable {
            r#"<span class="badge ok">reachable</span>"#.to_owned()
        } else {
            format!(
                r#"<span class="badge bad">unreachable</span> {}"#,
                esc(&p.last_error)
            )
        };
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td>{state_cell}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
            esc(&p.agency),
            iso_ms(p.last_seen_ms),
            if p.rtt_us == 0 {
                "-".to_owned()
            } else {
                format!("{:.1} ms", p.rtt_us as f64 / 1000.0)
            },
            p.outbox,
            p.index_rows,
            esc(&p.software_version)
        );
    }
    body.push_str("</tbody></table>");

    // Notices by kind and status.
    body.push_str("<h2>Notices by kind and status</h2>");
    match notices {
        Ok(r) => {
            let mut by: BTreeMap<(&'static str, String), u64> = BTreeMap::new();
            for v in &r.get_ref().notices {
                let Some(n) = &v.notice else { continue };
                let (kind, st) = match &n.body {
                    Some(Body::Denial(d)) => {
                        ("denial", tessera_node::notice::json::status_word(d.status))
                    }
                    Some(Body::Enforcement(e)) => (
                        "enforcement",
                        tessera_node::notice::json::status_word(e.status),
                    ),
                    Some(Body::Grant(_)) => ("grant", "granted"),
                    Some(Body::Charter(_)) => ("charter", "signed"),
                    Some(Body::Trusted(t)) => ("trusted", t.standing.as_str()),
                    None => ("-", "-"),
                };
                *by.entry((kind, st.to_owned())).or_default() += 1;
            }
            body.push_str(r#"<table><thead><tr><th scope="col">Kind</th><th scope="col">Status</th><th scope="col" class="num">Notices</th></tr></thead><tbody>"#);
            for ((kind, st), n) in &by {
                let _ = write!(
                    body,
                    r#"<tr><td>{kind}</td><td>{}</td><td class="num">{n}</td></tr>"#,
                    esc(st)
                );
            }
            if by.is_empty() {
                body.push_str(r#"<tr><td colspan="3">No notices yet.</td></tr>"#);
            }
            body.push_str("</tbody></table>");
        }
        Err(s) => body.push_str(&message("bad", &state.failed(&s).to_string())),
    }

    // Consultations due.
    body.push_str("<h2>Consultations due within 5 working days</h2>");
    if due.is_empty() {
        body.push_str("<p>None.</p>");
    } else {
        body.push_str(&super::consult::table(&due));
    }
    Ok(layout(state.agency(), "Overview", "/", &body))
}
