//! The perturbations that turn a listed name into a variant an officer might type or a
//! document might carry: a typo, a dropped or added name part, another order, another
//! transliteration, words joined or split, initials. Each works on the name as written
//! (before normalisation), draws only from the seeded generator it is given, and returns
//! `None` when it does not apply to that name.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use tessera_node::party::PartyKind;

/// A kind of perturbation; the family name is its `as_str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Perturbation {
    Typo,
    DropToken,
    AddToken,
    Reorder,
    Translit,
    JoinSplit,
    Initials,
}

impl Perturbation {
    pub const ALL: [Self; 7] = [
        Self::Typo,
        Self::DropToken,
        Self::AddToken,
        Self::Reorder,
        Self::Translit,
        Self::JoinSplit,
        Self::Initials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Typo => "typo",
            Self::DropToken => "drop_token",
            Self::AddToken => "add_token",
            Self::Reorder => "reorder",
            Self::Translit => "translit",
            Self::JoinSplit => "join_split",
            Self::Initials => "initials",
        }
    }

    /// Applies the perturbation to `name` (a party of `kind`); `extra` is a pool of name
    /// parts of the same kind to draw an added token from.
    pub fn apply(
        self,
        name: &str,
        kind: PartyKind,
        extra: &[String],
        rng: &mut ChaCha8Rng,
    ) -> Option<String> {
        let words = words(name);
        if words.is_empty() {
            return None;
        }
        let out = match self {
            Self::Typo => typo(&words, rng),
            Self::DropToken => drop_token(&words, kind, rng),
            Self::AddToken => add_token(&words, kind, extra, rng),
            Self::Reorder => reorder(&words, kind, rng),
            Self::Translit => translit(&words, rng),
            Self::JoinSplit => join_split(&words, rng),
            Self::Initials => initials(&words, kind, rng),
        }?;
        (normal(&out) != normal(name)).then_some(out)
    }
}

/// The words of a name as written: a person's "SURNAME, Given" is read as "Given SURNAME",
/// so that every perturbation sees the written order a document would use.
fn words(name: &str) -> Vec<String> {
    let name = match name.split_once(',') {
        Some((surname, given)) if !given.contains(',') && !given.trim().is_empty() => {
            format!("{} {}", given.trim(), surname.trim())
        }
        _ => name.to_owned(),
    };
    name.split_whitespace().map(str::to_owned).collect()
}

fn normal(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

fn letters(word: &str) -> Vec<char> {
    word.chars().collect()
}

/// A random word of at least `min` letters, as an index.
fn pick_word(words: &[String], min: usize, rng: &mut ChaCha8Rng) -> Option<usize> {
    let fit: Vec<usize> = (0..words.len())
        .filter(|&i| words[i].chars().filter(|c| c.is_alphabetic()).count() >= min)
        .collect();
    fit.choose(rng).copied()
}

fn random_letter(rng: &mut ChaCha8Rng) -> char {
    const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPRSTUVYZ";
    LETTERS[rng.gen_range(0..LETTERS.len())] as char
}

fn typo(words: &[String], rng: &mut ChaCha8Rng) -> Option<String> {
    let i = pick_word(words, 4, rng)?;
    let mut w = letters(&words[i]);
    let n = w.len();
    match rng.gen_range(0..4) {
        0 => {
            w.remove(rng.gen_range(0..n));
        }
        1 => w.insert(rng.gen_range(0..=n), random_letter(rng)),
        2 => {
            let at = rng.gen_range(0..n);
            let c = random_letter(rng);
            if w[at].eq_ignore_ascii_case(&c) {
                return None;
            }
            w[at] = c;
        }
        _ => {
            let at = rng.gen_range(0..n - 1);
            w.swap(at, at + 1);
        }
    }
    let mut out = words.to_vec();
    out[i] = w.into_iter().collect();
    Some(out.join(" "))
}

fn drop_token(words: &[String], kind: PartyKind, rng: &mut ChaCha8Rng) -> Option<String> {
    if words.len() < 3 {
        return None;
    }
    // A person keeps the first and the last name; an organisation may lose any word.
    let range = if kind == PartyKind::Person {
        1..words.len() - 1
    } else {
        0..words.len()
    };
    let drop = rng.gen_range(range);
    let out: Vec<&str> = words
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != drop)
        .map(|(_, w)| w.as_str())
        .collect();
    Some(out.join(" "))
}

/// Words an organisation's name often gains or loses.
const ORG_EXTRAS: [&str; 10] = [
    "Trading",
    "Group",
    "International",
    "Co. Ltd",
    "LLC",
    "Holding",
    "Company",
    "Industries",
    "Limited",
    "Corporation",
];

