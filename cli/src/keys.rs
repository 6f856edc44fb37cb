//! `tessera keys`: match keys of one party (flags) or of JSON Lines parties
//! on stdin, one JSON line out per line in, same order. Offline: no node.

use std::io::{BufRead, Write};

use tessera_node::party::{self, Party, PartyId, PartyKind};

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
    /// An identifier as TYPE:VALUE (LEI, IMO, PASSPORT, ...); repeat for more.
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
        let name = self
            .name
            .clone()
            .ok_or_else(|| anyhow::anyhow!("{missing}"))?;
        let kind = match &self.kind {
            Some(k) => k
                .parse::<PartyKind>()
                .map_err(|e| anyhow::anyhow!("--kind: {e}"))?,
            None => PartyKind::default(),
        };
        let ids = self
            .ids
            .iter()
            .map(|s| {
                let (t, v) = s
                    .split_once(':')
                    .filter(|(t, v)| !t.is_empty() && !v.is_empty())
                    .ok_or_else(|| {
                        anyhow::anyhow!("--id: use TYPE:VALUE, e.g. LEI:529900T8BM49AURSDO55")
                    })?;
                Ok(PartyId {
                    id_type: t.to_owned(),
                    value: v.to_owned(),
                    country: None,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
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
