//! IRCv3 labeled-response over real sockets: what answers a labeled command comes back
//! with its label, one line tagged, several in a `labeled-response` batch, none as ACK.

use crate::irc::{Irc, server};
use crate::support::QUIET;

/// The lines of one labeled-response batch, its start line first: the batch's
/// reference, and the lines inside without its `batch` tag (those of a batch nested
/// inside keep theirs).
async fn batch(irc: &mut Irc, label: &str) -> (String, Vec<String>) {
    let start = irc.line().await;
    let id = start
        .strip_prefix(&format!("@label={label} :charla BATCH +"))
        .and_then(|rest| rest.strip_suffix(" labeled-response"))
        .unwrap_or_else(|| panic!("{start}"))
        .to_string();
    let mut inside = Vec::new();
    loop {
        let line = irc.line().await;
        if line == format!(":charla BATCH -{id}") {
            return (id, inside);
        }
        let tag = format!("@batch={id}");
        if line.starts_with("@batch=") && !line.starts_with(&tag) {
            // A line of a batch nested inside.
            inside.push(line);
            continue;
        }
        let rest = line
            .strip_prefix(&format!("{tag};"))
            .map(|rest| format!("@{rest}"))
            .or_else(|| line.strip_prefix(&format!("{tag} ")).map(str::to_string))
            .unwrap_or_else(|| panic!("{line} is not in batch {id}"));
        inside.push(rest);
    }
}

#[tokio::test]
async fn one_reply_is_tagged_none_is_acked_and_errors_are_labeled() {
    let server = server().await;
    let mut bob = Irc::registered(&server, "bob").await;
    let mut ana = Irc::with_caps(&server, "ana", "batch labeled-response").await;
    ana.send("@label=p1 PING tok").await;
    assert_eq!(ana.line().await, "@label=p1 :charla PONG charla :tok");
    ana.send("@label=p2 PONG tok").await;
    assert_eq!(ana.line().await, "@label=p2 :charla ACK");
    ana.send("@label=p3 NOSUCHCOMMAND").await;
    assert_eq!(
        ana.line().await,
        "@label=p3 :charla 421 ana NOSUCHCOMMAND :Unknown command"
    );
    // A hub reply alone: tagged, not batched.
    ana.send("@label=p4 PART #nowhere").await;
    let parted = ana.line().await;
    assert!(
        parted.starts_with("@label=p4 :charla 442 ana #nowhere "),
        "{parted}"
    );
    // Without the capability, a label is ignored.
    bob.expect(":ana!ana@charla JOIN #lobby").await;
    bob.send("@label=x PING tok").await;
    assert_eq!(bob.line().await, ":charla PONG charla :tok");
    ana.0.silent_for(QUIET).await;
}

#[tokio::test]
async fn a_join_comes_back_in_one_batch_and_others_see_no_label() {
    let server = server().await;
    let mut bob = Irc::with_caps(&server, "bob", "message-tags").await;
    bob.send("JOIN #ops").await;
    bob.expect(" 366 bob #ops ").await;
    let mut ana = Irc::with_caps(&server, "ana", "batch labeled-response server-time").await;
    ana.send("@label=j1 JOIN #ops").await;
    let (_, inside) = batch(&mut ana, "j1").await;
    assert!(
        inside[0].ends_with(":ana!ana@charla JOIN #ops"),
        "{inside:?}"
    );
    assert!(
        inside.iter().any(|l| l.contains(" 353 ana = #ops ")),
        "{inside:?}"
    );
    assert!(
        inside.iter().any(|l| l.contains(" 366 ana #ops ")),
        "{inside:?}"
    );
    bob.expect(":ana!ana@charla JOIN #lobby").await;
    assert_eq!(bob.line().await, ":ana!ana@charla JOIN #ops");

    // A message to the room echoes nothing without echo-message: an ACK; others get it
    // without the label.
    ana.send("@label=m1;+draft/reply=7 PRIVMSG #ops :hola")
        .await;
    assert_eq!(ana.line().await, "@label=m1 :charla ACK");
    let heard = bob.line().await;
    assert!(
        heard.ends_with(" :ana!ana@charla PRIVMSG #ops :hola"),
        "{heard}"
    );
    assert!(!heard.contains("label"), "{heard}");
    ana.0.silent_for(QUIET).await;
}

#[tokio::test]
async fn echoes_are_labeled_one_alone_several_in_a_batch() {
    let server = server().await;
    let _bob = Irc::registered(&server, "bob").await;
    let _cai = Irc::registered(&server, "cai").await;
    let mut ana = Irc::with_caps(&server, "ana", "batch labeled-response echo-message").await;
    ana.send("@label=e1 PRIVMSG bob :hi").await;
    assert_eq!(
        ana.line().await,
        "@label=e1 :ana!ana@charla PRIVMSG bob :hi"
    );
    ana.send("@label=e2 PRIVMSG bob,cai,nobody :hi all").await;
    let (_, inside) = batch(&mut ana, "e2").await;
    assert_eq!(
        inside,
        [
            ":ana!ana@charla PRIVMSG bob :hi all",
            ":ana!ana@charla PRIVMSG cai :hi all",
            ":charla 401 ana nobody :nobody is called nobody",
        ]
    );
    ana.0.silent_for(QUIET).await;
}

