//! `tessera eval screening`: precision and recall of screening on labelled pairs built
//! from the public lists ([`super::dataset`]), over the reporting threshold, per family,
//! for the dev and the test split; the leakage below the threshold; and the same pairs
//! through the private path of real nodes ([`super::private`]), which must agree with the
//! clear computation pair by pair.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use tessera_node::party::fuzzy::FuzzyParams;
use tessera_node::party::verdict::{DEFAULT_THRESHOLD, MEDIUM_SIMILARITY};
use tessera_node::party::{KEY_VERSION, Party, PartyKind};
use tessera_node::policy::DisclosureLevel;

use super::dataset::{Pair, Split};
use super::oracle::{self, Leakage, Scored};

/// Thresholds of the frontier.
pub const THRESHOLDS: [f64; 11] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0];

/// Precision and recall at one threshold.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Quality {
    pub threshold: f64,
    pub true_positives: usize,
    pub false_positives: usize,
    pub positives: usize,
    pub negatives: usize,
    pub precision: f64,
    pub recall: f64,
}

impl Quality {
    /// Precision and recall as two table cells; `-` for a figure with nothing to count
    /// (no pair reported, no positive pair).
    fn cells(&self) -> String {
        let cell = |x: f64, of: usize| {
            if of == 0 {
                "-".to_owned()
            } else {
                format!("{x:.3}")
            }
        };
        format!(
            "{} | {}",
            cell(self.precision, self.true_positives + self.false_positives),
            cell(self.recall, self.positives)
        )
    }

    pub fn of(outcomes: &[(bool, bool)], threshold: f64) -> Self {
        let positives = outcomes.iter().filter(|(p, _)| *p).count();
        let negatives = outcomes.len() - positives;
        let tp = outcomes.iter().filter(|(p, r)| *p && *r).count();
        let fp = outcomes.iter().filter(|(p, r)| !*p && *r).count();
        Self {
            threshold,
            true_positives: tp,
            false_positives: fp,
            positives,
            negatives,
            precision: if tp + fp == 0 {
                1.0
            } else {
                tp as f64 / (tp + fp) as f64
            },
            recall: if positives == 0 {
                0.0
            } else {
                tp as f64 / positives as f64
            },
        }
    }
}

/// One family's figure at the default threshold: recall for positives, the share
/// reported for negatives.
#[derive(Debug, Clone, Serialize)]
pub struct FamilyRow {
    pub family: String,
    pub positive: bool,
    pub split: Split,
    pub pairs: usize,
    pub reported: usize,
    pub reported_medium: usize,
}

/// Leakage below the threshold, measured on the whole list.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LeakageReport {
    /// Listed fuzzy names in the holder's list.
    pub listed_names: usize,
    /// Queries (names not on the list).
    pub queries: usize,
    /// Listed names of which a query holds shares it cannot open: mean, p99, max.
    pub unopened_names_mean: f64,
    pub unopened_names_p99: usize,
    pub unopened_names_max: usize,
    /// Shares collected below threshold per query: mean.
    pub unopened_shares_mean: f64,
    /// Listed names a non-listed query opens (fuzzy matches of strangers) per query.
    pub opened_mean: f64,
}

/// A method's figures on the pairs.
#[derive(Debug, Clone, Serialize)]
pub struct MethodReport {
    pub method: String,
    /// Frontier over the threshold, per split.
    pub frontier: BTreeMap<String, Vec<Quality>>,
    /// At the default threshold, per split.
    pub at_default: BTreeMap<String, Quality>,
    /// Medium or stronger only, per split.
    pub medium: BTreeMap<String, Quality>,
    /// Medium or stronger only with the medium boundary at each threshold of the frontier
    /// at or above the default (`threshold` is the boundary), per split: the figures
    /// `MEDIUM_SIMILARITY` is chosen from.
    pub medium_frontier: BTreeMap<String, Vec<Quality>>,
}

/// Everything `tessera eval screening` prints and writes as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct ScreeningReport {
    pub spec_version: &'static str,
    /// The seed of the generated pairs, or none when they were read from a file.
    pub seed: Option<u64>,
    /// The file the pairs were read from (`--pairs`), if any.
    pub pairs_from: Option<String>,
    pub skipped: Vec<String>,
    pub default_threshold: f64,
    pub pairs: BTreeMap<String, usize>,
    pub methods: Vec<MethodReport>,
    pub families: Vec<FamilyRow>,
    pub leakage: LeakageReport,
    /// The index of the holder's whole list as one peer receives it, per disclosure level.
    pub index_size: Vec<super::size::SizeReport>,
    /// The private path, when run: pairs screened through real nodes and how many
    /// answers differed from the clear computation.
    pub private: Option<super::private::PrivateReport>,
}

