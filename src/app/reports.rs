//! What kpipe tells while it runs: rate-limited reports of bad records, `--stats` lines, the
//! progress line, and the answers to SIGHUP and SIGUSR1.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::failed::Ledger;
use crate::progress::Progress;
use crate::say;
use crate::signals::Signals;
use crate::stats::Rate;

/// Shows at most `BURST` reports a second and counts the rest, so garbage cannot flood stderr.
pub struct Reporter {
    shown: u64,
    suppressed: u64,
    window_start: Instant,
}

impl Reporter {
    const BURST: u64 = 10;

    /// A reporter whose first window starts at `now`.
    pub fn new(now: Instant) -> Reporter {
        Reporter {
            shown: 0,
            suppressed: 0,
            window_start: now,
        }
    }

    /// Whether a report at `now` is shown; the count of those held back is returned when a
    /// window ends.
    pub fn admit(&mut self, now: Instant) -> (bool, Option<u64>) {
        let mut held_back = None;
        if now.saturating_duration_since(self.window_start) >= Duration::from_secs(1) {
            held_back = (self.suppressed > 0).then_some(self.suppressed);
            self.window_start = now;
            self.shown = 0;
            self.suppressed = 0;
        }
        if self.shown < Self::BURST {
            self.shown += 1;
            (true, held_back)
        } else {
            self.suppressed += 1;
            (false, held_back)
        }
    }

    /// Shows `text` unless too many came this second.
    pub fn report(&mut self, text: &dyn std::fmt::Display) {
        let (show, held_back) = self.admit(Instant::now());
        if let Some(n) = held_back {
            say!("kpipe: {n} more malformed records not shown");
        }
        if show {
            say!("kpipe: {text}");
        }
    }

    /// Says how many reports were held back since the last window.
    pub fn finish(&mut self) {
        if self.suppressed > 0 {
            say!(
                "kpipe: {} more malformed records not shown",
                self.suppressed
            );
            self.suppressed = 0;
        }
    }
}

/// Statistics lines, the progress line, and the signals that ask for reports.
pub struct Reports {
    progress: Progress,
    stats_out: Option<Box<dyn Write>>,
    /// `--metrics-file`, written with each `--stats` line.
    metrics_file: Option<PathBuf>,
    interval: Duration,
    /// When the `--stats` line and the `--metrics-file` were last written.
    last_written: Instant,
    stats_rate: Rate,
    progress_rate: Rate,
    started: Instant,
}

impl Reports {
    /// Starts the progress line (if wanted and on a terminal) and the statistics clock.
    pub fn new(
        progress: bool,
        stats_out: Option<Box<dyn Write>>,
        metrics_file: Option<PathBuf>,
        interval: Duration,
    ) -> Reports {
        let now = Instant::now();
        Reports {
            progress: Progress::start(progress),
            stats_out,
            metrics_file,
            interval,
            last_written: now,
            stats_rate: Rate::new(0, now, Duration::ZERO),
            progress_rate: Rate::new(0, now, Duration::from_millis(500)),
            started: now,
        }
    }

    /// Serves signals, writes a statistics line when one is due, updates the progress line.
    pub fn periodic(&mut self, ledger: &Ledger, signals: &Signals, in_flight: i64) {
        if signals.take_hup() {
            if let Err(e) = ledger.reopen_dead_letter() {
                say!("kpipe: {e:#}");
            }
        }
        if signals.take_usr1() {
            say!(
                "{}",
                ledger.counters.snapshot().summary(self.started.elapsed())
            );
        }
        ledger.counters.in_flight.store(in_flight, Relaxed);
        if self.last_written.elapsed() >= self.interval {
            self.last_written = Instant::now();
            self.write_stats(ledger, Line::Periodic);
            self.write_metrics(ledger);
        }
        if self.progress.shown() {
            let t = ledger.counters.snapshot();
            let rate = self.progress_rate.sample(t.delivered, Instant::now());
            self.progress
                .update(t.bytes, t.read, t.delivered, in_flight, rate);
        }
    }

    /// Writes the last `--stats` line and the `--metrics-file` with the counts at exit.
    pub fn at_exit(&mut self, ledger: &Ledger, in_flight: i64) {
        ledger.counters.in_flight.store(in_flight, Relaxed);
        self.write_stats(ledger, Line::Last);
        self.write_metrics(ledger);
    }

    /// Writes one `--stats` line now; a stats file that fails is given up.
    fn write_stats(&mut self, ledger: &Ledger, which: Line) {
        let Some(out) = self.stats_out.as_mut() else {
            return;
        };
        let now = Instant::now();
        let c = &ledger.counters;
        let delivered = c.delivered.load(Relaxed);
        let elapsed = self.started.elapsed();
        // A periodic line's rate is since the line before; the last line's is the whole run's.
        let rate = match which {
            Line::Periodic => self.stats_rate.sample(delivered, now),
            Line::Last => delivered as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
        };
        let line = c.json_line(elapsed, rate, which == Line::Last);
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            self.stats_out = None;
        }
    }

    /// Writes the `--metrics-file` now; one that fails is said once and given up.
    fn write_metrics(&mut self, ledger: &Ledger) {
        let Some(path) = &self.metrics_file else {
            return;
        };
        let body = crate::metrics::render(&crate::metrics::Sample::of(ledger));
        if let Err(e) = crate::metrics::write_file(path, &body) {
            say!("kpipe: {e:#}; no more metrics are written there");
            self.metrics_file = None;
        }
    }

    /// Removes the progress line before the summary.
    pub fn finish(&self) {
        self.progress.finish();
    }

    /// How long the run has taken.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Which `--stats` line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// One every `--stats-interval`.
    Periodic,
    /// The one at exit.
    Last,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_reports_a_second_then_a_count() {
        let t0 = Instant::now();
        let mut r = Reporter::new(t0);
        for _ in 0..10 {
            assert_eq!(r.admit(t0), (true, None));
        }
        for _ in 0..5 {
            assert_eq!(r.admit(t0 + Duration::from_millis(500)), (false, None));
        }
        assert_eq!(r.admit(t0 + Duration::from_secs(1)), (true, Some(5)));
        assert_eq!(r.admit(t0 + Duration::from_secs(3)), (true, None));
    }
}
