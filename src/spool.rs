//! The spool directory: files of envelope lines that an earlier run could not deliver.
//!
//! A run claims the directory with a lock before it sends spooled files, so two runs (syslog-ng
//! starting a new kpipe while the old one still flushes) never send the same file twice. A file
//! is removed only once each of its records was acknowledged, or spooled again in a file that
//! is already synced and published.

use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};

use anyhow::{bail, Context, Result};

/// The dead-letter file of a run with `--spool` and no `--dead-letter`: not a `.spool` file,
/// so never sent again by itself.
pub const DEAD_LETTER: &str = "dead-letter.ndjson";

/// Open flag: never through a symlink someone planted in the spool.
pub const NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// Creates the spool directory (0700) if needed, and refuses one that others could plant files
/// in or read: spool files are replayed under kpipe's credentials and hold the records.
pub fn prepare_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the spool directory {}", dir.display()))?;
    let meta = fs::symlink_metadata(dir)
        .with_context(|| format!("reading the spool directory {}", dir.display()))?;
    let me = rustix::process::geteuid().as_raw();
    if let Some(why) = unsafe_dir(meta.is_dir(), meta.mode(), meta.uid(), me) {
        bail!(
            "the spool directory {} {why}: anyone who can write there chooses what kpipe sends; use a directory of your own, mode 700",
            dir.display()
        );
    }
    Ok(())
}

/// Why a directory with this type, mode and owner is no place for a spool, if it is not.
pub fn unsafe_dir(is_dir: bool, mode: u32, owner: u32, me: u32) -> Option<&'static str> {
    if !is_dir {
        Some("is not a directory (a symlink is not followed)")
    } else if owner != me {
        Some("belongs to another user")
    } else if mode & 0o022 != 0 {
        Some("is writable by group or others")
    } else {
        None
    }
}

/// Opens (creating, mode 600, never through a symlink) the `.lock` file of `dir`; whoever holds
/// its lock owns the directory's files.
pub fn open_lock(dir: &Path) -> Result<File> {
    open_lock_file(&dir.join(".lock"))
}

/// Opens (creating, mode 600, never through a symlink) the lock file `path`.
pub fn open_lock_file(path: &Path) -> Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening the lock {}", path.display()))
}

/// The lock on a spool directory, held while its files are being sent.
pub struct SpoolDir {
    dir: PathBuf,
    lock: File,
    locked: bool,
    claimed: Vec<PathBuf>,
}

impl SpoolDir {
    /// Opens (creating) the directory; the lock is taken by `claim_new`.
    pub fn open(dir: &Path) -> Result<SpoolDir> {
        let lock = open_lock(dir)?;
        Ok(SpoolDir {
            dir: dir.to_path_buf(),
            lock,
            locked: false,
            claimed: Vec::new(),
        })
    }

    /// Takes the lock if it is free and returns spool files not yet claimed, oldest first.
    /// Files left as `.tmp` by a run that died are adopted first.
    pub fn claim_new(&mut self) -> Result<Vec<PathBuf>> {
        if !self.locked {
            match self.lock.try_lock() {
                Ok(()) => self.locked = true,
                Err(TryLockError::WouldBlock) => return Ok(Vec::new()),
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| {
                        format!("locking the spool directory {}", self.dir.display())
                    })
                }
            }
        }
        let entries = fs::read_dir(&self.dir)
            .with_context(|| format!("listing the spool directory {}", self.dir.display()))?;
        let mut found = Vec::new();
        for entry in entries {
            let path = entry
                .with_context(|| format!("listing {}", self.dir.display()))?
                .path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if let Some(stem) = name.strip_suffix(".spool.tmp") {
                if writer_is_gone(stem) {
                    let adopted = path.with_extension("");
                    fs::rename(&path, &adopted)
                        .with_context(|| format!("adopting {}", path.display()))?;
                    found.push(adopted);
                }
            } else if name.ends_with(".spool") && !self.claimed.contains(&path) {
                found.push(path);
            }
        }
        found.sort();
        found.dedup();
        self.claimed.extend(found.iter().cloned());
        Ok(found)
    }
}

