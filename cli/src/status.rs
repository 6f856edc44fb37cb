//! `tessera status`: the node's identity and its peers, as a table or JSON.

use std::fmt::Write as _;

use serde::Serialize;
use tessera_proto::v1::StatusResponse;

/// The JSON form of a status (stable field names for scripts).
#[derive(Debug, Serialize)]
pub struct StatusJson<'a> {
    pub agency: &'a str,
    pub software_version: &'a str,
    pub protocol_version: u32,
    pub signing_key_id: &'a str,
    pub federation_address: &'a str,
    pub started_at: i64,
    /// Notices of the node's own feed not yet indexed for its peers.
    pub unindexed_notices: u64,
    pub peers: Vec<PeerJson<'a>>,
}

#[derive(Debug, Serialize)]
pub struct PeerJson<'a> {
    pub agency: &'a str,
    pub endpoint: &'a str,
    pub reachable: bool,
    pub last_seen_ms: Option<i64>,
    pub rtt_ms: Option<f64>,
    pub last_error: Option<&'a str>,
    pub software_version: &'a str,
    pub signing_key_id: &'a str,
}

pub fn to_json(s: &StatusResponse) -> StatusJson<'_> {
    StatusJson {
        agency: &s.agency,
        software_version: &s.software_version,
        protocol_version: s.protocol_version,
        signing_key_id: &s.signing_key_id,
        federation_address: &s.federation_address,
        started_at: s.started_at,
        unindexed_notices: s.unindexed_notices,
        peers: s
            .peers
            .iter()
            .map(|p| PeerJson {
                agency: &p.agency,
                endpoint: &p.endpoint,
                reachable: p.reachable,
                last_seen_ms: (p.last_seen_ms > 0).then_some(p.last_seen_ms),
                rtt_ms: (p.rtt_us > 0).then(|| p.rtt_us as f64 / 1000.0),
                last_error: (!p.last_error.is_empty()).then_some(p.last_error.as_str()),
                software_version: &p.software_version,
                signing_key_id: &p.signing_key_id,
            })
            .collect(),
    }
}

/// The human table.
pub fn render(s: &StatusResponse, now_ms: i64) -> String {
    let mut rows = vec![[
        "PEER".to_owned(),
        "ENDPOINT".to_owned(),
        "REACHABLE".to_owned(),
        "LAST SEEN".to_owned(),
        "RTT".to_owned(),
        "VERSION".to_owned(),
        "NOTE".to_owned(),
    ]];
    for p in &s.peers {
        rows.push([
            p.agency.clone(),
            p.endpoint.clone(),
            if p.reachable { "yes" } else { "no" }.to_owned(),
            if p.last_seen_ms > 0 {
                format!(
                    "{:.1} s ago",
                    (now_ms - p.last_seen_ms).max(0) as f64 / 1000.0
                )
            } else {
                "never".to_owned()
            },
            if p.rtt_us > 0 {
                format!("{:.1} ms", p.rtt_us as f64 / 1000.0)
            } else {
                "-".to_owned()
            },
            if p.software_version.is_empty() {
                "-".to_owned()
            } else {
                p.software_version.clone()
            },
            p.last_error.clone(),
        ]);
    }
    let mut out = format!(
        "{}  tessera {}  protocol {}  signing key {}  federation {}\n",
        s.agency, s.software_version, s.protocol_version, s.signing_key_id, s.federation_address
    );
    if s.unindexed_notices > 0 {
        let _ = writeln!(
            out,
            "indexing: {} of its notices not yet indexed for its peers (their screens cannot give a clear until then)",
            s.unindexed_notices
        );
    }
    out.push_str(&crate::table::render(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(unindexed: u64) -> StatusResponse {
        StatusResponse {
            agency: "US-BIS".into(),
            unindexed_notices: unindexed,
            ..StatusResponse::default()
        }
    }

    #[test]
    fn an_index_being_built_is_said_and_an_idle_one_is_not() {
        let busy = render(&status(1_969), 0);
        assert!(
            busy.contains("indexing: 1969 of its notices not yet indexed for its peers"),
            "{busy}"
        );
        assert!(!render(&status(0), 0).contains("indexing"));
        let json = serde_json::to_value(to_json(&status(7))).expect("json");
        assert_eq!(json["unindexed_notices"], 7);
    }
}
