//! Members of other nodes look like the node's own: their operator and voice in NAMES,
//! WHO and `/mode`, their away state (announced, and answered to a private message), the
//! account on what they say; and a room made on two nodes at once has one operator. A
//! real redis-server, real `charla serve --cluster` processes.

use std::time::{Duration, Instant};

use crate::cluster::{Node, Redis, ask_until, member_until};
use crate::cluster_rooms::join_after;
use crate::support::{Client, PATIENCE};

/// Sends the IRC `line` until `client` reads a reply containing each of `needles` on
/// one line: for what the other node tells a moment later.
async fn irc_until(client: &mut Client, line: &str, reply: &str, needles: &[&str]) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        client.send_raw(format!("{line}\r\n").as_bytes()).await;
        let answer = client.expect(reply).await;
        if needles.iter().all(|n| answer.contains(n)) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "{line:?} never answered {needles:?}; last {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn another_nodes_members_show_their_standing_and_away_state_in_every_protocol() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    ana.send("/join #ops").await;
    ana.expect("#ops *** you joined").await;
    let mut bob = two.text("bob").await;
    join_after(&mut bob, "#ops", "ana").await;
    // Voice given on node one to a member of node two (once node one knows he is in the
    // room) is bob's there, and shown as his on node one too.
    member_until(&mut ana, "#ops", "bob").await;
    ana.send("/mode +v bob").await;
    bob.expect("#ops *** ana set mode +v bob").await;
    ask_until(&mut ana, "/mode", "operators: ana; voiced: bob").await;
    ask_until(&mut bob, "/mode", "operators: ana; voiced: bob").await;

    // IRC on node two: NAMES and WHO show ana as operator, bob voiced.
    let mut cy = two.irc_with("cy", "multi-prefix away-notify").await;
    cy.send_raw(b"JOIN #ops\r\n").await;
    cy.expect(" 366 cy #ops ").await;
    irc_until(&mut cy, "NAMES #ops", " 353 ", &["@ana", "+bob", "cy"]).await;
    cy.send_raw(b"WHO #ops\r\n").await;
    let who = cy.expect(" 352 cy #ops ana ").await;
    assert!(who.contains(" ana H@ "), "{who}");

    // Away on node one: announced on node two (away-notify), shown by WHO, and told to
    // whoever writes to her.
    ana.send("/away at lunch").await;
    ana.expect("*** you are marked away: at lunch").await;
    assert_eq!(
        cy.expect(" AWAY ").await.trim_end(),
        ":ana!ana@charla AWAY :at lunch"
    );
    cy.send_raw(b"WHO #ops\r\n").await;
    let who = cy.expect(" 352 cy #ops ana ").await;
    assert!(who.contains(" ana G@ "), "{who}");
    bob.send("/msg ana are you there?").await;
    bob.expect("*** ana is away: at lunch").await;
    ana.expect("(private) <bob> are you there?").await;
    cy.send_raw(b"PRIVMSG ana :ping\r\n").await;
    cy.expect(" 301 cy ana :at lunch").await;
    // Joining away, she is told away on node two right after her JOIN (away-notify).
    cy.send_raw(b"JOIN #side\r\n").await;
    cy.expect(" 366 cy #side ").await;
    ana.send("/join #side").await;
    ana.expect("#side *** you joined").await;
    cy.expect("ana!ana@charla JOIN #side").await;
    assert_eq!(cy.line().await.trim_end(), ":ana!ana@charla AWAY :at lunch");
    // Back to talking in #ops.
    ana.send("/leave #side").await;
    ana.expect("#side *** you left").await;
    ana.send("/away").await;
    ana.expect("*** you are back").await;
    assert_eq!(cy.expect(" AWAY").await.trim_end(), ":ana!ana@charla AWAY");

    // Operator taken away on node two's side: node one shows it gone too.
    ana.send("/mode -v bob").await;
    bob.expect("#ops *** ana set mode -v bob").await;
    ask_until(&mut ana, "/mode", "operators: ana; voiced: none").await;
    irc_until(&mut cy, "NAMES #ops", " 353 ", &["@ana", " bob", "cy"]).await;
}

