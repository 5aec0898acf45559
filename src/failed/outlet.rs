//! The files failed records are written to: envelope lines, appended, and counted only once
//! they are synced. A write or sync that fails takes the file back to its last synced length,
//! so a partly written line never stays in it, and hands the unsynced lines back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// What a line counts as once it is synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Spooled,
    DeadLettered,
}

/// A line written but not yet synced: what it will count as, and the spool file it was
/// replayed from (whose removal waits for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub fate: Fate,
    pub source: Option<usize>,
}

/// Lines a failed sync handed back, with the error, and the lines before them that still fit.
pub struct Unsynced {
    pub error: String,
    pub lines: Vec<u8>,
    pub pending: Vec<Pending>,
    /// Lines that were kept (written and synced) before the disk refused the rest.
    pub kept: Vec<Pending>,
}

/// An append-only file of envelope lines.
pub struct EnvelopeFile {
    pub path: PathBuf,
    file: File,
    buf: Vec<u8>,
    pending: Vec<Pending>,
    synced_len: u64,
}

impl EnvelopeFile {
    /// Opens `path` for appending, creating it (mode 600); refuses a file another user could
    /// steer or read (`private::open_append`).
    pub fn append(path: &Path) -> Result<EnvelopeFile> {
        let file = crate::private::open_append(path, "the dead-letter file")?;
        EnvelopeFile::with(path, file)
    }

    /// Creates `path` (mode 600), failing if anything, a symlink included, is there already.
    pub fn create_new(path: &Path) -> Result<EnvelopeFile> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(0o600)
            .custom_flags(crate::spool::NOFOLLOW)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        EnvelopeFile::with(path, file)
    }

    fn with(path: &Path, file: File) -> Result<EnvelopeFile> {
        let synced_len = file
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        Ok(EnvelopeFile {
            path: path.to_path_buf(),
            file,
            buf: Vec::new(),
            pending: Vec::new(),
            synced_len,
        })
    }

    /// Queues one line; it reaches the disk at the next `sync`.
    pub fn write(&mut self, line: &[u8], pending: Pending) {
        self.buf.extend_from_slice(line);
        self.pending.push(pending);
    }

    /// Queues lines another file could not keep, each with what it counts as.
    pub fn take_over(&mut self, lines: &[u8], pending: impl IntoIterator<Item = Pending>) {
        self.buf.extend_from_slice(lines);
        self.pending.extend(pending);
    }

    /// Writes and syncs the queued lines. Returns them as settled, or, when the disk refuses,
    /// keeps the whole lines that still fit and hands the rest back, the file cut after the
    /// last line kept.
    pub fn sync(&mut self) -> Result<Vec<Pending>, Unsynced> {
        if self.buf.is_empty() {
            return Ok(std::mem::take(&mut self.pending));
        }
        match self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data())
        {
            Ok(()) => {
                self.synced_len += self.buf.len() as u64;
                self.buf.clear();
                Ok(std::mem::take(&mut self.pending))
            }
            Err(e) => {
                let _ = self.file.set_len(self.synced_len);
                let (bytes, count) = self.keep_what_fits();
                self.synced_len += bytes as u64;
                self.buf.drain(..bytes);
                let kept = self.pending.drain(..count).collect();
                Err(Unsynced {
                    error: format!("writing {}: {e}", self.path.display()),
                    lines: std::mem::take(&mut self.buf),
                    pending: std::mem::take(&mut self.pending),
                    kept,
                })
            }
        }
    }

    /// After the disk refused the queue as a whole: writes its lines one by one until one does
    /// not fit, and syncs them. Returns the bytes and the number of lines kept; the file ends
    /// after the last of them.
    fn keep_what_fits(&mut self) -> (usize, usize) {
        let (mut bytes, mut count) = (0, 0);
        for line in self.buf.split_inclusive(|&b| b == b'\n') {
            if self.file.write_all(line).is_err() {
                break;
            }
            bytes += line.len();
            count += 1;
        }
        let end = self.synced_len + bytes as u64;
        if count == 0
            || self
                .file
                .set_len(end)
                .and_then(|()| self.file.sync_data())
                .is_err()
        {
            let _ = self.file.set_len(self.synced_len);
            return (0, 0);
        }
        (bytes, count)
    }

    /// Whether anything was ever synced into the file.
    pub fn holds_lines(&self) -> bool {
        self.synced_len > 0
    }
}

/// The spool file this run writes: a `.tmp` name until it is complete and synced.
pub struct SpoolOut {
    pub dir: PathBuf,
    tmp: PathBuf,
    pub file: Option<EnvelopeFile>,
}

impl SpoolOut {
    /// The spool file for this run in `dir` (created when first written).
    pub fn new(dir: &Path, name: &str) -> SpoolOut {
        SpoolOut {
            dir: dir.to_path_buf(),
            tmp: dir.join(format!("{name}.spool.tmp")),
            file: None,
        }
    }

    /// The open `.tmp` file, created on first use.
    pub fn file(&mut self) -> Result<&mut EnvelopeFile> {
        if self.file.is_none() {
            self.file = Some(EnvelopeFile::create_new(&self.tmp)?);
        }
        self.file.as_mut().context("spool file")
    }

    /// Throws the file away unpublished.
    pub fn discard(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }

    /// Makes the spool file visible to the next run (call after a successful sync); returns
    /// whether there was one. A file that never held a synced line is removed instead.
    pub fn commit(&mut self) -> Result<bool> {
        let Some(f) = self.file.take() else {
            return Ok(false);
        };
        if !f.holds_lines() {
            let _ = fs::remove_file(&self.tmp);
            return Ok(false);
        }
        let done = self.tmp.with_extension("");
        fs::rename(&self.tmp, &done)
            .with_context(|| format!("renaming {} to {}", self.tmp.display(), done.display()))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing the spool directory {}", self.dir.display()))?;
        Ok(true)
    }
}

/// Appends `line` to `path` and syncs it, for lines set aside beside a spool file.
pub fn append_synced(path: &Path, line: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(crate::spool::NOFOLLOW)
        .open(path)?;
    f.write_all(line)?;
    f.write_all(b"\n")?;
    f.sync_data()
}
