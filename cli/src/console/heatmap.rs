//! The Heat map page: how much of our list each peer's list covers (shares
//! of our match keys, as bars), and for a sharing group the pairwise overlap
//! as a matrix coloured by share, with a legend. Counts only: neither side
//! learns which keys are shared.

use std::fmt::Write as _;

use axum::extract::Query;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use tessera_proto::v1::{HarmoniseRequest, HarmoniseResponse, OverlapRequest, StatusRequest};

use super::page::{esc, layout, message, url_part};
use super::{PageError, Shared};

#[derive(Debug, Default, Deserialize)]
pub struct GroupQuery {
    #[serde(default)]
    group: String,
}

/// A colour from light (0) to dark blue (1): readable text on both ends.
fn shade(t: f64) -> (String, &'static str) {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    let colour = format!(
        "rgb({},{},{})",
        lerp(239.0, 8.0),
        lerp(243.0, 48.0),
        lerp(255.0, 107.0)
    );
    (colour, if t > 0.5 { "#fff" } else { "#1b1f24" })
}

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

/// Bars: the share of our keys found in each peer's list.
/// One peer's figure: (keys of ours found, our keys), or why there is none.
type Figure = Result<(u64, u64), String>;

fn bars(rows: &[(String, Figure)]) -> String {
    let row_h = 34;
    let (label_w, bar_w) = (150, 520);
    let h = 40 + row_h * rows.len() as i32;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="bars-title" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="system-ui,sans-serif" font-size="14"><title id="bars-title">Share of our match keys found in each peer's list</title>"#,
        w = label_w + bar_w + 190
    );
    for (i, (peer, figure)) in rows.iter().enumerate() {
        let y = 10 + row_h * i as i32;
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_w - 8,
            y + 20,
            esc(peer)
        );
        let _ = write!(
            svg,
            r##"<rect x="{label_w}" y="{}" width="{bar_w}" height="24" fill="#eef1f5" stroke="#c9ced6"/>"##,
            y + 4
        );
        match figure {
            Ok((count, keys)) => {
                let share = pct(*count, *keys);
                let (fill, _) = shade(0.35 + share * 0.65);
                let _ = write!(
                    svg,
                    r#"<rect x="{label_w}" y="{}" width="{:.1}" height="24" fill="{fill}"/><text x="{}" y="{}">{:.1}% ({count} of {keys} keys)</text>"#,
                    y + 4,
                    share * f64::from(bar_w),
                    label_w + bar_w + 8,
                    y + 20,
                    share * 100.0
                );
            }
            Err(_) => {
                let _ = write!(
                    svg,
                    r##"<text x="{}" y="{}" fill="#a3120b">no figure</text>"##,
                    label_w + bar_w + 8,
                    y + 20
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The share of a cell: of the smaller of the two lists whose size we know.
fn cell_share(r: &HarmoniseResponse, a: &str, b: &str, count: u64) -> Option<f64> {
    let sizes: Vec<u64> = [a, b]
        .iter()
        .filter_map(|m| r.keys.get(*m).copied())
        .filter(|k| *k > 0)
        .collect();
    sizes.into_iter().min().map(|k| pct(count, k))
}

/// The group's matrix as SVG, with a legend.
pub fn matrix_svg(group: &str, r: &HarmoniseResponse) -> String {
    let n = r.members.len();
    let m = crate::matching::matrix(r);
    let cell = 120;
    let left = 130;
    let top = 70;
    let w = left + cell * n as i32 + 40;
    let h = top + cell * n as i32 + 110;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="hm-title" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="system-ui,sans-serif" font-size="14"><title id="hm-title">Overlap of match keys between the members of {g}</title><text x="{left}" y="24" font-size="16" font-weight="600">Overlap between the lists of {g}</text>"#,
        g = esc(group)
    );
    for (i, member) in r.members.iter().enumerate() {
        let x = left + cell * i as i32 + cell / 2;
        let _ = write!(
            svg,
            r#"<text x="{x}" y="{}" text-anchor="middle" font-weight="600">{}</text><text x="{}" y="{}" text-anchor="end" font-weight="600">{}</text>"#,
            top - 10,
            esc(member),
            left - 8,
            top + cell * i as i32 + cell / 2 + 5,
            esc(member)
        );
    }
    for (i, row) in m.iter().enumerate() {
        for (j, value) in row.iter().enumerate() {
            let (x, y) = (left + cell * j as i32, top + cell * i as i32);
            let (fill, ink, line1, line2) = if i == j {
                let keys = r
                    .keys
                    .get(&r.members[i])
                    .map_or_else(|| "own list".to_owned(), |k| format!("{k} keys"));
                ("#f3f5f8".to_owned(), "#4a5360", "—".to_owned(), keys)
            } else {
                match value {
                    None => (
                        "#e4e4e4".to_owned(),
                        "#a3120b",
                        "no figure".to_owned(),
                        String::new(),
                    ),
                    Some(c) => {
                        let share = cell_share(r, &r.members[i], &r.members[j], *c);
                        let (fill, ink) = shade(share.unwrap_or(0.0));
                        (
                            fill,
                            ink,
                            format!("{c} shared"),
                            share.map_or_else(String::new, |s| format!("{:.1}%", s * 100.0)),
                        )
                    }
                }
            };
            let _ = write!(
                svg,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="#fff" stroke-width="2"/><text x="{cx}" y="{ty}" text-anchor="middle" fill="{ink}" font-size="15" font-weight="600">{l1}</text><text x="{cx}" y="{ty2}" text-anchor="middle" fill="{ink}">{l2}</text>"##,
                cx = x + cell / 2,
                ty = y + cell / 2 - 2,
                ty2 = y + cell / 2 + 18,
                l1 = esc(&line1),
                l2 = esc(&line2),
            );
        }
    }
    // Legend: the colour scale of shares.
    let ly = top + cell * n as i32 + 30;
    let _ = write!(
        svg,
        r##"<defs><linearGradient id="scale"><stop offset="0" stop-color="{}"/><stop offset="1" stop-color="{}"/></linearGradient></defs><text x="{left}" y="{}">Share of the smaller list (where its size is known)</text><rect x="{left}" y="{}" width="240" height="16" fill="url(#scale)" stroke="#c9ced6"/><text x="{left}" y="{}">0%</text><text x="{}" y="{}" text-anchor="middle">50%</text><text x="{}" y="{}" text-anchor="end">100%</text>"##,
        shade(0.0).0,
        shade(1.0).0,
        ly,
        ly + 8,
        ly + 42,
        left + 120,
        ly + 42,
        left + 240,
        ly + 42
    );
    svg.push_str("</svg>");
    svg
}

async fn harmonise(state: &Shared, group: &str) -> Result<HarmoniseResponse, PageError> {
    state
        .op()
        .harmonise(HarmoniseRequest {
            group: group.to_owned(),
        })
        .await
        .map_err(|s| state.failed(&s))
        .map(tonic::Response::into_inner)
}

/// `GET /heatmap?group=G`.
pub async fn page(state: Shared, Query(q): Query<GroupQuery>) -> Result<Html<String>, PageError> {
    let status = state
        .op()
        .status(StatusRequest {})
        .await
        .map_err(|s| state.failed(&s))?
        .into_inner();
    let mut rows = Vec::new();
    for p in &status.peers {
        let figure = state
            .op()
            .overlap(OverlapRequest {
                peer: p.agency.clone(),
            })
            .await
            .map(|r| (r.get_ref().count, r.get_ref().keys))
            .map_err(|s| s.message().to_owned());
        rows.push((p.agency.clone(), figure));
    }
    let mut body = String::from(
        "<p>Counts only: an overlap is computed privately, and neither side learns which keys are shared.</p><h2>Our list found in each peer's list</h2>",
    );
    let _ = write!(body, "<figure>{}</figure>", bars(&rows));
    for (peer, figure) in &rows {
        if let Err(reason) = figure {
            body.push_str(&message("warn", &format!("No figure for {peer}: {reason}")));
        }
    }
    let _ = write!(
        body,
        r#"<h2>A sharing group</h2><form method="get" action="/heatmap" class="inline"><label for="group">Group (from node.toml [groups])</label><input type="text" id="group" name="group" value="{}" style="width:14em"><button type="submit">Show</button></form>"#,
        esc(&q.group)
    );
    if !q.group.trim().is_empty() {
        match harmonise(&state, q.group.trim()).await {
            Ok(r) => {
                let _ = write!(body, "<figure>{}</figure>", matrix_svg(q.group.trim(), &r));
                for c in r.cells.iter().filter(|c| !c.problem.is_empty()) {
                    body.push_str(&message(
                        "warn",
                        &format!("{} ~ {}: no figure ({})", c.a, c.b, c.problem),
                    ));
                }
                let _ = write!(
                    body,
                    r#"<p><a href="/heatmap.svg?group={}" download>Download the chart (SVG)</a></p>"#,
                    url_part(q.group.trim())
                );
            }
            Err(e) => body.push_str(&message("bad", &e.to_string())),
        }
    }
    Ok(layout(state.agency(), "Heat map", "/heatmap", &body))
}

/// `GET /heatmap.svg?group=G`.
pub async fn svg(state: Shared, Query(q): Query<GroupQuery>) -> Result<Response, PageError> {
    let r = harmonise(&state, q.group.trim()).await?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml")],
        matrix_svg(q.group.trim(), &r),
    )
        .into_response())
}
