//! What a run promises about each record: at least once (the default), all or nothing
//! (`--atomic`), or exactly once across restarts (`--exactly-once`), and the transaction
//! settings the last two need.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::cli::Cli;

/// The transactional modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The whole input in one transaction, committed at EOF.
    Atomic,
    /// A write-ahead log in the spool; transactions carry the log position.
    ExactlyOnce,
}

/// How a transactional run talks to Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transactions {
    pub mode: Mode,
    pub id: String,
    /// Whether the id was derived rather than given (then it is printed).
    pub derived: bool,
    pub timeout: Duration,
    pub commit_interval: Duration,
    pub offsets_topic: String,
}

/// Kafka's default `transaction.max.timeout.ms`: a batch may take this long by default.
pub const ATOMIC_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// A stream's transactions last one commit interval; a minute leaves room for an outage.
pub const EXACTLY_ONCE_TIMEOUT: Duration = Duration::from_secs(60);

impl Transactions {
    /// The transaction settings the command line asks for, if any.
    pub fn from_cli(cli: &Cli, host: &str) -> Result<Option<Transactions>> {
        let mode = match (cli.atomic, cli.exactly_once) {
            (true, _) => Mode::Atomic,
            (false, true) => Mode::ExactlyOnce,
            (false, false) => {
                if cli.transactional_id.is_some() || cli.transaction_timeout.is_some() {
                    bail!("--transactional-id and --transaction-timeout need --atomic or --exactly-once");
                }
                return Ok(None);
            }
        };
        if cli.acks != crate::options::Acks::All {
            bail!("--atomic and --exactly-once need --acks all (transactions are idempotent)");
        }
        let timeout = cli.transaction_timeout.unwrap_or(match mode {
            Mode::Atomic => ATOMIC_TIMEOUT,
            Mode::ExactlyOnce => EXACTLY_ONCE_TIMEOUT,
        });
        if mode == Mode::ExactlyOnce && cli.commit_interval >= timeout {
            bail!("--commit-interval must be shorter than --transaction-timeout");
        }
        let (id, derived) = match &cli.transactional_id {
            Some(id) if id.trim().is_empty() => bail!("--transactional-id may not be empty"),
            Some(id) => (id.clone(), false),
            None => {
                let topic = cli.topic.as_deref().unwrap_or("envelope");
                let spool = cli.spool.as_deref().unwrap_or(Path::new(""));
                (default_id(mode, topic, host, spool), true)
            }
        };
        Ok(Some(Transactions {
            mode,
            id,
            derived,
            timeout,
            commit_interval: cli.commit_interval,
            offsets_topic: cli.offsets_topic.clone(),
        }))
    }
}

/// `kpipe-TOPIC@HOST` for a batch; a stream adds its spool directory, since two streams on one
/// host may feed one topic and must not fence each other.
pub fn default_id(mode: Mode, topic: &str, host: &str, spool: &Path) -> String {
    let base = format!("kpipe-{}@{}", tidy(topic), tidy(host));
    match mode {
        Mode::Atomic => base,
        Mode::ExactlyOnce => {
            let dir = std::fs::canonicalize(spool).unwrap_or_else(|_| spool.to_path_buf());
            format!("{base}:{}", tidy(&dir.to_string_lossy()))
        }
    }
}

/// Keeps an id readable in logs and broker tools: printable ASCII, no spaces.
fn tidy(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect()
}

