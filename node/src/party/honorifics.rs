//! Honorifics and titles (`honorifics.txt`, data compiled in) and their removal from person
//! names (spec step N8). Extend by adding a line; a change of the table is a change of the
//! key version.

use std::sync::OnceLock;

use super::wordlist::ByScript;

/// The table as shipped: one title per line, any script.
pub const HONORIFICS_TXT: &str = include_str!("honorifics.txt");

fn tables() -> &'static ByScript {
    static TABLES: OnceLock<ByScript> = OnceLock::new();
    TABLES.get_or_init(|| ByScript::parse(HONORIFICS_TXT))
}

/// The whole table (tests).
#[cfg(test)]
pub fn table() -> &'static super::wordlist::SeqTable {
    tables().for_name(false)
}

/// Removes honorifics; `None` when there was none. `script`: the name was written in a
/// script without vowels, and only the table's entries so written are removed.
pub fn strip(tokens: &[String], script: bool) -> Option<Vec<String>> {
    tables().for_name(script).strip(tokens)
}
