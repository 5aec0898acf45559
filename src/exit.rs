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
    /// Standard input or an output file failed.
    IoErr,
    /// Some records were not delivered: they are in the spool or dead-letter file, or lost.
    TempFail,
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
            Status::TempFail => 75,
            Status::Config => 78,
        }
    }

    /// Keeps the more serious of two outcomes.
    pub fn merge(self, other: Status) -> Status {
        self.max(other)
    }
}

/// The table printed in `--help` and the man page.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0   every record read was delivered (or dropped on purpose by --on-error)
  2   usage error
  65  malformed input under --on-error exit (EX_DATAERR)
  69  no broker could be reached (EX_UNAVAILABLE)
  70  internal error, a bug (EX_SOFTWARE)
  74  reading standard input or writing an output file failed (EX_IOERR)
  75  some records were not delivered; they are in the spool or dead-letter file
      when one was given, else lost and counted (EX_TEMPFAIL)
  78  the producer refused its configuration, e.g. an unknown -X property (EX_CONFIG)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_the_worse() {
        assert_eq!(Status::Ok.merge(Status::TempFail), Status::TempFail);
        assert_eq!(Status::DataErr.merge(Status::TempFail), Status::TempFail);
        assert_eq!(Status::Unavailable.merge(Status::Ok), Status::Unavailable);
    }
}
