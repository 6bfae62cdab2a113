//! Room operators, topics, modes, kicks, bans and invitations: one set of rules for every
//! protocol. The mode letters (`+t`, `+o`…) are IRC's, and the text and JSON protocols
//! use them too, so each mode has one name everywhere.
//!
//! The first member of a room a user makes is its operator; `#lobby` and the rooms feeds
//! open are the server's and have none. A room starts `+nt`: only members speak (charla
//! has always required it), only operators set the topic.

use std::fmt;

use super::chat::{ChatState, Failure, Reply, now_ms};
use super::event::{ErrorCode, Event};
use super::names::{Nick, RoomName, fold};
use super::room::{Room, RoomChange};
use super::text::MessageText;
use super::{SessionId, names};
use crate::limits::{
    MAX_BANS_PER_ROOM, MAX_INVITES_PER_ROOM, MAX_KEY_BYTES, MAX_NICK_CHARS, TOPICLEN,
};

/// A room's topic, who set it and when (milliseconds since the Unix epoch).
#[derive(Debug, Clone)]
pub struct Topic {
    pub text: MessageText,
    pub by: Nick,
    pub at: u64,
}

/// What a member is in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Member,
    /// May speak while the room is moderated.
    Voiced,
    Operator,
    /// Both an operator and voiced: voice matters again once the operator is deopped.
    OperatorVoiced,
}

impl Standing {
    /// `@` for an operator, `+` for a voiced member, as IRC's NAMES shows them: the
    /// highest only.
    pub fn prefix(self) -> &'static str {
        match self {
            Standing::Member => "",
            Standing::Voiced => "+",
            Standing::Operator | Standing::OperatorVoiced => "@",
        }
    }

    /// Every prefix that applies, highest first (IRCv3 multi-prefix).
    pub fn prefixes(self) -> &'static str {
        match self {
            Standing::OperatorVoiced => "@+",
            other => other.prefix(),
        }
    }

    /// What an operator (`op`) and a voiced member (`voiced`) are.
    pub fn of(op: bool, voiced: bool) -> Standing {
        match (op, voiced) {
            (true, true) => Standing::OperatorVoiced,
            (true, false) => Standing::Operator,
            (false, true) => Standing::Voiced,
            (false, false) => Standing::Member,
        }
    }

    pub fn is_op(self) -> bool {
        matches!(self, Standing::Operator | Standing::OperatorVoiced)
    }

    pub fn is_voiced(self) -> bool {
        matches!(self, Standing::Voiced | Standing::OperatorVoiced)
    }
}

/// The modes a room has; a new room a user makes starts `+nt`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Modes {
    /// `+t`: only operators set the topic.
    pub topic_locked: bool,
    /// `+n`: only members send to the room. Off (`-n`), anyone may send to it by name.
    pub no_outside: bool,
    /// `+m`: only operators and voiced members speak.
    pub moderated: bool,
    /// `+i`: only the invited join.
    pub invite_only: bool,
    /// `+s`: secret, as if it did not exist to those outside it (`/rooms`, LIST, NAMES,
    /// WHO, WHOIS, TOPIC and MODE queries); anyone may still join it by name.
    pub secret: bool,
    /// `+k`: joining takes this key.
    pub key: Option<String>,
    /// `+l`: members at most.
    pub limit: Option<usize>,
}

impl Modes {
    pub fn new_room() -> Modes {
        Modes {
            topic_locked: true,
            no_outside: true,
            ..Modes::default()
        }
    }

    /// Whether `key` may be set as a room's key: 1 to [`MAX_KEY_BYTES`] bytes, without a
    /// space or comma (which end it in a JOIN) or anything sanitising would remove, since
    /// every member is shown it (`MODE #room +k KEY`).
    pub fn valid_key(key: &str) -> bool {
        !key.is_empty()
            && key.len() <= MAX_KEY_BYTES
            && !key.contains([' ', ','])
            && super::text::sanitize(key) == key
    }

