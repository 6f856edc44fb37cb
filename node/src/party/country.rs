//! Countries as ISO 3166-1 alpha-2 codes, from a code (alpha-2 or alpha-3) or a name in any
//! common form (`countries.txt`, data compiled in), spec step C. Unknown input gives `None`:
//! a country is never guessed.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::normalise::basic_tokens;
use super::translit::Backend;

/// The table as shipped: `alpha-2|alpha-3|name|other names...` a line.
pub const COUNTRIES_TXT: &str = include_str!("countries.txt");

struct Table {
    alpha2: HashMap<String, &'static str>,
    alpha3: HashMap<String, &'static str>,
    names: HashMap<String, &'static str>,
}

fn name_key(s: &str) -> String {
    let mut t = basic_tokens(s, Backend::AnyAscii);
    t.sort();
    t.join(" ")
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table {
            alpha2: HashMap::new(),
            alpha3: HashMap::new(),
            names: HashMap::new(),
        };
        for line in COUNTRIES_TXT.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut fields = line.split('|');
            let (Some(a2), Some(a3)) = (fields.next(), fields.next()) else {
                continue;
            };
            t.alpha2.insert(a2.to_owned(), a2);
            t.alpha3.insert(a3.to_owned(), a2);
            for name in fields {
                t.names.insert(name_key(name), a2);
            }
        }
        t
    })
}

/// The ISO 3166-1 alpha-2 code for `s`: an exact alpha-2 or alpha-3 code (any case), else
/// a name from the table compared after normalisation with sorted tokens.
pub fn country_code(s: &str) -> Option<&'static str> {
    let t = table();
    let trimmed = s.trim();
    let upper = trimmed.to_ascii_uppercase();
    match upper.len() {
        2 => {
            if let Some(c) = t.alpha2.get(&upper) {
                return Some(c);
            }
        }
        3 => {
            if let Some(c) = t.alpha3.get(&upper) {
                return Some(c);
            }
        }
        _ => {}
    }
    t.names.get(&name_key(trimmed)).copied()
}

#[cfg(test)]
mod tests {
    use super::country_code;

    #[test]
    fn codes_and_names() {
        assert_eq!(country_code("ru"), Some("RU"));
        assert_eq!(country_code("RUS"), Some("RU"));
        assert_eq!(country_code("Russian Federation"), Some("RU"));
        assert_eq!(country_code("Korea, North"), Some("KP"));
        assert_eq!(country_code("north korea"), Some("KP"));
        assert_eq!(country_code("Iran (Islamic Republic of)"), Some("IR"));
        assert_eq!(country_code("Côte d'Ivoire"), Some("CI"));
        assert_eq!(country_code("Atlantis"), None);
        assert_eq!(country_code(""), None);
    }
}
