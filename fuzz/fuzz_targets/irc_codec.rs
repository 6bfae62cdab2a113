//! The IRC codec (`IrcCodec`), fed arbitrary bytes in arbitrary chunks, through a `Sink`
//! that plays the hub (registration takes unless the nick is "taken", a nick change
//! likewise, flood control now and then refuses a unit): the same units however the bytes
//! were split; nothing reaches the hub before registration, nor a second registration;
//! what it hands over is clean, each request carrying a `nick VERB subject` reference and
//! every reply and event it can lead to writing clean IRC lines of at most 512 bytes; and
//! every line the codec writes itself is one CRLF-ended line of at most 512 bytes with no
//! other control character (`charla_fuzz::check_irc_incoming`).
#![no_main]

use charla::hub::{Command, Encode, Nick, Outgoing};
use charla::limits::Limits;
use charla::protocol::{Codec, Incoming, IrcCodec, JSON, Refusal, Sink, TEXT};
use charla_fuzz::{check_irc_encoded, check_irc_incoming, chunks};
use libfuzzer_sys::fuzz_target;

/// The hub, as far as the codec can tell, and everything handed to it, as words.
struct Record {
    seen: Vec<String>,
    session: Option<Nick>,
    /// Flood control refuses every `flood`th unit; never when 0.
    flood: u32,
    admitted: u32,
    /// Whether to check each unit: the second run of the same bytes only compares.
    check: bool,
}

/// Whether the hub refuses `nick` as taken: a rule the fuzzer can reach either way.
fn taken(nick: &Nick) -> bool {
    nick.as_str().len().is_multiple_of(3)
}

impl Sink for Record {
    fn admit(&mut self) -> bool {
        self.admitted += 1;
        let admit = self.flood == 0 || !self.admitted.is_multiple_of(self.flood);
        self.seen.push(format!("admit {admit}"));
        admit
    }
    fn incoming(&mut self, incoming: Incoming) {
        if self.check {
            check_irc_incoming(&incoming);
        }
        match &incoming {
            Incoming::Register { nick, .. } => {
                assert!(self.session.is_none(), "registered twice: {incoming:?}");
                let nick = nick
                    .clone()
                    .expect("IRC registers under the nick it was sent");
                if !taken(&nick) {
                    self.session = Some(nick);
                }
            }
            Incoming::Request(request) => {
                let Some(me) = &self.session else {
                    panic!("a request before registration: {incoming:?}");
                };
                // A call to a check answered later is asked labeled: `@label nick …`.
                let asked = labelless(request.reference.as_deref());
                assert!(
                    asked.starts_with(&format!("{me} ")),
                    "a request asked in another name than {me}: {asked:?}"
                );
                if let Command::Nick(new) = &request.command
                    && !taken(new)
                {
                    self.session = Some(new.clone());
                }
            }
            Incoming::Hello { .. } => panic!("an IRC codec said hello"),
            // OPER, the one account request IRC makes, is a registered session's.
            Incoming::Account { reference, .. } => {
                let Some(me) = &self.session else {
                    panic!("an account request before registration: {incoming:?}");
                };
                let asked = labelless(reference.as_deref());
                assert!(
                    asked.starts_with(&format!("{me} ")),
                    "an account request asked in another name than {me}: {asked:?}"
                );
            }
            // A connection's last words (QUIT, a wrong password, an HTTP request line)
            // are said only before registering: a session leaves by the hub.
            Incoming::Close(_) => assert!(
                self.session.is_none(),
                "a registered session closed by its codec: {incoming:?}"
            ),
            Incoming::Sasl(_) | Incoming::Answer(_) | Incoming::Nothing => {}
        }
        self.seen.push(format!("{incoming:?}"));
    }
    fn refuse(&mut self, refusal: Refusal) {
        if self.check {
            let (event, reference) = refusal.clone().into_reply();
            check_irc_encoded(&Outgoing::reply(event, reference));
        }
        self.seen.push(format!("{refusal:?}"));
    }
    // CAP REQ changes the format to IRC with the capabilities asked for (one variant of
    // the IRC format each); never to text or JSON.
    fn speak(&mut self, format: &'static dyn Encode) {
        let key = format.key();
        assert!(
            key != TEXT.key() && key != JSON.key(),
            "an IRC codec changed to a line format"
        );
        self.seen.push(format!("speak {key:?}"));
    }
    fn nick(&self) -> Option<Nick> {
        self.session.clone()
    }
}

/// A reference without the IRCv3 label it may start with.
fn labelless(reference: Option<&str>) -> &str {
    let reference = reference.unwrap_or("");
    match reference.strip_prefix('@') {
        Some(labeled) => labeled.split_once(' ').map_or("", |(_, asked)| asked),
        None => reference,
    }
}

fn run(flood: u32, register: bool, check: bool, pieces: &[&[u8]]) -> Vec<String> {
    let mut codec = IrcCodec::new(&Limits::default());
    let mut sink = Record {
        seen: Vec::new(),
        session: None,
        flood: 0,
        admitted: 0,
        check,
    };
    if register {
        codec.decode(b"NICK fuzz\r\nUSER fuzz 0 * :Fuzz\r\n", &mut sink);
        assert!(sink.session.is_some(), "registration did not take");
    }
    sink.flood = flood;
    for piece in pieces {
        codec.decode(piece, &mut sink);
    }
    codec.finish(&mut sink);
    sink.seen
}

fuzz_target!(|input: &[u8]| {
    let Some((&[setup, seed], data)) = input.split_first_chunk::<2>() else {
        return;
    };
    // Half the inputs start registered, so the fuzzer need not find the handshake first;
    // flood control refuses every 2nd to 7th unit, or none.
    let register = setup & 0x80 != 0;
    let flood = match u32::from(setup & 0x07) {
        1 => 0,
        n => n,
    };
    let split = run(flood, register, true, &chunks(data, seed));
    let whole = run(flood, register, false, &[data]);
    assert_eq!(split, whole, "setup {setup:#x}, seed {seed}");
});
