//! Checked settings built from the command line, and the one mapping to librdkafka properties.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use rdkafka::ClientConfig;

use crate::cli::Cli;
use crate::guarantee::{Mode, Transactions};
use crate::input::Operand;
use crate::options::{Acks, Compression, Format, OnError};
use crate::route::{self, Router};
use crate::security::Security;
use crate::units::unescape;

/// librdkafka's default `message.max.bytes`, used when neither `-X` nor `--max-record-size` set one.
const DEFAULT_MESSAGE_MAX_BYTES: u64 = 1_000_000;

/// Everything a run needs, checked and resolved.
pub struct Settings {
    pub brokers: String,
    pub format: Format,
    pub delimiter: Vec<u8>,
    pub on_error: OnError,
    pub max_record_size: u64,
    /// `--max-buffered`: what librdkafka may hold (`sink::Room`).
    pub max_buffered: u64,
    pub dry_run: bool,
    pub delivery_timeout: Option<Duration>,
    /// How long to wait for a first answer from any broker; `None`: as long as it takes.
    pub connect_timeout: Option<Duration>,
    pub shutdown_timeout: Duration,
    pub dead_letter: Option<PathBuf>,
    pub spool: Option<PathBuf>,
    pub stats: Option<String>,
    pub stats_interval: Duration,
    /// `--metrics`: where to serve Prometheus metrics.
    pub metrics: Option<String>,
    /// `--metrics-file`: where to write them.
    pub metrics_file: Option<PathBuf>,
    pub progress: bool,
    pub quiet: bool,
    pub verbose: u8,
    pub acks: Acks,
    /// The producer configuration: kpipe's defaults, `-F`, the flags, then `-X`.
    pub client: ClientConfig,
    /// The secrets in it, to redact from every message.
    pub security: Security,
    /// `--tls-insecure`: certificates are not checked.
    pub tls_insecure: bool,
    /// `--atomic` or `--exactly-once`, when given.
    pub transactions: Option<Transactions>,
    /// What to read, in order (empty: standard input).
    pub inputs: Vec<Operand>,
    /// `--confirm`: OK on stdout for each line once it is in the log.
    pub confirm: bool,
    /// `--drop-resent`: the first line, if it is the log's last, is not logged again.
    pub drop_resent: bool,
}

