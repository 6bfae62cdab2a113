//! The JSON decoder on any UTF-8 line: it never panics, what it hands the hub is clean, and
//! its `ref` (also on a refusal) comes back exactly as sent (`charla_fuzz::check_incoming`).
#![no_main]

use charla_fuzz::{check_incoming, check_refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    match charla::protocol::parse_json(line) {
        Ok(incoming) => check_incoming(&incoming),
        Err(refusal) => check_refusal(&refusal),
    }
});
