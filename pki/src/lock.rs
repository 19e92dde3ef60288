//! kubepki's own files for a cert dir — its lock and its journal — kept outside the cert dir
//! and the kubeconfig dir, which between runs hold exactly kubeadm's files.
//!
//! They live in the *state dir*, `<parent of the cert dir>/tmp/kubepki/<cert dir name>/`
//! (`/etc/kubernetes/tmp/kubepki/pki/` for kubeadm's defaults): beside kubeadm's own backups
//! in `/etc/kubernetes/tmp` and kubepki's. The lock is an `flock` on `kubepki.lock` there: the
//! kernel releases it when the holder exits, even by SIGKILL, so a crashed run never leaves a
//! stale lock. The file is never written, so taking the lock changes nothing kubeadm reads.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The lock file's name inside the state dir.
// Public for the test suite (which holds the lock by hand), not part of the API.
#[doc(hidden)]
pub const LOCK_NAME: &str = "kubepki.lock";

/// The state dir of `cert_dir`: `<parent>/tmp/kubepki/<name>` (made absolute, so that it
/// names the same place from any working directory).
pub fn state_dir(cert_dir: &Path) -> PathBuf {
    let abs = std::path::absolute(cert_dir).unwrap_or_else(|_| cert_dir.to_path_buf());
    let name = abs.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "root".into());
    let parent = abs.parent().unwrap_or(Path::new("/"));
    parent.join("tmp").join("kubepki").join(name)
}

/// A held lock; released when dropped (or when the process dies: it is an `flock`).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock of the cert dir `dir`, waiting up to `timeout` for another holder. Its
    /// state dir is created (0700) if needed.
    pub fn acquire(dir: &Path, timeout: Duration) -> Result<Self> {
        let state = state_dir(dir);
        crate::fsio::create_dir_all(&state, 0o700)?;
        let path = state.join(LOCK_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| Error::Write { path: path.clone(), source })?;
        let start = Instant::now();
        let mut waited = false;
        let taken = loop {
            match file.try_lock() {
                Ok(()) => break Ok(()),
                Err(TryLockError::WouldBlock) if start.elapsed() < timeout => {
                    waited = true;
                    let what = format!("the lock of {} held by another kubepki run", dir.display());
                    crate::progress::waiting(&what, start.elapsed(), timeout);
                    std::thread::sleep(Duration::from_millis(50).min(timeout.saturating_sub(start.elapsed())));
                }
                Err(TryLockError::WouldBlock) => {
                    break Err(Error::Locked { path: path.clone(), waited_secs: start.elapsed().as_secs() });
                }
                Err(TryLockError::Error(source)) => break Err(Error::Write { path: path.clone(), source }),
            }
        };
        if waited {
            crate::progress::wait_over();
        }
        taken.map(|()| Self { _file: file, path })
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
    is_held_in(&state_dir(dir))
}

/// [`is_held`], given the state dir itself.
pub(crate) fn is_held_in(state: &Path) -> bool {
    let Ok(file) = File::open(state.join(LOCK_NAME)) else { return false };
    match file.try_lock_shared() {
        Ok(()) => {
            // Best effort: closing the file releases the lock anyway.
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
        let cert_dir = dir.path().join("pki");
        let held = DirLock::acquire(&cert_dir, Duration::ZERO).unwrap();
        let err = DirLock::acquire(&cert_dir, Duration::from_millis(120)).unwrap_err().to_string();
        assert!(err.contains("locked by another kubepki process"), "{err}");
        assert!(is_held(&cert_dir));
        drop(held);
        assert!(!is_held(&cert_dir));
        DirLock::acquire(&cert_dir, Duration::ZERO).unwrap();
    }

    #[test]
    fn the_lock_lives_outside_the_cert_dir() {
        let dir = tempfile::tempdir().unwrap();
        let cert_dir = dir.path().join("pki");
        std::fs::create_dir(&cert_dir).unwrap();
        let held = DirLock::acquire(&cert_dir, Duration::ZERO).unwrap();
        assert_eq!(held.path(), dir.path().join("tmp/kubepki/pki/kubepki.lock"));
        assert_eq!(std::fs::read_dir(&cert_dir).unwrap().count(), 0, "nothing in the cert dir");
        assert_eq!(state_dir(Path::new("/etc/kubernetes/pki")), Path::new("/etc/kubernetes/tmp/kubepki/pki"));
    }
}
