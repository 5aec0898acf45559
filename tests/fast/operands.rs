//! Files named on the command line: read in order as one input, each named in reports.

use std::path::Path;

use crate::mock::*;

/// Writes `text` to `name` in `dir`; returns its path as an argument.
fn file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn files_and_standard_input_are_read_in_order_and_a_last_line_without_newline_stays_whole() {
    let m = Mock::new(1);
    m.topic("files", 1);
    let dir = temp_dir("fast-files");
    let a = file(&dir, "a.log", "one\ntwo");
    let b = file(&dir, "b.log", "three\n");
    let run = m.kpipe(&["-t", "files", &a, "-", &b], b"from stdin");
    assert_status(&run, Status::Ok);
    assert_eq!(
        values(&m.read("files", 4)),
        ["one", "two", "from stdin", "three"]
    );
}

#[test]
fn a_malformed_record_is_named_by_its_file_line_and_byte() {
    let m = Mock::new(1);
    m.topic("files-bad", 1);
    let dir = temp_dir("fast-files-bad");
    let a = file(&dir, "a.ndjson", "{}\n{}\n");
    let b = file(&dir, "b.ndjson", "{}\n{oops\n{}\n");
    let args = ["-f", "ndjson", "-t", "files-bad", &a, &b];
    let run = m.kpipe(&args, b"");
    let named = format!("{b}: line 2, byte 3: invalid JSON");
    assert!(run.stderr.contains(&named), "{}", run.stderr);
    // Sent as it is (--on-error's default), with the same words in its kpipe.error header.
    let landed = m.read("files-bad", 5);
    assert_eq!(landed.len(), 5);
    let marked: Vec<_> = landed
        .iter()
        .filter(|l| l.header("kpipe.error").is_some_and(|h| h.contains(&named)))
        .collect();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].value_str(), "{oops");
}

#[test]
fn a_file_that_cannot_be_read_ends_the_run_before_anything_is_sent() {
    let m = Mock::new(1);
    m.topic("files-missing", 1);
    let dir = temp_dir("fast-files-missing");
    let a = file(&dir, "a.log", "one\n");
    let missing = dir.join("nope.log");
    let run = m.kpipe(&["-t", "files-missing", &a, missing.to_str().unwrap()], b"");
    assert_status(&run, Status::NoInput);
    assert!(run.stderr.contains("nope.log"), "{}", run.stderr);
    let run = m.kpipe(&["-t", "files-missing", dir.to_str().unwrap()], b"");
    assert_status(&run, Status::NoInput);
    assert!(run.stderr.contains("is a directory"), "{}", run.stderr);
    let run = m.kpipe(&["-t", "files-missing", &a], b"");
    assert_status(&run, Status::Ok);
    assert_eq!(values(&m.read("files-missing", 1)), ["one"]);
}

#[test]
fn exactly_once_takes_standard_input_only() {
    let dir = temp_dir("fast-files-eo");
    let a = file(&dir, "a.log", "one\n");
    let spool = dir.join("spool");
    let run = kpipe(
        &[
            "-b",
            "127.0.0.1:1",
            "-t",
            "t",
            "--exactly-once",
            "--spool",
            spool.to_str().unwrap(),
            &a,
        ],
        b"",
    );
    assert_status(&run, Status::Usage);
    assert!(run.stderr.contains("--atomic"), "{}", run.stderr);
}
