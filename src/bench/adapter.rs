//! How the load generator speaks to each kind of server under test.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;

use super::link::{Dialer, Reader, Writer};

/// How long registration (greeting, nick, join) may take per client.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(30);

/// The protocol of the server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// charla's text protocol: `/join #room`, then plain lines.
    Charla,
    /// charla's text protocol over TLS (a `tls://` listener; `--ca` names its certificate).
    CharlaTls,
    /// charla's JSON protocol over a WebSocket (the `http://` listener's `/ws`).
    CharlaWs,
    /// charla's JSON protocol as lines over plain TCP: with `charla-ws`, tells the JSON
    /// events' cost from the WebSocket framing's.
    CharlaJson,
    /// Any server that relays each line to the other clients, whatever prefix it adds
    /// (`ncat --chat`). One room only.
    Lines,
    /// IRC: NICK/USER registration, JOIN, PRIVMSG (ngircd, InspIRCd).
    Irc,
    /// Socket.IO 4 over a WebSocket (Engine.IO v4 framing): a server that broadcasts each
    /// `chat` event to every other client (bench/socketio). One room only.
    SocketIo,
}

/// A registered client's two halves.
pub struct Registered {
    pub reader: Reader,
    pub writer: Writer,
}

impl Protocol {
    /// Whether it runs over WebSocket frames rather than a byte stream.
    pub fn framed(self) -> bool {
        matches!(self, Protocol::CharlaWs | Protocol::SocketIo)
    }

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Charla => "charla",
            Protocol::CharlaTls => "charla-tls",
            Protocol::CharlaWs => "charla-ws",
            Protocol::CharlaJson => "charla-json",
            Protocol::Lines => "lines",
            Protocol::Irc => "irc",
            Protocol::SocketIo => "socket-io",
        }
    }
}

impl Dialer {
    /// Connects client `id`, registers it and puts it in `room` (`#name`).
    pub async fn register(&self, id: usize, room: &str) -> anyhow::Result<Registered> {
        tokio::time::timeout(REGISTER_TIMEOUT, self.register_inner(id, room))
            .await
            .with_context(|| format!("client {id} took over {REGISTER_TIMEOUT:?} to register"))?
    }

