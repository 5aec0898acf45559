//! The Kafka producer: librdkafka's BaseProducer used synchronously. Produce, serve delivery
//! reports in the caller's thread, wait while the queue is full (that is the backpressure).

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, Producer, ProducerContext, PurgeConfig};
use rdkafka::statistics::Statistics;

use super::produce::{produce, Topics};
use super::retry::{self, Chance, Parked, Retries};
use super::txn_reports::TxnReports;
use super::wakeup::Wakeup;
use super::Full;
use crate::config::Settings;
use crate::failed::{Ledger, Stored};
use crate::message::Origin;
use crate::reason::{Kind, Reason, Refused};
use crate::room::Room;
use crate::say;
use crate::security::redact;
use crate::wire::{header_list, Record};

/// How long after start kpipe helps librdkafka to its idempotence producer id (see `warm_up`).
const WARM_UP: Duration = Duration::from_secs(1);

/// Shared with librdkafka: delivery reports, errors, logs and statistics land here.
pub struct Context {
    ledger: Arc<Ledger>,
    verbose: u8,
    quiet: bool,
    errors: Mutex<ErrorLog>,
    /// Redacted from everything librdkafka says.
    secrets: Vec<String>,
    /// Who the brokers take kpipe for.
    principal: String,
    /// In a transactional run, what the open transaction's reports said.
    pub(super) txn: Option<TxnReports>,
    /// Delivery reports served, of every record (for `Room`).
    reported: AtomicU64,
    /// `--on-error` falls back to strings: a refused timestamp is replaced, not failed.
    restamp: bool,
    /// Records refused with their batch, waiting to be sent again.
    retries: Mutex<Retries>,
    /// Whether a replaced timestamp was reported yet (once a run).
    restamp_said: std::sync::atomic::AtomicBool,
    /// Whether a broker refused a record or gave the transactional producer its id (one that
    /// took a record is counted; see `answered`).
    answered: std::sync::atomic::AtomicBool,
    /// Connections closed while asking for ApiVersion (see `Refused::closed_at_hello`).
    closed_at_hello: std::sync::atomic::AtomicU32,
    /// The HTTP status of the last failed OAuth token request (0: none failed).
    token_status: std::sync::atomic::AtomicI32,
    /// Where kinit leaves its complaint, with `--kerberos-keytab`.
    kinit_complaints: Option<std::path::PathBuf>,
}

/// Connections closed while asking for ApiVersion, with no broker ever answering, that make
/// a protocol mismatch: more than one, as a broker shutting down may close one.
const CLOSED_AT_HELLO: u32 = 2;

/// The delivery opaque of kpipe's own records (log positions), which are not input records.
pub(super) const BOOKKEEPING: usize = usize::MAX;

#[derive(Default)]
struct ErrorLog {
    /// The first TLS or SASL refusal, with librdkafka's words.
    refused: Option<(Refused, String)>,
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
    /// A refusal of kpipe's credentials, told apart from an issuer that did not answer, with
    /// kinit's complaint (the KDC's reason) added to librdkafka's words.
    fn credentials_refusal(&self, r: Refused, reason: &str) -> (Refused, String) {
        if r != Refused::Authentication {
            return (r, reason.to_string());
        }
        if Refused::is_token_failure(reason) {
            let status = Some(self.token_status.load(Relaxed)).filter(|s| *s != 0);
            return (Refused::of_token_failure(status), reason.to_string());
        }
        let complaint = self
            .kinit_complaints
            .as_deref()
            .and_then(crate::security::last_complaint);
        match complaint {
            Some(c) => {
                let r = if Refused::kdc_down(&c) {
                    Refused::IssuerDown
                } else {
                    r
                };
                (r, format!("{reason}; {}", redact(&c, &self.secrets)))
            }
            None => (r, reason.to_string()),
        }
    }

    /// Whether a broker answered a produce request, taking a record (delivered, or acknowledged
    /// in the open transaction) or refusing one.
    fn answered(&self) -> bool {
        self.answered.load(Relaxed)
            || self.ledger.counters.delivered.load(Relaxed) > 0
            || self.txn.as_ref().is_some_and(|t| t.acked.load(Relaxed) > 0)
    }

    /// A broker answered other than about a record: the transaction coordinator gave kpipe
    /// its producer id.
    pub(super) fn mark_answered(&self) {
        self.answered.store(true, Relaxed);
    }

