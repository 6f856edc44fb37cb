//! Match-key derivation (`docs/match-keys.md`) on any text: name, alias,
//! country, birth date and original-script name, one per line. Keys are
//! derived without panicking and are never empty.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_node::party::{Party, match_keys};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let mut field = || lines.next().unwrap_or_default().to_owned();
    let party = Party {
        name: field(),
        aliases: vec![field()],
        countries: vec![field()],
        birth_date: Some(field()),
        original_script_names: vec![field()],
        ..Party::default()
    };
    for key in match_keys(&party) {
        assert!(!key.value.is_empty(), "an empty match key");
    }
});
