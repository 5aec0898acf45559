//! A mock cluster for one test, and what the tests ask of it.

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

pub use crate::util::*;

/// How long a test waits for records it expects.
pub const WAIT: Duration = Duration::from_secs(20);

/// A cluster of mock brokers (ids 1, 2, ...), stopped when dropped.
pub struct Mock {
    cluster: MockCluster<'static, DefaultProducerContext>,
    pub bootstrap: String,
}

impl Mock {
    /// A cluster of `brokers` brokers.
    pub fn new(brokers: i32) -> Mock {
        let cluster = MockCluster::new(brokers).expect("a mock cluster");
        let bootstrap = cluster.bootstrap_servers();
        Mock { cluster, bootstrap }
    }

    /// Creates `topic` with `partitions` partitions, each on every broker.
    pub fn topic(&self, topic: &str, partitions: i32) {
        let replicas = 1;
        self.cluster
            .create_topic(topic, partitions, replicas)
            .expect("a mock topic");
    }

    /// Creates `--exactly-once`'s offsets topic, which kpipe would otherwise create with
    /// CreateTopics: the mock cluster does not answer that request.
    pub fn offsets_topic(&self) {
        self.topic("kpipe-offsets", 1);
    }

    /// The next `n` requests of `api` are answered with `error`.
    pub fn fail_next(&self, api: RDKafkaApiKey, error: RDKafkaRespErr, n: usize) {
        self.cluster.request_errors(api, &vec![error; n]);
    }

    /// Every answer about `topic` carries `error` (RD_KAFKA_RESP_ERR_NO_ERROR clears it).
    pub fn topic_error(&self, topic: &str, error: RDKafkaRespErr) {
        self.cluster
            .topic_error(topic, error)
            .expect("a topic error");
    }

    /// Every answer of `broker` takes `delay` longer.
    pub fn round_trip(&self, broker: i32, delay: Duration) {
        self.cluster
            .broker_round_trip_time(broker, delay)
            .expect("a round-trip time");
    }

    pub fn down(&self, broker: i32) {
        self.cluster.broker_down(broker).expect("broker down");
    }

    pub fn up(&self, broker: i32) {
        self.cluster.broker_up(broker).expect("broker up");
    }

    /// Runs kpipe against this cluster with `args`, standard input `stdin`.
    pub fn kpipe(&self, args: &[&str], stdin: &[u8]) -> Run {
        let mut all = vec!["-b", &self.bootstrap];
        all.extend_from_slice(args);
        kpipe(&all, stdin)
    }

    /// Asserts that `run` succeeded and that `topic` holds each of the `n` numbered records once.
    #[track_caller]
    pub fn assert_landed_once(&self, run: &Run, topic: &str, n: usize) {
        assert_status(run, Status::Ok);
        assert_each_once(&self.read(topic, n), n);
    }

    /// What `topic` holds once `expect` records arrived (or `WAIT` passed).
    pub fn read(&self, topic: &str, expect: usize) -> Vec<Landed> {
        read_topic(&self.bootstrap, topic, expect, WAIT)
    }
}

/// A dead-letter file's path in a fresh directory named after `name`.
pub fn dead_letter_file(name: &str) -> std::path::PathBuf {
    temp_dir(name).join("dl.ndjson")
}

/// `n` numbered lines: "record 0000000\n" ...
pub fn numbered(n: usize) -> String {
    (0..n).map(|i| format!("record {i:07}\n")).collect()
}

/// The values of `landed`, as strings, in the order read.
pub fn values(landed: &[Landed]) -> Vec<String> {
    landed.iter().map(Landed::value_str).collect()
}

/// Asserts that `landed` holds each of the `n` numbered records exactly once.
#[track_caller]
pub fn assert_each_once(landed: &[Landed], n: usize) {
    let mut got = values(landed);
    got.sort();
    let want: Vec<String> = (0..n).map(|i| format!("record {i:07}")).collect();
    assert_eq!(got.len(), n, "records landed");
    assert_eq!(got, want, "each record once");
}
