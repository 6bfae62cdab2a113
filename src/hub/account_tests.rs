//! Registered nicks in the hub: who may hold them, what logging in does to their holder,
//! and `--require-account`.

use std::sync::Arc;

use super::*;
use crate::fanout::recorder::Recorder;
use crate::limits::Limits;

fn nick(s: &str) -> Nick {
    Nick::parse(s).unwrap()
}

fn session(hub: &Hub, name: Option<&str>) -> (SessionId, Arc<Recorder>) {
    let inbox = Arc::new(Recorder::default());
    let id = hub.register(inbox.clone(), name.map(nick)).unwrap();
    inbox.take();
    (id, inbox)
}

/// The recipient's own nick changes.
fn nick_changes(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::NickChanged {
                old,
                new,
                you: true,
            } => Some((old.to_string(), new.to_string())),
            _ => None,
        })
        .collect()
}

fn first_error(events: &[Event]) -> Option<ErrorCode> {
    events.iter().find_map(|e| match e {
        Event::Error { code, .. } => Some(*code),
        _ => None,
    })
}

#[test]
fn a_registered_nick_is_its_owners_alone() {
    let hub = Hub::new(&Limits::default());
    let (ana, ana_inbox) = session(&hub, Some("ana"));
    hub.account_created(Some(ana), nick("ana"), None);
    assert!(matches!(
        ana_inbox.take()[..],
        [Event::Account(AccountNews::Registered(_))]
    ));
    assert_eq!(hub.account_of(ana), Some(nick("ana")));
    hub.disconnect(ana, LeaveReason::ConnectionLost);

    let refused = hub.register(Arc::new(Recorder::default()), Some(nick("ANA")));
    assert_eq!(refused.unwrap_err().0, ErrorCode::NickRegistered);
    let (guest, inbox) = session(&hub, None);
    hub.apply(guest, Command::Nick(nick("Ana")).into());
    assert_eq!(first_error(&inbox.take()), Some(ErrorCode::NickRegistered));
    // Its owner may take it, here by proving the account at registration (SASL).
    let owner = hub.register_as(
        Arc::new(Recorder::default()),
        Some(nick("ana")),
        Some(nick("ana")),
        true,
    );
    assert!(owner.is_ok());
}

#[test]
fn logging_in_renames_the_holder_unless_it_is_the_same_account() {
    let hub = Hub::new(&Limits::default());
    let (old, old_inbox) = session(&hub, Some("ana"));
    hub.account_created(Some(old), nick("ana"), None);
    hub.logged_out(old, None);
    old_inbox.take();

    let (new, new_inbox) = session(&hub, None);
    hub.logged_in(new, nick("ana"), None);
    assert_eq!(hub.nick_of(new), Some(nick("ana")));
    let renamed = nick_changes(&old_inbox.take());
    assert_eq!(renamed.len(), 1);
    assert!(renamed[0].1.starts_with("guest-"), "{renamed:?}");
    let events = new_inbox.take();
    assert!(matches!(
        events.last(),
        Some(Event::Account(AccountNews::LoggedIn(_)))
    ));

    // A second session of the account keeps its own nick; the first keeps "ana".
    let (third, third_inbox) = session(&hub, Some("ana2"));
    hub.logged_in(third, nick("ana"), None);
    assert_eq!(hub.nick_of(new), Some(nick("ana")));
    assert_eq!(hub.nick_of(third), Some(nick("ana2")));
    assert!(nick_changes(&third_inbox.take()).is_empty());
}

#[test]
fn require_account_lets_only_the_logged_in_talk() {
    let hub = Hub::new(&Limits::default());
    hub.require_account(true);
    let (guest, inbox) = session(&hub, None);
    let say = |id| {
        hub.apply(
            id,
            Command::Say {
                room: None,
                text: MessageText::new("hi").unwrap(),
                action: false,
            }
            .into(),
        )
    };
    say(guest);
    assert_eq!(first_error(&inbox.take()), Some(ErrorCode::AccountRequired));
    hub.account_created(Some(guest), nick("guest-1"), None);
    inbox.take();
    say(guest);
    let events = inbox.take();
    assert_eq!(first_error(&events), None);
    assert!(matches!(events[..], [Event::Ack { .. }]), "{events:?}");
}

/// Whether `nick` is an operator of `room`, as `/users` says, asked by `asker`.
fn is_op(hub: &Hub, asker: (SessionId, &Recorder), room: &RoomName, nick: &str) -> bool {
    hub.apply(
        asker.0,
        Command::Users {
            room: Some(room.clone()),
        }
        .into(),
    );
    let events = asker.1.take();
    let Some(Event::Users {
        nicks, standing, ..
    }) = events.last()
    else {
        panic!("{events:?}");
    };
    let at = nicks.iter().position(|n| n.as_str() == nick).unwrap();
    standing[at] == Standing::Operator
}

