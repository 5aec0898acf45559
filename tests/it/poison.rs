//! One record the broker refuses for good costs only itself: 1 000 good records and 1 bad one to
//! one partition, for each kind of record Kafka refuses, and the good ones land once.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::util::*;

const WAIT: Duration = Duration::from_secs(60);
const GOOD: usize = 1000;

/// A bad record among the good ones, and the topic it needs.
struct Case {
    name: &'static str,
    /// Topic configuration that makes the bad record bad.
    topic_config: &'static [(&'static str, &'static str)],
    /// The envelope line of good record `i` and of the bad record, for topic `t`.
    good: fn(&str, usize) -> String,
    bad: fn(&str) -> String,
}

fn plain(t: &str, i: usize) -> String {
    json!({"topic": t, "key": format!("k{i}"), "value": format!("good {i}")}).to_string()
}

const CASES: &[Case] = &[
    Case {
        name: "timestamp",
        topic_config: &[],
        good: plain,
        bad: |t| {
            json!({"topic": t, "key": "bad", "value": "bad", "timestamp": "2999-01-01T00:00:00Z"})
                .to_string()
        },
    },
    Case {
        name: "size",
        topic_config: &[("max.message.bytes", "200000")],
        good: plain,
        bad: |t| json!({"topic": t, "key": "bad", "value": "b".repeat(300_000)}).to_string(),
    },
    Case {
        name: "no-key-on-a-compacted-topic",
        topic_config: &[("cleanup.policy", "compact")],
        good: plain,
        bad: |t| json!({"topic": t, "value": "bad"}).to_string(),
    },
    Case {
        name: "topic-name",
        topic_config: &[],
        good: plain,
        bad: |_| json!({"topic": "no such topic!", "key": "bad", "value": "bad"}).to_string(),
    },
];

/// The input: the good records with the bad one in the middle.
fn input(case: &Case, topic: &str) -> String {
    let mut lines: Vec<String> = (0..GOOD).map(|i| (case.good)(topic, i)).collect();
    lines.insert(GOOD / 2, (case.bad)(topic));
    lines.join("\n") + "\n"
}

/// Runs one case with `extra` flags and checks that every good record landed once; returns
/// the run and what landed, for the case's own checks.
fn run_case(case: &Case, extra: &[&str]) -> (Run, Vec<Landed>) {
    let b = shared_brokers();
    let topic = fresh_topic(&format!("poison-{}", case.name));
    create_topic(b, &topic, 1, 1, case.topic_config);
    let mut args = vec!["-b", b, "-t", &topic, "-f", "envelope"];
    args.extend_from_slice(extra);
    let run = kpipe(&args, input(case, &topic).as_bytes());
    let landed = read_topic(b, &topic, GOOD, WAIT);
    let good: Vec<&Landed> = landed
        .iter()
        .filter(|l| l.value_str().starts_with("good "))
        .collect();
    let distinct: HashSet<String> = good.iter().map(|l| l.value_str()).collect();
    assert_eq!(
        (good.len(), distinct.len()),
        (GOOD, GOOD),
        "{}: every good record once; stderr: {}",
        case.name,
        run.stderr
    );
    (run, landed)
}

fn dead_letters(path: &Path) -> Vec<serde_json::Value> {
    read_lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).expect("an envelope line"))
        .collect()
}

#[track_caller]
fn assert_kept_once(case: &Case, run: &Run, landed: &[Landed], dead_letter: &Path) {
    let bad_landed = landed
        .iter()
        .filter(|l| l.key.as_deref() == Some(b"bad"))
        .count();
    let kept = dead_letters(dead_letter);
    assert_eq!(
        bad_landed + kept.len(),
        1,
        "{}: the bad record is kept once (landed {bad_landed}, dead-lettered {}); stderr: {}",
        case.name,
        kept.len(),
        run.stderr
    );
    for k in &kept {
        assert!(k["error"].is_string(), "{}: {k}", case.name);
        assert_ne!(k["value"], "good", "{}", case.name);
    }
}

#[test]
fn each_kind_of_refused_record_costs_only_itself_with_a_dead_letter_file() {
    for case in CASES {
        let dir = temp_dir(&format!("poison-{}", case.name));
        let dl = dir.join("dl.ndjson");
        let dl_arg = dl.to_string_lossy().into_owned();
        let (run, landed) = run_case(case, &["--dead-letter", &dl_arg]);
        assert_kept_once(case, &run, &landed, &dl);
    }
}

#[test]
fn each_kind_of_refused_record_costs_only_itself_with_a_spool_alone() {
    for case in CASES {
        let dir = temp_dir(&format!("poison-spool-{}", case.name));
        let spool = dir.join("spool");
        let spool_arg = spool.to_string_lossy().into_owned();
        let (run, landed) = run_case(case, &["--spool", &spool_arg]);
        assert_kept_once(case, &run, &landed, &spool.join("dead-letter.ndjson"));
        assert!(
            !run.stderr.contains("lost"),
            "{}: {}",
            case.name,
            run.stderr
        );
    }
}

