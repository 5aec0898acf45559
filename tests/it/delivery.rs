//! Delivery on a healthy broker: signals, permanent errors, statistics.

use std::io::Write;
use std::time::Duration;

use crate::util::*;

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn sigterm_keeps_reading_what_the_pipe_still_holds() {
    let b = shared_brokers();
    let topic = fresh_topic("sigterm-pipe");
    create_topic(b, &topic, 1, 1, &[]);
    let records = syslog_records(60_000);
    let mut child = spawn(&["-b", b, "-t", &topic]);
    let mut stdin = child.stdin.take().expect("stdin");
    let mut written = 0;
    for (i, chunk) in records.chunks(1000).enumerate() {
        let block = chunk.join("\n") + "\n";
        stdin.write_all(block.as_bytes()).expect("write");
        written += chunk.len();
        if i == 20 {
            // syslog-ng does this on stop and reload: SIGTERM, then more data, then EOF.
            signal(&child, "TERM");
        }
    }
    drop(stdin);
    let run = wait_with_limit(child, Duration::from_secs(60));
    assert_status(&run, Status::Ok);
    let landed = read_topic(b, &topic, written, WAIT);
    assert_eq!(
        landed.len(),
        written,
        "every record written before the close is delivered"
    );
    for (l, r) in landed.iter().zip(&records) {
        assert_eq!(l.value_str(), *r);
    }
}

#[test]
fn permanent_failures_go_to_the_dead_letter_file_without_stalling_healthy_records() {
    let b = shared_brokers();
    let healthy = fresh_topic("healthy");
    let small = fresh_topic("small-limit");
    create_topic(b, &healthy, 1, 1, &[]);
    create_topic(b, &small, 1, 1, &[("max.message.bytes", "1000")]);
    let dir = temp_dir("dlq-permanent");
    let dlq = dir.join("dead.ndjson");
    let mut input = String::new();
    for i in 0..2000 {
        input.push_str(&format!(
            "{{\"topic\":\"{healthy}\",\"value\":\"ok {i}\"}}\n"
        ));
        if i == 500 {
            input.push_str(&format!(
                "{{\"topic\":\"{small}\",\"value\":\"{}\"}}\n",
                "x".repeat(5000)
            ));
        }
        if i % 400 == 7 {
            input.push_str(&format!(
                "{{\"topic\":\"bad topic name!\",\"key\":\"k{i}\",\"value\":\"lost? {i}\"}}\n"
            ));
        }
    }
    let run = kpipe(
        &[
            "-b",
            b,
            "-f",
            "envelope",
            "--dead-letter",
            dlq.to_str().unwrap(),
            "--delivery-timeout",
            "2m",
            // Uncompressed: 5 000 x's compress to a batch the 1 000-byte topic accepts.
            "-z",
            "none",
        ],
        input.as_bytes(),
    );
    assert_status(&run, Status::TempFail);
    assert!(
        run.elapsed < Duration::from_secs(60),
        "stalled on the failing topics: {:?}",
        run.elapsed
    );
    let landed = read_topic(b, &healthy, 2000, WAIT);
    assert_eq!(landed.len(), 2000);
    let dead = read_lines(&dlq);
    assert_eq!(
        dead.len(),
        6,
        "one too large, five for the invalid topic: {dead:?}"
    );
    for line in &dead {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{line}");
        assert!(v["failed_at"].as_i64().is_some(), "{line}");
    }
    assert!(
        dead.iter()
            .any(|l| l.contains(&small) && l.to_lowercase().contains("too large")),
        "{dead:?}"
    );
    assert_eq!(
        dead.iter()
            .filter(|l| l.contains("bad topic name!"))
            .count(),
        5
    );
    assert!(
        run.stderr.contains("6 records not delivered"),
        "{}",
        run.stderr
    );
}

#[test]
fn oversized_records_take_the_error_path_and_the_run_goes_on() {
    let b = shared_brokers();
    let topic = fresh_topic("oversize");
    create_topic(b, &topic, 1, 1, &[]);
    let dir = temp_dir("oversize");
    let dlq = dir.join("dead.ndjson");
    let input = format!("small 1\n{}\nsmall 2\n", "y".repeat(3000));
    let run = kpipe(
        &[
            "-b",
            b,
            "-t",
            &topic,
            "--max-record-size",
            "1000",
            "--dead-letter",
            dlq.to_str().unwrap(),
        ],
        input.as_bytes(),
    );
    assert_status(&run, Status::TempFail);
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);
    let landed = read_topic(b, &topic, 2, WAIT);
    assert_eq!(
        landed.iter().map(Landed::value_str).collect::<Vec<_>>(),
        vec!["small 1", "small 2"]
    );
    let dead = read_lines(&dlq);
    assert_eq!(dead.len(), 1);
    assert!(dead[0].contains(&"y".repeat(3000)) && dead[0].contains("max-record-size"));
}

