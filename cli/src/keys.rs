//! `tessera keys`: match keys of one party (flags) or of JSON Lines parties
//! on stdin, one JSON line out per line in, same order. Offline: no node.

use std::io::{BufRead, Write};

use tessera_node::party::{self, Party, PartyId, PartyKind};

use crate::usage::usage;

/// A party given by flags (`tessera keys`, `tessera screen`).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct PartyFlags {
    /// The party's name.
    #[arg(long)]
    pub name: Option<String>,
    /// person, organisation, vessel or aircraft.
    #[arg(long)]
    pub kind: Option<String>,
    /// Another name; repeat for more.
    #[arg(long = "alias")]
    pub aliases: Vec<String>,
    /// A country code or name; repeat for more.
    #[arg(long = "country")]
    pub countries: Vec<String>,
    /// An identifier as TYPE:VALUE or TYPE:COUNTRY:VALUE (LEI, IMO, PASSPORT, REG:CN:...);
    /// repeat for more.
    #[arg(long = "id")]
    pub ids: Vec<String>,
    /// YYYY, YYYY-MM or YYYY-MM-DD.
    #[arg(long)]
    pub birth_date: Option<String>,
}

impl PartyFlags {
    /// The party record, or a plain error naming the flag. `missing` is
    /// what to say when no name was given.
    pub fn to_party(&self, missing: &str) -> anyhow::Result<Party> {
        let name = self.name.clone().ok_or_else(|| usage(missing))?;
        let kind = match &self.kind {
            Some(k) => k
                .parse::<PartyKind>()
                .map_err(|e| usage(format!("--kind: {e}")))?,
            None => PartyKind::default(),
        };
        let ids = self
            .ids
            .iter()
            .map(|s| parse_id(s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for c in &self.countries {
            if tessera_node::party::country_code(c).is_none() {
                eprintln!(
                    "tessera: warning: --country {c:?} is not a country code or name known here; it adds no country to the keys"
                );
            }
        }
        Ok(Party {
            kind,
            name,
            aliases: self.aliases.clone(),
            countries: self.countries.clone(),
            ids,
            birth_date: self.birth_date.clone(),
            ..Party::default()
        })
    }
}

/// `--id`: `TYPE:VALUE`, or `TYPE:CC:VALUE` with the issuing country (a national id, a
/// passport, a registration number are only strong keys with their country).
pub fn parse_id(s: &str) -> anyhow::Result<PartyId> {
    let bad = || {
        usage(
            "--id: use TYPE:VALUE or TYPE:COUNTRY:VALUE, e.g. LEI:529900T8BM49AURSDO55 or REG:CN:91310000EXAMPLE001",
        )
    };
    let (t, rest) = s
        .split_once(':')
        .filter(|(t, v)| !t.is_empty() && !v.is_empty())
        .ok_or_else(bad)?;
    let (country, value) = match rest.split_once(':') {
        Some((cc, v))
            if cc.len() == 2
                && cc.bytes().all(|b| b.is_ascii_alphabetic())
                && tessera_node::party::country_code(cc).is_some() =>
        {
            (Some(cc.to_ascii_uppercase()), v)
        }
        Some((cc, _)) if cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_alphabetic()) => {
            eprintln!(
                "tessera: warning: --id {t}:{cc}:…: {cc:?} is not a country code known here; read as part of the value"
            );
            (None, rest)
        }
        _ => (None, rest),
    };
    if value.is_empty() {
        return Err(bad());
    }
    Ok(PartyId {
        id_type: t.to_owned(),
        value: value.to_owned(),
        country,
    })
}

/// Keys of one party as the JSON line `tessera keys` prints.
pub fn one(flags: &PartyFlags, out: &mut impl Write) -> anyhow::Result<()> {
    let party = flags.to_party("give --name NAME")?;
    let line = serde_json::to_string(&party)?;
    writeln!(out, "{}", party::keys_json_line(&line))?;
    Ok(())
}

/// One JSON line out per line in; a bad line gets `{"error": ...}` and the rest go on.
pub fn stream(input: impl BufRead, out: &mut impl Write) -> anyhow::Result<()> {
    for line in input.split(b'\n') {
        let mut line = line?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        match String::from_utf8(line) {
            Ok(text) => writeln!(out, "{}", party::keys_json_line(&text))?,
            Err(_) => writeln!(
                out,
                "{}",
                serde_json::json!({"error": "the line is not UTF-8"})
            )?,
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_id;

    #[test]
    fn ids_take_an_optional_issuing_country() {
        let id = parse_id("REG:CN:91310000EXAMPLE001").unwrap();
        assert_eq!(
            (
                id.id_type.as_str(),
                id.country.as_deref(),
                id.value.as_str()
            ),
            ("REG", Some("CN"), "91310000EXAMPLE001")
        );
        let id = parse_id("LEI:529900T8BM49AURSDO55").unwrap();
        assert_eq!(
            (id.country, id.value.as_str()),
            (None, "529900T8BM49AURSDO55")
        );
        // Not a country: the value keeps its colon.
        let id = parse_id("TAIL:XX1:23").unwrap();
        assert_eq!((id.country, id.value.as_str()), (None, "XX1:23"));
        for bad in ["LEI", "LEI:", ":X", "REG:CN:"] {
            assert!(parse_id(bad).is_err(), "{bad}");
        }
    }
}
