//! The run, top to bottom: set up, send what the spool holds, then read, frame, decide and send
//! until the lifecycle says the input is done, drain, and conclude.

mod confirm;
mod delivery;
mod lifecycle;
mod outbox;
mod outcome;
mod replay;
mod reports;
mod setup;
mod step;
mod txn;

use std::time::{Duration, Instant};

use crate::cli::Cli;
use crate::config::Settings;
use crate::exit::Status;
use crate::failed::Stored;
use crate::input::{BlockReader, Capped, Fill, Framer, JsonFramer, LinesFramer, Piece};
use crate::message::Origin;
use crate::options::Format;
use crate::reason::{Position, Reason};
use crate::route::Router;
use crate::say;
use crate::spool::SpoolDir;
use crate::stats::bump;
use crate::wire::Record;
use delivery::Delivery;
use lifecycle::{Halt, Phase};
use outbox::Outbox;
use outcome::{conclude, needs_reachability, Facts};
use step::{decide, Decision, Policy};

/// How long a blocked read waits before the loop serves signals, reports and statistics.
const TICK: Duration = Duration::from_millis(100);
/// How long a trickling pipe is left to fill before the next read.
const GATHER: Duration = Duration::from_millis(1);
/// How long one wait for delivery reports lasts while draining.
const DRAIN_SLICE: Duration = Duration::from_millis(5);
/// After a purge, how many drain slices to wait at most for the purged records' reports.
const PURGE_SLICES: usize = 1000;
/// How long the sweep after the grace period may take in what a writer keeps writing.
const SWEEP_LIMIT: Duration = Duration::from_secs(1);

/// Whether the input goes on, for what is decided at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// More may come: bytes after the last whole record wait for it.
    GoesOn,
    /// It is over (or reading ends): bytes after the last whole record are a record too.
    Over,
}

/// Runs kpipe with parsed arguments and returns its exit status.
pub fn run(cli: Cli) -> Status {
    let quiet = cli.quiet;
    let (settings, router) = match Settings::from_cli(cli) {
        Ok(s) => s,
        Err(e) => {
            say!("kpipe: {e:#}");
            return Status::Usage;
        }
    };
    // Before any thread starts: librdkafka's GSSAPI and the kinit it runs find the ticket cache
    // in the environment.
    if let Some(cache) = settings.security.ticket_cache() {
        std::env::set_var("KRB5CCNAME", cache);
    }
    match App::new(settings, router) {
        Ok(app) => app.run(),
        Err(setup::Setup(status, e)) => {
            if !quiet || status != Status::Ok {
                say!("kpipe: {e:#}");
            }
            status
        }
    }
}

struct App {
    s: Settings,
    policy: Policy,
    router: Router,
    /// Reads spool files, which hold envelopes whatever `--format` says.
    replay_router: Router,
    out: Outbox,
    spool: Option<SpoolDir>,
    /// Newlines consumed so far, for line numbers in reports.
    lines: u64,
    /// The operand being read (when files were named), and `lines` where it began.
    source: (usize, u64),
    /// Whether a record was malformed yet (the "is the input JSON?" hint is given once).
    seen_malformed: bool,
    io_error: Option<String>,
    last_rescan: Instant,
    /// Each record on its own, or inside transactions.
    delivery: Delivery,
}

impl App {
    /// The lifecycle, one phase at a time.
    fn run(mut self) -> Status {
        if self.s.verbose >= 1 {
            say!("kpipe: {}", self.s.describe());
        }
        let mut input = match BlockReader::operands(self.s.inputs.clone(), self.record_end()) {
            Ok(input) => input,
            Err(e) => {
                say!("kpipe: cannot read {e}; check the path");
                return Status::NoInput;
            }
        };
        // Ready before transactions start: what comes meanwhile goes into the log, confirmed.
        if let Some(t) = self.delivery.txn_mut() {
            t.ready();
        }
        if let Err(setup::Setup(status, e)) = self.start_transactions(&mut input) {
            say!("kpipe: {e:#}");
            return status;
        }
        self.replay_spool();
        let mut framer = self.framer();
        loop {
            if let Some(at) = self.tick(&mut input) {
                self.rewind(at, &mut input, &mut framer);
            }
            let hold = self.out.resend();
            let in_flight = self.out.outstanding();
            match self.out.life.phase(Instant::now(), in_flight) {
                Phase::Reading | Phase::Grace if hold => self.out.sink.wait(DRAIN_SLICE),
                Phase::Reading | Phase::Grace => self.read(&mut input, framer.as_mut()),
                Phase::Sweep => self.sweep(&mut input, framer.as_mut()),
                Phase::Close => self.close_input(&mut input, framer.as_mut()),
                Phase::Drain | Phase::Done if self.transaction_open() => {
                    if let Some(at) = self.settle(Input::Over, &mut input) {
                        self.rewind(at, &mut input, &mut framer);
                    }
                }
                Phase::Drain => self.out.sink.wait(DRAIN_SLICE),
                Phase::Purge => self.purge(),
                Phase::Done => break,
            }
            self.sync();
        }
        self.finish()
    }

