//! The text pipeline that turns a name as written into normalised tokens (spec steps N1-N10).
//!
//! Owns NFKC, control and format-character removal, the person "SURNAME, Given" rotation,
//! transliteration (via [`crate::party::translit`]), case folding to ASCII upper case,
//! punctuation and quote handling, acronym joining, Arabic article and `Abd` compound
//! rules, honorific and legal-form removal. Pure functions of their input: no tables are
//! read from outside the binary and nothing is ever logged.

use unicode_normalization::UnicodeNormalization;

use super::translit::{self, Backend};
use super::{PartyKind, abbreviations, honorifics, legal_forms};

/// Steps N1-N6: NFKC, controls, transliteration, case folding, punctuation, acronyms.
/// The tables (legal forms, honorifics, countries) are normalised with this alone.
pub fn basic_tokens(s: &str, backend: Backend) -> Vec<String> {
    let cleaned = clean(s);
    tokens_of_ascii(&translit::to_ascii(&cleaned, backend))
}

/// The full pipeline, N1-N10, for a name of a party of `kind`, in written order.
pub fn name_tokens(name: &str, kind: PartyKind) -> Vec<String> {
    name_tokens_with(name, kind, Backend::AnyAscii)
}

/// [`name_tokens`] with a chosen transliteration backend (evaluation only).
pub fn name_tokens_with(name: &str, kind: PartyKind, backend: Backend) -> Vec<String> {
    let mut cleaned = clean(name);
    if kind == PartyKind::Person {
        cleaned = rotate_surname_first(&cleaned);
    }
    let script = super::fuzzy::unvocalised_script(&cleaned);
    let mut tokens = tokens_of_ascii(&translit::to_ascii(&cleaned, backend));
    // N7-N9 until nothing changes (each pass only removes or joins tokens, so this ends),
    // never letting a pass empty the name.
    loop {
        let next = reduce(&tokens, kind, script);
        if next == tokens || next.is_empty() {
            break;
        }
        tokens = next;
    }
    // N10: abbreviated business words in full, in names other than persons'.
    if kind == PartyKind::Person {
        tokens
    } else {
        abbreviations::in_full(tokens)
    }
}

/// One pass of N7-N9: Arabic rules, `THE`/`AND`, honorifics (persons) or legal forms
/// (others), then one-letter tokens joined again. `script`: the name was written in a
/// script without vowels (only the tables' entries so written are removed).
fn reduce(tokens: &[String], kind: PartyKind, script: bool) -> Vec<String> {
    let mut t = arabic_rules(tokens);
    t.retain(|x| x != "THE" && x != "AND");
    let stripped = if kind == PartyKind::Person {
        honorifics::strip(&t, script)
    } else {
        legal_forms::strip(&t, script)
    };
    join_single_letters(stripped.unwrap_or(t))
}

/// N1-N2: NFKC; white space and other control characters become a space; format
/// characters (bidi marks, zero-width joiners, soft hyphen, BOM) are removed.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfkc() {
        if c.is_whitespace() || c.is_control() {
            out.push(' ');
        } else if !is_format(c) {
            out.push(c);
        }
    }
    out
}

/// Unicode general category Cf, the subset that occurs in text: enough for the spec,
/// which lists these ranges explicitly.
fn is_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0xE0001 | 0xE0020..=0xE007F)
}

/// N3 (persons only): a name with exactly one comma (`,` or Arabic `،`) is written
/// "SURNAME, Given names": it becomes "Given names SURNAME".
fn rotate_surname_first(s: &str) -> String {
    let is_comma = |c: char| c == ',' || c == '\u{060C}';
    if s.chars().filter(|c| is_comma(*c)).count() != 1 {
        return s.to_owned();
    }
    match s.split_once(is_comma) {
        Some((surname, given)) if !surname.trim().is_empty() && !given.trim().is_empty() => {
            format!("{} {}", given.trim(), surname.trim())
        }
        _ => s.to_owned(),
    }
}

