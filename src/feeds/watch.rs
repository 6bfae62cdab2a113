//! The file watcher: `--watch PATH[=#room]` posts a notice to the room each time PATH
//! changes, the net-watcher of the seed notes.
//!
//! The kernel tells us (inotify, through the `notify` crate); nothing polls. A watched file's
//! *directory* is what is watched, so the file can be deleted, re-created or replaced by an
//! editor's atomic save (write `x.tmp`, rename it over `x`) and still be followed by name. The
//! events of one path are gathered for [`WATCH_DEBOUNCE`] and become one notice, which says
//! what happened by comparing the file as it was with the file as it is: created, modified,
//! deleted, replaced (a new file under the same name) or renamed (moved away). A watched
//! directory reports each entry that changes in it (not recursively).
//!
//! A path that does not exist at start-up is an error, so a typo does not wait for ever.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::hub::{Hub, MessageText, Notice, PostKind, RoomName, RoomStatus, Source};
use crate::limits::{WATCH_DEBOUNCE, WATCH_EVENT_QUEUE};

/// The source name watch notices carry.
pub const SOURCE: &str = "watch";

/// One `--watch PATH[=#room]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    /// As the user wrote it; notices name the file this way.
    pub path: PathBuf,
    pub room: RoomName,
}

impl WatchSpec {
    /// Parses `PATH` or `PATH=#room`; `default_room` when no room is given.
    pub fn parse(input: &str, default_room: &RoomName) -> Result<WatchSpec, String> {
        let (path, room) = match input.rsplit_once('=') {
            Some((path, room)) if room.starts_with('#') => {
                let room = RoomName::parse(room)
                    .map_err(|e| format!("{input:?}: {room:?} is not a room name: {e}"))?;
                (path, room)
            }
            _ => (input, default_room.clone()),
        };
        if path.is_empty() {
            return Err(format!("{input:?}: expected PATH or PATH=#room"));
        }
        Ok(WatchSpec {
            path: PathBuf::from(path),
            room,
        })
    }
}

impl FromStr for WatchSpec {
    type Err = String;

    /// `PATH` (into [`super::WATCH_ROOM`]) or `PATH=#room`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WatchSpec::parse(s, &super::watch_room())
    }
}

/// Why watching could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "cannot watch {path}: it does not exist. charla watches paths that exist: create it first (touch {path})"
    )]
    Missing { path: String },
    #[error("cannot watch {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("cannot watch {path}: {source}")]
    Notify { path: String, source: notify::Error },
}

/// What changed, by comparing a path before and after a burst of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Modified,
    Deleted,
    /// A new file under the same name: an editor's atomic save, `mv new old`.
    Replaced,
    /// Moved away from the watched name.
    Renamed,
}

impl Change {
    /// The word JSON carries in `change`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Modified => "modified",
            Change::Deleted => "deleted",
            Change::Replaced => "replaced",
            Change::Renamed => "renamed",
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Created => "was created",
            Change::Modified => "was modified",
            Change::Deleted => "was deleted",
            Change::Replaced => "was replaced by a new file",
            Change::Renamed => "was renamed away",
        })
    }
}

