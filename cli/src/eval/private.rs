//! The private path of `tessera eval screening`: the listed party of each pair in a denial
//! at one real node (DE-BAFA, to FR-SBDU only), the query parties screened from the other
//! over mutual TLS, through the OPRF, the replicated index and the threshold opening of
//! fuzzy names. Every answer is compared with the clear computation of the same pair
//! ([`super::oracle::verdict_of`]): strength, score, words and names must be equal.

use std::time::{Duration, Instant};

use serde::Serialize;
use tessera_node::matching::labels::sources_for_peer;
use tessera_node::notice::json::{self, party_to_wire};
use tessera_node::party::verdict::{DEFAULT_THRESHOLD, MEDIUM_SIMILARITY};
use tessera_node::policy::DisclosureLevel;
use tessera_node::privacy::RowSource;
use tessera_proto::v1::notice::Body;
use tessera_proto::v1::{
    IssueNoticeRequest, Match, PartyRole, RoledParty, ScreenRequest, ScreenResponse,
};

use super::dataset::Pair;
use super::oracle;
use super::screening::Quality;
use crate::federation::LocalFederation;

const DENIAL: &str = include_str!("../../../examples/notices/denial.json");
const HOLDER: &str = "DE-BAFA";
const QUERIER: &str = "FR-SBDU";
/// Parties per screening call.
const BATCH: usize = 200;

/// Pairs screened privately, how many answers differed from the clear computation, and
/// the quality and cost of the private path on them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PrivateReport {
    pub pairs: usize,
    pub disagreements: usize,
    /// At the default threshold, and medium or stronger only (pairs of both splits).
    pub at_default: Quality,
    pub medium: Quality,
    /// Keys evaluated per query party: mean and largest.
    pub keys_per_party_mean: f64,
    pub keys_per_party_max: u32,
    /// Index rows the listed parties' notices give the querier, and their bytes on the
    /// wire (tag, nonce, sealed record), per listed party.
    pub index_rows: usize,
    pub index_bytes_per_party: f64,
    pub seconds_to_index_and_replicate: f64,
    pub seconds_to_screen: f64,
}

impl PrivateReport {
    pub fn summary(&self) -> String {
        format!(
            "Private path (two real nodes, mutual TLS): {} pairs screened, {} answers differ from the clear computation\n  \
             at {DEFAULT_THRESHOLD}: precision {:.3} recall {:.3}; medium or stronger: precision {:.3} recall {:.3}\n  \
             keys per query party mean {:.1} max {}; {} index rows, {:.0} bytes per listed party; indexed and replicated in {:.1} s, screened in {:.1} s",
            self.pairs,
            self.disagreements,
            self.at_default.precision,
            self.at_default.recall,
            self.medium.precision,
            self.medium.recall,
            self.keys_per_party_mean,
            self.keys_per_party_max,
            self.index_rows,
            self.index_bytes_per_party,
            self.seconds_to_index_and_replicate,
            self.seconds_to_screen,
        )
    }
}

/// Every `⌈n / limit⌉`-th of the counted pairs (at most `limit`).
pub fn sample(pairs: &[Pair], limit: usize) -> Vec<&Pair> {
    let counted: Vec<&Pair> = pairs
        .iter()
        .filter(|p| super::screening::counted(p))
        .collect();
    let step = counted.len().div_ceil(limit.max(1)).max(1);
    counted.into_iter().step_by(step).take(limit).collect()
}

/// Screens `pairs` through two real nodes and compares with the clear answers.
pub async fn run(pairs: &[&Pair]) -> anyhow::Result<PrivateReport> {
    let fed = LocalFederation::start_with(&[HOLDER, QUERIER], Duration::from_millis(200), |c| {
        c.sync.pull_interval_ms = 200;
        c.privacy.keys_per_day = 100_000_000;
        c.privacy.burst = 10_000_000;
    })
    .await?;
    let result = measure(&fed, pairs).await;
    fed.shutdown().await?;
    result
}

