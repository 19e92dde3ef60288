//! Careful file I/O: bounded reads, and multi-file writes that no crash can leave half done.
//!
//! # Plain files, a journal outside
//!
//! The cert dir and the kubeconfig dir hold exactly kubeadm's files between runs: regular files
//! with kubeadm's names and modes, nothing else (kubeadm, kube-bench's CIS file checks and
//! operators' scripts read them as such). A certificate and its key are two files, and two
//! renames are not one atomic step, so crash safety comes from a journal kept *outside* them,
//! in the cert dir's state dir ([`crate::lock::state_dir`]).
//!
//! # The commit protocol
//!
//! 1. Every new file is written beside its place under a temporary name
//!    (`.<name>.kubepki-new`), with its final mode, and the journal — the renames to do — under
//!    a temporary name in the journal directory; then all of them are made durable: a few dozen
//!    files with concurrent fsyncs (they share journal commits), more with one `syncfs` per file
//!    system (a bulk issue writes thousands).
//! 2. The journal is renamed into place (`.kubepki-journal`) and its directory synced: **the
//!    commit point**.
//! 3. The renames are carried out in order (a certificate, then its key), the directories
//!    synced, and the journal removed.
//!
//! A crash before step 2 leaves the old files plus staged ones, which [`recover`] deletes. A
//! crash after it leaves a journal, which [`recover`] completes: every pair ends old or new,
//! never mixed, whatever the moment of the crash. Every kubepki command that writes runs
//! [`recover`] under the cert dir's lock before it reads anything.
//!
//! A *reader* that opens a certificate and then its key while a commit renames them can see a
//! certificate with the other key: the window is the two renames in one directory
//! (microseconds, measured in docs/architecture.md). Renaming the certificate first, in the
//! order Go's `tls.LoadX509KeyPair` reads (etcd reads its pair on every handshake), narrows it
//! further: a reader as quick as the writer reads both old or both new. A Go server that does
//! read a mixed pair fails that one handshake, and clients retry; kubeadm's own `certs renew`
//! rewrites both files in place, a longer window in which a file can even be read empty.
//!
//! # The earlier linked layout
//!
//! kubepki once kept pairs in versioned directories: visible names were symlinks into a
//! snapshot named by the `..data` link. Such trees are still read ([`read_pair`] reads both
//! files of a pair from one snapshot), and [`recover`] turns them back into plain files on the
//! next write: each link is replaced by a hard link to the file it names — the same inode and
//! contents, so every step is safe — then `..data` and the snapshots are removed.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The largest certificate or key file kubepki reads (1 MiB); larger ones are refused unread.
pub const MAX_PEM_FILE: u64 = 1 << 20;
/// The largest kubeconfig or configuration file kubepki reads (4 MiB).
pub const MAX_CONFIG_FILE: u64 = 4 << 20;

/// The journal's file name (in the journal directory: the cert dir's state dir).
pub const JOURNAL_NAME: &str = ".kubepki-journal";
/// The link to the current snapshot of a directory in the earlier linked layout (see the
/// module docs), still read and turned into plain files on the next write.
pub const DATA_LINK: &str = "..data";
/// The suffix of a staged file or directory (hidden: `.<name>.kubepki-new`).
pub const TMP_SUFFIX: &str = ".kubepki-new";

/// Whether `target` (a symlink's target) points into a versioned directory's snapshot.
fn is_pending_target(target: &Path) -> bool {
    target.starts_with(DATA_LINK)
}

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

/// Creates `dir` and missing parents with `mode` (0755 as kubeadm's cert dir), fsyncing each
/// parent whose entry changed.
pub fn create_dir_all(dir: &Path, mode: u32) -> Result<()> {
    create_dir_all_unsynced(dir, mode)?.iter().try_for_each(|parent| sync_dir(parent))
}

/// [`create_dir_all`] without the fsyncs, for a directory a [`Transaction`] then writes into:
/// returns the directories whose entries changed, for [`Transaction::sync_also`].
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
fn create_dirs(dir: &Path, mode: u32, changed: &mut Vec<PathBuf>) -> Result<bool> {
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

fn tmp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}{TMP_SUFFIX}"))
}

