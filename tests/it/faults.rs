//! Fault injection on brokers these tests own: leader failover, late and restarted brokers,
//! outages ending in the dead-letter file or the spool.

use std::io::Write;
use std::process::ChildStdin;
use std::time::{Duration, Instant};

use crate::util::*;

const WAIT: Duration = Duration::from_secs(90);

/// Writes `records` in blocks of `block`, calling `at(i)` before block `i`.
fn feed(
    stdin: &mut ChildStdin,
    records: &[String],
    block: usize,
    pause: Duration,
    mut at: impl FnMut(usize),
) {
    for (i, chunk) in records.chunks(block).enumerate() {
        at(i);
        // kpipe gone early: its status and stderr, asserted next, say why.
        if stdin
            .write_all((chunk.join("\n") + "\n").as_bytes())
            .is_err()
        {
            return;
        }
        std::thread::sleep(pause);
    }
}

fn assert_exactly_once_in_order(landed: &[Landed], records: &[String]) {
    let values: Vec<String> = landed.iter().map(Landed::value_str).collect();
    let mut seen = std::collections::HashSet::new();
    let dups = values.iter().filter(|v| !seen.insert(v.as_str())).count();
    assert_eq!(dups, 0, "{dups} duplicates");
    assert_eq!(values.len(), records.len(), "records missing");
    assert!(values == records, "records out of order");
}

#[test]
fn leader_killed_mid_stream_loses_and_duplicates_nothing() {
    let c = Cluster::start("failover", 3);
    let topic = fresh_topic("failover");
    create_topic(&c.bootstrap, &topic, 1, 3, &[("min.insync.replicas", "2")]);
    let leader = c.leader(&topic);
    let records = syslog_records(200_000);
    let mut child = spawn(&["-b", &c.bootstrap, "-t", &topic]);
    let mut stdin = child.stdin.take().unwrap();
    // 200 blocks of 1 000 over about 6 s; the leader dies at block 60 and comes back at 140.
    feed(&mut stdin, &records, 1000, Duration::from_millis(30), |i| {
        if i == 60 {
            c.kill_node(leader);
        }
        if i == 140 {
            c.start_node(leader);
        }
    });
    drop(stdin);
    let run = wait_with_limit(child, Duration::from_secs(120));
    assert_status(&run, Status::Ok);
    let landed = read_topic(&c.bootstrap, &topic, records.len(), WAIT);
    assert_exactly_once_in_order(&landed, &records);
}

#[test]
fn broker_that_starts_after_kpipe_gets_everything() {
    let c = Cluster::start("late", 1);
    let topic = fresh_topic("late");
    create_topic(&c.bootstrap, &topic, 1, 1, &[]);
    c.kill_node(1);
    let records = syslog_records(20_000);
    // The broker's JVM may take longer than the default --connect-timeout to start while the
    // rest of the tier loads the machine; riding out a late broker is what is tested here.
    let args = ["-b", &c.bootstrap, "-t", &topic, "--connect-timeout", "5m"];
    let mut child = spawn(&args);
    let mut stdin = child.stdin.take().unwrap();
    // On its own thread: with the broker down kpipe fills its buffer and stops reading, and
    // this writer blocks, as backpressure should make it.
    let input = records.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    std::thread::sleep(Duration::from_secs(3));
    c.start_node(1);
    writer.join().expect("writer").expect("writing to kpipe");
    let run = wait_with_limit(child, Duration::from_secs(120));
    assert_status(&run, Status::Ok);
    let landed = read_topic(&c.bootstrap, &topic, records.len(), WAIT);
    assert_exactly_once_in_order(&landed, &records);
}

#[test]
fn single_broker_restarted_mid_stream_keeps_every_record_once() {
    let c = Cluster::start("restart", 1);
    let topic = fresh_topic("restart");
    create_topic(&c.bootstrap, &topic, 1, 1, &[]);
    let records = syslog_records(50_000);
    // Killed 0.6 s in, the broker may not have answered yet on a loaded machine, and its
    // restart may take longer than the default --connect-timeout.
    let args = ["-b", &c.bootstrap, "-t", &topic, "--connect-timeout", "5m"];
    let mut child = spawn(&args);
    let mut stdin = child.stdin.take().unwrap();
    feed(&mut stdin, &records, 1000, Duration::from_millis(40), |i| {
        if i == 15 {
            c.kill_node(1);
            std::thread::sleep(Duration::from_secs(1));
            c.start_node(1);
        }
    });
    drop(stdin);
    let run = wait_with_limit(child, Duration::from_secs(120));
    assert_status(&run, Status::Ok);
    let landed = read_topic(&c.bootstrap, &topic, records.len(), WAIT);
    assert_exactly_once_in_order(&landed, &records);
}

