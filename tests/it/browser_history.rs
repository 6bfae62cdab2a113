//! The page's log in a real browser: older history read back by scrolling up, and the
//! bound on the lines it keeps.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::binary::Binary;
use crate::browser::Driver;
use crate::support::{Client, PATIENCE};

/// The page's log box, scrolled to the top first when `arguments[1]`: how far it is
/// scrolled, whether it can scroll, and how far below its top the line with `arguments[0]`
/// is (`null` when none has it).
const LOG_BOX: &str = "const box = document.querySelector('main'); \
    if (arguments[1]) box.scrollTop = 0; \
    const li = [...document.querySelectorAll('#log li')].find(l => l.innerText.includes(arguments[0])); \
    return [box.scrollTop, box.scrollHeight > box.clientHeight, \
            li ? li.getBoundingClientRect().top - box.getBoundingClientRect().top : null];";

async fn log_box(driver: &Driver, line: &str, to_top: bool) -> Value {
    driver.run(LOG_BOX, json!([line, to_top])).await
}

/// A server keeping its history in `dir` and replaying 20 lines on joining, where ana
/// said `line 1` to `line N` in #ops before the page opened there as webby, in a window
/// small enough that the replayed lines overflow the log.
async fn ana_said_lines_before_the_page_opened(
    driver: &Driver,
    dir: &Path,
    n: usize,
) -> (Binary, Client) {
    let (charla, tcp, http) = crate::store::serve_deep_history(&dir.join("data"));
    let mut ana = crate::store::json_client(tcp, "ana").await;
    crate::store::join(&mut ana, "#ops").await;
    crate::store::say_lines(&mut ana, "#ops", n).await;
    let rect = json!({"width": 800, "height": 400});
    driver.call("POST", "/window/rect", Some(rect)).await;
    driver
        .open(&format!("http://{http}/?nick=webby&room=ops"))
        .await;
    (charla, ana)
}

/// Scrolled to the top, the page reads back older history a page at a time, from the
/// server's file past what joining replayed, keeping the line read in place, until it says
/// the start is reached; every line once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrolling_up_reads_older_history_in_order_until_its_start() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (charla, _ana) = ana_said_lines_before_the_page_opened(&driver, dir.path(), 130).await;
    let log = driver.one("#log").await;
    driver.wait_for_text(&log, "line 130").await;
    let text = driver.text(&log).await;
    assert!(!text.contains("line 110\n"), "{text}");

    // Read at the bottom first, as someone who then scrolls up.
    let bottom = "const b = document.querySelector('main'); b.scrollTop = b.scrollHeight;";
    let bottom = json!({"script": bottom, "args": []});
    driver.call("POST", "/execute/sync", Some(bottom)).await;
    let mut first: usize = 111;
    while first > 1 {
        let at = format!("<ana> line {first}");
        let before = log_box(&driver, &at, true).await;
        assert_eq!(before[1], true, "the log scrolls: {before}");
        first = first.saturating_sub(50).max(1);
        driver
            .wait_for_text(&log, &format!("<ana> line {first}\n"))
            .await;
        // The line that was at the top stays where it was.
        let shown = log_box(&driver, &at, false).await;
        let moved = shown[2].as_f64().unwrap() - before[2].as_f64().unwrap();
        assert!(shown[0].as_f64().unwrap() > 0.0, "{shown}");
        assert!(
            moved.abs() < 2.0,
            "{at} moved {moved}px: {before} then {shown}"
        );
    }
    // The last page was short: the start of what the server keeps.
    let text = driver
        .wait_for_text(&log, "start of the history #ops keeps")
        .await;
    let lines: Vec<usize> = driver
        .texts("#log li")
        .await
        .iter()
        .filter_map(|l| l.split("<ana> line ").nth(1))
        .map(|n| n.trim().parse().unwrap())
        .collect();
    assert_eq!(lines, (1..=130).collect::<Vec<_>>(), "{text}");
    assert_eq!(text.matches("start of the history").count(), 1, "{text}");
    let start = driver.texts("#log li[data-room='#ops']").await;
    assert!(start[0].contains("start of the history"), "{start:?}");
    driver.quit().await;
    crate::store::stop(charla);
}

