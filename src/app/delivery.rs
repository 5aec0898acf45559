//! How records are handed over: each on its own (at least once, with the spool behind it), or
//! inside transactions (`--atomic`, `--exactly-once`, in txn/). The loop asks this one value
//! the same questions in every mode.

use std::path::Path;

use super::outbox::Outbox;
use super::txn::Txn;
use crate::message::Origin;
use crate::wire::Record;

/// The delivery mode and, for transactions, their state.
pub(super) enum Delivery {
    /// Each record is sent and settled on its own.
    EachRecord,
    /// Records go out inside transactions.
    Transactions(Box<Txn>),
}

impl Delivery {
    /// The transactions' state, if records go out inside them.
    pub fn txn(&self) -> Option<&Txn> {
        match self {
            Delivery::EachRecord => None,
            Delivery::Transactions(t) => Some(t),
        }
    }

    /// The transactions' state, to change, if records go out inside them.
    pub fn txn_mut(&mut self) -> Option<&mut Txn> {
        match self {
            Delivery::EachRecord => None,
            Delivery::Transactions(t) => Some(t),
        }
    }

    /// Hands a record read from the input over.
    pub fn send(&mut self, out: &mut Outbox, rec: &Record, origin: Origin) {
        match self {
            Delivery::EachRecord => {
                out.send(rec, origin);
            }
            Delivery::Transactions(t) => t.send(out, rec, origin),
        }
    }

    /// Whether each line read is answered once it is logged (`--confirm`).
    pub fn confirms(&self) -> bool {
        self.txn().is_some_and(Txn::confirms)
    }

    /// Why the record ending at input offset `end` is kept as failed instead of sent (only a
    /// transaction's log withholds records: see `Txn::withheld`).
    pub fn withheld(&self, end: u64) -> Option<String> {
        self.txn().and_then(|t| t.withheld(end))
    }

    /// A withheld record starting at `start` leaves the log (see `Txn::cut_log_at`).
    pub fn cut_log_at(&mut self, start: u64) {
        if let Some(t) = self.txn_mut() {
            t.cut_log_at(start);
        }
    }

    /// Whether the record at input offset `offset` was judged (reported, counted, kept) in
    /// an earlier pass over the same input: only a transaction's log is read twice.
    pub fn judged(&self, offset: u64) -> bool {
        self.txn().is_some_and(|t| t.judged(offset))
    }

    /// Every record before input offset `position` (after `lines` lines) was handed over.
    pub fn handled_to(&mut self, position: u64, lines: u64) {
        if let Some(t) = self.txn_mut() {
            t.handled_to(position, lines);
        }
    }

    /// Whether the whole input is delivered or none of it (`--atomic`).
    pub fn all_or_nothing(&self) -> bool {
        self.txn().is_some_and(Txn::is_batch)
    }

    /// Bytes of input in the log that no commit covers, and the log (`--exactly-once`).
    pub fn waiting(&self) -> Option<(u64, &Path)> {
        self.txn().and_then(Txn::waiting)
    }
}