    fn errors(&self) -> std::sync::MutexGuard<'_, ErrorLog> {
        self.errors.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Who the brokers take kpipe for.
    pub(super) fn principal(&self) -> &str {
        &self.principal
    }

    pub(super) fn reason(&self, e: &KafkaError, topic: &str) -> Reason {
        let code = e.rdkafka_error_code();
        let last = self.errors().last.clone();
        let text = match (code, last) {
            (Some(RDKafkaErrorCode::TopicAuthorizationFailed), _) => {
                format!("{e}: {} may not write to topic {topic}", self.principal)
            }
            (
                Some(
                    RDKafkaErrorCode::MessageTimedOut
                    | RDKafkaErrorCode::PurgeQueue
                    | RDKafkaErrorCode::PurgeInflight,
                ),
                Some(l),
            ) => format!("{e} (last broker error: {l})"),
            _ => e.to_string(),
        };
        Reason::Kafka { code, text }
    }

    /// A record that failed for good or for now; `words`: what the broker said of it.
    pub(super) fn record_failure(
        &self,
        msg: &BorrowedMessage,
        origin: Origin,
        e: &KafkaError,
        words: &str,
    ) {
        // SAFETY: msg points at a live message for the duration of the delivery callback.
        let status = unsafe { rdkafka_sys::rd_kafka_message_status(msg.ptr()) };
        let stored = match status {
            rdkafka_sys::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED => {
                Stored::Maybe
            }
            _ => Stored::No,
        };
        let rec = failed_record(msg, origin);
        let mut reason = self.reason(e, rec.topic);
        if let Reason::Kafka { text, .. } = &mut reason {
            if !words.is_empty() && !text.contains(words) {
                text.push_str(": ");
                text.push_str(words);
            }
        }
        self.ledger.failed(origin, &rec, &reason, stored);
    }

    /// Takes a failed delivery report: a record refused with its batch waits for its second
    /// chance, any other has failed.
    fn undelivered(&self, msg: &BorrowedMessage, origin: Origin, e: &KafkaError) {
        let words = broker_words(msg).unwrap_or_default();
        let code = e.rdkafka_error_code();
        let chance = retry::chance(code, &words, origin.is_alone(), self.restamp);
        if chance == Chance::None {
            return self.record_failure(msg, origin, e, &words);
        }
        let mut parked = Parked::of(&failed_record(msg, origin), origin);
        if chance == Chance::Restamp {
            parked.restamp(crate::failed::now_ms(), &words);
            if !self.quiet && !self.restamp_said.swap(true, Relaxed) {
                say!(
                    "kpipe: topic {}: the broker refused a record's timestamp ({}); such records are sent with the time kpipe read them and a kpipe.error header naming the original",
                    parked.topic,
                    redact(&words, &self.secrets)
                );
            }
        }
        let mut retries = self.retries.lock().unwrap_or_else(|p| p.into_inner());
        match chance {
            Chance::Alone => retries.alone.push_back(parked),
            _ => retries.again.push(parked),
        }
    }
}

/// The message for a configuration librdkafka refused. The property's value is never in it:
/// a misspelt secret key (`sasl.pasword`) is not known to be a secret.
fn config_refused(e: &KafkaError, secrets: &[String]) -> anyhow::Error {
    let KafkaError::ClientConfig(_, desc, key, _value) = e else {
        return anyhow!(
            "the producer refused its configuration: {}",
            redact(&e.to_string(), secrets)
        );
    };
    let desc = redact(desc, secrets);
    if desc.contains("No such configuration property") {
        anyhow!(
            "{desc}; check the spelling of {key} (-X or -F) against librdkafka's CONFIGURATION.md"
        )
    } else {
        anyhow!("the producer refused the property {key}: {desc}")
    }
}

/// A failed message as a record: the partition only if it was pinned, and the record's own
/// timestamp (librdkafka gives a failed message none; it travelled in the origin).
fn failed_record<'a>(msg: &'a BorrowedMessage<'a>, origin: Origin) -> Record<'a> {
    Record {
        topic: msg.topic(),
        partition: origin.pinned().then(|| msg.partition()),
        key: msg.key(),
        value: msg.payload(),
        headers: header_list(msg.headers()),
        timestamp: origin.timestamp().or_else(|| msg.timestamp().to_millis()),
    }
}

