//! Careful file I/O: bounded reads, and multi-file writes committed through a journal so that
//! a crash at any instant leaves either every old file or (after the next run) every new one.
//!
//! # The commit protocol
//!
//! 1. Every new file is written beside its target as `.<name>.kubepki-new` with its final mode;
//!    then each file system involved is synced (`syncfs`).
//! 2. The journal (`.kubepki-journal` in the journal directory) is written the same way and
//!    renamed into place: **this rename is the commit point**.
//! 3. Each temporary file is renamed over its target (a certificate's key and certificate are
//!    renamed back to back), the file systems synced again, and the journal removed.
//!
//! A crash before step 2 leaves the old files and some temporary files, which [`recover`]
//! deletes. A crash after it leaves a journal, which [`recover`] completes. A key is therefore
//! never live without its certificate. Readers that open the certificate and the key while
//! step 3 runs can still see one old and one new file for the microseconds between two
//! renames; Go components (etcd, the API server) then fail that one handshake and retry.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
const TMP_SUFFIX: &str = ".kubepki-new";

/// Reads `path` if it exists, refusing non-files and files over `limit` bytes without reading
/// them. `None` means the path does not exist; a dangling symlink is an error.
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
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        if parent.exists() && !parent.is_dir() {
            let reason = format!("{} is not a directory", parent.display());
            return Err(Error::Write { path: dir.to_owned(), source: std::io::Error::other(reason) });
        }
        create_dir_all(parent, mode)?;
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(source) => return Err(Error::Write { path: dir.to_owned(), source }),
    }
    sync_dir(dir.parent().unwrap_or(Path::new(".")))
}

/// fsyncs a directory so renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    File::open(dir).and_then(|d| d.sync_all()).map_err(|source| Error::Write { path: dir.to_owned(), source })
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}{TMP_SUFFIX}"))
}

/// Writes `contents` to `path` (created with `mode`, truncating any leftover) and fsyncs it.
fn write_synced(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    write_unsynced(path, contents, mode)?;
    File::open(path).and_then(|f| f.sync_all()).map_err(|source| Error::Write { path: path.to_owned(), source })
}

/// Writes `contents` to `path`, created with exactly `mode`, without syncing.
fn write_unsynced(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
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

#[derive(Debug, Deserialize, Serialize)]
struct Journal {
    version: u32,
    renames: Vec<(PathBuf, PathBuf)>,
}

struct PendingWrite {
    path: PathBuf,
    contents: Zeroizing<Vec<u8>>,
    mode: u32,
}

/// A set of files to replace together (see the module docs for the protocol).
pub struct Transaction {
    journal_dir: PathBuf,
    writes: Vec<PendingWrite>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction").field("journal_dir", &self.journal_dir).field("files", &self.paths()).finish()
    }
}

impl Transaction {
    /// An empty transaction whose journal lives in `journal_dir` (the cert dir).
    pub fn new(journal_dir: impl Into<PathBuf>) -> Self {
        Self { journal_dir: journal_dir.into(), writes: Vec::new() }
    }

