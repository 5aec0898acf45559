//! The foundation: lines from stdin land in Kafka byte-exact, in order, promptly.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn hundred_thousand_lines_arrive_byte_exact_and_in_order() {
    let b = shared_brokers();
    let topic = fresh_topic("lines100k");
    create_topic(b, &topic, 1, 1, &[]);
    let records = syslog_records(100_000);
    let input = records.join("\n") + "\n";
    let run = kpipe(&["-b", b, "-t", &topic], input.as_bytes());
    assert_status(&run, Status::Ok);
    assert!(
        run.stderr
            .contains("100000 read, 100000 delivered, 0 failed"),
        "summary: {}",
        run.stderr
    );
    let landed = read_topic(b, &topic, records.len(), Duration::from_secs(60));
    assert_eq!(landed.len(), records.len());
    for (i, (l, r)) in landed.iter().zip(&records).enumerate() {
        assert_eq!(l.value.as_deref(), Some(r.as_bytes()), "record {i} differs");
    }
}

#[test]
fn odd_bytes_and_a_last_line_without_newline_arrive_byte_exact() {
    let b = shared_brokers();
    let topic = fresh_topic("oddbytes");
    create_topic(b, &topic, 1, 1, &[]);
    let lines: Vec<&[u8]> = vec![
        b"plain",
        b"invalid \xff\xfe utf-8",
        b"nul \x00 inside",
        b"carriage\r",
        b"\r",
        b"last without newline",
    ];
    let mut input = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        input.extend_from_slice(l);
        if i + 1 < lines.len() {
            input.extend_from_slice(b"\n\n"); // empty lines are skipped
        }
    }
    let run = kpipe(&["-b", b, "-t", &topic], &input);
    assert_status(&run, Status::Ok);
    let landed = read_topic(b, &topic, lines.len(), Duration::from_secs(30));
    let got: Vec<&[u8]> = landed
        .iter()
        .map(|l| l.value.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(got, lines);
}

#[test]
fn records_written_slowly_arrive_before_eof() {
    let b = shared_brokers();
    let topic = fresh_topic("trickle");
    create_topic(b, &topic, 1, 1, &[]);
    let mut reader = TopicReader::new(b, &topic, Duration::from_secs(10));
    let mut child = spawn(&["-b", b, "-t", &topic]);
    let mut stdin = child.stdin.take().expect("stdin");
    // Let the producer connect first, as a long-running pipeline would have.
    std::thread::sleep(Duration::from_secs(2));
    for (n, word) in ["a", "b"].iter().enumerate() {
        let written = Instant::now();
        stdin
            .write_all(format!("{word}\n").as_bytes())
            .expect("write");
        stdin.flush().expect("flush");
        reader.read_until(n + 1, Duration::from_secs(1), Duration::ZERO);
        assert!(
            reader.records.iter().any(|l| l.value_str() == *word),
            "{word} not readable {:?} after it was written",
            written.elapsed()
        );
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "kpipe exited before EOF"
        );
    }
    drop(stdin);
    let run = wait_with_limit(child, Duration::from_secs(20));
    assert_status(&run, Status::Ok);
}

#[test]
fn unreachable_broker_exits_unavailable_quickly_with_one_clear_message() {
    let run = kpipe(
        &[
            "-b",
            "127.0.0.1:1",
            "-t",
            "nowhere",
            "--delivery-timeout",
            "3s",
        ],
        b"one line\n",
    );
    assert!(
        matches!(run.code(), 69 | 75),
        "exit {}: {}",
        run.code(),
        run.stderr
    );
    assert!(
        run.elapsed < Duration::from_secs(20),
        "took {:?}",
        run.elapsed
    );
    assert!(
        run.stderr.contains("127.0.0.1:1"),
        "no broker named: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("1 record not delivered"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.stderr.lines().count() <= 6, "log flood: {}", run.stderr);
}

#[test]
fn every_codec_round_trips_a_hundred_thousand_records() {
    let b = shared_brokers();
    let records = syslog_records(100_000);
    let input = records.join("\n") + "\n";
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = fresh_topic(&format!("codec-{codec}"));
        create_topic(b, &topic, 1, 1, &[]);
        let run = kpipe(&["-b", b, "-t", &topic, "-z", codec], input.as_bytes());
        assert_eq!(run.code(), 0, "{codec}: {}", run.stderr);
        let landed = read_topic(b, &topic, records.len(), Duration::from_secs(60));
        assert_eq!(landed.len(), records.len(), "{codec}");
        for (i, (l, r)) in landed.iter().zip(&records).enumerate() {
            assert_eq!(
                l.value.as_deref(),
                Some(r.as_bytes()),
                "{codec}: record {i} differs"
            );
        }
    }
}

#[test]
fn records_to_many_topics_land_once_and_in_order_while_the_queue_limit_grows() {
    // 4 MiB of --max-buffered holds 2 048 records to one topic; eight topics in use raise the
    // limit to its most, 8 192 (sink::Room), so kpipe, not librdkafka, is what says "full".
    let b = shared_brokers();
    let prefix = fresh_topic("many");
    let topics: Vec<String> = (0..8).map(|i| format!("{prefix}.t{i}")).collect();
    for t in &topics {
        create_topic(b, t, 1, 1, &[]);
    }
    let n = 40_000;
    let input: String = (0..n)
        .map(|i| {
            format!(
                "{{\"t\":\"t{}\",\"seq\":{i},\"pad\":\"{}\"}}\n",
                i % 8,
                "x".repeat(200)
            )
        })
        .collect();
    let template = format!("{prefix}.${{t}}");
    let run = kpipe(
        &[
            "-b",
            b,
            "-f",
            "ndjson",
            "-t",
            &template,
            "--max-buffered",
            "4MiB",
        ],
        input.as_bytes(),
    );
    assert_status(&run, Status::Ok);
    for (k, t) in topics.iter().enumerate() {
        let landed = read_topic(b, t, n / 8, Duration::from_secs(60));
        let seqs: Vec<usize> = landed
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(&l.value_str()).unwrap();
                v["seq"].as_u64().unwrap() as usize
            })
            .collect();
        let want: Vec<usize> = (0..n).filter(|i| i % 8 == k).collect();
        assert_eq!(seqs, want, "topic {t}: every record once, in input order");
    }
}

#[test]
fn files_named_on_the_command_line_land_in_order_with_standard_input_between() {
    let b = shared_brokers();
    let topic = fresh_topic("operands");
    create_topic(b, &topic, 1, 1, &[]);
    let dir = temp_dir("operands");
    let records = syslog_records(30_000);
    let (first, rest) = records.split_at(10_000);
    let (middle, last) = rest.split_at(10_000);
    let a = dir.join("a.log");
    // The first file's last line has no newline: it stays a record of its own.
    std::fs::write(&a, first.join("\n")).unwrap();
    let c = dir.join("c.log");
    std::fs::write(&c, last.join("\n") + "\n").unwrap();
    let args = [
        "-b",
        b,
        "-t",
        &topic,
        a.to_str().unwrap(),
        "-",
        c.to_str().unwrap(),
    ];
    let run = kpipe(&args, (middle.join("\n") + "\n").as_bytes());
    assert_status(&run, Status::Ok);
    let landed = read_topic(b, &topic, records.len(), Duration::from_secs(60));
    assert_eq!(landed.len(), records.len());
    for (i, (l, r)) in landed.iter().zip(&records).enumerate() {
        assert_eq!(l.value.as_deref(), Some(r.as_bytes()), "record {i} differs");
    }
}
