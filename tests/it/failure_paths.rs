//! kpipe's own failure paths: a stderr that cannot be written, a full disk under the spool,
//! spool entries that are not kpipe's files. Each loses no record.

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::*;

const WAIT: Duration = Duration::from_secs(30);

fn envelope(topic: &str, value: &str) -> String {
    serde_json::json!({ "topic": topic, "value": value }).to_string()
}

fn spool_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "spool"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_stderr_that_cannot_be_written_loses_nothing() {
    let dir = temp_dir("stderr-full");
    let spool = dir.join("spool");
    let out = Command::new(kpipe_bin())
        .args(["-b", "127.0.0.1:1", "-t", "t", "--delivery-timeout", "2s"])
        .arg("--spool")
        .arg(&spool)
        .stdin(File::open(write_input(&dir, b"one\ntwo\n")).unwrap())
        .stdout(Stdio::null())
        .stderr(File::options().write(true).open("/dev/full").unwrap())
        .status()
        .expect("kpipe");
    assert_eq!(out.code(), Some(69), "{out:?}");
    let files = spool_files(&spool);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(read_lines(&files[0]).len(), 2);
}

fn write_input(dir: &std::path::Path, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join("input");
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn a_full_disk_while_respooling_keeps_the_spool_file_for_a_later_run() {
    let b = shared_brokers();
    let topic = fresh_topic("enospc");
    create_topic(b, &topic, 1, 1, &[]);
    let dir = temp_dir("enospc");
    let seed = dir.join("1-1.spool");
    let big = "x".repeat(20_000);
    let lines: Vec<String> = (0..3)
        .map(|i| envelope(&topic, &format!("{i}{big}")))
        .collect();
    std::fs::write(&seed, lines.join("\n") + "\n").unwrap();
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    // A real ENOSPC: a 100 KiB tmpfs in a private mount namespace, holding the 60 KB spool
    // file; the first run's rewrite of it does not fit. Then the disk grows and a second run
    // with the broker up sends it.
    let script = format!(
        r#"set -u
mount -t tmpfs -o size=100k,mode=700 tmpfs {mnt}
cp {seed} {mnt}/
{kpipe} -b 127.0.0.1:1 -t {topic} --spool {mnt} --delivery-timeout 1s --shutdown-timeout 1s < /dev/null 2> {dir}/first.err
echo $? > {dir}/first.code
ls {mnt} > {dir}/after-first.ls
mount -o remount,size=1m {mnt}
{kpipe} -b {b} -t {topic} --spool {mnt} < /dev/null 2> {dir}/second.err
echo $? > {dir}/second.code
ls {mnt} > {dir}/after-second.ls
"#,
        mnt = mnt.display(),
        seed = seed.display(),
        kpipe = kpipe_bin(),
        dir = dir.display(),
    );
    let read = in_private_mounts(&script, &dir);
    assert_out_of_space(&read("first.code"), &read("first.err"));
    assert!(
        read("after-first.ls").contains("1-1.spool\n"),
        "{}",
        read("after-first.ls")
    );
    assert!(
        !read("after-first.ls").contains(".tmp"),
        "{}",
        read("after-first.ls")
    );
    assert_eq!(read("second.code").trim(), "0", "{}", read("second.err"));
    assert!(
        !read("after-second.ls").contains(".spool"),
        "{}",
        read("after-second.ls")
    );
    let landed = read_topic(b, &topic, 3, WAIT);
    let mut firsts: Vec<char> = landed
        .iter()
        .map(|l| l.value_str().chars().next().unwrap_or('?'))
        .collect();
    firsts.sort();
    assert_eq!(firsts, vec!['0', '1', '2']);
}

#[test]
fn spool_entries_that_are_not_regular_files_are_skipped_and_the_rest_sent() {
    let b = shared_brokers();
    let topic = fresh_topic("notfiles");
    create_topic(b, &topic, 1, 1, &[]);
    let spool = temp_dir("notfiles");
    std::fs::create_dir(spool.join("1-1.spool")).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(spool.join("2-1.spool"))
        .status()
        .unwrap();
    assert!(fifo.success());
    std::os::unix::fs::symlink("/etc/hostname", spool.join("3-1.spool")).unwrap();
    let good = [envelope(&topic, "a"), envelope(&topic, "b")].join("\n") + "\n";
    std::fs::write(spool.join("4-1.spool"), good).unwrap();
    let mut child = spawn(&["-b", b, "-t", &topic, "--spool", spool.to_str().unwrap()]);
    drop(child.stdin.take());
    let run = wait_with_limit(child, WAIT);
    assert_status(&run, Status::Ok);
    assert!(run.stderr.contains("not a regular file"), "{}", run.stderr);
    assert_eq!(read_topic(b, &topic, 2, WAIT).len(), 2);
    assert!(!spool.join("4-1.spool").exists());
}

#[test]
fn corrupt_spool_lines_are_dead_lettered_and_counted() {
    let b = shared_brokers();
    let topic = fresh_topic("corrupt");
    create_topic(b, &topic, 1, 1, &[]);
    let dir = temp_dir("corrupt");
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let dl = dir.join("dead.ndjson");
    let text = format!(
        "{}\nnot an envelope\n{{\"topic\":\"{topic}\",\"val",
        envelope(&topic, "good")
    );
    std::fs::write(spool.join("1-1.spool"), text).unwrap();
    let run = kpipe(
        &[
            "-b",
            b,
            "-t",
            &topic,
            "--spool",
            spool.to_str().unwrap(),
            "--dead-letter",
            dl.to_str().unwrap(),
        ],
        b"",
    );
    assert_status(&run, Status::TempFail);
    assert!(run.stderr.contains("2 dead-lettered"), "{}", run.stderr);
    let dead = read_lines(&dl);
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead[0].contains("not an envelope") && dead[0].contains("line 2"));
    assert_eq!(read_topic(b, &topic, 1, WAIT).len(), 1);
    assert!(!spool.join("1-1.spool").exists());
}