    /// `+iklmnt KEY LIMIT` as IRC writes it (letters in order, then their arguments);
    /// the key as `*` unless `show_key`.
    pub fn describe(&self, show_key: bool) -> String {
        let mut letters = String::from("+");
        let mut args = Vec::new();
        if self.invite_only {
            letters.push('i');
        }
        if let Some(key) = &self.key {
            letters.push('k');
            args.push(if show_key { key.clone() } else { "*".into() });
        }
        if let Some(limit) = self.limit {
            letters.push('l');
            args.push(limit.to_string());
        }
        let flags = [
            (self.moderated, 'm'),
            (self.no_outside, 'n'),
            (self.secret, 's'),
        ];
        for (on, letter) in flags {
            if on {
                letters.push(letter);
            }
        }
        if self.topic_locked {
            letters.push('t');
        }
        for arg in args {
            letters.push(' ');
            letters.push_str(&arg);
        }
        letters
    }
}

/// One mode, with its argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    TopicLocked,
    NoOutside,
    Moderated,
    InviteOnly,
    Secret,
    /// The key; ignored when removed.
    Key(String),
    /// The limit; ignored when removed.
    Limit(usize),
    Ban(BanMask),
    Op(Nick),
    Voice(Nick),
}

impl Mode {
    /// Whether the letter carries a parameter (bounded per request by
    /// [`crate::limits::MAX_MODE_ARGS`]).
    pub fn takes_param(&self) -> bool {
        !matches!(
            self,
            Mode::TopicLocked | Mode::NoOutside | Mode::Moderated | Mode::InviteOnly | Mode::Secret
        )
    }

    /// The letter of a mode without an argument (`t`, `n`, `m`, `i`, `s`).
    pub fn flag_letter(&self) -> Option<char> {
        (!self.takes_param()).then(|| self.letter())
    }

    pub fn letter(&self) -> char {
        match self {
            Mode::TopicLocked => 't',
            Mode::NoOutside => 'n',
            Mode::Moderated => 'm',
            Mode::InviteOnly => 'i',
            Mode::Secret => 's',
            Mode::Key(_) => 'k',
            Mode::Limit(_) => 'l',
            Mode::Ban(_) => 'b',
            Mode::Op(_) => 'o',
            Mode::Voice(_) => 'v',
        }
    }
}

/// Setting (`add`) or lifting one mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeChange {
    pub add: bool,
    pub mode: Mode,
}

impl ModeChange {
    /// The argument written after the letters, if the change takes one: a removed key is
    /// written `*`, a removed limit has none.
    pub fn arg(&self) -> Option<String> {
        match (&self.mode, self.add) {
            (Mode::Key(key), true) => Some(key.clone()),
            (Mode::Key(_), false) => Some("*".into()),
            (Mode::Limit(limit), true) => Some(limit.to_string()),
            (Mode::Ban(mask), _) => Some(mask.to_string()),
            (Mode::Op(nick) | Mode::Voice(nick), _) => Some(nick.to_string()),
            _ => None,
        }
    }
}

/// `+ov-k ana bob *`: changes as IRC writes them.
pub fn describe_changes(changes: &[ModeChange]) -> String {
    let mut letters = String::new();
    let mut sign = None;
    let mut args = Vec::new();
    for change in changes {
        if sign != Some(change.add) {
            letters.push(if change.add { '+' } else { '-' });
            sign = Some(change.add);
        }
        letters.push(change.mode.letter());
        args.extend(change.arg());
    }
    for arg in args {
        letters.push(' ');
        letters.push_str(&arg);
    }
    letters
}

/// A ban: a glob on nicks (`*` any run, `?` one character), written `pattern!*@*`, compared
/// as nicks are (case and look-alikes folded).
#[derive(Clone)]
pub struct BanMask {
    /// `pattern!*@*`, as shown.
    mask: String,
    /// The pattern, folded.
    folded: Vec<char>,
}

