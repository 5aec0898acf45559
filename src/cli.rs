//! The command line: the only place flags are defined. Doc comments are the `--help` text,
//! and the man page and shell completions are generated from this definition.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};

use crate::options::{Acks, Compression, Format, OnError, SaslMechanism};
use crate::units::{parse_duration, parse_size, parse_timeout, Timeout};

const LONG_ABOUT: &str = "\
Forward records from standard input to Apache Kafka, losing none.

kpipe reads standard input in large blocks, cuts it into records (--format), routes each record \
to a topic with a key and headers (templates over JSON fields), and produces it through librdkafka \
with acks=all and the idempotent producer. It waits for every acknowledgement before it exits, and \
its exit status says whether every record landed. What cannot be delivered goes to the spool \
(--spool, sent first by the next run) or the dead-letter file (--dead-letter), never silently away.";

/// `kpipe --version`: what this build can speak (a unit test checks librdkafka agrees).
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nlibrdkafka 2.12.1 (bundled, with kpipe's three patches; gzip by zlib-ng)\n",
    "memory allocator: jemalloc\n",
    "built in: TLS (OpenSSL 3, vendored), SASL PLAIN, SCRAM-SHA-256, SCRAM-SHA-512,\n",
    "GSSAPI (Kerberos, through the system's Cyrus SASL), OAUTHBEARER (OIDC, libcurl bundled),\n",
    "compression gzip, snappy, lz4, zstd"
);

const AFTER_HELP: &str = "\
Examples:
  tail -F app.log | kpipe -b k1:9092 -t app
  nightly-report | kpipe -b k1:9092 -t reports -q || logger -t kpipe \"report not delivered\"
  kpipe -f ndjson -t 'logs.${PROGRAM}' -k '${HOST}' --spool /var/spool/kpipe < events.json
  find / -xdev -print0 | kpipe -D '\\0' -t files
  kpipe -f envelope < dead-letter.ndjson      # replay a dead-letter file

Signals: SIGTERM/SIGINT keep reading until EOF for at most --shutdown-timeout, then spool or
dead-letter what is undelivered; a second one stops at once. SIGHUP reopens the dead-letter file;
SIGUSR1 prints the statistics line.";

/// kpipe's command line.
#[derive(Debug, Parser)]
#[command(
    name = "kpipe",
    version,
    long_version = LONG_VERSION,
    about = "Forward records from standard input to Apache Kafka, losing none",
    long_about = LONG_ABOUT,
    max_term_width = 100
)]
pub struct Cli {
    /// Files to read, in order, as one input (- is standard input) [default: standard input].
    #[arg(value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,

    /// Bootstrap brokers, comma-separated host:port [default: bootstrap.servers from -F, else
    /// localhost:9092].
    #[arg(short = 'b', long, env = "KPIPE_BROKERS", value_name = "LIST")]
    pub brokers: Option<String>,

    /// Broker host, as in the original syslog-ng destination (overrides --brokers).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,

    /// Broker port, with --host (default 9092).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Topic, or a template such as 'logs.${PROGRAM}'.
    #[arg(short = 't', long, env = "KPIPE_TOPIC", value_name = "TOPIC")]
    pub topic: Option<String>,

