//! What a peer's copy of the index costs per listed name: every entry of the holder's list
//! (the SDN with its aliases) in a denial shared with one peer, its rows built as the node
//! builds them (`sources_for_peer`), and their bytes on the wire counted by kind of row.
//! No OPRF is evaluated: a row's length does not depend on its output.

use serde::Serialize;
use tessera_node::matching::labels::{label_pointer_of, sources_for_peer};
use tessera_node::notice::json::{self, party_to_wire};
use tessera_node::party::Party;
use tessera_node::policy::DisclosureLevel;
use tessera_node::privacy::RowSource;
use tessera_node::privacy::threshold::{RECORD_NAME, RECORD_SHARE};
use tessera_proto::v1::notice::Body;
use tessera_proto::v1::{Notice, PartyRole, RoledParty};

const DENIAL: &str = include_str!("../../../examples/notices/denial.json");
const PEER: &str = "FR-SBDU";

/// Bytes and rows of one kind of row, per listed name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RowKind {
    pub kind: &'static str,
    pub rows: usize,
    pub bytes: usize,
    pub bytes_per_name: f64,
}

/// The index of a whole list as one peer receives it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SizeReport {
    pub disclosure: String,
    pub entries: usize,
    /// Names of the entries: primary names, aliases and original-script names.
    pub names: usize,
    pub rows: usize,
    pub bytes: usize,
    pub bytes_per_name: f64,
    /// The replica per million listed names, in MB (10^6 bytes).
    pub mb_per_million_names: f64,
    pub by_kind: Vec<RowKind>,
}

impl SizeReport {
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = self
            .by_kind
            .iter()
            .map(|k| format!("{} {:.0} B ({} rows)", k.kind, k.bytes_per_name, k.rows))
            .collect();
        format!(
            "Index size ({} disclosure): {} entries, {} names, {} rows, {:.0} bytes per listed name \
             ({:.0} MB per million names): {}",
            self.disclosure,
            self.entries,
            self.names,
            self.rows,
            self.bytes_per_name,
            self.mb_per_million_names,
            kinds.join(", ")
        )
    }
}

fn kind_of(row: &RowSource) -> usize {
    match row {
        RowSource::Pointer { relation, .. } if label_pointer_of(*relation).is_some() => 0,
        RowSource::Pointer { .. } => 1,
        RowSource::Derived { body, .. } if body.first() == Some(&RECORD_SHARE) => 2,
        RowSource::Derived { body, .. } if body.first() == Some(&RECORD_NAME) => 3,
        RowSource::Derived { .. } => 4,
    }
}

const KINDS: [&str; 5] = [
    "exact-key pointers",
    "name-part pointers",
    "share rows",
    "name rows",
    "label rows",
];

/// The rows of every party in `listed`, one denial each, as one peer at `level` receives
/// them, per notice (the holder builds them in chunks of notices).
pub fn rows_per_notice(
    listed: &[Party],
    level: DisclosureLevel,
) -> anyhow::Result<Vec<Vec<RowSource>>> {
    let template: Notice = json::parse(DENIAL)
        .map_err(|e| anyhow::anyhow!(e))?
        .to_notice()?;
    listed
        .iter()
        .enumerate()
        .map(|(i, party)| {
            let mut notice = template.clone();
            notice.serial = format!("SIZE-{i}");
            if let Some(Body::Denial(d)) = notice.body.as_mut() {
                d.authority_reference = format!("SIZE-{i}");
                d.parties = vec![RoledParty {
                    role: PartyRole::EndUser as i32,
                    party: Some(party_to_wire(party)),
                }];
            }
            Ok(sources_for_peer(
                &notice,
                &[PEER.to_owned()],
                PEER,
                level,
                "",
            )?)
        })
        .collect()
}

/// Builds the rows of every party in `listed` (one denial each) for one peer at `level`.
pub fn measure(listed: &[Party], level: DisclosureLevel) -> anyhow::Result<SizeReport> {
    let mut by_kind: Vec<RowKind> = KINDS
        .iter()
        .map(|kind| RowKind {
            kind,
            ..RowKind::default()
        })
        .collect();
    let names: usize = listed
        .iter()
        .map(|p| 1 + p.aliases.len() + p.original_script_names.len())
        .sum();
    for row in rows_per_notice(listed, level)?.iter().flatten() {
        let k = &mut by_kind[kind_of(row)];
        k.rows += 1;
        k.bytes += row.wire_len();
    }
    let per_name = |b: usize| b as f64 / names.max(1) as f64;
    for k in &mut by_kind {
        k.bytes_per_name = per_name(k.bytes);
    }
    let bytes = by_kind.iter().map(|k| k.bytes).sum();
    Ok(SizeReport {
        disclosure: level.as_str().to_owned(),
        entries: listed.len(),
        names,
        rows: by_kind.iter().map(|k| k.rows).sum(),
        bytes,
        bytes_per_name: per_name(bytes),
        mb_per_million_names: per_name(bytes),
        by_kind,
    })
}
