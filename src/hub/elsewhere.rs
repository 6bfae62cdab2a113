//! What a cluster tells the hub of other nodes: nick changes there, nicks lost to them, and
//! whether they can be reached at all; and what it asks: the last message heard in each room.

use std::collections::HashSet;

use super::bus::{DirectSender, Publication};
use super::event::{Event, LeaveReason, Outgoing};
use super::names::{Nick, RoomName};
use super::ops::{Mode, ModeChange};
use super::room::{KeptRoom, RoomChange};
use super::store::Owed;
use super::text::MessageText;
use super::{Hub, SessionId};

impl Hub {
    /// Runs `f` under the hub's lock, so that it is wholly before or wholly after each
    /// change of a session here (which tells the directory and the bus under that lock):
    /// how a cluster node's return decides, for every change, whether the others hear it
    /// live or in the round it tells on return. `f` must not call the hub.
    pub fn between_changes<T>(&self, f: impl FnOnce() -> T) -> T {
        let _chat = self.lock();
        f()
    }

    /// A session of another node went from `old` to `new`: everyone here sharing one of its
    /// `rooms` hears it once.
    pub fn renamed_elsewhere(&self, old: &Nick, new: &Nick, rooms: &[RoomName]) {
        self.with_chat(|chat| {
            let notice = Outgoing::new(Event::NickChanged {
                old: old.clone(),
                new: new.clone(),
                you: false,
            });
            let mut told = HashSet::new();
            for room in rooms {
                let Some(target) = chat.rooms.get(room) else {
                    continue;
                };
                // Its node's roster is told already: the count has it, as its own node's does.
                let members = target.members.len() + chat.directory.count(room);
                if !target.settings.announces(members) {
                    continue;
                }
                told.extend(target.members.keys().copied());
            }
            for member in told {
                chat.send(member, &notice);
            }
        });
    }

    /// A session of another node, `nick`, joined `rooms` (each with how many of its members
    /// are on other nodes, this one included) while this node could not hear it: the
    /// members here of each hear it as they would have then, away or not as it is now.
    pub fn joined_elsewhere(
        &self,
        nick: &Nick,
        account: Option<Nick>,
        away: Option<MessageText>,
        rooms: &[(RoomName, usize)],
    ) {
        self.announce_elsewhere(rooms, |room, count| Event::Joined {
            room,
            nick: nick.clone(),
            you: false,
            members: Vec::new(),
            count,
            account: account.clone(),
            away: away.clone(),
        });
    }

    /// A session of another node, `nick`, left `rooms` (`reason`) while this node could not
    /// hear it, or with its node: the members here of each hear it as they would have then.
    /// Each room comes with how many of its members were on other nodes as it left, it
    /// included: a room announces or not by its members on every node, as a live leave.
    /// A quit (any `reason` but a leave) is told once to each member here sharing one of
    /// the announcing `rooms`, as a quit here is ([`Event::Quit`]).
    pub fn left_elsewhere(&self, nick: &Nick, rooms: &[(RoomName, usize)], reason: LeaveReason) {
        let quit = !matches!(reason, LeaveReason::Left(_));
        if quit {
            self.with_chat(|chat| {
                let mut told = HashSet::new();
                for (room, elsewhere) in rooms {
                    if let Some(target) = chat.rooms.get(room)
                        && target.settings.announces(target.members.len() + elsewhere)
                    {
                        told.extend(target.members.keys().copied());
                    }
                }
                let notice = Outgoing::new(Event::Quit {
                    nick: nick.clone(),
                    reason: reason.clone(),
                });
                for member in told {
                    chat.send(member, &notice);
                }
            });
        }
        self.announce_elsewhere(rooms, |room, _| Event::Left {
            room,
            nick: nick.clone(),
            you: false,
            reason: reason.clone(),
            told_once: quit,
        });
    }

