//! Durability: when and how what kubepki writes reaches the disk. A renamed file survives a
//! power cut only once its contents and the entry of the directory holding its name are
//! synced, and a commit point means something only once everything it commits to is.
//!
//! The strategy is chosen by count, since an fsync costs a file system journal commit: a few
//! dozen files are synced one fsync each but concurrently ([`FSYNC_THREADS`] at once: they
//! share journal commits, so a transaction's thirty files cost about one commit); past
//! [`FSYNC_EACH_UP_TO`] (a bulk issue writes thousands) one `syncfs` per file system syncs
//! them all, and a [`Flusher`] may sync in the background while they are still being written.
//! Directories a transaction creates are made unsynced and made durable with its files.
//!
//! [`replace_file`] and [`create_dir_all`] are the single-step writes that need no journal: a
//! file replaced on its own (temporary file, fsync, rename, fsync the directory), and
//! directories with each changed parent synced.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{parent_of, tmp_path};
use crate::error::{Error, Result};

/// Creates `dir` and missing parents with `mode` (0755 as kubeadm's cert dir), fsyncing each
/// parent whose entry changed.
pub fn create_dir_all(dir: &Path, mode: u32) -> Result<()> {
    create_dir_all_unsynced(dir, mode)?.iter().try_for_each(|parent| sync_dir(parent))
}

/// [`create_dir_all`] without the fsyncs, for a directory a [`Transaction`](super::Transaction)
/// then writes into: returns the directories whose entries changed, for
/// [`Transaction::sync_also`](super::Transaction::sync_also).
pub fn create_dir_all_unsynced(dir: &Path, mode: u32) -> Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    create_dirs(dir, mode, &mut changed)?;
    Ok(changed)
}

/// Creates `dir` and missing parents with `mode`, unsynced, adding to `changed` each directory
/// whose entries changed (the parent of each directory made), shallowest first: a transaction
/// makes them durable before its commit point with everything else it staged (a bulk issue
/// creates thousands of directories; one fsync each cost a journal commit each).
/// Returns whether `dir` itself was created (it is then empty).
pub(super) fn create_dirs(dir: &Path, mode: u32, changed: &mut Vec<PathBuf>) -> Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        if parent.exists() && !parent.is_dir() {
            let reason = format!("{} is not a directory", parent.display());
            return Err(Error::Write { path: dir.to_owned(), source: std::io::Error::other(reason) });
        }
        create_dirs(parent, mode, changed)?;
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(false),
        Err(source) => return Err(Error::Write { path: dir.to_owned(), source }),
    }
    changed.push(parent_of(dir));
    Ok(true)
}

/// fsyncs a directory so renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fsync_path(dir)
}

/// Writes `contents` to `path` (created with `mode`, truncating any leftover) and fsyncs it.
fn write_synced(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    write_unsynced(path, contents, mode)?;
    fsync_path(path)
}

/// Writes `contents` to `path`, created with exactly `mode`, without syncing.
pub(super) fn write_unsynced(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let write_err = |source| Error::Write { path: path.to_owned(), source };
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path).map_err(write_err)?;
    // The mode given to open() is filtered by the umask; set it exactly.
    f.set_permissions(fs::Permissions::from_mode(mode)).map_err(write_err)?;
    f.write_all(contents).map_err(write_err)
}

/// Replaces one file atomically on its own (temporary file, fsync, rename, fsync directory).
pub fn replace_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let tmp = tmp_path(path);
    write_synced(&tmp, contents, mode)?;
    fs::rename(&tmp, path).map_err(|source| Error::Write { path: path.to_owned(), source })?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// How many staged files are made durable one fsync each; more get one `syncfs` per file
/// system, which also waits for every other dirty page there (other programs' too).
pub(super) const FSYNC_EACH_UP_TO: usize = 64;

/// How many fsyncs are in flight at once: concurrent fsyncs on one file system share its
/// journal commits (ext4, XFS), so a transaction's thirty files cost about one commit, not
/// thirty in a row.
const FSYNC_THREADS: usize = 16;

