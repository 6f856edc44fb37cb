//! Canonical JSON for audit details: RFC 8785 (JCS) restricted to values whose
//! canonical form every implementation agrees on — no fractional or huge
//! numbers — so an oversight body can recompute `details_hash` with any JCS
//! library.
//!
//! JCS in short: no whitespace; object members sorted by their names compared
//! as UTF-16 code units; strings with only `"`, `\` and control characters
//! escaped (`\b \t \n \f \r` short, others `\u00xx` in lowercase hex);
//! integers in plain decimal.

use serde_json::Value;

/// The largest integer magnitude allowed in details (2^53 - 1), the range in
/// which JCS prints an integer as plain decimal.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The canonical form of `details`, or what makes it non-canonicalisable.
pub fn canonical_json(details: &Value) -> Result<String, &'static str> {
    let mut out = String::new();
    write(details, &mut out)?;
    Ok(out)
}

fn write(v: &Value, out: &mut String) -> Result<(), &'static str> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let safe = if let Some(u) = n.as_u64() {
                u <= MAX_SAFE_INTEGER
            } else if let Some(i) = n.as_i64() {
                i.unsigned_abs() <= MAX_SAFE_INTEGER
            } else {
                return Err("holds a fractional number (only integers are allowed)");
            };
            if !safe {
                return Err("holds an integer beyond 2^53 - 1");
            }
            out.push_str(&n.to_string());
        }
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (k, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write(item, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_str(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{0c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let b = c as u32 as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_members_and_drops_whitespace() {
        let v = json!({"b": [1, -2, {"z": null, "a": true}], "a": "x"});
        assert_eq!(
            canonical_json(&v).unwrap(),
            r#"{"a":"x","b":[1,-2,{"a":true,"z":null}]}"#
        );
    }

    #[test]
    fn member_order_is_utf16_not_utf8() {
        // U+1F600 is 0xD83D.. in UTF-16, below U+FF61; in UTF-8 it sorts after.
        let v = json!({"\u{ff61}": 1, "\u{1f600}": 2});
        assert_eq!(
            canonical_json(&v).unwrap(),
            "{\"\u{1f600}\":2,\"\u{ff61}\":1}"
        );
    }

    #[test]
    fn escapes_like_jcs() {
        let v = json!("q\"b\\s/\u{1}\u{1f}\n\u{7f}é");
        assert_eq!(
            canonical_json(&v).unwrap(),
            "\"q\\\"b\\\\s/\\u0001\\u001f\\n\u{7f}é\""
        );
    }

    #[test]
    fn refuses_fractions_and_huge_integers() {
        assert!(canonical_json(&json!({"x": 1.5})).is_err());
        assert!(canonical_json(&json!(MAX_SAFE_INTEGER + 1)).is_err());
        assert!(canonical_json(&json!(-(MAX_SAFE_INTEGER as i64) - 1)).is_err());
        assert_eq!(
            canonical_json(&json!(MAX_SAFE_INTEGER)).unwrap(),
            "9007199254740991"
        );
        assert_eq!(
            canonical_json(&json!(-(MAX_SAFE_INTEGER as i64))).unwrap(),
            "-9007199254740991"
        );
    }
}
