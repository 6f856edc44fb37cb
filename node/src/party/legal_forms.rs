//! The multilingual legal-form table (`legal_forms.txt`, data compiled in) and its removal
//! from organisation, vessel and aircraft names (spec step N8). Extend the table by adding a
//! line to the text file; every change of the table is a change of the key version.

use std::sync::OnceLock;

use super::wordlist::ByScript;

/// The table as shipped: one legal form per line, any script.
pub const LEGAL_FORMS_TXT: &str = include_str!("legal_forms.txt");

fn tables() -> &'static ByScript {
    static TABLES: OnceLock<ByScript> = OnceLock::new();
    TABLES.get_or_init(|| ByScript::parse(LEGAL_FORMS_TXT))
}

/// The whole table (tests).
#[cfg(test)]
pub fn table() -> &'static super::wordlist::SeqTable {
    tables().for_name(false)
}

/// Removes legal forms, also misspelt by one letter in a word of 7 letters or more
/// (`LIMITED LIABILTY COMPANY`); `None` when there was none. `script`: the name was written
/// in a script without vowels, and only the table's entries so written are removed.
pub fn strip(tokens: &[String], script: bool) -> Option<Vec<String>> {
    tables().for_name(script).strip_misspelt(tokens)
}
