//! Connections served over in-memory streams: the seams a new transport or protocol plugs
//! into, without sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::admission::Admission;
use super::listen::Peer;
use super::{Shared, connection};
use crate::hub::{Command, Encode, Event, Hub, MessageText, Nick, Outgoing, Request};
use crate::limits::Limits;
use crate::metrics::ConnectionKind;
use crate::protocol::{Codec, Incoming, LineCodec, Refusal, Sink};

/// How long a test waits for a line before it fails.
const PATIENCE: Duration = Duration::from_secs(5);

fn context(limits: Limits) -> Arc<Shared> {
    let hub = Hub::new(&limits);
    let metrics = hub.metrics().clone();
    Arc::new(Shared {
        accounts: crate::accounts::Accounts::new(hub.clone(), limits.opers.clone()),
        hub,
        admission: Admission::new(&limits, metrics.clone()),
        metrics,
        limits,
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
        alertmanager: Default::default(),
    })
}

/// The far end of an in-memory connection, read up to a delimiter at a time.
struct Far {
    reader: BufReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
    delimiter: u8,
}

impl Far {
    async fn send(&mut self, bytes: &str) {
        self.writer.write_all(bytes.as_bytes()).await.unwrap();
    }

    /// The next unit, without its delimiter; `None` at end of stream.
    async fn next(&mut self) -> Option<String> {
        let mut unit = Vec::new();
        let read = self.reader.read_until(self.delimiter, &mut unit);
        let n = tokio::time::timeout(PATIENCE, read)
            .await
            .expect("in time")
            .unwrap();
        if n == 0 {
            return None;
        }
        unit.pop_if(|&mut last| last == self.delimiter);
        Some(String::from_utf8(unit).unwrap())
    }

    /// Units up to the first that contains `needle`, which is returned.
    async fn expect(&mut self, needle: &str) -> String {
        loop {
            let unit = self
                .next()
                .await
                .unwrap_or_else(|| panic!("ended before {needle:?}"));
            if unit.contains(needle) {
                return unit;
            }
        }
    }
}

/// Serves a new connection speaking `codec` over an in-memory stream; the far end reads
/// units ending in `delimiter`.
fn open(ctx: &Arc<Shared>, codec: impl Codec, delimiter: u8) -> Far {
    let (near, far) = tokio::io::duplex(64 * 1024);
    let ticket = ctx
        .admission
        .admit(&Peer::Unix, ConnectionKind::Text)
        .expect("admitted");
    tokio::spawn(connection::serve(near, codec, Peer::Unix, ctx, ticket));
    let (reader, writer) = tokio::io::split(far);
    Far {
        reader: BufReader::new(reader),
        writer,
        delimiter,
    }
}