/// This machine's name, for default ids.
pub fn host_name() -> String {
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// What becomes of records in each mode when something fails: the failure, then one cell per
/// mode (default, default with `--spool`, `--atomic`, `--exactly-once`), then the tests that
/// show it. The README and the man page are rendered from it.
pub const GUARANTEES: &[(&str, [&str; 4], &str)] = &[
    (
        "partition leader killed, another takes over",
        ["neither", "neither", "neither", "neither"],
        "faults::leader_killed_mid_stream_loses_and_duplicates_nothing, transactions::exactly_once_survives_five_sigkills_and_a_leader_kill",
    ),
    (
        "every broker down, then back",
        [
            "neither while it lasts less than --delivery-timeout; then dead-lettered, else lost and counted",
            "neither; after --delivery-timeout spooled for the next run (\"possibly persisted\" ones may duplicate, counted)",
            "neither while it lasts less than --transaction-timeout; then aborted, none visible",
            "neither (the log holds what was read; a transaction that fails is resent from it)",
        ],
        "faults::single_broker_restarted_mid_stream_keeps_every_record_once, faults::outage_then_sigterm_spools_and_the_next_run_sends_the_spool_first, transactions::exactly_once_rides_out_a_broker_outage_and_lands_everything_once",
    ),
    (
        "a record the brokers refuse for good (too large for its topic)",
        [
            "neither for the others: it goes to --dead-letter with the reason, exit 75",
            "the same, in DIR/dead-letter.ndjson unless --dead-letter names another file",
            "neither for the others: it goes to --dead-letter; the transaction is aborted and sent again from kpipe's log without it, exit 75 (without --dead-letter: none visible, aborted)",
            "neither for the others: it goes to --dead-letter; its transaction is aborted and the rest resent from the log, exit 75",
        ],
        "delivery::permanent_failures_go_to_the_dead_letter_file_without_stalling_healthy_records, poison::each_kind_of_refused_record_costs_only_itself_with_a_spool_alone, transactions::atomic_run_with_a_record_the_producer_refuses_commits_the_rest_and_dead_letters_it, transactions::atomic_run_with_a_record_the_producer_refuses_and_no_dead_letter_file_shows_nothing, transactions::exactly_once_sends_records_the_broker_refuses_to_the_dead_letter_file_and_the_rest_once",
    ),
    (
        "one record that makes the broker refuse its whole batch (a timestamp out of range, a batch too large, no key on a compacted topic)",
        [
            "neither for the others: they are sent again (alone, where the broker named no record); a refused timestamp is replaced under fallback-to-string (kpipe.error names it), else the record is dead-lettered",
            "the same",
            "neither for the others: the bad record goes to --dead-letter, the transaction is aborted and sent again from kpipe's log without it (one record at a time, where the broker named none), exit 75 (without --dead-letter: none visible, aborted)",
            "neither for the others: the same, from the log",
        ],
        "poison::each_kind_of_refused_record_costs_only_itself_with_a_dead_letter_file, poison::a_clock_two_hours_fast_is_refused_by_the_broker_and_restamped, poison::each_kind_of_refused_record_costs_only_itself_atomically, poison::each_kind_of_refused_record_costs_only_itself_exactly_once",
    ),
    (
        "SIGTERM or SIGINT",
        [
            "neither: reads on until EOF for --shutdown-timeout (at a terminal, stops reading at once), then what is left is dead-lettered or lost and counted",
            "neither: what is left is spooled",
            "none visible: aborted, exit 75, every record in --dead-letter",
            "neither: what was read is committed, or stays in the log",
        ],
        "delivery::sigterm_keeps_reading_what_the_pipe_still_holds, faults::outage_then_sigterm_dead_letters_the_rest_and_replay_delivers_exactly_those, transactions::atomic_run_stopped_by_sigterm_shows_nothing_and_fails",
    ),
    (
        "SIGKILL of kpipe",
        [
            "lost: what kpipe held (up to --max-buffered) and what sat in the pipe",
            "lost: the same; the spool is written only for failures",
            "none visible; a rerun with the same --transactional-id fences the dead run and sends all once",
            "neither for what kpipe had read, and it reads on into its log whenever it waits (for room, a commit, a broker, while it resends its log): lost is only what the caller wrote since kpipe's last read; under rsyslog with --confirm, nothing",
        ],
        "transactions::atomic_run_killed_half_way_shows_nothing_and_its_rerun_shows_everything_once, transactions::exactly_once_survives_five_sigkills_and_a_leader_kill, transactions::exactly_once_keeps_its_pipe_in_the_log_while_it_resends_a_backlog_to_a_broker_that_is_away, rsyslog::kpipe_killed_under_rsyslog_loses_and_duplicates_nothing",
    ),
    (
        "disk full",
        [
            "dead-letter file full: the whole lines that fit are kept, the rest counted lost, exit 74",
            "the whole lines that fit are kept, the rest counted lost; a spool file that cannot be rewritten is kept whole, exit 74",
            "dead-letter file full: counted lost, exit 74",
            "neither: reading stops, what the log holds is sent and committed once, what it could not take is never sent (no record arrives cut), exit 74",
        ],
        "failure_paths::a_dead_letter_file_on_a_full_disk_is_not_claimed, containment::spool_and_dead_letter_on_one_full_disk_keep_what_fits_and_count_the_rest, failure_paths::a_full_disk_while_respooling_keeps_the_spool_file_for_a_later_run, transactions::exactly_once_on_a_full_disk_stops_reading_and_still_commits_what_it_read_once",
    ),
    (
        "caller restarted (syslog-ng, rsyslog)",
        [
            "neither: EOF, kpipe delivers what it read and exits",
            "neither, across a broker outage too",
            "(a batch: each run is its own transaction)",
            "neither: EOF commits; the next run resends only what no commit covers",
        ],
        "syslog_ng::reloads_restart_kpipe_mid_stream_without_loss, syslog_ng::broker_down_and_syslog_ng_restarted_with_spool_loses_nothing, rsyslog::rsyslog_stopped_and_started_during_a_broker_outage_loses_nothing",
    ),
];

/// The modes, as the table's columns name them.
const MODES: [&str; 4] = ["default", "--spool DIR", "--atomic", "--exactly-once"];

/// The guarantees as a Markdown table, for the README.
pub fn markdown_table() -> String {
    let mut out = format!(
        "| failure | {} | tests (tests/it) |\n|---|---|---|---|---|---|\n",
        MODES.join(" | ")
    );
    for (failure, cells, tests) in GUARANTEES {
        let tests: Vec<String> = tests.split(", ").map(|t| format!("`{t}`")).collect();
        out.push_str(&format!(
            "| {failure} | {} | {} |\n",
            cells.join(" | "),
            tests.join(", ")
        ));
    }
    out
}

/// The guarantees as paragraphs, for the man page.
pub fn man_text() -> String {
    let mut out = String::from("Lost, duplicated or neither, by failure and mode. A machine crash with --exactly-once can lose what was read since the last commit (the log is synced at every commit), never duplicate it.");
    for (failure, cells, _) in GUARANTEES {
        out.push_str(&format!("\n\n{failure}:"));
        for (mode, cell) in MODES.iter().zip(cells) {
            out.push_str(&format!("\n {mode}: {cell}."));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("kpipe").chain(args.iter().copied())).unwrap()
    }

    /// The settings of a command line that asks for transactions.
    fn transactions(args: &[&str], host: &str) -> Transactions {
        Transactions::from_cli(&cli(args), host).unwrap().unwrap()
    }

    #[test]
    fn every_test_the_guarantees_name_exists() {
        let root = env!("CARGO_MANIFEST_DIR");
        for (_, _, tests) in GUARANTEES {
            for t in tests.split(", ") {
                let (module, name) = t.split_once("::").unwrap();
                let file = std::fs::read_to_string(format!("{root}/tests/it/{module}.rs")).unwrap();
                assert!(file.contains(&format!("fn {name}()")), "{t} is not a test");
            }
        }
    }

    #[test]
    fn no_transactions_by_default() {
        assert_eq!(
            Transactions::from_cli(&cli(&["-t", "a"]), "h").unwrap(),
            None
        );
    }

    #[test]
    fn atomic_derives_its_id_from_topic_and_host() {
        let t = transactions(&["-t", "logs.${APP}", "--atomic"], "web 1");
        assert_eq!(t.mode, Mode::Atomic);
        assert_eq!(t.id, "kpipe-logs.${APP}@web_1");
        assert!(t.derived);
        assert_eq!(t.timeout, ATOMIC_TIMEOUT);
    }

    #[test]
    fn exactly_once_adds_the_spool_directory_to_its_id() {
        let t = transactions(
            &["-t", "a", "--exactly-once", "--spool", "/no/such/dir"],
            "h",
        );
        assert_eq!(t.mode, Mode::ExactlyOnce);
        assert_eq!(t.id, "kpipe-a@h:/no/such/dir");
        assert_eq!(t.timeout, EXACTLY_ONCE_TIMEOUT);
    }

    #[test]
    fn a_given_id_is_kept() {
        let t = transactions(
            &["-t", "a", "--atomic", "--transactional-id", "nightly"],
            "h",
        );
        assert_eq!(t.id, "nightly");
        assert!(!t.derived);
    }

    #[test]
    fn refuses_what_cannot_work() {
        for args in [
            &["-t", "a", "--transactional-id", "x"][..],
            &["-t", "a", "--atomic", "--acks", "1"],
            &["-t", "a", "--atomic", "--transactional-id", " "],
            &[
                "-t",
                "a",
                "--exactly-once",
                "--spool",
                "d",
                "--commit-interval",
                "2m",
            ],
        ] {
            assert!(Transactions::from_cli(&cli(args), "h").is_err(), "{args:?}");
        }
    }

    #[test]
    fn the_flags_refuse_each_other_where_they_must() {
        for args in [
            &["-t", "a", "--atomic", "--spool", "d"][..],
            &["-t", "a", "--atomic", "--exactly-once"],
            &["-t", "a", "--exactly-once"],
        ] {
            let r = Cli::try_parse_from(std::iter::once("kpipe").chain(args.iter().copied()));
            assert!(r.is_err(), "{args:?}");
        }
    }
}
