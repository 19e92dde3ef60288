//! Careful file I/O: bounded reads, and multi-file writes that no crash can leave half done.
//!
//! # Pairs change atomically: versioned directories
//!
//! A certificate and its key are two files, and two renames are not one atomic step. So the
//! directories that hold pairs (the cert dir and its `etcd/`, kubelet serving directories) are
//! *versioned*, as Kubernetes' AtomicWriter versions projected volumes: the real files live in a
//! snapshot directory `..<stamp>/`, the symlink `..data` points at the current snapshot, and each
//! visible name is a relative symlink `apiserver.crt -> ..data/apiserver.crt`. A change writes a
//! complete new snapshot (unchanged files are hard links into the old one) and swaps `..data`
//! with one rename: every pair of the directory changes at once, and no crash and no single
//! open can see a certificate with another key. A name that is new is linked before the swap
//! and dangles until then, which reads as "absent". Each directory is self-contained, so a
//! hostPath mount of `etcd/` alone (kubeadm's etcd pod) still resolves its links.
//!
//! Plain files found in a versioned directory (a kubeadm cert dir being adopted) are first
//! moved into a snapshot one by one, each replaced by a link to the same inode: content never
//! changes during adoption, so it is safe at every step.
//!
//! Single files (kubeconfigs, which embed certificate and key together) are replaced by a
//! plain rename.
//!
//! # The commit protocol
//!
//! 1. New snapshots and temporary files (`.<name>.kubepki-new`, `..data.kubepki-new`) are
//!    written with their final modes, with the journal under a temporary name — it lists the
//!    renames to do and the old snapshots to delete — then made durable: a few dozen files with
//!    concurrent fsyncs (they share journal commits), more with one `syncfs` per file system (a
//!    bulk issue writes thousands).
//! 2. The journal is renamed into place (`.kubepki-journal` in the journal directory) and its
//!    directory synced: **the commit point**.
//! 3. The steps are carried out in order — links for new names, the `..data` swaps, plain
//!    renames, removal of old snapshots — the file systems synced, and the journal removed.
//!
//! A crash before step 2 leaves the old state plus staged files, which [`recover`] deletes. A
//! crash after it leaves a journal, which [`recover`] completes; in between, every versioned
//! directory is entirely old or entirely new. A reader that opens a certificate and then its
//! key can still straddle a swap (no two-file layout can prevent that); Go servers such as etcd
//! then fail that one handshake, and clients retry.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The largest certificate or key file kubepki reads (1 MiB); larger ones are refused unread.
pub const MAX_PEM_FILE: u64 = 1 << 20;
/// The largest kubeconfig or configuration file kubepki reads (4 MiB).
pub const MAX_CONFIG_FILE: u64 = 4 << 20;

/// The journal's file name.
pub const JOURNAL_NAME: &str = ".kubepki-journal";
/// The link to the current snapshot of a versioned directory.
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