/// Whether the run that was writing `<ms>-<pid>.spool.tmp` has ended.
fn writer_is_gone(stem: &str) -> bool {
    let pid = stem.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
    match pid {
        Some(pid) if pid == std::process::id() => false,
        Some(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}

/// Spool files being sent by this run, and how many of their records are still out.
#[derive(Default)]
pub struct Replay {
    files: Vec<Entry>,
}

struct Entry {
    path: PathBuf,
    outstanding: u64,
    fully_read: bool,
    respooled: bool,
    /// A record of it could not be kept elsewhere: the file stays as it is.
    kept: bool,
    removed: bool,
}

impl Replay {
    /// Registers a file about to be sent; returns its 1-based number for `Origin::spool`.
    pub fn add(&mut self, path: PathBuf) -> usize {
        self.files.push(Entry {
            path,
            outstanding: 0,
            fully_read: false,
            respooled: false,
            kept: false,
            removed: false,
        });
        self.files.len()
    }

    /// One more record of `file` handed to the producer.
    pub fn sent(&mut self, file: usize) {
        if let Some(e) = self.files.get_mut(file - 1) {
            e.outstanding += 1;
        }
    }

    /// Every record of `file` has been handed over.
    pub fn read_done(&mut self, file: usize) {
        if let Some(e) = self.files.get_mut(file - 1) {
            e.fully_read = true;
        }
        self.remove_if_done(file);
    }

    /// A record of `file` settled for good: delivered, dead-lettered or counted lost.
    pub fn settle(&mut self, file: usize) {
        if let Some(e) = self.files.get_mut(file - 1) {
            e.outstanding = e.outstanding.saturating_sub(1);
        }
        self.remove_if_done(file);
    }

    /// A record of `file` written to this run's spool: the file may go once that spool file
    /// is published.
    pub fn respooled(&mut self, file: usize) {
        if let Some(e) = self.files.get_mut(file - 1) {
            e.outstanding = e.outstanding.saturating_sub(1);
            e.respooled = true;
        }
        self.remove_if_done(file);
    }

    /// A record of `file` that no other file took: the file must stay, whatever else settles.
    pub fn keep(&mut self, file: usize) {
        if let Some(e) = self.files.get_mut(file - 1) {
            e.kept = true;
            e.outstanding = e.outstanding.saturating_sub(1);
        }
    }

    fn remove_if_done(&mut self, file: usize) {
        if let Some(e) = self.files.get_mut(file - 1) {
            if e.fully_read && e.outstanding == 0 && !e.respooled && !e.kept && !e.removed {
                e.removed = fs::remove_file(&e.path).is_ok();
            }
        }
    }

    /// Whether a record of `file` could not be kept elsewhere, so the file must stay.
    pub fn is_kept(&self, file: usize) -> bool {
        self.files.get(file - 1).is_some_and(|e| e.kept)
    }

    /// At exit: files whose records were spooled again go once their rewrite is published
    /// (`published(file)`).
    pub fn finish(&mut self, published: impl Fn(usize) -> bool) {
        for (i, e) in self.files.iter_mut().enumerate() {
            if e.fully_read
                && e.outstanding == 0
                && !e.kept
                && !e.removed
                && (!e.respooled || published(i + 1))
            {
                e.removed = fs::remove_file(&e.path).is_ok();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, b"{}\n").unwrap();
        p
    }

    #[test]
    fn a_spool_directory_must_be_ones_own_and_closed_to_writers() {
        assert_eq!(unsafe_dir(true, 0o40700, 5, 5), None);
        assert_eq!(unsafe_dir(true, 0o40755, 5, 5), None);
        assert!(unsafe_dir(true, 0o40777, 5, 5).is_some_and(|w| w.contains("writable")));
        assert!(unsafe_dir(true, 0o40770, 5, 5).is_some());
        assert!(unsafe_dir(true, 0o40700, 0, 5).is_some_and(|w| w.contains("another user")));
        assert!(unsafe_dir(false, 0o120777, 5, 5).is_some());
    }

    #[test]
    fn a_new_spool_directory_is_private() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a/b");
        prepare_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn claims_spool_files_oldest_first_and_each_once() {
        let d = tempfile::tempdir().unwrap();
        let b = touch(d.path(), "2-1.spool");
        let a = touch(d.path(), "1-1.spool");
        touch(d.path(), "notes.txt");
        let mut spool = SpoolDir::open(d.path()).unwrap();
        assert_eq!(spool.claim_new().unwrap(), vec![a, b]);
        assert!(spool.claim_new().unwrap().is_empty());
        let c = touch(d.path(), "3-1.spool");
        assert_eq!(spool.claim_new().unwrap(), vec![c]);
    }

    #[test]
    fn a_second_run_claims_nothing_while_the_first_holds_the_lock() {
        let d = tempfile::tempdir().unwrap();
        touch(d.path(), "1-1.spool");
        let mut first = SpoolDir::open(d.path()).unwrap();
        let mut second = SpoolDir::open(d.path()).unwrap();
        assert_eq!(first.claim_new().unwrap().len(), 1);
        assert!(second.claim_new().unwrap().is_empty());
        drop(first);
        assert_eq!(second.claim_new().unwrap().len(), 1);
    }

    #[test]
    fn a_dead_runs_tmp_file_is_adopted_and_a_live_ones_is_not() {
        let d = tempfile::tempdir().unwrap();
        // Above the largest pid_max Linux allows (2^22).
        touch(d.path(), "5-4194305.spool.tmp");
        touch(d.path(), &format!("6-{}.spool.tmp", std::process::id()));
        let mut spool = SpoolDir::open(d.path()).unwrap();
        let claimed = spool.claim_new().unwrap();
        assert_eq!(claimed, vec![d.path().join("5-4194305.spool")]);
        assert!(claimed[0].exists());
    }

    #[test]
    fn a_replayed_file_goes_once_every_record_is_settled() {
        let d = tempfile::tempdir().unwrap();
        let f = touch(d.path(), "1-1.spool");
        let mut r = Replay::default();
        let n = r.add(f.clone());
        r.sent(n);
        r.sent(n);
        r.settle(n);
        r.read_done(n);
        assert!(f.exists(), "one record still out");
        r.settle(n);
        assert!(!f.exists());
    }

    #[test]
    fn a_file_whose_records_were_spooled_again_waits_for_the_new_spool_file() {
        let d = tempfile::tempdir().unwrap();
        let f = touch(d.path(), "1-1.spool");
        let mut r = Replay::default();
        let n = r.add(f.clone());
        r.sent(n);
        r.read_done(n);
        r.respooled(n);
        assert!(f.exists());
        r.finish(|_| false);
        assert!(f.exists(), "the new spool file was not published");
        r.finish(|_| true);
        assert!(!f.exists());
    }

    #[test]
    fn a_file_with_a_record_no_other_file_took_stays() {
        let d = tempfile::tempdir().unwrap();
        let f = touch(d.path(), "1-1.spool");
        let mut r = Replay::default();
        let n = r.add(f.clone());
        r.sent(n);
        r.sent(n);
        r.read_done(n);
        r.settle(n);
        r.keep(n);
        r.finish(|_| true);
        assert!(f.exists());
    }

    #[test]
    fn a_file_not_fully_read_stays() {
        let d = tempfile::tempdir().unwrap();
        let f = touch(d.path(), "1-1.spool");
        let mut r = Replay::default();
        let n = r.add(f.clone());
        r.sent(n);
        r.settle(n);
        r.finish(|_| true);
        assert!(f.exists());
    }
}
