//! Synthetic lists for benchmarks and the soak: denial notices with made-up company names
//! (distinct per notice, as on a real list) and the resident memory of a process.

use tessera_proto::v1::{
    DenialAction, DenialNotice, Marking, Notice, NoticeStatus, PartyKind, PartyRole, RegimeBasis,
    RoledParty, notice::Body,
};

/// A company name for party `p` of notice `i`: two made-up words from a seeded mix of the
/// numbers, and the common words of a trading company. Distinct notices get distinct
/// names (as on a real list), so a query opens the names it matches, not the whole list.
pub fn bench_name(i: usize, p: usize) -> String {
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ta", "re", "vo", "zu", "ne", "pa", "si", "do", "gu", "fe", "hi", "ja",
        "ko", "ru", "be", "ny", "wa", "xe", "qo", "ci", "lu",
    ];
    let word = |mut n: u64| {
        let mut w = String::new();
        for _ in 0..4 {
            w.push_str(SYLLABLES[(n % 24) as usize]);
            n /= 24;
        }
        w
    };
    // SplitMix64 of the numbers: neighbouring notices share no syllable pattern.
    let mix = |x: u64| {
        let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let seed = mix(i as u64 * 1_000 + p as u64);
    format!("{} {} Trading Company", word(seed), word(mix(seed)))
}

pub fn notice(i: usize, parties: usize) -> Notice {
    Notice {
        serial: format!("BENCH-{i:07}"),
        marking: Marking::Amber as i32,
        distribution: Some(tessera_node::policy::parse_to("all").expect("static")),
        body: Some(Body::Denial(DenialNotice {
            authority_reference: format!("BENCH-REF-{i}"),
            regime_basis: RegimeBasis::Wassenaar as i32,
            action: DenialAction::Refuse as i32,
            decision_date: "2026-01-15".into(),
            items: vec![tessera_proto::v1::Item {
                control_entry: "3A001.a.2".into(),
                description: "radiation-hardened microcircuits".into(),
                ..Default::default()
            }],
            parties: (0..parties)
                .map(|p| RoledParty {
                    role: PartyRole::EndUser as i32,
                    party: Some(tessera_proto::v1::Party {
                        kind: PartyKind::Organisation as i32,
                        name: bench_name(i, p),
                        countries: vec!["AE".into()],
                        ..Default::default()
                    }),
                })
                .collect(),
            destination: "IR".into(),
            status: NoticeStatus::InForce as i32,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Resident memory of this process, KiB.
pub fn rss_kib() -> u64 {
    rss_kib_of("self")
}

/// Resident memory (`VmRSS`) of process `pid` ("self" for this one), KiB; 0 if unreadable.
pub fn rss_kib_of(pid: &str) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// Peak resident memory (`VmHWM`) of process `pid`, KiB; 0 if unreadable.
pub fn peak_rss_kib_of(pid: &str) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// CPU time (user and system) this process has used, seconds; 0 if unreadable. Linux
/// counts it in ticks of 1/100 s.
pub fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The fields after the command name, which is in parentheses and may hold spaces.
            let rest = s.get(s.rfind(')')? + 2..)?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
            Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
