//! Backups of the files a rotation replaces, and restoring them.

use std::path::{Component, Path, PathBuf};

use kubepki_pki::fsio::{self, MAX_CONFIG_FILE, Transaction};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

const MANIFEST: &str = "manifest.json";

/// One backed-up file.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
pub struct BackedUpFile {
    /// Where the file lives.
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
    /// It lived in a directory of kubepki's earlier linked layout (a link into `..data`).
    /// Kept so that older manifests read; files are restored as plain files either way.
    #[serde(default, skip_serializing)]
    pub versioned: bool,
    /// The file did not exist before the run (a missing leaf issued anew): restoring removes
    /// it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub absent: bool,
}

/// A backup directory: copies of files as they were before a rotation, with their modes.
///
/// Files are stored under their absolute path inside the backup (`<backup>/etc/kubernetes/pki/
/// apiserver.key`), so every file has one unambiguous place; the directory is 0700 and keys
/// keep their 0600.
#[derive(Clone, Debug)]
pub struct Backup {
    /// The backup directory.
    pub dir: PathBuf,
    /// What is in it.
    pub entries: Vec<BackedUpFile>,
}

/// Where backups go by default: `<parent of the cert dir>/tmp` (kubeadm keeps its backups in
/// `/etc/kubernetes/tmp`).
pub fn default_parent(cert_dir: &Path) -> PathBuf {
    cert_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).join("tmp")
}

/// `<default parent>/kubepki-backup-<UTC timestamp>`, with a numeric suffix if that exists
/// already.
pub fn default_dir(cert_dir: &Path, now: OffsetDateTime) -> PathBuf {
    stamped(&default_parent(cert_dir), now)
}

/// The directory this run's backup goes under: `backup_dir` (`--backup-dir`) if given, else
/// [`default_parent`] of the cert dir; absolute (symbolic links and `..` resolved as far as it
/// exists), so that it names the same place from any working directory. An input error
/// ([`Error::Config`]) if it exists and is not a directory.
pub fn parent_dir(backup_dir: Option<&Path>, cert_dir: &Path) -> Result<PathBuf> {
    let dir = backup_dir.map_or_else(|| default_parent(cert_dir), Path::to_owned);
    let resolved = resolve(&dir)?;
    if resolved.exists() && !resolved.is_dir() {
        return Err(Error::Config {
            path: resolved,
            reason: "--backup-dir names a file; name a directory (created if missing) under which each \
                     run writes its own kubepki-backup-<UTC time>"
                .into(),
        });
    }
    Ok(resolved)
}

/// A new run's backup directory under `parent` (from [`parent_dir`]):
/// `<parent>/kubepki-backup-<UTC timestamp>[-n]`, absolute. `parent` is created (0700) if it
/// is missing, so one fixed `--backup-dir` serves every run of a cron job.
pub fn run_dir(parent: &Path, now: OffsetDateTime) -> Result<PathBuf> {
    fsio::create_dir_all(parent, 0o700)?;
    Ok(stamped(&resolve(parent)?, now))
}

