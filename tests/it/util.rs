//! The test harness: real Apache Kafka brokers started by `scripts/kafka-local` (or an external
//! cluster from `KPIPE_TEST_BROKERS`), the built kpipe binary, and a consumer that reads back
//! what landed.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub use kpipe::exit::Status;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built kpipe binary.
pub fn kpipe_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kpipe")
}

/// A local Kafka cluster owned by the test process; stopped on drop, and by a watchdog if the
/// process dies first.
pub struct Cluster {
    pub dir: PathBuf,
    pub bootstrap: String,
    pub nodes: usize,
}

fn kafka_local(args: &[&str]) -> Output {
    let out = Command::new(root().join("scripts/kafka-local"))
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .expect("running scripts/kafka-local");
    assert!(
        out.status.success(),
        "scripts/kafka-local {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Cluster {
    /// Starts `nodes` brokers (1 or 3) in a fresh directory under target/kafka.
    pub fn start(name: &str, nodes: usize) -> Cluster {
        let dir = root()
            .join("target/kafka")
            .join(format!("{name}-{}", std::process::id()));
        let pid = std::process::id().to_string();
        let n = nodes.to_string();
        let d = dir.to_string_lossy().into_owned();
        let out = kafka_local(&["start", "--nodes", &n, "--dir", &d, "--watch-pid", &pid]);
        let bootstrap = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            !bootstrap.is_empty(),
            "kafka-local printed no bootstrap address"
        );
        Cluster {
            dir,
            bootstrap,
            nodes,
        }
    }

    /// SIGKILLs node `n` (1-based).
    pub fn kill_node(&self, n: usize) {
        kafka_local(&["kill-node", &self.dir.to_string_lossy(), &n.to_string()]);
    }

    /// Restarts node `n` from its data and waits until it serves.
    pub fn start_node(&self, n: usize) {
        kafka_local(&["start-node", &self.dir.to_string_lossy(), &n.to_string()]);
    }

    /// The node id leading `topic`'s partition 0, from the cluster's metadata.
    pub fn leader(&self, topic: &str) -> usize {
        let consumer: BaseConsumer = client_config(&self.bootstrap)
            .create()
            .expect("metadata client");
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        md.topics()[0].partitions()[0].leader() as usize
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/kafka-local"))
            .args(["stop", "--now", "--dir", &self.dir.to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The broker shared by the tests that do not kill brokers.
pub fn shared_brokers() -> &'static str {
    static SHARED: OnceLock<(Option<Cluster>, String)> = OnceLock::new();
    let (_, bootstrap) = SHARED.get_or_init(|| match std::env::var("KPIPE_TEST_BROKERS") {
        Ok(b) if !b.trim().is_empty() => (None, b),
        _ => {
            let c = Cluster::start("shared", 1);
            let b = c.bootstrap.clone();
            // Statics are never dropped: the watchdog stops this broker when the tests exit.
            (Some(c), b)
        }
    });
    bootstrap
}

/// A topic name no other test uses.
pub fn fresh_topic(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        now_ms() % 100_000
    )
}

pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn client_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    c
}

/// Creates a topic and waits until it is usable.
pub fn create_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    replication: i32,
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(brokers).create().expect("admin client");
    let mut t = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let res = futures_executor::block_on(admin.create_topics(&[t], &opts)).expect("create_topics");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
    let consumer: BaseConsumer = client_config(brokers).create().expect("metadata client");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            let ok = md.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            });
            if ok {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "topic {topic} did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One record as read back from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: Option<i64>,
}

impl Landed {
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or_default()).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()))
    }
}

/// Reads `topic` from the beginning until `expect` records arrived or `wait` passed, and then
/// for a little longer to catch extra (duplicate) records. Sorted by partition, then offset.
pub fn read_topic(brokers: &str, topic: &str, expect: usize, wait: Duration) -> Vec<Landed> {
    let mut r = TopicReader::new(brokers, topic, wait);
    r.read_until(expect, wait, Duration::from_millis(500));
    r.sorted()
}

/// A consumer assigned to every partition of a topic from the beginning.
pub struct TopicReader {
    consumer: BaseConsumer,
    pub records: Vec<Landed>,
}

