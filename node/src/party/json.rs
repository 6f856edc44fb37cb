//! The `tessera keys` line contract (DESIGN.md): one JSON Lines party in, one JSON line
//! out, `{"keys":[...]}` or `{"error":"..."}`. Error messages name the problem and where it
//! is (column, field name), never a value from the line, so no party name is echoed.

use serde_json::{json, Value};

use super::{match_keys, Party};

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
    match parse(line) {
        Ok(party) => json!({ "keys": match_keys(&party) }).to_string(),
        Err(e) => json!({ "error": e }).to_string(),
    }
}

fn parse(line: &str) -> Result<Party, String> {
    let line = line.trim_start_matches('\u{feff}').trim();
    if line.is_empty() {
        return Err("empty line: expected a JSON object with at least \"name\"".into());
    }
    let value: Value = serde_json::from_str(line).map_err(|e| {
        format!("not valid JSON ({:?} error at column {})", e.classify(), e.column())
    })?;
    let Some(obj) = value.as_object() else {
        return Err("expected a JSON object with at least \"name\"".into());
    };
    for k in obj.keys() {
        if !FIELDS.contains(&k.as_str()) {
            let shown = if k.len() <= 32 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                format!("\"{k}\"")
            } else {
                "(not shown)".to_owned()
            };
            return Err(format!("unknown field {shown}; expected one of {}", FIELDS.join(", ")));
        }
    }
    if !obj.get("name").is_some_and(Value::is_string) {
        return Err("missing or non-string field \"name\"".into());
    }
    serde_json::from_value::<Party>(value).map_err(|e| {
        // serde messages can quote values ("invalid value: string ..."), so only the
        // category is reported, with the field it most likely concerns.
        let msg = e.to_string();
        let field = FIELDS.iter().find(|f| msg.contains(&format!("`{f}`"))).copied();
        match field {
            Some(f) => format!("field \"{f}\" has the wrong type or value"),
            None => "a field has the wrong type or value (kind must be person, organisation, \
                     vessel or aircraft; aliases, countries, addresses and \
                     original_script_names lists of strings; ids a list of {\"type\",\"value\"})"
                .into(),
        }
    })
}
