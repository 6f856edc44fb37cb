//! Small string helpers the list readers share.

/// Trims `s`; an empty string or OFAC's `-0-` placeholder is `None`.
/// Control characters become spaces, runs of white space one space, and the
/// C1 characters that come from Windows-1252 text read as Latin-1 (U+0091 to
/// U+0097: curly quotes and dashes, seen in the CSL) their intended character.
pub fn clean(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty() || t == "-0-" {
        return None;
    }
    if !t.chars().any(char::is_control) {
        return Some(t.to_string());
    }
    let repaired: String = t
        .chars()
        .map(|c| match c {
            '\u{91}' => '\u{2018}',
            '\u{92}' => '\u{2019}',
            '\u{93}' => '\u{201c}',
            '\u{94}' => '\u{201d}',
            '\u{96}' => '\u{2013}',
            '\u{97}' => '\u{2014}',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let squashed = squash_spaces(&repaired);
    (!squashed.is_empty()).then_some(squashed)
}

/// Splits a multi-valued field (`a; b; c`), trimming and dropping empties.
pub fn split_multi<'a>(s: &'a str, sep: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    s.split(sep)
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "-0-")
}

/// Appends `value` unless it is empty or already present (case-sensitive).
pub fn push_unique(list: &mut Vec<String>, value: &str) {
    let value = value.trim();
    if !value.is_empty() && !list.iter().any(|v| v == value) {
        list.push(value.to_string());
    }
}

/// Joins the non-empty parts with `, `.
pub fn join_parts<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "-0-")
        .collect::<Vec<_>>()
        .join(", ")
}

/// Collapses runs of whitespace (including newlines) into one space.
pub fn squash_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Streams the lines of a JSON Lines file at `path` to `each`, each read
/// into a record by `record`, with their 1-based numbers. Blank lines are
/// skipped; a line that is not UTF-8 is an error; a byte-order mark at the
/// start and DOS end-of-file bytes (0x1A) at the end are dropped. A line
/// longer than [`MAX_ROW`](super::MAX_ROW) is refused and ends the read. A
/// first line that is not a JSON object means the file is not `format`.
pub fn stream_json_lines(
    path: &std::path::Path,
    format: super::Format,
    record: fn(u64, &str) -> Result<super::ListRecord, super::RowError>,
    mut each: impl FnMut(Result<super::ListRecord, super::RowError>),
) -> Result<(), super::ListError> {
    use std::io::{BufRead, Read};
    let io = |error| super::ListError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut reader = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut buf = Vec::new();
    let mut first = true;
    for line in 1u64.. {
        buf.clear();
        let n = reader
            .by_ref()
            .take(super::MAX_ROW as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            return Ok(());
        }
        if buf.len() > super::MAX_ROW {
            each(Err(super::RowError::new(
                line,
                format!(
                    "the line is longer than {} KiB; the rest of the file is not read",
                    super::MAX_ROW >> 10
                ),
            )));
            return Ok(());
        }
        let mut raw = buf.as_slice();
        if line == 1 {
            raw = raw.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(raw);
        }
        raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        while let Some(rest) = raw.strip_suffix(&[0x1A]) {
            raw = rest;
        }
        if raw.trim_ascii().is_empty() {
            continue;
        }
        let text = std::str::from_utf8(raw)
            .map(str::trim)
            .map_err(|_| super::RowError::new(line, "the line is not valid UTF-8"));
        if std::mem::take(&mut first)
            && let Ok(t) = &text
            && !t.starts_with('{')
        {
            return Err(super::wrong_format(
                path,
                format,
                "the first line is not a JSON object",
            ));
        }
        each(text.and_then(|t| record(line, t)));
    }
    Ok(())
}

/// A serde_json error as a message with no input value in it: syntax errors
/// give their column; data errors keep serde's text only when it names a field
/// (`missing field`, `unknown field`), never when it quotes a value.
pub fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof => format!("not valid JSON (column {})", e.column()),
        Category::Io => "the line could not be read".to_string(),
        Category::Data => {
            let text = e.to_string();
            let keep = text.starts_with("missing field") || text.starts_with("unknown field");
            match text
                .split_once(", expected")
                .map_or(text.as_str(), |(head, _)| head)
            {
                head if keep => head.split(" at line ").next().unwrap_or(head).to_string(),
                _ => "a field has a value of the wrong type or an unknown value".to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_repairs_control_characters() {
        assert_eq!(
            clean("O\u{92}Brien\nLtd").as_deref(),
            Some("O\u{2019}Brien Ltd")
        );
        assert_eq!(clean("\u{1}\u{2}"), None);
    }

    #[test]
    fn clean_drops_ofac_placeholder() {
        assert_eq!(clean("-0- "), None);
        assert_eq!(clean("  "), None);
        assert_eq!(clean(" CUBA "), Some("CUBA".into()));
    }

    #[test]
    fn multi_values_split_and_dedupe() {
        let parts: Vec<_> = split_multi("IQ; ; SY", "; ").collect();
        assert_eq!(parts, ["IQ", "SY"]);
        let mut v = vec!["IQ".to_string()];
        push_unique(&mut v, "IQ");
        push_unique(&mut v, " SY ");
        assert_eq!(v, ["IQ", "SY"]);
        assert_eq!(join_parts(["a", "", "-0-", "b"]), "a, b");
        assert_eq!(
            squash_spaces("National Identification\n   Number"),
            "National Identification Number"
        );
    }

    fn stream(bytes: &[u8]) -> Result<Vec<(u64, bool)>, super::super::ListError> {
        let path = super::super::test_support::temp_file("rows.jsonl", bytes);
        let mut seen = Vec::new();
        let record = |line, _: &str| {
            Ok(super::super::ListRecord {
                line,
                ..Default::default()
            })
        };
        stream_json_lines(&path, super::super::Format::Jsonl, record, |row| {
            seen.push(match row {
                Ok(r) => (r.line, true),
                Err(e) => (e.line, false),
            });
        })?;
        Ok(seen)
    }

    #[test]
    fn json_lines_stream_with_their_numbers() {
        let rows = stream(b"\xEF\xBB\xBF{}\r\n\n  \n\xff\n{\"a\":1}\x1A").unwrap();
        assert_eq!(rows, [(1, true), (4, false), (5, true)]);
        assert!(matches!(
            stream(b"not json\n{}"),
            Err(super::super::ListError::WrongFormat { .. })
        ));
    }

    #[test]
    fn a_line_over_the_cap_ends_the_read() {
        let mut bytes = b"{}\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'{', super::super::MAX_ROW + 10));
        bytes.extend_from_slice(b"\n{}\n");
        assert_eq!(stream(&bytes).unwrap(), [(1, true), (2, false)]);
    }
}
