//! What a room is besides its history — topic, modes, operators' accounts, bans — kept in
//! the `--data` database and in force again after a restart.

use serde_json::{Value, json};

use crate::store::{json_client, next_listening, serve_with, stop};
use crate::support::Client;

/// Sends `request` and returns the first reply of type `kind` or `error`.
async fn ask(c: &mut Client, request: Value, kind: &str) -> Value {
    c.send(&request.to_string()).await;
    loop {
        let v = c.json().await;
        if v["type"] == kind || v["type"] == "error" {
            return v;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rooms_topic_modes_operators_and_bans_survive_a_restart() {
    let (_dir, data) = data_dir();
    let data = data.as_str();

    let (charla, addr) = serve_with(&["--data", data], &[]);
    let mut ana = json_client(addr, "ana").await;
    register(&mut ana, "correct-horse").await;
    let joined = ask(&mut ana, json!({"type": "join", "room": "#Ops"}), "join").await;
    assert_eq!(joined["you"], true, "{joined}");
    let topic = json!({"type": "topic", "room": "#ops", "text": "deploys at 15:00"});
    assert_eq!(ask(&mut ana, topic, "topic").await["changed"], true);
    let modes = json!({"type": "mode", "room": "#ops", "modes": "+mklb sesame 5 eve"});
    let changed = ask(&mut ana, modes, "mode").await;
    assert_eq!(changed["modes"], "+mklb sesame 5 eve!*@*", "{changed}");
    drop(ana);
    stop(charla);

    let (charla, addr) = serve_with(&["--data", data], &[]);
    // The first to come back is no founder: the room kept its operator's account.
    let mut bob = json_client(addr, "bob").await;
    let refused = ask(&mut bob, json!({"type": "join", "room": "#ops"}), "join").await;
    assert_eq!(refused["code"], "bad_key", "the key is kept: {refused}");
    let with_key = json!({"type": "join", "room": "#ops", "key": "sesame"});
    let joined = ask(&mut bob, with_key, "join").await;
    assert_eq!(joined["you"], true, "{joined}");
    let topic = bob.expect_json("topic").await;
    assert_eq!(topic["text"], "deploys at 15:00", "{topic}");
    assert_eq!(topic["by"], "ana");
    let said = json!({"type": "say", "room": "#ops", "text": "hi"});
    assert_eq!(ask(&mut bob, said, "ack").await["code"], "moderated");
    let retopic = json!({"type": "topic", "room": "#ops", "text": "mine"});
    assert_eq!(
        ask(&mut bob, retopic, "topic").await["code"],
        "not_operator"
    );

    let mut eve = json_client(addr, "eve").await;
    let with_key = json!({"type": "join", "room": "#ops", "key": "sesame"});
    assert_eq!(ask(&mut eve, with_key, "join").await["code"], "banned");

    // The operator's account is one again, from a new connection, key or no key.
    let mut ana = json_client(addr, "ana-2").await;
    let login = json!({"type": "login", "nick": "ana", "password": "correct-horse"});
    assert_eq!(ask(&mut ana, login, "account").await["event"], "logged_in");
    let joined = ask(&mut ana, json!({"type": "join", "room": "#ops"}), "join").await;
    assert_eq!(joined["you"], true, "{joined}");
    let modes = ask(&mut ana, json!({"type": "mode", "room": "#ops"}), "modes").await;
    assert_eq!(modes["modes"], "+klmnt sesame 5", "{modes}");
    assert_eq!(modes["ops"], json!(["ana"]), "{modes}");
    let bans = ask(
        &mut ana,
        json!({"type": "mode", "room": "#ops", "modes": "+b"}),
        "bans",
    )
    .await;
    assert_eq!(bans["bans"][0]["mask"], "eve!*@*", "{bans}");
    // Lifting it all is kept too: a room back to a new room's modes keeps nothing.
    let lift = json!({"type": "mode", "room": "#ops", "modes": "-mklb * eve"});
    assert_eq!(ask(&mut ana, lift, "mode").await["type"], "mode");
    drop((ana, bob, eve));
    stop(charla);

    let (charla, addr) = serve_with(&["--data", data], &[]);
    let mut eve = json_client(addr, "eve").await;
    let joined = ask(&mut eve, json!({"type": "join", "room": "#ops"}), "join").await;
    assert_eq!(joined["you"], true, "no key, no ban any more: {joined}");
    let modes = ask(&mut eve, json!({"type": "mode", "room": "#ops"}), "modes").await;
    assert_eq!(modes["modes"], "+nt", "{modes}");
    assert_eq!(
        modes["ops"],
        json!([]),
        "ana's account is still its operator, not here now"
    );
    stop(charla);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ban_on_a_logged_in_nick_follows_its_account_through_a_restart_and_a_new_nick() {
    let (_dir, data) = data_dir();
    let data = data.as_str();

    let (charla, addr) = serve_with(&["--data", data], &[]);
    let mut ana = json_client(addr, "ana").await;
    let joined = ask(&mut ana, json!({"type": "join", "room": "#ops"}), "join").await;
    assert_eq!(joined["you"], true, "{joined}");
    let mut mal = json_client(addr, "mal").await;
    register(&mut mal, "correct-horse").await;
    let ban = json!({"type": "mode", "room": "#ops", "modes": "+b mal"});
    assert_eq!(ask(&mut ana, ban, "mode").await["modes"], "+b mal!*@*");
    drop((ana, mal));
    stop(charla);

    let (charla, addr) = serve_with(&["--data", data], &[]);
    let mut ana = json_client(addr, "ana").await;
    let joined = ask(&mut ana, json!({"type": "join", "room": "#ops"}), "join").await;
    assert_eq!(joined["you"], true, "{joined}");
    let mut mal = json_client(addr, "guest-mal").await;
    let login = json!({"type": "login", "nick": "mal", "password": "correct-horse"});
    assert_eq!(ask(&mut mal, login, "account").await["event"], "logged_in");
    let renamed = ask(&mut mal, json!({"type": "nick", "nick": "zed"}), "nick").await;
    assert_eq!(renamed["new"], "zed", "{renamed}");
    let refused = ask(&mut mal, json!({"type": "join", "room": "#ops"}), "join").await;
    assert_eq!(
        refused["code"], "banned",
        "the ban is mal's account's: {refused}"
    );

    // The ban list says whose account it follows; a guest is not kept out by it.
    let bans = json!({"type": "mode", "room": "#ops", "modes": "+b"});
    let bans = ask(&mut ana, bans, "bans").await;
    assert_eq!(bans["bans"][0]["mask"], "mal!*@*", "{bans}");
    assert_eq!(bans["bans"][0]["account"], "mal", "{bans}");
    let mut zoe = json_client(addr, "zoe").await;
    let joined = ask(&mut zoe, json!({"type": "join", "room": "#ops"}), "join").await;
    assert_eq!(joined["you"], true, "{joined}");
    stop(charla);
}

/// Whoever registers a deleted account's name again inherits none of its bans: the
/// rooms' bans keep their masks but no longer follow the account, in a room made now
/// (`#ops`) as in one kept in the file (`#den`, empty when the account goes).
#[tokio::test(flavor = "multi_thread")]
async fn an_unregistered_accounts_bans_keep_their_masks_and_follow_no_one() {
    let (_dir, data) = data_dir();
    let data = data.as_str();

    let (charla, addr) = serve_with(&["--data", data], &[]);
    let mut ana = json_client(addr, "ana").await;
    let mut mal = json_client(addr, "mal").await;
    register(&mut mal, "correct-horse").await;
    for room in ["#ops", "#den"] {
        let joined = join_own(&mut ana, room).await;
        assert_eq!(joined["you"], true, "{joined}");
        let ban = json!({"type": "mode", "room": room, "modes": "+b mal"});
        assert_eq!(ask(&mut ana, ban, "mode").await["modes"], "+b mal!*@*");
    }
    let left = {
        ana.send(r##"{"type":"leave","room":"#den"}"##).await;
        loop {
            let v = ana.json().await;
            if v["type"] == "leave" && v["you"] == true {
                break v;
            }
        }
    };
    assert_eq!(left["you"], true, "{left}");

    let gone = json!({"type": "unregister", "password": "correct-horse"});
    assert_eq!(
        ask(&mut mal, gone, "account").await["event"],
        "unregistered"
    );
    // Until its goodbye the nick is still held: a hello asking for it would stay a guest,
    // and the guest's name, not mal, would be registered next.
    mal.send(&json!({"type": "quit"}).to_string()).await;
    mal.until_closed().await;

    // Someone else registers the name, and goes by another nick.
    let mut max = json_client(addr, "mal").await;
    register(&mut max, "another-horse").await;
    let renamed = ask(&mut max, json!({"type": "nick", "nick": "max"}), "nick").await;
    assert_eq!(renamed["new"], "max", "{renamed}");
    let joined = join_own(&mut max, "#ops").await;
    assert_eq!(joined["you"], true, "{joined}");

    // The ban is still on the nick: the list shows its mask and no account.
    let bans = json!({"type": "mode", "room": "#ops", "modes": "+b"});
    let bans = ask(&mut ana, bans, "bans").await;
    assert_eq!(bans["bans"][0]["mask"], "mal!*@*", "{bans}");
    assert!(bans["bans"][0].get("account").is_none(), "{bans}");
    // …and keeps out whoever goes by that nick, the new account's owner too.
    max.send(r##"{"type":"leave","room":"#ops"}"##).await;
    let renamed = ask(&mut max, json!({"type": "nick", "nick": "mal"}), "nick").await;
    assert_eq!(renamed["new"], "mal", "{renamed}");
    let refused = join_own(&mut max, "#ops").await;
    assert_eq!(refused["code"], "banned", "{refused}");
    drop((ana, max));
    stop(charla);

    // #den was kept in the file when the account went: after a restart its ban follows
    // no one either.
    let (charla, addr) = serve_with(&["--data", data], &[]);
    let mut ana = json_client(addr, "ana").await;
    let joined = join_own(&mut ana, "#den").await;
    assert_eq!(joined["you"], true, "{joined}");
    let bans = json!({"type": "mode", "room": "#den", "modes": "+b"});
    let bans = ask(&mut ana, bans, "bans").await;
    assert_eq!(bans["bans"][0]["mask"], "mal!*@*", "{bans}");
    assert!(bans["bans"][0].get("account").is_none(), "{bans}");
    let mut max = json_client(addr, "max").await;
    let login = json!({"type": "login", "nick": "mal", "password": "another-horse"});
    let logged_in = ask(&mut max, login, "account").await;
    assert_eq!(logged_in["event"], "logged_in", "{logged_in}");
    let renamed = ask(&mut max, json!({"type": "nick", "nick": "max"}), "nick").await;
    assert_eq!(renamed["new"], "max", "{renamed}");
    let joined = join_own(&mut max, "#den").await;
    assert_eq!(joined["you"], true, "{joined}");
    stop(charla);
}

/// A data directory for a test's server, not made yet, and the temporary directory
/// holding it (gone when dropped).
fn data_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_str().unwrap().to_string();
    (dir, data)
}

/// Registers the nick `c` has with `password`.
async fn register(c: &mut Client, password: &str) {
    let request = json!({"type": "register", "password": password});
    let registered = ask(c, request, "account").await;
    assert_eq!(registered["event"], "registered", "{registered}");
}

/// Joins `room` and returns the answer: this client's own join, or an error (others'
/// joins to rooms it is in are skipped).
async fn join_own(c: &mut Client, room: &str) -> Value {
    join_keyed(c, json!({"type": "join", "room": room})).await
}

/// Sends `join` (a join request, with its key) and returns the answer, as `join_own`.
async fn join_keyed(c: &mut Client, join: Value) -> Value {
    c.send(&join.to_string()).await;
    loop {
        let v = c.json().await;
        if v["type"] == "error" || (v["type"] == "join" && v["you"] == true) {
            return v;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_founder_who_registers_afterwards_is_its_rooms_operator_again_after_it_empties_and_a_restart()
 {
    let (_dir, data) = data_dir();
    let data = data.as_str();

    let (charla, addr) = serve_with(&["--data", data], &[]);
    let mut ana = json_client(addr, "ana").await;
    let joined = join_own(&mut ana, "#den").await;
    assert_eq!(joined["you"], true, "{joined}");
    register(&mut ana, "correct-horse").await;
    let left = ask(&mut ana, json!({"type": "leave", "room": "#den"}), "leave").await;
    assert_eq!(left["type"], "leave", "{left}");

    // The room emptied, yet remembers ana's account: bob, first back, founds nothing.
    let mut bob = json_client(addr, "bob").await;
    assert_eq!(join_own(&mut bob, "#den").await["you"], true);
    let modes = ask(&mut bob, json!({"type": "mode", "room": "#den"}), "modes").await;
    assert_eq!(modes["ops"], json!([]), "{modes}");
    let joined = join_own(&mut ana, "#den").await;
    assert_eq!(joined["you"], true, "{joined}");
    let modes = ask(&mut ana, json!({"type": "mode", "room": "#den"}), "modes").await;
    assert_eq!(modes["ops"], json!(["ana"]), "{modes}");
    drop((ana, bob));
    stop(charla);

    let (charla, addr) = serve_with(&["--data", data], &[]);
    let mut bob = json_client(addr, "bob").await;
    assert_eq!(join_own(&mut bob, "#den").await["you"], true);
    let mut ana = json_client(addr, "ana-2").await;
    let login = json!({"type": "login", "nick": "ana", "password": "correct-horse"});
    assert_eq!(ask(&mut ana, login, "account").await["event"], "logged_in");
    assert_eq!(join_own(&mut ana, "#den").await["you"], true);
    let modes = ask(&mut ana, json!({"type": "mode", "room": "#den"}), "modes").await;
    assert_eq!(modes["ops"], json!(["ana"]), "bob founded nothing: {modes}");
    drop((ana, bob));
    stop(charla);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operators_account_coming_back_is_seen_made_operator_by_the_members() {
    let (_dir, data) = data_dir();
    let data = data.as_str();
    let (charla, addr) = serve_with(&["--data", data, "--listen", "irc://127.0.0.1:0"], &[]);
    let irc = next_listening(&charla, "irc");

    let mut ana = json_client(addr, "ana").await;
    register(&mut ana, "correct-horse").await;
    assert_eq!(join_own(&mut ana, "#den").await["you"], true);
    let left = ask(&mut ana, json!({"type": "leave", "room": "#den"}), "leave").await;
    assert_eq!(left["type"], "leave", "{left}");

    let mut bob = json_client(addr, "bob").await;
    assert_eq!(join_own(&mut bob, "#den").await["you"], true);
    let mut cy = Client::tcp(irc).await;
    cy.send("NICK cy\r\nUSER cy 0 * :cy\r\nJOIN #den").await;
    cy.expect(" 366 cy #den ").await;
    bob.expect_json("join").await;

    // ana comes back: operator again, and both members' lists hear of it.
    assert_eq!(join_own(&mut ana, "#den").await["you"], true);
    let opped = bob.expect_json("mode").await;
    assert_eq!(opped["room"], "#den", "{opped}");
    assert_eq!(opped["by"], "ana", "{opped}");
    assert_eq!(opped["modes"], "+o ana", "{opped}");
    cy.expect("JOIN #den").await;
    assert_eq!(
        cy.expect(" MODE ").await,
        ":ana!ana@charla MODE #den +o ana\r"
    );
    drop((ana, bob, cy));
    stop(charla);
}

/// A kept room's bans keep out its first joiner too: a room that kept bans but no
/// operator's account makes its first member operator, yet a banned user (by mask, or by
/// the account the ban follows) is refused, not made its founder, after a restart as
/// before it.
#[tokio::test(flavor = "multi_thread")]
async fn a_kept_ban_keeps_out_the_first_to_join_an_emptied_room() {
    let (_dir, data) = data_dir();
    let data = data.as_str();

    let (charla, addr) = serve_with(&["--data", data], &[]);
    let mut mal = json_client(addr, "mal").await;
    register(&mut mal, "correct-horse").await;
    // ana has no account: the room keeps its bans, and no operator's account.
    let mut ana = json_client(addr, "ana").await;
    assert_eq!(join_own(&mut ana, "#den").await["you"], true);
    let ban = json!({"type": "mode", "room": "#den", "modes": "+bb mal eve"});
    let banned = ask(&mut ana, ban, "mode").await;
    assert_eq!(banned["modes"], "+bb mal!*@* eve!*@*", "{banned}");
    let left = ask(&mut ana, json!({"type": "leave", "room": "#den"}), "leave").await;
    assert_eq!(left["type"], "leave", "{left}");

    // Empty now: the banned come first, and are kept out.
    let renamed = ask(&mut mal, json!({"type": "nick", "nick": "zed"}), "nick").await;
    assert_eq!(renamed["new"], "zed", "{renamed}");
    let refused = join_own(&mut mal, "#den").await;
    assert_eq!(refused["code"], "banned", "by account: {refused}");
    let mut eve = json_client(addr, "eve").await;
    let refused = join_own(&mut eve, "#den").await;
    assert_eq!(refused["code"], "banned", "by mask: {refused}");
    drop((ana, mal, eve));
    stop(charla);

    let (charla, addr) = serve_with(&["--data", data], &[]);
    let mut mal = json_client(addr, "zed").await;
    let login = json!({"type": "login", "nick": "mal", "password": "correct-horse"});
    assert_eq!(ask(&mut mal, login, "account").await["event"], "logged_in");
    let renamed = ask(&mut mal, json!({"type": "nick", "nick": "zed"}), "nick").await;
    assert_eq!(renamed["new"], "zed", "{renamed}");
    let refused = join_own(&mut mal, "#den").await;
    assert_eq!(refused["code"], "banned", "by account: {refused}");
    let mut eve = json_client(addr, "eve").await;
    let refused = join_own(&mut eve, "#den").await;
    assert_eq!(refused["code"], "banned", "by mask: {refused}");
    // Whoever is not banned founds it, and finds the bans in force.
    let mut bob = json_client(addr, "bob").await;
    assert_eq!(join_own(&mut bob, "#den").await["you"], true);
    let modes = ask(&mut bob, json!({"type": "mode", "room": "#den"}), "modes").await;
    assert_eq!(modes["ops"], json!(["bob"]), "{modes}");
    let bans = json!({"type": "mode", "room": "#den", "modes": "+b"});
    let bans = ask(&mut bob, bans, "bans").await;
    assert_eq!(bans["bans"].as_array().map(Vec::len), Some(2), "{bans}");
    drop((mal, eve, bob));
    stop(charla);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_key_is_asked_of_the_first_to_join_an_emptied_room() {
    let (_dir, data) = data_dir();
    let data = data.as_str();

    let (charla, addr) = serve_with(&["--data", data], &[]);
    // ana has no account: the room keeps its key, and no operator's account.
    let mut ana = json_client(addr, "ana").await;
    assert_eq!(join_own(&mut ana, "#vault").await["you"], true);
    let key = json!({"type": "mode", "room": "#vault", "modes": "+k sesame"});
    assert_eq!(ask(&mut ana, key, "mode").await["modes"], "+k sesame");
    let left = ask(
        &mut ana,
        json!({"type": "leave", "room": "#vault"}),
        "leave",
    )
    .await;
    assert_eq!(left["type"], "leave", "{left}");
    let mut eve = json_client(addr, "eve").await;
    let refused = join_own(&mut eve, "#vault").await;
    assert_eq!(refused["code"], "bad_key", "emptied: {refused}");
    drop((ana, eve));
    stop(charla);

    let (charla, addr) = serve_with(&["--data", data], &[]);
    let mut eve = json_client(addr, "eve").await;
    let refused = join_own(&mut eve, "#vault").await;
    assert_eq!(refused["code"], "bad_key", "after a restart: {refused}");
    let wrong = json!({"type": "join", "room": "#vault", "key": "open"});
    let refused = join_keyed(&mut eve, wrong).await;
    assert_eq!(refused["code"], "bad_key", "a wrong key: {refused}");
    // Whoever has the key founds it.
    let mut bob = json_client(addr, "bob").await;
    let join = json!({"type": "join", "room": "#vault", "key": "sesame"});
    let joined = join_keyed(&mut bob, join).await;
    assert_eq!(joined["you"], true, "{joined}");
    let modes = ask(&mut bob, json!({"type": "mode", "room": "#vault"}), "modes").await;
    assert_eq!(modes["ops"], json!(["bob"]), "{modes}");
    drop((eve, bob));
    stop(charla);
}

/// Rooms whose state waits for the store's writer when an account is deleted: each is
/// tried with its own account, the unregister let through a different while after the
/// room's state was queued.
const RACED_ROOMS: u64 = 4;

/// A ban on an account's nick, set just before the room empties and the account is
/// deleted, is a room's state queued to the store's writer with the account in it. The
/// file's write lock is held from another connection meanwhile, so that write and the
/// account's deletion both wait, and whichever gets the lock first goes first: the account
/// must not come back with the room's state, seen after a restart as a ban that follows it.
#[tokio::test(flavor = "multi_thread")]
async fn an_unregistered_account_is_not_written_back_by_a_rooms_state_queued_before() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("charla.db");
    let data = data.to_str().unwrap();

    let (charla, addr) = serve_with(&["--data", data, "--flood-rate", "0"], &[]);
    let mut ana = json_client(addr, "ana").await;
    for n in 0..RACED_ROOMS {
        let (room, nick) = (format!("#den{n}"), format!("mal{n}"));
        let mut mal = json_client(addr, &nick).await;
        let register = json!({"type": "register", "password": "correct-horse"});
        // As long as a password's hash takes here, about what checking one takes.
        let hashing = std::time::Instant::now();
        let registered = ask(&mut mal, register, "account").await;
        assert_eq!(registered["event"], "registered", "{registered}");
        let hashing = hashing.elapsed();
        assert_eq!(join_own(&mut ana, &room).await["you"], true);
        // The ban's write waits for the lock.
        let mut blocker = rusqlite::Connection::open(&db).unwrap();
        let hold = blocker
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let ban = json!({"type": "mode", "room": room, "modes": format!("+b {nick}")});
        assert_eq!(
            ask(&mut ana, ban, "mode").await["modes"],
            format!("+b {nick}!*@*")
        );
        let bans = json!({"type": "mode", "room": room, "modes": "+b"});
        let bans = ask(&mut ana, bans, "bans").await;
        assert_eq!(bans["bans"][0]["account"], nick.as_str(), "{bans}");

        let left = ask(&mut ana, json!({"type": "leave", "room": room}), "leave").await;
        assert_eq!(left["type"], "leave", "{left}");
        // Not measures of anything: the writer waits a while first, and the lock is let
        // go about when the deletion, once its password is checked, waits for it too,
        // at a different moment in each room.
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let gone = json!({"type": "unregister", "password": "correct-horse"});
        mal.send(&gone.to_string()).await;
        let step = std::time::Duration::from_millis(10 * n);
        tokio::time::sleep(hashing + step).await;
        hold.rollback().unwrap();
        let answer = mal.expect_json("account").await;
        assert_eq!(answer["event"], "unregistered", "{answer}");
    }
    drop(ana);
    stop(charla);

    let (charla, addr) = serve_with(&["--data", data, "--flood-rate", "0"], &[]);
    let mut ana = json_client(addr, "ana").await;
    for n in 0..RACED_ROOMS {
        let room = format!("#den{n}");
        assert_eq!(join_own(&mut ana, &room).await["you"], true);
        let bans = json!({"type": "mode", "room": room, "modes": "+b"});
        let bans = ask(&mut ana, bans, "bans").await;
        assert_eq!(bans["bans"][0]["mask"], format!("mal{n}!*@*"), "{bans}");
        assert!(
            bans["bans"][0].get("account").is_none(),
            "{room}'s ban follows the deleted account again: {bans}"
        );
    }
    drop(ana);
    stop(charla);
}