/// Sends `before` records with the broker up, kills it, sends `during`, then SIGTERM and EOF.
fn outage_run(
    c: &Cluster,
    topic: &str,
    extra: &[&str],
    before: &[String],
    during: &[String],
) -> Run {
    let mut args = vec!["-b", &c.bootstrap, "-t", topic, "--shutdown-timeout", "2s"];
    args.extend_from_slice(extra);
    let mut child = spawn(&args);
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all((before.join("\n") + "\n").as_bytes())
        .unwrap();
    let mut reader = TopicReader::new(&c.bootstrap, topic, Duration::from_secs(10));
    assert_eq!(
        reader.read_until(before.len(), Duration::from_secs(30), Duration::ZERO),
        before.len()
    );
    // A consumer can read a record before the producer has the broker's acknowledgement; give
    // it that moment, so "before" means acknowledged before the outage.
    std::thread::sleep(Duration::from_millis(500));
    c.kill_node(1);
    stdin
        .write_all((during.join("\n") + "\n").as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(200));
    drop(stdin);
    let started = Instant::now();
    let run = wait_with_limit(child, Duration::from_secs(30));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        started.elapsed()
    );
    run
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix} {i:05}")).collect()
}

#[test]
fn outage_then_sigterm_dead_letters_the_rest_and_replay_delivers_exactly_those() {
    let c = Cluster::start("outage-dlq", 1);
    let topic = fresh_topic("outage-dlq");
    create_topic(&c.bootstrap, &topic, 1, 1, &[]);
    let dlq = temp_dir("outage-dlq").join("dead.ndjson");
    let (before, during) = (numbered("before", 100), numbered("during", 500));
    let run = outage_run(
        &c,
        &topic,
        &["--dead-letter", dlq.to_str().unwrap()],
        &before,
        &during,
    );
    assert_status(&run, Status::TempFail);
    let dead = read_lines(&dlq);
    assert_eq!(dead.len(), during.len(), "{}", run.stderr);
    assert!(
        run.stderr.contains("600 read, 100 delivered, 500 failed"),
        "{}",
        run.stderr
    );

    c.start_node(1);
    let replay = kpipe(
        &["-b", &c.bootstrap, "-f", "envelope"],
        std::fs::read(&dlq).unwrap().as_slice(),
    );
    assert_status(&replay, Status::Ok);
    let landed = read_topic(&c.bootstrap, &topic, before.len() + during.len(), WAIT);
    let all: Vec<String> = before.iter().chain(&during).cloned().collect();
    assert_exactly_once_in_order(&landed, &all);
}

#[test]
fn outage_then_sigterm_spools_and_the_next_run_sends_the_spool_first() {
    let c = Cluster::start("outage-spool", 1);
    let topic = fresh_topic("outage-spool");
    create_topic(&c.bootstrap, &topic, 1, 1, &[]);
    let spool = temp_dir("outage-spool");
    let spool_arg = spool.to_str().unwrap();
    let (before, during) = (numbered("before", 100), numbered("during", 500));
    let run = outage_run(&c, &topic, &["--spool", spool_arg], &before, &during);
    assert_status(&run, Status::TempFail);
    assert!(run.stderr.contains("500 spooled"), "{}", run.stderr);

    c.start_node(1);
    let after = numbered("after", 100);
    let next = kpipe(
        &["-b", &c.bootstrap, "-t", &topic, "--spool", spool_arg],
        (after.join("\n") + "\n").as_bytes(),
    );
    assert_status(&next, Status::Ok);
    let all: Vec<String> = before
        .iter()
        .chain(&during)
        .chain(&after)
        .cloned()
        .collect();
    let landed = read_topic(&c.bootstrap, &topic, all.len(), WAIT);
    assert_exactly_once_in_order(&landed, &all);
    let left: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "spool not empty: {left:?}");
}

#[test]
fn two_runs_started_at_once_send_each_spooled_record_once() {
    let c = Cluster::start("spool-race", 1);
    let topic = fresh_topic("spool-race");
    create_topic(&c.bootstrap, &topic, 1, 1, &[]);
    let spool = temp_dir("spool-race");
    let spooled = numbered("spooled", 3000);
    let mut file = String::new();
    for v in &spooled {
        file.push_str(&format!(
            "{{\"topic\":\"{topic}\",\"value\":\"{v}\",\"error\":\"test\",\"failed_at\":0}}\n"
        ));
    }
    std::fs::write(spool.join("1-1.spool"), file).unwrap();
    let spool_arg = spool.to_str().unwrap().to_string();
    let runs: Vec<_> = (0..2)
        .map(|n| {
            let (b, t, s) = (c.bootstrap.clone(), topic.clone(), spool_arg.clone());
            std::thread::spawn(move || {
                kpipe(
                    &["-b", &b, "-t", &t, "--spool", &s],
                    format!("own {n}\n").as_bytes(),
                )
            })
        })
        .collect();
    for r in runs {
        let run = r.join().unwrap();
        assert_status(&run, Status::Ok);
    }
    let landed = read_topic(&c.bootstrap, &topic, spooled.len() + 2, WAIT);
    let values: Vec<String> = landed.iter().map(Landed::value_str).collect();
    for v in &spooled {
        assert_eq!(
            values.iter().filter(|x| *x == v).count(),
            1,
            "{v} not exactly once"
        );
    }
    assert_eq!(values.len(), spooled.len() + 2);
}
