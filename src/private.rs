//! Opening the files kpipe appends records and counts to (the dead-letter file, `--stats`) so
//! that another local user cannot steer them: never through a symlink, never into a file that
//! is someone else's or that others may read or write. Log directories are often writable by a
//! group (`/var/log` is root:syslog 0775 on Ubuntu), so a file planted there must be refused.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result};

/// A file kpipe refuses to write to, and why: the run cannot start (exit 73).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotPrivate(pub String);

impl fmt::Display for NotPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotPrivate {}

/// What kind of file a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    /// A character device (`/dev/null`, `/dev/full`): only root makes those.
    Device,
    /// A FIFO, socket or directory.
    Other,
}

/// Why an existing file with this kind, mode and owner is no place for kpipe's records, if it
/// is not: a regular file must be kpipe's user's, others may neither read nor write it and its
/// group may not write it.
pub fn unsafe_file(kind: Kind, mode: u32, owner: u32, me: u32) -> Option<&'static str> {
    if kind == Kind::Device {
        None
    } else if kind == Kind::Other {
        Some("is not a regular file")
    } else if owner != me {
        Some("belongs to another user")
    } else if mode & 0o002 != 0 || mode & 0o020 != 0 {
        Some("is writable by group or others")
    } else if mode & 0o004 != 0 {
        Some("is readable by others")
    } else {
        None
    }
}

/// Opens `path` for appending, creating it with mode 600; refuses a symlink, a FIFO or device,
/// and a file `unsafe_file` rejects (a `NotPrivate` error inside the returned one).
pub fn open_append(path: &Path, what: &str) -> Result<File> {
    let nofollow = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nofollow.bits() as i32)
        .open(path)
        .map_err(|e| refused_open(path, what, e))?;
    let meta = file
        .metadata()
        .with_context(|| format!("reading {what} {}", path.display()))?;
    let me = rustix::process::geteuid().as_raw();
    use std::os::unix::fs::FileTypeExt;
    let kind = match meta.file_type() {
        t if t.is_file() => Kind::Regular,
        t if t.is_char_device() => Kind::Device,
        _ => Kind::Other,
    };
    if let Some(why) = unsafe_file(kind, meta.mode(), meta.uid(), me) {
        return Err(NotPrivate(format!(
            "{what} {} {why}: another user could read or steer what kpipe writes there; remove it, or name a file of your own (mode 600)",
            path.display()
        ))
        .into());
    }
    Ok(file)
}

/// The error for a file that could not be opened: `NotPrivate` when what stands at `path` is
/// a symlink, a FIFO or another user's file (in a sticky directory the kernel refuses those
/// itself, with EACCES), else the error as it is.
fn refused_open(path: &Path, what: &str, e: std::io::Error) -> anyhow::Error {
    let why = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            "is a symlink, which kpipe does not follow: name the file itself"
        }
        Ok(m) if m.uid() != rustix::process::geteuid().as_raw() => "belongs to another user",
        Ok(m) if !m.is_file() => "is not a regular file",
        _ => return anyhow::Error::new(e).context(format!("opening {what} {}", path.display())),
    };
    NotPrivate(format!(
        "{what} {} {why}: another user could read or steer what kpipe writes there",
        path.display()
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_ones_own_closed_regular_file_is_written() {
        use Kind::*;
        assert_eq!(unsafe_file(Regular, 0o100600, 5, 5), None);
        assert_eq!(unsafe_file(Regular, 0o100640, 5, 5), None);
        assert!(unsafe_file(Regular, 0o100666, 5, 5).is_some_and(|w| w.contains("writable")));
        assert!(unsafe_file(Regular, 0o100660, 5, 5).is_some_and(|w| w.contains("writable")));
        assert!(unsafe_file(Regular, 0o100604, 5, 5).is_some_and(|w| w.contains("readable")));
        assert!(unsafe_file(Regular, 0o100600, 0, 5).is_some_and(|w| w.contains("another user")));
        assert!(unsafe_file(Other, 0o010600, 5, 5).is_some());
        assert_eq!(unsafe_file(Device, 0o020666, 0, 5), None, "/dev/null");
    }

    #[test]
    fn a_symlink_or_an_open_file_is_refused_and_a_new_file_is_private() {
        let dir = std::env::temp_dir().join(format!("kpipe-private-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let target = dir.join("target");
        fs::write(&target, "x").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_append(&link, "the dead-letter file").unwrap_err();
        assert!(e.downcast_ref::<NotPrivate>().is_some(), "{e:#}");
        assert!(e.to_string().contains("symlink"), "{e:#}");

        let open = dir.join("open");
        fs::write(&open, "").unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o666)).unwrap();
        let e = open_append(&open, "the dead-letter file").unwrap_err();
        assert!(e.downcast_ref::<NotPrivate>().is_some(), "{e:#}");

        let new = dir.join("new");
        open_append(&new, "the dead-letter file").unwrap();
        assert_eq!(fs::metadata(&new).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read(&target).unwrap(), b"x");
        fs::remove_dir_all(&dir).unwrap();
    }
}
