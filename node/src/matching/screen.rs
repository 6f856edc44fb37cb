//! Screening: our parties against every peer's index, privately.
//!
//! For each peer, concurrently: blind our match keys, have the peer evaluate
//! them under its key for us (it learns how many, nothing else), verify the
//! proof against the public key its index was built under, finalise, look the
//! tags up in our replica of its index and open the labels of the hits. A
//! peer that is down, refuses, or fails verification is reported as such,
//! never as "no match".

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use prost::bytes::Bytes;
use tessera_proto::v1::{EvaluateRequest, Match, PartyResult, PeerProblem, ScreenResponse};

use super::findings::{self, Finding, QueryKeys};
use super::own::OwnLists;
use super::replica::{PeerReplica, Replicas};
use crate::exchange::client::{PeerClient, PeerError};
use crate::identity::AgencyId;
use crate::party::{Party, Strength};
use crate::privacy::{self, Disclosure, Label, OprfOutput, PrivacyError};

/// Keys sent per Evaluate call.
pub const EVALUATE_CHUNK: usize = 1_024;
/// Evaluate calls in flight per peer.
const EVALUATE_IN_FLIGHT: usize = 4;

/// Why a peer's answer to a screening is missing. The text is what the
/// operator sees beside the peer; it never holds a key or a party.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    #[error("no index received from this peer yet")]
    NoReplica,
    #[error(
        "screened against an out-of-date copy of its index ({0} change(s) behind the peer's); matches shown are real but a clear is not: screen again once replication catches up"
    )]
    Behind(u64),
    #[error(
        "answered {answered} of {asked} keys, then: {reason}; the parties of the keys not answered are not screened here"
    )]
    Partial {
        answered: usize,
        asked: usize,
        reason: Box<ScreenError>,
    },
    #[error("{}", describe_refusal(.0))]
    Peer(PeerError),
    #[error(
        "its index is still being built ({0} of its notices not indexed yet); matches shown are real but a clear is not: screen again shortly"
    )]
    Indexing(u64),
    #[error("the peer answered under another key epoch; its index will be pulled again")]
    OtherEpoch,
    #[error(
        "its evaluation does not verify against the key its index was built with; answer refused"
    )]
    Unverified,
    #[error("its answer is malformed ({0}); refused")]
    Malformed(PrivacyError),
    #[error("our keys could not be blinded: {0}")]
    Blind(PrivacyError),
    #[error("the screening task stopped before it finished")]
    Task,
}

impl From<PeerError> for ScreenError {
    fn from(e: PeerError) -> Self {
        Self::Peer(e)
    }
}

fn describe_refusal(e: &PeerError) -> String {
    match e.code() {
        tonic::Code::ResourceExhausted => format!("over its query budget: {}", e.reason()),
        tonic::Code::FailedPrecondition
        | tonic::Code::PermissionDenied
        | tonic::Code::InvalidArgument => format!("refused: {}", e.reason()),
        _ => format!("unreachable: {}", e.reason()),
    }
}

/// Why a peer gave no answer.
pub fn problem(peer: &AgencyId, reason: impl Into<String>) -> PeerProblem {
    PeerProblem {
        peer: peer.to_string(),
        reason: reason.into(),
    }
}

/// A holder's evaluation of our keys: the outputs, in key order, and the newest
/// position of its index for us when it answered.
#[derive(Debug)]
pub struct Evaluated {
    pub outputs: Vec<OprfOutput>,
    pub index_position: u64,
}

/// Has `peer` evaluate `keys` (in order) and verifies every answer; all or nothing.
pub async fn evaluate_at(
    client: &dyn PeerClient,
    peer: &AgencyId,
    replica: &PeerReplica,
    keys: &[String],
) -> Result<Evaluated, ScreenError> {
    let blinded = blind_chunks(keys).await?;
    let mut evaluated = Evaluated {
        outputs: Vec::with_capacity(keys.len()),
        index_position: 0,
    };
    for chunk in evaluate_chunks(client, peer, replica, &blinded).await {
        let (outputs, position, _) = chunk?;
        evaluated.outputs.extend(outputs);
        evaluated.index_position = evaluated.index_position.max(position);
    }
    Ok(evaluated)
}

