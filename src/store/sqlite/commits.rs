//! The commit file: what the writer commits, appended to a file beside the database
//! (`charla.db-commits`) rather than inserted into it, until the writer moves it into
//! `chunks` (schema step 9; the `batches` table did this before). A commit is one
//! positioned write of one record; an SQLite transaction for the same bytes wrote a leaf
//! page, the table's and the file's header pages and the freelist to the log, and the
//! checkpoints copied them again (docs/benchmarks.md, store8).
//!
//! A record is a header of 20 bytes — the payload's length (`u32`), the commit's number
//! (`u64`) and an XXH3-64 hash of the number and the payload (`u64`), all little-endian —
//! then the payload (the commit's entries, [`super::chunk`]'s encoding). Numbers grow by
//! one a commit, written or not, and are never reused, also across restarts. Each move records the
//! number of the last commit it moved in the database (`meta`, `moved_commit`), in its
//! transaction; then the writer writes the next record at the start of the file again
//! ([`CommitFile::rewind`]), over what it moved. Read back at start-up ([`CommitFile::open`]),
//! a record counts when its hash matches and its number is above the moved one and above
//! every record before it; the first record that does not hold together (a torn or
//! unwritten tail) ends the file, and one with a smaller number (the tail of a longer file
//! written before a rewind, moved already) is passed over.
//!
//! The file is never synced: a record written survives the process being killed (it is in
//! the operating system's cache), not necessarily a power loss until the writer moves it
//! into the database (docs/protocol.md, "Acknowledgements and durability").

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::Xxh3;

/// Bytes before each record's payload: its length, number and hash.
const HEADER: usize = 20;

/// A file longer than this when rewound is cut to nothing: one that once took a long
/// spell of commits (the database could not be written to) does not stay that long, and
/// is not read whole at every start-up.
const KEEP_BYTES: u64 = 16 * 1024 * 1024;

/// The file beside the database at `db`.
pub fn path_for(db: &Path) -> PathBuf {
    let mut path = db.as_os_str().to_owned();
    path.push("-commits");
    PathBuf::from(path)
}

/// The commit file, open for the writer.
pub struct CommitFile {
    file: File,
    /// Where the next record goes.
    end: u64,
    /// The number of the next record.
    next: u64,
    /// The file's length as far as this knows (the largest end written since opening).
    len: u64,
}

/// A record read back: its number and payload.
pub type Record = (u64, Vec<u8>);

impl CommitFile {
    /// Opens (creating if missing) the commit file of the database at `db`, whose last
    /// move took commits up to `moved`; returns it and the records not moved, in order.
    /// Their numbers and all later ones are above `moved` and every number in the file.
    pub fn open(db: &Path, moved: u64) -> io::Result<(CommitFile, Vec<Record>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path_for(db))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (records, highest, end) = parse(&bytes, moved);
        let commits = CommitFile {
            file,
            end,
            next: highest.max(moved) + 1,
            len: bytes.len() as u64,
        };
        Ok((commits, records))
    }

    /// Empties `record` and gives it the room of a record's header: the caller appends the
    /// payload after it, then hands it to [`CommitFile::append_record`]. The buffer is the
    /// caller's, kept from one commit to the next.
    pub fn start_record(record: &mut Vec<u8>) {
        record.clear();
        record.resize(HEADER, 0);
    }

    /// Appends `record`, a header's room and the payload after it
    /// ([`CommitFile::start_record`]), filling in the header; returns its number. On
    /// failure nothing counts as written: the next record goes where this one would have,
    /// over what it left.
    pub fn append_record(&mut self, record: &mut [u8]) -> io::Result<u64> {
        let number = self.next;
        // A number is never used twice, written or not: what a failed write left cannot
        // pass for a later record.
        self.next += 1;
        let (header, payload) = record.split_at_mut(HEADER);
        let len = u32::try_from(payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a commit over 4 GiB"))?;
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..12].copy_from_slice(&number.to_le_bytes());
        header[12..].copy_from_slice(&hash(number, payload).to_le_bytes());
        self.file.write_all_at(record, self.end)?;
        self.end += record.len() as u64;
        self.len = self.len.max(self.end);
        Ok(number)
    }

    /// Appends a record of `payload`; returns its number.
    #[cfg(test)]
    pub fn append(&mut self, payload: &[u8]) -> io::Result<u64> {
        let mut record = Vec::new();
        CommitFile::start_record(&mut record);
        record.extend_from_slice(payload);
        self.append_record(&mut record)
    }

    /// Everything written is in the database now (its move, recording the last number,
    /// committed): the next record goes at the start, and a long file is cut.
    pub fn rewind(&mut self) -> io::Result<()> {
        self.end = 0;
        if self.len > KEEP_BYTES {
            self.file.set_len(0)?;
            self.len = 0;
        }
        Ok(())
    }

    /// Cuts the file to nothing: everything in it is in the database.
    pub fn clear(&mut self) -> io::Result<()> {
        self.end = 0;
        self.file.set_len(0)?;
        self.len = 0;
        Ok(())
    }

    /// The number the next record will have.
    #[cfg(test)]
    pub fn next_number(&self) -> u64 {
        self.next
    }
}

