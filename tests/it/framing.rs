//! Framing and routing: NDJSON, multi-line JSON, NUL-separated names, envelopes, templates,
//! malformed input under each --on-error mode.

use std::time::Duration;

use base64::Engine;

use crate::util::*;

const WAIT: Duration = Duration::from_secs(30);

/// 100 NDJSON lines; every tenth is not JSON.
fn ndjson_with_garbage() -> (Vec<String>, Vec<bool>) {
    let mut lines = Vec::new();
    let mut good = Vec::new();
    for i in 0..100 {
        if i % 10 == 9 {
            lines.push(format!("not json {i} {{"));
            good.push(false);
        } else {
            lines.push(format!(r#"{{"n":{i}, "text": "spaced  as written"}}"#));
            good.push(true);
        }
    }
    (lines, good)
}

#[test]
fn malformed_ndjson_falls_back_to_string_by_default() {
    let b = shared_brokers();
    let topic = fresh_topic("ndjson-default");
    create_topic(b, &topic, 1, 1, &[]);
    let (lines, good) = ndjson_with_garbage();
    let run = kpipe(
        &["-b", b, "-t", &topic, "-f", "ndjson"],
        (lines.join("\n") + "\n").as_bytes(),
    );
    assert_status(&run, Status::Ok);
    assert!(
        run.stderr.contains("line 10, byte"),
        "report names the line: {}",
        run.stderr
    );
    let landed = read_topic(b, &topic, lines.len(), WAIT);
    assert_eq!(landed.len(), lines.len());
    for ((l, line), ok) in landed.iter().zip(&lines).zip(&good) {
        assert_eq!(&l.value_str(), line, "not byte-exact");
        assert_eq!(
            l.header("kpipe.error").is_some(),
            !ok,
            "kpipe.error header on {line}"
        );
    }
}

#[test]
fn drop_message_delivers_only_the_good_ones_and_exit_stops_with_65() {
    let b = shared_brokers();
    let (lines, good) = ndjson_with_garbage();
    let input = lines.join("\n") + "\n";

    let topic = fresh_topic("ndjson-drop");
    create_topic(b, &topic, 1, 1, &[]);
    let run = kpipe(
        &[
            "-b",
            b,
            "-t",
            &topic,
            "-f",
            "ndjson",
            "--on-error",
            "drop-message",
        ],
        input.as_bytes(),
    );
    assert_status(&run, Status::Ok);
    let expected: Vec<&String> = lines
        .iter()
        .zip(&good)
        .filter(|(_, g)| **g)
        .map(|(l, _)| l)
        .collect();
    let landed = read_topic(b, &topic, expected.len(), WAIT);
    let got: Vec<String> = landed.iter().map(Landed::value_str).collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), expected);

    let topic = fresh_topic("ndjson-exit");
    create_topic(b, &topic, 1, 1, &[]);
    let run = kpipe(
        &["-b", b, "-t", &topic, "-f", "ndjson", "--on-error", "exit"],
        input.as_bytes(),
    );
    assert_status(&run, Status::DataErr);
    let landed = read_topic(b, &topic, 9, WAIT);
    assert_eq!(
        landed.len(),
        9,
        "the nine records before the first malformed one are delivered"
    );
}

#[test]
fn templates_route_by_program_and_key_by_host() {
    let b = shared_brokers();
    let tag = fresh_topic("p").replace('-', "_");
    let programs = [format!("{tag}_sshd"), format!("{tag}_cron")];
    for p in &programs {
        create_topic(b, &format!("logs.{p}"), 1, 1, &[]);
    }
    let input: String = (0..40)
        .map(|i| {
            format!(
                "{{\"PROGRAM\":\"{}\",\"HOST\":\"host{}\",\"MESSAGE\":\"m{i}\"}}\n",
                programs[i % 2],
                i % 4
            )
        })
        .collect();
    let run = kpipe(
        &[
            "-b",
            b,
            "-f",
            "ndjson",
            "-t",
            "logs.${PROGRAM}",
            "-k",
            "${HOST}",
            "-H",
            "origin=kpipe-test",
        ],
        input.as_bytes(),
    );
    assert_status(&run, Status::Ok);
    for (n, p) in programs.iter().enumerate() {
        let landed = read_topic(b, &format!("logs.{p}"), 20, WAIT);
        assert_eq!(landed.len(), 20, "records for {p}");
        for l in &landed {
            let v: serde_json::Value = serde_json::from_slice(l.value.as_deref().unwrap()).unwrap();
            assert_eq!(v["PROGRAM"], p.as_str());
            assert_eq!(
                l.key.as_deref(),
                Some(v["HOST"].as_str().unwrap().as_bytes())
            );
            assert_eq!(l.header("origin").as_deref(), Some("kpipe-test"));
        }
        assert_eq!(
            landed[0].value_str(),
            format!(
                "{{\"PROGRAM\":\"{p}\",\"HOST\":\"host{}\",\"MESSAGE\":\"m{n}\"}}",
                n
            )
        );
    }
}

