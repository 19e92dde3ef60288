//! Staging directories: a directory that does not exist yet (a backup, a kubelet serving
//! directory of a bulk issue, a node's files) is made whole, with no journal. It is written
//! into a hidden sibling (`.<name>.kubepki-new`), made durable, and renamed into place: before
//! the rename nothing is visible, after it everything is complete, and a sibling a crash left
//! is removed by the next attempt or by [`recover`](super::recover). A new directory is never
//! merged into an existing one: that would need a journal, and the existing files may be
//! someone else's.

use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::durable::{FSYNC_EACH_UP_TO, Flusher, make_durable, sync_dir};
use super::failpoint::failpoint;
use super::{parent_of, tmp_path};
use crate::error::{Error, Result};

/// Creates the directory `dir` (which must not exist) holding `files` — paths relative to
/// `dir`, contents, modes — all or nothing, through a [`NewDir`]. Directories are created with
/// `dir_mode`; the parent of `dir` must exist.
pub fn create_dir_with(dir: &Path, dir_mode: u32, files: &[(PathBuf, &[u8], u32)]) -> Result<()> {
    if let Some((relative, ..)) = files.iter().find(|(relative, ..)| !is_plain_relative(relative)) {
        let reason = "not a plain relative path";
        return Err(Error::Write { path: relative.clone(), source: std::io::Error::other(reason) });
    }
    let new = NewDir::create(dir, dir_mode)?;
    let mut parents: Vec<&Path> = files.iter().filter_map(|(relative, ..)| relative.parent()).collect();
    parents.dedup();
    parents.into_iter().try_for_each(|parent| new.make_dir(parent))?;
    files.par_iter().try_for_each(|(relative, contents, mode)| new.write(relative, contents, *mode))?;
    new.commit()
}

/// A directory that does not exist yet, made whole: it is written into a hidden sibling
/// (`.<name>.kubepki-new`), which [`NewDir::commit`] makes durable and renames into place.
/// No journal is needed: before the rename nothing is visible, after it everything is
/// complete. Dropped without a commit (an error on the way), the sibling is removed; one left
/// by a crash is removed by the next [`NewDir::create`] for the same place.
///
/// [`NewDir::write`] may be called from many threads at once: a bulk issue writes 20,000
/// files. Each is created new, relative to the sibling (an open, a write and a close; its mode
/// set again only if the umask filtered it). Past `FSYNC_EACH_UP_TO` (64) entries, a thread syncs
/// the file system in the background while the writing goes on, so that the disk works while
/// the CPU does and the commit's last `syncfs` waits only for what came after the one before.
pub struct NewDir {
    dir: PathBuf,
    staging: PathBuf,
    root: File,
    mode: u32,
    /// How many files and directories were made in the sibling: past [`FSYNC_EACH_UP_TO`],
    /// the commit syncs the file system, else each of them.
    made: AtomicUsize,
    /// The first [`FSYNC_EACH_UP_TO`] of them, relative to the sibling.
    few: std::sync::Mutex<Vec<PathBuf>>,
    /// The background sync, started when there are more.
    flusher: std::sync::Mutex<Option<Flusher>>,
    /// Whether the sibling has been renamed into place.
    renamed: bool,
}

impl NewDir {
    /// Starts the directory `dir`, created with `mode` (exactly): `dir` must not exist, and its
    /// parent must.
    pub fn create(dir: &Path, mode: u32) -> Result<Self> {
        let staging = new_staging_dir(dir, mode)?;
        let opened =
            fs::set_permissions(&staging, fs::Permissions::from_mode(mode)).and_then(|()| File::open(&staging));
        match opened {
            Ok(root) => Ok(Self {
                dir: dir.to_owned(),
                staging,
                root,
                mode,
                made: AtomicUsize::new(0),
                few: std::sync::Mutex::new(Vec::new()),
                flusher: std::sync::Mutex::new(None),
                renamed: false,
            }),
            Err(source) => {
                let _ = fs::remove_dir_all(&staging);
                Err(Error::Write { path: staging, source })
            }
        }
    }