/// A whole session, text then JSON, over `tokio::io::duplex`: no socket anywhere.
#[tokio::test]
async fn a_whole_session_is_served_over_any_byte_stream() {
    let ctx = context(Limits::default());
    let mut ana = open(&ctx, LineCodec::new(ctx.limits.max_line_bytes), b'\n');
    assert!(
        ana.next()
            .await
            .unwrap()
            .starts_with("*** Welcome to charla, guest-"),
        "greeted before sending a byte"
    );
    ana.expect("you joined").await;
    ana.send("/nick ana\n").await;
    assert_eq!(ana.next().await.unwrap(), "*** you are now known as ana");
    // Split anywhere: the framing is the codec's, not the stream's.
    ana.send("/join #o").await;
    ana.send("ps\nhello from memory\n").await;
    ana.expect("#ops *** you joined").await;
    ana.send("{\"type\":\"hello\",\"ref\":7}\n").await;
    let welcome = ana.expect("welcome").await;
    assert!(
        welcome.contains("\"ref\":7") && welcome.contains("\"ana\""),
        "{welcome}"
    );
    ana.send("{\"type\":\"quit\"}\n").await;
    assert!(ana.expect("bye").await.contains("quit"));
    assert_eq!(ana.next().await, None, "closed after the goodbye");
    tokio::time::timeout(PATIENCE, async {
        while ctx.hub.session_count() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the session ends");
}

/// Messages the shout format encoded, to show each is encoded once for all its readers.
static SHOUTED: AtomicUsize = AtomicUsize::new(0);

/// A third wire format, for these tests only: units end in `;`, text is shouted.
struct ShoutFormat;

static SHOUT: ShoutFormat = ShoutFormat;

impl Encode for ShoutFormat {
    fn encode(&self, out: &Outgoing) -> Bytes {
        let unit = match &out.event {
            Event::Welcome { nick, .. } => format!("WELCOME {nick};"),
            Event::Message(said) => {
                SHOUTED.fetch_add(1, Ordering::Relaxed);
                format!("<{}> {};", said.from, said.text.as_str().to_uppercase())
            }
            Event::Error { code, .. } => format!("ERR {};", code.as_str()),
            _ => String::new(),
        };
        Bytes::from(unit)
    }
}

/// The codec of the shout format: `IAM nick;` registers (answered `OK;` first), `SAY
/// text;` says something. It holds registration until `IAM`.
#[derive(Default)]
struct ShoutCodec {
    unit: Vec<u8>,
}

impl ShoutCodec {
    fn unit(unit: &str, sink: &mut impl Sink) {
        if !sink.admit() {
            return;
        }
        let refusal = || Refusal::new(crate::hub::ErrorCode::UnknownCommand, "shout IAM or SAY");
        match unit.split_once(' ') {
            Some(("IAM", nick)) => match Nick::parse(nick) {
                Ok(nick) => {
                    sink.incoming(Incoming::Answer(Bytes::from_static(b"OK;")));
                    sink.incoming(Incoming::Register {
                        nick: Some(nick),
                        reference: None,
                        lobby: true,
                    });
                }
                Err(_) => sink.refuse(refusal()),
            },
            Some(("SAY", text)) => {
                let command = Command::Say {
                    room: None,
                    text: MessageText::new(text).expect("something to say"),
                    action: false,
                };
                sink.incoming(Incoming::Request(Request::from(command)));
            }
            _ => sink.refuse(refusal()),
        }
    }
}

impl Codec for ShoutCodec {
    fn decode(&mut self, bytes: &[u8], sink: &mut impl Sink) {
        for &b in bytes {
            if b == b';' {
                let unit = String::from_utf8(std::mem::take(&mut self.unit)).unwrap();
                ShoutCodec::unit(unit.trim(), sink);
            } else {
                self.unit.push(b);
            }
        }
    }

    fn finish(&mut self, _: &mut impl Sink) {}

    fn format(&self) -> &'static dyn Encode {
        &SHOUT
    }

    fn registers_at_once(&self) -> bool {
        false
    }
}

/// A codec the hub has never heard of talks with text users in the same room, registers
/// only after its handshake, and each of its messages is encoded once for all its readers.
#[tokio::test]
async fn a_third_codec_registers_after_its_handshake_and_shares_rooms() {
    let limits = Limits {
        max_connections: 3,
        ..Limits::default()
    };
    let ctx = context(limits);
    let mut text = open(&ctx, LineCodec::new(ctx.limits.max_line_bytes), b'\n');
    text.expect("you joined").await;
    let mut ana = open(&ctx, ShoutCodec::default(), b';');
    let mut bob = open(&ctx, ShoutCodec::default(), b';');

    // Admitted and counted, not yet sessions: the third place is the last.
    ana.send("SAY too soon;").await;
    assert_eq!(ana.next().await.unwrap(), "ERR not_registered");
    assert_eq!(ctx.hub.session_count(), 1);
    assert!(
        ctx.admission
            .admit(&Peer::Unix, ConnectionKind::Text)
            .is_err(),
        "unregistered connections hold their places"
    );

    ana.send("IAM ana;").await;
    assert_eq!(ana.next().await.unwrap(), "OK");
    assert_eq!(ana.next().await.unwrap(), "WELCOME ana");
    bob.send("IAM ana;").await;
    assert_eq!(bob.next().await.unwrap(), "OK");
    assert_eq!(bob.next().await.unwrap(), "ERR nick_taken");
    bob.send("IAM bob;").await;
    bob.expect("WELCOME bob").await;
    assert_eq!(ctx.hub.session_count(), 3);

    let before = SHOUTED.load(Ordering::Relaxed);
    text.send("hello there\n").await;
    assert!(ana.expect("HELLO THERE").await.ends_with("> HELLO THERE"));
    bob.expect("HELLO THERE").await;
    assert_eq!(
        SHOUTED.load(Ordering::Relaxed) - before,
        1,
        "one encoding shared by both shout readers"
    );
    ana.send("SAY quiet please;").await;
    assert_eq!(text.expect("quiet").await, "#lobby <ana> quiet please");
    assert!(bob.expect("QUIET").await.starts_with("<ana>"));
}
