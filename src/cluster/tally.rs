//! A node's sessions in two numbers, to tell whether another node's copy of them is whole:
//! how many there are, and a digest of each one's id, nick, rooms and standing in them.
//! Combined so that it is kept as sessions come, change and go (nothing walks them), on
//! the node itself and on every node that hears its presence; the node publishes its own
//! every [`crate::limits::CLUSTER_TALLY_EVERY`] ([`super::wire::Wire::Tally`]), and a node
//! whose copy differs asks for a round ([`super::wire::Wire::Ask`]).
//!
//! The digest is part of the wire: every node must compute it alike. A change to it is a
//! new [`super::wire::PRESENCE_FORMS`].

use crate::hub::{Nick, RoomName, Standing};

/// How many sessions, and the exclusive-or of their digests ([`digest`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NodeTally {
    pub sessions: u64,
    pub digest: u64,
}

impl NodeTally {
    /// A session of digest `digest` is counted.
    pub fn add(&mut self, digest: u64) {
        self.sessions += 1;
        self.digest ^= digest;
    }

    /// A session of digest `digest`, counted before, is not any more.
    pub fn remove(&mut self, digest: u64) {
        self.sessions = self.sessions.saturating_sub(1);
        self.digest ^= digest;
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut tally = NodeTally::default();
        tally.add(d);
        tally.add(digest(8, &nick("bob"), &[]));
        tally.remove(d);
        assert_eq!(
            tally,
            NodeTally {
                sessions: 1,
                digest: digest(8, &nick("bob"), &[])
            }
        );
    }
}
