//! Turning entries of the public screening lists into denial notices, for
//! `tessera notice import`.
//!
//! From the Consolidated Screening List only the export-control lists are
//! taken (BIS Entity List, Denied Persons, Unverified and Military End User
//! lists); every entry of the other formats is taken. Each entry becomes a
//! denial with the list as legal basis and the list's own id as authority
//! reference; its serial is derived from the list and that id, so importing
//! the same file again finds every notice unchanged. Entries of one file that
//! share an id (the DPL lists one denial once per address) become one notice.

use std::collections::BTreeMap;

use tessera_proto::v1::{
    DenialAction, DenialNotice, Marking, Notice, NoticeStatus, PartyRole, RegimeBasis, RoledParty,
    notice::Body,
};

use super::dates;
use super::json::party_to_wire;
use crate::lists::{Format, ListRecord};

/// CSL sources imported as denials, with the short code used in serials.
const CSL_EXPORT_CONTROL: &[(&str, &str)] = &[
    ("Entity List (EL) - Bureau of Industry and Security", "EL"),
    (
        "Denied Persons List (DPL) - Bureau of Industry and Security",
        "DPL",
    ),
    (
        "Unverified List (UVL) - Bureau of Industry and Security",
        "UVL",
    ),
    (
        "Military End User (MEU) List - Bureau of Industry and Security",
        "MEU",
    ),
];

/// The import of one file, before it is sent to the node.
#[derive(Debug, Default)]
pub struct Converted {
    /// (source line, notice) in file order.
    pub notices: Vec<(u64, Notice)>,
    /// Entries of lists that are not imported (e.g. CSL sanctions lists).
    pub skipped: usize,
    /// Entries merged into an earlier one with the same id.
    pub merged: usize,
}

/// The short code of a list for serials, or `None` when it is not imported.
fn code(format: Format, list: &str) -> Option<String> {
    match format {
        Format::Csl => CSL_EXPORT_CONTROL
            .iter()
            .find(|(name, _)| *name == list)
            .map(|(_, c)| (*c).to_owned()),
        Format::Dpl => Some("DPL".into()),
        Format::Sdn => Some("SDN".into()),
        Format::Un => Some("UN".into()),
        // Prefixed by format, so that a JSON Lines entry claiming list "SDN"
        // can never overwrite a notice made by the SDN import.
        Format::Ftm | Format::Jsonl => {
            let name: String = list
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(16)
                .collect::<String>()
                .to_ascii_uppercase();
            let prefix = if format == Format::Ftm {
                "FTM"
            } else {
                "JSONL"
            };
            Some(if name.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{name}")
            })
        }
    }
}

fn legal_basis(format: Format, list: &str) -> String {
    match format {
        Format::Sdn => "OFAC Specially Designated Nationals (SDN) List".into(),
        Format::Dpl => "BIS Denied Persons List".into(),
        Format::Un => "UN Security Council Consolidated List".into(),
        _ => list.to_owned(),
    }
}

/// Keeps a serial within the notice serial alphabet and length.
pub fn serial(code: &str, id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut s = format!("{code}-{clean}");
    s.truncate(64);
    s
}

