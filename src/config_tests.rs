//! The settings and the librdkafka mapping, flag by flag.
use super::*;
use clap::Parser;

fn settings(args: &[&str]) -> Result<Settings> {
    let cli = Cli::try_parse_from(std::iter::once("kpipe").chain(args.iter().copied()))?;
    Settings::from_cli(cli).map(|(s, _)| s)
}

fn get<'a>(s: &'a Settings, key: &str) -> Option<&'a str> {
    s.client.get(key)
}

#[test]
fn defaults_are_acks_all_with_idempotence() {
    let s = settings(&["-t", "x"]).unwrap();
    assert_eq!(get(&s, "acks"), Some("all"));
    assert_eq!(get(&s, "enable.idempotence"), Some("true"));
    assert_eq!(get(&s, "bootstrap.servers"), Some("localhost:9092"));
    assert_eq!(get(&s, "message.timeout.ms"), Some("300000"));
    assert_eq!(get(&s, "queue.buffering.max.kbytes"), Some("65536"));
    assert_eq!(get(&s, "queue.buffering.max.messages"), Some("131072"));
    assert_eq!(get(&s, "statistics.interval.ms"), None);
    assert_eq!(s.max_record_size, DEFAULT_MESSAGE_MAX_BYTES);
}

#[test]
fn every_property_a_flag_sets_is_refused_under_x_naming_the_flag() {
    for (key, flag) in OWNED_BY_FLAGS {
        let e = settings(&["-t", "x", "-X", &format!("{key}=1")])
            .err()
            .unwrap_or_else(|| panic!("-X {key} accepted"))
            .to_string();
        assert!(e.contains(flag) && e.contains(key), "{key}: {e}");
    }
}

#[test]
fn the_table_names_every_property_the_flags_set() {
    let s = settings(&["-t", "x", "--stats", "-"]).unwrap();
    let defaults = ["client.id", "linger.ms", "batch.size", "partitioner"];
    let defaults = defaults
        .iter()
        .chain(&["log.connection.close", "enable.sparse.connections"]);
    for (key, _) in s.client.config_map().iter() {
        let owned = OWNED_BY_FLAGS.iter().any(|(k, _)| k == key);
        assert!(
            owned || defaults.clone().any(|d| d == key),
            "{key} is set but neither owned by a flag nor a kpipe default"
        );
    }
}

#[test]
fn idempotence_follows_acks() {
    let s = settings(&["-t", "x", "--acks", "1"]).unwrap();
    assert_eq!(get(&s, "acks"), Some("1"));
    assert_eq!(get(&s, "enable.idempotence"), Some("false"));
}

#[test]
fn other_properties_pass_through_and_may_override_defaults() {
    let s = settings(&[
        "-t",
        "x",
        "-X",
        "socket.nagle.disable=true",
        "-X",
        "linger.ms=20",
    ])
    .unwrap();
    assert_eq!(get(&s, "socket.nagle.disable"), Some("true"));
    assert_eq!(get(&s, "linger.ms"), Some("20"));
}

#[test]
fn compression_is_none_unless_chosen() {
    let s = settings(&["-t", "x"]).unwrap();
    assert_eq!(get(&s, "compression.type"), Some("none"));
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let s = settings(&["-t", "x", "-z", codec]).unwrap();
        assert_eq!(get(&s, "compression.type"), Some(codec));
    }
}

#[test]
fn batches_stay_under_half_a_broker_heap_region_where_the_broker_holds_them_whole() {
    for (codec, size) in [
        ("none", "480000"),
        ("snappy", "480000"),
        ("gzip", "1000000"),
        ("lz4", "1000000"),
        ("zstd", "1000000"),
    ] {
        let s = settings(&["-t", "x", "-z", codec]).unwrap();
        assert_eq!(get(&s, "batch.size"), Some(size), "-z {codec}");
    }
    let s = settings(&["-t", "x", "-X", "batch.size=2000000"]).unwrap();
    assert_eq!(get(&s, "batch.size"), Some("2000000"));
}

