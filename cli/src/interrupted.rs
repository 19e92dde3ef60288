//! An interrupted rotation's owed steps (its `--exec` and verification), finished by whichever
//! writing command opens the cert dir next ([`kubepki_rotator::rotation::pending`]).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use kubepki_rotator::rotation::pending::{self, Pending};

/// Takes the lock if a rotation owes anything, finishes it (or undoes it: an error), says so.
pub(crate) fn finish(cert_dir: &Path, kubeconfig_dir: &Path, lock_timeout: Duration) -> Result<()> {
    say(pending::finish_interrupted(cert_dir, kubeconfig_dir, lock_timeout)?.as_ref());
    Ok(())
}

/// [`finish`] for a command that holds the cert dir's lock.
pub(crate) fn finish_locked(cert_dir: &Path) -> Result<()> {
    say(pending::finish_interrupted_locked(cert_dir)?.as_ref());
    Ok(())
}

/// Says that an interrupted rotation was finished, if one was.
pub(crate) fn say(finished: Option<&Pending>) {
    if let Some(p) = finished {
        eprintln!("kubepki: {}", finished_text(p));
    }
}

/// What finishing an interrupted rotation did, in one line (without a prefix).
pub(crate) fn finished_text(p: &Pending) -> String {
    format!("finished {}: its --exec ran again and every endpoint verified", p.describe())
}
