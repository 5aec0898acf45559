//! Exit statuses, after sysexits(3), and how outcomes merge into one.

/// The outcome of a run, ordered so that the larger one wins when two merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Every record read was delivered (or dropped on purpose by `--on-error`).
    Ok,
    /// Malformed input under `--on-error exit`.
    DataErr,
    /// No broker could be reached at all.
    Unavailable,
    /// Some records were not delivered: they are in the spool or dead-letter file, or lost.
    TempFail,
    /// The spool directory cannot be used safely (another owner, writable by others).
    CantCreat,
    /// Standard input or an output file failed: worse than undelivered records, since a file
    /// kpipe keeps them in may be what failed.
    IoErr,
    /// A file named to be read does not exist or cannot be read; nothing was sent.
    NoInput,
    /// The brokers refused kpipe's credentials.
    NoPerm,
    /// A configuration the producer refused (`-X`, unreadable files).
    Config,
    /// Bad command-line usage (clap uses the same code).
    Usage,
    /// A bug in kpipe.
    Software,
}

impl Status {
    /// The numeric exit code.
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Usage => 2,
            Status::DataErr => 65,
            Status::Unavailable => 69,
            Status::Software => 70,
            Status::IoErr => 74,
            Status::NoInput => 66,
            Status::TempFail => 75,
            Status::CantCreat => 73,
            Status::NoPerm => 77,
            Status::Config => 78,
        }
    }

    /// Keeps the more serious of two outcomes.
    pub fn merge(self, other: Status) -> Status {
        self.max(other)
    }
}

/// Every status with what it means: the one source of the exit-status table in `--help`, the
/// man page and the README.
pub const TABLE: &[(Status, &str)] = &[
    (
        Status::Ok,
        "every record read was delivered (or dropped on purpose by --on-error)",
    ),
    (Status::Usage, "usage error"),
    (
        Status::DataErr,
        "malformed input under --on-error exit (EX_DATAERR)",
    ),
    (
        Status::NoInput,
        "a FILE operand does not exist or cannot be read; nothing was sent (EX_NOINPUT)",
    ),
    (
        Status::Unavailable,
        "no broker could be reached, or TLS to it failed (EX_UNAVAILABLE)",
    ),
    (Status::Software, "internal error, a bug (EX_SOFTWARE)"),
    (
        Status::CantCreat,
        "the spool directory is not safe to use: another user's, or writable by group or others (EX_CANTCREAT)",
    ),
    (
        Status::IoErr,
        "reading the input or writing an output file failed (EX_IOERR)",
    ),
    (
        Status::TempFail,
        "some records were not delivered; they are in the spool or dead-letter file when one was given, else lost and counted (EX_TEMPFAIL)",
    ),
    (
        Status::NoPerm,
        "the brokers refused the SASL credentials (EX_NOPERM)",
    ),
    (
        Status::Config,
        "the producer refused its configuration, e.g. an unknown -X property (EX_CONFIG)",
    ),
];

/// The table as `--help` and the man page print it.
pub fn help_text() -> String {
    let mut out = String::from("Exit status:");
    for (status, meaning) in TABLE {
        out.push_str(&format!(
            "\n  {:<3} {}",
            status.code(),
            wrap(meaning, 6, 96)
        ));
    }
    out
}

/// The table as the README shows it.
pub fn markdown_table() -> String {
    let mut out = String::from("| code | meaning |\n|---|---|\n");
    for (status, meaning) in TABLE {
        out.push_str(&format!("| {} | {} |\n", status.code(), meaning));
    }
    out
}

/// Wraps `text` at `width`, indenting continuation lines by `indent`.
fn wrap(text: &str, indent: usize, width: usize) -> String {
    let mut out = String::new();
    let mut col = indent;
    for word in text.split(' ') {
        if col + word.len() + 1 > width && col > indent {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
        } else if col > indent {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += word.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_every_status_once_in_order_of_code() {
        let codes: Vec<u8> = TABLE.iter().map(|(s, _)| s.code()).collect();
        assert_eq!(codes, [0, 2, 65, 66, 69, 70, 73, 74, 75, 77, 78]);
        let help = help_text();
        for (status, _) in TABLE {
            assert!(help.contains(&format!("\n  {:<3} ", status.code())));
        }
        assert!(markdown_table().contains("| 75 | some records were not delivered;"));
    }

    #[test]
    fn help_lines_fit_a_terminal() {
        assert!(help_text().lines().all(|l| l.len() <= 96));
    }

    #[test]
    fn merge_keeps_the_worse() {
        assert_eq!(Status::Ok.merge(Status::TempFail), Status::TempFail);
        assert_eq!(Status::DataErr.merge(Status::TempFail), Status::TempFail);
        assert_eq!(Status::TempFail.merge(Status::IoErr), Status::IoErr);
        assert_eq!(Status::Unavailable.merge(Status::Ok), Status::Unavailable);
    }
}
