//! `--file`: certificate files and directories scanned for them, parsed in parallel.
//!
//! Directories are walked recursively for `.crt`, `.pem` and `.cert` files (any case). Entries
//! whose names start with `.` are skipped (temporary files, and the `..data` trees of projected
//! volumes, whose certificates are reachable through the visible symlinks), and so are
//! symlinks to directories (no cycles). A file found in a directory that holds no certificate
//! at all (a `*-key.pem`) is skipped; a file named explicitly must hold one.
//!
//! Each file is read with one bounded read, parsed, and dropped: only the parsed certificates
//! are kept. Files are parsed on rayon's pool; no process is started per file.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use kubepki_pki::fsio::MAX_PEM_FILE;
use rayon::prelude::*;

use crate::discover::{items_from, parse_certificates};
use crate::inventory::{Found, InputError, Item, Location};

/// A file to parse: its path, its name in the inventory, and whether the user named it.
struct Candidate {
    path: PathBuf,
    name: String,
    explicit: bool,
}

/// Whether a file name has a certificate extension.
fn is_certificate_name(name: &str) -> bool {
    let name = name.as_bytes();
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
        let (mut candidates, mut errors) = (Vec::new(), Vec::new());
        for path in paths {
            match fs::metadata(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    errors.push(InputError::new(path.display().to_string(), "does not exist"));
                }
                Err(e) => errors.push(InputError::new(path.display().to_string(), format!("cannot read: {e}"))),
                Ok(m) if m.is_dir() => walk(path, path, &mut candidates, &mut errors),
                Ok(_) => candidates.push(Candidate {
                    name: path
                        .file_name()
                        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
                    path: path.clone(),
                    explicit: true,
                }),
            }
        }
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

    /// Reads and parses the files `chunk` at a time, each chunk on rayon's pool, applying
    /// `each` to every item (linking it) on the pool too: the certificates of one chunk, in
    /// order, per iteration. Only one chunk's certificates exist at a time unless the caller
    /// keeps them. The walk's errors are not repeated here.
    pub fn chunks<F>(self, chunk: usize, each: F) -> impl Iterator<Item = Found>
    where
        F: Fn(&mut Item) + Sync,
    {
        let mut candidates = self.candidates.into_iter();
        std::iter::from_fn(move || {
            let batch: Vec<Candidate> = candidates.by_ref().take(chunk.max(1)).collect();
            if batch.is_empty() {
                return None;
            }
            let results: Vec<Found> = batch
                .into_par_iter()
                .map(|c| {
                    let mut found = parse_candidate(c);
                    found.items.iter_mut().for_each(&each);
                    found
                })
                .collect();
            let mut found = Found::default();
            found.items.reserve(results.iter().map(|r| r.items.len()).sum());
            for r in results {
                found.extend(r);
            }
            Some(found)
        })
    }
}

/// Scans `paths` (files, or directories to walk) and parses every certificate file.
pub(crate) fn files(paths: &[PathBuf]) -> Found {
    let mut scan = FileScan::walk(paths);
    let mut found = Found { items: Vec::new(), errors: std::mem::take(&mut scan.errors) };
    let all = scan.len();
    for chunk in scan.chunks(all, |_| {}) {
        found.extend(chunk);
    }
    found
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Candidate>, errors: &mut Vec<InputError>) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return errors.push(InputError::new(dir.display().to_string(), format!("cannot list: {e}"))),
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let file_name = entry.file_name();
        let name = file_name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else { continue };
        if file_type.is_dir() {
            walk(root, &path, out, errors);
            continue;
        }
        if !is_certificate_name(&name) {
            continue;
        }
        // A symlink counts if it leads to a regular file (never into a directory: no cycles).
        if file_type.is_symlink() && !fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        out.push(Candidate { path, name: rel, explicit: false });
    }
}

/// Reads a whole file, bounded: open, fstat (a regular file of at most [`MAX_PEM_FILE`]
/// bytes: never a FIFO that would block), and usually one `read` of the size it announced.
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let failed = |e: std::io::Error| format!("{}: cannot read: {e}", path.display());
    let mut file = File::open(path).map_err(failed)?;
    let meta = file.metadata().map_err(failed)?;
    if !meta.is_file() {
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
    Ok(buf)
}

fn parse_candidate(c: Candidate) -> Found {
    let mut found = Found::default();
    let source = c.path.display().to_string();
    let certs = match read_bounded(&c.path) {
        Ok(bytes) => {
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
    found.items = match certs {
        // The common case, one certificate: the path moves into its location.
        Ok(mut certs) if certs.len() == 1 => match certs.pop() {
            Some(cert) => vec![Item::new(c.name, Location::File { path: c.path, index: 0 }, Ok(cert))],
            None => Vec::new(),
        },
        certs => items_from(&c.name, certs, |index| Location::File { path: c.path.clone(), index }, None),
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
            assert_eq!(read_bounded(&p).unwrap(), data, "{size}");
        }
        let big = dir.path().join("big.crt");
        fs::write(&big, vec![b'x'; MAX_PEM_FILE as usize + 1]).unwrap();
        assert!(read_bounded(&big).unwrap_err().contains("more than the"));
        assert!(read_bounded(dir.path()).unwrap_err().contains("not a regular file"));
    }

    #[test]
    fn certificate_extensions_are_matched_without_case() {
        for name in ["a.crt", "b.PEM", "c.Cert", "tls.crt"] {
            assert!(is_certificate_name(name), "{name}");
        }
        for name in ["a.key", "crt", "a.crt.bak", "a.der"] {
            assert!(!is_certificate_name(name), "{name}");
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
        std::os::unix::fs::symlink(root.join("sub"), root.join("loop.crt")).unwrap();
        let (mut out, mut errors) = (Vec::new(), Vec::new());
        walk(root, root, &mut out, &mut errors);
        let names: Vec<_> = out.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a.crt", "sub/b.pem"]);
        assert!(errors.is_empty());
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
