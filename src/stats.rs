//! Counters for every record's fate, shared by the reading loop and the delivery callback,
//! and their rendering as the exit summary and `--stats` JSON lines.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
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
    /// From librdkafka's statistics, when `--stats` is on.
    pub retried: AtomicU64,
    pub broker_rtt_us: Mutex<BTreeMap<String, i64>>,
}

/// Adds one to a counter.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Relaxed)
}

impl Counters {
    /// Records that did not reach Kafka, wherever they went.
    pub fn failed(&self) -> u64 {
        get(&self.spooled) + get(&self.dead_lettered) + get(&self.lost)
    }

    /// Malformed records, whatever happened to them.
    pub fn malformed(&self) -> u64 {
        get(&self.malformed_sent) + get(&self.malformed_dropped) + get(&self.malformed_failed)
    }

    /// The one-line summary printed at exit.
    pub fn summary(&self, elapsed: Duration) -> String {
        let mut s = format!(
            "kpipe: {} read, {} delivered, {} failed in {}",
            get(&self.read),
            get(&self.delivered),
            self.failed(),
            format_secs(elapsed)
        );
        let detail: Vec<String> = [
            (get(&self.spooled), "spooled"),
            (get(&self.dead_lettered), "dead-lettered"),
            (get(&self.lost), "lost"),
            (get(&self.in_doubt), "possibly stored by the broker too"),
            (get(&self.replayed), "replayed from the spool"),
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
                get(&self.malformed_sent),
                get(&self.malformed_dropped),
                get(&self.malformed_failed)
            ));
        }
        s
    }

    /// One `--stats` JSON line.
    pub fn json_line(&self, elapsed: Duration, in_flight: i64, rate: f64) -> String {
        let rtt: BTreeMap<String, f64> = self
            .broker_rtt_us
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), *v as f64 / 1000.0))
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({
            "elapsed_s": elapsed.as_secs_f64(),
            "read": get(&self.read),
            "delivered": get(&self.delivered),
            "failed": self.failed(),
            "spooled": get(&self.spooled),
            "dead_lettered": get(&self.dead_lettered),
            "lost": get(&self.lost),
            "in_doubt": get(&self.in_doubt),
            "retried": get(&self.retried),
            "malformed": self.malformed(),
            "replayed": get(&self.replayed),
            "bytes": get(&self.bytes),
            "in_flight": in_flight,
            "records_per_s": rate,
            "broker_rtt_ms": rtt,
        })
        .to_string()
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

/// Records per second between two samples.
pub struct Rate {
    last: Instant,
    last_count: u64,
}

impl Rate {
    /// Starts measuring from `count` now.
    pub fn new(count: u64) -> Rate {
        Rate {
            last: Instant::now(),
            last_count: count,
        }
    }

    /// The rate since the previous sample.
    pub fn sample(&mut self, count: u64) -> f64 {
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64().max(1e-9);
        let r = (count - self.last_count.min(count)) as f64 / secs;
        self.last = now;
        self.last_count = count;
        r
    }
}
