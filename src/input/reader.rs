//! Reads a file descriptor in large blocks, waking at least every tick so the caller can
//! serve delivery reports and signals while input is idle.

use std::fs::File;
use std::io::{self, Read};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Duration;

const BLOCK: usize = 256 * 1024;

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
}

impl BlockReader {
    /// Reads standard input (not closed on drop).
    pub fn stdin() -> BlockReader {
        // SAFETY: fd 0 is open for the life of the process; ManuallyDrop keeps it open.
        let file = unsafe { File::from_raw_fd(0) };
        BlockReader::with_file(ManuallyDrop::new(file), false)
    }

    /// Reads an owned file (closed on drop).
    pub fn file(file: File) -> BlockReader {
        BlockReader::with_file(ManuallyDrop::new(file), true)
    }

    fn with_file(file: ManuallyDrop<File>, owned: bool) -> BlockReader {
        BlockReader {
            file,
            owned,
            buf: vec![0; BLOCK],
            start: 0,
            end: 0,
            base: 0,
            eof: false,
        }
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
        self.file
            .metadata()
            .map(|m| {
                use std::os::unix::fs::FileTypeExt;
                let t = m.file_type();
                t.is_fifo() || t.is_socket()
            })
            .unwrap_or(false)
    }

    /// Whether the input has ended.
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Marks `n` bytes at the window's start as used.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
    }

    /// Waits up to `wait` for input and appends what is there, without waiting for a full block.
    pub fn fill(&mut self, wait: Duration) -> io::Result<Fill> {
        if self.eof {
            return Ok(Fill::Eof);
        }
        self.make_room();
        if !self.readable(wait)? {
            return Ok(Fill::Idle);
        }
        loop {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(Fill::Eof);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(Fill::Data);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Fill::Idle),
                Err(e) => return Err(e),
            }
        }
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
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        // POLLHUP and POLLERR also mean a read will not block: it returns EOF or the error.
        Ok(rc > 0)
    }
}

impl Drop for BlockReader {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: dropped exactly once, here.
            unsafe { ManuallyDrop::drop(&mut self.file) };
        }
    }
}