    /// What ends a record of the format (between two file operands, one is added if the
    /// first lacks it).
    fn record_end(&self) -> &[u8] {
        match self.s.format {
            Format::Lines => &self.s.delimiter,
            Format::Json | Format::Ndjson | Format::Envelope => b"\n",
        }
    }

    /// The format's framer, capped at `--max-record-size` so no record grows the read buffer
    /// past it.
    fn framer(&self) -> Box<dyn Framer> {
        let limit = usize::try_from(self.s.max_record_size).unwrap_or(usize::MAX);
        match self.s.format {
            Format::Json => Box::new(Capped::new(JsonFramer::new(), limit, b"\n")),
            Format::Lines => Box::new(Capped::new(
                LinesFramer::new(&self.s.delimiter),
                limit,
                &self.s.delimiter,
            )),
            Format::Ndjson | Format::Envelope => {
                Box::new(Capped::new(LinesFramer::new(b"\n"), limit, b"\n"))
            }
        }
    }

    /// Reads one block (waiting at most a tick) and handles the records in it.
    fn read(&mut self, input: &mut BlockReader, framer: &mut dyn Framer) {
        match input.fill(TICK) {
            // The poll waits on stdin alone: delivery reports that came meanwhile are served
            // now, so counters, statistics and failed records do not wait for more input.
            Ok(Fill::Idle) => return self.out.sink.wait(Duration::ZERO),
            Ok(Fill::Data | Fill::Eof) => {}
            Err(e) => return self.input_failed(e),
        }
        self.log_input(input);
        self.out.sink.stamp_reads(crate::failed::now_ms());
        self.handle_pieces(input, framer, Input::GoesOn);
        self.out.sink.wait(Duration::ZERO);
        if input.at_eof() && input.window().is_empty() {
            self.out.life.input_ended(Instant::now());
        } else if input.writer_trickles() && !self.delivery.confirms() {
            // Let the pipe gather a few hundred records: they wait less than linger.ms would
            // make them wait anyway, and kpipe and its writer (syslog-ng writes each message on
            // its own) stop waking each other for every record. (Under --confirm nothing
            // gathers: rsyslog waits for each answer before it writes the next.)
            std::thread::sleep(GATHER);
        }
    }

    /// When the grace period after a stop signal ends, takes in what the pipe already holds, so
    /// nothing the writer counts as written is left behind: each record still goes to Kafka if
    /// there is room, else straight to the spool or dead-letter file.
    fn sweep(&mut self, input: &mut BlockReader, framer: &mut dyn Framer) {
        // While the log is resent, what the pipe holds is kept in the log for the next run.
        self.drain_input(input);
        let until = Instant::now() + SWEEP_LIMIT;
        while input.is_stream() && !input.at_eof() && Instant::now() < until {
            match input.fill(Duration::ZERO) {
                Ok(Fill::Data | Fill::Eof) => {}
                Ok(Fill::Idle) => break,
                Err(e) => return self.input_failed(e),
            }
            self.log_input(input);
            if !self.handle_pieces(input, framer, Input::GoesOn) {
                break;
            }
        }
        self.close_input(input, framer);
    }

    /// Ends reading. Bytes read but not yet a whole record (the writer stopped mid-record) are
    /// still a record: it goes out, or to the spool, rather than vanish.
    fn close_input(&mut self, input: &mut BlockReader, framer: &mut dyn Framer) {
        if self.out.life.keeps_last_piece() {
            self.handle_pieces(input, framer, Input::Over);
        }
        self.out.life.input_ended(Instant::now());
    }

    fn input_failed(&mut self, e: std::io::Error) {
        let what = match self.s.inputs.is_empty() {
            true => "standard input",
            false => "the input",
        };
        self.io_error = Some(format!("reading {what}: {e}"));
        self.out.life.halt(Halt::InputFailed);
    }

