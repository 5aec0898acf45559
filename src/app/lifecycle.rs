//! Where a run is, worked out in one place: reading → grace after a stop signal → sweep →
//! drain → done, with the ways out of each. The loop asks `phase`; nothing else decides
//! whether to stop. Pure: the caller passes the time and what it observed.

use std::time::{Duration, Instant};

/// What the run does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Read stdin and send.
    Reading,
    /// A stop signal came: read on until EOF, for at most the grace period.
    Grace,
    /// The grace period is over: take in what the pipe already holds, then close the input.
    Sweep,
    /// Reading must end now (second signal, bad input, fatal error, read error): close the input.
    Close,
    /// The input has ended: wait for delivery reports.
    Drain,
    /// Waiting is over: fail what is still out, so it goes to the spool or dead-letter file.
    Purge,
    /// Every record is settled.
    Done,
}

/// Why reading had to end early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// A malformed record under `--on-error exit`: what came before is delivered, nothing after.
    BadInput,
    /// Standard input could not be read.
    InputFailed,
    /// The producer hit a fatal error and can deliver nothing more.
    Fatal,
    /// No broker answered within `--connect-timeout`: a wrong address, not an outage.
    Unreachable,
    /// The `--atomic` transaction was aborted: nothing more is sent.
    Aborted,
    /// A stop signal while reading a terminal: a person pressed Ctrl-C, nobody is left to
    /// write the rest.
    Interrupted,
}

/// How long the run drains at EOF, when no stop signal came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Until every record is settled (librdkafka's delivery timeout bounds it).
    UntilSettled,
    /// For the grace period at most: what is left has a spool (or a log) to go to.
    Bounded,
}

/// What has happened to the run so far.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    grace: Duration,
    /// Draining at EOF.
    drain: Drain,
    first_stop: Option<Instant>,
    hard_stop: bool,
    halt: Option<Halt>,
    input_ended: Option<Instant>,
    purged: bool,
    /// The input is a terminal: a stop signal ends reading at once.
    interactive: bool,
}

impl Lifecycle {
    /// A run whose stop grace period is `grace`, draining at EOF as `drain` says.
    pub fn new(grace: Duration, drain: Drain) -> Lifecycle {
        Lifecycle {
            grace,
            drain,
            first_stop: None,
            hard_stop: false,
            halt: None,
            input_ended: None,
            purged: false,
            interactive: false,
        }
    }

    /// The same run, reading a terminal: a person pressed Ctrl-C, nobody is left to write the
    /// rest, so a stop signal halts reading instead of granting a grace period.
    pub fn at_a_terminal(self) -> Lifecycle {
        Lifecycle {
            interactive: true,
            ..self
        }
    }

    /// Takes in how many stop signals have arrived by `now`.
    pub fn signals(&mut self, stops: usize, now: Instant) {
        if stops >= 1 && self.first_stop.is_none() {
            self.first_stop = Some(now);
        }
        if stops >= 2 {
            self.hard_stop = true;
        }
        if stops >= 1 && self.interactive {
            self.halt(Halt::Interrupted);
        }
    }

    /// Reading must end, for `why`; the first reason is kept.
    pub fn halt(&mut self, why: Halt) {
        self.halt.get_or_insert(why);
    }

    /// The input is closed and every byte read from it was handled.
    pub fn input_ended(&mut self, now: Instant) {
        self.input_ended.get_or_insert(now);
    }

    /// Everything still out was failed and its reports served.
    pub fn purged(&mut self) {
        self.purged = true;
    }

    /// Why reading ended early, if it did.
    pub fn halted(&self) -> Option<Halt> {
        self.halt
    }

    /// Whether a stop signal came or reading had to end early.
    pub fn stopping(&self) -> bool {
        self.first_stop.is_some() || self.halt.is_some()
    }

    /// Whether reading must end before the next record.
    pub fn must_close_input(&self) -> bool {
        self.hard_stop || self.halt.is_some()
    }

    /// Whether bytes read but not yet a whole record are still handled as a last record when
    /// the input closes: always, except after bad input under `--on-error exit`.
    pub fn keeps_last_piece(&self) -> bool {
        self.halt != Some(Halt::BadInput)
    }

    /// Whether a record may wait for room in a full queue (else it goes to the spool at once).
    pub fn may_wait_for_room(&self, now: Instant) -> bool {
        matches!(self.phase(now, 1), Phase::Reading | Phase::Grace)
    }

    /// The phase at `now`, with `in_flight` records handed to the sink and not yet settled.
    pub fn phase(&self, now: Instant, in_flight: i64) -> Phase {
        let Some(ended) = self.input_ended else {
            return if self.must_close_input() {
                Phase::Close
            } else {
                match self.first_stop {
                    None => Phase::Reading,
                    Some(t) if now < t + self.grace => Phase::Grace,
                    Some(_) => Phase::Sweep,
                }
            };
        };
        if in_flight <= 0 || self.purged {
            Phase::Done
        } else if self.hard_stop
            || matches!(self.halt, Some(Halt::Fatal | Halt::Unreachable))
            || self.drain_deadline(ended).is_some_and(|d| now >= d)
        {
            Phase::Purge
        } else {
            Phase::Drain
        }
    }