/// Whether a pair counts in the precision/recall figures. Reported apart: `alias_other`
/// (translations and acronyms no name matcher finds) and `cross_list_aliases` (the
/// `cross_list` pairs again, with the listed party's aliases: counted, they would count
/// one person twice).
pub fn counted(p: &Pair) -> bool {
    !matches!(p.family.as_ref(), "alias_other" | "cross_list_aliases")
}

fn split_name(s: Split) -> String {
    match s {
        Split::Dev => "dev",
        Split::Test => "test",
    }
    .to_owned()
}

/// Figures of one method from its per-pair scores.
pub fn method_report(method: &str, pairs: &[Pair], scored: &[Scored]) -> MethodReport {
    let mut frontier = BTreeMap::new();
    let mut at_default = BTreeMap::new();
    let mut medium = BTreeMap::new();
    let mut medium_frontier = BTreeMap::new();
    for split in [Split::Dev, Split::Test] {
        let of: Vec<(&Pair, &Scored)> = pairs
            .iter()
            .zip(scored)
            .filter(|(p, _)| p.split == split && counted(p))
            .collect();
        // Quality when `decided(score, t)` says a pair is reported (or medium) at `t`.
        let quality = |t: f64, decided: fn(&Scored, f64) -> bool| {
            let outcomes: Vec<(bool, bool)> = of
                .iter()
                .map(|(p, s)| (p.positive, decided(s, t)))
                .collect();
            Quality::of(&outcomes, t)
        };
        frontier.insert(
            split_name(split),
            THRESHOLDS
                .iter()
                .map(|t| quality(*t, Scored::reported))
                .collect(),
        );
        at_default.insert(
            split_name(split),
            quality(DEFAULT_THRESHOLD, Scored::reported),
        );
        medium.insert(
            split_name(split),
            quality(MEDIUM_SIMILARITY, Scored::medium),
        );
        medium_frontier.insert(
            split_name(split),
            THRESHOLDS
                .iter()
                .filter(|t| **t >= DEFAULT_THRESHOLD - 1e-9)
                .map(|t| quality(*t, Scored::medium))
                .collect(),
        );
    }
    MethodReport {
        method: method.to_owned(),
        frontier,
        at_default,
        medium,
        medium_frontier,
    }
}

/// Per-family figures at the default threshold.
pub fn families(pairs: &[Pair], scored: &[Scored]) -> Vec<FamilyRow> {
    let mut rows: BTreeMap<(String, Split), FamilyRow> = BTreeMap::new();
    for (p, s) in pairs.iter().zip(scored) {
        let row = rows
            .entry((p.family.to_string(), p.split))
            .or_insert_with(|| FamilyRow {
                family: p.family.to_string(),
                positive: p.positive,
                split: p.split,
                pairs: 0,
                reported: 0,
                reported_medium: 0,
            });
        row.pairs += 1;
        row.reported += usize::from(s.reported(DEFAULT_THRESHOLD));
        row.reported_medium += usize::from(s.medium(MEDIUM_SIMILARITY));
    }
    rows.into_values().collect()
}

/// The naive baseline of the issue: sorted lower-case tokens, a few legal forms dropped,
/// equal or not.
pub fn baseline(pair: &Pair) -> Scored {
    let key = |p: &Party| {
        const FORMS: [&str; 12] = [
            "llc", "ltd", "co", "inc", "corp", "sa", "gmbh", "ooo", "oao", "zao", "pjsc", "jsc",
        ];
        let lower = p.name.to_lowercase();
        let cleaned: String = lower
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let mut tokens: Vec<&str> = cleaned
            .split_whitespace()
            .filter(|t| !FORMS.contains(t))
            .collect();
        tokens.sort_unstable();
        tokens.join(" ")
    };
    let equal = key(&pair.query) == key(&pair.listed) && !key(&pair.query).is_empty();
    Scored {
        exact: equal.then_some(1.0),
        fuzzy: None,
        whole: None,
    }
}

