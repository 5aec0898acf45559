//! The run: replay the spool, read and frame stdin, route and send each record, then drain,
//! and turn what became of every record into the summary and the exit status.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cli::{Cli, Format, OnError};
use crate::config::Settings;
use crate::envelope;
use crate::exit::Status;
use crate::failed::{Kind, Ledger};
use crate::input::{BlockReader, Fill, Framer, JsonFramer, LinesFramer, Piece};
use crate::message::Origin;
use crate::progress::Progress;
use crate::route::Router;
use crate::signals::Signals;
use crate::sink::{DryRun, KafkaSink, Sink};
use crate::spool::SpoolDir;
use crate::stats::{bump, Rate};

/// How long a blocked read waits before the loop serves signals, reports and statistics.
const TICK: Duration = Duration::from_millis(100);
/// How long a trickling pipe is left to fill before the next read.
const GATHER: Duration = Duration::from_millis(1);
/// How long one wait for delivery reports lasts while draining (librdkafka's poll waits it out).
const DRAIN_SLICE: Duration = Duration::from_millis(5);
/// How often the spool directory is checked for files another run left.
const SPOOL_RESCAN: Duration = Duration::from_secs(5);

/// Runs kpipe with parsed arguments and returns its exit status.
pub fn run(cli: Cli) -> Status {
    let quiet = cli.quiet;
    let settings = match Settings::from_cli(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kpipe: {e:#}");
            return Status::Usage;
        }
    };
    match App::new(settings) {
        Ok(app) => app.run(),
        Err((status, e)) => {
            if !quiet || status != Status::Ok {
                eprintln!("kpipe: {e:#}");
            }
            status
        }
    }
}

/// Rate-limited reports of malformed records, so garbage cannot flood the terminal.
struct Reporter {
    shown: u64,
    suppressed: u64,
    window_start: Instant,
}

impl Reporter {
    const BURST: u64 = 10;

    fn report(&mut self, text: &str) {
        if self.window_start.elapsed() >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                eprintln!(
                    "kpipe: {} more malformed records not shown",
                    self.suppressed
                );
            }
            self.window_start = Instant::now();
            self.shown = 0;
            self.suppressed = 0;
        }
        if self.shown < Self::BURST {
            self.shown += 1;
            eprintln!("kpipe: {text}");
        } else {
            self.suppressed += 1;
        }
    }

    fn finish(&mut self) {
        if self.suppressed > 0 {
            eprintln!(
                "kpipe: {} more malformed records not shown",
                self.suppressed
            );
            self.suppressed = 0;
        }
    }
}

struct App {
    s: Settings,
    ledger: Arc<Ledger>,
    sink: Sink,
    signals: Signals,
    spool: Option<SpoolDir>,
    replay_router: Router,
    reports: Reports,
    reporter: Reporter,
    started: Instant,
    first_stop: Option<Instant>,
    /// Set by `--on-error exit`: stop reading, deliver what came before, exit 65.
    data_error: bool,
    fatal: Option<String>,
    io_error: Option<String>,
    /// Newlines consumed so far, for line numbers in reports.
    lines: u64,
    last_rescan: Instant,
}

type Failure = (Status, anyhow::Error);

fn fail(status: Status) -> impl FnOnce(anyhow::Error) -> Failure {
    move |e| (status, e)
}

impl App {
    fn new(s: Settings) -> Result<App, Failure> {
        let signals = Signals::install().map_err(fail(Status::Software))?;
        let (dead_letter, spool_dir) = if s.dry_run {
            (None, None)
        } else {
            (s.dead_letter.clone(), s.spool.clone())
        };
        let ledger = Arc::new(
            Ledger::new(dead_letter.as_deref(), spool_dir.as_deref())
                .map_err(fail(Status::IoErr))?,
        );
        let spool = spool_dir
            .as_deref()
            .map(SpoolDir::open)
            .transpose()
            .map_err(fail(Status::IoErr))?;
        if s.acks != crate::cli::Acks::All && !s.quiet {
            eprintln!("kpipe: --acks {:?} turns the idempotent producer off: retries may duplicate or reorder records", s.acks);
        }
        let sink = if s.dry_run {
            Sink::DryRun(DryRun::new(ledger.clone()))
        } else {
            Sink::Kafka(
                KafkaSink::new(&s.client, ledger.clone(), s.verbose, s.quiet)
                    .map_err(fail(Status::Config))?,
            )
        };
        let stats_out: Option<Box<dyn Write>> = match s.stats.as_deref() {
            None => None,
            Some("-") => Some(Box::new(std::io::stderr())),
            Some(path) => Some(Box::new(
                File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening the --stats file {path}"))
                    .map_err(fail(Status::IoErr))?,
            )),
        };
        let replay_router = Router::new(Format::Envelope, None, None, &[], None, None, None, None)
            .map_err(fail(Status::Software))?;
        Ok(App {
            reports: Reports {
                progress: Progress::start(s.progress),
                stats_out,
                interval: s.stats_interval,
                last_stats: Instant::now(),
                rate: Rate::new(0),
                started: Instant::now(),
            },
            s,
            ledger,
            sink,
            signals,
            spool,
            replay_router,
            reporter: Reporter {
                shown: 0,
                suppressed: 0,
                window_start: Instant::now(),
            },
            started: Instant::now(),
            first_stop: None,
            data_error: false,
            fatal: None,
            io_error: None,
            lines: 0,
            last_rescan: Instant::now(),
        })
    }

