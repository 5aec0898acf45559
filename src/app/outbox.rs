//! Everything a routed record meets: the sink, the ledger that counts and keeps failures, and
//! the lifecycle that says whether a record may wait for room in a full queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::lifecycle::{Halt, Lifecycle};
use super::reports::{Reporter, Reports};
use crate::failed::{Ledger, Stored};
use crate::message::Origin;
use crate::reason::{Reason, Refused};
use crate::say;
use crate::signals::Signals;
use crate::sink::Sink;
use crate::wire::Record;

/// How long one wait for room in a full queue lasts before signals and reports are served.
const FULL_WAIT: Duration = Duration::from_millis(10);

/// The sink and what decides, reports and counts around it.
pub struct Outbox {
    pub sink: Sink,
    pub ledger: Arc<Ledger>,
    pub life: Lifecycle,
    pub signals: Signals,
    pub reports: Reports,
    pub reporter: Reporter,
    /// Stop signals already passed to the lifecycle.
    stops_seen: usize,
    /// The producer's fatal error, once it had one.
    pub fatal: Option<String>,
    /// The brokers' TLS or SASL refusal, when nothing got through before it.
    pub refused: Option<(Refused, String)>,
    /// `-q`: the refusal is said once, in the closing line, not also when it comes.
    pub quiet: bool,
    /// Records that cannot be taken stay in the transaction's log, not the spool.
    pub transactional: bool,
    /// A record refused with its batch is out alone: nothing else may be sent until it settles.
    isolating: bool,
    /// Until a broker answered: when to give up, and `--connect-timeout`.
    pub first_answer_by: Option<(Instant, Duration)>,
}

impl Outbox {
    /// Gathers the parts.
    pub fn new(
        sink: Sink,
        ledger: Arc<Ledger>,
        life: Lifecycle,
        signals: Signals,
        reports: Reports,
    ) -> Outbox {
        Outbox {
            sink,
            ledger,
            life,
            signals,
            reports,
            reporter: Reporter::new(Instant::now()),
            stops_seen: 0,
            fatal: None,
            refused: None,
            quiet: false,
            transactional: false,
            isolating: false,
            first_answer_by: None,
        }
    }

    /// Records handed over but not settled, with those waiting to be sent again.
    pub fn outstanding(&mut self) -> i64 {
        let parked = self.sink.kafka().map_or(0, |k| k.retries().len());
        self.sink.in_flight() + parked as i64
    }

    /// Gives records refused with their batch their second chance (`sink::retry`): those
    /// refused for another record go with the next ones; the others go one at a time, each
    /// alone in flight, so that a refusal it meets is its own. Returns whether the input must
    /// wait meanwhile.
    pub fn resend(&mut self) -> bool {
        let in_flight = self.sink.in_flight();
        if self.isolating && in_flight > 0 {
            return true;
        }
        self.isolating = false;
        let Some(k) = self.sink.kafka() else {
            return false;
        };
        let (again, next, waiting) = {
            let mut r = k.retries();
            let again = std::mem::take(&mut r.again);
            let waiting = !r.alone.is_empty();
            let next = match waiting && again.is_empty() && in_flight == 0 {
                true => r.alone.pop_front(),
                false => None,
            };
            (again, next, waiting)
        };
        for p in &again {
            self.send(&p.record(), p.origin);
        }
        if let Some(p) = next {
            self.isolating = self.send(&p.record(), p.origin.alone());
        }
        waiting
    }

    /// Fails the records still waiting to be sent again, as stopped: they go to the spool or
    /// dead-letter file like any record not delivered.
    pub fn abandon_retries(&mut self) {
        let Some(k) = self.sink.kafka() else {
            return;
        };
        let parked: Vec<_> = {
            let mut r = k.retries();
            let mut all = std::mem::take(&mut r.again);
            all.extend(r.alone.drain(..));
            all
        };
        for p in &parked {
            self.ledger
                .failed(p.origin, &p.record(), &Reason::Stopped, Stored::No);
        }
    }

    /// Hands a record to the sink, waiting while its queue is full for as long as the lifecycle
    /// allows; a record that cannot wait any longer goes to the spool or dead-letter file, or
    /// in a transactional run stays in the log. Returns whether the sink took it.
    pub fn send(&mut self, rec: &Record, origin: Origin) -> bool {
        self.send_while(rec, origin, || {})
    }

    /// `send`, calling `waiting` each time it waits for room.
    pub fn send_while(&mut self, rec: &Record, origin: Origin, mut waiting: impl FnMut()) -> bool {
        while self.sink.send(rec, origin).is_err() {
            waiting();
            self.tick();
            if !self.life.may_wait_for_room(Instant::now()) {
                if !self.transactional {
                    self.ledger
                        .failed(origin, rec, &Reason::Stopped, Stored::No);
                }
                return false;
            }
            self.sink.wait(FULL_WAIT);
        }
        true
    }

    /// Once `--connect-timeout` has passed with no broker ever answering, stops the run: the
    /// address is wrong or nothing listens there, and waiting out `--delivery-timeout` would
    /// look like a hang. Asked once; a broker that answered since is an outage to ride out.
    fn give_up_unanswered(&mut self) {
        let Some((by, timeout)) = self.first_answer_by else {
            return;
        };
        if Instant::now() < by {
            return;
        }
        self.first_answer_by = None;
        if self.sink.kafka().is_some_and(|k| !k.reachable()) {
            say!(
                "kpipe: no broker has answered in {}: check --brokers (host and port) and that Kafka is up; stopping, what was read is kept (--connect-timeout waits longer)",
                humantime::format_duration(timeout)
            );
            self.life.halt(Halt::Unreachable);
        }
    }

    /// Waits until every record handed over is settled, or a stop signal comes.
    pub fn wait_until_settled(&mut self) {
        while self.sink.in_flight() > 0 && !self.life.stopping() {
            self.tick();
            self.sink.wait(FULL_WAIT);
        }
    }

    /// Takes in stop signals; cheap enough to call for every record.
    pub fn observe_signals(&mut self) {
        let stops = self.signals.stops();
        if stops != self.stops_seen {
            self.stops_seen = stops;
            let halted = self.life.halted();
            self.life.signals(stops, Instant::now());
            if halted.is_none() && self.life.halted() == Some(Halt::Interrupted) {
                say!("kpipe: interrupted: nothing more is read from the terminal");
            }
        }
    }

    /// Between blocks: signals, the producer's fatal error, statistics and progress.
    pub fn tick(&mut self) {
        self.observe_signals();
        if self.fatal.is_none() {
            if let Some(f) = self.sink.fatal_error() {
                say!("kpipe: the producer hit a fatal error: {f}; stopping, undelivered records go to the spool or dead-letter file");
                self.fatal = Some(f);
                self.life.halt(Halt::Fatal);
            }
        }
        let delivered = self
            .ledger
            .counters
            .delivered
            .load(std::sync::atomic::Ordering::Relaxed);
        if self.refused.is_none() && delivered == 0 {
            // Waiting out --delivery-timeout would not change the brokers' mind.
            if let Some((r, text)) = self.sink.refused() {
                if !self.quiet {
                    say!("kpipe: {text}; {}", r.hint());
                }
                self.refused = Some((r, text));
                self.life.halt(Halt::Fatal);
            }
        }
        self.give_up_unanswered();
        let in_flight = self.sink.in_flight();
        self.reports
            .periodic(&self.ledger, &self.signals, in_flight);
    }
}