    async fn register_inner(&self, id: usize, room: &str) -> anyhow::Result<Registered> {
        let path = match self.protocol {
            Protocol::SocketIo => "/socket.io/?EIO=4&transport=websocket",
            _ => "/ws",
        };
        let (mut reader, mut writer) = self.open(path).await?;
        let nick = format!("b{id}");
        match self.protocol {
            Protocol::Lines => {}
            Protocol::Charla | Protocol::CharlaTls => {
                // Typed at once, as a person may: the first line puts the session in #lobby
                // (a silent one would wait for LOBBY_GRACE), then the nick and the room.
                read_until(&mut reader, |l| l.starts_with("*** Welcome")).await?;
                let hello = format!("/nick {nick}\n/join {room}\n");
                writer.send(hello.as_bytes()).await?;
                let joined = format!("{room} *** you joined");
                read_until(&mut reader, |l| l.starts_with(&joined)).await?;
            }
            // Over TCP the text greeting comes first; the hello switches to JSON.
            Protocol::CharlaWs | Protocol::CharlaJson => {
                let hello = serde_json::json!({"type": "hello", "nick": nick, "rooms": [room]});
                writer.send(format!("{hello}\n").as_bytes()).await?;
                read_until(&mut reader, |l| l.starts_with(r#"{"type":"welcome""#)).await?;
            }
            Protocol::SocketIo => {
                // Engine.IO's open packet (`0{…}`), then Socket.IO's connect to the main
                // namespace (`40`), answered by `40{"sid":…}`.
                read_until(&mut reader, |l| l.starts_with('0')).await?;
                writer.send(b"40\n").await?;
                read_until(&mut reader, |l| l.starts_with("40")).await?;
            }
            Protocol::Irc => {
                let hello = format!("NICK {nick}\r\nUSER {nick} 0 * :bench\r\n");
                writer.send(hello.as_bytes()).await?;
                loop {
                    let line = read_until(&mut reader, |_| true).await?;
                    if let Some(pong) = self.protocol.answer(line.as_bytes()) {
                        writer.send(&pong).await?;
                    }
                    if line.split(' ').nth(1) == Some("001") {
                        break;
                    }
                    if line.starts_with("ERROR") || line.split(' ').nth(1) == Some("433") {
                        bail!("{nick} was refused: {line}");
                    }
                }
                writer.send(format!("JOIN {room}\r\n").as_bytes()).await?;
                // 366: end of the member list, the last reply to our own JOIN — of this
                // room: charla also puts every client in #lobby, whose 366 may come first.
                read_until(&mut reader, |l| {
                    let words: Vec<&str> = l.split(' ').collect();
                    words.get(1) == Some(&"366")
                        && words.get(3).is_some_and(|r| r.eq_ignore_ascii_case(room))
                })
                .await?;
            }
        }
        Ok(Registered { reader, writer })
    }
}

impl Protocol {
    /// The bytes that send `text` to `room`.
    pub fn message(self, room: &str, text: &[u8], out: &mut Vec<u8>) {
        match self {
            Protocol::Charla | Protocol::CharlaTls | Protocol::Lines => {
                out.extend_from_slice(text);
                out.push(b'\n');
            }
            // The stamp and its padding need no JSON escaping (`payload`).
            Protocol::CharlaWs | Protocol::CharlaJson => {
                out.extend_from_slice(br#"{"type":"say","room":""#);
                out.extend_from_slice(room.as_bytes());
                out.extend_from_slice(br#"","text":""#);
                out.extend_from_slice(text);
                out.extend_from_slice(b"\"}\n");
            }
            Protocol::SocketIo => {
                out.extend_from_slice(br#"42["chat",""#);
                out.extend_from_slice(text);
                out.extend_from_slice(b"\"]\n");
            }
            Protocol::Irc => {
                out.extend_from_slice(b"PRIVMSG ");
                out.extend_from_slice(room.as_bytes());
                out.extend_from_slice(b" :");
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    /// A reply the server expects to `line` (IRC PING), if any.
    pub fn answer(self, line: &[u8]) -> Option<Vec<u8>> {
        match self {
            Protocol::Irc if line.starts_with(b"PING") => {
                let mut pong = b"PONG".to_vec();
                pong.extend_from_slice(&line[4..]);
                if !pong.ends_with(b"\n") {
                    pong.push(b'\n');
                }
                Some(pong)
            }
            // Engine.IO's ping; a client that does not answer is dropped.
            Protocol::SocketIo if line == b"2" => Some(b"3\n".to_vec()),
            _ => None,
        }
    }
}

async fn read_until(reader: &mut Reader, done: impl Fn(&str) -> bool) -> anyhow::Result<String> {
    loop {
        let Some(line) = reader.line().await? else {
            bail!("the server closed the connection while registering");
        };
        if done(&line) {
            return Ok(line);
        }
        if line.starts_with("ERROR") || line.starts_with(r#"{"type":"error""#) {
            bail!("the server refused the client: {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What each protocol sends for one message: a line, a JSON `say`, a Socket.IO event.
    #[test]
    fn a_message_in_each_protocol() {
        let wire = |protocol: Protocol| {
            let mut out = Vec::new();
            protocol.message("#bench", b"~b 1 2 3 4~xx", &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(wire(Protocol::CharlaTls), "~b 1 2 3 4~xx\n");
        assert_eq!(
            wire(Protocol::CharlaWs),
            "{\"type\":\"say\",\"room\":\"#bench\",\"text\":\"~b 1 2 3 4~xx\"}\n"
        );
        assert_eq!(wire(Protocol::SocketIo), "42[\"chat\",\"~b 1 2 3 4~xx\"]\n");
        assert_eq!(wire(Protocol::Irc), "PRIVMSG #bench :~b 1 2 3 4~xx\r\n");
    }

    /// Engine.IO's ping is answered with its pong, IRC's PING with PONG, nothing else.
    #[test]
    fn pings_are_answered_in_their_protocol() {
        assert_eq!(Protocol::SocketIo.answer(b"2"), Some(b"3\n".to_vec()));
        assert_eq!(Protocol::SocketIo.answer(b"42[\"chat\",\"2\"]"), None);
        assert_eq!(
            Protocol::Irc.answer(b"PING :x"),
            Some(b"PONG :x\n".to_vec())
        );
        assert_eq!(Protocol::CharlaWs.answer(b"2"), None);
    }
}