fn add_token(
    words: &[String],
    kind: PartyKind,
    extra: &[String],
    rng: &mut ChaCha8Rng,
) -> Option<String> {
    let mut out = words.to_vec();
    if kind == PartyKind::Person {
        let added = extra.choose(rng)?.clone();
        let at = if out.len() >= 2 {
            rng.gen_range(1..out.len())
        } else {
            0
        };
        out.insert(at, added);
    } else {
        out.push((*ORG_EXTRAS.choose(rng)?).to_owned());
    }
    Some(out.join(" "))
}

fn reorder(words: &[String], kind: PartyKind, rng: &mut ChaCha8Rng) -> Option<String> {
    if words.len() < 2 {
        return None;
    }
    let mut out = words.to_vec();
    if kind == PartyKind::Person && rng.gen_bool(0.5) {
        // "Given SURNAME" written "SURNAME Given".
        let last = out.pop()?;
        out.insert(0, last);
    } else {
        let a = rng.gen_range(0..out.len());
        let b = (a + 1 + rng.gen_range(0..out.len() - 1)) % out.len();
        out.swap(a, b);
    }
    Some(out.join(" "))
}

/// Spelling rules of common transliterations, applied in either direction.
const TRANSLIT: &[(&str, &str)] = &[
    ("OU", "U"),
    ("EE", "I"),
    ("IY", "Y"),
    ("II", "I"),
    ("Y", "I"),
    ("Y", "J"),
    ("KH", "H"),
    ("KH", "K"),
    ("GH", "G"),
    ("Q", "K"),
    ("Q", "G"),
    ("PH", "F"),
    ("W", "V"),
    ("TH", "T"),
    ("DH", "D"),
    ("SH", "SCH"),
    ("CH", "TSCH"),
    ("ZH", "J"),
    ("EI", "EY"),
    ("AI", "AY"),
    ("O", "U"),
    ("E", "A"),
    ("C", "K"),
    ("X", "KS"),
    ("TS", "Z"),
    ("J", "DJ"),
    ("MOHAMMED", "MUHAMMAD"),
    ("MOHAMMAD", "MOHAMED"),
    ("ABDUL", "ABDEL"),
    ("ABDUL", "ABD AL-"),
];

fn translit(words: &[String], rng: &mut ChaCha8Rng) -> Option<String> {
    let mut options: Vec<(usize, String)> = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let upper = word.to_uppercase();
        for (a, b) in TRANSLIT {
            for (from, to) in [(a, b), (b, a)] {
                if let Some(at) = upper.find(from) {
                    let mut w = upper.clone();
                    w.replace_range(at..at + from.len(), to);
                    options.push((i, w));
                }
            }
        }
        // A doubled consonant written once, or a single one doubled.
        let chars = letters(&upper);
        for k in 1..chars.len() {
            if chars[k] == chars[k - 1] && !"AEIOU".contains(chars[k]) {
                let mut w = chars.clone();
                w.remove(k);
                options.push((i, w.into_iter().collect()));
            }
        }
    }
    let (i, w) = options.choose(rng)?.clone();
    let mut out = words.to_vec();
    out[i] = w;
    Some(out.join(" "))
}

fn join_split(words: &[String], rng: &mut ChaCha8Rng) -> Option<String> {
    let mut out = words.to_vec();
    let long: Vec<usize> = (0..out.len())
        .filter(|&i| out[i].chars().count() >= 8)
        .collect();
    if out.len() >= 2 && (long.is_empty() || rng.gen_bool(0.5)) {
        let at = rng.gen_range(0..out.len() - 1);
        let next = out.remove(at + 1);
        out[at].push_str(&next);
    } else {
        let i = *long.choose(rng)?;
        let chars = letters(&out[i]);
        let cut = rng.gen_range(3..chars.len() - 2);
        let (a, b): (String, String) =
            (chars[..cut].iter().collect(), chars[cut..].iter().collect());
        out[i] = a;
        out.insert(i + 1, b);
    }
    Some(out.join(" "))
}

fn initials(words: &[String], kind: PartyKind, rng: &mut ChaCha8Rng) -> Option<String> {
    if kind != PartyKind::Person || words.len() < 2 {
        return None;
    }
    let i = rng.gen_range(0..words.len() - 1);
    let first = words[i].chars().next()?;
    let mut out = words.to_vec();
    out[i] = format!("{first}.");
    Some(out.join(" "))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn each_perturbation_changes_a_name_reproducibly() {
        let extra = vec!["Ali".to_owned()];
        for p in Perturbation::ALL {
            let run = |seed| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                (0..20)
                    .filter_map(|_| {
                        p.apply(
                            "QADHAFI, Muammar Mohammed Abu Minyar",
                            PartyKind::Person,
                            &extra,
                            &mut rng,
                        )
                    })
                    .collect::<Vec<_>>()
            };
            let a = run(7);
            assert!(!a.is_empty(), "{p:?} never applied");
            assert_eq!(a, run(7), "{p:?} is not reproducible");
        }
    }
}
