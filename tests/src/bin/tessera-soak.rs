//! `tessera-soak [--minutes M] [--notices N] [--json FILE] [--no-flood] [--cache-mb N]`: two honest nodes and one hostile
//! peer, as separate `tessera-node` processes over mutual TLS on loopback.
//!
//! DE-BAFA imports N denials (default 100,000) for FR-SBDU while FR-SBDU screens one party
//! without pause; XX-HOSTILE, a configured peer with a real certificate, floods both honest
//! nodes for M minutes (default 10) with everything the federation port offers: idle TCP
//! sockets, PullNotices and PullIndex streams it never reads, oversized and junk Evaluate
//! and Cardinality batches, deconfliction hits on made-up tags, overlap reports, pushes of
//! junk notices, unknown serials, consultation messages that do not verify, and Hello, eight
//! calls of each kind in progress at once.
//!
//! At the end: every notice delivered exactly once (FR-SBDU holds N notice versions from
//! DE-BAFA, no more), both audit chains verify, honest screening p99 under flood against its
//! idle value (target < 3x), and the peak resident memory of each honest node. Screening
//! for 20 s after the flood, against the full index, is reported beside them. Prints a table
//! and writes JSON (default `bench-results/soak.json`). Exit 1 when a check fails.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;
use tessera_node::notice::json::party_to_wire;
use tessera_node::party::Party;
use tessera_proto::v1::federation_client::FederationClient;
use tessera_proto::v1::operator_client::OperatorClient;
use tessera_proto::v1::{
    AuditVerifyRequest, CardinalityRequest, DeconflictHitRequest, EvaluateRequest, FeedItem,
    GetNoticeRequest, HelloRequest, ImportNoticesRequest, NodeInfo, PullIndexRequest,
    PullNoticesRequest, PushNoticesRequest, ReportOverlapRequest, ScreenRequest, SignedMessage,
};
use tessera_tests::synthetic::{bench_name, notice, peak_rss_kib_of, rss_kib_of};
use tessera_tests::{ProcFederation, channel, client_with_cert, stored_from};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const HONEST: [&str; 2] = ["DE-BAFA", "FR-SBDU"];
const HOSTILE: &str = "XX-HOSTILE";
/// Calls of each kind the flood keeps in progress against each honest node.
const CALLS_AT_ONCE_PER_KIND: usize = 8;
/// The bound this soak holds each honest node's peak resident memory to.
const MEMORY_BOUND_MIB: u64 = 1024;

struct Args {
    minutes: f64,
    notices: usize,
    json: PathBuf,
    /// `--no-flood`: the import and the screening without the hostile peer, to tell what
    /// the flood adds to the tail from what the import and its indexing add.
    flood: bool,
    /// `--cache-mb N`: the nodes' `storage.cache_mb` (default: the node's default).
    cache_mb: Option<u64>,
}

fn args() -> anyhow::Result<Args> {
    let mut out = Args {
        minutes: 10.0,
        notices: 100_000,
        json: PathBuf::from("bench-results/soak.json"),
        flood: true,
        cache_mb: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--minutes" => out.minutes = value()?.parse().context("--minutes")?,
            "--notices" => out.notices = value()?.parse().context("--notices")?,
            "--json" => out.json = value()?.into(),
            "--no-flood" => out.flood = false,
            "--cache-mb" => out.cache_mb = Some(value()?.parse().context("--cache-mb")?),
            _ => anyhow::bail!(
                "usage: tessera-soak [--minutes M] [--notices N] [--json FILE] [--no-flood] [--cache-mb N] \
                 (unknown {a})"
            ),
        }
    }
    Ok(out)
}

/// The `tessera-node` program beside this one (`cargo build --release` builds both).
fn node_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me.parent().context("no directory")?;
    for name in ["tessera-node", "node-under-test"] {
        let p = dir.join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    anyhow::bail!(
        "no tessera-node beside {}: run cargo build --release first",
        me.display()
    )
}

fn screened_party() -> Party {
    Party {
        name: bench_name(7, 0),
        countries: vec!["AE".into()],
        ..Party::default()
    }
}