#[tokio::test]
async fn a_speakers_account_reaches_the_other_nodes_with_what_they_say() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    ana.send("/register correct-horse").await;
    ana.expect("*** ana is registered to you").await;
    let mut cy = two.irc_with("cy", "message-tags account-tag").await;
    ana.expect("#lobby *** cy joined").await;
    let mut bot = two.json("bot").await;
    ana.expect("#lobby *** bot joined").await;
    ana.send("logged in and talking").await;
    let said = cy.expect("PRIVMSG #lobby :logged in and talking").await;
    assert!(said.contains("account=ana"), "{said}");
    let said = bot.expect_json("message").await;
    assert_eq!(said["account"], "ana", "{said}");
    ana.send("/msg cy just you").await;
    let private = cy.expect("PRIVMSG cy :just you").await;
    assert!(private.contains("account=ana"), "{private}");
    ana.send("/msg bot just you too").await;
    let private = bot.expect_json("private").await;
    assert_eq!(private["account"], "ana", "{private}");
    // Someone logged in to no account: no tag.
    let mut dan = one.text("dan").await;
    dan.send("anonymous").await;
    let said = cy.expect("PRIVMSG #lobby :anonymous").await;
    assert!(!said.contains("account="), "{said}");
    let said = loop {
        let said = bot.expect_json("message").await;
        if said["from"] == "dan" {
            break said;
        }
    };
    assert!(said.get("account").is_none(), "{said}");
}