    /// Fans out `event` (given the room's name and its members on every node) in each of
    /// `rooms` here that announces at that count: its members here, plus those elsewhere.
    fn announce_elsewhere(
        &self,
        rooms: &[(RoomName, usize)],
        event: impl Fn(RoomName, usize) -> Event,
    ) {
        if rooms.is_empty() {
            return;
        }
        self.with_chat(|chat| {
            for (room, elsewhere) in rooms {
                let Some(target) = chat.rooms.get(room) else {
                    continue;
                };
                let count = target.members.len() + elsewhere;
                if !target.settings.announces(count) {
                    continue;
                }
                let event = event(target.name.clone(), count);
                chat.fan_out(Publication {
                    room: room.clone(),
                    event,
                    except: None,
                });
            }
        });
    }

    /// A session of another node, `nick`, went away (`message`) or came back: everyone
    /// here sharing one of its `rooms` hears it once, as of someone here (IRC
    /// `away-notify`).
    pub fn away_elsewhere(&self, nick: &Nick, message: Option<MessageText>, rooms: &[RoomName]) {
        self.with_chat(|chat| {
            let notice = Outgoing::new(Event::AwayChanged {
                nick: nick.clone(),
                message,
            });
            let mut told = HashSet::new();
            for room in rooms {
                if let Some(target) = chat.rooms.get(room) {
                    told.extend(target.members.keys().copied());
                }
            }
            for member in told {
                chat.send(member, &notice);
            }
        });
    }

    /// What session `from.id` here sent a user of another node (a private message, tags,
    /// an invitation) was acknowledged but lost on the way: the link to the other nodes
    /// failed as it was sent (Redis may or may not have carried it). The session is told,
    /// with the reference of the request that sent it and what it was, so that it does
    /// not take it for delivered and knows which to send again.
    pub fn not_delivered(&self, from: DirectSender) {
        self.with_chat(|chat| {
            let lost = Event::Error {
                code: super::ErrorCode::NotDelivered,
                message: format!(
                    "{} may not have been delivered: cross-node delivery interrupted as it was sent; send it again once it is restored",
                    from.what
                ),
            };
            chat.send(from.id, &Outgoing::reply(lost, from.reference));
        });
    }

    /// Another node took `nick` at the same moment as session `id` here, and first: the
    /// session is told and renamed to a guest, if it still holds `nick`.
    pub fn nick_lost(&self, id: SessionId, nick: &Nick) {
        self.with_chat(|chat| {
            if chat.sessions.get(&id).is_none_or(|s| s.nick != *nick) {
                return;
            }
            let lost = Event::Error {
                code: super::ErrorCode::NickTaken,
                message: format!("{nick} was taken on another node at the same moment"),
            };
            chat.send(id, &Outgoing::new(lost));
            chat.evict(id);
        });
    }

    /// A user of another node made `room` at the same moment as session `id` here, and
    /// first: `id` is not its operator after all. It is told, and the room's members here
    /// see it lose operator (`-o`), as they saw it gain it by founding the room.
    pub fn founding_lost(&self, room: &RoomName, id: SessionId) {
        self.with_chat(|chat| {
            let Some(target) = chat.rooms.get_mut(room) else {
                return;
            };
            if target.ops.remove(&id).is_none() {
                return;
            }
            let Some(session) = chat.sessions.get(&id) else {
                return;
            };
            if let Some(account) = &session.account {
                target.op_accounts.retain(|a| a != account);
            }
            chat.directory.standing(room, id, target.standing(id));
            let (name, nick) = (target.name.clone(), session.nick.clone());
            let lost = Event::Error {
                code: super::ErrorCode::NotOperator,
                message: format!(
                    "{name} was made on another node at the same moment: you are not its operator"
                ),
            };
            chat.send(id, &Outgoing::new(lost));
            let changed = Event::ModeChanged {
                room: name.clone(),
                by: nick.clone(),
                changes: vec![ModeChange {
                    add: false,
                    mode: Mode::Op(nick),
                }],
            };
            chat.fan_out(Publication {
                room: name,
                event: changed,
                except: None,
            });
        });
    }

    /// What the cluster keeps of `room` changed (on any node, this one included, in the
    /// order every node hears it): the room here, if there is one, takes it as it now is,
    /// so that every node ends with the same whatever changes crossed on the way.
    pub fn room_kept(&self, room: &RoomName, kept: KeptRoom) {
        self.with_chat(|chat| {
            if let Some(target) = chat.rooms.get_mut(room) {
                target.restore(kept);
            }
        });
    }

