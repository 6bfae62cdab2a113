//! A window of a room's history, as IRCv3 `draft/chathistory` asks for one: the latest,
//! before, after or around a message or a time, or between two, at most some number of
//! entries. The store is asked for all it keeps of the room, and the window chosen here;
//! only the entries before a message, what a reader scrolling back asks for, the store may
//! read deeper than it replays ([`HistoryStore::before`]).

use super::RoomName;
use super::post::Entry;
use super::store::HistoryStore;
use crate::limits::CHATHISTORY_MAX;

/// A point in a room's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The message with this id.
    Message(u64),
    /// This time, milliseconds since the Unix epoch.
    Time(u64),
}

/// Which entries, at most `limit` of them (cut to [`CHATHISTORY_MAX`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The newest, after `Some` mark only.
    Latest(Option<Mark>),
    Before(Mark),
    After(Mark),
    Around(Mark),
    /// Strictly between the two, in either order; those nearest the first.
    Between(Mark, Mark),
}

/// `entries` (a room's, oldest first) seen through `window`, at most `limit`, oldest
/// first. A message id not kept selects nothing.
pub fn select(entries: Vec<Entry>, window: Window, limit: usize) -> Vec<Entry> {
    let limit = limit.min(CHATHISTORY_MAX);
    let before = |mark| before(&entries, mark);
    let after = |mark| after(&entries, mark);
    let range = match window {
        Window::Latest(None) => Some(newest(0, entries.len(), limit)),
        Window::Latest(Some(mark)) => after(mark).map(|from| newest(from, entries.len(), limit)),
        Window::Before(mark) => before(mark).map(|to| newest(0, to, limit)),
        Window::After(mark) => after(mark).map(|from| oldest(from, entries.len(), limit)),
        Window::Around(mark) => before(mark).map(|at| {
            let from = at.saturating_sub(limit / 2);
            oldest(from, entries.len(), limit)
        }),
        Window::Between(first, second) => match (after(first), before(second)) {
            (Some(from), Some(to)) if from <= to => Some(oldest(from, to, limit)),
            // The first mark is the later one: the window runs back from it.
            _ => match (after(second), before(first)) {
                (Some(from), Some(to)) if from <= to => Some(newest(from, to, limit)),
                _ => None,
            },
        },
    };
    let Some((from, to)) = range else {
        return Vec::new();
    };
    entries
        .into_iter()
        .skip(from)
        .take(to.saturating_sub(from))
        .collect()
}

/// `room`'s history in `store` seen through `window`, at most `limit`, oldest first.
pub fn from_store(
    store: &dyn HistoryStore,
    room: &RoomName,
    window: Window,
    limit: usize,
) -> Vec<Entry> {
    match window {
        Window::Before(Mark::Message(id)) => store.before(room, id, limit.min(CHATHISTORY_MAX)),
        _ => select(store.recent(room, None), window, limit),
    }
}

/// The last `limit` of positions `from..to`.
fn newest(from: usize, to: usize, limit: usize) -> (usize, usize) {
    (to.saturating_sub(limit).max(from), to)
}

/// The first `limit` of positions `from..to`.
fn oldest(from: usize, to: usize, limit: usize) -> (usize, usize) {
    (from, to.min(from.saturating_add(limit)))
}

/// Where the entries strictly before `mark` end.
fn before(entries: &[Entry], mark: Mark) -> Option<usize> {
    match mark {
        Mark::Message(id) => entries.iter().position(|e| e.id() == id),
        Mark::Time(ts) => Some(entries.partition_point(|e| e.ts() < ts)),
    }
}

/// Where the entries strictly after `mark` begin.
fn after(entries: &[Entry], mark: Mark) -> Option<usize> {
    match mark {
        Mark::Message(id) => entries.iter().position(|e| e.id() == id).map(|at| at + 1),
        Mark::Time(ts) => Some(entries.partition_point(|e| e.ts() <= ts)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{MessageText, Nick, RoomName, Said};

    /// Ten entries: ids 11 to 20, said at 1000, 2000… 10000.
    fn room() -> Vec<Entry> {
        (1..=10u64)
            .map(|n| {
                Entry::Said(Said {
                    id: 10 + n,
                    seq: n,
                    ts: n * 1000,
                    room: RoomName::parse("#ops").unwrap(),
                    from: Nick::parse("ana").unwrap(),
                    text: MessageText::new("hi").unwrap(),
                    action: false,
                    notice: false,
                    account: None,
                    tags: None,
                })
            })
            .collect()
    }

    fn ids(window: Window, limit: usize) -> Vec<u64> {
        select(room(), window, limit)
            .iter()
            .map(Entry::id)
            .collect()
    }

    #[test]
    fn windows_by_message_and_by_time() {
        use Mark::{Message, Time};
        assert_eq!(ids(Window::Latest(None), 3), [18, 19, 20]);
        assert_eq!(ids(Window::Latest(Some(Message(18))), 5), [19, 20]);
        assert_eq!(ids(Window::Before(Message(15)), 2), [13, 14]);
        assert_eq!(ids(Window::Before(Time(3000)), 5), [11, 12]);
        assert_eq!(ids(Window::After(Message(15)), 2), [16, 17]);
        assert_eq!(ids(Window::After(Time(9000)), 5), [20]);
        assert_eq!(ids(Window::Around(Message(15)), 4), [13, 14, 15, 16]);
        assert_eq!(ids(Window::Around(Time(1000)), 3), [11, 12, 13]);
        assert_eq!(
            ids(Window::Between(Message(12), Message(16)), 10),
            [13, 14, 15]
        );
        assert_eq!(ids(Window::Between(Message(16), Message(12)), 2), [14, 15]);
        assert_eq!(ids(Window::Between(Time(0), Time(2500)), 10), [11, 12]);
        // A message not kept selects nothing; the limit is bounded.
        assert!(ids(Window::Before(Message(99)), 5).is_empty());
        assert_eq!(ids(Window::Latest(None), usize::MAX).len(), 10);
    }
}
