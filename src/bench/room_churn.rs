//! Room churners: clients beside a fan-out or rooms run that join and leave many rooms as
//! fast as charla's default flood control lets one connection, so a run with them and one
//! without show what their joins and leaves cost everyone else's latency.
//!
//! Churners are on connections of their own and in rooms of their own: nothing they do is
//! in the measured clients' counts. They start when a step's senders start and stop when
//! they stop, so what a step reports they did happened while its latencies were measured.
//!
//! Two forms, alternating (churner 0, 2, 4… the first, 1, 3, 5… the second):
//! - **JSON**: `hello` lines naming the K rooms ([`HELLO_ROOMS`] a line), then a `leave`
//!   line for each room; again and again.
//! - **text**: `/join #room` for each of the K rooms, then `/leave #room` for each.
//!
//! They pace themselves: a token bucket of the server's default burst and rate
//! ([`FLOOD_BURST`], [`FLOOD_RATE`]), one token a line and one for each room a hello joins,
//! as the server's flood control counts them. So the server can run with flood control
//! off, as the measured senders need, and still see no more from a churner than its
//! defaults would let through. What the server refuses anyway (a room past
//! `--max-rooms-per-client`, say) is counted by error code, and a churner that is
//! disconnected comes back after [`RECONNECT_DELAY`].

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::bail;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::report::RoomChurn;
use crate::limits::{FLOOD_BURST, FLOOD_RATE, MAX_LINE_BYTES, MAX_ROOM_CHARS};

/// Lines of the server's burst a churner leaves unspent. Its lines reach the server a
/// little earlier or later than it sent them; one spare line means that jitter never makes
/// a server with default flood control refuse one.
const BURST_SLACK: u32 = 1;

/// Rooms a JSON churner names in one `hello`: as many as the burst its pace keeps, since
/// the server counts each room a hello joins as a line. More rooms a cycle take more
/// hellos; with names up to `#ch99-99999` a hello stays within the server's default line
/// bound ([`MAX_LINE_BYTES`]).
const HELLO_ROOMS: usize = (FLOOD_BURST - BURST_SLACK) as usize;

/// One line of a churner's cycle, and how many lines of flood allowance it costs.
struct ChurnLine {
    bytes: Vec<u8>,
    cost: u32,
}

/// How long a churner the server hung up on (or refused) waits before connecting again:
/// soon enough to keep churning through a step, slow enough not to hammer the listener.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// How long a churner waits to write a line once it is due; a server that stopped reading
/// its socket for that long counts as gone, and the churner reconnects.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The rooms of churner `id`: its own, so no churner's joins are announced to another
/// or to a measured client.
fn room_names(id: usize, rooms: usize) -> Vec<String> {
    room_range(id, 0..rooms)
}

fn room_range(id: usize, rooms: std::ops::Range<usize>) -> Vec<String> {
    rooms.map(|j| format!("#ch{id}-{j}")).collect()
}

/// Whose join and leave confirmations count: a churner's own rooms, not `#lobby`.
fn churn_room(room: &str) -> bool {
    room.starts_with("#ch")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Json,
    Text,
}

impl Form {
    fn of(id: usize) -> Form {
        if id % 2 == 0 { Form::Json } else { Form::Text }
    }

    /// One cycle's lines: join every room, then leave every room.
    fn cycle(self, rooms: &[String]) -> Vec<ChurnLine> {
        let line = |s: String| ChurnLine {
            bytes: (s + "\n").into_bytes(),
            cost: 1,
        };
        let mut lines = Vec::with_capacity(2 * rooms.len());
        match self {
            Form::Json => {
                lines.extend(rooms.chunks(HELLO_ROOMS).map(|some| ChurnLine {
                    cost: some.len() as u32,
                    ..line(serde_json::json!({ "type": "hello", "rooms": some }).to_string())
                }));
                lines.extend(rooms.iter().map(|room| {
                    line(serde_json::json!({ "type": "leave", "room": room }).to_string())
                }));
            }
            Form::Text => {
                lines.extend(rooms.iter().map(|room| line(format!("/join {room}"))));
                lines.extend(rooms.iter().map(|room| line(format!("/leave {room}"))));
            }
        }
        lines
    }
}

/// Churners at work; [`Running::stop`] ends them and adds up what they did.
pub struct Running {
    stop: CancellationToken,
    tasks: JoinSet<RoomChurn>,
    churners: usize,
    rooms: usize,
}

/// Starts `churners` churners against `addr`, each cycling through `rooms` rooms.
pub fn start(addr: SocketAddr, churners: usize, rooms: usize) -> anyhow::Result<Running> {
    check(churners, rooms)?;
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    for id in 0..churners {
        tasks.spawn(churn(addr, id, rooms, stop.clone()));
    }
    Ok(Running {
        stop,
        tasks,
        churners,
        rooms,
    })
}