/// Measures the leakage below the threshold: the SDN names as the holder's list, and as
/// queries the names of the other lists' entries that share no exact key with it.
pub fn leakage(listed: &[Party], queries: &[Party], params: &FuzzyParams) -> LeakageReport {
    let index = Leakage::new(listed, params);
    let mut names: Vec<usize> = Vec::with_capacity(queries.len());
    let mut shares = 0usize;
    let mut opened = 0usize;
    for q in queries {
        let p = index.partial(q, params);
        names.push(p.names);
        shares += p.shares;
        opened += p.opened;
    }
    names.sort_unstable();
    let n = queries.len().max(1) as f64;
    LeakageReport {
        listed_names: index.len(),
        queries: queries.len(),
        unopened_names_mean: names.iter().sum::<usize>() as f64 / n,
        unopened_names_p99: names
            .get((names.len() * 99 / 100).min(names.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0),
        unopened_names_max: names.last().copied().unwrap_or(0),
        unopened_shares_mean: shares as f64 / n,
        opened_mean: opened as f64 / n,
    }
}

/// Scores every pair with `params` (in the clear).
pub fn score_all(pairs: &[Pair], params: &FuzzyParams) -> Vec<Scored> {
    pairs
        .iter()
        .map(|p| oracle::score_pair(p, params))
        .collect()
}

/// A name-only copy of a party (the queries of the leakage measure).
pub fn name_only(p: &Party) -> Party {
    Party {
        kind: p.kind,
        name: p.name.clone(),
        ..Party::default()
    }
}

impl ScreeningReport {
    /// The report as text tables.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let origin = match (&self.pairs_from, self.seed) {
            (Some(file), _) => format!("pairs from {file}"),
            (None, Some(seed)) => format!("seed {seed}"),
            (None, None) => "pairs given".to_owned(),
        };
        let _ = writeln!(
            s,
            "Screening quality, spec {} ({origin}), pairs: {}",
            self.spec_version,
            self.pairs
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for skipped in &self.skipped {
            let _ = writeln!(s, "skipped: {skipped}");
        }
        for m in &self.methods {
            let _ = writeln!(s, "\n{}: precision / recall", m.method);
            let _ = writeln!(
                s,
                "| threshold | dev P | dev R | test P | test R | as medium boundary: dev P | dev R | test P | test R |"
            );
            let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            let dev = &m.frontier["dev"];
            let test = &m.frontier["test"];
            let boundary = |split: &str, t: f64| {
                m.medium_frontier[split]
                    .iter()
                    .find(|q| (q.threshold - t).abs() < 1e-9)
                    .map_or_else(|| "| ".to_owned(), Quality::cells)
            };
            for (d, t) in dev.iter().zip(test) {
                let mark = if (d.threshold - self.default_threshold).abs() < 1e-9 {
                    " (default)"
                } else if (d.threshold - MEDIUM_SIMILARITY).abs() < 1e-9 {
                    " (medium)"
                } else {
                    ""
                };
                let _ = writeln!(
                    s,
                    "| {:.2}{mark} | {} | {} | {} | {} |",
                    d.threshold,
                    d.cells(),
                    t.cells(),
                    boundary("dev", d.threshold),
                    boundary("test", d.threshold)
                );
            }
            let (dm, tm) = (&m.medium["dev"], &m.medium["test"]);
            let _ = writeln!(
                s,
                "| medium+ only | {} | {} | | | | |",
                dm.cells(),
                tm.cells()
            );
        }
        let _ = writeln!(
            s,
            "\nPer family at the default threshold {:.2} (positives: recall; negatives: share reported)",
            self.default_threshold
        );
        let _ = writeln!(
            s,
            "| family | label | dev pairs | dev reported | test pairs | test reported | test medium+ |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
        let mut by: BTreeMap<&str, (Option<&FamilyRow>, Option<&FamilyRow>)> = BTreeMap::new();
        for r in &self.families {
            let e = by.entry(r.family.as_str()).or_default();
            match r.split {
                Split::Dev => e.0 = Some(r),
                Split::Test => e.1 = Some(r),
            }
        }
        let pct = |r: Option<&FamilyRow>, medium: bool| {
            r.map_or("-".to_owned(), |r| {
                let n = if medium {
                    r.reported_medium
                } else {
                    r.reported
                };
                format!("{:.1}%", 100.0 * n as f64 / r.pairs.max(1) as f64)
            })
        };
        for (family, (d, t)) in by {
            let positive = d.or(t).is_some_and(|r| r.positive);
            let _ = writeln!(
                s,
                "| {family} | {} | {} | {} | {} | {} | {} |",
                if positive { "same" } else { "distinct" },
                d.map_or(0, |r| r.pairs),
                pct(d, false),
                t.map_or(0, |r| r.pairs),
                pct(t, false),
                pct(t, true)
            );
        }
        let l = &self.leakage;
        let _ = writeln!(
            s,
            "\nLeakage below the threshold: {} queries of names not on the list against {} listed names: \
             listed names with unopened shares per query mean {:.2}, p99 {}, max {}; \
             unopened shares per query mean {:.2}; names opened per query mean {:.3}",
            l.queries,
            l.listed_names,
            l.unopened_names_mean,
            l.unopened_names_p99,
            l.unopened_names_max,
            l.unopened_shares_mean,
            l.opened_mean
        );
        for size in &self.index_size {
            let _ = writeln!(s, "\n{}", size.summary());
        }
        if let Some(p) = &self.private {
            let _ = writeln!(s, "\n{}", p.summary());
        }
        s
    }
}

/// Runs the clear measurements (and the private path when `private` is given).
pub fn report(
    sources: &super::dataset::Sources,
    pairs: &[Pair],
    origin: (Option<u64>, Option<String>),
    params: &FuzzyParams,
    private: Option<super::private::PrivateReport>,
) -> ScreeningReport {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for p in pairs {
        *counts.entry(p.family.to_string()).or_default() += 1;
    }
    let scored = score_all(pairs, params);
    let base: Vec<Scored> = pairs.iter().map(baseline).collect();
    let exact_only: Vec<Scored> = scored
        .iter()
        .map(|s| Scored {
            exact: s.exact,
            fuzzy: None,
            whole: None,
        })
        .collect();
    let methods = vec![
        method_report(
            &format!("{KEY_VERSION} (exact and fuzzy keys)"),
            pairs,
            &scored,
        ),
        method_report(
            &format!("{KEY_VERSION} exact keys only"),
            pairs,
            &exact_only,
        ),
        method_report("naive sorted-token baseline", pairs, &base),
    ];
    let listed: Vec<Party> = sources.sdn.iter().map(|r| r.party.clone()).collect();
    let queries: Vec<Party> = sources
        .csl
        .iter()
        .step_by((sources.csl.len() / 2_000).max(1))
        .map(|r| name_only(&r.party))
        .filter(|p| p.kind == PartyKind::Person || p.kind == PartyKind::Organisation)
        .collect();
    let mut skipped = sources.skipped.clone();
    let mut index_size = Vec::new();
    for level in [DisclosureLevel::Pointer, DisclosureLevel::Summary] {
        match super::size::measure(&listed, level) {
            Ok(size) => index_size.push(size),
            Err(e) => skipped.push(format!("index size ({}): {e}", level.as_str())),
        }
    }
    ScreeningReport {
        spec_version: KEY_VERSION,
        seed: origin.0,
        pairs_from: origin.1,
        skipped,
        default_threshold: DEFAULT_THRESHOLD,
        pairs: counts,
        methods,
        families: families(pairs, &scored),
        leakage: leakage(&listed, &queries, params),
        index_size,
        private,
    }
}

/// One run of `tessera eval screening`.
#[derive(Debug, Clone)]
pub struct Run {
    /// The folder of the lists.
    pub dir: std::path::PathBuf,
    pub seed: u64,
    pub per_family: usize,
    pub params: FuzzyParams,
    /// Labelled pairs to read instead of generating them (`--pairs`).
    pub pairs_in: Option<std::path::PathBuf>,
}

impl Run {
    /// Builds the pairs, optionally writes them and the pairs decided wrongly, and
    /// measures; with `private` > 0, screens that many pairs through two real nodes.
    pub async fn report(
        &self,
        pairs_out: Option<&std::path::Path>,
        errors_out: Option<&std::path::Path>,
        private: usize,
    ) -> anyhow::Result<ScreeningReport> {
        let sources = super::dataset::Sources::read(&self.dir);
        let (pairs, origin) = match &self.pairs_in {
            Some(path) => (
                super::dataset::read_pairs(path)?,
                (None, Some(path.display().to_string())),
            ),
            None => (
                super::dataset::generate(
                    &sources,
                    self.seed,
                    super::dataset::Sizes {
                        per_family: self.per_family,
                    },
                ),
                (Some(self.seed), None),
            ),
        };
        let write_lines = |path: &std::path::Path, lines: Vec<String>| -> anyhow::Result<()> {
            let mut text = lines.join("\n");
            text.push('\n');
            std::fs::write(path, text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
        };
        if let Some(path) = pairs_out {
            let lines = pairs
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<Vec<_>, _>>()?;
            write_lines(path, lines)?;
        }
        if let Some(path) = errors_out {
            let mut lines = Vec::new();
            for p in &pairs {
                let s = oracle::score_pair(p, &self.params);
                if s.reported(DEFAULT_THRESHOLD) != p.positive {
                    lines.push(serde_json::to_string(&serde_json::json!({
                        "pair": p, "exact": s.exact, "fuzzy": s.fuzzy,
                    }))?);
                }
            }
            write_lines(path, lines)?;
        }
        let private = if private > 0 {
            let sample = super::private::sample(&pairs, private);
            Some(super::private::run(&sample).await?)
        } else {
            None
        };
        Ok(report(&sources, &pairs, origin, &self.params, private))
    }
}
