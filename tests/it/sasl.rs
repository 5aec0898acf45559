//! OAUTHBEARER (OIDC client credentials) and GSSAPI (Kerberos) against Apache Kafka's own
//! listeners: a JWKS-checked OAUTH listener fed by the small issuer in `issuer.rs`, and a
//! KERBEROS listener behind a throwaway MIT KDC on loopback (`scripts/kafka-local start --secure`).

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::issuer::{Issuer, CLIENT_ID, CLIENT_SECRET};
use crate::util::*;

const WAIT: Duration = Duration::from_secs(60);
/// How fast refused credentials must be reported (the delivery timeout is 5 minutes).
const QUICK: Duration = Duration::from_secs(30);

fn lines(n: usize) -> String {
    (0..n).map(|i| format!("r{i:06}\n")).collect()
}

/// A private file holding `text`.
fn secret_file(name: &str, text: &str) -> PathBuf {
    let p = temp_dir(name).join("secret");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// kpipe with the secure cluster's krb5.conf, `args` and its stdin piped.
fn spawn_with_krb5(s: &Secure, args: &[&str]) -> Child {
    let mut kpipe = Command::new(kpipe_bin());
    kpipe
        .args(args)
        .env("KRB5_CONFIG", s.get("KRB5_CONFIG"))
        .env_remove("KRB5CCNAME");
    piped(&mut kpipe).spawn().expect("starting kpipe")
}

/// The flags for OAUTHBEARER against the cluster's OAUTH listener, with the secret in `file`.
fn oauth_args<'a>(s: &'a Secure, issuer: &'a Issuer, file: &'a str) -> Vec<&'a str> {
    vec![
        "-b",
        s.get("OAUTH"),
        "--sasl-mechanism",
        "OAUTHBEARER",
        "--oauth-token-url",
        &issuer.url,
        "--oauth-client-id",
        CLIENT_ID,
        "--oauth-client-secret-file",
        file,
    ]
}

/// The flags for GSSAPI against the cluster's KERBEROS listener.
fn kerberos_args<'a>(s: &'a Secure, keytab: &'a str, principal: &'a str) -> Vec<&'a str> {
    vec![
        "-b",
        s.get("KERBEROS"),
        "--sasl-mechanism",
        "GSSAPI",
        "--kerberos-keytab",
        keytab,
        "--kerberos-principal",
        principal,
    ]
}

/// Every one of `n` numbered lines is in `topic`, once.
fn assert_each_once(s: &Secure, topic: &str, n: usize) {
    let landed = read_topic(&s.cluster.bootstrap, topic, n, WAIT);
    let distinct: HashSet<String> = landed.iter().map(Landed::value_str).collect();
    assert_eq!(landed.len(), n, "records in {topic}");
    assert_eq!(distinct.len(), n, "distinct records in {topic}");
}

/// Writes `n` lines to a started kpipe over `over`, then waits for it.
fn trickle(mut child: Child, n: usize, over: Duration) -> Run {
    let mut stdin = child.stdin.take().unwrap();
    let input = lines(n);
    let chunks: Vec<&str> = input.split_inclusive('\n').collect();
    let per_second = (n as f64 / over.as_secs_f64()).ceil() as usize;
    for second in chunks.chunks(per_second) {
        stdin.write_all(second.concat().as_bytes()).unwrap();
        std::thread::sleep(Duration::from_secs(1));
    }
    drop(stdin);
    wait_with_limit(child, WAIT + over)
}

#[test]
fn oidc_delivers_ten_thousand_records() {
    let s = secure_cluster();
    let issuer = Issuer::start(s, Duration::from_secs(300));
    let secret = secret_file("oidc-secret", CLIENT_SECRET);
    let topic = fresh_topic("sec-oidc");
    let mut args = oauth_args(s, &issuer, secret.to_str().unwrap());
    args.extend(["-t", &topic]);
    let run = kpipe(&args, lines(10_000).as_bytes());
    assert_status(&run, Status::Ok);
    assert_each_once(s, &topic, 10_000);
    assert!(issuer.tokens_served() >= 1);
}

