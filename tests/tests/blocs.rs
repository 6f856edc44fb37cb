//! Regional blocs between real nodes over mutual TLS: a charter missing a
//! signature is refused; a bloc denial makes another member's application
//! check answer consult for an essentially identical application and clear
//! for a different control entry or destination; the undercut notice
//! reaches the denying member; the pilot report holds no party data;
//! trusted-operator records need consent, and a suspension reaches every
//! member and changes its answer; a member outside the bloc gets nothing;
//! consultation deadlines skip the charter's holidays; the annual-report
//! export counts decisions by item category and destination.

use std::collections::BTreeMap;
use std::time::Duration;

use tessera_cli::bloc::AnnualFormat;
use tessera_cli::federation::LocalFederation;
use tessera_node::bloc::json::{ApplicationJson, CharterJson};
use tessera_node::consult::deadline::WorkCalendar;
use tessera_node::notice::dates;
use tessera_node::notice::json::{ItemJson, RoledPartyJson, party_to_wire};
use tessera_node::party::{Party, PartyId, PartyKind};
use tessera_node::policy::DisclosureLevel;
use tessera_proto::v1::{
    ApplicationCheckRequest, ApplicationCheckResponse, BlocSignRequest, BlocStatusRequest,
    ConsultDecideRequest, ConsultRespondRequest, ConsultShowRequest, DenialAction, DenialNotice,
    IssueNoticeRequest, ListNoticesRequest, Marking, Notice, NoticeStatus, PartyRole, RegimeBasis,
    RoledParty, notice::Body,
};
use tessera_tests::*;

const A: &str = "DE-BAFA";
const B: &str = "FR-SBDU";
const C: &str = "NL-CDIU";
const OUT: &str = "US-BIS";
const MEMBERS: [&str; 3] = [A, B, C];

const DENIED: &str = "Example Precision Engineering Co., Ltd.";
const DENIED_LEI: &str = "529900T8BM49AURSDO55";
const TRUSTED: &str = "Example Logistics B.V.";
const ANNUAL_PARTY: &str = "Annual Report Example Trading LLC";
const ANNUAL_LEI: &str = "5493001KJTIIGC8Y1R12";
const TRUSTED_EORI: &str = "NL123456789";

/// Members A, B, C in group `eu` with summary disclosure; OUT is a peer of
/// everyone but in no group. Grant notices stay local by configuration.
async fn federation() -> LocalFederation {
    reachable_federation(&[A, B, C, OUT], |cfg| {
        cfg.privacy.default_disclosure = DisclosureLevel::Summary;
        cfg.consult.grant_notice_to = "local".into();
        cfg.sync.pull_interval_ms = 300;
        if MEMBERS.contains(&cfg.agency.as_str()) {
            let others = MEMBERS
                .iter()
                .filter(|m| **m != cfg.agency)
                .map(|m| (*m).to_owned())
                .collect();
            cfg.groups.insert("eu".into(), others);
        }
    })
    .await
}

/// A holiday of A inside every consultation window opened today: the
/// second working day from today.
fn holiday_of_a() -> time::Date {
    WorkCalendar::default().add_working_days(dates::today(), 2)
}

/// The deadline of a consultation with A opened today: A's charter
/// holidays do not count.
fn deadline_with_a(days: u32) -> String {
    let holidays =
        ["2026-12-25", &dates::format(holiday_of_a())].map(|d| dates::parse(d).expect("date"));
    dates::format(WorkCalendar::new(holidays).add_working_days(dates::today(), days))
}

fn charter(days: u32) -> CharterJson {
    CharterJson {
        bloc: "eu".into(),
        version: 1,
        members: MEMBERS.iter().map(|m| (*m).to_owned()).collect(),
        recognised: vec!["denial".into(), "trusted".into()],
        disclosure: "summary".into(),
        consult_days: days,
        holidays: BTreeMap::from([(
            A.to_owned(),
            vec!["2026-12-25".to_owned(), dates::format(holiday_of_a())],
        )]),
        identical_rule: "identical-v1".into(),
        pilot_counts: vec![],
    }
}