/// Writes `contents` to `path` (created with `mode`, truncating any leftover) and fsyncs it.
fn write_synced(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    write_unsynced(path, contents, mode)?;
    fsync_path(path)
}

/// Writes `contents` to `path`, created with exactly `mode`, without syncing.
fn write_unsynced(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let write_err = |source| Error::Write { path: path.to_owned(), source };
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path).map_err(write_err)?;
    // The mode given to open() is filtered by the umask; set it exactly.
    f.set_permissions(fs::Permissions::from_mode(mode)).map_err(write_err)?;
    f.write_all(contents).map_err(write_err)
}

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
/// set again only if the umask filtered it). Past [`FSYNC_EACH_UP_TO`] entries, a thread syncs
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

/// A thread that syncs one file system over and over, pausing between syncs, until stopped
/// or until a sync fails.
struct Flusher {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Flusher {
    /// The pause between two syncs (a sync with nothing to write returns at once).
    const PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

    fn start(on: &File) -> std::io::Result<Self> {
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
    fn stop(self) -> std::io::Result<()> {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        // Invariant: the thread only syncs and parks; it cannot panic.
        self.thread.join().unwrap_or(Ok(()))
    }
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
fn new_staging_dir(dir: &Path, mode: u32) -> Result<PathBuf> {
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

/// Replaces one file atomically on its own (temporary file, fsync, rename, fsync directory).
pub fn replace_file(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let tmp = tmp_path(path);
    write_synced(&tmp, contents, mode)?;
    fs::rename(&tmp, path).map_err(|source| Error::Write { path: path.to_owned(), source })?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// One step of a commit, as the journal records it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum Step {
    /// Rename `from` to `to` (skipped if `from` is gone: an earlier attempt did it).
    Rename { from: PathBuf, to: PathBuf },
    /// Delete a directory (a snapshot of the earlier linked layout: only journals written by
    /// an earlier kubepki hold this step).
    RemoveDir { path: PathBuf },
    /// Delete a file (skipped if it is gone: an earlier attempt did it).
    RemoveFile { path: PathBuf },
}

#[derive(Debug, Deserialize, Serialize)]
struct Journal {
    version: u32,
    steps: Vec<Step>,
}

/// How a file reaches its place.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum WriteKind {
    /// A rename over the target.
    Plain,
    /// The file is removed (restoring a backup of a run that created it).
    Remove,
    /// Its directory is new: it is staged whole and renamed into place with all its files.
    NewDir,
}

struct PendingWrite {
    path: PathBuf,
    contents: Zeroizing<Vec<u8>>,
    mode: u32,
    kind: WriteKind,
}

/// A set of files to replace together (see the module docs for the protocol).
pub struct Transaction {
    journal_dir: PathBuf,
    writes: Vec<PendingWrite>,
    /// Directories made durable with the staged files, besides theirs.
    also_sync: Vec<PathBuf>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction").field("journal_dir", &self.journal_dir).field("files", &self.paths()).finish()
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The snapshot `..data` points at, if the directory is in the earlier linked layout.
fn current_snapshot(dir: &Path) -> Option<String> {
    fs::read_link(dir.join(DATA_LINK)).ok().map(|t| t.to_string_lossy().into_owned())
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|source| Error::Write { path: to.to_owned(), source })
}

/// Turns a directory of the earlier linked layout back into plain files (see the module
/// docs): each `name -> ..data/name` link becomes a hard link to the file it names, a link to
/// a name its snapshot lacks (a new name of a commit that never happened) is removed, then
/// `..data` and the snapshots go. Every step leaves each visible name with the contents it
/// had, so a crash anywhere is safe and the next run finishes the job. Returns the names made
/// plain.
fn flatten(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut flattened = Vec::new();
    let entries = fs::read_dir(dir).map_err(|source| Error::Read { path: dir.to_owned(), source })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let linked = fs::read_link(&path).is_ok_and(|t| t == Path::new(DATA_LINK).join(&name));
        if name.starts_with('.') || !linked {
            continue;
        }
        let real = dir.join(DATA_LINK).join(&name);
        if fs::symlink_metadata(&real).is_ok_and(|m| m.is_file()) {
            let staged = tmp_path(&path);
            let _ = fs::remove_file(&staged);
            fs::hard_link(&real, &staged).map_err(|source| Error::Write { path: staged.clone(), source })?;
            rename(&staged, &path)?;
            flattened.push(path);
        } else {
            fs::remove_file(&path).map_err(|source| Error::Write { path: path.clone(), source })?;
        }
        failpoint("flatten:one");
    }
    sync_dir(dir)?;
    let data = dir.join(DATA_LINK);
    if fs::symlink_metadata(&data).is_ok() {
        fs::remove_file(&data).map_err(|source| Error::Write { path: data.clone(), source })?;
    }
    remove_snapshots(dir)?;
    sync_dir(dir)?;
    Ok(flattened)
}

/// Removes the snapshot directories (`..<stamp>`) of `dir`.
fn remove_snapshots(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|source| Error::Read { path: dir.to_owned(), source })?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("..") && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(|source| Error::Write { path, source })?;
        }
    }
    Ok(())
}

