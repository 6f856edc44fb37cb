//! The pilot report as a table, JSON, CSV, and SVG charts drawn with
//! plotters: the distribution of decision times per member, and
//! consultations opened over time. Counts only: a report never holds a
//! party or an application.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use plotters::prelude::*;
use tessera_proto::v1::PilotReportResponse;

/// How `pilot report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Every count name any member reported, in a stable order.
fn count_names(r: &PilotReportResponse) -> Vec<String> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    for m in &r.members {
        if let Some(f) = &m.figures {
            names.extend(f.counts.keys().cloned());
        }
    }
    names.into_iter().collect()
}

fn median(v: &[u32]) -> Option<u32> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// Prints the report.
pub fn print(r: &PilotReportResponse, format: Format, out: &mut impl Write) -> anyhow::Result<()> {
    let names = count_names(r);
    match format {
        Format::Json => {
            let members: Vec<_> = r
                .members
                .iter()
                .map(|m| {
                    let f = m.figures.clone().unwrap_or_default();
                    serde_json::json!({
                        "member": m.agency, "problem": m.problem, "signature": m.signature, "key_id": m.key_id,
                        "from": f.from, "to": f.to, "counts": f.counts.into_iter().collect::<BTreeMap<_, _>>(),
                        "decision_days": f.decision_days,
                        "consultations_by_day": f.consultations_by_day.into_iter().collect::<BTreeMap<_, _>>(),
                    })
                })
                .collect();
            writeln!(
                out,
                "{}",
                serde_json::to_string(
                    &serde_json::json!({"bloc": r.bloc, "charter_version": r.charter_version, "members": members})
                )?
            )?;
        }
        Format::Csv => {
            writeln!(
                out,
                "member,{},median_decision_days,signature,problem",
                names.join(",")
            )?;
            for m in &r.members {
                let f = m.figures.clone().unwrap_or_default();
                let cells: Vec<String> = names
                    .iter()
                    .map(|n| f.counts.get(n).map(ToString::to_string).unwrap_or_default())
                    .collect();
                writeln!(
                    out,
                    "{},{},{},{},\"{}\"",
                    m.agency,
                    cells.join(","),
                    median(&f.decision_days)
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    m.signature,
                    m.problem.replace('"', "'")
                )?;
            }
        }
        Format::Table => {
            writeln!(
                out,
                "pilot report, bloc {} (charter version {})",
                r.bloc, r.charter_version
            )?;
            for m in &r.members {
                let Some(f) = &m.figures else {
                    writeln!(out, "{}: no figures ({})", m.agency, m.problem)?;
                    continue;
                };
                writeln!(
                    out,
                    "{} ({} to {}, signed by key {}):",
                    m.agency, f.from, f.to, m.key_id
                )?;
                for n in &names {
                    if let Some(v) = f.counts.get(n) {
                        writeln!(out, "  {n:<34} {v}")?;
                    }
                }
                if let Some(d) = median(&f.decision_days) {
                    writeln!(out, "  {:<34} {d}", "median working days to decision")?;
                }
            }
        }
    }
    Ok(())
}

fn drawing<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing: {e}")
}

/// Writes `decision-times.svg` and `consultations.svg` into `dir`.
pub fn write_svgs(dir: &Path, r: &PilotReportResponse) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let members: Vec<&str> = r.members.iter().map(|m| m.agency.as_str()).collect();
    let n = members.len().max(1);

    // Decision times: per member, the share decided within 20, 60 and more working days.
    let path = dir.join("decision-times.svg");
    let root = SVGBackend::new(&path, (160 + 90 * n as u32, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Working days to decision: {}", r.bloc),
            ("sans-serif", 18),
        )
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((0..n).into_segmented(), 0u32..100u32)
        .map_err(drawing)?;
    let labels = members.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc("% of decisions")
        .draw()
        .map_err(drawing)?;
    let bands = [
        (20, RGBColor(90, 160, 90)),
        (60, RGBColor(230, 180, 60)),
        (u32::MAX, RGBColor(200, 80, 70)),
    ];
    for (i, m) in r.members.iter().enumerate() {
        let days = m
            .figures
            .as_ref()
            .map(|f| f.decision_days.clone())
            .unwrap_or_default();
        if days.is_empty() {
            continue;
        }
        let mut bottom = 0u32;
        let mut below = 0usize;
        for (limit, colour) in bands {
            let within = days.iter().filter(|d| **d <= limit).count();
            let share = ((within - below) * 100 / days.len()) as u32;
            below = within;
            let top = (bottom + share).min(100);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (SegmentValue::Exact(i), bottom),
                        (SegmentValue::Exact(i + 1), top),
                    ],
                    colour.filled(),
                )))
                .map_err(drawing)?;
            bottom = top;
        }
    }
    root.present().map_err(drawing)?;

    // Consultations opened per day, one line per member.
    let path = dir.join("consultations.svg");
    let mut days: BTreeSet<String> = BTreeSet::new();
    for m in &r.members {
        if let Some(f) = &m.figures {
            days.extend(f.consultations_by_day.keys().cloned());
        }
    }
    let days: Vec<String> = days.into_iter().collect();
    let max = r
        .members
        .iter()
        .filter_map(|m| m.figures.as_ref())
        .flat_map(|f| f.consultations_by_day.values().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let root = SVGBackend::new(&path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Consultations opened: {}", r.bloc),
            ("sans-serif", 18),
        )
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0..days.len().max(1), 0..max + 1)
        .map_err(drawing)?;
    let day_labels = days.clone();
    chart
        .configure_mesh()
        .x_label_formatter(&|i| day_labels.get(*i).cloned().unwrap_or_default())
        .draw()
        .map_err(drawing)?;
    for (k, m) in r.members.iter().enumerate() {
        let Some(f) = &m.figures else { continue };
        let colour = Palette99::pick(k);
        chart
            .draw_series(std::iter::once(PathElement::new(
                days.iter()
                    .enumerate()
                    .map(|(i, d)| (i, f.consultations_by_day.get(d).copied().unwrap_or(0)))
                    .collect::<Vec<_>>(),
                colour,
            )))
            .map_err(drawing)?
            .label(m.agency.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], Palette99::pick(k)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(drawing)?;
    root.present().map_err(drawing)?;
    Ok(())
}