#[tokio::test]
async fn a_chathistory_batch_nests_inside_the_labeled_one() {
    let server = server().await;
    let mut ana = Irc::with_caps(&server, "ana", "batch labeled-response").await;
    ana.send("JOIN #ops").await;
    ana.expect(" 366 ana #ops ").await;
    ana.send("PRIVMSG #ops :one").await;
    ana.send("@label=h1 CHATHISTORY LATEST #ops * 5").await;
    let (id, inside) = batch(&mut ana, "h1").await;
    assert_eq!(inside.len(), 3, "{inside:?}");
    let nested = inside[0]
        .strip_prefix(":charla BATCH +")
        .and_then(|rest| rest.strip_suffix(" chathistory #ops"))
        .unwrap_or_else(|| panic!("{inside:?}"));
    assert_ne!(nested, id);
    assert!(
        inside[1].starts_with(&format!("@batch={nested} :ana!ana@charla PRIVMSG #ops :")),
        "{inside:?}"
    );
    assert!(inside[1].ends_with(" one"), "{inside:?}");
    assert_eq!(inside[2], format!(":charla BATCH -{nested}"));
}

/// A message to oneself reaches its sender twice, as its recipient and as the answer to
/// its command: only the answer carries the label (with echo-message, the echo; without,
/// an ACK), as irctest's testLabeled*ResponsesToSelf want.
#[tokio::test]
async fn a_message_to_oneself_is_delivered_unlabeled_and_answered_labeled() {
    let server = server().await;
    let caps = "batch labeled-response echo-message message-tags";
    let mut ana = Irc::with_caps(&server, "ana", caps).await;
    for (verb, label) in [("PRIVMSG", "s1"), ("NOTICE", "s2")] {
        ana.send(&format!("@label={label} {verb} ana :to me")).await;
        let copy = ana.line().await;
        assert!(
            copy.starts_with('@') && copy.ends_with(&format!(":ana!ana@charla {verb} ana :to me")),
            "{copy}"
        );
        assert!(!copy.contains("label="), "{copy}");
        let echo = ana.line().await;
        assert!(
            echo.starts_with(&format!("@label={label};"))
                && echo.ends_with(&format!(":ana!ana@charla {verb} ana :to me")),
            "{echo}"
        );
    }
    ana.send("@label=s3;+draft/typing=active TAGMSG ana").await;
    let copy = ana.line().await;
    assert!(copy.contains("+draft/typing=active"), "{copy}");
    assert!(copy.ends_with(":ana!ana@charla TAGMSG ana"), "{copy}");
    assert!(!copy.contains("label="), "{copy}");
    let echo = ana.line().await;
    assert!(echo.starts_with("@label=s3;"), "{echo}");
    assert!(echo.ends_with(":ana!ana@charla TAGMSG ana"), "{echo}");
    ana.0.silent_for(QUIET).await;

    // Without echo-message the copy comes as before, and the answer is an ACK.
    let mut bea = Irc::with_caps(&server, "bea", "batch labeled-response").await;
    bea.send("@label=b1 PRIVMSG bea :to me").await;
    assert_eq!(bea.line().await, ":bea!bea@charla PRIVMSG bea :to me");
    assert_eq!(bea.line().await, "@label=b1 :charla ACK");
    bea.0.silent_for(QUIET).await;
}

/// A labeled JOIN of a room the client is in already is passed over as an unlabeled one
/// is, answered by an `ACK` alone: no second JOIN of oneself, no NAMES again.
#[tokio::test]
async fn a_labeled_join_of_a_room_one_is_in_is_acked_alone() {
    let server = server().await;
    let mut ana = Irc::with_caps(&server, "ana", "batch labeled-response").await;
    // Registered and in #lobby: an unlabeled JOIN is passed over in silence.
    ana.send("JOIN #lobby").await;
    ana.send("@label=j1 JOIN #lobby").await;
    assert_eq!(ana.line().await, "@label=j1 :charla ACK");
    // Of a list, only the room one is not in yet is joined.
    ana.send("@label=j2 JOIN #lobby,#ops").await;
    let (_, inside) = batch(&mut ana, "j2").await;
    assert_eq!(inside[0], ":ana!ana@charla JOIN #ops");
    assert!(
        !inside.iter().any(|line| line.contains("#lobby")),
        "{inside:#?}"
    );
}