fn hash(number: u64, payload: &[u8]) -> u64 {
    let mut hasher = Xxh3::new();
    hasher.update(&number.to_le_bytes());
    hasher.update(payload);
    hasher.digest()
}

/// The records of `bytes` numbered above `moved`, each above the one before, up to the
/// first that does not hold together; the largest number of any record read; and where
/// the records that hold together end.
fn parse(bytes: &[u8], moved: u64) -> (Vec<Record>, u64, u64) {
    let mut records = Vec::new();
    let (mut at, mut last, mut highest) = (0, moved, 0);
    while let Some(header) = bytes.get(at..at + HEADER) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let number = u64::from_le_bytes(header[4..12].try_into().expect("8 bytes"));
        let sum = u64::from_le_bytes(header[12..20].try_into().expect("8 bytes"));
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if hash(number, payload) != sum {
            break;
        }
        highest = highest.max(number);
        if number > last {
            last = number;
            records.push((number, payload.to_vec()));
        }
        at += HEADER + len;
    }
    (records, highest, at as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen(db: &Path, moved: u64) -> (CommitFile, Vec<Record>) {
        CommitFile::open(db, moved).unwrap()
    }

    fn payloads(records: &[Record]) -> Vec<(u64, &[u8])> {
        records.iter().map(|(n, p)| (*n, p.as_slice())).collect()
    }

    #[test]
    fn records_come_back_in_order_past_the_moved_number_and_numbers_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("charla.db");
        let (mut file, records) = reopen(&db, 0);
        assert!(records.is_empty());
        assert_eq!(file.append(b"one").unwrap(), 1);
        assert_eq!(file.append(b"").unwrap(), 2);
        assert_eq!(file.append(b"three").unwrap(), 3);
        drop(file);
        let (file, records) = reopen(&db, 0);
        assert_eq!(
            payloads(&records),
            [(1, &b"one"[..]), (2, b""), (3, b"three")]
        );
        assert_eq!(file.next_number(), 4);
        let (file, records) = reopen(&db, 2);
        assert_eq!(payloads(&records), [(3, &b"three"[..])]);
        assert_eq!(file.next_number(), 4);
        // A database that moved more than the file holds (the file was cut since).
        let (file, records) = reopen(&db, 9);
        assert!(records.is_empty());
        assert_eq!(file.next_number(), 10);
    }

    #[test]
    fn a_rewound_file_reads_its_new_records_and_passes_over_the_moved_tail() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("charla.db");
        let (mut file, _) = reopen(&db, 0);
        for payload in [&b"a long first record"[..], b"second", b"third", b"fourth"] {
            file.append(payload).unwrap();
        }
        // Moved up to 4: the next records go over the first ones.
        file.rewind().unwrap();
        file.append(b"five").unwrap();
        file.append(b"six").unwrap();
        drop(file);
        let (_, records) = reopen(&db, 4);
        assert_eq!(payloads(&records), [(5, &b"five"[..]), (6, b"six")]);
        // Had the move not been recorded (a power loss took it back), what was moved
        // before is read too where it was not written over, never after a newer one.
        let (_, records) = reopen(&db, 0);
        assert_eq!(payloads(&records), [(5, &b"five"[..]), (6, b"six")]);
    }

    #[test]
    fn a_torn_or_damaged_record_ends_the_file_and_the_next_write_goes_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("charla.db");
        let (mut file, _) = reopen(&db, 0);
        file.append(b"kept").unwrap();
        file.append(b"torn record").unwrap();
        drop(file);
        let path = path_for(&db);
        let full = std::fs::read(&path).unwrap();
        for cut in HEADER + 4..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (_, records) = reopen(&db, 0);
            assert_eq!(payloads(&records), [(1, &b"kept"[..])], "cut at {cut}");
        }
        for at in HEADER + 4..full.len() {
            let mut bad = full.clone();
            bad[at] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            let (_, records) = reopen(&db, 0);
            assert_eq!(payloads(&records), [(1, &b"kept"[..])], "flipped {at}");
        }
        // Zeros where the system had not written the data yet.
        let mut zeros = full[..HEADER + 4].to_vec();
        zeros.resize(full.len() + 100, 0);
        std::fs::write(&path, &zeros).unwrap();
        let (mut file, records) = reopen(&db, 0);
        assert_eq!(payloads(&records), [(1, &b"kept"[..])]);
        // The next record goes over what did not hold together.
        let number = file.append(b"after").unwrap();
        drop(file);
        let (_, records) = reopen(&db, 0);
        assert_eq!(
            payloads(&records),
            [(1, &b"kept"[..]), (number, &b"after"[..])]
        );
    }

    #[test]
    fn clearing_leaves_an_empty_file_and_a_long_one_is_cut_when_rewound() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("charla.db");
        let (mut file, _) = reopen(&db, 0);
        file.append(b"x").unwrap();
        file.clear().unwrap();
        assert_eq!(std::fs::metadata(path_for(&db)).unwrap().len(), 0);
        let big = vec![7u8; (KEEP_BYTES / 2) as usize];
        for _ in 0..2 {
            file.append(&big).unwrap();
        }
        file.rewind().unwrap();
        assert_eq!(std::fs::metadata(path_for(&db)).unwrap().len(), 0);
        assert_eq!(file.append(b"y").unwrap(), 4);
    }
}