/// Refuses a shape whose lines the server would refuse for their size, not their pace.
pub fn check(churners: usize, rooms: usize) -> anyhow::Result<()> {
    let Some(last) = churners.checked_sub(1) else {
        return Ok(());
    };
    if rooms == 0 {
        bail!("--churn-rooms must be at least 1");
    }
    // The longest names are the last churner's last ones.
    let longest = room_range(last, rooms.saturating_sub(HELLO_ROOMS)..rooms);
    if longest.iter().any(|n| n.chars().count() > MAX_ROOM_CHARS) {
        bail!("too many churners or --churn-rooms: room names pass {MAX_ROOM_CHARS} characters");
    }
    let hello = &Form::Json.cycle(&longest)[0].bytes;
    if hello.len() > MAX_LINE_BYTES {
        bail!(
            "--churn-rooms {rooms} makes a hello of {} bytes, over the server's default line \
             bound of {MAX_LINE_BYTES}",
            hello.len()
        );
    }
    Ok(())
}

impl Running {
    /// Stops every churner and returns what they did since they started.
    pub async fn stop(mut self) -> RoomChurn {
        self.stop.cancel();
        let mut total = RoomChurn {
            churners: self.churners,
            rooms_per_cycle: self.rooms,
            ..RoomChurn::default()
        };
        while let Some(done) = self.tasks.join_next().await {
            // A churner that panicked did nothing we can count.
            if let Ok(one) = done {
                total.add(&one);
            }
        }
        total
    }
}

/// One churner: connects, churns until the server hangs up, waits, connects again; until
/// `stop`.
async fn churn(addr: SocketAddr, id: usize, rooms: usize, stop: CancellationToken) -> RoomChurn {
    let cycle = Form::of(id).cycle(&room_names(id, rooms));
    let mut counts = RoomChurn::default();
    loop {
        let Some(reason) = connection(addr, &cycle, &mut counts, &stop).await else {
            return counts;
        };
        *counts.disconnects.entry(reason).or_default() += 1;
        tokio::select! {
            _ = stop.cancelled() => return counts,
            _ = tokio::time::sleep(RECONNECT_DELAY) => {}
        }
    }
}

/// One connection's churning. `None` when stopped, otherwise why the connection ended.
async fn connection(
    addr: SocketAddr,
    cycle: &[ChurnLine],
    counts: &mut RoomChurn,
    stop: &CancellationToken,
) -> Option<String> {
    let stream = tokio::select! {
        _ = stop.cancelled() => return None,
        stream = TcpStream::connect(addr) => stream,
    };
    let stream = match stream {
        Ok(stream) => stream,
        Err(e) => return Some(format!("connect_failed: {}", e.kind())),
    };
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut pace = Pace::new();
    let mut line = Vec::new();
    let mut goodbye = None;
    for next in cycle.iter().cycle() {
        // Read what comes in until the next line may go.
        loop {
            tokio::select! {
                _ = stop.cancelled() => return None,
                read = reader.read_until(b'\n', &mut line) => {
                    // A cancelled read keeps what it read in `line`; clear only whole lines.
                    if !matches!(read, Ok(n) if n > 0) {
                        return Some(goodbye.unwrap_or_else(|| "connection_lost".into()));
                    }
                    tally(&line, counts, &mut goodbye);
                    line.clear();
                }
                () = pace.ready(next.cost) => break,
            }
        }
        let write = tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&next.bytes));
        tokio::select! {
            _ = stop.cancelled() => return None,
            written = write => match written {
                Ok(Ok(())) => counts.lines_sent += 1,
                Ok(Err(_)) => return Some("connection_lost".into()),
                Err(_) => return Some("write_timed_out".into()),
            },
        }
    }
    unreachable!("a cycle of lines never ends")
}

/// Counts one line from the server: a join or leave of a churn room confirmed, a refusal
/// (by error code), or the reason it is about to hang up.
fn tally(line: &[u8], counts: &mut RoomChurn, goodbye: &mut Option<String>) {
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end();
    if line.starts_with('{') {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            return;
        };
        let mine = event["you"] == true && event["room"].as_str().is_some_and(churn_room);
        match event["type"].as_str() {
            Some("join") if mine => counts.joins += 1,
            Some("leave") if mine => counts.leaves += 1,
            Some("error") => {
                let code = event["code"].as_str().unwrap_or("unknown");
                *counts.refused.entry(code.to_string()).or_default() += 1;
            }
            Some("bye") => *goodbye = event["reason"].as_str().map(str::to_string),
            _ => {}
        }
    } else if let Some(error) = line.strip_prefix("ERROR ") {
        let code = error.split(':').next().unwrap_or("unknown");
        *counts.refused.entry(code.to_string()).or_default() += 1;
    } else if let Some(reason) = line.strip_prefix("*** goodbye (") {
        *goodbye = Some(reason.trim_end_matches(')').replace(' ', "_"));
    } else if let Some((room, said)) = line.split_once(' ')
        && churn_room(room)
    {
        if said.starts_with("*** you joined") {
            counts.joins += 1;
        } else if said == "*** you left" {
            counts.leaves += 1;
        }
    }
}

