//! Where routed records go: Kafka through librdkafka, or stdout for `--dry-run`.

mod dry_run;
mod errors;
mod kafka;
mod wakeup;

pub use dry_run::DryRun;
pub use errors::classify;
pub use kafka::KafkaSink;

use std::time::Duration;

use crate::message::Outgoing;

/// A destination for records.
pub enum Sink {
    Kafka(KafkaSink),
    DryRun(DryRun),
}

impl Sink {
    /// Hands a record over; blocks (serving delivery reports) while the producer's queue is full,
    /// until `abort` (told how many records are in flight) says to give up, in which case the
    /// record is put with the failures.
    pub fn send(&mut self, rec: Outgoing, abort: &mut dyn FnMut(i64) -> bool) {
        match self {
            Sink::Kafka(k) => k.send(rec, abort),
            Sink::DryRun(d) => d.send(rec),
        }
    }

    /// Serves delivery reports for up to `wait`.
    pub fn poll(&mut self, wait: Duration) {
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
}
