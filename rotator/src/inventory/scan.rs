//! `--file`: certificate files and directories scanned for them, parsed in parallel.
//!
//! Directories are walked recursively for `.crt`, `.pem` and `.cert` files (any case). Entries
//! whose names start with `.` are skipped (temporary files, and the `..data` trees of projected
//! volumes, whose certificates are reachable through the visible symlinks), and so are
//! symlinks to directories (no cycles). A file found in a directory that holds no certificate
//! at all (a `*-key.pem`) is skipped; a file named explicitly must hold one.
//!
//! Directories are listed on rayon's pool, each subdirectory opened relative to its parent; a
//! directory that holds several certificate files stays open until they are read, and they are
//! opened relative to it (the kernel walks one name rather than the whole path, per file).
//! Each file is read with one bounded read, parsed, and dropped: only the parsed certificates
//! are kept. Files are parsed on rayon's pool; no process is started per file.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kubepki_pki::fsio::MAX_PEM_FILE;
use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir};

use crate::inventory::discover::{items_from, parse_certificates};
use crate::inventory::{Found, InputError, Item, Location};

/// A file to parse: its path, where in the path its name in the inventory starts (the path
/// below the named directory, or a named file's own name), whether the user named it, whether
/// the walk found it as a symlink (it counts only if it leads to a regular file, which opening
/// it tells), and the directory to open it relative to (when that directory is kept open).
struct Candidate {
    path: PathBuf,
    name_at: usize,
    explicit: bool,
    link: bool,
    dir: Option<Arc<OwnedFd>>,
}

impl Candidate {
    /// Its name in the inventory.
    fn name(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.path.as_os_str().as_bytes()[self.name_at..])
    }
}

/// How many directories a walk keeps open for the files in them: those with at least two
/// certificate files, first come, up to this many (well below the usual limit of 1,024
/// descriptors). Other files are opened by their path.
const OPEN_DIRS: usize = 64;

/// Directories are opened without following a symlink (a symlink to a directory is not
/// walked: no cycles) and only as directories.
const DIR_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC).union(OFlags::NOFOLLOW);

/// Files are opened without blocking (a FIFO put in a certificate's place is refused, not
/// waited on) and never as a controlling terminal.
const FILE_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::CLOEXEC).union(OFlags::NOCTTY).union(OFlags::NONBLOCK);

/// Whether a file name has a certificate extension.
fn is_certificate_name(name: &[u8]) -> bool {
    [&b".crt"[..], b".pem", b".cert"]
        .iter()
        .any(|ext| name.len() >= ext.len() && name[name.len() - ext.len()..].eq_ignore_ascii_case(ext))
}

/// The certificate files under the named paths, found but not read yet.
pub struct FileScan {
    candidates: Vec<Candidate>,
    /// Named paths that do not exist, directories that cannot be listed.
    pub errors: Vec<InputError>,
}

