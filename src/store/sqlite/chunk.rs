//! How a run of history entries is kept in one BLOB: a chunk of one room's entries (table
//! `chunks`), or the entries of one commit, of any rooms (a record of the commit file,
//! `commits.rs`).
//!
//! The encoding is postcard's (a documented, stable wire format of varints and
//! length-prefixed strings), after one byte naming the version of the layout below. Ids,
//! times and numbers are kept as the difference from the entry before (zigzag varints, so
//! a cluster's ids, which are not in order, still fit), and a room's spelling only when it
//! differs from the entry before: a room's consecutive entries differ by little, so an
//! entry costs about its text and author and a few bytes more.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::hub::{
    ClientTags, Entry, Field, MessageText, Nick, Notice, PostKind, Posted, RoomName, Said, Source,
};

/// The first byte of every blob: the version of the layout below. A blob with another is
/// not read (a newer charla's, or damage): logged and skipped.
const FORMAT: u8 = 1;

pub const KIND_SAID: u8 = 0;
pub const KIND_ACTION: u8 = 1;
pub const KIND_NOTICE: u8 = 2;
pub const KIND_ALERT: u8 = 3;
pub const KIND_SAID_NOTICE: u8 = 4;

/// One entry as kept, its strings borrowed from the entry or the blob where they can be.
/// `kind` is one of the `KIND_` numbers (those of the first schema step); `fields` a feed's
/// details.
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    pub id: u64,
    pub ts: u64,
    pub seq: u64,
    /// The room's spelling as it was said under.
    pub room: Cow<'a, str>,
    pub kind: u8,
    /// The nick, or the feed's source.
    pub author: Cow<'a, str>,
    pub text: Cow<'a, str>,
    pub fields: Cow<'a, [(Cow<'static, str>, Field)]>,
    /// The sender's account (IRCv3 account-tag), and the client-only tags as relayed.
    pub account: Option<Cow<'a, str>>,
    pub tags: Option<Cow<'a, str>>,
}

/// A blob that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    #[error("unknown layout {0} (a newer charla's, or damage)")]
    Format(u8),
    #[error("empty")]
    Empty,
    #[error("{0}")]
    Postcard(#[from] postcard::Error),
    #[error("a number out of range")]
    Range,
}

/// What a `chunks` row says beside its blob: the range of its numbers (in the room's
/// order, first and last), ids and times, and how many entries it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranges {
    pub count: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub min_id: u64,
    pub max_id: u64,
    pub min_ts: u64,
    pub max_ts: u64,
}

impl Ranges {
    /// The ranges of `rows`, all 0 when there are none.
    fn of(rows: &[Row<'_>]) -> Ranges {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ranges {
                count: 0,
                first_seq: 0,
                last_seq: 0,
                min_id: 0,
                max_id: 0,
                min_ts: 0,
                max_ts: 0,
            };
        };
        let mut ranges = Ranges {
            count: rows.len() as u64,
            first_seq: first.seq,
            last_seq: last.seq,
            min_id: u64::MAX,
            max_id: 0,
            min_ts: u64::MAX,
            max_ts: 0,
        };
        for row in rows {
            ranges.min_id = ranges.min_id.min(row.id);
            ranges.max_id = ranges.max_id.max(row.id);
            ranges.min_ts = ranges.min_ts.min(row.ts);
            ranges.max_ts = ranges.max_ts.max(row.ts);
        }
        ranges
    }
}

/// The layout postcard writes: [`FORMAT`] (a one-byte varint), then the entries.
#[derive(Deserialize)]
struct Wire<'a> {
    /// Checked before the rest is read ([`decode`]).
    _format: u8,
    #[serde(borrow)]
    entries: Vec<WireEntry<'a>>,
}

/// [`Wire`] as written: the entries made from the rows as they are written, so no list of
/// them is built first.
#[derive(Serialize)]
struct WireOut<'r, 'a> {
    format: u8,
    entries: WireRows<'r, 'a>,
}

struct WireRows<'r, 'a>(&'r [Row<'a>]);

#[derive(Serialize, Deserialize)]
struct WireEntry<'a> {
    /// Differences from the entry before (from 0 for the first).
    id: i64,
    ts: i64,
    seq: i64,
    /// `None`: spelled as the entry before.
    #[serde(borrow)]
    room: Option<Cow<'a, str>>,
    kind: u8,
    #[serde(borrow)]
    author: Cow<'a, str>,
    #[serde(borrow)]
    text: Cow<'a, str>,
    #[serde(borrow)]
    fields: Vec<(Cow<'a, str>, WireField<'a>)>,
    #[serde(borrow)]
    account: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tags: Option<Cow<'a, str>>,
}

