//! Where records that were not delivered go: the spool (for passing failures, sent again by the
//! next run), the dead-letter file (for permanent ones), or, when neither was given, the lost
//! count that the exit status reports. Both files hold envelope lines with the reason.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::message::Origin;
use crate::reason::{Kind, Reason};
use crate::spool::Replay;
use crate::stats::{bump, Counters};
use crate::wire::envelope::{self, Failure};
use crate::wire::Record;

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An append-only file of envelope lines, fsynced per batch.
struct EnvelopeFile {
    path: PathBuf,
    out: BufWriter<File>,
    dirty: bool,
}

impl EnvelopeFile {
    fn append(path: &Path) -> Result<EnvelopeFile> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {} for appending", path.display()))?;
        Ok(EnvelopeFile {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            dirty: false,
        })
    }

    fn write(&mut self, line: &[u8]) -> io::Result<()> {
        self.dirty = true;
        self.out.write_all(line)
    }

    fn sync(&mut self) -> io::Result<()> {
        if self.dirty {
            self.out.flush()?;
            self.out.get_ref().sync_data()?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// The spool file this run writes: a `.tmp` name until it is complete and synced.
struct SpoolOut {
    dir: PathBuf,
    tmp: PathBuf,
    file: Option<EnvelopeFile>,
}

impl SpoolOut {
    fn file(&mut self) -> Result<&mut EnvelopeFile> {
        if self.file.is_none() {
            self.file = Some(EnvelopeFile::append(&self.tmp)?);
        }
        self.file.as_mut().context("spool file")
    }

    /// Makes the spool file visible to the next run; returns whether there was one.
    fn commit(&mut self) -> Result<bool> {
        let Some(mut f) = self.file.take() else {
            return Ok(false);
        };
        f.sync()
            .with_context(|| format!("syncing {}", f.path.display()))?;
        let done = self.tmp.with_extension("");
        fs::rename(&self.tmp, &done)
            .with_context(|| format!("renaming {} to {}", self.tmp.display(), done.display()))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing the spool directory {}", self.dir.display()))?;
        Ok(true)
    }
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
        let spool = spool_dir.map(|dir| SpoolOut {
            dir: dir.to_path_buf(),
            tmp: dir.join(format!("{}-{}.spool.tmp", now_ms(), std::process::id())),
            file: None,
        });
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
        let mut respooled = false;
        let written = match (reason.kind(), o.spool.is_some(), o.dead_letter.is_some()) {
            (Kind::Passing, true, _) => {
                let r = o
                    .spool
                    .as_mut()
                    .map(|s| s.file().and_then(|f| f.write(&line).map_err(Into::into)));
                respooled = true;
                r.map(|r| r.map(|_| &self.counters.spooled))
            }
            (_, _, true) => o.dead_letter.as_mut().map(|d| {
                d.write(&line)
                    .map(|_| &self.counters.dead_lettered)
                    .map_err(anyhow::Error::from)
            }),
            _ => None,
        };
        match written {
            Some(Ok(counter)) => bump(counter),
            Some(Err(e)) => {
                o.write_error = Some(format!("{e:#}"));
                respooled = false;
                bump(&self.counters.lost);
            }
            None => bump(&self.counters.lost),
        }
        o.line = line;
        drop(o);
        if let Some(file) = origin.spool_file() {
            self.replay().settle(file, respooled);
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

    /// Syncs what was written since the last call; called once per batch of delivery reports.
    pub fn sync(&self) -> Result<()> {
        let mut o = self.outlets();
        if let Some(d) = o.dead_letter.as_mut() {
            d.sync()
                .with_context(|| format!("syncing the dead-letter file {}", d.path.display()))?;
        }
        if let Some(f) = o.spool.as_mut().and_then(|s| s.file.as_mut()) {
            f.sync()
                .with_context(|| format!("syncing the spool file {}", f.path.display()))?;
        }
        Ok(())
    }

    /// Reopens the dead-letter file by name, after logrotate moved it (SIGHUP).
    pub fn reopen_dead_letter(&self) -> Result<()> {
        let mut o = self.outlets();
        if let Some(d) = o.dead_letter.as_mut() {
            d.sync()
                .with_context(|| format!("syncing {}", d.path.display()))?;
            *d = EnvelopeFile::append(&d.path.clone())?;
        }
        Ok(())
    }

    /// Syncs and closes both files, publishes the spool file, then removes replayed spool files
    /// whose records were all delivered or spooled again.
    pub fn close(&self) -> Result<()> {
        self.sync()?;
        let committed = {
            let mut o = self.outlets();
            match o.spool.as_mut() {
                Some(s) => s.commit()?,
                None => false,
            }
        };
        self.replay().finish(committed);
        Ok(())
    }

    /// The last delivery error seen, for the exit message.
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
mod tests {
    use super::*;
    use crate::reason::{Position, Problem};
    use rdkafka::types::RDKafkaErrorCode;

    fn rec() -> Record<'static> {
        Record {
            topic: "t",
            key: Some(b"k"),
            value: Some(b"v"),
            timestamp: Some(7),
            ..Record::default()
        }
    }

    fn passing() -> Reason {
        Reason::Kafka {
            code: Some(RDKafkaErrorCode::MessageTimedOut),
            text: "Local: Message timed out".into(),
        }
    }

    fn permanent() -> Reason {
        Reason::Malformed {
            at: Position::default(),
            problem: Problem::BadTimestamp,
            hint: false,
        }
    }

    fn lines(p: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn passing_failures_go_to_the_spool_published_at_close() {
        let d = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(None, Some(d.path())).unwrap();
        ledger.failed(Origin::stdin(false), &rec(), &passing(), true);
        let t = ledger.counters.snapshot();
        assert_eq!((t.spooled, t.in_doubt, t.lost), (1, 1, 0));
        let names = || -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(d.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert!(names()[0].ends_with(".spool.tmp"));
        ledger.close().unwrap();
        let published = names();
        assert!(published[0].ends_with(".spool"), "{published:?}");
        let got = lines(&d.path().join(&published[0]));
        assert_eq!(got[0]["topic"], "t");
        assert_eq!(got[0]["key"], "k");
        assert_eq!(got[0]["timestamp"], 7);
        assert_eq!(got[0]["error"], "Local: Message timed out");
        assert!(got[0]["failed_at"].as_i64().unwrap() > 0);
    }

    #[test]
    fn permanent_failures_go_to_the_dead_letter_file_even_with_a_spool() {
        let d = tempfile::tempdir().unwrap();
        let dl = d.path().join("dl.ndjson");
        let ledger = Ledger::new(Some(&dl), Some(&d.path().join("spool"))).unwrap();
        ledger.failed(Origin::stdin(false), &rec(), &permanent(), false);
        ledger.sync().unwrap();
        assert_eq!(ledger.counters.snapshot().dead_lettered, 1);
        assert_eq!(lines(&dl)[0]["value"], "v");
        assert_eq!(ledger.last_error(), Some(permanent()));
    }

    #[test]
    fn without_a_spool_passing_failures_go_to_the_dead_letter_file() {
        let d = tempfile::tempdir().unwrap();
        let dl = d.path().join("dl.ndjson");
        let ledger = Ledger::new(Some(&dl), None).unwrap();
        ledger.failed(Origin::stdin(false), &rec(), &passing(), false);
        assert_eq!(ledger.counters.snapshot().dead_lettered, 1);
    }

    #[test]
    fn with_no_outlet_a_failure_is_counted_lost() {
        let ledger = Ledger::new(None, None).unwrap();
        ledger.failed(Origin::stdin(false), &rec(), &permanent(), false);
        ledger.failed(Origin::stdin(false), &rec(), &passing(), false);
        assert_eq!(ledger.counters.snapshot().lost, 2);
        assert_eq!(ledger.outlet_names(), (None, None));
    }

    #[test]
    fn a_delivered_replay_record_settles_its_spool_file() {
        let d = tempfile::tempdir().unwrap();
        let old = d.path().join("1-1.spool");
        fs::write(&old, b"{}\n").unwrap();
        let ledger = Ledger::new(None, Some(d.path())).unwrap();
        let n = ledger.replay_add(old.clone());
        ledger.replay_sent(n);
        ledger.replay_read_done(n);
        ledger.delivered(Origin::spool(n, false));
        assert!(!old.exists());
        assert_eq!(ledger.counters.snapshot().delivered, 1);
    }

    #[test]
    fn a_respooled_replay_record_keeps_its_file_until_the_new_one_is_published() {
        let d = tempfile::tempdir().unwrap();
        let old = d.path().join("1-1.spool");
        fs::write(&old, b"{}\n").unwrap();
        let ledger = Ledger::new(None, Some(d.path())).unwrap();
        let n = ledger.replay_add(old.clone());
        ledger.replay_sent(n);
        ledger.replay_read_done(n);
        ledger.failed(Origin::spool(n, false), &rec(), &passing(), false);
        assert!(old.exists());
        ledger.close().unwrap();
        assert!(!old.exists());
    }

    #[test]
    fn sighup_reopens_the_dead_letter_file_by_name() {
        let d = tempfile::tempdir().unwrap();
        let dl = d.path().join("dl.ndjson");
        let ledger = Ledger::new(Some(&dl), None).unwrap();
        ledger.failed(Origin::stdin(false), &rec(), &permanent(), false);
        ledger.sync().unwrap();
        fs::rename(&dl, d.path().join("dl.1")).unwrap();
        ledger.reopen_dead_letter().unwrap();
        ledger.failed(Origin::stdin(false), &rec(), &permanent(), false);
        ledger.close().unwrap();
        assert_eq!(lines(&dl).len(), 1);
        assert_eq!(lines(&d.path().join("dl.1")).len(), 1);
    }
}