impl Settings {
    /// Checks the command line and resolves it into settings and the router they describe.
    pub fn from_cli(cli: Cli) -> Result<(Settings, Router)> {
        let security = Security::from_cli(&cli)?;
        let from_file = security
            .file
            .iter()
            .find(|(k, _)| k == "bootstrap.servers" || k == "metadata.broker.list")
            .map(|(_, v)| v.clone());
        let brokers = match (&cli.host, cli.port) {
            (Some(host), port) => format!("{host}:{}", port.unwrap_or(9092)),
            (None, Some(_)) => bail!("--port needs --host; or give both as --brokers HOST:PORT"),
            (None, None) => cli
                .brokers
                .clone()
                .or(from_file)
                .unwrap_or_else(|| "localhost:9092".into()),
        };
        let properties = parse_properties(&cli.properties)?;
        let max_record_size = match cli.max_record_size {
            Some(n) => n,
            None => properties
                .iter()
                .find(|(k, _)| k == "message.max.bytes")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES),
        };
        if cli.topic.is_none() && cli.format != Format::Envelope {
            bail!("no topic: give -t TOPIC (or set KPIPE_TOPIC)");
        }
        if cli.key_delimiter.is_some() && cli.format != Format::Lines {
            bail!(
                "-K/--key-delimiter only applies to --format lines; use -k '${{FIELD}}' for JSON"
            );
        }
        let delimiter = unescape(&cli.delimiter).map_err(|e| anyhow::anyhow!("-D: {e}"))?;
        let key_delimiter = match &cli.key_delimiter {
            Some(d) => Some(unescape(d).map_err(|e| anyhow::anyhow!("-K: {e}"))?),
            None => None,
        };
        let router = Router::new(
            cli.format,
            &route::Rules {
                topic: cli.topic.as_deref(),
                key: cli.key.as_deref(),
                headers: &cli.headers,
                fallback_topic: cli.fallback_topic.as_deref(),
                timestamp_field: cli.timestamp_field.as_deref(),
                partition: cli.partition,
                key_delimiter,
                topic_allow: cli.topic_allow.as_deref(),
            },
        )?;
        let transactions = Transactions::from_cli(&cli, &crate::guarantee::host_name())?;
        let inputs: Vec<Operand> = cli.files.iter().cloned().map(Operand::from_arg).collect();
        let exactly_once = transactions.as_ref().map(|t| t.mode) == Some(Mode::ExactlyOnce);
        if cli.confirm && cli.format == Format::Lines && delimiter != b"\n" {
            bail!("--confirm answers each line: it needs newline-delimited input (no -D)");
        }
        if exactly_once && inputs.iter().any(|i| i != &Operand::Stdin) {
            bail!("--exactly-once keeps a stream from standard input in its log; a file can be read again: give it --atomic, or pipe it in (cat FILE... | kpipe --exactly-once ...)");
        }
        let mut client = client_config(&cli, &brokers, &properties, &security)?;
        if let Some(t) = &transactions {
            transactional(&mut client, t, cli.delivery_timeout.0);
        }
        let settings = Settings {
            brokers,
            format: cli.format,
            delimiter,
            on_error: cli.on_error,
            max_record_size,
            max_buffered: cli.max_buffered,
            dry_run: cli.dry_run,
            delivery_timeout: cli.delivery_timeout.0,
            connect_timeout: cli.connect_timeout.0,
            shutdown_timeout: cli.shutdown_timeout,
            dead_letter: cli.dead_letter,
            spool: cli.spool,
            stats: cli.stats,
            stats_interval: cli.stats_interval,
            metrics: cli.metrics,
            metrics_file: cli.metrics_file,
            progress: !cli.no_progress && !cli.quiet,
            quiet: cli.quiet,
            verbose: cli.verbose,
            acks: cli.acks,
            client,
            tls_insecure: cli.tls_insecure,
            security,
            transactions,
            inputs,
            confirm: cli.confirm,
            drop_resent: cli.drop_resent,
        };
        Ok((settings, router))
    }

    /// The settings in force, in one line, for `-v`.
    pub fn describe(&self) -> String {
        let get = |k: &str| {
            self.client
                .get(k)
                .unwrap_or("librdkafka's default")
                .to_string()
        };
        let timeout = |t: Option<Duration>| {
            t.map_or("never".to_string(), |t| {
                humantime::format_duration(t).to_string()
            })
        };
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("none".into(), |p| p.display().to_string())
        };
        let mode = match self.transactions.as_ref().map(|t| t.mode) {
            None => "at least once",
            Some(crate::guarantee::Mode::Atomic) => "--atomic",
            Some(crate::guarantee::Mode::ExactlyOnce) => "--exactly-once",
        };
        format!(
            "settings: brokers {}, security {}, format {:?}, on-error {:?}, acks {} (idempotence {}), {mode}, compression {}, delivery timeout {}, connect timeout {}, spool {}, dead-letter {}, max buffered {} bytes",
            self.brokers,
            get("security.protocol"),
            self.format,
            self.on_error,
            get("acks"),
            get("enable.idempotence"),
            get("compression.type"),
            timeout(self.delivery_timeout),
            timeout(self.connect_timeout),
            path(&self.spool),
            path(&self.dead_letter),
            self.max_buffered,
        )
    }
}

fn parse_properties(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            // kcat prints librdkafka's properties for -X list; kpipe names where they are.
            None if p == "list" => bail!("-X list is kcat's; librdkafka's properties are listed in its CONFIGURATION.md (https://github.com/confluentinc/librdkafka/blob/v2.12.1/CONFIGURATION.md); kpipe's own flags set many of them (kpipe --help)"),
            _ => bail!("-X {p}: expected KEY=VALUE, e.g. -X linger.ms=20"),
        })
        .collect()
}

