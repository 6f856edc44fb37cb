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
use tessera_proto::v1::{EvaluateRequest, Match, PartyResult, PeerProblem, ScreenResponse};

use super::replica::{PeerReplica, Replicas};
use crate::exchange::client::{PeerClient, PeerError};
use crate::identity::AgencyId;
use crate::party::{self, Party, Strength};
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
    let mut evaluated = Evaluated {
        outputs: Vec::with_capacity(keys.len()),
        index_position: 0,
    };
    for chunk in evaluate_chunks(client, peer, replica, keys).await {
        let (outputs, position) = chunk?;
        evaluated.outputs.extend(outputs);
        evaluated.index_position = evaluated.index_position.max(position);
    }
    Ok(evaluated)
}

/// One chunk's answer: its outputs and the holder's index position.
type ChunkAnswer = Result<(Vec<OprfOutput>, u64), ScreenError>;

/// Has `peer` evaluate `keys` in chunks of [`EVALUATE_CHUNK`], verifying every answer;
/// one result per chunk, in order, so that the chunks a peer did answer (before its
/// budget ran out, say) are kept.
pub async fn evaluate_chunks(
    client: &dyn PeerClient,
    peer: &AgencyId,
    replica: &PeerReplica,
    keys: &[String],
) -> Vec<ChunkAnswer> {
    let epoch = replica.epoch;
    let public_key = replica.public_key;
    // Chunks go out concurrently, so that blinding, the peer's evaluation
    // and finalising of different chunks overlap on all cores.
    let chunks: Vec<Vec<String>> = keys
        .chunks(EVALUATE_CHUNK)
        .map(<[String]>::to_vec)
        .collect();
    let calls = chunks.into_iter().map(|chunk| async move {
        let (state, request) = tokio::task::spawn_blocking(move || blind_request(&chunk, epoch))
            .await
            .map_err(|_| ScreenError::Task)?
            .map_err(ScreenError::Blind)?;
        let response = client.evaluate(peer, request).await?;
        if response.epoch != epoch {
            return Err(ScreenError::OtherEpoch);
        }
        let position = response.index_position;
        let outputs = tokio::task::spawn_blocking(move || {
            privacy::finalize(state, &response.evaluated, &response.proof, &public_key)
        })
        .await
        .map_err(|_| ScreenError::Task)?
        .map_err(|e| match e {
            PrivacyError::ProofInvalid => ScreenError::Unverified,
            other => ScreenError::Malformed(other),
        })?;
        Ok((outputs, position))
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
            blinded: blinded.iter().map(|b| b.to_vec()).collect(),
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

/// What one peer answered: hits (key index, label), the keys whose silence is no clear
/// (not answered, or every key when our copy of its index is behind), and why its answer
/// is not a full one (none: every key, against a current copy).
#[derive(Debug, Default)]
struct PeerAnswer {
    hits: Vec<(usize, Label)>,
    missing: Vec<usize>,
    problem: Option<ScreenError>,
}

/// Screens parties against every peer's replica, through the peers'
/// evaluations.
#[derive(Debug)]
pub struct Screener {
    replicas: Arc<Replicas>,
    client: Arc<dyn PeerClient>,
    peers: Vec<AgencyId>,
}

impl Screener {
    pub fn new(replicas: Arc<Replicas>, client: Arc<dyn PeerClient>, peers: Vec<AgencyId>) -> Self {
        Self {
            replicas,
            client,
            peers,
        }
    }

    /// One peer's answer for `keys`.
    async fn at(&self, peer: &AgencyId, keys: &[String]) -> Result<PeerAnswer, ScreenError> {
        let replica = self.replicas.get(peer).ok_or(ScreenError::NoReplica)?;
        let mut answer = PeerAnswer::default();
        if keys.is_empty() {
            return Ok(answer);
        }
        let mut position = 0;
        let mut answered = 0;
        for (c, chunk) in evaluate_chunks(self.client.as_ref(), peer, &replica, keys)
            .await
            .into_iter()
            .enumerate()
        {
            let start = c * EVALUATE_CHUNK;
            match chunk {
                Ok((outputs, at)) => {
                    position = position.max(at);
                    answered += outputs.len();
                    for (i, label) in hits(&replica, &outputs) {
                        answer.hits.push((start + i, label));
                    }
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
        }
        Ok(answer)
    }

    /// Screens `parties` against every peer, concurrently.
    pub async fn screen(&self, parties: &[Party]) -> ScreenResponse {
        let mut keys: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let mut per_party = vec![0u32; parties.len()];
        for (p, party) in parties.iter().enumerate() {
            for k in party::exact_keys(party, party::Side::Query) {
                per_party[p] += 1;
                let i = *index.entry(k.value.clone()).or_insert_with(|| {
                    keys.push(k.value.clone());
                    owners.push(Vec::new());
                    keys.len() - 1
                });
                if !owners[i].contains(&p) {
                    owners[i].push(p);
                }
            }
        }
        let keys = &keys;
        let answers = futures::future::join_all(
            self.peers
                .iter()
                .map(|peer| async move { (peer, self.at(peer, keys).await) }),
        )
        .await;
        let mut matches: Vec<BTreeMap<(String, String, String), Match>> =
            vec![BTreeMap::new(); parties.len()];
        let mut response = ScreenResponse::default();
        let mut unscreened: Vec<Vec<String>> = vec![Vec::new(); parties.len()];
        for (peer, answer) in answers {
            match answer {
                Ok(answer) => {
                    // Matches found are real; a peer's silence is a clear only when it
                    // answered every key against a current copy of its index.
                    if answer.problem.is_none() {
                        response.screened_peers.push(peer.to_string());
                    } else {
                        tracing::warn!(peer = %peer, missing = answer.missing.len(), "peer did not answer every key against a current index");
                    }
                    for &key in &answer.missing {
                        for &p in &owners[key] {
                            if !unscreened[p].iter().any(|u| u == peer.as_str()) {
                                unscreened[p].push(peer.to_string());
                            }
                        }
                    }
                    if let Some(reason) = &answer.problem {
                        response.unavailable.push(problem(peer, reason.to_string()));
                    }
                    for (key, label) in answer.hits {
                        for &p in &owners[key] {
                            add_match(&mut matches[p], peer, &label);
                        }
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
            .map(|((i, m), unscreened)| PartyResult {
                index: i as u32,
                keys: per_party[i],
                matches: m.into_values().collect(),
                unscreened,
            })
            .collect();
        let total: usize = response.results.iter().map(|r| r.matches.len()).sum();
        tracing::info!(
            parties = parties.len(),
            keys = keys.len(),
            matches = total,
            "screened"
        );
        response
    }
}

#[cfg(test)]
mod tests;