/// FR-SBDU screens the listed party until `stop`: each complete screen's start (seconds
/// from the first) and latency (ms).
async fn screen_loop(
    op: Channel,
    stop: CancellationToken,
    errors: Arc<AtomicU64>,
) -> Vec<(f64, f64)> {
    let mut client = OperatorClient::new(op);
    let request = ScreenRequest {
        parties: vec![party_to_wire(&screened_party())],
        threshold: 0.0,
    };
    let mut lat = Vec::new();
    let first = Instant::now();
    while !stop.is_cancelled() {
        let t = Instant::now();
        // A screen counts only when it found the listed party at DE-BAFA, so DE-BAFA
        // evaluated its keys; anything else (a budget refusal, a peer unreachable) is a
        // failure, not a fast screen.
        let complete = client.screen(request.clone()).await.is_ok_and(|r| {
            r.get_ref()
                .results
                .iter()
                .flat_map(|p| &p.matches)
                .any(|m| m.peer == HONEST[0])
        });
        if complete {
            lat.push((
                t.duration_since(first).as_secs_f64(),
                t.elapsed().as_secs_f64() * 1e3,
            ));
        } else {
            errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    lat
}

/// Runs [`screen_loop`] against node `i` on a thread and runtime of its own, over a
/// connection of its own. An operator's screening client is not one task among the
/// flood's in the attacker's process: sharing this program's workers with the flood
/// would time this program's queue as well as the node.
fn screen_apart(
    fed: &ProcFederation,
    i: usize,
    stop: CancellationToken,
    errors: Arc<AtomicU64>,
) -> tokio::sync::oneshot::Receiver<Vec<(f64, f64)>> {
    let (addr, config) = fed.operator_endpoint(i);
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        // A measuring tool: without a runtime there is nothing to measure, and the soak
        // stops with this message (its caller then sees the answer channel closed).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("screening runtime");
        let calls = runtime
            .block_on(async move { screen_loop(channel(&addr, config), stop, errors).await });
        let _ = done.send(calls);
    });
    result
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sorted(v: &[(f64, f64)]) -> Vec<f64> {
    let mut v: Vec<f64> = v.iter().map(|(_, ms)| *ms).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// p50 and p99 of the calls made in each `window` seconds, for where the tail falls.
fn timeline(calls: &[(f64, f64)], window: f64) {
    let end = calls.last().map_or(0.0, |(at, _)| *at);
    let mut from = 0.0;
    while from <= end {
        let inside: Vec<(f64, f64)> = calls
            .iter()
            .copied()
            .filter(|(at, _)| (from..from + window).contains(at))
            .collect();
        let s = sorted(&inside);
        println!(
            "  {from:>5.0}-{:<5.0} s: {:>5} calls, p50 {:>6.1} ms, p99 {:>6.1} ms",
            from + window,
            s.len(),
            percentile(&s, 0.5),
            percentile(&s, 0.99)
        );
        from += window;
    }
}

/// One hostile flood against one honest node's federation port: every RPC in turn, and
/// the resources an attacker can hold (sockets, unread streams).
async fn flood(fed_addr: String, ch: Channel, stop: CancellationToken, calls: Arc<AtomicU64>) {
    // Idle TCP sockets that never start a handshake, renewed as the node closes them.
    let sockets = {
        let stop = stop.clone();
        let addr = fed_addr.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while !stop.is_cancelled() {
                held.retain(|s: &tokio::net::TcpStream| s.peer_addr().is_ok());
                while held.len() < 300 {
                    match tokio::net::TcpStream::connect(&addr).await {
                        Ok(s) => held.push(s),
                        Err(_) => break,
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    // Streams opened and never read.
    let mut unread = Vec::new();
    let mut unread_index = Vec::new();
    let mut client = FederationClient::new(ch.clone());
    for _ in 0..200 {
        let pull = client.pull_notices(PullNoticesRequest { after: 0, limit: 0 });
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), pull).await {
            unread.push(s.into_inner());
        }
        let index = client.pull_index(PullIndexRequest { after: 0 });
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), index).await {
            unread_index.push(s.into_inner());
        }
    }
    // Every call, round after round.
    // The junk batches are built once and sent again and again: every call still carries
    // all its bytes, but the flood spends this shared machine's CPU on calls, not on
    // making them (a real attacker's CPU is not ours).
    let junk = |n: usize| -> Vec<prost::bytes::Bytes> {
        let all = prost::bytes::Bytes::from(
            (0..n)
                .flat_map(|i| [(i % 251) as u8; 32])
                .collect::<Vec<u8>>(),
        );
        (0..n).map(|i| all.slice(i * 32..(i + 1) * 32)).collect()
    };
    let (junk_evaluate, junk_cardinality) = (junk(65_535), junk(10_000));
    // Each kind of call in a loop of its own, so that one kind the node makes slow (a junk
    // batch read at the peer's read rate) does not slow the others: the flood's rate no
    // longer depends on which of its calls the node answers fast.
    // Several calls of each kind at once, to fill the connection's HTTP/2 streams: the node
    // holds back the answers of a peer refused past its allowance, and a flood that waited
    // for each answer would be throttled by that alone.
    let mut loops = Vec::new();
    for kind in (0..8u8).flat_map(|k| [k; CALLS_AT_ONCE_PER_KIND]) {
        let (ch, stop, calls) = (ch.clone(), stop.clone(), calls.clone());
        let (junk_evaluate, junk_cardinality) = (junk_evaluate.clone(), junk_cardinality.clone());
        loops.push(tokio::spawn(async move {
            let mut c = FederationClient::new(ch);
            let mut round = 0u64;
            while !stop.is_cancelled() {
                round += 1;
                let call = hostile_call(&mut c, kind, round, &junk_evaluate, &junk_cardinality);
                let _ = tokio::time::timeout(Duration::from_secs(10), call).await;
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for l in loops {
        let _ = l.await;
    }
    drop((unread, unread_index));
    sockets.abort();
}

/// One hostile call of `kind` (0..8), its answer ignored.
async fn hostile_call(
    c: &mut FederationClient<Channel>,
    kind: u8,
    round: u64,
    evaluate: &[prost::bytes::Bytes],
    cardinality: &[prost::bytes::Bytes],
) {
    let _ = match kind {
        0 => c
            .evaluate(EvaluateRequest {
                epoch: 1,
                blinded: evaluate.to_vec(),
            })
            .await
            .map(|_| ()),
        1 => c
            .cardinality(CardinalityRequest {
                blinded: cardinality.to_vec(),
            })
            .await
            .map(|_| ()),
        2 => c
            .deconflict_hit(DeconflictHitRequest {
                tag: round.to_be_bytes().repeat(2),
                contact: "call me".into(),
            })
            .await
            .map(|_| ()),
        3 => c
            .report_overlap(ReportOverlapRequest {
                peer: HONEST[1].into(),
            })
            .await
            .map(|_| ()),
        4 => c
            .push_notices(PushNoticesRequest {
                items: vec![FeedItem {
                    seq: round,
                    ..Default::default()
                }],
                index_pos: u64::MAX,
            })
            .await
            .map(|_| ()),
        5 => c
            .get_notice(GetNoticeRequest {
                serial: format!("NOPE-{round}"),
            })
            .await
            .map(|_| ()),
        6 => c
            .consult(SignedMessage {
                ..Default::default()
            })
            .await
            .map(|_| ()),
        _ => c
            .hello(HelloRequest {
                node: Some(NodeInfo {
                    agency: HOSTILE.into(),
                    software_version: "soak".into(),
                    protocol_version: 1,
                    ..Default::default()
                }),
            })
            .await
            .map(|_| ()),
    };
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let binary = node_binary()?;
    println!(
        "soak: {} notices, {} min, hostile peer {HOSTILE} flooding both honest nodes",
        args.notices, args.minutes
    );
    let mut fed = ProcFederation::new(binary, &[HONEST[0], HONEST[1], HOSTILE], |cfg| {
        // The defaults a deployment runs with, but for a faster greeting.
        cfg.sync.pull_interval_ms = 5_000;
        cfg.log.level = "warn".into();
        if let Some(mb) = args.cache_mb {
            cfg.storage.cache_mb = mb;
        }
        // FR-SBDU screens without pause: its budget at DE-BAFA must cover that, or most
        // screens would be budget refusals (cheap answers) and the figures would not be
        // of screening. The hostile peer keeps the default budget.
        for peer in &mut cfg.peers {
            if peer.agency == HONEST[1] {
                peer.keys_per_day = Some(u64::MAX / 4);
                peer.burst = Some(u64::MAX / 4);
            }
        }
    });
    fed.start(0);
    fed.start(1);
    fed.ready(0).await;
    fed.ready(1).await;
    let (a_op, b_op) = (fed.operator(0), fed.operator(1));

    // A small list first, for the idle screening figure.
    let seed: Vec<_> = (0..200).map(|i| notice(i, 1)).collect();
    OperatorClient::new(a_op.clone())
        .import_notices(ImportNoticesRequest { notices: seed })
        .await?;
    let t = Instant::now();
    while stored_from(b_op.clone(), HONEST[0]).await < 200 {
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(120),
            "the first notices did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Wait until FR-SBDU's copy of DE-BAFA's index holds the screened party.
    let t = Instant::now();
    loop {
        let r = OperatorClient::new(b_op.clone())
            .screen(ScreenRequest {
                parties: vec![party_to_wire(&screened_party())],
                threshold: 0.0,
            })
            .await?
            .into_inner();
        if r.results.first().is_some_and(|p| !p.matches.is_empty()) {
            break;
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(120),
            "index not replicated"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let idle_stop = CancellationToken::new();
    let errors = Arc::new(AtomicU64::new(0));
    let idle = screen_apart(&fed, 1, idle_stop.clone(), errors.clone());
    tokio::time::sleep(Duration::from_secs(20)).await;
    idle_stop.cancel();
    let idle = sorted(&idle.await?);
    let idle_p99 = percentile(&idle, 0.99);
    println!(
        "  idle screening: {} calls, p50 {:.1} ms, p99 {:.1} ms",
        idle.len(),
        percentile(&idle, 0.5),
        idle_p99
    );

    // The flood, the import and the screening, together.
    let stop = CancellationToken::new();
    let calls = Arc::new(AtomicU64::new(0));
    let hostile = &fed.agencies[2];
    let mut floods = Vec::new();
    let flooded = if args.flood { 2 } else { 0 };
    for (i, honest) in fed.agencies[..flooded].iter().enumerate() {
        let cfg = client_with_cert(
            fed.root(),
            &hostile.dir.join("node.pem"),
            &hostile.dir.join("node.key"),
            HONEST[i],
        );
        let addr = format!("127.0.0.1:{}", honest.federation_port);
        let ch = channel(&addr, cfg);
        floods.push(tokio::spawn(flood(addr, ch, stop.clone(), calls.clone())));
    }
    let screen_errors = Arc::new(AtomicU64::new(0));
    let screening = screen_apart(&fed, 1, stop.clone(), screen_errors.clone());
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.minutes * 60.0);
    let mut import = OperatorClient::new(a_op.clone());
    let mut sent = 200usize;
    let mut peak = [0u64; 2];
    let mut delivered_at = None;
    let total = args.notices.max(200);
    loop {
        if sent < total {
            let batch: Vec<_> = (sent..(sent + 1_000).min(total))
                .map(|i| notice(i, 1))
                .collect();
            let n = batch.len();
            match import
                .import_notices(ImportNoticesRequest { notices: batch })
                .await
            {
                Ok(_) => sent += n,
                Err(e) => println!("  import batch refused: {}", e.message()),
            }
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        for (i, p) in peak.iter_mut().enumerate() {
            if let Some(pid) = fed.pid(i) {
                *p = (*p).max(rss_kib_of(&pid.to_string()));
            }
        }
        if delivered_at.is_none()
            && sent >= total
            && stored_from(b_op.clone(), HONEST[0]).await >= total as u64
        {
            delivered_at = Some(started.elapsed());
            println!(
                "  all {total} notices at FR-SBDU after {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        if Instant::now() >= deadline
            && (delivered_at.is_some() || Instant::now() >= deadline + Duration::from_secs(600))
        {
            break;
        }
    }
    stop.cancel();
    let screened = screening.await?;
    println!("  screening under flood, by time since the flood began:");
    timeline(&screened, 30.0);
    let busy = sorted(&screened);
    for f in floods {
        let _ = f.await;
    }
    let busy_p99 = percentile(&busy, 0.99);
    // The same screening once the flood is over, against the full index (DE-BAFA may
    // still be indexing the import): tells what the flood adds from what the index's
    // size and its indexing add. Reported, not checked.
    let after_stop = CancellationToken::new();
    let after = screen_apart(&fed, 1, after_stop.clone(), Arc::new(AtomicU64::new(0)));
    tokio::time::sleep(Duration::from_secs(20)).await;
    after_stop.cancel();
    let after = sorted(&after.await?);
    println!(
        "  after the flood: {} calls, p50 {:.1} ms, p99 {:.1} ms",
        after.len(),
        percentile(&after, 0.5),
        percentile(&after, 0.99)
    );
    let stored = stored_from(b_op.clone(), HONEST[0]).await;
    let mut audit_ok = [false; 2];
    for (i, op) in [a_op.clone(), b_op.clone()].into_iter().enumerate() {
        audit_ok[i] = OperatorClient::new(op)
            .audit_verify(AuditVerifyRequest::default())
            .await
            .is_ok();
    }
    for (i, p) in peak.iter_mut().enumerate() {
        if let Some(pid) = fed.pid(i) {
            *p = (*p).max(peak_rss_kib_of(&pid.to_string()));
        }
    }
    let ratio = busy_p99 / idle_p99;
    let checks = [
        (
            "every notice delivered exactly once",
            stored == total as u64,
        ),
        ("both audit chains intact", audit_ok.iter().all(|ok| *ok)),
        ("screening p99 under flood < 3x idle", ratio < 3.0),
        (
            "peak memory of each honest node under the bound",
            peak.iter().all(|kib| kib / 1024 < MEMORY_BOUND_MIB),
        ),
    ];
    println!("\n| measure | figure |\n|---|---:|");
    println!(
        "| run | {:.1} min |",
        started.elapsed().as_secs_f64() / 60.0
    );
    println!("| notices imported at DE-BAFA / held by FR-SBDU | {total} / {stored} |");
    if let Some(d) = delivered_at {
        println!("| all notices delivered after | {:.1} s |", d.as_secs_f64());
    }
    println!("| hostile calls made | {} |", calls.load(Ordering::Relaxed));
    println!(
        "| screening idle: calls, p50 / p99 | {}, {:.1} / {:.1} ms |",
        idle.len(),
        percentile(&idle, 0.5),
        idle_p99
    );
    println!(
        "| screening under flood: calls, p50 / p99 | {}, {:.1} / {:.1} ms ({ratio:.2}x idle p99) |",
        busy.len(),
        percentile(&busy, 0.5),
        busy_p99
    );
    println!(
        "| screening after the flood, full index: calls, p50 / p99 | {}, {:.1} / {:.1} ms |",
        after.len(),
        percentile(&after, 0.5),
        percentile(&after, 0.99)
    );
    println!(
        "| screening calls that failed under flood | {} |",
        screen_errors.load(Ordering::Relaxed)
    );
    println!(
        "| peak resident memory DE-BAFA / FR-SBDU | {:.0} / {:.0} MiB (bound {MEMORY_BOUND_MIB} MiB) |",
        peak[0] as f64 / 1024.0,
        peak[1] as f64 / 1024.0
    );
    for (what, ok) in &checks {
        println!("{} {what}", if *ok { "ok  " } else { "FAIL" });
    }
    let doc = json!({
        "bench": "soak",
        "minutes": started.elapsed().as_secs_f64() / 60.0,
        "notices": total,
        "stored": stored,
        "delivered_after_s": delivered_at.map(|d| d.as_secs_f64()),
        "hostile_flood": args.flood,
        "hostile_calls": calls.load(Ordering::Relaxed),
        "idle": { "calls": idle.len(), "p50_ms": percentile(&idle, 0.5), "p99_ms": idle_p99 },
        "after_flood": { "calls": after.len(), "p50_ms": percentile(&after, 0.5),
                         "p99_ms": percentile(&after, 0.99) },
        "flood": { "calls": busy.len(), "p50_ms": percentile(&busy, 0.5), "p99_ms": busy_p99,
                   "failed": screen_errors.load(Ordering::Relaxed), "p99_ratio": ratio },
        "peak_rss_mib": { HONEST[0]: peak[0] / 1024, HONEST[1]: peak[1] / 1024 },
        "memory_bound_mib": MEMORY_BOUND_MIB,
        "audit_intact": audit_ok,
        "checks": checks.iter().map(|(w, ok)| json!({"check": w, "ok": ok})).collect::<Vec<_>>(),
    });
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.json, serde_json::to_vec_pretty(&doc)?)?;
    println!("figures written to {}", args.json.display());
    drop(fed);
    if checks.iter().all(|(_, ok)| *ok) {
        Ok(())
    } else {
        anyhow::bail!("a soak check failed")
    }
}
