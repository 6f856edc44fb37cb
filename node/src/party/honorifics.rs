//! Honorifics and titles (`honorifics.txt`, data compiled in) and their removal from person
//! names (spec step N8). Extend by adding a line; a change of the table is a change of the
//! key version.

use std::sync::OnceLock;

use super::wordlist::{self, SeqTable};

/// The table as shipped: one title per line, any script.
pub const HONORIFICS_TXT: &str = include_str!("honorifics.txt");

pub fn table() -> &'static SeqTable {
    static TABLE: OnceLock<SeqTable> = OnceLock::new();
    TABLE.get_or_init(|| SeqTable::parse(HONORIFICS_TXT))
}

/// The entries written in a script without vowels ([`wordlist::script_lines`]).
pub fn script_table() -> &'static SeqTable {
    static TABLE: OnceLock<SeqTable> = OnceLock::new();
    TABLE.get_or_init(|| SeqTable::parse(&wordlist::script_lines(HONORIFICS_TXT)))
}

/// Removes honorifics; `None` when there was none. `script`: the name was written in a
/// script without vowels, and only the table's entries so written are removed.
pub fn strip(tokens: &[String], script: bool) -> Option<Vec<String>> {
    if script {
        script_table().strip(tokens)
    } else {
        table().strip(tokens)
    }
}
