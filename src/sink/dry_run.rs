//! `--dry-run`: each record as it would be sent, as an envelope line on stdout.

use std::io::{self, BufWriter, Stdout, Write};
use std::sync::Arc;

use crate::failed::Ledger;
use crate::message::Origin;
use crate::wire::{envelope, Record};

/// Prints records instead of producing them.
pub struct DryRun {
    out: BufWriter<Stdout>,
    line: Vec<u8>,
    ledger: Arc<Ledger>,
    /// Set when stdout is gone (e.g. `| head`); later records are still counted.
    closed: bool,
}

impl DryRun {
    /// Prints to stdout; counts each record as delivered in `ledger`.
    pub fn new(ledger: Arc<Ledger>) -> DryRun {
        DryRun {
            out: BufWriter::new(io::stdout()),
            line: Vec::new(),
            ledger,
            closed: false,
        }
    }

    /// Prints one record.
    pub fn send(&mut self, rec: &Record, origin: Origin) {
        self.line.clear();
        envelope::write_line(&mut self.line, rec, None);
        if !self.closed && self.out.write_all(&self.line).is_err() {
            self.closed = true;
        }
        self.ledger.delivered(origin);
    }

    /// Flushes stdout so a reader sees records as they come.
    pub fn flush(&mut self) {
        if !self.closed && self.out.flush().is_err() {
            self.closed = true;
        }
    }
}