/// One chunk's answer: its outputs, the holder's index position and its notices not yet
/// indexed.
type ChunkAnswer = Result<(Vec<OprfOutput>, u64, u64), ScreenError>;

/// Keys blinded in chunks of [`EVALUATE_CHUNK`], once for every peer: each chunk's blind
/// state and the blinded elements sent to each peer.
///
/// Every peer receives the same blinded elements. Peers that compare what they received
/// can tell that they were asked the same keys by the same querier; they learn nothing of
/// the keys (each element is a fresh uniformly random group element).
pub type BlindedChunks = Vec<(Arc<privacy::BlindState>, Arc<Vec<Bytes>>)>;

/// Blinds `keys` in chunks, on the blocking pool.
pub async fn blind_chunks(keys: &[String]) -> Result<BlindedChunks, ScreenError> {
    let chunks: Vec<Vec<String>> = keys
        .chunks(EVALUATE_CHUNK)
        .map(<[String]>::to_vec)
        .collect();
    tokio::task::spawn_blocking(move || {
        let blind = || {
            chunks
                .iter()
                .map(|chunk| {
                    let refs: Vec<&[u8]> = chunk.iter().map(String::as_bytes).collect();
                    let (state, blinded) = privacy::blind(&refs).map_err(ScreenError::Blind)?;
                    let blinded = blinded.iter().map(|b| Bytes::copy_from_slice(b)).collect();
                    Ok((Arc::new(state), Arc::new(blinded)))
                })
                .collect()
        };
        on_screen_pool(blind)
    })
    .await
    .map_err(|_| ScreenError::Task)?
}

/// Runs `work` on the threads that do a screening's own arithmetic (blinding its keys,
/// evaluating them under our own key), one per core. A pool of their own: on the shared
/// pool a screening would wait in line behind work already there (a peer's overlap count
/// can hold it for a CPU-second); here the scheduler shares the cores between the two. If
/// the pool cannot be made, `work` runs on the shared pool.
pub fn on_screen_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("tessera-screen-{i}"))
            .build()
            .ok()
    });
    match pool {
        Some(pool) => pool.install(work),
        None => work(),
    }
}

/// Has `peer` evaluate the `blinded` chunks, verifying every answer; one result per
/// chunk, in order, so that the chunks a peer did answer (before its budget ran out, say)
/// are kept.
pub async fn evaluate_chunks(
    client: &dyn PeerClient,
    peer: &AgencyId,
    replica: &PeerReplica,
    blinded: &BlindedChunks,
) -> Vec<ChunkAnswer> {
    let epoch = replica.epoch;
    let public_key = replica.public_key;
    // Chunks go out concurrently, so that the peer's evaluation and our finalising of
    // different chunks overlap on all cores.
    let calls = blinded.iter().cloned().map(|(state, elements)| async move {
        let request = EvaluateRequest {
            epoch,
            blinded: elements.as_ref().clone(),
        };
        let response = client.evaluate(peer, request).await?;
        if response.epoch != epoch {
            return Err(ScreenError::OtherEpoch);
        }
        let position = response.index_position;
        let pending = response.pending_notices;
        let outputs = tokio::task::spawn_blocking(move || {
            privacy::finalize(&state, &response.evaluated, &response.proof, &public_key)
        })
        .await
        .map_err(|_| ScreenError::Task)?
        .map_err(|e| match e {
            PrivacyError::ProofInvalid => ScreenError::Unverified,
            other => ScreenError::Malformed(other),
        })?;
        Ok((outputs, position, pending))
    });
    futures::stream::iter(calls)
        .buffered(EVALUATE_IN_FLIGHT)
        .collect()
        .await
}

/// Blinds `keys` into the Evaluate request sent to a holder: the request
/// carries group elements only, never a key.
pub fn blind_request(
    keys: &[String],
    epoch: u32,
) -> Result<(privacy::BlindState, EvaluateRequest), PrivacyError> {
    let refs: Vec<&[u8]> = keys.iter().map(String::as_bytes).collect();
    let (state, blinded) = privacy::blind(&refs)?;
    Ok((
        state,
        EvaluateRequest {
            epoch,
            blinded: blinded.iter().map(|b| Bytes::copy_from_slice(b)).collect(),
        },
    ))
}

