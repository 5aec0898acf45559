//! Signals during a run, against the mock cluster.

use std::io::Write;
use std::time::Duration;

use crate::mock::*;

#[test]
fn sigterm_keeps_reading_what_the_pipe_holds_and_delivers_it() {
    let m = Mock::new(1);
    m.topic("term", 1);
    let mut child = spawn(&["-b", &m.bootstrap, "-t", "term"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(numbered(1000).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    drop(stdin);
    let run = wait_with_limit(child, Duration::from_secs(30));
    m.assert_landed_once(&run, "term", 1000);
}

#[test]
fn sigusr1_prints_the_statistics_line() {
    let m = Mock::new(1);
    m.topic("usr1", 1);
    let mut child = spawn(&["-b", &m.bootstrap, "-t", "usr1"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(numbered(10).as_bytes()).unwrap();
    assert_eq!(m.read("usr1", 10).len(), 10);
    signal(&child, "USR1");
    std::thread::sleep(Duration::from_millis(500));
    drop(stdin);
    let run = wait_with_limit(child, Duration::from_secs(30));
    assert_status(&run, Status::Ok);
    // Once for the signal, once at exit.
    let lines = run.stderr.matches("10 read, 10 delivered").count();
    assert_eq!(lines, 2, "{}", run.stderr);
}

/// The mock cluster does not hide aborted records from read_committed consumers: that nothing
/// is visible is proved against Kafka (tests/it, transactions.rs); here, that kpipe aborts.
#[test]
fn an_atomic_run_stopped_by_sigterm_aborts_its_transaction() {
    let m = Mock::new(1);
    m.topic("atomic-term", 1);
    let mut child = spawn(&["-b", &m.bootstrap, "-t", "atomic-term", "--atomic"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(numbered(100).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, "TERM");
    // The writer stays: the grace period runs out with the input still open.
    let run = wait_with_limit(child, Duration::from_secs(60));
    drop(stdin);
    assert_status(&run, Status::TempFail);
    assert!(
        run.stderr.contains("transaction was aborted"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_exactly_once_run_killed_and_run_again_delivers_each_record_once() {
    let m = Mock::new(1);
    m.topic("eo-kill", 1);
    m.offsets_topic();
    let dir = temp_dir("fast-eo-kill");
    let spool = dir.join("spool");
    let spool_arg = spool.to_str().unwrap();
    let mut child = spawn(&[
        "-b",
        &m.bootstrap,
        "-t",
        "eo-kill",
        "--exactly-once",
        "--spool",
        spool_arg,
    ]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(numbered(5000).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    signal(&child, "KILL");
    drop(stdin);
    let _ = wait_with_limit(child, Duration::from_secs(10));
    let run = m.kpipe(
        &["-t", "eo-kill", "--exactly-once", "--spool", spool_arg],
        b"",
    );
    m.assert_landed_once(&run, "eo-kill", 5000);
}
