//! Where records that were not delivered go: the spool (for passing failures, sent again by the
//! next run), the dead-letter file (for permanent ones), or, when neither was given, the lost
//! count that the exit status reports. Both files hold envelope lines with the reason.
//!
//! A record counts as spooled or dead-lettered only once its line is synced. When the spool's
//! disk refuses (ENOSPC), its unsynced lines go to the dead-letter file; what no file takes is
//! counted lost, except a record replayed from a spool file: that file then stays as it is.

mod outlet;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::message::Origin;
use crate::reason::{Kind, Reason};
use crate::spool::Replay;
use crate::stats::{bump, Counters};
use crate::wire::envelope::{self, Failure};
use crate::wire::Record;
use outlet::{append_synced, EnvelopeFile, Fate, Pending, SpoolOut, Unsynced};

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The failure outlets and the error to report.
struct Outlets {
    dead_letter: Option<EnvelopeFile>,
    spool: Option<SpoolOut>,
    line: Vec<u8>,
    last_error: Option<Reason>,
    write_error: Option<String>,
}

/// What became of every record: counters, failure outlets, and spool files being replayed.
pub struct Ledger {
    pub counters: Counters,
    outlets: Mutex<Outlets>,
    replay: Mutex<Replay>,
}

impl Ledger {
    /// Opens the dead-letter file now (so a bad path fails at start); the spool file is made
    /// only when something is spooled.
    pub fn new(dead_letter: Option<&Path>, spool_dir: Option<&Path>) -> Result<Ledger> {
        let dead_letter = dead_letter.map(EnvelopeFile::append).transpose()?;
        let name = format!("{}-{}", now_ms(), std::process::id());
        let spool = spool_dir.map(|dir| SpoolOut::new(dir, &name));
        Ok(Ledger {
            counters: Counters::default(),
            outlets: Mutex::new(Outlets {
                dead_letter,
                spool,
                line: Vec::new(),
                last_error: None,
                write_error: None,
            }),
            replay: Mutex::new(Replay::default()),
        })
    }

    fn outlets(&self) -> std::sync::MutexGuard<'_, Outlets> {
        // A panic while holding the lock is a bug already reported; keep the data.
        self.outlets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn replay(&self) -> std::sync::MutexGuard<'_, Replay> {
        self.replay.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A record the broker acknowledged.
    pub fn delivered(&self, origin: Origin) {
        bump(&self.counters.delivered);
        if let Some(file) = origin.spool_file() {
            self.replay().settle(file, false);
        }
    }

    /// A record that will not be delivered by this run: spool, dead-letter file, or lost.
    pub fn failed(&self, origin: Origin, rec: &Record, reason: &Reason, in_doubt: bool) {
        if in_doubt {
            bump(&self.counters.in_doubt);
        }
        let error = reason.to_string();
        let source = origin.spool_file();
        let mut o = self.outlets();
        o.last_error = Some(reason.clone());
        let mut line = std::mem::take(&mut o.line);
        line.clear();
        envelope::write_line(
            &mut line,
            rec,
            Some(&Failure {
                error: &error,
                failed_at_ms: now_ms(),
            }),
        );
        let to_spool = reason.kind() == Kind::Passing && o.spool.is_some();
        let mut unwritten = false;
        if to_spool {
            let pending = Pending {
                fate: Fate::Spooled,
                source,
            };
            match o.spool.as_mut().map(SpoolOut::file) {
                Some(Ok(f)) => f.write(&line, pending),
                Some(Err(e)) => {
                    o.write_error.get_or_insert_with(|| format!("{e:#}"));
                    unwritten = true;
                }
                None => unwritten = true,
            }
        }
        if !to_spool || unwritten {
            let pending = Pending {
                fate: Fate::DeadLettered,
                source,
            };
            match o.dead_letter.as_mut() {
                Some(d) => d.write(&line, pending),
                None => {
                    drop(o);
                    return self.unkept(&[pending]);
                }
            }
        }
        o.line = line;
    }

    /// A spool line that is not an envelope: to the dead-letter file, else beside its spool
    /// file as `NAME.bad`; counted either way, and the spool file stays if neither takes it.
    pub fn set_aside(&self, file: usize, path: &Path, line: &[u8], reason: &Reason) {
        let mut o = self.outlets();
        o.last_error = Some(reason.clone());
        if let Some(d) = o.dead_letter.as_mut() {
            let mut out = Vec::new();
            let rec = Record {
                value: Some(line),
                ..Record::default()
            };
            let error = reason.to_string();
            let failure = Failure {
                error: &error,
                failed_at_ms: now_ms(),
            };
            envelope::write_line(&mut out, &rec, Some(&failure));
            d.write(
                &out,
                Pending {
                    fate: Fate::DeadLettered,
                    source: None,
                },
            );
            return;
        }
        let mut bad = path.as_os_str().to_owned();
        bad.push(".bad");
        match append_synced(Path::new(&bad), line) {
            Ok(()) => bump(&self.counters.set_aside),
            Err(e) => {
                o.write_error
                    .get_or_insert_with(|| format!("writing {}: {e}", Path::new(&bad).display()));
                drop(o);
                self.replay().keep(file);
            }
        }
    }