/// What the broker said about this record, when it said more than its error code.
pub(super) fn broker_words(msg: &BorrowedMessage) -> Option<String> {
    // SAFETY: msg is live for the delivery callback; the string, if any, is owned by the
    // message or static, and copied before the callback returns.
    let ptr = unsafe { rdkafka_sys::rd_kafka_message_produce_errstr(msg.ptr()) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a non-NULL errstr is a NUL-terminated C string.
    let text = unsafe { std::ffi::CStr::from_ptr(ptr) };
    Some(text.to_string_lossy().into_owned()).filter(|t| !t.is_empty())
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // -v shows librdkafka's notices (connections closed, among them) and worse; -vv all of
        // its log, debug included. The error callback below turns failures into one line each.
        if self.verbose >= 2
            || (self.verbose >= 1 && (level as i32) <= (RDKafkaLogLevel::Info as i32))
        {
            say!(
                "kpipe: librdkafka {fac}: {}",
                redact(message, &self.secrets)
            );
        }
        if Refused::closed_at_hello(fac, message)
            && !self.answered()
            && self.closed_at_hello.fetch_add(1, Relaxed) + 1 >= CLOSED_AT_HELLO
        {
            // Without librdkafka's thread tag: the broker's name follows it.
            let text = message.split_once("]: ").map_or(message, |(_, t)| t);
            let text = redact(text, &self.secrets);
            let mut log = self.errors();
            log.refused.get_or_insert((Refused::Protocol, text));
        }
        if let Some(status) = Refused::token_request_status(fac, message) {
            self.token_status.store(status, Relaxed);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let reason = &redact(reason, &self.secrets);
        let mut log = self.errors();
        if let Some(r) = Refused::of(code, reason) {
            let (r, reason) = self.credentials_refusal(r, reason);
            // Said once, with what to check, when the loop stops for it.
            log.refused.get_or_insert_with(|| (r, reason.clone()));
            log.last = Some(reason);
            return;
        }
        // Brokers are down because they refused kpipe: not an outage to wait out.
        if code == Some(RDKafkaErrorCode::AllBrokersDown) && log.refused.is_some() {
            return;
        }
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
            say!("kpipe: {reason}; retrying until --delivery-timeout (check --brokers and that Kafka is up)");
        } else {
            say!("kpipe: {reason}");
        }
    }

    fn stats(&self, s: Statistics) {
        let retried: u64 = s.brokers.values().map(|b| b.txretries).sum();
        self.ledger.counters.retried.store(retried, Relaxed);
        self.ledger
            .counters
            .buffered_bytes
            .store(s.msg_size, Relaxed);
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
        self.reported.fetch_add(1, Relaxed);
        if let Err((e, _)) = result {
            // librdkafka's own errors are negative; a broker's are its answer.
            if e.rdkafka_error_code().is_some_and(|c| c as i32 > 0) {
                self.answered.store(true, Relaxed);
            }
        }
        if let Some(t) = &self.txn {
            return t.report(self, result, opaque);
        }
        let origin = Origin(opaque);
        match result {
            Ok(_) => self.ledger.delivered(origin),
            Err((e, msg)) => self.undelivered(msg, origin, e),
        }
    }
}

/// The producer and the ledger its reports go to.
pub struct KafkaSink {
    // Declared first so they are dropped (unhooked, destroyed) before the producer.
    wakeup: Wakeup,
    topics: Topics,
    room: Room,
    /// The time the current block of input was read (ms since the epoch), for records without
    /// their own; 0 when none was read since the last poll, and librdkafka reads the clock.
    stamp: i64,
    pub(super) producer: BaseProducer<Context>,
    ledger: Arc<Ledger>,
    started: Instant,
    warm_up: WarmUp,
}

/// The first second of a run, while the producer may still wait for its producer id.
enum WarmUp {
    /// Nothing sent yet.
    Waiting,
    /// Records are out; this is a topic they go to.
    Nudging(String),
    Done,
}

