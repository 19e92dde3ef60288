//! What a rotation still owes once its files are committed, kept durably so that a crash
//! between the write and the hook or verification is finished or undone by the next run.
//!
//! A rotation commits its files in one journaled transaction and only then runs its hook and
//! verifies the live endpoints. Killed in between, the new files would be live with nothing
//! reloaded and nothing checked — and the next run would find nothing due. So before its first
//! step after the write, a run records in the state dir (`pending-rotation.json`, fsynced
//! and renamed into place): the backup that restores the previous files, the hook with its
//! environment, the endpoints to verify, the audit log with the `restore` records a rollback
//! writes, and, while the hook runs, the hook's process group. The record goes once the run is
//! kept or rolled back.
//!
//! The next run that writes to the cert dir ([`resume`]) first ends what is left of the hook's
//! process group, then runs the hook again (with `KUBEPKI_RESUMED=1`) and verifies: the change
//! is finished. If either fails, the files are restored from the backup and `restore` records
//! appended: the change is undone. Either way it says so. (Secrets are not part of the record:
//! `rotate` brings every Secret of its configuration in step with the files on each run.)

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::hook::{Hook, ProcessGroup};
use super::rollback::{Changes, FromBackup, Undone};
use super::verification::Verification;
use crate::error::{Error, Result};
use crate::rotation::audit_log::{self, Record};
use crate::rotation::backup::Backup;
use crate::verify::TargetKind;

/// The record's file name in the state dir.
pub const PENDING_FILE: &str = "pending-rotation.json";

/// What a committed run still owes; see the [module](self).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    /// Format version: 1.
    pub schema_version: u32,
    /// What wrote the record (`rotate`).
    pub command: String,
    /// When the run started, RFC 3339.
    pub started_at: String,
    /// The run's process ID.
    pub pid: u32,
    /// The certificates renewed.
    pub renewed: Vec<String>,
    /// The run's backup: restoring it undoes the change.
    pub backup_dir: PathBuf,
    /// The hook's command line.
    pub hook: Option<String>,
    /// The hook's environment (the run's `KUBEPKI_*` variables).
    pub hook_env: Vec<(String, String)>,
    /// The hook's process group while it runs.
    pub hook_group: Option<ProcessGroup>,
    /// The endpoints to verify: kind and URL.
    pub verify: Vec<(String, String)>,
    /// How long verification waits for an endpoint that restarts, in seconds.
    pub verify_wait_seconds: u64,
    /// The audit log.
    pub audit_log: Option<PathBuf>,
    /// The records a rollback appends to the audit log.
    pub restore_records: Vec<Record>,
}

/// Where the record lives for `cert_dir`.
pub fn path(cert_dir: &Path) -> PathBuf {
    kubepki_pki::lock::state_dir(cert_dir).join(PENDING_FILE)
}

/// The record left for `cert_dir`, if any; an unreadable record is an error naming the file.
pub fn read(cert_dir: &Path) -> Result<Option<Pending>> {
    let file = path(cert_dir);
    let Some(bytes) = kubepki_pki::fsio::read_optional(&file, kubepki_pki::fsio::MAX_CONFIG_FILE, "record")? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Config { path: file, reason: format!("not a kubepki pending-rotation record: {e}") })
}

impl Pending {
    /// `the rotation interrupted at <time> (pid <n>, renewing <names>)`, as every message about
    /// it names it.
    pub fn describe(&self) -> String {
        format!(
            "the rotation interrupted at {} (pid {}, renewing {})",
            self.started_at,
            self.pid,
            self.renewed.join(" ")
        )
    }

    /// Writes the record durably (a crash leaves the old record or the new one).
    pub fn store(&self, cert_dir: &Path) -> Result<()> {
        let file = path(cert_dir);
        let json = crate::text::json_record(self, &file)?;
        if let Some(dir) = file.parent() {
            kubepki_pki::fsio::create_dir_all(dir, 0o700)?;
        }
        kubepki_pki::fsio::replace_file(&file, &json, 0o600)?;
        Ok(())
    }

    /// The verification the run asked for.
    fn verification(&self) -> Result<Verification> {
        let endpoints = self
            .verify
            .iter()
            .map(|(kind, url)| {
                TargetKind::ALL.into_iter().find(|k| k.name() == kind).map(|k| (k, url.clone())).ok_or_else(|| {
                    Error::Config {
                        path: PathBuf::from(PENDING_FILE),
                        reason: format!("unknown endpoint kind {kind:?}"),
                    }
                })
            })
            .collect::<Result<_>>()?;
        Ok(Verification { endpoints, wait: Duration::from_secs(self.verify_wait_seconds) })
    }
}