    /// Creates the subdirectory `relative` and its missing parents with the directory's mode
    /// (as filtered by the umask).
    pub fn make_dir(&self, relative: &Path) -> Result<()> {
        if !relative.as_os_str().is_empty() && !is_plain_relative(relative) {
            return Err(self.error(relative, std::io::Error::other("not a plain relative path")));
        }
        let mut level = PathBuf::new();
        for component in relative.components() {
            level.push(component);
            match rustix::fs::mkdirat(&self.root, &level, rustix::fs::Mode::from_raw_mode(self.mode)) {
                Ok(()) => self.made(&level)?,
                Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(self.error(&level, e.into())),
            }
        }
        Ok(())
    }

    /// Writes the file `relative`, which must be new (its directory must exist), with exactly
    /// `mode`.
    pub fn write(&self, relative: &Path, contents: &[u8], mode: u32) -> Result<()> {
        if !is_plain_relative(relative) {
            return Err(self.error(relative, std::io::Error::other("not a plain relative path")));
        }
        write_new_at(&self.root, relative, contents, mode).map_err(|e| self.error(relative, e))?;
        self.made(relative)
    }

    fn error(&self, relative: &Path, source: std::io::Error) -> Error {
        Error::Write { path: self.staging.join(relative), source }
    }

    /// Counts a new entry: keeps it while they are few, starts the background sync when they
    /// stop being so.
    fn made(&self, relative: &Path) -> Result<()> {
        let n = self.made.fetch_add(1, Ordering::Relaxed);
        // Invariant (both locks): nothing panics while holding them.
        if n < FSYNC_EACH_UP_TO {
            self.few.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(relative.to_owned());
        } else if n == FSYNC_EACH_UP_TO {
            let flusher = Flusher::start(&self.root).map_err(|e| self.error(Path::new(""), e))?;
            *self.flusher.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(flusher);
        }
        Ok(())
    }

    /// Makes everything written durable and renames the directory into place.
    pub fn commit(mut self) -> Result<()> {
        failpoint("newdir:written");
        let flusher = self.flusher.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if *self.made.get_mut() > FSYNC_EACH_UP_TO {
            // Everything is under the sibling, a directory just made: one file system.
            flusher
                .map_or(Ok(()), Flusher::stop)
                .and_then(|()| Ok(rustix::fs::syncfs(&self.root)?))
                .map_err(|e| self.error(Path::new(""), e))?;
        } else {
            let few = self.few.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
            let files: Vec<PathBuf> = few.iter().map(|p| self.staging.join(p)).collect();
            make_durable(files.iter().map(PathBuf::as_path), std::slice::from_ref(&self.staging))?;
        }
        failpoint("newdir:durable");
        fs::rename(&self.staging, &self.dir).map_err(|source| Error::Write { path: self.dir.clone(), source })?;
        self.renamed = true;
        failpoint("newdir:renamed");
        sync_dir(&parent_of(&self.dir))
    }
}