/// N5-N6 on transliterated text: `'` and `` ` `` are deleted, other non-alphanumeric
/// ASCII separates tokens, letters are upper-cased; then runs of two or more one-letter
/// tokens are joined ("S.p.A." -> "SPA", "U S A" -> "USA").
fn tokens_of_ascii(s: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    let mut cur = String::new();
    for b in s.bytes() {
        match b {
            b'\'' | b'`' => {}
            b'a'..=b'z' => cur.push(b.to_ascii_uppercase() as char),
            b'A'..=b'Z' | b'0'..=b'9' => cur.push(b as char),
            _ => {
                if !cur.is_empty() {
                    raw.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        raw.push(cur);
    }
    join_single_letters(raw.into_iter().map(ordinal_digits).collect())
}

/// An ordinal written with digits (`77TH`, `1ST`, `2ND`, `3RD`) is its number, so that it
/// is compared as one (`77TH` and `99TH` light infantry divisions are two).
fn ordinal_digits(token: String) -> String {
    for suffix in ["ST", "ND", "RD", "TH"] {
        if let Some(digits) = token.strip_suffix(suffix)
            && super::fuzzy::is_number(digits)
        {
            return digits.to_owned();
        }
    }
    token
}

/// Runs of two or more one-letter tokens become one token.
fn join_single_letters(mut raw: Vec<String>) -> Vec<String> {
    let single = |t: &str| t.len() == 1 && t.as_bytes()[0].is_ascii_alphabetic();
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if single(&raw[i]) && i + 1 < raw.len() && single(&raw[i + 1]) {
            let mut joined = String::new();
            while i < raw.len() && single(&raw[i]) {
                joined.push_str(&raw[i]);
                i += 1;
            }
            out.push(joined);
        } else {
            out.push(std::mem::take(&mut raw[i]));
            i += 1;
        }
    }
    out
}

/// Sun-letter forms of the Arabic article, written before a word starting with the same
/// consonant ("AS SAYED", "AR RAHMAN", "ASH SHAMI").
const SUN_ARTICLES: [&str; 9] = ["AD", "ADH", "AN", "AR", "AS", "ASH", "AT", "ATH", "AZ"];

/// Forms of "Abd" (+ article) that start a theophoric compound ("Abd al-Rahman").
const ABD_PREFIXES: [&str; 9] = [
    "ABDOUL", "ABDUL", "ABDEL", "ABDAL", "ABDOL", "ABDIL", "ABDU", "ABD", "BD",
];

/// Glued forms of "Abd al-" at the start of a token.
const GLUED_ABD: [&str; 7] = ["ABDOUL", "ABDUL", "ABDEL", "ABDAL", "ABDOL", "ABDIL", "BDL"];

/// N7: Arabic-name rules, applied to every kind of party.
/// (a) the article tokens `AL`, `EL`, and a sun-letter article followed by a token that
/// starts with its consonant, are dropped; (b) an `Abd` compound becomes one token `ABD` +
/// name: a token in [`ABD_PREFIXES`] followed by another token is joined with it, and a
/// token starting with `ABDUL`, `ABDEL`, `ABDAL`, `ABDOUL`, `ABDOL`, `ABDIL` or `BDL` followed by at
/// least two letters has that prefix replaced by `ABD`; a remainder `ALLAH` or `LLAH`
/// becomes `LAH`. Rule (a) and (b) never remove the last token.
fn arabic_rules(tokens: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        let next = tokens.get(i + 1).map(String::as_str);
        let is_article = match next {
            Some(n) => {
                t == "AL" || t == "EL" || (SUN_ARTICLES.contains(&t) && n.starts_with(&t[1..]))
            }
            None => false,
        };
        if is_article {
            i += 1;
            continue;
        }
        if ABD_PREFIXES.contains(&t) {
            // Join with the next token, skipping an article in between.
            let mut j = i + 1;
            if j + 1 < tokens.len() && matches!(tokens[j].as_str(), "AL" | "EL" | "UL") {
                j += 1;
            }
            if let Some(n) = tokens.get(j) {
                out.push(abd_compound(n));
                i = j + 1;
                continue;
            }
        }
        if let Some(rest) = GLUED_ABD.iter().find_map(|p| t.strip_prefix(p))
            && rest.len() >= 2
            && rest.bytes().all(|b| b.is_ascii_alphabetic())
        {
            out.push(abd_compound(rest));
            i += 1;
            continue;
        }
        out.push(t.to_owned());
        i += 1;
    }
    out
}

/// `ABD` + `name`, with `ALLAH`/`LLAH` written `LAH`, and any glued prefix that the
/// joining created (`ABD` + `ULLAH` = `ABDULLAH`) reduced again, so the result is stable.
fn abd_compound(name: &str) -> String {
    let mut rest = name.to_owned();
    loop {
        if rest == "ALLAH" || rest == "LLAH" {
            "LAH".clone_into(&mut rest);
        }
        let joined = format!("ABD{rest}");
        match GLUED_ABD.iter().find_map(|p| joined.strip_prefix(p)) {
            Some(r) if r.len() >= 2 && r.bytes().all(|b| b.is_ascii_alphabetic()) => {
                r.clone_into(&mut rest);
            }
            _ => return joined,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str, k: PartyKind) -> String {
        name_tokens(s, k).join(" ")
    }

    #[test]
    fn a_name_written_without_vowels_loses_only_titles_written_so() {
        use PartyKind::*;
        // `عمر` (Omar) is `MR` and `جان` (Jan) `GN` once transliterated: no `Mr`, no `Г-н`.
        assert_eq!(n("محمد عمر غلام نبی", Person), "MAHMD MR GHLM NBY");
        assert_eq!(n("احمد جان", Person), "AHMD GN");
        assert_eq!(n("Mr Omar KHAN", Person), "OMAR KHAN");
        // Titles written in the name's own script still go.
        assert_eq!(n("الشيخ محمد عمر", Person), "MAHMD MR");
        assert_eq!(n("شركة النور", Organisation), "NWR");
    }

    #[test]
    fn examples() {
        use PartyKind::*;
        assert_eq!(n("QADHAFI, Muammar", Person), "MUAMMAR QADHAFI");
        assert_eq!(n("ГАДДАФИ", Person), "GADDAFI");
        assert_eq!(
            n("OOO \"Polotsk-Steklovolokno\"", Organisation),
            "POLOTSK STEKLOVOLOKNO"
        );
        assert_eq!(
            n("POLOTSK STEKLOVOLOKNO OAO", Organisation),
            "POLOTSK STEKLOVOLOKNO"
        );
        assert_eq!(
            n("ANGLO-CARIBBEAN CO., LTD.", Organisation),
            "ANGLO CARIBBEAN"
        );
        assert_eq!(n("Abd al-Rahman", Person), "ABDRAHMAN");
        assert_eq!(n("ABDULRAHMAN", Person), "ABDRAHMAN");
        assert_eq!(n("Abdullah", Person), "ABDLAH");
        assert_eq!(n("Abd Allah", Person), "ABDLAH");
        assert_eq!(n("AL-'ULABI, 'Adel", Person), "ADEL ULABI");
        assert_eq!(n("Dr. Ali AS-SAYED", Person), "ALI SAYED");
        assert_eq!(n("CECOEX, S.A.", Organisation), "CECOEX");
        assert_eq!(n("LTD", Organisation), "LTD");
        assert_eq!(
            n("PUTIN, Vladimir Vladimirovich", Person),
            "VLADIMIR VLADIMIROVICH PUTIN"
        );
        assert_eq!(n("", Person), "");
        assert_eq!(
            n("77th Light Infantry Division", Organisation),
            "77 LIGHT INFANTRY DIVISION"
        );
        assert_eq!(n("1ST 2ND 3RD 4TH", Organisation), "1 2 3 4");
        assert_eq!(n("TH ST NORTH 5THX", Organisation), "TH ST NORTH 5THX");
    }
}
