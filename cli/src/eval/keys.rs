//! Measures the match keys on the real public lists (`../shared/data`): leave-one-out alias
//! recall on OFAC SDN, cross-script agreement on the UN list, false collisions between
//! distinct entities of SDN and the CSL, keys per party and derivation throughput; and the
//! same figures for the naive baseline the spec is judged against. Definitions are in
//! `docs/match-keys.md` ("Evaluation"). Reports counts only, never a name.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use tessera_node::lists::{self, Format, ListRecord};
use tessera_node::party::translit::Backend;
use tessera_node::party::{
    KEY_VERSION, KeyKind, MatchKey, Party, Side, Strength, exact_keys, match_keys_with,
};

/// Everything `tessera eval keys` prints and writes as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub spec_version: &'static str,
    /// Lists that could not be read (missing files): their sections are empty.
    pub skipped: Vec<String>,
    pub alias_recall: Vec<RecallRow>,
    pub cross_script: Vec<CrossScriptRow>,
    pub collisions: Vec<CollisionRow>,
    pub keys_per_party: KeysPerParty,
    pub throughput: Throughput,
}

/// Counts for "at least this strength".
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ByStrength {
    pub weak: usize,
    pub medium: usize,
    pub strong: usize,
}

impl ByStrength {
    fn add(&mut self, best: Option<Strength>) {
        match best {
            Some(Strength::Strong) => {
                self.strong += 1;
                self.medium += 1;
                self.weak += 1;
            }
            Some(Strength::Medium) => {
                self.medium += 1;
                self.weak += 1;
            }
            Some(Strength::Weak) => self.weak += 1,
            None => {}
        }
    }
}

/// Leave-one-out alias recall for one method, variant and SDN type.
#[derive(Debug, Clone, Serialize)]
pub struct RecallRow {
    /// `mk2_exact` or `baseline`.
    pub method: String,
    /// `name_only` or `with_attributes` (countries and birth date on both sides).
    pub variant: String,
    /// `all`, `individual`, `entity`, `vessel`, `aircraft`.
    pub sdn_type: String,
    pub aliases: usize,
    /// Aliases sharing a key of at least this strength with the rest of their entity.
    pub hits: ByStrength,
}

/// Original-script name against its Latin name on the UN list.
#[derive(Debug, Clone, Serialize)]
pub struct CrossScriptRow {
    /// `any_ascii` (the spec) or `deunicode` (comparison), or `baseline`.
    pub method: String,
    /// `primary` (Latin primary name only) or `all_names` (primary and aliases).
    pub against: String,
    /// `all`, `arabic`, `cyrillic`, `han`, `other`.
    pub script: String,
    pub names: usize,
    pub hits: ByStrength,
}

