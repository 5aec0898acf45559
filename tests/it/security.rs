//! Secured clusters, against Apache Kafka's own SSL, mTLS, SCRAM and PLAIN listeners with
//! certificates made for the test; secrets kept out of argv and output; files and topics kpipe
//! takes from others checked.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::util::*;

const WAIT: Duration = Duration::from_secs(30);
/// How fast a refused connection must be reported (the delivery timeout is 5 minutes).
const QUICK: Duration = Duration::from_secs(30);

fn lines(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("r{i}\n"))
        .collect::<String>()
        .into_bytes()
}

/// SASL_SSL as alice with SCRAM-SHA-512, the password from its file.
fn as_alice(s: &Secure) -> Vec<&str> {
    vec![
        "-b",
        s.get("SASL_SSL"),
        "--ca",
        s.get("CA"),
        "--sasl-mechanism",
        "SCRAM-SHA-512",
        "--sasl-username",
        "alice",
        "--sasl-password-file",
        s.get("PASSWORD_FILE"),
    ]
}

/// NDJSON routed by its PROGRAM field, sent as alice, with a dead-letter file.
fn routed_as_alice(s: &Secure, dead_letter: &std::path::Path, input: &str) -> Run {
    let mut args = as_alice(s);
    let dl = dead_letter.to_string_lossy();
    args.extend(["-f", "ndjson", "-t", "${PROGRAM}", "--dead-letter", &dl]);
    kpipe(&args, input.as_bytes())
}

