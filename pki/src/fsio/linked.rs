//! The earlier linked layout (versioned directories), read and retired.
//!
//! kubepki once kept pairs in versioned directories: visible names were symlinks into a
//! snapshot named by the `..data` link, and a commit swapped that one link. The cert dir must
//! hold kubeadm's plain files (a symlinked key reads 777 to kube-bench), so the layout went,
//! but trees an earlier kubepki left are still read
//! ([`read_pair`](super::read_pair) reads both files of a pair from one snapshot), and
//! [`recover`](super::recover) turns them back into plain files on the next write: each link is
//! replaced by a hard link to the file it names — the same inode and contents, so every step is
//! safe — then `..data` and the snapshots are removed.

use std::fs;
use std::path::{Path, PathBuf};

use super::durable::sync_dir;
use super::failpoint::failpoint;
use super::{rename, tmp_path};
use crate::error::{Error, Result};

/// The link to the current snapshot of a directory in the earlier linked layout (see the
/// module docs), still read and turned into plain files on the next write.
pub(super) const DATA_LINK: &str = "..data";

/// Whether `target` (a symlink's target) points into a versioned directory's snapshot.
pub(super) fn is_pending_target(target: &Path) -> bool {
    target.starts_with(DATA_LINK)
}

/// The snapshot `..data` points at, if the directory is in the earlier linked layout.
pub(super) fn current_snapshot(dir: &Path) -> Option<String> {
    fs::read_link(dir.join(DATA_LINK)).ok().map(|t| t.to_string_lossy().into_owned())
}

/// Turns a directory of the earlier linked layout back into plain files (see the module
/// docs): each `name -> ..data/name` link becomes a hard link to the file it names, a link to
/// a name its snapshot lacks (a new name of a commit that never happened) is removed, then
/// `..data` and the snapshots go. Every step leaves each visible name with the contents it
/// had, so a crash anywhere is safe and the next run finishes the job. Returns the names made
/// plain.
pub(super) fn flatten(dir: &Path) -> Result<Vec<PathBuf>> {
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::fsio::{Recovery, mode_of, read_pair, recover};

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
}
