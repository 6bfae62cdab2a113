//! The fan-out and rooms scenarios: clients in rooms, some of them sending at a fixed
//! aggregate rate, open loop, every message stamped with the time it was meant to leave.
//!
//! Open loop means a sender never waits for the server: if it falls behind schedule it
//! sends what is due at once, and each message still carries its *intended* time, so a
//! stalled server shows up as latency rather than as a politely lowered rate
//! (no coordinated omission).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::adapter::{Protocol, Registered};
use super::arrival;
use super::link::{Dialer, Reader, Writer};
use super::payload::Stamp;
use super::probe::Sampler;
use super::report::StepReport;
use super::tally::{Latencies, Tally};
use super::ws_frames::Unframed;
use super::{room_churn, send};

/// Clients registering at once; more would overflow listen backlogs of the peers.
const REGISTER_CONCURRENCY: usize = 64;

/// After the senders stop, how long deliveries may keep arriving before the rest count as
/// lost.
const DRAIN_MAX: Duration = Duration::from_secs(10);

/// Bytes a TLS receiver decrypts into at a time (the size of a TLS record's plaintext).
const TLS_READ_BYTES: usize = 16 * 1024;

/// Deliveries stop counting as in flight once no new one arrived for this long.
const DRAIN_QUIET: Duration = Duration::from_millis(500);

/// The shape of a load run.
#[derive(Debug, Clone)]
pub struct Shape {
    pub protocol: Protocol,
    pub addr: SocketAddr,
    /// Other nodes of the same cluster: clients are spread over `addr` and these in turn.
    pub also: Vec<SocketAddr>,
    /// The certificate a TLS server is verified against (the system's roots without it).
    pub ca: Option<PathBuf>,
    pub clients: usize,
    pub rooms: usize,
    pub senders: usize,
    /// Bytes of message text.
    pub size: usize,
    pub duration: Duration,
    /// Room churners run beside each step's senders (see `room_churn`); 0 for none.
    pub churners: usize,
    /// Rooms each churner joins, then leaves, in a cycle.
    pub churn_rooms: usize,
}

struct BenchClient {
    room: usize,
    tally: Arc<Mutex<Tally>>,
    writer: Arc<tokio::sync::Mutex<Writer>>,
}

/// Connected, registered clients with their receivers running.
pub struct Crowd {
    shape: Shape,
    clients: Vec<BenchClient>,
    /// Every receiver's latencies of the current step.
    latencies: Arc<Mutex<Latencies>>,
    step: Arc<AtomicU32>,
    epoch: Instant,
    receivers: JoinSet<()>,
    /// Clients the server has hung up on so far.
    disconnected: usize,
}

impl Shape {
    /// How its clients connect.
    pub fn dialer(&self) -> anyhow::Result<Dialer> {
        Dialer::new(self.protocol, self.addr, self.ca.as_deref())
    }
}

pub fn room_name(shape: &Shape, room: usize) -> String {
    if shape.rooms <= 1 {
        "#bench".to_string()
    } else {
        format!("#bench{room}")
    }
}

