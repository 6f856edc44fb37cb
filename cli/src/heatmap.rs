//! The harmonisation heat map: pairwise overlap counts of a group's members,
//! drawn as SVG with plotters.

use std::path::Path;

use plotters::prelude::*;
use tessera_proto::v1::HarmoniseResponse;

/// Writes the heat map of `r` to `path`.
pub fn write_svg(path: &Path, group: &str, r: &HarmoniseResponse) -> anyhow::Result<()> {
    let m = crate::matching::matrix(r);
    let n = r.members.len();
    if n == 0 {
        anyhow::bail!("group {group} has no members");
    }
    let max = m
        .iter()
        .flatten()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let size = (160 + 110 * n as u32, 120 + 110 * n as u32);
    let mut svg = String::new();
    draw(&mut svg, size, group, &m, max, r)?;
    std::fs::write(path, svg).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// Draws the heat map as SVG text into `svg`.
fn draw(
    svg: &mut String,
    size: (u32, u32),
    group: &str,
    m: &[Vec<Option<u64>>],
    max: u64,
    r: &HarmoniseResponse,
) -> anyhow::Result<()> {
    let n = r.members.len();
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Overlap of denial lists: {group}"),
            ("sans-serif", 20),
        )
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(0..n, 0..n)
        .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    let members = r.members.clone();
    let label = move |i: &usize| members.get(*i).cloned().unwrap_or_default();
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n)
        .y_labels(n)
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .x_label_offset(45)
        .y_label_offset(-45)
        .draw()
        .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    for (i, row) in m.iter().enumerate() {
        for (j, cell) in row.iter().enumerate() {
            let colour = match cell {
                _ if i == j => RGBColor(235, 235, 235),
                None => RGBColor(200, 200, 200),
                Some(c) => {
                    let t = *c as f64 / max as f64;
                    RGBColor(255, (230.0 - 180.0 * t) as u8, (200.0 - 180.0 * t) as u8)
                }
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(j, i), (j + 1, i + 1)],
                    colour.filled(),
                )))
                .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
            let text = match cell {
                _ if i == j => "-".to_owned(),
                None => "n/a".to_owned(),
                Some(c) => c.to_string(),
            };
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (j, i + 1),
                    ("sans-serif", 16),
                )))
                .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
        }
    }
    root.present()
        .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    Ok(())
}
