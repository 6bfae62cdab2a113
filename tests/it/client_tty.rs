//! `charla connect` in a real terminal (tmux, `tmux.rs`): is the half-typed line still
//! whole under the messages that arrived?

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use charla::limits::Limits;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};

use crate::support::{PATIENCE, TestServer};
use crate::tmux::Tmux;

/// The shell command that runs `charla connect ARGS` with a known clock and colours on.
fn connect(args: &str) -> String {
    format!(
        "env -u NO_COLOR -u CHARLA_SERVER TZ=UTC TERM=xterm-256color {} connect {args}",
        env!("CARGO_BIN_EXE_charla")
    )
}

/// Waits, off the async runtime, for `needle` on the screen.
async fn wait_for(tmux: &Tmux, needle: &str) -> Vec<String> {
    tokio::task::block_in_place(|| tmux.wait_for(needle))
}

/// Waits until the row under the one containing `echo` is the prompt (`…>` and nothing
/// typed): the editor is reading again, with the terminal in its own mode.
async fn wait_for_prompt_under(tmux: &Tmux, echo: &str) {
    tokio::task::block_in_place(|| {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = tmux.screen();
            let row = screen.iter().position(|row| row.contains(echo));
            if row
                .and_then(|row| screen.get(row + 1))
                .is_some_and(|next| next.ends_with('>'))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no prompt under {echo:?}:\n{}",
                screen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn typing_while_messages_arrive_leaves_the_input_line_intact() {
    let server = TestServer::start().await;
    let mut bob = server.named("bob").await;
    let tmux = Tmux::start(&connect(&format!("{} --name ana", server.tcp())));
    wait_for(&tmux, "connected to").await;
    bob.expect("#lobby *** ana joined").await;

    let typed = "half-typed ñandú 日本語 😀";
    tmux.type_text(typed);
    wait_for(&tmux, typed).await;
    for i in 1..=8 {
        bob.send(&format!("message {i} while you type")).await;
    }
    bob.send("/msg ana psst, ana").await;
    let screen = wait_for(&tmux, "(private) <bob> psst").await;
    for i in 1..=8 {
        assert!(
            screen
                .iter()
                .any(|row| row.ends_with(&format!("#lobby <bob> message {i} while you type"))),
            "message {i} missing:\n{}",
            screen.join("\n")
        );
    }
    assert_eq!(tmux.last_row(), format!("#lobby> {typed}"));

    // Edit it: delete the emoji and 語 (wide characters go whole), then finish the line.
    tmux.press(&["BSpace", "BSpace", "BSpace"]);
    tmux.type_text(" ok");
    tmux.press(&["Enter"]);
    assert_eq!(
        bob.expect("<ana>").await,
        "#lobby <ana> half-typed ñandú 日本 ok"
    );
    // The typed line became a transcript line, and the prompt is empty again.
    let screen = wait_for(&tmux, "<ana> half-typed ñandú 日本 ok").await;
    assert!(
        !screen.iter().any(|row| row.starts_with("#lobby> half")),
        "the typed line was left behind:\n{}",
        screen.join("\n")
    );
    assert_eq!(tmux.last_row(), "#lobby>");

    // Up recalls it.
    tmux.press(&["Up"]);
    wait_for(&tmux, "#lobby> half-typed ñandú 日本 ok").await;
    tmux.press(&["C-u"]);

    // /join moves the prompt to the new room, and lines go there.
    tmux.type_text("/join #ops");
    tmux.press(&["Enter"]);
    wait_for(&tmux, "#ops *** you joined").await;
    assert_eq!(tmux.last_row(), "#ops>");
    bob.send("/join #ops").await;
    tmux.type_text("hola ops");
    tmux.press(&["Enter"]);
    assert_eq!(bob.expect("<ana>").await, "#ops <ana> hola ops");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_server_restart_it_reconnects_with_its_nick_and_room_and_shows_what_it_missed() {
    let server = TestServer::start().await;
    let addr = server.tcp();
    let tmux = Tmux::start(&connect(&format!("{addr} --name ana --room ops")));
    wait_for(&tmux, "connected to").await;

    server.shutdown.cancel();
    server.task.await.unwrap();
    wait_for(&tmux, "disconnected from").await;
    // One attempt fails while the server is down; the next waits at least 0.75 s.
    wait_for(&tmux, "cannot reconnect").await;

    let server = started_again_on(addr).await;
    let mut bob = server.named("bob").await;
    bob.send("/join #ops").await;
    bob.expect("you joined").await;
    bob.send("said while you were away").await;
    bob.expect("ana joined").await;
    wait_for(&tmux, "reconnected to").await;
    wait_for(&tmux, "[missed] <bob> said while you were away").await;

    bob.send("/users").await;
    assert_eq!(bob.expect("here:").await, "#ops *** 2 here: ana, bob");
    assert_eq!(tmux.last_row(), "#ops>");
    tmux.type_text("back again");
    tmux.press(&["Enter"]);
    assert_eq!(bob.expect("<ana>").await, "#ops <ana> back again");
}

/// A server started again on the address the one the client knew had, without flood
/// control (the test's own users say things at once).
async fn started_again_on(addr: std::net::SocketAddr) -> TestServer {
    TestServer::on(
        &[&format!("tcp://{addr}")],
        Limits {
            flood_rate: 0,
            ..Limits::default()
        },
    )
    .await
}

/// A room the reconnect cannot join again (a key set meanwhile) is left off, and the prompt
/// shown while the line was read still names it: the client says where lines go now, so a
/// line typed at that prompt is not said, unawares, in another room.
#[tokio::test(flavor = "multi_thread")]
async fn a_room_refused_on_reconnecting_is_said_and_where_lines_go_now() {
    let server = TestServer::start().await;
    let addr = server.tcp();
    let tmux = Tmux::start(&connect(&format!("{addr} --name ana --room ops")));
    wait_for(&tmux, "connected to").await;
    assert_eq!(tmux.last_row(), "#ops>");

    server.shutdown.cancel();
    server.task.await.unwrap();
    wait_for(&tmux, "cannot reconnect").await;
    let server = started_again_on(addr).await;
    let mut bob = server.named("bob").await;
    bob.send("/join #ops").await;
    bob.expect("you joined").await;
    bob.send("/mode +k sesame").await;
    bob.expect("set mode +k sesame").await;
    bob.send("/join #lobby").await;
    bob.expect("#lobby *** you joined").await;

    wait_for(&tmux, "reconnected to").await;
    wait_for(&tmux, "#ops takes a key").await;
    wait_for(&tmux, "typing into #lobby").await;
    tmux.type_text("where am i");
    tmux.press(&["Enter"]);
    assert_eq!(bob.expect("<ana>").await, "#lobby <ana> where am i");
}

/// A TCP relay to `server` whose connections the test cuts, as a network outage does, and
/// which refuses new ones until mended.
struct Cuttable {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Cuttable {
    async fn to(server: SocketAddr) -> Cuttable {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<_>>> = Arc::default();
        let accepting = tokio::spawn({
            let (open, links) = (open.clone(), links.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        continue;
                    }
                    let link = tokio::spawn(async move {
                        let mut upstream = TcpStream::connect(server).await.unwrap();
                        let _ = copy_bidirectional(&mut client, &mut upstream).await;
                    });
                    links.lock().unwrap().push(link);
                }
            }
        });
        Cuttable {
            addr,
            open,
            links,
            accepting,
        }
    }

    /// Ends every connection through it and refuses new ones.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn mend(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Cuttable {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}

/// After a cut, the client resumes each room after the last message it saw, its own
/// included (their acks carry their numbers): what it said itself is not said to be missed
/// once the room no longer keeps it.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_cut_it_resumes_after_its_own_messages() {
    let server = TestServer::with(Limits {
        flood_rate: 0,
        history_per_room: 2,
        ..Limits::default()
    })
    .await;
    let relay = Cuttable::to(server.tcp()).await;
    let mut bob = server.named("bob").await;
    bob.send("/join #ops").await;
    bob.expect("#ops *** you joined").await;
    let tmux = Tmux::start(&connect(&format!("{} --name ana --room ops", relay.addr)));
    wait_for(&tmux, "connected to").await;
    bob.expect("#ops *** ana joined").await;
    bob.send("said first").await;
    wait_for(&tmux, "<bob> said first").await;
    // Entries 2 to 4 of #ops, ana's own.
    for n in 1..=3 {
        tmux.type_text(&format!("mine {n}"));
        tmux.press(&["Enter"]);
        bob.expect(&format!("<ana> mine {n}")).await;
    }
    // Answered after the acks of what came before it: they are in.
    tmux.type_text("/users");
    tmux.press(&["Enter"]);
    wait_for(&tmux, "2 here:").await;

    relay.cut();
    wait_for(&tmux, "cannot reconnect").await;
    bob.expect("#ops *** ana left").await;
    // Entry 5; the room keeps 4 and 5.
    bob.send("while away").await;
    relay.mend();
    let screen = wait_for(&tmux, "[missed] <bob> while away").await;
    bob.expect("#ops *** ana joined").await;
    assert!(
        !screen.iter().any(|row| row.contains("no longer kept")),
        "{}",
        screen.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_d_and_ctrl_c_exit_and_leave_the_terminal_as_it_was() {
    let server = TestServer::start().await;
    let mut bob = server.named("bob").await;
    let dir = tempfile::tempdir().unwrap();
    for (key, nick) in [("C-d", "ana"), ("C-c", "eva")] {
        let before = dir.path().join(format!("{nick}-before"));
        let after = dir.path().join(format!("{nick}-after"));
        let script = format!(
            "stty -g > {before}; {connect}; echo \"exited $?\"; stty -g > {after}; sleep 60",
            before = before.display(),
            after = after.display(),
            connect = connect(&format!("{} --name {nick}", server.tcp())),
        );
        let tmux = Tmux::start(&script);
        wait_for(&tmux, "connected to").await;
        tmux.type_text("unfinished");
        if key == "C-d" {
            // Ctrl-D ends the input on an empty line only.
            tmux.press(&["C-u"]);
        }
        tmux.press(&[key]);
        wait_for(&tmux, "exited 0").await;
        assert_eq!(
            bob.expect(&format!("{nick} left")).await,
            format!("#lobby *** {nick} left (quit)")
        );
        let settings = |path: &Path| {
            tokio::task::block_in_place(|| {
                let deadline = Instant::now() + PATIENCE;
                loop {
                    if let Ok(text) = std::fs::read_to_string(path)
                        && !text.is_empty()
                    {
                        return text;
                    }
                    assert!(Instant::now() < deadline, "no {}", path.display());
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        assert_eq!(settings(&after), settings(&before), "after {key}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_with_a_password_is_not_kept_for_up_to_recall() {
    let server = TestServer::start().await;
    let mut bob = server.named("bob").await;
    let tmux = Tmux::start(&connect(&format!("{} --name ana", server.tcp())));
    wait_for(&tmux, "connected to").await;
    tmux.type_text("said before registering");
    tmux.press(&["Enter"]);
    bob.expect("<ana> said before registering").await;
    // Typed before the editor reads again, the password would be echoed by the terminal
    // itself: wait for the prompt rustyline draws under the echo of the line just sent.
    wait_for_prompt_under(&tmux, "<ana> said before registering").await;
    tmux.type_text("/register correct-horse-9");
    tmux.press(&["Enter"]);
    let screen = wait_for(&tmux, "ana is registered to you").await;
    assert!(
        !screen.iter().any(|row| row.contains("correct-horse-9")),
        "the password stayed on the screen:\n{}",
        screen.join("\n")
    );
    // Up skips the /register line and brings back the one before it.
    tmux.press(&["Up"]);
    wait_for(&tmux, "#lobby> said before registering").await;
    assert_eq!(tmux.last_row(), "#lobby> said before registering");
}
