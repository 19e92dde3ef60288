//! An exclusive lock per cert dir, so that two kubepki processes never interleave their writes.
//!
//! The lock is an `flock` on `.kubepki.lock` in the cert dir: the kernel releases it when the
//! holder exits, even by SIGKILL, so a crashed run never leaves a stale lock. The file is
//! never written, so taking the lock changes nothing on disk.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The lock file's name inside the cert dir.
pub const LOCK_NAME: &str = ".kubepki.lock";

/// A held lock; released when dropped (or when the process dies: it is an `flock`).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock of `dir` (which must exist), waiting up to `timeout` for another holder.
    pub fn acquire(dir: &Path, timeout: Duration) -> Result<Self> {
        let path = dir.join(LOCK_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| Error::Write { path: path.clone(), source })?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if start.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(50).min(timeout.saturating_sub(start.elapsed())));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::Locked { path, waited_secs: start.elapsed().as_secs() });
                }
                Err(TryLockError::Error(source)) => return Err(Error::Write { path, source }),
            }
        }
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether a kubepki process holds the lock of `dir` right now: a read-only probe (a shared
/// `flock` tried and released at once) that creates nothing. Readers such as `check` use it
/// to tell a write in progress from an interrupted one.
pub fn is_held(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(LOCK_NAME)) else { return false };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_fails_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path(), Duration::ZERO).unwrap();
        let err = DirLock::acquire(dir.path(), Duration::from_millis(120)).unwrap_err().to_string();
        assert!(err.contains("locked by another kubepki process"), "{err}");
        assert!(is_held(dir.path()));
        drop(held);
        assert!(!is_held(dir.path()));
        DirLock::acquire(dir.path(), Duration::ZERO).unwrap();
    }
}
