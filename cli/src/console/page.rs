//! The page frame every console page shares: navigation, inline CSS and
//! script, HTML escaping, ISO 8601 times, the CSRF field of a form.

use std::fmt::Write as _;

use axum::response::Html;

use super::auth::Session;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment or query value.
pub fn url_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Unix milliseconds as ISO 8601 with the zone (RFC 3339, UTC, to the second).
pub fn iso_ms(ms: i64) -> String {
    if ms <= 0 {
        return "never".to_owned();
    }
    iso_s(ms.div_euclid(1000))
}

/// Unix seconds as ISO 8601 with the zone.
pub fn iso_s(s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(s)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".to_owned())
}

/// The hidden field that ties a POST form to the session.
pub fn csrf_field(session: &Session) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        esc(&session.csrf)
    )
}

/// The sections of the console, in the navigation's order: (path, label).
const NAV: [(&str, &str); 8] = [
    ("/", "Overview"),
    ("/screen", "Screen"),
    ("/alerts", "Alerts"),
    ("/consultations", "Consultations"),
    ("/notices", "Notices"),
    ("/watch", "Watch lists"),
    ("/heatmap", "Heat map"),
    ("/audit", "Audit"),
];

const CSS: &str = r#"
:root{--fg:#1b1f24;--muted:#4a5360;--bg:#fff;--line:#c9ced6;--accent:#0b4f9c;--bad:#a3120b;--badbg:#fde8e7;--warn:#7a4b00;--warnbg:#fff3d6;--ok:#155d27;--okbg:#e3f4e6;--soft:#f3f5f8}
*{box-sizing:border-box}
body{margin:0;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
a:focus,button:focus,input:focus,select:focus,textarea:focus,summary:focus{outline:3px solid #f2a900;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px 8px;z-index:9}
header{background:#14284b;color:#fff;padding:0 16px;display:flex;align-items:center;gap:24px;flex-wrap:wrap}
header .brand{font-weight:700;padding:12px 0}
header .agency{margin-left:auto;font-size:14px;opacity:.9}
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap}
nav a{display:block;color:#fff;text-decoration:none;padding:12px 10px;border-bottom:3px solid transparent}
nav a[aria-current=page]{border-bottom-color:#f2a900;font-weight:600}
nav a:hover{background:#20396a}
main{max-width:1280px;margin:0 auto;padding:16px 20px 48px}
h1{font-size:26px;margin:8px 0 16px}h2{font-size:20px;margin:24px 0 8px}h3{font-size:17px;margin:16px 0 6px}
table{border-collapse:collapse;width:100%;margin:8px 0 16px;font-size:15px}
th,td{border:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{background:var(--soft)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:12px;margin:8px 0 16px}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 14px;background:var(--soft)}
.card .big{font-size:28px;font-weight:700}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:13px;font-weight:600;border:1px solid currentColor;white-space:nowrap}
.bad{color:var(--bad);background:var(--badbg)}.warn{color:var(--warn);background:var(--warnbg)}.ok{color:var(--ok);background:var(--okbg)}.muted{color:var(--muted)}
tr.bad td{background:var(--badbg)}tr.warn td{background:var(--warnbg)}tr.unread td:first-child{border-left:5px solid #f2a900}
.code{white-space:nowrap}
figure{margin:8px 0 16px;overflow-x:auto}
form.inline{display:inline-flex;gap:6px;align-items:center;flex-wrap:wrap;margin:2px 0}
fieldset{border:1px solid var(--line);border-radius:6px;margin:0 0 16px;padding:10px 14px}
legend{font-weight:600;padding:0 4px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:10px 16px}
label{display:block;font-weight:600;font-size:14px;margin-bottom:2px}
.hint{font-weight:400;color:var(--muted);font-size:13px}
input[type=text],input[type=number],input[type=search],select,textarea{width:100%;padding:6px 8px;border:1px solid #7d8590;border-radius:4px;font:inherit}
textarea{min-height:64px}
button{font:inherit;padding:6px 14px;border-radius:4px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
button.secondary{background:#fff;color:var(--accent)}
button.danger{background:var(--bad);border-color:var(--bad)}
.notice-box{border-left:4px solid var(--accent);background:var(--soft);padding:8px 12px;margin:8px 0 16px}
.notice-box.bad{border-color:var(--bad)}.notice-box.ok{border-color:var(--ok)}.notice-box.warn{border-color:var(--warn)}
progress{width:100%;height:22px}
.why{font-weight:600}
td.changed{background:#fff3d6;font-weight:600}
details{margin:4px 0}
pre{white-space:pre-wrap;background:var(--soft);padding:8px;border-radius:4px;font-size:14px}
footer{color:var(--muted);font-size:13px;text-align:center;padding:16px}
"#;

const SCRIPT: &str = r"
document.querySelectorAll('form[data-confirm]').forEach(function(f){
  f.addEventListener('submit',function(e){if(!confirm(f.getAttribute('data-confirm'))){e.preventDefault();}});
});
document.querySelectorAll('[data-autorefresh]').forEach(function(el){
  var url=el.getAttribute('data-autorefresh');
  var timer=setInterval(function(){
    fetch(url,{credentials:'same-origin'}).then(function(r){return r.json();}).then(function(j){
      var bar=el.querySelector('progress');if(bar){bar.value=j.done;bar.max=j.total;}
      var txt=el.querySelector('[data-progress-text]');if(txt){txt.textContent=j.done+' of '+j.total+' parties screened';}
      if(j.finished){clearInterval(timer);location.reload();}
    }).catch(function(){});
  },700);
});
";

/// A whole page: `title` in the head and as the heading, `active` the
/// navigation path it belongs to.
pub fn layout(agency: &str, title: &str, active: &str, body: &str) -> Html<String> {
    layout_with_head(agency, title, active, "", body)
}

/// [`layout`] with extra `<head>` content (a refresh while a job runs).
pub fn layout_with_head(
    agency: &str,
    title: &str,
    active: &str,
    head: &str,
    body: &str,
) -> Html<String> {
    let mut nav = String::new();
    for (path, label) in NAV {
        let current = if path == active {
            r#" aria-current="page""#
        } else {
            ""
        };
        let _ = write!(nav, r#"<li><a href="{path}"{current}>{label}</a></li>"#);
    }
    let now = iso_s(time::OffsetDateTime::now_utc().unix_timestamp());
    Html(format!(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title} · Tessera console</title>{head}<style>{CSS}</style></head>
<body><a class="skip" href="#main">Skip to content</a>
<header><span class="brand">Tessera console</span><nav aria-label="Sections"><ul>{nav}</ul></nav><span class="agency">Agency {agency}</span></header>
<main id="main"><h1>{title}</h1>
{body}
</main><footer>Page built {now}. Times are ISO 8601 in UTC.</footer>
<script>{SCRIPT}</script></body></html>"##,
        title = esc(title),
        agency = esc(agency),
    ))
}

/// A one-line message box: `class` is `ok`, `warn` or `bad`.
pub fn message(class: &str, text: &str) -> String {
    format!(
        r#"<div class="notice-box {class}" role="status">{}</div>"#,
        esc(text)
    )
}

/// The `?done=` query of a page a form redirected to.
#[derive(Debug, serde::Deserialize)]
pub struct Done {
    pub done: Option<String>,
}

/// The flash message carried in a `?done=` query after a form's redirect.
pub fn flash(done: Option<&str>) -> String {
    done.filter(|d| !d.is_empty())
        .map(|d| message("ok", d))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_times_carry_their_zone() {
        assert_eq!(
            esc(r#"<a href="x">O'Brien & Co</a>"#),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Brien &amp; Co&lt;/a&gt;"
        );
        assert_eq!(url_part("DE-BAFA/1 2"), "DE-BAFA%2F1%202");
        assert_eq!(iso_ms(1_764_000_000_123), "2025-11-24T16:00:00Z");
        assert_eq!(iso_ms(0), "never");
    }
}
