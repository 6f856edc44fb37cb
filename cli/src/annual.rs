//! A member's annual-report figures (Recommendation (EU) 2024/214) as a
//! table, JSON or CSV: authorisations and denials by item category and
//! destination. Counts, categories and countries only: never a party, an
//! application or a denial's reference.

use std::io::Write;

use tessera_proto::v1::PilotAnnualResponse;

/// The CSV header, one line.
pub const CSV_HEADER: &str = "member,from,to,category,destination,authorisations,denials";

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Writes the figures as CSV: a header, then one row per category and
/// destination.
pub fn csv(r: &PilotAnnualResponse, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "{CSV_HEADER}")?;
    for row in &r.rows {
        writeln!(
            out,
            "{},{},{},{},{},{},{}",
            field(&r.agency),
            field(&r.from),
            field(&r.to),
            field(&row.category),
            field(&row.destination),
            row.authorisations,
            row.denials
        )?;
    }
    Ok(())
}

/// Writes the figures as one JSON line.
pub fn json(r: &PilotAnnualResponse, out: &mut impl Write) -> anyhow::Result<()> {
    let rows: Vec<_> = r
        .rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "category": row.category, "destination": row.destination,
                "authorisations": row.authorisations, "denials": row.denials,
            })
        })
        .collect();
    let v = serde_json::json!({
        "member": r.agency, "from": r.from, "to": r.to, "rows": rows,
        "authorisations": r.authorisations, "denials": r.denials,
    });
    writeln!(out, "{}", serde_json::to_string(&v)?)?;
    Ok(())
}

/// Writes the figures as a table for a person.
pub fn table(r: &PilotAnnualResponse, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "annual report, {} ({} to {}): {} authorisations, {} denials",
        r.agency, r.from, r.to, r.authorisations, r.denials
    )?;
    if r.rows.is_empty() {
        writeln!(out, "  no decision in the period")?;
        return Ok(());
    }
    writeln!(
        out,
        "  {:<9} {:<12} {:>14} {:>8}",
        "category", "destination", "authorisations", "denials"
    )?;
    for row in &r.rows {
        writeln!(
            out,
            "  {:<9} {:<12} {:>14} {:>8}",
            row.category, row.destination, row.authorisations, row.denials
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tessera_proto::v1::AnnualRow;

    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let r = PilotAnnualResponse {
            agency: "DE-BAFA".into(),
            from: "2026-01-01".into(),
            to: "2026-12-31".into(),
            rows: vec![AnnualRow {
                category: "5".into(),
                destination: "C,\"N".into(),
                authorisations: 2,
                denials: 1,
            }],
            ..PilotAnnualResponse::default()
        };
        let mut out = Vec::new();
        csv(&r, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{CSV_HEADER}\nDE-BAFA,2026-01-01,2026-12-31,5,\"C,\"\"N\",2,1\n")
        );
    }
}