    /// Records no file took: lost, unless a spool file still holds them.
    fn unkept(&self, pending: &[Pending]) {
        for p in pending {
            match p.source {
                Some(file) => {
                    self.replay().keep(file);
                    bump(&self.counters.spooled);
                }
                None => bump(&self.counters.lost),
            }
        }
    }

    /// Counts lines a sync made durable, and settles the spool files they came from.
    fn settle(&self, synced: &[Pending]) {
        for p in synced {
            match p.fate {
                Fate::Spooled => bump(&self.counters.spooled),
                Fate::DeadLettered => bump(&self.counters.dead_lettered),
            }
            if let Some(file) = p.source {
                self.replay().settle(file, p.fate == Fate::Spooled);
            }
        }
    }

    /// Registers a spool file about to be sent; returns its number for `Origin::spool`.
    pub fn replay_add(&self, path: PathBuf) -> usize {
        self.replay().add(path)
    }

    /// One more record of spool file `file` handed to the producer.
    pub fn replay_sent(&self, file: usize) {
        self.replay().sent(file);
    }

    /// Every record of spool file `file` has been handed over.
    pub fn replay_read_done(&self, file: usize) {
        self.replay().read_done(file);
    }

    /// Writes and syncs what failed since the last call; called once per batch of reports.
    /// Lines the spool's disk refused go to the dead-letter file.
    pub fn sync(&self) -> Result<()> {
        let mut o = self.outlets();
        let mut synced = Vec::new();
        let mut unkept = Vec::new();
        let mut first_error = None;
        if let Some(f) = o.spool.as_mut().and_then(|s| s.file.as_mut()) {
            match f.sync() {
                Ok(p) => synced = p,
                Err(Unsynced {
                    error,
                    lines,
                    pending,
                }) => {
                    first_error = Some(error);
                    match o.dead_letter.as_mut() {
                        // Whole envelope lines: only where they count changes.
                        Some(d) => d.take_over(
                            &lines,
                            pending.iter().map(|p| Pending {
                                fate: Fate::DeadLettered,
                                ..*p
                            }),
                        ),
                        None => unkept = pending,
                    }
                }
            }
        }
        if let Some(d) = o.dead_letter.as_mut() {
            match d.sync() {
                Ok(p) => synced.extend(p),
                Err(Unsynced { error, pending, .. }) => {
                    first_error.get_or_insert(error);
                    unkept.extend(pending);
                }
            }
        }
        if let Some(e) = &first_error {
            o.write_error.get_or_insert_with(|| e.clone());
        }
        drop(o);
        self.settle(&synced);
        self.unkept(&unkept);
        match first_error {
            Some(e) => Err(anyhow::anyhow!(e)),
            None => Ok(()),
        }
    }

    /// Reopens the dead-letter file by name, after logrotate moved it (SIGHUP).
    pub fn reopen_dead_letter(&self) -> Result<()> {
        self.sync()?;
        let mut o = self.outlets();
        if let Some(d) = o.dead_letter.as_mut() {
            *d = EnvelopeFile::append(&d.path.clone())?;
        }
        Ok(())
    }

    /// Syncs and closes both files, publishes the spool file, then removes replayed spool files
    /// whose records were all delivered or spooled again.
    pub fn close(&self) -> Result<()> {
        let synced = self.sync();
        let committed = {
            let mut o = self.outlets();
            match o.spool.as_mut() {
                Some(s) => s.commit()?,
                None => false,
            }
        };
        self.replay().finish(committed);
        synced
    }

    /// The last failure seen, for the exit message.
    pub fn last_error(&self) -> Option<Reason> {
        self.outlets().last_error.clone()
    }

    /// A failure writing the spool or dead-letter file, for the exit message.
    pub fn write_error(&self) -> Option<String> {
        self.outlets().write_error.clone()
    }

    /// Where failed records go, for messages.
    pub fn outlet_names(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        let o = self.outlets();
        (
            o.spool.as_ref().map(|s| s.dir.clone()),
            o.dead_letter.as_ref().map(|d| d.path.clone()),
        )
    }
}

#[cfg(test)]
mod tests;
