//! Results: JSON for machines, Markdown tables and an SVG chart for people.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One measured rate of a fan-out or rooms run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    pub offered_deliveries_per_s: u64,
    pub messages_sent: u64,
    pub expected_deliveries: u64,
    pub delivered: u64,
    pub delivered_per_s: f64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Latency up to the moment each line reached the client's socket (the kernel's
    /// receive stamp), not counting how late the generator read it; absent when the
    /// kernel gave no stamps.
    #[serde(default)]
    pub socket_p50_ms: Option<f64>,
    #[serde(default)]
    pub socket_p99_ms: Option<f64>,
    /// How late the generator's writes left after their messages were due: what of the
    /// latency is the generator's own (absent in results from before it was measured).
    #[serde(default)]
    pub send_lag_p50_ms: Option<f64>,
    #[serde(default)]
    pub send_lag_p99_ms: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    pub server_rss_bytes: Option<u64>,
    /// Deliveries per write system call of the server: how well it batches.
    pub deliveries_per_server_write: Option<f64>,
    pub generator_cpu_percent: f64,
    /// Clients the server had hung up on by the end of this rate (all rates so far).
    #[serde(default)]
    pub clients_disconnected: usize,
    /// What the room churners did while this rate was offered; absent without churners.
    #[serde(default)]
    pub room_churn: Option<RoomChurn>,
}

/// Room churners beside a load step (see `room_churn`): how many, and what they got done.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoomChurn {
    pub churners: usize,
    /// Rooms each churner joins, then leaves, in a cycle.
    pub rooms_per_cycle: usize,
    /// Lines the churners wrote (a JSON hello naming every room is one).
    pub lines_sent: u64,
    /// Joins and leaves of their rooms the server confirmed.
    pub joins: u64,
    pub leaves: u64,
    /// Errors the server answered them with, by code (`flood`, a bound on rooms, …).
    pub refused: BTreeMap<String, u64>,
    /// Times a churner's connection ended, by reason (`flooding`, `connection_lost`, …);
    /// it connected again each time.
    pub disconnects: BTreeMap<String, u64>,
}

impl RoomChurn {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &RoomChurn) {
        self.lines_sent += other.lines_sent;
        self.joins += other.joins;
        self.leaves += other.leaves;
        for (code, n) in &other.refused {
            *self.refused.entry(code.clone()).or_default() += n;
        }
        for (reason, n) in &other.disconnects {
            *self.disconnects.entry(reason.clone()).or_default() += n;
        }
    }
}

/// Idle connections: what each costs the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Idle {
    pub connections: usize,
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    pub bytes_per_connection: f64,
    pub fds_after: usize,
}

/// Connect/disconnect cycles: speed, and whether anything leaked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Churn {
    pub cycles: usize,
    pub seconds: f64,
    pub connections_per_s: f64,
    pub failures: usize,
    pub fds_before: Option<usize>,
    pub fds_after: Option<usize>,
    pub rss_before_bytes: Option<u64>,
    pub rss_after_bytes: Option<u64>,
}

/// The floor (see `floor`): a bare writer's round of writes, one socket per member.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Floor {
    /// Sockets written in turn: the members of one room.
    pub sockets: usize,
    /// The CPU the writer was pinned to, when it was.
    pub writer_cpu: Option<usize>,
    pub rows: Vec<FloorRow>,
    /// What the writer wrote and the readers read, all rows together: equal unless
    /// something went wrong.
    pub bytes_written: u64,
    pub bytes_read: u64,
}

/// One size of write in the floor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FloorRow {
    pub lines_per_write: usize,
    pub writes: u64,
    pub writes_per_s: f64,
    /// Wall-clock time per write.
    pub us_per_write: f64,
    /// The writer thread's CPU time per write (on loopback it includes the receiving
    /// socket's kernel work).
    pub cpu_us_per_write: f64,
    /// A round: one write to every socket.
    pub round_p50_ms: f64,
    pub round_p99_ms: f64,
    /// From the start of a round to each write's end: the latency of a message read as
    /// the round began, at each member.
    pub delivery_p50_ms: f64,
    pub delivery_p99_ms: f64,
    pub bytes_written: u64,
}

/// Everything one `charla bench` run measured against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The server's name in tables and charts (`charla`, `ncat`, `ngircd`, …).
    pub label: String,
    pub scenario: String,
    pub protocol: String,
    pub clients: usize,
    pub rooms: usize,
    pub senders: usize,
    pub size: usize,
    pub duration_s: f64,
    /// Room churners run beside every step (0: none).
    #[serde(default)]
    pub churners: usize,
    pub steps: Vec<StepReport>,
    /// Saturation mode: the highest offered rate that met the bounds.
    pub max_sustained_deliveries_per_s: Option<u64>,
    /// Saturation mode: its p99 bound (its other bound is nothing lost); absent otherwise.
    #[serde(default)]
    pub saturation_p99_limit_ms: Option<u64>,
    pub idle: Option<Idle>,
    pub churn: Option<Churn>,
    #[serde(default)]
    pub floor: Option<Floor>,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("–".to_string(), |v| v.to_string())
}

