//! JSON Lines of Tessera parties: each line is one [`Party`] in its serde form
//! (`{"kind":"organisation","name":"...","aliases":[...],"ids":[...]}`, only
//! `name` required), as `tessera keys` and `screen --file` read them.
//!
//! Two optional extra fields are taken off before the party is read: `list`
//! (default `jsonl`) and `list_id` (string or number; default the line
//! number). Any other unknown field is an error, as the party model denies
//! unknown fields. Blank lines are skipped. Never puts a field value into an
//! error.

use crate::party::Party;

use super::{ListRecord, RowError, text};

pub(super) fn record(line: u64, raw: &str) -> Result<ListRecord, RowError> {
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| RowError::new(line, text::json_problem(&e)))?;
    let serde_json::Value::Object(mut map) = value else {
        return Err(RowError::new(line, "the line is not a JSON object"));
    };
    let list = match map.remove("list") {
        None | Some(serde_json::Value::Null) => "jsonl".to_string(),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(_) => return Err(RowError::new(line, "list is not a non-empty string")),
    };
    let list_id = match map.remove("list_id") {
        None | Some(serde_json::Value::Null) => line.to_string(),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(_) => return Err(RowError::new(line, "list_id is not a string or number")),
    };
    let party: Party = serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| RowError::new(line, text::json_problem(&e)))?;
    if party.name.trim().is_empty() {
        return Err(RowError::new(line, "name is empty"));
    }
    Ok(ListRecord {
        line,
        list,
        list_id,
        party,
        ..ListRecord::default()
    })
}

#[cfg(test)]
mod tests {
    use crate::lists::test_support::{assert_no_leak, fixture, split, temp_file};
    use crate::party::PartyKind;

    #[test]
    fn fixture_lines_read() {
        let (ok, bad) = split(
            super::super::read(super::super::Format::Jsonl, &fixture("parties.jsonl"))
                .expect("fixture readable"),
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok.len(), 5);
        assert_eq!(ok[0].list, "jsonl");
        assert_eq!(ok[0].list_id, "1");
        assert_eq!(ok[0].party.kind, PartyKind::Organisation);
        assert!(ok[0].party.ids.iter().any(|i| i.id_type == "LEI"));
        assert!(
            ok.iter()
                .any(|r| r.list != "jsonl" && r.list_id != r.line.to_string())
        );
        assert!(
            ok.iter()
                .any(|r| r.party.kind == PartyKind::Person && r.party.birth_date.is_some())
        );
        assert!(ok.iter().any(|r| r.party.kind == PartyKind::Vessel));
    }

    #[test]
    fn bad_lines_are_reported_and_reading_goes_on() {
        let data = concat!(
            "{\"name\":\"FIRST GOOD\"}\n",
            "{\"name\":\"SECRET ONE\",\"aliases\":\"SECRET ALIAS\"}\n",
            "{\"name\":\"SECRET TWO\",\"colour\":\"red\"}\n",
            "{\"name\":\"SECRET THREE\"\n",
            "\n",
            "{\"kind\":\"ship\",\"name\":\"SECRET FOUR\"}\n",
            "{\"aliases\":[\"SECRET FIVE\"]}\n",
            "[\"SECRET SIX\"]\n",
            "{\"name\":\"LAST GOOD\",\"list_id\":77}\n",
        );
        let (ok, bad) = split(
            super::super::read(
                super::super::Format::Jsonl,
                &temp_file("p.jsonl", data.as_bytes()),
            )
            .expect("readable"),
        );
        assert_eq!(ok.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 9]);
        assert_eq!(ok[1].list_id, "77");
        let found: Vec<(u64, &str)> = bad.iter().map(|e| (e.line, e.message.as_str())).collect();
        assert_eq!(found[0].0, 2);
        assert_eq!(found[1], (3, "unknown field `colour`"));
        assert_eq!(found[2].0, 4);
        assert!(found[2].1.starts_with("not valid JSON"));
        assert_eq!(found[3].0, 6);
        assert_eq!(found[4], (7, "missing field `name`"));
        assert_eq!(found[5], (8, "the line is not a JSON object"));
        assert_no_leak(&bad, &ok, &["SECRET", "ship", "red"]);
    }
}
