//! Prometheus metrics: the counters in Prometheus's text format, served on `--metrics ADDR`
//! and written to `--metrics-file PATH` for node_exporter's textfile collector.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};

use crate::failed::Ledger;
use crate::say;
use crate::stats::Tally;

/// What one scrape shows, read from the counters at one moment.
#[derive(Debug, Default)]
pub struct Sample {
    pub tally: Tally,
    pub in_flight: i64,
    /// Bytes of records librdkafka holds, from its last statistics.
    pub buffered_bytes: u64,
    /// Each broker's average round trip, in microseconds, by name.
    pub broker_rtt_us: BTreeMap<String, i64>,
    /// The class of the last reason a record was not delivered.
    pub last_error: Option<String>,
    /// With `--spool`: the spool files waiting to be sent, and their bytes.
    pub spool: Option<Backlog>,
}

/// Spool files waiting to be sent: written by this run or another, or being sent now.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub files: u64,
    pub bytes: u64,
}

impl Backlog {
    /// Counts the spool files in `dir` (a directory that cannot be listed shows none).
    pub fn of(dir: &Path) -> Backlog {
        let mut b = Backlog::default();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return b;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.ends_with(".spool") || name.ends_with(".spool.tmp")) {
                continue;
            }
            // Not followed: the spool is read without following links either.
            if let Some(meta) = entry.metadata().ok().filter(|m| m.is_file()) {
                b.files += 1;
                b.bytes += meta.len();
            }
        }
        b
    }
}

impl Sample {
    /// Reads the ledger's counters.
    pub fn of(ledger: &Ledger) -> Sample {
        let c = &ledger.counters;
        Sample {
            tally: c.snapshot(),
            in_flight: c.in_flight.load(Relaxed),
            buffered_bytes: c.buffered_bytes.load(Relaxed),
            broker_rtt_us: c.broker_rtts_us(),
            last_error: ledger.last_error().map(|r| r.class()),
            spool: ledger.outlet_names().0.map(|dir| Backlog::of(&dir)),
        }
    }
}

/// The counters as Prometheus text (exposition format 0.0.4).
pub fn render(s: &Sample) -> String {
    let t = &s.tally;
    let mut out = String::with_capacity(2048);
    let counters: [(&str, &str, u64); 11] = [
        ("records_read", "Records read from the input.", t.read),
        ("bytes_read", "Bytes of input read.", t.bytes),
        (
            "records_delivered",
            "Records the brokers acknowledged (in a transaction: committed).",
            t.delivered,
        ),
        (
            "records_spooled",
            "Records written to the spool, for the next run.",
            t.spooled,
        ),
        (
            "records_dead_lettered",
            "Records written to the dead-letter file.",
            t.dead_lettered,
        ),
        (
            "records_lost",
            "Records neither delivered nor kept.",
            t.lost,
        ),
        (
            "records_in_doubt",
            "Failed records the brokers may have stored anyway.",
            t.in_doubt,
        ),
        (
            "records_replayed",
            "Records read from the spool and sent again.",
            t.replayed,
        ),
        (
            "records_set_aside",
            "Spool lines that are not envelopes, moved aside.",
            t.set_aside,
        ),
        ("records_empty_skipped", "Empty records, skipped.", t.empty),
        (
            "produce_retries",
            "Produce requests librdkafka sent again.",
            t.retried,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP kpipe_{name}_total {help}");
        let _ = writeln!(out, "# TYPE kpipe_{name}_total counter");
        let _ = writeln!(out, "kpipe_{name}_total {value}");
    }
    out.push_str("# HELP kpipe_records_malformed_total Malformed records, by what --on-error made of them.\n");
    out.push_str("# TYPE kpipe_records_malformed_total counter\n");
    for (action, n) in [
        ("sent", t.malformed_sent),
        ("dropped", t.malformed_dropped),
        ("failed", t.malformed_failed),
    ] {
        let _ = writeln!(
            out,
            "kpipe_records_malformed_total{{action=\"{action}\"}} {n}"
        );
    }
    out.push_str(
        "# HELP kpipe_records_in_flight Records handed to librdkafka and not settled yet.\n",
    );
    out.push_str("# TYPE kpipe_records_in_flight gauge\n");
    let _ = writeln!(out, "kpipe_records_in_flight {}", s.in_flight);
    out.push_str("# HELP kpipe_buffered_bytes Bytes of records librdkafka holds, from its last statistics.\n");
    out.push_str("# TYPE kpipe_buffered_bytes gauge\n");
    let _ = writeln!(out, "kpipe_buffered_bytes {}", s.buffered_bytes);
    if let Some(b) = s.spool {
        out.push_str("# HELP kpipe_spool_files Spool files waiting to be sent (this run's, another's, or being sent).\n");
        out.push_str("# TYPE kpipe_spool_files gauge\n");
        let _ = writeln!(out, "kpipe_spool_files {}", b.files);
        out.push_str(
            "# HELP kpipe_spool_backlog_bytes Bytes in the spool files waiting to be sent.\n",
        );
        out.push_str("# TYPE kpipe_spool_backlog_bytes gauge\n");
        let _ = writeln!(out, "kpipe_spool_backlog_bytes {}", b.bytes);
    }
    out.push_str("# HELP kpipe_broker_rtt_seconds Each broker's average round trip.\n");
    out.push_str("# TYPE kpipe_broker_rtt_seconds gauge\n");
    for (broker, us) in &s.broker_rtt_us {
        let _ = writeln!(
            out,
            "kpipe_broker_rtt_seconds{{broker=\"{}\"}} {}",
            label(broker),
            *us as f64 / 1e6
        );
    }
    out.push_str(
        "# HELP kpipe_last_error_info The class of the last reason a record was not delivered.\n",
    );
    out.push_str("# TYPE kpipe_last_error_info gauge\n");
    if let Some(class) = &s.last_error {
        let _ = writeln!(out, "kpipe_last_error_info{{class=\"{}\"}} 1", label(class));
    }
    out.push_str("# HELP kpipe_build_info kpipe's version and the librdkafka it was built with.\n");
    out.push_str("# TYPE kpipe_build_info gauge\n");
    let _ = writeln!(
        out,
        "kpipe_build_info{{version=\"{}\",librdkafka=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        label(&rdkafka::util::get_rdkafka_version().1)
    );
    out
}

/// A label value, escaped as the text format asks.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// How long a server that could not take its address waits before trying again.
const BIND_AGAIN: Duration = Duration::from_secs(1);

/// Serves `/metrics` on `addr` from a thread of its own for as long as kpipe runs. An address
/// still held (by the kpipe this one replaces, during a syslog-ng reload) is tried again
/// every second: records flow meanwhile, and the port is taken once it is free.
pub fn serve(addr: &str, ledger: Arc<Ledger>) -> Result<()> {
    use std::net::ToSocketAddrs as _;
    let addr: std::net::SocketAddr = addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .with_context(|| format!("--metrics {addr}: not an address to listen on; give HOST:PORT, e.g. 127.0.0.1:9464"))?;
    std::thread::Builder::new()
        .name("kpipe-metrics".into())
        .spawn(move || {
            let server = bind(addr);
            for request in server.incoming_requests() {
                let body = render(&Sample::of(&ledger));
                let response =
                    tiny_http::Response::from_string(body).with_header(tiny_http::Header {
                        field: "Content-Type".parse().expect("a header name"),
                        value: "text/plain; version=0.0.4; charset=utf-8"
                            .parse()
                            .expect("a header value"),
                    });
                // A scraper that went away has nothing to be told.
                let _ = request.respond(response);
            }
        })
        .context("starting the --metrics thread")?;
    Ok(())
}

/// Binds `addr`, trying again while it is taken; says so once.
fn bind(addr: std::net::SocketAddr) -> tiny_http::Server {
    let mut said = false;
    loop {
        match tiny_http::Server::http(addr) {
            Ok(server) => {
                if said {
                    say!("kpipe: --metrics {addr}: serving now");
                }
                return server;
            }
            Err(e) => {
                if !said {
                    say!("kpipe: --metrics {addr}: {e}; trying again every second, records flow meanwhile");
                    said = true;
                }
                std::thread::sleep(BIND_AGAIN);
            }
        }
    }
}

/// Writes the metrics to `path` whole: to a new file beside it, then renamed over it, so that
/// node_exporter never reads half a file.
pub fn write_file(path: &Path, body: &str) -> Result<()> {
    let tmp = sibling(path);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(crate::spool::NOFOLLOW)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(body.as_bytes())?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("writing the --metrics-file {}", path.display()))
}

