//! Users of other nodes found as a node's own: WHO by mask (with the same visibility
//! rules for invisible users), LUSERS's counts, WHOIS's idle time. A real redis-server,
//! real `charla serve --cluster` processes.

use std::time::{Duration, Instant};

use crate::cluster::{Node, Redis, ask_until};
use crate::support::{Client, PATIENCE};

/// An IRC client registered as `nick` (user name `{nick}u`) and in `rooms` only.
async fn irc_in(node: &Node, nick: &str, rooms: &[&str]) -> Client {
    let mut c = Client::tcp(node.irc).await;
    let register = format!("NICK {nick}\r\nUSER {nick}u 0 * :{nick} here\r\n");
    c.send_raw(register.as_bytes()).await;
    c.expect(&format!(" 422 {nick} ")).await;
    for room in rooms {
        c.send_raw(format!("JOIN {room}\r\n").as_bytes()).await;
        c.expect(&format!(" 366 {nick} {room} ")).await;
    }
    c
}

/// The `352` lines of `client`'s answer to `WHO {mask}`, up to its `315`.
async fn who(client: &mut Client, mask: &str) -> Vec<String> {
    client.send_raw(format!("WHO {mask}\r\n").as_bytes()).await;
    let mut lines = Vec::new();
    loop {
        let line = client.next().await.expect("WHO's answer");
        if line.contains(" 315 ") {
            return lines;
        }
        if line.contains(" 352 ") {
            lines.push(line.trim_end().to_string());
        }
    }
}