    /// What another node's operator did in a room (a topic, modes, a kick), for the
    /// members here: an operator or voice given to a member here, or a member here kicked,
    /// takes effect here as they hear it.
    pub fn room_event_elsewhere(&self, publication: Publication) {
        self.with_chat(|chat| {
            let room = publication.room.clone();
            let member = |chat: &super::chat::ChatState, nick: &Nick| {
                chat.nicks.get(nick, &chat.sessions).filter(|id| {
                    chat.rooms
                        .get(&room)
                        .is_some_and(|r| r.members.contains_key(id))
                })
            };
            let mut kicked = None;
            let mut shared = Vec::new();
            match &publication.event {
                Event::ModeChanged { changes, .. } => {
                    for change in changes {
                        let (op, nick) = match &change.mode {
                            Mode::Op(nick) => (true, nick),
                            Mode::Voice(nick) => (false, nick),
                            _ => continue,
                        };
                        let Some(id) = member(chat, nick) else {
                            continue;
                        };
                        let account = chat.sessions[&id].account.clone();
                        if let Some(target) = chat.rooms.get_mut(&room) {
                            target.give(id, account.as_ref(), op, change.add);
                            chat.directory.standing(&room, id, target.standing(id));
                        }
                        if let (true, Some(account)) = (op, account) {
                            shared.push(RoomChange::OpAccount(account, change.add));
                        }
                    }
                }
                Event::Kicked { nick, .. } => kicked = member(chat, nick),
                _ => {}
            }
            chat.share_room(&room, shared);
            chat.fan_out(publication);
            if let Some(id) = kicked {
                // It read the kick in the room's log, as one kicked here does.
                chat.part_as(id, &room, None);
            }
        });
    }

    /// Tells every session here whether the other nodes can be reached.
    pub fn tell_all(&self, event: Event) {
        self.with_chat(|chat| {
            let event = Outgoing::new(event);
            let ids: Vec<SessionId> = chat.sessions.keys().copied().collect();
            for id in ids {
                chat.send(id, &event);
            }
        });
    }

    /// The number of the last message heard in each of `rooms` and of the rooms here: what
    /// a cluster node fetches what it missed after.
    pub fn last_heard(&self, rooms: Vec<RoomName>) -> Vec<(RoomName, u64)> {
        self.with_chat(|chat| {
            let mut rooms: HashSet<RoomName> = rooms.into_iter().collect();
            rooms.extend(chat.rooms.keys().cloned());
            rooms
                .into_iter()
                .map(|room| {
                    let last = if chat.rooms.contains_key(&room) {
                        chat.last_seq(&room)
                    } else {
                        chat.store.last_seq(&room)
                    };
                    (room, last)
                })
                .collect()
        })
    }

    /// The sessions here that said something after `since` (milliseconds since the Unix
    /// epoch), and when they last did: what a cluster tells the others now and then for
    /// their idle time, asked for periodically rather than told per message.
    pub fn spoke_since(&self, since: u64) -> Vec<(SessionId, u64)> {
        self.with_chat(|chat| {
            chat.sessions
                .iter()
                .filter(|(_, session)| session.spoke > since)
                .map(|(id, session)| (*id, session.spoke))
                .collect()
        })
    }

    /// The other nodes are reachable again and what was missed has been heard: a message of
    /// this node up to id `answered` (the bus had it answered for before reading what was
    /// missed) still not handed back was lost with Redis (sent, never kept there). Its
    /// speaker is told instead of waiting for an `ack` forever. Messages held, or sent
    /// since, are still on their way.
    pub fn forget_unheard(&self, answered: u64) {
        self.with_chat(|chat| {
            let lost: Vec<u64> = chat
                .unheard
                .keys()
                .filter(|id| **id <= answered && !chat.held.contains(id))
                .copied()
                .collect();
            let owed: Vec<Owed> = lost
                .iter()
                .filter_map(|id| chat.unheard.remove(id))
                .collect();
            for owed in owed {
                let lost = Event::Error {
                    code: super::ErrorCode::NotStored,
                    message: format!(
                        "message {} may not have reached the other nodes: Redis failed as it was sent",
                        owed.id
                    ),
                };
                chat.pay(owed, lost);
            }
        });
    }
}