/// Entities sharing a key with a distinct entity.
#[derive(Debug, Clone, Serialize)]
pub struct CollisionRow {
    pub method: String,
    /// `sdn` or `sdn+csl` (CSL rows from the SDN source are the same entities as the SDN
    /// file's and are left out).
    pub universe: String,
    pub entities: usize,
    /// Keys of at least this strength.
    pub min_strength: Strength,
    /// Entities that share at least one such key with a distinct entity.
    pub entities_in_collision: usize,
    /// Distinct key values held by two or more entities.
    pub shared_keys: usize,
    /// The most entities holding one key.
    pub largest_group: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct KeysPerParty {
    pub parties: usize,
    /// Keys a querier evaluates per party: exact keys and every fuzzy alternative.
    pub mean: f64,
    pub p99: usize,
    pub max: usize,
    pub mean_by_strength: HashMap<String, f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Throughput {
    pub parties: usize,
    pub seconds: f64,
    pub parties_per_second: f64,
    pub keys_per_second: f64,
}

type Method = fn(&Party) -> Vec<MatchKey>;

fn exact(p: &Party) -> Vec<MatchKey> {
    match_keys_with(p, Backend::AnyAscii)
}

/// mk2 exact keys of the party's names only (identifiers left out).
fn exact_names(p: &Party) -> Vec<MatchKey> {
    let names = Party {
        ids: Vec::new(),
        ..p.clone()
    };
    match_keys_with(&names, Backend::AnyAscii)
}

/// The keys of the private path (`exact_keys`): what a screening asks for...
fn private_query(p: &Party) -> Vec<MatchKey> {
    exact_keys(p, Side::Query)
}

/// ...and what a holder's index offers (side-aware consonant keys).
fn private_listed(p: &Party) -> Vec<MatchKey> {
    exact_keys(p, Side::Listed)
}

fn exact_deunicode(p: &Party) -> Vec<MatchKey> {
    match_keys_with(p, Backend::Deunicode)
}

/// The naive baseline of the issue: lower case, punctuation to spaces, a few legal forms
/// dropped, tokens sorted (medium); the same without vowels, a consonant skeleton (weak).
pub fn baseline(p: &Party) -> Vec<MatchKey> {
    const FORMS: [&str; 12] = [
        "llc", "ltd", "co", "inc", "corp", "sa", "gmbh", "ooo", "oao", "zao", "pjsc", "jsc",
    ];
    let mut out = Vec::new();
    for name in std::iter::once(&p.name).chain(&p.aliases) {
        let lower = name.to_lowercase();
        let cleaned: String = lower
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let mut tokens: Vec<&str> = cleaned
            .split_whitespace()
            .filter(|t| !FORMS.contains(t))
            .collect();
        tokens.sort_unstable();
        if tokens.is_empty() {
            continue;
        }
        let exact = tokens.join(" ");
        let skel: String = exact.chars().filter(|c| !"aeiouy".contains(*c)).collect();
        out.push(MatchKey {
            kind: KeyKind::Name,
            value: format!("base|{exact}"),
            strength: Strength::Medium,
        });
        out.push(MatchKey {
            kind: KeyKind::Joined,
            value: format!("base|skel|{skel}"),
            strength: Strength::Weak,
        });
    }
    out
}

/// The strongest key shared by `a` and `b`.
fn best_shared(a: &[MatchKey], b: &[MatchKey]) -> Option<Strength> {
    let set: HashMap<&str, Strength> = b.iter().map(|k| (k.value.as_str(), k.strength)).collect();
    a.iter()
        .filter_map(|k| set.get(k.value.as_str()).map(|s| (*s).min(k.strength)))
        .max()
}

fn read_ok(format: Format, path: &Path, skipped: &mut Vec<String>) -> Vec<ListRecord> {
    match lists::read(format, path) {
        Ok(rows) => rows.into_iter().filter_map(Result::ok).collect(),
        Err(e) => {
            skipped.push(format!("{format}: {e}"));
            Vec::new()
        }
    }
}

/// Runs every measurement on the lists under `data_dir` (the `shared/data` folder).
pub fn run(data_dir: &Path) -> EvalReport {
    let mut skipped = Vec::new();
    let sdn = read_ok(
        Format::Sdn,
        &data_dir.join("ofac_sdn_2023-12-28/sdn.csv"),
        &mut skipped,
    );
    let csl = read_ok(
        Format::Csl,
        &data_dir.join("us_csl/consolidated.csv"),
        &mut skipped,
    );
    let un = read_ok(
        Format::Un,
        &data_dir.join("un_consolidated/UN_consolidated.xml"),
        &mut skipped,
    );
    let un_pairs: Vec<(Party, String)> = un
        .iter()
        .flat_map(|r| {
            r.party
                .original_script_names
                .iter()
                .map(|o| (r.party.clone(), o.clone()))
        })
        .collect();
    run_on(&sdn, &csl, &un_pairs, skipped)
}

/// [`run`] on records already read; `un_pairs` are (UN party, one of its original-script
/// names).
pub fn run_on(
    sdn: &[ListRecord],
    csl: &[ListRecord],
    un_pairs: &[(Party, String)],
    skipped: Vec<String>,
) -> EvalReport {
    let mut alias_recall = Vec::new();
    for (name, method) in [
        ("mk2_exact", exact as Method),
        ("baseline", baseline as Method),
    ] {
        for attrs in [false, true] {
            alias_recall.extend(recall(sdn, name, method, attrs));
        }
    }
    let mut cross_script = Vec::new();
    for (name, query, listed) in [
        (
            "private_path",
            private_query as Method,
            private_listed as Method,
        ),
        ("any_ascii", exact as Method, exact as Method),
        (
            "deunicode",
            exact_deunicode as Method,
            exact_deunicode as Method,
        ),
        ("baseline", baseline as Method, baseline as Method),
    ] {
        for all in [false, true] {
            cross_script.extend(cross(un_pairs, name, query, listed, all));
        }
    }
    let csl_own: Vec<&ListRecord> = csl.iter().filter(|r| !r.list.contains("SDN")).collect();
    let sdn_refs: Vec<&ListRecord> = sdn.iter().collect();
    let both: Vec<&ListRecord> = sdn_refs.iter().chain(&csl_own).copied().collect();
    let mut collisions = Vec::new();
    for (name, method) in [
        ("mk2_exact", exact as Method),
        ("exact_names_only", exact_names as Method),
        ("baseline", baseline as Method),
    ] {
        collisions.extend(collide(&sdn_refs, "sdn", name, method));
        collisions.extend(collide(&both, "sdn+csl", name, method));
    }
    let mut parties: Vec<&Party> = both.iter().map(|r| &r.party).collect();
    parties.extend(un_pairs.iter().map(|(p, _)| p));
    EvalReport {
        spec_version: KEY_VERSION,
        skipped,
        alias_recall,
        cross_script,
        collisions,
        keys_per_party: keys_per_party(&parties),
        throughput: throughput(&parties),
    }
}

fn sdn_type(r: &ListRecord) -> String {
    r.sdn_type.clone().unwrap_or_else(|| "entity".into())
}

fn recall(sdn: &[ListRecord], method_name: &str, method: Method, attrs: bool) -> Vec<RecallRow> {
    let mut rows: Vec<RecallRow> = Vec::new();
    let row = |rows: &mut Vec<RecallRow>, t: &str| -> usize {
        if let Some(i) = rows.iter().position(|r| r.sdn_type == t) {
            return i;
        }
        rows.push(RecallRow {
            method: method_name.into(),
            variant: if attrs {
                "with_attributes"
            } else {
                "name_only"
            }
            .into(),
            sdn_type: t.into(),
            aliases: 0,
            hits: ByStrength::default(),
        });
        rows.len() - 1
    };
    let mut results = Vec::new();
    for r in sdn {
        let p = &r.party;
        let base = Party {
            kind: p.kind,
            countries: if attrs {
                p.countries.clone()
            } else {
                Vec::new()
            },
            birth_date: if attrs { p.birth_date.clone() } else { None },
            ..Party::default()
        };
        for (i, alias) in p.aliases.iter().enumerate() {
            let one = Party {
                name: alias.clone(),
                ..base.clone()
            };
            let rest = Party {
                name: p.name.clone(),
                aliases: p
                    .aliases
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, a)| a.clone())
                    .collect(),
                ..base.clone()
            };
            results.push((sdn_type(r), best_shared(&method(&one), &method(&rest))));
        }
    }
    let all = row(&mut rows, "all");
    for (t, best) in results {
        let i = row(&mut rows, &t);
        for j in [all, i] {
            rows[j].aliases += 1;
            rows[j].hits.add(best);
        }
    }
    rows
}

