//! The hub without sockets: recipients that record what they are told.

use std::sync::{Arc, Mutex};

use super::*;
use crate::fanout::recorder::Recorder;
use crate::limits::{Limits, MEMBERS_SHOWN_ON_JOIN};

struct Member {
    id: SessionId,
    inbox: Arc<Recorder>,
}

/// A hub alone whose rooms keep `history` messages.
pub(super) fn hub_keeping(history: usize) -> Hub {
    Hub::new(&Limits {
        history_per_room: history,
        ..Limits::default()
    })
}

fn join(hub: &Hub) -> Member {
    join_with(hub, Recorder::default())
}

fn join_with(hub: &Hub, recorder: Recorder) -> Member {
    let inbox = Arc::new(recorder);
    let id = hub.register(inbox.clone(), None).unwrap();
    Member { id, inbox }
}

fn named(hub: &Hub, nick: &str) -> Member {
    let m = join(hub);
    hub.apply(m.id, Command::Nick(Nick::parse(nick).unwrap()).into());
    m.inbox.take();
    m
}

fn say(text: &str) -> Request {
    Command::Say {
        room: None,
        text: MessageText::new(text).unwrap(),
        action: false,
    }
    .into()
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(said) => Some(format!("{}:{}", said.from, said.text)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_newcomer_is_welcomed_into_the_lobby_and_announced() {
    let hub = hub_keeping(10);
    let ana = named(&hub, "ana");
    let guest = join(&hub);
    let events = guest.inbox.take();
    assert!(matches!(&events[0], Event::Welcome { nick, rooms, .. }
        if nick.as_str().starts_with("guest-") && rooms == &vec![RoomName::lobby()]));
    assert!(matches!(&events[1], Event::Joined { you: true, members, .. } if members.len() == 2));
    assert!(
        matches!(&ana.inbox.take()[..], [Event::Joined { you: false, nick, .. }]
        if nick.as_str().starts_with("guest-"))
    );
}

#[test]
fn messages_reach_every_other_member_once_and_are_acknowledged() {
    let hub = hub_keeping(10);
    let (ana, bob, eve) = (named(&hub, "ana"), named(&hub, "bob"), named(&hub, "eve"));
    ana.inbox.take();
    bob.inbox.take();
    hub.apply(ana.id, say("hola"));
    assert!(matches!(&ana.inbox.take()[..], [Event::Ack { .. }]));
    assert_eq!(texts(&bob.inbox.take()), ["ana:hola"]);
    assert_eq!(texts(&eve.inbox.take()), ["ana:hola"]);
}

#[test]
fn rooms_keep_their_messages_to_themselves() {
    let hub = hub_keeping(10);
    let (ana, bob) = (named(&hub, "ana"), named(&hub, "bob"));
    hub.apply(ana.id, Command::Join(room("#ops")).into());
    bob.inbox.take();
    hub.apply(ana.id, say("only ops"));
    assert!(texts(&bob.inbox.take()).is_empty());
    // Named room takes precedence over the current one.
    hub.apply(
        ana.id,
        Command::Say {
            room: Some(RoomName::lobby()),
            text: MessageText::new("lobby again").unwrap(),
            action: false,
        }
        .into(),
    );
    assert_eq!(texts(&bob.inbox.take()), ["ana:lobby again"]);
}

#[test]
fn nicks_are_unique_regardless_of_case() {
    let hub = hub_keeping(10);
    let _ana = named(&hub, "Begoña");
    let bob = named(&hub, "bob");
    hub.apply(bob.id, Command::Nick(Nick::parse("BEGOÑA").unwrap()).into());
    assert!(matches!(&bob.inbox.take()[..],
        [Event::Error { code: ErrorCode::NickTaken, message }] if message.contains("still bob")));
    // Changing only the case of one's own nick is allowed.
    hub.apply(bob.id, Command::Nick(Nick::parse("Bob").unwrap()).into());
    assert!(matches!(&bob.inbox.take()[..],
        [Event::NickChanged { new, you: true, .. }] if new.as_str() == "Bob"));
}

/// The nick table keeps only session ids and finds them through their sessions' nicks:
/// lookups must survive the table growing, renames and departures.
#[test]
fn nicks_are_found_after_many_arrivals_renames_and_departures() {
    let hub = hub_keeping(10);
    let members: Vec<_> = (0..300).map(|i| named(&hub, &format!("u{i}"))).collect();
    for (i, m) in members.iter().enumerate().take(150) {
        hub.apply(
            m.id,
            Command::Nick(Nick::parse(&format!("V{i}")).unwrap()).into(),
        );
    }
    hub.apply(members[200].id, Command::Quit { message: None }.into());
    let newcomer = named(&hub, "probe");
    // Freed by a rename and by a departure; held under another case, and never renamed.
    for (nick, free) in [("U7", true), ("u200", true), ("v7", false), ("U250", false)] {
        hub.apply(
            newcomer.id,
            Command::Nick(Nick::parse(nick).unwrap()).into(),
        );
        let answer = newcomer.inbox.take();
        let took = matches!(&answer[..], [Event::NickChanged { you: true, .. }]);
        let refused = matches!(
            &answer[..],
            [Event::Error {
                code: ErrorCode::NickTaken,
                ..
            }]
        );
        assert!(if free { took } else { refused }, "{nick}: {answer:?}");
    }
    for (to, target) in [("v149", 149), ("U299", 299)] {
        members[target].inbox.take();
        let message = Command::Msg {
            to: Nick::parse(to).unwrap(),
            text: MessageText::new("hi").unwrap(),
        };
        hub.apply(newcomer.id, message.into());
        assert!(
            matches!(&members[target].inbox.take()[..], [Event::Private { .. }]),
            "a message to {to} reaches member {target}"
        );
    }
}

#[test]
fn a_nick_change_is_told_once_to_each_room_mate() {
    let hub = hub_keeping(10);
    let (ana, bob) = (named(&hub, "ana"), named(&hub, "bob"));
    for m in [&ana, &bob] {
        hub.apply(m.id, Command::Join(room("#ops")).into());
    }
    bob.inbox.take();
    hub.apply(ana.id, Command::Nick(Nick::parse("anita").unwrap()).into());
    let changes: Vec<_> = bob
        .inbox
        .take()
        .into_iter()
        .filter(|e| matches!(e, Event::NickChanged { .. }))
        .collect();
    assert_eq!(changes.len(), 1, "two shared rooms, one notice");
}

#[test]
fn private_messages_reach_only_their_target() {
    let hub = hub_keeping(10);
    let (ana, bob, eve) = (named(&hub, "ana"), named(&hub, "bob"), named(&hub, "eve"));
    ana.inbox.take();
    bob.inbox.take();
    let to_bob = Command::Msg {
        to: Nick::parse("BOB").unwrap(),
        text: MessageText::new("psst").unwrap(),
    };
    hub.apply(ana.id, to_bob.into());
    assert!(
        matches!(&bob.inbox.take()[..], [Event::Private { from, text, .. }]
        if from.as_str() == "ana" && text.as_str() == "psst")
    );
    assert!(eve.inbox.take().is_empty());
    let to_nobody = Command::Msg {
        to: Nick::parse("nobody").unwrap(),
        text: MessageText::new("?").unwrap(),
    };
    hub.apply(ana.id, to_nobody.into());
    assert!(ana.inbox.take().iter().any(|e| matches!(
        e,
        Event::Error {
            code: ErrorCode::NoSuchNick,
            ..
        }
    )));
}

#[test]
fn history_is_bounded_and_replayed_to_newcomers() {
    let hub = hub_keeping(3);
    let ana = named(&hub, "ana");
    for i in 1..=5 {
        hub.apply(ana.id, say(&format!("m{i}")));
    }
    let late = join(&hub);
    let replayed: Vec<String> = late
        .inbox
        .take()
        .into_iter()
        .find_map(|e| match e {
            Event::History { messages, .. } => {
                Some(messages.iter().map(|m| m.text().to_string()).collect())
            }
            _ => None,
        })
        .expect("history on joining");
    assert_eq!(replayed, ["m3", "m4", "m5"]);
    hub.apply(
        late.id,
        Command::History {
            room: None,
            limit: Some(2),
        }
        .into(),
    );
    assert!(
        matches!(&late.inbox.take()[..], [Event::History { messages, .. }]
        if messages.iter().map(|m| m.text().as_str()).collect::<Vec<_>>() == ["m4", "m5"])
    );
}

#[test]
fn leaving_and_quitting_tell_the_room_why() {
    let hub = hub_keeping(10);
    let (ana, bob) = (named(&hub, "ana"), named(&hub, "bob"));
    hub.apply(
        ana.id,
        Command::Quit {
            message: MessageText::new("lunch"),
        }
        .into(),
    );
    assert!(
        matches!(&bob.inbox.take()[..], [Event::Quit { .. }, Event::Left { reason: LeaveReason::Quit(Some(m)), .. }]
        if m.as_str() == "lunch")
    );
    assert!(matches!(
        ana.inbox.closed().as_ref(),
        Some(Event::Bye {
            reason: LeaveReason::Quit(_)
        })
    ));
    assert_eq!(hub.session_count(), 1);
    // The nick is free again.
    let again = named(&hub, "ana");
    assert!(again.inbox.take().is_empty());
}

#[test]
fn what_was_said_before_leaving_still_arrives_and_in_order() {
    let hub = hub_keeping(10);
    let (ana, bob) = (named(&hub, "ana"), named(&hub, "bob"));
    bob.inbox.take();
    hub.apply(ana.id, say("one"));
    hub.apply(ana.id, say("two"));
    let private = Command::Msg {
        to: Nick::parse("bob").unwrap(),
        text: MessageText::new("psst").unwrap(),
    };
    hub.apply(ana.id, private.into());
    // bob has not read the room yet when he leaves it.
    let leave = Command::Leave {
        room: None,
        message: None,
    };
    hub.apply(bob.id, leave.into());
    hub.apply(ana.id, say("after"));
    let events = bob.inbox.take();
    assert_eq!(texts(&events), ["ana:one", "ana:two"]);
    assert!(
        matches!(
            &events[2..],
            [Event::Private { .. }, Event::Left { you: true, .. }]
        ),
        "{events:?}"
    );
    // The same at shutdown: what was said before it reaches everyone.
    hub.apply(bob.id, Command::Join(RoomName::lobby()).into());
    bob.inbox.take();
    hub.apply(ana.id, say("last words"));
    hub.shutdown();
    assert_eq!(texts(&bob.inbox.take()), ["ana:last words"]);
}

#[test]
fn a_member_that_cannot_keep_up_is_disconnected_and_others_are_unaffected() {
    let hub = hub_keeping(10);
    let ana = named(&hub, "ana");
    let slow = join_with(&hub, Recorder::with_capacity(5));
    let bob = named(&hub, "bob");
    bob.inbox.take();
    // The room's log checks how far behind its readers are every so many messages.
    let sent = 2 * crate::limits::LOG_CHECK_EVERY;
    for i in 0..sent {
        hub.apply(ana.id, say(&format!("m{i}")));
    }
    let bob_events = bob.inbox.take();
    assert_eq!(texts(&bob_events).len(), sent, "bob got every message");
    assert!(bob_events.iter().any(|e| matches!(
        e,
        Event::Left {
            reason: LeaveReason::SendQueueExceeded,
            ..
        }
    )));
    assert!(matches!(
        slow.inbox.closed().as_ref(),
        Some(Event::Bye {
            reason: LeaveReason::SendQueueExceeded
        })
    ));
    assert_eq!(hub.session_count(), 2);
}

#[test]
fn empty_rooms_vanish_but_the_lobby_stays() {
    let hub = hub_keeping(10);
    let ana = named(&hub, "ana");
    hub.apply(ana.id, Command::Join(room("#tmp")).into());
    // Leave #tmp, then #lobby.
    for _ in 0..2 {
        let leave = Command::Leave {
            room: None,
            message: None,
        };
        hub.apply(ana.id, leave.into());
    }
    ana.inbox.take();
    hub.apply(ana.id, Command::Rooms.into());
    assert!(matches!(&ana.inbox.take()[..], [Event::Rooms { rooms }]
        if rooms.len() == 1 && rooms[0].name == RoomName::lobby() && rooms[0].members == 0));
    // In no room at all, plain messages have nowhere to go.
    hub.apply(ana.id, say("hello?"));
    assert!(matches!(
        &ana.inbox.take()[..],
        [Event::Error {
            code: ErrorCode::NotInRoom,
            ..
        }]
    ));
}

#[test]
fn shutdown_says_goodbye_to_everyone() {
    let hub = hub_keeping(10);
    let (ana, bob) = (named(&hub, "ana"), named(&hub, "bob"));
    hub.shutdown();
    for m in [ana, bob] {
        assert!(matches!(
            m.inbox.closed().as_ref(),
            Some(Event::Bye {
                reason: LeaveReason::ServerShutdown
            })
        ));
    }
    assert_eq!(hub.session_count(), 0);
}

// ---- Feeds: posts, kept rooms, status ----------------------------------------------------------

fn notice(text: &str) -> Notice {
    Notice::new(
        Source::new("check:web").unwrap(),
        PostKind::Alert,
        MessageText::new(text).unwrap(),
    )
    .with("state", "down")
}

/// Says "watching x" in its room, and counts how often it was asked.
struct Watching(Mutex<usize>);

impl RoomStatus for Watching {
    fn status(&self) -> Vec<Notice> {
        *self.0.lock().unwrap() += 1;
        vec![notice("watching x")]
    }
}

#[test]
fn posts_reach_every_member_and_wait_in_history() {
    let hub = hub_keeping(10);
    let alerts = room("#alerts");
    assert_eq!(
        hub.post(&alerts, notice("nobody")).unwrap_err(),
        NoSuchRoom(alerts.clone()).into()
    );
    hub.open_room(&alerts);
    // Posted while nobody is there: kept for whoever comes.
    let first = hub.post(&alerts, notice("web is down")).unwrap();
    let ana = named(&hub, "ana");
    hub.apply(ana.id, Command::Join(alerts.clone()).into());
    let events = ana.inbox.take();
    assert!(
        matches!(&events[0], Event::History { messages, .. }
            if matches!(&messages[..], [Entry::Posted(p)] if p.id == first.id && p.notice.text.as_str() == "web is down")),
        "{events:?}"
    );
    let second = hub.post(&alerts, notice("web is up")).unwrap();
    assert!(second.id > first.id);
    assert!(
        matches!(&ana.inbox.take()[..], [Event::Posted(p)] if p.room == alerts && p.notice.fields == [("state".into(), Field::from("down"))])
    );
    // A kept room outlives its last member; an ordinary one does not.
    hub.apply(ana.id, Command::Join(room("#ops")).into());
    hub.apply(
        ana.id,
        Command::Leave {
            room: Some(alerts.clone()),
            message: None,
        }
        .into(),
    );
    hub.apply(
        ana.id,
        Command::Leave {
            room: Some(room("#ops")),
            message: None,
        }
        .into(),
    );
    assert!(hub.post(&alerts, notice("still here")).is_ok());
    assert!(hub.post(&room("#ops"), notice("gone")).is_err());
}

#[test]
fn newcomers_and_status_hear_what_feeds_do() {
    let hub = hub_keeping(10);
    let watch = room("#watch");
    let status = Arc::new(Watching(Mutex::new(0)));
    hub.add_status(&watch, status.clone());
    let ana = named(&hub, "ana");
    hub.apply(ana.id, Command::Join(watch.clone()).into());
    let events = ana.inbox.take();
    assert!(
        matches!(&events[..], [Event::Joined { you: true, .. }, Event::Status { room, items }]
            if *room == watch && items.len() == 1 && items[0].text.as_str() == "watching x"),
        "{events:?}"
    );
    // Joining again (to talk there) is no news.
    hub.apply(ana.id, Command::Join(watch.clone()).into());
    assert!(matches!(&ana.inbox.take()[..], [Event::Joined { .. }]));
    hub.apply(ana.id, Command::Status { room: None }.into());
    assert!(matches!(&ana.inbox.take()[..], [Event::Status { items, .. }] if items.len() == 1));
    // Any existing room may be looked into; one without feeds has nothing to say.
    hub.apply(
        ana.id,
        Command::Status {
            room: Some(RoomName::lobby()),
        }
        .into(),
    );
    assert!(matches!(&ana.inbox.take()[..], [Event::Status { items, .. }] if items.is_empty()));
    hub.apply(
        ana.id,
        Command::Status {
            room: Some(room("#nope")),
        }
        .into(),
    );
    assert!(matches!(
        &ana.inbox.take()[..],
        [Event::Error {
            code: ErrorCode::InvalidRoom,
            ..
        }]
    ));
    assert_eq!(*status.0.lock().unwrap(), 2);
}

#[test]
fn crowded_rooms_do_not_announce_comings_and_goings() {
    use crate::limits::ANNOUNCE_MAX_MEMBERS;
    let hub = hub_keeping(10);
    let first = named(&hub, "first");
    let crowd: Vec<Member> = (1..ANNOUNCE_MAX_MEMBERS).map(|_| join(&hub)).collect();
    // Up to the bound, every arrival was announced.
    let joins = |events: Vec<Event>| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Joined { you: false, .. }))
            .count()
    };
    assert_eq!(joins(first.inbox.take()), ANNOUNCE_MAX_MEMBERS - 1);
    // One more makes the room a crowd: its arrival, a nick change and a departure are quiet.
    let late = join(&hub);
    assert!(matches!(late.inbox.take().last(),
        Some(Event::Joined { you: true, count, .. }) if *count == ANNOUNCE_MAX_MEMBERS + 1));
    hub.apply(late.id, Command::Nick(Nick::parse("late").unwrap()).into());
    hub.disconnect(late.id, LeaveReason::ConnectionLost);
    assert!(first.inbox.take().is_empty());
    // Back at the bound, leaving is announced again.
    hub.disconnect(crowd[0].id, LeaveReason::ConnectionLost);
    assert!(matches!(
        &first.inbox.take()[..],
        [Event::Quit { .. }, Event::Left { .. }]
    ));
}