#[test]
fn fifty_pretty_printed_objects_arrive_as_fifty_records() {
    let b = shared_brokers();
    let topic = fresh_topic("pretty");
    create_topic(b, &topic, 1, 1, &[]);
    let objects: Vec<serde_json::Value> = (0..50)
        .map(|i| serde_json::json!({"n": i, "nested": {"list": [1, 2, {"deep": "a b"}]}, "text": "line\nbreak"}))
        .collect();
    let input: String = objects
        .iter()
        .map(|o| serde_json::to_string_pretty(o).unwrap() + "\n")
        .collect();
    assert!(input.lines().count() > 500);
    let run = kpipe(&["-b", b, "-t", &topic, "-f", "json"], input.as_bytes());
    assert_status(&run, Status::Ok);
    let landed = read_topic(b, &topic, 50, WAIT);
    assert_eq!(landed.len(), 50);
    for (l, o) in landed.iter().zip(&objects) {
        assert_eq!(l.value_str(), serde_json::to_string(o).unwrap());
    }
}

#[test]
fn nul_separated_names_arrive_byte_exact() {
    let b = shared_brokers();
    let topic = fresh_topic("print0");
    create_topic(b, &topic, 1, 1, &[]);
    let dir = temp_dir("print0");
    for name in [
        "plain",
        "with space",
        "new\nline",
        "tab\there",
        "ünïcödé",
        "trailing\n",
    ] {
        std::fs::write(dir.join(name), b"x").unwrap();
    }
    // The issue's own command, plus the directory of odd names in case it is on another mount.
    let found = std::process::Command::new("find")
        .arg("/")
        .arg(&dir)
        .args(["-xdev", "-print0"])
        .output()
        .unwrap();
    let names: Vec<&[u8]> = found
        .stdout
        .split(|&c| c == 0)
        .filter(|n| !n.is_empty())
        .collect();
    assert!(names.len() > 6);
    let run = kpipe(&["-b", b, "-t", &topic, "-D", "\\0"], &found.stdout);
    assert_status(&run, Status::Ok);
    let landed = read_topic(b, &topic, names.len(), Duration::from_secs(180));
    let got: Vec<&[u8]> = landed.iter().map(|l| l.value.as_deref().unwrap()).collect();
    assert_eq!(got, names);
}

#[test]
fn multi_byte_delimiter_and_key_delimiter() {
    let b = shared_brokers();
    let topic = fresh_topic("delims");
    create_topic(b, &topic, 1, 1, &[]);
    let run = kpipe(
        &["-b", b, "-t", &topic, "-D", "||", "-K", "::"],
        b"k1::v|1||k2::v:2||novalue-key||",
    );
    assert_status(&run, Status::Ok);
    let landed = read_topic(b, &topic, 3, WAIT);
    let got: Vec<(Option<String>, String)> = landed
        .iter()
        .map(|l| {
            (
                l.key
                    .as_ref()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                l.value_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("k1".into()), "v|1".into()),
            (Some("k2".into()), "v:2".into()),
            (None, "novalue-key".into())
        ]
    );
}