/// Removes the record (durably).
pub fn clear(cert_dir: &Path) -> Result<()> {
    let file = path(cert_dir);
    match std::fs::remove_file(&file) {
        Ok(()) => {
            if let Some(dir) = file.parent() {
                kubepki_pki::fsio::sync_dir(dir)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(kubepki_pki::Error::Write { path: file, source }.into()),
    }
}

/// How an interrupted run's owed steps ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Resumed {
    /// The hook ran and every endpoint verified: the change is kept.
    Finished {
        /// The interrupted run's record.
        pending: Box<Pending>,
        /// Whether a hook left running by the interrupted run had to be ended first.
        ended_leftover_hook: bool,
    },
    /// The hook or verification failed: the files were restored from the backup.
    RolledBack {
        /// The interrupted run's record.
        pending: Box<Pending>,
        /// What failed.
        cause: Box<Error>,
        /// What was put back.
        undone: Box<Undone>,
    },
}

/// Finishes or undoes what an interrupted run on `cert_dir` still owed (see the
/// [module](self)); `None` when nothing was pending. The caller holds the cert dir's lock.
pub fn resume(cert_dir: &Path) -> Result<Option<Resumed>> {
    let Some(pending) = read(cert_dir)? else { return Ok(None) };
    let ended_leftover_hook = pending.hook_group.is_some_and(|g| g.end(Duration::from_secs(5)));

    let mut env: Vec<(String, OsString)> =
        pending.hook_env.iter().map(|(k, v)| (k.clone(), OsString::from(v))).collect();
    env.push(("KUBEPKI_RESUMED".into(), "1".into()));
    let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (k.as_str(), v.as_os_str())).collect();
    let outcome =
        pending.hook.as_ref().map_or(Ok(()), |command| Hook::shell(command.clone()).run(&env)).and_then(|()| {
            let verification = pending.verification()?;
            verification.check(&verification.targets(cert_dir)?).map(|_| ())
        });
    let resumed = match outcome {
        Ok(()) => Resumed::Finished { pending: Box::new(pending), ended_leftover_hook },
        Err(cause) => {
            let backup = Backup::open(&pending.backup_dir)?;
            let files = FromBackup { backup: &backup, cert_dir };
            let changes = Changes { files: Some(&files), renewed: &[], audit_log: None, secrets: None };
            let mut undone = changes.roll_back();
            if undone.is_complete()
                && let Some(log) = &pending.audit_log
                && let Err(e) = audit_log::append(log, &pending.restore_records)
            {
                undone.failures.push(e);
            }
            Resumed::RolledBack { pending: Box::new(pending), cause: Box::new(cause), undone: Box::new(undone) }
        }
    };
    clear(cert_dir)?;
    Ok(Some(resumed))
}

/// [`resume`] for a command other than `rotate` (`init`, `issue`, `rotate-ca`, `csr install`):
/// when a record is left, takes the cert dir's lock (waiting up to `lock_timeout`), completes
/// an interrupted journal, and resumes. `None` without touching anything when nothing is
/// pending. A change that could not be finished is undone and returned as
/// [`Error::RolledBack`] with [`Error::Interrupted`] as its cause.
pub fn finish_interrupted(cert_dir: &Path, kubeconfig_dir: &Path, lock_timeout: Duration) -> Result<Option<Pending>> {
    if !path(cert_dir).exists() {
        return Ok(None);
    }
    let options = kubepki_pki::InitOptions { lock_timeout, ..kubepki_pki::InitOptions::now() };
    let (_lock, _pki, _recovered) = kubepki_pki::open_locked(cert_dir, kubeconfig_dir, &options)?;
    finish_interrupted_locked(cert_dir)
}

/// [`finish_interrupted`] for a caller that holds the cert dir's lock.
pub fn finish_interrupted_locked(cert_dir: &Path) -> Result<Option<Pending>> {
    match resume(cert_dir)? {
        None => Ok(None),
        Some(Resumed::Finished { pending, .. }) => Ok(Some(*pending)),
        Some(Resumed::RolledBack { pending, cause, undone }) => Err(Error::RolledBack {
            cause: Box::new(Error::Interrupted { rotation: pending.describe(), cause }),
            undone,
        }),
    }
}
