//! What a room keeps across the nodes of a cluster: its topic, modes and bans set on one
//! node hold on every node and on a node started later; operators made anywhere, kicks and
//! invitations reach the node of the member they name. A real redis-server, real
//! `charla serve --cluster` processes.

use crate::cluster::{Node, Redis, ask_until, member_until};
use std::time::{Duration, Instant};

use crate::support::{Client, PATIENCE};

/// `client` on `node` joins `room` once its node knows `nick` is there, so that it joins
/// the room the others made rather than founding one of its own.
pub(crate) async fn join_after(client: &mut Client, room: &str, nick: &str) {
    member_until(client, room, nick).await;
    client.send(&format!("/join {room}")).await;
    client.expect(&format!("{room} *** you joined")).await;
}

#[tokio::test]
async fn topics_modes_bans_ops_kicks_and_invitations_hold_on_every_node() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    ana.send("/join #ops").await;
    ana.expect("#ops *** you joined").await;
    let mut bob = two.text("bob").await;
    join_after(&mut bob, "#ops", "ana").await;
    // The first member cluster-wide is the room's operator; bob, on another node, is not.
    bob.send("/topic mine now").await;
    bob.expect("ERROR not_operator").await;

    // What ana sets on node one is announced on node two, and holds there.
    ana.send("/topic deploys at noon").await;
    bob.expect("#ops *** ana set the topic: deploys at noon")
        .await;
    ana.send("/ban carl").await;
    bob.expect("#ops *** ana set mode +b carl!*@*").await;
    ana.send("/mode +k sesame").await;
    bob.expect("#ops *** ana set mode +k sesame").await;
    let mut carl = two.text("carl").await;
    carl.send("/join #ops sesame").await;
    carl.expect("ERROR banned").await;
    let mut dan = two.text("dan").await;
    dan.send("/join #ops").await;
    dan.expect("ERROR bad_key").await;
    dan.send("/join #ops sesame").await;
    dan.expect("#ops *** you joined").await;
    dan.expect("#ops *** topic: deploys at noon (set by ana)")
        .await;
    // Redis keeps it, for nodes to come.
    let topic = redis.command(&["HGET", "charla:room:#ops", "topic"]);
    assert!(topic.contains("deploys at noon"), "{topic}");

    // An operator made on node one is one on node two; ops hold wherever they were given.
    ana.send("/mode +o bob").await;
    bob.expect("#ops *** ana set mode +o bob").await;
    bob.send("/topic bob's now").await;
    ana.expect("#ops *** bob set the topic: bob's now").await;
    // A member of node two kicked from node one leaves the room on node two.
    ana.send("/kick dan enough").await;
    dan.expect("#ops *** dan was kicked by ana (enough)").await;
    bob.expect("#ops *** dan was kicked by ana (enough)").await;

    // Invite-only: refused on node two until an operator on node one invites (dan, no
    // longer a member since the kick, is checked as a newcomer is).
    bob.send("/mode +i").await;
    ana.expect("#ops *** bob set mode +i").await;
    dan.send("/join #ops sesame").await;
    dan.expect("ERROR invite_only").await;
    ana.send("/invite dan #ops").await;
    ana.expect("*** you invited dan to #ops").await;
    dan.expect("*** ana invites you to #ops").await;
    dan.send("/join #ops sesame").await;
    dan.expect("#ops *** you joined").await;

    // A node started later has all of it from Redis.
    let three = Node::start(&redis, "three");
    let mut erin = three.text("erin").await;
    member_until(&mut erin, "#ops", "ana").await;
    erin.send("/join #ops sesame").await;
    erin.expect("ERROR invite_only").await;
    // Node one knows erin before ana invites her.
    ask_until(&mut ana, "/whois erin", "*** erin is in").await;
    ana.send("/invite erin #ops").await;
    erin.expect("*** ana invites you to #ops").await;
    erin.send("/join #ops sesame").await;
    erin.expect("#ops *** you joined").await;
    erin.expect("#ops *** topic: bob's now (set by bob)").await;
    erin.send("/mode").await;
    erin.expect("#ops *** modes +iknt sesame").await;
    drop((one, two, three));
}

