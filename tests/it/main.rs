//! Integration tests: the built kpipe against real Apache Kafka brokers on 127.0.0.1.

mod util;

mod containment;
mod delivery;
mod docs;
mod failure_paths;
mod faults;
mod forwarding;
mod framing;
mod issuer;
mod metrics;
mod poison;
mod random_runs;
mod rsyslog;
mod sasl;
mod security;
mod syslog_ng;
mod transactions;
