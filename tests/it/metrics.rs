//! `--metrics` scraped by a real Prometheus (Debian's package, unpacked by scripts/setup), and
//! `--metrics-file` checked by its promtool.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::syslog_ng::free_port;
use crate::util::*;

fn prometheus_root() -> PathBuf {
    let root = cache_dir().join("prometheus/usr/bin");
    assert!(
        root.join("prometheus").exists(),
        "Prometheus is not unpacked in {}: run scripts/setup",
        root.display()
    );
    root
}

/// A Prometheus server scraping `target` every second, stopped when dropped.
struct Prometheus {
    child: Child,
    port: u16,
}

impl Prometheus {
    fn start(dir: &Path, target: &str) -> Prometheus {
        let port = free_port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: kpipe\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(prometheus_root().join("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting prometheus");
        Prometheus { child, port }
    }

    /// The value of `metric` as Prometheus last scraped it, if it has one.
    fn value(&self, metric: &str) -> Option<f64> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "5"])
            .arg(format!(
                "http://127.0.0.1:{}/api/v1/query?query={metric}",
                self.port
            ))
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until Prometheus holds `metric` equal to `want`.
    fn wait_for(&self, metric: &str, want: f64, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.value(metric) == Some(want) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(n: usize) -> String {
    (0..n).map(|i| format!("metrics record {i:06}\n")).collect()
}

/// `curl` of kpipe's own endpoint.
fn scrape(addr: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "2"])
        .arg(format!("http://{addr}/metrics"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn prometheus_scrapes_a_run_and_holds_the_counters_of_its_summary() {
    let b = shared_brokers();
    let topic = fresh_topic("metrics");
    create_topic(b, &topic, 3, 1, &[]);
    let dir = temp_dir("metrics");
    let addr = format!("127.0.0.1:{}", free_port());
    let prometheus = Prometheus::start(&dir, &addr);
    let mut child = spawn(&["-b", b, "-t", &topic, "--metrics", &addr]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(lines(100_000).as_bytes()).unwrap();
    // The input stays open until Prometheus has scraped the last counts.
    let scraped = prometheus.wait_for(
        "kpipe_records_delivered_total",
        100_000.0,
        Duration::from_secs(90),
    );
    let read = prometheus.value("kpipe_records_read_total");
    let lost = prometheus.value("kpipe_records_lost_total");
    let in_flight = prometheus.value("kpipe_records_in_flight");
    let build = prometheus.value("kpipe_build_info");
    drop(stdin);
    let run = wait_with_limit(child, Duration::from_secs(60));
    assert_status(&run, Status::Ok);
    assert!(
        scraped,
        "Prometheus never held 100000 delivered; {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("100000 read, 100000 delivered, 0 failed"),
        "{}",
        run.stderr
    );
    assert_eq!(read, Some(100_000.0));
    assert_eq!(lost, Some(0.0));
    assert_eq!(in_flight, Some(0.0));
    assert_eq!(build, Some(1.0));
    assert_eq!(
        read_topic(b, &topic, 100_000, Duration::from_secs(30)).len(),
        100_000
    );
}

#[test]
fn a_metrics_port_still_held_does_not_stop_the_next_kpipe_delivering() {
    let b = shared_brokers();
    let topic = fresh_topic("metrics-overlap");
    create_topic(b, &topic, 1, 1, &[]);
    let addr = format!("127.0.0.1:{}", free_port());
    // The kpipe a syslog-ng reload replaces, still running and serving the port.
    let mut old = spawn(&["-b", b, "-t", &topic, "--metrics", &addr]);
    let started = Instant::now();
    while scrape(&addr).is_none() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(scrape(&addr).is_some(), "the first kpipe never served");
    let mut new = spawn(&["-b", b, "-t", &topic, "--metrics", &addr]);
    let mut stdin = new.stdin.take().unwrap();
    stdin.write_all(lines(1000).as_bytes()).unwrap();
    assert_eq!(
        read_topic(b, &topic, 1000, Duration::from_secs(30)).len(),
        1000
    );
    drop(old.stdin.take());
    let old_run = wait_with_limit(old, Duration::from_secs(30));
    assert_status(&old_run, Status::Ok);
    // Once the port is free, the new kpipe takes it.
    let started = Instant::now();
    let mut text = None;
    while started.elapsed() < Duration::from_secs(15) {
        text = scrape(&addr).filter(|t| t.contains("kpipe_records_delivered_total 1000"));
        if text.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(stdin);
    let run = wait_with_limit(new, Duration::from_secs(30));
    assert_status(&run, Status::Ok);
    assert!(text.is_some(), "the new kpipe never served; {}", run.stderr);
    assert!(
        run.stderr.contains("trying again every second"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_metrics_file_is_valid_prometheus_text_with_the_final_counts() {
    let b = shared_brokers();
    let topic = fresh_topic("metrics-file");
    create_topic(b, &topic, 1, 1, &[]);
    let dir = temp_dir("metrics-file");
    let file = dir.join("kpipe.prom");
    let run = kpipe(
        &[
            "-b",
            b,
            "-t",
            &topic,
            "--metrics-file",
            file.to_str().unwrap(),
        ],
        lines(5000).as_bytes(),
    );
    assert_status(&run, Status::Ok);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.lines()
            .any(|l| l == "kpipe_records_delivered_total 5000"),
        "{text}"
    );
    let check = Command::new(prometheus_root().join("promtool"))
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    // Only the file itself: its temporary sibling was renamed over it.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}