impl FileScan {
    /// Finds the certificate files of `paths` (files, or directories to walk).
    pub fn walk(paths: &[PathBuf]) -> Self {
        let mut walked = Walked::default();
        // One budget of open directories for the whole walk, however many directories are named.
        let open_dirs = AtomicUsize::new(OPEN_DIRS);
        for path in paths {
            match fs::metadata(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    walked.errors.push(InputError::new(path.display().to_string(), "does not exist"));
                }
                Err(e) => walked.errors.push(InputError::new(path.display().to_string(), format!("cannot read: {e}"))),
                Ok(m) if m.is_dir() => {
                    // The named directory may itself be a symlink: followed, as the user named it.
                    let flags = DIR_FLAGS.difference(OFlags::NOFOLLOW);
                    // Names are the paths below it: what follows it and a slash.
                    let bytes = path.as_os_str().as_bytes();
                    let name_at = bytes.len() + usize::from(!bytes.ends_with(b"/"));
                    match rustix::fs::open(path, flags, Mode::empty()) {
                        Ok(fd) => walked.append(walk(fd, path, name_at, &open_dirs)),
                        Err(e) => walked.errors.push(cannot_list(path, e)),
                    }
                }
                Ok(_) => walked.candidates.push(Candidate {
                    name_at: path.as_os_str().len() - path.file_name().map_or(0, |n| n.len()),
                    path: path.clone(),
                    explicit: true,
                    link: false,
                    dir: None,
                }),
            }
        }
        let Walked { mut candidates, errors } = walked;
        // The same file named twice (or named and found in a named directory) is read once.
        // One directory cannot yield a file twice.
        if paths.len() > 1 {
            let mut seen = std::collections::HashSet::new();
            candidates.retain(|c| seen.insert(c.path.clone()));
        }
        Self { candidates, errors }
    }

    /// How many files were found.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    /// Whether no file was found.
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }

    /// Reads and parses the files `chunk` at a time, each chunk on rayon's pool, turning every
    /// item into `each(item)` on the pool too (linking it, judging it, writing it): the results
    /// of one chunk, in order, per iteration. Only one chunk's certificates exist at a time
    /// unless `each` keeps them. The walk's errors are not repeated here.
    pub fn chunks<T, F>(self, chunk: usize, each: F) -> impl Iterator<Item = Chunk<T>>
    where
        T: Send,
        F: Fn(Item) -> T + Sync,
    {
        let mut candidates = self.candidates.into_iter();
        std::iter::from_fn(move || {
            let batch: Vec<Candidate> = candidates.by_ref().take(chunk.max(1)).collect();
            if batch.is_empty() {
                return None;
            }
            let results: Vec<Chunk<T>> = batch
                .into_par_iter()
                .map(|c| {
                    let found = parse_candidate(c);
                    Chunk { items: found.items.into_iter().map(&each).collect(), errors: found.errors }
                })
                .collect();
            let mut all =
                Chunk { items: Vec::with_capacity(results.iter().map(|r| r.items.len()).sum()), errors: Vec::new() };
            for mut r in results {
                all.items.append(&mut r.items);
                all.errors.append(&mut r.errors);
            }
            Some(all)
        })
    }
}

/// What one chunk of a [`FileScan`] yielded: a result per certificate, and what could not be read.
pub struct Chunk<T> {
    /// One result per certificate, in walk order.
    pub items: Vec<T>,
    /// The files that could not be read or parsed.
    pub errors: Vec<InputError>,
}

/// Scans `paths` (files, or directories to walk) and parses every certificate file.
pub(crate) fn files(paths: &[PathBuf]) -> Found {
    let mut scan = FileScan::walk(paths);
    let mut found = Found { errors: std::mem::take(&mut scan.errors), ..Found::default() };
    let all = scan.len();
    for mut chunk in scan.chunks(all, |item| item) {
        found.items.append(&mut chunk.items);
        found.errors.append(&mut chunk.errors);
    }
    found
}

/// What a directory and those below it yielded, in name order.
#[derive(Default)]
struct Walked {
    candidates: Vec<Candidate>,
    errors: Vec<InputError>,
}

impl Walked {
    fn error(e: InputError) -> Self {
        Self { candidates: Vec::new(), errors: vec![e] }
    }

    fn append(&mut self, mut other: Self) {
        self.candidates.append(&mut other.candidates);
        self.errors.append(&mut other.errors);
    }
}

/// What one entry of a directory yielded: a certificate file, or what a subdirectory did.
enum Part {
    File(Candidate),
    Below(Walked),
}

fn cannot_list(path: &Path, e: rustix::io::Errno) -> InputError {
    InputError::new(path.display().to_string(), format!("cannot list: {}", std::io::Error::from(e)))
}

/// An entry worth looking at: a directory to walk, or a certificate file (and whether it is a
/// symlink).
enum Entry {
    Dir(Vec<u8>),
    File(Vec<u8>, bool),
}

impl Entry {
    fn name(&self) -> &[u8] {
        match self {
            Self::Dir(n) | Self::File(n, _) => n,
        }
    }
}

/// The entries of the open directory `dir`, sorted by name: subdirectories, and certificate
/// files (by extension; a symlink is kept for its name, and counts only if opening it finds a
/// regular file). Hidden entries are left out.
fn list(dir: &OwnedFd) -> rustix::io::Result<Vec<Entry>> {
    let mut buf = Vec::with_capacity(32 * 1024);
    let mut entries = RawDir::new(dir, buf.spare_capacity_mut());
    let mut out = Vec::new();
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name.first() == Some(&b'.') {
            continue; // ".", "..", temporary files, `..data`
        }
        let kind = match entry.file_type() {
            // Some file systems do not say: ask, without following a symlink.
            FileType::Unknown => match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => FileType::from_raw_mode(stat.st_mode),
                Err(_) => continue, // gone meanwhile
            },
            kind => kind,
        };
        if kind == FileType::Directory {
            out.push(Entry::Dir(name.to_vec()));
            continue;
        }
        if is_certificate_name(name) {
            out.push(Entry::File(name.to_vec(), kind == FileType::Symlink));
        }
    }
    out.sort_unstable_by(|a, b| a.name().cmp(b.name()));
    Ok(out)
}

