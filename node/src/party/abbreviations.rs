//! Abbreviated words of organisation names (`abbreviations.txt`, data compiled in; spec
//! step N10) written in full (`IMP` → `IMPORT`, `INTL` → `INTERNATIONAL`). Extend by adding
//! an abbreviation to a line; a change of the table is a change of the key version.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::wordlist;

/// The table as shipped: `FULL ABBREVIATION ...` a line.
pub const ABBREVIATIONS_TXT: &str = include_str!("abbreviations.txt");

fn table() -> &'static HashMap<String, String> {
    static TABLE: OnceLock<HashMap<String, String>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map = HashMap::new();
        for words in wordlist::entries(ABBREVIATIONS_TXT) {
            if let [full, abbreviations @ ..] = words.as_slice() {
                for abbreviation in abbreviations {
                    map.insert(abbreviation.clone(), full.clone());
                }
            }
        }
        map
    })
}

/// Every token that is an abbreviation of the table replaced by its full form.
pub fn in_full(tokens: Vec<String>) -> Vec<String> {
    tokens
        .into_iter()
        .map(|t| table().get(&t).cloned().unwrap_or(t))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_abbreviation_is_one_token_and_its_full_form_is_not_one() {
        for words in wordlist::entries(ABBREVIATIONS_TXT) {
            assert!(words.len() >= 2, "a line without abbreviations: {words:?}");
            assert!(
                !table().contains_key(&words[0]),
                "{} is an abbreviation",
                words[0]
            );
        }
        assert_eq!(
            in_full(vec!["WONDER".into(), "IMP".into(), "EXP".into()]),
            ["WONDER", "IMPORT", "EXPORT"]
        );
    }
}
