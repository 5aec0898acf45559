//! The end of a run: from what became of every record to the exit status and the lines that
//! explain it. Pure; the caller prints.

use std::path::Path;

use crate::exit::Status;
use crate::reason::{Reason, Refused};
use crate::stats::Tally;

/// What the run observed, gathered at the end.
#[derive(Debug, Default)]
pub struct Facts<'a> {
    pub tally: Tally,
    /// A malformed record under `--on-error exit`.
    pub bad_input: bool,
    /// Reading stdin, or syncing the spool or dead-letter file, failed.
    pub io_error: Option<&'a str>,
    /// The producer's fatal error.
    pub fatal: Option<&'a str>,
    /// Writing a failed record to the spool or dead-letter file failed.
    pub write_error: Option<&'a str>,
    /// No broker answered (asked only when nothing was delivered and something failed).
    pub unreachable: bool,
    /// The brokers refused TLS or the SASL credentials, in librdkafka's words.
    pub refused: Option<(Refused, &'a str)>,
    /// The refusal was said, with its hint, when it came (not under `-q`).
    pub refusal_said: bool,
    pub last_error: Option<&'a Reason>,
    pub spool: Option<&'a Path>,
    pub dead_letter: Option<&'a Path>,
    pub brokers: &'a str,
    /// `--atomic`: one malformed record under `--on-error exit` fails them all, and that is
    /// the status, not the records it took along.
    pub all_or_nothing: bool,
    /// `--exactly-once`: bytes of input in the log that no commit covers yet, and the log.
    pub waiting: Option<(u64, &'a Path)>,
}

/// The exit status, and the lines for stderr (each starting `kpipe:`).
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub lines: Vec<String>,
}

/// Whether the run must ask the cluster if it is reachable: only to tell "unreachable" from
/// "failed" when records failed and none was delivered.
pub fn needs_reachability(tally: &Tally, fatal: bool) -> bool {
    (tally.failed() > 0 || fatal) && tally.delivered == 0
}

/// "1 record", "2 records".
fn records(n: u64) -> String {
    match n {
        1 => "1 record".to_string(),
        n => format!("{n} records"),
    }
}