    fn run(mut self) -> Status {
        if let Err(e) = self.replay_spool() {
            eprintln!("kpipe: {e:#}");
        }
        self.read_stdin();
        self.drain();
        self.finish()
    }

    fn framer(&self) -> Box<dyn Framer> {
        match self.s.format {
            Format::Json => Box::new(JsonFramer::new()),
            Format::Lines => Box::new(LinesFramer::new(&self.s.delimiter)),
            Format::Ndjson | Format::Envelope => Box::new(LinesFramer::new(b"\n")),
        }
    }

    /// Whether reading must end now (a stop signal's grace period is over, or an error).
    fn stop_reading(&self) -> bool {
        self.data_error
            || self.fatal.is_some()
            || self.signals.stops() >= 2
            || self
                .first_stop
                .is_some_and(|t| t.elapsed() >= self.s.shutdown_timeout)
    }

    fn read_stdin(&mut self) {
        let mut input = BlockReader::stdin();
        let mut framer = self.framer();
        self.read_until_stop(&mut input, framer.as_mut());
        if self.data_error {
            return;
        }
        // Bytes read but not yet a whole record (the writer stopped mid-record) are still
        // records: they go out, or to the spool, as a last piece rather than vanish.
        self.handle_pieces(&mut input, framer.as_mut(), true);
    }

    /// Handles every whole piece in the window (`at_end`: the rest is a piece too). Returns
    /// false when reading must stop at once.
    fn handle_pieces(
        &mut self,
        input: &mut BlockReader,
        framer: &mut dyn Framer,
        at_end: bool,
    ) -> bool {
        while let Some(piece) = framer.next_piece(input.window(), at_end || input.at_eof()) {
            let len = piece.len();
            let offset = input.offset();
            self.handle(piece, &input.window()[..len], offset);
            input.consume(len);
            // What is already read is handled even after a second signal: it goes to the spool.
            if !at_end && (self.data_error || self.signals.stops() >= 2) {
                return false;
            }
        }
        true
    }

    fn read_until_stop(&mut self, input: &mut BlockReader, framer: &mut dyn Framer) {
        loop {
            self.tick();
            if self.stop_reading() {
                return self.sweep(input, framer);
            }
            match input.fill(TICK) {
                Ok(Fill::Idle) => continue,
                Ok(Fill::Data | Fill::Eof) => {}
                Err(e) => {
                    self.io_error = Some(format!("reading standard input: {e}"));
                    return;
                }
            }
            if !self.handle_pieces(input, framer, false) {
                return;
            }
            self.sink.poll(Duration::ZERO);
            self.sync();
            if input.at_eof() && input.window().is_empty() {
                return;
            }
            if input.writer_trickles() {
                // Let the pipe gather a few hundred records: they wait less than linger.ms
                // would make them wait anyway, and kpipe and its writer (syslog-ng writes each
                // message on its own) stop waking each other for every record.
                std::thread::sleep(GATHER);
            }
        }
    }

