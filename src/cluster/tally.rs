//! A node's sessions in three numbers, to tell whether another node's copy of them is whole:
//! how many there are, a digest of each one's id, nick, rooms and standing in them, and
//! one of each one's profile (away message, account, user and real name, operator, `+i`).
//! Combined so that it is kept as sessions come, change and go (nothing walks them), on
//! the node itself and on every node that hears its presence; the node publishes its own
//! every [`crate::limits::CLUSTER_TALLY_EVERY`] ([`super::wire::Wire::Tally`]), and a node
//! whose copy differs asks for a round ([`super::wire::Wire::Ask`]).
//!
//! The digests are part of the wire: every node must compute them alike. A change to
//! [`digest`] is a new [`super::wire::PRESENCE_FORMS`]. The profiles' digest came later, as
//! a field of the tally older nodes ignore (and do not send: then it is not compared), so
//! a change to [`profile`] would be a field of another name.

use crate::hub::{Nick, Profile, RoomName, Standing};

/// A session's two digests ([`digest`], [`profile`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Digests {
    pub session: u64,
    pub profile: u64,
}

impl Digests {
    /// Session `id`'s, with `nick`, in `rooms`, of `profile`.
    pub fn of(id: u64, nick: &Nick, rooms: &[(RoomName, Standing)], profile: &Profile) -> Digests {
        Digests {
            session: digest(id, nick, rooms),
            profile: self::profile(id, profile),
        }
    }
}

/// How many sessions, and the exclusive-or of their digests ([`digest`], [`profile`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NodeTally {
    pub sessions: u64,
    pub digest: u64,
    pub profiles: u64,
}

impl NodeTally {
    /// A session of digests `digests` is counted.
    pub fn add(&mut self, digests: Digests) {
        self.sessions += 1;
        self.flip(digests);
    }

    /// A session of digests `digests`, counted before, is not any more.
    pub fn remove(&mut self, digests: Digests) {
        self.sessions = self.sessions.saturating_sub(1);
        self.flip(digests);
    }

    /// A session counted went from digests `before` to `after`.
    pub fn change(&mut self, before: Digests, after: Digests) {
        self.flip(before);
        self.flip(after);
    }

    fn flip(&mut self, digests: Digests) {
        self.digest ^= digests.session;
        self.profiles ^= digests.profile;
    }

    /// Whether `told`, a node's tally as it told it, says what this one does: its
    /// profiles compared only when told (an older node does not).
    pub fn agrees(&self, told: &Told) -> bool {
        self.sessions == told.sessions
            && self.digest == told.digest
            && told
                .profiles
                .is_none_or(|profiles| profiles == self.profiles)
    }
}

/// A node's tally as it told it ([`super::wire::Wire::Tally`]).
#[derive(Debug, Clone, Copy)]
pub struct Told {
    pub sessions: u64,
    pub digest: u64,
    /// Missing from an older node.
    pub profiles: Option<u64>,
}

impl From<NodeTally> for Told {
    fn from(tally: NodeTally) -> Told {
        Told {
            sessions: tally.sessions,
            digest: tally.digest,
            profiles: Some(tally.profiles),
        }
    }
}

/// FNV-1a, 64 bits.
fn fnv(bytes: &[u8], mut hash: u64) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// SplitMix64's finalizer: every bit of the input moves about half of the output's.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A session's digest: FNV-1a (64 bits) of its id (8 bytes, little-endian) then its nick's
/// UTF-8, plus (wrapping) for each of its rooms, in any order, FNV-1a of the room's name
/// then a byte of its standing there (1 operator, 2 voiced, 3 both, 0 neither), mixed
/// (SplitMix64's finalizer); the sum mixed again.
pub fn digest(id: u64, nick: &Nick, rooms: &[(RoomName, Standing)]) -> u64 {
    let mut sum = mix(fnv(
        nick.as_str().as_bytes(),
        fnv(&id.to_le_bytes(), FNV_OFFSET),
    ));
    for (room, standing) in rooms {
        let mark = u8::from(standing.is_op()) | u8::from(standing.is_voiced()) << 1;
        let hash = fnv(&[mark], fnv(room.as_str().as_bytes(), FNV_OFFSET));
        sum = sum.wrapping_add(mix(hash));
    }
    mix(sum)
}

/// FNV-1a of `text`, if any, after `hash`: a byte 0 when there is none, else 1, its length
/// (4 bytes, little-endian) and its UTF-8.
fn fnv_text(text: Option<&str>, hash: u64) -> u64 {
    match text {
        None => fnv(&[0], hash),
        Some(text) => {
            let len = text.len() as u32;
            fnv(text.as_bytes(), fnv(&len.to_le_bytes(), fnv(&[1], hash)))
        }
    }
}

