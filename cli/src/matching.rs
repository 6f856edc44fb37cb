//! `tessera screen | watch | alerts | deconflict | overlap | harmonise`:
//! private matching from the operator's side.

use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::Serialize;
use tessera_node::notice::json::party_to_wire;
use tessera_node::party::Party;
use tessera_proto::v1::{
    Alert, AlertsRequest, HarmoniseRequest, HarmoniseResponse, Match, OverlapRequest, PartyResult,
    RotateKeyRequest, ScreenRequest, ScreenResponse, WatchAddRequest, WatchListRequest,
    WatchRemoveRequest,
};

use crate::client::{CliConfig, explain_call};

/// Reads JSON Lines parties; a bad line is an error naming its number.
pub fn read_parties(path: &Path) -> anyhow::Result<Vec<Party>> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| anyhow::anyhow!("{}: line {}: {e}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let party: Party = serde_json::from_str(&line).map_err(|e| {
            anyhow::anyhow!(
                "{}: line {}: {}",
                path.display(),
                i + 1,
                tessera_node::notice::json::scrub_json_error(&e)
            )
        })?;
        out.push(party);
    }
    if out.is_empty() {
        anyhow::bail!("{} holds no parties", path.display());
    }
    Ok(out)
}

#[derive(Serialize)]
struct MatchJson<'a> {
    peer: &'a str,
    origin: &'a str,
    serial: &'a str,
    authority_reference: &'a str,
    contact: &'a str,
    strength: &'a str,
    score: f64,
    why: &'a str,
    key_kinds: &'a [String],
    query_names: &'a [u32],
    /// A notice of this node's own lists.
    own: bool,
    disclosure: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    action: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    control_entries: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    decision_date: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    destination: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    notice: Option<serde_json::Value>,
}

fn match_json(m: &Match) -> MatchJson<'_> {
    MatchJson {
        peer: &m.peer,
        origin: &m.origin,
        serial: &m.serial,
        authority_reference: &m.authority_reference,
        contact: &m.contact,
        strength: &m.strength,
        score: (m.score * 1000.0).round() / 1000.0,
        why: &m.why,
        key_kinds: &m.key_kinds,
        query_names: &m.query_names,
        own: m.own,
        disclosure: &m.disclosure,
        action: &m.action,
        control_entries: &m.control_entries,
        decision_date: &m.decision_date,
        destination: &m.destination,
        notice: (!m.notice_json.is_empty())
            .then(|| serde_json::from_str(&m.notice_json).ok())
            .flatten(),
    }
}

/// A party's screening status: `match`, `clear` (every peer answered, none matched),
/// `not_fully_screened` (some peer did not answer) or `not_screened` (no key, or no peer
/// answered).
pub fn status(result: &PartyResult, r: &ScreenResponse) -> &'static str {
    let peers = r.screened_peers.len() + r.unavailable.len();
    if !result.matches.is_empty() {
        "match"
    } else if result.keys == 0 || result.unscreened.len() >= peers {
        "not_screened"
    } else if !result.unscreened.is_empty() {
        "not_fully_screened"
    } else {
        "clear"
    }
}

/// Orders strengths for output: strongest first.
fn strength_rank(strength: &str) -> u8 {
    match strength {
        "strong" => 3,
        "medium" => 2,
        "weak" => 1,
        _ => 0,
    }
}

/// A key kind in plain words (docs/match-keys.md).
fn key_kind_words(kind: &str) -> &str {
    match kind {
        "id" => "same identifier",
        "name_country" => "exact name + country",
        "name_birth_year" => "exact name + birth year",
        "name" => "exact name",
        "joined" => "same name, words joined",
        "sound" => "same name by sound",
        "consonants" | "consonant_seq" => "same consonants (one name written without vowels)",
        other => other,
    }
}