/// `flood 3, too_many_rooms 12`, or `0`.
fn counts(by: &BTreeMap<String, u64>) -> String {
    if by.is_empty() {
        return "0".to_string();
    }
    let each: Vec<String> = by.iter().map(|(what, n)| format!("{what} {n}")).collect();
    each.join(", ")
}

/// The scenario as a table shows it: `fanout`, or `fanout + 3 room churners`.
fn scenario(r: &Report) -> String {
    match r.churners {
        0 => r.scenario.clone(),
        n => format!("{} + {n} room churners", r.scenario),
    }
}

/// `p50 / p99`, or a dash when not measured.
fn pair(p50: Option<f64>, p99: Option<f64>) -> String {
    match (p50, p99) {
        (Some(p50), Some(p99)) => format!("{p50:.2} / {p99:.2}"),
        _ => "–".to_string(),
    }
}

/// Markdown tables for any mix of reports, grouped by scenario.
pub fn markdown(reports: &[Report]) -> String {
    let mut s = String::new();
    let load: Vec<&Report> = reports.iter().filter(|r| !r.steps.is_empty()).collect();
    if !load.is_empty() {
        s.push_str("| server | scenario | clients/rooms/senders | offered deliveries/s | delivered/s | lost | dup | reord | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | at socket p50 / p99 ms | send lag p50 / p99 ms | server CPU % | server RSS MiB | deliveries per server write | generator CPU % | clients dropped |\n");
        s.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for r in &load {
            for st in &r.steps {
                let _ = writeln!(
                    s,
                    "| {} | {} | {}/{}/{} | {} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} | {} | {:.0} | {} |",
                    r.label,
                    scenario(r),
                    r.clients,
                    r.rooms,
                    r.senders,
                    st.offered_deliveries_per_s,
                    st.delivered_per_s,
                    st.lost,
                    st.duplicates,
                    st.reordered,
                    st.p50_ms,
                    st.p90_ms,
                    st.p99_ms,
                    st.p999_ms,
                    st.max_ms,
                    pair(st.socket_p50_ms, st.socket_p99_ms),
                    pair(st.send_lag_p50_ms, st.send_lag_p99_ms),
                    opt(st.server_cpu_percent.map(|c| format!("{c:.0}"))),
                    opt(st.server_rss_bytes.map(|b| format!("{:.1}", mib(b)))),
                    opt(st.deliveries_per_server_write.map(|d| format!("{d:.1}"))),
                    st.generator_cpu_percent,
                    st.clients_disconnected,
                );
            }
        }
        for r in &load {
            let Some(limit) = r.saturation_p99_limit_ms else {
                continue;
            };
            let held = match r.max_sustained_deliveries_per_s {
                Some(max) => format!("**{max} deliveries/s**"),
                None => "none of the rates offered".to_string(),
            };
            let _ = writeln!(
                s,
                "\n{} ({}, {} clients): highest rate sustained with nothing lost and p99 ≤ {limit} ms: {held}",
                r.label, r.scenario, r.clients
            );
        }
    }
    s.push_str(&room_churn(reports));
    s.push_str(&against_the_floor(reports));
    let idle: Vec<&Report> = reports.iter().filter(|r| r.idle.is_some()).collect();
    if !idle.is_empty() {
        s.push_str("\n| server | idle connections | RSS before MiB | RSS after MiB | bytes per connection | fds |\n|---|---:|---:|---:|---:|---:|\n");
        for r in idle {
            let i = r.idle.as_ref().expect("filtered");
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {:.1} | {:.0} | {} |",
                r.label,
                i.connections,
                mib(i.rss_before_bytes),
                mib(i.rss_after_bytes),
                i.bytes_per_connection,
                i.fds_after
            );
        }
    }
    let churn: Vec<&Report> = reports.iter().filter(|r| r.churn.is_some()).collect();
    if !churn.is_empty() {
        s.push_str("\n| server | cycles | connections/s | failures | fds before → after | RSS before → after MiB |\n|---|---:|---:|---:|---|---|\n");
        for r in churn {
            let c = r.churn.as_ref().expect("filtered");
            let _ = writeln!(
                s,
                "| {} | {} | {:.0} | {} | {} → {} | {} → {} |",
                r.label,
                c.cycles,
                c.connections_per_s,
                c.failures,
                opt(c.fds_before),
                opt(c.fds_after),
                opt(c.rss_before_bytes.map(|b| format!("{:.1}", mib(b)))),
                opt(c.rss_after_bytes.map(|b| format!("{:.1}", mib(b)))),
            );
        }
    }
    let floors: Vec<&Report> = reports.iter().filter(|r| r.floor.is_some()).collect();
    if !floors.is_empty() {
        s.push_str("\n| floor: a bare writer | sockets | writer CPU | lines per write | writes/s | µs per write | CPU µs per write | round p50 / p99 ms | delivery p50 / p99 ms (message read as a round began) | bytes written / read |\n|---|---:|---:|---:|---:|---:|---:|---|---|---|\n");
        for r in floors {
            let f = r.floor.as_ref().expect("filtered");
            for row in &f.rows {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} / {} |",
                    r.label,
                    f.sockets,
                    opt(f.writer_cpu),
                    row.lines_per_write,
                    row.writes_per_s,
                    row.us_per_write,
                    row.cpu_us_per_write,
                    pair(Some(row.round_p50_ms), Some(row.round_p99_ms)),
                    pair(Some(row.delivery_p50_ms), Some(row.delivery_p99_ms)),
                    f.bytes_written,
                    f.bytes_read,
                );
            }
        }
    }
    s
}

