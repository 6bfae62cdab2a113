//! The floor: how fast a program that does nothing but write can get one message to every
//! member of a room, on this machine, in this run.
//!
//! A message to a room of N members is N socket writes on the server's core, and on
//! loopback each write also runs the receiving socket's TCP work and wakes its reader. No
//! server, however it is built, reaches its last member sooner than N such writes after
//! reading the message, so for one message the 99th percentile of its N deliveries is at
//! least 99 % of a round of N writes. The floor also reports the latency its writes would
//! give a message read just as each round began: the best case for a server busy writing,
//! whose new messages wait for the round in progress. Measured beside the servers, the round tells which
//! latency targets this machine allows at all; the machine is shared and noisy, so a floor
//! measured on another day says little.
//!
//! The writer is one plain thread writing the same bytes to every socket in turn, a whole
//! buffer per write, with nothing else to do; the readers are the generator's own receive
//! path (`arrival`), so they sleep and wake as the benchmark's clients do.

use std::io::Write;
use std::net::TcpStream as StdStream;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;
use nix::sched::{CpuSet, sched_setaffinity};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::Pid;
use tokio::net::{TcpListener, TcpStream};

use super::arrival;
use super::report::{Floor, FloorRow};
use super::tally;

/// Lines per write measured, a row each: one line is the quietest room (charla's rounds at
/// 20k deliveries/s to 1,000 clients carry one line a write), about 10 and 40 what its
/// rounds carry at 2M and 5M.
const LINES_PER_WRITE: [usize; 3] = [1, 10, 40];

/// Pause between two rows, for the readers to drain what the last one wrote.
const SETTLE: Duration = Duration::from_millis(300);

/// Measures a round of writes to `sockets` loopback connections, each row for `duration`,
/// lines of `size` bytes of text; the writer on CPU `writer_cpu` when given.
pub async fn measure(
    sockets: usize,
    size: usize,
    duration: Duration,
    writer_cpu: Option<usize>,
    progress: &ProgressBar,
) -> anyhow::Result<Floor> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut writers = Vec::with_capacity(sockets);
    let mut readers = Vec::with_capacity(sockets);
    progress.set_message(format!("connecting {sockets} socket pairs"));
    for _ in 0..sockets {
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (client, (server, _)) = (client?, accepted?);
        // As a chat server's sockets are: nothing held back to fill a segment.
        server.set_nodelay(true)?;
        let server = server.into_std()?;
        server.set_nonblocking(false)?;
        writers.push(server);
        // Should the kernel refuse stamps, the reads are the same.
        let _ = arrival::enable(&client);
        readers.push(tokio::spawn(read_all(client)));
    }

    let (done, result) = tokio::sync::oneshot::channel();
    let line = {
        let mut line = vec![b'x'; size];
        line.push(b'\n');
        line
    };
    let row_progress = progress.clone();
    std::thread::Builder::new()
        .name("bench-floor".into())
        .spawn(move || {
            let _ = done.send(write_rows(
                writers,
                &line,
                duration,
                writer_cpu,
                &row_progress,
            ));
        })
        .context("a thread for the floor's writer")?;
    let (rows, written) = result.await.context("the floor's writer stopped")??;
    // The writer has closed its sockets: every reader reaches the end of its stream.
    let mut read = 0;
    for reader in readers {
        read += reader.await??;
    }
    Ok(Floor {
        sockets,
        writer_cpu,
        rows,
        bytes_written: written,
        bytes_read: read,
    })
}

/// Reads one client's stream to its end; returns how many bytes came.
async fn read_all(client: TcpStream) -> std::io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = arrival::read(&client, |bytes, _| bytes.len()).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// The writer's thread: every row in turn, then the sockets closed. Returns the rows and
/// the bytes written in all.
fn write_rows(
    mut sockets: Vec<StdStream>,
    line: &[u8],
    duration: Duration,
    writer_cpu: Option<usize>,
    progress: &ProgressBar,
) -> anyhow::Result<(Vec<FloorRow>, u64)> {
    if let Some(cpu) = writer_cpu {
        let mut set = CpuSet::new();
        set.set(cpu)?;
        sched_setaffinity(Pid::from_raw(0), &set)
            .with_context(|| format!("cannot run the floor's writer on CPU {cpu}"))?;
    }
    let mut rows = Vec::new();
    let mut written = 0;
    for lines in LINES_PER_WRITE {
        progress.set_message(format!("floor: {lines} lines a write"));
        let row = write_row(&mut sockets, &line.repeat(lines), lines, duration)?;
        written += row.bytes_written;
        rows.push(row);
        std::thread::sleep(SETTLE);
    }
    Ok((rows, written))
}

/// Writes `buf` to every socket in turn, round after round, for `duration`.
fn write_row(
    sockets: &mut [StdStream],
    buf: &[u8],
    lines: usize,
    duration: Duration,
) -> anyhow::Result<FloorRow> {
    let mut rounds = tally::histogram();
    let mut deliveries = tally::histogram();
    let cpu_before = thread_cpu()?;
    let start = Instant::now();
    let mut writes = 0u64;
    while start.elapsed() < duration {
        let round = Instant::now();
        for socket in sockets.iter_mut() {
            socket.write_all(buf)?;
            tally::record_delay(&mut deliveries, round.elapsed().as_micros() as u64);
        }
        writes += sockets.len() as u64;
        tally::record_delay(&mut rounds, round.elapsed().as_micros() as u64);
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu = (thread_cpu()? - cpu_before).as_secs_f64();
    let per_write_us = |s: f64| s * 1e6 / writes.max(1) as f64;
    Ok(FloorRow {
        lines_per_write: lines,
        writes,
        writes_per_s: writes as f64 / seconds,
        us_per_write: per_write_us(seconds),
        cpu_us_per_write: per_write_us(cpu),
        round_p50_ms: rounds.value_at_quantile(0.5) as f64 / 1000.0,
        round_p99_ms: rounds.value_at_quantile(0.99) as f64 / 1000.0,
        delivery_p50_ms: deliveries.value_at_quantile(0.5) as f64 / 1000.0,
        delivery_p99_ms: deliveries.value_at_quantile(0.99) as f64 / 1000.0,
        bytes_written: writes * buf.len() as u64,
    })
}

/// CPU time this thread has used: on loopback it includes the receiving side's kernel work
/// done inside the writes.
fn thread_cpu() -> anyhow::Result<Duration> {
    Ok(Duration::from(clock_gettime(
        ClockId::CLOCK_THREAD_CPUTIME_ID,
    )?))
}