    /// When the grace period after a stop signal ends, takes in what the pipe already holds, so
    /// nothing the writer counts as written is left behind: each record still goes to Kafka if
    /// there is room, else straight to the spool or dead-letter file.
    fn sweep(&mut self, input: &mut BlockReader, framer: &mut dyn Framer) {
        if self.data_error
            || self.fatal.is_some()
            || self.signals.stops() >= 2
            || !input.is_stream()
        {
            return;
        }
        // A writer that never stops writing must not keep kpipe from exiting.
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            match input.fill(Duration::ZERO) {
                Ok(Fill::Data | Fill::Eof) => {}
                Ok(Fill::Idle) => return,
                Err(e) => {
                    self.io_error = Some(format!("reading standard input: {e}"));
                    return;
                }
            }
            if !self.handle_pieces(input, framer, false) || input.at_eof() {
                return;
            }
        }
    }

    fn handle(&mut self, piece: Piece, bytes: &[u8], offset: u64) {
        let line = self.lines + 1;
        if matches!(piece, Piece::Skip(_)) || self.s.format == Format::Json {
            self.lines += memchr::memchr_iter(b'\n', bytes).count() as u64;
        }
        let why = match piece {
            Piece::Skip(_) => return,
            Piece::Malformed(_, why) => Some(why.to_string()),
            Piece::Record(_) => None,
        };
        let c = &self.ledger.counters;
        bump(&c.read);
        c.bytes.fetch_add(bytes.len() as u64, Relaxed);
        if bytes.len() as u64 > self.s.max_record_size {
            let why = format!(
                "line {line}, byte {offset}: record of {} bytes is larger than --max-record-size {}",
                bytes.len(),
                self.s.max_record_size
            );
            if !self.s.quiet {
                self.reporter.report(&why);
            }
            return self.fail_raw(bytes, &why, Kind::Permanent);
        }
        if let Some(why) = why {
            return self.malformed(bytes, &why, line, offset);
        }

        match self.s.router.route(bytes) {
            Ok(out) => self.sink.send(out, &mut stop_check!(self)),
            Err(problem) => self.malformed(bytes, &problem.0, line, offset),
        }
    }

    fn malformed(&mut self, bytes: &[u8], why: &str, line: u64, offset: u64) {
        let looks_like_text = matches!(self.s.format, Format::Ndjson | Format::Json)
            && !matches!(
                bytes.iter().find(|b| !b.is_ascii_whitespace()),
                Some(b'{' | b'[' | b'"')
            );
        let hint = if looks_like_text && self.ledger.counters.malformed() == 0 {
            " (is the input JSON? for plain text use -f lines)"
        } else {
            ""
        };
        let text = format!("line {line}, byte {offset}: {why}{hint}");
        let mode = self.s.on_error;
        if mode.reports() && !self.s.quiet {
            self.reporter.report(&text);
        }
        let c = &self.ledger.counters;
        match mode {
            OnError::FallbackToString | OnError::SilentlyFallbackToString => {
                match self.s.router.fallback(bytes, &text) {
                    Some(out) => {
                        bump(&c.malformed_sent);
                        self.sink.send(out, &mut stop_check!(self));
                    }
                    None => {
                        bump(&c.malformed_failed);
                        self.fail_raw(
                            bytes,
                            &format!("{text}; no topic to send it to (give --fallback-topic)"),
                            Kind::Permanent,
                        );
                    }
                }
            }
            OnError::DropMessage | OnError::SilentlyDropMessage => bump(&c.malformed_dropped),
            OnError::Exit => {
                bump(&c.malformed_dropped);
                eprintln!("kpipe: {text}; stopping as --on-error exit asks");
                self.data_error = true;
            }
        }
    }

    /// Puts a record that cannot be sent with the failures (dead-letter file or lost count).
    fn fail_raw(&mut self, bytes: &[u8], why: &str, kind: Kind) {
        let (topic, headers) = match self.s.router.fallback(bytes, why) {
            Some(out) => (out.topic.to_string(), out.headers),
            None => (String::new(), None),
        };
        let headers = envelope::header_list(headers.as_ref());
        let view = envelope::Outgoing {
            topic: &topic,
            partition: None,
            key: None,
            value: Some(bytes),
            headers,
            timestamp: None,
        };
        self.ledger
            .failed(Origin::stdin(false), &view, why, kind, false);
    }

    fn replay_spool(&mut self) -> Result<()> {
        let Some(dir) = self.spool.as_mut() else {
            return Ok(());
        };
        let files = dir.claim_new()?;
        for path in files {
            let index = self
                .ledger
                .replay
                .lock()
                .map_err(|_| anyhow::anyhow!("replay lock poisoned"))?
                .add(path.clone());
            let file = File::open(&path)
                .with_context(|| format!("opening the spool file {}", path.display()))?;
            let mut reader = BlockReader::file(file);
            let mut framer = LinesFramer::new(b"\n");
            loop {
                let fill = reader
                    .fill(TICK)
                    .with_context(|| format!("reading the spool file {}", path.display()))?;
                while let Some(piece) = framer.next_piece(reader.window(), reader.at_eof()) {
                    let len = piece.len();
                    if let Piece::Record(_) = piece {
                        self.replay_one(index, &reader.window()[..len], &path);
                    }
                    reader.consume(len);
                }
                self.sink.poll(Duration::ZERO);
                if fill == Fill::Eof {
                    break;
                }
            }
            if let Ok(mut r) = self.ledger.replay.lock() {
                r.read_done(index);
            }
            if self.s.verbose > 0 {
                eprintln!("kpipe: sent the spool file {}", path.display());
            }
        }
        Ok(())
    }

    fn replay_one(&mut self, index: usize, line: &[u8], path: &std::path::Path) {
        match self.replay_router.route(line) {
            Ok(mut out) => {
                out.origin = Origin::spool(index, out.partition.is_some());
                if let Ok(mut r) = self.ledger.replay.lock() {
                    r.sent(index);
                }
                bump(&self.ledger.counters.replayed);

                self.sink.send(out, &mut stop_check!(self));
            }
            Err(p) => eprintln!(
                "kpipe: {}: a line is not an envelope ({}); left out",
                path.display(),
                p.0
            ),
        }
    }

    /// Between blocks: signals, fatal errors, statistics, progress, new spool files.
    fn tick(&mut self) {
        if self.signals.stops() >= 1 && self.first_stop.is_none() {
            self.first_stop = Some(Instant::now());
        }
        if self.fatal.is_none() {
            if let Some(f) = self.sink.fatal_error() {
                eprintln!("kpipe: the producer hit a fatal error: {f}; stopping, undelivered records go to the spool or dead-letter file");
                self.fatal = Some(f);
            }
        }
        let in_flight = self.sink.in_flight();
        if in_flight > 0
            && self.started.elapsed() < Duration::from_secs(1)
            && self.ledger.counters.delivered.load(Relaxed) == 0
        {
            if let Sink::Kafka(k) = &mut self.sink {
                k.nudge(self.s.router.any_topic());
            }
        }
        self.reports
            .periodic(&self.ledger, &self.signals, in_flight);
        if self.spool.is_some()
            && self.first_stop.is_none()
            && self.last_rescan.elapsed() >= SPOOL_RESCAN
        {
            self.last_rescan = Instant::now();
            if let Err(e) = self.replay_spool() {
                eprintln!("kpipe: {e:#}");
            }
        }
    }

    fn sync(&mut self) {
        if let Err(e) = self.ledger.sync() {
            self.io_error.get_or_insert_with(|| format!("{e:#}"));
        }
    }

    /// Waits for outstanding deliveries; past the deadline, fails them into the spool or
    /// dead-letter file.
    fn drain(&mut self) {
        let spool_deadline = self
            .s
            .spool
            .is_some()
            .then(|| Instant::now() + self.s.shutdown_timeout);
        loop {
            self.tick();
            if self.sink.in_flight() == 0 {
                break;
            }
            let deadline = self
                .first_stop
                .map(|t| t + self.s.shutdown_timeout)
                .or(spool_deadline);
            if self.signals.stops() >= 2
                || self.fatal.is_some()
                || deadline.is_some_and(|d| Instant::now() >= d)
            {
                self.sink.purge();
                for _ in 0..1000 {
                    self.sink.poll(DRAIN_SLICE);
                    if self.sink.in_flight() == 0 {
                        break;
                    }
                }
                break;
            }
            self.sink.poll(DRAIN_SLICE);
            self.sync();
        }
        self.sink.poll(Duration::ZERO);
        self.sync();
    }

    fn finish(mut self) -> Status {
        self.reports.progress.finish();
        self.reporter.finish();
        if let Err(e) = self.ledger.close() {
            self.io_error.get_or_insert_with(|| format!("{e:#}"));
        }
        self.reports
            .write_stats(&self.ledger, self.sink.in_flight());
        let c = &self.ledger.counters;
        let (spooled, dead, lost) = (
            c.spooled.load(Relaxed),
            c.dead_lettered.load(Relaxed),
            c.lost.load(Relaxed),
        );
        let undelivered = spooled + dead + lost;
        let mut status = Status::Ok;
        if self.data_error {
            status = status.merge(Status::DataErr);
        }
        if let Some(e) = &self.io_error {
            eprintln!("kpipe: {e}");
            status = status.merge(Status::IoErr);
        }
        if let Some(e) = self.ledger.write_error() {
            eprintln!("kpipe: writing a failed record: {e}; it is counted as lost");
        }
        if undelivered > 0 || self.fatal.is_some() {
            let unreachable = c.delivered.load(Relaxed) == 0
                && match &self.sink {
                    Sink::Kafka(k) => !k.reachable(),
                    Sink::DryRun(_) => false,
                };
            status = status.merge(if unreachable {
                Status::Unavailable
            } else {
                Status::TempFail
            });
            let (spool, dead_letter) = self.ledger.outlet_names();
            let mut whereabouts = Vec::new();
            if spooled > 0 {
                whereabouts.push(format!(
                    "{spooled} in the spool {} (the next run with --spool sends them)",
                    spool.map(|p| p.display().to_string()).unwrap_or_default()
                ));
            }
            if dead > 0 {
                whereabouts.push(format!(
                    "{dead} in the dead-letter file {} (replay: kpipe -f envelope < FILE)",
                    dead_letter
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ));
            }
            if lost > 0 {
                whereabouts.push(format!(
                    "{lost} lost (give --spool DIR or --dead-letter FILE to keep them)"
                ));
            }
            let why = self
                .ledger
                .last_error()
                .or_else(|| self.fatal.clone())
                .unwrap_or_else(|| "unknown".into());
            let hint = if unreachable {
                format!(
                    "; no broker of {} answers: check --brokers and that Kafka is up",
                    self.s.brokers
                )
            } else if why.contains("Unknown topic") {
                "; create the topic first, or let the broker create it (auto.create.topics.enable=true)".to_string()
            } else {
                String::new()
            };
            eprintln!(
                "kpipe: {undelivered} records not delivered: {}; last error: {why}{hint}",
                whereabouts.join(", ")
            );
        }
        if !self.s.quiet {
            eprintln!("{}", c.summary(self.started.elapsed()));
        }
        // Every record is settled and every file synced: tearing librdkafka down (joining its
        // threads, tens of milliseconds) would only delay the caller. The process exits next.
        if self.sink.in_flight() == 0 {
            std::mem::forget(self.sink);
        }
        status
    }
}

