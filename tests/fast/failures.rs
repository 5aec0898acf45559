//! Failures the mock cluster injects: retriable errors, refusals for good, brokers down; and
//! malformed input. Every record ends delivered once, spooled, dead-lettered or counted.

use std::time::Duration;

use rdkafka::types::RDKafkaApiKey::Produce;
use rdkafka::types::RDKafkaRespErr::*;

use crate::mock::*;

#[test]
fn retriable_produce_errors_deliver_each_record_once() {
    let m = Mock::new(1);
    m.topic("retry", 1);
    for e in [
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
    ] {
        m.fail_next(Produce, e, 3);
    }
    let run = m.kpipe(&["-t", "retry"], numbered(3000).as_bytes());
    m.assert_landed_once(&run, "retry", 3000);
}

#[test]
fn a_broker_down_for_a_while_delays_but_loses_and_duplicates_nothing() {
    let m = Mock::new(1);
    m.topic("outage", 1);
    m.down(1);
    let child = spawn(&["-b", &m.bootstrap, "-t", "outage", "-q"]);
    let input = numbered(2000);
    let feeder = std::thread::spawn(move || run_with_input(child, input.as_bytes()));
    std::thread::sleep(Duration::from_secs(2));
    m.up(1);
    let run = feeder.join().unwrap();
    m.assert_landed_once(&run, "outage", 2000);
}

#[test]
fn records_refused_for_good_go_to_the_dead_letter_file_and_the_rest_land() {
    let m = Mock::new(1);
    m.topic("refused", 1);
    let dl = dead_letter_file("fast-refused");
    m.fail_next(Produce, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 1);
    let run = m.kpipe(
        &["-t", "refused", "--dead-letter", dl.to_str().unwrap()],
        numbered(1000).as_bytes(),
    );
    assert_status(&run, Status::TempFail);
    let kept = read_lines(&dl);
    let landed = m.read("refused", 1000 - kept.len());
    assert!(!kept.is_empty(), "{}", run.stderr);
    assert_eq!(landed.len() + kept.len(), 1000, "{}", run.stderr);
    assert!(kept[0].contains("uthoriz"), "{}", kept[0]);
    assert!(run.stderr.contains("dead-lettered"), "{}", run.stderr);
}

#[test]
fn a_batch_refused_for_its_size_is_sent_again_one_record_at_a_time() {
    let m = Mock::new(1);
    m.topic("size", 1);
    let dl = dead_letter_file("fast-size");
    // Once: the batch is refused with no record named, and each record sent again alone lands.
    m.fail_next(Produce, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, 1);
    let run = m.kpipe(
        &["-t", "size", "--dead-letter", dl.to_str().unwrap()],
        numbered(200).as_bytes(),
    );
    m.assert_landed_once(&run, "size", 200);
    assert!(read_lines(&dl).is_empty());
}

#[test]
fn without_a_dead_letter_file_refused_records_are_counted_lost() {
    let m = Mock::new(1);
    m.topic("lost", 1);
    m.fail_next(Produce, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 1);
    let run = m.kpipe(&["-t", "lost"], numbered(100).as_bytes());
    assert_status(&run, Status::TempFail);
    assert!(run.stderr.contains("lost"), "{}", run.stderr);
    assert!(run.stderr.contains("--dead-letter"), "{}", run.stderr);
}

#[test]
fn an_outage_longer_than_the_delivery_timeout_spools_and_the_next_run_sends_the_spool_first() {
    let m = Mock::new(1);
    m.topic("spooled", 1);
    let dir = temp_dir("fast-spool");
    let spool = dir.join("spool");
    let spool_arg = spool.to_str().unwrap();
    m.down(1);
    let run = m.kpipe(
        &[
            "-t",
            "spooled",
            "--spool",
            spool_arg,
            "--delivery-timeout",
            "2s",
        ],
        numbered(500).as_bytes(),
    );
    // No broker has answered: 69, and the records are kept all the same.
    assert_status(&run, Status::Unavailable);
    assert!(run.stderr.contains("500 spooled"), "{}", run.stderr);
    m.up(1);
    let run = m.kpipe(&["-t", "spooled", "--spool", spool_arg], b"");
    m.assert_landed_once(&run, "spooled", 500);
}

#[test]
fn no_broker_at_the_address_exits_69_and_keeps_the_records() {
    let dl = dead_letter_file("fast-nobroker");
    let run = kpipe(
        &[
            "-b",
            "127.0.0.1:1",
            "-t",
            "t",
            "--delivery-timeout",
            "2s",
            "--dead-letter",
            dl.to_str().unwrap(),
        ],
        numbered(10).as_bytes(),
    );
    assert_status(&run, Status::Unavailable);
    assert_eq!(read_lines(&dl).len(), 10);
}

