//! Reads a file descriptor in large blocks, waking at least every tick so the caller can
//! serve delivery reports and signals while input is idle.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::path::PathBuf;

use rustix::event::{PollFd, PollFlags};
use std::time::Duration;

const BLOCK: usize = 256 * 1024;

/// A read from a pipe or socket smaller than this found the writer only a little ahead (it is
/// the size of a pipe as Linux makes it).
const SHORT_READ: usize = 64 * 1024;

/// What a pipe on standard input is grown to: room for a writer while kpipe lets it gather.
const PIPE_SIZE: usize = 1024 * 1024;

/// What one `fill` call found.
#[derive(Debug, PartialEq, Eq)]
pub enum Fill {
    /// New bytes were appended.
    Data,
    /// Nothing arrived within the wait.
    Idle,
    /// End of input.
    Eof,
}

/// One input operand: standard input (`-`) or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Stdin,
    File(PathBuf),
}

impl Operand {
    /// The operand as the command line gave it.
    pub fn from_arg(arg: PathBuf) -> Operand {
        match arg.as_os_str() == "-" {
            true => Operand::Stdin,
            false => Operand::File(arg),
        }
    }

    /// How reports name it.
    pub fn name(&self) -> String {
        match self {
            Operand::Stdin => "standard input".into(),
            Operand::File(p) => p.display().to_string(),
        }
    }
}

/// Where one operand's bytes begin in the stream of all of them, and its name.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// The stream offset of its first byte.
    pub start: u64,
    /// Its place in the operands, from 0.
    pub index: usize,
    /// Its name, for reports (kept for the whole run).
    pub name: &'static str,
}

/// A growable window over an input file descriptor.
pub struct BlockReader {
    file: ManuallyDrop<File>,
    owned: bool,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Absolute input offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// Whether the input is a pipe or socket (decided once, at the start).
    stream: bool,
    /// Bytes the last successful read returned.
    last_read: usize,
    /// Read before the input itself: the log's records that no commit covers yet.
    prefix: Option<Box<dyn Read + Send>>,
    /// After the prefix, the input is not read again (it is treated as ended).
    prefix_only: bool,
    /// Where in `buf` the bytes the last read took from the input itself begin (`end` if none).
    fresh: usize,
    /// File operands still to read after this one; each is opened when its turn comes.
    queue: VecDeque<Operand>,
    /// Where each operand began, when they were named on the command line.
    sources: Vec<Source>,
    /// Ends an operand whose last record has no delimiter, so that it does not run into the
    /// next operand's first.
    delimiter: Vec<u8>,
    /// The last byte read from the current operand.
    last_byte: Option<u8>,
}

impl BlockReader {
    /// Reads standard input (not closed on drop).
    pub fn stdin() -> BlockReader {
        let file = stdin_file();
        // Where the pipe cannot grow, kpipe still works: its writer waits a little more often.
        let _ = grow_pipe(&file);
        BlockReader::with_file(ManuallyDrop::new(file), false)
    }

    /// Reads an owned file (closed on drop).
    pub fn file(file: File) -> BlockReader {
        BlockReader::with_file(ManuallyDrop::new(file), true)
    }

    /// Reads the operands (none: standard input) one after the other as one stream, ending
    /// each that does not end with `delimiter` with one; reports name each (`source_at`). The
    /// first is opened now.
    pub fn operands(operands: Vec<Operand>, delimiter: &[u8]) -> io::Result<BlockReader> {
        let mut queue = VecDeque::from(operands);
        let first = queue.pop_front().unwrap_or(Operand::Stdin);
        let mut reader = match &first {
            Operand::Stdin => BlockReader::stdin(),
            Operand::File(path) => BlockReader::file(open(path)?),
        };
        // Standard input alone is not named: reports say "line N, byte B" as they always have.
        if first != Operand::Stdin || !queue.is_empty() {
            reader.sources.push(Source {
                start: 0,
                index: 0,
                name: leak_name(&first),
            });
        }
        reader.queue = queue;
        reader.delimiter = delimiter.to_vec();
        Ok(reader)
    }

    /// The operand that the byte at stream offset `offset` came from, when operands were named.
    pub fn source_at(&self, offset: u64) -> Option<Source> {
        let i = self.sources.partition_point(|s| s.start <= offset);
        self.sources.get(i.checked_sub(1)?).copied()
    }

    fn with_file(file: ManuallyDrop<File>, owned: bool) -> BlockReader {
        let stream = is_stream(&file);
        BlockReader {
            file,
            owned,
            buf: vec![0; BLOCK],
            start: 0,
            end: 0,
            base: 0,
            eof: false,
            stream,
            last_read: 0,
            prefix: None,
            prefix_only: false,
            fresh: 0,
            queue: VecDeque::new(),
            sources: Vec::new(),
            delimiter: Vec::new(),
            last_byte: None,
        }
    }