/// The exit status and its explanation.
pub fn conclude(f: &Facts) -> Outcome {
    let t = &f.tally;
    let mut status = Status::Ok;
    let mut lines = Vec::new();
    if f.bad_input {
        status = status.merge(Status::DataErr);
    }
    if let Some(e) = f.io_error {
        lines.push(format!("kpipe: {e}"));
        status = status.merge(Status::IoErr);
    }
    if let Some(e) = f.write_error {
        lines.push(format!(
            "kpipe: {e}; what that file could not take is counted as lost, unless the spool file it came from was kept (free space, then run again)"
        ));
        status = status.merge(Status::IoErr);
    }
    if let Some((bytes, log)) = f.waiting.filter(|(b, _)| *b > 0) {
        lines.push(format!(
            "kpipe: {bytes} bytes of input in the log {} are not committed yet; the next run with --exactly-once and this --spool sends them",
            log.display()
        ));
        status = status.merge(Status::TempFail);
    }
    let undelivered = t.failed();
    if undelivered > 0 || f.fatal.is_some() {
        if !(f.all_or_nothing && f.bad_input) {
            status = status.merge(match (f.refused.map(|(r, _)| r), f.unreachable) {
                (Some(Refused::Authentication), _) => Status::NoPerm,
                (Some(Refused::Tls | Refused::Protocol | Refused::IssuerDown), _)
                | (None, true) => Status::Unavailable,
                (None, false) => Status::TempFail,
            });
        }
        let mut whereabouts = Vec::new();
        if t.spooled > 0 {
            whereabouts.push(format!(
                "{} in the spool {} (the next run with --spool sends them)",
                t.spooled,
                f.spool.map(|p| p.display().to_string()).unwrap_or_default()
            ));
        }
        if t.dead_lettered > 0 {
            whereabouts.push(format!(
                "{} in the dead-letter file {} (replay: kpipe -f envelope < FILE)",
                t.dead_lettered,
                f.dead_letter
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ));
        }
        if t.lost > 0 {
            let hint = match (f.write_error, f.spool.or(f.dead_letter)) {
                (Some(_), _) => " (the file meant to keep them could not take them)",
                (None, None) => " (give --spool DIR or --dead-letter FILE to keep them)",
                (None, Some(_)) => "",
            };
            whereabouts.push(format!("{} lost{hint}", t.lost));
        }
        let why = match (f.refused, f.last_error, f.fatal) {
            (Some((_, text)), _, _) => text.to_string(),
            (None, Some(r), _) => r.to_string(),
            (None, None, Some(fatal)) => fatal.to_string(),
            (None, None, None) => "unknown".to_string(),
        };
        let hint = if let Some((r, _)) = f.refused {
            format!("; {}", r.hint())
        } else if f.unreachable {
            format!(
                "; no broker of {} answers: check --brokers and that Kafka is up",
                f.brokers
            )
        } else {
            f.last_error
                .and_then(Reason::hint)
                .map(|h| format!("; {h}"))
                .unwrap_or_default()
        };
        let cause = match f.refused {
            // Said with its hint when it came: the closing line does not say it again.
            Some(_) if f.refusal_said => "the brokers refused kpipe (above)".to_string(),
            _ => format!("last error: {why}{hint}"),
        };
        lines.push(format!(
            "kpipe: {} not delivered: {}; {cause}",
            records(undelivered),
            whereabouts.join(", ")
        ));
    }
    Outcome { status, lines }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    fn tally(read: u64, delivered: u64) -> Tally {
        Tally {
            read,
            delivered,
            ..Tally::default()
        }
    }

    #[test]
    fn every_record_delivered_is_0_and_silent() {
        let o = conclude(&Facts {
            tally: tally(5, 5),
            ..Facts::default()
        });
        assert_eq!(o.status, Status::Ok);
        assert!(o.lines.is_empty());
    }

    #[test]
    fn records_dropped_on_purpose_are_still_0() {
        let o = conclude(&Facts {
            tally: Tally {
                malformed_dropped: 3,
                ..tally(5, 2)
            },
            ..Facts::default()
        });
        assert_eq!(o.status, Status::Ok);
    }

    #[test]
    fn bad_input_under_on_error_exit_is_65() {
        let o = conclude(&Facts {
            tally: tally(5, 4),
            bad_input: true,
            ..Facts::default()
        });
        assert_eq!(o.status, Status::DataErr);
        assert_eq!(o.status.code(), 65);
    }

    #[test]
    fn an_unreachable_cluster_is_69_with_the_brokers_named() {
        let o = conclude(&Facts {
            tally: Tally {
                lost: 1,
                ..tally(1, 0)
            },
            unreachable: true,
            brokers: "127.0.0.1:1",
            ..Facts::default()
        });
        assert_eq!(o.status.code(), 69);
        assert!(o.lines[0].contains("1 record not delivered: 1 lost (give --spool"));
        assert!(o.lines[0].contains("no broker of 127.0.0.1:1 answers"));
    }

    #[test]
    fn records_a_full_spool_could_not_keep_are_not_blamed_on_a_missing_spool() {
        let spool = std::path::Path::new("/var/spool/kpipe");
        let o = conclude(&Facts {
            tally: Tally {
                lost: 2,
                ..tally(2, 0)
            },
            write_error: Some("writing dead-letter.ndjson: No space left on device"),
            spool: Some(spool),
            ..Facts::default()
        });
        assert_eq!(o.status.code(), 74);
        let said = o.lines.join("\n");
        assert!(
            said.contains("2 lost (the file meant to keep them could not take them)"),
            "{said}"
        );
        assert!(!said.contains("give --spool"), "{said}");
    }

    #[test]
    fn a_read_error_is_74() {
        let o = conclude(&Facts {
            tally: tally(5, 5),
            io_error: Some("reading standard input: Input/output error"),
            ..Facts::default()
        });
        assert_eq!(o.status.code(), 74);
        assert_eq!(
            o.lines,
            vec!["kpipe: reading standard input: Input/output error".to_string()]
        );
    }

    #[test]
    fn undelivered_records_are_75_and_say_where_they_are() {
        let reason = Reason::Kafka {
            code: Some(RDKafkaErrorCode::MessageTimedOut),
            text: "Local: Message timed out".into(),
        };
        let o = conclude(&Facts {
            tally: Tally {
                spooled: 500,
                dead_lettered: 2,
                ..tally(600, 98)
            },
            last_error: Some(&reason),
            spool: Some(Path::new("/var/spool/kpipe")),
            dead_letter: Some(Path::new("/var/log/dl.ndjson")),
            ..Facts::default()
        });
        assert_eq!(o.status.code(), 75);
        assert_eq!(
            o.lines,
            vec!["kpipe: 502 records not delivered: 500 in the spool /var/spool/kpipe (the next run with --spool sends them), 2 in the dead-letter file /var/log/dl.ndjson (replay: kpipe -f envelope < FILE); last error: Local: Message timed out".to_string()]
        );
    }

    #[test]
    fn an_unknown_topic_gets_its_hint() {
        let reason = Reason::Kafka {
            code: Some(RDKafkaErrorCode::UnknownTopicOrPartition),
            text: "Broker: Unknown topic or partition".into(),
        };
        let o = conclude(&Facts {
            tally: Tally {
                dead_lettered: 1,
                ..tally(2, 1)
            },
            last_error: Some(&reason),
            ..Facts::default()
        });
        assert!(o.lines[0].ends_with("; create the topic first, or let the broker create it (auto.create.topics.enable=true)"));
    }

    #[test]
    fn a_fatal_error_with_nothing_failed_is_still_75() {
        let o = conclude(&Facts {
            tally: tally(3, 3),
            fatal: Some("Broker: Out of order sequence number (OutOfOrderSequenceNumber)"),
            ..Facts::default()
        });
        assert_eq!(o.status, Status::TempFail);
        assert!(o.lines[0].contains("last error: Broker: Out of order sequence"));
    }

    #[test]
    fn a_failed_outlet_outranks_undelivered_records() {
        let o = conclude(&Facts {
            tally: Tally {
                spooled: 3,
                ..tally(3, 0)
            },
            write_error: Some("writing /s/x.spool.tmp: No space left on device"),
            ..Facts::default()
        });
        assert_eq!(o.status.code(), 74);
    }

    #[test]
    fn refused_credentials_are_77_and_failed_tls_69() {
        let failed = Tally {
            spooled: 2,
            ..tally(2, 0)
        };
        let o = conclude(&Facts {
            tally: failed,
            refused: Some((Refused::Authentication, "SASL authentication error")),
            ..Facts::default()
        });
        assert_eq!(o.status.code(), 77);
        assert!(o.lines[0].contains("last error: SASL authentication error"));
        assert!(o.lines[0].contains("--sasl-username"));
        let said = conclude(&Facts {
            tally: failed,
            refused: Some((Refused::Authentication, "SASL authentication error")),
            refusal_said: true,
            ..Facts::default()
        });
        assert_eq!(said.lines.len(), 1);
        assert!(
            !said.lines[0].contains("SASL"),
            "said once: {}",
            said.lines[0]
        );
        let o = conclude(&Facts {
            tally: failed,
            refused: Some((Refused::Tls, "SSL handshake failed")),
            ..Facts::default()
        });
        assert_eq!(o.status.code(), 69);
        assert!(o.lines[0].contains("--ca"));
    }

    #[test]
    fn the_worse_status_wins() {
        let o = conclude(&Facts {
            tally: Tally {
                lost: 1,
                ..tally(3, 1)
            },
            bad_input: true,
            ..Facts::default()
        });
        assert_eq!(o.status, Status::TempFail);
    }

    #[test]
    fn a_failed_write_is_reported() {
        let o = conclude(&Facts {
            tally: Tally {
                lost: 1,
                ..tally(1, 0)
            },
            write_error: Some("No space left on device"),
            ..Facts::default()
        });
        assert!(o.lines[0].contains("No space left on device"));
        assert_eq!(o.status, Status::IoErr);
    }

    #[test]
    fn reachability_is_asked_only_when_nothing_got_through() {
        let failed = Tally {
            lost: 1,
            ..tally(2, 0)
        };
        assert!(needs_reachability(&failed, false));
        assert!(!needs_reachability(
            &Tally {
                delivered: 1,
                ..failed
            },
            false
        ));
        assert!(!needs_reachability(&tally(2, 0), false));
        assert!(needs_reachability(&tally(2, 0), true));
    }
}
