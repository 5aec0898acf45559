//! rsyslog omprog's confirmation protocol (`--confirm`): "OK" on standard output once kpipe
//! takes records, then one "OK" for each line once the write-ahead log holds it. rsyslog keeps
//! a message until it is confirmed and sends it again to the kpipe it starts next, so a killed
//! kpipe loses nothing it was given.

use std::io::Write as _;

use crate::say;

/// The answers, written to standard output.
#[derive(Default)]
pub(super) struct Confirm {
    /// One block's answers, written at once.
    buf: Vec<u8>,
    /// Standard output failed (rsyslog is gone): nothing more is answered.
    broken: bool,
    /// `--drop-resent`: the log's last line (with its delimiter) until the first line comes.
    resent: Option<Vec<u8>>,
}

impl Confirm {
    /// Drops the first line if it is `last`, the log's last (`--drop-resent`).
    pub fn drop_resent(&mut self, last: Option<Vec<u8>>) {
        self.resent = last;
    }

    /// How many bytes at the start of `fresh`, the first input, are the line the last run kept
    /// but did not confirm (rsyslog sends an unconfirmed message again, first): not to be
    /// logged again. Asked once, while transactions start (`log_while`, whose input is read
    /// again from the log; later, dropping bytes would shift every log position after them);
    /// 0 from then on.
    pub fn resent_len(&mut self, fresh: &[u8]) -> usize {
        match self.resent.take() {
            Some(last) if fresh.starts_with(&last) => last.len(),
            _ => 0,
        }
    }

    /// Tells the caller that kpipe takes records now.
    pub fn ready(&mut self) {
        self.answer(1);
    }

    /// Confirms each line that ends in `logged`, bytes the log holds now.
    pub fn kept(&mut self, logged: &[u8]) {
        let lines = memchr::memchr_iter(b'\n', logged).count();
        if lines > 0 {
            self.answer(lines);
        }
    }

    fn answer(&mut self, lines: usize) {
        if self.broken {
            return;
        }
        self.buf.clear();
        for _ in 0..lines {
            self.buf.extend_from_slice(b"OK\n");
        }
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(&self.buf).and_then(|()| out.flush()) {
            self.broken = true;
            say!("kpipe: --confirm: writing to standard output failed ({e}); rsyslog sends again what was not confirmed");
        }
    }
}
