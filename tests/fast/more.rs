//! More paths through librdkafka against the mock cluster: the spool across runs, errors on
//! the requests around a produce, many topics, framings, periodic statistics.

use std::io::Write;
use std::time::Duration;

use rdkafka::types::RDKafkaApiKey::{InitProducerId, Metadata, Produce};
use rdkafka::types::RDKafkaRespErr::*;

use crate::mock::*;

#[test]
fn spooled_records_keep_key_headers_and_partition_when_replayed() {
    let m = Mock::new(1);
    m.topic("meta", 4);
    let dir = temp_dir("fast-spool-meta");
    let spool = dir.join("spool");
    let spool_arg = spool.to_str().unwrap();
    m.down(1);
    let args = [
        "-t", "meta", "-k", "K", "-H", "h=H", "-p", "2", "--spool", spool_arg,
    ];
    let mut first = args.to_vec();
    first.extend(["--delivery-timeout", "1s"]);
    let run = m.kpipe(&first, numbered(20).as_bytes());
    assert!(run.stderr.contains("20 spooled"), "{}", run.stderr);
    m.up(1);
    let run = m.kpipe(&args, b"");
    assert_status(&run, Status::Ok);
    let landed = m.read("meta", 20);
    assert_each_once(&landed, 20);
    for l in &landed {
        assert_eq!((l.partition, l.key.as_deref()), (2, Some(&b"K"[..])));
        assert_eq!(l.header("h").as_deref(), Some("H"));
    }
}

#[test]
fn what_two_failed_runs_spooled_is_sent_once_by_the_next() {
    let m = Mock::new(1);
    m.topic("twice", 1);
    let dir = temp_dir("fast-spool-twice");
    let spool = dir.join("spool");
    let spool_arg = spool.to_str().unwrap();
    m.down(1);
    for part in 0..2 {
        let input: String = (part * 100..part * 100 + 100)
            .map(|i| format!("record {i:07}\n"))
            .collect();
        let run = m.kpipe(
            &[
                "-t",
                "twice",
                "--spool",
                spool_arg,
                "--delivery-timeout",
                "1s",
            ],
            input.as_bytes(),
        );
        // The second run sends the first one's spool first: that fails too, and is spooled again.
        let spooled = format!("{} spooled", 100 * (part + 1));
        assert!(run.stderr.contains(&spooled), "{}", run.stderr);
    }
    m.up(1);
    let run = m.kpipe(&["-t", "twice", "--spool", spool_arg], b"");
    m.assert_landed_once(&run, "twice", 200);
}

#[test]
fn errors_on_the_producer_id_and_metadata_requests_are_ridden_out() {
    let m = Mock::new(1);
    m.topic("init", 1);
    m.fail_next(
        InitProducerId,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        3,
    );
    m.fail_next(Metadata, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, 3);
    let run = m.kpipe(&["-t", "init"], numbered(500).as_bytes());
    m.assert_landed_once(&run, "init", 500);
}

#[test]
fn produce_errors_outlasting_the_delivery_timeout_spool_the_records() {
    let m = Mock::new(1);
    m.topic("stuck", 1);
    let dir = temp_dir("fast-stuck");
    let spool = dir.join("spool");
    m.fail_next(Produce, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, 10_000);
    let run = m.kpipe(
        &[
            "-t",
            "stuck",
            "--spool",
            spool.to_str().unwrap(),
            "--delivery-timeout",
            "2s",
        ],
        numbered(50).as_bytes(),
    );
    assert_status(&run, Status::TempFail);
    assert!(run.stderr.contains("50 spooled"), "{}", run.stderr);
}