fn script_of(s: &str) -> &'static str {
    for c in s.chars() {
        match c as u32 {
            0x0600..=0x06FF | 0x0750..=0x077F | 0xFB50..=0xFDFF | 0xFE70..=0xFEFF => {
                return "arabic";
            }
            0x0400..=0x052F => return "cyrillic",
            0x3400..=0x9FFF | 0xAC00..=0xD7AF | 0x3040..=0x30FF => return "han",
            _ => {}
        }
    }
    "other"
}

/// The original-script name screened (`query`) against the Latin names listed (`listed`).
fn cross(
    pairs: &[(Party, String)],
    name: &str,
    query: Method,
    listed: Method,
    all: bool,
) -> Vec<CrossScriptRow> {
    let mut rows: Vec<CrossScriptRow> = Vec::new();
    for (p, original) in pairs {
        let latin = Party {
            kind: p.kind,
            name: p.name.clone(),
            aliases: if all { p.aliases.clone() } else { Vec::new() },
            ..Party::default()
        };
        let orig = Party {
            kind: p.kind,
            name: original.clone(),
            ..Party::default()
        };
        let best = best_shared(&query(&orig), &listed(&latin));
        for script in ["all", script_of(original)] {
            let i = if let Some(i) = rows.iter().position(|r| r.script == script) {
                i
            } else {
                rows.push(CrossScriptRow {
                    method: name.into(),
                    against: if all { "all_names" } else { "primary" }.into(),
                    script: script.into(),
                    names: 0,
                    hits: ByStrength::default(),
                });
                rows.len() - 1
            };
            rows[i].names += 1;
            rows[i].hits.add(best);
        }
    }
    rows
}

fn collide(
    records: &[&ListRecord],
    universe: &str,
    method_name: &str,
    method: Method,
) -> Vec<CollisionRow> {
    let mut holders: HashMap<String, (Strength, Vec<u32>)> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        for k in method(&r.party) {
            let e = holders.entry(k.value).or_insert((k.strength, Vec::new()));
            if e.1.last() != Some(&i) {
                e.1.push(i);
            }
        }
    }
    [Strength::Weak, Strength::Medium, Strength::Strong]
        .into_iter()
        .map(|min| {
            let mut in_collision: HashSet<u32> = HashSet::new();
            let mut shared = 0;
            let mut largest = 0;
            for (s, ids) in holders.values() {
                if *s >= min && ids.len() >= 2 {
                    shared += 1;
                    largest = largest.max(ids.len());
                    in_collision.extend(ids);
                }
            }
            CollisionRow {
                method: method_name.into(),
                universe: universe.into(),
                entities: records.len(),
                min_strength: min,
                entities_in_collision: in_collision.len(),
                shared_keys: shared,
                largest_group: largest,
            }
        })
        .collect()
}