/// One line per match, for people.
pub fn describe_match(m: &Match) -> String {
    let why = if m.why.is_empty() {
        m.key_kinds
            .iter()
            .map(|k| key_kind_words(k))
            .collect::<Vec<_>>()
            .join(" and ")
    } else {
        format!("{} (score {:.2})", m.why, m.score)
    };
    let names = match m.query_names.as_slice() {
        [] | [0] => String::new(),
        many => format!(
            " of name(s) {}",
            many.iter()
                .map(|n| if *n == 0 {
                    "primary".to_owned()
                } else {
                    format!("#{n}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut s = format!(
        "{} {}/{} (ref {}) via {}: {} match on {why}{names}; contact: {}",
        if m.own { "own list" } else { m.peer.as_str() },
        m.origin,
        m.serial,
        m.authority_reference,
        m.disclosure,
        m.strength,
        if m.contact.is_empty() {
            "-"
        } else {
            &m.contact
        }
    );
    if !m.action.is_empty() {
        let _ = write!(
            s,
            "; {} {} {} {}",
            m.action,
            m.control_entries.join(","),
            m.destination,
            m.decision_date
        );
    }
    s
}

/// `screen`: one result per party, every peer.
pub async fn screen(
    cfg: &CliConfig,
    parties: &[Party],
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<ScreenResponse> {
    let r = cfg
        .operator()?
        .screen(ScreenRequest {
            parties: parties.iter().map(party_to_wire).collect(),
            threshold: 0.0,
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    print_screened(parties, &r, as_json, out)?;
    Ok(r)
}

/// Prints the answer `r` to screening `parties`: per party its status, its
/// matches strongest first, what was not screened and what was left out.
pub fn print_screened(
    parties: &[Party],
    r: &ScreenResponse,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if as_json {
        for result in &r.results {
            let matches: Vec<MatchJson<'_>> = result.matches.iter().map(match_json).collect();
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "party": result.index,
                    "status": status(result, r),
                    "keys": result.keys,
                    "matches": matches,
                    "unscreened": result.unscreened,
                    "suppressed": r.suppressed.get(&result.index).copied().unwrap_or(0),
                    "unavailable": r.unavailable.iter().map(|u| serde_json::json!({"peer": u.peer, "reason": u.reason})).collect::<Vec<_>>(),
                })
            )?;
        }
        return Ok(());
    }
    for result in &r.results {
        let name = parties
            .get(result.index as usize)
            .map_or("?", |p| p.name.as_str());
        let head = format!("party {} ({name})", result.index + 1);
        let missing = result.unscreened.join(", ");
        match status(result, r) {
            "match" => {
                writeln!(out, "{head}: MATCH, {} notice(s)", result.matches.len())?;
                let mut matches: Vec<&Match> = result.matches.iter().collect();
                matches.sort_by(|a, b| {
                    strength_rank(&b.strength)
                        .cmp(&strength_rank(&a.strength))
                        .then(b.score.total_cmp(&a.score))
                });
                for m in matches {
                    writeln!(out, "  {}", describe_match(m))?;
                }
                if !result.unscreened.is_empty() {
                    writeln!(out, "  not screened against {missing}")?;
                }
            }
            "not_screened" if result.keys == 0 => writeln!(
                out,
                "{head}: NOT SCREENED: no match key could be derived from what was given"
            )?,
            "not_screened" => writeln!(
                out,
                "{head}: NOT SCREENED: no peer answered for it (see below)"
            )?,
            "not_fully_screened" => writeln!(
                out,
                "{head}: NOT FULLY SCREENED: no match at the peers that answered; not screened against {missing}"
            )?,
            _ => writeln!(
                out,
                "{head}: clear: no match at any of the {} peer(s), each of which answered for every key",
                r.screened_peers.len() + r.unavailable.len()
            )?,
        }
        if let Some(n) = r.suppressed.get(&result.index).filter(|n| **n > 0) {
            writeln!(
                out,
                "  {n} match(es) not shown: marked false positive on this node (undo in the console's Alerts page)"
            )?;
        }
    }
    for u in &r.unavailable {
        writeln!(
            out,
            "NOT SCREENED against {}: {} (this is not a 'no match')",
            u.peer, u.reason
        )?;
    }
    Ok(())
}

/// `watch add` and `deconflict add`.
pub async fn watch_add(
    cfg: &CliConfig,
    parties: &[Party],
    reference: &str,
    purpose: &str,
    contact: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let r = cfg
        .operator()?
        .watch_add(WatchAddRequest {
            parties: parties.iter().map(party_to_wire).collect(),
            reference: reference.to_owned(),
            purpose: purpose.to_owned(),
            contact: contact.to_owned(),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    writeln!(
        out,
        "{} part{} on the {} list (ids {}); {} alert(s) raised now; new entries at any peer will alert without a new query",
        r.ids.len(),
        if r.ids.len() == 1 { "y" } else { "ies" },
        if purpose == "investigation" {
            "deconfliction"
        } else {
            "watch"
        },
        r.ids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        r.alerts
    )?;
    for u in &r.unavailable {
        writeln!(
            out,
            "not yet evaluated at {}: {} (retried when its index next changes)",
            u.peer, u.reason
        )?;
    }
    Ok(())
}

/// `watch list` (purpose `watch`) and `deconflict list` (purpose `investigation`).
pub async fn watch_list(
    cfg: &CliConfig,
    purpose: &str,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let r = cfg
        .operator()?
        .watch_list(WatchListRequest {})
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    let mut rows = vec![[
        "ID".to_owned(),
        "PURPOSE".to_owned(),
        "REFERENCE".to_owned(),
        "PARTY".to_owned(),
    ]];
    for e in r.entries.iter().filter(|e| e.purpose == purpose) {
        let name = e.party.as_ref().map(|p| p.name.clone()).unwrap_or_default();
        if as_json {
            writeln!(
                out,
                "{}",
                serde_json::json!({"id": e.id, "purpose": e.purpose, "reference": e.reference, "name": name})
            )?;
        }
        rows.push([
            e.id.to_string(),
            e.purpose.clone(),
            e.reference.clone(),
            name,
        ]);
    }
    if !as_json {
        write!(out, "{}", crate::table::render(&rows))?;
    }
    Ok(())
}

/// `watch remove ID`.
pub async fn watch_remove(cfg: &CliConfig, id: u64, out: &mut impl Write) -> anyhow::Result<()> {
    cfg.operator()?
        .watch_remove(WatchRemoveRequest { id })
        .await
        .map_err(|s| explain_call(cfg, &s))?;
    writeln!(out, "watch entry {id} removed")?;
    Ok(())
}

/// `alerts [--after SEQ]`.
pub async fn alerts(
    cfg: &CliConfig,
    after: u64,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<Vec<Alert>> {
    let r = cfg
        .operator()?
        .alerts(AlertsRequest { after })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    for a in &r.alerts {
        let m = a.r#match.clone().unwrap_or_default();
        if as_json {
            writeln!(
                out,
                "{}",
                serde_json::json!({"seq": a.seq, "at_ms": a.at_ms, "kind": a.kind, "update": a.update, "watch_id": a.watch_id, "reference": a.reference, "match": match_json(&m)})
            )?;
        } else {
            // ISO 8601 with the zone (UTC), to the second.
            let when = time::OffsetDateTime::from_unix_timestamp(a.at_ms / 1000)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            match a.kind.as_str() {
                "consultation" => writeln!(
                    out,
                    "#{} {} [consultation] {} with {}: {} (see `tessera consult show {}`)",
                    a.seq, when, a.reference, m.peer, m.action, a.reference
                )?,
                "review" => writeln!(
                    out,
                    "#{} {} [review] {}: {} {}; renew or revoke it (`tessera notice renew|revoke {}`)",
                    a.seq,
                    when,
                    a.reference,
                    if m.action == "review-overdue" {
                        "review date passed on"
                    } else {
                        "review due on"
                    },
                    m.decision_date,
                    a.reference
                )?,
                "watch_update" => writeln!(
                    out,
                    "#{} {} [watch update] watch {} ({}): {}/{} at {} {}",
                    a.seq,
                    when,
                    a.watch_id,
                    a.reference,
                    m.origin,
                    m.serial,
                    m.peer,
                    match a.update.as_str() {
                        "ended" => "is no longer in force or no longer shared (revoked, expired or withdrawn)"
                            .to_owned(),
                        "reinstated" => format!(
                            "is back in force or shared again; now: {}",
                            describe_match(&m)
                        ),
                        _ => format!("was amended or renewed; now: {}", describe_match(&m)),
                    }
                )?,
                "deconfliction" if a.watch_id == 0 => writeln!(
                    out,
                    "#{} {} [deconfliction] {} investigates the same party as our {}/{}; their contact: {}",
                    a.seq, when, m.peer, m.origin, m.serial, m.contact
                )?,
                _ => writeln!(
                    out,
                    "#{} {} [{}] watch {} ({}): {}",
                    a.seq,
                    when,
                    a.kind,
                    a.watch_id,
                    a.reference,
                    describe_match(&m)
                )?,
            }
        }
    }
    if r.alerts.is_empty() && !as_json {
        writeln!(out, "no alerts")?;
    }
    Ok(r.alerts)
}

/// `overlap --peer B`.
pub async fn overlap(
    cfg: &CliConfig,
    peer: &str,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let r = cfg
        .operator()?
        .overlap(OverlapRequest {
            peer: peer.to_owned(),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    if as_json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"peer": peer, "count": r.count, "keys": r.keys})
        )?;
    } else {
        writeln!(
            out,
            "{} of our {} match keys are in {peer}'s list (a count only: neither side learns which)",
            r.count, r.keys
        )?;
    }
    Ok(())
}

/// `harmonise --group G [--svg FILE]`.
pub async fn harmonise(
    cfg: &CliConfig,
    group: &str,
    svg: Option<&Path>,
    as_json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let r = cfg
        .operator()?
        .harmonise(HarmoniseRequest {
            group: group.to_owned(),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    if as_json {
        let cells: Vec<_> = r
            .cells
            .iter()
            .map(
                |c| serde_json::json!({"a": c.a, "b": c.b, "count": c.count, "problem": c.problem}),
            )
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({"group": group, "members": r.members, "cells": cells})
        )?;
    } else {
        writeln!(
            out,
            "overlap counts among {group} (shared match keys between members' lists):"
        )?;
        for c in &r.cells {
            if c.problem.is_empty() {
                writeln!(out, "  {} ~ {}: {}", c.a, c.b, c.count)?;
            } else {
                writeln!(out, "  {} ~ {}: no figure ({})", c.a, c.b, c.problem)?;
            }
        }
    }
    if let Some(path) = svg {
        crate::heatmap::write_svg(path, group, &r)?;
        if !as_json {
            writeln!(out, "heat map written to {}", path.display())?;
        }
    }
    let failed = r.cells.iter().filter(|c| !c.problem.is_empty()).count();
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} pair(s) have no figure; the matrix is incomplete",
            r.cells.len()
        );
    }
    Ok(())
}

/// `index rotate --peer B`.
pub async fn rotate(cfg: &CliConfig, peer: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let r = cfg
        .operator()?
        .rotate_key(RotateKeyRequest {
            peer: peer.to_owned(),
        })
        .await
        .map_err(|s| explain_call(cfg, &s))?
        .into_inner();
    writeln!(
        out,
        "new OPRF key for {peer}: epoch {}; its index was rebuilt and will replicate",
        r.epoch
    )?;
    Ok(())
}

/// The members and matrix of a harmonisation response, for drawing.
pub fn matrix(r: &HarmoniseResponse) -> Vec<Vec<Option<u64>>> {
    let n = r.members.len();
    let mut m = vec![vec![None; n]; n];
    for c in &r.cells {
        let (Some(i), Some(j)) = (
            r.members.iter().position(|x| *x == c.a),
            r.members.iter().position(|x| *x == c.b),
        ) else {
            continue;
        };
        if c.problem.is_empty() {
            m[i][j] = Some(c.count);
            m[j][i] = Some(c.count);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_proto::v1::PartyResult;

    fn hit(serial: &str, strength: &str, score: f64, kinds: &[&str]) -> Match {
        Match {
            peer: "FR-SBDU".into(),
            origin: "FR-SBDU".into(),
            serial: serial.into(),
            strength: strength.into(),
            score,
            key_kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
            disclosure: "pointer".into(),
            ..Match::default()
        }
    }

    #[test]
    fn matches_print_strongest_first_in_plain_words() {
        let r = ScreenResponse {
            results: vec![PartyResult {
                index: 0,
                keys: 4,
                matches: vec![
                    hit("WEAK-1", "weak", 0.9, &["sound"]),
                    hit("STRONG-1", "strong", 1.0, &["id"]),
                    hit("MEDIUM-1", "medium", 0.8, &["name_country"]),
                ],
                ..PartyResult::default()
            }],
            screened_peers: vec!["FR-SBDU".into()],
            ..ScreenResponse::default()
        };
        let party = Party {
            name: "Acme".into(),
            ..Party::default()
        };
        let mut out = Vec::new();
        print_screened(&[party], &r, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} in {text}"));
        assert!(
            at("STRONG-1") < at("MEDIUM-1") && at("MEDIUM-1") < at("WEAK-1"),
            "{text}"
        );
        assert!(text.contains("strong match on same identifier"), "{text}");
        assert!(
            text.contains("medium match on exact name + country"),
            "{text}"
        );
        assert!(text.contains("weak match on same name by sound"), "{text}");
        assert!(!text.contains("name_country"), "{text}");
    }
}
