//! `--atomic` and `--exactly-once` against the mock cluster's transaction coordinator.

use crate::mock::*;

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
    let args = [
        "-t",
        "eo",
        "--exactly-once",
        "--spool",
        spool.to_str().unwrap(),
    ];
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
    let run = m.kpipe(
        &[
            "-t",
            "eo-retry",
            "--exactly-once",
            "--spool",
            spool.to_str().unwrap(),
        ],
        numbered(2000).as_bytes(),
    );
    m.assert_landed_once(&run, "eo-retry", 2000);
}