/// Who `client`'s node says the operators of `room` are (its `/mode` answer).
async fn operators(client: &mut Client, room: &str) -> String {
    client.send(&format!("/mode {room}")).await;
    let modes = client.expect(&format!("{room} *** modes ")).await;
    let (_, rest) = modes.split_once("operators: ").expect("operators listed");
    rest.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_room_made_on_two_nodes_at_once_has_exactly_one_operator() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    let mut bob = two.text("bob").await;
    ana.expect("is now known as bob").await;
    for n in 1..=5 {
        let room = format!("#race{n}");
        let join = format!("/join {room}");
        tokio::join!(ana.send(&join), bob.send(&join));
        ana.expect(&format!("{room} *** you joined")).await;
        bob.expect(&format!("{room} *** you joined")).await;
        // Each node may have made its user the operator; once both have heard Redis's
        // answer, both nodes name the same one, and only one.
        let deadline = Instant::now() + PATIENCE;
        let op = loop {
            let (seen_one, seen_two) = (
                operators(&mut ana, &room).await,
                operators(&mut bob, &room).await,
            );
            if seen_one == seen_two && (seen_one == "ana" || seen_one == "bob") {
                break seen_one;
            }
            assert!(
                Instant::now() < deadline,
                "{room}: node one says {seen_one}, node two {seen_two}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The operator acts as one; the other is refused.
        let (winner, loser) = match op.as_str() {
            "ana" => (&mut ana, &mut bob),
            _ => (&mut bob, &mut ana),
        };
        winner.send(&format!("/topic {room} race won")).await;
        loser
            .expect(&format!("{room} *** {op} set the topic: race won"))
            .await;
        loser.send(&format!("/topic {room} mine")).await;
        loser
            .expect(&format!("only {room}'s operators may set its topic"))
            .await;
        // A room made again once everyone left has an operator again, whichever node.
        winner.send(&format!("/leave {room}")).await;
        loser.send(&format!("/leave {room}")).await;
        winner.expect(&format!("{room} *** you left")).await;
        loser.expect(&format!("{room} *** you left")).await;
    }
    // Made again on node two after node one's user founded and left it: bob is its
    // operator (node one let go of its claim as the room emptied there).
    let claimed = |held: &'static str| {
        let deadline = Instant::now() + PATIENCE;
        while !redis
            .command(&["EXISTS", "charla:founder:#again"])
            .starts_with(held)
        {
            assert!(
                Instant::now() < deadline,
                "the founding claim never became {held}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    ana.send("/join #again").await;
    ana.expect("#again *** you joined").await;
    claimed(":1");
    ana.send("/leave #again").await;
    ana.expect("#again *** you left").await;
    claimed(":0");
    // Node two has heard ana leave once it hears what she says next (Redis keeps one
    // order): it knows nobody is in #again.
    ana.send("left #again").await;
    bob.expect("#lobby <ana> left #again").await;
    bob.send("/join #again").await;
    bob.expect("#again *** you joined").await;
    bob.send("/topic #again bob's").await;
    bob.expect("#again *** bob set the topic: bob's").await;
}

#[tokio::test]
async fn account_add_writes_the_clusters_redis_and_every_node_takes_it_at_once() {
    use std::io::Write;
    use std::process::Stdio;
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut carl = two.text("carl").await;
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), format!("cluster = \"{}\"\n", redis.url())).unwrap();
    let url = redis.url();
    let config_path = config.path().to_str().unwrap().to_string();
    // Once with --cluster, once from the servers' config file.
    for (name, how) in [
        ("dee", ["--cluster", &url]),
        ("eve", ["--config", &config_path]),
    ] {
        let mut add = crate::binary::command(&["account", "add", name, how[0], how[1]]);
        let mut child = add
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let password = format!("{name}-secret-words\n");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        let added = child.wait_with_output().unwrap();
        assert!(added.status.success(), "{added:?}");
        let said = String::from_utf8_lossy(&added.stdout);
        assert!(said.contains("created in the cluster's Redis"), "{said}");
        assert!(!said.contains(&url), "{said}");
        // Only its hash is in Redis.
        let phc = redis.command(&["HGET", &format!("charla:account:{name}"), "phc"]);
        assert!(phc.contains("$argon2") && !phc.contains("secret"), "{phc}");
        // Protected on a running node as soon as it hears of it (carl gives the nick
        // back should he get it first), and logged in to on another.
        let deadline = Instant::now() + PATIENCE;
        loop {
            carl.send(&format!("/nick {name}")).await;
            let answer = carl.next().await.expect("an answer");
            if answer.starts_with("ERROR nick_registered") {
                break;
            }
            if answer.ends_with(&format!("known as {name}")) {
                carl.send("/nick carl").await;
                carl.expect("known as carl").await;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never protected: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut owner = one.text(&format!("{name}x")).await;
        owner
            .send(&format!("/login {name} {name}-secret-words"))
            .await;
        owner
            .expect(&format!("*** you are now known as {name}"))
            .await;
    }
}

/// Sends `WHO {query}` until a `352` line of its answer (read to the end, `315`)
/// contains each of `needles`; returns that line.
async fn who_until(client: &mut Client, query: &str, needles: &[&str]) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        client.send_raw(format!("WHO {query}\r\n").as_bytes()).await;
        let mut found = None;
        loop {
            let line = client.next().await.expect("WHO's answer");
            if line.contains(" 315 ") {
                break;
            }
            if line.contains(" 352 ") && needles.iter().all(|n| line.contains(n)) {
                found = Some(line);
            }
        }
        if let Some(line) = found {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "WHO {query} never showed {needles:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lines of `client`'s LUSERS answer, `251` to `266`.
async fn lusers(client: &mut Client) -> Vec<String> {
    client.send_raw(b"LUSERS\r\n").await;
    let mut lines = vec![client.expect(" 251 ").await];
    while !lines.last().unwrap().contains(" 266 ") {
        lines.push(client.next().await.expect("the rest of LUSERS"));
    }
    lines
}

/// Sends LUSERS until `client`'s node counts `count` server operators (no `252` at all
/// for none).
async fn opers_until(client: &mut Client, count: usize) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let lines = lusers(client).await;
        let told: Vec<&String> = lines.iter().filter(|l| l.contains(" 252 ")).collect();
        let counted = match told.as_slice() {
            [] => 0,
            [line] => {
                assert!(line.trim_end().ends_with(" :operator(s) online"), "{line}");
                let (_, rest) = line.split_once(" 252 ").unwrap();
                rest.split(' ').nth(1).unwrap().parse().unwrap()
            }
            _ => panic!("252 twice: {lines:#?}"),
        };
        if counted == count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "never {count} operators: {lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn another_nodes_user_shows_its_user_name_real_name_and_operator_flag() {
    use charla::accounts::{Secret, password};
    let redis = Redis::start();
    let phc = password::hash(&Secret::new("operpassword")).unwrap();
    let oper = format!("root:{phc}");
    let one = Node::start_with(&redis, "one", &["--oper", &oper]);
    let two = Node::start(&redis, "two");
    let mut ana = Client::tcp(one.irc).await;
    ana.send_raw(b"NICK ana\r\nUSER anauser 0 * :Ana Real Name\r\nJOIN #ops\r\n")
        .await;
    ana.expect(" 366 ana #ops ").await;
    // cy joins once node two knows ana is in #ops (WHO from outside the room shows her
    // there, with her standing), so that he joins her room rather than founding one of
    // his own: her claim to have founded it reaches Redis before her presence does, and a
    // claim of his made earlier could beat hers there.
    let mut cy = two.irc("cy").await;
    who_until(&mut cy, "#ops", &[" ana H@ "]).await;
    cy.send_raw(b"JOIN #ops\r\n").await;
    cy.expect(" 366 cy #ops ").await;
    assert!(opers_until(&mut cy, 0).await[0].contains(" 251 cy "));

    // Her user name and real name, given before she registered, reach node two: WHO of
    // the room, of her nick, WHOX and WHOIS show them as node one does. Waited for by the
    // user name: her node may tell of her once before it has it, then again with it.
    let who = who_until(&mut cy, "#ops", &[" ana ", " anauser "]).await;
    assert_eq!(
        who.trim_end(),
        ":charla 352 cy #ops anauser charla charla ana H@ :0 Ana Real Name"
    );
    cy.send_raw(b"WHO ana\r\n").await;
    assert_eq!(
        cy.expect(" 352 cy ").await.trim_end(),
        ":charla 352 cy * anauser charla charla ana H :0 Ana Real Name"
    );
    cy.expect(" 315 cy ana ").await;
    cy.send_raw(b"WHO ana %tnur,7\r\n").await;
    assert_eq!(
        cy.expect(" 354 cy ").await.trim_end(),
        ":charla 354 cy 7 anauser ana :Ana Real Name"
    );
    cy.send_raw(b"WHOIS ana\r\n").await;
    assert_eq!(
        cy.expect(" 311 cy ana ").await.trim_end(),
        ":charla 311 cy ana anauser charla * :Ana Real Name"
    );
    let mut rest = Vec::new();
    while !rest.last().is_some_and(|l: &String| l.contains(" 318 ")) {
        rest.push(cy.next().await.expect("the rest of WHOIS"));
    }
    assert!(!rest.iter().any(|l| l.contains(" 313 ")), "{rest:#?}");

    // A server operator on node one is one on node two too: WHO's `*`, WHOIS's 313,
    // WHO's `o` filter, and LUSERS's count, which node one gives too.
    ana.send_raw(b"OPER root operpassword\r\n").await;
    ana.expect(" 381 ana ").await;
    let who = who_until(&mut cy, "#ops", &[" ana H*@ "]).await;
    assert!(
        who.trim_end()
            .ends_with(" anauser charla charla ana H*@ :0 Ana Real Name")
    );
    opers_until(&mut cy, 1).await;
    assert!(
        opers_until(&mut ana, 1)
            .await
            .iter()
            .any(|l| l.contains(" 252 ana 1 ")),
        "node one counts its own operator"
    );
    cy.send_raw(b"WHOIS ana\r\n").await;
    assert_eq!(
        cy.expect(" 313 cy ana ").await.trim_end(),
        ":charla 313 cy ana :is an IRC operator"
    );
    cy.expect(" 318 cy ana ").await;
    cy.send_raw(b"WHO #ops o\r\n").await;
    let only = cy.expect(" 352 cy #ops ").await;
    assert!(only.contains(" ana H*@ "), "{only}");
    assert!(cy.expect(" 315 cy #ops ").await.contains("End of WHO"));

    // Dropping `+o` is heard too; and an operator's node gone takes its count with it.
    ana.send_raw(b"MODE ana -o\r\n").await;
    ana.expect(" MODE ana :-o").await;
    opers_until(&mut cy, 0).await;
    who_until(&mut cy, "#ops", &[" ana H@ "]).await;
    ana.send_raw(b"OPER root operpassword\r\n").await;
    ana.expect(" 381 ana ").await;
    opers_until(&mut cy, 1).await;
    drop(ana);
    drop(one);
    opers_until(&mut cy, 0).await;
}
