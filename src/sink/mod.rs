//! Where routed records go: Kafka through librdkafka, or stdout for `--dry-run`.

mod dry_run;
mod features;
mod kafka;
mod offsets;
mod produce;
pub mod retry;
mod txn;
mod txn_reports;
mod wakeup;

pub use dry_run::DryRun;
pub use features::builtin_features;
pub use kafka::KafkaSink;
pub use offsets::{committed_position, ensure_offsets_topic};
pub use txn::{TxnFailed, TxnStartError};

use std::time::Duration;

use crate::message::Origin;
use crate::wire::Record;

/// The producer's queue is full: the record was not taken. Wait on the sink and offer it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// A destination for records.
pub enum Sink {
    Kafka(KafkaSink),
    DryRun(DryRun),
}

impl Sink {
    /// Hands a record over. A record the producer refuses outright goes to the ledger here;
    /// one it has no room for is handed back as `Full`.
    pub fn send(&mut self, rec: &Record, origin: Origin) -> Result<(), Full> {
        match self {
            Sink::Kafka(k) => k.send(rec, origin),
            Sink::DryRun(d) => {
                d.send(rec, origin);
                Ok(())
            }
        }
    }

    /// Records handed over from now until the next `wait` were read at `ms` (since the epoch).
    pub fn stamp_reads(&mut self, ms: i64) {
        if let Sink::Kafka(k) = self {
            k.stamp_reads(ms);
        }
    }

    /// The Kafka producer, for transactions (a dry run has none).
    pub fn kafka(&mut self) -> Option<&mut KafkaSink> {
        match self {
            Sink::Kafka(k) => Some(k),
            Sink::DryRun(_) => None,
        }
    }

    /// Serves delivery reports; if none are ready, sleeps until one comes or `wait` passes.
    pub fn wait(&mut self, wait: Duration) {
        match self {
            Sink::Kafka(k) => k.poll(wait),
            Sink::DryRun(d) => d.flush(),
        }
    }

    /// Records handed over but not yet settled.
    pub fn in_flight(&self) -> i64 {
        match self {
            Sink::Kafka(k) => k.in_flight(),
            Sink::DryRun(_) => 0,
        }
    }

    /// Fails every record not yet delivered, so each goes to the spool, dead-letter file or count.
    pub fn purge(&mut self) {
        if let Sink::Kafka(k) = self {
            k.purge();
        }
    }

    /// librdkafka's fatal error, if the producer can no longer deliver.
    pub fn fatal_error(&self) -> Option<String> {
        match self {
            Sink::Kafka(k) => k.fatal_error(),
            Sink::DryRun(_) => None,
        }
    }

    /// Why `--dry-run`'s standard output failed, if it did.
    pub fn output_error(&self) -> Option<&str> {
        match self {
            Sink::Kafka(_) => None,
            Sink::DryRun(d) => d.error(),
        }
    }

    /// The TLS or SASL refusal the brokers answered with, if any.
    pub fn refused(&self) -> Option<(crate::reason::Refused, String)> {
        match self {
            Sink::Kafka(k) => k.refused(),
            Sink::DryRun(_) => None,
        }
    }

    /// Whether a broker answers now, to tell "unreachable" from "failed" (asks the cluster).
    pub fn reachable(&self) -> bool {
        match self {
            Sink::Kafka(k) => k.reachable(),
            Sink::DryRun(_) => true,
        }
    }

    /// Ends the sink. With nothing in flight and every file synced, tearing librdkafka down
    /// (joining its threads, tens of milliseconds) would only delay the caller: the process
    /// exits next, so the producer is left to the exit.
    pub fn close(self) {
        if self.in_flight() == 0 {
            std::mem::forget(self);
        }
    }
}