async fn sign(fed: &LocalFederation, i: usize, c: &CharterJson) {
    fed.nodes[i]
        .operator()
        .expect("op")
        .bloc_sign(BlocSignRequest {
            charter: Some(c.to_wire()),
        })
        .await
        .expect("sign");
}

/// Waits until member `i` holds the charter in force.
async fn wait_in_force(fed: &LocalFederation, i: usize) {
    let ok = eventually(Duration::from_secs(10), || async {
        fed.nodes[i]
            .operator()
            .expect("op")
            .bloc_status(BlocStatusRequest { bloc: "eu".into() })
            .await
            .is_ok_and(|r| r.into_inner().in_force == 1)
    })
    .await;
    assert!(ok, "member {i} never saw the charter in force");
}

/// Every member signs the same charter, and each sees it in force.
async fn signed_bloc() -> LocalFederation {
    let fed = federation().await;
    for i in 0..3 {
        sign(&fed, i, &charter(10)).await;
    }
    for i in 0..3 {
        wait_in_force(&fed, i).await;
    }
    fed
}

fn org(name: &str, country: &str, id: (&str, &str)) -> Party {
    Party {
        kind: PartyKind::Organisation,
        name: name.into(),
        countries: vec![country.into()],
        ids: vec![PartyId {
            id_type: id.0.into(),
            value: id.1.into(),
            country: None,
        }],
        ..Party::default()
    }
}

