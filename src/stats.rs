//! Counters for every record's fate, shared by the reading loop and the delivery callback,
//! and their rendering as the exit summary and `--stats` JSON lines.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every count kpipe keeps. `read = delivered + failed + in flight + dropped`.
#[derive(Default)]
pub struct Counters {
    pub read: AtomicU64,
    pub bytes: AtomicU64,
    pub delivered: AtomicU64,
    pub spooled: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub lost: AtomicU64,
    /// Failed records the broker may have stored anyway (librdkafka's "possibly persisted").
    pub in_doubt: AtomicU64,
    pub malformed_sent: AtomicU64,
    pub malformed_dropped: AtomicU64,
    pub malformed_failed: AtomicU64,
    pub replayed: AtomicU64,
    /// Spool lines that were not envelopes, kept in a `.bad` file beside their spool file.
    pub set_aside: AtomicU64,
    /// Empty records (a delimiter alone), skipped: not read, not sent.
    pub empty: AtomicU64,
    /// Records handed to librdkafka and not settled, as the loop last saw them.
    pub in_flight: AtomicI64,
    /// From librdkafka's statistics, when `--stats` or `--metrics` is on.
    pub retried: AtomicU64,
    /// Bytes of records librdkafka holds (its statistics' `msg_size`).
    pub buffered_bytes: AtomicU64,
    pub broker_rtt_us: Mutex<BTreeMap<String, i64>>,
}

/// Adds one to a counter.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// The counters at one moment, as plain numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub read: u64,
    pub bytes: u64,
    pub delivered: u64,
    pub spooled: u64,
    pub dead_lettered: u64,
    pub lost: u64,
    pub in_doubt: u64,
    pub malformed_sent: u64,
    pub malformed_dropped: u64,
    pub malformed_failed: u64,
    pub replayed: u64,
    pub set_aside: u64,
    pub empty: u64,
    pub retried: u64,
}

impl Counters {
    /// Reads every counter.
    pub fn snapshot(&self) -> Tally {
        Tally {
            read: self.read.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            spooled: self.spooled.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            lost: self.lost.load(Relaxed),
            in_doubt: self.in_doubt.load(Relaxed),
            malformed_sent: self.malformed_sent.load(Relaxed),
            malformed_dropped: self.malformed_dropped.load(Relaxed),
            malformed_failed: self.malformed_failed.load(Relaxed),
            replayed: self.replayed.load(Relaxed),
            set_aside: self.set_aside.load(Relaxed),
            empty: self.empty.load(Relaxed),
            retried: self.retried.load(Relaxed),
        }
    }

    /// Each broker's average round trip in microseconds, by name, from librdkafka's last
    /// statistics.
    pub fn broker_rtts_us(&self) -> BTreeMap<String, i64> {
        self.broker_rtt_us
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// One `--stats` JSON line (its fields: `STATS_FIELDS`); `last` for the line at exit.
    pub fn json_line(&self, elapsed: Duration, rate: f64, last: bool) -> String {
        let t = self.snapshot();
        let rtt: BTreeMap<String, f64> = self
            .broker_rtts_us()
            .into_iter()
            .map(|(k, v)| (k, v as f64 / 1000.0))
            .collect();
        let in_flight = self.in_flight.load(Relaxed);
        serde_json::json!({
            "time": jiff::Timestamp::now().to_string(),
            "last": last,
            "elapsed_s": elapsed.as_secs_f64(),
            "read": t.read,
            "delivered": t.delivered,
            "failed": t.failed(),
            "spooled": t.spooled,
            "dead_lettered": t.dead_lettered,
            "lost": t.lost,
            "set_aside": t.set_aside,
            "empty_skipped": t.empty,
            "in_doubt": t.in_doubt,
            "retried": t.retried,
            "malformed": t.malformed(),
            "replayed": t.replayed,
            "bytes": t.bytes,
            "in_flight": in_flight,
            "records_per_s": rate,
            "broker_rtt_ms": rtt,
        })
        .to_string()
    }
}

/// Every field of a `--stats` line and what it means: the man page lists them, and a test
/// checks that a line has exactly these.
pub const STATS_FIELDS: &[(&str, &str)] = &[
    ("time", "when the line was written, RFC 3339 in UTC"),
    ("last", "true for the line written at exit"),
    ("elapsed_s", "seconds since kpipe started"),
    ("read", "records read from standard input"),
    ("replayed", "records read from the spool and sent again"),
    ("bytes", "bytes of standard input read"),
    ("delivered", "records the brokers acknowledged (in a transaction: committed)"),
    ("failed", "records not delivered: spooled + dead_lettered + lost + set_aside"),
    ("spooled", "records written to the spool, for the next run"),
    ("dead_lettered", "records written to the dead-letter file"),
    ("lost", "records neither delivered nor kept (no spool or dead-letter file, or a full disk)"),
    ("set_aside", "spool lines that are not envelopes, moved aside"),
    ("in_doubt", "failed records the brokers may have stored anyway (a request sent, never answered): sending them again may duplicate them"),
    ("empty_skipped", "empty records (a delimiter alone), skipped"),
    ("malformed", "malformed records, whatever --on-error made of them"),
    ("retried", "produce requests librdkafka sent again"),
    ("in_flight", "records handed to librdkafka and not settled yet"),
    ("records_per_s", "records delivered per second since the line before; on the last line, over the whole run"),
    ("broker_rtt_ms", "each broker's average round trip in milliseconds, by name"),
];

impl Tally {
    /// Records that did not reach Kafka, wherever they went.
    pub fn failed(&self) -> u64 {
        self.spooled + self.dead_lettered + self.lost + self.set_aside
    }

