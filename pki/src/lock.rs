//! An exclusive lock per cert dir, so that two kubepki processes never interleave their writes.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
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
        let mut file = OpenOptions::new()
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
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    return Err(Error::Locked {
                        path,
                        holder: if holder.is_empty() { "unknown".into() } else { holder.to_owned() },
                        waited_secs: start.elapsed().as_secs(),
                    });
                }
                Err(TryLockError::Error(source)) => return Err(Error::Write { path, source }),
            }
        }
        // Record the holder for the next process's error message.
        let _ = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| write!(file, "{}", std::process::id()));
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
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
        assert!(err.contains("locked by another kubepki process") && err.contains(&std::process::id().to_string()), "{err}");
        drop(held);
        DirLock::acquire(dir.path(), Duration::ZERO).unwrap();
    }
}