#[test]
fn envelopes_land_field_by_field_and_dry_run_output_replays_the_same() {
    let b = shared_brokers();
    let t1 = fresh_topic("env-a");
    let t2 = fresh_topic("env-b");
    create_topic(b, &t1, 2, 1, &[]);
    create_topic(b, &t2, 1, 1, &[]);
    let binary = [0u8, 159, 146, 150, 255];
    let b64 = base64::engine::general_purpose::STANDARD.encode(binary);
    let input = format!(
        concat!(
            r#"{{"topic":"{t1}","partition":1,"key":"k1","value":"plain text","headers":{{"h1":"v1","h2":null}},"timestamp":1795651200000}}"#,
            "\n",
            r#"{{"topic":"{t2}","key":"k2","value":"{b64}","value_encoding":"base64"}}"#,
            "\n",
            r#"{{"topic":"{t2}","key":"gone","value":null}}"#,
            "\n",
            r#"{{"topic":"{t1}","partition":0,"value":{{"nested":[1,2]}},"timestamp":"2026-11-26T00:00:00Z"}}"#,
            "\n"
        ),
        t1 = t1,
        t2 = t2,
        b64 = b64
    );
    let check = |t1: &str, t2: &str| {
        let a = read_topic(b, t1, 2, WAIT);
        assert_eq!(a.len(), 2);
        let p1 = a.iter().find(|l| l.partition == 1).expect("partition 1");
        assert_eq!(p1.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(p1.value_str(), "plain text");
        assert_eq!(
            p1.headers,
            vec![
                ("h1".to_string(), Some(b"v1".to_vec())),
                ("h2".to_string(), None)
            ]
        );
        assert_eq!(p1.timestamp, Some(1_795_651_200_000));
        let p0 = a.iter().find(|l| l.partition == 0).expect("partition 0");
        assert_eq!(p0.value_str(), r#"{"nested":[1,2]}"#);
        assert_eq!(p0.key, None);
        assert_eq!(p0.timestamp, Some(1_795_651_200_000));
        let c = read_topic(b, t2, 2, WAIT);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].key.as_deref(), Some(&b"k2"[..]));
        assert_eq!(c[0].value.as_deref(), Some(&binary[..]));
        assert_eq!(c[1].key.as_deref(), Some(&b"gone"[..]));
        assert_eq!(c[1].value, None, "tombstone");
    };
    let run = kpipe(&["-b", b, "-f", "envelope"], input.as_bytes());
    assert_status(&run, Status::Ok);
    check(&t1, &t2);

    // The dry run prints envelopes; sent back through -f envelope they land the same.
    let dry = kpipe(&["--dry-run", "-f", "envelope"], input.as_bytes());
    assert_status(&dry, Status::Ok);
    let (u1, u2) = (fresh_topic("env-c"), fresh_topic("env-d"));
    create_topic(b, &u1, 2, 1, &[]);
    create_topic(b, &u2, 1, 1, &[]);
    let replay = dry.stdout_str().replace(&t1, &u1).replace(&t2, &u2);
    let run = kpipe(&["-b", b, "-f", "envelope"], replay.as_bytes());
    assert_status(&run, Status::Ok);
    check(&u1, &u2);
}

#[test]
fn random_bytes_as_ndjson_do_not_crash() {
    let b = shared_brokers();
    let topic = fresh_topic("random");
    create_topic(b, &topic, 1, 1, &[]);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let input: Vec<u8> = (0..2_000_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let run = kpipe(&["-b", b, "-t", &topic, "-f", "ndjson"], &input);
    assert_status(&run, Status::Ok);
    assert!(!run.stderr.contains("panicked"));
    assert!(
        run.stderr.contains("more malformed records not shown"),
        "reports are rate-limited: {}",
        run.stderr.len()
    );
    assert!(
        run.stderr.lines().count() < 100,
        "stderr flooded: {} lines",
        run.stderr.lines().count()
    );
    let summary = run.stderr.lines().last().unwrap();
    let read: usize = summary.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        summary.contains(&format!("{read} delivered, 0 failed")),
        "{summary}"
    );
}

#[test]
fn fallback_topic_timestamp_field_and_pinned_partition() {
    let b = shared_brokers();
    let tag = fresh_topic("ts").replace('-', "_");
    let routed = format!("logs.{tag}_web");
    let fallback = format!("{tag}_fallback");
    create_topic(b, &routed, 3, 1, &[]);
    create_topic(b, &fallback, 3, 1, &[]);
    let input = format!(
        "{{\"PROGRAM\":\"{tag}_web\",\"DATE\":\"2026-11-26T00:00:00+00:00\"}}\n{{\"DATE\":1795651200123}}\n"
    );
    let run = kpipe(
        &[
            "-b",
            b,
            "-f",
            "ndjson",
            "-t",
            "logs.${PROGRAM}",
            "--fallback-topic",
            &fallback,
            "--timestamp-field",
            "DATE",
            "-p",
            "2",
        ],
        input.as_bytes(),
    );
    assert_status(&run, Status::Ok);
    let a = read_topic(b, &routed, 1, WAIT);
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].partition, a[0].timestamp),
        (2, Some(1_795_651_200_000))
    );
    let f = read_topic(b, &fallback, 1, WAIT);
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].partition, f[0].timestamp),
        (2, Some(1_795_651_200_123))
    );
    assert!(
        f[0].header("kpipe.error")
            .is_some_and(|e| e.contains("PROGRAM")),
        "{:?}",
        f[0].headers
    );
}