#[tokio::test]
async fn bad_room_state_in_redis_is_skipped_and_the_rest_read() {
    let redis = Redis::start();
    // Written before any node starts: a broken topic, a mode that is no flag, a foreign
    // field, a good `+m`, and a key of the wrong type under the rooms' prefix.
    let written = redis.command(&[
        "HSET",
        "charla:room:#bad",
        "topic",
        "{oops",
        "n",
        "maybe",
        "x",
        "1",
        "m",
        "1",
    ]);
    assert!(written.starts_with(':'), "{written}");
    redis.command(&["SET", "charla:room:#str", "not a hash"]);
    let one = Node::start(&redis, "one");
    let _ana = one.text("ana").await;
    // Node two has read Redis once it has heard who is on node one.
    let two = Node::start(&redis, "two");
    let mut bob = two.text("bob").await;
    member_until(&mut bob, "#lobby", "ana").await;
    bob.send("/join #bad").await;
    bob.expect("#bad *** you joined").await;
    bob.send("/mode").await;
    bob.expect("+mnt").await;
    bob.send("/topic").await;
    bob.expect("#bad *** no topic is set").await;
    bob.send("/join #str").await;
    bob.expect("#str *** you joined").await;
    bob.send("/mode").await;
    bob.expect("+nt").await;
}