/// The numbers of ana's `line N` lines in #ops in the page's order, how many lines the log
/// holds, and how many say the start of the history is reached.
const OPS_LINES: &str = "const ops = [...document.querySelectorAll('#log li')]; \
    return [ops.map(l => l.innerText.match(/<ana> line (\\d+)$/)).filter(m => m).map(m => Number(m[1])), \
            ops.length, ops.filter(l => l.innerText.includes('start of the history')).length];";

/// What the page shows of #ops: line numbers in order, lines in the log, start markers.
async fn ops_lines(driver: &Driver) -> (Vec<u64>, u64, u64) {
    let v = driver.run(OPS_LINES, json!([])).await;
    let numbers = v[0].as_array().unwrap().iter();
    let numbers = numbers.map(|n| n.as_u64().unwrap()).collect();
    (numbers, v[1].as_u64().unwrap(), v[2].as_u64().unwrap())
}

/// Waits until what the page shows of #ops passes `done`.
async fn wait_for_ops(driver: &Driver, done: impl Fn(&[u64], u64, u64) -> bool) -> Vec<u64> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (lines, count, starts) = ops_lines(driver).await;
        if done(&lines, count, starts) {
            return lines;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page shows {count} lines, {starts} start markers, lines {:?}…{:?}",
            lines.first(),
            lines.last()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lines shown are one run of numbers, in order, none twice and none missing, and the
/// log holds no more than its bound.
fn assert_whole(lines: &[u64], count: u64) {
    let (first, last) = (lines[0], *lines.last().unwrap());
    assert_eq!(lines, (first..=last).collect::<Vec<_>>());
    assert!(count <= 2000, "{count} lines");
}

/// Scrolls the log to its top and turns the wheel up there until the page has read back to
/// the start of the history; each time it reads one more page, and what is shown stays whole.
async fn scroll_to_the_start(driver: &Driver) -> Vec<u64> {
    let main = driver.one("main").await;
    let top = "document.querySelector('main').scrollTop = 0;";
    loop {
        let (lines, count, starts) = ops_lines(driver).await;
        assert_whole(&lines, count);
        if starts == 1 {
            return lines;
        }
        let first = lines[0];
        driver.run(top, json!([])).await;
        driver.wheel_up(&main).await;
        wait_for_ops(driver, |l, _, s| l[0] < first || s == 1).await;
    }
}

/// Scrolls the log to its bottom until the page shows ana's `line N`; each time it reads
/// what came after its last line, and what is shown stays whole.
async fn scroll_to_the_end(driver: &Driver, n: u64) -> Vec<u64> {
    let bottom = "const b = document.querySelector('main'); b.scrollTop = b.scrollHeight;";
    loop {
        let (lines, count, _) = ops_lines(driver).await;
        assert_whole(&lines, count);
        let last = *lines.last().unwrap();
        if last == n {
            return lines;
        }
        driver.run(bottom, json!([])).await;
        wait_for_ops(driver, |l, _, _| l.last().unwrap() > &last).await;
    }
}

/// The log keeps 2,000 lines, letting go of those at the end away from the reader. Read
/// back to the start of the history, it lets the newest go, and lines said meanwhile wait;
/// scrolled down, it reads what it let go and what waited, letting the first go; scrolled up
/// again, it reads those back. What is shown is whole at every step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_lets_go_of_the_end_away_from_the_reader_and_reads_it_again() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (charla, mut ana) = ana_said_lines_before_the_page_opened(&driver, dir.path(), 2050).await;
    wait_for_ops(&driver, |l, _, _| l.last() == Some(&2050)).await;

    let lines = scroll_to_the_start(&driver).await;
    assert_eq!(lines[0], 1);
    assert!(*lines.last().unwrap() < 2050, "nothing was let go");

    // Said while the page is read at the start: held, not put below what is missing.
    for n in 2051..=2060 {
        let line = json!({"type":"say","room":"#ops","text":format!("line {n}")});
        ana.send(&line.to_string()).await;
    }
    let held = "return (held.get('#ops') || []).length;";
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while driver.run(held, json!([])).await != 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new lines are not held"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (lines, _, _) = ops_lines(&driver).await;
    assert_eq!(lines[0], 1);

    let lines = scroll_to_the_end(&driver, 2060).await;
    assert!(lines[0] > 1, "nothing was let go");
    let (_, _, starts) = ops_lines(&driver).await;
    assert_eq!(starts, 0);

    // Scrolled up again, what went comes back.
    let lines = scroll_to_the_start(&driver).await;
    assert_eq!(lines[0], 1);
    driver.quit().await;
    crate::store::stop(charla);
}
