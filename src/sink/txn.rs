//! Kafka transactions for `--atomic` and `--exactly-once`: fencing the previous producer of an
//! id, committing or aborting, and the log position each `--exactly-once` commit carries into
//! the compacted offsets topic (as Kafka Connect's exactly-once sources do, KIP-618; reading
//! it back is `offsets.rs`).

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Result;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer};

use super::kafka::{Context, KafkaSink, BOOKKEEPING};
use super::offsets::position_value;
use super::Full;
use crate::exit::Status;
use crate::message::Origin;
use crate::reason::Reason;
use crate::wire::Record;

/// Transactions could not start; the status says why.
#[derive(Debug)]
pub struct TxnStartError {
    status: Status,
    text: String,
}

impl TxnStartError {
    /// The exit status for it.
    pub fn status(&self) -> Status {
        self.status
    }
}

impl std::fmt::Display for TxnStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for TxnStartError {}

/// Why a transaction did not commit.
#[derive(Debug)]
pub enum TxnFailed {
    /// It was aborted; its records are not visible to `read_committed` consumers.
    Aborted(String),
    /// The producer can do nothing more (fenced by a newer run with the same id, or fatal).
    Fatal(String),
}

/// The producer as far as starting transactions goes: shareable with a thread that starts
/// them while the caller reads on.
#[derive(Clone, Copy)]
pub struct Starter<'a>(&'a BaseProducer<Context>);

impl Starter<'_> {
    /// Registers the transactional id with the brokers, fencing any earlier producer with it
    /// (its open transaction is aborted). A timeout above the brokers' maximum is named.
    pub fn init_transactions(&self, timeout: Duration, wait: Duration) -> Result<()> {
        match self.0.init_transactions(wait) {
            Ok(()) => {
                // An outage that begins before the first record is acknowledged is then
                // ridden out, not taken for brokers that never answered (--connect-timeout).
                self.0.context().mark_answered();
                Ok(())
            }
            Err(e) if code(&e) == Some(RDKafkaErrorCode::InvalidTransactionTimeout) => {
                Err(TxnStartError {
                    status: Status::Config,
                    text: format!("--transaction-timeout {} is more than the brokers allow (their transaction.max.timeout.ms, 15m by default): give a shorter one, or raise it on the brokers", humantime::format_duration(timeout)),
                }
                .into())
            }
            Err(e) => {
                let status = match code(&e) {
                    Some(
                        RDKafkaErrorCode::TransactionalIdAuthorizationFailed
                        | RDKafkaErrorCode::ClusterAuthorizationFailed,
                    ) => Status::NoPerm,
                    _ => Status::Unavailable,
                };
                Err(TxnStartError {
                    status,
                    text: format!(
                        "could not start a transaction as {}: {}; check --brokers, and that the brokers let this user use transactional ids",
                        self.0.context().principal(),
                        self.0.context().reason(&e, "")
                    ),
                }
                .into())
            }
        }
    }
}

impl KafkaSink {
    /// The producer, for starting transactions from another thread.
    pub fn starter(&self) -> Starter<'_> {
        Starter(&self.producer)
    }

    /// Opens a transaction; records sent from now on belong to it.
    pub fn begin(&self) -> Result<(), TxnFailed> {
        if let Some(t) = &self.producer.context().txn {
            t.began();
        }
        self.producer
            .begin_transaction()
            .map_err(|e| TxnFailed::Fatal(e.to_string()))
    }

    /// Sends the log position that the open transaction brings the stream to.
    pub fn send_position(&mut self, topic: &str, id: &str, position: u64) -> Result<(), Full> {
        let value = position_value(position);
        let rec = Record {
            topic,
            key: Some(id.as_bytes()),
            value: Some(&value),
            ..Record::default()
        };
        self.send(&rec, Origin(BOOKKEEPING))
    }

    /// Whether records are sent one at a time, each alone in flight, until the next commit.
    pub fn one_at_a_time(&self) -> bool {
        let txn = self.producer.context().txn.as_ref();
        txn.is_some_and(|t| t.refused.alone())
    }

    /// Whether a record was refused for good (or records were asked to go one at a time), and
    /// not known to be, since the last call.
    pub fn refused_anew(&self) -> bool {
        let txn = self.producer.context().txn.as_ref();
        txn.is_some_and(|t| t.refused.take_fresh())
    }

    /// Why the transaction that ended last had to be aborted, if a delivery failed in it.
    pub fn aborted_for(&self) -> Option<Reason> {
        self.producer.context().txn.as_ref()?.ended_for()
    }

    /// A delivery failure inside the open transaction, which must then be aborted.
    pub fn txn_failure(&self) -> Option<Reason> {
        self.producer.context().txn.as_ref()?.failure()
    }

    /// Delivers what is out and commits. Returns how many input records it made visible.
    pub fn commit(&mut self, wait: Duration) -> Result<u64, TxnFailed> {
        if let Some(r) = self.txn_failure() {
            return Err(self.abort_for(r.to_string(), wait));
        }
        let deadline = Instant::now() + wait;
        // Deliver what is out first, served on kpipe's own wake-up pipe: rdkafka's flush, which
        // commit_transaction calls, sleeps 100 ms at a time while anything is out.
        self.serve_until_settled(deadline);
        loop {
            match self.producer.commit_transaction(wait) {
                Ok(()) => {
                    if let Some(t) = &self.producer.context().txn {
                        t.refused.clear();
                    }
                    return Ok(self.take_acked());
                }
                Err(KafkaError::Transaction(e)) if e.is_fatal() => {
                    return Err(TxnFailed::Fatal(e.to_string()))
                }
                Err(KafkaError::Transaction(e))
                    if e.is_retriable() && Instant::now() < deadline =>
                {
                    continue
                }
                Err(e) => {
                    let why = self.txn_failure().map_or(e.to_string(), |r| r.to_string());
                    return Err(self.abort_for(why, wait));
                }
            }
        }
    }

    /// Aborts the open transaction and waits for the reports of what it purged. Returns the
    /// records the brokers had already taken into it (now never visible).
    pub fn abort(&mut self, wait: Duration) -> Result<u64, TxnFailed> {
        // librdkafka's abort waits until every purged record's report was served, and this
        // thread is the one that serves them: purge and serve first.
        self.purge();
        self.serve_until_settled(Instant::now() + Duration::from_secs(5));
        if let Err(e) = self.producer.abort_transaction(wait) {
            if let KafkaError::Transaction(t) = &e {
                if t.is_fatal() {
                    return Err(TxnFailed::Fatal(e.to_string()));
                }
            }
        }
        self.poll(Duration::ZERO);
        Ok(self.take_acked())
    }

    /// Serves delivery reports until nothing is out, or `deadline`.
    fn serve_until_settled(&mut self, deadline: Instant) {
        while self.in_flight() > 0 && Instant::now() < deadline {
            self.poll(Duration::from_millis(5));
        }
    }

    fn abort_for(&mut self, why: String, wait: Duration) -> TxnFailed {
        match self.abort(wait) {
            Ok(_) => TxnFailed::Aborted(why),
            Err(f) => f,
        }
    }

    fn take_acked(&self) -> u64 {
        let Some(t) = &self.producer.context().txn else {
            return 0;
        };
        t.clear_failure();
        // The next records sent come from the last commit on.
        t.refused.rewound();
        t.acked.swap(0, Relaxed)
    }
}

fn code(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    e.rdkafka_error_code()
}
