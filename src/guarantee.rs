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
        if cli.acks != crate::cli::Acks::All {
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
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("kpipe").chain(args.iter().copied())).unwrap()
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
        let t = Transactions::from_cli(&cli(&["-t", "logs.${APP}", "--atomic"]), "web 1")
            .unwrap()
            .unwrap();
        assert_eq!(t.mode, Mode::Atomic);
        assert_eq!(t.id, "kpipe-logs.${APP}@web_1");
        assert!(t.derived);
        assert_eq!(t.timeout, ATOMIC_TIMEOUT);
    }

    #[test]
    fn exactly_once_adds_the_spool_directory_to_its_id() {
        let t = Transactions::from_cli(
            &cli(&["-t", "a", "--exactly-once", "--spool", "/no/such/dir"]),
            "h",
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.mode, Mode::ExactlyOnce);
        assert_eq!(t.id, "kpipe-a@h:/no/such/dir");
        assert_eq!(t.timeout, EXACTLY_ONCE_TIMEOUT);
    }

    #[test]
    fn a_given_id_is_kept() {
        let t = Transactions::from_cli(
            &cli(&["-t", "a", "--atomic", "--transactional-id", "nightly"]),
            "h",
        )
        .unwrap()
        .unwrap();
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
