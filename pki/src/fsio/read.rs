//! Bounded reads: every file kubepki reads lies in a directory others write too (the cert dir,
//! the kubeconfig dir, a node's files, a backup), so a read trusts nothing about it. A file is
//! refused unread when it is larger than kubepki could mean to read ([`MAX_PEM_FILE`],
//! [`MAX_CONFIG_FILE`]: a device or a wrong path must not fill memory), when it is not a
//! regular file, or when it is a dangling link (other than a new name of the earlier linked
//! layout, which reads as absent).
//!
//! A certificate and its key are two files that a commit replaces with two renames, so
//! [`read_pair`] reads them as one generation: it reads again while a commit is in progress,
//! and reads links of the earlier linked layout from one snapshot.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use super::journal::JOURNAL_NAME;
use super::linked::{DATA_LINK, current_snapshot, is_pending_target};
use super::{file_name, parent_of};
use crate::error::{Error, Result};

/// The largest certificate or key file kubepki reads (1 MiB); larger ones are refused unread.
pub const MAX_PEM_FILE: u64 = 1 << 20;

/// The largest kubeconfig or configuration file kubepki reads (4 MiB).
pub const MAX_CONFIG_FILE: u64 = 4 << 20;

/// Reads `path` if it exists, refusing non-files and files over `limit` bytes without reading
/// them. `None` means the path does not exist — or is a link into a snapshot that does not
/// have it yet (a new name of a commit in progress). Any other dangling symlink is an error.
pub fn read_optional(path: &Path, limit: u64, what: &'static str) -> Result<Option<Vec<u8>>> {
    let read_err = |source| Error::Read { path: path.to_owned(), source };
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
        Ok(_) => {}
    }
    let meta = match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let target = fs::read_link(path).unwrap_or_default();
            if is_pending_target(&target) {
                return Ok(None);
            }
            return Err(Error::DanglingSymlink { path: path.to_owned(), target });
        }
        other => other.map_err(read_err)?,
    };
    if !meta.is_file() {
        return Err(Error::NotAFile { path: path.to_owned() });
    }
    if meta.len() > limit {
        return Err(Error::TooLarge { path: path.to_owned(), what, size: meta.len(), limit });
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    File::open(path).and_then(|f| f.take(limit + 1).read_to_end(&mut buf)).map_err(read_err)?;
    if buf.len() as u64 > limit {
        return Err(Error::TooLarge { path: path.to_owned(), what, size: buf.len() as u64, limit });
    }
    Ok(Some(buf))
}

/// Reads a certificate file and its key file as one consistent pair, though a commit may be
/// replacing them meanwhile (two renames: the certificate, then the key).
///
/// Plain files: both are stat'ed, read, and stat'ed again, then `journal_dir` (the cert dir's
/// state dir, if the caller knows it) is looked at. If neither file was replaced while it was
/// read and no commit is in progress at the end (a journal while a writer holds the lock), the
/// two are of one generation: a pair seen half-replaced would have its second rename still to
/// come after the second stat, and the journal is removed only after it. A journal no writer
/// holds the lock for is a crash's, left for the next writing command: the read does not wait. Otherwise the read starts over (a commit takes milliseconds), up to a bound.
///
/// Links of the earlier linked layout into the same snapshot are read from the snapshot
/// `..data` named, so a swap meanwhile cannot hand back a certificate with another key.
pub fn read_pair(cert: &Path, key: &Path, limit: u64, journal_dir: Option<&Path>) -> Result<PairBytes> {
    const ATTEMPTS: usize = 200;
    for attempt in 1..=ATTEMPTS {
        let dir = parent_of(cert);
        let linked = |p: &Path| fs::read_link(p).is_ok_and(|t| t == Path::new(DATA_LINK).join(file_name(p)));
        let snapshot = (parent_of(key) == dir && linked(cert) && linked(key)).then(|| current_snapshot(&dir)).flatten();
        let Some(snapshot) = snapshot else {
            let before = (identity(cert), identity(key));
            let pair = PairBytes::read(cert, key, limit)?;
            let stable = before == (identity(cert), identity(key));
            // A journal under a held lock is a commit in progress; without one it is a commit a
            // crash interrupted, which only the next writing command completes: no use waiting.
            let committing = journal_dir
                .is_some_and(|d| fs::symlink_metadata(d.join(JOURNAL_NAME)).is_ok() && crate::lock::is_held_in(d));
            if (stable && !committing) || attempt == ATTEMPTS {
                return Ok(pair);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            continue;
        };
        let snap = dir.join(&snapshot);
        let c = read_optional(&snap.join(file_name(cert)), limit, "certificate file");
        let k = read_optional(&snap.join(file_name(key)), limit, "key file");
        match (c, k) {
            (Ok(c), Ok(k)) if snap.is_dir() => return Ok(PairBytes { cert: c, key: k.map(Zeroizing::new) }),
            // The snapshot went away under us: a commit finished; read the new one.
            _ if !snap.is_dir() => continue,
            (c, k) => return Ok(PairBytes { cert: c?, key: k?.map(Zeroizing::new) }),
        }
    }
    PairBytes::read(cert, key, limit)
}

/// What tells one version of a file from the next: a replaced file is a new inode.
fn identity(path: &Path) -> Option<(u64, u64, i64, i64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec()))
}

/// A certificate file's and its key file's contents (`None`: absent); the key is zeroized on
/// drop.
#[derive(Default)]
pub struct PairBytes {
    /// The certificate file.
    pub cert: Option<Vec<u8>>,
    /// The key file.
    pub key: Option<Zeroizing<Vec<u8>>>,
}

impl PairBytes {
    fn read(cert: &Path, key: &Path, limit: u64) -> Result<Self> {
        Ok(Self {
            cert: read_optional(cert, limit, "certificate file")?,
            key: read_optional(key, limit, "key file")?.map(Zeroizing::new),
        })
    }
}

/// Reads `path`, which must exist (see [`read_optional`]).
pub fn read_required(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>> {
    read_optional(path, limit, what)?.ok_or_else(|| Error::Read {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
    })
}

/// The permission bits of `path` (without file type bits).
pub fn mode_of(path: &Path) -> Result<u32> {
    let meta = fs::metadata(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    Ok(meta.permissions().mode() & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_new_name_reads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::os::unix::fs::symlink("..data/new.crt", d.join("new.crt")).unwrap();
        assert_eq!(read_optional(&d.join("new.crt"), 10, "certificate").unwrap(), None);
    }

    #[test]
    fn bounded_reads_refuse_large_files_directories_and_dangling_links() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(read_optional(&d.join("absent"), 10, "certificate").unwrap(), None);
        fs::write(d.join("big"), vec![b'a'; 11]).unwrap();
        let err = read_optional(&d.join("big"), 10, "certificate").unwrap_err().to_string();
        assert!(err.contains("11 bytes") && err.contains("certificate"), "{err}");
        assert!(matches!(read_optional(d, 10, "certificate"), Err(Error::NotAFile { .. })));
        std::os::unix::fs::symlink(d.join("nowhere"), d.join("dangling")).unwrap();
        let err = read_optional(&d.join("dangling"), 10, "certificate").unwrap_err().to_string();
        assert!(err.contains("dangling symbolic link"), "{err}");
    }
}