/// What of a file tells one version from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Meta {
    fn of(path: &Path) -> Option<Meta> {
        let m = std::fs::metadata(path).ok()?;
        Some(Meta {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// Kinds of event seen for a path during one debounce window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Observed {
    created: bool,
    renamed_from: bool,
}

impl Observed {
    /// `None` for events that change nothing (opening, reading, closing).
    fn of(kind: &EventKind) -> Option<Observed> {
        let mut seen = Observed::default();
        match kind {
            EventKind::Access(_) => return None,
            // Reported as From and To too; the pair adds nothing.
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => return None,
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                seen.created = true;
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => seen.renamed_from = true,
            _ => {}
        }
        Some(seen)
    }

    fn add(&mut self, other: Observed) {
        self.created |= other.created;
        self.renamed_from |= other.renamed_from;
    }
}

/// A watched path (file or directory itself) whose state before is known.
fn classify(before: Option<Meta>, after: Option<Meta>, seen: Observed) -> Option<Change> {
    match (before, after) {
        (None, None) => None,
        (None, Some(_)) => Some(Change::Created),
        (Some(_), None) if seen.renamed_from => Some(Change::Renamed),
        (Some(_), None) => Some(Change::Deleted),
        (Some(b), Some(a)) if (b.dev, b.ino) != (a.dev, a.ino) => Some(Change::Replaced),
        (Some(b), Some(a)) if b == a => None,
        (Some(_), Some(_)) => Some(Change::Modified),
    }
}

/// An entry of a watched directory, whose state before is not kept: told by the events.
fn classify_entry(exists: bool, seen: Observed) -> Option<Change> {
    match (exists, seen.created) {
        (true, true) => Some(Change::Created),
        (true, false) => Some(Change::Modified),
        // Created and gone again within one window: nothing to tell.
        (false, true) => None,
        (false, false) if seen.renamed_from => Some(Change::Renamed),
        (false, false) => Some(Change::Deleted),
    }
}

struct Target {
    /// As the user wrote it.
    display: String,
    /// Canonical path, as events name it.
    key: PathBuf,
    is_dir: bool,
    room: RoomName,
    last: Option<Meta>,
    /// Whether it exists now, for the status line.
    present: Arc<AtomicBool>,
}

/// Gathering notices: per target and directory entry (`None`: the target itself), when the
/// window closes and what was seen.
type Gathering = HashMap<(usize, Option<OsString>), (Instant, Observed)>;

/// Starts watching every spec; fails before anything is watched if one path is missing.
pub fn start(
    hub: &Hub,
    specs: &[WatchSpec],
    shutdown: CancellationToken,
) -> Result<(), WatchError> {
    let mut targets = Vec::new();
    for spec in specs {
        targets.push(target(spec)?);
    }
    let (tx, rx) = mpsc::channel(WATCH_EVENT_QUEUE);
    let overflowed = Arc::new(AtomicBool::new(false));
    let lost = overflowed.clone();
    // Filtered on notify's thread: a watched file's directory may be busy with other files
    // (and with every open and read), which must not crowd out the events that matter.
    let wanted: Vec<(PathBuf, bool)> = targets.iter().map(|t| (t.key.clone(), t.is_dir)).collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = &event
            && (Observed::of(&e.kind).is_none()
                || !(e.need_rescan() || e.paths.iter().any(|p| concerns(&wanted, p))))
        {
            return;
        }
        if tx.try_send(event).is_err() {
            // Full: look at every target once the queue is drained; each notice describes
            // its file as it then is, so nothing is missed but detail.
            lost.store(true, Ordering::Relaxed);
        }
    })
    .map_err(|source| WatchError::Notify {
        path: specs[0].path.display().to_string(),
        source,
    })?;
    let mut watched: Vec<&Path> = Vec::new();
    for t in &targets {
        // A file is followed through its directory, so it may be replaced or re-created.
        let dir = if t.is_dir {
            t.key.as_path()
        } else {
            t.key.parent().unwrap_or(Path::new("/"))
        };
        if watched.contains(&dir) {
            continue;
        }
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Notify {
                path: t.display.clone(),
                source,
            })?;
        watched.push(dir);
    }

    let mut rooms: Vec<(RoomName, Vec<Watched>)> = Vec::new();
    for t in &targets {
        info!(path = %t.display, room = %t.room, "watching");
        let watched = Watched {
            display: t.display.clone(),
            is_dir: t.is_dir,
            present: t.present.clone(),
        };
        match rooms.iter_mut().find(|(room, _)| *room == t.room) {
            Some((_, list)) => list.push(watched),
            None => rooms.push((t.room.clone(), vec![watched])),
        }
    }
    for (room, watched) in rooms {
        hub.add_status(&room, Arc::new(WatchStatus(watched)));
    }
    tokio::spawn(run(hub.clone(), targets, rx, overflowed, watcher, shutdown));
    Ok(())
}

/// Whether every path `specs` name can be watched (`super::check`).
pub fn check_paths(specs: &[WatchSpec]) -> Result<(), WatchError> {
    specs.iter().try_for_each(|spec| target(spec).map(drop))
}

/// Whether an event on `path` is about one of the watched paths (`(key, is_dir)`).
fn concerns(wanted: &[(PathBuf, bool)], path: &Path) -> bool {
    wanted
        .iter()
        .any(|(key, is_dir)| path == key || (*is_dir && path.parent() == Some(key)))
}