#[test]
fn a_refused_timestamp_is_replaced_under_fallback_to_string_and_named_in_a_header() {
    let case = &CASES[0];
    let (run, landed) = run_case(case, &[]);
    assert_status(&run, Status::Ok);
    let bad: Vec<&Landed> = landed
        .iter()
        .filter(|l| l.key.as_deref() == Some(b"bad"))
        .collect();
    assert_eq!(bad.len(), 1, "{}", run.stderr);
    let ts = bad[0].timestamp.expect("a timestamp");
    assert!(
        (ts - now_ms() as i64).abs() < 600_000,
        "restamped near now: {ts}"
    );
    let why = bad[0].header("kpipe.error").expect("a kpipe.error header");
    assert!(why.contains("32472144000000"), "{why}");
}

/// A record stamped two hours ahead (a sender whose clock is fast) among the good ones: the
/// broker refuses it (`log.message.timestamp.after.max.ms` is an hour by default).
fn fast_clock(extra: &[&str], expect: usize) -> (Run, Vec<Landed>, i64) {
    let b = shared_brokers();
    let topic = fresh_topic("poison-fast-clock");
    create_topic(b, &topic, 1, 1, &[]);
    let fast = now_ms() as i64 + 2 * 3_600_000;
    let mut lines: Vec<String> = (0..GOOD).map(|i| plain(&topic, i)).collect();
    let bad = json!({"topic": &topic, "key": "bad", "value": "bad", "timestamp": fast});
    lines.insert(GOOD / 2, bad.to_string());
    let mut args = vec!["-b", b, "-f", "envelope"];
    args.extend_from_slice(extra);
    let run = kpipe(&args, (lines.join("\n") + "\n").as_bytes());
    let landed = read_topic(b, &topic, expect, WAIT);
    (run, landed, fast)
}

#[test]
fn without_a_fallback_a_refused_timestamp_is_dead_lettered() {
    let dir = temp_dir("poison-no-fallback");
    let dl = dir.join("dl.ndjson");
    let dl_arg = dl.to_string_lossy().into_owned();
    let (run, landed, fast) = fast_clock(
        &["--on-error", "drop-message", "--dead-letter", &dl_arg],
        GOOD,
    );
    assert_status(&run, Status::TempFail);
    assert_eq!(landed.len(), GOOD, "{}", run.stderr);
    let kept = dead_letters(&dl);
    assert_eq!(kept.len(), 1, "{}", run.stderr);
    assert_eq!(kept[0]["timestamp"], fast, "{}", kept[0]);
}

#[test]
fn a_clock_two_hours_fast_is_refused_by_the_broker_and_restamped() {
    let (run, landed, fast) = fast_clock(&[], GOOD + 1);
    assert_status(&run, Status::Ok);
    assert_eq!(landed.len(), GOOD + 1, "{}", run.stderr);
    let bad = landed
        .iter()
        .find(|l| l.key.as_deref() == Some(b"bad"))
        .expect("the fast record");
    let why = bad.header("kpipe.error").expect("a kpipe.error header");
    assert!(why.contains(&fast.to_string()), "{why}");
    assert!(
        bad.timestamp.is_some_and(|t| t < fast - 3_000_000),
        "{:?}",
        bad.timestamp
    );
}

/// Under `--exactly-once`: a record the broker names is dead-lettered and the transaction sent
/// again from the log without it; a batch refused with no record named is sent again one record
/// at a time, so that the refusal each meets is its own.
#[test]
fn each_kind_of_refused_record_costs_only_itself_exactly_once() {
    for case in CASES {
        let dir = temp_dir(&format!("poison-eo-{}", case.name));
        let spool = dir.join("spool");
        let spool_arg = spool.to_string_lossy().into_owned();
        let (run, landed) = run_case(case, &["--exactly-once", "--spool", &spool_arg]);
        assert_kept_once(case, &run, &landed, &spool.join("dead-letter.ndjson"));
    }
}

/// Under `--atomic` with a dead-letter file, the commit holds every good record: the refused
/// one is dead-lettered and the transaction sent again from kpipe's private log without it.
#[test]
fn each_kind_of_refused_record_costs_only_itself_atomically() {
    for case in CASES {
        let dir = temp_dir(&format!("poison-atomic-{}", case.name));
        let dl = dir.join("dl.ndjson");
        let dl_arg = dl.to_string_lossy().into_owned();
        let (run, landed) = run_case(case, &["--atomic", "--dead-letter", &dl_arg]);
        assert_kept_once(case, &run, &landed, &dl);
    }
}