    /// Starts over at stream position `at`: what `prefix` holds is read first, then the input
    /// (unless `then_input` is false). What the window held is dropped: the prefix has it.
    pub fn rewind(&mut self, prefix: Box<dyn Read + Send>, at: u64, then_input: bool) {
        self.start = 0;
        self.end = 0;
        self.fresh = 0;
        self.base = at;
        self.prefix = Some(prefix);
        self.prefix_only = !then_input;
    }

    /// Goes on with `prefix` after the window, before the input: it reads the bytes from stream
    /// position `at` on, which were taken from the input (`Behind`) and logged while the window
    /// was still being handled.
    pub fn follow(&mut self, prefix: Box<dyn Read + Send>, at: u64) {
        debug_assert_eq!(
            at,
            self.base + self.end as u64,
            "the prefix must go on where the window ends"
        );
        self.prefix = Some(prefix);
        self.prefix_only = false;
    }

    /// Reads `bytes` after the prefix (or next, if there is none), and then treats the input as
    /// ended: bytes taken from the input that the log could not keep.
    pub fn end_with(&mut self, bytes: Vec<u8>) {
        let first: Box<dyn Read + Send> = match self.prefix.take() {
            Some(prefix) => prefix,
            None => Box::new(io::empty()),
        };
        self.prefix = Some(Box::new(first.chain(io::Cursor::new(bytes))));
        self.prefix_only = true;
    }

    /// Whether what is read next comes from a prefix (the log) rather than the input itself.
    pub fn has_prefix(&self) -> bool {
        self.prefix.is_some()
    }

    /// The bytes the last `fill` took from the input itself (not from a prefix), for the log.
    pub fn fresh(&self) -> &[u8] {
        &self.buf[self.fresh.min(self.end)..self.end]
    }

    /// The bytes read but not yet consumed.
    pub fn window(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Absolute offset of the window's first byte.
    pub fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// Whether the input is a pipe or socket, whose writer counts what it wrote as handed over
    /// (a regular file still holds what kpipe did not read).
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// Whether the last read took only a little from a pipe or socket: its writer hands over
    /// records one small write at a time, and reading again at once would cost a wake-up (on
    /// both sides) for every record.
    pub fn writer_trickles(&self) -> bool {
        self.stream && !self.eof && self.prefix.is_none() && self.last_read < SHORT_READ
    }

    /// Whether the input has ended.
    pub fn at_eof(&self) -> bool {
        self.eof && self.prefix.is_none()
    }

    /// Marks `n` bytes at the window's start as used.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
    }

