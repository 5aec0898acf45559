//! Sending what earlier runs left in the spool, before stdin and whenever another run leaves
//! more. Each spool file is a file of envelope lines.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::App;
use crate::input::{BlockReader, Fill, Framer, LinesFramer, Piece};
use crate::message::Origin;
use crate::reason::Reason;
use crate::say;
use crate::stats::bump;

/// How often the spool directory is checked for files another run left.
pub const RESCAN: Duration = Duration::from_secs(5);

impl App {
    /// Claims the spool's unclaimed files (when no other run holds its lock) and sends them.
    pub(super) fn replay_spool(&mut self) {
        let Some(dir) = self.spool.as_mut() else {
            return;
        };
        let files = match dir.claim_new() {
            Ok(files) => files,
            Err(e) => return say!("kpipe: {e:#}"),
        };
        for path in files {
            if let Err(e) = self.replay_file(&path) {
                say!("kpipe: {e:#}");
            }
        }
    }

    fn replay_file(&mut self, path: &Path) -> Result<()> {
        // Not through a symlink, and never blocking on a FIFO someone named `*.spool`.
        let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(flags.bits() as i32)
            .open(path)
            .with_context(|| format!("opening the spool file {}; skipped", path.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("reading the spool file {}", path.display()))?;
        if !meta.is_file() {
            anyhow::bail!(
                "{} is not a regular file; skipped (remove it from the spool)",
                path.display()
            );
        }
        let index = self.out.ledger.replay_add(path.to_path_buf());
        let mut reader = BlockReader::file(file);
        let mut line_no = 0u64;
        let mut framer = LinesFramer::new(b"\n");
        loop {
            let fill = reader
                .fill(super::TICK)
                .with_context(|| format!("reading the spool file {}", path.display()))?;
            while let Some(piece) = framer.next_piece(reader.window(), reader.at_eof()) {
                let len = piece.len();
                if let Piece::Record(_) = piece {
                    line_no += 1;
                    self.replay_line(index, &reader.window()[..len], path, line_no);
                }
                reader.consume(len);
            }
            self.out.sink.wait(Duration::ZERO);
            if fill == Fill::Eof {
                break;
            }
        }
        self.out.ledger.replay_read_done(index);
        if self.s.verbose > 0 {
            say!("kpipe: sent the spool file {}", path.display());
        }
        Ok(())
    }

    fn replay_line(&mut self, index: usize, line: &[u8], path: &Path, line_no: u64) {
        match self.replay_router.route(line) {
            Ok(()) => {
                let rec = self.replay_router.record(line);
                self.out.ledger.replay_sent(index);
                bump(&self.out.ledger.counters.replayed);
                self.out.send(
                    &rec,
                    Origin::spool(index, rec.partition).with_timestamp(rec.timestamp),
                );
            }
            Err(problem) => {
                let reason = Reason::CorruptSpool {
                    file: path.display().to_string(),
                    line: line_no,
                    problem,
                };
                say!("kpipe: {reason}; set aside");
                self.out.ledger.set_aside(index, path, line, &reason);
            }
        }
    }
}