    /// Adds a file. Contents are zeroized when the transaction is dropped. Files are renamed in
    /// the order they were added: add a key right before its certificate.
    pub fn add(&mut self, path: impl Into<PathBuf>, contents: impl Into<Vec<u8>>, mode: u32) {
        self.writes.push(PendingWrite { path: path.into(), contents: Zeroizing::new(contents.into()), mode });
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The files to be written, in order.
    pub fn paths(&self) -> Vec<&Path> {
        self.writes.iter().map(|w| w.path.as_path()).collect()
    }

    /// Writes every file, or none: on an error before the commit point the temporary files are
    /// removed and the old files are untouched.
    pub fn commit(self) -> Result<Vec<PathBuf>> {
        if self.writes.is_empty() {
            return Ok(Vec::new());
        }
        failpoint("commit:begin");
        let mut renames = Vec::with_capacity(self.writes.len());
        let result = self.stage(&mut renames);
        if let Err(e) = result {
            for (tmp, _) in &renames {
                let _ = fs::remove_file(tmp);
            }
            return Err(e);
        }
        let journal = self.journal_dir.join(JOURNAL_NAME);
        let body = serde_json::to_vec(&Journal { version: 1, renames: renames.clone() }).unwrap_or_default();
        if let Err(e) = replace_file(&journal, &body, 0o600) {
            for (tmp, _) in &renames {
                let _ = fs::remove_file(tmp);
            }
            return Err(e);
        }
        failpoint("commit:journaled");
        apply(&journal, &renames)?;
        Ok(renames.into_iter().map(|(_, p)| p).collect())
    }

    fn stage(&self, renames: &mut Vec<(PathBuf, PathBuf)>) -> Result<()> {
        let dirs = parent_dirs(self.writes.iter().map(|w| w.path.as_path()));
        for dir in &dirs {
            create_dir_all(dir, 0o755)?;
        }
        renames.extend(self.writes.iter().map(|w| (tmp_path(&w.path), w.path.clone())));
        // Temporary files are written in parallel and made durable with one syncfs per file
        // system rather than one fsync per file: a bulk issue writes thousands.
        self.writes
            .par_iter()
            .zip(renames.par_iter())
            .try_for_each(|(w, (tmp, _))| write_unsynced(tmp, &w.contents, w.mode))?;
        failpoint("commit:staged");
        sync_filesystems(&dirs)
    }
}

fn parent_dirs<'a>(paths: impl Iterator<Item = &'a Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for p in paths {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
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

fn apply(journal: &Path, renames: &[(PathBuf, PathBuf)]) -> Result<()> {
    for (tmp, path) in renames {
        // A missing temporary file was renamed by an earlier, interrupted attempt.
        if tmp.exists() {
            fs::rename(tmp, path).map_err(|source| Error::Write { path: path.clone(), source })?;
            failpoint("commit:renamed-one");
        }
    }
    sync_filesystems(&parent_dirs(renames.iter().map(|(_, p)| p.as_path())))?;
    fs::remove_file(journal).map_err(|source| Error::Write { path: journal.to_owned(), source })?;
    sync_dir(journal.parent().unwrap_or(Path::new(".")))
}

/// What [`recover`] found.
#[derive(Debug, Default, Eq, PartialEq)]
pub struct Recovery {
    /// Files whose interrupted replacement was completed.
    pub completed: Vec<PathBuf>,
    /// Temporary files of an uncommitted transaction that were removed.
    pub discarded: Vec<PathBuf>,
}

/// Completes a transaction interrupted after its commit point, and removes the temporary files
/// of one interrupted before it, under `journal_dir` and the directories in `scan`.
pub fn recover(journal_dir: &Path, scan: &[&Path]) -> Result<Recovery> {
    let mut out = Recovery::default();
    let journal_path = journal_dir.join(JOURNAL_NAME);
    if let Some(body) = read_optional(&journal_path, MAX_CONFIG_FILE, "journal")? {
        let journal: Journal = serde_json::from_slice(&body).map_err(|e| Error::Read {
            path: journal_path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        apply(&journal_path, &journal.renames)?;
        out.completed = journal.renames.into_iter().map(|(_, p)| p).collect();
    }
    let mut dirs: Vec<PathBuf> = scan.iter().map(|p| p.to_path_buf()).collect();
    dirs.push(journal_dir.to_path_buf());
    dirs.dedup();
    let mut seen: Vec<PathBuf> = Vec::new();
    while let Some(dir) = dirs.pop() {
        if seen.contains(&dir) {
            continue;
        }
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        seen.push(dir);
        for entry in entries.flatten() {
            let (path, name) = (entry.path(), entry.file_name().to_string_lossy().into_owned());
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() && !name.starts_with('.') {
                dirs.push(path);
            } else if kind.is_file() && name.starts_with('.') && name.ends_with(TMP_SUFFIX) {
                fs::remove_file(&path).map_err(|source| Error::Write { path: path.clone(), source })?;
                out.discarded.push(path);
            }
        }
    }
    Ok(out)
}

/// In builds with the `failpoints` feature, `KUBEPKI_FAILPOINT=<name>[@<n>]` kills the process
/// (as SIGKILL would: no cleanup, no unwinding) the n-th time (default first) the named point
/// is reached. Crash-safety tests use it to stop a write at every step.
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
    fn transaction_writes_all_files_with_their_modes_and_leaves_no_journal() {
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
    fn recover_completes_a_journaled_commit_and_discards_an_unjournaled_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("a.crt"), "old").unwrap();
        // Interrupted after the commit point: journal + one temp file left, one already renamed.
        fs::write(d.join(".a.crt.kubepki-new"), "new").unwrap();
        fs::write(d.join("a.key"), "new-key").unwrap();
        let journal = Journal {
            version: 1,
            renames: vec![
                (d.join(".a.key.kubepki-new"), d.join("a.key")),
                (d.join(".a.crt.kubepki-new"), d.join("a.crt")),
            ],
        };
        fs::write(d.join(JOURNAL_NAME), serde_json::to_vec(&journal).unwrap()).unwrap();
        // A stray temp file of an uncommitted transaction in a subdirectory.
        fs::create_dir(d.join("etcd")).unwrap();
        fs::write(d.join("etcd/.peer.key.kubepki-new"), "stray").unwrap();
        let r = recover(d, &[]).unwrap();
        assert_eq!(r.completed, vec![d.join("a.key"), d.join("a.crt")]);
        assert_eq!(r.discarded, vec![d.join("etcd/.peer.key.kubepki-new")]);
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
