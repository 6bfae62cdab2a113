//! WHO: the members of a room, the holder of a nick, or the users a mask matches, each
//! shown only to whom they may be (invisible users, `+i`, are found by mask only by those
//! who share a room with them).

use super::SessionId;
use super::chat::{ChatState, now_ms};
use super::command::WhoOf;
use super::directory::Profile;
use super::event::{Event, WhoEntry};
use super::names::{Nick, RoomName, fold};
use super::ops::{Standing, glob};
use crate::limits::{MAX_WHO_MASK_CHARS, MAX_WHO_MASK_REPLIES};

/// A WHO mask, `nick!user@host` with `*` and `?` in any part (`ana*`, `*!bob@*`): the nick
/// part compared as nicks are (case and look-alikes folded), the user part without ASCII
/// case. The host is the protocol's to match ([`WhoMask::host`]): the hub keeps none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoMask {
    nick: Vec<char>,
    user: Vec<char>,
    host: String,
}

impl WhoMask {
    /// `nick`, `nick!user`, `nick!user@host` or `user@host`; `0` is `*` (RFC 2812). A
    /// mask longer than [`MAX_WHO_MASK_CHARS`], or with a space (which no name has), is
    /// `None`: it matches nobody.
    pub fn parse(input: &str) -> Option<WhoMask> {
        if input.chars().count() > MAX_WHO_MASK_CHARS || input.contains(char::is_whitespace) {
            return None;
        }
        let input = if input == "0" { "*" } else { input };
        let (nick, rest) = match input.split_once('!') {
            Some((nick, rest)) => (nick, rest),
            None if input.contains('@') => ("*", input),
            None => (input, "*"),
        };
        let (user, host) = rest.split_once('@').unwrap_or((rest, "*"));
        let pattern = |part: &str| {
            if part.is_empty() {
                "*".to_string()
            } else {
                part.to_string()
            }
        };
        Some(WhoMask {
            nick: fold(&pattern(nick)).chars().collect(),
            user: pattern(user).to_ascii_lowercase().chars().collect(),
            host: pattern(host),
        })
    }

    /// The host part, for the protocol to match against the host it shows.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the host part matches `host` (ASCII case aside).
    pub fn host_matches(&self, host: &str) -> bool {
        let pattern: Vec<char> = self.host.to_ascii_lowercase().chars().collect();
        let host: Vec<char> = host.to_ascii_lowercase().chars().collect();
        glob(&pattern, &host)
    }

    /// Whether a user called `nick`, who gave `user` (IRC's USER) or none, matches.
    pub fn matches(&self, nick: &Nick, user: Option<&str>) -> bool {
        let key: Vec<char> = nick.key().chars().collect();
        // Those who gave no user name show their nick as one (WHO, WHOIS).
        let user = user.unwrap_or(nick.as_str()).to_ascii_lowercase();
        let user: Vec<char> = user.chars().collect();
        glob(&self.nick, &key) && glob(&self.user, &user)
    }
}

impl ChatState {
    /// WHO of a room lists its members here with what their sessions gave, and those on
    /// other nodes as their nodes told (standing, user and real name, away, account, operator
    /// flag): all of them to a member, the
    /// visible ones to anyone else, none of a secret room to anyone else. WHO of a nick, its holder here or on another node, invisible or not; of
    /// a mask, the users of every node it matches that `asker` may see, at most
    /// [`MAX_WHO_MASK_REPLIES`] (this node's first). `opers_only` keeps server operators alone.
    pub(super) fn who(&self, asker: SessionId, of: WhoOf, opers_only: bool) -> Event {
        let (room, mut members) = match of {
            WhoOf::Nick(nick) => {
                let found = match self.nicks.get(&nick, &self.sessions) {
                    Some(id) => Some(self.who_entry(id, Standing::Member)),
                    None => self.directory.whois(&nick).map(|whois| WhoEntry {
                        nick: whois.nick,
                        standing: Standing::Member,
                        user: whois.user,
                        realname: whois.realname,
                        away: whois.away.is_some(),
                        account: whois.account,
                        oper: whois.oper,
                        // Found by nick, invisible or not: not asked.
                        invisible: false,
                        idle: whois.idle / 1000,
                    }),
                };
                (None, found.into_iter().collect())
            }
            WhoOf::Mask(mask) => (None, self.who_mask(asker, &mask)),
            WhoOf::Room(room) => {
                if self.hidden_from(asker, &room) {
                    return Event::Who {
                        room: Some(room),
                        members: Vec::new(),
                    };
                }
                let elsewhere = self.directory.members(&room).into_iter();
                match self.rooms.get(&room) {
                    Some(target) => {
                        let member = target.members.contains_key(&asker);
                        let mut members: Vec<WhoEntry> = self
                            .member_ids(&room, None)
                            .into_iter()
                            .filter(|&m| member || !self.sessions[&m].invisible)
                            .map(|m| self.who_entry(m, target.standing(m)))
                            .collect();
                        members.extend(elsewhere.filter(|m| member || !m.invisible));
                        (Some(target.name.clone()), members)
                    }
                    // A room with members on other nodes only, the asker not among them:
                    // its visible members, as `/users` and NAMES list them.
                    None => (Some(room), elsewhere.filter(|m| !m.invisible).collect()),
                }
            }
        };
        if opers_only {
            members.retain(|member| member.oper);
        }
        Event::Who { room, members }
    }

    fn who_mask(&self, asker: SessionId, mask: &WhoMask) -> Vec<WhoEntry> {
        let mine = &self.sessions[&asker].rooms;
        let seen = |id: SessionId| {
            let session = &self.sessions[&id];
            !session.invisible
                || id == asker
                || session.rooms.iter().any(|room| mine.contains(room))
        };
        let found: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| mask.matches(&s.nick, s.user.as_deref()))
            .map(|(&id, _)| id)
            .filter(|&id| seen(id))
            .take(MAX_WHO_MASK_REPLIES)
            .collect();
        // Users of other nodes by the same rule: an invisible one only to whoever shares
        // one of its rooms.
        let seen_elsewhere = |profile: &Profile, rooms: &[(RoomName, Standing)]| {
            !profile.invisible || rooms.iter().any(|(room, _)| mine.contains(room))
        };
        let space = MAX_WHO_MASK_REPLIES - found.len();
        let mut entries: Vec<WhoEntry> = found
            .into_iter()
            .map(|id| self.who_entry(id, Standing::Member))
            .collect();
        if space > 0 {
            entries.extend(self.directory.matching(mask, &seen_elsewhere, space));
        }
        entries.sort_unstable_by(|a, b| a.nick.sort_key().cmp(b.nick.sort_key()));
        entries
    }

    fn who_entry(&self, id: SessionId, standing: Standing) -> WhoEntry {
        let session = &self.sessions[&id];
        WhoEntry {
            nick: session.nick.clone(),
            standing,
            user: session.user.clone(),
            realname: session.realname.clone(),
            away: session.away.is_some(),
            account: session.account.clone(),
            oper: session.oper,
            invisible: session.invisible,
            idle: now_ms().saturating_sub(session.spoke) / 1000,
        }
    }
}
