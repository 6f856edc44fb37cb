//! Honorifics and titles (`honorifics.txt`, data compiled in) and their removal from person
//! names (spec step N8). Extend by adding a line; a change of the table is a change of the
//! key version.

use std::sync::OnceLock;

use super::wordlist::SeqTable;

/// The table as shipped: one title per line, any script.
pub const HONORIFICS_TXT: &str = include_str!("honorifics.txt");

pub fn table() -> &'static SeqTable {
    static TABLE: OnceLock<SeqTable> = OnceLock::new();
    TABLE.get_or_init(|| SeqTable::parse(HONORIFICS_TXT))
}

/// Removes honorifics; `None` when there was none.
pub fn strip(tokens: &[String]) -> Option<Vec<String>> {
    table().strip(tokens)
}
