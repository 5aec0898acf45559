//! Random sequences of runs over one spool directory: records, the broker going down and
//! coming back, SIGTERM mid-stream, a full disk under the spool, restarts. However they fall,
//! every record ends delivered or dead-lettered, and a record lands twice only when librdkafka
//! said it might have (the summaries' "possibly stored by the broker too").

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::util::*;

/// A private mount namespace holding a small tmpfs: the spool's disk, which a step can fill.
struct SmallDisk {
    holder: Child,
    mnt: PathBuf,
}

impl SmallDisk {
    fn mount(mnt: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(mnt).unwrap();
        let script = format!(
            "mount -t tmpfs -o size={size},mode=700 tmpfs {} && echo ready && exec sleep 3600",
            mnt.display()
        );
        let mut holder = Command::new("unshare")
            .args(["-rm", "--propagation", "private", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the tmpfs did not mount");
        SmallDisk {
            holder,
            mnt: mnt.to_path_buf(),
        }
    }

    /// A command run inside the namespace, where the tmpfs is.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args([
            "-t",
            &self.holder.id().to_string(),
            "-U",
            "-m",
            "--preserve-credentials",
            "--",
        ])
        .arg(program);
        c
    }

    fn sh(&self, script: &str) -> Output {
        self.command("sh")
            .args(["-c", script])
            .output()
            .expect("nsenter")
    }

    fn fill(&self) {
        self.sh(&format!(
            "cat /dev/zero > {}/filler 2>/dev/null",
            self.mnt.display()
        ));
    }

    fn unfill(&self) {
        self.sh(&format!("rm -f {}/filler", self.mnt.display()));
    }

    fn spool_files(&self) -> usize {
        let out = self.sh(&format!("ls {}", self.mnt.display()));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.ends_with(".spool") || l.ends_with(".spool.tmp"))
            .count()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// xorshift64: the same steps for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// The number before "possibly stored by the broker too" in a summary, if any.
fn in_doubt(stderr: &str) -> u64 {
    let Some(i) = stderr.find(" possibly stored by the broker too") else {
        return 0;
    };
    let digits: String = stderr[..i]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .chars()
        .rev()
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

#[test]
fn random_runs_over_one_spool_end_with_every_record_delivered_or_dead_lettered() {
    let cluster = Cluster::start("random-runs", 1);
    let b = cluster.bootstrap.clone();
    let topic = fresh_topic("random");
    create_topic(&b, &topic, 3, 1, &[]);
    let dir = temp_dir("random-runs");
    let dl = dir.join("dead.ndjson");
    let disk = SmallDisk::mount(&dir.join("spool"), "4m");
    let spool = disk.mnt.to_string_lossy().into_owned();
    let mut broker_up = true;
    let mut sent: Vec<String> = Vec::new();
    let mut doubted = 0;
    let mut log = Vec::new();
    let run = |stdin: &[u8], term_after: Option<usize>, disk: &SmallDisk| {
        let mut child = disk
            .command(kpipe_bin())
            .args(["-b", &b, "-t", &topic, "--spool", &spool])
            .args(["--dead-letter", dl.to_str().unwrap()])
            .args(["--delivery-timeout", "2s", "--shutdown-timeout", "2s"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kpipe");
        let mut input = child.stdin.take().unwrap();
        let split = term_after.unwrap_or(stdin.len());
        input.write_all(&stdin[..split]).unwrap();
        if term_after.is_some() {
            std::thread::sleep(Duration::from_millis(300));
            signal(&child, "TERM");
            let _ = input.write_all(&stdin[split..]);
        }
        drop(input);
        wait_with_limit(child, Duration::from_secs(60))
    };
    for seed in [0x9e37_79b9_7f4a_7c15_u64, 0xd1b5_4a32_d192_ed03] {
        let mut rng = Rng(seed);
        for step in 0..6 {
            if rng.next(3) == 0 {
                if broker_up {
                    cluster.kill_node(1);
                } else {
                    cluster.start_node(1);
                }
                broker_up = !broker_up;
            }
            let mode = rng.next(4);
            let n = 50 + rng.next(150) as usize;
            let ids: Vec<String> = (0..n).map(|i| format!("{seed:x}-{step}-{i}")).collect();
            let input = ids.iter().map(|id| format!("{id}\n")).collect::<String>();
            sent.extend(ids);
            if mode == 1 {
                disk.fill();
            }
            let term_after = (mode == 0).then_some(input.len() / 2);
            let r = run(input.as_bytes(), term_after, &disk);
            if mode == 1 {
                disk.unfill();
            }
            assert!(
                matches!(r.code(), 0 | 69 | 74 | 75),
                "step {step} (mode {mode}, broker up {broker_up}): exit {}: {}",
                r.code(),
                r.stderr
            );
            doubted += in_doubt(&r.stderr);
            log.push(format!(
                "seed {seed:x} step {step} mode {mode} up {broker_up} n {n}: exit {}",
                r.code()
            ));
        }
    }
    if !broker_up {
        cluster.start_node(1);
    }
    for _ in 0..3 {
        if disk.spool_files() == 0 {
            break;
        }
        let r = run(b"", None, &disk);
        doubted += in_doubt(&r.stderr);
        log.push(format!("final run: exit {}", r.code()));
    }
    assert_eq!(disk.spool_files(), 0, "spool not emptied: {log:#?}");
    let landed = read_topic(&b, &topic, sent.len(), Duration::from_secs(60));
    let mut copies: BTreeMap<String, u64> = BTreeMap::new();
    for l in &landed {
        *copies.entry(l.value_str()).or_default() += 1;
    }
    for line in read_lines(&dl) {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        *copies
            .entry(v["value"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let missing: Vec<&String> = sent.iter().filter(|id| !copies.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} records gone: {missing:?}\n{log:#?}",
        missing.len()
    );
    let extra: u64 = copies.values().map(|c| c - 1).sum();
    assert!(
        extra <= doubted,
        "{extra} extra copies, but librdkafka doubted only {doubted}\n{log:#?}"
    );
    assert_eq!(copies.len(), sent.len(), "records nobody sent landed");
}