impl Crowd {
    /// Connects and registers every client, `REGISTER_CONCURRENCY` at a time.
    pub async fn gather(shape: Shape, progress: &ProgressBar) -> anyhow::Result<Crowd> {
        let gate = Arc::new(Semaphore::new(REGISTER_CONCURRENCY));
        let dialer = shape.dialer()?;
        let mut joins = JoinSet::new();
        for id in 0..shape.clients {
            let gate = gate.clone();
            let room = id % shape.rooms.max(1);
            let name = room_name(&shape, room);
            let mut dialer = dialer.clone();
            if let Some(n) = (id % (shape.also.len() + 1)).checked_sub(1) {
                dialer.addr = shape.also[n];
            }
            joins.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let registered = dialer.register(id, &name).await;
                (id, room, registered)
            });
        }
        let mut slots: Vec<Option<(usize, Registered)>> =
            (0..shape.clients).map(|_| None).collect();
        progress.set_length(shape.clients as u64);
        progress.set_message("registering clients");
        while let Some(joined) = joins.join_next().await {
            let (id, room, registered) = joined?;
            slots[id] = Some((room, registered?));
            progress.inc(1);
        }
        let step = Arc::new(AtomicU32::new(u32::MAX));
        let latencies = Arc::new(Mutex::new(Latencies::new()));
        let epoch = Instant::now();
        let mut receivers = JoinSet::new();
        let mut clients = Vec::with_capacity(shape.clients);
        for slot in slots {
            let (room, Registered { reader, writer }) = slot.expect("every client joined");
            let tally = Arc::new(Mutex::new(Tally::default()));
            let writer = Arc::new(tokio::sync::Mutex::new(writer));
            let record = Recording {
                tally: tally.clone(),
                latencies: latencies.clone(),
                step: step.clone(),
                epoch,
            };
            receivers.spawn(receive(reader, record, writer.clone(), shape.protocol));
            clients.push(BenchClient {
                room,
                tally,
                writer,
            });
        }
        Ok(Crowd {
            shape,
            clients,
            latencies,
            step,
            epoch,
            receivers,
            disconnected: 0,
        })
    }

    /// Runs one step at `deliveries_per_s` offered.
    pub async fn step(
        &mut self,
        number: u32,
        deliveries_per_s: u64,
        server: Option<&Sampler>,
        progress: &ProgressBar,
    ) -> anyhow::Result<StepReport> {
        let shape = self.shape.clone();
        let members = self.members_per_room();
        let senders: Vec<usize> = (0..shape.senders.min(shape.clients)).collect();
        // Each message reaches its room but the sender.
        let fanout: f64 = senders
            .iter()
            .map(|&s| (members[self.clients[s].room] - 1) as f64)
            .sum::<f64>()
            / senders.len() as f64;
        let messages_per_s = deliveries_per_s as f64 / fanout.max(1.0);
        let interval = Duration::from_secs_f64(senders.len() as f64 / messages_per_s);

        for c in &self.clients {
            *c.tally.lock().expect("tally lock") = Tally::default();
        }
        self.latencies.lock().expect("latencies lock").reset();
        self.step.store(number, Ordering::Relaxed);
        let me = Sampler::myself()?;
        let (server_before, me_before) = (server.map(Sampler::sample).transpose()?, me.sample()?);

        progress.reset();
        progress.set_length(shape.duration.as_millis() as u64);
        progress.set_message(format!("{deliveries_per_s} deliveries/s offered"));
        let start = Instant::now() + Duration::from_millis(50);
        let end = start + shape.duration;
        let plans = senders
            .iter()
            .enumerate()
            .map(|(i, &s)| send::Sender {
                id: s as u32,
                writer: self.clients[s].writer.clone(),
                room: room_name(&shape, self.clients[s].room),
                // Spread evenly over one interval so the load is smooth.
                first: (start + interval.mul_f64(i as f64 / senders.len() as f64)).into_std(),
            })
            .collect();
        let schedule = send::Schedule {
            protocol: shape.protocol,
            step: number,
            epoch: self.epoch.into_std(),
            interval,
            end: end.into_std(),
            size: shape.size,
        };
        // The churners run while the senders do, so what they did is what the step's
        // latencies were measured beside.
        let churners = (shape.churners > 0)
            .then(|| room_churn::start(shape.addr, shape.churners, shape.churn_rooms))
            .transpose()?;
        let sending = send::run(tokio::runtime::Handle::current(), plans, schedule);
        let ticker = {
            let progress = progress.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    progress.set_position(start.elapsed().as_millis() as u64);
                }
            })
        };
        let sent = sending.await;
        let room_churn = match churners {
            Some(churners) => Some(churners.stop().await),
            None => None,
        };
        let mut sent_by = vec![0u64; self.clients.len()];
        for &(sender, count) in &sent.by {
            sent_by[sender as usize] = count;
        }
        ticker.abort();
        let sent_at = Instant::now();
        let expected: u64 = senders
            .iter()
            .map(|&s| sent_by[s] * (members[self.clients[s].room] as u64 - 1))
            .sum();
        progress.set_message("draining");
        let mut last = (self.unique(), Instant::now());
        while last.0 < expected && sent_at.elapsed() < DRAIN_MAX {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.unique();
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() >= DRAIN_QUIET {
                break;
            }
        }
        let mut total = Tally::default();
        for c in &self.clients {
            total.merge(&c.tally.lock().expect("tally lock"));
        }
        let (latency_us, socket_us) = {
            let latencies = self.latencies.lock().expect("latencies lock");
            (latencies.read.clone(), latencies.socket.clone())
        };
        while self.receivers.try_join_next().is_some() {
            self.disconnected += 1;
        }
        let server_after = server.map(Sampler::sample).transpose()?;
        let me_after = me.sample()?;
        let seconds = shape.duration.as_secs_f64();
        let quantile_ms = |q: f64| latency_us.value_at_quantile(q) as f64 / 1000.0;
        // Absent when the kernel stamped nothing (or nothing arrived).
        let socket_ms = |q: f64| {
            (!socket_us.is_empty()).then(|| socket_us.value_at_quantile(q) as f64 / 1000.0)
        };
        Ok(StepReport {
            offered_deliveries_per_s: deliveries_per_s,
            messages_sent: sent_by.iter().sum(),
            expected_deliveries: expected,
            delivered: total.unique,
            delivered_per_s: total.unique as f64 / seconds,
            lost: expected.saturating_sub(total.unique),
            duplicates: total.duplicates,
            reordered: total.reordered,
            p50_ms: quantile_ms(0.5),
            p90_ms: quantile_ms(0.9),
            p99_ms: quantile_ms(0.99),
            p999_ms: quantile_ms(0.999),
            max_ms: latency_us.max() as f64 / 1000.0,
            socket_p50_ms: socket_ms(0.5),
            socket_p99_ms: socket_ms(0.99),
            send_lag_p50_ms: Some(sent.lag.value_at_quantile(0.5) as f64 / 1000.0),
            send_lag_p99_ms: Some(sent.lag.value_at_quantile(0.99) as f64 / 1000.0),
            server_cpu_percent: server_before
                .zip(server_after)
                .map(|(b, a)| a.cpu_percent_since(&b)),
            server_rss_bytes: server_after.map(|s| s.rss_bytes),
            deliveries_per_server_write: server_before
                .zip(server_after)
                .and_then(|(b, a)| a.writes_since(&b))
                .filter(|&w| w > 0)
                .map(|w| total.unique as f64 / w as f64),
            generator_cpu_percent: me_after.cpu_percent_since(&me_before),
            clients_disconnected: self.disconnected,
            room_churn,
        })
    }

    fn members_per_room(&self) -> Vec<usize> {
        let mut members = vec![0; self.shape.rooms.max(1)];
        for c in &self.clients {
            members[c.room] += 1;
        }
        members
    }

    fn unique(&self) -> u64 {
        self.clients
            .iter()
            .map(|c| c.tally.lock().expect("tally lock").unique)
            .sum()
    }

    /// Disconnects everyone.
    pub async fn disperse(mut self) {
        self.receivers.abort_all();
        while self.receivers.join_next().await.is_some() {}
    }
}

