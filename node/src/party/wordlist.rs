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

/// Token sequences keyed by their first token, longest first.
pub struct SeqTable {
    by_first: HashMap<String, Vec<Vec<String>>>,
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
        Self { by_first }
    }

    /// Removes every occurrence of an entry, scanning left to right and taking the longest
    /// entry at each position. `None` when nothing was removed.
    pub fn strip(&self, tokens: &[String]) -> Option<Vec<String>> {
        let mut out = Vec::with_capacity(tokens.len());
        let mut removed = false;
        let mut i = 0;
        while i < tokens.len() {
            let hit = self.by_first.get(&tokens[i]).and_then(|seqs| {
                seqs.iter()
                    .find(|s| tokens[i..].starts_with(s))
                    .map(Vec::len)
            });
            if let Some(n) = hit {
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