/// Reads a certificate file and its key file as one snapshot: when both are links into the
/// same versioned directory, `..data` is resolved once and both are read from the snapshot it
/// named, so a rotation swapping `..data` in between cannot hand back a certificate with
/// another key. If a writer removed that snapshot while we read, the read starts over.
/// Elsewhere (plain files) this is two [`read_optional`]s.
pub fn read_pair(cert: &Path, key: &Path, limit: u64) -> Result<PairBytes> {
    for _ in 0..5 {
        let dir = parent_of(cert);
        let linked = |p: &Path| fs::read_link(p).is_ok_and(|t| t == Path::new(DATA_LINK).join(file_name(p)));
        let snapshot = (parent_of(key) == dir && linked(cert) && linked(key)).then(|| current_snapshot(&dir)).flatten();
        let Some(snapshot) = snapshot else {
            return PairBytes::read(cert, key, limit);
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
    /// Delete an old snapshot directory.
    RemoveDir { path: PathBuf },
}

#[derive(Debug, Deserialize, Serialize)]
struct Journal {
    version: u32,
    steps: Vec<Step>,
}

/// How a file reaches its place.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum WriteKind {
    /// A plain rename over the target.
    Plain,
    /// Through the directory's snapshot (see the module docs).
    Versioned,
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

/// Whether a file in a versioned directory is PKI material kubepki keeps in the snapshot.
fn is_managed_name(name: &str) -> bool {
    // Not `.pem`: the kubelet keeps its own rotating `kubelet-client-<time>.pem` files (and the
    // `kubelet-client-current.pem` link to them) beside `kubelet.crt`; they are the kubelet's.
    !name.starts_with('.') && [".crt", ".key", ".pub", ".csr"].iter().any(|s| name.ends_with(s))
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

/// A fresh snapshot directory name: `..<unix nanos>.<pid>.<n>`.
fn snapshot_name() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("..{nanos}.{}.{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The snapshot `..data` points at, if the directory is versioned.
fn current_snapshot(dir: &Path) -> Option<String> {
    fs::read_link(dir.join(DATA_LINK)).ok().map(|t| t.to_string_lossy().into_owned())
}

fn symlink(target: &Path, link: &Path) -> Result<()> {
    let _ = fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).map_err(|source| Error::Write { path: link.to_owned(), source })
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|source| Error::Write { path: to.to_owned(), source })
}

/// Whether `dir/name` is already the link `..data/name`.
fn is_data_link(dir: &Path, name: &str) -> bool {
    fs::read_link(dir.join(name)).is_ok_and(|t| t == Path::new(DATA_LINK).join(name))
}

/// Turns the plain PKI files of `dir` (and `also`, if plain) into links into its snapshot,
/// creating the snapshot if there is none. Each file keeps its inode (a hard link into the
/// snapshot) and its content, so this is safe at every step.
pub fn adopt(dir: &Path, also: &[String]) -> Result<()> {
    let mut plain: Vec<String> = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_file()) && (is_managed_name(&name) || also.contains(&name)) {
                plain.push(name);
            }
        }
    }
    if plain.is_empty() {
        return Ok(());
    }
    plain.sort();
    let snapshot = match current_snapshot(dir) {
        Some(s) if dir.join(&s).is_dir() => s,
        _ => {
            let s = snapshot_name();
            fs::DirBuilder::new()
                .mode(0o755)
                .create(dir.join(&s))
                .map_err(|source| Error::Write { path: dir.join(&s), source })?;
            sync_filesystems(&[dir.to_path_buf()])?;
            let tmp = dir.join(format!("{DATA_LINK}{TMP_SUFFIX}"));
            symlink(Path::new(&s), &tmp)?;
            rename(&tmp, &dir.join(DATA_LINK))?;
            s
        }
    };
    for name in &plain {
        let in_snapshot = dir.join(&snapshot).join(name);
        let staged = dir.join(&snapshot).join(format!(".{name}{TMP_SUFFIX}"));
        let _ = fs::remove_file(&staged);
        fs::hard_link(dir.join(name), &staged).map_err(|source| Error::Write { path: staged.clone(), source })?;
        rename(&staged, &in_snapshot)?;
        sync_filesystems(&[dir.to_path_buf()])?;
        let link = dir.join(format!(".{name}{TMP_SUFFIX}"));
        symlink(&Path::new(DATA_LINK).join(name), &link)?;
        rename(&link, &dir.join(name))?;
        failpoint("adopt:one");
    }
    sync_filesystems(&[dir.to_path_buf()])
}

impl Transaction {
    /// An empty transaction whose journal lives in `journal_dir` (the cert dir).
    pub fn new(journal_dir: impl Into<PathBuf>) -> Self {
        Self { journal_dir: journal_dir.into(), writes: Vec::new(), also_sync: Vec::new() }
    }

    /// Also makes `dirs` durable before the commit point, with the staged files: directories
    /// whose entries changed for this transaction before it began (the cert dir made by
    /// `init`, from [`create_dir_all_unsynced`]).
    pub fn sync_also(&mut self, dirs: impl IntoIterator<Item = PathBuf>) {
        self.also_sync.extend(dirs);
    }