/// What kpipe reports while it runs: statistics lines, the progress line, and the answers to
/// SIGHUP and SIGUSR1. Kept apart so a send blocked on a full queue can serve it too.
struct Reports {
    progress: Progress,
    stats_out: Option<Box<dyn Write>>,
    interval: Duration,
    last_stats: Instant,
    rate: Rate,
    started: Instant,
}

impl Reports {
    /// Serves signals, writes a statistics line when one is due, updates the progress line.
    fn periodic(&mut self, ledger: &Ledger, signals: &Signals, in_flight: i64) {
        if signals.take_hup() {
            if let Err(e) = ledger.reopen_dead_letter() {
                eprintln!("kpipe: {e:#}");
            }
        }
        if signals.take_usr1() {
            eprintln!("{}", ledger.counters.summary(self.started.elapsed()));
        }
        if self.last_stats.elapsed() >= self.interval {
            self.write_stats(ledger, in_flight);
        }
        let c = &ledger.counters;
        self.progress.update(
            c.bytes.load(Relaxed),
            c.read.load(Relaxed),
            c.delivered.load(Relaxed),
            in_flight,
            0.0,
        );
    }

    fn write_stats(&mut self, ledger: &Ledger, in_flight: i64) {
        let Some(out) = self.stats_out.as_mut() else {
            return;
        };
        self.last_stats = Instant::now();
        let c = &ledger.counters;
        let rate = self.rate.sample(c.delivered.load(Relaxed));
        let line = c.json_line(self.started.elapsed(), in_flight, rate);
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            self.stats_out = None;
        }
    }
}

/// The `abort` check for `Sink::send`, built from the app's fields one by one (not through a
/// `&mut self` method) so it can live beside the router's borrow of the record.
macro_rules! stop_check {
    ($app:expr) => {
        StopCheck {
            signals: &$app.signals,
            first_stop: &mut $app.first_stop,
            grace: $app.s.shutdown_timeout,
            reports: &mut $app.reports,
            ledger: &$app.ledger,
        }
        .into_fn()
    };
}
use stop_check;

/// Decides, while a full queue blocks a send, whether to give up on the record in hand, and
/// keeps the reports going meanwhile.
struct StopCheck<'a> {
    signals: &'a Signals,
    first_stop: &'a mut Option<Instant>,
    grace: Duration,
    reports: &'a mut Reports,
    ledger: &'a Ledger,
}

impl<'a> StopCheck<'a> {
    fn into_fn(self) -> impl FnMut(i64) -> bool + 'a {
        move |in_flight| {
            self.reports.periodic(self.ledger, self.signals, in_flight);
            match self.signals.stops() {
                0 => false,
                1 => self.first_stop.get_or_insert_with(Instant::now).elapsed() >= self.grace,
                _ => true,
            }
        }
    }
}