/// Every librdkafka property a flag sets (aliases included), with that flag: `-X` may not set
/// one too, or the two could disagree without a word.
pub const OWNED_BY_FLAGS: &[(&str, &str)] = &[
    ("bootstrap.servers", "--brokers"),
    ("metadata.broker.list", "--brokers"),
    ("acks", "--acks"),
    ("request.required.acks", "--acks"),
    ("enable.idempotence", "--acks"),
    ("message.timeout.ms", "--delivery-timeout"),
    ("delivery.timeout.ms", "--delivery-timeout"),
    ("retry.backoff.ms", "--retry-backoff"),
    ("retry.backoff.max.ms", "--retry-backoff-max"),
    ("queue.buffering.max.kbytes", "--max-buffered"),
    ("queue.buffering.max.messages", "--max-buffered"),
    ("statistics.interval.ms", "--stats-interval"),
    ("compression.type", "--compression"),
    ("compression.codec", "--compression"),
    ("security.protocol", "--tls or --sasl-mechanism"),
    ("ssl.ca.location", "--ca"),
    ("ssl.certificate.location", "--cert"),
    ("ssl.key.location", "--tls-key"),
    ("enable.ssl.certificate.verification", "--tls-insecure"),
    ("ssl.endpoint.identification.algorithm", "--tls-insecure"),
    ("sasl.mechanism", "--sasl-mechanism"),
    ("sasl.mechanisms", "--sasl-mechanism"),
    ("sasl.username", "--sasl-username"),
    ("sasl.kerberos.keytab", "--kerberos-keytab"),
    ("sasl.kerberos.principal", "--kerberos-principal"),
    ("sasl.kerberos.service.name", "--kerberos-service-name"),
    ("sasl.kerberos.kinit.cmd", "--kerberos-keytab"),
    ("sasl.oauthbearer.method", "--oauth-token-url"),
    ("sasl.oauthbearer.token.endpoint.url", "--oauth-token-url"),
    ("sasl.oauthbearer.client.id", "--oauth-client-id"),
    ("sasl.oauthbearer.scope", "--oauth-scope"),
    ("transactional.id", "--transactional-id"),
    ("transaction.timeout.ms", "--transaction-timeout"),
];

/// `--max-buffered` when not given (the flag's default says the same).
pub const DEFAULT_MAX_BUFFERED: u64 = 64 << 20;

