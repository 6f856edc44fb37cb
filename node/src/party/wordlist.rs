//! A table of token sequences (legal forms, honorifics) read from a text file compiled into
//! the binary, and its removal from a token list. Each line of the file is normalised with
//! [`basic_tokens`] so the data can be written in any script and with any punctuation.

use std::collections::HashMap;

use super::normalise::basic_tokens;
use super::translit::Backend;

/// The entries of a table compiled into the binary: each line that is not blank and does not
/// start with `#`, normalised with [`basic_tokens`].
pub fn entries(text: &str) -> impl Iterator<Item = Vec<String>> + '_ {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| basic_tokens(l, Backend::AnyAscii))
}

/// A table of words to remove from names, and the part of it a name written in a script
/// without vowels (Arabic, Hebrew, ...) uses: the lines written in such a script.
/// Transliterated without its vowels, `عمر` (Omar) is `MR` and `اب` is `AB`: they are no
/// `Mr` and no Swedish `AB`.
pub struct ByScript {
    all: SeqTable,
    unvocalised: SeqTable,
}

impl ByScript {
    pub fn parse(text: &str) -> Self {
        let unvocalised: String = text
            .lines()
            .filter(|l| super::fuzzy::unvocalised_script(l))
            .flat_map(|l| [l, "\n"])
            .collect();
        Self {
            all: SeqTable::parse(text),
            unvocalised: SeqTable::parse(&unvocalised),
        }
    }

    /// The table for a name; `script`: the name was written in a script without vowels.
    pub fn for_name(&self, script: bool) -> &SeqTable {
        if script { &self.unvocalised } else { &self.all }
    }
}

/// Token sequences keyed by their first token, longest first.
pub struct SeqTable {
    by_first: HashMap<String, Vec<Vec<String>>>,
    /// The first tokens long enough to be matched misspelt ([`MISSPELT_MIN_LEN`]).
    long_firsts: Vec<String>,
}

/// Tokens of at least this many characters also match a table token one edit away in
/// [`SeqTable::strip_misspelt`].
pub const MISSPELT_MIN_LEN: usize = 7;

/// Whether `a` and `b` are one edit apart or equal: one letter inserted, deleted or
/// replaced, or two neighbouring letters swapped.
pub fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let k = short.iter().zip(long).take_while(|(x, y)| x == y).count();
    match long.len() - short.len() {
        0 if k == short.len() => true,
        0 => {
            short[k + 1..] == long[k + 1..]
                || (k + 1 < short.len()
                    && short[k] == long[k + 1]
                    && short[k + 1] == long[k]
                    && short[k + 2..] == long[k + 2..])
        }
        1 => short[k..] == long[k + 1..],
        _ => false,
    }
}

/// Whether a name token matches a table token: equal, or both long and one edit apart.
fn token_matches(token: &str, entry: &str, misspelt: bool) -> bool {
    token == entry
        || (misspelt
            && token.len() >= MISSPELT_MIN_LEN
            && entry.len() >= MISSPELT_MIN_LEN
            && within_one_edit(token, entry))
}

impl SeqTable {
    /// Parses `text`: one entry a line; blank lines and lines starting with `#` are skipped.
    pub fn parse(text: &str) -> Self {
        let mut by_first: HashMap<String, Vec<Vec<String>>> = HashMap::new();
        for seq in entries(text) {
            if let Some(first) = seq.first() {
                let entry = by_first.entry(first.clone()).or_default();
                if !entry.contains(&seq) {
                    entry.push(seq);
                }
            }
        }
        for seqs in by_first.values_mut() {
            seqs.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        }
        let mut long_firsts: Vec<String> = by_first
            .keys()
            .filter(|k| k.len() >= MISSPELT_MIN_LEN)
            .cloned()
            .collect();
        long_firsts.sort();
        Self {
            by_first,
            long_firsts,
        }
    }

    /// Removes every occurrence of an entry, scanning left to right and taking the longest
    /// entry at each position. `None` when nothing was removed.
    pub fn strip(&self, tokens: &[String]) -> Option<Vec<String>> {
        self.strip_with(tokens, false)
    }

    /// [`Self::strip`], where a token of [`MISSPELT_MIN_LEN`] characters or more also
    /// matches a table token one edit away (`LIMITED LIABILTY COMPANY`).
    pub fn strip_misspelt(&self, tokens: &[String]) -> Option<Vec<String>> {
        self.strip_with(tokens, true)
    }

    /// The length of the longest entry that `tokens` start with, if any.
    fn longest_at(&self, tokens: &[String], misspelt: bool) -> Option<usize> {
        let first = tokens.first()?;
        let starts = |seq: &Vec<String>| {
            seq.len() <= tokens.len()
                && seq
                    .iter()
                    .zip(tokens)
                    .all(|(e, t)| token_matches(t, e, misspelt))
        };
        let exact = self.by_first.get(first).into_iter().flatten();
        let near = self
            .long_firsts
            .iter()
            .filter(|f| misspelt && *f != first && token_matches(first, f, true))
            .filter_map(|f| self.by_first.get(f))
            .flatten();
        exact.chain(near).filter(|s| starts(s)).map(Vec::len).max()
    }

    fn strip_with(&self, tokens: &[String], misspelt: bool) -> Option<Vec<String>> {
        let mut out = Vec::with_capacity(tokens.len());
        let mut removed = false;
        let mut i = 0;
        while i < tokens.len() {
            if let Some(n) = self.longest_at(&tokens[i..], misspelt) {
                removed = true;
                i += n;
            } else {
                out.push(tokens[i].clone());
                i += 1;
            }
        }
        removed.then_some(out)
    }

    /// Number of entries (for tests and the spec).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn len(&self) -> usize {
        self.by_first.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_edit_is_an_insertion_deletion_replacement_or_swap() {
        for (a, b) in [
            ("LIABILITY", "LIABILITY"),
            ("LIABILITY", "LIABILTY"),
            ("LIABILITY", "LIRABILITY"),
            ("LIABILITY", "LIABILIRY"),
            ("OBSHCHESTVO", "OBSHCHESVTO"),
            ("COMPANY", "COMPANYU"),
        ] {
            assert!(within_one_edit(a, b), "{a} {b}");
            assert!(within_one_edit(b, a), "{b} {a}");
        }
        for (a, b) in [
            ("LIABILITY", "LIABLTY"),
            ("COMPANY", "CMOPANI"),
            ("LIMITED", "LIMTIEDX"),
            ("ABCDEF", "ABDCFE"),
        ] {
            assert!(!within_one_edit(a, b), "{a} {b}");
        }
    }

    #[test]
    fn a_misspelt_entry_is_removed_only_when_asked_and_only_in_long_words() {
        let table = SeqTable::parse("Limited Liability Company\nLtd\n");
        let tokens = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            table.strip_misspelt(&tokens("ACME LIMITED LIABILTY COMPANY")),
            Some(tokens("ACME"))
        );
        assert_eq!(table.strip(&tokens("ACME LIMITED LIABILTY COMPANY")), None);
        // Short words only as written.
        assert_eq!(table.strip_misspelt(&tokens("ACME LDT")), None);
        assert_eq!(
            table.strip_misspelt(&tokens("ACME LTD")),
            Some(tokens("ACME"))
        );
    }
}
