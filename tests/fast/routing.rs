//! Routing guard rails and the rest of a record's metadata, against the mock cluster.

use serde_json::json;

use crate::mock::*;

#[test]
fn a_missing_template_field_sends_the_record_to_the_fallback_topic() {
    let m = Mock::new(1);
    m.topic("logs.web", 1);
    m.topic("unrouted", 1);
    let run = m.kpipe(
        &[
            "-f",
            "ndjson",
            "-t",
            "logs.${PROGRAM}",
            "--fallback-topic",
            "unrouted",
        ],
        b"{\"PROGRAM\":\"web\"}\n{\"HOST\":\"h\"}\n",
    );
    assert_status(&run, Status::Ok);
    assert_eq!(m.read("logs.web", 1).len(), 1);
    assert_eq!(values(&m.read("unrouted", 1)), ["{\"HOST\":\"h\"}"]);
}

#[test]
fn a_topic_outside_topic_allow_goes_to_the_fallback_topic() {
    let m = Mock::new(1);
    m.topic("logs.web", 1);
    m.topic("unrouted", 1);
    let run = m.kpipe(
        &[
            "-f",
            "ndjson",
            "-t",
            "${t}",
            "--topic-allow",
            "logs[.][a-z]+",
            "--fallback-topic",
            "unrouted",
        ],
        b"{\"t\":\"logs.web\"}\n{\"t\":\"secrets\"}\n",
    );
    assert_status(&run, Status::Ok);
    assert_eq!(m.read("logs.web", 1).len(), 1);
    assert_eq!(values(&m.read("unrouted", 1)), ["{\"t\":\"secrets\"}"]);
}

#[test]
fn a_topic_name_kafka_would_refuse_is_dead_lettered_before_it_is_sent() {
    let m = Mock::new(1);
    m.topic("ok", 1);
    let dl = dead_letter_file("fast-bad-topic");
    let run = m.kpipe(
        &[
            "-f",
            "ndjson",
            "-t",
            "${t}",
            "--dead-letter",
            dl.to_str().unwrap(),
        ],
        b"{\"t\":\"ok\"}\n{\"t\":\"no spaces!\"}\n{\"t\":\"__consumer_offsets\"}\n",
    );
    assert_status(&run, Status::TempFail);
    assert_eq!(m.read("ok", 1).len(), 1);
    assert_eq!(read_lines(&dl).len(), 2, "{}", run.stderr);
}

#[test]
fn a_timestamp_field_sets_the_record_timestamp() {
    let m = Mock::new(1);
    m.topic("ts", 1);
    let input = "{\"DATE\":\"2026-01-02T03:04:05Z\"}\n{\"DATE\":1700000000000}\n";
    let run = m.kpipe(
        &["-f", "ndjson", "-t", "ts", "--timestamp-field", "DATE"],
        input.as_bytes(),
    );
    assert_status(&run, Status::Ok);
    let stamps: Vec<_> = m.read("ts", 2).iter().map(|l| l.timestamp).collect();
    assert_eq!(stamps, [Some(1_767_323_045_000), Some(1_700_000_000_000)]);
}

#[test]
fn a_partition_the_topic_lacks_is_dead_lettered() {
    let m = Mock::new(1);
    m.topic("two", 2);
    let dl = dead_letter_file("fast-partition");
    let lines = [
        json!({"topic": "two", "partition": 1, "value": "fine"}).to_string(),
        json!({"topic": "two", "partition": 9, "value": "nowhere"}).to_string(),
    ];
    let input = lines.join("\n") + "\n";
    let run = m.kpipe(
        &["-f", "envelope", "--dead-letter", dl.to_str().unwrap()],
        input.as_bytes(),
    );
    assert_status(&run, Status::TempFail);
    assert_eq!(values(&m.read("two", 1)), ["fine"]);
    assert!(read_lines(&dl)[0].contains("nowhere"));
}

#[test]
fn a_line_that_is_not_an_envelope_is_set_aside() {
    let m = Mock::new(1);
    m.topic("env", 1);
    let dl = dead_letter_file("fast-not-envelope");
    let input = format!("{}\nplain text\n", json!({"topic": "env", "value": "v"}));
    let run = m.kpipe(
        &["-f", "envelope", "--dead-letter", dl.to_str().unwrap()],
        input.as_bytes(),
    );
    assert_eq!(values(&m.read("env", 1)), ["v"]);
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);
    assert_ne!(run.code(), 0, "{}", run.stderr);
}

#[test]
fn a_record_larger_than_the_producer_takes_is_dead_lettered_at_once() {
    let m = Mock::new(1);
    m.topic("max", 1);
    let dl = dead_letter_file("fast-max");
    let input = format!("small\n{}\n", "y".repeat(5000));
    let run = m.kpipe(
        &[
            "-t",
            "max",
            "-X",
            "message.max.bytes=2000",
            "--dead-letter",
            dl.to_str().unwrap(),
        ],
        input.as_bytes(),
    );
    assert_status(&run, Status::TempFail);
    assert_eq!(values(&m.read("max", 1)), ["small"]);
    assert_eq!(read_lines(&dl).len(), 1);
}

#[test]
fn a_slow_broker_delays_but_keeps_order() {
    let m = Mock::new(1);
    m.topic("slow", 1);
    m.round_trip(1, std::time::Duration::from_millis(50));
    let run = m.kpipe(&["-t", "slow"], numbered(3000).as_bytes());
    assert_status(&run, Status::Ok);
    let want: Vec<String> = (0..3000).map(|i| format!("record {i:07}")).collect();
    assert_eq!(values(&m.read("slow", 3000)), want);
}

#[test]
fn a_small_max_buffered_still_delivers_everything() {
    let m = Mock::new(1);
    m.topic("small-buffer", 3);
    let run = m.kpipe(
        &["-t", "small-buffer", "--max-buffered", "64KiB"],
        numbered(20_000).as_bytes(),
    );
    m.assert_landed_once(&run, "small-buffer", 20_000);
}