impl TopicReader {
    /// Assigns all partitions of `topic` (waiting up to `wait` for it to exist).
    pub fn new(brokers: &str, topic: &str, wait: Duration) -> TopicReader {
        let mut cfg = client_config(brokers);
        cfg.set("group.id", format!("kpipe-test-{}", now_ms()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("topic.metadata.refresh.interval.ms", "1000");
        let consumer: BaseConsumer = cfg.create().expect("consumer");
        let deadline = Instant::now() + wait;
        let partitions = loop {
            match consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
                Ok(md)
                    if md
                        .topics()
                        .first()
                        .is_some_and(|t| t.error().is_none() && !t.partitions().is_empty()) =>
                {
                    break md.topics()[0].partitions().len();
                }
                _ if Instant::now() > deadline => break 0,
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p as i32, Offset::Beginning)
                .expect("partition");
        }
        if partitions > 0 {
            consumer.assign(&tpl).expect("assign");
        }
        TopicReader {
            consumer,
            records: Vec::new(),
        }
    }

    /// Polls until `expect` records in all, or `wait`; then `linger` more for extras.
    pub fn read_until(&mut self, expect: usize, wait: Duration, linger: Duration) -> usize {
        let deadline = Instant::now() + wait;
        let mut reached: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if self.records.len() >= expect && reached.is_none() {
                reached = Some(now);
            }
            if reached.is_some_and(|r| now >= r + linger) || (reached.is_none() && now >= deadline)
            {
                return self.records.len();
            }
            if let Some(Ok(m)) = self.consumer.poll(Duration::from_millis(50)) {
                self.records.push(Landed {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                                .collect()
                        })
                        .unwrap_or_default(),
                    timestamp: m.timestamp().to_millis(),
                });
            }
        }
    }

    /// What was read, sorted by partition and offset.
    pub fn sorted(mut self) -> Vec<Landed> {
        self.records.sort_by_key(|l| (l.partition, l.offset));
        self.records
    }
}

/// A finished kpipe run.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs kpipe with `args`, writing `stdin` on its own thread so a full pipe cannot deadlock.
/// Asserts that a run exited with `status`, showing its stderr if not.
#[track_caller]
pub fn assert_status(run: &Run, status: Status) {
    assert_eq!(run.code(), i32::from(status.code()), "{}", run.stderr);
}

pub fn kpipe(args: &[&str], stdin: &[u8]) -> Run {
    run_with_input(spawn(args), stdin)
}

