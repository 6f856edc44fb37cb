//! Transliteration of any script to ASCII Latin, one character at a time.
//!
//! The spec's backend is `any_ascii` (see `docs/match-keys.md`, "Transliteration");
//! `deunicode` is kept only so the evaluation can compare the two on real names. Han and
//! Hangul characters are one syllable each and become separate tokens.
//! Arabic-script definite articles and vowel marks are handled here because they cannot be
//! recognised once the text is Latin. Never allocates per character beyond the output.

/// Which transliteration table to use. Keys always use [`Backend::AnyAscii`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    AnyAscii,
    Deunicode,
}

/// Han ideographs and Hangul syllables: each character is one syllable, written as a
/// token of its own (kana are letters of words and are not split).
fn is_syllabic(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF      // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F) // CJK Extensions B..
}

/// Arabic-script vowel marks, tatweel and other marks dropped before transliteration, so
/// vocalised and unvocalised spellings agree.
fn is_arabic_mark(c: char) -> bool {
    matches!(c as u32, 0x0610..=0x061A | 0x064B..=0x065F | 0x0670 | 0x0640 | 0x06D6..=0x06ED)
}

fn is_alef(c: char) -> bool {
    matches!(
        c,
        '\u{0627}' | '\u{0623}' | '\u{0625}' | '\u{0622}' | '\u{0671}'
    )
}

/// Transliterates `s` (already NFKC, controls removed) to ASCII.
///
/// Per word (maximal run of non-space characters): an Arabic-script word of four or more
/// letters that starts with alef + lam (the article "al-") loses those two letters. Then
/// each character: the Arabic overrides of [`arabic_override`] apply; ASCII is kept; Arabic marks are dropped; a syllabic character becomes
/// its transliteration surrounded by spaces; anything else becomes its transliteration.
pub fn to_ascii(s: &str, backend: Backend) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, word) in s.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let mut letters: Vec<char> = word.chars().filter(|c| !is_arabic_mark(*c)).collect();
        if letters.len() >= 4 && is_alef(letters[0]) && letters[1] == '\u{0644}' {
            letters.drain(..2);
        }
        for (j, c) in letters.into_iter().enumerate() {
            if let Some(t) = arabic_override(c, j > 0) {
                out.push_str(t);
            } else if c.is_ascii() {
                out.push(c);
            } else if is_syllabic(c) {
                out.push(' ');
                push_char(&mut out, c, backend);
                out.push(' ');
            } else {
                push_char(&mut out, c, backend);
            }
        }
    }
    out
}

/// Arabic-script letters whose table transliteration would defeat matching:
/// `ظ` is `z` (as in ZAWAHIRI, MAHFOUZ); `ج` is `g` (the Egyptian romanisation), so that in
/// unvocalised text it never reads as the glide `j` of the phonetic code; the h-letters `ح ه ة ۀ ہ ھ` after another
/// letter of the word are `ah`, so that they never form a digraph with the letter before
/// (`مزاحم` must not read "zh") and a final ta marbuta reads like the Latin "-a"/"-ah".
fn arabic_override(c: char, after_letter: bool) -> Option<&'static str> {
    match c {
        '\u{0638}' => Some("z"),
        '\u{062C}' => Some("g"),
        '\u{062D}' | '\u{0647}' | '\u{0629}' | '\u{06C0}' | '\u{06C1}' | '\u{06BE}' => {
            Some(if after_letter { "ah" } else { "h" })
        }
        _ => None,
    }
}

fn push_char(out: &mut String, c: char, backend: Backend) {
    match backend {
        Backend::AnyAscii => out.push_str(any_ascii::any_ascii_char(c)),
        Backend::Deunicode => {
            if let Some(t) = deunicode::deunicode_char(c) {
                out.push_str(t);
            }
        }
    }
}
