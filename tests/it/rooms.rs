//! Rooms are bounded: per client, in all, in the joins a hello may make at once, and in the
//! history each keeps.

use charla::limits::Limits;
use serde_json::Value;

use crate::support::{Client, TestServer};

/// A hello joining `count` rooms named `#PREFIX-N`.
fn hello_joining(prefix: &str, count: usize) -> String {
    let rooms: Vec<String> = (0..count).map(|n| format!("\"#{prefix}-{n}\"")).collect();
    format!(r#"{{"type":"hello","rooms":[{}]}}"#, rooms.join(","))
}

/// Reads JSON lines up to the welcome that closes a hello: the error codes on the way and
/// the rooms the welcome lists.
async fn hello_outcome(client: &mut Client) -> (Vec<String>, Vec<String>) {
    let mut errors = Vec::new();
    loop {
        let event: Value = client.json().await;
        match event["type"].as_str() {
            Some("error") => errors.push(event["code"].as_str().unwrap().to_owned()),
            Some("welcome") => {
                let rooms = event["rooms"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_owned())
                    .collect();
                return (errors, rooms);
            }
            _ => {}
        }
    }
}

async fn text_client_switched(server: &TestServer) -> Client {
    let mut c = Client::tcp(server.tcp()).await;
    c.expect("you joined").await;
    c
}

#[tokio::test]
async fn each_room_a_hello_joins_counts_against_flood_control() {
    // Flood control's default burst of 20 lines, refilled at 1 line a second rather than
    // the default 5: on a loaded machine the hello's steps could take the 200 ms in which
    // one more line is allowed (seen once in a whole-suite run), and the count below is
    // exact.
    let server = TestServer::with(Limits {
        flood_rate: 1,
        ..Limits::default()
    })
    .await;
    let mut flooder = text_client_switched(&server).await;
    flooder.send(&hello_joining("f", 240)).await;
    let (errors, rooms) = hello_outcome(&mut flooder).await;
    assert_eq!(
        errors,
        ["flood"],
        "one refusal for the steps not carried out"
    );
    // The hello line and 19 more steps fit in the burst: 20 rooms, #lobby besides.
    assert_eq!(rooms.len(), 21, "{rooms:?}");

    // Nobody else was held up: a newcomer chats in #lobby at once.
    let mut ana = server.named("ana").await;
    let mut bea = server.named("bea").await;
    ana.expect("now known as bea").await;
    bea.send("still here").await;
    ana.expect("<bea> still here").await;
}

#[tokio::test]
async fn a_client_may_be_in_at_most_its_bound_of_rooms() {
    let server = TestServer::with(Limits {
        flood_rate: 0,
        max_rooms_per_client: 5,
        ..Limits::default()
    })
    .await;
    let mut client = text_client_switched(&server).await;
    client.send(&hello_joining("p", 10)).await;
    let (errors, rooms) = hello_outcome(&mut client).await;
    assert_eq!(rooms.len(), 5, "#lobby and four more: {rooms:?}");
    assert_eq!(errors, vec!["too_many_rooms"; 6]);

    // In text too, with a sentence that says what to do.
    let mut text = server.client().await;
    for n in 0..4 {
        text.send(&format!("/join #t{n}")).await;
        text.expect(&format!("#t{n} *** you joined")).await;
    }
    text.send("/join #t4").await;
    let refusal = text.expect("ERROR").await;
    assert!(
        refusal.starts_with("ERROR too_many_rooms: you are in 5 rooms"),
        "{refusal}"
    );
    text.send("/leave #t0").await;
    text.expect("you left").await;
    text.send("/join #t4").await;
    text.expect("#t4 *** you joined").await;
}

#[tokio::test]
async fn rooms_in_all_are_bounded_and_rooms_that_exist_stay_open() {
    let server = TestServer::with(Limits {
        flood_rate: 0,
        max_rooms: 8,
        ..Limits::default()
    })
    .await;
    let mut makers = Vec::new();
    let mut outcomes = Vec::new();
    for prefix in ["a", "b", "c"] {
        let mut maker = text_client_switched(&server).await;
        maker.send(&hello_joining(prefix, 3)).await;
        let (errors, rooms) = hello_outcome(&mut maker).await;
        outcomes.push((errors, rooms.len() - 1));
        makers.push((maker, prefix));
    }
    assert_eq!(outcomes[0], (vec![], 3));
    assert_eq!(outcomes[1], (vec![], 3));
    assert_eq!(
        outcomes[2],
        (vec!["too_many_rooms".to_owned()], 2),
        "nine rooms asked for, eight made"
    );

    // A room that exists can still be joined; a new one cannot, until one ends.
    let mut ana = server.client().await;
    ana.send("/join #a-0").await;
    ana.expect("#a-0 *** you joined").await;
    ana.send("/join #new").await;
    let refusal = ana.expect("ERROR").await;
    assert!(refusal.starts_with("ERROR too_many_rooms: "), "{refusal}");
    let (mut first, prefix) = makers.remove(0);
    first.send(r#"{"type":"quit"}"#).await;
    first.until_closed().await;
    assert_eq!(prefix, "a");
    // #a-1 and #a-2 ended with their only member; #a-0 has ana in it still.
    ana.expect("#a-0 *** ").await;
    ana.send("/join #new").await;
    ana.expect("#new *** you joined").await;
}

#[tokio::test]
async fn a_rooms_history_is_bounded_in_bytes() {
    let server = TestServer::with(Limits {
        flood_rate: 0,
        history_room_bytes: 2500,
        ..Limits::default()
    })
    .await;
    let mut ana = server.named("ana").await;
    for word in ["first", "second", "third"] {
        ana.send(&format!("{word} {}", "x".repeat(1000))).await;
    }
    ana.send("/users").await;
    ana.expect("#lobby *** 1 here: ana").await;
    let mut bea = server.client().await;
    bea.send("/history").await;
    // The users answer marks the end of the history.
    bea.send("/users").await;
    let mut replayed = Vec::new();
    loop {
        let line = bea.line().await;
        if !line.contains("[history") {
            break;
        }
        replayed.push(line.split_whitespace().nth(5).unwrap().to_owned());
    }
    assert_eq!(
        replayed,
        ["second", "third"],
        "the newest that fit 2,500 bytes"
    );
}

/// With one room a connection, the refusal says "1 room", not "1 rooms".
#[tokio::test]
async fn the_refusal_at_one_room_a_connection_says_room_in_the_singular() {
    let server = TestServer::with(Limits {
        max_rooms_per_client: 1,
        ..Limits::default()
    })
    .await;
    let mut ana = server.client().await;
    ana.send("/join #dev").await;
    let refusal = ana.expect("ERROR").await;
    assert!(
        refusal.starts_with("ERROR too_many_rooms: you are in 1 room, the most"),
        "{refusal}"
    );
}
