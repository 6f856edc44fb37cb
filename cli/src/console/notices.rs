//! The Notices page: search by agency, serial, reference and list (legal
//! basis); a notice's versions side by side, the fields that changed
//! highlighted.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::{Path, Query};
use axum::response::Html;
use serde::Deserialize;
use serde_json::Value;
use tessera_node::notice::json::NoticeJson;
use tessera_proto::v1::{ListNoticesRequest, NoticeView, ShowNoticeRequest, notice::Body};

use super::page::{esc, iso_ms, iso_s, layout, url_part};
use super::{PageError, Shared};

/// Rows shown per search.
const SHOWN: usize = 500;

#[derive(Debug, Default, Deserialize)]
pub struct Search {
    #[serde(default)]
    origin: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    serial: String,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    list: String,
}

fn contains(hay: &str, needle: &str) -> bool {
    needle.trim().is_empty() || hay.to_lowercase().contains(&needle.trim().to_lowercase())
}

/// (kind, status, reference, list, decided) of a notice.
fn summary(v: &NoticeView) -> (&'static str, String, String, String, String) {
    use tessera_node::notice::json::status_word;
    match v.notice.as_ref().and_then(|n| n.body.as_ref()) {
        Some(Body::Denial(d)) => (
            "denial",
            status_word(d.status).to_owned(),
            d.authority_reference.clone(),
            d.legal_basis.clone(),
            d.decision_date.clone(),
        ),
        Some(Body::Enforcement(e)) => (
            "enforcement",
            status_word(e.status).to_owned(),
            String::new(),
            String::new(),
            e.event_date.clone(),
        ),
        Some(Body::Grant(g)) => (
            "grant",
            format!("granted ({})", g.answer),
            format!("after {}/{}", g.denial_origin, g.denial_serial),
            String::new(),
            g.decision_date.clone(),
        ),
        Some(Body::Charter(c)) => (
            "charter",
            format!("version {}", c.charter_version),
            c.bloc.clone(),
            String::new(),
            String::new(),
        ),
        Some(Body::Trusted(t)) => (
            "trusted",
            t.standing.clone(),
            t.programme.clone(),
            String::new(),
            t.validated_on.clone(),
        ),
        None => (
            "-",
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ),
    }
}

fn field(id: &str, label: &str, value: &str) -> String {
    format!(
        r#"<div><label for="{id}">{label}</label><input type="search" id="{id}" name="{id}" value="{}"></div>"#,
        esc(value)
    )
}