#[test]
fn a_newcomer_is_told_the_first_members_by_name_and_users_lists_them_all() {
    use crate::limits::ANNOUNCE_MAX_MEMBERS;
    // A room, and a crowd (kept to the first few as they come).
    for members in [MEMBERS_SHOWN_ON_JOIN + 10, ANNOUNCE_MAX_MEMBERS + 31] {
        first_members_and_all(members);
    }
}

fn first_members_and_all(members: usize) {
    let hub = hub_keeping(0);
    // Arriving in no particular order (7 is prime to both sizes), in mixed case (compared
    // case-folded).
    let names: Vec<String> = (0..members)
        .map(|n| (n * 7) % members)
        .map(|n| {
            if n % 2 == 0 {
                format!("m{n:03}")
            } else {
                format!("M{n:03}")
            }
        })
        .collect();
    for name in &names {
        named(&hub, name);
    }
    let shown = |nicks: &[Nick]| {
        nicks
            .iter()
            .map(|n| n.as_str().to_string())
            .collect::<Vec<_>>()
    };

    let newcomer = join(&hub);
    let joined = newcomer
        .inbox
        .take()
        .into_iter()
        .find_map(|event| match event {
            Event::Joined {
                you: true,
                nick,
                members,
                count,
                ..
            } => Some((nick, members, count)),
            _ => None,
        });
    let (nick, members, count) = joined.expect("told who is here");
    let mut sorted = names.clone();
    sorted.push(nick.as_str().to_string());
    sorted.sort_by_key(|name| name.to_lowercase());
    assert_eq!(count, sorted.len());
    assert_eq!(shown(&members), sorted[..MEMBERS_SHOWN_ON_JOIN]);

    hub.apply(newcomer.id, Command::Users { room: None }.into());
    match &newcomer.inbox.take()[..] {
        [Event::Users { nicks, .. }] => assert_eq!(shown(nicks), sorted),
        other => panic!("{other:?}"),
    }
}

