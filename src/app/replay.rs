//! Sending what earlier runs left in the spool, before stdin and whenever another run leaves
//! more. Each spool file is a file of envelope lines.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::App;
use crate::input::{BlockReader, Fill, Framer, LinesFramer, Piece};
use crate::message::Origin;
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
        let index = self.out.ledger.replay_add(path.to_path_buf());
        let file = File::open(path)
            .with_context(|| format!("opening the spool file {}", path.display()))?;
        let mut reader = BlockReader::file(file);
        let mut framer = LinesFramer::new(b"\n");
        loop {
            let fill = reader
                .fill(super::TICK)
                .with_context(|| format!("reading the spool file {}", path.display()))?;
            while let Some(piece) = framer.next_piece(reader.window(), reader.at_eof()) {
                let len = piece.len();
                if let Piece::Record(_) = piece {
                    self.replay_line(index, &reader.window()[..len], path);
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

    fn replay_line(&mut self, index: usize, line: &[u8], path: &Path) {
        match self.replay_router.route(line) {
            Ok(()) => {
                let rec = self.replay_router.record(line);
                self.out.ledger.replay_sent(index);
                bump(&self.out.ledger.counters.replayed);
                self.out
                    .send(&rec, Origin::spool(index, rec.partition.is_some()));
            }
            Err(p) => say!(
                "kpipe: {}: a line is not an envelope ({p}); left out",
                path.display()
            ),
        }
    }
}