/// `GET /notices`.
pub async fn search(state: Shared, Query(q): Query<Search>) -> Result<Html<String>, PageError> {
    let r = state
        .op()
        .list_notices(ListNoticesRequest {
            origin: q.origin.trim().to_owned(),
            kind: q.kind.clone(),
            limit: 0,
        })
        .await
        .map_err(|s| state.failed(&s))?
        .into_inner();
    let mut kinds = String::new();
    for k in ["", "denial", "enforcement"] {
        let _ = write!(
            kinds,
            r#"<option value="{k}"{}>{}</option>"#,
            if k == q.kind { " selected" } else { "" },
            if k.is_empty() { "any" } else { k }
        );
    }
    let mut body = format!(
        r#"<form method="get" action="/notices" id="notice-search"><fieldset><legend>Search</legend><div class="grid">{}{}{}{}<div><label for="kind">Kind</label><select id="kind" name="kind">{kinds}</select></div></div><p><button type="submit">Search</button></p></fieldset></form>"#,
        field("origin", "Agency (exact, e.g. DE-BAFA)", &q.origin),
        field("serial", "Serial contains", &q.serial),
        field("reference", "Reference contains", &q.reference),
        field("list", "List or legal basis contains", &q.list),
    );
    let hits: Vec<&NoticeView> = r
        .notices
        .iter()
        .filter(|v| {
            let (_, _, reference, list, _) = summary(v);
            let serial = v.notice.as_ref().map_or("", |n| n.serial.as_str());
            contains(serial, &q.serial)
                && contains(&reference, &q.reference)
                && contains(&list, &q.list)
        })
        .collect();
    let _ = write!(
        body,
        "<p>{} of {} notices match{}.</p>",
        hits.len(),
        r.total,
        if hits.len() > SHOWN {
            format!("; the first {SHOWN} are shown")
        } else {
            String::new()
        }
    );
    body.push_str(r#"<table><thead><tr><th scope="col">Notice</th><th scope="col" class="num">Version</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col">Reference</th><th scope="col">List</th><th scope="col">Decided</th><th scope="col">Stored</th></tr></thead><tbody>"#);
    for v in hits.iter().take(SHOWN) {
        let Some(n) = &v.notice else { continue };
        let (kind, status, reference, list, decided) = summary(v);
        let _ = write!(
            body,
            r#"<tr><td><a href="/notices/{ou}/{su}">{o}/{s}</a></td><td class="num">{ver}</td><td>{kind}</td><td>{status}</td><td>{reference}</td><td>{list}</td><td>{decided}</td><td>{stored}</td></tr>"#,
            ou = url_part(&n.origin),
            su = url_part(&n.serial),
            o = esc(&n.origin),
            s = esc(&n.serial),
            ver = n.version,
            status = esc(&status),
            reference = esc(&reference),
            list = esc(&list),
            decided = esc(&decided),
            stored = iso_ms(v.stored_at_ms),
        );
    }
    body.push_str("</tbody></table>");
    Ok(layout(state.agency(), "Notices", "/notices", &body))
}

/// Flattens JSON into `path → text` rows.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        Value::Null => {}
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// `GET /notices/{origin}/{serial}`: every version side by side.
pub async fn show(
    state: Shared,
    Path((origin, serial)): Path<(String, String)>,
) -> Result<Html<String>, PageError> {
    let r = state
        .op()
        .show_notice(ShowNoticeRequest {
            origin: origin.clone(),
            serial: serial.clone(),
        })
        .await
        .map_err(|s| state.failed(&s))?
        .into_inner();
    let mut columns: Vec<BTreeMap<String, String>> = Vec::new();
    let mut heads = String::new();
    for v in &r.versions {
        let Some(n) = &v.notice else { continue };
        let mut fields = BTreeMap::new();
        fields.insert("(issued)".to_owned(), iso_s(n.issued_at));
        fields.insert("(signed by key)".to_owned(), v.key_id.clone());
        if !v.recipients.is_empty() {
            fields.insert("(sent to)".to_owned(), v.recipients.join(", "));
        }
        if let Ok(json) = serde_json::to_value(NoticeJson::from_notice(n)) {
            flatten("", &json, &mut fields);
        }
        let _ = write!(heads, r#"<th scope="col">Version {}</th>"#, n.version);
        columns.push(fields);
    }
    if columns.is_empty() {
        return Err(PageError::NotFound(format!("notice {origin}/{serial}")));
    }
    let mut paths: Vec<&String> = columns.iter().flat_map(BTreeMap::keys).collect();
    paths.sort();
    paths.dedup();
    let mut rows = String::new();
    for path in paths {
        // A field empty in every version says nothing.
        if columns
            .iter()
            .all(|c| c.get(path).is_none_or(String::is_empty))
        {
            continue;
        }
        let _ = write!(rows, r#"<tr><th scope="row">{}</th>"#, esc(path));
        let mut previous: Option<&str> = None;
        for (i, col) in columns.iter().enumerate() {
            let value = col.get(path).map_or("", String::as_str);
            let changed = i > 0 && previous != Some(value);
            let _ = write!(
                rows,
                "<td{}>{}{}</td>",
                if changed { r#" class="changed""# } else { "" },
                if changed {
                    r#"<span class="skip">changed: </span>"#
                } else {
                    ""
                },
                esc(value)
            );
            previous = Some(value);
        }
        rows.push_str("</tr>");
    }
    let body = format!(
        r#"<p>{} version(s), oldest first. A highlighted cell differs from the version before it.</p><div style="overflow-x:auto"><table><thead><tr><th scope="col">Field</th>{heads}</tr></thead><tbody>{rows}</tbody></table></div>"#,
        columns.len()
    );
    Ok(layout(
        state.agency(),
        &format!("Notice {origin}/{serial}"),
        "/notices",
        &body,
    ))
}
