//! The `tessera keys` line contract (docs/architecture.md): one JSON Lines party in, one JSON line
//! out, `{"keys":[...]}` or `{"error":"..."}`. Error messages name the problem and where it
//! is (column, position, a known field name), never a value or an unknown key from the
//! line, so no party name is echoed.

use serde::Serialize;
use serde_json::Value;

use super::{FuzzyName, MatchKey, Party, Side, match_keys, party_keys};

#[derive(Serialize)]
struct Keys<'a> {
    keys: &'a [MatchKey],
    /// The fuzzy form of each name, as a querier derives it.
    names: &'a [FuzzyName],
}

#[derive(Serialize)]
struct Error<'a> {
    error: &'a str,
}

/// Fields a party line may carry (from [`Party`]).
const FIELDS: [&str; 8] = [
    "kind",
    "name",
    "aliases",
    "original_script_names",
    "ids",
    "countries",
    "addresses",
    "birth_date",
];

/// Answers one input line with one output line (without the trailing newline).
pub fn keys_json_line(line: &str) -> String {
    let out = match parse(line) {
        Ok(party) => {
            let keys = party_keys(&party, Side::Query);
            serde_json::to_string(&Keys {
                keys: &match_keys(&party),
                names: &keys.names,
            })
        }
        Err(e) => serde_json::to_string(&Error { error: &e.0 }),
    };
    // Serialising plain strings and enums cannot fail.
    out.unwrap_or_else(|_| r#"{"error":"internal: cannot serialise"}"#.to_owned())
}

/// Why a party line was refused: a message that never quotes the line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct LineError(String);

impl From<String> for LineError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for LineError {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

fn parse(line: &str) -> Result<Party, LineError> {
    let line = line.trim_start_matches('\u{feff}').trim();
    if line.is_empty() {
        return Err("empty line: expected a JSON object with at least \"name\"".into());
    }
    let value: Value = serde_json::from_str(line).map_err(|e| {
        format!(
            "not valid JSON ({:?} error at column {})",
            e.classify(),
            e.column()
        )
    })?;
    let Some(obj) = value.as_object() else {
        return Err("expected a JSON object with at least \"name\"".into());
    };
    // Field names are not echoed either: a malformed line may carry a name as a key.
    if let Some(i) = obj.keys().position(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field (field {} of the object, name not shown); expected only {}",
            i + 1,
            FIELDS.join(", ")
        )
        .into());
    }
    if !obj.get("name").is_some_and(Value::is_string) {
        return Err("missing or non-string field \"name\"".into());
    }
    serde_json::from_value::<Party>(value).map_err(|e| -> LineError {
        // serde messages can quote values ("invalid value: string ..."), so only the
        // category is reported, with the field it most likely concerns.
        let msg = e.to_string();
        let field = FIELDS
            .iter()
            .find(|f| msg.contains(&format!("`{f}`")))
            .copied();
        match field {
            Some(f) => format!("field \"{f}\" has the wrong type or value").into(),
            None => "a field has the wrong type or value (kind must be person, organisation, \
                     vessel or aircraft; aliases, countries, addresses and \
                     original_script_names lists of strings; ids a list of {\"type\",\"value\"})"
                .into(),
        }
    })
}
