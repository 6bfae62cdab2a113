//! `charla bench`: a load generator for charla and the servers people would use instead.
//!
//! Scenarios: **fanout** (everyone in one room, some sending), **rooms** (clients spread
//! over many rooms), either with **room churners** beside it (clients of their own joining
//! and leaving many rooms as fast as default flood control allows), **idle** (connections doing nothing: memory per connection) and
//! **churn** (connect/disconnect cycles: speed and leaks); and the **floor**, no server at
//! all: how long this machine takes to write to every member of a room. Results go to stdout as a
//! Markdown table and, with `--json`, to a file that `charla bench report` merges with
//! other servers' runs into docs/benchmarks.md and an SVG chart.

mod adapter;
mod arrival;
mod churn;
mod floor;
mod idle;
mod link;
mod load;
mod payload;
mod probe;
mod report;
mod room_churn;
mod send;
mod tally;
mod ws_frames;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

pub use adapter::Protocol;
pub use report::Report;

use load::{Crowd, Shape};
use probe::Sampler;

/// Which measurement to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Fanout,
    Rooms,
    Idle,
    Churn,
    Floor,
}

/// A run against one server.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: Scenario,
    pub label: String,
    pub shape: Shape,
    pub server_pid: Option<i32>,
    /// Offered deliveries per second, one step each.
    pub rates: Vec<u64>,
    /// Keep raising the rate (×1.5) after the last one until a bound breaks.
    pub saturate: bool,
    pub p99_limit: Duration,
    pub churn_cycles: usize,
    /// The floor's writer runs on this CPU (the server's, in a side-by-side run).
    pub writer_cpu: Option<usize>,
    pub json: Option<PathBuf>,
}

pub use load::Shape as LoadShape;

/// Runs `plan` and returns its report (also written as JSON when asked).
pub async fn run(plan: Plan) -> anyhow::Result<Report> {
    let server = plan
        .server_pid
        .map(Sampler::pid)
        .transpose()
        .context("cannot watch the server process")?;
    let progress = load::progress_bar();
    let shape = plan.shape.clone();
    let mut report = Report {
        label: plan.label.clone(),
        scenario: format!("{:?}", plan.scenario).to_lowercase(),
        protocol: shape.protocol.name().to_string(),
        clients: shape.clients,
        rooms: shape.rooms,
        senders: shape.senders,
        size: shape.size,
        duration_s: shape.duration.as_secs_f64(),
        churners: shape.churners,
        steps: Vec::new(),
        max_sustained_deliveries_per_s: None,
        saturation_p99_limit_ms: plan.saturate.then_some(plan.p99_limit.as_millis() as u64),
        idle: None,
        churn: None,
        floor: None,
    };
    let loads = matches!(plan.scenario, Scenario::Fanout | Scenario::Rooms);
    if shape.churners > 0 && !(loads && shape.protocol == Protocol::Charla) {
        anyhow::bail!("room churners run beside fanout or rooms, against charla's protocol only");
    }
    room_churn::check(shape.churners, shape.churn_rooms)?;
    match plan.scenario {
        Scenario::Fanout | Scenario::Rooms => {
            let mut crowd = Crowd::gather(shape, &progress).await?;
            let mut rate = *plan.rates.first().context("no rate to offer")?;
            let mut index = 0;
            let mut retried = false;
            loop {
                // Each step, a retry included, has its own number: late arrivals from
                // the one before are not counted in it.
                let number = report.steps.len() as u32;
                let step = crowd.step(number, rate, server.as_ref(), &progress).await?;
                let held = step.lost == 0 && step.p99_ms <= plan.p99_limit.as_secs_f64() * 1000.0;
                progress.println(format!(
                    "{}: {rate} offered: p99 {:.2} ms, lost {}",
                    plan.label, step.p99_ms, step.lost
                ));
                report.steps.push(step);
                if held && plan.saturate {
                    report.max_sustained_deliveries_per_s =
                        report.max_sustained_deliveries_per_s.max(Some(rate));
                }
                // On a shared machine one stall of a few tens of milliseconds, someone
                // else's, ends a ladder early: a rate that failed is offered once more,
                // and held if either try held it (both are in the report).
                if plan.saturate && !held && !retried {
                    retried = true;
                    continue;
                }
                retried = false;
                index += 1;
                rate = match plan.rates.get(index) {
                    Some(&next) => next,
                    None if plan.saturate && held => rate * 3 / 2,
                    None => break,
                };
            }
            crowd.disperse().await;
        }
        Scenario::Idle => {
            let server = server
                .as_ref()
                .context("the idle scenario needs --server-pid to read the server's memory")?;
            report.idle = Some(idle::measure(shape, server, &progress).await?);
        }
        Scenario::Churn => {
            let churn = churn::measure(shape, plan.churn_cycles, server.as_ref(), &progress);
            report.churn = Some(churn.await?);
        }
        Scenario::Floor => {
            let floor = floor::measure(
                shape.clients,
                shape.size,
                shape.duration,
                plan.writer_cpu,
                &progress,
            );
            report.floor = Some(floor.await?);
        }
    }
    progress.finish_and_clear();
    if let Some(path) = &plan.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// Merges saved reports into Markdown (returned) and, when asked, an SVG chart.
pub fn merge(files: &[PathBuf], svg: Option<&std::path::Path>) -> anyhow::Result<String> {
    let mut reports = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        reports.push(
            serde_json::from_str::<Report>(&text)
                .with_context(|| format!("{} is not a bench report", file.display()))?,
        );
    }
    if let Some(svg) = svg {
        report::svg(&reports, svg)?;
    }
    Ok(report::markdown(&reports))
}

/// The Markdown table of one report.
pub fn markdown(report: &Report) -> String {
    report::markdown(std::slice::from_ref(report))
}