impl Drop for NewDir {
    fn drop(&mut self) {
        if let Some(flusher) = self.flusher.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            let _ = flusher.stop();
        }
        if !self.renamed {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// Whether `path` is relative and made only of names (no `..`, `.` or root).
fn is_plain_relative(path: &Path) -> bool {
    !path.as_os_str().is_empty() && path.components().all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Creates the file `relative` under the directory `at` — it must not exist — with exactly
/// `mode`, holding `contents` (unsynced).
fn write_new_at(at: &File, relative: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut file = File::from(rustix::fs::openat(at, relative, flags, Mode::from_raw_mode(mode))?);
    if !creates_exactly(mode) {
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    file.write_all(contents)
}

/// Whether a file created with `mode` gets exactly `mode`: the umask clears none of its bits.
/// The umask is read once from `/proc/self/status` (umask(2) cannot read it without setting
/// it, and the process has threads); when it cannot be read, modes are always set again.
fn creates_exactly(mode: u32) -> bool {
    static UMASK: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    let umask = UMASK.get_or_init(|| {
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let value = status.lines().find_map(|line| line.strip_prefix("Umask:"))?;
        u32::from_str_radix(value.trim(), 8).ok()
    });
    umask.is_some_and(|umask| umask & mode == 0)
}

/// Creates the hidden sibling in which the new directory `dir` is staged whole
/// (`.<name>.kubepki-new`, with `mode` as filtered by the umask), replacing one a crash left.
/// `dir` must not exist: a new directory is never merged into an existing one.
pub(super) fn new_staging_dir(dir: &Path, mode: u32) -> Result<PathBuf> {
    if fs::symlink_metadata(dir).is_ok() {
        return Err(Error::Write {
            path: dir.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the directory exists already"),
        });
    }
    let staging = tmp_path(dir);
    if fs::symlink_metadata(&staging).is_ok() {
        fs::remove_dir_all(&staging).map_err(|source| Error::Write { path: staging.clone(), source })?;
    }
    fs::DirBuilder::new()
        .mode(mode)
        .create(&staging)
        .map_err(|source| Error::Write { path: staging.clone(), source })?;
    Ok(staging)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsio::mode_of;

    #[test]
    fn a_directory_is_created_whole_or_not_at_all() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("backup");
        // A staging directory left by a crash is replaced.
        fs::create_dir(root.path().join(".backup.kubepki-new")).unwrap();
        fs::write(root.path().join(".backup.kubepki-new/stale"), b"x").unwrap();
        let files = [
            (PathBuf::from("etc/kubernetes/pki/a.key"), &b"key"[..], 0o600),
            (PathBuf::from("etc/kubernetes/pki/etcd/b.crt"), &b"crt"[..], 0o644),
            (PathBuf::from("manifest.json"), &b"[]"[..], 0o600),
        ];
        create_dir_with(&dir, 0o700, &files).unwrap();
        assert_eq!(fs::read(dir.join("etc/kubernetes/pki/a.key")).unwrap(), b"key");
        assert_eq!(mode_of(&dir.join("etc/kubernetes/pki/a.key")).unwrap(), 0o600);
        assert_eq!(mode_of(&dir.join("etc/kubernetes/pki/etcd/b.crt")).unwrap(), 0o644);
        assert_eq!(mode_of(&dir).unwrap(), 0o700);
        assert_eq!(mode_of(&dir.join("etc/kubernetes")).unwrap(), 0o700);
        let names: Vec<_> = fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["backup"]);
        // An existing directory is never merged into; an escaping path writes nothing.
        assert!(create_dir_with(&dir, 0o700, &files).is_err());
        let other = root.path().join("other");
        let escaping = [(PathBuf::from("a"), &b"1"[..], 0o600), (PathBuf::from("../evil"), &b"2"[..], 0o600)];
        assert!(create_dir_with(&other, 0o700, &escaping).is_err());
        let names: Vec<_> = fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["backup"]);
    }

    #[test]
    fn a_bulk_new_directory_is_written_from_many_threads_and_removed_on_error() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("serving");
        let new = NewDir::create(&dir, 0o755).unwrap();
        // More files than are fsynced one by one: the background sync runs.
        (0..200).into_par_iter().for_each(|i| {
            let node = PathBuf::from(format!("n{i}"));
            new.make_dir(&node).unwrap();
            new.write(&node.join("kubelet.key"), format!("key {i}").as_bytes(), 0o600).unwrap();
            new.write(&node.join("kubelet.crt"), format!("crt {i}").as_bytes(), 0o644).unwrap();
        });
        assert!(new.flusher.lock().unwrap().is_some());
        assert!(!dir.exists(), "nothing is visible before the commit");
        new.commit().unwrap();
        for i in [0, 99, 199] {
            assert_eq!(fs::read_to_string(dir.join(format!("n{i}/kubelet.crt"))).unwrap(), format!("crt {i}"));
            assert_eq!(mode_of(&dir.join(format!("n{i}/kubelet.key"))).unwrap(), 0o600);
            assert_eq!(mode_of(&dir.join(format!("n{i}/kubelet.crt"))).unwrap(), 0o644);
            assert_eq!(mode_of(&dir.join(format!("n{i}"))).unwrap(), 0o755);
        }
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 200);
        let names: Vec<_> = fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["serving"]);

        // A file written twice, into a directory not made, or escaping: an error each; dropped,
        // nothing is left and the background sync is stopped.
        let other = root.path().join("other");
        let new = NewDir::create(&other, 0o755).unwrap();
        for i in 0..100 {
            new.write(Path::new(&format!("f{i}")), b"1", 0o600).unwrap();
        }
        assert!(new.write(Path::new("f7"), b"2", 0o600).is_err());
        assert!(new.write(Path::new("d/f"), b"2", 0o600).is_err());
        assert!(new.write(Path::new("../f"), b"2", 0o600).is_err());
        assert!(new.make_dir(Path::new("../d")).is_err());
        drop(new);
        let names: Vec<_> = fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["serving"]);
        // The directory exists now: a new one of the same name is refused.
        assert!(NewDir::create(&dir, 0o755).is_err());
    }
}