fn target(spec: &WatchSpec) -> Result<Target, WatchError> {
    let display = spec.path.display().to_string();
    let key = std::fs::canonicalize(&spec.path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            WatchError::Missing {
                path: display.clone(),
            }
        } else {
            WatchError::Io {
                path: display.clone(),
                source,
            }
        }
    })?;
    let is_dir = key.is_dir();
    let last = Meta::of(&key);
    Ok(Target {
        display,
        key,
        is_dir,
        room: spec.room.clone(),
        last,
        present: Arc::new(AtomicBool::new(last.is_some())),
    })
}

type Events = mpsc::Receiver<notify::Result<notify::Event>>;

async fn run(
    hub: Hub,
    mut targets: Vec<Target>,
    mut events: Events,
    overflowed: Arc<AtomicBool>,
    watcher: RecommendedWatcher,
    shutdown: CancellationToken,
) {
    // Watching lasts as long as this task.
    let _watcher = watcher;
    let mut pending = Gathering::new();
    loop {
        let next_due = pending.values().map(|(due, _)| *due).min();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.recv() => {
                match event {
                    Some(Ok(event)) => note(&targets, &mut pending, &event),
                    Some(Err(e)) => warn!(error = %e, "file watcher error"),
                    None => return,
                }
                if overflowed.swap(false, Ordering::Relaxed) {
                    let rescan = notify::Event::new(EventKind::Other)
                        .set_flag(notify::event::Flag::Rescan);
                    note(&targets, &mut pending, &rescan);
                }
            }
            () = sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                let now = Instant::now();
                let mut due: Vec<_> = pending
                    .iter()
                    .filter(|(_, (at, _))| *at <= now)
                    .map(|(key, (at, _))| (*at, key.clone()))
                    .collect();
                due.sort();
                for (_, key) in due {
                    let (_, seen) = pending.remove(&key).expect("listed above");
                    report(&hub, &mut targets, key, seen);
                }
            }
        }
    }
}

/// Files an event under the targets it concerns; the first event of a path opens its
/// window.
fn note(targets: &[Target], pending: &mut Gathering, event: &notify::Event) {
    let Some(seen) = Observed::of(&event.kind) else {
        return;
    };
    let due = Instant::now() + WATCH_DEBOUNCE;
    let mut add = |key: (usize, Option<OsString>)| {
        if pending.len() >= WATCH_EVENT_QUEUE && !pending.contains_key(&key) {
            return;
        }
        pending
            .entry(key)
            .or_insert((due, Observed::default()))
            .1
            .add(seen);
    };
    if event.need_rescan() {
        // The kernel's queue overflowed: events were lost; look at everything.
        for i in 0..targets.len() {
            add((i, None));
        }
        return;
    }
    for path in &event.paths {
        for (i, t) in targets.iter().enumerate() {
            if *path == t.key {
                add((i, None));
            } else if t.is_dir && path.parent() == Some(&t.key) {
                add((i, path.file_name().map(OsString::from)));
            }
        }
    }
}

/// The window of one path has closed: say what changed, if anything did.
fn report(hub: &Hub, targets: &mut [Target], key: (usize, Option<OsString>), seen: Observed) {
    let (index, entry) = key;
    let t = &mut targets[index];
    let (file, change, meta) = match entry {
        None => {
            let after = Meta::of(&t.key);
            let change = classify(t.last, after, seen);
            t.last = after;
            t.present.store(after.is_some(), Ordering::Relaxed);
            if after.is_none() && t.is_dir {
                warn!(path = %t.display, "a watched directory is gone; it is no longer watched");
            }
            (t.display.clone(), change, after)
        }
        Some(name) => {
            let path = t.key.join(&name);
            let after = Meta::of(&path);
            let file = Path::new(&t.display).join(&name).display().to_string();
            (file, classify_entry(after.is_some(), seen), after)
        }
    };
    let Some(change) = change else {
        debug!(%file, "events without a change");
        return;
    };
    debug!(%file, change = change.as_str(), "watched path changed");
    let size = meta.map(|m| m.len);
    let text = match size {
        Some(len) if !(t.is_dir && file == t.display) => {
            let unit = if len == 1 { "byte" } else { "bytes" };
            format!("{file} {change} ({len} {unit})")
        }
        _ => format!("{file} {change}"),
    };
    let mut notice = Notice::new(source(), PostKind::Notice, message(&text))
        .with("file", file)
        .with("change", change.as_str());
    if let Some(len) = size {
        notice = notice.with("size", len);
    }
    if t.is_dir {
        notice = notice.with("watched", t.display.clone());
    }
    // Only fails once the server is shutting down.
    let _ = hub.post(&t.room, notice);
}

