//! The Watch lists page: the parties watched for licensing and the
//! investigation subjects used for deconfliction; add one, remove one.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Form, Path, Query};
use axum::response::{Html, Redirect};
use serde::Deserialize;
use tessera_node::notice::json::party_to_wire;
use tessera_proto::v1::{WatchAddRequest, WatchListRequest, WatchRemoveRequest};

use super::auth::{Session, check_csrf};
use super::page::{Done, csrf_field, esc, flash, iso_ms, layout, url_part};
use super::parties::PartyForm;
use super::{PageError, Shared};

/// `GET /watch`.
pub async fn page(
    state: Shared,
    Extension(session): Extension<Session>,
    Query(done): Query<Done>,
) -> Result<Html<String>, PageError> {
    let entries = state
        .op()
        .watch_list(WatchListRequest {})
        .await
        .map_err(|s| state.failed(&s))?
        .into_inner()
        .entries;
    let csrf = csrf_field(&session);
    let mut body = flash(done.done.as_deref());
    for (purpose, title) in [
        ("watch", "Watch list (licensing)"),
        ("investigation", "Investigation subjects (deconfliction)"),
    ] {
        let list: Vec<_> = entries.iter().filter(|e| e.purpose == purpose).collect();
        let _ = write!(body, "<h2>{title} ({})</h2>", list.len());
        if list.is_empty() {
            body.push_str("<p>None.</p>");
            continue;
        }
        body.push_str(r#"<table><thead><tr><th scope="col" class="num">Id</th><th scope="col">Party</th><th scope="col">Countries</th><th scope="col">Reference</th><th scope="col">Added</th><th scope="col">Remove</th></tr></thead><tbody>"#);
        for e in list {
            let p = e.party.clone().unwrap_or_default();
            let _ = write!(
                body,
                r#"<tr><td class="num">{id}</td><td>{name}</td><td>{countries}</td><td>{reference}</td><td>{added}</td><td><form class="inline" method="post" action="/watch/{id}/remove" data-confirm="Stop watching this party?">{csrf}<button type="submit" class="secondary" aria-label="Remove watch entry {id}">Remove</button></form></td></tr>"#,
                id = e.id,
                name = esc(&p.name),
                countries = esc(&p.countries.join(", ")),
                reference = esc(&e.reference),
                added = iso_ms(e.added_at_ms),
            );
        }
        body.push_str("</tbody></table>");
    }
    let _ = write!(
        body,
        r#"<h2>Watch a party</h2><form method="post" action="/watch" id="watch-add">{csrf}<fieldset><legend>New entry</legend><div class="grid">
<div><label for="w-name">Name</label><input type="text" id="w-name" name="name" required></div>
<div><label for="w-countries">Countries</label><input type="text" id="w-countries" name="countries"></div>
<div><label for="w-ids">Identifiers <span class="hint">(one per line)</span></label><textarea id="w-ids" name="ids"></textarea></div>
<div><label for="w-ref">Your reference <span class="hint">(application or case number)</span></label><input type="text" id="w-ref" name="reference" required></div>
<div><label for="w-purpose">Purpose</label><select id="w-purpose" name="purpose"><option value="watch">Watch (licensing)</option><option value="investigation">Investigation (deconfliction)</option></select></div>
<div><label for="w-contact">Case contact <span class="hint">(investigations: shown to a peer on a hit)</span></label><input type="text" id="w-contact" name="contact"></div>
</div><p><button type="submit">Add</button></p></fieldset></form>"#
    );
    Ok(layout(state.agency(), "Watch lists", "/watch", &body))
}

/// `POST /watch`.
pub async fn add(
    state: Shared,
    Extension(session): Extension<Session>,
    Form(form): Form<PartyForm>,
) -> Result<Redirect, PageError> {
    check_csrf(&session, &form.csrf)?;
    let party = form.to_party()?;
    let r = state
        .op()
        .watch_add(WatchAddRequest {
            parties: vec![party_to_wire(&party)],
            reference: form.reference.clone(),
            purpose: form.purpose.clone(),
            contact: form.contact.clone(),
        })
        .await
        .map_err(|s| state.failed(&s))?
        .into_inner();
    let mut done = format!("Added; {} alert(s) raised now", r.alerts);
    for u in &r.unavailable {
        let _ = write!(done, "; not yet evaluated at {}: {}", u.peer, u.reason);
    }
    Ok(Redirect::to(&format!("/watch?done={}", url_part(&done))))
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// `POST /watch/{id}/remove`.
pub async fn remove(
    state: Shared,
    Extension(session): Extension<Session>,
    Path(id): Path<u64>,
    Form(form): Form<CsrfOnly>,
) -> Result<Redirect, PageError> {
    check_csrf(&session, &form.csrf)?;
    state
        .op()
        .watch_remove(WatchRemoveRequest { id })
        .await
        .map_err(|s| state.failed(&s))?;
    Ok(Redirect::to(&format!(
        "/watch?done={}",
        url_part(&format!("Watch entry {id} removed"))
    )))
}
