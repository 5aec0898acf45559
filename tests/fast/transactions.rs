//! `--atomic` and `--exactly-once` against the mock cluster's transaction coordinator.

use crate::mock::*;
use std::path::Path;
use std::time::Duration;

/// `-t TOPIC --exactly-once --spool SPOOL`.
fn exactly_once<'a>(topic: &'a str, spool: &'a Path) -> [&'a str; 5] {
    let spool = spool.to_str().unwrap();
    ["-t", topic, "--exactly-once", "--spool", spool]
}

#[test]
fn an_atomic_run_commits_everything_at_eof() {
    let m = Mock::new(1);
    m.topic("atomic", 3);
    let run = m.kpipe(&["-t", "atomic", "--atomic"], numbered(2000).as_bytes());
    m.assert_landed_once(&run, "atomic", 2000);
}

/// The mock cluster does not hide aborted records from read_committed consumers: that nothing
/// is visible is proved against Kafka (tests/it, transactions.rs); here, that kpipe aborts.
#[test]
fn an_atomic_run_with_a_malformed_record_under_on_error_exit_aborts() {
    let m = Mock::new(1);
    m.topic("atomic-bad", 1);
    let mut input = String::new();
    for i in 0..100 {
        input += &format!("{{\"n\":{i}}}\n");
    }
    input += "not json\n";
    let run = m.kpipe(
        &[
            "-f",
            "ndjson",
            "-t",
            "atomic-bad",
            "--atomic",
            "--on-error",
            "exit",
        ],
        input.as_bytes(),
    );
    assert_status(&run, Status::DataErr);
    assert!(
        run.stderr.contains("transaction was aborted"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_exactly_once_run_commits_and_its_rerun_sends_nothing_again() {
    let m = Mock::new(1);
    m.topic("eo", 1);
    m.offsets_topic();
    let dir = temp_dir("fast-eo");
    let spool = dir.join("spool");
    let args = exactly_once("eo", &spool);
    let run = m.kpipe(&args, numbered(3000).as_bytes());
    assert_status(&run, Status::Ok);
    let run = m.kpipe(&args, b"");
    m.assert_landed_once(&run, "eo", 3000);
}

#[test]
fn exactly_once_rides_out_retriable_produce_errors() {
    use rdkafka::types::RDKafkaApiKey::Produce;
    use rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
    let m = Mock::new(1);
    m.topic("eo-retry", 1);
    m.offsets_topic();
    let dir = temp_dir("fast-eo-retry");
    let spool = dir.join("spool");
    m.fail_next(Produce, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 5);
    let run = m.kpipe(&exactly_once("eo-retry", &spool), numbered(2000).as_bytes());
    m.assert_landed_once(&run, "eo-retry", 2000);
}

/// A commit the coordinator refuses once the input is over is aborted and sent again at once,
/// not left to the next run. (The mock cluster shows aborted records to read_committed
/// consumers: that each lands once is proved against Kafka, in tests/it's transactions.rs.)
#[test]
fn an_exactly_once_commit_aborted_after_the_input_is_sent_again_at_once() {
    use rdkafka::types::RDKafkaApiKey::EndTxn;
    use rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_INVALID_REQUEST;
    let m = Mock::new(1);
    m.topic("eo-end", 1);
    m.offsets_topic();
    let spool = temp_dir("fast-eo-end").join("spool");
    m.fail_next(EndTxn, RD_KAFKA_RESP_ERR_INVALID_REQUEST, 1);
    let args = exactly_once("eo-end", &spool);
    let run = m.kpipe(&args, numbered(2000).as_bytes());
    assert_status(&run, Status::Ok);
    assert!(
        run.stderr.contains("a transaction was aborted"),
        "{}",
        run.stderr
    );
    let mut got = values(&m.read("eo-end", 4000));
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 2000, "every record landed");
}

/// The log fills while transactions are still starting (a slow coordinator): it took the
/// input as bytes then, so it may end mid-record. Killed before its first commit, the run
/// leaves the log to the next one, which must not send that piece as a record.
#[test]
fn exactly_once_whose_log_fills_while_starting_leaves_no_record_cut() {
    let m = Mock::new(1);
    m.topic("eo-full-start", 1);
    m.offsets_topic();
    m.round_trip(1, Duration::from_millis(150));
    let dir = temp_dir("fast-eo-full-start");
    let input = dir.join("input");
    // 17 bytes a record: the log fills at a power of two, mid-record.
    let records: String = (0..40_000).map(|i| format!("record {i:09}\n")).collect();
    std::fs::write(&input, records).unwrap();
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let kpipe = format!(
        "{} -b {} -t eo-full-start --exactly-once --spool {}/spool",
        kpipe_bin(),
        m.bootstrap,
        mnt.display()
    );
    let script = format!(
        r#"set -u
mount -t tmpfs -o size=256k,mode=700 tmpfs {mnt}
{kpipe} < {input} 2> {dir}/first.err &
for i in $(seq 500); do grep -q "reading stops" {dir}/first.err && break; sleep 0.02; done
kill -9 $!
mount -o remount,size=4m {mnt}
{kpipe} < /dev/null 2> {dir}/second.err
echo $? > {dir}/second.code
cp {mnt}/spool/dead-letter.ndjson {dir}/dead.ndjson 2>/dev/null || true
"#,
        mnt = mnt.display(),
        input = input.display(),
        dir = dir.display(),
    );
    let read = in_private_mounts(&script, &dir);
    assert!(
        read("first.err").contains("No space left"),
        "{}",
        read("first.err")
    );
    assert!(
        read("second.err").contains("resending"),
        "{}",
        read("second.err")
    );
    // As many as the second run delivered, so the read does not wait for more.
    let delivered: usize = read("second.err")
        .lines()
        .last()
        .and_then(|l| {
            l.split(" delivered")
                .next()?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(1);
    let got = values(&m.read("eo-full-start", delivered));
    let cut: Vec<&String> = got.iter().filter(|v| v.len() != 16).collect();
    assert!(cut.is_empty(), "records cut short: {cut:?}");
    assert!(!got.is_empty(), "{}", read("second.err"));
    // Killed before it failed the record the log cut, the first run left its piece to the
    // second, which keeps it, named, in the spool's dead-letter file (copied out of the
    // private mount).
    let dead = read_lines(&dir.join("dead.ndjson"));
    let code = read("second.code");
    match dead.len() {
        0 => assert_eq!(code.trim(), "0", "{}", read("second.err")),
        _ => {
            assert_eq!(code.trim(), "75", "{}", read("second.err"));
            assert_eq!(dead.len(), 1);
            assert!(
                dead[0].contains("cut short where the last run stopped"),
                "{dead:?}"
            );
        }
    }
}

/// A run killed mid-record leaves a piece at the log's end: the next run keeps it in the
/// dead-letter file, named, and sends the whole records before it.
#[test]
fn exactly_once_keeps_the_piece_a_killed_run_left_in_the_log_unsent() {
    use std::os::unix::fs::DirBuilderExt;
    let m = Mock::new(1);
    m.topic("eo-piece", 1);
    m.offsets_topic();
    let spool = temp_dir("fast-eo-piece").join("spool");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(spool.join("log"))
        .unwrap();
    let log = numbered(100) + "record 00";
    std::fs::write(spool.join("log/00000000000000000000.log"), log).unwrap();
    let args = exactly_once("eo-piece", &spool);
    let run = m.kpipe(&args, b"");
    assert_status(&run, Status::TempFail);
    assert_each_once(&m.read("eo-piece", 100), 100);
    let dead = read_lines(&spool.join("dead-letter.ndjson"));
    assert_eq!(dead.len(), 1, "{}", run.stderr);
    assert!(
        dead[0].contains("line 101, byte 1500: cut short where the last run stopped"),
        "{dead:?}"
    );
    // Sent again after the input goes on, the log holds nothing more to withhold.
    let run = m.kpipe(&args, b"more\n");
    assert_status(&run, Status::Ok);
}

/// A run that found such a piece and was killed before a commit passed it leaves the piece in
/// the middle of the log, ended and marked, and maybe a piece of its own at the end: the next
/// run keeps both unsent.
#[test]
fn exactly_once_keeps_a_piece_unsent_after_a_second_kill() {
    use std::os::unix::fs::DirBuilderExt;
    let m = Mock::new(1);
    m.topic("eo-piece-twice", 1);
    m.offsets_topic();
    let spool = temp_dir("fast-eo-piece-twice").join("spool");
    let log = spool.join("log");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&log)
        .unwrap();
    let more: String = (100..150).map(|i| format!("record {i:07}\n")).collect();
    let text = numbered(100) + "record 00\n" + &more + "reco";
    std::fs::write(log.join("00000000000000000000.log"), text).unwrap();
    std::fs::write(log.join("cuts"), "1509\n").unwrap();
    let run = m.kpipe(&exactly_once("eo-piece-twice", &spool), b"");
    assert_status(&run, Status::TempFail);
    assert_each_once(&m.read("eo-piece-twice", 150), 150);
    let dead = read_lines(&spool.join("dead-letter.ndjson"));
    assert_eq!(dead.len(), 2, "{}", run.stderr);
    assert!(dead[0].contains("byte 1500: cut short"), "{dead:?}");
    assert!(dead[1].contains("byte 2260: cut short"), "{dead:?}");
}

/// `--confirm`: one OK when ready, then one for each line, once the log holds it.
#[test]
fn exactly_once_confirms_each_line_once_it_is_in_the_log() {
    let m = Mock::new(1);
    m.topic("eo-confirm", 1);
    m.offsets_topic();
    let spool = temp_dir("fast-eo-confirm").join("spool");
    let mut args = exactly_once("eo-confirm", &spool).to_vec();
    args.push("--confirm");
    let run = m.kpipe(&args, numbered(100).as_bytes());
    assert_status(&run, Status::Ok);
    assert_eq!(run.stdout_str(), "OK\n".repeat(101));
    assert_each_once(&m.read("eo-confirm", 100), 100);
    let run = m.kpipe(&["-t", "eo-confirm", "--confirm"], b"");
    assert_status(&run, Status::Usage);
}

/// `--drop-resent`: rsyslog sends the message a killed kpipe kept but did not confirm again,
/// first; equal to the log's last line, it is confirmed and not kept twice.
#[test]
fn exactly_once_drops_the_line_a_killed_run_kept_and_rsyslog_sent_again() {
    let m = Mock::new(1);
    m.topic("eo-resent", 1);
    m.offsets_topic();
    let spool = temp_dir("fast-eo-resent").join("spool");
    let mut args = exactly_once("eo-resent", &spool).to_vec();
    args.extend(["--confirm", "--drop-resent"]);
    let run = m.kpipe(&args, numbered(5).as_bytes());
    assert_status(&run, Status::Ok);
    // Starting takes a while: the resent line comes while it does, as from rsyslog.
    m.round_trip(1, Duration::from_millis(150));
    let again = numbered(6);
    let run = m.kpipe(&args, &again.as_bytes()[again.len() - 30..]);
    assert_status(&run, Status::Ok);
    assert_eq!(run.stdout_str(), "OK\n".repeat(3));
    assert_each_once(&m.read("eo-resent", 6), 6);
}
