//! What standard input brings while kpipe is busy elsewhere (waiting for room in the producer's
//! queue, for a commit, or resending its log), taken into the log at once instead of left in
//! the pipe, where a SIGKILL would take it; the reader reads it back from the log
//! (`BlockReader::follow`).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::time::Duration;

use super::{log_failed, Txn};
use crate::input::{readable, BlockReader};

/// Most taken at once: what a pipe holds once kpipe has grown it.
const MOST: usize = 1 << 20;

/// A second descriptor for standard input, read only while the reader is not reading it.
pub(super) struct Behind {
    input: File,
    buf: Vec<u8>,
    /// The input ended or failed: the reader finds out when it reads the input again.
    ended: bool,
}

impl Behind {
    /// For standard input when it is a pipe or socket (a file keeps what kpipe has not read).
    pub fn stdin() -> Option<Behind> {
        let input = File::from(io::stdin().as_fd().try_clone_to_owned().ok()?);
        crate::input::is_stream(&input).then(|| Behind {
            input,
            buf: Vec::new(),
            ended: false,
        })
    }

    /// What the input holds now (waiting up to `wait` for the first byte), up to `MOST` bytes;
    /// empty if nothing came.
    pub fn take(&mut self, wait: Duration) -> &[u8] {
        let mut len = 0;
        if self.buf.is_empty() {
            self.buf = vec![0; MOST];
        }
        let mut wait = wait;
        while !self.ended && len < MOST && readable(&self.input, wait).unwrap_or(false) {
            wait = Duration::ZERO;
            match self.input.read(&mut self.buf[len..]) {
                Ok(0) => self.ended = true,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.ended = true,
            }
        }
        &self.buf[..len]
    }
}

/// While a commit waits (for a broker that is away, say), what the input brings goes on into
/// the log, confirmed, instead of waiting in the pipe, where a kill would take it.
pub(super) fn log_ahead(txn: &mut Txn, done: impl Fn() -> bool) {
    while !done() {
        if !txn.drain(Duration::from_millis(1)) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Txn {
    /// Takes what the input holds now (waiting up to `wait` for it) into the log, confirmed,
    /// while the reader is busy elsewhere; the reader reads it back from there (`follow`).
    /// Whether it took any.
    pub fn drain(&mut self, wait: Duration) -> bool {
        let (Some(behind), Some(j), None) = (&mut self.behind, &mut self.journal, &self.log_error)
        else {
            return false;
        };
        let block = behind.take(wait);
        if block.is_empty() {
            return false;
        }
        // Input not read yet: the last run's unconfirmed line can still be dropped here.
        let resent = self.confirm.as_mut().map_or(0, |c| c.resent_len(block));
        let block = &block[resent..];
        self.follow_from.get_or_insert(j.end());
        if let Err(e) = j.append(block) {
            self.logged_end = Some(j.end());
            self.unlogged = block.to_vec();
            log_failed(&mut self.log_error, &e);
            return true;
        }
        if let Some(c) = &mut self.confirm {
            c.kept(block);
        }
        true
    }

    /// Has the reader read what `drain` took into the log before it reads the input again
    /// (a reader already reading the log reads to its end). The log's error, if it could not
    /// keep all of it: that part is read last, and then the input counts as ended.
    pub fn follow(&mut self, input: &mut BlockReader) -> Option<String> {
        let from = self.follow_from.take()?;
        if let (false, Some(j)) = (input.has_prefix(), &self.journal) {
            input.follow(Box::new(j.reader(from)), from);
        }
        self.read_unlogged(input)
            .then(|| self.log_error.clone())
            .flatten()
    }

    /// Has the reader read the input the log could not keep after the log, as the input's
    /// end (its records are failed as not logged: `withheld`). Whether there is any.
    pub fn read_unlogged(&self, input: &mut BlockReader) -> bool {
        if self.unlogged.is_empty() {
            return false;
        }
        input.end_with(self.unlogged.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn behind(read_end: File) -> Behind {
        Behind {
            input: read_end,
            buf: Vec::new(),
            ended: false,
        }
    }

    #[test]
    fn takes_what_the_pipe_holds_and_stops_at_its_end() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let (mut w, mut b) = (File::from(w), behind(File::from(r)));
        assert_eq!(b.take(Duration::ZERO), b"");
        w.write_all(b"one\ntwo\n").unwrap();
        assert_eq!(b.take(Duration::ZERO), b"one\ntwo\n");
        w.write_all(b"three\n").unwrap();
        drop(w);
        assert_eq!(b.take(Duration::from_secs(5)), b"three\n");
        assert!(b.ended);
        assert_eq!(b.take(Duration::from_secs(5)), b"");
    }
}