fn password() -> String {
    let s = secure_cluster();
    std::fs::read_to_string(s.get("PASSWORD_FILE"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn tls_delivers_and_a_wrong_ca_fails_fast_naming_certificate_verification() {
    let s = secure_cluster();
    let topic = fresh_topic("sec-tls");
    let run = kpipe(
        &["-b", s.get("SSL"), "--ca", s.get("CA"), "-t", &topic],
        &lines(1000),
    );
    assert_status(&run, Status::Ok);
    assert_eq!(
        read_topic(&s.cluster.bootstrap, &topic, 1000, WAIT).len(),
        1000
    );
    let run = kpipe(
        &["-b", s.get("SSL"), "--ca", s.get("OTHER_CA"), "-t", &topic],
        &lines(3),
    );
    assert_status(&run, Status::Unavailable);
    assert!(run.elapsed < QUICK, "{:?}", run.elapsed);
    assert!(
        run.stderr.contains("certificate verify failed"),
        "{}",
        run.stderr
    );
}

#[test]
fn mutual_tls_delivers_with_a_client_certificate_and_is_refused_clearly_without() {
    let s = secure_cluster();
    let topic = fresh_topic("sec-mtls");
    let with = kpipe(
        &[
            "-b",
            s.get("MTLS"),
            "--ca",
            s.get("CA"),
            "--cert",
            s.get("CLIENT_CERT"),
            "--tls-key",
            s.get("CLIENT_KEY"),
            "-t",
            &topic,
        ],
        &lines(100),
    );
    assert_status(&with, Status::Ok);
    assert_eq!(
        read_topic(&s.cluster.bootstrap, &topic, 100, WAIT).len(),
        100
    );
    let without = kpipe(
        &["-b", s.get("MTLS"), "--ca", s.get("CA"), "-t", &topic],
        &lines(3),
    );
    assert_status(&without, Status::Unavailable);
    assert!(without.elapsed < QUICK, "{:?}", without.elapsed);
    assert!(
        without.stderr.contains("bad certificate") && without.stderr.contains("--cert"),
        "{}",
        without.stderr
    );
}

#[test]
fn scram_over_tls_and_plain_deliver_and_a_wrong_password_is_77_naming_authentication() {
    let s = secure_cluster();
    let topic = fresh_topic("sec-sasl");
    let mut args = as_alice(s);
    args.extend(["-t", &topic]);
    let scram = kpipe(&args, &lines(500));
    assert_status(&scram, Status::Ok);
    let plain = std::process::Command::new(kpipe_bin())
        .args(["-b", s.get("SASL_PLAINTEXT"), "--sasl-mechanism", "PLAIN"])
        .args(["--sasl-username", "alice", "-t", &topic])
        .env("KPIPE_SASL_PASSWORD", password())
        .stdin(std::fs::File::open(write_file("plain-input", &lines(500))).unwrap())
        .output()
        .unwrap();
    assert_eq!(plain.status.code(), Some(0), "{plain:?}");
    assert_eq!(
        read_topic(&s.cluster.bootstrap, &topic, 1000, WAIT).len(),
        1000
    );
    // A wrong password, with `extra` flags: its stderr and exit code.
    let wrong_password = |extra: &[&str], name: &str| {
        let out = std::process::Command::new(kpipe_bin())
            .args(extra)
            .args(["-b", s.get("SASL_SSL"), "--ca", s.get("CA")])
            .args([
                "--sasl-mechanism",
                "SCRAM-SHA-512",
                "--sasl-username",
                "alice",
            ])
            .args(["-t", &topic])
            .env("KPIPE_SASL_PASSWORD", "not-the-password")
            .stdin(std::fs::File::open(write_file(name, &lines(3))).unwrap())
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code(),
        )
    };
    let started = std::time::Instant::now();
    let (stderr, code) = wrong_password(&[], "wrong-input");
    assert_eq!(code, Some(77), "{stderr}");
    assert!(started.elapsed() < QUICK);
    assert!(stderr.contains("authentication"), "{stderr}");
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    // Said once, with what to check; under -q, in the one closing line.
    let said = stderr.matches("SASL authentication error").count();
    assert_eq!(said, 1, "{stderr}");
    assert!(!stderr.contains("brokers are down"), "{stderr}");
    let (stderr, code) = wrong_password(&["-q"], "wrong-input-quiet");
    assert_eq!(code, Some(77), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--sasl-username"), "{stderr}");
}

fn write_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = temp_dir(name).join("f");
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn a_topic_the_user_may_not_write_is_dead_lettered_naming_topic_and_principal() {
    let s = secure_cluster();
    let allowed = fresh_topic("sec-acl");
    let refused = fresh_topic("nope-acl");
    let dl = temp_dir("acl").join("dead.ndjson");
    let input: String = (0..20)
        .map(|i| {
            let program = if i % 2 == 0 { &allowed } else { &refused };
            format!("{{\"PROGRAM\":\"{program}\",\"i\":{i}}}\n")
        })
        .collect();
    let run = routed_as_alice(s, &dl, &input);
    assert_status(&run, Status::TempFail);
    assert_eq!(
        read_topic(&s.cluster.bootstrap, &allowed, 10, WAIT).len(),
        10
    );
    let dead = read_lines(&dl);
    assert_eq!(dead.len(), 10, "{dead:?}");
    for line in &dead {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let e = v["error"].as_str().unwrap();
        assert!(e.contains(&refused) && e.contains("User:alice"), "{e}");
    }
}

#[test]
fn the_password_shows_nowhere_however_it_is_given() {
    let s = secure_cluster();
    let pw = password();
    let topic = fresh_topic("sec-secret");
    let dir = temp_dir("secret");
    let conf = dir.join("client.properties");
    std::fs::write(
        &conf,
        format!(
            "# -F, like kcat\nsecurity.protocol=SASL_SSL\nssl.ca.location={}\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=alice\nsasl.password={pw}\n",
            s.get("CA")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = kpipe(
        &[
            "-F",
            conf.to_str().unwrap(),
            "-b",
            s.get("SASL_SSL"),
            "-t",
            &topic,
        ],
        b"x\n",
    );
    assert_status(&open, Status::Usage);
    assert!(open.stderr.contains("chmod 600") && !open.stderr.contains(&pw));
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let by_file = as_alice(s);
    let by_config = vec!["-b", s.get("SASL_SSL"), "-F", conf.to_str().unwrap()];
    for mut args in [by_file, by_config] {
        args.extend(["-t", &topic, "-vv"]);
        let mut child = spawn(&args);
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"one\n").unwrap();
        }
        let run = wait_with_limit(child, WAIT);
        assert_status(&run, Status::Ok);
        assert!(!String::from_utf8_lossy(&cmdline).contains(&pw));
        assert!(!run.stderr.contains(&pw), "the password is in -vv output");
    }
    let by_env = std::process::Command::new(kpipe_bin())
        .args([
            "-b",
            s.get("SASL_SSL"),
            "--ca",
            s.get("CA"),
            "-t",
            &topic,
            "-vv",
        ])
        .args([
            "--sasl-mechanism",
            "SCRAM-SHA-512",
            "--sasl-username",
            "alice",
        ])
        .env("KPIPE_SASL_PASSWORD", &pw)
        .stdin(std::fs::File::open(write_file("env-input", b"one\n")).unwrap())
        .output()
        .unwrap();
    assert_eq!(by_env.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&by_env.stderr).contains(&pw));
    let x = kpipe(&["-t", "t", "-X", &format!("sasl.password={pw}")], b"x\n");
    assert_status(&x, Status::Usage);
    assert!(!x.stderr.contains(&pw) && x.stderr.contains("--sasl-password-file"));
}

#[test]
fn spool_and_dead_letter_files_are_private_and_an_open_spool_directory_is_refused() {
    let dir = temp_dir("files");
    let spool = dir.join("spool");
    let dl = dir.join("dead.ndjson");
    let run = kpipe(
        &[
            "-b",
            "127.0.0.1:1",
            "-t",
            "t",
            "--delivery-timeout",
            "1s",
            "--max-record-size",
            "3",
            "--spool",
            spool.to_str().unwrap(),
            "--dead-letter",
            dl.to_str().unwrap(),
        ],
        b"too long\nok\n",
    );
    assert_status(&run, Status::Unavailable);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&spool), 0o700);
    assert_eq!(mode(&dl), 0o600);
    for f in std::fs::read_dir(&spool).unwrap() {
        assert_eq!(mode(&f.unwrap().path()), 0o600);
    }
    let open = dir.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = kpipe(&["-t", "t", "--spool", open.to_str().unwrap()], b"x\n");
    assert_status(&run, Status::CantCreat);
    assert!(
        run.stderr.contains("writable by group or others"),
        "{}",
        run.stderr
    );
    let theirs = dir.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let run = kpipe(&["-t", "t", "--spool", theirs.to_str().unwrap()], b"x\n");
    assert_status(&run, Status::CantCreat);
}

