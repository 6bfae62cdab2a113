//! The line framer, fed arbitrary bytes in arbitrary chunks, must frame them exactly as
//! splitting the whole input at `\n` would: no line over the bound, one `TooLong` per
//! overlong line, however the bytes were split.
#![no_main]

use charla::protocol::framing::{Frame, Framer};
use charla_fuzz::chunks;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum Unit {
    Line(Vec<u8>),
    TooLong,
}

/// What the framer must produce: each `\n`-ended line without its `\r`, or `TooLong` when
/// longer than `max`; an unended last line likewise, unless it is empty.
fn model(data: &[u8], max: usize) -> Vec<Unit> {
    let mut out = Vec::new();
    let mut segments: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let last = segments.pop().expect("split yields at least one");
    let unit = |segment: &[u8]| {
        let line = segment.strip_suffix(b"\r").unwrap_or(segment);
        if line.len() > max {
            Unit::TooLong
        } else {
            Unit::Line(line.to_vec())
        }
    };
    for segment in segments {
        out.push(unit(segment));
    }
    match unit(last) {
        Unit::Line(line) if line.is_empty() => {}
        other => out.push(other),
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&[bound, seed], data)) = input.split_first_chunk::<2>() else {
        return;
    };
    // Small bounds, so the fuzzer reaches them easily; 0 included.
    let max = usize::from(bound % 80);
    let mut framer = Framer::new(max);
    let mut got = Vec::new();
    for chunk in chunks(data, seed) {
        framer.feed(chunk, |frame| {
            got.push(match frame {
                Frame::Line(line) => Unit::Line(line.to_vec()),
                Frame::TooLong => Unit::TooLong,
            })
        });
    }
    framer.finish(|frame| {
        got.push(match frame {
            Frame::Line(line) => Unit::Line(line.to_vec()),
            Frame::TooLong => Unit::TooLong,
        })
    });
    for unit in &got {
        if let Unit::Line(line) = unit {
            assert!(
                line.len() <= max,
                "a line of {} bytes passed a bound of {max}",
                line.len()
            );
            assert!(!line.contains(&b'\n'), "a line holds a newline");
        }
    }
    assert_eq!(got, model(data, max), "max {max}, seed {seed}");
});
