//! The write-ahead log of `--exactly-once`: every byte read from standard input, appended
//! before any record in it is sent, so a record kpipe has read survives a SIGKILL.
//!
//! A position is an offset in the stream of all input ever logged in one directory; it goes on
//! across runs. The log is a row of segment files, each named by the position of its first
//! byte. A commit records a position in Kafka; segments wholly before it are deleted, and the
//! next run resends what lies after it. Replaying the same bytes through the same framer and
//! router makes the same records, so the log need not know what a record is, with one
//! exception: where a run killed mid-record left the piece of one (`mend`, `is_cut`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A segment is closed and a new one started once it holds this much.
const SEGMENT_BYTES: u64 = 64 << 20;
const SUFFIX: &str = ".log";
/// How far back from the log's end its last record is looked for (`last_record`).
const LAST_RECORD_BYTES: u64 = 1 << 20;
/// The file of cut pieces' end positions, one decimal number a line.
const CUTS: &str = "cuts";

/// The log, open for appending at its end.
pub struct Journal {
    dir: PathBuf,
    /// Start positions of the segments, ascending; the last one is open for appending.
    segments: Vec<u64>,
    file: File,
    end: u64,
    /// Where the pieces of records that killed runs left in the log end (see `mend`), kept in
    /// `CUTS` until a commit passes them.
    cuts: Vec<u64>,
    /// Held while the log is open: two runs appending to one log would mix their inputs.
    _lock: File,
}