#[test]
fn stats_lines_and_sigusr1() {
    let b = shared_brokers();
    let topic = fresh_topic("stats");
    let dir = temp_dir("stats");
    let stats = dir.join("stats.ndjson");
    let mut child = spawn(&[
        "-b",
        b,
        "-t",
        &topic,
        "--stats",
        stats.to_str().unwrap(),
        "--stats-interval",
        "200ms",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"one\ntwo\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "USR1");
    std::thread::sleep(Duration::from_millis(300));
    drop(stdin);
    let run = wait_with_limit(child, Duration::from_secs(30));
    assert_status(&run, Status::Ok);
    assert!(
        run.stderr.matches("2 read").count() >= 2,
        "SIGUSR1 printed the statistics line: {}",
        run.stderr
    );
    let lines = read_lines(&stats);
    assert!(lines.len() >= 3, "{lines:?}");
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    for key in [
        "read",
        "delivered",
        "failed",
        "dead_lettered",
        "retried",
        "malformed",
        "bytes",
        "in_flight",
        "records_per_s",
        "broker_rtt_ms",
    ] {
        assert!(last.get(key).is_some(), "missing {key} in {last}");
    }
    assert_eq!(last["delivered"], 2);
}

#[test]
fn weaker_acks_warn_that_idempotence_is_off() {
    let b = shared_brokers();
    let topic = fresh_topic("acks1");
    let run = kpipe(&["-b", b, "-t", &topic, "--acks", "1"], b"x\n");
    assert_status(&run, Status::Ok);
    assert!(
        run.stderr.contains("idempotent producer off"),
        "{}",
        run.stderr
    );
}

#[test]
fn sighup_reopens_the_dead_letter_file() {
    let b = shared_brokers();
    let topic = fresh_topic("sighup");
    let dir = temp_dir("sighup");
    let dlq = dir.join("dead.ndjson");
    let rotated = dir.join("dead.ndjson.1");
    let mut child = spawn(&[
        "-b",
        b,
        "-t",
        &topic,
        "--max-record-size",
        "10",
        "--dead-letter",
        dlq.to_str().unwrap(),
    ]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first record too long\n").unwrap();
    stdin.flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while read_lines(&dlq).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing dead-lettered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::rename(&dlq, &rotated).unwrap();
    signal(&child, "HUP");
    std::thread::sleep(Duration::from_millis(500));
    stdin.write_all(b"second record too long\n").unwrap();
    drop(stdin);
    let run = wait_with_limit(child, Duration::from_secs(30));
    assert_status(&run, Status::TempFail);
    assert!(read_lines(&rotated)[0].contains("first record"));
    let fresh = read_lines(&dlq);
    assert_eq!(fresh.len(), 1);
    assert!(fresh[0].contains("second record"));
}

#[test]
fn stats_keep_coming_while_a_full_queue_holds_kpipe_back() {
    let dir = temp_dir("stats-full");
    let stats = dir.join("stats.ndjson");
    // No broker: the queue fills and kpipe waits inside a send.
    let mut child = spawn(&[
        "-b",
        "127.0.0.1:1",
        "-t",
        "x",
        "--stats",
        stats.to_str().unwrap(),
        "--stats-interval",
        "200ms",
        "--max-buffered",
        "64KiB",
        "--shutdown-timeout",
        "1s",
        "-q",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let input = syslog_records(5_000).join("\n") + "\n";
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    std::thread::sleep(Duration::from_millis(2000));
    signal(&child, "TERM");
    let run = wait_with_limit(child, Duration::from_secs(30));
    let _ = writer.join();
    assert!(matches!(run.code(), 69 | 75), "{}", run.stderr);
    let lines = read_lines(&stats);
    assert!(
        lines.len() >= 5,
        "only {} stats lines while blocked: {lines:?}",
        lines.len()
    );
}