/// A match as the operator API shows it.
pub fn to_match(peer: &AgencyId, label: &Label) -> Match {
    let mut m = Match {
        peer: peer.to_string(),
        origin: label.origin.clone(),
        serial: label.serial.clone(),
        authority_reference: label.authority_ref.clone(),
        contact: label.contact.clone(),
        strength: label.strength.clone(),
        key_kinds: vec![label.key_kind.clone()],
        disclosure: label.disclosure.level().to_owned(),
        ..Match::default()
    };
    let summary = match &label.disclosure {
        Disclosure::Pointer => None,
        Disclosure::Summary(s) => Some(s),
        Disclosure::Full { summary, notice } => {
            m.notice_json = notice.to_string();
            Some(summary)
        }
    };
    if let Some(s) = summary {
        m.action.clone_from(&s.action);
        m.control_entries.clone_from(&s.control_entries);
        m.decision_date.clone_from(&s.decision_date);
        m.destination.clone_from(&s.destination);
    }
    m
}

/// A label's strength (a holder's word): unknown words count as weak.
fn strength(word: &str) -> Strength {
    [Strength::Strong, Strength::Medium]
        .into_iter()
        .find(|s| s.as_str() == word)
        .unwrap_or(Strength::Weak)
}

/// Folds a label into the matches of one party, one match per notice.
pub fn add_match(
    matches: &mut BTreeMap<(String, String, String), Match>,
    peer: &AgencyId,
    label: &Label,
) {
    let key = (peer.to_string(), label.origin.clone(), label.serial.clone());
    match matches.get_mut(&key) {
        Some(m) => {
            if !m.key_kinds.contains(&label.key_kind) {
                m.key_kinds.push(label.key_kind.clone());
            }
            if strength(&label.strength) > strength(&m.strength) {
                m.strength.clone_from(&label.strength);
            }
        }
        None => {
            matches.insert(key, to_match(peer, label));
        }
    }
}

/// Hits of `outputs` (for `keys`) in a replica: (key index, label).
pub fn hits(replica: &PeerReplica, outputs: &[OprfOutput]) -> Vec<(usize, Label)> {
    let mut out = Vec::new();
    for (i, y) in outputs.iter().enumerate() {
        let tag = privacy::tag_of(y);
        for entry in replica.lookup.get(&tag) {
            // A row under our tag that does not open is not ours to read.
            if let Ok(label) = entry.open(y) {
                out.push((i, label));
            }
        }
    }
    out
}

/// What one peer answered: outputs (key index, output), the keys whose silence is no
/// clear (not answered, or every key when our copy of its index is behind), and why its
/// answer is not a full one (none: every key, against a current copy).
#[derive(Debug, Default)]
struct PeerAnswer {
    outputs: Vec<(usize, OprfOutput)>,
    missing: Vec<usize>,
    problem: Option<ScreenError>,
}

/// A finding as the operator API shows it: the label's disclosure, the verdict's
/// strength, score and words.
pub fn finding_match(peer: &AgencyId, f: &Finding) -> Match {
    let mut m = to_match(peer, &f.label);
    f.verdict.strength.as_str().clone_into(&mut m.strength);
    m.key_kinds.clone_from(&f.kinds);
    m.why.clone_from(&f.verdict.why);
    m.score = f.verdict.score;
    m.query_names = f.verdict.query_names.iter().map(|&n| n as u32).collect();
    m
}

/// Screens parties against every peer's replica, through the peers'
/// evaluations, and against our own lists.
#[derive(Debug)]
pub struct Screener {
    replicas: Arc<Replicas>,
    client: Arc<dyn PeerClient>,
    peers: Vec<AgencyId>,
    own: Option<Arc<OwnLists>>,
}

impl Screener {
    pub fn new(replicas: Arc<Replicas>, client: Arc<dyn PeerClient>, peers: Vec<AgencyId>) -> Self {
        Self {
            replicas,
            client,
            peers,
            own: None,
        }
    }

    /// Also screens against our own notices.
    #[must_use]
    pub fn with_own(mut self, own: Arc<OwnLists>) -> Self {
        self.own = Some(own);
        self
    }