    /// Malformed records, whatever happened to them.
    pub fn malformed(&self) -> u64 {
        self.malformed_sent + self.malformed_dropped + self.malformed_failed
    }

    /// The one-line summary printed at exit.
    pub fn summary(&self, elapsed: Duration) -> String {
        let mut s = format!(
            "kpipe: {} read, {} delivered, {} failed in {}",
            self.read,
            self.delivered,
            self.failed(),
            format_secs(elapsed)
        );
        let detail: Vec<String> = [
            (self.spooled, "spooled"),
            (self.dead_lettered, "dead-lettered"),
            (self.lost, "lost"),
            (self.set_aside, "set aside as not envelopes"),
            (self.in_doubt, "possibly stored by the broker too"),
            (self.replayed, "replayed from the spool"),
            (self.empty, "empty skipped"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if !detail.is_empty() {
            s.push_str(&format!(" ({})", detail.join(", ")));
        }
        if self.malformed() > 0 {
            s.push_str(&format!(
                "; malformed: {} sent as strings, {} dropped, {} failed",
                self.malformed_sent, self.malformed_dropped, self.malformed_failed
            ));
        }
        s
    }
}

/// `1.2s`, or `350ms` below a second.
pub fn format_secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Records per second, measured over windows of at least a given length.
pub struct Rate {
    last: Instant,
    last_count: u64,
    window: Duration,
    rate: f64,
}

impl Rate {
    /// Starts measuring from `count` at `now`; `window` is the shortest span a rate covers.
    pub fn new(count: u64, now: Instant, window: Duration) -> Rate {
        Rate {
            last: now,
            last_count: count,
            window,
            rate: 0.0,
        }
    }

    /// The rate over the last whole window, given the count at `now`.
    pub fn sample(&mut self, count: u64, now: Instant) -> f64 {
        let span = now.saturating_duration_since(self.last);
        if span >= self.window && !span.is_zero() {
            self.rate = count.saturating_sub(self.last_count) as f64 / span.as_secs_f64();
            self.last = now;
            self.last_count = count;
        }
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_only_what_happened() {
        let t = Tally {
            read: 10,
            delivered: 10,
            ..Tally::default()
        };
        assert_eq!(
            t.summary(Duration::from_millis(350)),
            "kpipe: 10 read, 10 delivered, 0 failed in 350ms"
        );
        let t = Tally {
            read: 600,
            delivered: 100,
            spooled: 500,
            in_doubt: 3,
            malformed_dropped: 2,
            ..Tally::default()
        };
        assert_eq!(
            t.summary(Duration::from_millis(1300)),
            "kpipe: 600 read, 100 delivered, 500 failed in 1.3s (500 spooled, 3 possibly stored by the broker too); malformed: 0 sent as strings, 2 dropped, 0 failed"
        );
    }

    #[test]
    fn counters_snapshot_and_json() {
        let c = Counters::default();
        bump(&c.read);
        bump(&c.read);
        bump(&c.delivered);
        bump(&c.malformed_failed);
        c.in_flight.store(4, Relaxed);
        let t = c.snapshot();
        assert_eq!((t.read, t.delivered, t.malformed()), (2, 1, 1));
        let v: serde_json::Value =
            serde_json::from_str(&c.json_line(Duration::from_secs(2), 1.5, true)).unwrap();
        assert_eq!(v["read"], 2);
        assert_eq!(v["in_flight"], 4);
        assert_eq!(v["records_per_s"], 1.5);
        assert_eq!(v["last"], true);
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
    }

    #[test]
    fn every_field_of_a_stats_line_is_documented_and_every_documented_one_written() {
        let line = Counters::default().json_line(Duration::ZERO, 0.0, false);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let written: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut documented: Vec<&str> = STATS_FIELDS.iter().map(|(k, _)| *k).collect();
        documented.sort_unstable();
        assert_eq!(written, documented);
    }

    #[test]
    fn rate_holds_its_value_within_a_window() {
        let t0 = Instant::now();
        let mut r = Rate::new(0, t0, Duration::from_millis(500));
        assert_eq!(r.sample(100, t0 + Duration::from_millis(100)), 0.0);
        assert_eq!(r.sample(1000, t0 + Duration::from_secs(1)), 1000.0);
        assert_eq!(r.sample(1200, t0 + Duration::from_millis(1200)), 1000.0);
        assert_eq!(r.sample(4000, t0 + Duration::from_secs(2)), 3000.0);
    }
}
