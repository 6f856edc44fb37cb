//! The operator's console in a real headless browser (Debian's chromium and
//! chromedriver), against a real three-node federation over mutual TLS: the
//! one-time token is required; a listed party screened from the form shows
//! its match; a batch uploaded as CSV is screened and its CSV report
//! downloaded; a false positive marked from a result is suppressed on the
//! next screening; a consultation is answered, and information asked for in
//! another is provided. A PNG of every page goes to
//! `target/console-screenshots/`.
//!
//! Skips, saying so, when chromium or chromedriver is not installed (`.ci/run`
//! installs them).

use std::path::PathBuf;
use std::time::Duration;

use tessera_node::notice::json::party_to_wire;
use tessera_node::party::Party;
use tessera_proto::v1::{
    ChangeNoticeRequest, ClearFalsePositiveRequest, ConsultOpenRequest, ConsultRespondRequest,
    ConsultShowRequest, ConsultView, IssueNoticeRequest, ListFalsePositivesRequest, ScreenRequest,
    ShowNoticeRequest, WatchAddRequest, change_notice_request::Change, consult_message::Kind,
};
use tessera_tests::fixtures::{denial, listed};
use tessera_tests::webdriver::{Browser, available, http};
use tessera_tests::*;

const A: &str = "DE-BAFA";
const B: &str = "FR-SBDU";
const C: &str = "US-BIS";

/// Watches the listed party at `node`; the alerts raised at once.
async fn watch(node: &LocalNode, reference: &str) -> u32 {
    node.operator()
        .expect("op")
        .watch_add(WatchAddRequest {
            parties: vec![party_to_wire(&listed())],
            reference: reference.into(),
            purpose: "watch".into(),
            contact: String::new(),
        })
        .await
        .expect("watch")
        .into_inner()
        .alerts
}

/// Whether `node` comes to hold consultation `id` in a view `seen` accepts,
/// within 15 seconds.
async fn consultation_at(node: &LocalNode, id: &str, seen: impl Fn(ConsultView) -> bool) -> bool {
    eventually(Duration::from_secs(15), || async {
        node.operator()
            .expect("op")
            .consult_show(ConsultShowRequest { id: id.to_owned() })
            .await
            .is_ok_and(|v| seen(v.into_inner()))
    })
    .await
}

/// Every field of the page in `browser` has a label (a `label for`, an
/// enclosing label or an `aria-label`): screen readers name each one.
async fn assert_labelled(browser: &Browser, page: &str) {
    let unlabelled = browser
        .script(
            "return Array.from(document.querySelectorAll('input:not([type=hidden]):not([type=submit]),select,textarea')).filter(function(e){return !(e.id && document.querySelector('label[for=\"'+e.id+'\"]')) && !e.getAttribute('aria-label') && !e.closest('label');}).map(function(e){return e.outerHTML;});",
        )
        .await
        .expect("script");
    assert_eq!(
        unlabelled,
        serde_json::json!([]),
        "{page}: fields without a label"
    );
}

fn shots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// The test's future is large in a debug build: run it on threads with room.
#[test]
fn the_console_screens_reviews_and_answers_in_a_real_browser() {
    let Some((chromium, chromedriver)) = available() else {
        eprintln!(
            "SKIPPED: the console browser test needs chromium and chromedriver (apt-get install chromium chromium-driver); .ci/run installs them"
        );
        return;
    };
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_stack_size(16 << 20)
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(Box::pin(browse(chromium, chromedriver)));
        })
        .expect("thread")
        .join()
        .expect("the browser test failed");
}

