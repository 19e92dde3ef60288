//! Keeping a run's writes only if its hook and verification pass, and putting everything back
//! when they do not: the files from their backup, the Secrets' previous data, and a `restore`
//! record per certificate in the audit log.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::rotation::audit_log;
use crate::rotation::backup::Backup;
use crate::rotation::execute::{self, Renewed};
use crate::rotation::secrets::SecretsSync;
use crate::rotation::{Hook, Verification};
use crate::verify::Target;

/// Puts back the files a run wrote. [`FromBackup`] restores a rotation's backup; `rotate-ca`
/// undoes its phase ([`crate::ca_rotation::CaRotation`]).
pub trait RestoreFiles {
    /// Restores every file; the error says what was not restored.
    fn restore_files(&self) -> Result<Restored>;
}

/// What [`RestoreFiles::restore_files`] put back.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct Restored {
    /// The files restored.
    pub files: Vec<PathBuf>,
    /// What was done, in words (`every file this run wrote was restored from …`).
    pub note: String,
}

/// A rotation's backup, restored into the cert dir it was taken of.
#[derive(Clone, Copy, Debug)]
pub struct FromBackup<'a> {
    /// The backup.
    pub backup: &'a Backup,
    /// The cert dir (whose state dir journals the restore).
    pub cert_dir: &'a Path,
}

impl RestoreFiles for FromBackup<'_> {
    fn restore_files(&self) -> Result<Restored> {
        let files = self
            .backup
            .restore(self.cert_dir)
            .map_err(|e| Error::Restore { backup: self.backup.dir.clone(), source: Box::new(e) })?;
        Ok(Restored {
            files,
            note: format!(
                "every file this run wrote was restored from {} (components may need restarting)",
                self.backup.dir.display()
            ),
        })
    }
}

/// What a run changed, to be put back if a later step fails.
#[derive(Clone, Copy, Default)]
pub struct Changes<'a> {
    /// The files it wrote; `None` when it wrote none.
    pub files: Option<&'a dyn RestoreFiles>,
    /// The certificates it renewed: a `restore` record for each goes to the audit log once the
    /// files are back.
    pub renewed: &'a [Renewed],
    /// The audit log, if any.
    pub audit_log: Option<&'a Path>,
    /// The Secrets it brought in step, if any.
    pub secrets: Option<&'a SecretsSync>,
}

impl std::fmt::Debug for Changes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("files", &self.files.is_some())
            .field("renewed", &self.renewed.iter().map(|r| r.name.as_str()).collect::<Vec<_>>())
            .field("audit_log", &self.audit_log)
            .field("secrets", &self.secrets.is_some())
            .finish()
    }
}

/// What a rollback did, and what it could not do.
#[derive(Debug, Default)]
pub struct Undone {
    /// The files restored.
    pub restored: Vec<PathBuf>,
    /// What was put back, in words.
    pub notes: Vec<String>,
    /// What could not be put back (a Secret, the files, the audit record).
    pub failures: Vec<Error>,
}

impl Undone {
    /// Whether everything was put back.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }
}

impl Changes<'_> {
    /// Whether there is anything to put back.
    fn is_empty(&self) -> bool {
        self.files.is_none() && self.secrets.is_none_or(|s| !s.changed_any())
    }

    /// Puts back everything, the last change first: the Secrets' previous data (those created
    /// are deleted), then the files, then a `restore` record per renewed certificate in the
    /// audit log. Never stops half-way: what could not be done is in [`Undone::failures`].
    pub fn roll_back(&self) -> Undone {
        let mut undone = Undone::default();
        if let Some(secrets) = self.secrets {
            undone.failures.extend(secrets.undo());
        }
        let Some(files) = self.files else { return undone };
        match files.restore_files() {
            Ok(restored) => {
                undone.restored = restored.files;
                undone.notes.push(restored.note);
                if let Some(log) = self.audit_log
                    && let Err(e) = audit_log::append(log, &execute::records(self.renewed, "restore"))
                {
                    undone.failures.push(e);
                }
            }
            Err(e) => undone.failures.push(e),
        }
        undone
    }

    /// `cause` after everything was rolled back: [`Error::RolledBack`], or `cause` itself when
    /// nothing had changed.
    pub fn fail(&self, cause: Error) -> Error {
        if self.is_empty() {
            return cause;
        }
        Error::RolledBack { cause: Box::new(cause), undone: Box::new(self.roll_back()) }
    }
}

/// What decides whether a run's writes are kept: its hook (restart or reload what reads them),
/// then verification of the live endpoints.
#[derive(Clone, Copy, Debug)]
pub struct AfterWrite<'a> {
    /// The hook, if any.
    pub hook: Option<&'a Hook>,
    /// The hook's environment.
    pub env: &'a [(&'a str, &'a OsStr)],
    /// The verification settings.
    pub verification: &'a Verification,
    /// The endpoints to verify ([`Verification::targets`], made before anything was written).
    pub targets: &'a [Target],
}

impl AfterWrite<'_> {
    /// Runs the hook, then verifies; if either fails, rolls `changes` back
    /// ([`Changes::fail`]). Returns what verification found (`None`: nothing to verify).
    pub fn keep_or_roll_back(&self, changes: &Changes<'_>) -> Result<Option<crate::verify::VerifyReport>> {
        self.keep_or_roll_back_recorded(changes, &mut |_| Ok(()))
    }

    /// [`Self::keep_or_roll_back`], telling `hook_started` the hook's process group once it
    /// runs ([`Hook::run_recorded`]), so that a record of what the run owes can name it.
    pub fn keep_or_roll_back_recorded(
        &self,
        changes: &Changes<'_>,
        hook_started: &mut dyn FnMut(super::ProcessGroup) -> Result<()>,
    ) -> Result<Option<crate::verify::VerifyReport>> {
        if let Some(hook) = self.hook
            && let Err(e) = hook.run_recorded(self.env, hook_started)
        {
            return Err(changes.fail(e));
        }
        kubepki_pki::fsio::failpoint("rotate:hook-done");
        self.verification.check(self.targets).map_err(|e| changes.fail(e))
    }
}