/// Walks the open directory `dir` (at `path`), its subdirectories in parallel; the files'
/// inventory names start at `name_at` in their paths (below the directory the user named).
/// `open_dirs` counts down the directories that may stay open for their files.
fn walk(dir: OwnedFd, path: &Path, name_at: usize, open_dirs: &AtomicUsize) -> Walked {
    let entries = match list(&dir) {
        Ok(entries) => entries,
        Err(e) => return Walked::error(cannot_list(path, e)),
    };
    let files = entries.iter().filter(|e| matches!(e, Entry::File(..))).count();
    let keep_open =
        files >= 2 && open_dirs.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok();
    let dir = Arc::new(dir);
    let parts: Vec<Part> = entries
        .into_par_iter()
        .map(|entry| {
            let name = entry.name();
            let child = path.join(OsStr::from_bytes(name));
            match entry {
                Entry::Dir(ref name) => {
                    Part::Below(match rustix::fs::openat(&*dir, name.as_slice(), DIR_FLAGS, Mode::empty()) {
                        Ok(sub) => walk(sub, &child, name_at, open_dirs),
                        Err(e) => Walked::error(cannot_list(&child, e)),
                    })
                }
                Entry::File(_, link) => Part::File(Candidate {
                    path: child,
                    name_at,
                    explicit: false,
                    link,
                    dir: keep_open.then(|| Arc::clone(&dir)),
                }),
            }
        })
        .collect();
    let mut walked = Walked::default();
    let found = parts.iter().map(|p| if let Part::Below(w) = p { w.candidates.len() } else { 1 }).sum();
    walked.candidates.reserve_exact(found);
    for part in parts {
        match part {
            Part::File(c) => walked.candidates.push(c),
            Part::Below(below) => walked.append(below),
        }
    }
    walked
}

/// Reads a whole file, bounded: open, fstat (a regular file of at most [`MAX_PEM_FILE`]
/// bytes: never a FIFO that would block), and usually one `read` of the size it announced.
/// A symlink found by a walk (`link`) that cannot be opened or leads to no regular file is
/// `None`: not a certificate file, not an error.
fn read_bounded(path: &Path, dir: Option<&OwnedFd>, link: bool) -> Result<Option<Vec<u8>>, String> {
    let failed = |e: std::io::Error| format!("{}: cannot read: {e}", path.display());
    let opened = match (dir, path.file_name()) {
        (Some(dir), Some(name)) => rustix::fs::openat(dir, name, FILE_FLAGS, Mode::empty()),
        _ => rustix::fs::open(path, FILE_FLAGS, Mode::empty()),
    };
    let opened = match opened {
        Err(_) if link => return Ok(None),
        opened => opened.map_err(|e| failed(e.into()))?,
    };
    let mut file = File::from(opened);
    let meta = file.metadata().map_err(failed)?;
    if !meta.is_file() {
        if link {
            return Ok(None);
        }
        return Err(format!("{} is not a regular file", path.display()));
    }
    let too_large = |size: u64| {
        format!("{} is {size} bytes, more than the {MAX_PEM_FILE} bytes a certificate file may have", path.display())
    };
    if meta.len() > MAX_PEM_FILE {
        return Err(too_large(meta.len()));
    }
    // Ask for one byte more than the size: getting exactly the size is the whole file, without
    // another read to find the end. A file that grows meanwhile is read on, bounded.
    let size = meta.len() as usize;
    let mut buf = vec![0u8; size + 1];
    let mut len = 0;
    while len < size {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(failed(e)),
        }
    }
    buf.truncate(len);
    if len > size {
        (&mut file).take(MAX_PEM_FILE + 1 - len as u64).read_to_end(&mut buf).map_err(failed)?;
        if buf.len() as u64 > MAX_PEM_FILE {
            return Err(too_large(buf.len() as u64));
        }
    }
    Ok(Some(buf))
}

