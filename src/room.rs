//! How many records librdkafka may hold at once. Records to one topic need few: its partitions'
//! batches fill from the stream. Each further topic brings partitions that batch apart, and
//! librdkafka sends one request per partition, so with too few records each the brokers answer
//! many small requests and spend most of their time per request (measured in BENCHMARKS.md).

/// What `--max-buffered` bounds: the one text for `--help`, the man page and the README (a test
/// checks its numbers against the constants below).
pub const MEMORY_LIMIT: &str = "Memory is bounded by --max-buffered (default 64MiB): librdkafka \
holds at most that many record bytes, and at most one record per 2 KiB of it (32768 records by \
default) while records go to one topic. Each topic in use adds room for 1024 records, up to one \
record per 512 B (131072 by default): every partition batches its own records. While a limit is \
reached, kpipe stops reading stdin, so the backpressure reaches the writer (under --exactly-once \
stdin goes on into the log, on disk, where a SIGKILL cannot take it).";

/// Bytes of `--max-buffered` per record librdkafka may hold while records go to one topic.
pub const BYTES_PER_RECORD: u64 = 2048;

/// Bytes of `--max-buffered` per record librdkafka may hold however many topics are in use
/// (librdkafka's own limit, `queue.buffering.max.messages`).
pub const BYTES_PER_RECORD_MOST: u64 = 512;

/// Records each topic in use adds to the limit: about 340 for each partition of a topic of 3.
pub const PER_TOPIC: u64 = 1024;

/// Records handed to librdkafka against the limit for the topics in use.
#[derive(Debug)]
pub struct Room {
    /// The limit for one topic.
    base: u64,
    /// The limit for any number of topics.
    most: u64,
    /// Records librdkafka took; its delivery reports count the ones it is done with.
    sent: u64,
}

impl Room {
    /// The limits `--max-buffered` gives.
    pub fn new(max_buffered: u64) -> Room {
        Room {
            base: records(max_buffered, BYTES_PER_RECORD),
            most: most_records(max_buffered),
            sent: 0,
        }
    }

    /// Whether another record may go in, with `reported` of those sent reported on and records
    /// going to `topics` topics.
    pub fn has_room(&self, reported: u64, topics: usize) -> bool {
        self.sent.saturating_sub(reported) < limit(self.base, self.most, topics)
    }

    /// Counts a record librdkafka took.
    pub fn took(&mut self) {
        self.sent += 1;
    }
}

/// librdkafka's own limit on the records it holds, for `--max-buffered`.
pub fn most_records(max_buffered: u64) -> u64 {
    records(max_buffered, BYTES_PER_RECORD_MOST)
}

fn records(max_buffered: u64, per: u64) -> u64 {
    (max_buffered / per).clamp(1000, 1_000_000)
}

/// The limit for `topics` topics in use: `base`, raised by `PER_TOPIC` for each topic, at most
/// `most`.
pub fn limit(base: u64, most: u64, topics: usize) -> u64 {
    PER_TOPIC
        .saturating_mul(topics as u64)
        .clamp(base, most.max(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_topic_keeps_the_base() {
        assert_eq!(limit(32768, 131072, 0), 32768);
        assert_eq!(limit(32768, 131072, 1), 32768);
        assert_eq!(limit(32768, 131072, 32), 32768);
    }

    #[test]
    fn each_topic_adds_until_the_most() {
        assert_eq!(limit(32768, 131072, 33), 33 * 1024);
        assert_eq!(limit(32768, 131072, 100), 102400);
        assert_eq!(limit(32768, 131072, 128), 131072);
        assert_eq!(limit(32768, 131072, 4096), 131072);
        assert_eq!(limit(32768, 131072, usize::MAX), 131072);
    }

    #[test]
    fn the_most_never_undercuts_the_base() {
        assert_eq!(limit(1000, 1000, 100), 1000);
        assert_eq!(limit(2000, 1000, 100), 2000);
    }

    #[test]
    fn the_default_memory_gives_these_limits() {
        let r = Room::new(64 << 20);
        assert_eq!((r.base, r.most), (32768, 131072));
        let r = Room::new(1024);
        assert_eq!((r.base, r.most), (1000, 1000));
    }

    #[test]
    fn room_counts_what_is_not_reported() {
        let mut r = Room {
            base: 2048,
            most: 4096,
            sent: 0,
        };
        for _ in 0..2048 {
            assert!(r.has_room(0, 1));
            r.took();
        }
        assert!(!r.has_room(0, 1));
        assert!(r.has_room(1, 1), "a report makes room");
        assert!(r.has_room(0, 3), "a third topic adds room");
        for _ in 0..2048 {
            r.took();
        }
        assert!(!r.has_room(0, 3000), "never more than the most");
        assert!(r.has_room(5000, 1), "never fewer than none in flight");
    }
}
