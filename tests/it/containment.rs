//! A full disk, another local user, a typo or a terminal cost nothing but themselves: what fits
//! is kept, planted files are refused, secrets stay unsaid, mismatched listeners and Ctrl-C end
//! the run at once, and a failed stdout is not taken for delivery.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// Runs `sh -c script` as user nobody.
fn as_nobody(script: &str) {
    let ok = Command::new("setpriv")
        .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .args(["sh", "-c", script])
        .status()
        .expect("setpriv")
        .success();
    assert!(ok, "as nobody: {script}");
}

/// A directory anyone may create files in, as /tmp or a group-writable log directory.
fn shared_dir(name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
    // Its parents must let nobody reach it.
    let mut p = dir.parent();
    while let Some(d) = p {
        if d == Path::new("/") {
            break;
        }
        let mode = fs::metadata(d).unwrap().permissions().mode();
        fs::set_permissions(d, fs::Permissions::from_mode(mode | 0o011)).unwrap();
        p = d.parent();
    }
    dir
}

#[test]
fn spool_and_dead_letter_on_one_full_disk_keep_what_fits_and_count_the_rest() {
    let dir = temp_dir("full-both");
    let input = dir.join("input");
    let lines: String = (0..5000)
        .map(|i| format!("record {i:05} {}\n", "x".repeat(60)))
        .collect();
    fs::write(&input, lines).unwrap();
    let mnt = dir.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let script = format!(
        r#"set -u
mount -t tmpfs -o size=100k,mode=700 tmpfs {mnt}
{kpipe} -b 127.0.0.1:1 -t t --spool {mnt}/spool --dead-letter {mnt}/dl.ndjson --delivery-timeout 1s < {input} 2> {dir}/run.err
echo $? > {dir}/run.code
cat {mnt}/spool/*.spool {mnt}/dl.ndjson 2>/dev/null | wc -l > {dir}/kept
"#,
        mnt = mnt.display(),
        input = input.display(),
        kpipe = kpipe_bin(),
        dir = dir.display(),
    );
    let read = in_private_mounts(&script, &dir);
    assert_out_of_space(&read("run.code"), &read("run.err"));
    let kept: u64 = read("kept").trim().parse().unwrap();
    assert!(kept >= 200, "{kept} kept; {}", read("run.err"));
    let err = read("run.err");
    let lost = format!("{} lost", 5000 - kept);
    assert!(err.contains(&lost), "expected {lost}: {err}");
}

#[test]
fn dead_letter_and_stats_files_another_user_planted_are_refused() {
    let dir = shared_dir("planted");
    let target = dir.join("roots-file");
    fs::write(&target, "root's\n").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
    let d = dir.display();
    as_nobody(&format!(
        "ln -s {d}/roots-file {d}/dl.ndjson && ln -s {d}/roots-file {d}/stats.json && umask 0 && touch {d}/open.ndjson"
    ));
    for args in [
        vec!["--dead-letter", "dl.ndjson"],
        vec!["--stats", "stats.json"],
        vec!["--dead-letter", "open.ndjson"],
    ] {
        let path = dir.join(args[1]).to_string_lossy().into_owned();
        let run = kpipe(&["-b", "127.0.0.1:1", "-t", "t", args[0], &path], b"one\n");
        assert_status(&run, Status::CantCreat);
        assert!(run.stderr.contains(args[1]), "{}", run.stderr);
    }
    assert_eq!(fs::read_to_string(&target).unwrap(), "root's\n");
    assert_eq!(fs::read(dir.join("open.ndjson")).unwrap(), b"");
}

#[test]
fn an_atomic_log_directory_another_user_made_first_is_refused() {
    let dir = shared_dir("atomic-planted");
    let dl = dir.join("dl.ndjson").to_string_lossy().into_owned();
    // The private log is named by kpipe's pid: the shell plants it for its own pid as nobody,
    // then becomes kpipe (exec keeps the pid), so the name is the one kpipe will choose.
    let plant = "setpriv --reuid nobody --regid nogroup --clear-groups \
                 mkdir \"$0/.kpipe-atomic-$$\" && exec \"$@\"";
    let mut sh = Command::new("sh");
    sh.args(["-c", plant, &dir.to_string_lossy(), kpipe_bin()])
        .args(["-b", shared_brokers(), "-t", "t"])
        .args(["--atomic", "--dead-letter", &dl]);
    let child = piped(&mut sh).spawn().expect("starting kpipe");
    let run = run_with_input(child, b"secret record\n");
    assert_status(&run, Status::CantCreat);
    assert!(run.stderr.contains("exists already"), "{}", run.stderr);
}

#[test]
fn a_misspelt_secret_in_a_properties_file_is_never_shown_and_needs_a_private_file() {
    let dir = temp_dir("misspelt");
    let file = dir.join("client.properties");
    fs::write(&file, "sasl.pasword=hunter2-s3cret\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let f = file.to_string_lossy().into_owned();
    let run = kpipe(&["-b", "127.0.0.1:1", "-t", "t", "-F", &f], b"one\n");
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    assert!(run.stderr.contains("sasl.pasword"), "{}", run.stderr);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let run = kpipe(&["-b", "127.0.0.1:1", "-t", "t", "-F", &f], b"one\n");
    assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    let run = kpipe(
        &["-b", "127.0.0.1:1", "-t", "t", "-X", "foo.bar=hunter2"],
        b"one\n",
    );
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

/// Asserts that a run at a listener of the other protocol ended with 69 and the hint, well
/// before --delivery-timeout's default of five minutes (the time is only shown).
fn assert_mismatch(run: &Run) {
    assert_status(run, Status::Unavailable);
    assert!(run.stderr.contains("another protocol"), "{}", run.stderr);
    assert!(run.elapsed < Duration::from_secs(120), "{:?}", run.elapsed);
    eprintln!("ended after {:?}", run.elapsed);
}

#[test]
fn tls_to_a_plaintext_listener_ends_at_once_with_69() {
    let s = secure_cluster();
    let args = [
        "-b",
        shared_brokers(),
        "--ca",
        s.get("CA"),
        "-t",
        "sec-mismatch",
    ];
    assert_mismatch(&kpipe(&args, b"one\n"));
}

#[test]
fn plaintext_to_a_tls_listener_ends_at_once_with_69() {
    let s = secure_cluster();
    let dir = temp_dir("plaintext-to-tls");
    let dl = dir.join("dl.ndjson");
    let dl_arg = dl.to_string_lossy().into_owned();
    for listener in ["SSL", "MTLS", "SASL_SSL"] {
        let args = [
            "-b",
            s.get(listener),
            "-t",
            "sec-mismatch",
            "--dead-letter",
            &dl_arg,
        ];
        let run = kpipe(&args, b"one\n");
        assert_mismatch(&run);
    }
    assert_eq!(read_lines(&dl).len(), 3, "each run's record kept");
}

#[test]
fn dry_run_counts_what_a_failed_stdout_did_not_take() {
    let input: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
    let out = Command::new(kpipe_bin())
        .args(["--dry-run", "-t", "t"])
        .stdin(Stdio::piped())
        .stdout(fs::File::options().write(true).open("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = run_with_input(out, input.as_bytes());
    assert_status(&run, Status::IoErr);
    assert!(run.stderr.contains("100000 lost"), "{}", run.stderr);
}

/// Runs a shell command under `script`, so that its terminal is a pseudo-terminal.
fn on_a_terminal(command: &str, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let started = Instant::now();
    let mut child = Command::new("script")
        .args(["-qec", command, "/dev/null"])
        // Held open: an input that ended would be passed on to the terminal as an EOF.
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("script");
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{command} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_fifo_whose_writer_left_is_read_to_its_end_with_stderr_on_a_terminal() {
    let dir = temp_dir("fifo-tty");
    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let err = dir.join("err");
    let command = format!(
        "(printf 'a\\nb\\n' > {f}) & {kpipe} --dry-run -t t < {f} > /dev/null; echo $? > {e}",
        f = fifo.display(),
        kpipe = kpipe_bin(),
        e = err.display(),
    );
    on_a_terminal(&command, Duration::from_secs(30));
    assert_eq!(fs::read_to_string(&err).unwrap().trim(), "0");
}

#[test]
fn ctrl_c_at_a_terminal_stops_reading_at_once_and_says_so() {
    let dir = temp_dir("ctrl-c");
    let err = dir.join("err");
    // kpipe reads the terminal; SIGINT comes a second in, as from Ctrl-C (`$$` is the shell
    // that kpipe replaces).
    let command = format!(
        "(sleep 1; kill -INT $$) & exec {kpipe} --dry-run -t t 2> {e} > /dev/null",
        kpipe = kpipe_bin(),
        e = err.display(),
    );
    let (status, took) = on_a_terminal(&command, Duration::from_secs(30));
    let stderr = fs::read_to_string(&err).unwrap();
    assert!(stderr.contains("interrupted"), "{stderr}");
    // Before, it read on for --shutdown-timeout (10 s).
    assert!(took < Duration::from_secs(8), "took {took:?}: {stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn a_report_quoting_a_huge_field_stays_one_short_line() {
    let huge = "p".repeat(1_800_000);
    let line = format!("{{\"PROGRAM\":\"{huge}!\"}}\n");
    let run = kpipe(
        &[
            "--dry-run",
            "-f",
            "ndjson",
            "-t",
            "logs.${PROGRAM}",
            "--max-record-size",
            "4MiB",
        ],
        line.as_bytes(),
    );
    assert!(
        run.stderr.len() < 20_000,
        "{} bytes of stderr",
        run.stderr.len()
    );
    assert!(
        run.stderr.contains("bytes more not shown"),
        "{}",
        &run.stderr[..200.min(run.stderr.len())]
    );
}

#[test]
fn a_second_atomic_job_with_the_same_default_id_refuses_to_start() {
    let b = shared_brokers();
    let topic = fresh_topic("atomic-twice");
    create_topic(b, &topic, 1, 1, &[]);
    let dir = temp_dir("atomic-twice");
    let dl = dir.join("dl.ndjson").to_string_lossy().into_owned();
    let mut first = spawn(&["-b", b, "-t", &topic, "--atomic", "--dead-letter", &dl]);
    let mut stdin = first.stdin.take().unwrap();
    {
        use std::io::Write;
        stdin.write_all(b"first 1\nfirst 2\n").unwrap();
    }
    std::thread::sleep(Duration::from_secs(2));
    let second = kpipe(&["-b", b, "-t", &topic, "--atomic"], b"second\n");
    assert_status(&second, Status::TempFail);
    assert!(
        second.stderr.contains("transactional id"),
        "{}",
        second.stderr
    );
    drop(stdin);
    let first = wait_with_limit(first, Duration::from_secs(60));
    assert_status(&first, Status::Ok);
    let landed = read_topic(b, &topic, 2, Duration::from_secs(30));
    assert_eq!(landed.len(), 2, "{}", first.stderr);
}

#[test]
fn empty_lines_are_counted_as_skipped() {
    let dir = temp_dir("empty-lines");
    let stats = dir.join("stats.json").to_string_lossy().into_owned();
    let run = kpipe(
        &["--dry-run", "-t", "t", "--stats", &stats],
        b"a\n\nb\n\n\n",
    );
    assert_status(&run, Status::Ok);
    assert!(run.stderr.contains("2 read"), "{}", run.stderr);
    assert!(run.stderr.contains("3 empty skipped"), "{}", run.stderr);
    let last = read_lines(Path::new(&stats)).pop().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&last).expect("a stats line");
    assert_eq!(v["empty_skipped"], 3, "{last}");
}
