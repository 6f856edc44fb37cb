//! Security is the product: after a full run (an import of 2,001 Entity List
//! entries, denials, screening, a watch list, deconfliction, a consultation),
//! neither the logs (at trace level) nor the audit exports of any node carry
//! a party name or identifier used in it.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_node::lists::{self, Format};
use tessera_node::notice::json::party_to_wire;
use tessera_node::party::{Party, PartyId, PartyKind};
use tessera_proto::v1::{
    ConsultOpenRequest, ConsultRespondRequest, DenialAction, DenialNotice, IssueNoticeRequest,
    Marking, Notice, NoticeStatus, PartyRole, RegimeBasis, RoledParty, ScreenRequest,
    WatchAddRequest, notice::Body,
};
use tessera_tests::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn secret_parties() -> Vec<Party> {
    vec![
        Party {
            kind: PartyKind::Organisation,
            name: "Zyxwvut Precision Optics Holding".into(),
            aliases: vec!["Qwertyuiop Lasers".into()],
            countries: vec!["CN".into()],
            ids: vec![PartyId {
                id_type: "LEI".into(),
                value: "529900T8BM49AURSDO55".into(),
                country: None,
            }],
            ..Party::default()
        },
        Party {
            kind: PartyKind::Person,
            name: "Grigoriy Ksenofontovich Zabolotskikh".into(),
            countries: vec!["RU".into()],
            birth_date: Some("1958-11-23".into()),
            ids: vec![PartyId {
                id_type: "PASSPORT".into(),
                value: "K7Q4410093".into(),
                country: Some("RU".into()),
            }],
            ..Party::default()
        },
    ]
}

fn denial(serial: &str, parties: &[Party]) -> Notice {
    Notice {
        serial: serial.into(),
        marking: Marking::Amber as i32,
        distribution: Some(tessera_node::policy::parse_to("all").expect("to")),
        body: Some(Body::Denial(DenialNotice {
            authority_reference: format!("AZ-{serial}"),
            regime_basis: RegimeBasis::Nsg as i32,
            action: DenialAction::Refuse as i32,
            decision_date: "2026-04-01".into(),
            parties: parties
                .iter()
                .map(|p| RoledParty {
                    role: PartyRole::EndUser as i32,
                    party: Some(party_to_wire(p)),
                })
                .collect(),
            status: NoticeStatus::InForce as i32,
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[test]
fn no_party_name_or_identifier_in_logs_or_audit() {
    run_e2e(no_party_name_or_identifier_in_logs_or_audit_body());
}

async fn no_party_name_or_identifier_in_logs_or_audit_body() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter(
            "trace,h2=info,hyper=info,hyper_util=info,tower=info,rustls=info,sled=info,tonic=info",
        )
        .with_writer(move || writer.clone())
        .json()
        .init();

    let fed = LocalFederation::start_with(
        &["DE-BAFA", "FR-SBDU", "US-BIS"],
        Duration::from_millis(200),
        |cfg| {
            cfg.sync.pull_interval_ms = 300;
        },
    )
    .await
    .expect("start");
    fed.wait_all_reachable(Duration::from_secs(20))
        .await
        .expect("reachable");
    let (de, fr, us) = (&fed.nodes[0], &fed.nodes[1], &fed.nodes[2]);

    // US-BIS imports the Entity List.
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/lists/entity_list.csv");
    let mut sink = Vec::new();
    tessera_cli::notices::import(&us.cli, Format::Csl, &list, Some("all"), &mut sink)
        .await
        .expect("import");

    // DE-BAFA denies; FR-SBDU watches, screens, consults; investigations on both sides.
    let secrets = secret_parties();
    de.operator()
        .expect("op")
        .issue_notice(IssueNoticeRequest {
            notice: Some(denial("SEC-1", &secrets)),
        })
        .await
        .expect("issue");
    fr.operator()
        .expect("op")
        .watch_add(WatchAddRequest {
            parties: secrets.iter().map(party_to_wire).collect(),
            reference: "APP-1".into(),
            purpose: "watch".into(),
            contact: String::new(),
        })
        .await
        .expect("watch");
    let matched = eventually(Duration::from_secs(15), || async {
        fr.operator()
            .expect("op")
            .screen(ScreenRequest {
                parties: secrets.iter().map(party_to_wire).collect(),
                threshold: 0.0,
            })
            .await
            .is_ok_and(|r| {
                r.into_inner()
                    .results
                    .iter()
                    .all(|p| p.matches.iter().any(|m| m.origin == "DE-BAFA"))
            })
    })
    .await;
    assert!(
        matched,
        "the scenario must really match, or the check below proves little"
    );
    for node in [de, fr] {
        node.operator()
            .expect("op")
            .watch_add(WatchAddRequest {
                parties: vec![party_to_wire(&secrets[1])],
                reference: "CASE".into(),
                purpose: "investigation".into(),
                contact: "desk".into(),
            })
            .await
            .expect("investigation");
    }
    let c = fr
        .operator()
        .expect("op")
        .consult_open(ConsultOpenRequest {
            denial_origin: "DE-BAFA".into(),
            denial_serial: "SEC-1".into(),
            summary: "optics for a research lab".into(),
            days: 0,
        })
        .await
        .expect("consult")
        .into_inner();
    let id = c.consultation.expect("c").id;
    let arrived = eventually(Duration::from_secs(10), || async {
        de.operator()
            .expect("op")
            .consult_respond(ConsultRespondRequest {
                id: id.clone(),
                answer: "objection".into(),
                text: "same end user".into(),
            })
            .await
            .is_ok()
    })
    .await;
    assert!(arrived);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Everything the nodes wrote.
    let mut text = String::from_utf8_lossy(&capture.0.lock().expect("logs")).into_owned();
    assert!(text.len() > 1_000, "the capture saw no logs");
    for node in &fed.nodes {
        let mut out = Vec::new();
        tessera_cli::audit::export(&node.cli, None, &mut out)
            .await
            .expect("export");
        assert!(!out.is_empty());
        text.push_str(&String::from_utf8_lossy(&out));
    }
    let lower = text.to_lowercase();

    let mut needles: Vec<String> = Vec::new();
    for p in &secrets {
        needles.push(p.name.clone());
        needles.extend(p.aliases.clone());
        needles.extend(p.ids.iter().map(|i| i.value.clone()));
        needles.extend(
            p.name
                .split_whitespace()
                .filter(|t| t.len() >= 6)
                .map(str::to_owned),
        );
    }
    for row in lists::read(Format::Csl, &list)
        .expect("list")
        .into_iter()
        .flatten()
    {
        needles.push(row.party.name.clone());
        needles.extend(
            row.party
                .ids
                .iter()
                .map(|i| i.value.clone())
                .filter(|v| v.len() >= 6),
        );
    }
    let leaked: Vec<&String> = needles
        .iter()
        .filter(|n| n.len() >= 6 && lower.contains(&n.to_lowercase()))
        .collect();
    assert!(
        leaked.is_empty(),
        "party data in logs or audit: {:?}",
        &leaked[..leaked.len().min(5)]
    );
    fed.shutdown().await.expect("shutdown");
}