/// Makes `files` and the entries of `dirs` durable.
pub(super) fn make_durable<'a>(files: impl ExactSizeIterator<Item = &'a Path>, dirs: &[PathBuf]) -> Result<()> {
    if files.len() > FSYNC_EACH_UP_TO || dirs.len() > FSYNC_EACH_UP_TO {
        return sync_filesystems(dirs);
    }
    let mut paths: Vec<&Path> = files.collect();
    paths.extend(dirs.iter().map(PathBuf::as_path));
    if paths.len() <= 1 {
        return paths.into_iter().try_for_each(fsync_path);
    }
    let next = AtomicUsize::new(0);
    let worker = || -> Result<()> {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = paths.get(i) else { return Ok(()) };
            fsync_path(path)?;
        }
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..paths.len().min(FSYNC_THREADS)).map(|_| scope.spawn(worker)).collect();
        let mut result = worker();
        for helper in helpers {
            // Keep the first error.
            result = result.and(helper.join().expect("invariant: a worker only fsyncs, which cannot panic"));
        }
        result
    })
}

/// fsync of a file or a directory (opened read-only: enough for fsync on Linux).
fn fsync_path(path: &Path) -> Result<()> {
    let path = if path.as_os_str().is_empty() { Path::new(".") } else { path };
    File::open(path).and_then(|h| h.sync_all()).map_err(|source| Error::Write { path: path.to_owned(), source })
}

/// Makes everything written under `dirs` durable: one `syncfs` per file system they are on.
fn sync_filesystems(dirs: &[PathBuf]) -> Result<()> {
    let mut devices = Vec::new();
    for dir in dirs {
        let write_err = |source| Error::Write { path: dir.clone(), source };
        let meta = fs::metadata(dir).map_err(write_err)?;
        if devices.contains(&meta.dev()) {
            continue;
        }
        devices.push(meta.dev());
        let handle = File::open(dir).map_err(write_err)?;
        rustix::fs::syncfs(&handle).map_err(|e| write_err(e.into()))?;
    }
    Ok(())
}

/// A thread that syncs one file system over and over, pausing between syncs, until stopped
/// or until a sync fails.
pub(super) struct Flusher {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Flusher {
    /// The pause between two syncs (a sync with nothing to write returns at once).
    const PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

    pub(super) fn start(on: &File) -> std::io::Result<Self> {
        let on = on.try_clone()?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new().name("kubepki-flusher".into()).spawn(move || {
            while !stopped.load(Ordering::Acquire) {
                // The error is returned, not left for the commit's own sync: both syncs are on
                // one open file, whose write-back error is reported once.
                rustix::fs::syncfs(&on)?;
                std::thread::park_timeout(Self::PAUSE);
            }
            Ok(())
        })?;
        Ok(Self { stop, thread })
    }

    /// Stops the thread, waits for its sync in progress, and returns the first error of its
    /// syncs.
    pub(super) fn stop(self) -> std::io::Result<()> {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        self.thread.join().expect("invariant: the thread only syncs and parks; it cannot panic")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn making_directories_records_each_parent_whose_entries_changed() {
        let root = tempfile::tempdir().unwrap();
        let mut changed = Vec::new();
        assert!(create_dirs(&root.path().join("a/b/c"), 0o755, &mut changed).unwrap());
        let want: Vec<PathBuf> = ["", "a", "a/b"].iter().map(|p| root.path().join(p)).collect();
        assert_eq!(changed.iter().map(|p| p.components().collect::<PathBuf>()).collect::<Vec<_>>(), want);
        // Existing levels change nothing; a file in the way is an error.
        changed.clear();
        assert!(create_dirs(&root.path().join("a/b/d"), 0o755, &mut changed).unwrap());
        assert_eq!(changed, [root.path().join("a/b")]);
        assert!(!create_dirs(&root.path().join("a/b/d"), 0o755, &mut changed).unwrap());
        fs::write(root.path().join("f"), b"").unwrap();
        assert!(create_dirs(&root.path().join("f/g"), 0o755, &mut changed).is_err());
    }
}