    /// Input framing.
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Lines, value_name = "FORMAT")]
    pub format: Format,

    /// Record delimiter for --format lines; escapes \n \t \r \0 \xNN; several bytes allowed.
    #[arg(short = 'D', long, value_name = "DELIM", default_value = "\\n")]
    pub delimiter: String,

    /// Split each line into key and value at the first DELIM (--format lines), as kcat -K does.
    #[arg(short = 'K', long, value_name = "DELIM")]
    pub key_delimiter: Option<String>,

    /// Record key, or a template such as '${HOST}'.
    #[arg(short = 'k', long, value_name = "TEMPLATE")]
    pub key: Option<String>,

    /// Record header NAME=TEMPLATE (repeatable); a value without `$` is static.
    #[arg(short = 'H', long = "header", value_name = "NAME=TEMPLATE")]
    pub headers: Vec<String>,

    /// Topic for records whose template fields are missing, or whose topic is refused.
    #[arg(long, value_name = "TOPIC")]
    pub fallback_topic: Option<String>,

    /// Topics taken from the input (templates, envelopes) must match REGEX, whole; others go to
    /// --fallback-topic, else the dead-letter file.
    #[arg(long, value_name = "REGEX")]
    pub topic_allow: Option<String>,

    /// Take the record timestamp from this JSON field (RFC 3339 or epoch milliseconds).
    #[arg(long, value_name = "NAME")]
    pub timestamp_field: Option<String>,

    /// Send every record to this partition.
    #[arg(short = 'p', long, value_name = "N")]
    pub partition: Option<i32>,

    /// What to do with malformed records.
    #[arg(long, value_enum, default_value_t = OnError::FallbackToString, value_name = "MODE")]
    pub on_error: OnError,

    /// Largest record sent; larger ones are dead-lettered, cut at SIZE while read [default: message.max.bytes].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_record_size: Option<u64>,

    /// Print each record as it would be sent, in envelope form, to stdout; no broker.
    #[arg(long)]
    pub dry_run: bool,

    /// librdkafka property KEY=VALUE, passed as-is (repeatable), like kcat -X; never a secret.
    #[arg(short = 'X', long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,

    /// librdkafka properties from FILE (key=value lines, # comments), like kcat -F; flags and -X
    /// override it. A file holding a secret must not be readable by group or others.
    #[arg(
        short = 'F',
        long = "config",
        env = "KPIPE_CONFIG",
        value_name = "FILE"
    )]
    pub config_file: Option<PathBuf>,

    /// Connect with TLS (security.protocol SSL, or SASL_SSL with --sasl-mechanism).
    #[arg(long)]
    pub tls: bool,

    /// CA certificates (PEM) to verify the brokers with; implies --tls.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS, with --tls-key; implies --tls.
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// Client private key (PEM) for mutual TLS (--key is the record key).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Do not verify the brokers' certificates or names (warned on stderr); implies --tls.
    #[arg(long)]
    pub tls_insecure: bool,

    /// SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI or OAUTHBEARER (SASL_SSL with
    /// --tls, else SASL_PLAINTEXT).
    #[arg(long, value_enum, value_name = "MECHANISM", ignore_case = true)]
    pub sasl_mechanism: Option<SaslMechanism>,

    /// SASL user name.
    #[arg(long, value_name = "NAME")]
    pub sasl_username: Option<String>,

    /// File whose first line is the SASL password (mode 600); or set KPIPE_SASL_PASSWORD.
    #[arg(long, value_name = "FILE")]
    pub sasl_password_file: Option<PathBuf>,

    /// Kerberos keytab (mode 600) for --kerberos-principal: kpipe runs kinit with it at start and
    /// every minute, into a ticket cache of its own. Without it, the cache kinit left is used.
    #[arg(long, value_name = "FILE")]
    pub kerberos_keytab: Option<PathBuf>,

    /// Kerberos principal kpipe logs in as with --kerberos-keytab, e.g. kpipe@EXAMPLE.COM.
    #[arg(long, value_name = "PRINCIPAL")]
    pub kerberos_principal: Option<String>,

    /// The brokers' Kerberos service: their principal is NAME/HOST, HOST as --brokers names it.
    #[arg(long, value_name = "NAME", default_value = "kafka")]
    pub kerberos_service_name: String,

    /// The OIDC issuer's token endpoint, where kpipe gets (and renews) its OAuth tokens.
    #[arg(long, value_name = "URL")]
    pub oauth_token_url: Option<String>,

    /// OAuth client id, sent with its secret to --oauth-token-url.
    #[arg(long, value_name = "ID")]
    pub oauth_client_id: Option<String>,

    /// File whose first line is the OAuth client secret (mode 600); or set KPIPE_OAUTH_CLIENT_SECRET.
    #[arg(long, value_name = "FILE")]
    pub oauth_client_secret_file: Option<PathBuf>,

    /// OAuth scope to ask the token endpoint for.
    #[arg(long, value_name = "SCOPE")]
    pub oauth_scope: Option<String>,

    /// Compression of record batches, as kcat -z; none by default, as kcat (BENCHMARKS.md: lz4 or zstd where the network is the limit).
    #[arg(short = 'z', long, value_enum, default_value_t = Compression::None, value_name = "CODEC")]
    pub compression: Compression,

    /// Acknowledgements required; 1 and 0 turn idempotence off.
    #[arg(long, value_enum, default_value_t = Acks::All, value_name = "ACKS")]
    pub acks: Acks,

    /// How long kpipe waits for a first answer from any broker before it gives up (exit 69, what
    /// was read kept as after --delivery-timeout); once one answered, outages are ridden out.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub connect_timeout: Timeout,

    /// How long one record may take to be delivered, retries included; `never` keeps trying.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_timeout)]
    pub delivery_timeout: Timeout,

    /// First pause between retries of a failed produce request.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub retry_backoff: Duration,

    /// Longest pause between retries, reached by doubling.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub retry_backoff_max: Duration,

    /// Most record bytes held in flight; while full, kpipe stops reading stdin (--exactly-once
    /// reads on into its log).
    #[arg(long, long_help = crate::room::MEMORY_LIMIT, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_buffered: u64,

    /// Append records that fail permanently to FILE, as envelope lines with the reason
    /// [default with --spool: DIR/dead-letter.ndjson].
    #[arg(long, value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,

    /// Keep what could not be delivered yet in DIR; the next run sends it first. What the
    /// brokers refuse for good goes to DIR/dead-letter.ndjson, never sent again by itself.
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,

    /// Send the whole input in one Kafka transaction, committed at EOF: all of it or none.
    #[arg(long, conflicts_with_all = ["exactly_once", "spool", "dry_run"])]
    pub atomic: bool,

    /// Write every record to a log in the --spool DIR before sending, and send in transactions
    /// that also record the log position: no record twice, even across SIGKILL.
    #[arg(long, requires = "spool", conflicts_with = "dry_run")]
    pub exactly_once: bool,

    /// rsyslog omprog's confirmMessages protocol on stdout: OK once ready, then OK for each line
    /// once it is in --exactly-once's log, so rsyslog resends what a killed kpipe had not kept.
    #[arg(long, requires = "exactly_once")]
    pub confirm: bool,

    /// With --confirm: a first line that is byte for byte the last one in the log is the one a
    /// killed kpipe kept but did not confirm, sent again: dropped. Give each message a uuid.
    #[arg(long, requires = "confirm")]
    pub drop_resent: bool,

    /// Transactional id for --atomic or --exactly-once; a run with the same id fences the last.
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,

    /// How long a transaction may stay open (the brokers' transaction.max.timeout.ms caps it).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub transaction_timeout: Option<Duration>,

    /// With --exactly-once, how often the open transaction is committed.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub commit_interval: Duration,

    /// With --exactly-once, the compacted topic that holds each id's committed log position.
    #[arg(long, value_name = "TOPIC", default_value = "kpipe-offsets")]
    pub offsets_topic: String,

    /// After SIGTERM/SIGINT (or at EOF with --spool), how long to keep reading and delivering.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Write statistics as JSON lines to FILE, or `-` for stderr (fields: man kpipe, STATISTICS).
    #[arg(long, value_name = "FILE")]
    pub stats: Option<String>,

    /// How often to write --stats lines.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub stats_interval: Duration,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464); an address still
    /// taken is tried again every second while records flow.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,

    /// Write Prometheus metrics to PATH every --stats-interval and at exit, replaced whole (for
    /// node_exporter's textfile collector: name it *.prom).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// Never show the live progress line, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,

    /// Print nothing on success and one line on failure.
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More detail on stderr; twice shows librdkafka's own log.
    #[arg(short = 'v', long, action = ArgAction::Count)]
    pub verbose: u8,
}

