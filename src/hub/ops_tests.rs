//! Operators, topics, modes, kicks, bans and invitations in the hub, without sockets.

use std::sync::Arc;

use super::tests::hub_keeping;
use super::*;
use crate::fanout::recorder::Recorder;
use crate::limits::{MAX_BANS_PER_ROOM, TOPICLEN};

struct Seat {
    id: SessionId,
    inbox: Arc<Recorder>,
}

fn member(hub: &Hub, nick: &str) -> Seat {
    let inbox = Arc::new(Recorder::default());
    let id = hub
        .register(inbox.clone(), Some(Nick::parse(nick).unwrap()))
        .unwrap();
    inbox.take();
    Seat { id, inbox }
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

fn nick(name: &str) -> Nick {
    Nick::parse(name).unwrap()
}

fn ops() -> Option<RoomName> {
    Some(room("#ops"))
}

fn join(hub: &Hub, m: &Seat) {
    hub.apply(m.id, Command::Join(room("#ops")).into());
    m.inbox.take();
}

fn say(hub: &Hub, m: &Seat, text: &str) {
    let say = Command::Say {
        room: ops(),
        text: MessageText::new(text).unwrap(),
        action: false,
    };
    hub.apply(m.id, say.into());
}

fn set(hub: &Hub, m: &Seat, changes: Vec<ModeChange>) {
    hub.apply(
        m.id,
        Command::Mode {
            room: ops(),
            changes,
        }
        .into(),
    );
}

fn add(mode: Mode) -> Vec<ModeChange> {
    vec![ModeChange { add: true, mode }]
}

fn lift(mode: Mode) -> Vec<ModeChange> {
    vec![ModeChange { add: false, mode }]
}

fn errors(m: &Seat) -> Vec<ErrorCode> {
    m.inbox
        .take()
        .iter()
        .filter_map(|e| match e {
            Event::Error { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

fn heard(m: &Seat) -> Vec<String> {
    m.inbox
        .take()
        .iter()
        .filter_map(|e| match e {
            Event::Message(said) => Some(said.text.to_string()),
            _ => None,
        })
        .collect()
}

/// `ana` makes #ops (its operator), `bob` joins it.
fn room_of_two(hub: &Hub) -> (Seat, Seat) {
    let (ana, bob) = (member(hub, "ana"), member(hub, "bob"));
    join(hub, &ana);
    join(hub, &bob);
    ana.inbox.take();
    (ana, bob)
}

fn standing(hub: &Hub, m: &Seat) -> Vec<(String, Standing)> {
    m.inbox.take();
    hub.apply(m.id, Command::Users { room: ops() }.into());
    match &m.inbox.take()[..] {
        [
            Event::Users {
                nicks, standing, ..
            },
        ] => nicks
            .iter()
            .map(|n| n.to_string())
            .zip(standing.iter().copied())
            .collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_first_member_of_a_new_room_is_its_operator_but_not_of_the_lobby() {
    let hub = hub_keeping(10);
    let (ana, bob) = room_of_two(&hub);
    assert_eq!(
        standing(&hub, &ana),
        [
            ("ana".to_string(), Standing::Operator),
            ("bob".to_string(), Standing::Member)
        ]
    );
    hub.apply(ana.id, Command::Users { room: None }.into());
    hub.apply(
        ana.id,
        Command::Users {
            room: Some(RoomName::lobby()),
        }
        .into(),
    );
    assert!(matches!(&ana.inbox.take()[1], Event::Users { standing, .. }
        if standing.iter().all(|s| *s == Standing::Member)));
    // A new room starts +nt; the operator may op others, a member may not.
    hub.apply(
        bob.id,
        Command::Mode {
            room: ops(),
            changes: vec![],
        }
        .into(),
    );
    assert!(
        matches!(&bob.inbox.take()[..], [Event::Modes { modes, ops, .. }]
        if modes.describe(true) == "+nt" && ops.len() == 1 && ops[0].as_str() == "ana")
    );
    set(&hub, &bob, add(Mode::Op(nick("bob"))));
    assert_eq!(errors(&bob), [ErrorCode::NotOperator]);
    set(&hub, &ana, add(Mode::Op(nick("BOB"))));
    let changed = ana.inbox.take();
    assert!(
        matches!(&changed[..], [Event::ModeChanged { changes, by, .. }]
        if by.as_str() == "ana" && describe_changes(changes) == "+o bob")
    );
    assert!(matches!(&bob.inbox.take()[..], [Event::ModeChanged { .. }]));
    assert_eq!(standing(&hub, &bob)[1].1, Standing::Operator);
    // Setting what is set already changes nothing, and nobody else hears of it.
    set(&hub, &ana, add(Mode::Op(nick("bob"))));
    assert!(
        matches!(&ana.inbox.take()[..], [Event::ModeChanged { changes, .. }] if changes.is_empty())
    );
    assert!(bob.inbox.take().is_empty());
    // An operator who leaves is no longer one when back.
    hub.apply(
        ana.id,
        Command::Leave {
            room: ops(),
            message: None,
        }
        .into(),
    );
    join(&hub, &ana);
    assert_eq!(standing(&hub, &bob)[0].1, Standing::Member);
}

#[test]
fn topics_are_set_by_operators_under_t_shown_on_joining_and_announced() {
    let hub = hub_keeping(10);
    let (ana, bob) = room_of_two(&hub);
    let set_topic = |m: &Seat, text: &str| {
        let command = Command::SetTopic {
            room: ops(),
            text: MessageText::new(text),
        };
        hub.apply(m.id, command.into());
    };
    set_topic(&bob, "mine");
    assert_eq!(errors(&bob), [ErrorCode::NotOperator]);
    set_topic(&ana, "deploys at 15:00");
    assert!(
        matches!(&ana.inbox.take()[..], [Event::TopicChanged { topic: Some(t), .. }]
        if t.text.as_str() == "deploys at 15:00")
    );
    assert!(
        matches!(&bob.inbox.take()[..], [Event::TopicChanged { by, topic: Some(t), .. }]
        if by.as_str() == "ana" && t.by.as_str() == "ana")
    );
    let cai = member(&hub, "cai");
    hub.apply(cai.id, Command::Join(room("#ops")).into());
    let events = cai.inbox.take();
    let joined = events
        .iter()
        .position(|e| matches!(e, Event::Joined { you: true, .. }))
        .unwrap();
    assert!(
        matches!(&events[joined + 1], Event::Topic { topic: Some(t), .. }
        if t.text.as_str() == "deploys at 15:00")
    );
    // Anyone may ask; -t lets any member set it; a long one is cut; "" clears it.
    hub.apply(cai.id, Command::Topic { room: ops() }.into());
    assert!(matches!(
        &cai.inbox.take()[..],
        [Event::Topic { topic: Some(_), .. }]
    ));
    set(&hub, &ana, lift(Mode::TopicLocked));
    bob.inbox.take();
    set_topic(&bob, &"ñ".repeat(TOPICLEN));
    assert!(
        matches!(&bob.inbox.take()[..], [Event::TopicChanged { topic: Some(t), .. }]
        if t.text.as_str().len() == TOPICLEN)
    );
    set_topic(&bob, "");
    assert!(matches!(
        &bob.inbox.take()[..],
        [Event::TopicChanged { topic: None, .. }]
    ));
    cai.inbox.take();
    hub.apply(cai.id, Command::Topic { room: ops() }.into());
    assert!(matches!(
        &cai.inbox.take()[..],
        [Event::Topic { topic: None, .. }]
    ));
    // Outsiders may not set it.
    let eve = member(&hub, "eve");
    set_topic(&eve, "defaced");
    assert_eq!(errors(&eve), [ErrorCode::NotInRoom]);
}

#[test]
fn an_operator_kicks_a_member_who_hears_why_and_is_out() {
    let hub = hub_keeping(10);
    let (ana, bob) = room_of_two(&hub);
    let kick = |by: &Seat, who: &str| {
        let command = Command::Kick {
            room: ops(),
            nick: nick(who),
            reason: MessageText::new("spam"),
        };
        hub.apply(by.id, command.into());
    };
    kick(&bob, "ana");
    assert_eq!(errors(&bob), [ErrorCode::NotOperator]);
    let nowhere = Command::Kick {
        room: Some(room("#nowhere")),
        nick: nick("bob"),
        reason: None,
    };
    hub.apply(ana.id, nowhere.into());
    assert_eq!(errors(&ana), [ErrorCode::InvalidRoom]);
    kick(&ana, "nobody");
    assert_eq!(errors(&ana), [ErrorCode::NoSuchNick]);
    let eve = member(&hub, "eve");
    kick(&ana, "eve");
    assert_eq!(errors(&ana), [ErrorCode::TargetNotInRoom]);
    bob.inbox.take();
    kick(&ana, "bob");
    assert!(
        matches!(&ana.inbox.take()[..], [Event::Kicked { nick, reason: Some(r), .. }]
        if nick.as_str() == "bob" && r.as_str() == "spam")
    );
    let got = bob.inbox.take();
    assert!(
        matches!(&got[..], [Event::Kicked { nick, by, .. }]
        if nick.as_str() == "bob" && by.as_str() == "ana"),
        "{got:?}"
    );
    say(&hub, &ana, "still here?");
    assert!(heard(&bob).is_empty());
    say(&hub, &bob, "let me in");
    assert_eq!(errors(&bob), [ErrorCode::NotInRoom]);
    // A kick is no ban: bob may come back.
    hub.apply(bob.id, Command::Join(room("#ops")).into());
    assert!(errors(&bob).is_empty());
    drop(eve);
}

#[test]
fn a_ban_keeps_the_banned_out_and_quiet_until_lifted() {
    let hub = hub_keeping(10);
    let (ana, bob) = room_of_two(&hub);
    let mask = |m: &str| Mode::Ban(BanMask::parse(m).unwrap());
    set(&hub, &ana, add(mask("bo*")));
    bob.inbox.take();
    say(&hub, &bob, "hello?");
    assert_eq!(errors(&bob), [ErrorCode::Banned]);
    hub.apply(
        bob.id,
        Command::Leave {
            room: ops(),
            message: None,
        }
        .into(),
    );
    bob.inbox.take();
    hub.apply(bob.id, Command::Join(room("#ops")).into());
    assert_eq!(errors(&bob), [ErrorCode::Banned]);
    // Renaming does not escape a mask that still matches, but does one that no longer does.
    hub.apply(bob.id, Command::Nick(nick("BOBBY")).into());
    hub.apply(bob.id, Command::Join(room("#ops")).into());
    assert_eq!(errors(&bob), [ErrorCode::Banned]);
    ana.inbox.take();
    hub.apply(ana.id, Command::Bans { room: ops() }.into());
    assert!(matches!(&ana.inbox.take()[..], [Event::Bans { bans, .. }]
        if bans.len() == 1 && bans[0].mask.as_str() == "bo*!*@*" && bans[0].by.as_str() == "ana"));
    set(&hub, &ana, lift(mask("BO*!*@*")));
    hub.apply(bob.id, Command::Join(room("#ops")).into());
    assert!(errors(&bob).is_empty());
    // Bans are bounded.
    let many = (0..MAX_BANS_PER_ROOM)
        .map(|i| ModeChange {
            add: true,
            mode: mask(&format!("x{i}")),
        })
        .collect();
    ana.inbox.take();
    set(&hub, &ana, many);
    assert!(errors(&ana).is_empty());
    set(&hub, &ana, add(mask("one-more")));
    assert_eq!(errors(&ana), [ErrorCode::InvalidArgument]);
}

#[test]
fn moderated_rooms_hear_only_operators_and_voiced_members() {
    let hub = hub_keeping(10);
    let (ana, bob) = room_of_two(&hub);
    set(&hub, &ana, add(Mode::Moderated));
    bob.inbox.take();
    ana.inbox.take();
    say(&hub, &bob, "can I?");
    assert_eq!(errors(&bob), [ErrorCode::Moderated]);
    assert!(heard(&ana).is_empty());
    say(&hub, &ana, "ops may");
    assert_eq!(heard(&bob), ["ops may"]);
    set(&hub, &ana, add(Mode::Voice(nick("bob"))));
    bob.inbox.take();
    say(&hub, &bob, "now I may");
    assert_eq!(heard(&ana), ["now I may"]);
    assert_eq!(standing(&hub, &ana)[1].1, Standing::Voiced);
}

#[test]
fn keys_limits_and_invitations_guard_the_door() {
    let hub = hub_keeping(10);
    let (ana, _bob) = room_of_two(&hub);
    let cai = member(&hub, "cai");
    let join_with = |m: &Seat, key: Option<&str>| {
        let command = match key {
            Some(key) => Command::JoinWithKey {
                room: room("#ops"),
                key: key.into(),
            },
            None => Command::Join(room("#ops")),
        };
        hub.apply(m.id, command.into());
    };
    set(&hub, &ana, add(Mode::Key("sesame".into())));
    join_with(&cai, None);
    assert_eq!(errors(&cai), [ErrorCode::BadKey]);
    join_with(&cai, Some("wrong"));
    assert_eq!(errors(&cai), [ErrorCode::BadKey]);
    // The key is shown to members only.
    hub.apply(
        cai.id,
        Command::Mode {
            room: ops(),
            changes: vec![],
        }
        .into(),
    );
    assert!(matches!(&cai.inbox.take()[..], [Event::Modes { modes, .. }]
        if modes.key.as_deref() == Some("*")));
    set(&hub, &ana, lift(Mode::Key(String::new())));
    set(&hub, &ana, add(Mode::Limit(2)));
    join_with(&cai, None);
    assert_eq!(errors(&cai), [ErrorCode::RoomFull]);
    set(&hub, &ana, add(Mode::Limit(0)));
    ana.inbox.take();
    set(&hub, &ana, lift(Mode::Limit(0)));
    set(&hub, &ana, add(Mode::InviteOnly));
    join_with(&cai, None);
    assert_eq!(errors(&cai), [ErrorCode::InviteOnly]);
    ana.inbox.take();
    let invite = Command::Invite {
        room: ops(),
        nick: nick("cai"),
    };
    hub.apply(ana.id, invite.into());
    assert!(
        matches!(&ana.inbox.take()[..], [Event::Invited { you: false, nick, .. }] if nick.as_str() == "cai")
    );
    assert!(
        matches!(&cai.inbox.take()[..], [Event::Invited { you: true, by, .. }] if by.as_str() == "ana")
    );
    join_with(&cai, None);
    assert!(errors(&cai).is_empty());
    // An invitation is used up by joining.
    hub.apply(
        cai.id,
        Command::Leave {
            room: ops(),
            message: None,
        }
        .into(),
    );
    cai.inbox.take();
    join_with(&cai, None);
    assert_eq!(errors(&cai), [ErrorCode::InviteOnly]);
}

#[test]
fn minus_n_lets_outsiders_send_by_name() {
    let hub = hub_keeping(10);
    let (ana, _bob) = room_of_two(&hub);
    let eve = member(&hub, "eve");
    say(&hub, &eve, "from outside");
    assert_eq!(errors(&eve), [ErrorCode::NotInRoom]);
    set(&hub, &ana, lift(Mode::NoOutside));
    ana.inbox.take();
    say(&hub, &eve, "from outside");
    assert!(errors(&eve).is_empty());
    assert_eq!(heard(&ana), ["from outside"]);
}

#[test]
fn a_mode_request_is_carried_out_whole_or_refused_whole() {
    let hub = hub_keeping(10);
    let (ana, bob) = room_of_two(&hub);
    let eve = member(&hub, "eve");
    bob.inbox.take();
    // +m is fine, +o eve is not (eve is not in the room): nothing changes.
    let changes = vec![
        ModeChange {
            add: true,
            mode: Mode::Moderated,
        },
        ModeChange {
            add: true,
            mode: Mode::Op(nick("eve")),
        },
    ];
    set(&hub, &ana, changes);
    assert_eq!(errors(&ana), [ErrorCode::TargetNotInRoom]);
    say(&hub, &bob, "not moderated");
    assert!(errors(&bob).is_empty());
    for bad in [
        Mode::Key(String::new()),
        Mode::Key("a b".into()),
        Mode::Key("k".repeat(33)),
    ] {
        set(&hub, &ana, add(bad));
        assert_eq!(errors(&ana), [ErrorCode::InvalidArgument]);
    }
    set(&hub, &ana, add(Mode::Limit(0)));
    assert_eq!(errors(&ana), [ErrorCode::InvalidArgument]);
    // Outsiders may look at the modes and bans of a room, not change them.
    hub.apply(eve.id, Command::Bans { room: ops() }.into());
    assert!(matches!(&eve.inbox.take()[..], [Event::Bans { bans, .. }] if bans.is_empty()));
    set(&hub, &eve, add(Mode::Moderated));
    assert_eq!(errors(&eve), [ErrorCode::NotInRoom]);
    // A room that does not exist is said so (IRC 403), not that one is not in it (442).
    let nowhere = Command::Mode {
        room: Some(room("#nowhere")),
        changes: add(Mode::Moderated),
    };
    hub.apply(eve.id, nowhere.into());
    assert_eq!(errors(&eve), [ErrorCode::InvalidRoom]);
}

/// Found writing the `irc_codec` fuzz target's mode check (docs/fuzzing.md): a key is
/// shown to every member (`MODE #ops +k KEY`), and one holding an escape sequence, a bell
/// or a bidi override was taken and reached their terminals as sent.
#[test]
fn a_key_with_control_characters_is_refused() {
    let hub = hub_keeping(10);
    let (ana, bob) = room_of_two(&hub);
    bob.inbox.take();
    for bad in [
        "\u{1b}[2J",
        "ring\u{7}",
        "txt\u{202e}exe",
        "b\u{2}old",
        "tab\tbed",
    ] {
        set(&hub, &ana, add(Mode::Key(bad.into())));
        assert_eq!(errors(&ana), [ErrorCode::InvalidArgument], "{bad:?}");
        assert!(bob.inbox.take().is_empty(), "{bad:?} was announced");
    }
    set(&hub, &ana, add(Mode::Key("sésame".into())));
    assert!(errors(&ana).is_empty());
    assert!(matches!(&bob.inbox.take()[..], [Event::ModeChanged { .. }]));
}

#[test]
fn invitations_are_bounded_and_only_operators_invite_into_an_invite_only_room() {
    use crate::limits::MAX_INVITES_PER_ROOM;
    let hub = hub_keeping(10);
    let (ana, bob) = room_of_two(&hub);
    let invite = |by: &Seat, who: &str| {
        let command = Command::Invite {
            room: ops(),
            nick: nick(who),
        };
        hub.apply(by.id, command.into());
    };
    invite(&bob, "nobody");
    assert_eq!(errors(&bob), [ErrorCode::NoSuchNick]);
    invite(&bob, "ana");
    assert_eq!(errors(&bob), [ErrorCode::InvalidArgument]);
    set(&hub, &ana, add(Mode::InviteOnly));
    bob.inbox.take();
    let guests: Vec<Seat> = (0..=MAX_INVITES_PER_ROOM)
        .map(|i| member(&hub, &format!("g{i}")))
        .collect();
    invite(&bob, "g0");
    assert_eq!(errors(&bob), [ErrorCode::NotOperator]);
    for guest in &guests[..MAX_INVITES_PER_ROOM] {
        invite(&ana, guest_nick(&hub, guest).as_str());
    }
    ana.inbox.take();
    invite(&ana, &format!("g{MAX_INVITES_PER_ROOM}"));
    assert_eq!(errors(&ana), [ErrorCode::InvalidArgument]);
    // One who left the server frees a place.
    hub.apply(guests[0].id, Command::Quit { message: None }.into());
    ana.inbox.take();
    invite(&ana, &format!("g{MAX_INVITES_PER_ROOM}"));
    assert!(errors(&ana).is_empty());
}

fn guest_nick(hub: &Hub, m: &Seat) -> Nick {
    hub.nick_of(m.id).unwrap()
}
