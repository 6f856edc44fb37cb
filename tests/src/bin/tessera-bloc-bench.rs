//! `tessera-bloc-bench --dir OUT --agencies A,B,... [--bloc B] [--denials N]
//! [--checks N] [--poll-ms MS] [--pids FILE] [--json FILE]`: the figures of
//! a running bloc whose nodes `deploy/bloc/run.sh` started (`BENCH=1`),
//! printed as a table and written as JSON (default `bench-results/bloc.json`).
//!
//! 1. Resident memory of each idle node (`--pids`: one process id a line).
//! 2. Visibility: N denials (default 100), one at a time, member `k mod n`
//!    issues denial k to the bloc's group; the time from the issuing call
//!    until every other member shows it (`Operator.ShowNotice`, polled
//!    every `--poll-ms`, default 25).
//! 3. The application check: N checks (default 100) of a 3-party
//!    application (exporter, consignee, end user; the end user is the party
//!    of a denial issued in step 2) at member `(k + 1) mod n`, timed around
//!    `Operator.ApplicationCheck` on a warm connection; 3 checks first to
//!    warm up, not counted.
//!
//! The machine's load average (`/proc/loadavg`) is recorded before and
//! after each step.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera_cli::client::CliConfig;
use tessera_proto::v1::operator_client::OperatorClient;
use tessera_proto::v1::{
    Application, ApplicationCheckRequest, DenialAction, DenialNotice, IssueNoticeRequest, Item,
    Marking, Notice, NoticeStatus, Party, PartyId, PartyKind, PartyRole, RegimeBasis, RoledParty,
    ScreenRequest, ShowNoticeRequest, notice::Body,
};
use tessera_tests::synthetic::{bench_name, rss_kib_of};
use tonic::transport::Channel;

const ENTRIES: [&str; 4] = ["2B001.b", "3A001.a.2", "5A002.a", "ML10"];
const DESTS: [&str; 3] = ["CN", "IR", "RU"];
/// How long one denial may take to reach every member before it counts as missing.
const VISIBLE_WITHIN: Duration = Duration::from_secs(30);

type Client = OperatorClient<Channel>;

struct Args {
    dir: PathBuf,
    agencies: Vec<String>,
    bloc: String,
    denials: usize,
    checks: usize,
    poll: Duration,
    pids: Option<PathBuf>,
    json: PathBuf,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        dir: PathBuf::new(),
        agencies: Vec::new(),
        bloc: "all-dev".into(),
        denials: 100,
        checks: 100,
        poll: Duration::from_millis(25),
        pids: None,
        json: PathBuf::from("bench-results/bloc.json"),
    };
    let usage = "usage: tessera-bloc-bench --dir OUT --agencies A,B,... [--bloc B] [--denials N] [--checks N] [--poll-ms MS] [--pids FILE] [--json FILE]";
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} takes a value; {usage}"))?;
        let number = || -> anyhow::Result<usize> {
            value
                .parse()
                .map_err(|_| anyhow::anyhow!("{flag} takes a number, not {value:?}"))
        };
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(&value),
            "--agencies" => a.agencies = value.split(',').map(str::to_owned).collect(),
            "--bloc" => a.bloc.clone_from(&value),
            "--denials" => a.denials = number()?,
            "--checks" => a.checks = number()?,
            "--poll-ms" => a.poll = Duration::from_millis(number()? as u64),
            "--pids" => a.pids = Some(PathBuf::from(&value)),
            "--json" => a.json = PathBuf::from(&value),
            other => anyhow::bail!("unknown argument {other:?}; {usage}"),
        }
    }
    anyhow::ensure!(
        a.agencies.len() >= 2 && !a.dir.as_os_str().is_empty(),
        "{usage}"
    );
    Ok(a)
}

/// The 1-, 5- and 15-minute load averages.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".into(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// The `q` quantile of `v` (nearest rank), in ms.
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
    v.get(rank - 1).copied().unwrap_or(f64::NAN)
}

