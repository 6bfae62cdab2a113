//! How the load generator speaks to each kind of server under test.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How long registration (greeting, nick, join) may take per client.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(30);

/// The protocol of the server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// charla's text protocol: `/join #room`, then plain lines.
    Charla,
    /// Any server that relays each line to the other clients, whatever prefix it adds
    /// (`ncat --chat`). One room only.
    Lines,
    /// IRC: NICK/USER registration, JOIN, PRIVMSG (ngircd, InspIRCd).
    Irc,
}

/// A registered client's two halves.
pub struct Registered {
    pub reader: BufReader<OwnedReadHalf>,
    pub writer: OwnedWriteHalf,
}

impl Protocol {
    /// Connects client `id`, registers it and puts it in `room` (`#name`).
    pub async fn register(
        self,
        addr: std::net::SocketAddr,
        id: usize,
        room: &str,
    ) -> anyhow::Result<Registered> {
        tokio::time::timeout(REGISTER_TIMEOUT, self.register_inner(addr, id, room))
            .await
            .with_context(|| format!("client {id} took over {REGISTER_TIMEOUT:?} to register"))?
    }

    async fn register_inner(
        self,
        addr: std::net::SocketAddr,
        id: usize,
        room: &str,
    ) -> anyhow::Result<Registered> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (r, mut writer) = stream.into_split();
        // Only for the lines of registration; the receiver reads through `arrival` after.
        let mut reader = BufReader::new(r);
        let nick = format!("b{id}");
        match self {
            Protocol::Lines => {}
            Protocol::Charla => {
                read_until(&mut reader, |l| l.contains("you joined")).await?;
                let hello = format!("/nick {nick}\n/join {room}\n");
                writer.write_all(hello.as_bytes()).await?;
                let joined = format!("{room} *** you joined");
                read_until(&mut reader, |l| l.starts_with(&joined)).await?;
            }
            Protocol::Irc => {
                let hello = format!("NICK {nick}\r\nUSER {nick} 0 * :bench\r\n");
                writer.write_all(hello.as_bytes()).await?;
                loop {
                    let line = read_until(&mut reader, |_| true).await?;
                    if let Some(pong) = self.answer(line.as_bytes()) {
                        writer.write_all(&pong).await?;
                    }
                    if line.split(' ').nth(1) == Some("001") {
                        break;
                    }
                    if line.starts_with("ERROR") || line.split(' ').nth(1) == Some("433") {
                        bail!("{nick} was refused: {line}");
                    }
                }
                writer
                    .write_all(format!("JOIN {room}\r\n").as_bytes())
                    .await?;
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

    /// The bytes that send `text` to `room`.
    pub fn message(self, room: &str, text: &str, out: &mut Vec<u8>) {
        match self {
            Protocol::Charla | Protocol::Lines => {
                out.extend_from_slice(text.as_bytes());
                out.push(b'\n');
            }
            Protocol::Irc => {
                out.extend_from_slice(b"PRIVMSG ");
                out.extend_from_slice(room.as_bytes());
                out.extend_from_slice(b" :");
                out.extend_from_slice(text.as_bytes());
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
            _ => None,
        }
    }
}

async fn read_until(
    reader: &mut BufReader<OwnedReadHalf>,
    done: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            bail!("the server closed the connection while registering");
        }
        let trimmed = line.trim_end();
        if done(trimmed) {
            return Ok(trimmed.to_string());
        }
        if trimmed.starts_with("ERROR") {
            bail!("the server refused the client: {trimmed}");
        }
    }
}