/// Converts read records into notices (distribution and marking are set by the caller).
pub fn convert(format: Format, records: Vec<ListRecord>) -> Converted {
    let mut out = Converted::default();
    let mut by_serial: BTreeMap<String, usize> = BTreeMap::new();
    let today = dates::today();
    for record in records {
        let Some(code) = code(format, &record.list) else {
            out.skipped += 1;
            continue;
        };
        let serial = serial(&code, &record.list_id);
        if let Some(&at) = by_serial.get(&serial) {
            merge(&mut out.notices[at].1, &record);
            out.merged += 1;
            continue;
        }
        let expired = record
            .end_date
            .as_deref()
            .and_then(dates::parse)
            .is_some_and(|d| d < today);
        let mut reason = record.programs.join("; ");
        if let Some(fr) = &record.federal_register_notice {
            if !reason.is_empty() {
                reason.push_str("; ");
            }
            reason.push_str(fr);
        }
        let denial = DenialNotice {
            authority_reference: record
                .reference
                .clone()
                .unwrap_or_else(|| record.list_id.clone()),
            regime_basis: RegimeBasis::National as i32,
            legal_basis: legal_basis(format, &record.list),
            action: DenialAction::Refuse as i32,
            decision_date: record.start_date.clone().unwrap_or_default(),
            review_due: String::new(),
            items: Vec::new(),
            parties: vec![RoledParty {
                role: PartyRole::Subject as i32,
                party: Some(party_to_wire(&record.party)),
            }],
            destination: String::new(),
            end_use: String::new(),
            reason,
            status: if expired {
                NoticeStatus::Expired
            } else {
                NoticeStatus::InForce
            } as i32,
        };
        by_serial.insert(serial.clone(), out.notices.len());
        out.notices.push((
            record.line,
            Notice {
                serial,
                body: Some(Body::Denial(denial)),
                marking: Marking::Green as i32,
                ..Notice::default()
            },
        ));
    }
    out
}

/// Folds a second entry with the same id into the notice: its addresses,
/// names and identifiers are added where new.
fn merge(notice: &mut Notice, record: &ListRecord) {
    let Some(Body::Denial(d)) = notice.body.as_mut() else {
        return;
    };
    let Some(party) = d.parties.first_mut().and_then(|p| p.party.as_mut()) else {
        return;
    };
    let extra = party_to_wire(&record.party);
    let add = |into: &mut Vec<String>, from: Vec<String>| {
        for v in from {
            if !into.contains(&v) {
                into.push(v);
            }
        }
    };
    add(&mut party.addresses, extra.addresses);
    add(&mut party.countries, extra.countries);
    add(
        &mut party.original_script_names,
        extra.original_script_names,
    );
    let mut names = extra.aliases;
    if extra.name != party.name {
        names.push(extra.name);
    }
    add(&mut party.aliases, names);
    for id in extra.ids {
        if !party.ids.contains(&id) {
            party.ids.push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::party::Party;

    fn record(list: &str, id: &str, name: &str, line: u64) -> ListRecord {
        ListRecord {
            line,
            list: list.into(),
            list_id: id.into(),
            party: Party {
                name: name.into(),
                addresses: vec![format!("address {line}")],
                ..Party::default()
            },
            start_date: Some("2020-01-02".into()),
            ..ListRecord::default()
        }
    }

    #[test]
    fn csl_takes_only_export_control_lists() {
        let rows = vec![
            record(CSL_EXPORT_CONTROL[0].0, "1", "A", 2),
            record(
                "Specially Designated Nationals (SDN) - Treasury Department",
                "2",
                "B",
                3,
            ),
            record(CSL_EXPORT_CONTROL[3].0, "3", "C", 4),
        ];
        let c = convert(Format::Csl, rows);
        assert_eq!(c.notices.len(), 2);
        assert_eq!(c.skipped, 1);
        assert_eq!(c.notices[0].1.serial, "EL-1");
        assert_eq!(c.notices[1].1.serial, "MEU-3");
    }

    #[test]
    fn same_id_merges_addresses() {
        let rows = vec![
            record("DPL", "DPL-ab", "A", 2),
            record("DPL", "DPL-ab", "A", 3),
        ];
        let c = convert(Format::Dpl, rows);
        assert_eq!(c.notices.len(), 1);
        assert_eq!(c.merged, 1);
        let Some(Body::Denial(d)) = &c.notices[0].1.body else {
            panic!()
        };
        assert_eq!(d.parties[0].party.as_ref().unwrap().addresses.len(), 2);
    }

    #[test]
    fn serials_stay_in_the_alphabet() {
        assert_eq!(serial("SDN", "12 34/5"), "SDN-12-34-5");
        assert_eq!(serial("X", &"9".repeat(100)).len(), 64);
    }
}
