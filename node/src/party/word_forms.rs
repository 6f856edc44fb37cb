//! Word forms of organisation names (`word_forms.txt`, data compiled in; spec step N10):
//! plural, adjective and abbreviated forms of generic business words written as one form
//! (`TRADING` → `TRADE`, `IMP` → `IMPORT`). Extend by adding a form to a line; a change of
//! the table is a change of the key version.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::wordlist;

/// The table as shipped: `CANONICAL FORM FORM ...` a line.
pub const WORD_FORMS_TXT: &str = include_str!("word_forms.txt");

fn table() -> &'static HashMap<String, String> {
    static TABLE: OnceLock<HashMap<String, String>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut map = HashMap::new();
        for words in wordlist::entries(WORD_FORMS_TXT) {
            if let [canonical, forms @ ..] = words.as_slice() {
                for form in forms {
                    map.insert(form.clone(), canonical.clone());
                }
            }
        }
        map
    })
}

/// Every token that is a listed form replaced by its canonical form.
pub fn canonical(tokens: Vec<String>) -> Vec<String> {
    tokens
        .into_iter()
        .map(|t| table().get(&t).cloned().unwrap_or(t))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_one_token_and_maps_to_a_canonical_that_is_not_a_form() {
        for words in wordlist::entries(WORD_FORMS_TXT) {
            assert!(words.len() >= 2, "a line without forms: {words:?}");
            assert!(!table().contains_key(&words[0]), "{} is a form", words[0]);
        }
        assert_eq!(
            canonical(vec!["WONDER".into(), "IMP".into(), "EXP".into()]),
            ["WONDER", "IMPORT", "EXPORT"]
        );
    }
}