async fn measure(fed: &LocalFederation, pairs: &[&Pair]) -> anyhow::Result<PrivateReport> {
    let holder = &fed.nodes[0];
    let querier = &fed.nodes[1];
    fed.wait_all_reachable(Duration::from_secs(30)).await?;
    let template = json::parse(DENIAL)
        .map_err(|e| anyhow::anyhow!(e))?
        .to_notice()?;
    let started = Instant::now();
    let mut serials = Vec::with_capacity(pairs.len());
    let mut op = holder.operator()?;
    let (mut rows, mut bytes) = (0, 0);
    for (i, pair) in pairs.iter().enumerate() {
        let mut notice = template.clone();
        notice.distribution = Some(tessera_node::policy::parse_to(&format!("peer:{QUERIER}"))?);
        if let Some(Body::Denial(d)) = notice.body.as_mut() {
            d.authority_reference = format!("EVAL-{i}");
            d.parties = vec![RoledParty {
                role: PartyRole::EndUser as i32,
                party: Some(party_to_wire(&pair.listed)),
            }];
        }
        let sources = sources_for_peer(
            &notice,
            &[QUERIER.to_owned()],
            QUERIER,
            DisclosureLevel::Pointer,
            "",
        )?;
        rows += sources.len();
        bytes += sources.iter().map(RowSource::wire_len).sum::<usize>();
        let issued = op
            .issue_notice(IssueNoticeRequest {
                notice: Some(notice),
            })
            .await
            .map_err(|s| crate::client::explain_call(&holder.cli, &s))?
            .into_inner();
        serials.push(issued.serial);
    }
    // Screen until the querier's copy of the index has caught up (no peer behind).
    let queries: Vec<_> = pairs.iter().map(|p| party_to_wire(&p.query)).collect();
    let qop = querier.operator()?;
    let screen = |parties: Vec<_>| {
        let mut qop = qop.clone();
        async move {
            qop.screen(ScreenRequest {
                parties,
                threshold: DEFAULT_THRESHOLD,
            })
            .await
            .map(tonic::Response::into_inner)
        }
    };
    let probe = queries.iter().take(1).cloned().collect::<Vec<_>>();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        // Every row of every pair's notice indexed and held by the querier, and the
        // holder's position reached (a screening then names no peer as behind).
        let held = querier
            .status()
            .await?
            .peers
            .iter()
            .find(|p| p.agency == HOLDER)
            .map_or(0, |p| p.index_rows);
        let r = screen(probe.clone()).await?;
        if held >= rows as u64
            && r.unavailable.is_empty()
            && r.screened_peers.iter().any(|p| p == HOLDER)
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the querier's copy of the index did not catch up: {:?}",
            r.unavailable
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let indexed = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut responses: Vec<ScreenResponse> = Vec::new();
    for chunk in queries.chunks(BATCH) {
        let r = screen(chunk.to_vec()).await?;
        anyhow::ensure!(
            r.unavailable.is_empty(),
            "a peer did not answer: {:?}",
            r.unavailable
        );
        responses.push(r);
    }
    let screened = started.elapsed().as_secs_f64();
    let mut report = PrivateReport {
        pairs: pairs.len(),
        seconds_to_index_and_replicate: indexed,
        seconds_to_screen: screened,
        index_rows: rows,
        index_bytes_per_party: bytes as f64 / pairs.len().max(1) as f64,
        ..PrivateReport::default()
    };
    let mut outcomes = Vec::new();
    let mut medium = Vec::new();
    let mut keys_total = 0u64;
    let results = responses.iter().flat_map(|r| &r.results);
    for ((pair, serial), result) in pairs.iter().zip(&serials).zip(results) {
        keys_total += u64::from(result.keys);
        report.keys_per_party_max = report.keys_per_party_max.max(result.keys);
        let found: Option<&Match> = result
            .matches
            .iter()
            .find(|m| m.origin == HOLDER && &m.serial == serial);
        let clear = oracle::verdict_of(&pair.query, &pair.listed, DEFAULT_THRESHOLD);
        let same = match (found, &clear) {
            (None, None) => true,
            (Some(m), Some(v)) => {
                m.strength == v.strength.as_str()
                    && (m.score - v.score).abs() < 1e-9
                    && m.why == v.why
                    && m.query_names
                        .iter()
                        .map(|n| *n as usize)
                        .eq(v.query_names.iter().copied())
            }
            _ => false,
        };
        report.disagreements += usize::from(!same);
        outcomes.push((pair.positive, found.is_some()));
        medium.push((pair.positive, found.is_some_and(|m| m.strength != "weak")));
    }
    report.keys_per_party_mean = keys_total as f64 / pairs.len().max(1) as f64;
    report.at_default = Quality::of(&outcomes, DEFAULT_THRESHOLD);
    report.medium = Quality::of(&medium, MEDIUM_SIMILARITY);
    Ok(report)
}