async fn browse(chromium: PathBuf, chromedriver: PathBuf) {
    let fed = reachable_federation(&[A, B, C], |cfg| {
        cfg.sync.pull_interval_ms = 300;
        cfg.privacy.contact = format!("{} export control desk", cfg.agency);
    })
    .await;
    let (a, b) = (&fed.nodes[0], &fed.nodes[1]);
    // B denies the listed party; A denies another, and B consults A about it.
    b.operator()
        .expect("op")
        .issue_notice(IssueNoticeRequest {
            notice: Some(denial("FR-1", &[listed()])),
        })
        .await
        .expect("B issues");
    let other = Party {
        name: "Minsk Optics Works".into(),
        countries: vec!["BY".into()],
        ..Party::default()
    };
    a.operator()
        .expect("op")
        .issue_notice(IssueNoticeRequest {
            notice: Some(denial("DE-7", &[other])),
        })
        .await
        .expect("A issues");
    assert!(
        index_replicated(a, B, 1).await,
        "A never received B's index"
    );
    let opened = b
        .operator()
        .expect("op")
        .consult_open(ConsultOpenRequest {
            denial_origin: A.into(),
            denial_serial: "DE-7".into(),
            summary: "2 lathes for Minsk, civil optics".into(),
            days: 0,
        })
        .await
        .expect("B consults A")
        .into_inner();
    let consultation = opened.consultation.expect("consultation").id;
    let arrived = consultation_at(a, &consultation, |_| true).await;
    assert!(arrived, "A never saw B's consultation");
    // A watches the listed party: an alert to review.
    let watched = watch(a, "APP-2026-0042").await;
    assert_eq!(watched, 1, "the watched party matches B's denial at once");

    // The console of A.
    let console = tessera_cli::console::Console::bind(
        a.cli.clone(),
        "127.0.0.1:0".parse().expect("addr"),
        false,
    )
    .await
    .expect("console");
    assert!(
        tessera_cli::console::Console::bind(
            a.cli.clone(),
            "0.0.0.0:0".parse().expect("addr"),
            false
        )
        .await
        .is_err(),
        "a non-loopback address needs --allow-remote"
    );
    let addr = console.addr().to_string();
    let url = console.url();
    let token = url.split("token=").nth(1).expect("token").to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(console.run(async {
        let _ = stopped.await;
    }));

    // Nothing without the token, nor with a wrong one.
    let (status, _, body) = http(&addr, "GET", "/", &[], None).await.expect("http");
    assert_eq!(status, 401, "a request without the token: {body}");
    let (status, _, _) = http(&addr, "GET", "/screen?token=00", &[], None)
        .await
        .expect("http");
    assert_eq!(status, 401, "a wrong token");
    let (status, _, _) = http(
        &addr,
        "GET",
        "/",
        &[("Cookie", "tessera_console=forged")],
        None,
    )
    .await
    .expect("http");
    assert_eq!(status, 401, "a forged cookie");

    let shots = shots();
    let browser = Browser::start(&chromium, &chromedriver)
        .await
        .expect("browser");
    browser.goto(&url).await.expect("open the link");
    browser
        .wait_for("Peers", Duration::from_secs(10))
        .await
        .expect("overview");
    assert!(
        !browser.url().await.expect("url").contains("token"),
        "the token is dropped from the address bar"
    );
    // The link is spent.
    let (status, _, _) = http(&addr, "GET", &format!("/?token={token}"), &[], None)
        .await
        .expect("http");
    assert_eq!(status, 401, "the token works once");
    browser
        .screenshot(&shots.join("01-overview.png"))
        .await
        .expect("shot");

    // One party, from the form.
    browser
        .goto(&format!("http://{addr}/screen"))
        .await
        .expect("screen");
    browser
        .screenshot(&shots.join("02-screen-form.png"))
        .await
        .expect("shot");
    assert_labelled(&browser, "screen").await;
    browser
        .type_into("#name", "Polotsk Steklovolokno OAO")
        .await
        .expect("name");
    browser
        .type_into("#countries", "BY")
        .await
        .expect("country");
    browser
        .type_into("#aliases", "Steklovolokno Polotsk")
        .await
        .expect("alias");
    browser
        .click("#screen-one button[type=submit]")
        .await
        .expect("submit");
    browser
        .wait_for("Screening results", Duration::from_secs(30))
        .await
        .expect("results");
    let results = browser.source().await.expect("source");
    assert!(results.contains("FR-SBDU/FR-1"), "the match: {results}");
    assert!(results.contains("badge bad\">match"), "marked as a match");
    assert!(
        results.contains("exact name") || results.contains("name"),
        "why it matched"
    );
    let job_url = browser.url().await.expect("url");
    browser
        .screenshot(&shots.join("03-screen-result.png"))
        .await
        .expect("shot");

    // A batch as CSV, and its report.
    let dir = tempfile::tempdir().expect("tmp");
    let batch = dir.path().join("parties.csv");
    std::fs::write(
        &batch,
        "name,kind,countries,aliases\nPolotsk Steklovolokno OAO,organisation,BY,\nHarbour Lights Bakery,organisation,IE,Harbour Lights\n",
    )
    .expect("batch");
    browser
        .goto(&format!("http://{addr}/screen"))
        .await
        .expect("screen");
    browser
        .type_into("#file", batch.to_str().expect("path"))
        .await
        .expect("choose file");
    browser
        .click("#screen-batch button[type=submit]")
        .await
        .expect("upload");
    browser
        .wait_for("Screening results", Duration::from_secs(30))
        .await
        .expect("batch results");
    browser
        .screenshot(&shots.join("04-batch-result.png"))
        .await
        .expect("shot");
    let csv = browser
        .script_async(
            "var done=arguments[arguments.length-1];var a=document.querySelector('a[href$=\"report.csv\"]');fetch(a.href,{credentials:'same-origin'}).then(function(r){return r.text().then(function(t){done(r.status+'\\n'+r.headers.get('content-disposition')+'\\n'+t);});}).catch(function(e){done('error '+e);});",
        )
        .await
        .expect("download")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        csv.starts_with("200\nattachment"),
        "the report downloads: {csv}"
    );
    assert!(csv.contains("parties,2"), "counts at the top: {csv}");
    assert!(csv.contains("with a match,1"), "{csv}");
    assert!(csv.contains("clear,1"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.contains("Polotsk Steklovolokno OAO") && l.contains("FR-SBDU/FR-1")),
        "one row per party and match: {csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.contains("Harbour Lights Bakery") && l.contains(",clear,")),
        "a clear party has its row: {csv}"
    );

    // A false positive from the first result: suppressed on the next screening.
    browser.goto(&job_url).await.expect("back to the result");
    browser
        .type_into(
            "form[action$=\"false-positive\"] input[name=reason]",
            "other registration, Polotsk plant closed 2019",
        )
        .await
        .expect("reason");
    browser
        .click("form[action$=\"false-positive\"] button[type=submit]")
        .await
        .expect("mark");
    browser
        .wait_for("Marked a false positive", Duration::from_secs(10))
        .await
        .expect("marked");
    browser
        .goto(&format!("http://{addr}/screen"))
        .await
        .expect("screen");
    browser
        .type_into("#name", "Polotsk Steklovolokno OAO")
        .await
        .expect("name");
    browser
        .type_into("#countries", "BY")
        .await
        .expect("country");
    browser
        .type_into("#aliases", "Steklovolokno Polotsk")
        .await
        .expect("alias");
    browser
        .click("#screen-one button[type=submit]")
        .await
        .expect("submit");
    browser
        .wait_for("Screening results", Duration::from_secs(30))
        .await
        .expect("results");
    let again = browser.source().await.expect("source");
    assert!(
        !again.contains("FR-SBDU/FR-1"),
        "the false positive is suppressed: {again}"
    );
    assert!(
        again.contains("not shown: marked false positive"),
        "and said so"
    );
    browser
        .screenshot(&shots.join("05-screen-suppressed.png"))
        .await
        .expect("shot");
    // The watch list leaves the pair out too: the same party watched again raises nothing.
    assert_eq!(
        watch(a, "APP-2026-0043").await,
        0,
        "a false positive raises no watch alert"
    );

    // Alerts: the watch hit, and the false positive listed for undo.
    browser
        .goto(&format!("http://{addr}/alerts?show=all"))
        .await
        .expect("alerts");
    browser
        .wait_for("False positives", Duration::from_secs(5))
        .await
        .expect("alerts page");
    let alerts = browser.source().await.expect("source");
    assert!(
        alerts.contains("APP-2026-0042"),
        "the watch alert: {alerts}"
    );
    assert!(
        alerts.contains("other registration"),
        "the false positive's reason"
    );
    browser
        .screenshot(&shots.join("06-alerts.png"))
        .await
        .expect("shot");
    assert_labelled(&browser, "alerts").await;
    browser
        .click("form[action$=\"/review\"] button[type=submit]")
        .await
        .expect("acknowledge");
    browser
        .wait_for("acknowledged", Duration::from_secs(5))
        .await
        .expect("ack");

    // Answer B's consultation.
    browser
        .goto(&format!("http://{addr}/consultations"))
        .await
        .expect("consultations");
    browser
        .wait_for(&consultation, Duration::from_secs(5))
        .await
        .expect("listed");
    browser
        .screenshot(&shots.join("07-consultations.png"))
        .await
        .expect("shot");
    browser
        .click(&format!("a[href=\"/consultations/{consultation}\"]"))
        .await
        .expect("open it");
    browser
        .wait_for("Transaction summary", Duration::from_secs(5))
        .await
        .expect("detail");
    browser
        .type_into("#answer-text", "same end user as our denial DE-7")
        .await
        .expect("text");
    browser
        .script("document.getElementById('answer-kind').value='objection';")
        .await
        .expect("choose objection");
    browser
        .click("#answer button[type=submit]")
        .await
        .expect("answer");
    browser
        .wait_for("Answer sent", Duration::from_secs(10))
        .await
        .expect("answered");
    browser
        .screenshot(&shots.join("08-consultation.png"))
        .await
        .expect("shot");
    let answered = consultation_at(b, &consultation, |v| {
        v.consultation
            .and_then(|c| c.answer)
            .is_some_and(|a| a.answer == "objection")
    })
    .await;
    assert!(answered, "B never received A's answer");

    // A consults B about FR-1; B asks for more information; A provides it
    // from the console.
    let ours = a
        .operator()
        .expect("op")
        .consult_open(ConsultOpenRequest {
            denial_origin: B.into(),
            denial_serial: "FR-1".into(),
            summary: "furnace parts for a glass fibre plant in BY".into(),
            days: 0,
        })
        .await
        .expect("A consults B")
        .into_inner()
        .consultation
        .expect("consultation")
        .id;
    let at_b = consultation_at(b, &ours, |_| true).await;
    assert!(at_b, "B never saw A's consultation");
    b.operator()
        .expect("op")
        .consult_respond(ConsultRespondRequest {
            id: ours.clone(),
            answer: "more-information".into(),
            text: "Which plant receives the parts?".into(),
        })
        .await
        .expect("B asks");
    let asked = consultation_at(a, &ours, |v| v.state == "answered").await;
    assert!(asked, "A never received B's question");
    browser
        .goto(&format!("http://{addr}/consultations/{ours}"))
        .await
        .expect("our consultation");
    browser
        .wait_for("Which plant receives the parts?", Duration::from_secs(5))
        .await
        .expect("the question");
    browser
        .type_into(
            "#inform-text",
            "The plant in Navapolatsk, civil production.",
        )
        .await
        .expect("information");
    browser
        .click("#inform button[type=submit]")
        .await
        .expect("send information");
    browser
        .wait_for("Information sent", Duration::from_secs(10))
        .await
        .expect("informed");
    browser
        .screenshot(&shots.join("08b-consultation-information.png"))
        .await
        .expect("shot");
    assert_labelled(&browser, "consultation").await;
    let informed = consultation_at(b, &ours, |v| {
        v.state == "open"
            && v.consultation.is_some_and(|c| {
                c.steps.iter().any(
                    |s| matches!(&s.kind, Some(Kind::Inform(i)) if i.text.contains("Navapolatsk")),
                )
            })
    })
    .await;
    assert!(informed, "B never received the information");

    // B renews its denial: a second version to compare side by side.
    b.operator()
        .expect("op")
        .change_notice(ChangeNoticeRequest {
            serial: "FR-1".into(),
            change: Some(Change::RenewUntil("2029-12-31".into())),
        })
        .await
        .expect("renew");
    let renewed = eventually(Duration::from_secs(15), || async {
        a.operator()
            .expect("op")
            .show_notice(ShowNoticeRequest {
                origin: B.into(),
                serial: "FR-1".into(),
            })
            .await
            .is_ok_and(|r| r.into_inner().versions.len() == 2)
    })
    .await;
    assert!(renewed, "A never received the renewal");

    // The other pages render.
    for (path, shot, expect) in [
        ("/notices?list=control", "09-notices.png", "FR-SBDU/FR-1"),
        (
            "/notices/FR-SBDU/FR-1",
            "10-notice-versions.png",
            "Version 1",
        ),
        ("/watch", "11-watch.png", "APP-2026-0042"),
        (
            "/heatmap?group=all-dev",
            "12-heatmap.png",
            "Overlap between the lists of all-dev",
        ),
        ("/audit", "13-audit.png", "The chain verifies"),
    ] {
        browser
            .goto(&format!("http://{addr}{path}"))
            .await
            .expect(path);
        browser
            .wait_for(expect, Duration::from_secs(20))
            .await
            .expect(path);
        browser.screenshot(&shots.join(shot)).await.expect("shot");
        assert_labelled(&browser, path).await;
    }
    let audit = browser
        .script_async(
            "var done=arguments[arguments.length-1];fetch('/audit/export.jsonl',{credentials:'same-origin'}).then(function(r){return r.text();}).then(done).catch(function(e){done('error '+e);});",
        )
        .await
        .expect("export")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        audit.contains("false_positive"),
        "the false positive is audited"
    );
    assert!(
        !audit.to_lowercase().contains("polotsk"),
        "the audit chain holds no party name"
    );
    // A POST without the session's CSRF token is refused, even with the cookie.
    let refused = browser
        .script_async(
            "var done=arguments[arguments.length-1];fetch('/watch/1/remove',{method:'POST',credentials:'same-origin',headers:{'Content-Type':'application/x-www-form-urlencoded'},body:'csrf=nope'}).then(function(r){done(r.status);});",
        )
        .await
        .expect("post");
    assert_eq!(refused, serde_json::json!(403), "CSRF");

    // Cleared, the pair is screened again.
    let mut op = a.operator().expect("op");
    let marked = op
        .list_false_positives(ListFalsePositivesRequest {})
        .await
        .expect("list")
        .into_inner()
        .false_positives;
    assert_eq!(marked.len(), 1);
    op.clear_false_positive(ClearFalsePositiveRequest {
        party_digest: marked[0].party_digest.clone(),
        origin: B.into(),
        serial: "FR-1".into(),
    })
    .await
    .expect("clear");
    let screened = op
        .screen(ScreenRequest {
            parties: vec![party_to_wire(&listed())],
            threshold: 0.0,
        })
        .await
        .expect("screen")
        .into_inner();
    assert!(
        screened.results[0]
            .matches
            .iter()
            .any(|m| m.serial == "FR-1"),
        "cleared, the match is back"
    );
    assert!(screened.suppressed.is_empty());

    drop(browser);
    let _ = stop.send(());
    server.await.expect("join").expect("console stops cleanly");
    eprintln!("console screenshots in {}", shots.display());
    fed.shutdown().await.expect("shutdown");
}
