//! CPU, memory and file descriptors of a process, read from /proc.

use std::time::Instant;

use procfs::process::Process;

/// A reading of one process at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    at: Instant,
    /// User + system CPU time, in clock ticks.
    cpu_ticks: u64,
    pub rss_bytes: u64,
    pub fds: usize,
    /// Write-type system calls so far (`syscw` in /proc/PID/io): with the deliveries, tells
    /// how many messages each write carried.
    pub write_calls: Option<u64>,
}

/// Watches a process: the server under test (by pid) or the generator itself.
pub struct Sampler {
    process: Process,
}

impl Sampler {
    pub fn pid(pid: i32) -> anyhow::Result<Sampler> {
        Ok(Sampler {
            process: Process::new(pid)?,
        })
    }

    pub fn myself() -> anyhow::Result<Sampler> {
        Ok(Sampler {
            process: Process::myself()?,
        })
    }

    pub fn sample(&self) -> anyhow::Result<Sample> {
        let stat = self.process.stat()?;
        let page = procfs::page_size();
        Ok(Sample {
            at: Instant::now(),
            cpu_ticks: stat.utime + stat.stime,
            rss_bytes: stat.rss * page,
            fds: self.process.fd_count()?,
            write_calls: self.process.io().ok().map(|io| io.syscw),
        })
    }
}

impl Sample {
    /// Write system calls between two samples, when /proc shows them.
    pub fn writes_since(&self, earlier: &Sample) -> Option<u64> {
        Some(self.write_calls?.saturating_sub(earlier.write_calls?))
    }

    /// CPU used between two samples, in percent of one core.
    pub fn cpu_percent_since(&self, earlier: &Sample) -> f64 {
        let seconds = self.at.duration_since(earlier.at).as_secs_f64();
        let ticks = self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64;
        if seconds == 0.0 {
            return 0.0;
        }
        100.0 * ticks / procfs::ticks_per_second() as f64 / seconds
    }
}