/// Writes `stdin` to a started kpipe on its own thread and waits for it to exit.
pub fn run_with_input(mut child: Child, stdin: &[u8]) -> Run {
    let started = Instant::now();
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("waiting for kpipe");
    let _ = writer.join();
    Run {
        status: out.status,
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Starts kpipe with piped stdin, stdout and stderr.
pub fn spawn(args: &[&str]) -> Child {
    let mut kpipe = Command::new(kpipe_bin());
    kpipe.args(args);
    piped(&mut kpipe).spawn().expect("starting kpipe")
}

/// kpipe reading a pipe whose ends the test holds: the write end, and a second read end
/// through which `unread` sees what kpipe has not read yet.
pub fn spawn_on_pipe(args: &[&str]) -> (Child, std::fs::File, std::os::fd::OwnedFd) {
    let (read_end, write_end) = rustix::pipe::pipe().expect("pipe");
    let watch = read_end.try_clone().expect("dup");
    let mut kpipe = Command::new(kpipe_bin());
    kpipe.args(args);
    let child = piped(&mut kpipe)
        .stdin(Stdio::from(read_end))
        .spawn()
        .expect("starting kpipe");
    (child, std::fs::File::from(write_end), watch)
}

/// Bytes written to a pipe that no one has read yet.
pub fn unread(watch: &std::os::fd::OwnedFd) -> u64 {
    rustix::io::ioctl_fionread(watch).expect("FIONREAD")
}

/// Waits up to `limit` for a pipe to be read empty; what it still holds if not.
pub fn wait_until_read(watch: &std::os::fd::OwnedFd, limit: Duration) -> Result<(), u64> {
    let until = Instant::now() + limit;
    loop {
        match unread(watch) {
            0 => return Ok(()),
            n if Instant::now() > until => return Err(n),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// `command` (kpipe, or what execs it) with its three streams piped and none of the
/// environment's KPIPE_ defaults for brokers and topic.
pub fn piped(command: &mut Command) -> &mut Command {
    command
        .env_remove("KPIPE_BROKERS")
        .env_remove("KPIPE_TOPIC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
}

/// Waits for a child, failing the test if it takes longer than `limit`.
pub fn wait_with_limit(mut child: Child, limit: Duration) -> Run {
    let started = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("kpipe did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    Run {
        status: out.status,
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Sends a signal to a child.
pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args(["-s", sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -s {sig} failed");
}

/// A temporary directory under target/ (kept out of /tmp so failures can be inspected).
pub fn temp_dir(name: &str) -> PathBuf {
    let d =
        root()
            .join("target/test-tmp")
            .join(format!("{name}-{}-{}", std::process::id(), now_ms()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Where scripts/setup keeps what it fetched and unpacked: `$KPIPE_CACHE`, else
/// `~/.cache/kpipe`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("KPIPE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/kpipe"))
}

/// Runs a shell script in a private user and mount namespace (`unshare -rm`), where it may
/// mount a tiny tmpfs for a real ENOSPC; what it reports goes to files in `dir`, read back with
/// the returned function (empty if missing).
pub fn in_private_mounts(script: &str, dir: &Path) -> impl Fn(&str) -> String {
    let status = Command::new("unshare")
        .args(["-rm", "sh", "-c", script])
        .status()
        .expect("unshare");
    assert!(status.success(), "unshare -rm failed: {status:?}");
    let dir = dir.to_path_buf();
    move |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

/// Asserts that a kpipe run inside `in_private_mounts` stopped on its full tmpfs: its exit
/// status `code` (as `echo $?` wrote it) is 74 and its stderr `err` says "No space left".
#[track_caller]
pub fn assert_out_of_space(code: &str, err: &str) {
    assert_eq!(code.trim(), "74", "{}", err);
    assert!(err.contains("No space left"), "{}", err);
}

/// Lines of a file, or none if it does not exist.
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// `n` syslog-like JSON records of about 250 bytes, numbered.
pub fn syslog_records(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"DATE":"2026-11-26T00:00:00+00:00","HOST":"host{}","PROGRAM":"app{}","PID":"{}","PRIORITY":"info","FACILITY":"daemon","MESSAGE":"record {:08} lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt"}}"#,
                i % 7,
                i % 3,
                1000 + i % 50,
                i
            )
        })
        .collect()
}

/// A one-node cluster with SSL, mTLS, SASL_SSL (SCRAM-SHA-512), SASL_PLAINTEXT (PLAIN), OAUTH
/// (OAUTHBEARER) and KERBEROS (GSSAPI, with its KDC) listeners and the authorizer on
/// (`scripts/kafka-local start --secure`); user alice, the client certificate and the users
/// kpipe and shortlived may write topics starting with `sec-`.
pub struct Secure {
    pub cluster: Cluster,
    pub env: std::collections::HashMap<String, String>,
}

impl Secure {
    pub fn get(&self, key: &str) -> &str {
        self.env.get(key).map(String::as_str).unwrap_or_default()
    }
}

pub fn secure_cluster() -> &'static Secure {
    static SECURE: OnceLock<Secure> = OnceLock::new();
    SECURE.get_or_init(|| {
        let dir = root()
            .join("target/kafka")
            .join(format!("secure-{}", std::process::id()));
        let d = dir.to_string_lossy().into_owned();
        let pid = std::process::id().to_string();
        let out = kafka_local(&["start", "--secure", "--dir", &d, "--watch-pid", &pid]);
        let bootstrap = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let env = std::fs::read_to_string(dir.join("secure.env"))
            .expect("secure.env")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        kafka_local(&["acl", &d, "User:alice", "sec-"]);
        kafka_local(&["acl", &d, "User:CN=client1", "sec-"]);
        // The OAuth client's token subject and the Kerberos principals.
        kafka_local(&["acl", &d, "User:kpipe", "sec-"]);
        kafka_local(&["acl", &d, "User:shortlived", "sec-"]);
        Secure {
            cluster: Cluster {
                dir,
                bootstrap,
                nodes: 1,
            },
            env,
        }
    })
}