#[derive(Serialize, Deserialize)]
enum WireField<'a> {
    #[serde(borrow)]
    Text(Cow<'a, str>),
    Number(u64),
    Flag(bool),
}

impl Serialize for WireRows<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut list = serializer.serialize_seq(Some(self.0.len()))?;
        let (mut id, mut ts, mut seq) = (0u64, 0u64, 0u64);
        let mut room: Option<&str> = None;
        for row in self.0 {
            list.serialize_element(&WireEntry {
                id: row.id.wrapping_sub(id) as i64,
                ts: row.ts.wrapping_sub(ts) as i64,
                seq: row.seq.wrapping_sub(seq) as i64,
                room: (room != Some(&*row.room)).then(|| Cow::Borrowed(&*row.room)),
                kind: row.kind,
                author: Cow::Borrowed(&row.author),
                text: Cow::Borrowed(&row.text),
                fields: row
                    .fields
                    .iter()
                    .map(|(name, field)| {
                        let value = match field {
                            Field::Text(text) => WireField::Text(Cow::Borrowed(text)),
                            Field::Number(n) => WireField::Number(*n),
                            Field::Flag(b) => WireField::Flag(*b),
                        };
                        (Cow::Borrowed(&**name), value)
                    })
                    .collect(),
                account: row.account.as_deref().map(Cow::Borrowed),
                tags: row.tags.as_deref().map(Cow::Borrowed),
            })?;
            (id, ts, seq) = (row.id, row.ts, row.seq);
            room = Some(&row.room);
        }
        list.end()
    }
}

/// `rows`, in their order, as one blob appended to `out` (whose room is reused: the
/// writer encodes into the same buffers again and again); returns their ranges. On an
/// error `out` holds what it held before.
pub fn encode_into(rows: &[Row<'_>], out: &mut Vec<u8>) -> Result<Ranges, postcard::Error> {
    let wire = WireOut {
        format: FORMAT,
        entries: WireRows(rows),
    };
    let before = out.len();
    if let Err(e) = postcard::to_extend(&wire, Append(out)) {
        out.truncate(before);
        return Err(e);
    }
    Ok(Ranges::of(rows))
}

/// A vector postcard appends to in place (it takes what it writes to by value).
struct Append<'v>(&'v mut Vec<u8>);

impl Extend<u8> for Append<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, bytes: I) {
        self.0.extend(bytes);
    }
}

/// The rows of a blob [`encode_into`] made, in their order, borrowing its strings.
pub fn decode(blob: &[u8]) -> Result<Vec<Row<'_>>, ChunkError> {
    let &format = blob.first().ok_or(ChunkError::Empty)?;
    if format != FORMAT {
        return Err(ChunkError::Format(format));
    }
    let wire: Wire<'_> = postcard::from_bytes(blob)?;
    let (mut id, mut ts, mut seq) = (0u64, 0u64, 0u64);
    let mut room: Option<Cow<'_, str>> = None;
    let mut rows = Vec::with_capacity(wire.entries.len());
    for entry in wire.entries {
        id = id.wrapping_add(entry.id as u64);
        ts = ts.wrapping_add(entry.ts as u64);
        seq = seq.wrapping_add(entry.seq as u64);
        if let Some(spelling) = entry.room {
            room = Some(spelling);
        }
        let fields = entry
            .fields
            .into_iter()
            .map(|(name, value)| {
                let field = match value {
                    WireField::Text(text) => Field::Text(text.into_owned()),
                    WireField::Number(n) => Field::Number(n),
                    WireField::Flag(b) => Field::Flag(b),
                };
                (Cow::Owned(name.into_owned()), field)
            })
            .collect::<Vec<_>>();
        rows.push(Row {
            id,
            ts,
            seq,
            room: room.clone().ok_or(ChunkError::Range)?,
            kind: entry.kind,
            author: entry.author,
            text: entry.text,
            fields: Cow::Owned(fields),
            account: entry.account,
            tags: entry.tags,
        });
    }
    Ok(rows)
}