/// A session's profile digest: FNV-1a (64 bits) of its id (8 bytes, little-endian), then
/// its away message, account, user name and real name in that order (each a byte 0 when
/// it has none, else 1, its length in bytes as 4 bytes little-endian, and its UTF-8), then
/// a byte of flags (1 server operator, 2 invisible); mixed (SplitMix64's finalizer). Not
/// when it connected nor last spoke: those are told apart, or never change.
pub fn profile(id: u64, profile: &Profile) -> u64 {
    let mut hash = fnv(&id.to_le_bytes(), FNV_OFFSET);
    for text in [
        profile.away.as_ref().map(|a| a.as_str()),
        profile.account.as_ref().map(|a| a.as_str()),
        profile.user.as_deref(),
        profile.realname.as_ref().map(|r| r.as_str()),
    ] {
        hash = fnv_text(text, hash);
    }
    let flags = u8::from(profile.oper) | u8::from(profile.invisible) << 1;
    mix(fnv(&[flags], hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::MessageText;

    #[test]
    fn a_digest_is_of_the_nick_rooms_and_standing_not_the_rooms_order() {
        let nick = |n| Nick::parse(n).unwrap();
        let room = |r| RoomName::parse(r).unwrap();
        let rooms = [
            (room("#ops"), Standing::Operator),
            (room("#dev"), Standing::Member),
        ];
        let swapped = [rooms[1].clone(), rooms[0].clone()];
        let d = digest(7, &nick("ana"), &rooms);
        assert_eq!(d, digest(7, &nick("ana"), &swapped));
        // Fixed across runs and machines: part of the wire.
        assert_eq!(digest(7, &nick("ana"), &[]), 0xa766_b58d_150b_ea6f);
        for other in [
            digest(8, &nick("ana"), &rooms),
            digest(7, &nick("anna"), &rooms),
            digest(7, &nick("ana"), &rooms[..1]),
            digest(
                7,
                &nick("ana"),
                &[(room("#ops"), Standing::OperatorVoiced), rooms[1].clone()],
            ),
        ] {
            assert_ne!(d, other);
        }
        let plain = Profile::default();
        let digests =
            |id, name, rooms: &[(RoomName, Standing)]| Digests::of(id, &nick(name), rooms, &plain);
        let mut tally = NodeTally::default();
        tally.add(digests(7, "ana", &rooms));
        tally.add(digests(8, "bob", &[]));
        tally.remove(digests(7, "ana", &rooms));
        let bob = digests(8, "bob", &[]);
        assert_eq!(
            tally,
            NodeTally {
                sessions: 1,
                digest: bob.session,
                profiles: bob.profile,
            }
        );
    }

    #[test]
    fn a_profile_digest_is_of_the_away_message_account_user_real_name_and_flags() {
        let plain = Profile::default();
        let base = profile(7, &plain);
        // Fixed across runs and machines: part of the wire.
        assert_eq!(base, 0x948e_7dbe_f8cf_5d7d);
        let away = Profile {
            away: Some(MessageText::new("lunch").unwrap()),
            ..Profile::default()
        };
        let changed = [
            profile(8, &plain),
            profile(7, &away),
            profile(
                7,
                &Profile {
                    account: Some(Nick::parse("ana").unwrap()),
                    ..Profile::default()
                },
            ),
            profile(
                7,
                &Profile {
                    user: Some("ana".into()),
                    ..Profile::default()
                },
            ),
            profile(
                7,
                &Profile {
                    realname: Some(MessageText::new("Ana").unwrap()),
                    ..Profile::default()
                },
            ),
            profile(
                7,
                &Profile {
                    oper: true,
                    ..Profile::default()
                },
            ),
            profile(
                7,
                &Profile {
                    invisible: true,
                    ..Profile::default()
                },
            ),
        ];
        for (at, other) in changed.iter().enumerate() {
            assert_ne!(base, *other, "change {at}");
        }
        // An away message is not taken for a user name (each field in its place).
        let user = Profile {
            user: Some("lunch".into()),
            ..Profile::default()
        };
        assert_ne!(profile(7, &away), profile(7, &user));
        // When it connected and last spoke are not covered.
        let later = Profile {
            signon: 5,
            spoke: 9,
            ..Profile::default()
        };
        assert_eq!(base, profile(7, &later));

        // A tally from an older node (no profiles) agrees on sessions and digest alone.
        let mut tally = NodeTally::default();
        tally.add(Digests::of(7, &Nick::parse("ana").unwrap(), &[], &away));
        let mut told = Told::from(tally);
        assert!(tally.agrees(&told));
        told.profiles = Some(tally.profiles ^ 1);
        assert!(!tally.agrees(&told));
        told.profiles = None;
        assert!(tally.agrees(&told));
    }
}
