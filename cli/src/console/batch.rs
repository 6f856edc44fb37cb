//! Screening jobs: a batch (or one party) screened in chunks in the
//! background, so that the page can show progress; the results stay in
//! memory for the session that started them (the CSV report reads them).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use tessera_node::notice::json::party_to_wire;
use tessera_node::party::Party;
use tessera_proto::v1::{PartyResult, ScreenRequest};

use super::ConsoleState;

/// Parties per screening call: small enough for a progress bar to move.
const CHUNK: usize = 50;
/// Jobs kept per console (the oldest go first).
const KEEP: usize = 50;

/// How one party came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Match,
    NotScreened,
    NotFullyScreened,
    Clear,
}

impl Outcome {
    pub fn words(self) -> &'static str {
        match self {
            Outcome::Match => "match",
            Outcome::NotScreened => "not screened",
            Outcome::NotFullyScreened => "not fully screened",
            Outcome::Clear => "clear",
        }
    }

    /// The badge class.
    pub fn class(self) -> &'static str {
        match self {
            Outcome::Match => "bad",
            Outcome::NotScreened | Outcome::NotFullyScreened => "warn",
            Outcome::Clear => "ok",
        }
    }
}

/// A screening run and its results so far.
#[derive(Debug, Default)]
pub struct Job {
    pub id: String,
    pub session: String,
    pub source: String,
    pub started_s: i64,
    pub parties: Vec<Party>,
    pub done: usize,
    pub results: Vec<PartyResult>,
    /// Every peer asked, and why some did not answer (the last reason seen).
    pub peers: BTreeSet<String>,
    pub unavailable: BTreeMap<String, String>,
    /// Party index -> matches left out as false positives.
    pub suppressed: BTreeMap<u32, u32>,
    pub error: Option<String>,
    pub finished: bool,
}

impl Job {
    /// How party `result` came out.
    pub fn outcome(&self, result: &PartyResult) -> Outcome {
        if !result.matches.is_empty() {
            Outcome::Match
        } else if result.keys == 0 || result.unscreened.len() >= self.peers.len().max(1) {
            Outcome::NotScreened
        } else if !result.unscreened.is_empty() {
            Outcome::NotFullyScreened
        } else {
            Outcome::Clear
        }
    }

    /// Results in reading order: matches first (strongest first), then the
    /// parties not (fully) screened, then the clear ones.
    pub fn ordered(&self) -> Vec<&PartyResult> {
        let mut out: Vec<&PartyResult> = self.results.iter().collect();
        let best = |r: &PartyResult| {
            r.matches
                .iter()
                .map(|m| (strength_rank(&m.strength), (m.score * 1000.0) as i64))
                .max()
                .unwrap_or((0, 0))
        };
        out.sort_by(|a, b| {
            self.outcome(a)
                .cmp(&self.outcome(b))
                .then(best(b).cmp(&best(a)))
                .then(a.index.cmp(&b.index))
        });
        out
    }

    /// Count of parties per outcome.
    pub fn counts(&self) -> BTreeMap<Outcome, usize> {
        let mut counts = BTreeMap::new();
        for r in &self.results {
            *counts.entry(self.outcome(r)).or_default() += 1;
        }
        counts
    }
}

/// Orders strengths: strongest first.
pub fn strength_rank(strength: &str) -> u8 {
    match strength {
        "strong" => 3,
        "medium" => 2,
        "weak" => 1,
        _ => 0,
    }
}

/// The console's jobs.
#[derive(Debug, Default)]
pub struct Jobs {
    jobs: Mutex<Vec<Arc<Mutex<Job>>>>,
}

impl Jobs {
    /// The job `id` if `session` started it.
    pub fn get(&self, id: &str, session: &str) -> Option<Arc<Mutex<Job>>> {
        let jobs = self.jobs.lock().ok()?;
        jobs.iter()
            .find(|j| j.lock().is_ok_and(|j| j.id == id && j.session == session))
            .cloned()
    }

    fn add(&self, job: Job) -> Arc<Mutex<Job>> {
        let job = Arc::new(Mutex::new(job));
        if let Ok(mut jobs) = self.jobs.lock() {
            if jobs.len() >= KEEP {
                jobs.remove(0);
            }
            jobs.push(job.clone());
        }
        job
    }
}

/// Starts screening `parties` in the background; returns the job's id.
pub fn start(
    state: &Arc<ConsoleState>,
    session: &str,
    source: &str,
    parties: Vec<Party>,
) -> String {
    let id = super::random_hex(8);
    let job = state.jobs.add(Job {
        id: id.clone(),
        session: session.to_owned(),
        source: source.to_owned(),
        started_s: time::OffsetDateTime::now_utc().unix_timestamp(),
        parties,
        ..Job::default()
    });
    let state = state.clone();
    tokio::spawn(async move { run(&state, &job).await });
    id
}

async fn run(state: &ConsoleState, job: &Mutex<Job>) {
    let chunks: Vec<Vec<Party>> = match job.lock() {
        Ok(j) => j.parties.chunks(CHUNK).map(<[Party]>::to_vec).collect(),
        Err(_) => return,
    };
    for (c, chunk) in chunks.iter().enumerate() {
        let request = ScreenRequest {
            parties: chunk.iter().map(party_to_wire).collect(),
            threshold: 0.0,
        };
        let answer = state.op().screen(request).await;
        let Ok(mut j) = job.lock() else { return };
        match answer {
            Ok(r) => {
                let r = r.into_inner();
                j.peers.extend(r.screened_peers.iter().cloned());
                for u in &r.unavailable {
                    j.peers.insert(u.peer.clone());
                    j.unavailable.insert(u.peer.clone(), u.reason.clone());
                }
                let offset = (c * CHUNK) as u32;
                j.suppressed
                    .extend(r.suppressed.iter().map(|(i, n)| (i + offset, *n)));
                for mut result in r.results {
                    result.index += offset;
                    j.results.push(result);
                }
                j.done += chunk.len();
            }
            Err(status) => {
                j.error = Some(state.failed(&status).to_string());
                j.finished = true;
                return;
            }
        }
    }
    if let Ok(mut j) = job.lock() {
        j.finished = true;
    }
}

/// A job's progress, for the page's script.
pub fn progress_json(job: &Job) -> serde_json::Value {
    serde_json::json!({
        "done": job.done,
        "total": job.parties.len(),
        "finished": job.finished,
    })
}