/// Parses the process arguments; exits with status 2 on usage errors.
pub fn parse() -> Cli {
    let matches = command().try_get_matches().unwrap_or_else(|e| {
        if let Some(hint) = kcat_hint(&e) {
            crate::say!("kpipe: {hint}");
            std::process::exit(i32::from(crate::exit::Status::Usage.code()));
        }
        e.exit()
    });
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    }
}

/// kcat's flags that kpipe does not take, and what to do instead.
const KCAT_FLAGS: &[(&str, &str)] = &[
    ("-P", "kpipe always produces: drop -P"),
    (
        "-C",
        "kpipe only produces: read a topic with kcat -C or kafka-console-consumer",
    ),
    ("-L", "kpipe only produces: list metadata with kcat -L"),
    ("-Q", "kpipe only produces: query offsets with kcat -Q"),
    (
        "-l",
        "kpipe reads files as records already: kpipe -t TOPIC FILE...",
    ),
    (
        "-c",
        "kpipe reads to the end of its input: cut it first, head -n N | kpipe ...",
    ),
    (
        "-T",
        "kpipe does not echo what it sends: tee the input, ... | tee /dev/stderr | kpipe ...",
    ),
    (
        "-Z",
        "kpipe skips empty records (counted as \"empty skipped\") rather than sending NULL values",
    ),
    ("-e", "kpipe always exits at the end of its input: drop -e"),
    ("-o", "kpipe only produces: -o is kcat's consumer offset"),
    ("-G", "kpipe only produces: -G is kcat's consumer group"),
];

/// For an argument clap did not know that is one of kcat's, what to do instead.
fn kcat_hint(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let (flag, hint) = KCAT_FLAGS.iter().find(|(f, _)| arg == f)?;
    Some(format!(
        "{flag} is a kcat flag; {hint} (kpipe --help lists kpipe's flags)"
    ))
}

/// The clap command, for the man page, completions and tests.
pub fn command() -> clap::Command {
    Cli::command().after_help(format!("{AFTER_HELP}\n\n{}", crate::exit::help_text()))
}