#[test]
fn operators_with_an_account_are_operators_again_when_they_come_back() {
    let hub = Hub::new(&Limits::default());
    let ops = RoomName::parse("#ops").unwrap();
    let (ana, ana_inbox) = session(&hub, Some("ana"));
    hub.account_created(Some(ana), nick("ana"), None);
    let (guest, guest_inbox) = session(&hub, Some("gus"));
    hub.apply(ana, Command::Join(ops.clone()).into());
    hub.apply(guest, Command::Join(ops.clone()).into());
    ana_inbox.take();
    guest_inbox.take();
    assert!(is_op(&hub, (guest, &guest_inbox), &ops, "ana"));

    // Gone and back on a new connection, logged in: an operator again. A guest who was
    // never one is not made one by coming back.
    hub.disconnect(ana, LeaveReason::ConnectionLost);
    let (back, back_inbox) = session(&hub, None);
    hub.logged_in(back, nick("ana"), None);
    hub.apply(back, Command::Join(ops.clone()).into());
    back_inbox.take();
    assert!(is_op(&hub, (back, &back_inbox), &ops, "ana"));
    assert!(!is_op(&hub, (back, &back_inbox), &ops, "gus"));
}

#[test]
fn a_founder_who_logs_in_afterwards_is_an_operator_again_when_it_comes_back() {
    let hub = Hub::new(&Limits::default());
    let ops = RoomName::parse("#ops").unwrap();
    let (ana, _ana_inbox) = session(&hub, Some("ana"));
    let (guest, guest_inbox) = session(&hub, Some("gus"));
    hub.apply(ana, Command::Join(ops.clone()).into());
    hub.apply(guest, Command::Join(ops.clone()).into());
    // Operator first, logged in only then: the room remembers the account all the same.
    hub.logged_in(ana, nick("ana"), None);
    hub.disconnect(ana, LeaveReason::ConnectionLost);
    let (back, back_inbox) = session(&hub, Some("robert"));
    hub.logged_in(back, nick("ana"), None);
    hub.apply(back, Command::Join(ops.clone()).into());
    guest_inbox.take();
    back_inbox.take();
    assert!(is_op(&hub, (back, &back_inbox), &ops, "ana"));
    assert!(!is_op(&hub, (back, &back_inbox), &ops, "gus"));
}

#[test]
fn a_ban_on_a_logged_in_nick_follows_the_account_through_a_nick_change() {
    let hub = Hub::new(&Limits::default());
    let ops = RoomName::parse("#ops").unwrap();
    let (ana, ana_inbox) = session(&hub, Some("ana"));
    let (bob, bob_inbox) = session(&hub, Some("bob"));
    hub.account_created(Some(bob), nick("bob"), None);
    hub.apply(ana, Command::Join(ops.clone()).into());
    let ban = |add: bool, mask: &str| Command::Mode {
        room: Some(ops.clone()),
        changes: vec![ModeChange {
            add,
            mode: Mode::Ban(BanMask::parse(mask).unwrap()),
        }],
    };
    hub.apply(ana, ban(true, "bob").into());
    ana_inbox.take();
    hub.apply(
        ana,
        Command::Bans {
            room: Some(ops.clone()),
        }
        .into(),
    );
    let accounts: Vec<_> = ana_inbox
        .take()
        .into_iter()
        .filter_map(|e| match e {
            Event::Bans { bans, .. } => Some(bans.into_iter().map(|b| b.account)),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(accounts, [Some(nick("bob"))]);

    // A new nick does not get bob in; nor does a new connection logged in to his account.
    hub.apply(bob, Command::Nick(nick("robert")).into());
    bob_inbox.take();
    hub.apply(bob, Command::Join(ops.clone()).into());
    assert_eq!(first_error(&bob_inbox.take()), Some(ErrorCode::Banned));
    hub.disconnect(bob, LeaveReason::ConnectionLost);
    let (back, back_inbox) = session(&hub, Some("rob"));
    hub.logged_in(back, nick("bob"), None);
    back_inbox.take();
    hub.apply(back, Command::Join(ops.clone()).into());
    assert_eq!(first_error(&back_inbox.take()), Some(ErrorCode::Banned));

    // A guest who takes another nick the mask does not match is not kept out by it, and
    // lifting the ban lets the account in again.
    let (gus, gus_inbox) = session(&hub, Some("gus"));
    hub.apply(gus, Command::Join(ops.clone()).into());
    assert_eq!(first_error(&gus_inbox.take()), None);
    hub.apply(ana, ban(false, "bob").into());
    hub.apply(back, Command::Join(ops.clone()).into());
    assert_eq!(first_error(&back_inbox.take()), None);
}

#[test]
fn a_ban_on_a_registered_nick_nobody_holds_follows_its_account() {
    let hub = Hub::new(&Limits::default());
    let ops = RoomName::parse("#ops").unwrap();
    let (ana, _ana_inbox) = session(&hub, Some("ana"));
    let (bob, _) = session(&hub, Some("bob"));
    hub.account_created(Some(bob), nick("bob"), None);
    hub.disconnect(bob, LeaveReason::ConnectionLost);
    hub.apply(ana, Command::Join(ops.clone()).into());
    let ban = Command::Mode {
        room: Some(ops.clone()),
        changes: vec![ModeChange {
            add: true,
            mode: Mode::Ban(BanMask::parse("bob!*@*").unwrap()),
        }],
    };
    hub.apply(ana, ban.into());
    let (back, back_inbox) = session(&hub, Some("robert"));
    hub.logged_in(back, nick("bob"), None);
    back_inbox.take();
    hub.apply(back, Command::Join(ops.clone()).into());
    assert_eq!(first_error(&back_inbox.take()), Some(ErrorCode::Banned));
}