impl<'a> Row<'a> {
    /// How `entry` is kept.
    pub fn of(entry: &'a Entry) -> Row<'a> {
        let (kind, author, fields, account, tags): (_, &str, &[_], _, _) = match entry {
            Entry::Said(said) => (
                match (said.action, said.notice) {
                    (true, _) => KIND_ACTION,
                    (false, true) => KIND_SAID_NOTICE,
                    (false, false) => KIND_SAID,
                },
                said.from.as_str(),
                &[],
                said.account.as_ref().map(|a| Cow::Borrowed(a.as_str())),
                said.tags.as_ref().map(|t| Cow::Borrowed(t.as_str())),
            ),
            Entry::Posted(posted) => (
                match posted.notice.kind {
                    PostKind::Notice => KIND_NOTICE,
                    PostKind::Alert => KIND_ALERT,
                },
                posted.notice.source.as_str(),
                &posted.notice.fields,
                None,
                None,
            ),
        };
        Row {
            id: entry.id(),
            ts: entry.ts(),
            seq: entry.seq(),
            room: Cow::Borrowed(entry.room().as_str()),
            kind,
            author: Cow::Borrowed(author),
            text: Cow::Borrowed(entry.text().as_str()),
            fields: Cow::Borrowed(fields),
            account,
            tags,
        }
    }

    /// The entry this row keeps; `None` when a name or the text no longer passes the
    /// checks it passed when it was said (a newer charla's stricter rules), or its kind is
    /// unknown.
    pub fn entry(&self, names: &mut Names) -> Option<Entry> {
        let room = names.room(&self.room)?;
        let text = MessageText::new(&self.text)?;
        Some(match self.kind {
            KIND_SAID | KIND_ACTION | KIND_SAID_NOTICE => Entry::Said(Said {
                id: self.id,
                seq: self.seq,
                ts: self.ts,
                room,
                from: names.nick(&self.author)?,
                text,
                action: self.kind == KIND_ACTION,
                notice: self.kind == KIND_SAID_NOTICE,
                // Read back through the checks they passed when said; one that no longer
                // passes is left off, the message kept.
                account: self.account.as_deref().and_then(|a| names.nick(a)),
                tags: self
                    .tags
                    .as_deref()
                    .and_then(|tags| ClientTags::from_section(tags).ok().flatten()),
            }),
            KIND_NOTICE | KIND_ALERT => {
                let kind = if self.kind == KIND_ALERT {
                    PostKind::Alert
                } else {
                    PostKind::Notice
                };
                let mut notice = Notice::new(Source::new(&self.author)?, kind, text);
                notice.fields = self.fields.to_vec();
                Entry::Posted(Posted {
                    id: self.id,
                    seq: self.seq,
                    ts: self.ts,
                    room,
                    notice: Arc::new(notice),
                })
            }
            _ => return None,
        })
    }
}

/// Names already parsed while reading a room's chunks: parsing one computes its
/// look-alike key, and a room's history names few rooms and nicks many times.
#[derive(Default)]
pub struct Names {
    rooms: HashMap<String, RoomName>,
    nicks: HashMap<String, Nick>,
}

impl Names {
    fn room(&mut self, name: &str) -> Option<RoomName> {
        if let Some(room) = self.rooms.get(name) {
            return Some(room.clone());
        }
        let room = RoomName::parse(name).ok()?;
        self.rooms.insert(name.to_owned(), room.clone());
        Some(room)
    }