#[test]
fn a_property_without_a_value_is_refused() {
    let e = settings(&["-t", "x", "-X", "linger.ms"]).err().unwrap();
    assert!(e.to_string().contains("expected KEY=VALUE"));
}

#[test]
fn host_and_port_make_the_broker_list() {
    let s = settings(&["-t", "x", "--host", "k1", "--port", "9093"]).unwrap();
    assert_eq!(s.brokers, "k1:9093");
    let s = settings(&["-t", "x", "--host", "k1"]).unwrap();
    assert_eq!(s.brokers, "k1:9092");
    assert!(settings(&["-t", "x", "--port", "9093"]).is_err());
}

#[test]
fn a_topic_is_needed_except_for_envelopes() {
    let e = settings(&[]).err().unwrap();
    assert!(e.to_string().contains("no topic"));
    assert!(settings(&["-f", "envelope"]).is_ok());
}

#[test]
fn the_key_delimiter_is_for_lines_only() {
    assert!(settings(&["-t", "x", "-f", "ndjson", "-K", ":"]).is_err());
    assert!(settings(&["-t", "x", "-K", ":"]).is_ok());
}

#[test]
fn the_record_limit_follows_message_max_bytes_unless_given() {
    let s = settings(&["-t", "x", "-X", "message.max.bytes=5000"]).unwrap();
    assert_eq!(s.max_record_size, 5000);
    let s = settings(&[
        "-t",
        "x",
        "-X",
        "message.max.bytes=5000",
        "--max-record-size",
        "1KiB",
    ])
    .unwrap();
    assert_eq!(s.max_record_size, 1024);
}

#[test]
fn durations_map_to_milliseconds() {
    let s = settings(&[
        "-t",
        "x",
        "--delivery-timeout",
        "never",
        "--retry-backoff",
        "250ms",
    ])
    .unwrap();
    assert_eq!(get(&s, "message.timeout.ms"), Some("0"));
    assert_eq!(get(&s, "retry.backoff.ms"), Some("250"));
    let s = settings(&["-t", "x", "--stats", "-", "--stats-interval", "2s"]).unwrap();
    assert_eq!(get(&s, "statistics.interval.ms"), Some("2000"));
}

#[test]
fn the_default_limit_is_the_one_the_prose_names() {
    use crate::room::{BYTES_PER_RECORD, BYTES_PER_RECORD_MOST, MEMORY_LIMIT, PER_TOPIC};
    let s = settings(&["-t", "x"]).unwrap();
    let most = DEFAULT_MAX_BUFFERED / BYTES_PER_RECORD_MOST;
    assert_eq!(
        get(&s, "queue.buffering.max.messages"),
        Some(&*most.to_string())
    );
    let one_topic = DEFAULT_MAX_BUFFERED / BYTES_PER_RECORD;
    assert!(MEMORY_LIMIT.contains(&format!("({one_topic} records by")));
    assert!(MEMORY_LIMIT.contains(&format!("({most} by default)")));
    let per = format!("one record per {} KiB", BYTES_PER_RECORD / 1024);
    assert!(MEMORY_LIMIT.contains(&per));
    assert!(MEMORY_LIMIT.contains(&format!("record per {BYTES_PER_RECORD_MOST} B")));
    assert!(MEMORY_LIMIT.contains(&format!("room for {PER_TOPIC} records")));
    assert!(MEMORY_LIMIT.contains(&format!("default {}MiB", DEFAULT_MAX_BUFFERED >> 20)));
}

#[test]
fn the_queue_caps_follow_max_buffered() {
    let s = settings(&["-t", "x", "--max-buffered", "8MiB"]).unwrap();
    assert_eq!(get(&s, "queue.buffering.max.kbytes"), Some("8192"));
    assert_eq!(get(&s, "queue.buffering.max.messages"), Some("16384"));
    let s = settings(&["-t", "x", "--max-buffered", "1KiB"]).unwrap();
    assert_eq!(get(&s, "queue.buffering.max.messages"), Some("1000"));
}