#[test]
fn a_topic_refused_for_good_does_not_hold_up_another() {
    let m = Mock::new(1);
    m.topic("open", 1);
    m.topic("closed", 1);
    m.topic_error("closed", RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    let dl = dead_letter_file("fast-closed");
    let input: String = (0..200)
        .map(|i| {
            format!(
                "{{\"t\":\"{}\",\"n\":{i}}}\n",
                if i % 2 == 0 { "open" } else { "closed" }
            )
        })
        .collect();
    let run = m.kpipe(
        &[
            "-f",
            "ndjson",
            "-t",
            "${t}",
            "--dead-letter",
            dl.to_str().unwrap(),
        ],
        input.as_bytes(),
    );
    assert_status(&run, Status::TempFail);
    assert_eq!(m.read("open", 100).len(), 100);
    assert_eq!(read_lines(&dl).len(), 100, "{}", run.stderr);
}

#[test]
fn records_routed_to_fifty_topics_all_arrive() {
    let m = Mock::new(1);
    for t in 0..50 {
        m.topic(&format!("many.{t}"), 2);
    }
    let input: String = (0..5000)
        .map(|i| format!("{{\"t\":{},\"n\":{i}}}\n", i % 50))
        .collect();
    let run = m.kpipe(&["-f", "ndjson", "-t", "many.${t}"], input.as_bytes());
    assert_status(&run, Status::Ok);
    // Read side by side: each read lingers to catch duplicates.
    let brokers = m.bootstrap.as_str();
    std::thread::scope(|scope| {
        for t in 0..50 {
            scope.spawn(move || {
                let topic = format!("many.{t}");
                assert_eq!(read_topic(brokers, &topic, 100, WAIT).len(), 100, "{topic}");
            });
        }
    });
}

#[test]
fn json_values_spanning_lines_and_arrays_are_records() {
    let m = Mock::new(1);
    m.topic("values", 1);
    // As `jq .` prints them: a nested value opens on the line of its key.
    let input = "{\n  \"a\": {\n    \"b\": [\n      1\n    ]\n  }\n}\n[\n  1,\n  2\n]\n\"s\"  3\n";
    let run = m.kpipe(&["-f", "json", "-t", "values"], input.as_bytes());
    assert_status(&run, Status::Ok);
    let want = [r#"{"a":{"b":[1]}}"#, "[1,2]", "\"s\"", "3"];
    assert_eq!(values(&m.read("values", 4)), want);
}

#[test]
fn a_delimiter_of_several_bytes_splits_records() {
    let m = Mock::new(1);
    m.topic("multi", 1);
    let run = m.kpipe(&["-t", "multi", "-D", "||"], b"a|b||c\nd||e");
    assert_status(&run, Status::Ok);
    assert_eq!(values(&m.read("multi", 3)), ["a|b", "c\nd", "e"]);
}

#[test]
fn statistics_lines_come_every_interval_while_the_input_is_open() {
    let m = Mock::new(1);
    m.topic("periodic", 1);
    let dir = temp_dir("fast-periodic");
    let stats = dir.join("stats.ndjson");
    let mut child = spawn(&[
        "-b",
        &m.bootstrap,
        "-t",
        "periodic",
        "--stats",
        stats.to_str().unwrap(),
        "--stats-interval",
        "200ms",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(numbered(5).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    drop(stdin);
    let run = wait_with_limit(child, Duration::from_secs(30));
    assert_status(&run, Status::Ok);
    let lines = read_lines(&stats);
    assert!(lines.len() >= 4, "{} lines", lines.len());
    let idle: serde_json::Value = serde_json::from_str(&lines[lines.len() - 2]).unwrap();
    assert_eq!(
        idle["delivered"].as_u64(),
        Some(5),
        "counted while the input was idle"
    );
}

#[test]
fn exactly_once_rides_out_its_broker_going_down_and_up() {
    let m = Mock::new(1);
    m.topic("eo-outage", 1);
    m.offsets_topic();
    let dir = temp_dir("fast-eo-outage");
    let spool = dir.join("spool");
    let child = spawn(&[
        "-b",
        &m.bootstrap,
        "-t",
        "eo-outage",
        "--exactly-once",
        "--spool",
        spool.to_str().unwrap(),
    ]);
    let mut child = child;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(numbered(1000).as_bytes()).unwrap();
    assert_eq!(m.read("eo-outage", 1000).len(), 1000);
    m.down(1);
    stdin
        .write_all(&numbered(2000).as_bytes()[1000 * 15..])
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    m.up(1);
    drop(stdin);
    let run = wait_with_limit(child, Duration::from_secs(90));
    m.assert_landed_once(&run, "eo-outage", 2000);
}