fn bloc_denial() -> Notice {
    Notice {
        serial: "BAFA-AZ-2026-0117".into(),
        marking: Marking::Amber as i32,
        distribution: Some(tessera_node::policy::parse_to("group:eu").expect("to")),
        body: Some(Body::Denial(DenialNotice {
            authority_reference: "BAFA-AZ-2026-0117".into(),
            regime_basis: RegimeBasis::EuDualUse as i32,
            action: DenialAction::Refuse as i32,
            decision_date: "2026-03-02".into(),
            items: vec![tessera_proto::v1::Item {
                control_entry: "2B001.b".into(),
                ..Default::default()
            }],
            parties: vec![RoledParty {
                role: PartyRole::EndUser as i32,
                party: Some(party_to_wire(&org(DENIED, "CN", ("LEI", DENIED_LEI)))),
            }],
            destination: "CN".into(),
            status: NoticeStatus::InForce as i32,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn application(
    reference: &str,
    entry: &str,
    destination: &str,
    parties: Vec<Party>,
) -> ApplicationJson {
    ApplicationJson {
        reference: reference.into(),
        parties: parties
            .into_iter()
            .map(|party| RoledPartyJson {
                role: "end-user".into(),
                party,
            })
            .collect(),
        items: vec![ItemJson {
            control_entry: entry.into(),
            ..ItemJson::default()
        }],
        destination: destination.into(),
        end_use: String::new(),
        received_on: String::new(),
    }
}

async fn check(
    fed: &LocalFederation,
    i: usize,
    app: &ApplicationJson,
    consult: bool,
) -> Result<ApplicationCheckResponse, tonic::Status> {
    fed.nodes[i]
        .operator()
        .expect("op")
        .application_check(ApplicationCheckRequest {
            bloc: "eu".into(),
            application: Some(app.to_wire().expect("application")),
            consult,
            threshold: 0.0,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Checks until the answer is `want` (replication takes a moment).
async fn answers(
    fed: &LocalFederation,
    i: usize,
    app: &ApplicationJson,
    want: &str,
) -> ApplicationCheckResponse {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = check(fed, i, app, false).await.expect("check");
        if r.answer == want {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "member {i} answered {} instead of {want}: {:?}",
            r.answer,
            r.reasons
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_charter_missing_a_signature_is_refused() {
    run_e2e(a_charter_missing_a_signature_is_refused_body());
}

async fn a_charter_missing_a_signature_is_refused_body() {
    let fed = federation().await;
    sign(&fed, 0, &charter(10)).await;
    sign(&fed, 1, &charter(10)).await;
    // C signs a charter with another deadline: not the same charter.
    sign(&fed, 2, &charter(20)).await;
    let app = application(
        "APP-1",
        "2B001",
        "CN",
        vec![org("Some Buyer Ltd", "CN", ("LEI", DENIED_LEI))],
    );

    let seen = eventually(Duration::from_secs(10), || async {
        fed.nodes[0]
            .operator()
            .expect("op")
            .bloc_status(BlocStatusRequest { bloc: "eu".into() })
            .await
            .is_ok_and(|r| r.into_inner().versions.len() == 2)
    })
    .await;
    assert!(seen, "A never received C's charter");
    let status = fed.nodes[0]
        .operator()
        .expect("op")
        .bloc_status(BlocStatusRequest { bloc: "eu".into() })
        .await
        .expect("status")
        .into_inner();
    assert_eq!(status.in_force, 0);
    assert!(status.versions.iter().all(|v| !v.complete));
    assert!(
        status.versions.iter().any(|v| v.missing == [C]),
        "{status:?}"
    );

    let refused = check(&fed, 0, &app, false)
        .await
        .expect_err("no charter in force");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("not signed by"),
        "{}",
        refused.message()
    );

    // C signs the charter the others signed: it comes into force at A.
    sign(&fed, 2, &charter(10)).await;
    wait_in_force(&fed, 0).await;
    let r = answers(&fed, 0, &app, "clear").await;
    assert_eq!(r.charter_version, 1);
    assert_eq!(r.rule, "identical-v1");
    let mut out = Vec::new();
    let printed = tessera_cli::bloc::status(&fed.nodes[0].cli, "eu", false, &mut out)
        .await
        .expect("bloc status");
    assert_eq!(printed.in_force, 1);
    assert!(String::from_utf8_lossy(&out).contains("signed by every member"));
    // Its coming into force is audited once, however often it is acted on.
    check(&fed, 0, &app, false).await.expect("check again");
    let mut audit = Vec::new();
    tessera_cli::audit::export(&fed.nodes[0].cli, None, &mut audit)
        .await
        .expect("export");
    let adopted = String::from_utf8_lossy(&audit)
        .lines()
        .filter(|l| l.contains("\"action\":\"bloc_charter\""))
        .count();
    assert_eq!(adopted, 1);
    fed.shutdown().await.expect("shutdown");
}

#[test]
fn a_bloc_denial_calls_for_consultation_only_when_essentially_identical() {
    run_e2e(a_bloc_denial_calls_for_consultation_only_when_essentially_identical_body());
}

async fn a_bloc_denial_calls_for_consultation_only_when_essentially_identical_body() {
    let fed = signed_bloc().await;
    fed.nodes[0]
        .operator()
        .expect("op")
        .issue_notice(IssueNoticeRequest {
            notice: Some(bloc_denial()),
        })
        .await
        .expect("A denies");
    let buyer = org(
        "Precision Engineering Example Company",
        "CN",
        ("LEI", DENIED_LEI),
    );

    let same = application("FR-APP-1", "2B001.a", "CN", vec![buyer.clone()]);
    let r = answers(&fed, 1, &same, "consult").await;
    let d = r
        .denials
        .iter()
        .find(|d| d.identical)
        .expect("identical denial");
    assert_eq!(
        (d.member.as_str(), d.serial.as_str()),
        (A, "BAFA-AZ-2026-0117")
    );
    assert!(d.why.contains("same destination"), "{d:?}");
    // A's holiday from the charter falls inside the window: one day later.
    assert_eq!(d.deadline, deadline_with_a(10));
    assert_ne!(
        d.deadline,
        dates::format(WorkCalendar::default().add_working_days(dates::today(), 10))
    );

    let other_entry = application("FR-APP-2", "5A002", "CN", vec![buyer.clone()]);
    let r = check(&fed, 1, &other_entry, false).await.expect("check");
    assert_eq!(r.answer, "clear", "{:?}", r.reasons);
    assert!(
        r.denials
            .iter()
            .any(|d| !d.identical && d.why.contains("different control entries"))
    );
    let other_destination = application("FR-APP-3", "2B001", "RU", vec![buyer.clone()]);
    let r = check(&fed, 1, &other_destination, false)
        .await
        .expect("check");
    assert_eq!(r.answer, "clear", "{:?}", r.reasons);
    assert!(
        r.denials
            .iter()
            .any(|d| d.why.contains("different destination"))
    );

    // B consults in the same step; A objects; B grants anyway: the undercut
    // notice reaches A although B's grant notices stay local by configuration.
    let r = check(&fed, 1, &same, true).await.expect("check --consult");
    let id = r
        .denials
        .iter()
        .find(|d| !d.consultation_id.is_empty())
        .expect("consultation opened")
        .consultation_id
        .clone();
    let arrived = eventually(Duration::from_secs(10), || async {
        fed.nodes[0]
            .operator()
            .expect("op")
            .consult_show(ConsultShowRequest { id: id.clone() })
            .await
            .is_ok()
    })
    .await;
    assert!(arrived, "A never saw the consultation");
    for i in [0, 1] {
        let due = fed.nodes[i]
            .operator()
            .expect("op")
            .consult_show(ConsultShowRequest { id: id.clone() })
            .await
            .expect("show")
            .into_inner()
            .consultation
            .expect("consultation")
            .due;
        assert_eq!(due, deadline_with_a(10), "member {i}");
    }
    fed.nodes[0]
        .operator()
        .expect("op")
        .consult_respond(ConsultRespondRequest {
            id: id.clone(),
            answer: "objection".into(),
            text: "same end user and items as our denial".into(),
        })
        .await
        .expect("objection");
    let answered = eventually(Duration::from_secs(10), || async {
        fed.nodes[1]
            .operator()
            .expect("op")
            .consult_show(ConsultShowRequest { id: id.clone() })
            .await
            .is_ok_and(|v| {
                v.into_inner()
                    .consultation
                    .is_some_and(|c| c.answer.is_some())
            })
    })
    .await;
    assert!(answered, "B never received the objection");
    let grant = |text: &str| {
        let request = ConsultDecideRequest {
            id: id.clone(),
            decision: "granted".into(),
            text: text.into(),
        };
        async {
            fed.nodes[1]
                .operator()
                .expect("op")
                .consult_decide(request)
                .await
        }
    };
    let no_reasons = grant("")
        .await
        .expect_err("a grant over an objection needs reasons");
    assert_eq!(no_reasons.code(), tonic::Code::InvalidArgument);
    grant("end use verified on site").await.expect("grant");
    let undercut = eventually(Duration::from_secs(10), || async {
        fed.nodes[0]
            .operator()
            .expect("op")
            .list_notices(ListNoticesRequest {
                origin: B.into(),
                kind: "grant".into(),
                limit: 0,
            })
            .await
            .is_ok_and(|r| {
                r.into_inner().notices.iter().any(|v| {
                    matches!(v.notice.as_ref().and_then(|n| n.body.as_ref()),
                        Some(Body::Grant(g)) if g.answer == "objection" && g.reasons == "end use verified on site")
                })
            })
    })
    .await;
    assert!(
        undercut,
        "the undercut notice never reached the denying member"
    );

    // The pilot report: B decided; A's figures come signed; no party anywhere.
    tessera_cli::bloc::application_decide(
        &fed.nodes[1].cli,
        "FR-APP-1",
        "granted",
        "",
        false,
        &mut Vec::new(),
    )
    .await
    .expect("decide");
    let today = tessera_node::notice::dates::format(tessera_node::notice::dates::today());
    let svg = tempfile::tempdir().expect("tmp");
    let mut bytes = Vec::new();
    for format in [
        tessera_cli::pilot::Format::Json,
        tessera_cli::pilot::Format::Csv,
        tessera_cli::pilot::Format::Table,
    ] {
        let r = tessera_cli::bloc::pilot_report(
            &fed.nodes[1].cli,
            "eu",
            "2026-01-01",
            &today,
            format,
            Some(svg.path()),
            &mut bytes,
        )
        .await
        .expect("pilot report");
        assert_eq!(r.members.len(), 3);
        assert!(
            r.members
                .iter()
                .all(|m| m.problem.is_empty() && !m.signature.is_empty()),
            "{r:?}"
        );
        let own = r
            .members
            .iter()
            .find(|m| m.agency == B)
            .and_then(|m| m.figures.clone())
            .expect("B");
        assert_eq!(own.counts["consultations_opened"], 1);
        assert_eq!(own.counts["undercut_notices"], 1);
        assert_eq!(own.counts["applications_decided"], 1);
        assert!(own.counts["bloc_denials_matched"] >= 3);
    }
    for entry in std::fs::read_dir(svg.path()).expect("svg dir") {
        bytes.extend(std::fs::read(entry.expect("entry").path()).expect("svg"));
    }
    let text = String::from_utf8_lossy(&bytes).to_lowercase();
    for secret in [
        "precision",
        "engineering",
        &DENIED_LEI.to_lowercase(),
        "fr-app-1",
        "bafa-az",
    ] {
        assert!(!text.contains(secret), "the pilot report holds {secret:?}");
    }

    annual_report_counts_by_category_and_destination(&fed, &today).await;
    fed.shutdown().await.expect("shutdown");
}

/// B's annual-report export: FR-APP-1 granted (2B001.a to CN); FR-APP-2
/// refused (5A002 to CN); FR-APP-3 refused and also notified as B's denial
/// (counted once); a denial B issued outside any application (ML10.a to IR).
async fn annual_report_counts_by_category_and_destination(fed: &LocalFederation, today: &str) {
    let cli = &fed.nodes[1].cli;
    for reference in ["FR-APP-2", "FR-APP-3"] {
        tessera_cli::bloc::application_decide(
            cli,
            reference,
            "refused",
            "",
            false,
            &mut Vec::new(),
        )
        .await
        .expect("decide");
    }
    let own_denial = |serial: &str, entry: &str, destination: &str| Notice {
        serial: serial.into(),
        marking: Marking::Amber as i32,
        distribution: Some(tessera_node::policy::parse_to("local").expect("to")),
        body: Some(Body::Denial(DenialNotice {
            authority_reference: serial.into(),
            regime_basis: RegimeBasis::EuDualUse as i32,
            action: DenialAction::Refuse as i32,
            decision_date: today.into(),
            items: vec![tessera_proto::v1::Item {
                control_entry: entry.into(),
                ..Default::default()
            }],
            parties: vec![RoledParty {
                role: PartyRole::EndUser as i32,
                party: Some(party_to_wire(&org(ANNUAL_PARTY, "IR", ("LEI", ANNUAL_LEI)))),
            }],
            destination: destination.into(),
            status: NoticeStatus::InForce as i32,
            ..Default::default()
        })),
        ..Default::default()
    };
    for n in [
        own_denial("FR-APP-3", "2B001", "RU"),
        own_denial("SBDU-2026-77", "ML10.a", "IR"),
    ] {
        fed.nodes[1]
            .operator()
            .expect("op")
            .issue_notice(IssueNoticeRequest { notice: Some(n) })
            .await
            .expect("B denies");
    }
    let mut csv = Vec::new();
    let r = tessera_cli::bloc::pilot_annual(cli, "2026-01-01", today, AnnualFormat::Csv, &mut csv)
        .await
        .expect("annual report");
    assert_eq!((r.authorisations, r.denials), (1, 3));
    let csv = String::from_utf8(csv).expect("utf-8");
    let row =
        |c: &str, d: &str, a: u32, n: u32| format!("{B},2026-01-01,{today},{c},{d},{a},{n}\n");
    assert_eq!(
        csv,
        [
            format!("{}\n", tessera_cli::annual::CSV_HEADER),
            row("2", "CN", 1, 0),
            row("2", "RU", 0, 1),
            row("5", "CN", 0, 1),
            row("ML", "IR", 0, 1),
        ]
        .concat()
    );
    let lower = csv.to_lowercase();
    for secret in [
        "annual",
        "precision",
        &ANNUAL_LEI.to_lowercase(),
        "fr-app",
        "sbdu-2026",
        "bafa-az",
    ] {
        assert!(
            !lower.contains(secret),
            "the annual export holds {secret:?}"
        );
    }
    let bad = tessera_cli::bloc::pilot_annual(
        cli,
        today,
        "2026-01-01",
        AnnualFormat::Csv,
        &mut Vec::new(),
    )
    .await;
    if today != "2026-01-01" {
        let e = bad.expect_err("to before from");
        assert!(format!("{e:#}").contains("before from"), "{e:#}");
    }

    // The command writes the same bytes to the file it is given.
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("annual.csv");
    let out = std::process::Command::new(cli_binary!())
        .arg("--config")
        .arg(fed.nodes[1].dir.join("cli.toml"))
        .args([
            "pilot",
            "annual",
            "--from",
            "2026-01-01",
            "--to",
            today,
            "--csv",
        ])
        .arg(&file)
        .output()
        .expect("run tessera");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("4 rows (1 authorisations, 3 denials)"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&file).expect("csv file"), csv);
}

#[test]
fn trusted_operators_need_consent_and_a_suspension_reaches_every_member() {
    run_e2e(trusted_operators_need_consent_and_a_suspension_reaches_every_member_body());
}

async fn trusted_operators_need_consent_and_a_suspension_reaches_every_member_body() {
    let fed = signed_bloc().await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("trusted.jsonl");
    let record = |id: &str, consent: bool| {
        serde_json::json!({
            "record_id": id, "programme": "aeo", "name": TRUSTED, "countries": ["NL"],
            "ids": [{"type": "EORI", "value": TRUSTED_EORI}, {"type": "REG", "value": "NL-KVK-24123456", "country": "NL"}],
            "validated_on": "2025-06-01", "scope_items": ["5A002"], "consent": consent,
        })
        .to_string()
    };
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n",
            record("DE-AEO-1", true),
            record("DE-AEO-2", false)
        ),
    )
    .expect("write");
    // The same file twice: the second import is a delta of nothing.
    let mut imported = Vec::new();
    for _ in 0..2 {
        let cli = &fed.nodes[0].cli;
        let s = tessera_cli::bloc::trusted_import(
            cli,
            "jsonl",
            &file,
            "group:eu",
            false,
            &mut Vec::new(),
        )
        .await
        .expect("import");
        imported.push((s.created, s.unchanged, s.refused));
    }
    assert_eq!(imported, [(1, 0, 1), (0, 1, 1)]);

    // Matched on any identifier: B's exporter carries only the registration number.
    let exporter = Party {
        kind: PartyKind::Organisation,
        name: "Example Logistics".into(),
        ids: vec![PartyId {
            id_type: "REG".into(),
            value: "NL-KVK-24123456".into(),
            country: Some("NL".into()),
        }],
        ..Party::default()
    };
    let app = application("APP-T", "5A002.a", "US", vec![exporter]);
    for i in [1, 2] {
        let r = answers(&fed, i, &app, "trusted").await;
        let hit = &r.trusted[0];
        assert_eq!(
            (hit.member.as_str(), hit.validated_on.as_str()),
            (A, "2025-06-01")
        );
        assert_eq!(hit.matched_on, ["REG"]);
    }

    let mut out = Vec::new();
    tessera_cli::bloc::trusted_change(
        &fed.nodes[0].cli,
        "TO-DE-AEO-1",
        "suspend",
        "audit findings",
        false,
        &mut out,
    )
    .await
    .expect("suspend");
    for i in [1, 2] {
        let r = answers(&fed, i, &app, "clear").await;
        assert!(
            r.reasons.iter().any(|x| x.contains("suspended")),
            "{:?}",
            r.reasons
        );
    }

    // The member outside the bloc holds nothing of the bloc's.
    let held = fed.nodes[3]
        .operator()
        .expect("op")
        .list_notices(ListNoticesRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(
        held.notices
            .iter()
            .all(|v| v.notice.as_ref().is_some_and(|n| n.origin == OUT)),
        "the outsider received {:?}",
        held.notices
            .iter()
            .filter_map(|v| v.notice.as_ref().map(|n| n.serial.clone()))
            .collect::<Vec<_>>()
    );
    let list = tessera_cli::bloc::trusted_list(&fed.nodes[3].cli, "", true, &mut Vec::new())
        .await
        .expect("list");
    assert!(list.records.is_empty());
    let refused = check(&fed, 3, &app, false).await.expect_err("not a member");
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    fed.shutdown().await.expect("shutdown");
}
