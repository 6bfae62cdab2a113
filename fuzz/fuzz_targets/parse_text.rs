//! The text decoder on any UTF-8 line: it never panics, and what it hands the hub is clean
//! (`charla_fuzz::check_incoming`).
#![no_main]

use charla_fuzz::{check_incoming, check_refusal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    match charla::protocol::parse_text(line) {
        Ok(incoming) => check_incoming(&incoming),
        Err(refusal) => check_refusal(&refusal),
    }
});