/// What the room churners got done at each step, beside the p99 of the measured clients.
/// Empty without churners.
fn room_churn(reports: &[Report]) -> String {
    let mut s = String::new();
    for r in reports {
        for st in &r.steps {
            let Some(c) = &st.room_churn else {
                continue;
            };
            if s.is_empty() {
                s.push_str("\n| server | scenario | clients/rooms/senders | offered deliveries/s | p99 ms | lost | churners | rooms a cycle | lines sent | joins done | leaves done | refused | disconnects |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
            }
            let _ = writeln!(
                s,
                "| {} | {} | {}/{}/{} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.label,
                r.scenario,
                r.clients,
                r.rooms,
                r.senders,
                st.offered_deliveries_per_s,
                st.p99_ms,
                st.lost,
                c.churners,
                c.rooms_per_cycle,
                c.lines_sent,
                c.joins,
                c.leaves,
                counts(&c.refused),
                counts(&c.disconnects),
            );
        }
    }
    s
}

/// Each fan-out step's p99 as a multiple of the floor's for as many clients (the lowest
/// p99 of a bare writer's rows to as many sockets, from the same reports): how far a
/// server is from what the machine allows. Empty without a floor to compare with.
fn against_the_floor(reports: &[Report]) -> String {
    let floor_p99 = |members: usize| {
        reports
            .iter()
            .filter_map(|r| r.floor.as_ref())
            .filter(|f| f.sockets == members)
            .flat_map(|f| f.rows.iter().map(|row| row.delivery_p99_ms))
            .min_by(f64::total_cmp)
    };
    let mut s = String::new();
    for r in reports.iter().filter(|r| r.scenario == "fanout") {
        let Some(floor) = floor_p99(r.clients) else {
            continue;
        };
        if s.is_empty() {
            s.push_str("\n| server | clients | offered deliveries/s | p99 ms | the floor's p99 ms | × the floor |\n|---|---:|---:|---:|---:|---:|\n");
        }
        for st in r.steps.iter().filter(|st| st.delivered > 0) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.2} | {floor:.2} | {:.1} |",
                r.label,
                r.clients,
                st.offered_deliveries_per_s,
                st.p99_ms,
                st.p99_ms / floor,
            );
        }
    }
    s
}