#[test]
fn a_dead_letter_file_on_a_full_disk_is_not_claimed() {
    let topic = fresh_topic("dl-full");
    let run = kpipe(
        &[
            "-b",
            shared_brokers(),
            "-t",
            &topic,
            "--max-record-size",
            "5",
            "--dead-letter",
            "/dev/full",
        ],
        b"too long a record\n",
    );
    assert_status(&run, Status::IoErr);
    assert!(
        !run.stderr.contains("in the dead-letter file"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("1 lost"), "{}", run.stderr);
}

#[test]
fn a_topic_with_a_nul_byte_is_dead_lettered_at_once_and_never_spooled() {
    let dir = temp_dir("nul-topic");
    let spool = dir.join("spool");
    let dl = dir.join("dead.ndjson");
    let run = kpipe(
        &[
            "-b",
            shared_brokers(),
            "-f",
            "ndjson",
            "-t",
            "logs.${PROGRAM}",
            "--spool",
            spool.to_str().unwrap(),
            "--dead-letter",
            dl.to_str().unwrap(),
        ],
        b"{\"PROGRAM\":\"a\\u0000b\"}\n",
    );
    assert_status(&run, Status::TempFail);
    assert!(run.stderr.contains("invalid topic"), "{}", run.stderr);
    assert_eq!(read_lines(&dl).len(), 1);
    assert!(spool_files(&spool).is_empty());
}

#[test]
fn an_endless_line_is_cut_at_the_limit_and_memory_stays_bounded() {
    use std::io::Write;
    let dir = temp_dir("endless");
    let dl = dir.join("dead.ndjson");
    let topic = fresh_topic("endless");
    let mut child = spawn(&[
        "-b",
        shared_brokers(),
        "-t",
        &topic,
        "--max-record-size",
        "1MiB",
        "--dead-letter",
        dl.to_str().unwrap(),
    ]);
    let mut stdin = child.stdin.take().unwrap();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..200 {
        stdin.write_all(&chunk).unwrap();
    }
    stdin.flush().unwrap();
    // The peak so far, read while kpipe still runs: 200 MB went in without a newline.
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    stdin.write_all(b"\nafter\n").unwrap();
    drop(stdin);
    let run = wait_with_limit(child, WAIT);
    assert!(peak_kb < 100_000, "peak RSS {peak_kb} kB");
    assert_status(&run, Status::TempFail);
    let dead = read_lines(&dl);
    assert_eq!(dead.len(), 1, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!(v["value"].as_str().map(str::len), Some(1 << 20));
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains("byte 0") && error.contains("cut at 1048576 bytes"),
        "{error}"
    );
    let landed = read_topic(shared_brokers(), &topic, 1, WAIT);
    assert_eq!(landed.len(), 1);
    assert_eq!(landed[0].value_str(), "after");
}

#[test]
fn timestamp_key_headers_and_partition_survive_the_spool() {
    let b = shared_brokers();
    let topic = fresh_topic("roundtrip");
    create_topic(b, &topic, 2, 1, &[]);
    let dir = temp_dir("roundtrip");
    let spool = dir.join("spool");
    let line = serde_json::json!({
        "topic": topic, "partition": 1, "key": "/w==", "key_encoding": "base64",
        "value": "v", "headers": {"h": "x", "n": null}, "timestamp": 1_795_597_200_500_i64,
    })
    .to_string();
    let first = kpipe(
        &[
            "-b",
            "127.0.0.1:1",
            "-f",
            "envelope",
            "--delivery-timeout",
            "1s",
            "--spool",
            spool.to_str().unwrap(),
        ],
        format!("{line}\n").as_bytes(),
    );
    assert_status(&first, Status::Unavailable);
    let files = spool_files(&spool);
    let spooled: serde_json::Value = serde_json::from_str(&read_lines(&files[0])[0]).unwrap();
    assert_eq!(spooled["timestamp"], 1_795_597_200_500_i64);
    assert_eq!(spooled["partition"], 1);
    let second = kpipe(
        &[
            "-b",
            b,
            "-f",
            "envelope",
            "--spool",
            spool.to_str().unwrap(),
        ],
        b"",
    );
    assert_status(&second, Status::Ok);
    let landed = read_topic(b, &topic, 1, WAIT);
    assert_eq!(landed.len(), 1);
    let r = &landed[0];
    assert_eq!(r.timestamp, Some(1_795_597_200_500));
    assert_eq!(r.partition, 1);
    assert_eq!(r.key.as_deref(), Some(&b"\xff"[..]));
    assert_eq!(
        r.headers,
        vec![
            ("h".to_string(), Some(b"x".to_vec())),
            ("n".to_string(), None)
        ]
    );
}
