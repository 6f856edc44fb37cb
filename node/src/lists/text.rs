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

/// The lines of a JSON Lines file with their 1-based numbers; blank lines are
/// skipped, a line that is not UTF-8 is an error.
pub fn json_lines(bytes: &[u8]) -> Vec<(u64, Result<&str, super::RowError>)> {
    let mut out = Vec::new();
    for (line, raw) in (1u64..).zip(bytes.split(|b| *b == b'\n')) {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.trim_ascii().is_empty() {
            continue;
        }
        let text = std::str::from_utf8(raw)
            .map_err(|_| super::RowError::new(line, "the line is not valid UTF-8"));
        out.push((line, text.map(str::trim)));
    }
    out
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
        let lines = json_lines(b"{}\r\n\n  \n\xff\n{\"a\":1}");
        assert_eq!(lines.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [1, 4, 5]);
        assert!(lines[1].1.is_err());
        assert_eq!(
            squash_spaces("National Identification\n   Number"),
            "National Identification Number"
        );
    }
}