impl Transaction {
    /// An empty transaction whose journal lives in `journal_dir`: the cert dir's state dir
    /// ([`crate::lock::state_dir`]) for writes to the cert dir and kubeconfigs. It is created
    /// (0700) if needed.
    pub fn new(journal_dir: impl Into<PathBuf>) -> Self {
        Self { journal_dir: journal_dir.into(), writes: Vec::new(), also_sync: Vec::new() }
    }

    /// Also makes `dirs` durable before the commit point, with the staged files: directories
    /// whose entries changed for this transaction before it began (the cert dir made by
    /// `init`, from [`create_dir_all_unsynced`]).
    pub fn sync_also(&mut self, dirs: impl IntoIterator<Item = PathBuf>) {
        self.also_sync.extend(dirs);
    }

    /// Adds a file, replaced by a rename at the commit (a certificate, its key, a kubeconfig,
    /// a backup). Files are renamed in the order they were added: add a certificate before its
    /// key. Contents are zeroized when the transaction is dropped.
    pub fn add(&mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>, mode: u32) {
        self.writes.push(PendingWrite {
            path: path.into(),
            contents: Zeroizing::new(contents.into()),
            mode,
            kind: WriteKind::Plain,
        });
    }

    /// Removes a file at the commit, in order with the other steps (a backup's restore removes
    /// what the run it undoes created).
    pub fn remove(&mut self, path: impl Into<PathBuf>) {
        self.writes.push(PendingWrite {
            path: path.into(),
            contents: Zeroizing::new(Vec::new()),
            mode: 0,
            kind: WriteKind::Remove,
        });
    }

