//! Prometheus metrics: names and labels in one place.
//!
//! Off unless `metrics.listen` is set (loopback only). Labels are agency ids,
//! states and kinds, never a party name, identifier or key. The recorder is
//! process-global: one node per process exports metrics.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `tessera_peers_reachable` | gauge | |
//! | `tessera_peer_reachable` | gauge | `peer` |
//! | `tessera_notices_sent_total` | counter | `peer` |
//! | `tessera_notices_received_total` | counter | `peer` |
//! | `tessera_notices_refused_total` | counter | `peer` |
//! | `tessera_sync_lag_notices` | gauge (outbox length) | `peer` |
//! | `tessera_evaluations_total` | counter (keys evaluated) | `peer` |
//! | `tessera_budget_refusals_total` | counter | `peer` |
//! | `tessera_screening_seconds` | histogram | |
//! | `tessera_index_rows` | gauge (rows served) | `peer` |
//! | `tessera_replica_rows` | gauge (rows held) | `peer` |
//! | `tessera_alerts_total` | counter | `kind` |
//! | `tessera_consultations` | gauge | `state` |
//! | `tessera_audit_entries` | gauge | |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use tokio_util::sync::CancellationToken;

use crate::audit::AuditSink;
use crate::consult::deadline::WorkCalendar;
use crate::consult::flow::Consultations;
use crate::identity::AgencyId;
use crate::matching::holder::HolderIndex;
use crate::matching::replica::Replicas;
use crate::notice::store::NoticeStore;
use crate::peers::PeerTable;
use tessera_proto::v1::Consultation;

/// Why the exporter did not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("the histogram buckets: {0}")]
    Buckets(#[source] metrics_exporter_prometheus::BuildError),
    #[error("cannot serve metrics on {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        #[source]
        source: metrics_exporter_prometheus::BuildError,
    },
}

/// Starts the exporter on `addr`.
pub fn install(addr: SocketAddr) -> Result<(), MetricsError> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("tessera_screening_seconds".into()),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
        )
        .map_err(MetricsError::Buckets)?
        .install()
        .map_err(|source| MetricsError::Serve { addr, source })?;
    describe();
    Ok(())
}

/// The HELP line of every metric.
fn describe() {
    describe_gauge!("tessera_peers_reachable", "Peers reachable now.");
    describe_gauge!(
        "tessera_peer_reachable",
        "Whether this peer is reachable now (1) or not (0)."
    );
    describe_counter!(
        "tessera_notices_sent_total",
        "Notice versions delivered to this peer and acknowledged."
    );
    describe_counter!(
        "tessera_notices_received_total",
        "Notice versions received from this peer and stored after verification."
    );
    describe_counter!(
        "tessera_notices_refused_total",
        "Notice versions from this peer refused (bad signature, wrong origin, malformed)."
    );
    describe_gauge!(
        "tessera_sync_lag_notices",
        "Outbox backlog: notice versions waiting for delivery to this peer."
    );
    describe_counter!(
        "tessera_evaluations_total",
        "Match keys this node evaluated for this peer (charged to its budget)."
    );
    describe_counter!(
        "tessera_budget_refusals_total",
        "Evaluation requests from this peer refused for its query budget."
    );
    describe_histogram!(
        "tessera_screening_seconds",
        metrics::Unit::Seconds,
        "Time to screen one request against every peer."
    );
    describe_gauge!(
        "tessera_index_rows",
        "Rows of the labelled index this node serves to this peer."
    );
    describe_gauge!(
        "tessera_replica_rows",
        "Rows of this peer's index held here."
    );
    describe_counter!("tessera_alerts_total", "Alerts raised, by kind.");
    describe_gauge!("tessera_consultations", "Consultations, by state.");
    describe_gauge!("tessera_audit_entries", "Entries in the audit chain.");
}

pub fn notices_sent(peer: &AgencyId, n: u64) {
    counter!("tessera_notices_sent_total", "peer" => peer.to_string()).increment(n);
}

pub fn notices_received(peer: &AgencyId, n: u64) {
    counter!("tessera_notices_received_total", "peer" => peer.to_string()).increment(n);
}

pub fn notices_refused(peer: &AgencyId, n: u64) {
    counter!("tessera_notices_refused_total", "peer" => peer.to_string()).increment(n);
}

pub fn evaluations(peer: &AgencyId, keys: u64) {
    counter!("tessera_evaluations_total", "peer" => peer.to_string()).increment(keys);
}