#[tokio::test]
async fn an_account_registered_on_one_node_protects_its_nick_and_logs_in_on_another() {
    let redis = Redis::start();
    // A foreign account key with no name: skipped as the nodes read the accounts.
    redis.command(&["HSET", "charla:account:zz", "phc", "x"]);
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    ana.send("/register correct-horse").await;
    ana.expect("*** ana is registered to you").await;
    // Only its hash is in Redis.
    let phc = redis.command(&["HGET", "charla:account:ana", "phc"]);
    assert!(
        phc.contains("$argon2") && !phc.contains("correct-horse"),
        "{phc}"
    );
    ana.send("/quit").await;

    // Node two protects the nick once ana is gone, and logs her in with her password.
    let mut other = two.text("other").await;
    ask_until(&mut other, "/nick ana", "ERROR nick_registered").await;
    other.send("/login ana battery-staple").await;
    other.expect("ERROR bad_password").await;
    other.send("/login ana correct-horse").await;
    other.expect("*** you are now known as ana").await;
    // A token made on node two logs in on node one.
    other.send("/token new ci").await;
    let made = other.expect("*** token ci: ").await;
    let token = made
        .split_whitespace()
        .find(|w| w.starts_with("charla_"))
        .unwrap_or_else(|| panic!("no token in {made:?}"))
        .to_string();
    other.send("/quit").await;
    let mut ci = Client::tcp(one.tcp).await;
    ci.expect("*** Welcome").await;
    ci.send(&format!(r#"{{"type":"hello","token":"{token}"}}"#))
        .await;
    let logged = ci.expect_json("account").await;
    assert_eq!(logged["account"], "ana", "{logged}");
}

#[tokio::test]
async fn whois_of_a_user_on_another_node_tells_their_rooms_away_message_and_account() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    ana.send("/register correct-horse").await;
    ana.expect("*** ana is registered to you").await;
    ana.send("/away at lunch").await;
    ana.expect("*** you are marked away: at lunch").await;
    let mut bob = two.text("bob").await;
    ask_until(&mut bob, "/whois ana", "away: at lunch").await;
    let mut cy = two.irc("cy").await;
    cy.send_raw(b"WHOIS ana\r\n").await;
    cy.expect(" 319 cy ana :#lobby").await;
    cy.expect(" 330 cy ana ana :is logged in as").await;
    cy.expect(" 301 cy ana :at lunch").await;
    // Back: the others hear that too.
    ana.send("/away").await;
    ana.expect("*** you are back").await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        bob.send("/whois ana").await;
        let line = bob.expect("*** ana is in").await;
        if !line.contains("away") {
            break;
        }
        assert!(Instant::now() < deadline, "still away: {line}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls Redis until `room`'s field `field` holds `needle`.
fn redis_until(redis: &Redis, room: &str, field: &str, needle: &str) {
    let key = format!("charla:room:{room}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = redis.command(&["HGET", &key, field]);
        if value.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key} {field} never held {needle:?}: {value:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The node's account connection, broken by a restart of Redis, is made again for the next
/// account request rather than failing it with `store_failed`.
#[tokio::test]
async fn the_first_registration_after_redis_restarted_succeeds() {
    let mut redis = Redis::start();
    let one = Node::start(&redis, "one");
    let mut ana = one.text("ana").await;
    ana.send("/register correct-horse").await;
    ana.expect("*** ana is registered to you").await;
    redis.stop();
    ana.expect("*** cross-node delivery interrupted").await;
    redis.restart();
    ana.expect("*** cross-node delivery restored").await;

    let mut bob = one.text("bob").await;
    bob.send("/register battery-staple").await;
    bob.expect("*** bob is registered to you").await;
}

#[tokio::test]
async fn room_changes_in_an_outage_are_shared_once_redis_is_back_and_an_emptied_redis_is_refilled()
{
    let mut redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    ana.send("/join #dev").await;
    ana.expect("#dev *** you joined").await;
    ana.send("/topic kept through restarts").await;
    ana.expect("#dev *** ana set the topic: kept through restarts")
        .await;
    ana.send("/join #ops").await;
    ana.expect("#ops *** you joined").await;
    let mut bob = two.text("bob").await;
    join_after(&mut bob, "#ops", "ana").await;
    redis_until(&redis, "#dev", "topic", "kept through restarts");

    // Redis goes, and comes back empty (no persistence): what ana did meanwhile is
    // shared then, and what the rooms kept before is written back by the nodes.
    redis.stop();
    ana.expect("*** cross-node delivery interrupted").await;
    bob.expect("*** cross-node delivery interrupted").await;
    ana.send("/topic #ops set in the outage").await;
    ana.expect("#ops *** ana set the topic: set in the outage")
        .await;
    ana.send("/mode #ops +m").await;
    ana.expect("#ops *** ana set mode +m").await;
    redis.restart();
    ask_until(&mut bob, "/topic #ops", "set in the outage").await;
    ask_until(&mut bob, "/mode #ops", "+mnt").await;
    redis_until(&redis, "#ops", "topic", "set in the outage");
    redis_until(&redis, "#ops", "m", "1");
    redis_until(&redis, "#dev", "topic", "kept through restarts");

    // A node started after it all has every room's state from Redis.
    let three = Node::start(&redis, "three");
    let mut erin = three.text("erin").await;
    member_until(&mut erin, "#ops", "ana").await;
    erin.send("/join #dev").await;
    erin.expect("#dev *** topic: kept through restarts (set by ana)")
        .await;
    erin.send("/join #ops").await;
    erin.expect("#ops *** topic: set in the outage (set by ana)")
        .await;
    erin.send("/mode #ops").await;
    erin.expect("#ops *** modes +mnt").await;
}

/// When `client` (JSON) is told `room` was made (`modes`'s `created`).
async fn created(client: &mut Client, room: &str) -> u64 {
    client
        .send(&format!(r#"{{"type":"mode","room":"{room}"}}"#))
        .await;
    let modes = client.expect_json("modes").await;
    modes["created"]
        .as_u64()
        .unwrap_or_else(|| panic!("{modes}"))
}

/// Asks `client` (JSON, in `room`) when `room` was made until it says `made`: its node
/// hears the cluster's time as Redis publishes it.
async fn created_until(client: &mut Client, room: &str, made: u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let told = created(client, room).await;
        if told == made {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{room} was made at {made}, this node says {told}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn join_json(client: &mut Client, room: &str) {
    client
        .send(&format!(r#"{{"type":"join","room":"{room}"}}"#))
        .await;
    // Others' joins (told by other nodes) may come first.
    loop {
        let joined = client.expect_json("join").await;
        if joined["you"] == true && joined["room"] == room {
            return;
        }
    }
}

#[tokio::test]
async fn a_rooms_creation_time_is_when_it_was_first_made_anywhere_on_every_node() {
    let mut redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.json("ana").await;
    join_json(&mut ana, "#ops").await;
    let made = created(&mut ana, "#ops").await;
    // Kept in the room's hash, by the node that made it first.
    redis_until(&redis, "#ops", "c", &made.to_string());
    // Later than ana's, a node's own time would differ from it.
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Node two makes the room as bob joins it: it shows ana's time, not its own.
    let mut bob = two.json("bob").await;
    join_json(&mut bob, "#ops").await;
    created_until(&mut bob, "#ops", made).await;

    // The room empties on node two, which restarts: made again there, it is the same.
    bob.send(r##"{"type":"leave","room":"#ops"}"##).await;
    bob.expect_json("leave").await;
    drop((bob, two));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let two = Node::start(&redis, "two");
    let mut cy = two.json("cy").await;
    join_json(&mut cy, "#ops").await;
    created_until(&mut cy, "#ops", made).await;

    // Redis restarts empty: the nodes write the room back, its creation time with it, and
    // a node started after has it from Redis; IRC's 329 says it in seconds.
    redis.stop();
    redis.restart();
    redis_until(&redis, "#ops", "c", &made.to_string());
    let three = Node::start(&redis, "three");
    let mut dee = three.irc("dee").await;
    dee.send("JOIN #ops").await;
    dee.expect(" 366 dee #ops ").await;
    let said = format!(":charla 329 dee #ops {}", made / 1000);
    let deadline = Instant::now() + PATIENCE;
    loop {
        dee.send("MODE #ops").await;
        dee.expect(" 324 dee #ops ").await;
        let line = dee.line().await;
        if line.trim_end() == said {
            break;
        }
        assert!(Instant::now() < deadline, "never {said:?}; last {line:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop((ana, cy, one, two, three));
}

/// Where Redis keeps `mal`'s operator account and ban of `#den`: under the name and the
/// mask's pattern as compared, folded (`m` reads as `rn`).
const MAL_OP: &str = "op:rnal";
const MAL_BAN: &str = "ban:rnal";

/// Polls Redis until `#den` no longer names the account `mal`: no operator's account of
/// it, and its ban follows no account; returns the ban.
fn redis_until_mal_is_forgotten(redis: &Redis) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let op = redis.command(&["HEXISTS", "charla:room:#den", MAL_OP]);
        let ban = redis.command(&["HGET", "charla:room:#den", MAL_BAN]);
        if op.starts_with(":0") && !ban.contains(r#""account":""#) {
            return ban;
        }
        assert!(
            Instant::now() < deadline,
            "#den in Redis still names the account mal: {op:?} {ban:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An account deleted on one node is forgotten by the rooms the cluster keeps in Redis,
/// empty ones included: after the nodes restart, whoever registers the name again is
/// neither banned by the old owner's ban (which still names the nick) nor the room's
/// operator.
#[tokio::test]
async fn an_unregistered_account_is_forgotten_by_the_rooms_kept_in_redis() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    ana.send("/register correct-horse").await;
    ana.expect("*** ana is registered to you").await;
    ana.send("/join #den").await;
    ana.expect("#den *** you joined").await;
    let mut mal = two.text("mal").await;
    mal.send("/register battery-staple").await;
    mal.expect("*** mal is registered to you").await;
    join_after(&mut mal, "#den", "ana").await;
    ana.expect("#den *** mal joined").await;
    ana.send("/mode +o mal").await;
    mal.expect("#den *** ana set mode +o mal").await;
    mal.send("/leave #den").await;
    mal.expect("#den *** you left").await;
    ana.send("/ban mal").await;
    ana.expect("#den *** ana set mode +b mal!*@*").await;
    redis_until(&redis, "#den", MAL_OP, "mal");
    redis_until(&redis, "#den", MAL_BAN, r#""account":"mal""#);
    // Empty on every node: kept in Redis alone.
    ana.send("/leave #den").await;
    ana.expect("#den *** you left").await;

    mal.send("/unregister battery-staple").await;
    mal.expect("*** the account mal is deleted").await;
    let ban = redis_until_mal_is_forgotten(&redis);
    assert!(ban.contains("mal!*@*"), "the ban keeps its mask: {ban}");
    drop((ana, mal, one, two));

    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut max = two.text("mal").await;
    max.send("/register another-horse").await;
    max.expect("*** mal is registered to you").await;
    max.send("/nick max").await;
    max.expect("*** you are now known as max").await;
    max.send("/join #den").await;
    max.expect("#den *** you joined").await;
    max.send("/topic mine").await;
    max.expect("ERROR not_operator").await;
    let mut ana = one.text("guest").await;
    ana.send("/login ana correct-horse").await;
    ana.expect("*** you are now known as ana").await;
    join_after(&mut ana, "#den", "max").await;
    ana.send("/mode +b").await;
    let bans = ana.expect("mal!*@*").await;
    assert!(!bans.contains("account"), "{bans}");
    drop((ana, max, one, two));
}