/// "p50 X ms, p99 Y ms".
fn spread(v: &[f64]) -> String {
    format!(
        "p50 {:.0} ms, p99 {:.0} ms",
        quantile(v, 0.5),
        quantile(v, 0.99)
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn party(name: String, country: &str, lei: String) -> Party {
    Party {
        kind: PartyKind::Organisation as i32,
        name,
        countries: vec![country.into()],
        ids: vec![PartyId {
            r#type: "LEI".into(),
            value: lei,
            ..PartyId::default()
        }],
        ..Party::default()
    }
}

fn denied_party(k: usize, run: u64) -> Party {
    party(
        bench_name(k, run as usize),
        DESTS[k % 3],
        format!("BB{run:06}{k:012}"),
    )
}

fn denial(k: usize, run: u64, bloc: &str) -> anyhow::Result<Notice> {
    Ok(Notice {
        serial: format!("BLOCBENCH-{run}-{k}"),
        marking: Marking::Amber as i32,
        distribution: Some(tessera_node::policy::parse_to(&format!("group:{bloc}"))?),
        body: Some(Body::Denial(DenialNotice {
            authority_reference: format!("BLOCBENCH-{run}-{k}"),
            regime_basis: RegimeBasis::EuDualUse as i32,
            action: DenialAction::Refuse as i32,
            decision_date: tessera_node::notice::dates::format(tessera_node::notice::dates::today()),
            items: vec![Item {
                control_entry: ENTRIES[k % 4].into(),
                ..Item::default()
            }],
            parties: vec![RoledParty {
                role: PartyRole::EndUser as i32,
                party: Some(denied_party(k, run)),
            }],
            destination: DESTS[k % 3].into(),
            status: NoticeStatus::InForce as i32,
            ..DenialNotice::default()
        })),
        ..Notice::default()
    })
}

/// Polls `client` until it shows `origin/serial`; the time since `since`.
async fn seen(
    mut client: Client,
    origin: String,
    serial: String,
    since: Instant,
    poll: Duration,
) -> Option<Duration> {
    while since.elapsed() < VISIBLE_WITHIN {
        let request = ShowNoticeRequest {
            origin: origin.clone(),
            serial: serial.clone(),
        };
        if client
            .show_notice(request)
            .await
            .is_ok_and(|r| !r.into_inner().versions.is_empty())
        {
            return Some(since.elapsed());
        }
        tokio::time::sleep(poll).await;
    }
    None
}

struct Visibility {
    /// Per denial: until the last member showed it, ms.
    all: Vec<f64>,
    /// Per denial and member, ms.
    each: Vec<f64>,
    missing: usize,
}

async fn visibility(a: &Args, clients: &[Client], run: u64) -> anyhow::Result<Visibility> {
    let n = clients.len();
    let mut v = Visibility {
        all: Vec::new(),
        each: Vec::new(),
        missing: 0,
    };
    for k in 0..a.denials {
        let issuer = k % n;
        let notice = denial(k, run, &a.bloc)?;
        let serial = notice.serial.clone();
        let started = Instant::now();
        clients[issuer]
            .clone()
            .issue_notice(IssueNoticeRequest {
                notice: Some(notice),
            })
            .await?;
        let mut polls = tokio::task::JoinSet::new();
        for i in (0..n).filter(|i| *i != issuer) {
            polls.spawn(seen(
                clients[i].clone(),
                a.agencies[issuer].clone(),
                serial.clone(),
                started,
                a.poll,
            ));
        }
        let times: Vec<Option<Duration>> = polls.join_all().await;
        let missing = times.iter().filter(|t| t.is_none()).count();
        v.missing += missing;
        v.each.extend(times.iter().flatten().map(|d| ms(*d)));
        if missing == 0 {
            v.all
                .push(times.iter().flatten().map(|d| ms(*d)).fold(0.0, f64::max));
        }
    }
    Ok(v)
}

fn application(k: usize, run: u64, denials: usize) -> Application {
    let denied = k % denials.max(1);
    let role = |r: PartyRole, p: Party| RoledParty {
        role: r as i32,
        party: Some(p),
    };
    Application {
        reference: format!("BLOCBENCH-APP-{run}-{k}"),
        parties: vec![
            role(
                PartyRole::Exporter,
                party(
                    bench_name(k, 1_000 + run as usize),
                    "DE",
                    format!("BE{run:06}{k:012}"),
                ),
            ),
            role(
                PartyRole::Consignee,
                party(
                    bench_name(k, 2_000 + run as usize),
                    "AE",
                    format!("BC{run:06}{k:012}"),
                ),
            ),
            role(PartyRole::EndUser, denied_party(denied, run)),
        ],
        items: vec![Item {
            control_entry: ENTRIES[k % 4].into(),
            ..Item::default()
        }],
        destination: DESTS[k % 3].into(),
        ..Application::default()
    }
}

struct Checks {
    times: Vec<f64>,
    answers: BTreeMap<String, usize>,
    /// Why members did not answer, and how often.
    unanswered: BTreeMap<String, usize>,
    failed: usize,
}

/// Until every member's check is answered by every other member (their
/// indexes of the new denials built and replicated): the time it took, or
/// `None` after `within`.
async fn settle(a: &Args, clients: &[Client], run: u64, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    for (i, client) in clients.iter().enumerate() {
        loop {
            let request = ApplicationCheckRequest {
                bloc: a.bloc.clone(),
                application: Some(application(i, run, a.denials)),
                consult: false,
                threshold: 0.0,
            };
            let full = client
                .clone()
                .application_check(request)
                .await
                .is_ok_and(|r| r.into_inner().unanswered.is_empty());
            if full {
                break;
            }
            if started.elapsed() > within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Some(started.elapsed())
}

async fn checks(a: &Args, clients: &[Client], run: u64) -> Checks {
    let n = clients.len();
    let mut c = Checks {
        times: Vec::new(),
        answers: BTreeMap::new(),
        unanswered: BTreeMap::new(),
        failed: 0,
    };
    for k in 0..a.checks + 3 {
        let request = ApplicationCheckRequest {
            bloc: a.bloc.clone(),
            application: Some(application(k, run, a.denials)),
            consult: false,
            threshold: 0.0,
        };
        let started = Instant::now();
        let r = clients[(k + 1) % n]
            .clone()
            .application_check(request)
            .await;
        let took = ms(started.elapsed());
        if k < 3 {
            continue;
        }
        match r {
            Ok(r) => {
                let r = r.into_inner();
                c.times.push(took);
                *c.answers.entry(r.answer).or_default() += 1;
                for p in r.unanswered {
                    *c.unanswered.entry(p.reason).or_default() += 1;
                }
            }
            Err(status) => {
                eprintln!("check {k}: {}", status.message());
                c.failed += 1;
            }
        }
    }
    c
}

fn pid_list(pids: &PathBuf) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(pids)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", pids.display()))?;
    Ok(text.split_whitespace().map(str::to_owned).collect())
}

fn rss(pids: &[String]) -> Vec<f64> {
    pids.iter()
        .map(|p| rss_kib_of(p) as f64 / 1024.0)
        .filter(|m| *m > 0.0)
        .collect()
}

/// CPU time (user + system) of `pids` so far, in clock ticks.
fn cpu_ticks(pids: &[String]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| {
            // Fields after the command's closing parenthesis; utime and stime are 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// Share of one core the idle nodes use together, over `window`.
async fn idle_cpu(pids: &[String], window: Duration) -> f64 {
    let before = cpu_ticks(pids);
    tokio::time::sleep(window).await;
    let ticks = cpu_ticks(pids).saturating_sub(before);
    // Linux counts 100 ticks a second (USER_HZ).
    ticks as f64 / 100.0 / window.as_secs_f64() * 100.0
}

/// The same parties screened alone (`Operator.Screen`), as the check screens
/// them: what the check adds to screening.
async fn screens(a: &Args, clients: &[Client], run: u64) -> (Vec<f64>, u32) {
    let n = clients.len();
    let mut times = Vec::new();
    let mut keys = 0;
    for k in 0..a.checks {
        let parties = application(k, run, a.denials)
            .parties
            .into_iter()
            .filter_map(|rp| rp.party)
            .collect();
        let started = Instant::now();
        let r = clients[(k + 1) % n]
            .clone()
            .screen(ScreenRequest {
                parties,
                threshold: 0.0,
            })
            .await;
        if let Ok(r) = r {
            times.push(ms(started.elapsed()));
            keys = r.into_inner().results.iter().map(|p| p.keys).sum();
        }
    }
    (times, keys)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let clients = a
        .agencies
        .iter()
        .map(|ag| CliConfig::load(&a.dir.join(ag).join("cli.toml"))?.operator())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let run = time::OffsetDateTime::now_utc().unix_timestamp() as u64 % 1_000_000;
    let n = clients.len();
    let mut figures: BTreeMap<&str, Value> = BTreeMap::new();
    let row = |label: String, value: String, load: String| {
        println!("  {label:<62} {value:<28} load {load}");
    };
    println!("bloc of {n} members ({}), run {run}", a.bloc);

    let pids = match &a.pids {
        Some(file) => pid_list(file)?,
        None => Vec::new(),
    };
    if !pids.is_empty() {
        let before = load();
        let mb = rss(&pids);
        row(
            format!("resident memory per idle node ({} nodes)", mb.len()),
            format!(
                "median {:.1} MB, max {:.1} MB",
                quantile(&mb, 0.5),
                quantile(&mb, 1.0)
            ),
            before.clone(),
        );
        figures.insert(
            "idle_rss_mb",
            json!({"median": quantile(&mb, 0.5), "max": quantile(&mb, 1.0), "nodes": mb.len(), "load": before}),
        );
        let cpu = idle_cpu(&pids, Duration::from_secs(10)).await;
        row(
            format!("CPU of the {} idle nodes together, over 10 s", pids.len()),
            format!("{cpu:.0} % of one core"),
            load(),
        );
        figures.insert("idle_cpu_percent_of_one_core", json!(cpu));
    }

    let before = load();
    let started = Instant::now();
    let v = visibility(&a, &clients, run).await?;
    let after = load();
    row(
        format!(
            "denial visible at all {} other members ({} denials)",
            n - 1,
            a.denials
        ),
        spread(&v.all),
        format!("{before} -> {after}"),
    );
    row(
        "  one member's copy (each of the above x members)".into(),
        spread(&v.each),
        String::new(),
    );
    figures.insert(
        "visible_at_all_ms",
        json!({"p50": quantile(&v.all, 0.5), "p99": quantile(&v.all, 0.99), "max": quantile(&v.all, 1.0),
               "denials": a.denials, "members": n, "missing_copies": v.missing, "poll_ms": ms(a.poll),
               "per_copy_p50": quantile(&v.each, 0.5), "per_copy_p99": quantile(&v.each, 0.99),
               "seconds": started.elapsed().as_secs_f64(), "load_before": before, "load_after": after}),
    );
    if v.missing > 0 {
        row(
            format!("copies not visible within {} s", VISIBLE_WITHIN.as_secs()),
            v.missing.to_string(),
            String::new(),
        );
    }

    let settled = settle(&a, &clients, run, Duration::from_secs(120)).await;
    row(
        "every member answers every check (indexes built and replicated)".into(),
        settled.map_or_else(
            || "not within 120 s".into(),
            |d| format!("after {:.1} s", d.as_secs_f64()),
        ),
        load(),
    );
    figures.insert("settled_after_s", json!(settled.map(|d| d.as_secs_f64())));
    let before = load();
    let ticks = cpu_ticks(&pids);
    let c = checks(&a, &clients, run).await;
    let check_cpu_ms =
        cpu_ticks(&pids).saturating_sub(ticks) as f64 * 10.0 / c.times.len().max(1) as f64;
    let after = load();
    row(
        format!(
            "application check, 3 parties against {} members ({} checks)",
            n - 1,
            c.times.len()
        ),
        spread(&c.times),
        format!("{before} -> {after}"),
    );
    row(
        "  answers".into(),
        format!("{:?}, {} failed", c.answers, c.failed),
        String::new(),
    );
    if !pids.is_empty() {
        row(
            "  CPU per check, all nodes together".into(),
            format!("{check_cpu_ms:.0} ms"),
            String::new(),
        );
    }
    for (why, times) in &c.unanswered {
        row(
            format!("  a member did not answer: {why}"),
            format!("{times} times"),
            String::new(),
        );
    }
    figures.insert(
        "check_3_parties_ms",
        json!({"p50": quantile(&c.times, 0.5), "p99": quantile(&c.times, 0.99), "max": quantile(&c.times, 1.0),
               "checks": c.times.len(), "cpu_ms_per_check": check_cpu_ms, "failed": c.failed, "answers": c.answers, "unanswered": c.unanswered, "members": n,
               "load_before": before, "load_after": after}),
    );

    let before = load();
    let ticks = cpu_ticks(&pids);
    let (alone, keys) = screens(&a, &clients, run).await;
    let screen_cpu_ms =
        cpu_ticks(&pids).saturating_sub(ticks) as f64 * 10.0 / alone.len().max(1) as f64;
    row(
        format!(
            "the same 3 parties ({keys} match keys) screened alone ({} screens)",
            alone.len()
        ),
        spread(&alone),
        format!("{before} -> {}", load()),
    );
    if !pids.is_empty() {
        row(
            "  CPU per screen, all nodes together".into(),
            format!("{screen_cpu_ms:.0} ms"),
            String::new(),
        );
    }
    figures.insert(
        "screen_3_parties_ms",
        json!({"p50": quantile(&alone, 0.5), "p99": quantile(&alone, 0.99), "screens": alone.len(), "keys": keys, "cpu_ms_per_screen": screen_cpu_ms}),
    );

    if let Some(dir) = a.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let doc = json!({
        "bench": "bloc",
        "machine": { "cores": std::thread::available_parallelism().map_or(1, std::num::NonZero::get) },
        "figures": figures,
    });
    std::fs::write(&a.json, serde_json::to_vec_pretty(&doc)?)?;
    println!("\nfigures written to {}", a.json.display());
    Ok(())
}
