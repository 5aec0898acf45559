//! The Kafka producer: librdkafka's BaseProducer used synchronously. Produce, serve delivery
//! reports in the caller's thread, wait while the queue is full (that is the backpressure).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext, PurgeConfig};
use rdkafka::statistics::Statistics;
use rdkafka::ClientConfig;

use super::classify;
use super::wakeup::Wakeup;
use crate::envelope;
use crate::failed::{Kind, Ledger};
use crate::message::{Origin, Outgoing};

/// Shared with librdkafka: delivery reports, errors, logs and statistics land here.
pub struct Context {
    ledger: Arc<Ledger>,
    verbose: u8,
    quiet: bool,
    errors: Mutex<ErrorLog>,
}

#[derive(Default)]
struct ErrorLog {
    /// The latest error about one broker, naming it, for the exit message.
    last: Option<String>,
    shown: HashSet<i32>,
    last_shown: Option<Instant>,
}

fn is_transport(code: Option<RDKafkaErrorCode>) -> bool {
    matches!(
        code,
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::BrokerNotAvailable
        )
    )
}

impl Context {
    fn errors(&self) -> std::sync::MutexGuard<'_, ErrorLog> {
        self.errors.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn describe_failure(&self, e: &KafkaError) -> String {
        let last = self.errors().last.clone();
        match (e.rdkafka_error_code(), last) {
            (
                Some(
                    RDKafkaErrorCode::MessageTimedOut
                    | RDKafkaErrorCode::PurgeQueue
                    | RDKafkaErrorCode::PurgeInflight,
                ),
                Some(l),
            ) => {
                format!("{e} (last broker error: {l})")
            }
            _ => e.to_string(),
        }
    }

    fn record_failure(&self, msg: &BorrowedMessage, origin: Origin, e: &KafkaError) {
        // SAFETY: msg points at a live message for the duration of the delivery callback.
        let status = unsafe { rdkafka_sys::rd_kafka_message_status(msg.ptr()) };
        let in_doubt =
            status == rdkafka_sys::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
        let headers = envelope::header_list(msg.headers());
        let rec = envelope::Outgoing {
            topic: msg.topic(),
            partition: origin.pinned().then(|| msg.partition()),
            key: msg.key(),
            value: msg.payload(),
            headers,
            timestamp: msg.timestamp().to_millis(),
        };
        let kind = classify(e.rdkafka_error_code());
        self.ledger
            .failed(origin, &rec, &self.describe_failure(e), kind, in_doubt);
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // librdkafka logs every failed connection attempt; that detail is for -vv only. The
        // error callback below turns the same events into one line each.
        if self.verbose >= 2
            || (self.verbose >= 1 && (level as i32) <= (RDKafkaLogLevel::Warning as i32))
        {
            eprintln!("kpipe: librdkafka {fac}: {message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let mut log = self.errors();
        // "1/1 brokers are down" says less than the connection error that preceded it.
        if code != Some(RDKafkaErrorCode::AllBrokersDown) || log.last.is_none() {
            log.last = Some(reason.to_string());
        }
        let first_of_kind = log.shown.insert(code.map_or(0, |c| c as i32));
        let quiet_period = log
            .last_shown
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1));
        if self.quiet || !(first_of_kind || (self.verbose >= 1 && !quiet_period)) {
            return;
        }
        log.last_shown = Some(Instant::now());
        drop(log);
        if is_transport(code) {
            eprintln!("kpipe: {reason}; retrying until --delivery-timeout (check --brokers and that Kafka is up)");
        } else {
            eprintln!("kpipe: {reason}");
        }
    }

    fn stats(&self, s: Statistics) {
        let retried: u64 = s.brokers.values().map(|b| b.txretries).sum();
        self.ledger
            .counters
            .retried
            .store(retried, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut rtt) = self.ledger.counters.broker_rtt_us.lock() {
            for b in s.brokers.values().filter(|b| b.nodeid >= 0) {
                if let Some(w) = &b.rtt {
                    rtt.insert(b.name.clone(), w.avg);
                }
            }
        }
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let origin = Origin(opaque);
        match result {
            Ok(_) => self.ledger.delivered(origin),
            Err((e, msg)) => self.record_failure(msg, origin, e),
        }
    }
}

/// The producer and the ledger its reports go to.
pub struct KafkaSink {
    // Declared first so it is dropped (unhooked) before the producer.
    wakeup: Wakeup,
    producer: BaseProducer<Context>,
    ledger: Arc<Ledger>,
}