    /// Waits up to `wait` for input and appends what is there, without waiting for a full block.
    pub fn fill(&mut self, wait: Duration) -> io::Result<Fill> {
        self.make_room();
        self.fresh = self.end;
        if let Some(prefix) = &mut self.prefix {
            match prefix.read(&mut self.buf[self.end..])? {
                0 => {
                    self.prefix = None;
                    self.eof |= self.prefix_only;
                }
                n => {
                    self.end += n;
                    self.fresh = self.end;
                    self.last_read = n;
                    return Ok(Fill::Data);
                }
            }
        }
        if self.eof {
            return Ok(Fill::Eof);
        }
        if !self.readable(wait)? {
            return Ok(Fill::Idle);
        }
        loop {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => match self.queue.pop_front() {
                    Some(next) => return self.next_operand(next),
                    None => {
                        self.eof = true;
                        return Ok(Fill::Eof);
                    }
                },
                Ok(n) => {
                    self.end += n;
                    self.last_read = n;
                    self.last_byte = Some(self.buf[self.end - 1]);
                    return Ok(Fill::Data);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Fill::Idle),
                Err(e) => return Err(e),
            }
        }
    }

    /// Goes on with the next operand, after ending the last one's record with a delimiter if
    /// it lacked one (as bytes read, so that a log of the input holds it too).
    fn next_operand(&mut self, next: Operand) -> io::Result<Fill> {
        let file = match &next {
            Operand::Stdin => ManuallyDrop::new(stdin_file()),
            Operand::File(path) => ManuallyDrop::new(open(path)?),
        };
        let unended = match (self.last_byte, self.delimiter.last()) {
            (Some(b), Some(&d)) => b != d,
            _ => false,
        };
        if unended {
            self.make_room();
            let d = self.delimiter.len();
            self.buf[self.end..self.end + d].copy_from_slice(&self.delimiter);
            self.end += d;
        }
        if self.owned {
            // SAFETY: the old file is dropped exactly once, here, before it is replaced.
            unsafe { ManuallyDrop::drop(&mut self.file) };
        }
        self.owned = next != Operand::Stdin;
        self.stream = is_stream(&file);
        self.file = file;
        self.last_byte = None;
        self.sources.push(Source {
            start: self.base + self.end as u64,
            index: self.sources.len(),
            name: leak_name(&next),
        });
        Ok(if unended { Fill::Data } else { Fill::Idle })
    }

    /// Moves the unconsumed bytes to the front, and grows the buffer when a record fills it.
    fn make_room(&mut self) {
        if self.start > 0 && (self.start == self.end || self.buf.len() - self.end < BLOCK / 4) {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < BLOCK / 4 {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
    }

    fn readable(&self, wait: Duration) -> io::Result<bool> {
        readable(&self.file, wait)
    }
}

/// Grows a pipe so that its writer (syslog-ng writes each message on its own) need not wait
/// while kpipe lets records gather between reads. What kpipe can lose if it is killed is still
/// bounded by --max-buffered, which is far larger. Not a pipe, or not allowed: left as it is.
/// Returns whether the pipe now holds `PIPE_SIZE` or more.
fn grow_pipe(file: &File) -> bool {
    use std::os::unix::fs::FileTypeExt;
    file.metadata().is_ok_and(|m| m.file_type().is_fifo())
        && rustix::pipe::fcntl_setpipe_size(file, PIPE_SIZE).is_ok_and(|n| n >= PIPE_SIZE)
}

/// Standard input, not to be closed.
fn stdin_file() -> File {
    // SAFETY: fd 0 is open for the life of the process; the caller keeps it from being
    // closed (ManuallyDrop, and `owned` false).
    unsafe { File::from_raw_fd(0) }
}

/// Opens a file operand, saying which one failed.
fn open(path: &std::path::Path) -> io::Result<File> {
    File::open(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// An operand's name for the whole run (a few bytes per operand, once).
fn leak_name(operand: &Operand) -> &'static str {
    Box::leak(operand.name().into_boxed_str())
}

/// Whether a read of `file` would not block, waiting up to `wait` to find out (an interrupted
/// wait is "not yet").
pub fn readable(file: &File, wait: Duration) -> io::Result<bool> {
    let timeout = rustix::event::Timespec::try_from(wait).ok();
    let mut fds = [PollFd::new(file, PollFlags::IN)];
    match rustix::event::poll(&mut fds, timeout.as_ref()) {
        // POLLHUP and POLLERR also mean a read will not block: it returns EOF or the error.
        Ok(n) => Ok(n > 0),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether `file` is a pipe or socket, whose writer counts what it wrote as handed over.
pub fn is_stream(file: &File) -> bool {
    use std::os::unix::fs::FileTypeExt;
    file.metadata()
        .map(|m| m.file_type().is_fifo() || m.file_type().is_socket())
        .unwrap_or(false)
}

impl Drop for BlockReader {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: dropped exactly once, here.
            unsafe { ManuallyDrop::drop(&mut self.file) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    fn pipe() -> (File, File) {
        let (r, w) = rustix::pipe::pipe().unwrap();
        (File::from(r), File::from(w))
    }

    #[test]
    fn a_small_read_from_a_pipe_is_a_trickle_and_a_file_never_is() {
        let (read_end, mut write_end) = pipe();
        let mut pipe_reader = BlockReader::file(read_end);
        write_end.write_all(b"one record\n").unwrap();
        assert_eq!(
            pipe_reader.fill(Duration::from_secs(5)).unwrap(),
            Fill::Data
        );
        assert!(pipe_reader.is_stream());
        assert!(pipe_reader.writer_trickles());

        // More than a pipe as Linux makes it: only a grown pipe takes it without a reader.
        assert!(grow_pipe(&write_end), "F_SETPIPE_SZ to {PIPE_SIZE} refused");
        write_end.write_all(&vec![b'x'; 100 * 1024]).unwrap();
        assert_eq!(
            pipe_reader.fill(Duration::from_secs(5)).unwrap(),
            Fill::Data
        );
        assert!(!pipe_reader.writer_trickles());

        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"one record\n").unwrap();
        file.rewind().unwrap();
        let mut file_reader = BlockReader::file(file);
        assert_eq!(file_reader.fill(Duration::ZERO).unwrap(), Fill::Data);
        assert!(!file_reader.is_stream());
        assert!(!file_reader.writer_trickles());
    }
}