    /// Adds a file of a directory that does not exist yet (a kubelet serving directory of a
    /// bulk issue): the directory is staged whole beside its final place and appears with all
    /// its files in one rename, so no reader and no crash sees a key without its certificate.
    /// The commit fails, writing nothing, if the directory exists by then.
    pub fn add_in_new_dir(&mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>, mode: u32) {
        self.writes.push(PendingWrite {
            path: path.into(),
            contents: Zeroizing::new(contents.into()),
            mode,
            kind: WriteKind::NewDir,
        });
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The files to be written, in order.
    pub fn paths(&self) -> Vec<&Path> {
        self.writes.iter().map(|w| w.path.as_path()).collect()
    }

    /// Writes every file, or none: on an error before the commit point everything staged is
    /// removed and the old files are untouched.
    pub fn commit(self) -> Result<Vec<PathBuf>> {
        if self.writes.is_empty() {
            return Ok(Vec::new());
        }
        failpoint("commit:begin");
        let mut staged: Vec<PathBuf> = Vec::new();
        let (steps, staged_journal) = match self.stage(&mut staged) {
            Ok(staged) => staged,
            Err(e) => {
                discard(&staged);
                return Err(e);
            }
        };
        // The commit point: the journal, staged and synced with the files, is renamed into place.
        let journal = self.journal_dir.join(JOURNAL_NAME);
        if let Err(e) = rename(&staged_journal, &journal).and_then(|()| sync_dir(&self.journal_dir)) {
            discard(&staged);
            return Err(e);
        }
        failpoint("commit:journaled");
        apply(&journal, &steps)?;
        Ok(self.writes.into_iter().map(|w| w.path).collect())
    }

    /// Writes the temporary files and the journal of the commit's renames under a temporary
    /// name, and makes them durable; returns the steps and the journal's path.
    fn stage(&self, staged: &mut Vec<PathBuf>) -> Result<(Vec<Step>, PathBuf)> {
        // A new directory is not created in place: its parent is, and it is staged beside.
        let dirs = parent_dirs(self.writes.iter().map(|w| match w.kind {
            WriteKind::NewDir => w.path.parent().unwrap_or(&w.path),
            WriteKind::Plain | WriteKind::Remove => w.path.as_path(),
        }));
        // Unsynced: make_durable below makes the new directories' entries durable before the
        // commit point.
        let mut changed = Vec::new();
        for dir in &dirs {
            create_dirs(dir, 0o755, &mut changed)?;
        }
        create_dirs(&self.journal_dir, 0o700, &mut changed)?;
        let mut steps = Vec::new();
        let mut files: Vec<(PathBuf, &PendingWrite)> = Vec::new();
        for w in &self.writes {
            match w.kind {
                WriteKind::Plain => {
                    let tmp = tmp_path(&w.path);
                    staged.push(tmp.clone());
                    steps.push(Step::Rename { from: tmp.clone(), to: w.path.clone() });
                    files.push((tmp, w));
                }
                WriteKind::Remove => steps.push(Step::RemoveFile { path: w.path.clone() }),
                WriteKind::NewDir => {}
            }
        }
        let mut new_dirs: BTreeMap<PathBuf, Vec<&PendingWrite>> = BTreeMap::new();
        for w in self.writes.iter().filter(|w| w.kind == WriteKind::NewDir) {
            new_dirs.entry(parent_of(&w.path)).or_default().push(w);
        }
        for (dir, writes) in &new_dirs {
            let staging = new_staging_dir(dir, 0o755)?;
            staged.push(staging.clone());
            steps.push(Step::Rename { from: staging.clone(), to: dir.clone() });
            files.extend(writes.iter().map(|w| (staging.join(file_name(&w.path)), *w)));
        }
        // The journal is written with the files (its fsync shares their round).
        let journal = tmp_path(&self.journal_dir.join(JOURNAL_NAME));
        let body = serde_json::to_vec(&Journal { version: 3, steps: steps.clone() }).unwrap_or_default();
        staged.push(journal.clone());
        let writes: Vec<(&Path, &[u8], u32)> = files
            .iter()
            .map(|(path, w)| (path.as_path(), w.contents.as_slice(), w.mode))
            .chain([(journal.as_path(), body.as_slice(), 0o600)])
            .collect();
        // File contents are written in parallel, then made durable: a few files one fsync each
        // (bounded cost on a busy disk), many with one syncfs per file system (a bulk issue
        // writes thousands).
        writes.par_iter().try_for_each(|(path, contents, mode)| write_unsynced(path, contents, *mode))?;
        failpoint("commit:staged");
        let mut touched: Vec<PathBuf> = dirs.clone();
        touched.extend(changed);
        touched.extend(self.also_sync.iter().cloned());
        touched.extend(writes.iter().map(|(path, ..)| parent_of(path)));
        touched.sort();
        touched.dedup();
        make_durable(writes.iter().map(|(path, ..)| *path), &touched)?;
        Ok((steps, journal))
    }
}

/// Removes what an unfinished commit staged.
fn discard(staged: &[PathBuf]) {
    for p in staged {
        if p.is_dir() && !p.is_symlink() {
            let _ = fs::remove_dir_all(p);
        } else {
            let _ = fs::remove_file(p);
        }
    }
}

/// The distinct parent directories of `paths`, in order of first appearance (a set beside the
/// list: a bulk issue has ten thousand).
fn parent_dirs<'a>(paths: impl Iterator<Item = &'a Path>) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for p in paths {
        let dir = parent_of(p);
        if seen.insert(dir.clone()) {
            dirs.push(dir);
        }
    }
    dirs
}

/// How many staged files are made durable one fsync each; more get one `syncfs` per file
/// system, which also waits for every other dirty page there (other programs' too).
const FSYNC_EACH_UP_TO: usize = 64;

