//! The interface between a connection and its wire protocol.

use std::time::Duration;

use bytes::Bytes;

use crate::hub::{Encode, Encoded, Nick, RoomName, Stamps};

use super::{Incoming, Refusal};

/// One connection's wire protocol: how the bytes it reads become requests (framed and
/// bounded), and which [`Encode`] writes what it is sent. A connection holds its codec for
/// its whole life, so a codec is small; whatever it keeps between reads counts on every
/// idle connection.
///
/// Text and JSON lines are one codec ([`super::LineCodec`]); another protocol is another
/// implementation, beside it, and the hub does not change.
pub trait Codec: Send + 'static {
    /// Takes bytes just read and hands `sink` what each complete unit asks for. Before
    /// acting on a unit that asks for anything, it asks [`Sink::admit`] (flood control),
    /// and drops the unit when refused.
    fn decode(&mut self, bytes: &[u8], sink: &mut impl Sink);

    /// The stream ended: what was left unfinished still counts (`printf 'hi' | nc …`).
    fn finish(&mut self, sink: &mut impl Sink);

    /// How what the connection is sent is written now. A codec may change it as it goes
    /// (text becomes JSON on `hello`), and then tells [`Sink::speak`].
    fn format(&self) -> &'static dyn Encode;

    /// Whether the connection becomes a session as soon as it is admitted (text and
    /// JSON: greeted at once), or only when the codec sends [`Incoming::Register`] after
    /// its handshake.
    fn registers_at_once(&self) -> bool {
        true
    }

    /// How long the codec still waits for the client's first line before deciding what it
    /// speaks (a line connection: a person at `nc`, or a program about to say `hello`);
    /// `None` once it knows, or when it never has to guess. A session registered while the
    /// codec is undecided is not put in `#lobby`: the codec puts it there once it knows it
    /// is a person.
    fn undecided(&self) -> Option<Duration> {
        None
    }

    /// Whether a session registered at once starts in `#lobby`. A codec still guessing
    /// what its client speaks puts it there itself once it knows the client is a person;
    /// one whose first line is a `hello` made before it connected (a WebSocket's URL)
    /// leaves the rooms to that hello, so the session enters them under its own nick.
    fn lobby_at_once(&self) -> bool {
        self.undecided().is_none()
    }

    /// The client said nothing for as long as [`Codec::undecided`] waited: the codec
    /// decides it is a person.
    fn silent_start(&mut self, _sink: &mut impl Sink) {}

    /// Called whenever the connection may read again after an account request (no
    /// request is in flight): a codec whose handshake waited for one carries on here.
    fn settle(&mut self, _sink: &mut impl Sink) {}

    /// How long a client may be silent before this codec asks it to answer (IRC servers
    /// PING a quiet client); `None` for codecs that leave dead peers to TCP keepalive and
    /// `--idle-timeout` (text, JSON).
    fn keepalive(&self) -> Option<Duration> {
        None
    }

    /// The client has been silent for the keepalive: the bytes that ask it to answer, or
    /// `None` when it was asked already and said nothing since, and so is dropped as
    /// timed out. Anything decoded counts as an answer.
    fn probe(&mut self) -> Option<Bytes> {
        None
    }
}

/// What a codec hands its units to: the connection.
pub trait Sink {
    /// Whether one more unit may be acted on now; counts it. False drops the unit (flood
    /// control has refused it, or is ending the connection).
    fn admit(&mut self) -> bool;
    /// Carries out what a unit asks for.
    fn incoming(&mut self, incoming: Incoming);
    /// [`Sink::incoming`], returning the stamps the hub gave out carrying it out, which
    /// order whatever it sent in answer; empty when it did not reach the hub then.
    fn stamped(&mut self, incoming: Incoming) -> Stamps {
        self.incoming(incoming);
        0..0
    }
    /// Replaces what the connection was sent within any of `stamps`, and then `own`
    /// lines, by the bytes `wrap` makes of them all (IRC's labeled-response wraps what
    /// answered one command). A sink that keeps nothing stamped answers `wrap` of `own`
    /// alone.
    fn relabel(
        &mut self,
        stamps: &[Stamps],
        own: Vec<Encoded>,
        wrap: &mut dyn FnMut(Vec<Encoded>) -> Encoded,
    ) {
        let _ = stamps;
        self.incoming(Incoming::Answer(Bytes::clone(&wrap(own))));
    }
    /// Answers a unit that could not be understood; the connection stays.
    fn refuse(&mut self, refusal: Refusal);
    /// From now on the connection is written in `format`.
    fn speak(&mut self, format: &'static dyn Encode);
    /// The session's nick as the hub has it now; `None` while the connection is not a
    /// session. Requests are carried out as they are handed over, so a codec that keeps
    /// its own nick (IRC numerics name their recipient) learns here whether a
    /// registration or a nick change it asked for took.
    fn nick(&self) -> Option<Nick>;
    /// Whether the session is in `room` now (false while the connection is not a
    /// session). A codec whose protocol ignores a join of a room one is in (IRC) asks.
    fn is_in(&self, room: &RoomName) -> bool {
        let _ = room;
        false
    }
    /// Whether the connection's last account request (a SASL proof or IRC's PASS)
    /// proved an account.
    fn proved(&self) -> bool {
        false
    }
    /// The account the session is logged in to now, if any. IRC's echo-message asks, so a
    /// message's echo carries the `account` tag the others get.
    fn account(&self) -> Option<Nick> {
        None
    }
}
