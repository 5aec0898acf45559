//! `--dry-run`: each record as it would be sent, as an envelope line on stdout. A record counts
//! as delivered only once its line was written out; what a failed stdout did not take (`>
//! /dev/full`, `| head -1`) is counted as lost, and the run exits 74.

use std::io::{self, Stdout, Write};
use std::sync::Arc;

use crate::failed::Ledger;
use crate::message::Origin;
use crate::reason::Reason;
use crate::wire::{envelope, Record};

/// How many bytes of lines are gathered before they are written.
const BUFFER: usize = 64 * 1024;

/// Prints records instead of producing them.
pub struct DryRun {
    out: Stdout,
    /// Lines not written yet, and the records they are.
    buf: Vec<u8>,
    pending: Vec<Origin>,
    ledger: Arc<Ledger>,
    /// Why stdout failed, once it did; later records are counted as lost.
    error: Option<String>,
}

impl DryRun {
    /// Prints to stdout; counts each record as delivered in `ledger` once written.
    pub fn new(ledger: Arc<Ledger>) -> DryRun {
        DryRun {
            out: io::stdout(),
            buf: Vec::with_capacity(BUFFER),
            pending: Vec::new(),
            ledger,
            error: None,
        }
    }

    /// Prints one record.
    pub fn send(&mut self, rec: &Record, origin: Origin) {
        if let Some(e) = &self.error {
            return self.ledger.unwritten(&Reason::Unwritten(e.clone()));
        }
        envelope::write_line(&mut self.buf, rec, None);
        self.pending.push(origin);
        if self.buf.len() >= BUFFER {
            self.flush();
        }
    }

    /// Writes the lines out, so a reader sees records as they come, and counts them.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut out = self.out.lock();
        match out.write_all(&self.buf).and_then(|()| out.flush()) {
            Ok(()) => self.pending.iter().for_each(|&o| self.ledger.delivered(o)),
            Err(e) => {
                let reason = Reason::Unwritten(format!("writing standard output: {e}"));
                self.pending
                    .iter()
                    .for_each(|_| self.ledger.unwritten(&reason));
                self.error = Some(reason.to_string());
            }
        }
        self.buf.clear();
        self.pending.clear();
    }

    /// Why stdout failed, if it did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}