/// Where a receiver records what it sees.
struct Recording {
    tally: Arc<Mutex<Tally>>,
    latencies: Arc<Mutex<Latencies>>,
    /// Stamps of other steps (late arrivals) are not counted.
    step: Arc<AtomicU32>,
    epoch: Instant,
}

/// Reads everything a client receives, recording stamped messages of the current step.
/// Works a read at a time, not a line at a time (one clock reading and one lock per read),
/// so the generator's own cost per delivery stays small next to the server's.
async fn receive(
    reader: Reader,
    record: Recording,
    writer: Arc<tokio::sync::Mutex<Writer>>,
    protocol: Protocol,
) {
    // The start of a line whose end has not arrived yet.
    let mut carry: Vec<u8> = Vec::new();
    let mut replies: Vec<Vec<u8>> = Vec::new();
    let mut scan = |bytes: &[u8], arrived, replies: &mut Vec<Vec<u8>>| {
        scan(bytes, arrived, &mut carry, &record, protocol, replies)
    };
    match reader {
        Reader::Tcp(reader) => {
            // Registration may have read ahead; that much came before any step.
            scan(reader.buffer(), None, &mut replies);
            let reader = reader.into_inner();
            let stream = reader.as_ref();
            // Should the kernel refuse, only the read latency is measured.
            let _ = arrival::enable(stream);
            loop {
                let read = arrival::read(stream, |bytes, arrived| {
                    scan(bytes, arrived, &mut replies);
                    !bytes.is_empty()
                });
                if !matches!(read.await, Ok(true)) {
                    return;
                }
                answer(&writer, &mut replies).await;
            }
        }
        Reader::Tls(mut reader) => {
            let mut buf = vec![0; TLS_READ_BYTES];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => scan(&buf[..n], None, &mut replies),
                }
                answer(&writer, &mut replies).await;
            }
        }
        Reader::Ws(reader, mut unframer) => {
            // As plain TCP, arrival stamps included: the frames' bytes are not encrypted,
            // so a segment's stamp is when the lines it ends became readable.
            let mut out = Unframed::default();
            let mut unframe = |bytes: &[u8], out: &mut Unframed| {
                let whole = unframer.push(bytes, out).is_ok();
                whole && !out.closed
            };
            let mut open = unframe(reader.buffer(), &mut out);
            scan(&out.lines, None, &mut replies);
            let reader = reader.into_inner();
            let stream = reader.as_ref();
            let _ = arrival::enable(stream);
            while open {
                for ping in out.pings.drain(..) {
                    let _ = writer.lock().await.pong(&ping).await;
                }
                answer(&writer, &mut replies).await;
                out.lines.clear();
                let read = arrival::read(stream, |bytes, arrived| {
                    let more = !bytes.is_empty() && unframe(bytes, &mut out);
                    scan(&out.lines, arrived, &mut replies);
                    more
                });
                open = matches!(read.await, Ok(true));
            }
        }
    }
}

