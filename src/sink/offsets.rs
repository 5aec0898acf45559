//! The offsets topic of `--exactly-once`: made if missing, and read at the start of a run for
//! the log position its id last committed.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::reason::{classify, Kind};

/// Creates the compacted offsets topic unless it exists: one partition, replicated as far as
/// the cluster allows (up to 3).
pub fn ensure_offsets_topic(config: &ClientConfig, topic: &str, wait: Duration) -> Result<()> {
    let admin: AdminClient<_> = plain(config)
        .create()
        .context("creating an admin client for the offsets topic")?;
    // Metadata of every topic, not of this one: asking for one may create it, uncompacted.
    let (brokers, exists) = admin
        .inner()
        .fetch_metadata(None, wait)
        .map(|m| {
            let exists = m
                .topics()
                .iter()
                .any(|t| t.name() == topic && t.error().is_none());
            (m.brokers().len(), exists)
        })
        .unwrap_or((1, false));
    if exists {
        return Ok(());
    }
    let replication = brokers.clamp(1, 3) as i32;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(replication))
        .set("cleanup.policy", "compact");
    let opts = AdminOptions::new().operation_timeout(Some(wait));
    let results = futures_executor::block_on(admin.create_topics([&new], &opts))
        .with_context(|| format!("creating the offsets topic {topic}"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => bail!("creating the offsets topic {topic}: {code}; create it (compacted) or give --offsets-topic"),
        }
    }
    Ok(())
}

/// The log position the last committed transaction of `id` recorded, if any. Call after
/// `init_transactions`, which settles that id's open transaction. One deadline, `wait` from
/// now, bounds the whole read: the high watermark and reading up to it.
pub fn committed_position(
    config: &ClientConfig,
    topic: &str,
    id: &str,
    wait: Duration,
) -> Result<Option<u64>> {
    let mut c = plain(config);
    c.set("group.id", "kpipe-offsets-reader")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true");
    let consumer: BaseConsumer = c.create().context("creating the offsets reader")?;
    let deadline = Instant::now() + wait;
    let high = high_watermark(&consumer, topic, deadline)?;
    if high <= 0 {
        return Ok(None);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let mut position = None;
    let mut last_error = None;
    loop {
        if Instant::now() > deadline {
            bail!(
                "reading the offsets topic {topic} took longer than {} ({}); try again",
                humantime::format_duration(wait),
                last_error
                    .as_deref()
                    .unwrap_or("a transaction on it stays open")
            );
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) if m.key() == Some(id.as_bytes()) => {
                position = m.payload().and_then(parse_position);
            }
            Some(Ok(_)) => {}
            Some(Err(KafkaError::PartitionEOF(_))) => {
                // Under read_committed the end is the last stable offset; a transaction of
                // another id may still hold it back from where this id's last commit lies.
                let at = consumer.position()?;
                let next = at
                    .elements_for_topic(topic)
                    .first()
                    .and_then(|e| e.offset().to_raw())
                    .unwrap_or(0);
                if next >= high {
                    return Ok(position);
                }
            }
            // A broker down, a leader moving: librdkafka retries; the deadline bounds it.
            Some(Err(e)) => last_error = Some(e.to_string()),
            None => {}
        }
    }
}

/// The end of the offsets topic's one partition. Asked again while the error could pass: a
/// leader elected a moment ago answers OffsetNotAvailable until its high watermark has caught
/// up, and a run started then would otherwise fail at once.
fn high_watermark(consumer: &BaseConsumer, topic: &str, deadline: Instant) -> Result<i64> {
    const AGAIN: Duration = Duration::from_millis(200);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match consumer.fetch_watermarks(topic, 0, left.max(AGAIN)) {
            Ok((_, high)) => return Ok(high),
            Err(e) if may_pass(e.rdkafka_error_code()) && Instant::now() + AGAIN < deadline => {
                std::thread::sleep(AGAIN);
            }
            Err(e) => return Err(e).with_context(|| format!("reading the offsets topic {topic}")),
        }
    }
}

/// Whether an error reading the offsets topic's end could pass. Beside what passes anywhere: a
/// topic made a moment ago (perhaps by another run) is unknown to a broker until the metadata
/// reaches it.
fn may_pass(code: Option<RDKafkaErrorCode>) -> bool {
    use RDKafkaErrorCode::{UnknownPartition, UnknownTopic, UnknownTopicOrPartition};
    classify(code) == Kind::Passing
        || matches!(
            code,
            Some(UnknownPartition | UnknownTopic | UnknownTopicOrPartition)
        )
}

/// What an `--exactly-once` commit records for its id: `{"position":N}`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Position {
    position: u64,
}

/// The value a commit writes for `position`.
pub(super) fn position_value(position: u64) -> Vec<u8> {
    serde_json::to_vec(&Position { position }).unwrap_or_default()
}

/// The position in a value kpipe wrote.
fn parse_position(value: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Position>(value)
        .ok()
        .map(|p| p.position)
}

/// librdkafka's producer-only properties, aliases included (`rdkafka_conf.c`, the `_RK_PRODUCER`
/// scope): a consumer or admin client warns about each one it is given.
const PRODUCER_ONLY: &[&str] = &[
    "acks",
    "batch.num.messages",
    "batch.size",
    "compression.codec",
    "compression.level",
    "compression.type",
    "delivery.report.only.error",
    "delivery.timeout.ms",
    "enable.gapless.guarantee",
    "enable.idempotence",
    "linger.ms",
    "message.send.max.retries",
    "message.timeout.ms",
    "partitioner",
    "queue.buffering.backpressure.threshold",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.messages",
    "queue.buffering.max.ms",
    "request.required.acks",
    "request.timeout.ms",
    "retries",
    "sticky.partitioning.linger.ms",
    "transaction.timeout.ms",
    "transactional.id",
];

/// The connection and security settings of a producer configuration, for other clients.
fn plain(config: &ClientConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in config.config_map().iter() {
        // The producer's retry pacing is kpipe's delivery tuning, not the other clients'.
        if !PRODUCER_ONLY.contains(k) && !k.starts_with("retry.backoff") {
            c.set(*k, *v);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_position_kpipe_writes() {
        assert_eq!(parse_position(br#"{"position":42}"#), Some(42));
        assert_eq!(parse_position(br#"{"position":-1}"#), None);
        assert_eq!(parse_position(b"junk"), None);
    }

    #[test]
    fn other_clients_get_the_connection_but_not_the_producer_settings() {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", "b:9092")
            .set("security.protocol", "ssl")
            .set("transactional.id", "x")
            .set("linger.ms", "5")
            .set("acks", "all")
            .set("delivery.timeout.ms", "1000")
            .set("request.required.acks", "1")
            .set("socket.timeout.ms", "5000");
        let p = plain(&c);
        assert_eq!(p.get("bootstrap.servers"), Some("b:9092"));
        assert_eq!(p.get("security.protocol"), Some("ssl"));
        assert_eq!(p.get("socket.timeout.ms"), Some("5000"));
        for k in [
            "transactional.id",
            "linger.ms",
            "acks",
            "delivery.timeout.ms",
            "request.required.acks",
        ] {
            assert_eq!(p.get(k), None, "{k}");
        }
    }
}