pub fn budget_refusal(peer: &AgencyId) {
    counter!("tessera_budget_refusals_total", "peer" => peer.to_string()).increment(1);
}

pub fn screening(elapsed: Duration) {
    histogram!("tessera_screening_seconds").record(elapsed.as_secs_f64());
}

pub fn alert(kind: &str) {
    counter!("tessera_alerts_total", "kind" => kind.to_owned()).increment(1);
}

/// What the gauges are sampled from.
#[derive(Debug)]
pub struct Sampler {
    pub peers: Arc<PeerTable>,
    pub notices: Arc<NoticeStore>,
    pub holder: Arc<HolderIndex>,
    pub replicas: Arc<Replicas>,
    pub audit: AuditSink,
    /// Consultations, and each one's calendar (a bloc charter's holidays included).
    pub consultations: Arc<Consultations>,
}

/// How many of `all` are in each state on `today`, each counted on the calendar of its
/// peer (`calendar_for`), as its deadline is.
fn consultations_by_state(
    all: &[Consultation],
    today: time::Date,
    calendar_for: impl Fn(&str) -> WorkCalendar,
) -> std::collections::BTreeMap<&'static str, u64> {
    let mut by_state: std::collections::BTreeMap<&'static str, u64> =
        ["open", "due_soon", "overdue", "answered", "closed"]
            .into_iter()
            .map(|s| (s, 0))
            .collect();
    for c in all {
        let state = crate::consult::machine::state(c, today, &calendar_for(&c.peer));
        *by_state.entry(state.as_str()).or_default() += 1;
    }
    by_state
}

impl Sampler {
    /// One sample of every gauge. A count that cannot be read is left as it was.
    pub fn sample(&self) {
        let snapshot = self.peers.snapshot();
        let reachable = snapshot.iter().filter(|(_, _, s)| s.reachable).count();
        gauge!("tessera_peers_reachable").set(reachable as f64);
        for (peer, _, state) in &snapshot {
            let p = peer.to_string();
            gauge!("tessera_peer_reachable", "peer" => p.clone()).set(if state.reachable {
                1.0
            } else {
                0.0
            });
            if let Ok(n) = self.notices.outbox_len(peer) {
                gauge!("tessera_sync_lag_notices", "peer" => p.clone()).set(n as f64);
            }
            if let Ok(n) = self.holder.live_rows(peer) {
                gauge!("tessera_index_rows", "peer" => p.clone()).set(n as f64);
            }
            let held = self.replicas.get(peer).map_or(0, |r| r.lookup.len());
            gauge!("tessera_replica_rows", "peer" => p).set(held as f64);
        }
        gauge!("tessera_audit_entries").set(self.audit.log().len() as f64);
        if let Ok(all) = self.consultations.consults.list() {
            let today = crate::notice::dates::today();
            let by_state =
                consultations_by_state(&all, today, |peer| self.consultations.calendar_for(peer));
            for (state, n) in by_state {
                gauge!("tessera_consultations", "state" => state).set(n as f64);
            }
        }
    }

    /// Samples the gauges every few seconds until `stop`. Every per-peer counter is
    /// exported from the start, at 0, so a rate has a first point.
    pub async fn run(self, stop: CancellationToken) {
        for (peer, _, _) in self.peers.snapshot() {
            let p = peer.to_string();
            for name in [
                "tessera_notices_sent_total",
                "tessera_notices_received_total",
                "tessera_notices_refused_total",
                "tessera_evaluations_total",
                "tessera_budget_refusals_total",
            ] {
                counter!(name, "peer" => p.clone()).increment(0);
            }
        }
        loop {
            self.sample();
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notice::dates::parse;

    #[test]
    fn a_consultation_is_counted_on_its_peers_calendar() {
        // Due on Friday 2026-12-11; on Tuesday the 8th it has 3 working days left (open),
        // or 2 when a charter makes the 9th a holiday with this peer (due soon).
        let due = |peer: &str| Consultation {
            peer: peer.into(),
            due: "2026-12-11".into(),
            ..Consultation::default()
        };
        let all = [due("FR-SBDU"), due("US-BIS")];
        let today = parse("2026-12-08").unwrap();
        let holiday = parse("2026-12-09").unwrap();
        let by_state = consultations_by_state(&all, today, |peer| {
            let own = WorkCalendar::new([]);
            if peer == "FR-SBDU" {
                own.with([holiday])
            } else {
                own
            }
        });
        assert_eq!(by_state["open"], 1);
        assert_eq!(by_state["due_soon"], 1);
        assert_eq!(by_state["overdue"], 0);
    }
}
