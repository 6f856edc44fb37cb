//! The multilingual legal-form table (`legal_forms.txt`, data compiled in) and its removal
//! from organisation, vessel and aircraft names (spec step N8). Extend the table by adding a
//! line to the text file; every change of the table is a change of the key version.

use std::sync::OnceLock;

use super::wordlist::{self, SeqTable};

/// The table as shipped: one legal form per line, any script.
pub const LEGAL_FORMS_TXT: &str = include_str!("legal_forms.txt");

pub fn table() -> &'static SeqTable {
    static TABLE: OnceLock<SeqTable> = OnceLock::new();
    TABLE.get_or_init(|| SeqTable::parse(LEGAL_FORMS_TXT))
}

/// The entries written in a script without vowels ([`wordlist::script_lines`]).
pub fn script_table() -> &'static SeqTable {
    static TABLE: OnceLock<SeqTable> = OnceLock::new();
    TABLE.get_or_init(|| SeqTable::parse(&wordlist::script_lines(LEGAL_FORMS_TXT)))
}

/// Removes legal forms, also misspelt by one letter in a word of 7 letters or more
/// (`LIMITED LIABILTY COMPANY`); `None` when there was none. `script`: the name was written
/// in a script without vowels, and only the table's entries so written are removed.
pub fn strip(tokens: &[String], script: bool) -> Option<Vec<String>> {
    if script {
        script_table().strip_misspelt(tokens)
    } else {
        table().strip_misspelt(tokens)
    }
}