fn keys_per_party(parties: &[&Party]) -> KeysPerParty {
    let mut counts: Vec<usize> = Vec::with_capacity(parties.len());
    let mut by: HashMap<String, usize> = HashMap::new();
    for p in parties {
        let keys = tessera_node::party::party_keys(p, tessera_node::party::Side::Query);
        let all = keys.all_values().len();
        counts.push(all);
        for k in &keys.exact {
            *by.entry(format!("exact_{}", k.strength.as_str()))
                .or_default() += 1;
        }
        *by.entry("fuzzy".to_owned()).or_default() += all - keys.exact.len();
    }
    counts.sort_unstable();
    let n = parties.len().max(1) as f64;
    KeysPerParty {
        parties: parties.len(),
        mean: counts.iter().sum::<usize>() as f64 / n,
        p99: counts
            .get((counts.len() * 99 / 100).min(counts.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0),
        max: counts.last().copied().unwrap_or(0),
        mean_by_strength: by.into_iter().map(|(k, v)| (k, v as f64 / n)).collect(),
    }
}

/// Single-threaded key derivation over all parties, repeated for at least two seconds.
fn throughput(parties: &[&Party]) -> Throughput {
    if parties.is_empty() {
        return Throughput::default();
    }
    let start = Instant::now();
    let (mut n, mut keys) = (0usize, 0usize);
    while start.elapsed().as_secs_f64() < 2.0 {
        for p in parties {
            keys += tessera_node::party::party_keys(p, tessera_node::party::Side::Query)
                .all_values()
                .len();
        }
        n += parties.len();
    }
    let secs = start.elapsed().as_secs_f64();
    Throughput {
        parties: n,
        seconds: secs,
        parties_per_second: n as f64 / secs,
        keys_per_second: keys as f64 / secs,
    }
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / d as f64)
    }
}

impl EvalReport {
    /// The report as Markdown tables.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "match keys {}: evaluation on shared/data\n",
            self.spec_version
        );
        for k in &self.skipped {
            let _ = writeln!(s, "skipped: {k}");
        }
        let _ = writeln!(
            s,
            "Leave-one-out alias recall, OFAC SDN (alias shares a key of at least the strength with the rest of its entity)\n"
        );
        let _ = writeln!(
            s,
            "| method | variant | type | aliases | ≥ weak | ≥ medium | strong |"
        );
        let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|");
        for r in &self.alias_recall {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.method,
                r.variant,
                r.sdn_type,
                r.aliases,
                pct(r.hits.weak, r.aliases),
                pct(r.hits.medium, r.aliases),
                pct(r.hits.strong, r.aliases)
            );
        }
        let _ = writeln!(
            s,
            "\nCross-script agreement, UN list (original-script name shares a key with the Latin name)\n"
        );
        let _ = writeln!(
            s,
            "| method | against | script | names | ≥ weak | ≥ medium |"
        );
        let _ = writeln!(s, "|---|---|---|---:|---:|---:|");
        for r in &self.cross_script {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                r.method,
                r.against,
                r.script,
                r.names,
                pct(r.hits.weak, r.names),
                pct(r.hits.medium, r.names)
            );
        }
        let _ = writeln!(
            s,
            "\nFalse collisions (entities sharing a key of at least the strength with a distinct entity)\n"
        );
        let _ = writeln!(
            s,
            "| method | universe | ≥ strength | entities | in collision | share | shared keys | largest group |"
        );
        let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|---:|");
        for r in &self.collisions {
            let _ = writeln!(
                s,
                "| {} | {} | {:?} | {} | {} | {} | {} | {} |",
                r.method,
                r.universe,
                r.min_strength,
                r.entities,
                r.entities_in_collision,
                pct(r.entities_in_collision, r.entities),
                r.shared_keys,
                r.largest_group
            );
        }
        let k = &self.keys_per_party;
        let mut by: Vec<_> = k.mean_by_strength.iter().collect();
        by.sort_by(|a, b| a.0.cmp(b.0));
        let by: Vec<String> = by.iter().map(|(s, v)| format!("{s} {v:.2}")).collect();
        let _ = writeln!(
            s,
            "\nKeys per party (exact and fuzzy, what a querier evaluates): {} parties, mean {:.2} ({}), p99 {}, max {}",
            k.parties,
            k.mean,
            by.join(", "),
            k.p99,
            k.max
        );
        let t = &self.throughput;
        let _ = writeln!(
            s,
            "Throughput (one thread): {:.0} parties/s, {:.0} keys/s ({} parties in {:.2} s)",
            t.parties_per_second, t.keys_per_second, t.parties, t.seconds
        );
        s
    }
}
