//! rsyslog 8.2302 with kpipe as its omprog destination: the shipped example, driven by loggen.
//! rsyslogd runs from the unpacked Debian package (scripts/setup), beside syslog-ng.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::syslog_ng::{free_port, loggen, loggen_file, seq_of, write_messages};
use crate::util::*;

const EXAMPLE: &str = "contrib/rsyslog/kpipe.conf";

fn rsyslog_root() -> PathBuf {
    let root = cache_dir().join("rsyslog");
    assert!(
        root.join("usr/sbin/rsyslogd").exists(),
        "rsyslog is not unpacked in {}: run scripts/setup",
        root.display()
    );
    root
}

/// The shipped example pointed at the test's broker, port, topics and directory; every line it
/// relies on is checked, so the example cannot drift away from what is tested.
fn example_conf(dir: &Path, port: u16, brokers: &str, prefix: &str) -> String {
    let text = std::fs::read_to_string(root().join(EXAMPLE)).expect("reading the example");
    let edits = [
        (r#"port="514""#.to_string(), format!(r#"port="{port}""#)),
        ("/usr/bin/kpipe".into(), kpipe_bin().to_string()),
        ("-b kafka1:9092,kafka2:9092".into(), format!("-b {brokers}")),
        (
            "-t logs.${programname}".into(),
            format!("-t {prefix}.${{programname}}"),
        ),
        (
            "--topic-allow logs[.]".into(),
            format!("--topic-allow {prefix}[.]"),
        ),
        (
            "/var/spool/kpipe".into(),
            dir.join("spool").display().to_string(),
        ),
        (
            "/var/log/kpipe-dead-letter.ndjson".into(),
            dir.join("dead-letter.ndjson").display().to_string(),
        ),
        (
            "/var/log/kpipe.log".into(),
            dir.join("kpipe.log").display().to_string(),
        ),
    ];
    let mut conf = format!(
        "global(workDirectory=\"{}\")\n{text}",
        dir.join("work").display()
    );
    for (from, to) in edits {
        assert!(conf.contains(&from), "{EXAMPLE} no longer contains {from}");
        conf = conf.replace(&from, &to);
    }
    conf
}

struct Rsyslog {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Rsyslog {
    fn start(dir: &Path, port: u16, conf: &str) -> Rsyslog {
        std::fs::create_dir_all(dir.join("work")).unwrap();
        std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
        let mut r = Rsyslog {
            dir: dir.to_path_buf(),
            port,
            child: None,
        };
        r.launch();
        r
    }

    fn launch(&mut self) {
        let root = rsyslog_root();
        let log = std::fs::File::create(self.dir.join("rsyslogd.log")).unwrap();
        let child = Command::new(root.join("usr/sbin/rsyslogd"))
            .arg("-n")
            .arg("-M")
            .arg(root.join("usr/lib/x86_64-linux-gnu/rsyslog"))
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting rsyslogd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, as `systemctl stop` does; waits for rsyslogd to exit.
    fn stop(&mut self) {
        let mut child = self.child.take().expect("rsyslogd is not running");
        signal(&child, "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not stop: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The kpipe rsyslogd runs now, if one is running.
    fn kpipe_pid(&self) -> Option<u32> {
        let parent = self.child.as_ref()?.id().to_string();
        let out = Command::new("pgrep")
            .args(["-P", &parent, "-x", "kpipe"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// SIGKILLs the kpipe rsyslogd runs (waiting up to 10 s for one), and returns its pid.
    fn kill_kpipe(&self, other_than: Option<u32>) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.kpipe_pid() {
                Some(pid) if Some(pid) != other_than => {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    return pid;
                }
                _ => {
                    assert!(Instant::now() < deadline, "no kpipe ran: {}", self.log());
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rsyslogd.log")).unwrap_or_default()
            + &std::fs::read_to_string(self.dir.join("kpipe.log")).unwrap_or_default()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sequence numbers of what landed in the topics of `programs`, and whether each record's key
/// is the host the message named.
fn landed(b: &str, prefix: &str, programs: &[&str], expect: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut got = 0;
    // A broker restarted on a loaded machine takes a while to serve transactions again.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut readers: Vec<TopicReader> = programs
        .iter()
        .map(|p| TopicReader::new(b, &format!("{prefix}.{p}"), Duration::from_secs(10)))
        .collect();
    while got < expect && Instant::now() < deadline {
        got = 0;
        for r in readers.iter_mut() {
            r.read_until(usize::MAX, Duration::from_millis(50), Duration::ZERO);
            got += r.records.len();
        }
    }
    for r in readers.iter_mut() {
        r.read_until(usize::MAX, Duration::from_millis(500), Duration::ZERO);
    }
    for r in &readers {
        for l in &r.records {
            let v: serde_json::Value = serde_json::from_slice(l.value.as_deref().unwrap()).unwrap();
            let seq = v["msg"].as_str().and_then(seq_of).expect("seq in msg");
            let host = format!("host{}", seq % 7);
            assert_eq!(v["hostname"], host.as_str());
            assert!(v["$!"]["uuid"].is_string(), "no uuid: {v}");
            assert_eq!(
                l.key.as_deref(),
                Some(host.as_bytes()),
                "key is not the host"
            );
            seqs.push(seq);
        }
    }
    seqs
}

#[test]
fn the_example_delivers_five_thousand_keyed_by_host() {
    let b = shared_brokers();
    let prefix = fresh_topic("rsyslog");
    let programs = ["app0", "app1", "app2"];
    for p in programs {
        create_topic(b, &format!("{prefix}.{p}"), 3, 1, &[]);
    }
    let dir = temp_dir("rsyslog-5000");
    let file = dir.join("messages.txt");
    write_messages(&file, 0..5_000);
    let port = free_port();
    let mut r = Rsyslog::start(&dir, port, &example_conf(&dir, port, b, &prefix));
    loggen_file(port, &file, 5_000);
    let seqs = landed(b, &prefix, &programs, 5_000);
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(seqs.len(), 5_000, "{}", r.log());
    assert_eq!(unique.len(), 5_000);
    r.stop();
}

/// The programs the test messages come from; each has a topic `PREFIX.PROGRAM`.
const PROGRAMS: [&str; 3] = ["app0", "app1", "app2"];

/// A one-node cluster of the test's own (to stop and start) with a topic of `partitions` for
/// each program; the topics' prefix, and a directory.
fn own_cluster(name: &str, partitions: i32) -> (Cluster, String, PathBuf) {
    let c = Cluster::start(name, 1);
    let prefix = fresh_topic(name);
    for p in PROGRAMS {
        create_topic(&c.bootstrap, &format!("{prefix}.{p}"), partitions, 1, &[]);
    }
    (c, prefix, temp_dir(name))
}

/// Asserts that every message `0..total` landed; returns how many landed twice.
#[track_caller]
fn assert_none_lost(seqs: &[u64], total: u64, r: &Rsyslog) -> usize {
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    let lost: Vec<u64> = (0..total).filter(|s| !unique.contains(s)).collect();
    assert!(
        lost.is_empty(),
        "{} lost: {:?}\n{}",
        lost.len(),
        &lost[..lost.len().min(20)],
        r.log()
    );
    seqs.len() - unique.len()
}

#[test]
fn rsyslog_stopped_and_started_during_a_broker_outage_loses_nothing() {
    let (c, prefix, dir) = own_cluster("rsyslog-outage", 1);
    let b = c.bootstrap.clone();
    let port = free_port();
    let mut r = Rsyslog::start(&dir, port, &example_conf(&dir, port, &b, &prefix));
    let (before, during, after) = (dir.join("before"), dir.join("during"), dir.join("after"));
    write_messages(&before, 0..100);
    write_messages(&during, 100..2_100);
    write_messages(&after, 2_100..2_101);
    loggen_file(port, &before, 1_000);
    assert_eq!(
        landed(&b, &prefix, &PROGRAMS, 100).len(),
        100,
        "{}",
        r.log()
    );
    c.kill_node(1);
    loggen_file(port, &during, 1_000);
    std::thread::sleep(Duration::from_secs(1));
    r.stop();
    // kpipe got EOF at the stop, delivered nothing for its 4 s and left the rest in its log.
    std::thread::sleep(Duration::from_secs(6));
    r.launch();
    c.start_node(1);
    // omprog starts kpipe on the first message after a start; that kpipe sends the log first.
    loggen_file(port, &after, 100);
    let seqs = landed(&b, &prefix, &PROGRAMS, 2_101);
    assert_none_lost(&seqs, 2_101, &r);
    r.stop();
}

#[test]
fn kpipe_killed_under_rsyslog_loses_and_duplicates_nothing() {
    const TOTAL: u64 = 50_000;
    let (c, prefix, dir) = own_cluster("rsyslog-kills", 3);
    let file = dir.join("messages.txt");
    write_messages(&file, 0..TOTAL);
    let port = free_port();
    // -v instead of -q: a failure shows each kpipe's start, resends and commits.
    let conf = example_conf(&dir, port, &c.bootstrap, &prefix).replace(" -q\"", " -v\"");
    let r = Rsyslog::start(&dir, port, &conf);
    let sender = std::thread::spawn(move || {
        // loggen stops after --interval (10 s by default) even with lines left to send.
        let file = file.to_string_lossy().into_owned();
        let args = [
            "--rate",
            "5000",
            "--interval",
            "60",
            "--read-file",
            &file,
            "--dont-parse",
        ];
        loggen(port, &args)
    });
    // Three kills while the messages flow, the second followed at once by a kill of the kpipe
    // rsyslog starts next, before it can have said it is ready.
    let mut kills = 0;
    for alone in [true, false, true] {
        std::thread::sleep(Duration::from_millis(1500));
        let killed = r.kill_kpipe(None);
        kills += 1;
        if !alone {
            r.kill_kpipe(Some(killed));
            kills += 1;
        }
    }
    // The broker away for 10 s in the rest of the flow, once the last kpipe has started (one
    // that starts during an outage waits for it to end; that is tested on its own below).
    std::thread::sleep(Duration::from_secs(2));
    c.kill_node(1);
    std::thread::sleep(Duration::from_secs(10));
    c.start_node(1);
    sender.join().unwrap();
    let seqs = landed(&c.bootstrap, &prefix, &PROGRAMS, TOTAL as usize);
    let twice = assert_none_lost(&seqs, TOTAL, &r);
    // Without --drop-resent, at most one a kill: the message kept but not confirmed.
    assert_eq!(
        twice,
        0,
        "{twice} duplicates after {kills} kills\n{}",
        r.log()
    );
}

#[test]
fn kpipe_started_under_rsyslog_while_the_broker_is_away_confirms_from_its_log_then_delivers() {
    let (c, prefix, dir) = own_cluster("rsyslog-away", 1);
    c.kill_node(1);
    let file = dir.join("messages.txt");
    write_messages(&file, 0..5_000);
    let port = free_port();
    let r = Rsyslog::start(&dir, port, &example_conf(&dir, port, &c.bootstrap, &prefix));
    // Sent in 5 s; the broker is back after 8: kpipe keeps and confirms while it starts.
    let sender = std::thread::spawn(move || loggen_file(port, &file, 1_000));
    std::thread::sleep(Duration::from_secs(8));
    c.start_node(1);
    sender.join().unwrap();
    let seqs = landed(&c.bootstrap, &prefix, &PROGRAMS, 5_000);
    let twice = assert_none_lost(&seqs, 5_000, &r);
    assert_eq!(twice, 0, "duplicates without a kill");
}