/// `path` made absolute: its longest existing prefix canonical, the rest appended by name (none
/// of it exists, so a `..` there just drops the name before it). An empty path is `.`.
pub(crate) fn resolve(path: &Path) -> Result<PathBuf> {
    let path = if path.as_os_str().is_empty() { Path::new(".") } else { path };
    let abs = std::path::absolute(path).map_err(|source| kubepki_pki::Error::Read { path: path.to_owned(), source })?;
    let components: Vec<Component<'_>> = abs.components().collect();
    for n in (1..=components.len()).rev() {
        let Ok(mut out) = std::fs::canonicalize(components[..n].iter().collect::<PathBuf>()) else { continue };
        for c in &components[n..] {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(name) => out.push(name),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
        return Ok(out);
    }
    Ok(abs)
}

/// `<parent>/kubepki-backup-<UTC timestamp>`, with a numeric suffix if that exists already.
fn stamped(parent: &Path, now: OffsetDateTime) -> PathBuf {
    let stamp = format!(
        "{PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let base = parent.join(stamp);
    let mut candidate = base.clone();
    let mut n = 1;
    while candidate.exists() {
        candidate = base.with_file_name(format!("{}-{n}", base.file_name().unwrap_or_default().to_string_lossy()));
        n += 1;
    }
    candidate
}

/// The name every backup directory kubepki makes starts with.
pub const PREFIX: &str = "kubepki-backup-";

/// Keeps the `keep` newest backups beside `current` (the directories of its parent named
/// `kubepki-backup-<UTC time>[-n]`, `current` always among those kept) and removes the others,
/// oldest first. Returns the directories removed. Directories of other names are never touched.
pub fn prune(current: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    let parent = current.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let read_err = |source| kubepki_pki::Error::Read { path: parent.to_owned(), source };
    let mut backups: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(parent).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_backup_name(&name) && entry.file_type().is_ok_and(|t| t.is_dir()) && entry.path() != current {
            backups.push((sort_key(&name), entry.path()));
        }
    }
    // Newest first: the UTC time sorts as text; a same-second suffix `-n` after its base.
    backups.sort_by(|a, b| b.0.cmp(&a.0));
    let mut removed = Vec::new();
    for (_, dir) in backups.into_iter().skip(keep.saturating_sub(1)) {
        std::fs::remove_dir_all(&dir).map_err(|source| kubepki_pki::Error::Write { path: dir.clone(), source })?;
        removed.push(dir);
    }
    if !removed.is_empty() {
        fsio::sync_dir(parent)?;
    }
    Ok(removed)
}

/// Whether `name` is one kubepki gives its backups: `kubepki-backup-<YYYYMMDDTHHMMSSZ>[-n]`.
fn is_backup_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else { return false };
    let (stamp, suffix) = rest.split_once('-').map_or((rest, None), |(s, n)| (s, Some(n)));
    let b = stamp.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
        && suffix.is_none_or(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// `kubepki-backup-20261127T072201Z-12` sorts after `...Z-9` and `...Z`.
fn sort_key(name: &str) -> String {
    match name.rsplit_once('-') {
        Some((base, n)) if base.ends_with('Z') && n.chars().all(|c| c.is_ascii_digit()) => format!("{base}-{n:0>10}"),
        _ => format!("{name}-{:0>10}", 0),
    }
}

/// Removes the backups in `parent` whose creation a crash interrupted (their hidden staging
/// directories, `.kubepki-backup-*.kubepki-new`): run by `rotate` under the cert dir's lock, so
/// no other run is writing one. (A backup directory of another name is staged again, and so
/// cleaned, by [`fsio::create_dir_with`] when its name is reused.)
pub fn remove_unfinished(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.strip_prefix('.').is_some_and(|n| n.starts_with(PREFIX)) && name.ends_with(fsio::TMP_SUFFIX) {
            // Best effort: what cannot be removed now is tried again by the next run.
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Where an absolute path is kept inside a backup, relative to it.
fn relative(abs: &Path) -> PathBuf {
    abs.components().filter(|c| matches!(c, Component::Normal(_))).collect()
}

fn stored(dir: &Path, path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    dir.join(relative(&abs))
}

impl Backup {
    /// Copies `files` into a new backup directory `dir`: the directory appears complete, with
    /// its manifest, or not at all. A file that does not exist is recorded as absent, so that
    /// restoring removes what the run created.
    pub fn create(dir: &Path, files: &[&Path]) -> Result<Self> {
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        fsio::create_dir_all(parent, 0o700)?;
        let mut entries: Vec<BackedUpFile> = Vec::with_capacity(files.len());
        let mut contents = Vec::with_capacity(files.len() + 1);
        for &path in files {
            let abs = std::path::absolute(path)
                .map_err(|source| kubepki_pki::Error::Read { path: path.to_owned(), source })?;
            if entries.iter().any(|e| e.path == abs) {
                continue;
            }
            let Some(bytes) = fsio::read_optional(path, MAX_CONFIG_FILE, "file to back up")? else {
                entries.push(BackedUpFile { path: abs, mode: 0, versioned: false, absent: true });
                continue;
            };
            let mode = fsio::mode_of(path)?;
            contents.push((relative(&abs), Zeroizing::new(bytes), mode));
            entries.push(BackedUpFile { path: abs, mode, versioned: false, absent: false });
        }
        let manifest = Zeroizing::new(crate::text::json_record(&entries, &dir.join(MANIFEST))?);
        contents.push((PathBuf::from(MANIFEST), manifest, 0o600));
        let files: Vec<(PathBuf, &[u8], u32)> =
            contents.iter().map(|(path, bytes, mode)| (path.clone(), bytes.as_slice(), *mode)).collect();
        fsio::create_dir_with(dir, 0o700, &files)?;
        Ok(Self { dir: dir.to_owned(), entries })
    }

    /// Opens an existing backup directory.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let bytes = fsio::read_optional(&path, MAX_CONFIG_FILE, "backup manifest")?
            .ok_or_else(|| Error::Missing { path: path.clone() })?;
        let entries = serde_json::from_slice(&bytes).map_err(|e| kubepki_pki::Error::Read {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        Ok(Self { dir: dir.to_owned(), entries })
    }

    /// The files whose stored copy is missing (or not a regular file): what this backup cannot
    /// give back.
    pub fn missing(&self) -> Vec<PathBuf> {
        self.entries
            .iter()
            .filter(|e| !e.absent && !stored(&self.dir, &e.path).is_file())
            .map(|e| e.path.clone())
            .collect()
    }

    /// Puts every backed-up file back, atomically, with its mode (journaled in the state dir
    /// of `cert_dir`, the cert dir the files belong with).
    pub fn restore(&self, cert_dir: &Path) -> Result<Vec<PathBuf>> {
        let mut tx = Transaction::new(kubepki_pki::lock::state_dir(cert_dir));
        for e in &self.entries {
            if e.absent {
                tx.remove(&e.path);
                continue;
            }
            let contents = fsio::read_required(&stored(&self.dir, &e.path), MAX_CONFIG_FILE, "backed-up file")?;
            tx.add(&e.path, contents, e.mode);
        }
        Ok(tx.commit()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_newest_and_touches_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        let names = [
            "kubepki-backup-20261125T000000Z",
            "kubepki-backup-20261126T000000Z",
            "kubepki-backup-20261126T000000Z-1",
            "kubepki-backup-20261126T000000Z-10",
            "kubepki-backup-20261126T000000Z-2",
            "kubeadm-backup-etcd-2026-11-20",
            "kubepki-backup-notes",
            "kubepki-backup-20261101T000000Z-old",
        ];
        for n in names {
            std::fs::create_dir(d.path().join(n)).unwrap();
            std::fs::write(d.path().join(n).join("manifest.json"), "[]").unwrap();
        }
        let current = d.path().join("kubepki-backup-20261127T000000Z");
        std::fs::create_dir(&current).unwrap();
        let removed = prune(&current, 3).unwrap();
        let removed: Vec<_> = removed.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(
            removed,
            ["kubepki-backup-20261126T000000Z-1", "kubepki-backup-20261126T000000Z", "kubepki-backup-20261125T000000Z"]
        );
        let mut left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "kubeadm-backup-etcd-2026-11-20",
                "kubepki-backup-20261101T000000Z-old",
                "kubepki-backup-20261126T000000Z-10",
                "kubepki-backup-20261126T000000Z-2",
                "kubepki-backup-20261127T000000Z",
                "kubepki-backup-notes",
            ]
        );
        // The current backup is kept whatever `keep` says.
        assert_eq!(prune(&current, 1).unwrap().len(), 2);
        assert!(current.is_dir());
    }

    #[test]
    fn a_run_dir_is_absolute_under_a_parent_made_0700() {
        let d = tempfile::tempdir().unwrap();
        let cert_dir = d.path().join("pki");
        // The default parent, and a relative --backup-dir resolved from the working directory.
        let default = parent_dir(None, &cert_dir).unwrap();
        assert_eq!(default, d.path().canonicalize().unwrap().join("tmp"));
        let relative = parent_dir(Some(Path::new("some/../backups")), &cert_dir).unwrap();
        assert_eq!(relative, std::env::current_dir().unwrap().canonicalize().unwrap().join("backups"));

        let parent = d.path().join("cron/backups");
        let first = run_dir(&parent, OffsetDateTime::UNIX_EPOCH).unwrap();
        assert_eq!(fsio::mode_of(&parent).unwrap(), 0o700);
        assert!(first.is_absolute());
        assert_eq!(first, parent.canonicalize().unwrap().join("kubepki-backup-19700101T000000Z"));
        Backup::create(&first, &[]).unwrap();
        // The same second again: a suffix, as the default location has.
        let second = run_dir(&parent, OffsetDateTime::UNIX_EPOCH).unwrap();
        assert_eq!(second.file_name().unwrap(), "kubepki-backup-19700101T000000Z-1");

        let file = d.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let err = parent_dir(Some(&file), &cert_dir).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err}");
        assert!(err.to_string().contains("names a file"), "{err}");
    }

    #[test]
    fn only_kubepki_stamped_names_are_backups() {
        for name in ["kubepki-backup-20261127T072201Z", "kubepki-backup-20261127T072201Z-12"] {
            assert!(is_backup_name(name), "{name}");
        }
        for name in [
            "kubepki-backup-",
            "kubepki-backup-notes",
            "kubepki-backup-20261127T072201Z-",
            "kubepki-backup-20261127T072201Z-x",
            "kubepki-backup-2026112XT072201Z",
            "kubeadm-backup-etcd-2026-11-20",
            ".kubepki-backup-20261127T072201Z.kubepki-new",
        ] {
            assert!(!is_backup_name(name), "{name}");
        }
    }

    #[test]
    fn backup_and_restore_round_trip_with_modes() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("pki/a.key");
        std::fs::create_dir_all(key.parent().unwrap()).unwrap();
        std::fs::write(&key, "old key").unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let dir = default_dir(&d.path().join("pki"), OffsetDateTime::UNIX_EPOCH);
        assert!(dir.ends_with("tmp/kubepki-backup-19700101T000000Z"));
        let b = Backup::create(&dir, &[&key]).unwrap();
        assert_eq!(fsio::mode_of(&dir).unwrap(), 0o700);
        std::fs::write(&key, "new key").unwrap();
        let opened = Backup::open(&dir).unwrap();
        assert_eq!(opened.entries, b.entries);
        opened.restore(&d.path().join("pki")).unwrap();
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "old key");
        assert_eq!(fsio::mode_of(&key).unwrap(), 0o600);
        assert_ne!(default_dir(&d.path().join("pki"), OffsetDateTime::UNIX_EPOCH), dir);
    }

    #[test]
    fn a_file_whose_path_is_not_utf8_is_refused_before_the_backup_is_made() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join(std::ffi::OsStr::from_bytes(b"pki-\xff/a.key"));
        std::fs::create_dir_all(key.parent().unwrap()).unwrap();
        std::fs::write(&key, "old key").unwrap();
        let dir = d.path().join("backup");
        let e = Backup::create(&dir, &[&key]).unwrap_err().to_string();
        assert!(e.contains("manifest.json") && e.contains("UTF-8"), "{e}");
        assert!(!dir.exists(), "a backup without its manifest was made");
    }
}
