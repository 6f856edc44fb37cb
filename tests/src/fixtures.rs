//! Notices and parties the end-to-end tests share.

use tessera_node::notice::json::party_to_wire;
use tessera_node::party::{Party, PartyKind};
use tessera_proto::v1::{
    DenialAction, DenialNotice, Marking, Notice, NoticeStatus, PartyRole, RegimeBasis, RoledParty,
    notice::Body,
};

/// An organisation on a denial: a glass fibre plant in BY.
pub fn listed() -> Party {
    Party {
        kind: PartyKind::Organisation,
        name: "Polotsk Steklovolokno OAO".into(),
        countries: vec!["BY".into()],
        ..Party::default()
    }
}

/// A denial in force, to `all`, of `parties` as end users (3A001 to BY).
pub fn denial(serial: &str, parties: &[Party]) -> Notice {
    denial_to(serial, "all", parties)
}

/// [`denial`] to `to` (`all`, `peer:X`, `group:G`, `local`).
pub fn denial_to(serial: &str, to: &str, parties: &[Party]) -> Notice {
    Notice {
        serial: serial.into(),
        marking: Marking::Amber as i32,
        distribution: Some(tessera_node::policy::parse_to(to).expect("to")),
        body: Some(Body::Denial(DenialNotice {
            authority_reference: format!("REF-{serial}"),
            regime_basis: RegimeBasis::Wassenaar as i32,
            legal_basis: "National control list".into(),
            action: DenialAction::Refuse as i32,
            decision_date: "2026-02-02".into(),
            items: vec![tessera_proto::v1::Item {
                control_entry: "3A001".into(),
                ..Default::default()
            }],
            parties: parties
                .iter()
                .map(|p| RoledParty {
                    role: PartyRole::EndUser as i32,
                    party: Some(party_to_wire(p)),
                })
                .collect(),
            destination: "BY".into(),
            status: NoticeStatus::InForce as i32,
            ..Default::default()
        })),
        ..Default::default()
    }
}