#[test]
fn an_oauth_token_that_expires_mid_run_is_renewed_and_every_record_lands_once() {
    let s = secure_cluster();
    // The broker asks for a new login at least every 10 s (connections.max.reauth.ms) and
    // never past a token's expiry; librdkafka renews at 80 % of a token's life.
    let issuer = Issuer::start(s, Duration::from_secs(15));
    let secret = secret_file("oidc-expiry", CLIENT_SECRET);
    let topic = fresh_topic("sec-oidc-expiry");
    let mut args = oauth_args(s, &issuer, secret.to_str().unwrap());
    args.extend(["-t", &topic]);
    let run = trickle(spawn(&args), 10_000, Duration::from_secs(40));
    assert_status(&run, Status::Ok);
    assert_each_once(s, &topic, 10_000);
    assert!(
        issuer.tokens_served() >= 3,
        "{} tokens: not renewed",
        issuer.tokens_served()
    );
}

#[test]
fn a_wrong_client_secret_is_77_and_a_token_endpoint_down_69() {
    let s = secure_cluster();
    let issuer = Issuer::start(s, Duration::from_secs(300));
    let wrong = secret_file("oidc-wrong", "not-the-secret-3c9a");
    let topic = fresh_topic("sec-oidc-wrong");
    let mut args = oauth_args(s, &issuer, wrong.to_str().unwrap());
    args.extend(["-t", &topic]);
    let started = Instant::now();
    let run = kpipe(&args, lines(3).as_bytes());
    assert_status(&run, Status::NoPerm);
    assert!(started.elapsed() < QUICK, "{:?}", started.elapsed());
    assert!(run.stderr.contains("invalid_client"), "{}", run.stderr);
    assert!(!run.stderr.contains("not-the-secret"), "{}", run.stderr);
    assert!(!run.stderr.contains("check --brokers"), "{}", run.stderr);

    let secret = secret_file("oidc-down", CLIENT_SECRET);
    let down = vec![
        "-b",
        s.get("OAUTH"),
        "--sasl-mechanism",
        "OAUTHBEARER",
        "--oauth-token-url",
        "http://127.0.0.1:1/token",
        "--oauth-client-id",
        CLIENT_ID,
        "--oauth-client-secret-file",
        secret.to_str().unwrap(),
        "-t",
        &topic,
    ];
    let started = Instant::now();
    let run = kpipe(&down, lines(3).as_bytes());
    assert_status(&run, Status::Unavailable);
    assert!(started.elapsed() < QUICK, "{:?}", started.elapsed());
    assert!(run.stderr.contains("--oauth-token-url"), "{}", run.stderr);
    assert!(!run.stderr.contains("check --brokers"), "{}", run.stderr);
}

#[test]
fn kerberos_delivers_ten_thousand_records() {
    let s = secure_cluster();
    let topic = fresh_topic("sec-krb");
    let mut args = kerberos_args(s, s.get("KEYTAB"), s.get("PRINCIPAL"));
    args.extend(["-t", &topic]);
    let run = run_with_input(spawn_with_krb5(s, &args), lines(10_000).as_bytes());
    assert_status(&run, Status::Ok);
    assert_each_once(s, &topic, 10_000);
}

