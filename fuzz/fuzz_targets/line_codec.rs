//! The connection codec of `nc` and programs (`LineCodec`), fed arbitrary bytes in arbitrary
//! chunks: what it hands the connection is clean, it switches to JSON exactly when it says
//! so, and the same bytes give the same units however they were split.
#![no_main]

use charla::hub::{Encode, Nick};
use charla::protocol::{Codec, Incoming, JSON, LineCodec, Refusal, Sink};
use charla_fuzz::{check_incoming, check_refusal, chunks};
use libfuzzer_sys::fuzz_target;

/// Everything the codec handed over, as words, for comparing two runs.
#[derive(Default)]
struct Record {
    seen: Vec<String>,
    json: bool,
    /// Whether to check each unit: the second run of the same bytes only compares.
    check: bool,
}

impl Sink for Record {
    fn admit(&mut self) -> bool {
        true
    }
    fn incoming(&mut self, incoming: Incoming) {
        if self.check {
            check_incoming(&incoming);
        }
        self.seen.push(format!("{incoming:?}"));
    }
    fn refuse(&mut self, refusal: Refusal) {
        if self.check {
            check_refusal(&refusal);
        }
        self.seen.push(format!("{refusal:?}"));
    }
    fn speak(&mut self, format: &'static dyn Encode) {
        assert!(format.key() == JSON.key(), "only ever switches to JSON");
        assert!(!self.json, "switched to JSON twice");
        self.json = true;
        self.seen.push("speak json".into());
    }
    fn nick(&self) -> Option<Nick> {
        None
    }
}

fn run(max: usize, check: bool, pieces: &[&[u8]]) -> Record {
    let mut codec = LineCodec::new(max);
    let mut sink = Record {
        check,
        ..Record::default()
    };
    for piece in pieces {
        codec.decode(piece, &mut sink);
        assert_eq!(codec.format().key() == JSON.key(), sink.json, "format said");
    }
    codec.finish(&mut sink);
    assert_eq!(codec.format().key() == JSON.key(), sink.json, "format said");
    sink
}

fuzz_target!(|input: &[u8]| {
    let Some((&[bound, seed], data)) = input.split_first_chunk::<2>() else {
        return;
    };
    // Bounds from 0 to a few hundred bytes, so overlong lines are common.
    let max = usize::from(bound) * 2;
    // The units are checked once; the second run must hand over the same ones.
    let split = run(max, true, &chunks(data, seed));
    let whole = run(max, false, &[data]);
    assert_eq!(split.seen, whole.seen, "max {max}, seed {seed}");
});
