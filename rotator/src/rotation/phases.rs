//! The phase machinery `rotate-ca` and `rotate-sa` share: prepare → trust → reissue → retire,
//! each recorded with its time, its backups and the files it wrote in a `state.json` kept in
//! the cert dir's state dir, and undone (abort, or a failed `--exec` hook) from its backups.

use std::path::{Path, PathBuf};

use kubepki_pki::fsio;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::rotation::backup::Backup;

/// Where a phased rotation stands.
#[derive(Clone, Copy, Debug, Deserialize, Eq, Ord, PartialEq, PartialOrd, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The new key (or CA) is staged; nothing live changed.
    Prepared,
    /// Every trust point holds old + new.
    Trusted,
    /// The new key signs.
    Reissued,
    /// The old key is gone from every trust point.
    Retired,
}

impl Phase {
    /// The phase's name as the command spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prepared => "prepare",
            Self::Trusted => "trust",
            Self::Reissued => "reissue",
            Self::Retired => "retire",
        }
    }

    /// The phase an abort of this one goes back to (`None`: not started).
    pub fn previous(self) -> Option<Self> {
        match self {
            Self::Prepared => None,
            Self::Trusted => Some(Self::Prepared),
            Self::Reissued => Some(Self::Trusted),
            Self::Retired => Some(Self::Reissued),
        }
    }
}

/// One completed phase.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseRecord {
    /// The phase.
    pub phase: Phase,
    /// When it completed (RFC 3339).
    pub time: String,
    /// The backups of what it replaced, in the order they were taken (none for prepare);
    /// absolute.
    pub backups: Vec<PathBuf>,
    /// The files it wrote, absolute: what an abort must put back (empty in the state of an
    /// older kubepki).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub written: Vec<PathBuf>,
}

/// A rotation's state file in its directory.
pub(crate) const STATE_FILE: &str = "state.json";

/// Now, to the second, as RFC 3339.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// `t`, to the second, as RFC 3339.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0).unwrap_or(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The state recorded in `dir`, if a rotation was started; `what` names it in errors.
pub(crate) fn read_state<T: DeserializeOwned>(dir: &Path, what: &'static str) -> Result<Option<T>> {
    let path = dir.join(STATE_FILE);
    let Some(bytes) = fsio::read_optional(&path, fsio::MAX_CONFIG_FILE, what)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Config { path: path.clone(), reason: format!("not a {what}: {e}") })
}

/// Saves `state` in `dir` (0700), replacing the file atomically (0600).
pub(crate) fn save_state<T: Serialize>(dir: &Path, state: &T) -> Result<()> {
    let path = dir.join(STATE_FILE);
    let body = crate::text::json_record(state, &path)?;
    fsio::create_dir_all(dir, 0o700)?;
    Ok(fsio::replace_file(&path, &body, 0o600)?)
}

/// A fresh backup directory for `phase` in the rotation's directory `dir`: `backups/<phase>-<n>`.
pub(crate) fn backup_dir(dir: &Path, phase: Phase) -> PathBuf {
    let base = dir.join("backups");
    (1..).map(|n| base.join(format!("{}-{n}", phase.as_str()))).find(|p| !p.exists()).unwrap_or(base)
}

/// Puts back what the phase `record` replaced, from its backups, into `cert_dir`; returns the
/// files restored.
///
/// Every backup is checked whole before anything is restored, so that a phase is never half
/// undone: if one is missing or lacks a file, nothing is restored and `Ok(Err(reason))` (which
/// the caller turns into its own error, with the files left as the phase wrote them) says which. The backups are removed only once all are restored: an undo that failed half-way can
/// be run again.
pub(crate) fn undo(record: &PhaseRecord, cert_dir: &Path) -> Result<std::result::Result<Vec<PathBuf>, String>> {
    let mut backups = Vec::with_capacity(record.backups.len());
    let mut problems = Vec::new();
    for dir in &record.backups {
        if dir.is_relative() {
            problems.push(format!("its backup {} is a relative path that names no backup", dir.display()));
            continue;
        }
        match Backup::open(dir) {
            Err(_) => problems.push(format!("its backup {} is missing (no readable manifest.json)", dir.display())),
            Ok(b) => {
                let missing = b.missing();
                if missing.is_empty() {
                    backups.push(b);
                } else {
                    let files: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
                    problems.push(format!("its backup {} lacks its copies of {}", dir.display(), files.join(", ")));
                }
            }
        }
    }
    if !problems.is_empty() {
        return Ok(Err(format!("{}; nothing was restored", problems.join("; "))));
    }
    // Newest first, so that the oldest state of each file wins.
    let mut restored = Vec::new();
    for backup in backups.iter().rev() {
        match backup.restore(cert_dir) {
            Ok(files) => restored.extend(files),
            Err(e) => {
                let done: Vec<String> = restored.iter().map(|p| p.display().to_string()).collect();
                return Ok(Err(format!(
                    "restoring from {} failed ({e}); restored before it: {}; the backups are kept, run abort again",
                    backup.dir.display(),
                    if done.is_empty() { "nothing".into() } else { done.join(", ") }
                )));
            }
        }
    }
    for backup in &backups {
        std::fs::remove_dir_all(&backup.dir)
            .map_err(|source| kubepki_pki::Error::Write { path: backup.dir.clone(), source })?;
    }
    Ok(Ok(restored))
}

/// Removes a rotation's directory once its first phase is undone, and its parent (`ca-rotation/`)
/// when nothing else is in it.
pub(crate) fn remove_dir(dir: &Path) -> Result<()> {
    std::fs::remove_dir_all(dir).map_err(|source| kubepki_pki::Error::Write { path: dir.to_owned(), source })?;
    // Best effort: the parent holds nothing else, or another rotation's state and stays.
    if let Some(parent) = dir.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    Ok(())
}

/// A rotation's recorded state, as [`abort`] steps it back.
pub(crate) trait Recorded: Serialize {
    /// Every completed phase, in order.
    fn history_mut(&mut self) -> &mut Vec<PhaseRecord>;
    /// Sets the last completed phase.
    fn set_phase(&mut self, phase: Phase);
}

/// Undoes the last phase of `state` (kept in `dir`, a rotation of `cert_dir`) with [`undo`] and
/// steps the state back; the first phase's undo removes `dir`. Returns the phase now reached
/// and the files restored, or `None` when no phase is recorded; a backup that cannot give
/// everything back is `incomplete(record, reason)`, nothing restored.
pub(crate) fn abort<S: Recorded>(
    dir: &Path,
    cert_dir: &Path,
    mut state: S,
    incomplete: impl FnOnce(&PhaseRecord, String) -> Error,
) -> Result<Option<(Option<Phase>, Vec<PathBuf>)>> {
    let Some(record) = state.history_mut().pop() else { return Ok(None) };
    let restored = undo(&record, cert_dir)?.map_err(|reason| incomplete(&record, reason))?;
    match record.phase.previous() {
        None => {
            remove_dir(dir)?;
            Ok(Some((None, restored)))
        }
        Some(previous) => {
            state.set_phase(previous);
            save_state(dir, &state)?;
            Ok(Some((Some(previous), restored)))
        }
    }
}

/// What undoing `phase` (a failed hook's abort) did, in words.
pub(crate) fn restored(phase: &str, (back_to, files): (Option<Phase>, Vec<PathBuf>)) -> crate::rotation::Restored {
    crate::rotation::Restored {
        files,
        note: format!("the {phase} phase was undone (back at {})", back_to.map_or("the start", Phase::as_str)),
    }
}
