//! The documented JSON form of a notice (`tessera notice issue --file`):
//! any text parses or fails, converts or fails, and validates or fails.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_node::notice::{json, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = json::parse(text)
        && let Ok(notice) = parsed.to_notice()
    {
        let _ = validate::notice(&notice);
    }
});