/// p99 latency against offered rate, one line per server, log–log.
pub fn svg(reports: &[Report], path: &Path) -> anyhow::Result<()> {
    let series: Vec<&Report> = reports
        .iter()
        // Saturation runs climb their own ladder of rates: not a sweep to compare.
        .filter(|r| {
            r.scenario == "fanout" && r.steps.len() > 1 && r.saturation_p99_limit_ms.is_none()
        })
        .collect();
    // A rate at which nothing arrived has no latency to draw.
    let drawn = |r: &'_ Report| -> Vec<(f64, f64)> {
        r.steps
            .iter()
            .filter(|st| st.delivered > 0)
            .map(|st| (st.offered_deliveries_per_s as f64, st.p99_ms.max(0.01)))
            .collect()
    };
    let points = series
        .iter()
        .flat_map(|r| r.steps.iter().filter(|st| st.delivered > 0));
    let (mut x_max, mut y_max, mut y_min) = (1.0f64, 1.0f64, f64::MAX);
    let mut x_min = f64::MAX;
    for st in points {
        x_max = x_max.max(st.offered_deliveries_per_s as f64);
        x_min = x_min.min(st.offered_deliveries_per_s as f64);
        y_max = y_max.max(st.p99_ms);
        y_min = y_min.min(st.p99_ms.max(0.01));
    }
    if series.is_empty() {
        anyhow::bail!("no fan-out sweep (two or more rates) to chart");
    }
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "fan-out: p99 delivery latency vs offered load",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(
            (x_min * 0.8..x_max * 1.25).log_scale(),
            (y_min * 0.8..y_max * 1.5).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("offered deliveries/s")
        .y_desc("p99 latency (ms)")
        .draw()?;
    for (i, r) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let data = drawn(r);
        let lossy = if r.steps.iter().any(|st| st.lost > 0) {
            ", some lost"
        } else {
            ""
        };
        chart
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))?
            .label(format!(
                "{} ({} clients{lossy}{})",
                r.label,
                r.clients,
                match r.churners {
                    0 => String::new(),
                    n => format!(", {n} room churners"),
                }
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(data.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(offered: u64) -> StepReport {
        StepReport {
            offered_deliveries_per_s: offered,
            messages_sent: 10,
            expected_deliveries: 90,
            delivered: 90,
            delivered_per_s: 90.0,
            lost: 0,
            duplicates: 0,
            reordered: 0,
            p50_ms: 1.0,
            p90_ms: 2.0,
            p99_ms: 3.0,
            p999_ms: 4.0,
            max_ms: 5.0,
            socket_p50_ms: Some(0.5),
            socket_p99_ms: None,
            send_lag_p50_ms: Some(0.1),
            send_lag_p99_ms: Some(0.3),
            server_cpu_percent: Some(50.0),
            server_rss_bytes: Some(1 << 20),
            deliveries_per_server_write: Some(3.0),
            generator_cpu_percent: 40.0,
            clients_disconnected: 0,
            room_churn: Some(RoomChurn {
                churners: 3,
                rooms_per_cycle: 240,
                lines_sent: 50,
                joins: 700,
                leaves: 30,
                refused: BTreeMap::from([("flood".to_string(), 2)]),
                disconnects: BTreeMap::new(),
            }),
        }
    }

    #[test]
    fn every_table_row_has_as_many_cells_as_its_header() {
        let report = Report {
            label: "charla".into(),
            scenario: "fanout".into(),
            protocol: "charla".into(),
            clients: 10,
            rooms: 1,
            senders: 2,
            size: 100,
            duration_s: 1.0,
            churners: 3,
            steps: vec![step(100), step(1000)],
            max_sustained_deliveries_per_s: Some(1000),
            saturation_p99_limit_ms: Some(50),
            idle: Some(Idle {
                connections: 10,
                rss_before_bytes: 1,
                rss_after_bytes: 2,
                bytes_per_connection: 0.1,
                fds_after: 12,
            }),
            churn: Some(Churn {
                cycles: 5,
                seconds: 1.0,
                connections_per_s: 5.0,
                failures: 0,
                fds_before: Some(1),
                fds_after: Some(1),
                rss_before_bytes: None,
                rss_after_bytes: None,
            }),
            floor: Some(Floor {
                sockets: 10,
                writer_cpu: Some(0),
                rows: vec![FloorRow {
                    lines_per_write: 1,
                    writes: 100,
                    writes_per_s: 100.0,
                    us_per_write: 5.0,
                    cpu_us_per_write: 4.5,
                    round_p50_ms: 0.05,
                    round_p99_ms: 0.08,
                    delivery_p50_ms: 0.03,
                    delivery_p99_ms: 0.05,
                    bytes_written: 10_100,
                }],
                bytes_written: 10_100,
                bytes_read: 10_100,
            }),
        };
        let md = markdown(&[report]);
        assert!(md.contains(
            "charla (fanout, 10 clients): highest rate sustained with nothing lost and p99 ≤ 50 ms: **1000 deliveries/s**"
        ), "{md}");
        assert!(
            md.contains("| charla | fanout + 3 room churners | 10/1/2 | 100 |"),
            "{md}"
        );
        assert!(
            md.contains("| 3 | 240 | 50 | 700 | 30 | flood 2 | 0 |"),
            "{md}"
        );
        // 3 ms against the floor's 0.05 ms to as many sockets.
        assert!(
            md.contains("| charla | 10 | 100 | 3.00 | 0.05 | 60.0 |"),
            "{md}"
        );
        for table in md.split("\n\n").filter(|t| t.starts_with('|')) {
            let rows: Vec<&str> = table.lines().filter(|l| l.starts_with('|')).collect();
            let cells = |l: &str| l.matches('|').count();
            assert!(rows.len() >= 3, "{table}");
            assert!(rows.iter().all(|r| cells(r) == cells(rows[0])), "{table}");
        }
    }
}