#[test]
fn a_planted_lock_symlink_is_not_followed() {
    let dir = temp_dir("lock-link");
    let spool = dir.join("spool");
    std::fs::create_dir(&spool).unwrap();
    let target = dir.join("created-through-the-link");
    std::os::unix::fs::symlink(&target, spool.join(".lock")).unwrap();
    let run = kpipe(&["--dry-run", "-t", "t"], b"x\n");
    assert_status(&run, Status::Ok);
    let run = kpipe(
        &[
            "-b",
            "127.0.0.1:1",
            "-t",
            "t",
            "--spool",
            spool.to_str().unwrap(),
        ],
        b"",
    );
    assert_ne!(run.code(), 0, "{}", run.stderr);
    assert!(
        !target.exists(),
        "kpipe created a file through a planted symlink"
    );
}

#[test]
fn topics_a_sender_chooses_are_checked_before_they_reach_the_broker() {
    let b = shared_brokers();
    let dir = temp_dir("topic-safety");
    let dl = dir.join("dead.ndjson");
    let fallback = fresh_topic("unrouted");
    let long = "x".repeat(600);
    let ok = fresh_topic("safe");
    let programs = [
        "../../x",
        "a b",
        "__consumer_offsets",
        long.as_str(),
        ok.as_str(),
    ];
    let input: String = programs
        .iter()
        .map(|p| format!("{{\"PROGRAM\":\"{p}\"}}\n"))
        .collect();
    let run = kpipe(
        &[
            "-b",
            b,
            "-f",
            "ndjson",
            "-t",
            "${PROGRAM}",
            "--dead-letter",
            dl.to_str().unwrap(),
        ],
        input.as_bytes(),
    );
    assert_status(&run, Status::TempFail);
    assert_eq!(read_lines(&dl).len(), 4, "{}", run.stderr);
    assert_eq!(read_topic(b, &ok, 1, WAIT).len(), 1);
    // --topic-allow narrows further; what it refuses goes to the fallback topic.
    let allow = format!("{ok}|other");
    let run = kpipe(
        &[
            "-b",
            b,
            "-f",
            "ndjson",
            "-t",
            "${PROGRAM}",
            "--topic-allow",
            &allow,
            "--fallback-topic",
            &fallback,
        ],
        input.as_bytes(),
    );
    assert_status(&run, Status::Ok);
    let unrouted = read_topic(b, &fallback, 4, WAIT);
    assert_eq!(unrouted.len(), 4);
    assert!(unrouted.iter().all(|l| l.header("kpipe.error").is_some()));
}

#[test]
fn control_characters_from_the_input_are_escaped_on_stderr() {
    let run = kpipe(
        &["--dry-run", "-f", "envelope"],
        b"{\"topic\":\"a\\u001b[2K\\nkpipe: 0 read\",\"value\":\"x\"}\n",
    );
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
    assert!(
        run.stderr.lines().all(|l| !l.starts_with("kpipe: 0 read")),
        "{}",
        run.stderr
    );
}

#[test]
fn ten_thousand_topics_all_refused_by_acl_are_75_not_unreachable() {
    let s = secure_cluster();
    let prefix = fresh_topic("nope-many");
    let dl = temp_dir("acl-many").join("dead.ndjson");
    let input: String = (0..10_000)
        .map(|i| format!("{{\"PROGRAM\":\"{prefix}-{i}\"}}\n"))
        .collect();
    let run = routed_as_alice(s, &dl, &input);
    assert_status(&run, Status::TempFail);
    assert!(!run.stderr.contains("no broker"), "{}", run.stderr);
    assert_eq!(read_lines(&dl).len(), 10_000);
}
