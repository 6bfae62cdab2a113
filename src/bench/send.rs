//! The senders: one thread of their own keeping every sender's schedule.
//!
//! The receivers keep the generator's runtime busy at high rates: a sender woken by a
//! tokio timer waited behind hundreds of receiver tasks and its 1 ms tick, and sent
//! milliseconds late (p50 3.5 ms, p99 31 ms at 500k–2M deliveries/s). Each message carries
//! its intended time, so that lateness counted as server latency. Here the senders share
//! one plain thread that sleeps precisely until the next message is due; how late each
//! write still leaves is measured and reported (`send lag`), so a run says how far its
//! schedule can be trusted.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::runtime::Handle;

use super::adapter::Protocol;
use super::link::Writer;
use super::payload::Stamp;
use super::tally;

/// One client's share of the sending.
pub struct Sender {
    pub id: u32,
    pub writer: Arc<tokio::sync::Mutex<Writer>>,
    pub room: String,
    /// When its first message is due.
    pub first: Instant,
}

/// What every sender of a step has in common.
pub struct Schedule {
    pub protocol: Protocol,
    pub step: u32,
    /// Time zero of the stamps.
    pub epoch: Instant,
    /// Between two messages of one sender.
    pub interval: Duration,
    /// Nothing is due from here on.
    pub end: Instant,
    /// Bytes of message text.
    pub size: usize,
}

/// What a step's sending did.
pub struct Sent {
    /// Messages sent, by sender id.
    pub by: Vec<(u32, u64)>,
    /// How late each write left after its oldest message was due, in microseconds.
    pub lag: Histogram<u64>,
}

/// Sends every sender's messages on schedule until `schedule.end`, on a thread of its own;
/// a write the socket cannot take at once goes through `runtime`, which owns the sockets.
pub async fn run(runtime: Handle, senders: Vec<Sender>, schedule: Schedule) -> Sent {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-senders".into())
        .spawn(move || {
            let _ = done.send(send_all(&runtime, senders, &schedule));
        })
        .expect("a thread for the senders");
    result.await.expect("the sender thread finishes")
}

fn send_all(runtime: &Handle, senders: Vec<Sender>, schedule: &Schedule) -> Sent {
    let mut lag = tally::histogram();
    // Next sequence number per sender: how many it has sent.
    let mut next = vec![0u64; senders.len()];
    // In whole nanoseconds: this runs for every message, and a float multiplication and
    // its conversion back to a `Duration` each time were a visible share of the thread.
    let interval_ns = schedule.interval.as_nanos() as u64;
    let due = |i: usize, seq: u64| senders[i].first + Duration::from_nanos(interval_ns * seq);
    let mut queue: BinaryHeap<Reverse<(Instant, usize)>> = (0..senders.len())
        .map(|i| Reverse((due(i, 0), i)))
        .filter(|Reverse((at, _))| *at < schedule.end)
        .collect();
    let mut batch = Vec::new();
    let mut text = Vec::with_capacity(schedule.size);
    while let Some(Reverse((at, i))) = queue.pop() {
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // Everything due by now goes in one write, each with its own intended time.
        let now = Instant::now();
        let mut seq = next[i];
        let sender = &senders[i];
        batch.clear();
        loop {
            let due_at = due(i, seq);
            if due_at > now || due_at >= schedule.end {
                break;
            }
            let stamp = Stamp {
                step: schedule.step,
                sender: sender.id,
                seq,
                intended_us: due_at.duration_since(schedule.epoch).as_micros() as u64,
            };
            text.clear();
            stamp.write_text(schedule.size, &mut text);
            schedule.protocol.message(&sender.room, &text, &mut batch);
            seq += 1;
        }
        tally::record_delay(&mut lag, now.duration_since(at).as_micros() as u64);
        next[i] = seq;
        let written = write(runtime, sender, &batch);
        // Once the server has dropped this client (it could not keep up reading, say),
        // what it did not send is not offered; what it was owed counts as lost.
        let upcoming = due(i, seq);
        if written.is_ok() && upcoming < schedule.end {
            queue.push(Reverse((upcoming, i)));
        }
    }
    Sent {
        by: senders.iter().map(|s| s.id).zip(next).collect(),
        lag,
    }
}

/// Writes `batch` to `sender`'s socket: straight from this thread when the socket takes it
/// all at once, as it nearly always does; through the runtime, which waits for room, for
/// whatever is left. Entering the runtime for every write cost more than the write's own
/// system call outside the kernel.
fn write(runtime: &Handle, sender: &Sender, batch: &[u8]) -> std::io::Result<()> {
    let written = match sender.writer.try_lock() {
        Ok(mut writer) => writer.send_now(batch)?,
        // A receiver is answering a ping on it: wait for it below.
        Err(_) => 0,
    };
    if written == batch.len() {
        return Ok(());
    }
    runtime.block_on(async { sender.writer.lock().await.send(&batch[written..]).await })
}