impl KafkaSink {
    /// Creates the producer the settings describe; fails on a configuration librdkafka refuses.
    pub fn new(s: &Settings, ledger: Arc<Ledger>) -> Result<KafkaSink> {
        let secrets = &s.security.secrets;
        let context = Context {
            ledger: ledger.clone(),
            verbose: s.verbose,
            quiet: s.quiet,
            errors: Mutex::new(ErrorLog::default()),
            secrets: secrets.clone(),
            principal: s.security.principal.clone(),
            // `--atomic` with a dead-letter file logs its input: a record refused for good goes
            // to the file and the transaction is sent again without it. Without one there is
            // nowhere to keep it and nothing to send again from: it fails the transaction.
            txn: s.transactions.as_ref().map(|t| {
                TxnReports::new(t.mode == crate::guarantee::Mode::Atomic && s.dead_letter.is_none())
            }),
            reported: AtomicU64::new(0),
            restamp: s.on_error.sends(),
            retries: Mutex::new(Retries::default()),
            restamp_said: Default::default(),
            answered: Default::default(),
            closed_at_hello: Default::default(),
            token_status: Default::default(),
            kinit_complaints: s.security.kerberos.as_ref().map(|k| k.complaint_file()),
        };
        let producer: BaseProducer<Context> = s
            .client
            .create_with_context(context)
            .map_err(|e| config_refused(&e, secrets))?;
        let wakeup = Wakeup::new(producer.client().native_ptr())?;
        Ok(KafkaSink {
            wakeup,
            topics: Topics::default(),
            room: Room::new(s.max_buffered),
            stamp: 0,
            producer,
            ledger,
            started: Instant::now(),
            warm_up: WarmUp::Waiting,
        })
    }

    /// Hands one record to librdkafka; `Full` when its queue has no room.
    pub fn send(&mut self, rec: &Record, origin: Origin) -> Result<(), Full> {
        let reported = self.producer.context().reported.load(Relaxed);
        if !self.room.has_room(reported, self.topics.count()) {
            return Err(Full);
        }
        let txn = self.producer.context().txn.as_ref();
        if txn.is_some_and(|t| t.refused.pass_over(rec)) {
            return Ok(()); // refused before, and in the dead-letter file
        }
        let rk = self.producer.client().native_ptr();
        match produce(rk, &mut self.topics, rec, origin.0, self.stamp) {
            Ok(()) => {
                self.room.took();
                if let WarmUp::Waiting = self.warm_up {
                    self.warm_up = WarmUp::Nudging(rec.topic.to_string());
                }
                Ok(())
            }
            Err(RDKafkaErrorCode::QueueFull) => Err(Full),
            Err(code) => {
                let reason = Reason::Kafka {
                    code: Some(code),
                    text: KafkaError::MessageProduction(code).to_string(),
                };
                // A logged transaction goes on without a record refused for good (sent again
                // from the log, it would be refused again); a failure that could pass, or of the
                // position record, fails the transaction.
                let for_good = reason.kind() == Kind::Permanent && origin.0 != BOOKKEEPING;
                match txn {
                    Some(t) if t.all_or_nothing || !for_good => t.fail(reason),
                    _ => {
                        self.ledger.failed(origin, rec, &reason, Stored::No);
                        // Passed over, not dead-lettered again, if the log is sent again.
                        if let Some(t) = txn {
                            t.refused.add_handed_over(rec);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Stamps the records handed over until the next `poll` with `ms` (since the epoch): records
    /// read together share the time they were read, and librdkafka need not read the clock for
    /// each.
    pub fn stamp_reads(&mut self, ms: i64) {
        self.stamp = ms;
    }

    /// Serves the delivery reports that are ready; if there are none, sleeps until one comes or
    /// `wait` passes, and serves those.
    pub fn poll(&mut self, wait: Duration) {
        self.stamp = 0;
        self.warm_up();
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
    fn warm_up(&mut self) {
        let WarmUp::Nudging(topic) = &self.warm_up else {
            return;
        };
        let delivered = self.ledger.counters.delivered.load(Relaxed);
        if delivered > 0 || self.started.elapsed() >= WARM_UP {
            self.warm_up = WarmUp::Done;
        } else if self.in_flight() > 0 {
            let _ = self
                .producer
                .client()
                .fetch_metadata(Some(topic), Duration::from_millis(50));
        }
    }

    /// Records refused with their batch and waiting to be sent again.
    pub fn retries(&self) -> std::sync::MutexGuard<'_, Retries> {
        let cx = self.producer.context();
        cx.retries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The TLS or SASL refusal the brokers answered with, if any.
    pub fn refused(&self) -> Option<(Refused, String)> {
        self.producer.context().errors().refused.clone()
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

    /// Whether a broker answered, to tell "unreachable" from "failed": one that refused a
    /// record answered; else one must answer a metadata request about a topic kpipe sent to
    /// now (not about all topics: thousands do not come back within the second).
    pub fn reachable(&self) -> bool {
        self.producer.context().answered()
            || self
                .producer
                .client()
                .fetch_metadata(self.topics.last(), Duration::from_secs(1))
                .is_ok()
    }
}