/// Sends the replies a receiver's lines called for (IRC's PONG, Engine.IO's pong).
async fn answer(writer: &tokio::sync::Mutex<Writer>, replies: &mut Vec<Vec<u8>>) {
    for reply in replies.drain(..) {
        let _ = writer.lock().await.send(&reply).await;
    }
}

/// Records every complete line of `chunk`; keeps an unfinished tail in `carry`.
fn scan(
    chunk: &[u8],
    arrived: Option<SystemTime>,
    carry: &mut Vec<u8>,
    record: &Recording,
    protocol: Protocol,
    replies: &mut Vec<Vec<u8>>,
) {
    let now = record.epoch.elapsed().as_micros() as u64;
    // The kernel stamps in wall-clock time, which may be slewed or stepped during a run
    // (a VM's wall clock was seen to drift against the monotonic one); so only a stamp's
    // age, a few milliseconds of wall clock, is trusted, and taken from the monotonic `now`.
    let wall_now = SystemTime::now();
    let arrived = arrived.map(|at| {
        let age = wall_now.duration_since(at).unwrap_or_default();
        now.saturating_sub(age.as_micros() as u64)
    });
    let current = record.step.load(Ordering::Relaxed);
    let mut tally = record.tally.lock().expect("tally lock");
    let mut latencies = record.latencies.lock().expect("latencies lock");
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', chunk) {
        let line = if carry.is_empty() {
            &chunk[start..end]
        } else {
            carry.extend_from_slice(&chunk[start..end]);
            &carry[..]
        };
        match Stamp::find(line) {
            Some(stamp) if stamp.step == current => {
                tally.record(&stamp);
                latencies.record(&stamp, now, arrived);
            }
            Some(_) => {}
            None => replies.extend(protocol.answer(line)),
        }
        carry.clear();
        start = end + 1;
    }
    carry.extend_from_slice(&chunk[start..]);
}

/// A progress bar for long runs (hidden when stderr is not a terminal).
pub fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:40} [{bar:30}] {pos}/{len}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}