    /// Adds a file replaced by a plain rename (a kubeconfig, a backup). Contents are zeroized
    /// when the transaction is dropped.
    pub fn add(&mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>, mode: u32) {
        self.writes.push(PendingWrite {
            path: path.into(),
            contents: Zeroizing::new(contents.into()),
            mode,
            kind: WriteKind::Plain,
        });
    }

    /// Adds a file of a versioned directory: it changes together with every other file of its
    /// directory, in one rename (a certificate and its key).
    pub fn add_versioned(&mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>, mode: u32) {
        self.writes.push(PendingWrite {
            path: path.into(),
            contents: Zeroizing::new(contents.into()),
            mode,
            kind: WriteKind::Versioned,
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

    /// Writes snapshots, temporary files and the journal of the commit's steps under a
    /// temporary name, and makes them durable; returns the steps and the journal's path.
    fn stage(&self, staged: &mut Vec<PathBuf>) -> Result<(Vec<Step>, PathBuf)> {
        // A new directory is not created in place: its parent is, and it is staged beside.
        let dirs = parent_dirs(self.writes.iter().map(|w| match w.kind {
            WriteKind::NewDir => w.path.parent().unwrap_or(&w.path),
            _ => w.path.as_path(),
        }));
        // Unsynced: make_durable below makes the new directories' entries durable before the
        // commit point. A directory created here is empty: nothing to adopt, no snapshot, no
        // links yet.
        let (mut created, mut changed) = (std::collections::HashSet::new(), Vec::new());
        for dir in &dirs {
            if create_dirs(dir, 0o755, &mut changed)? {
                created.insert(dir.as_path());
            }
        }
        // Versioned directories: adopt plain files, then lay out the new snapshots. Directories
        // are independent of each other, so they are staged in parallel (a bulk issue has one
        // per node); the results are merged in directory order.
        let mut by_dir: BTreeMap<PathBuf, Vec<&PendingWrite>> = BTreeMap::new();
        for w in self.writes.iter().filter(|w| w.kind == WriteKind::Versioned) {
            by_dir.entry(parent_of(&w.path)).or_default().push(w);
        }
        let (mut links, mut swaps, mut plain, mut cleanup) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut files: Vec<(PathBuf, &PendingWrite)> = Vec::new();
        let by_dir: Vec<(&PathBuf, &Vec<&PendingWrite>)> = by_dir.iter().collect();
        let stages: Vec<(Vec<PathBuf>, Result<DirStage<'_>>)> = by_dir
            .par_iter()
            .map(|(dir, writes)| {
                let mut dir_staged = Vec::new();
                let result = stage_versioned_dir(dir, writes, created.contains(dir.as_path()), &mut dir_staged);
                (dir_staged, result)
            })
            .collect();
        let mut first_error = None;
        for (dir_staged, result) in stages {
            staged.extend(dir_staged);
            match result {
                Ok(s) => {
                    links.extend(s.links);
                    swaps.push(s.swap);
                    cleanup.extend(s.cleanup);
                    files.extend(s.files);
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        for w in self.writes.iter().filter(|w| w.kind == WriteKind::Plain) {
            let tmp = tmp_path(&w.path);
            staged.push(tmp.clone());
            plain.push(Step::Rename { from: tmp.clone(), to: w.path.clone() });
            files.push((tmp, w));
        }
        let mut new_dirs: BTreeMap<PathBuf, Vec<&PendingWrite>> = BTreeMap::new();
        for w in self.writes.iter().filter(|w| w.kind == WriteKind::NewDir) {
            new_dirs.entry(parent_of(&w.path)).or_default().push(w);
        }
        for (dir, writes) in &new_dirs {
            let staging = new_staging_dir(dir, 0o755)?;
            staged.push(staging.clone());
            plain.push(Step::Rename { from: staging.clone(), to: dir.clone() });
            files.extend(writes.iter().map(|w| (staging.join(file_name(&w.path)), *w)));
        }
        let steps: Vec<Step> = links.into_iter().chain(swaps).chain(plain).chain(cleanup).collect();
        // The journal is written with the files (its fsync shares their round).
        let journal = tmp_path(&self.journal_dir.join(JOURNAL_NAME));
        let body = serde_json::to_vec(&Journal { version: 2, steps: steps.clone() }).unwrap_or_default();
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

/// What staging one versioned directory produced.
struct DirStage<'a> {
    /// Renames that link new names to `..data/<name>`.
    links: Vec<Step>,
    /// The rename that swaps `..data` to the new snapshot.
    swap: Step,
    /// The removal of the old snapshot.
    cleanup: Option<Step>,
    /// The files to write into the new snapshot.
    files: Vec<(PathBuf, &'a PendingWrite)>,
}

/// Stages one versioned directory: adopts its plain files, creates the new snapshot with hard
/// links to the unchanged files, and the temporary links; records in `staged` what it made.
/// `empty`: the transaction has just created the directory, so there is nothing to look up in
/// it (a bulk issue stages thousands of such directories).
fn stage_versioned_dir<'a>(
    dir: &Path,
    writes: &[&'a PendingWrite],
    empty: bool,
    staged: &mut Vec<PathBuf>,
) -> Result<DirStage<'a>> {
    let names: Vec<String> = writes.iter().map(|w| file_name(&w.path)).collect();
    if !empty {
        adopt(dir, &names)?;
    }
    let current = if empty { None } else { current_snapshot(dir) };
    let link = |target: &Path, link: &Path| {
        if empty {
            std::os::unix::fs::symlink(target, link).map_err(|source| Error::Write { path: link.to_owned(), source })
        } else {
            symlink(target, link)
        }
    };
    let snapshot = snapshot_name();
    let snap_dir = dir.join(&snapshot);
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&snap_dir)
        .map_err(|source| Error::Write { path: snap_dir.clone(), source })?;
    staged.push(snap_dir.clone());
    let mut cleanup = None;
    if let Some(cur) = &current {
        for e in fs::read_dir(dir.join(cur)).map_err(|source| Error::Read { path: dir.join(cur), source })?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && !names.contains(&name) && e.file_type().is_ok_and(|t| t.is_file()) {
                fs::hard_link(e.path(), snap_dir.join(&name))
                    .map_err(|source| Error::Write { path: snap_dir.join(&name), source })?;
            }
        }
        cleanup = Some(Step::RemoveDir { path: dir.join(cur) });
    }
    let files = writes.iter().map(|w| (snap_dir.join(file_name(&w.path)), *w)).collect();
    let tmp_data = dir.join(format!("{DATA_LINK}{TMP_SUFFIX}"));
    link(Path::new(&snapshot), &tmp_data)?;
    staged.push(tmp_data.clone());
    let swap = Step::Rename { from: tmp_data, to: dir.join(DATA_LINK) };
    let mut links = Vec::new();
    for name in &names {
        if empty || !is_data_link(dir, name) {
            let tmp = dir.join(format!(".{name}{TMP_SUFFIX}"));
            link(&Path::new(DATA_LINK).join(name), &tmp)?;
            staged.push(tmp.clone());
            links.push(Step::Rename { from: tmp, to: dir.join(name) });
        }
    }
    Ok(DirStage { links, swap, cleanup, files })
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
    /// Staged files and snapshots of an uncommitted transaction that were removed.
    pub discarded: Vec<PathBuf>,
}

/// Completes a transaction interrupted after its commit point, and removes what one
/// interrupted before it staged, in `journal_dir` (the cert dir) and its subdirectories, and in
/// the directories of `flat` themselves (the kubeconfig dir, whose files are kubeconfigs: its
/// subdirectories — the cert dir, backups — are not walked).
pub fn recover(journal_dir: &Path, flat: &[&Path]) -> Result<Recovery> {
    let mut out = Recovery::default();
    let journal_path = journal_dir.join(JOURNAL_NAME);
    if let Some(body) = read_optional(&journal_path, MAX_CONFIG_FILE, "journal")? {
        let journal: Journal = serde_json::from_slice(&body).map_err(|e| Error::Read {
            path: journal_path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        apply(&journal_path, &journal.steps)?;
        out.completed = journal
            .steps
            .into_iter()
            .filter_map(|s| match s {
                Step::Rename { to, .. } if file_name(&to) != DATA_LINK => Some(to),
                _ => None,
            })
            .collect();
    }
    // (directory, walk its subdirectories)
    let mut dirs: Vec<(PathBuf, bool)> = flat.iter().map(|p| (p.to_path_buf(), false)).collect();
    dirs.push((journal_dir.to_path_buf(), true));
    let mut seen: Vec<PathBuf> = Vec::new();
    while let Some((dir, deep)) = dirs.pop() {
        if seen.contains(&dir) {
            continue;
        }
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        seen.push(dir.clone());
        let current = current_snapshot(&dir);
        for entry in entries.flatten() {
            let (path, name) = (entry.path(), entry.file_name().to_string_lossy().into_owned());
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() && !name.starts_with('.') {
                if deep {
                    dirs.push((path, true));
                }
            } else if kind.is_dir() && name.starts_with('.') && name.ends_with(TMP_SUFFIX) {
                // A new directory staged by a commit that never happened.
                fs::remove_dir_all(&path).map_err(|source| Error::Write { path: path.clone(), source })?;
                out.discarded.push(path);
            } else if kind.is_dir() && name.starts_with("..") && Some(&name) != current.as_ref() {
                // A snapshot no `..data` points at: staged by a commit that never happened.
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
/// named point is reached. The points: `commit:begin`, `adopt:one` (after each plain file is
/// turned into a link into the snapshot), `commit:staged` (everything staged), `commit:journaled`
/// (the commit point passed), `commit:renamed-one` (after each step of the journal, also
/// during recovery), `commit:renamed-all` (before the journal is removed).
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
        let mut tx = Transaction::new(dir.path());
        tx.add(dir.path().join("etcd/server.key"), b"key".to_vec(), 0o600);
        tx.add(dir.path().join("etcd/server.crt"), b"crt".to_vec(), 0o644);
        let written = tx.commit().unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(fs::read(dir.path().join("etcd/server.key")).unwrap(), b"key");
        assert_eq!(mode_of(&dir.path().join("etcd/server.key")).unwrap(), 0o600);
        assert_eq!(mode_of(&dir.path().join("etcd/server.crt")).unwrap(), 0o644);
        assert!(!dir.path().join(JOURNAL_NAME).exists());
        assert_eq!(fs::read_dir(dir.path().join("etcd")).unwrap().count(), 2);
    }

    #[test]
    fn versioned_pairs_swap_together_and_plain_files_are_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A kubeadm-made pair, as plain files.
        fs::write(d.join("a.key"), "key-1").unwrap();
        fs::write(d.join("a.crt"), "crt-1").unwrap();
        fs::write(d.join("README"), "not PKI").unwrap();
        let mut tx = Transaction::new(d);
        tx.add_versioned(d.join("b.key"), b"bkey".to_vec(), 0o600);
        tx.add_versioned(d.join("b.crt"), b"bcrt".to_vec(), 0o644);
        tx.commit().unwrap();
        for (name, content) in [("a.key", "key-1"), ("a.crt", "crt-1"), ("b.key", "bkey"), ("b.crt", "bcrt")] {
            assert_eq!(fs::read_link(d.join(name)).unwrap(), Path::new("..data").join(name), "{name}");
            assert_eq!(fs::read_to_string(d.join(name)).unwrap(), content);
        }
        assert_eq!(mode_of(&d.join("b.key")).unwrap(), 0o600);
        assert!(fs::symlink_metadata(d.join("README")).unwrap().is_file(), "foreign files are left alone");
        let first = current_snapshot(d).unwrap();

        let mut tx = Transaction::new(d);
        tx.add_versioned(d.join("a.key"), b"key-2".to_vec(), 0o600);
        tx.add_versioned(d.join("a.crt"), b"crt-2".to_vec(), 0o644);
        tx.commit().unwrap();
        assert_eq!(fs::read_to_string(d.join("a.key")).unwrap(), "key-2");
        assert_eq!(fs::read_to_string(d.join("b.crt")).unwrap(), "bcrt", "unchanged files carry over");
        assert!(!d.join(&first).exists(), "the old snapshot is removed");
        let names: Vec<String> =
            fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names.iter().filter(|n| n.starts_with("..")).count(), 2, "..data and one snapshot: {names:?}");
        assert!(!d.join(JOURNAL_NAME).exists());
    }

    #[test]
    fn many_versioned_directories_are_staged_in_parallel_and_a_failure_in_one_discards_all() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let add_nodes = |tx: &mut Transaction| {
            for i in 0..40 {
                tx.add_versioned(d.join(format!("n{i}/kubelet.key")), format!("key {i}").into_bytes(), 0o600);
                tx.add_versioned(d.join(format!("n{i}/kubelet.crt")), format!("crt {i}").into_bytes(), 0o644);
            }
        };
        // One directory cannot be staged: its `..data` temporary name is taken by a directory.
        fs::create_dir_all(d.join("n17/..data.kubepki-new/x")).unwrap();
        let mut tx = Transaction::new(d);
        add_nodes(&mut tx);
        assert!(tx.commit().is_err());
        assert!(!d.join(JOURNAL_NAME).exists());
        for i in 0..40 {
            let mut left: Vec<String> = fs::read_dir(d.join(format!("n{i}")))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            left.retain(|n| !(i == 17 && n == "..data.kubepki-new"));
            assert!(left.is_empty(), "n{i} kept {left:?}");
        }
        fs::remove_dir_all(d.join("n17/..data.kubepki-new")).unwrap();
        let mut tx = Transaction::new(d);
        add_nodes(&mut tx);
        assert_eq!(tx.commit().unwrap().len(), 80);
        for i in [0, 17, 39] {
            assert_eq!(fs::read_to_string(d.join(format!("n{i}/kubelet.crt"))).unwrap(), format!("crt {i}"));
            assert_eq!(mode_of(&d.join(format!("n{i}/..data/kubelet.key"))).unwrap(), 0o600);
        }
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
        let r = recover(dir.path(), &[]).unwrap();
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
        let d = dir.path();
        fs::write(d.join("a.crt"), "old").unwrap();
        // Interrupted after the commit point: one step done, one pending.
        fs::write(d.join(".a.crt.kubepki-new"), "new").unwrap();
        fs::write(d.join("a.key"), "new-key").unwrap();
        let journal = Journal {
            version: 2,
            steps: vec![
                Step::Rename { from: d.join(".a.key.kubepki-new"), to: d.join("a.key") },
                Step::Rename { from: d.join(".a.crt.kubepki-new"), to: d.join("a.crt") },
            ],
        };
        fs::write(d.join(JOURNAL_NAME), serde_json::to_vec(&journal).unwrap()).unwrap();
        // What an uncommitted transaction staged in a subdirectory: a temp file and a snapshot.
        fs::create_dir_all(d.join("etcd/..123.1.0")).unwrap();
        fs::write(d.join("etcd/.peer.key.kubepki-new"), "stray").unwrap();
        let r = recover(d, &[]).unwrap();
        assert_eq!(r.completed, vec![d.join("a.key"), d.join("a.crt")]);
        let mut discarded = r.discarded;
        discarded.sort();
        assert_eq!(discarded, vec![d.join("etcd/..123.1.0"), d.join("etcd/.peer.key.kubepki-new")]);
        assert_eq!(fs::read_to_string(d.join("a.crt")).unwrap(), "new");
        assert!(!d.join(JOURNAL_NAME).exists());
        assert_eq!(recover(d, &[]).unwrap(), Recovery::default());
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