/// The `seq` of each message and post in `events`.
fn seqs(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(said) => Some(said.seq),
            Event::Posted(posted) => Some(posted.seq),
            _ => None,
        })
        .collect()
}

#[test]
fn each_room_numbers_its_messages_and_posts_one_after_another() {
    let hub = hub_keeping(10);
    let (ana, bob) = (named(&hub, "ana"), named(&hub, "bob"));
    let ops = room("#ops");
    hub.open_room(&ops);
    hub.apply(bob.id, Command::Join(ops.clone()).into());
    bob.inbox.take();
    let in_room = |room: &RoomName, text: &str| -> Request {
        Command::Say {
            room: Some(room.clone()),
            text: MessageText::new(text).unwrap(),
            action: false,
        }
        .into()
    };
    hub.apply(ana.id, in_room(&RoomName::lobby(), "one"));
    hub.post(&ops, notice("web is down")).unwrap();
    hub.apply(ana.id, in_room(&RoomName::lobby(), "two"));
    hub.apply(bob.id, in_room(&ops, "looking"));
    hub.post(&ops, notice("web is up")).unwrap();
    let events = bob.inbox.take();
    let lobby: Vec<Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Message(s) if s.room == RoomName::lobby()))
        .cloned()
        .collect();
    let in_ops: Vec<Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Posted(p) if p.room == ops))
        .cloned()
        .collect();
    assert_eq!(seqs(&lobby), [1, 2]);
    // bob's own line reaches him as an ack, its number between the two posts'.
    assert_eq!(seqs(&in_ops), [1, 3]);
    let history = hub.room_history(&ops, None, None, None).unwrap().1;
    let numbers: Vec<u64> = history.iter().map(Entry::seq).collect();
    assert_eq!(numbers, [1, 2, 3], "kept with their numbers");
}