/// How many fsyncs are in flight at once: concurrent fsyncs on one file system share its
/// journal commits (ext4, XFS), so a transaction's thirty files cost about one commit, not
/// thirty in a row.
const FSYNC_THREADS: usize = 16;

/// Makes `files` and the entries of `dirs` durable.
fn make_durable<'a>(files: impl ExactSizeIterator<Item = &'a Path>, dirs: &[PathBuf]) -> Result<()> {
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
            // Invariant: a worker only returns (fsync cannot panic); keep the first error.
            let r = helper.join().unwrap_or(Ok(()));
            result = result.and(r);
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

fn apply(journal: &Path, steps: &[Step]) -> Result<()> {
    // The distinct directories renamed into, for the sync (not `dedup`: they repeat apart).
    let (mut dirs, mut seen) = (Vec::new(), std::collections::HashSet::new());
    for step in steps {
        match step {
            // symlink_metadata: a staged link may dangle until its snapshot is swapped in.
            Step::Rename { from, to } => {
                if fs::symlink_metadata(from).is_ok() {
                    rename(from, to)?;
                }
                let dir = parent_of(to);
                if seen.insert(dir.clone()) {
                    dirs.push(dir);
                }
            }
            Step::RemoveDir { path } => {
                if path.is_dir() {
                    fs::remove_dir_all(path).map_err(|source| Error::Write { path: path.clone(), source })?;
                }
            }
            Step::RemoveFile { path } => {
                if fs::symlink_metadata(path).is_ok() {
                    fs::remove_file(path).map_err(|source| Error::Write { path: path.clone(), source })?;
                }
                let dir = parent_of(path);
                if seen.insert(dir.clone()) {
                    dirs.push(dir);
                }
            }
        }
        failpoint("commit:renamed-one");
    }
    make_durable(std::iter::empty(), &dirs)?;
    failpoint("commit:renamed-all");
    fs::remove_file(journal).map_err(|source| Error::Write { path: journal.to_owned(), source })?;
    sync_dir(journal.parent().unwrap_or(Path::new(".")))
}

/// What [`recover`] found.
#[derive(Debug, Default, Eq, PartialEq)]
pub struct Recovery {
    /// Files whose interrupted replacement was completed.
    pub completed: Vec<PathBuf>,
    /// Staged files of an uncommitted transaction that were removed.
    pub discarded: Vec<PathBuf>,
    /// Links of the earlier linked layout turned back into plain files.
    pub flattened: Vec<PathBuf>,
}

/// Completes a transaction interrupted after its commit point and removes what one interrupted
/// before it staged: the journal in `journal_dir` (and one an earlier kubepki left in `deep`
/// itself), staged files in `deep` and its subdirectories (the cert dir and `etcd/`) and in
/// the directories of `flat` themselves (the kubeconfig dir, whose subdirectories — the cert
/// dir, backups — are not walked). Directories of the earlier linked layout under `deep` are
/// turned into plain files.
pub fn recover(journal_dir: &Path, deep: &Path, flat: &[&Path]) -> Result<Recovery> {
    let mut out = Recovery::default();
    for dir in [journal_dir, deep] {
        let journal_path = dir.join(JOURNAL_NAME);
        let Some(body) = read_optional(&journal_path, MAX_CONFIG_FILE, "journal")? else { continue };
        let journal: Journal = serde_json::from_slice(&body).map_err(|e| Error::Read {
            path: journal_path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        apply(&journal_path, &journal.steps)?;
        out.completed.extend(journal.steps.into_iter().filter_map(|s| match s {
            Step::Rename { to, .. } if file_name(&to) != DATA_LINK => Some(to),
            _ => None,
        }));
    }
    // (directory, walk its subdirectories)
    let mut dirs: Vec<(PathBuf, bool)> = flat.iter().map(|p| (p.to_path_buf(), false)).collect();
    dirs.push((journal_dir.to_path_buf(), false));
    dirs.push((deep.to_path_buf(), true));
    let mut seen: Vec<PathBuf> = Vec::new();
    while let Some((dir, walk)) = dirs.pop() {
        if seen.contains(&dir) || !dir.is_dir() {
            continue;
        }
        seen.push(dir.clone());
        if current_snapshot(&dir).is_some() {
            out.flattened.extend(flatten(&dir)?);
        }
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let (path, name) = (entry.path(), entry.file_name().to_string_lossy().into_owned());
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() && !name.starts_with('.') {
                if walk {
                    dirs.push((path, true));
                }
            } else if kind.is_dir() && name.starts_with('.') && name.ends_with(TMP_SUFFIX) {
                // A new directory staged by a commit that never happened.
                fs::remove_dir_all(&path).map_err(|source| Error::Write { path: path.clone(), source })?;
                out.discarded.push(path);
            } else if kind.is_dir() && name.starts_with("..") {
                // A snapshot of the earlier linked layout that no `..data` names any more.
                fs::remove_dir_all(&path).map_err(|source| Error::Write { path: path.clone(), source })?;
                out.discarded.push(path);
            } else if !kind.is_dir() && name.starts_with('.') && name.ends_with(TMP_SUFFIX) {
                fs::remove_file(&path).map_err(|source| Error::Write { path: path.clone(), source })?;
                out.discarded.push(path);
            }
        }
    }
    Ok(out)
}

/// In builds with the `failpoints` feature (test builds: the `kubepki` package's tests enable
/// it), `KUBEPKI_FAILPOINT=<name>[@<n>]` SIGKILLs the process the n-th time (default: first) the
/// named point is reached. The points: `commit:begin`, `flatten:one` (after each link of the
/// earlier linked layout is made a plain file), `commit:staged` (everything staged), `commit:journaled`
/// (the commit point passed), `commit:renamed-one` (after each step of the journal, also
/// during recovery), `commit:renamed-all` (before the journal is removed); and a rotation's
/// steps after its write: `rotate:pending-stored` (what it owes recorded), `rotate:hook-done`,
/// `rotate:verified` (before the record is removed).
/// Crash-safety tests use them to stop a write at every step.
#[cfg(feature = "failpoints")]
pub fn failpoint(name: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static HITS: AtomicUsize = AtomicUsize::new(0);
    let Ok(spec) = std::env::var("KUBEPKI_FAILPOINT") else { return };
    let (want, nth) = match spec.rsplit_once('@') {
        Some((w, n)) => (w, n.parse().unwrap_or(1)),
        None => (spec.as_str(), 1),
    };
    if want == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        // SIGKILL: no unwinding, no destructors, no buffered writes flushed — a power cut as
        // far as the file system state of this process is concerned.
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}

/// Failpoints compile to nothing without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn failpoint(_name: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn plain_transaction_writes_all_files_with_their_modes_and_leaves_no_journal() {
        let dir = tempfile::tempdir().unwrap();
        let (certs, state) = (dir.path().join("pki"), dir.path().join("state"));
        let mut tx = Transaction::new(&state);
        tx.add(certs.join("etcd/server.key"), b"key".to_vec(), 0o600);
        tx.add(certs.join("etcd/server.crt"), b"crt".to_vec(), 0o644);
        let written = tx.commit().unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(fs::read(certs.join("etcd/server.key")).unwrap(), b"key");
        assert_eq!(mode_of(&certs.join("etcd/server.key")).unwrap(), 0o600);
        assert_eq!(mode_of(&certs.join("etcd/server.crt")).unwrap(), 0o644);
        assert!(!state.join(JOURNAL_NAME).exists());
        assert_eq!(mode_of(&state).unwrap(), 0o700);
        assert_eq!(fs::read_dir(certs.join("etcd")).unwrap().count(), 2);
        assert_eq!(fs::read_dir(&certs).unwrap().count(), 1, "only etcd/: no journal, no link");
    }

    #[test]
    fn pairs_are_replaced_as_plain_files_with_the_journal_outside() {
        let dir = tempfile::tempdir().unwrap();
        let (d, state) = (dir.path().join("pki"), dir.path().join("state"));
        fs::create_dir(&d).unwrap();
        // A kubeadm-made pair, as plain files, and a file kubepki does not own.
        fs::write(d.join("a.key"), "key-1").unwrap();
        fs::write(d.join("a.crt"), "crt-1").unwrap();
        fs::write(d.join("README"), "not PKI").unwrap();
        let mut tx = Transaction::new(&state);
        tx.add(d.join("a.key"), b"key-2".to_vec(), 0o600);
        tx.add(d.join("a.crt"), b"crt-2".to_vec(), 0o644);
        tx.commit().unwrap();
        for (name, content, mode) in
            [("a.key", "key-2", 0o600), ("a.crt", "crt-2", 0o644), ("README", "not PKI", 0o644)]
        {
            let meta = fs::symlink_metadata(d.join(name)).unwrap();
            assert!(meta.is_file(), "{name} is a regular file");
            assert_eq!(fs::read_to_string(d.join(name)).unwrap(), content);
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
        }
        let mut names: Vec<String> =
            fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["README", "a.crt", "a.key"]);
        assert_eq!(fs::read_dir(&state).unwrap().count(), 0, "the journal is removed");
    }

    #[test]
    fn the_earlier_linked_layout_is_flattened_keeping_every_file_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let (d, state) = (dir.path().join("pki"), dir.path().join("state"));
        // As an earlier kubepki left it: links into `..data`, the current snapshot, an orphan
        // snapshot, and a link to a name the snapshot lacks (an interrupted new name).
        fs::create_dir_all(d.join("..1.1.0")).unwrap();
        fs::create_dir_all(d.join("..0.9.9")).unwrap();
        fs::write(d.join("..1.1.0/a.key"), "key").unwrap();
        fs::set_permissions(d.join("..1.1.0/a.key"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(d.join("..1.1.0/a.crt"), "crt").unwrap();
        std::os::unix::fs::symlink("..1.1.0", d.join("..data")).unwrap();
        for name in ["a.key", "a.crt", "new.crt"] {
            std::os::unix::fs::symlink(Path::new("..data").join(name), d.join(name)).unwrap();
        }
        fs::write(d.join("README"), "not PKI").unwrap();
        // It reads as before.
        let pair = read_pair(&d.join("a.crt"), &d.join("a.key"), 10, Some(&state)).unwrap();
        assert_eq!(pair.cert.as_deref(), Some(&b"crt"[..]));
        let r = recover(&state, &d, &[]).unwrap();
        assert_eq!(r.flattened.len(), 2, "{r:?}");
        let mut names: Vec<String> =
            fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["README", "a.crt", "a.key"]);
        for (name, content, mode) in [("a.key", "key", 0o600), ("a.crt", "crt", 0o644)] {
            assert!(fs::symlink_metadata(d.join(name)).unwrap().is_file(), "{name}");
            assert_eq!(fs::read_to_string(d.join(name)).unwrap(), content);
            assert_eq!(mode_of(&d.join(name)).unwrap() & 0o777, mode);
        }
        assert_eq!(recover(&state, &d, &[]).unwrap(), Recovery::default(), "nothing left to do");
    }

    #[test]
    fn a_half_flattened_directory_is_finished_by_the_next_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let (d, state) = (dir.path().join("pki"), dir.path().join("state"));
        fs::create_dir_all(d.join("..1.1.0")).unwrap();
        fs::write(d.join("..1.1.0/a.key"), "key").unwrap();
        fs::write(d.join("..1.1.0/a.crt"), "crt").unwrap();
        std::os::unix::fs::symlink("..1.1.0", d.join("..data")).unwrap();
        // a.key already made plain (a crash in the middle), a.crt still a link, and a staged
        // hard link of a.crt left behind.
        fs::hard_link(d.join("..1.1.0/a.key"), d.join("a.key")).unwrap();
        std::os::unix::fs::symlink("..data/a.crt", d.join("a.crt")).unwrap();
        fs::hard_link(d.join("..1.1.0/a.crt"), d.join(".a.crt.kubepki-new")).unwrap();
        recover(&state, &d, &[]).unwrap();
        let mut names: Vec<String> =
            fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, ["a.crt", "a.key"]);
        assert_eq!(fs::read_to_string(d.join("a.crt")).unwrap(), "crt");
        assert!(fs::symlink_metadata(d.join("a.crt")).unwrap().is_file());
    }

    #[test]
    fn a_new_directory_appears_whole_and_an_existing_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("out/worker-1");
        let mut tx = Transaction::new(dir.path());
        tx.add_in_new_dir(node.join("kubelet.key"), b"key".to_vec(), 0o600);
        tx.add_in_new_dir(node.join("kubelet.crt"), b"crt".to_vec(), 0o644);
        tx.commit().unwrap();
        assert_eq!(fs::read_to_string(node.join("kubelet.key")).unwrap(), "key");
        assert_eq!(mode_of(&node.join("kubelet.key")).unwrap(), 0o600);
        let names: Vec<_> = fs::read_dir(dir.path().join("out")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["worker-1"], "nothing staged is left");
        let mut again = Transaction::new(dir.path());
        again.add_in_new_dir(node.join("kubelet.key"), b"other".to_vec(), 0o600);
        assert!(again.commit().unwrap_err().to_string().contains("worker-1"));
        assert_eq!(fs::read_to_string(node.join("kubelet.key")).unwrap(), "key");
        // A staging directory left by a crash is removed by recovery.
        fs::create_dir_all(dir.path().join("out/.worker-2.kubepki-new")).unwrap();
        let r = recover(dir.path(), dir.path(), &[]).unwrap();
        assert_eq!(r.discarded, vec![dir.path().join("out/.worker-2.kubepki-new")]);
    }

    #[test]
    fn a_pending_new_name_reads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::os::unix::fs::symlink("..data/new.crt", d.join("new.crt")).unwrap();
        assert_eq!(read_optional(&d.join("new.crt"), 10, "certificate").unwrap(), None);
    }

    #[test]
    fn recover_completes_a_journaled_commit_and_discards_an_unjournaled_one() {
        let dir = tempfile::tempdir().unwrap();
        let (d, state) = (dir.path().join("pki"), dir.path().join("state"));
        fs::create_dir_all(&state).unwrap();
        fs::create_dir_all(d.join("etcd")).unwrap();
        fs::write(d.join("a.crt"), "old").unwrap();
        // Interrupted after the commit point: one step done, one pending.
        fs::write(d.join(".a.crt.kubepki-new"), "new").unwrap();
        fs::write(d.join("a.key"), "new-key").unwrap();
        let journal = Journal {
            version: 3,
            steps: vec![
                Step::Rename { from: d.join(".a.key.kubepki-new"), to: d.join("a.key") },
                Step::Rename { from: d.join(".a.crt.kubepki-new"), to: d.join("a.crt") },
            ],
        };
        fs::write(state.join(JOURNAL_NAME), serde_json::to_vec(&journal).unwrap()).unwrap();
        // What an uncommitted transaction staged in a subdirectory, and its staged journal.
        fs::write(d.join("etcd/.peer.key.kubepki-new"), "stray").unwrap();
        fs::write(state.join(".kubepki-journal.kubepki-new"), "{}").unwrap();
        let r = recover(&state, &d, &[]).unwrap();
        assert_eq!(r.completed, vec![d.join("a.key"), d.join("a.crt")]);
        let mut discarded = r.discarded;
        discarded.sort();
        assert_eq!(discarded, vec![d.join("etcd/.peer.key.kubepki-new"), state.join(".kubepki-journal.kubepki-new")]);
        assert_eq!(fs::read_to_string(d.join("a.crt")).unwrap(), "new");
        assert!(!state.join(JOURNAL_NAME).exists());
        assert_eq!(recover(&state, &d, &[]).unwrap(), Recovery::default());
        // A journal an earlier kubepki left in the cert dir itself is completed too.
        fs::write(d.join(".a.crt.kubepki-new"), "newer").unwrap();
        let journal = Journal {
            version: 2,
            steps: vec![Step::Rename { from: d.join(".a.crt.kubepki-new"), to: d.join("a.crt") }],
        };
        fs::write(d.join(JOURNAL_NAME), serde_json::to_vec(&journal).unwrap()).unwrap();
        assert_eq!(recover(&state, &d, &[]).unwrap().completed, vec![d.join("a.crt")]);
        assert_eq!(fs::read_to_string(d.join("a.crt")).unwrap(), "newer");
        assert!(!d.join(JOURNAL_NAME).exists());
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