impl KafkaSink {
    /// Creates the producer; fails on a configuration librdkafka refuses.
    pub fn new(
        config: &ClientConfig,
        ledger: Arc<Ledger>,
        verbose: u8,
        quiet: bool,
    ) -> Result<KafkaSink> {
        let context = Context {
            ledger: ledger.clone(),
            verbose,
            quiet,
            errors: Mutex::new(ErrorLog::default()),
        };
        let producer: BaseProducer<Context> = config.create_with_context(context).map_err(|e| {
            let text = e.to_string();
            if text.contains("No such configuration property") {
                anyhow!("{text}; check the -X spelling against librdkafka's CONFIGURATION.md")
            } else {
                anyhow!("the producer refused its configuration: {text}")
            }
        })?;
        let wakeup = Wakeup::new(producer.client().native_ptr())?;
        Ok(KafkaSink {
            wakeup,
            producer,
            ledger,
        })
    }

    /// Hands one record to librdkafka, waiting while its queue is full.
    pub fn send(&mut self, rec: Outgoing, abort: &mut dyn FnMut(i64) -> bool) {
        let origin = rec.origin;
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(rec.topic, origin.0);
        record.partition = rec.partition;
        record.key = rec.key;
        record.payload = rec.value;
        record.timestamp = rec.timestamp;
        record.headers = rec.headers;
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    if abort(self.in_flight()) {
                        self.fail_unsent(
                            &record,
                            origin,
                            "kpipe stopped before the record could be queued",
                            Kind::Passing,
                        );
                        return;
                    }
                    self.poll(Duration::from_millis(10));
                }
                Err((e, back)) => {
                    let kind = classify(e.rdkafka_error_code());
                    let why = format!("{e}");
                    self.fail_unsent(&back, origin, &why, kind);
                    return;
                }
            }
        }
    }

    fn fail_unsent(
        &self,
        r: &BaseRecord<'_, [u8], [u8], usize>,
        origin: Origin,
        why: &str,
        kind: Kind,
    ) {
        let headers = envelope::header_list(r.headers.as_ref());
        let rec = envelope::Outgoing {
            topic: r.topic,
            partition: if origin.pinned() { r.partition } else { None },
            key: r.key,
            value: r.payload,
            headers,
            timestamp: r.timestamp,
        };
        self.ledger.failed(origin, &rec, why, kind, false);
    }

    /// Serves the delivery reports that are ready; if there are none, sleeps until one comes or
    /// `wait` passes, and serves those.
    pub fn poll(&mut self, wait: Duration) {
        if self.serve_ready() || wait.is_zero() {
            return;
        }
        self.wakeup.sleep(wait);
        self.serve_ready();
    }

    fn serve_ready(&self) -> bool {
        let mut served = false;
        // Bounded, in case librdkafka counts an event that poll does not take.
        for _ in 0..100_000 {
            if self.wakeup.pending() == 0 {
                break;
            }
            // With a zero timeout rdkafka serves one event and returns at once.
            self.producer.poll(Duration::ZERO);
            served = true;
        }
        served
    }

    /// Asks for metadata again while the producer has no idempotence producer id yet.
    ///
    /// librdkafka requests the id after a metadata response, from a broker that is already
    /// connected; on the first response only the bootstrap connection is up, so it falls back
    /// to a 500 ms timer. A second metadata round trip, once the real broker is connected,
    /// gets the id at once: a one-record run takes milliseconds instead of half a second.
    pub fn nudge(&mut self, topic: &str) {
        let _ = self
            .producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_millis(50));
    }

    /// Records queued or in flight.
    pub fn in_flight(&self) -> i64 {
        self.producer.in_flight_count() as i64
    }

    /// Fails everything queued or in flight (their reports arrive through `poll`).
    pub fn purge(&mut self) {
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
    }

    /// librdkafka's fatal error, if any.
    pub fn fatal_error(&self) -> Option<String> {
        self.producer
            .client()
            .fatal_error()
            .map(|(code, text)| format!("{text} ({code:?})"))
    }

    /// Whether a broker answers a metadata request now, to tell "unreachable" from "failed".
    pub fn reachable(&self) -> bool {
        self.producer
            .client()
            .fetch_metadata(None, Duration::from_secs(1))
            .is_ok()
    }
}
