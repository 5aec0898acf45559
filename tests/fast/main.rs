//! The fast tier: the kpipe binary against librdkafka's mock cluster, which runs inside this
//! test process and listens on loopback, with errors injected into its answers. No JVM and no
//! network: plain `cargo test` runs it. What depends on a real broker's own behaviour (ACLs,
//! TLS, timestamps, leader elections, syslog-ng and rsyslog) is proved against Apache Kafka in
//! `tests/it`, which `scripts/test` runs too.

#[path = "../it/util.rs"]
mod util;

mod assets;
mod mock;

mod cli;
mod delivery;
mod failures;
mod more;
mod operands;
mod routing;
mod signals;
mod transactions;
