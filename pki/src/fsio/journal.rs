//! The journal transaction and its recovery: how several files — a certificate and its key,
//! the kubeconfigs that embed them, a backup — are replaced so that no crash leaves them
//! mixed.
//!
//! # The commit protocol
//!
//! 1. Every new file is written beside its place under a temporary name
//!    (`.<name>.kubepki-new`), with its final mode, and the journal — the renames to do — under
//!    a temporary name in the journal directory; then all of them are made durable (see
//!    [`durable`](super::durable) for how).
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
//! [`read_pair`](super::read_pair) reads a pair consistently.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::durable::{create_dirs, make_durable, sync_dir, write_unsynced};
use super::failpoint::failpoint;
use super::linked::{DATA_LINK, current_snapshot, flatten};
use super::new_dir::new_staging_dir;
use super::read::{MAX_CONFIG_FILE, read_optional};
use super::{TMP_SUFFIX, file_name, parent_of, rename, tmp_path};
use crate::error::{Error, Result};

/// The journal's file name (in the journal directory: the cert dir's state dir).
pub const JOURNAL_NAME: &str = ".kubepki-journal";

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

impl Transaction {
    /// An empty transaction whose journal lives in `journal_dir`: the cert dir's state dir
    /// ([`crate::lock::state_dir`]) for writes to the cert dir and kubeconfigs. It is created
    /// (0700) if needed.
    pub fn new(journal_dir: impl Into<PathBuf>) -> Self {
        Self { journal_dir: journal_dir.into(), writes: Vec::new(), also_sync: Vec::new() }
    }

    /// Also makes `dirs` durable before the commit point, with the staged files: directories
    /// whose entries changed for this transaction before it began (the cert dir made by
    /// `init`, from [`create_dir_all_unsynced`](super::create_dir_all_unsynced)).
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
        // A path that is not UTF-8 has no JSON form: refuse the commit rather than journal
        // nothing, which a crash after the commit point would leave unrecoverable.
        let body = serde_json::to_vec(&Journal { version: 3, steps: steps.clone() }).map_err(|e| Error::Write {
            path: journal.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::fsio::mode_of;

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

    /// Regression: a path that is not UTF-8 once made an empty journal, so a crash after the
    /// commit point left a journal no recovery could read.
    #[test]
    fn a_commit_it_cannot_journal_is_refused_and_stages_nothing() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let (d, state) = (dir.path().join("pki"), dir.path().join("state"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("a.crt"), "old").unwrap();
        let mut tx = Transaction::new(&state);
        tx.add(d.join("a.crt"), b"new".to_vec(), 0o644);
        tx.add(d.join(std::ffi::OsStr::from_bytes(b"\xff.key")), b"key".to_vec(), 0o600);
        let err = tx.commit().unwrap_err().to_string();
        assert!(err.contains(JOURNAL_NAME), "{err}");
        assert_eq!(fs::read_to_string(d.join("a.crt")).unwrap(), "old");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "nothing staged is left");
        assert_eq!(fs::read_dir(&state).unwrap().count(), 0, "no journal");
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
}