#[test]
fn malformed_json_follows_on_error() {
    let m = Mock::new(1);
    let input = b"{\"ok\":1}\nnot json\n{\"ok\":2}\n";
    let cases: [(&str, usize, Status); 4] = [
        ("fallback-to-string", 3, Status::Ok),
        ("drop-message", 2, Status::Ok),
        ("silently-drop-message", 2, Status::Ok),
        ("exit", 1, Status::DataErr),
    ];
    for (mode, landed, status) in cases {
        let topic = format!("malformed-{mode}");
        m.topic(&topic, 1);
        let run = m.kpipe(&["-f", "ndjson", "-t", &topic, "--on-error", mode], input);
        assert_status(&run, status);
        let got = m.read(&topic, landed);
        assert_eq!(got.len(), landed, "{mode}: {}", run.stderr);
        if mode == "fallback-to-string" {
            let bad = got
                .iter()
                .find(|l| l.value_str() == "not json")
                .expect("sent as it is");
            assert!(bad
                .header("kpipe.error")
                .is_some_and(|h| h.contains("line 2")));
        }
        let reported = run.stderr.contains("line 2");
        assert_eq!(
            reported,
            !mode.starts_with("silently"),
            "{mode}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_malformed_record_goes_to_the_dead_letter_file_naming_line_and_offset() {
    let m = Mock::new(1);
    m.topic("bad", 1);
    let dl = dead_letter_file("fast-bad");
    let run = m.kpipe(
        &[
            "-f",
            "ndjson",
            "-t",
            "bad",
            "--on-error",
            "drop-message",
            "--dead-letter",
            dl.to_str().unwrap(),
        ],
        b"{}\n{oops\n{}\n",
    );
    assert!(run.stderr.contains("line 2, byte 3"), "{}", run.stderr);
    assert_eq!(m.read("bad", 2).len(), 2);
}

#[test]
fn a_record_over_the_size_limit_is_cut_off_and_dead_lettered() {
    let m = Mock::new(1);
    m.topic("big", 1);
    let dl = dead_letter_file("fast-big");
    let input = format!("small\n{}\nsmall again\n", "x".repeat(5000));
    let run = m.kpipe(
        &[
            "-t",
            "big",
            "--max-record-size",
            "1000",
            "--dead-letter",
            dl.to_str().unwrap(),
        ],
        input.as_bytes(),
    );
    assert_status(&run, Status::TempFail);
    assert_eq!(values(&m.read("big", 2)), ["small", "small again"]);
    assert_eq!(read_lines(&dl).len(), 1);
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);
}

#[test]
fn a_topic_the_cluster_does_not_know_is_dead_lettered_with_a_hint() {
    let m = Mock::new(1);
    m.topic("known", 1);
    m.topic_error("unknown", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
    let dl = dead_letter_file("fast-unknown");
    let input = "{\"t\":\"known\"}\n{\"t\":\"unknown\"}\n";
    let run = m.kpipe(
        &[
            "-f",
            "ndjson",
            "-t",
            "${t}",
            "--dead-letter",
            dl.to_str().unwrap(),
            "--delivery-timeout",
            "5s",
        ],
        input.as_bytes(),
    );
    assert_status(&run, Status::TempFail);
    assert_eq!(m.read("known", 1).len(), 1);
    assert_eq!(read_lines(&dl).len(), 1, "{}", run.stderr);
}

#[test]
fn dry_run_needs_no_broker_and_prints_envelopes() {
    let run = kpipe(&["-t", "x", "-k", "k", "--dry-run"], b"a\nb\n");
    assert_status(&run, Status::Ok);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["topic"].as_str(), lines[0]["key"].as_str()),
        (Some("x"), Some("k"))
    );
}

#[test]
fn a_dead_letter_file_replays_through_envelope_format() {
    let m = Mock::new(1);
    m.topic("replay", 1);
    let dl = dead_letter_file("fast-replay");
    m.down(1);
    let run = m.kpipe(
        &[
            "-t",
            "replay",
            "-k",
            "key",
            "--dead-letter",
            dl.to_str().unwrap(),
            "--delivery-timeout",
            "1s",
        ],
        numbered(50).as_bytes(),
    );
    assert_status(&run, Status::Unavailable);
    m.up(1);
    let replay = std::fs::read(&dl).unwrap();
    let run = m.kpipe(&["-f", "envelope"], &replay);
    assert_status(&run, Status::Ok);
    let landed = m.read("replay", 50);
    assert_each_once(&landed, 50);
    assert!(landed.iter().all(|l| l.key.as_deref() == Some(&b"key"[..])));
}

#[test]
fn no_broker_answering_within_the_connect_timeout_ends_an_open_pipe_with_69() {
    let dl = dead_letter_file("fast-connect-timeout");
    let mut child = spawn(&[
        "-b",
        "127.0.0.1:1",
        "-t",
        "t",
        "--connect-timeout",
        "2s",
        "--dead-letter",
        dl.to_str().unwrap(),
    ]);
    // The writer (tail -F, say) never closes the pipe: the run must end by itself.
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, numbered(10).as_bytes()).unwrap();
    let run = wait_with_limit(child, Duration::from_secs(60));
    drop(stdin);
    assert_status(&run, Status::Unavailable);
    assert!(
        run.stderr.contains("no broker has answered in 2s"),
        "{}",
        run.stderr
    );
    assert_eq!(read_lines(&dl).len(), 10, "what was read is kept");
    eprintln!("ended after {:?}", run.elapsed);
}

#[test]
fn a_broker_that_answered_is_waited_for_past_the_connect_timeout() {
    let m = Mock::new(1);
    m.topic("late", 1);
    let child = spawn(&["-b", &m.bootstrap, "-t", "late", "--connect-timeout", "1s"]);
    let mut child = child;
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, b"first\n").unwrap();
    assert_eq!(m.read("late", 1).len(), 1, "the broker answered");
    m.down(1);
    std::io::Write::write_all(&mut stdin, b"second\n").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    m.up(1);
    drop(stdin);
    let run = wait_with_limit(child, Duration::from_secs(60));
    assert_status(&run, Status::Ok);
    assert_eq!(values(&m.read("late", 2)), ["first", "second"]);
}
