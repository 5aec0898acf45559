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
    /// Where records read from stdin are spooled.
    spool: Option<SpoolOut>,
    /// One file per replayed spool file whose records are spooled again: published only if
    /// its source can go, so a source kept whole (its rewrite failed) is never sent twice.
    respools: Vec<(usize, SpoolOut)>,
    /// Start time, for the names of this run's spool files.
    started_ms: i64,
    line: Vec<u8>,
    last_error: Option<Reason>,
    write_error: Option<String>,
    /// The dead-letter file is the spool's own, not named by the user: removed at close if
    /// it holds nothing.
    spare_dead_letter: bool,
}

/// Whether the brokers may have stored a failed record after all: librdkafka says so of one
/// whose request was sent but never answered. Counted as "possibly stored", since sending it
/// again may duplicate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    No,
    Maybe,
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
        let started_ms = now_ms();
        let spool = spool_dir.map(|dir| SpoolOut::new(dir, &spool_name(started_ms, None)));
        Ok(Ledger {
            counters: Counters::default(),
            outlets: Mutex::new(Outlets {
                dead_letter,
                spool,
                respools: Vec::new(),
                started_ms,
                line: Vec::new(),
                last_error: None,
                write_error: None,
                spare_dead_letter: false,
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

    /// The dead-letter file is the spool directory's own: it goes at close if it stayed empty.
    pub fn dead_letter_in_spool(&self) {
        self.outlets().spare_dead_letter = true;
    }

    /// A record the broker acknowledged.
    pub fn delivered(&self, origin: Origin) {
        bump(&self.counters.delivered);
        if let Some(file) = origin.spool_file() {
            self.replay().settle(file);
        }
    }

    /// A record that will not be delivered by this run: spool, dead-letter file, or lost.
    pub fn failed(&self, origin: Origin, rec: &Record, reason: &Reason, stored: Stored) {
        if stored == Stored::Maybe {
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
            match o.spool_for(source).map(SpoolOut::file) {
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
                // A spool that could not take the record: it is still in its spool file, if any.
                None if unwritten => self.unkept(&[pending]),
                // Nowhere to keep it, and sending it again could not help.
                None => {
                    bump(&self.counters.lost);
                    if let Some(file) = source {
                        self.replay().settle(file);
                    }
                }
            }
        }
        o.line = line;
    }

    /// A record that no file can take and that cannot be sent again (`--dry-run`'s failed
    /// stdout): counted as lost, with its reason.
    pub fn unwritten(&self, reason: &Reason) {
        bump(&self.counters.lost);
        let mut o = self.outlets();
        if o.last_error.as_ref() != Some(reason) {
            o.last_error = Some(reason.clone());
        }
    }

    /// A spool line that is not an envelope: to the dead-letter file, else beside its spool
    /// file as `NAME.bad`; counted either way, and the spool file stays if neither takes it.
    pub fn set_aside(&self, file: usize, path: &Path, line: &[u8], reason: &Reason) {
        if self.outlets().dead_letter.is_some() {
            let rec = Record {
                value: Some(line),
                ..Record::default()
            };
            // Permanent, so `failed` puts it in the dead-letter file; the line was never counted
            // as out, so its spool file waits for nothing.
            return self.failed(Origin::stdin(None), &rec, reason, Stored::No);
        }
        let mut o = self.outlets();
        o.last_error = Some(reason.clone());
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
                match p.fate {
                    Fate::Spooled => self.replay().respooled(file),
                    Fate::DeadLettered => self.replay().settle(file),
                }
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
    /// Lines a spool's disk refused go to the dead-letter file.
    pub fn sync(&self) -> Result<()> {
        let mut guard = self.outlets();
        let o = &mut *guard;
        let mut synced = Vec::new();
        let mut unkept = Vec::new();
        let mut first_error = None;
        let spools = o
            .spool
            .iter_mut()
            .chain(o.respools.iter_mut().map(|(_, s)| s));
        for f in spools.filter_map(|s| s.file.as_mut()) {
            match f.sync() {
                Ok(p) => synced.extend(p),
                Err(Unsynced {
                    error,
                    lines,
                    pending,
                    kept,
                }) => {
                    first_error.get_or_insert(error);
                    synced.extend(kept);
                    match o.dead_letter.as_mut() {
                        // Whole envelope lines: only where they count changes.
                        Some(d) => d.take_over(
                            &lines,
                            pending.iter().map(|p| Pending {
                                fate: Fate::DeadLettered,
                                ..*p
                            }),
                        ),
                        None => unkept.extend(pending),
                    }
                }
            }
        }
        if let Some(d) = o.dead_letter.as_mut() {
            match d.sync() {
                Ok(p) => synced.extend(p),
                Err(Unsynced {
                    error,
                    pending,
                    kept,
                    ..
                }) => {
                    first_error.get_or_insert(error);
                    synced.extend(kept);
                    unkept.extend(pending);
                }
            }
        }
        if let Some(e) = &first_error {
            o.write_error.get_or_insert_with(|| e.clone());
        }
        drop(guard);
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

    /// Syncs and closes the files and publishes the spool files; then removes replayed spool
    /// files whose records were all delivered, dead-lettered, or spooled again in a published
    /// file. A rewrite whose source must stay is thrown away instead.
    pub fn close(&self) -> Result<()> {
        let synced = self.sync();
        let mut published = Vec::new();
        {
            let mut guard = self.outlets();
            let o = &mut *guard;
            if let Some(s) = o.spool.as_mut() {
                s.commit()?;
            }
            if o.spare_dead_letter {
                if let Some(d) = o.dead_letter.as_ref().filter(|d| !d.holds_lines()) {
                    let _ = std::fs::remove_file(&d.path);
                }
            }
            let replay = self.replay();
            for (source, out) in &mut o.respools {
                if replay.is_kept(*source) {
                    out.discard();
                } else if out.commit()? {
                    published.push(*source);
                }
            }
        }
        self.replay().finish(|source| published.contains(&source));
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

impl Outlets {
    /// The spool file for a record replayed from `source`, or read from stdin (`None`).
    fn spool_for(&mut self, source: Option<usize>) -> Option<&mut SpoolOut> {
        let Some(n) = source else {
            return self.spool.as_mut();
        };
        let dir = self.spool.as_ref()?.dir.clone();
        let i = match self.respools.iter().position(|(s, _)| *s == n) {
            Some(i) => i,
            None => {
                let out = SpoolOut::new(&dir, &spool_name(self.started_ms, Some(n)));
                self.respools.push((n, out));
                self.respools.len() - 1
            }
        };
        Some(&mut self.respools[i].1)
    }
}

/// `<ms>-<pid>`, or `<ms>-<source>-<pid>` for a rewrite; the pid last, so a dead run's `.tmp`
/// file is recognised (`spool::writer_is_gone`).
fn spool_name(started_ms: i64, source: Option<usize>) -> String {
    let pid = std::process::id();
    match source {
        None => format!("{started_ms}-{pid}"),
        Some(n) => format!("{started_ms}-{n}-{pid}"),
    }
}

#[cfg(test)]
mod tests;
