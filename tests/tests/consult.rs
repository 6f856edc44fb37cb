//! Consultations and deconfliction between real nodes: a round trip with the
//! consulting node down while the denying agency answers (delivered later), a
//! single extension, the grant notice; deconfliction alerts on both sides
//! with contact pointers only; a tampered audit chain named by `verify`.

use std::time::Duration;

use tessera_node::notice::json::party_to_wire;
use tessera_node::party::{Party, PartyKind};
use tessera_proto::v1::operator_client::OperatorClient;
use tessera_proto::v1::{
    AlertsRequest, AuditVerifyRequest, ConsultDecideRequest, ConsultExtendRequest,
    ConsultOpenRequest, ConsultRespondRequest, ConsultShowRequest, DenialAction, DenialNotice,
    IssueNoticeRequest, ListNoticesRequest, Marking, Notice, NoticeStatus, PartyRole, RegimeBasis,
    RoledParty, WatchAddRequest, notice::Body,
};
use tessera_tests::*;
use tonic::transport::Channel;

const A: &str = "FR-SBDU";
const B: &str = "DE-BAFA";

fn op(channel: Channel) -> OperatorClient<Channel> {
    OperatorClient::new(channel)
}

fn denial() -> Notice {
    Notice {
        serial: "BAFA-2026-17".into(),
        marking: Marking::Amber as i32,
        distribution: Some(tessera_node::policy::parse_to("all").expect("to")),
        body: Some(Body::Denial(DenialNotice {
            authority_reference: "AZ 17".into(),
            regime_basis: RegimeBasis::EuDualUse as i32,
            action: DenialAction::Refuse as i32,
            decision_date: "2026-03-02".into(),
            parties: vec![RoledParty {
                role: PartyRole::EndUser as i32,
                party: Some(party_to_wire(&Party {
                    name: "Example Precision Engineering Co., Ltd.".into(),
                    countries: vec!["CN".into()],
                    ..Party::default()
                })),
            }],
            status: NoticeStatus::InForce as i32,
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[test]
fn consultation_round_trip_survives_the_consulting_node_being_down() {
    run_e2e(consultation_round_trip_survives_the_consulting_node_being_down_body());
}

async fn consultation_round_trip_survives_the_consulting_node_being_down_body() {
    let mut fed = ProcFederation::new(node_binary!(), &[A, B], |_| {});
    fed.start(0);
    fed.start(1);
    fed.ready(0).await;
    fed.ready(1).await;
    op(fed.operator(1))
        .issue_notice(IssueNoticeRequest {
            notice: Some(denial()),
        })
        .await
        .expect("B issues its denial");

    // A consults B about it.
    let opened = op(fed.operator(0))
        .consult_open(ConsultOpenRequest {
            denial_origin: B.into(),
            denial_serial: "BAFA-2026-17".into(),
            summary: "2 five-axis machining centres, end user in CN, civil aerospace".into(),
            days: 0,
        })
        .await
        .expect("open")
        .into_inner();
    let id = opened.consultation.expect("c").id;
    assert_eq!(opened.state, "open");
    let arrived = eventually(Duration::from_secs(10), || async {
        op(fed.operator(1))
            .consult_show(ConsultShowRequest { id: id.clone() })
            .await
            .is_ok()
    })
    .await;
    assert!(arrived, "B never saw the consultation");

    // A goes down; B answers; the answer waits in B's outbox.
    fed.kill(0);
    let answered = op(fed.operator(1))
        .consult_respond(ConsultRespondRequest {
            id: id.clone(),
            answer: "objection".into(),
            text: "same end user, same items as our denial".into(),
        })
        .await
        .expect("respond")
        .into_inner();
    assert_eq!(answered.state, "answered");
    assert!(answered.undelivered >= 1, "the answer should wait for A");

    // B extends once; a second extension is refused.
    op(fed.operator(1))
        .consult_extend(ConsultExtendRequest {
            id: id.clone(),
            days: 20,
        })
        .await
        .expect("first extension");
    let err = op(fed.operator(1))
        .consult_extend(ConsultExtendRequest {
            id: id.clone(),
            days: 30,
        })
        .await
        .expect_err("second extension");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");

    // A comes back and receives the answer and the extension.
    fed.start(0);
    fed.ready(0).await;
    let delivered = eventually(Duration::from_secs(20), || async {
        op(fed.operator(0))
            .consult_show(ConsultShowRequest { id: id.clone() })
            .await
            .is_ok_and(|v| {
                let c = v.into_inner().consultation.unwrap_or_default();
                c.answer.is_some_and(|a| a.answer == "objection") && c.extended && c.days == 20
            })
    })
    .await;
    assert!(delivered, "the answer was not delivered after A came back");

    // A grants despite the denial: a grant notice reaches B.
    let decided = op(fed.operator(0))
        .consult_decide(ConsultDecideRequest {
            id: id.clone(),
            decision: "granted".into(),
            text: "end use verified on site".into(),
        })
        .await
        .expect("decide")
        .into_inner();
    assert_eq!(decided.state, "closed");
    let grant_seen = eventually(Duration::from_secs(15), || async {
        op(fed.operator(1))
            .list_notices(ListNoticesRequest { origin: A.into(), kind: String::new(), limit: 0 })
            .await
            .is_ok_and(|r| {
                r.into_inner().notices.iter().any(|v| {
                    matches!(v.notice.as_ref().and_then(|n| n.body.as_ref()), Some(Body::Grant(g)) if g.consultation_id == id)
                })
            })
    })
    .await;
    assert!(grant_seen, "B did not receive the grant notice");
    let closed_at_b = eventually(Duration::from_secs(10), || async {
        op(fed.operator(1))
            .consult_show(ConsultShowRequest { id: id.clone() })
            .await
            .is_ok_and(|v| v.into_inner().state == "closed")
    })
    .await;
    assert!(closed_at_b);

    for i in 0..2 {
        let r = op(fed.operator(i))
            .audit_verify(AuditVerifyRequest::default())
            .await
            .expect("audit verify");
        assert!(r.into_inner().entries > 0);
    }
}

#[test]
fn deconfliction_alerts_both_units_with_contact_pointers_only() {
    run_e2e(deconfliction_alerts_both_units_with_contact_pointers_only_body());
}

async fn deconfliction_alerts_both_units_with_contact_pointers_only_body() {
    let fed = LocalFederation::start_with(&[A, B], Duration::from_millis(200), |cfg| {
        cfg.sync.pull_interval_ms = 300;
    })
    .await
    .expect("start");
    fed.wait_all_reachable(Duration::from_secs(20))
        .await
        .expect("reachable");
    let subject = Party {
        kind: PartyKind::Person,
        name: "Ivan Petrovich Sidorenko".into(),
        countries: vec!["RU".into()],
        birth_date: Some("1970-02-03".into()),
        ..Party::default()
    };
    let register = |i: usize, contact: &'static str| {
        let node = &fed.nodes[i];
        let subject = subject.clone();
        async move {
            node.operator()
                .expect("op")
                .watch_add(WatchAddRequest {
                    parties: vec![party_to_wire(&subject)],
                    reference: format!("CASE-{i}"),
                    purpose: "investigation".into(),
                    contact: contact.into(),
                })
                .await
                .expect("deconflict add")
        }
    };
    register(0, "SNDJ case desk +33 1 00 00 00 00").await;
    // Let A's subject reach B's copy of A's index before B registers.
    let b = &fed.nodes[1];
    let replicated = eventually(Duration::from_secs(10), || async {
        b.operator()
            .expect("op")
            .status(tessera_proto::v1::StatusRequest {})
            .await
            .is_ok_and(|s| {
                s.into_inner()
                    .peers
                    .iter()
                    .any(|p| p.agency == A && p.index_rows > 0)
            })
    })
    .await;
    assert!(replicated, "A's index never reached B");
    register(1, "ZKA unit 4 +49 221 00 00 00").await;

    let alert_with = |i: usize, contact: &'static str| {
        let node = &fed.nodes[i];
        async move {
            eventually(Duration::from_secs(10), || async {
                node.operator()
                    .expect("op")
                    .alerts(AlertsRequest { after: 0 })
                    .await
                    .is_ok_and(|r| {
                        r.into_inner().alerts.iter().any(|a| {
                            a.kind == "deconfliction"
                                && a.r#match.as_ref().is_some_and(|m| m.contact == contact)
                        })
                    })
            })
            .await
        }
    };
    assert!(
        alert_with(1, "SNDJ case desk +33 1 00 00 00 00").await,
        "B got no pointer to A"
    );
    assert!(
        alert_with(0, "ZKA unit 4 +49 221 00 00 00").await,
        "A got no pointer to B"
    );

    // Ordinary screening never reveals an investigation: only investigation
    // subjects are evaluated under the deconfliction prefix.
    for node in &fed.nodes {
        let r = node
            .operator()
            .expect("op")
            .screen(tessera_proto::v1::ScreenRequest {
                parties: vec![party_to_wire(&subject)],
                threshold: 0.0,
            })
            .await
            .expect("screen")
            .into_inner();
        assert!(
            r.results[0].matches.is_empty(),
            "screening revealed an investigation: {:?}",
            r.results[0].matches
        );
    }

    // The alerts carry pointers only: no party data, no summary, no notice.
    for node in &fed.nodes {
        let alerts = node
            .operator()
            .expect("op")
            .alerts(AlertsRequest { after: 0 })
            .await
            .expect("alerts")
            .into_inner()
            .alerts;
        for a in alerts.iter().filter(|a| a.kind == "deconfliction") {
            let m = a.r#match.clone().unwrap_or_default();
            assert_eq!(m.disclosure, "pointer");
            assert!(
                m.notice_json.is_empty() && m.action.is_empty() && m.control_entries.is_empty()
            );
            let text = format!("{a:?}");
            assert!(
                !text.contains("Sidorenko") && !text.contains("SIDORENKO"),
                "{text}"
            );
        }
        // Investigation subjects are never replicated as notices.
        let listed = node
            .operator()
            .expect("op")
            .list_notices(ListNoticesRequest::default())
            .await
            .expect("list")
            .into_inner();
        let foreign = listed
            .notices
            .iter()
            .filter(|v| v.notice.as_ref().is_some_and(|n| n.origin != node.agency))
            .count();
        assert_eq!(foreign, 0, "an investigation subject was replicated");
    }
    fed.shutdown().await.expect("shutdown");
}

#[test]
fn audit_verify_names_an_edited_deleted_or_reordered_entry() {
    run_e2e(audit_verify_names_an_edited_deleted_or_reordered_entry_body());
}

async fn audit_verify_names_an_edited_deleted_or_reordered_entry_body() {
    for tamper in ["edit", "delete", "swap"] {
        let mut fed = ProcFederation::new(node_binary!(), &[A, B], |cfg| {
            cfg.audit.checkpoint_every = 0;
        });
        fed.start(0);
        fed.start(1);
        fed.ready(0).await;
        fed.ready(1).await;
        for i in 0..5 {
            let mut n = denial();
            n.serial = format!("T-{i}");
            op(fed.operator(0))
                .issue_notice(IssueNoticeRequest { notice: Some(n) })
                .await
                .expect("issue");
            // One push each, so one audit entry each.
            let delivered = eventually(Duration::from_secs(10), || async {
                stored_from(fed.operator(1), A).await == i + 1
            })
            .await;
            assert!(delivered);
        }
        // Sending them to B made audit entries.
        assert!(
            eventually(Duration::from_secs(10), || async {
                stored_from(fed.operator(1), A).await == 5
            })
            .await
        );
        let two = eventually(Duration::from_secs(10), || async {
            op(fed.operator(0))
                .audit_verify(AuditVerifyRequest::default())
                .await
                .is_ok_and(|r| r.into_inner().entries >= 2)
        })
        .await;
        assert!(two, "expected audit entries for the notices sent");
        let before = op(fed.operator(0))
            .audit_verify(AuditVerifyRequest::default())
            .await
            .expect("intact")
            .into_inner();
        assert!(before.entries >= 1, "{before:?}");
        fed.kill(0);

        let data = fed.agencies[0].dir.join("data");
        {
            let db = sled::open(&data).expect("open sled");
            let tree = db.open_tree("audit").expect("tree");
            let key = |seq: u64| {
                let mut k = vec![b'e'];
                k.extend_from_slice(&seq.to_be_bytes());
                k
            };
            let n = before.entries;
            assert!(n >= 2, "need two entries to tamper with");
            let first = 1;
            match tamper {
                "edit" => {
                    let v = tree.get(key(first)).expect("get").expect("entry 1");
                    let text = String::from_utf8(v.to_vec()).expect("json").replacen(
                        "\"actor\":\"",
                        "\"actor\":\"X",
                        1,
                    );
                    tree.insert(key(first), text.as_bytes()).expect("edit");
                }
                "delete" => {
                    tree.remove(key(first)).expect("delete");
                }
                _ => {
                    let a = tree.get(key(1)).expect("get").expect("1");
                    let b = tree.get(key(2)).expect("get").expect("2");
                    tree.insert(key(1), b).expect("swap");
                    tree.insert(key(2), a).expect("swap");
                }
            }
            db.flush().expect("flush");
        }
        fed.start(0);
        // The node may refuse to start on a broken chain; either way verify must name entry 1.
        let named = eventually(Duration::from_secs(10), || async {
            match op(fed.operator(0))
                .audit_verify(AuditVerifyRequest::default())
                .await
            {
                Err(status) => {
                    status.code() == tonic::Code::DataLoss && status.message().contains("entry 1")
                }
                Ok(_) => false,
            }
        })
        .await;
        assert!(named, "{tamper}: audit verify did not name entry 1");
        fed.kill(0);
    }
}

/// Opens a consultation at the node behind `op` on B's `serial`; its id.
async fn open_on(mut op: OperatorClient<Channel>, serial: &str) -> String {
    op.consult_open(ConsultOpenRequest {
        denial_origin: B.into(),
        denial_serial: serial.into(),
        summary: "one lathe".into(),
        days: 0,
    })
    .await
    .expect("open")
    .into_inner()
    .consultation
    .expect("c")
    .id
}

async fn show(mut op: OperatorClient<Channel>, id: &str) -> Option<tessera_proto::v1::ConsultView> {
    op.consult_show(ConsultShowRequest { id: id.into() })
        .await
        .ok()
        .map(tonic::Response::into_inner)
}

#[test]
fn refused_steps_are_reported_audited_and_hold_back_nothing_else() {
    run_e2e(refused_steps_are_reported_audited_and_hold_back_nothing_else_body());
}

async fn refused_steps_are_reported_audited_and_hold_back_nothing_else_body() {
    let fed = reachable_federation(&[A, B], |_| {}).await;
    let (a, b) = (&fed.nodes[0], &fed.nodes[1]);
    let (a_op, b_op) = (|| a.operator().expect("a"), || b.operator().expect("b"));
    // B's denial sent to A, and one B kept to itself.
    let mut kept = denial();
    kept.serial = "BAFA-2026-18".into();
    kept.distribution = Some(tessera_node::policy::parse_to("local").expect("to"));
    for n in [denial(), kept] {
        b_op()
            .issue_notice(IssueNoticeRequest { notice: Some(n) })
            .await
            .expect("issue");
    }
    // Two openings B must refuse, queued before a valid one and its extension.
    let not_sent = open_on(a_op(), "BAFA-2026-18").await;
    let unknown = open_on(a_op(), "BAFA-2026-99").await;
    let valid = open_on(a_op(), "BAFA-2026-17").await;
    let extended = a_op()
        .consult_extend(ConsultExtendRequest {
            id: valid.clone(),
            days: 20,
        })
        .await
        .expect("extend")
        .into_inner();
    let due = extended.consultation.expect("c").due;

    // The valid consultation and its extension reach B.
    let agreed = eventually(Duration::from_secs(15), || async {
        show(b_op(), &valid)
            .await
            .and_then(|v| v.consultation)
            .is_some_and(|c| c.extended && c.due == due)
    })
    .await;
    assert!(agreed, "a refused step held back the peer's other steps");

    // A is told of each refusal, with one answer for both serials.
    let refused = |id: String| async move {
        for _ in 0..300 {
            if let Some(c) = show(a_op(), &id)
                .await
                .filter(|v| v.undelivered == 0)
                .and_then(|v| v.consultation)
                && !c.refused.is_empty()
            {
                return c.refused;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{id}: no refusal reported");
    };
    let (r1, r2) = (
        refused(not_sent.clone()).await,
        refused(unknown.clone()).await,
    );
    assert_eq!((r1.len(), r2.len()), (1, 1), "{r1:?} {r2:?}");
    assert_eq!(r1[0].kind, "open");
    assert_eq!(
        r1[0].reason, r2[0].reason,
        "the answers tell the serials apart"
    );
    assert!(
        r1[0]
            .reason
            .contains("no denial of ours with that serial was sent to you"),
        "{}",
        r1[0].reason
    );
    let valid_view = show(a_op(), &valid).await.expect("valid");
    assert_eq!(valid_view.undelivered, 0);
    assert!(valid_view.consultation.expect("c").refused.is_empty());
    let alerted = a_op()
        .alerts(AlertsRequest { after: 0 })
        .await
        .expect("alerts")
        .into_inner()
        .alerts
        .iter()
        .filter(|al| {
            al.r#match
                .as_ref()
                .is_some_and(|m| m.action == "refused-by-peer")
        })
        .count();
    assert_eq!(alerted, 2);

    // Both sides audited both refusals; B names no consultation it does not hold.
    let refusals = |lines: Vec<serde_json::Value>, by: &str| {
        lines
            .into_iter()
            .filter(|l| l["action"] == "consultation_refused" && l["details"]["by"] == by)
            .collect::<Vec<_>>()
    };
    let at_a = refusals(audit_lines(a_op()).await, "peer");
    let at_b = refusals(audit_lines(b_op()).await, "us");
    assert_eq!((at_a.len(), at_b.len()), (2, 2), "{at_a:?} {at_b:?}");
    assert!(
        at_b.iter()
            .all(|l| l["object"] == "consult" && l["actor"] == A)
    );
    fed.shutdown().await.expect("shutdown");
}

/// `tessera ARGS` with `config`: (exit code, stdout, stderr).
async fn tessera(config: std::path::PathBuf, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = std::process::Command::new(cli_binary!());
    cmd.arg("--config").arg(config).args(args);
    output_of(cmd).await
}

#[test]
fn information_asked_for_is_provided_with_the_cli_and_answered_again() {
    run_e2e(information_asked_for_is_provided_with_the_cli_and_answered_again_body());
}

async fn information_asked_for_is_provided_with_the_cli_and_answered_again_body() {
    let fed = reachable_federation(&[A, B], |cfg| cfg.sync.pull_interval_ms = 300).await;
    let (a, b) = (&fed.nodes[0], &fed.nodes[1]);
    let (a_cli, b_cli) = (a.dir.join("cli.toml"), b.dir.join("cli.toml"));
    b.operator()
        .expect("op")
        .issue_notice(IssueNoticeRequest {
            notice: Some(denial()),
        })
        .await
        .expect("B issues its denial");
    let id = open_on(a.operator().expect("op"), "BAFA-2026-17").await;
    let show = |node: &LocalNode| show(node.operator().expect("op"), &id);
    assert!(
        eventually(Duration::from_secs(10), || async {
            show(b).await.is_some()
        })
        .await,
        "B never saw the consultation"
    );

    // B asks; A sees the question.
    let (code, stdout, stderr) = tessera(
        b_cli.clone(),
        &[
            "consult",
            "respond",
            &id,
            "--answer",
            "more-information",
            "--text",
            "Who operates the workshop?",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("more-information"), "{stdout}");
    let asked = eventually(Duration::from_secs(10), || async {
        show(a).await.is_some_and(|v| {
            v.state == "answered"
                && v.consultation
                    .and_then(|c| c.answer)
                    .is_some_and(|x| x.answer == "more-information")
        })
    })
    .await;
    assert!(asked, "A never received the question");

    // Usage and input errors, before the node is asked.
    let (code, _, stderr) = tessera(a_cli.clone(), &["consult", "inform", &id]).await;
    assert_eq!(code, Some(2), "no information is a usage error: {stderr}");
    // A file that is not there, named as given; only the consulting agency
    // provides information.
    for (cli, args, says) in [
        (
            &a_cli,
            ["--file", "no-such-answer.txt"],
            "no-such-answer.txt",
        ),
        (
            &b_cli,
            ["--text", "we add nothing"],
            "only the consulting agency provides information",
        ),
    ] {
        let (code, _, stderr) = tessera(
            cli.clone(),
            &[&["consult", "inform", &id][..], &args].concat(),
        )
        .await;
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }

    // A answers the question from a file.
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("answer.txt");
    std::fs::write(
        &file,
        "The physics department of the university operates it.\n",
    )
    .expect("write");
    let (code, stdout, stderr) = tessera(
        a_cli.clone(),
        &[
            "consult",
            "inform",
            &id,
            "--file",
            file.to_str().expect("path"),
            "--json",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json");
    assert_eq!(
        json["state"], "open",
        "waiting for the answer again: {json}"
    );
    assert_eq!(json["answer"], serde_json::Value::Null);
    assert_eq!(
        json["information"][0],
        "The physics department of the university operates it.\n"
    );
    assert_eq!(json["days"], 10, "the deadline does not move");

    // B receives it, signed and verified, and sees the text.
    let informed = eventually(Duration::from_secs(10), || async {
        show(b).await.is_some_and(|v| {
            v.state == "open" && v.consultation.is_some_and(|c| c.answer.is_none())
        })
    })
    .await;
    assert!(informed, "B never received the information");
    // B's operator is alerted, with the time in ISO 8601 and its zone.
    let (code, stdout, stderr) = tessera(b_cli.clone(), &["alerts"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains(&format!("[consultation] {id} with {A}: information")))
        .unwrap_or_else(|| panic!("no information alert: {stdout}"));
    let when = line.split(' ').nth(1).unwrap_or_default();
    assert!(
        time::OffsetDateTime::parse(when, &time::format_description::well_known::Rfc3339).is_ok()
            && when.ends_with('Z'),
        "{line}"
    );
    let (code, stdout, stderr) = tessera(b_cli.clone(), &["consult", "show", &id]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("provided information:")
            && stdout.contains("The physics department of the university operates it."),
        "{stdout}"
    );

    // B answers anew; A receives the new answer.
    let (code, _, stderr) = tessera(
        b_cli.clone(),
        &["consult", "respond", &id, "--answer", "no-objection"],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let answered = eventually(Duration::from_secs(10), || async {
        show(a).await.is_some_and(|v| {
            v.consultation
                .and_then(|c| c.answer)
                .is_some_and(|x| x.answer == "no-objection")
        })
    })
    .await;
    assert!(answered, "A never received the new answer");

    // A grants; its grant notice shows the answer and the denial it follows.
    let (code, _, stderr) = tessera(
        a_cli.clone(),
        &["consult", "decide", &id, "--decision", "granted"],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, stderr) =
        tessera(a_cli.clone(), &["notice", "list", "--kind", "grant"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("granted (no-objection)") && stdout.contains("after DE-BAFA/BAFA-2026-17"),
        "{stdout}"
    );

    // The step is audited on both sides, without its text.
    for node in [a, b] {
        let lines = audit_lines(node.operator().expect("op")).await;
        let informs: Vec<_> = lines
            .iter()
            .filter(|l| l.to_string().contains("\"inform\""))
            .collect();
        assert_eq!(informs.len(), 1, "{}: {lines:?}", node.agency);
        assert!(
            !lines.iter().any(|l| l.to_string().contains("physics")),
            "{}: the audit holds no transaction text",
            node.agency
        );
    }
    fed.shutdown().await.expect("shutdown");
}