fn parse_candidate(c: Candidate) -> Found {
    let mut found = Found::default();
    let source = c.path.display().to_string();
    let certs = match read_bounded(&c.path, c.dir.as_deref(), c.link) {
        Ok(None) => return found,
        Ok(Some(bytes)) => {
            let bytes = zeroize::Zeroizing::new(bytes);
            // A PEM file without any certificate (a key, a CSR) is not a certificate file.
            if kubepki_pki::pem::looks_like_pem(&bytes) && !contains(&bytes, b"-----BEGIN CERTIFICATE-----") {
                if c.explicit {
                    found.errors.push(InputError::new(source, "holds no certificate"));
                }
                return found;
            }
            parse_certificates(&bytes, &source)
        }
        Err(e) => Err(e),
    };
    let name = c.name().into_owned();
    found.items = match certs {
        // The common case, one certificate: the path moves into its location.
        Ok(mut certs) if certs.len() == 1 => match certs.pop() {
            Some(cert) => vec![Item::new(name, Location::File { path: c.path, index: 0 }, Ok(cert))],
            None => Vec::new(),
        },
        certs => items_from(&name, certs, |index| Location::File { path: c.path.clone(), index }, None),
    };
    found
}

/// Whether `needle` occurs in `haystack` (candidates found by its first byte, then compared).
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else { return true };
    let mut from = 0;
    while let Some(i) = haystack[from..].iter().position(|&b| b == first) {
        let at = from + i + 1;
        if haystack[at..].starts_with(rest) {
            return true;
        }
        from = at;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_finds_a_needle_anywhere() {
        assert!(contains(b"xx-----BEGIN CERTIFICATE-----", b"-----BEGIN CERTIFICATE-----"));
        assert!(contains(b"--a", b"-a"));
        assert!(!contains(b"-----BEGIN CERTIFICAT", b"-----BEGIN CERTIFICATE"));
        assert!(!contains(b"", b"-"));
    }

    #[test]
    fn files_are_read_whole_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0, 1, 1000, 70_000] {
            let p = dir.path().join(format!("{size}.crt"));
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            fs::write(&p, &data).unwrap();
            assert_eq!(read_bounded(&p, None, false).unwrap(), Some(data), "{size}");
        }
        let big = dir.path().join("big.crt");
        fs::write(&big, vec![b'x'; MAX_PEM_FILE as usize + 1]).unwrap();
        assert!(read_bounded(&big, None, false).unwrap_err().contains("more than the"));
        assert!(read_bounded(dir.path(), None, false).unwrap_err().contains("not a regular file"));
        // A symlink found by a walk that leads to no file is not a candidate, not an error.
        assert_eq!(read_bounded(dir.path(), None, true), Ok(None));
        assert_eq!(read_bounded(&dir.path().join("absent.crt"), None, true), Ok(None));
    }

    #[test]
    fn certificate_extensions_are_matched_without_case() {
        for name in ["a.crt", "b.PEM", "c.Cert", "tls.crt"] {
            assert!(is_certificate_name(name.as_bytes()), "{name}");
        }
        for name in ["a.key", "crt", "a.crt.bak", "a.der"] {
            assert!(!is_certificate_name(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn walking_skips_hidden_entries_keys_and_other_extensions() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("sub/..data")).unwrap();
        fs::create_dir_all(root.join(".hidden")).unwrap();
        for f in ["a.crt", "sub/b.pem", "sub/..data/c.crt", ".hidden/d.crt", "e.key", ".f.crt.kubepki-new"] {
            fs::write(root.join(f), "x").unwrap();
        }
        // A symlink to a directory is neither walked nor read.
        std::os::unix::fs::symlink(root.join("sub"), root.join("loop.crt")).unwrap();
        let found = files(&[root.to_owned()]);
        let names: Vec<_> = found.items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["a.crt", "sub/b.pem"]);
        assert!(found.errors.is_empty());
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_and_links_count_only_to_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        fs::write(root.join("a.crt"), b"x").unwrap();
        rustix::fs::mknodat(rustix::fs::CWD, root.join("fifo.crt"), FileType::Fifo, Mode::RUSR | Mode::WUSR, 0)
            .unwrap();
        std::os::unix::fs::symlink("a.crt", root.join("link.crt")).unwrap();
        std::os::unix::fs::symlink("nowhere.crt", root.join("dangling.crt")).unwrap();
        std::os::unix::fs::symlink("fifo.crt", root.join("fifo-link.crt")).unwrap();
        // A FIFO without a writer would block a plain open forever: scan on a thread, bounded.
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || send.send(files(&[root])).unwrap());
        let found = receive.recv_timeout(std::time::Duration::from_secs(20)).expect("the scan did not block");
        let items: Vec<_> =
            found.items.iter().map(|i| (i.name.as_str(), i.certificate.as_ref().err().map(String::as_str))).collect();
        assert_eq!(items.len(), 3, "{items:?}");
        assert_eq!(items[0].0, "a.crt");
        assert_eq!(items[1].0, "fifo.crt");
        assert!(items[1].1.unwrap().ends_with("fifo.crt is not a regular file"), "{items:?}");
        assert_eq!(items[2].0, "link.crt");
        assert!(found.errors.is_empty());
    }

    #[test]
    fn subdirectories_are_walked_in_name_order_and_their_files_read_relative_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // Enough directories with several files that some are read through a kept-open
        // directory and the rest by path once the budget is spent.
        let mut expected = Vec::new();
        for d in 0..(OPEN_DIRS + 6) {
            let sub = root.join(format!("d{d:03}"));
            fs::create_dir_all(sub.join("deeper")).unwrap();
            for f in ["b.crt", "a.pem", "deeper/c.cert"] {
                fs::write(sub.join(f), format!("{d}/{f}")).unwrap();
            }
            expected.extend([format!("d{d:03}/a.pem"), format!("d{d:03}/b.crt"), format!("d{d:03}/deeper/c.cert")]);
        }
        let scan = FileScan::walk(&[root.to_owned()]);
        let names: Vec<_> = scan.candidates.iter().map(|c| c.name().into_owned()).collect();
        assert_eq!(names, expected);
        let kept = scan.candidates.iter().filter(|c| c.dir.is_some()).count();
        assert_eq!(kept, OPEN_DIRS * 2, "two files in each of the first directories kept open");
        // Named one by one, the directories share the one budget.
        let named: Vec<PathBuf> = (0..(OPEN_DIRS + 6)).map(|d| root.join(format!("d{d:03}"))).collect();
        let separately = FileScan::walk(&named);
        assert_eq!(separately.candidates.len(), expected.len());
        assert_eq!(separately.candidates.iter().filter(|c| c.dir.is_some()).count(), OPEN_DIRS * 2);
        for c in scan.candidates {
            let want = fs::read(&c.path).unwrap();
            assert_eq!(read_bounded(&c.path, c.dir.as_deref(), c.link).unwrap(), Some(want), "{}", c.name());
        }
    }

    #[test]
    fn a_key_only_pem_is_skipped_in_a_directory_but_an_error_when_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("x-key.pem");
        fs::write(&key, "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n").unwrap();
        let found = files(&[dir.path().to_owned()]);
        assert!(found.items.is_empty() && found.errors.is_empty(), "{found:?}");
        let found = files(std::slice::from_ref(&key));
        assert_eq!(found.errors.len(), 1);
        assert!(found.errors[0].to_string().ends_with("x-key.pem: holds no certificate"), "{:?}", found.errors);
    }

    #[test]
    fn garbage_is_an_invalid_item_and_a_missing_path_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("junk.crt"), b"\x00\x01not a certificate").unwrap();
        fs::write(dir.path().join("empty.pem"), b"").unwrap();
        let found = files(&[dir.path().to_owned(), dir.path().join("nope.crt")]);
        let invalid: Vec<_> = found.items.iter().map(|i| (i.name.as_str(), i.certificate.is_err())).collect();
        assert_eq!(invalid, [("empty.pem", true), ("junk.crt", true)]);
        assert!(found.items[0].certificate.as_ref().unwrap_err().contains("empty"));
        assert!(found.items[1].certificate.as_ref().unwrap_err().contains("neither a PEM nor a DER certificate"));
        assert_eq!(found.errors.len(), 1);
        assert!(found.errors[0].to_string().ends_with("nope.crt: does not exist"));
    }
}
