//! Checked settings built from the command line, and the one mapping to librdkafka properties.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use rdkafka::ClientConfig;

use crate::cli::{Acks, Cli, Format, OnError};
use crate::route::Router;
use crate::units::unescape;

/// librdkafka's default `message.max.bytes`, used when neither `-X` nor `--max-record-size` set one.
const DEFAULT_MESSAGE_MAX_BYTES: u64 = 1_000_000;

/// Everything a run needs, checked and resolved.
pub struct Settings {
    pub brokers: String,
    pub format: Format,
    pub delimiter: Vec<u8>,
    pub router: Router,
    pub on_error: OnError,
    pub max_record_size: u64,
    pub dry_run: bool,
    pub delivery_timeout: Option<Duration>,
    pub shutdown_timeout: Duration,
    pub dead_letter: Option<PathBuf>,
    pub spool: Option<PathBuf>,
    pub stats: Option<String>,
    pub stats_interval: Duration,
    pub progress: bool,
    pub quiet: bool,
    pub verbose: u8,
    pub acks: Acks,
    /// The producer configuration, friendly flags first, then `-X` as given.
    pub client: ClientConfig,
}

impl Settings {
    /// Checks the command line and resolves it into settings.
    pub fn from_cli(cli: Cli) -> Result<Settings> {
        let brokers = match (&cli.host, cli.port) {
            (Some(host), port) => format!("{host}:{}", port.unwrap_or(9092)),
            (None, Some(_)) => bail!("--port needs --host; or give both as --brokers HOST:PORT"),
            (None, None) => cli.brokers.clone(),
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
            cli.topic.as_deref(),
            cli.key.as_deref(),
            &cli.headers,
            cli.fallback_topic.as_deref(),
            cli.timestamp_field.as_deref(),
            cli.partition,
            key_delimiter,
        )?;
        let client = client_config(&cli, &brokers, &properties)?;
        Ok(Settings {
            brokers,
            format: cli.format,
            delimiter,
            router,
            on_error: cli.on_error,
            max_record_size,
            dry_run: cli.dry_run,
            delivery_timeout: cli.delivery_timeout.0,
            shutdown_timeout: cli.shutdown_timeout,
            dead_letter: cli.dead_letter,
            spool: cli.spool,
            stats: cli.stats,
            stats_interval: cli.stats_interval,
            progress: !cli.no_progress && !cli.quiet,
            quiet: cli.quiet,
            verbose: cli.verbose,
            acks: cli.acks,
            client,
        })
    }
}

fn parse_properties(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => bail!("-X {p}: expected KEY=VALUE, e.g. -X compression.type=lz4"),
        })
        .collect()
}

/// Friendly flags whose librdkafka property must not also be given with -X.
const OWNED_BY_FLAGS: &[(&str, &str)] = &[
    ("acks", "--acks"),
    ("request.required.acks", "--acks"),
    ("message.timeout.ms", "--delivery-timeout"),
    ("delivery.timeout.ms", "--delivery-timeout"),
    ("bootstrap.servers", "--brokers"),
    ("metadata.broker.list", "--brokers"),
];

fn client_config(
    cli: &Cli,
    brokers: &str,
    properties: &[(String, String)],
) -> Result<ClientConfig> {
    for (key, _) in properties {
        if let Some((_, flag)) = OWNED_BY_FLAGS.iter().find(|(k, _)| k == key) {
            bail!("-X {key} is set by {flag}; use {flag} instead, so the two cannot disagree");
        }
    }
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("client.id", "kpipe")
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
        // bookkeeping) dominates for small records, so the record count is capped too: one
        // record per 2 KiB of --max-buffered (32 768 by default). Measured on 1M records of
        // 256 B: a 1M cap held 128 MB and used 3 µs CPU per record; 16k held 17 MB, 32k 24 MB
        // and 64k 39 MB at the same CPU. 16k was too few under syslog-ng at 100 000 messages/s:
        // 160 ms of records, so a broker pause that long stopped kpipe reading and syslog-ng's
        // flow-control held its sources back (bench/syslog-ng).
        .set(
            "queue.buffering.max.messages",
            (cli.max_buffered / 2048).clamp(1000, 1_000_000).to_string(),
        )
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        // Keyed records land where the Java client would put them.
        .set("partitioner", "murmur2_random")
        .set("log.connection.close", "false")
        // Connect to every broker as soon as metadata names it, not when the first batch for it
        // is ready: the idempotent producer needs a connected broker for its producer id, and
        // waiting for one made a one-record run take 60 ms instead of 15.
        .set("enable.sparse.connections", "false");
    // rdkafka asks the `log` crate which librdkafka levels to forward; kpipe has no logger, so
    // the level is set here: warnings with -v, everything (and `-X debug=...`) with -vv.
    c.set_log_level(match cli.verbose {
        0 => rdkafka::config::RDKafkaLogLevel::Error,
        1 => rdkafka::config::RDKafkaLogLevel::Warning,
        _ => rdkafka::config::RDKafkaLogLevel::Debug,
    });
    if cli.stats.is_some() {
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
