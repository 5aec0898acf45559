//! Records as they arrive: framing, routing, keys, headers, partitions, order.

use serde_json::json;

use crate::mock::*;

#[test]
fn lines_arrive_once_each_in_order_on_one_partition() {
    let m = Mock::new(1);
    m.topic("lines", 1);
    let run = m.kpipe(&["-t", "lines"], numbered(5000).as_bytes());
    assert_status(&run, Status::Ok);
    let landed = m.read("lines", 5000);
    let want: Vec<String> = (0..5000).map(|i| format!("record {i:07}")).collect();
    assert_eq!(values(&landed), want);
    assert!(
        run.stderr.contains("5000 read, 5000 delivered, 0 failed"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_last_line_without_a_newline_is_a_record() {
    let m = Mock::new(1);
    m.topic("tail", 1);
    let run = m.kpipe(&["-t", "tail"], b"one\ntwo");
    assert_status(&run, Status::Ok);
    assert_eq!(values(&m.read("tail", 2)), ["one", "two"]);
}

#[test]
fn a_nul_delimiter_keeps_newlines_inside_records() {
    let m = Mock::new(1);
    m.topic("nul", 1);
    let run = m.kpipe(&["-t", "nul", "-D", "\\0"], b"a\nb\0c\0");
    assert_status(&run, Status::Ok);
    assert_eq!(values(&m.read("nul", 2)), ["a\nb", "c"]);
}

#[test]
fn empty_lines_are_skipped_and_counted() {
    let m = Mock::new(1);
    m.topic("empty", 1);
    let run = m.kpipe(&["-t", "empty", "-v"], b"a\n\nb\n");
    assert_status(&run, Status::Ok);
    assert_eq!(values(&m.read("empty", 2)), ["a", "b"]);
    assert!(run.stderr.contains("1 empty"), "{}", run.stderr);
}

#[test]
fn templates_route_by_field_and_key_by_another() {
    let m = Mock::new(1);
    m.topic("logs.web", 1);
    m.topic("logs.db", 1);
    let mut input = String::new();
    for i in 0..100 {
        let program = if i % 2 == 0 { "web" } else { "db" };
        input += &json!({"PROGRAM": program, "HOST": format!("h{}", i % 3), "n": i}).to_string();
        input.push('\n');
    }
    let run = m.kpipe(
        &["-f", "ndjson", "-t", "logs.${PROGRAM}", "-k", "${HOST}"],
        input.as_bytes(),
    );
    assert_status(&run, Status::Ok);
    for topic in ["logs.web", "logs.db"] {
        let landed = m.read(topic, 50);
        assert_eq!(landed.len(), 50, "{topic}");
        for l in &landed {
            let v: serde_json::Value = serde_json::from_slice(l.value.as_deref().unwrap()).unwrap();
            assert_eq!(l.key.as_deref(), v["HOST"].as_str().map(str::as_bytes));
            assert_eq!(topic, format!("logs.{}", v["PROGRAM"].as_str().unwrap()));
        }
    }
}

#[test]
fn ndjson_is_sent_byte_exact() {
    let m = Mock::new(1);
    m.topic("exact", 1);
    let line = r#"{ "a" : 1,   "b": "x\u00e9" }"#;
    let run = m.kpipe(
        &["-f", "ndjson", "-t", "exact"],
        format!("{line}\n").as_bytes(),
    );
    assert_status(&run, Status::Ok);
    assert_eq!(values(&m.read("exact", 1)), [line]);
}

#[test]
fn pretty_json_is_sent_compact() {
    let m = Mock::new(1);
    m.topic("compact", 1);
    let run = m.kpipe(
        &["-f", "json", "-t", "compact"],
        b"{\n  \"a\": 1,\n  \"b\": [1, 2]\n}\n{\"c\":\n 3}",
    );
    assert_status(&run, Status::Ok);
    assert_eq!(
        values(&m.read("compact", 2)),
        [r#"{"a":1,"b":[1,2]}"#, r#"{"c":3}"#]
    );
}

#[test]
fn an_envelope_sets_topic_key_headers_partition_and_timestamp() {
    let m = Mock::new(1);
    m.topic("env", 3);
    let line = json!({
        "topic": "env", "key": "k", "value": "v", "partition": 2,
        "headers": {"h": "1"}, "timestamp": 1_700_000_000_000i64
    });
    let run = m.kpipe(&["-f", "envelope"], format!("{line}\n").as_bytes());
    assert_status(&run, Status::Ok);
    let l = &m.read("env", 1)[0];
    assert_eq!((l.partition, l.key.as_deref()), (2, Some(&b"k"[..])));
    assert_eq!(l.header("h").as_deref(), Some("1"));
    assert_eq!(l.timestamp, Some(1_700_000_000_000));
    assert_eq!(l.value_str(), "v");
}

#[test]
fn a_header_template_is_rendered_per_record() {
    let m = Mock::new(1);
    m.topic("hdr", 1);
    let run = m.kpipe(
        &["-f", "ndjson", "-t", "hdr", "-H", "host=${HOST}"],
        b"{\"HOST\":\"a\"}\n{\"HOST\":\"b\"}\n",
    );
    assert_status(&run, Status::Ok);
    let hosts: Vec<_> = m.read("hdr", 2).iter().map(|l| l.header("host")).collect();
    assert_eq!(hosts, [Some("a".into()), Some("b".into())]);
}

#[test]
fn a_key_delimiter_splits_key_from_value() {
    let m = Mock::new(1);
    m.topic("kd", 1);
    let run = m.kpipe(&["-t", "kd", "-K", ":"], b"k1:v1\nk2:v2\n");
    assert_status(&run, Status::Ok);
    let landed = m.read("kd", 2);
    assert_eq!(values(&landed), ["v1", "v2"]);
    assert_eq!(landed[0].key.as_deref(), Some(&b"k1"[..]));
}

#[test]
fn the_same_key_lands_on_the_same_partition() {
    let m = Mock::new(1);
    m.topic("keyed", 6);
    let input: String = (0..600)
        .map(|i| format!("{{\"k\":\"key{}\",\"n\":{i}}}\n", i % 7))
        .collect();
    let run = m.kpipe(
        &["-f", "ndjson", "-t", "keyed", "-k", "${k}"],
        input.as_bytes(),
    );
    assert_status(&run, Status::Ok);
    let landed = m.read("keyed", 600);
    assert_eq!(landed.len(), 600);
    let mut seen = std::collections::HashMap::new();
    for l in &landed {
        let p = *seen.entry(l.key.clone()).or_insert(l.partition);
        assert_eq!(p, l.partition, "one partition per key");
    }
}

#[test]
fn a_pinned_partition_is_kept() {
    let m = Mock::new(1);
    m.topic("pinned", 4);
    let run = m.kpipe(&["-t", "pinned", "-p", "3"], numbered(100).as_bytes());
    assert_status(&run, Status::Ok);
    assert!(m.read("pinned", 100).iter().all(|l| l.partition == 3));
}

#[test]
fn records_spread_over_three_brokers_all_arrive() {
    let m = Mock::new(3);
    m.topic("spread", 9);
    let run = m.kpipe(&["-t", "spread"], numbered(20_000).as_bytes());
    m.assert_landed_once(&run, "spread", 20_000);
}

#[test]
fn every_codec_delivers() {
    let m = Mock::new(1);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        m.topic(&topic, 1);
        let run = m.kpipe(&["-t", &topic, "-z", codec], numbered(1000).as_bytes());
        m.assert_landed_once(&run, &topic, 1000);
    }
}

#[test]
fn acks_one_and_zero_deliver_without_idempotence() {
    let m = Mock::new(1);
    for acks in ["1", "0"] {
        let topic = format!("acks-{acks}");
        m.topic(&topic, 1);
        let run = m.kpipe(
            &["-t", &topic, "--acks", acks, "-q"],
            numbered(500).as_bytes(),
        );
        m.assert_landed_once(&run, &topic, 500);
    }
}

#[test]
fn stats_lines_count_what_was_read_and_delivered() {
    let m = Mock::new(1);
    m.topic("stats", 1);
    let dir = temp_dir("fast-stats");
    let stats = dir.join("stats.ndjson");
    let run = m.kpipe(
        &["-t", "stats", "--stats", stats.to_str().unwrap()],
        numbered(300).as_bytes(),
    );
    assert_status(&run, Status::Ok);
    let last: serde_json::Value =
        serde_json::from_str(read_lines(&stats).last().expect("a stats line")).unwrap();
    assert_eq!(
        (last["read"].as_u64(), last["delivered"].as_u64()),
        (Some(300), Some(300))
    );
    // The last line's rate is the whole run's.
    assert_eq!(last["last"], true);
    let (rate, elapsed) = (last["records_per_s"].as_f64(), last["elapsed_s"].as_f64());
    let whole = rate.zip(elapsed).map(|(r, e)| r * e).unwrap_or_default();
    assert!((whole - 300.0).abs() < 3.0, "{last}");
}