impl BanMask {
    /// `ana`, `an*`, `ana!*@*` or `*!*@*`: a pattern on the nick; the user and host parts,
    /// if given, must be `*` (charla shows no addresses, so there is nothing else to
    /// match).
    pub fn parse(input: &str) -> Result<BanMask, String> {
        let input = input.trim();
        let (pattern, rest) = match input.split_once('!') {
            Some((pattern, rest)) => (pattern, Some(rest)),
            None => (input, None),
        };
        if let Some(rest) = rest
            && !matches!(rest, "*" | "*@*")
        {
            return Err(format!(
                "{input:?} is not a ban charla can apply: it bans by nick only (nick!*@*)"
            ));
        }
        if pattern.is_empty() {
            return Err("a ban mask needs a nick pattern, such as bob or bo*".into());
        }
        if pattern.chars().count() > MAX_NICK_CHARS * 2 {
            return Err(format!("{pattern:?} is too long for a ban mask"));
        }
        let plain: String = pattern.replace(['*', '?'], "");
        if !plain.is_empty() {
            // What is not a wildcard must be what nicks are made of.
            let probe = if plain.starts_with(|c: char| c.is_alphabetic() || c == '_') {
                plain.clone()
            } else {
                format!("_{plain}")
            };
            names::Nick::parse(&probe)
                .map_err(|e| format!("{pattern:?} is not a valid ban mask: {e}"))?;
        }
        Ok(BanMask {
            mask: format!("{pattern}!*@*"),
            folded: fold(pattern).chars().collect(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.mask
    }

    /// The pattern folded: two masks are the same ban when their keys are equal.
    pub fn key(&self) -> String {
        self.folded.iter().collect()
    }

    pub fn matches(&self, nick: &Nick) -> bool {
        let nick: Vec<char> = nick.key().chars().collect();
        glob(&self.folded, &nick)
    }

    /// The one nick this mask names, when it has no wildcard.
    pub fn exact_nick(&self) -> Option<Nick> {
        let pattern = self.mask.strip_suffix("!*@*")?;
        if pattern.contains(['*', '?']) {
            return None;
        }
        Nick::parse(pattern).ok()
    }
}

impl PartialEq for BanMask {
    fn eq(&self, other: &BanMask) -> bool {
        self.folded == other.folded
    }
}

impl Eq for BanMask {}

impl fmt::Display for BanMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for BanMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Whether `text` matches `pattern` (`*` any run, `?` one character), by backtracking to
/// the last `*` only: linear in practice, quadratic at worst, on names of a few dozen
/// characters.
pub(super) fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// A ban on a room, who set it and when.
#[derive(Debug, Clone)]
pub struct Ban {
    pub mask: BanMask,
    /// The account of the one the mask named, when it named one nick held by someone
    /// logged in (or a registered nick): the ban follows that account through a nick change.
    pub account: Option<Nick>,
    pub by: Nick,
    pub at: u64,
}

impl Ban {
    /// Whether this ban keeps out someone called `nick`, logged in to `account`.
    pub fn applies(&self, nick: &Nick, account: Option<&Nick>) -> bool {
        self.mask.matches(nick) || (self.account.is_some() && self.account.as_ref() == account)
    }
}

/// What a mode change was checked against before any change is made.
enum Chosen {
    /// The member an operator or voice change names, here or on another node, as it
    /// spells its nick.
    Member(SessionId, Nick),
    /// The account a new ban on one nick follows.
    Account(Nick),
}

/// The room a kick or mode change is about: one `id` is in (or talks in), or for a server
/// operator any room that exists.
fn operated_room(
    chat: &ChatState,
    id: SessionId,
    room: Option<RoomName>,
) -> Result<RoomName, Failure> {
    match room {
        Some(room) if chat.sessions[&id].oper && chat.rooms.contains_key(&room) => Ok(room),
        room => chat.room_of(id, room),
    }
}

/// Whether `id` may kick and change modes in `room`: one of its operators, or a server
/// operator.
fn may_operate(chat: &ChatState, id: SessionId, room: &Room) -> bool {
    room.is_op(id) || chat.sessions[&id].oper
}

/// Whether `key` opens `room`: any does when it is not `+k`.
fn key_fits(room: &Room, key: Option<&str>) -> Result<(), Failure> {
    match &room.modes.key {
        Some(wanted) if key != Some(wanted.as_str()) => {
            let name = &room.name;
            Err((
                ErrorCode::BadKey,
                format!("{name} takes a key: /join {name} KEY"),
            ))
        }
        _ => Ok(()),
    }
}

fn not_operator(room: &RoomName, what: &str) -> Failure {
    (
        ErrorCode::NotOperator,
        format!("only {room}'s operators may {what}"),
    )
}

impl ChatState {
    /// Whether session `id` may found `room` (made again from its kept state, with no
    /// operator's account): its kept bans and key hold for the founder too, its `+i` and
    /// `+l` do not, as nobody inside could let anyone in.
    pub(super) fn may_found(
        &self,
        id: SessionId,
        room: &Room,
        key: Option<&str>,
    ) -> Result<(), Failure> {
        self.may_pass_bans(id, room)?;
        key_fits(room, key)
    }

    /// Whether session `id` is kept out of `room` by one of its bans; an invitation lets
    /// it in.
    fn may_pass_bans(&self, id: SessionId, room: &Room) -> Result<(), Failure> {
        let session = &self.sessions[&id];
        let name = &room.name;
        let invited = room.invited.contains(&id) || self.directory.invited(name, id);
        let account = session.account.as_ref();
        if room
            .bans
            .iter()
            .any(|ban| ban.applies(&session.nick, account))
            && !invited
        {
            return Err((ErrorCode::Banned, format!("you are banned from {name}")));
        }
        Ok(())
    }

    /// Whether session `id` may come into `room` (which exists) with `key`: not banned,
    /// invited if it is invite-only, with its key, within its limit. One of the room's
    /// operators' accounts comes in whatever the modes: it is the room's owner, and a room
    /// kept locked (`+i`, `+k`) after it emptied has nobody inside to let it in.
    pub(super) fn may_enter(
        &self,
        id: SessionId,
        room: &Room,
        key: Option<&str>,
    ) -> Result<(), Failure> {
        let session = &self.sessions[&id];
        if room.has_op_account(session.account.as_ref()) {
            return Ok(());
        }
        let name = &room.name;
        let invited = room.invited.contains(&id) || self.directory.invited(name, id);
        self.may_pass_bans(id, room)?;
        if room.modes.invite_only && !invited {
            return Err((
                ErrorCode::InviteOnly,
                format!("{name} is invite-only; ask one of its operators to /invite you"),
            ));
        }
        key_fits(room, key)?;
        if let Some(limit) = room.modes.limit
            && room.members.len() >= limit
        {
            return Err((
                ErrorCode::RoomFull,
                format!("{name} is full ({limit} members at most)"),
            ));
        }
        Ok(())
    }

    /// The room a message of session `id` goes to, if it may speak there: a room it is
    /// in, or, named, one that is `-n`; not while the room is `+m` or `id` banned, unless
    /// it is an operator or voiced.
    pub(super) fn speaking_room(
        &self,
        id: SessionId,
        room: Option<RoomName>,
    ) -> Result<RoomName, Failure> {
        let (name, target) = match self.room_of(id, room.clone()) {
            Ok(name) => {
                let target = &self.rooms[&name];
                (name, target)
            }
            Err(failure) => match room.as_ref().and_then(|r| self.rooms.get(r)) {
                Some(target) if !target.modes.no_outside => (target.name.clone(), target),
                // A room that does not exist (on any node), or is secret to `id`, is no
                // such room, not one `id` cannot send to (IRC's 403, not 404).
                _ => match room {
                    Some(room)
                        if (!self.rooms.contains_key(&room)
                            && self.directory.count(&room) == 0)
                            || self.hidden_from(id, &room) =>
                    {
                        return Err((ErrorCode::InvalidRoom, format!("there is no {room}")));
                    }
                    _ => return Err(failure),
                },
            },
        };
        // Most rooms are neither moderated nor ban anyone: a message costs no more look-ups.
        if (!target.modes.moderated && target.bans.is_empty()) || target.has_voice(id) {
            return Ok(name);
        }
        if target.modes.moderated {
            return Err((
                ErrorCode::Moderated,
                format!("{name} is moderated: only its operators and voiced members speak"),
            ));
        }
        let session = &self.sessions[&id];
        let account = session.account.as_ref();
        if target
            .bans
            .iter()
            .any(|ban| ban.applies(&session.nick, account))
        {
            return Err((
                ErrorCode::Banned,
                format!("you are banned from {name} and cannot speak there"),
            ));
        }
        Ok(name)
    }

    /// The account behind `nick`: its holder's when online, else the account of that name.
    fn account_behind(&self, nick: &Nick) -> Option<Nick> {
        match self.holder(nick).and_then(|id| self.sessions.get(&id)) {
            Some(session) => session.account.clone(),
            None => self.registered.get(nick).cloned(),
        }
    }

    /// A room anyone may look into: the one named, if it exists and is not secret to `id`,
    /// or the one `id` talks in.
    fn existing_room(&self, id: SessionId, room: Option<RoomName>) -> Result<RoomName, Failure> {
        match room {
            Some(room) if self.rooms.contains_key(&room) && !self.hidden_from(id, &room) => {
                Ok(room)
            }
            Some(room) => Err((ErrorCode::InvalidRoom, format!("there is no {room}"))),
            None => self.room_of(id, None),
        }
    }

    pub(super) fn topic(&self, id: SessionId, room: Option<RoomName>) -> Reply {
        let room = self.existing_room(id, room)?;
        let target = &self.rooms[&room];
        Ok(Some(Event::Topic {
            room: target.name.clone(),
            topic: target.topic.clone(),
        }))
    }

    pub(super) fn set_topic(
        &mut self,
        id: SessionId,
        room: Option<RoomName>,
        text: Option<MessageText>,
    ) -> Reply {
        let room = self.room_of(id, room)?;
        let target = &self.rooms[&room];
        if target.modes.topic_locked && !target.is_op(id) {
            return Err(not_operator(&target.name, "set its topic (it is +t)"));
        }
        let by = self.sessions[&id].nick.clone();
        let topic = text.and_then(|text| {
            Some(Topic {
                text: text.cut(TOPICLEN)?,
                by: by.clone(),
                at: now_ms(),
            })
        });
        let target = self.rooms.get_mut(&room).expect("checked above");
        target.topic = topic.clone();
        let changed = Event::TopicChanged {
            room: target.name.clone(),
            by,
            topic: topic.clone(),
        };
        self.save_room(&room);
        self.share_room(&room, vec![RoomChange::Topic(topic)]);
        self.publish(room, changed.clone(), Some(id));
        Ok(Some(changed))
    }

    /// The session called `nick` if it is in `room`, here or on another node, and its nick
    /// as it spells it.
    fn member_called(&self, room: &Room, nick: &Nick) -> Result<(SessionId, Nick), Failure> {
        let not_in = || {
            Err((
                ErrorCode::TargetNotInRoom,
                format!("{nick} is not in {}", room.name),
            ))
        };
        if let Some(member) = self.nicks.get(nick, &self.sessions) {
            if !room.members.contains_key(&member) {
                return not_in();
            }
            return Ok((member, self.sessions[&member].nick.clone()));
        }
        let Some(member) = self.directory.holder(nick) else {
            return Err((ErrorCode::NoSuchNick, format!("nobody is called {nick}")));
        };
        match self
            .directory
            .members(&room.name)
            .into_iter()
            .find(|m| m.nick == *nick)
        {
            Some(spelled) => Ok((member, spelled.nick)),
            None => not_in(),
        }
    }

    pub(super) fn kick(
        &mut self,
        id: SessionId,
        room: Option<RoomName>,
        nick: Nick,
        reason: Option<MessageText>,
    ) -> Reply {
        // A room that does not exist is said so, not that one is not in it (IRC's 403
        // before 442, modern.ircdocs.horse).
        if let Some(name) = room
            .as_ref()
            .filter(|r| !self.rooms.contains_key(*r) || self.hidden_from(id, r))
        {
            return Err((ErrorCode::InvalidRoom, format!("there is no {name}")));
        }
        let room = operated_room(self, id, room)?;
        let target = &self.rooms[&room];
        if !may_operate(self, id, target) {
            return Err(not_operator(&target.name, "kick"));
        }
        let (member, nick) = self.member_called(target, &nick)?;
        let kicked = Event::Kicked {
            room: target.name.clone(),
            nick,
            by: self.sessions[&id].nick.clone(),
            reason,
        };
        // The room hears it, the one kicked included: it reads the room's log up to here
        // as it leaves. One kicked on another node is parted there, as its node hears it.
        self.publish(room.clone(), kicked.clone(), Some(id));
        self.part_as(member, &room, None);
        Ok(Some(kicked))
    }

    pub(super) fn bans(&self, id: SessionId, room: Option<RoomName>) -> Reply {
        let room = self.existing_room(id, room)?;
        let target = &self.rooms[&room];
        Ok(Some(Event::Bans {
            room: target.name.clone(),
            bans: target.bans.clone(),
        }))
    }

    pub(super) fn mode(
        &mut self,
        id: SessionId,
        room: Option<RoomName>,
        changes: Vec<ModeChange>,
    ) -> Reply {
        if changes.is_empty() {
            let room = self.existing_room(id, room)?;
            let target = &self.rooms[&room];
            // Members of other nodes are operators or voiced as their nodes told.
            let elsewhere = self.directory.members(&room);
            let sorted = |set: &super::BySession<()>, op: bool| {
                let mut nicks: Vec<Nick> = set
                    .keys()
                    .map(|member| self.sessions[member].nick.clone())
                    .collect();
                nicks.extend(
                    elsewhere
                        .iter()
                        .filter(|m| match op {
                            true => m.standing.is_op(),
                            false => m.standing.is_voiced(),
                        })
                        .map(|m| m.nick.clone()),
                );
                nicks.sort_by(|a, b| a.sort_key().cmp(b.sort_key()));
                nicks
            };
            let (ops, voiced) = (sorted(&target.ops, true), sorted(&target.voiced, false));
            let mut modes = target.modes.clone();
            if !target.members.contains_key(&id) {
                // The key is for members to see.
                modes.key = modes.key.map(|_| "*".to_string());
            }
            return Ok(Some(Event::Modes {
                room: target.name.clone(),
                modes,
                ops,
                voiced,
                created: target.created,
            }));
        }
        // A room that does not exist is said so, not that one is not in it (IRC's 403
        // before 442, as KICK).
        if let Some(name) = &room {
            self.existing_room(id, Some(name.clone()))?;
        }
        let room = operated_room(self, id, room)?;
        let target = &self.rooms[&room];
        if !may_operate(self, id, target) {
            return Err(not_operator(&target.name, "change its modes"));
        }
        // Every change is checked before any is made: a request is carried out whole or
        // refused whole.
        let mut members = Vec::with_capacity(changes.len());
        let mut new_bans = 0;
        for change in &changes {
            let member = match &change.mode {
                Mode::Op(nick) | Mode::Voice(nick) => {
                    let (member, spelled) = self.member_called(target, nick)?;
                    Some(Chosen::Member(member, spelled))
                }
                Mode::Key(key) if change.add && !Modes::valid_key(key) => {
                    return Err((
                        ErrorCode::InvalidArgument,
                        format!(
                            "a key is 1 to {MAX_KEY_BYTES} bytes, without spaces, commas \
                             or control characters"
                        ),
                    ));
                }
                Mode::Limit(0) if change.add => {
                    return Err((ErrorCode::InvalidArgument, "a limit is at least 1".into()));
                }
                Mode::Ban(mask) if change.add && !target.bans.iter().any(|b| b.mask == *mask) => {
                    new_bans += 1;
                    mask.exact_nick()
                        .and_then(|nick| self.account_behind(&nick))
                        .map(Chosen::Account)
                }
                _ => None,
            };
            members.push(member);
        }
        if target.bans.len() + new_bans > MAX_BANS_PER_ROOM {
            return Err((
                ErrorCode::InvalidArgument,
                format!(
                    "{} keeps at most {MAX_BANS_PER_ROOM} bans; lift one first",
                    target.name
                ),
            ));
        }
        let by = self.sessions[&id].nick.clone();
        let target = self.rooms.get_mut(&room).expect("checked above");
        let mut applied = Vec::with_capacity(changes.len());
        let mut shared = Vec::new();
        for (change, member) in changes.into_iter().zip(members) {
            let add = change.add;
            let done = match &change.mode {
                Mode::TopicLocked => flip(&mut target.modes.topic_locked, add),
                Mode::NoOutside => flip(&mut target.modes.no_outside, add),
                Mode::Moderated => flip(&mut target.modes.moderated, add),
                Mode::InviteOnly => flip(&mut target.modes.invite_only, add),
                Mode::Secret => flip(&mut target.modes.secret, add),
                Mode::Key(key) => {
                    let new = add.then(|| key.clone());
                    let done = target.modes.key != new;
                    target.modes.key = new.clone();
                    shared.push(RoomChange::Key(new));
                    done
                }
                Mode::Limit(limit) => {
                    let new = add.then_some(*limit);
                    let done = target.modes.limit != new;
                    target.modes.limit = new;
                    shared.push(RoomChange::Limit(new));
                    done
                }
                Mode::Ban(mask) => {
                    let had = target.bans.iter().any(|b| b.mask == *mask);
                    if add && !had {
                        let ban = Ban {
                            mask: mask.clone(),
                            account: match &member {
                                Some(Chosen::Account(account)) => Some(account.clone()),
                                _ => None,
                            },
                            by: by.clone(),
                            at: now_ms(),
                        };
                        shared.push(RoomChange::Ban(mask.clone(), Some(ban.clone())));
                        target.bans.push(ban);
                    } else if !add {
                        target.bans.retain(|b| b.mask != *mask);
                        shared.push(RoomChange::Ban(mask.clone(), None));
                    }
                    add != had
                }
                Mode::Op(_) | Mode::Voice(_) => {
                    let Some(Chosen::Member(member, _)) = member.as_ref() else {
                        unreachable!("looked up above")
                    };
                    match self.sessions.get(member) {
                        Some(session) => {
                            let op = matches!(change.mode, Mode::Op(_));
                            if op && let Some(account) = &session.account {
                                shared.push(RoomChange::OpAccount(account.clone(), add));
                            }
                            let done = target.give(*member, session.account.as_ref(), op, add);
                            self.directory
                                .standing(&room, *member, target.standing(*member));
                            done
                        }
                        // Its own node gives or takes it as it hears the change.
                        None => true,
                    }
                }
            };
            if let (true, Some(letter)) = (done, change.mode.flag_letter()) {
                shared.push(RoomChange::Flag(letter, add));
            }
            if done {
                // A member is shown as called now, not as the request spelled it.
                let mode = match (change.mode, member) {
                    (Mode::Op(_), Some(Chosen::Member(_, nick))) => Mode::Op(nick),
                    (Mode::Voice(_), Some(Chosen::Member(_, nick))) => Mode::Voice(nick),
                    (mode, _) => mode,
                };
                applied.push(ModeChange { add, mode });
            }
        }
        let changed = Event::ModeChanged {
            room: target.name.clone(),
            by,
            changes: applied,
        };
        if matches!(&changed, Event::ModeChanged { changes, .. } if !changes.is_empty()) {
            self.save_room(&room);
            self.share_room(&room, shared);
            self.publish(room, changed.clone(), Some(id));
        }
        Ok(Some(changed))
    }

    /// Session `id` invites `nick` to `room` (its own when `None`), by the request tagged
    /// `reference`.
    pub(super) fn invite(
        &mut self,
        id: SessionId,
        room: Option<RoomName>,
        nick: Nick,
        reference: Option<String>,
    ) -> Reply {
        let room = self.room_of(id, room)?;
        let target = &self.rooms[&room];
        if target.modes.invite_only && !target.is_op(id) {
            return Err(not_operator(&target.name, "invite while it is +i"));
        }
        let Some(invitee) = self.nicks.get(&nick, &self.sessions) else {
            return self.invite_elsewhere(id, &room, nick, reference);
        };
        let nick = self.sessions[&invitee].nick.clone();
        if target.members.contains_key(&invitee) {
            return Err((
                ErrorCode::InvalidArgument,
                format!("{nick} is already in {}", target.name),
            ));
        }
        if !target.invited.contains(&invitee) && target.invited.len() >= MAX_INVITES_PER_ROOM {
            let sessions = &self.sessions;
            let target = self.rooms.get_mut(&room).expect("checked above");
            target.invited.retain(|i| sessions.contains_key(i));
            if target.invited.len() >= MAX_INVITES_PER_ROOM {
                return Err((
                    ErrorCode::InvalidArgument,
                    format!("{room} holds {MAX_INVITES_PER_ROOM} unused invitations already"),
                ));
            }
        }
        let target = self.rooms.get_mut(&room).expect("checked above");
        if !target.invited.contains(&invitee) {
            target.invited.push(invitee);
        }
        let name = target.name.clone();
        let by = self.sessions[&id].nick.clone();
        let (told, answer) = invitation(name, nick, by);
        self.send(invitee, &super::event::Outgoing::new(told));
        Ok(Some(answer))
    }
}

/// What the invitee is told and what the one inviting is answered.
fn invitation(room: RoomName, nick: Nick, by: Nick) -> (Event, Event) {
    let told = Event::Invited {
        room: room.clone(),
        nick: nick.clone(),
        by: by.clone(),
        you: true,
    };
    let answer = Event::Invited {
        room,
        nick,
        by,
        you: false,
    };
    (told, answer)
}

impl ChatState {
    /// Session `id` invites `nick`, held on another node if by anyone: that node keeps the
    /// invitation and tells them.
    fn invite_elsewhere(
        &mut self,
        id: SessionId,
        room: &RoomName,
        nick: Nick,
        reference: Option<String>,
    ) -> Reply {
        let Some(invitee) = self.directory.holder(&nick) else {
            return Err((ErrorCode::NoSuchNick, format!("nobody is called {nick}")));
        };
        let name = self.rooms[room].name.clone();
        if self.directory.members(room).iter().any(|m| m.nick == nick) {
            return Err((
                ErrorCode::InvalidArgument,
                format!("{nick} is already in {name}"),
            ));
        }
        let by = self.sessions[&id].nick.clone();
        let (told, answer) = invitation(name, nick.clone(), by);
        let from = super::bus::DirectSender::new(id, &told, reference);
        self.bus
            .direct(from, invitee, told)
            .map_err(|why| super::chat::undelivered(&nick, why))?;
        Ok(Some(answer))
    }
}

/// Sets `flag` to `on`; whether that changed it.
fn flip(flag: &mut bool, on: bool) -> bool {
    std::mem::replace(flag, on) != on
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(m: &str) -> BanMask {
        BanMask::parse(m).unwrap()
    }

    fn nick(n: &str) -> Nick {
        Nick::parse(n).unwrap()
    }

    #[test]
    fn ban_masks_glob_on_nicks_folded_as_nicks_compare() {
        assert!(mask("bob").matches(&nick("Bob")));
        assert!(!mask("bob").matches(&nick("bobby")));
        assert!(mask("bob*!*@*").matches(&nick("bobby")));
        assert!(mask("*").matches(&nick("anyone")));
        assert!(mask("b?b").matches(&nick("bib")));
        assert!(mask("*ña").matches(&nick("BEGOÑA")));
        // Folded as nicks are: `0` looks like `O`, so `b0b` is the same nick as `bob`.
        assert!(mask("bob").matches(&nick("b0b")));
        assert_eq!(mask("ana").to_string(), "ana!*@*");
        assert_eq!(mask("ANA!*@*"), mask("ana"));
        assert!(BanMask::parse("ana!x@y").is_err());
        assert!(BanMask::parse("").is_err());
        assert!(BanMask::parse("a b").is_err());
    }

    #[test]
    fn modes_and_changes_are_written_as_irc_writes_them() {
        let mut modes = Modes::new_room();
        assert_eq!(modes.describe(true), "+nt");
        modes.key = Some("sesame".into());
        modes.limit = Some(5);
        modes.invite_only = true;
        assert_eq!(modes.describe(true), "+iklnt sesame 5");
        assert_eq!(modes.describe(false), "+iklnt * 5");
        let changes = [
            ModeChange {
                add: true,
                mode: Mode::Op(nick("ana")),
            },
            ModeChange {
                add: true,
                mode: Mode::Moderated,
            },
            ModeChange {
                add: false,
                mode: Mode::Key("x".into()),
            },
            ModeChange {
                add: false,
                mode: Mode::Limit(0),
            },
        ];
        assert_eq!(describe_changes(&changes), "+om-kl ana *");
    }
}