#[test]
fn a_wrong_keytab_is_77_with_the_kdcs_reason() {
    let s = secure_cluster();
    let topic = fresh_topic("sec-krb-wrong");
    // other's keytab holds no key for kpipe.
    let mut args = kerberos_args(s, s.get("OTHER_KEYTAB"), s.get("PRINCIPAL"));
    args.extend(["-t", &topic]);
    let started = Instant::now();
    let run = run_with_input(spawn_with_krb5(s, &args), lines(3).as_bytes());
    assert_status(&run, Status::NoPerm);
    assert!(started.elapsed() < QUICK, "{:?}", started.elapsed());
    assert!(
        run.stderr
            .contains("kinit: Keytab contains no suitable keys"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("check --brokers"), "{}", run.stderr);
}

#[test]
fn a_kerberos_ticket_that_expires_mid_run_is_renewed_and_every_record_lands_once() {
    let s = secure_cluster();
    let topic = fresh_topic("sec-krb-expiry");
    // shortlived's tickets last 20 s; kinit runs every 5 s, and the broker asks for a new
    // login at least every 10 s.
    let mut args = kerberos_args(s, s.get("SHORT_KEYTAB"), s.get("SHORT_PRINCIPAL"));
    args.extend([
        "-t",
        &topic,
        "-X",
        "sasl.kerberos.min.time.before.relogin=5000",
    ]);
    let run = trickle(spawn_with_krb5(s, &args), 10_000, Duration::from_secs(45));
    assert_status(&run, Status::Ok);
    assert_each_once(s, &topic, 10_000);
}

#[test]
fn a_topic_either_principal_may_not_write_is_dead_lettered_naming_it() {
    let s = secure_cluster();
    let issuer = Issuer::start(s, Duration::from_secs(300));
    let secret = secret_file("oidc-acl", CLIENT_SECRET);
    let dir = temp_dir("sasl-acl");
    for (name, principal) in [("oauth", "OAuth client kpipe"), ("kerberos", "User:kpipe")] {
        let refused = fresh_topic("nope-sasl");
        let dl = dir.join(format!("{name}.ndjson"));
        let dl_arg = dl.to_string_lossy().into_owned();
        let mut args = if name == "oauth" {
            oauth_args(s, &issuer, secret.to_str().unwrap())
        } else {
            kerberos_args(s, s.get("KEYTAB"), s.get("PRINCIPAL"))
        };
        args.extend(["-t", &refused, "--dead-letter", &dl_arg]);
        let run = run_with_input(spawn_with_krb5(s, &args), lines(5).as_bytes());
        assert_status(&run, Status::TempFail);
        let dead = read_lines(&dl);
        assert_eq!(dead.len(), 5, "{name}: {}", run.stderr);
        for line in &dead {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let e = v["error"].as_str().unwrap();
            assert!(e.contains(&refused) && e.contains(principal), "{name}: {e}");
        }
    }
}

#[test]
fn the_oauth_client_secret_shows_nowhere() {
    let s = secure_cluster();
    let issuer = Issuer::start(s, Duration::from_secs(300));
    let secret = secret_file("oidc-nowhere", CLIENT_SECRET);
    let dir = temp_dir("oidc-nowhere");
    let stats = dir.join("stats.json").to_string_lossy().into_owned();
    let dl = dir.join("dead.ndjson").to_string_lossy().into_owned();
    let refused = fresh_topic("nope-oidc");
    let mut args = oauth_args(s, &issuer, secret.to_str().unwrap());
    args.extend(["-t", &refused, "--dead-letter", &dl, "--stats", &stats]);
    args.extend(["-vv", "-X", "debug=all"]);
    // debug=all says more than a pipe holds while nobody reads it: stderr goes to a file.
    let log = dir.join("stderr.log");
    let mut child = Command::new(kpipe_bin())
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // As ps shows it, once the new program is in place.
    let proc_file = |name: &str| std::fs::read(format!("/proc/{}/{name}", child.id()));
    let started = Instant::now();
    while proc_file("cmdline").unwrap_or_default().is_empty() && started.elapsed() < QUICK {
        std::thread::sleep(Duration::from_millis(10));
    }
    let cmdline = proc_file("cmdline").unwrap();
    let environ = proc_file("environ").unwrap_or_default();
    child.stdin.take().unwrap().write_all(b"one\n").unwrap();
    let run = wait_with_limit(child, WAIT);
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_status(&run, Status::TempFail);
    assert!(
        stderr.contains("sasl.oauthbearer"),
        "debug=all shows the configuration"
    );
    for (what, text) in [
        ("ps", String::from_utf8_lossy(&cmdline).into_owned()),
        (
            "environment",
            String::from_utf8_lossy(&environ).into_owned(),
        ),
        ("-vv -X debug=all", stderr.clone()),
        ("the stats file", std::fs::read_to_string(&stats).unwrap()),
        (
            "the dead-letter file",
            std::fs::read_to_string(&dl).unwrap(),
        ),
    ] {
        assert!(!text.is_empty() || what == "environment", "{what} is empty");
        assert!(!text.contains(CLIENT_SECRET), "the secret is in {what}");
    }
    // The same secret from the environment, and misspelt in a -F file, is not shown either.
    let by_env = Command::new(kpipe_bin())
        .args(&args[..8])
        .args(["-t", &refused, "-vv", "-X", "debug=all"])
        .env("KPIPE_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&by_env.stderr);
    assert_eq!(
        by_env.status.code(),
        Some(0),
        "{}",
        &err[err.len().saturating_sub(2000)..]
    );
    assert!(!err.contains(CLIENT_SECRET), "the secret is in -vv output");
    let conf = secret_file(
        "oidc-misspelt",
        &format!("sasl.oauthbearer.client.secrett={CLIENT_SECRET}\n"),
    );
    let misspelt = kpipe(&["-t", "t", "-F", conf.to_str().unwrap()], b"x\n");
    assert!(
        !misspelt.stderr.contains(CLIENT_SECRET),
        "{}",
        misspelt.stderr
    );
}