    /// What our own index finds for `keys` (none when we index nothing of our own yet).
    async fn own_findings(
        &self,
        keys: &Arc<QueryKeys>,
        threshold: f64,
    ) -> Result<Vec<Vec<Finding>>, ScreenError> {
        let Some(own) = self.own.clone() else {
            return Ok(Vec::new());
        };
        // Our copy up to what the indexer has written (a screen right after an import
        // sees all of it).
        let Some(replica) = own.catch_up().await? else {
            return Ok(Vec::new());
        };
        // Nothing of our own indexed: nothing to evaluate.
        if replica.lookup.is_empty() {
            return Ok(Vec::new());
        }
        let keys = keys.clone();
        tokio::task::spawn_blocking(move || {
            let (epoch, outputs) = on_screen_pool(|| own.index.evaluate(&keys.values))?;
            if replica.epoch != epoch {
                return Err(ScreenError::OtherEpoch);
            }
            Ok(findings::find(&replica.lookup, &keys, &outputs, threshold))
        })
        .await
        .map_err(|_| ScreenError::Task)?
    }

    /// One peer's answer for `keys`, blinded as `blinded`.
    async fn at(
        &self,
        peer: &AgencyId,
        keys: &[String],
        blinded: &BlindedChunks,
    ) -> Result<(Arc<PeerReplica>, PeerAnswer), ScreenError> {
        let replica = self.replicas.get(peer).ok_or(ScreenError::NoReplica)?;
        let mut answer = PeerAnswer::default();
        if keys.is_empty() {
            return Ok((replica, answer));
        }
        let mut position = 0;
        let mut pending = 0;
        let mut answered = 0;
        for (c, chunk) in evaluate_chunks(self.client.as_ref(), peer, &replica, blinded)
            .await
            .into_iter()
            .enumerate()
        {
            let start = c * EVALUATE_CHUNK;
            match chunk {
                Ok((outputs, at, not_indexed)) => {
                    position = position.max(at);
                    pending = pending.max(not_indexed);
                    answered += outputs.len();
                    answer
                        .outputs
                        .extend(outputs.into_iter().enumerate().map(|(i, y)| (start + i, y)));
                }
                Err(e) => {
                    let end = (start + EVALUATE_CHUNK).min(keys.len());
                    answer.missing.extend(start..end);
                    answer.problem.get_or_insert(e);
                }
            }
        }
        // Nothing answered: the peer's reason alone, as before.
        if answered == 0 {
            return Err(answer.problem.unwrap_or(ScreenError::Task));
        }
        if let Some(e) = answer.problem.take() {
            answer.problem = Some(ScreenError::Partial {
                answered,
                asked: keys.len(),
                reason: Box::new(e),
            });
        }
        // Against a copy behind the holder's index no key's silence counts, whether or
        // not every chunk was answered. An unreadable cursor counts as nothing applied.
        let applied = self.replicas.cursor(peer).unwrap_or(0);
        let behind = position.saturating_sub(applied);
        if behind > 0 {
            answer.missing = (0..keys.len()).collect();
            answer.problem.get_or_insert(ScreenError::Behind(behind));
        } else if pending > 0 {
            answer.missing = (0..keys.len()).collect();
            answer.problem.get_or_insert(ScreenError::Indexing(pending));
        }
        Ok((replica, answer))
    }

