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
//! # How the parts fit
//!
//! - *Bounded reads* (`read`): [`read_optional`], [`read_required`] and [`read_pair`] refuse
//!   oversized files, non-files and dangling links unread; [`read_pair`] reads a certificate
//!   and its key as one generation while a commit may be replacing them.
//! - *The journal transaction* (`journal`): a [`Transaction`] stages its files beside their
//!   places, journals the renames (the commit point) and carries them out; [`recover`]
//!   completes a transaction a crash interrupted after its commit point and discards one
//!   interrupted before it. Every writing command recovers first, under the cert dir's lock.
//! - *Staging directories* (`new_dir`): a directory that does not exist yet appears whole
//!   through a [`NewDir`], with no journal; a transaction uses one for each new directory.
//! - *Durability* (`durable`): how both make what they staged durable before their commit
//!   point (fsyncs, concurrent, for a few files; `syncfs` for thousands), and the single-step
//!   writes [`replace_file`] and [`create_dir_all`].
//! - *The earlier linked layout* (`linked`): versioned directories an earlier kubepki left,
//!   read consistently and turned into plain files by [`recover`].
//! - *Failpoints* (`failpoint`): for the crash tests, which stop a write at each step.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

mod durable;
mod failpoint;
mod journal;
mod linked;
mod new_dir;
mod read;

pub use durable::{create_dir_all, create_dir_all_unsynced, replace_file, sync_dir};
// For the test suite (the crash tests' failpoints) and the rotator's own failpoints.
#[doc(hidden)]
pub use failpoint::failpoint;
pub use journal::{JOURNAL_NAME, Recovery, Transaction, recover};
pub use new_dir::{NewDir, create_dir_with};
pub use read::{MAX_CONFIG_FILE, MAX_PEM_FILE, PairBytes, mode_of, read_optional, read_pair, read_required};

/// The suffix of a staged file or directory (hidden: `.<name>.kubepki-new`).
pub const TMP_SUFFIX: &str = ".kubepki-new";

fn tmp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}{TMP_SUFFIX}"))
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

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|source| Error::Write { path: to.to_owned(), source })
}