/// `.NAME.PID.tmp` beside `path`: node_exporter reads only `*.prom` files.
fn sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        Sample {
            tally: Tally {
                read: 10,
                delivered: 7,
                spooled: 2,
                dead_lettered: 1,
                malformed_sent: 3,
                ..Tally::default()
            },
            in_flight: 4,
            buffered_bytes: 1024,
            broker_rtt_us: [("127.0.0.1:9092/1".to_string(), 1500)].into(),
            last_error: Some("MsgTimedOut".into()),
            spool: Some(Backlog {
                files: 2,
                bytes: 300,
            }),
        }
    }

    #[test]
    fn renders_each_counter_with_its_type() {
        let text = render(&sample());
        for line in [
            "# TYPE kpipe_records_read_total counter",
            "kpipe_records_read_total 10",
            "kpipe_records_delivered_total 7",
            "kpipe_records_spooled_total 2",
            "kpipe_records_dead_lettered_total 1",
            "kpipe_records_lost_total 0",
            "kpipe_records_malformed_total{action=\"sent\"} 3",
            "kpipe_records_in_flight 4",
            "kpipe_buffered_bytes 1024",
            "kpipe_broker_rtt_seconds{broker=\"127.0.0.1:9092/1\"} 0.0015",
            "kpipe_last_error_info{class=\"MsgTimedOut\"} 1",
            "kpipe_spool_files 2",
            "kpipe_spool_backlog_bytes 300",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(text.contains("kpipe_build_info{version=\""));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn counts_spool_files_and_passes_over_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("1-2.spool"), "abc").unwrap();
        std::fs::write(d.join("3-4.spool.tmp"), "de").unwrap();
        std::fs::write(d.join("dead-letter.ndjson"), "xxxx").unwrap();
        std::fs::create_dir(d.join("log")).unwrap();
        std::fs::create_dir(d.join("5-6.spool")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("7-8.spool")).unwrap();
        assert_eq!(Backlog::of(d), Backlog { files: 2, bytes: 5 });
        let none = Backlog::of(&d.join("missing"));
        assert_eq!(none, Backlog::default());
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn writes_the_file_whole_and_leaves_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kpipe.prom");
        write_file(&path, "one\n").unwrap();
        write_file(&path, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