    /// Screens `parties` against every peer, concurrently, reporting fuzzy names from
    /// `threshold` on.
    pub async fn screen(&self, parties: &[Party], threshold: f64) -> ScreenResponse {
        let keys = Arc::new(QueryKeys::of(parties, ""));
        let values = &keys.values;
        // Blinded once for every peer.
        let blinded = match blind_chunks(values).await {
            Ok(b) => b,
            Err(e) => {
                let peers: Vec<String> = self.peers.iter().map(ToString::to_string).collect();
                return ScreenResponse {
                    unavailable: self
                        .peers
                        .iter()
                        .map(|peer| problem(peer, e.to_string()))
                        .collect(),
                    results: (0..parties.len())
                        .map(|i| PartyResult {
                            index: i as u32,
                            keys: keys.per_party[i],
                            matches: Vec::new(),
                            unscreened: peers.clone(),
                        })
                        .collect(),
                    ..ScreenResponse::default()
                };
            }
        };
        let blinded = &blinded;
        // Every peer's answer, each opened as soon as it arrives, and our own lists, all
        // at once.
        let keys_ref = &keys;
        let peers = futures::future::join_all(self.peers.iter().map(|peer| async move {
            let mut answer = self.at(peer, values, blinded).await;
            let found = match &mut answer {
                Ok((replica, answer)) => {
                    let (replica, all) = (replica.clone(), keys_ref.clone());
                    let outputs = std::mem::take(&mut answer.outputs);
                    tokio::task::spawn_blocking(move || {
                        findings::find(&replica.lookup, &all, &outputs, threshold)
                    })
                    .await
                    .unwrap_or_default()
                }
                Err(_) => Vec::new(),
            };
            (peer, answer, found)
        }));
        let (answers, own_found) = futures::join!(peers, self.own_findings(&keys, threshold));
        let mut matches: Vec<Vec<Match>> = vec![Vec::new(); parties.len()];
        let mut response = ScreenResponse::default();
        let mut unscreened: Vec<Vec<String>> = vec![Vec::new(); parties.len()];
        if let Some(own) = &self.own {
            match own_found {
                Ok(found) => {
                    for (p, list) in found.into_iter().enumerate() {
                        matches[p].extend(list.iter().map(|f| {
                            let mut m = finding_match(&own.index.agency, f);
                            m.own = true;
                            own.index.show_whole(&mut m);
                            m
                        }));
                    }
                }
                Err(e) => {
                    // Our own lists unread: no party is clear.
                    tracing::warn!(error = %e, "own lists not screened");
                    response
                        .unavailable
                        .push(problem(&own.index.agency, format!("own lists: {e}")));
                    for p in &mut unscreened {
                        p.push(own.index.agency.to_string());
                    }
                }
            }
        }
        for (peer, answer, found) in answers {
            match answer {
                Ok((_, answer)) => {
                    // Matches found are real; a peer's silence is a clear only when it
                    // answered every key against a current copy of its index.
                    if answer.problem.is_none() {
                        response.screened_peers.push(peer.to_string());
                    } else {
                        tracing::warn!(peer = %peer, missing = answer.missing.len(), "peer did not answer every key against a current index");
                    }
                    for &key in &answer.missing {
                        for p in keys.owners(key) {
                            if !unscreened[p].iter().any(|u| u == peer.as_str()) {
                                unscreened[p].push(peer.to_string());
                            }
                        }
                    }
                    if let Some(reason) = &answer.problem {
                        response.unavailable.push(problem(peer, reason.to_string()));
                    }
                    for (p, list) in found.into_iter().enumerate() {
                        matches[p].extend(list.iter().map(|f| finding_match(peer, f)));
                    }
                }
                Err(reason) => {
                    tracing::warn!(peer = %peer, %reason, "peer not screened");
                    for p in &mut unscreened {
                        p.push(peer.to_string());
                    }
                    response.unavailable.push(problem(peer, reason.to_string()));
                }
            }
        }
        response.results = matches
            .into_iter()
            .enumerate()
            .zip(unscreened)
            .map(|((i, mut m), unscreened)| {
                sort_matches(&mut m);
                PartyResult {
                    index: i as u32,
                    keys: keys.per_party[i],
                    matches: m,
                    unscreened,
                }
            })
            .collect();
        let total: usize = response.results.iter().map(|r| r.matches.len()).sum();
        tracing::info!(
            parties = parties.len(),
            keys = values.len(),
            matches = total,
            "screened"
        );
        response
    }
}

/// Strongest first: by strength, then score, then peer and serial.
pub fn sort_matches(m: &mut [Match]) {
    m.sort_by(|a, b| {
        strength(&b.strength)
            .cmp(&strength(&a.strength))
            .then(b.score.total_cmp(&a.score))
            .then_with(|| (&a.peer, &a.origin, &a.serial).cmp(&(&b.peer, &b.origin, &b.serial)))
    });
}

#[cfg(test)]
mod tests;