fn client_config(
    cli: &Cli,
    brokers: &str,
    properties: &[(String, String)],
    security: &Security,
) -> Result<ClientConfig> {
    for (key, _) in properties {
        if crate::security::is_secret_key(key) {
            bail!("-X {key} would put a secret on the command line, where ps shows it: use --sasl-password-file, {} or a -F file", crate::security::PASSWORD_ENV);
        }
        if let Some((_, flag)) = OWNED_BY_FLAGS.iter().find(|(k, _)| k == key) {
            bail!("-X {key} is set by {flag}; use {flag} instead, so the two cannot disagree");
        }
    }
    let mut c = ClientConfig::new();
    // kpipe's own defaults first, so that -F may change them; then -F; then the flags.
    c.set("client.id", "kpipe")
        .set("linger.ms", "5")
        .set("batch.size", batch_size(cli.compression).to_string())
        // Keyed records land where the Java client would put them.
        .set("partitioner", "murmur2_random")
        // A connection closed while asking for ApiVersion tells a plaintext client at a TLS
        // listener: librdkafka says so only in this log (see `sink::kafka::Context::log`).
        .set("log.connection.close", "true")
        // Connect to every broker as soon as metadata names it, not when the first batch for it
        // is ready: the idempotent producer needs a connected broker for its producer id, and
        // waiting for one made a one-record run take 60 ms instead of 15.
        .set("enable.sparse.connections", "false");
    for (k, v) in &security.file {
        c.set(k, v);
    }
    c.set("bootstrap.servers", brokers)
        .set(
            "acks",
            match cli.acks {
                Acks::All => "all",
                Acks::One => "1",
                Acks::Zero => "0",
            },
        )
        .set(
            "enable.idempotence",
            if cli.acks == Acks::All {
                "true"
            } else {
                "false"
            },
        )
        .set(
            "message.timeout.ms",
            cli.delivery_timeout
                .0
                .map_or(0, |d| d.as_millis().max(1))
                .to_string(),
        )
        .set(
            "retry.backoff.ms",
            cli.retry_backoff.as_millis().max(1).to_string(),
        )
        .set(
            "retry.backoff.max.ms",
            cli.retry_backoff_max.as_millis().max(1).to_string(),
        )
        .set(
            "queue.buffering.max.kbytes",
            (cli.max_buffered / 1024).max(1).to_string(),
        )
        // librdkafka's cost per queued record (memory and, with idempotence, CPU in its queue
        // bookkeeping) dominates for small records, so the record count is capped too. While
        // records go to one topic, kpipe lets librdkafka hold one per 2 KiB of --max-buffered
        // (32 768 by default; sink::Room). Measured on 1M records of 256 B: a 1M cap held 128 MB
        // and used 3 µs CPU per record; 16k held 17 MB, 32k 24 MB and 64k 39 MB at the same CPU.
        // 16k was too few under syslog-ng at 100 000 messages/s: 160 ms of records, so a broker
        // pause that long stopped kpipe reading and syslog-ng's flow-control held its sources
        // back (bench/syslog-ng). Many topics need more (their partitions batch apart), so
        // librdkafka's own cap is the most Room allows.
        .set(
            "queue.buffering.max.messages",
            crate::room::most_records(cli.max_buffered).to_string(),
        );
    c.set("compression.type", cli.compression.librdkafka_name());
    for (k, v) in &security.flags {
        c.set(k, v);
    }
    // rdkafka asks the `log` crate which librdkafka levels to forward; kpipe has no logger, so
    // the level is set here: everything (and `-X debug=...`) with -vv, else what kpipe reads
    // (closed connections are logged at Info) and prints (warnings with -v).
    c.set_log_level(match cli.verbose {
        0 | 1 => rdkafka::config::RDKafkaLogLevel::Info,
        _ => rdkafka::config::RDKafkaLogLevel::Debug,
    });
    // The brokers' round trips come from librdkafka's statistics.
    if cli.stats.is_some() || cli.metrics.is_some() || cli.metrics_file.is_some() {
        c.set(
            "statistics.interval.ms",
            cli.stats_interval.as_millis().max(1).to_string(),
        );
    }
    for (k, v) in properties {
        c.set(k, v);
    }
    Ok(c)
}

/// The most bytes kpipe lets librdkafka put in one batch (one produce request) with `codec`.
///
/// The broker reads a request into one buffer, and expands a snappy batch into one more
/// (librdkafka writes one raw block, which the broker cannot read in pieces). On Kafka's default
/// 1 GiB heap a buffer over half a 1 MiB G1 region is a humongous object, which can start
/// concurrent marking. On a broker that marked, 1 MB batches of `-z none` or `-z snappy` cost it
/// 0.4–1.5 s of G1 work per 2M records (480 000: about 0.1 s) and ran 1.2–1.4× slower; where
/// nothing marked, `-z none` ran as fast either way and `-z snappy` up to a tenth faster in 1 MB
/// (bench/findings.md). gzip, lz4 and zstd batches are compressed well below the limit and
/// expanded in small blocks, so they keep 1 MB: smaller ones only made more requests (zstd 8 %
/// slower).
fn batch_size(codec: Compression) -> u32 {
    match codec {
        Compression::None | Compression::Snappy => 480_000,
        Compression::Gzip | Compression::Lz4 | Compression::Zstd => 1_000_000,
    }
}

/// A transactional producer: its id and timeout; a record may not outlive its transaction.
fn transactional(c: &mut ClientConfig, t: &Transactions, delivery: Option<Duration>) {
    let timeout = delivery.map_or(t.timeout, |d| d.min(t.timeout));
    c.set("transactional.id", &t.id)
        .set(
            "transaction.timeout.ms",
            t.timeout.as_millis().max(1).to_string(),
        )
        .set("message.timeout.ms", timeout.as_millis().max(1).to_string());
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