    /// When draining gives up: the grace period after a stop signal, or after the input ended
    /// when there is a spool; else never (librdkafka's delivery timeout bounds it).
    fn drain_deadline(&self, ended: Instant) -> Option<Instant> {
        self.first_stop
            .map(|t| t + self.grace)
            .or_else(|| (self.drain == Drain::Bounded).then(|| ended + self.grace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(10);

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn reads_until_the_input_ends_then_drains_then_is_done() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(GRACE, Drain::UntilSettled);
        assert_eq!(life.phase(t0, 0), Phase::Reading);
        assert_eq!(life.phase(t0, 500), Phase::Reading);
        life.input_ended(t0);
        assert_eq!(life.phase(secs(t0, 1), 500), Phase::Drain);
        // Without a spool nothing bounds the drain but librdkafka's own delivery timeout.
        assert_eq!(life.phase(secs(t0, 3600), 500), Phase::Drain);
        assert_eq!(life.phase(secs(t0, 3600), 0), Phase::Done);
    }

    #[test]
    fn a_stop_signal_gives_a_grace_period_then_a_sweep() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(GRACE, Drain::UntilSettled);
        life.signals(1, t0);
        assert_eq!(life.phase(secs(t0, 9), 5), Phase::Grace);
        assert!(life.may_wait_for_room(secs(t0, 9)));
        assert_eq!(life.phase(secs(t0, 10), 5), Phase::Sweep);
        assert!(!life.may_wait_for_room(secs(t0, 10)));
    }

    #[test]
    fn the_grace_period_counts_from_the_first_signal() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(GRACE, Drain::UntilSettled);
        life.signals(1, t0);
        life.signals(1, secs(t0, 8));
        assert_eq!(life.phase(secs(t0, 10), 5), Phase::Sweep);
    }

    #[test]
    fn a_second_signal_closes_the_input_and_purges() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(GRACE, Drain::UntilSettled);
        life.signals(2, t0);
        assert!(life.must_close_input());
        assert_eq!(life.phase(t0, 5), Phase::Close);
        assert!(life.keeps_last_piece());
        life.input_ended(t0);
        assert_eq!(life.phase(t0, 5), Phase::Purge);
        life.purged();
        assert_eq!(life.phase(t0, 5), Phase::Done);
    }

    #[test]
    fn after_a_stop_the_drain_ends_with_the_grace_period() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(GRACE, Drain::UntilSettled);
        life.signals(1, t0);
        life.input_ended(secs(t0, 2));
        assert_eq!(life.phase(secs(t0, 9), 5), Phase::Drain);
        assert_eq!(life.phase(secs(t0, 10), 5), Phase::Purge);
    }

    #[test]
    fn with_a_spool_the_drain_at_eof_is_bounded_too() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(GRACE, Drain::Bounded);
        life.input_ended(secs(t0, 5));
        assert_eq!(life.phase(secs(t0, 14), 5), Phase::Drain);
        assert_eq!(life.phase(secs(t0, 15), 5), Phase::Purge);
    }

    #[test]
    fn bad_input_closes_the_input_without_its_last_piece_but_still_drains() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(GRACE, Drain::UntilSettled);
        life.halt(Halt::BadInput);
        assert_eq!(life.phase(t0, 5), Phase::Close);
        assert!(!life.keeps_last_piece());
        assert!(!life.may_wait_for_room(t0));
        life.input_ended(t0);
        assert_eq!(life.phase(secs(t0, 100), 5), Phase::Drain);
        assert_eq!(life.phase(secs(t0, 100), 0), Phase::Done);
    }

    #[test]
    fn a_fatal_error_purges_at_once() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(GRACE, Drain::UntilSettled);
        life.halt(Halt::Fatal);
        assert_eq!(life.phase(t0, 5), Phase::Close);
        life.input_ended(t0);
        assert_eq!(life.phase(t0, 5), Phase::Purge);
    }

    #[test]
    fn the_first_halt_is_the_one_kept() {
        let mut life = Lifecycle::new(GRACE, Drain::UntilSettled);
        life.halt(Halt::InputFailed);
        life.halt(Halt::Fatal);
        assert_eq!(life.halted(), Some(Halt::InputFailed));
        assert!(life.keeps_last_piece());
    }

    #[test]
    fn a_read_error_keeps_the_bytes_already_read() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(GRACE, Drain::Bounded);
        life.halt(Halt::InputFailed);
        assert_eq!(life.phase(t0, 0), Phase::Close);
        assert!(life.keeps_last_piece());
        life.input_ended(t0);
        assert_eq!(life.phase(t0, 0), Phase::Done);
    }

    #[test]
    fn a_stop_signal_at_a_terminal_closes_the_input_at_once() {
        let t0 = Instant::now();
        let mut life = Lifecycle::new(GRACE, Drain::UntilSettled).at_a_terminal();
        assert_eq!(life.phase(t0, 5), Phase::Reading);
        life.signals(1, t0);
        assert_eq!(life.halted(), Some(Halt::Interrupted));
        assert_eq!(life.phase(t0, 5), Phase::Close);
    }
}