/// Sends `WHO {mask}` until its answer is the nicks `nicks`, in that order; returns its
/// lines.
async fn who_until(client: &mut Client, mask: &str, nicks: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let lines = who(client, mask).await;
        // `:charla 352 ME ROOM USER HOST SERVER NICK FLAGS :HOPS REAL`
        let got: Vec<&str> = lines
            .iter()
            .map(|l| l.split(' ').nth(7).unwrap_or(""))
            .collect();
        if got == nicks {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "WHO {mask} never answered {nicks:?}: {lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The nicks `client`'s NAMES of `room` lists (prefixes dropped), up to its `366`.
async fn names(client: &mut Client, room: &str) -> Vec<String> {
    client
        .send_raw(format!("NAMES {room}\r\n").as_bytes())
        .await;
    let mut nicks = Vec::new();
    loop {
        let line = client.next().await.expect("NAMES's answer");
        if line.contains(" 366 ") {
            return nicks;
        }
        if let Some((_, listed)) = line.trim_end().split_once(&format!(" {room} :")) {
            let listed = listed.split(' ').filter(|n| !n.is_empty());
            nicks.extend(listed.map(|n| n.trim_start_matches(['@', '+']).to_string()));
        }
    }
}

#[tokio::test]
async fn who_masks_find_the_users_of_every_node_as_they_may_be_seen() {
    use charla::accounts::{Secret, password};
    let redis = Redis::start();
    let phc = password::hash(&Secret::new("operpassword")).unwrap();
    let oper = format!("root:{phc}");
    let one = Node::start_with(&redis, "one", &["--oper", &oper]);
    let two = Node::start(&redis, "two");
    let mut ana = irc_in(&one, "ana", &["#ops"]).await;
    let mut bea = irc_in(&one, "bea", &["#dev"]).await;
    let mut cy = irc_in(&two, "cy", &["#ops"]).await;
    let mut abe = irc_in(&two, "abe", &[]).await;

    // A mask matches users of both nodes, in nick order, and the node's own too.
    let lines = who_until(&mut cy, "a*", &["abe", "ana"]).await;
    assert_eq!(
        lines[1],
        ":charla 352 cy * anau charla charla ana H :0 ana here"
    );
    who_until(&mut ana, "*", &["abe", "ana", "bea", "cy"]).await;
    // The user part matches the user name given on the other node.
    who_until(&mut cy, "*!beau@*", &["bea"]).await;

    // Away (`G`) and server operator (`*`) flags, as WHO shows them of the node's own.
    ana.send_raw(b"AWAY :at lunch\r\nOPER root operpassword\r\n")
        .await;
    ana.expect(" 381 ana ").await;
    let lines = who_until(&mut cy, "an?", &["ana"]).await;
    let deadline = Instant::now() + PATIENCE;
    let mut line = lines[0].clone();
    while !line.contains(" ana G* ") {
        assert!(Instant::now() < deadline, "never away and operator: {line}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        line = who_until(&mut cy, "an?", &["ana"]).await.remove(0);
    }
    assert_eq!(
        line,
        ":charla 352 cy * anau charla charla ana G* :0 ana here"
    );
    // `o` keeps server operators only, of every node.
    who_until(&mut cy, "* o", &["ana"]).await;

    // An invisible user (`+i`) of another node is found by mask only by those sharing a
    // room with it, as one of the node's own is: cy shares none with bea until he joins
    // #dev; ana shares #ops with cy, not #dev with bea.
    bea.send_raw(b"MODE bea +i\r\n").await;
    bea.expect(" MODE bea :+i").await;
    cy.send_raw(b"MODE cy +i\r\n").await;
    cy.expect(" MODE cy :+i").await;
    who_until(&mut cy, "*", &["abe", "ana", "cy"]).await;
    who_until(&mut abe, "*", &["abe", "ana"]).await;
    who_until(&mut ana, "*", &["abe", "ana", "cy"]).await;
    // NAMES of a room of another node's only, as WHO: its invisible members to none
    // outside it.
    assert!(names(&mut abe, "#dev").await.is_empty());
    cy.send_raw(b"JOIN #dev\r\n").await;
    cy.expect(" 366 cy #dev ").await;
    who_until(&mut cy, "*", &["abe", "ana", "bea", "cy"]).await;
    // WHO of a room lists its invisible members of every node to its members only (the
    // node's own first).
    who_until(&mut cy, "#dev", &["cy", "bea"]).await;
    who_until(&mut abe, "#dev", &[]).await;
    // NAMES too, of the room here and on the other node.
    assert!(names(&mut abe, "#dev").await.is_empty());
    assert_eq!(names(&mut cy, "#dev").await, ["bea", "cy"]);
    // Visible again: found by everyone.
    bea.send_raw(b"MODE bea -i\r\n").await;
    bea.expect(" MODE bea :-i").await;
    who_until(&mut abe, "*", &["abe", "ana", "bea"]).await;
    who_until(&mut abe, "#dev", &["bea"]).await;
}

/// Sends LUSERS until its answer (`251` to `266`) has each of `needles`; returns it.
async fn lusers_until(client: &mut Client, needles: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        client.send_raw(b"LUSERS\r\n").await;
        let mut lines = vec![client.expect(" 251 ").await.trim_end().to_string()];
        while !lines.last().unwrap().contains(" 266 ") {
            let line = client.next().await.expect("the rest of LUSERS");
            lines.push(line.trim_end().to_string());
        }
        if needles.iter().all(|n| lines.iter().any(|l| l.ends_with(n))) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "LUSERS never said {needles:?}: {lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn lusers_counts_the_clusters_users_and_nodes_and_this_nodes_own() {
    let redis = Redis::start();
    let (mut one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let _ana = irc_in(&one, "ana", &[]).await;
    let mut bea = irc_in(&one, "bea", &[]).await;
    bea.send_raw(b"MODE bea +i\r\n").await;
    bea.expect(" MODE bea :+i").await;
    let mut cy = irc_in(&two, "cy", &[]).await;
    let _abe = irc_in(&two, "abe", &[]).await;

    // 251 and 266 are the cluster's (two nodes, four users, bea invisible); 255 and 265
    // node two's own.
    let lines = lusers_until(
        &mut cy,
        &[
            " 251 cy :There are 3 users and 1 invisible on 2 servers",
            " 266 cy 4 4 :Current global users 4, max 4",
        ],
    )
    .await;
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(" 255 cy :I have 2 clients and 0 servers")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(" 265 cy 2 2 :Current local users 2, max 2")),
        "{lines:#?}"
    );

    // Users leaving another node leave the count, not the most known at once.
    bea.send_raw(b"QUIT :bye\r\n").await;
    lusers_until(
        &mut cy,
        &[
            " 251 cy :There are 3 users and 0 invisible on 2 servers",
            " 266 cy 3 4 :Current global users 3, max 4",
        ],
    )
    .await;
    // A node killed is one server less once its silence is noticed.
    one.process.child.kill().unwrap();
    one.process.child.wait().unwrap();
    lusers_until(
        &mut cy,
        &[
            " 251 cy :There are 2 users and 0 invisible on 1 servers",
            " 266 cy 2 4 :Current global users 2, max 4",
            " 265 cy 2 2 :Current local users 2, max 2",
        ],
    )
    .await;
}

/// The idle seconds and sign-on time of `nick` in `client`'s WHOIS (`317`).
async fn whois_idle(client: &mut Client, nick: &str) -> (u64, u64) {
    client
        .send_raw(format!("WHOIS {nick}\r\n").as_bytes())
        .await;
    let line = client.expect(" 317 ").await;
    client.expect(" 318 ").await;
    // `:charla 317 ME NICK IDLE SIGNON :seconds idle, signon time`
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[3], nick, "{line}");
    (fields[4].parse().unwrap(), fields[5].parse().unwrap())
}

#[tokio::test]
async fn whois_of_another_nodes_user_gives_its_idle_time_and_signon() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = irc_in(&one, "ana", &["#ops"]).await;
    let mut cy = irc_in(&two, "cy", &["#ops"]).await;
    let (_, signon) = whois_idle(&mut ana, "ana").await;
    assert!(signon > 1_700_000_000, "{signon}");
    // Silent since she connected: idle on node two as on her own, with her sign-on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (idle, told) = whois_idle(&mut cy, "ana").await;
        if told == signon {
            assert!(idle >= 3, "idle {idle}");
            break;
        }
        assert!(Instant::now() < deadline, "never her sign-on time: {told}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // She speaks: node two learns it from her node's next report of activity, not with
    // the message.
    ana.send_raw(b"PRIVMSG #ops :back\r\n").await;
    cy.expect(" PRIVMSG #ops :back").await;
    let deadline = Instant::now() + PATIENCE;
    while whois_idle(&mut cy, "ana").await.0 >= 3 {
        assert!(Instant::now() < deadline, "her idle time never went down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // WHO's (WHOX `l`) idle time is the same.
    cy.send_raw(b"WHO ana %nl\r\n").await;
    let line = cy.expect(" 354 cy ").await;
    let idle: u64 = line.trim_end().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(idle < 6, "{line}");
}

/// Asks `client` (JSON) for the census until it counts `users` connected and `peak` at
/// most at once.
async fn census_until(client: &mut Client, users: u64, peak: u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        client.send(r#"{"type":"census"}"#).await;
        let census = client.expect_json("census").await;
        if census["users"] == users && census["peak"] == peak {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the census never counted {users} (at most {peak}): {census}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn text_and_json_census_count_every_nodes_users() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    let bob = one.text("bob").await;
    let mut cy = two.json("cy").await;

    // Three users on two nodes, counted alike on both (the rooms are each node's own, as
    // LUSERS's 254 counts them).
    ask_until(&mut ana, "/lusers", "*** 3 connected (at most 3 at once), ").await;
    census_until(&mut cy, 3, 3).await;

    // A user leaving another node leaves the count, not the most known at once.
    drop(bob);
    census_until(&mut cy, 2, 3).await;
    ask_until(&mut ana, "/lusers", "*** 2 connected (at most 3 at once), ").await;
}