fn source() -> Source {
    Source::new(SOURCE).expect("a valid source")
}

/// Feed text is built from file names, which may hold anything: sanitised like chat.
fn message(text: &str) -> MessageText {
    MessageText::new(text).unwrap_or_else(|| MessageText::new("(unprintable name)").unwrap())
}

/// One watched path, for the status of its room.
struct Watched {
    display: String,
    is_dir: bool,
    present: Arc<AtomicBool>,
}

/// "now watching target.txt for changes", for everyone who joins the room.
struct WatchStatus(Vec<Watched>);

impl RoomStatus for WatchStatus {
    fn status(&self) -> Vec<Notice> {
        self.0
            .iter()
            .map(|w| {
                let what = if w.is_dir { "the directory " } else { "" };
                let present = w.present.load(Ordering::Relaxed);
                let missing = if present { "" } else { " (missing now)" };
                let text = format!("now watching {what}{} for changes{missing}", w.display);
                Notice::new(source(), PostKind::Notice, message(&text))
                    .with("file", w.display.clone())
                    .with("exists", present)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(ino: u64, len: u64, mtime: i64) -> Option<Meta> {
        Some(Meta {
            dev: 1,
            ino,
            len,
            mtime: (mtime, 0),
            ctime: (mtime, 0),
        })
    }

    #[test]
    fn specs_take_an_optional_room() {
        let lobby = RoomName::lobby();
        let spec = WatchSpec::parse("target.txt", &lobby).unwrap();
        assert_eq!(spec.path, PathBuf::from("target.txt"));
        assert_eq!(spec.room, lobby);
        let spec = WatchSpec::parse("/var/log/a=b.log=#Ops", &lobby).unwrap();
        assert_eq!(spec.path, PathBuf::from("/var/log/a=b.log"));
        assert_eq!(spec.room.as_str(), "#Ops");
        // An `=` not followed by a room is part of the path.
        let spec = WatchSpec::parse("x=y", &lobby).unwrap();
        assert_eq!(spec.path, PathBuf::from("x=y"));
        assert!(WatchSpec::parse("x=#bad room", &lobby).is_err());
        assert!(WatchSpec::parse("=#ops", &lobby).is_err());
        assert_eq!(
            "t.txt".parse::<WatchSpec>().unwrap().room.as_str(),
            super::super::WATCH_ROOM
        );
    }

    #[test]
    fn changes_are_told_by_comparing_before_and_after() {
        let seen = Observed::default();
        let renamed = Observed {
            renamed_from: true,
            ..Observed::default()
        };
        assert_eq!(classify(None, None, seen), None);
        assert_eq!(classify(None, meta(1, 0, 1), seen), Some(Change::Created));
        assert_eq!(classify(meta(1, 0, 1), None, seen), Some(Change::Deleted));
        assert_eq!(
            classify(meta(1, 0, 1), None, renamed),
            Some(Change::Renamed)
        );
        assert_eq!(
            classify(meta(1, 0, 1), meta(2, 0, 1), seen),
            Some(Change::Replaced)
        );
        assert_eq!(
            classify(meta(1, 0, 1), meta(1, 5, 2), seen),
            Some(Change::Modified)
        );
        // touch: same size, new time.
        assert_eq!(
            classify(meta(1, 5, 2), meta(1, 5, 3), seen),
            Some(Change::Modified)
        );
        assert_eq!(classify(meta(1, 5, 2), meta(1, 5, 2), seen), None);
    }

    #[test]
    fn directory_entries_are_told_by_their_events() {
        let created = Observed {
            created: true,
            ..Observed::default()
        };
        let renamed = Observed {
            renamed_from: true,
            ..Observed::default()
        };
        assert_eq!(classify_entry(true, created), Some(Change::Created));
        assert_eq!(
            classify_entry(true, Observed::default()),
            Some(Change::Modified)
        );
        assert_eq!(classify_entry(false, created), None);
        assert_eq!(classify_entry(false, renamed), Some(Change::Renamed));
        assert_eq!(
            classify_entry(false, Observed::default()),
            Some(Change::Deleted)
        );
    }

    #[test]
    fn reading_a_file_is_no_change() {
        use notify::event::{AccessKind, AccessMode};
        assert_eq!(
            Observed::of(&EventKind::Access(AccessKind::Close(AccessMode::Write))),
            None
        );
        assert!(Observed::of(&EventKind::Modify(ModifyKind::Any)).is_some());
    }
}