    /// Handles every whole piece in the window (and the rest, once the input is `Over`). Returns
    /// false when reading must end before the next piece.
    fn handle_pieces(
        &mut self,
        input: &mut BlockReader,
        framer: &mut dyn Framer,
        input_is: Input,
    ) -> bool {
        let at_end = input_is == Input::Over;
        while let Some(piece) = framer.next_piece(input.window(), at_end || input.at_eof()) {
            let len = piece.len();
            let offset = input.offset();
            let at = self.position(input, offset);
            let bytes = &input.window()[..len];
            if matches!(piece, Piece::Skip(_) | Piece::Empty(_) | Piece::Tail(_))
                || self.s.format == Format::Json
            {
                self.lines += memchr::memchr_iter(b'\n', bytes).count() as u64;
            }
            if let Piece::Empty(_) = piece {
                bump(&self.out.ledger.counters.empty);
            }
            let end = offset + len as u64;
            match self.delivery.withheld(end) {
                Some(why) if !matches!(piece, Piece::Skip(_) | Piece::Empty(_)) => {
                    self.withhold(bytes, offset, at, &why);
                }
                _ => self.handle(piece, bytes, offset, at),
            }
            input.consume(len);
            self.delivery.handled_to(input.offset(), self.lines);
            // What is already read is handled even after a second signal: it goes to the spool.
            self.out.observe_signals();
            if !at_end && self.out.life.must_close_input() {
                self.follow_log(input);
                return false;
            }
        }
        self.follow_log(input);
        true
    }

    /// Where the piece at stream offset `offset` starts, for reports: in its file, when files
    /// were named (its lines counted from the first piece of it handled).
    fn position(&mut self, input: &BlockReader, offset: u64) -> Position {
        let Some(source) = input.source_at(offset) else {
            return Position {
                line: self.lines + 1,
                offset,
                file: None,
            };
        };
        if source.index != self.source.0 {
            self.source = (source.index, self.lines);
        }
        Position {
            line: self.lines - self.source.1 + 1,
            offset: offset - source.start,
            file: Some(source.name),
        }
    }

    /// Decides about one piece (at stream offset `offset`) and acts on the decision.
    fn handle(&mut self, piece: Piece, bytes: &[u8], offset: u64, at: Position) {
        let decision = decide(
            piece,
            bytes,
            at,
            !self.seen_malformed,
            &self.policy,
            &mut self.router,
        );
        if decision == Decision::Skip {
            return;
        }
        self.count_read(bytes);
        let malformed = decision.malformed();
        self.seen_malformed |= malformed;
        // Read again from the log after an abort: said, counted and failed in the first pass.
        let again = self.delivery.judged(offset);
        if let Some(reason) = decision.report(&self.policy).filter(|_| !again) {
            self.out.reporter.report(reason);
        }
        match decision {
            Decision::Skip => {}
            Decision::Fail(_) | Decision::Drop(_) if again => {}
            Decision::Send => {
                let rec = self.router.record(bytes);
                let origin = Origin::stdin(rec.partition).with_timestamp(rec.timestamp);
                self.delivery.send(&mut self.out, &rec, origin);
            }
            Decision::Restamp(reason) => {
                if !again {
                    bump(&self.out.ledger.counters.malformed_sent);
                }
                let text = reason.to_string();
                let rec = self.router.record(bytes);
                let mut headers = rec.headers.clone();
                headers.push((crate::route::ERROR_HEADER, Some(text.as_bytes())));
                let rec = Record {
                    headers,
                    timestamp: None,
                    ..rec
                };
                let origin = Origin::stdin(rec.partition);
                self.delivery.send(&mut self.out, &rec, origin);
            }
            Decision::SendAsString(reason) => {
                if !again {
                    bump(&self.out.ledger.counters.malformed_sent);
                }
                let text = reason.to_string();
                match self.router.fallback(bytes, &text) {
                    Some(rec) => {
                        let origin = Origin::stdin(rec.partition);
                        self.delivery.send(&mut self.out, &rec, origin);
                    }
                    None if again => {}
                    None => self.fail_input(bytes, &reason),
                }
            }
            Decision::Fail(reason) => {
                if malformed {
                    bump(&self.out.ledger.counters.malformed_failed);
                }
                self.fail_input(bytes, &reason);
            }
            Decision::Drop(_) => bump(&self.out.ledger.counters.malformed_dropped),
            Decision::Stop(reason) => {
                if self.out.life.halted().is_none() {
                    bump(&self.out.ledger.counters.malformed_dropped);
                    say!("kpipe: {reason}; stopping as --on-error exit asks");
                }
                self.out.life.halt(Halt::BadInput);
            }
        }
    }