impl Journal {
    /// Opens the log in `dir` (made private if new), or starts one at position 0.
    pub fn open(dir: &Path) -> Result<Journal> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating the log directory {}", dir.display()))?;
        let lock = crate::spool::open_lock(dir)?;
        lock.try_lock().map_err(|_| {
            anyhow::anyhow!(
                "another kpipe uses the log in {}; give each run its own --spool",
                dir.display()
            )
        })?;
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let name = entry?.file_name();
            if let Some(start) = segment_start(&name.to_string_lossy()) {
                segments.push(start);
            }
        }
        segments.sort_unstable();
        let last = *segments.last().unwrap_or(&0);
        if segments.is_empty() {
            segments.push(0);
        }
        let file = open_segment(dir, last)?;
        let len = file.metadata()?.len();
        Ok(Journal {
            dir: dir.to_path_buf(),
            segments,
            file,
            end: last + len,
            cuts: read_cuts(dir)?,
            _lock: lock,
        })
    }

    /// Where the log lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The position just past the last byte logged.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The position of the oldest byte still logged.
    pub fn start(&self) -> u64 {
        self.segments[0]
    }

    /// Appends bytes read from the input (written through to the kernel: a SIGKILL keeps them).
    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if self.end - self.last_start() >= SEGMENT_BYTES {
            self.roll(self.end)?;
        }
        if let Err(e) = self.file.write_all(bytes) {
            // A partial write would shift every later position: cut it off.
            let _ = self.file.set_len(self.end - self.last_start());
            return Err(e).with_context(|| format!("writing the log in {}", self.dir.display()));
        }
        self.end += bytes.len() as u64;
        Ok(())
    }

    /// Cuts the log back to `at` (a record boundary), so that a record only partly logged is
    /// not read back as one. Segments roll wherever they fill, so the record may begin in an
    /// earlier segment: the later ones go.
    pub fn truncate(&mut self, at: u64) -> Result<()> {
        if at >= self.end {
            return Ok(());
        }
        let at = at.max(self.start());
        while self.segments.len() > 1 && self.last_start() > at {
            let path = self.segment_path(self.last_start());
            fs::remove_file(&path).with_context(|| format!("deleting {}", path.display()))?;
            self.segments.pop();
            self.file = open_segment(&self.dir, self.last_start())?;
        }
        self.file
            .set_len(at - self.last_start())
            .with_context(|| format!("cutting the log in {}", self.dir.display()))?;
        self.end = at;
        self.keep_cuts(|c| c < at)
    }

    /// Makes what was appended survive a machine crash.
    pub fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .with_context(|| format!("syncing the log in {}", self.dir.display()))
    }

    /// Ends the piece of a record that the last run left at the log's end (it was killed
    /// mid-record, or out of space) with `delimiter`, so the next input does not run into it,
    /// and marks where the piece ends (`is_cut`) for this run and any later one that reads it
    /// again: a run killed before a commit passes the piece leaves it to the next. Returns
    /// whether there was a piece.
    pub fn mend(&mut self, delimiter: &[u8]) -> Result<bool> {
        if self.ends_whole(delimiter)? {
            return Ok(false);
        }
        if !self.cuts.contains(&self.end) {
            self.cuts.push(self.end);
        }
        // Marked before it is ended: a kill in between leaves a piece the next run marks again.
        self.save_cuts()?;
        self.append(delimiter)?;
        Ok(true)
    }

    /// The log's last record with its delimiter, if the log ends with one and the record
    /// begins within its last `LAST_RECORD_BYTES`.
    pub fn last_record(&self, delimiter: &[u8]) -> Result<Option<Vec<u8>>> {
        let from = self.end.saturating_sub(LAST_RECORD_BYTES).max(self.start());
        let mut tail = Vec::new();
        self.reader(from)
            .read_to_end(&mut tail)
            .with_context(|| format!("reading the log in {}", self.dir.display()))?;
        let Some(body) = tail.strip_suffix(delimiter) else {
            return Ok(None);
        };
        let begins = match memchr::memmem::rfind(body, delimiter) {
            Some(i) => i + delimiter.len(),
            // Only the log's very start is known to be a record's start.
            None if from == 0 => 0,
            None => return Ok(None),
        };
        Ok(Some(tail[begins..].to_vec()).filter(|r| r.len() > delimiter.len()))
    }

    /// Whether a record ending at `end` is the piece a killed run left (see `mend`).
    pub fn is_cut(&self, end: u64) -> bool {
        self.cuts.contains(&end)
    }

    fn ends_whole(&mut self, delimiter: &[u8]) -> Result<bool> {
        let Some(&last) = delimiter.last() else {
            return Ok(true);
        };
        if self.end == self.last_start() {
            return Ok(true);
        }
        let mut f = File::open(self.segment_path(self.last_start()))?;
        f.seek(SeekFrom::End(-1))?;
        let mut b = [0u8];
        f.read_exact(&mut b)?;
        Ok(b[0] == last)
    }

    /// Goes on at `at` when a commit recorded a position past the end (the log lost its
    /// unsynced tail in a machine crash): positions must stay what they were.
    pub fn skip_to(&mut self, at: u64) -> Result<()> {
        if at > self.end {
            self.roll(at)?;
        }
        Ok(())
    }

    /// Reads the log from `from` to its end, for resending what no commit covers yet; bytes
    /// appended meanwhile are read too, so the reader can stand ahead of the input.
    pub fn reader(&self, from: u64) -> JournalReader {
        let from = from.max(self.start());
        // The last segment is always read: it is where appended bytes go.
        let mut parts: Vec<(u64, u64)> = self
            .segments
            .iter()
            .enumerate()
            .filter(|&(i, _)| self.segments.get(i + 1).is_none_or(|&next| next > from))
            .map(|(_, &start)| (start, from.saturating_sub(start)))
            .collect();
        parts.reverse();
        JournalReader {
            dir: self.dir.clone(),
            parts,
            current: None,
            at: from,
        }
    }

    /// Deletes the segments that hold only bytes before `committed`.
    pub fn forget_before(&mut self, committed: u64) -> Result<()> {
        while self.segments.len() > 1 && self.segments[1] <= committed {
            let path = self.segment_path(self.segments[0]);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("deleting {}", path.display())),
            }
            self.segments.remove(0);
        }
        self.keep_cuts(|c| c >= committed)
    }

    /// Keeps the cut marks `keep` says to, saving them if any went.
    fn keep_cuts(&mut self, keep: impl Fn(u64) -> bool) -> Result<()> {
        let before = self.cuts.len();
        self.cuts.retain(|&c| keep(c));
        match self.cuts.len() == before {
            true => Ok(()),
            false => self.save_cuts(),
        }
    }

    /// Replaces the file of cut marks whole (or removes it when there are none).
    fn save_cuts(&self) -> Result<()> {
        let path = self.dir.join(CUTS);
        if self.cuts.is_empty() {
            return match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(e).with_context(|| format!("deleting {}", path.display()))
                }
                _ => Ok(()),
            };
        }
        let text: String = self.cuts.iter().map(|c| format!("{c}\n")).collect();
        let tmp = self.dir.join(format!("{CUTS}.tmp"));
        let written = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(crate::spool::NOFOLLOW)
            .open(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .and_then(|()| fs::rename(&tmp, &path));
        written.with_context(|| format!("writing {}", path.display()))
    }

    fn last_start(&self) -> u64 {
        *self.segments.last().unwrap_or(&0)
    }

    fn roll(&mut self, at: u64) -> Result<()> {
        self.sync()?;
        if self.end == self.last_start() {
            // An empty segment holds nothing worth keeping.
            let _ = fs::remove_file(self.segment_path(self.last_start()));
            self.segments.pop();
        }
        self.file = open_segment(&self.dir, at)?;
        self.segments.push(at);
        self.end = at;
        Ok(())
    }

    fn segment_path(&self, start: u64) -> PathBuf {
        segment_path(&self.dir, start)
    }
}

