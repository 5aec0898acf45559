//! Reading a transaction's input again after an abort: a stream's log from the last commit, or
//! a batch's whole input, whose records then each fail with the abort's reason.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::app::{App, Input};
use crate::input::{BlockReader, Framer};

impl App {
    /// Sends again from `at`: a stream's log after an abort, or (for a batch) its whole input,
    /// every record of which now fails with the abort's reason.
    pub(in crate::app) fn rewind(
        &mut self,
        at: u64,
        input: &mut BlockReader,
        framer: &mut Box<dyn Framer>,
    ) {
        let Some(txn) = self.delivery.txn_mut() else {
            return;
        };
        let Some(j) = &txn.journal else { return };
        let reader = j.reader(at);
        // An aborted batch fails every record; one resent after a refusal sends them again.
        let batch = txn.aborted.is_some();
        let ended = input.at_eof();
        txn.judged = txn.judged.max(input.offset());
        input.rewind(Box::new(reader), at, !batch && !ended);
        // The log is read to its end, with the input taken in behind the reader.
        txn.follow_from = None;
        txn.read_unlogged(input);
        *framer = self.framer();
        if batch {
            self.lines = 0;
            // The failed records are counted again as they are read back.
            let c = &self.out.ledger.counters;
            c.read.store(0, Relaxed);
            c.bytes.store(0, Relaxed);
            if self.read_log(input, framer.as_mut()) {
                self.out.life.input_ended(Instant::now());
            }
        } else if ended {
            self.read_log(input, framer.as_mut());
        }
    }

    /// Reads a rewound log to its end, the lifecycle reading no more: a batch's records each go
    /// to the dead-letter file, a stream's are sent again. Whether it got to the end.
    fn read_log(&mut self, input: &mut BlockReader, framer: &mut dyn Framer) -> bool {
        loop {
            if let Err(e) = input.fill(Duration::ZERO) {
                self.input_failed(e);
                return false;
            }
            let end = input.at_eof();
            let input_is = if end { Input::Over } else { Input::GoesOn };
            self.handle_pieces(input, framer, input_is);
            if end {
                return true;
            }
        }
    }
}