    /// Keeps a record that must not be sent as failed: input the log could not take (it would
    /// not survive a kill, and a record only partly logged would arrive cut), and the piece of
    /// a record the last run left cut short. Read again after an abort, it was kept already.
    fn withhold(&mut self, bytes: &[u8], offset: u64, at: Position, why: &str) {
        self.count_read(bytes);
        self.delivery.cut_log_at(offset);
        if self.delivery.judged(offset) {
            return;
        }
        let reason = Reason::Unwritten(format!("{at}: {why}"));
        self.fail_input(bytes, &reason);
    }

    /// Counts one record read.
    fn count_read(&self, bytes: &[u8]) {
        let c = &self.out.ledger.counters;
        bump(&c.read);
        c.bytes
            .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Puts input that cannot be sent with the failures, as its raw bytes.
    fn fail_input(&mut self, bytes: &[u8], reason: &Reason) {
        let text = reason.to_string();
        let rec = match self.router.fallback(bytes, &text) {
            Some(rec) => Record {
                partition: None,
                ..rec
            },
            None => Record {
                value: Some(bytes),
                ..Record::default()
            },
        };
        self.out
            .ledger
            .failed(Origin::stdin(None), &rec, reason, Stored::No);
    }

    /// Between blocks: signals, reports, spool files other runs left, and the transaction
    /// (returns where to resend from when it was aborted).
    fn tick(&mut self, input: &mut BlockReader) -> Option<u64> {
        self.out.tick();
        self.drain_input(input);
        if self.spool.is_some()
            && self.out.life.phase(Instant::now(), 1) == Phase::Reading
            && self.last_rescan.elapsed() >= replay::RESCAN
        {
            self.last_rescan = Instant::now();
            self.replay_spool();
        }
        self.settle(Input::GoesOn, input)
    }

    fn sync(&mut self) {
        if let Err(e) = self.out.ledger.sync() {
            self.io_error.get_or_insert_with(|| format!("{e:#}"));
        }
    }

    /// Fails what is still out (each record goes to the spool, dead-letter file or lost count)
    /// and waits, bounded, for the reports that say so.
    fn purge(&mut self) {
        self.out.abandon_retries();
        self.out.sink.purge();
        for _ in 0..PURGE_SLICES {
            self.out.sink.wait(DRAIN_SLICE);
            if self.out.sink.in_flight() == 0 {
                break;
            }
        }
        self.out.life.purged();
    }

    /// Closes the files, then turns what became of every record into the exit status.
    fn finish(mut self) -> Status {
        self.out.reports.finish();
        self.out.reporter.finish();
        self.out.sink.wait(Duration::ZERO);
        self.sync();
        if let Err(e) = self.out.ledger.close() {
            self.io_error.get_or_insert_with(|| format!("{e:#}"));
        }
        if let Some(e) = self.out.sink.output_error() {
            self.io_error.get_or_insert_with(|| e.to_string());
        }
        let in_flight = self.out.sink.in_flight();
        self.out.reports.at_exit(&self.out.ledger, in_flight);
        let ledger = &self.out.ledger;
        let tally = ledger.counters.snapshot();
        let last_error = ledger.last_error();
        let write_error = ledger.write_error();
        let (spool, dead_letter) = ledger.outlet_names();
        let fatal = self.out.fatal.as_deref();
        let unreachable = needs_reachability(&tally, fatal.is_some()) && !self.out.sink.reachable();
        let outcome = conclude(&Facts {
            tally,
            bad_input: self.out.life.halted() == Some(Halt::BadInput),
            io_error: self.io_error.as_deref(),
            fatal,
            write_error: write_error.as_deref(),
            unreachable,
            refused: self
                .out
                .refused
                .as_ref()
                .map(|(r, text)| (*r, text.as_str())),
            refusal_said: !self.s.quiet,
            last_error: last_error.as_ref(),
            spool: spool.as_deref(),
            dead_letter: dead_letter.as_deref(),
            brokers: &self.s.brokers,
            all_or_nothing: self.delivery.all_or_nothing(),
            waiting: self.delivery.waiting(),
        });
        for line in &outcome.lines {
            say!("{line}");
        }
        if !self.s.quiet {
            say!("{}", tally.summary(self.out.reports.elapsed()));
        }
        self.out.sink.close();
        outcome.status
    }
}