/// The cut marks in `dir`; a line that is not a number is passed over (it marks nothing).
fn read_cuts(dir: &Path) -> Result<Vec<u64>> {
    let path = dir.join(CUTS);
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(crate::spool::NOFOLLOW)
        .open(&path);
    let mut text = String::new();
    match opened.and_then(|mut f| f.read_to_string(&mut text)) {
        Ok(_) => Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn segment_start(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}{SUFFIX}"))
}

fn open_segment(dir: &Path, start: u64) -> Result<File> {
    let path = segment_path(dir, start);
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .custom_flags(crate::spool::NOFOLLOW)
        .open(&path)
        .with_context(|| format!("opening the log segment {}", path.display()))
}

/// The log from one position on, as one stream of bytes, up to wherever its end is when read.
pub struct JournalReader {
    dir: PathBuf,
    /// Segments still to read (last first): each one's start, and the offset to begin at in it.
    parts: Vec<(u64, u64)>,
    /// The segment being read, and its start.
    current: Option<(u64, File)>,
    /// The position of the next byte.
    at: u64,
}

impl Read for JournalReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((_, f)) = &mut self.current {
                let n = f.read(buf)?;
                if n > 0 {
                    self.at += n as u64;
                    return Ok(n);
                }
            }
            let (start, skip, known) = match self.parts.pop() {
                Some((start, skip)) => (start, skip, true),
                // At the end of the last segment: the log may have rolled on to one that
                // begins here; else this is its end for now.
                None if self.current.as_ref().is_some_and(|(s, _)| *s == self.at) => return Ok(0),
                None => (self.at, 0, false),
            };
            let mut f = match File::open(segment_path(&self.dir, start)) {
                Ok(f) => f,
                Err(e) if !known && e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            f.seek(SeekFrom::Start(skip))?;
            self.at = start + skip;
            self.current = Some((start, f));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(j: &Journal, from: u64) -> Vec<u8> {
        let mut v = Vec::new();
        j.reader(from).read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn positions_go_on_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!((j.start(), j.end()), (0, 0));
        j.append(b"a\nb\n").unwrap();
        drop(j);
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.end(), 4);
        j.append(b"c\n").unwrap();
        assert_eq!(read_all(&j, 2), b"b\nc\n");
        assert_eq!(read_all(&j, 6), b"");
    }

    #[test]
    fn reads_across_segments_and_forgets_what_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(b"one\n").unwrap();
        j.roll(4).unwrap();
        j.append(b"two\n").unwrap();
        j.roll(8).unwrap();
        j.append(b"three\n").unwrap();
        assert_eq!(read_all(&j, 2), b"e\ntwo\nthree\n");
        j.forget_before(7).unwrap();
        assert_eq!(j.start(), 4);
        j.forget_before(8).unwrap();
        assert_eq!(j.start(), 8);
        assert_eq!(read_all(&j, 0), b"three\n");
        let segments = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("log".as_ref()))
            .count();
        assert_eq!(segments, 1);
    }

    #[test]
    fn a_reader_goes_on_with_what_is_appended_after_it_was_made() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(b"one\n").unwrap();
        let mut r = j.reader(j.end());
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"");
        j.append(b"two\n").unwrap();
        j.roll(j.end()).unwrap();
        j.append(b"three\n").unwrap();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"two\nthree\n");
        j.append(b"four\n").unwrap();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"two\nthree\nfour\n");
    }

    #[test]
    fn a_commit_past_the_end_moves_the_end_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(b"abc").unwrap();
        j.skip_to(10).unwrap();
        assert_eq!(j.end(), 10);
        j.append(b"x\n").unwrap();
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.end(), 12);
        assert_eq!(read_all(&j, 10), b"x\n");
    }

    #[test]
    fn cuts_back_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(b"one\ntw").unwrap();
        j.roll(6).unwrap();
        j.append(b"o\nthr").unwrap();
        j.roll(11).unwrap();
        j.append(b"ee").unwrap();
        j.truncate(4).unwrap();
        assert_eq!(j.end(), 4);
        assert_eq!(read_all(&j, 0), b"one\n");
        j.append(b"four\n").unwrap();
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.end(), 9);
        assert_eq!(read_all(&j, 0), b"one\nfour\n");
    }

    #[test]
    fn marks_a_piece_left_mid_record_until_a_commit_passes_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        assert!(!j.mend(b"\n").unwrap());
        j.append(b"a\nhal").unwrap();
        assert!(j.mend(b"\n").unwrap());
        assert!(!j.mend(b"\n").unwrap());
        assert_eq!(read_all(&j, 0), b"a\nhal\n");
        // A run killed before its first commit leaves the mark, and another piece, to the next.
        j.append(b"b\nc").unwrap();
        drop(j);
        let mut j = Journal::open(dir.path()).unwrap();
        assert!(j.is_cut(5));
        assert!(j.mend(b"\n").unwrap());
        assert!(j.is_cut(5) && j.is_cut(9) && !j.is_cut(8));
        j.truncate(8).unwrap();
        assert!(j.is_cut(5) && !j.is_cut(9));
        j.forget_before(6).unwrap();
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        assert!(!j.is_cut(5));
        assert!(!dir.path().join(CUTS).exists());
    }

    #[test]
    fn finds_the_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.last_record(b"\n").unwrap(), None);
        j.append(b"only\n").unwrap();
        assert_eq!(
            j.last_record(b"\n").unwrap().as_deref(),
            Some(&b"only\n"[..])
        );
        j.append(b"one\ntwo\n").unwrap();
        assert_eq!(
            j.last_record(b"\n").unwrap().as_deref(),
            Some(&b"two\n"[..])
        );
        j.append(b"thr").unwrap();
        assert_eq!(j.last_record(b"\n").unwrap(), None);
    }

    #[test]
    fn passes_over_a_cut_mark_that_is_not_a_number() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CUTS), b"12\nx\n\n7\n").unwrap();
        let j = Journal::open(dir.path()).unwrap();
        assert!(j.is_cut(12) && j.is_cut(7));
    }

    #[test]
    fn ignores_files_that_are_not_segments() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.log"), b"x").unwrap();
        fs::write(dir.path().join("00000000000000000007.log.tmp"), b"x").unwrap();
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!((j.start(), j.end()), (0, 0));
    }
}