    fn nick(&mut self, name: &str) -> Option<Nick> {
        if let Some(nick) = self.nicks.get(name) {
            return Some(nick.clone());
        }
        let nick = Nick::parse(name).ok()?;
        self.nicks.insert(name.to_owned(), nick.clone());
        Some(nick)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, ts: u64, seq: u64, room: &'static str, kind: u8) -> Row<'static> {
        Row {
            id,
            ts,
            seq,
            room: Cow::Borrowed(room),
            kind,
            author: Cow::Borrowed("ana"),
            text: Cow::Owned(format!("line {seq} ñ 👋")),
            fields: Cow::Owned(Vec::new()),
            account: None,
            tags: None,
        }
    }

    #[test]
    fn every_field_comes_back_as_it_went_in_and_the_row_says_its_ranges() {
        let mut alert = row(7, 1_700_000_000_500, 3, "#ops", KIND_ALERT);
        alert.fields = Cow::Owned(vec![
            ("state".into(), Field::from("down")),
            ("lasted_ms".into(), Field::from(1234u64)),
            ("exists".into(), Field::from(false)),
        ]);
        let mut tagged = row(9, 1_700_000_000_400, 4, "#Ops", KIND_SAID_NOTICE);
        tagged.account = Some(Cow::Borrowed("Ana"));
        tagged.tags = Some(Cow::Borrowed("+draft/reply=7;+example.com/x=ñ"));
        // A cluster's ids and clocks need not grow along the room's numbers.
        let cluster = *crate::hub::NodeId::new(3).unwrap().message_ids().start();
        let rows = vec![
            row(5, 1_700_000_000_000, 1, "#ops", KIND_SAID),
            row(cluster + 2, 1_700_000_000_900, 2, "#ops", KIND_ACTION),
            alert,
            tagged,
            row(6, 1_700_000_000_100, 5, "#ops", KIND_NOTICE),
        ];
        let mut data = b"kept".to_vec();
        let encoded = encode_into(&rows, &mut data).unwrap();
        assert_eq!(&data[..4], b"kept", "appended after what the buffer held");
        let data = &data[4..];
        assert_eq!(decode(data).unwrap(), rows);
        assert_eq!(
            (encoded.count, encoded.first_seq, encoded.last_seq),
            (5, 1, 5)
        );
        assert_eq!((encoded.min_id, encoded.max_id), (5, cluster + 2));
        assert_eq!(
            (encoded.min_ts, encoded.max_ts),
            (1_700_000_000_000, 1_700_000_000_900)
        );
        // Compact: an entry costs little more than its strings.
        let strings: usize = rows.iter().map(|r| r.text.len() + r.author.len()).sum();
        assert!(data.len() < strings + 5 * 16 + 120, "{}", data.len());
        let mut empty = Vec::new();
        assert_eq!(encode_into(&[], &mut empty).unwrap().count, 0);
        assert_eq!(decode(&empty).unwrap(), []);
    }

    #[test]
    fn rows_are_written_as_the_list_of_entries_that_is_read_back() {
        // Files written before rows were encoded one by one hold a list: the same bytes.
        let mut second = row(6, 1_700_000_000_100, 2, "#Ops", KIND_ALERT);
        second.fields = Cow::Owned(vec![("state".into(), Field::from("up"))]);
        let rows = [row(5, 1_700_000_000_000, 1, "#ops", KIND_SAID), second];
        let list = vec![
            WireEntry {
                id: 5,
                ts: 1_700_000_000_000,
                seq: 1,
                room: Some("#ops".into()),
                kind: KIND_SAID,
                author: "ana".into(),
                text: "line 1 ñ 👋".into(),
                fields: Vec::new(),
                account: None,
                tags: None,
            },
            WireEntry {
                id: 1,
                ts: 100,
                seq: 1,
                room: Some("#Ops".into()),
                kind: KIND_ALERT,
                author: "ana".into(),
                text: "line 2 ñ 👋".into(),
                fields: vec![("state".into(), WireField::Text("up".into()))],
                account: None,
                tags: None,
            },
        ];
        let mut data = Vec::new();
        encode_into(&rows, &mut data).unwrap();
        assert_eq!(data, postcard::to_allocvec(&(FORMAT, list)).unwrap());
    }

    #[test]
    fn an_entry_comes_back_from_its_row_and_one_that_no_longer_passes_does_not() {
        let mut names = Names::default();
        let mut said = row(1, 2, 3, "#Ops", KIND_ACTION);
        said.account = Some(Cow::Borrowed("Ana"));
        let Some(Entry::Said(back)) = said.entry(&mut names) else {
            panic!()
        };
        assert_eq!((back.id, back.ts, back.seq), (1, 2, 3));
        assert!(back.action && !back.notice);
        assert_eq!(back.room.as_str(), "#Ops");
        assert_eq!(
            back.account.map(|a| a.as_str().to_string()),
            Some("Ana".into())
        );
        assert_eq!(Row::of(&said.entry(&mut names).unwrap()), said);
        for unreadable in [
            row(1, 2, 3, "no room", KIND_SAID),
            row(1, 2, 3, "#ops", 9),
            Row {
                author: Cow::Borrowed("not a nick!"),
                ..row(1, 2, 3, "#ops", KIND_SAID)
            },
        ] {
            assert!(unreadable.entry(&mut names).is_none(), "{unreadable:?}");
        }
    }

    #[test]
    fn a_damaged_or_foreign_blob_is_an_error_never_a_panic() {
        let rows = vec![
            row(5, 1, 1, "#ops", KIND_SAID),
            row(6, 2, 2, "#ops", KIND_SAID),
        ];
        let mut good = Vec::new();
        encode_into(&rows, &mut good).unwrap();
        assert!(matches!(decode(&[]), Err(ChunkError::Empty)));
        let mut newer = good.clone();
        newer[0] = FORMAT + 1;
        assert!(matches!(decode(&newer), Err(ChunkError::Format(_))));
        for cut in 1..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        // Every byte flipped in turn: an error or other rows, never a panic.
        for at in 1..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0xff;
            let _ = decode(&bad);
        }
    }
}
