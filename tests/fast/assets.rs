//! The man page, the shell completions and the README's generated blocks, made from the clap
//! definition and kpipe's tables so they cannot drift from the flags. They live with the tests,
//! not in the shipped binary: `scripts/gen-assets` writes them, and a test (`cli.rs`) fails when
//! the checked-in copies differ.

use clap_complete::Shell;

use kpipe::cli;

/// Sections of the man page beyond the options, as (title, body) with paragraphs separated by
/// blank lines; lines starting with two spaces are kept as they are (examples, tables).
const SECTIONS: &[(&str, &str)] = &[
    (
        "FORMATS",
        "lines (default): records split at --delimiter (default newline). The bytes are sent \
as they are: invalid UTF-8, NUL and carriage returns included. Empty records are skipped; a last \
record without a delimiter is still a record. The delimiter may be several bytes and takes the \
escapes \\n, \\t, \\r, \\0 and \\xNN. -K splits key and value at the first key delimiter.

ndjson: one JSON value per line, sent byte-exact. A line that is not JSON is malformed.

json: JSON values separated by any whitespace, each possibly spanning many lines (the output of \
jq ., or concatenated objects). Each is sent compacted. After a malformed value kpipe starts \
again at the next line that begins with { or [, so one broken value never swallows good ones.

envelope: one JSON object per line that says everything about its record (see ENVELOPE).",
    ),
    (
        "ENVELOPE",
        "An envelope line is a JSON object:

  {\"topic\":\"t\",\"partition\":0,\"key\":\"k\",\"value\":\"v\",
   \"headers\":{\"h\":\"x\"},\"timestamp\":1795651200000}

topic defaults to -t. partition pins a partition. key and value are strings; a value that is a \
JSON object or array is sent as its compact text. \"value\":null is a tombstone; a line without \
value is malformed. \"value_encoding\":\"base64\" and \"key_encoding\":\"base64\" mark bytes that \
are not UTF-8; \"headers_encoding\":\"base64\" does the same for every header value; a null header \
value is a header without value. timestamp is epoch milliseconds or RFC 3339 text. Other fields \
are ignored.

--dry-run prints records in this form, and the dead-letter file and the spool hold it too, \
with \"error\" (why the record failed) and \"failed_at\" (epoch milliseconds) added. So \
kpipe -f envelope < FILE replays a dead-letter file, each record to its own topic with its own \
key and headers.",
    ),
    (
        "ON-ERROR MODES",
        "A record is malformed when it is not valid for its format, when a template field it needs \
is missing and no --fallback-topic is given, or when --timestamp-field is not a time. \
--on-error takes syslog-ng's words:

  fallback-to-string           send the raw bytes unchanged, with a header kpipe.error
                               saying what was wrong (default)
  silently-fallback-to-string  the same without the report on stderr
  drop-message                 do not send it; report it
  silently-drop-message        do not send it; no report
  exit                         deliver what came before, then exit 65

Reports name the line number and byte offset and are rate-limited. When fallback-to-string \
has no topic to send a record to (its topic is a template), the record goes to the dead-letter \
file, or counts as not delivered. Records larger than --max-record-size go to the dead-letter \
file whatever the mode; one that grows past the limit before it ends is cut there as soon as it \
is that long (its first SIZE bytes are dead-lettered, marked as cut, and the rest is dropped up to \
the next delimiter), so no input makes kpipe hold more than the limit of one record. The exit summary counts malformed records per outcome.",
    ),
    (
        "TEMPLATES",
        "--topic, --key and --header values may name JSON fields of the record, as syslog-ng does: \
${NAME} or $NAME, with dotted paths into nested objects (${user.id}); $$ is a dollar sign. \
Strings render unescaped, other values as their JSON text. Only the fields templates name are \
extracted. A record whose field is missing goes to --fallback-topic with a kpipe.error header \
when that is given, else follows --on-error. Templates need -f ndjson or -f json.",
    ),
    (
        "DELIVERY",
        "Records are produced with acks=all and the idempotent producer, so librdkafka's retries \
across leader elections and broker restarts neither duplicate nor reorder records within a \
partition. A record counts as delivered only when the broker acknowledged it. librdkafka retries \
for --delivery-timeout (never: until a signal), backing off from --retry-backoff to \
--retry-backoff-max.

Failures are sorted. Permanent ones (record too large, authorisation, invalid or unknown topic, \
policy violation) go to the dead-letter file at once and never hold up records for other topics. \
Passing ones (broker down, leader missing, delivery timeout, shutdown) go to the spool when \
--spool is given, else to the dead-letter file, else they are lost and counted. A record whose \
request was in flight when it failed may have been stored by the broker all the same \
(librdkafka's \"possibly persisted\"); the summary counts these, and sending them again may \
duplicate them.

The spool: at exit, undelivered records are written to DIR as envelope lines and synced. The \
next run with the same --spool sends them before reading stdin, and every 5 seconds looks for \
files other runs left; a file is removed once all its records are acknowledged. A lock on the \
directory keeps two runs from sending the same file. The guarantee is at least once across runs; \
a run killed with SIGKILL loses what it held in memory.

MEMORY_LIMIT

A record counts as spooled or dead-lettered only once its line is synced. When the spool's \
disk is full, unsynced lines go to the dead-letter file; a spool file being replayed is removed \
only once each of its records was delivered or rewritten and synced, so on a full disk it stays \
for the next run; a file kpipe could not write makes the exit status 74. Only regular files are \
read from the spool; a spool line that is not an envelope goes to the dead-letter file, else to \
NAME.spool.bad, and is counted. Topics rendered from templates are checked against Kafka's rules \
before sending; a record whose topic the broker would refuse goes to --fallback-topic, else the \
dead-letter file.

After a fatal producer error (for example an idempotence sequence failure) kpipe stops \
reading, puts what is undelivered in the spool or dead-letter file, and exits 75.",
    ),
    (
        "SECURITY",
        "TLS: --ca FILE verifies the brokers; --cert FILE and --tls-key FILE present a client \
certificate; --tls-insecure skips verification (and says so). Any of them implies --tls. SASL: \
--sasl-mechanism PLAIN|SCRAM-SHA-256|SCRAM-SHA-512 with --sasl-username NAME and the password \
from --sasl-password-file FILE or KPIPE_SASL_PASSWORD; with --tls the protocol is SASL_SSL, else \
SASL_PLAINTEXT. -F FILE reads librdkafka properties (key=value, # comments) as kcat -F does; \
flags and -X override it.

Secrets never come from the command line: -X sasl.password and the other secret properties \
are refused. A -F file holding a secret, and the password file, must not be readable by group \
or others. Secrets are redacted from every message, librdkafka's log included.

A failed TLS handshake, TLS to a plaintext listener or plaintext to a TLS one exits 69 and \
refused SASL credentials exit 77, at once rather than after --delivery-timeout. A topic the principal may not write sends its records to the dead-letter \
file, naming topic and principal.

A spool directory kpipe creates is mode 700; one owned by another user or writable by group or \
others is refused (exit 73). Spool, dead-letter and stats files are created mode 600; nothing in \
the spool is opened through a symlink. Topics taken from the input must follow Kafka's rules, \
must not start with __, and must match --topic-allow when given; others go to --fallback-topic, \
else the dead-letter file. Control characters on stderr are escaped.",
    ),
    (
        "TRANSACTIONS",
        "--atomic sends the whole input in one Kafka transaction, committed at EOF: a \
read_committed consumer sees all of it or none. A stop signal, a record that could not be \
delivered in time, a read error or a malformed record under --on-error exit aborts it; the records \
then go to the dead-letter file when one is given (kpipe keeps a private log of the input beside it \
for that), and the exit status is not 0. With a dead-letter file, a record the brokers refuse for \
good (as a malformed record under the other --on-error values) costs only itself: it goes to the \
file and the transaction is sent again from the log without it, so the commit holds every other \
record. The transaction stays open for the whole run: --transaction-timeout (default 15m, the \
brokers' default transaction.max.timeout.ms) bounds how long the input may take, and a value \
above the brokers' maximum is refused at start (exit 78). Memory stays bounded by --max-buffered: \
records are sent as they are read, not held until EOF.

--exactly-once (needs --spool DIR) appends every block read from stdin to a log in DIR/log \
before any record in it is sent, and sends in transactions committed every --commit-interval \
(default 100ms), each of which also writes the log position it reaches to the compacted topic \
--offsets-topic (default kpipe-offsets, created if missing). At start kpipe fences the previous \
producer of its --transactional-id (its open transaction is aborted), reads the last committed \
position and resends what the log holds after it; log segments before it are deleted. The log is \
synced at every commit. Default ids: kpipe-TOPIC@HOST for --atomic, plus :SPOOLDIR for \
--exactly-once; they are printed.

GUARANTEES_TEXT",
    ),
    ("EXIT STATUS", ""),
    (
        "STATISTICS",
        "--stats FILE (or - for stderr) appends one JSON object per line every --stats-interval \
(default 10s) and one at exit; SIGUSR1 prints the summary line on stderr. The fields:

STATS_FIELDS",
    ),
    (
        "SIGNALS",
        "SIGTERM, SIGINT: kpipe goes on reading stdin until EOF, for at most --shutdown-timeout, \
delivering as it goes (syslog-ng closes the pipe a few milliseconds after the signal, and what the \
pipe still holds counts as written for syslog-ng). Then what is undelivered goes to the spool, \
else the dead-letter file, else counts as lost. A second signal stops at once, after writing the \
spool or dead-letter file. At EOF with --spool, kpipe also waits at most --shutdown-timeout.

SIGHUP reopens the dead-letter file (for logrotate). SIGUSR1 prints the statistics line.",
    ),
    (
        "ENVIRONMENT",
        "KPIPE_BROKERS: default for --brokers.

KPIPE_TOPIC: default for --topic.

KPIPE_CONFIG: default for -F.

KPIPE_SASL_PASSWORD: the SASL password, when no --sasl-password-file is given.",
    ),
    (
        "EXAMPLES",
        "  tail -F /var/log/app.log | kpipe -b k1:9092 -t app
  nightly-report | kpipe -b k1:9092 -t reports -q || logger -t kpipe \"report not delivered\"
  kpipe -f ndjson -t 'logs.${PROGRAM}' -k '${HOST}' --spool /var/spool/kpipe < events
  find / -xdev -print0 | kpipe -D '\\0' -t files
  kpipe --dry-run -f json -t 'logs.${PROGRAM}' < pretty.json
  kpipe -f envelope < /var/lib/kpipe/dead-letter.ndjson

A syslog-ng destination (see contrib/syslog-ng/kpipe.conf):

  destination d_kafka {
    program(\"exec /usr/bin/kpipe -b k1:9092 -f ndjson -t 'logs.${PROGRAM}' -k '${HOST}' --spool /var/spool/kpipe -q 2>>/var/log/kpipe.log\"
            template(\"$(format-json --scope rfc5424 --scope nv-pairs)\\n\"));
  };
  log { source(s_net); destination(d_kafka); flags(flow-control); };

exec makes kpipe the process syslog-ng signals; 2>> keeps its reports (syslog-ng discards a \
program's stderr); flags(flow-control) makes syslog-ng stop reading its sources, not drop \
messages, while kpipe applies backpressure.",
    ),
];

fn escape(line: &str) -> String {
    let e = line.replace('\\', "\\e").replace('-', "\\-");
    if e.starts_with('.') || e.starts_with('\'') {
        format!("\\&{e}")
    } else {
        e
    }
}

/// The `--stats` fields, a line each, for the man page.
fn stats_fields() -> String {
    kpipe::stats::STATS_FIELDS
        .iter()
        .map(|(k, what)| format!("  {k:<14} {what}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn render_section(out: &mut Vec<u8>, title: &str, body: &str) {
    out.extend_from_slice(format!(".SH \"{title}\"\n").as_bytes());
    let body = body
        .replace("MEMORY_LIMIT", kpipe::room::MEMORY_LIMIT)
        .replace("GUARANTEES_TEXT", &kpipe::guarantee::man_text())
        .replace("STATS_FIELDS", &stats_fields());
    let body = if title == "EXIT STATUS" {
        kpipe::exit::help_text()
            .lines()
            .skip(1)
            .map(|l| format!(" {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        body
    };
    for para in body.split("\n\n") {
        if para.lines().all(|l| l.starts_with(' ') || l.is_empty()) {
            out.extend_from_slice(b".PP\n.nf\n");
            for l in para.lines() {
                out.extend_from_slice(escape(l).as_bytes());
                out.push(b'\n');
            }
            out.extend_from_slice(b".fi\n");
        } else {
            out.extend_from_slice(b".PP\n");
            for l in para.lines() {
                if l.starts_with(' ') {
                    out.extend_from_slice(b".br\n");
                }
                out.extend_from_slice(escape(l).as_bytes());
                out.push(b'\n');
            }
        }
    }
}

/// The man page, kpipe(1).
pub fn man_page() -> Vec<u8> {
    // The clap help's examples and exit statuses are sections of their own here.
    let cmd = cli::command().after_help("").after_long_help("");
    let man = clap_mangen::Man::new(cmd)
        .date("2026-11-26")
        .manual("kpipe manual")
        .source(concat!("kpipe ", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    for (title, body) in SECTIONS {
        render_section(&mut out, title, body);
    }
    let _ = man.render_version_section(&mut out);
    out
}

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut cmd = cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "kpipe", &mut out);
    out
}

/// The README's generated blocks: (name, content). Each sits between
/// `<!-- begin NAME: generated by scripts/gen-assets -->` and `<!-- end NAME -->`.
pub fn readme_blocks() -> Vec<(&'static str, String)> {
    vec![
        ("exit-status", kpipe::exit::markdown_table()),
        ("guarantees", kpipe::guarantee::markdown_table()),
        ("memory", format!("- {}\n", kpipe::room::MEMORY_LIMIT)),
    ]
}

/// `readme` with every generated block brought up to date; an absent block is left absent.
pub fn readme(readme: &str) -> String {
    let mut out = readme.to_string();
    for (name, content) in readme_blocks() {
        let begin = format!("<!-- begin {name}: generated by scripts/gen-assets -->\n");
        let end = format!("<!-- end {name} -->");
        let (Some(a), Some(b)) = (out.find(&begin), out.find(&end)) else {
            continue;
        };
        if a < b {
            out.replace_range(a + begin.len()..b, &content);
        }
    }
    out
}

/// Every generated file with its path in the repository.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("man/kpipe.1", man_page()),
        ("completions/kpipe.bash", completion(Shell::Bash)),
        ("completions/_kpipe", completion(Shell::Zsh)),
        ("completions/kpipe.fish", completion(Shell::Fish)),
    ]
}

#[test]
fn readme_blocks_are_replaced_between_their_markers() {
    let text = "intro\n<!-- begin exit-status: generated by scripts/gen-assets -->\nstale\n<!-- end exit-status -->\nrest\n";
    let new = readme(text);
    assert!(new.starts_with("intro\n<!-- begin exit-status"));
    assert!(new.contains("| 78 | the producer refused"));
    assert!(!new.contains("stale"));
    assert!(new.ends_with("<!-- end exit-status -->\nrest\n"));
    assert_eq!(readme(&new), new);
}

#[test]
fn the_man_page_carries_the_exit_table_and_the_memory_limit() {
    let man = String::from_utf8(man_page()).unwrap();
    assert!(man.contains("EX_TEMPFAIL"));
    assert!(man.contains("one record per 2 KiB"));
    assert!(!man.contains("MEMORY_LIMIT"));
}
