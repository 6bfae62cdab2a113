//! Slow consumers: a client that stops reading costs only itself.

use charla::limits::{Limits, SHUTDOWN_GRACE};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::support::{Client, PATIENCE, TestServer};

/// Messages per write of the sender. The reader reads each batch before the next is sent,
/// so at most about two batches (≈ 8.5 KiB: one being written, one queued) wait for it:
/// well within its 16 KiB send queue.
const BATCH: usize = 32;

/// Sent after the slow client is gone, to show nothing changed for the others.
const BATCHES_AFTER: usize = 4;

/// More than the kernel buffers plus the send queue can ever hold for the slow client.
const MAX_MESSAGES: usize = 200_000;

fn message(i: usize) -> String {
    format!("message {i:06} {}", "-".repeat(100))
}

/// A client that sends `lines`, then never reads; with a small receive buffer so the
/// kernel buffers between it and the server fill up fast.
async fn never_reading(server: &TestServer, lines: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.tcp()).await.unwrap();
    stream.write_all(lines.as_bytes()).await.unwrap();
    stream
}

/// The `/users` answer for `#lobby`.
async fn users(client: &mut Client) -> String {
    client.send("/users").await;
    client.expect(" here: ").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_stops_reading_is_cut_off_and_no_one_waits_for_it() {
    let server = TestServer::with(Limits {
        send_queue_bytes: 16 * 1024,
        flood_rate: 0,
        // Slow, sender and reader: a fourth gets in only once the slow one is really gone.
        max_connections: 3,
        ..Limits::default()
    })
    .await;

    let slow = never_reading(&server, "/nick slow\n").await;
    let mut reader = server.named("reader").await;
    let mut sender = server.named("sender").await;
    let deadline = Instant::now() + PATIENCE;
    while users(&mut reader).await != "#lobby *** 3 here: reader, sender, slow" {
        assert!(Instant::now() < deadline, "slow never took its nick");
    }

    // The sender writes a batch; the reader must get all of it, in order, while the slow
    // client's queue fills, until the slow client is cut off, and a few batches after.
    let mut sent = 0;
    let mut received = 0;
    let mut cut_off = None;
    let mut batches_after = 0;
    while batches_after < BATCHES_AFTER {
        assert!(
            sent < MAX_MESSAGES,
            "the slow client was never disconnected"
        );
        let batch: String = (sent..sent + BATCH)
            .map(|i| format!("{}\n", message(i)))
            .collect();
        sender.send_raw(batch.as_bytes()).await;
        sent += BATCH;
        while received < sent {
            let line = reader.next().await.expect("the reader is still connected");
            if line == "#lobby *** slow left (send queue exceeded)" {
                assert_eq!(cut_off, None, "told twice");
                cut_off = Some(received);
                continue;
            }
            assert_eq!(line, format!("#lobby <sender> {}", message(received)));
            received += 1;
        }
        if cut_off.is_some() {
            batches_after += 1;
        }
    }
    assert_eq!(received, sent, "the reader lost messages");

    // The sender was told too, and never got an error or had to wait.
    assert_eq!(
        sender.next().await.unwrap(),
        "#lobby *** slow left (send queue exceeded)"
    );
    // The server still answers, and has forgotten the slow client.
    assert_eq!(
        users(&mut reader).await,
        "#lobby *** 2 here: reader, sender"
    );
    sender.send("/rooms").await;
    assert_eq!(sender.next().await.unwrap(), "*** rooms: #lobby (2)");

    // Its connection is closed, not merely dropped from the rooms: its place is free again
    // although the slow client still holds its end open without reading.
    let mut newcomer = server.client_once_admitted().await;
    assert_eq!(
        users(&mut newcomer).await,
        format!(
            "#lobby *** 3 here: {}, reader, sender",
            newcomer_nick(&mut reader).await
        )
    );
    drop(slow);
}

/// Lines the server could write only in part, the reader's buffers being full, arrive
/// whole and in order once it reads.
#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_falls_behind_gets_every_line_whole_once_it_reads() {
    let server = TestServer::with(Limits {
        send_queue_bytes: 16 * 1024 * 1024,
        flood_rate: 0,
        ..Limits::default()
    })
    .await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut reader = Client::tcp_via(socket, server.tcp()).await;
    reader.send("/nick reader").await;
    reader.expect("*** you are now known as reader").await;
    let mut sender = server.named("sender").await;

    // 8 MB while the reader reads nothing: more than the kernel buffers between the server
    // and the reader hold, so the server writes into a full socket, a part of a line at a
    // time. Long lines, so each write offers more than the socket has room for.
    const LINES: usize = 2_700;
    let long = |i: usize| format!("{} {}", message(i), "~".repeat(3_000));
    let all: String = (0..LINES).map(|i| format!("{}\n", long(i))).collect();
    sender.send_raw(all.as_bytes()).await;
    // An answer to a later line means every message before it was handled.
    sender.send("/rooms").await;
    sender.expect("*** rooms: ").await;

    let mut received = 0;
    while received < LINES {
        let line = reader.next().await.expect("the reader is still connected");
        if line.starts_with("#lobby *** ") || line.starts_with("*** ") {
            continue; // the sender's arrival and new nick
        }
        assert_eq!(line, format!("#lobby <sender> {}", long(received)));
        received += 1;
    }
}

/// The nick in the reader's notice of the newcomer.
async fn newcomer_nick(reader: &mut Client) -> String {
    let line = reader.expect(" joined").await;
    line.strip_prefix("#lobby *** ")
        .and_then(|rest| rest.strip_suffix(" joined"))
        .unwrap_or_else(|| panic!("not a join notice: {line:?}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_does_not_wait_for_ever_on_a_client_that_never_reads() {
    let mut server = TestServer::with(Limits {
        // Large enough that the stalled client is never cut off for it.
        send_queue_bytes: 64 * 1024 * 1024,
        flood_rate: 0,
        ..Limits::default()
    })
    .await;
    let mut watcher = server.named("watcher").await;
    let slow = never_reading(&server, "/join #flood\n").await;
    let mut sender = server.named("sender").await;
    sender.send("/join #flood").await;
    sender.expect("#flood *** you joined").await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        sender.send("/users #flood").await;
        if sender
            .expect("#flood *** ")
            .await
            .starts_with("#flood *** 2 here: ")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the stalled client never joined");
    }

    // Far more than the kernel buffers hold: the rest, and any goodbye, waits in the
    // server's queue for a client that will never read it.
    let line = format!("{}\n", message(0));
    let burst = line.repeat(1024 * 1024 / line.len());
    for _ in 0..8 {
        sender.send_raw(burst.as_bytes()).await;
    }
    // An answer to a later line means every message before it was handled.
    sender.send("/rooms").await;
    sender.expect("*** rooms: ").await;

    server.shutdown.cancel();
    for client in [&mut watcher, &mut sender] {
        let seen = client.until_closed().await;
        assert_eq!(
            seen.last().map(String::as_str),
            Some("*** goodbye (server shutdown)"),
            "{seen:#?}"
        );
    }
    tokio::time::timeout(SHUTDOWN_GRACE + PATIENCE, &mut server.task)
        .await
        .expect("the server waited for the client that never reads")
        .expect("the server task ended cleanly");
    drop(slow);
}