/// The server's default flood allowance, kept by the churner itself: a line may go when a
/// token is there; tokens refill at [`FLOOD_RATE`] a second up to the burst.
struct Pace {
    tokens: f64,
    last: Instant,
}

impl Pace {
    fn burst() -> f64 {
        f64::from(FLOOD_BURST.saturating_sub(BURST_SLACK).max(1))
    }

    /// A fresh connection: the server gives it a whole burst.
    fn new() -> Pace {
        Pace {
            tokens: Pace::burst(),
            last: Instant::now(),
        }
    }

    /// Waits for `cost` tokens (at most the burst) and spends them. Cancelled before it
    /// returns, it spends nothing.
    async fn ready(&mut self, cost: u32) {
        let cost = f64::from(cost).min(Pace::burst());
        let now = Instant::now();
        let refilled = now.duration_since(self.last).as_secs_f64() * f64::from(FLOOD_RATE);
        self.tokens = (self.tokens + refilled).min(Pace::burst());
        self.last = now;
        if self.tokens < cost {
            let wait = (cost - self.tokens) / f64::from(FLOOD_RATE);
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            self.tokens = cost;
            self.last = Instant::now();
        }
        self.tokens -= cost;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_in_both_forms_are_counted() {
        let mut counts = RoomChurn::default();
        let mut goodbye = None;
        for line in [
            "*** Welcome to charla, guest-1! Type /help for commands.",
            "#lobby *** you joined; here now: you",
            "#ch1-0 *** you joined; here now: you",
            "#ch1-0 *** you left",
            "ERROR flood: too fast",
            r##"{"type":"join","room":"#ch0-3","nick":"g","you":true,"members":["g"],"count":1}"##,
            r##"{"type":"leave","room":"#ch0-3","nick":"g","you":true,"reason":"left"}"##,
            r##"{"type":"error","code":"too_many_rooms","message":"no"}"##,
            r##"{"type":"welcome","nick":"g","rooms":["#lobby"]}"##,
        ] {
            tally(line.as_bytes(), &mut counts, &mut goodbye);
        }
        assert_eq!((counts.joins, counts.leaves), (2, 2));
        assert_eq!(counts.refused["flood"], 1);
        assert_eq!(counts.refused["too_many_rooms"], 1);
        assert_eq!(goodbye, None);
        tally(
            b"*** goodbye (send queue exceeded)\n",
            &mut counts,
            &mut goodbye,
        );
        assert_eq!(goodbye.as_deref(), Some("send_queue_exceeded"));
        tally(
            br#"{"type":"bye","reason":"flooding"}"#,
            &mut counts,
            &mut goodbye,
        );
        assert_eq!(goodbye.as_deref(), Some("flooding"));
    }

    #[test]
    fn a_json_cycle_joins_in_one_line_and_leaves_in_one_each() {
        let rooms = room_names(0, 3);
        let lines = Form::Json.cycle(&rooms);
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[0].bytes,
            b"{\"type\":\"hello\",\"rooms\":[\"#ch0-0\",\"#ch0-1\",\"#ch0-2\"]}\n"
        );
        assert_eq!(lines[0].cost, 3, "each room a hello joins counts");
        assert_eq!(lines[1].cost, 1);
        assert_eq!(Form::Text.cycle(&rooms)[3].bytes, b"/leave #ch0-0\n");
    }

    #[test]
    fn many_rooms_take_several_hellos_each_within_a_line() {
        let lines = Form::Json.cycle(&room_names(7, 500));
        let hellos = 500usize.div_ceil(HELLO_ROOMS);
        assert_eq!(lines.len(), hellos + 500);
        let third = format!(r##"{{"type":"hello","rooms":["#ch7-{}","##, 2 * HELLO_ROOMS);
        assert!(lines[2].bytes.starts_with(third.as_bytes()));
        assert!(check(99, 99_999).is_ok());
        assert!(check(10usize.pow(15), 10usize.pow(15)).is_err());
        assert!(check(0, 0).is_ok());
        assert!(check(1, 0).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn pace_is_a_burst_then_the_default_rate() {
        let mut pace = Pace::new();
        let start = Instant::now();
        for _ in 0..FLOOD_BURST - BURST_SLACK {
            pace.ready(1).await;
        }
        assert_eq!(Instant::now(), start);
        pace.ready(FLOOD_RATE).await;
        let second = Instant::now().duration_since(start);
        assert!(
            second.abs_diff(Duration::from_secs(1)) < Duration::from_millis(5),
            "{second:?}"
        );
    }
}
