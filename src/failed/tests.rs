//! The ledger: where each failed record goes, and when it counts.
use super::*;
use crate::reason::{Position, Problem};
use rdkafka::types::RDKafkaErrorCode;
use std::fs;

fn rec() -> Record<'static> {
    Record {
        topic: "t",
        key: Some(b"k"),
        value: Some(b"v"),
        timestamp: Some(7),
        ..Record::default()
    }
}

fn passing() -> Reason {
    Reason::Kafka {
        code: Some(RDKafkaErrorCode::MessageTimedOut),
        text: "Local: Message timed out".into(),
    }
}

fn permanent() -> Reason {
    Reason::Malformed {
        at: Position::default(),
        problem: Problem::BadTimestamp,
        hint: false,
    }
}

fn lines(p: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn passing_failures_go_to_the_spool_published_at_close() {
    let d = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(None, Some(d.path())).unwrap();
    ledger.failed(Origin::stdin(None), &rec(), &passing(), Stored::Maybe);
    assert_eq!(
        ledger.counters.snapshot().spooled,
        0,
        "counted before it is synced"
    );
    ledger.sync().unwrap();
    let t = ledger.counters.snapshot();
    assert_eq!((t.spooled, t.in_doubt, t.lost), (1, 1, 0));
    let names = || -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert!(names()[0].ends_with(".spool.tmp"));
    ledger.close().unwrap();
    let published = names();
    assert!(published[0].ends_with(".spool"), "{published:?}");
    let got = lines(&d.path().join(&published[0]));
    assert_eq!(got[0]["topic"], "t");
    assert_eq!(got[0]["key"], "k");
    assert_eq!(got[0]["timestamp"], 7);
    assert_eq!(got[0]["error"], "Local: Message timed out");
    assert!(got[0]["failed_at"].as_i64().unwrap() > 0);
}

#[test]
fn permanent_failures_go_to_the_dead_letter_file_even_with_a_spool() {
    let d = tempfile::tempdir().unwrap();
    let dl = d.path().join("dl.ndjson");
    let ledger = Ledger::new(Some(&dl), Some(&d.path().join("spool"))).unwrap();
    ledger.failed(Origin::stdin(None), &rec(), &permanent(), Stored::No);
    ledger.sync().unwrap();
    assert_eq!(ledger.counters.snapshot().dead_lettered, 1);
    assert_eq!(lines(&dl)[0]["value"], "v");
    assert_eq!(ledger.last_error(), Some(permanent()));
}

#[test]
fn without_a_spool_passing_failures_go_to_the_dead_letter_file() {
    let d = tempfile::tempdir().unwrap();
    let dl = d.path().join("dl.ndjson");
    let ledger = Ledger::new(Some(&dl), None).unwrap();
    ledger.failed(Origin::stdin(None), &rec(), &passing(), Stored::No);
    ledger.sync().unwrap();
    assert_eq!(ledger.counters.snapshot().dead_lettered, 1);
}

#[test]
fn with_no_outlet_a_failure_is_counted_lost() {
    let ledger = Ledger::new(None, None).unwrap();
    ledger.failed(Origin::stdin(None), &rec(), &permanent(), Stored::No);
    ledger.failed(Origin::stdin(None), &rec(), &passing(), Stored::No);
    assert_eq!(ledger.counters.snapshot().lost, 2);
    assert_eq!(ledger.outlet_names(), (None, None));
}

#[test]
fn a_delivered_replay_record_settles_its_spool_file() {
    let d = tempfile::tempdir().unwrap();
    let old = d.path().join("1-1.spool");
    fs::write(&old, b"{}\n").unwrap();
    let ledger = Ledger::new(None, Some(d.path())).unwrap();
    let n = ledger.replay_add(old.clone());
    ledger.replay_sent(n);
    ledger.replay_read_done(n);
    ledger.delivered(Origin::spool(n, None));
    assert!(!old.exists());
    assert_eq!(ledger.counters.snapshot().delivered, 1);
}

#[test]
fn a_respooled_replay_record_keeps_its_file_until_the_new_one_is_published() {
    let d = tempfile::tempdir().unwrap();
    let old = d.path().join("1-1.spool");
    fs::write(&old, b"{}\n").unwrap();
    let ledger = Ledger::new(None, Some(d.path())).unwrap();
    let n = ledger.replay_add(old.clone());
    ledger.replay_sent(n);
    ledger.replay_read_done(n);
    ledger.failed(Origin::spool(n, None), &rec(), &passing(), Stored::No);
    assert!(old.exists());
    ledger.close().unwrap();
    assert!(!old.exists());
}

#[test]
fn sighup_reopens_the_dead_letter_file_by_name() {
    let d = tempfile::tempdir().unwrap();
    let dl = d.path().join("dl.ndjson");
    let ledger = Ledger::new(Some(&dl), None).unwrap();
    ledger.failed(Origin::stdin(None), &rec(), &permanent(), Stored::No);
    ledger.sync().unwrap();
    fs::rename(&dl, d.path().join("dl.1")).unwrap();
    ledger.reopen_dead_letter().unwrap();
    ledger.failed(Origin::stdin(None), &rec(), &permanent(), Stored::No);
    ledger.close().unwrap();
    assert_eq!(lines(&dl).len(), 1);
    assert_eq!(lines(&d.path().join("dl.1")).len(), 1);
}

#[test]
fn a_dead_letter_file_that_cannot_be_written_counts_its_records_lost() {
    let ledger = Ledger::new(Some(Path::new("/dev/full")), None).unwrap();
    ledger.failed(Origin::stdin(None), &rec(), &permanent(), Stored::No);
    assert!(ledger.sync().is_err());
    let t = ledger.counters.snapshot();
    assert_eq!((t.dead_lettered, t.lost), (0, 1));
    assert!(ledger
        .write_error()
        .is_some_and(|e| e.contains("/dev/full")));
}

#[test]
fn a_replayed_record_no_file_takes_keeps_its_spool_file() {
    let d = tempfile::tempdir().unwrap();
    let old = d.path().join("1-1.spool");
    fs::write(&old, b"{}\n").unwrap();
    let ledger = Ledger::new(Some(Path::new("/dev/full")), None).unwrap();
    let n = ledger.replay_add(old.clone());
    ledger.replay_sent(n);
    ledger.replay_read_done(n);
    ledger.failed(Origin::spool(n, None), &rec(), &passing(), Stored::No);
    assert!(ledger.close().is_err());
    assert!(old.exists(), "the only copy of the record was removed");
    let t = ledger.counters.snapshot();
    assert_eq!((t.lost, t.spooled), (0, 1));
}

#[test]
fn a_corrupt_spool_line_goes_to_the_dead_letter_file() {
    let d = tempfile::tempdir().unwrap();
    let dl = d.path().join("dl.ndjson");
    let ledger = Ledger::new(Some(&dl), None).unwrap();
    let reason = Reason::CorruptSpool {
        file: "x.spool".into(),
        line: 2,
        problem: Problem::Envelope("invalid envelope".into()),
    };
    ledger.set_aside(1, &d.path().join("x.spool"), b"{\"topic\":", &reason);
    ledger.sync().unwrap();
    assert_eq!(ledger.counters.snapshot().dead_lettered, 1);
    let got = lines(&dl);
    assert_eq!(got[0]["value"], "{\"topic\":");
    assert!(got[0]["error"]
        .as_str()
        .unwrap()
        .contains("x.spool, line 2"));
}

#[test]
fn without_a_dead_letter_file_a_corrupt_spool_line_is_kept_beside_its_file() {
    let d = tempfile::tempdir().unwrap();
    let ledger = Ledger::new(None, Some(d.path())).unwrap();
    let reason = Reason::CorruptSpool {
        file: "x.spool".into(),
        line: 1,
        problem: Problem::Envelope("invalid envelope".into()),
    };
    ledger.set_aside(1, &d.path().join("x.spool"), b"garbage", &reason);
    assert_eq!(ledger.counters.snapshot().set_aside, 1);
    assert_eq!(
        fs::read(d.path().join("x.spool.bad")).unwrap(),
        b"garbage\n"
    );
}

#[test]
fn a_replayed_record_that_fails_for_good_with_no_outlet_is_lost_and_its_file_goes() {
    let d = tempfile::tempdir().unwrap();
    let old = d.path().join("1-1.spool");
    fs::write(&old, b"{}\n").unwrap();
    let ledger = Ledger::new(None, Some(d.path())).unwrap();
    let n = ledger.replay_add(old.clone());
    ledger.replay_sent(n);
    ledger.replay_read_done(n);
    ledger.failed(Origin::spool(n, None), &rec(), &permanent(), Stored::No);
    ledger.close().unwrap();
    assert!(
        !old.exists(),
        "a record that can never be sent would be replayed forever"
    );
    assert_eq!(ledger.counters.snapshot().lost, 1);
}
