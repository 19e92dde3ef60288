//! The whole rotation workflow as one call: [`rotate`] does what `kubepki rotate` does.
//!
//! 1. The cert dir's lock, and an interrupted earlier write completed or discarded; backups a
//!    crash left unfinished are removed; the etcd lock of an HA cluster, if asked for.
//! 2. What exists and what is due: the CAs, the renewable certificates, a pure [`Plan`].
//! 3. The plan carried out (`execute`): a backup, then every key, certificate and
//!    kubeconfig in one journaled transaction, and the audit log.
//! 4. Secrets brought in step, the [`Hook`] run, live endpoints verified ([`Verification`]).
//!    If any of these fails, everything is put back ([`Changes::roll_back`]: the Secrets'
//!    previous data, the files from the backup, a `restore` record in the audit log) and the
//!    error is [`Error::RolledBack`], saying what was restored.
//!    From the write until the run is kept or undone, what it still owes is recorded in the
//!    state dir ([`pending`]): a run killed there is finished or undone by the next one.
//! 5. Older backups pruned, only now that this run's files are kept.
//!
//! Every input problem is found before anything is written; [`rotate_observed`] hands the plan
//! to a [`RotationObserver`] before step 3, so a caller can show what will be done before it is.
//! `rotate` blocks (it drives its
//! own runtimes for the API and the probes): call it from synchronous code, or from
//! `tokio::task::spawn_blocking`.
//!
//! # Example: renew what is due, restart the control plane, keep it only if etcd still works
//!
//! ```no_run
//! use kubepki_rotator::rotation::{self, Hook, RotateRequest};
//! use kubepki_rotator::verify::TargetKind;
//! use kubepki_rotator::Error;
//!
//! # fn main() -> Result<(), Error> {
//! let mut request = RotateRequest::new("/etc/kubernetes/pki", "/etc/kubernetes");
//! request.audit_log = Some("/var/log/kubepki/audit.jsonl".into());
//! request.hook = Some(Hook::shell("crictl ps --name kube-apiserver -q | xargs -r crictl stop"));
//! request.verify.endpoints.push((TargetKind::Etcd, "https://127.0.0.1:2379".into()));
//! match rotation::rotate(&request) {
//!     Ok(report) => {
//!         for r in report.execution.iter().flat_map(|o| &o.renewed) {
//!             let old = r.old.as_ref().map_or("none", |c| c.serial.as_str());
//!             println!("{} renewed: serial {old} → {}", r.name, r.new.serial);
//!         }
//!     }
//!     // The hook or verification failed: every file is as it was before the run.
//!     Err(Error::RolledBack { cause, undone }) => eprintln!("{cause}; restored {:?}", undone.restored),
//!     Err(other) => return Err(other),
//! }
//! # Ok(())
//! # }
//! ```

pub mod audit_log;
pub mod backup;
pub mod cluster_phases;
pub mod etcd_lock;
pub(crate) mod execute;
pub mod external_ca;
mod hook;
pub mod pending;
pub mod phases;
pub mod plan;
pub mod policy;
pub mod restart;
mod rollback;
pub mod secret_sink;
mod secrets;
pub mod targets;
mod verification;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kubepki_pki::InitOptions;
use time::OffsetDateTime;

pub use execute::{Execution, Renewed};
pub use hook::Hook;
pub use hook::{ProcessGroup, leave_signals_to_caller};
pub use pending::Resumed;
pub use rollback::{AfterWrite, Changes, FromBackup, RestoreFiles, Restored, Undone};
pub use secrets::{SecretSynced, SecretsSync};
pub use verification::Verification;

use crate::error::{Error, Result};
use etcd_lock::{EtcdLock, EtcdLockConfig};
use execute::ExecuteOptions;
use plan::{Plan, PlanOptions};
use secret_sink::RotationConfig;
use targets::Cas;

/// A lock in etcd shared by the control-plane nodes of a cluster, so that they rotate one at a
/// time.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct EtcdLockRequest {
    /// etcd client URLs; reached with the cert dir's `etcd/ca.crt` and `apiserver-etcd-client`.
    pub endpoints: Vec<String>,
    /// The lock's name; every node of a cluster must use the same.
    pub name: String,
}

/// Everything a rotation needs, as plain data: what `kubepki rotate`'s flags say.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RotateRequest {
    /// The cert dir (`/etc/kubernetes/pki`).
    pub cert_dir: PathBuf,
    /// The kubeconfig dir (`/etc/kubernetes`): its `*.conf` are renewed with the cert dir.
    pub kubeconfig_dir: PathBuf,
    /// More kubeconfigs whose embedded client certificates are renewed.
    pub kubeconfigs: Vec<PathBuf>,
    /// Kubelet serving certificate directories (a node's, or one directory per node).
    pub kubelet_serving_dirs: Vec<PathBuf>,
    /// What is due and how it is renewed. Its `now` is the run's time: new certificates start
    /// then, and the backup is named after it.
    pub plan: PlanOptions,
    /// Plan only: nothing is written (Secrets are compared, not changed).
    pub dry_run: bool,
    /// The directory each run's backup goes under (default: `<cert dir>/../tmp`).
    pub backup_dir: Option<PathBuf>,
    /// After a run that is kept, keep only this many of kubepki's backups there.
    pub keep_backups: Option<usize>,
    /// Where to append one JSON line per renewed or restored certificate.
    pub audit_log: Option<PathBuf>,
    /// The etcd lock to take after the cert dir's (skipped in a dry run).
    pub etcd_lock: Option<EtcdLockRequest>,
    /// How long to wait for the cert dir's lock, and for the etcd lock.
    pub lock_timeout: Duration,
    /// Accept CA keys readable by group or others.
    pub allow_insecure_permissions: bool,
    /// The `RotationConfiguration`: Secrets kept in step (and how to reach the API), and
    /// endpoints verified after [`Self::verify`]'s.
    pub config: RotationConfig,
    /// Run after a run that renewed anything, with the renewed names in `$KUBEPKI_ROTATED`
    /// and the backup in `$KUBEPKI_BACKUP_DIR`.
    pub hook: Option<Hook>,
    /// Endpoints verified after the hook.
    pub verify: Verification,
    /// CA certificates planned and signed with in place of those of the cert dir (same key
    /// and subject): `recover --dry-run` plans against the CAs it would extend.
    pub ca_certificates: Vec<(kubepki_pki::CaKind, kubepki_pki::Certificate)>,
}

impl RotateRequest {
    /// Renew what the default policy says is due now in `cert_dir` and the kubeconfigs of
    /// `kubeconfig_dir`, keeping each certificate's identity and lifetime, with a new key; no
    /// hook, nothing verified, backups under `<cert dir>/../tmp`.
    pub fn new(cert_dir: impl Into<PathBuf>, kubeconfig_dir: impl Into<PathBuf>) -> Self {
        Self {
            cert_dir: cert_dir.into(),
            kubeconfig_dir: kubeconfig_dir.into(),
            kubeconfigs: Vec::new(),
            kubelet_serving_dirs: Vec::new(),
            plan: PlanOptions::new(OffsetDateTime::now_utc()),
            dry_run: false,
            backup_dir: None,
            keep_backups: None,
            audit_log: None,
            etcd_lock: None,
            lock_timeout: Duration::from_secs(60),
            allow_insecure_permissions: false,
            config: RotationConfig::default(),
            hook: None,
            verify: Verification::default(),
            ca_certificates: Vec::new(),
        }
    }

    /// The paths named exist: checked before the lock is taken.
    fn check_paths(&self) -> Result<()> {
        let invalid = |field, reason| Err(Error::InvalidRequest { field, reason });
        if !self.cert_dir.is_dir() {
            return invalid("cert_dir", format!("{} is not a directory (the cert dir)", self.cert_dir.display()));
        }
        if let Some(k) = self.kubeconfigs.iter().find(|k| !k.exists()) {
            return invalid("kubeconfigs", format!("--kubeconfig {} does not exist", k.display()));
        }
        if let Some(k) = self.kubelet_serving_dirs.iter().find(|k| !k.is_dir()) {
            return invalid(
                "kubelet_serving_dirs",
                format!("--kubelet-serving-dir {} is not a directory", k.display()),
            );
        }
        Ok(())
    }

    /// The kubeconfigs of the kubeconfig dir, then the others not among them.
    fn all_kubeconfigs(&self) -> Vec<PathBuf> {
        let mut kubeconfigs = targets::kubeconfigs_in(&self.kubeconfig_dir);
        for k in &self.kubeconfigs {
            if !kubeconfigs.iter().any(|p| same_file(p, k)) {
                kubeconfigs.push(k.clone());
            }
        }
        kubeconfigs
    }

    /// The verification: [`Self::verify`]'s endpoints, then the configuration's.
    fn verification(&self) -> Verification {
        let mut verification = self.verify.clone();
        verification.endpoints.extend(self.config.verify.iter().cloned());
        verification
    }
}

/// Whether two paths name one file (compared canonical when both exist).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// What a rotation did (or, in a dry run, would do).
#[derive(Debug)]
#[non_exhaustive]
pub struct RotateReport {
    /// The plan: what was due and why, what was not, what was left alone.
    pub plan: Plan,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// What was written (`None` in a dry run, or when nothing was due).
    pub execution: Option<Execution>,
    /// Each Secret of the configuration and what was done to it.
    pub secrets: Vec<SecretSynced>,
    /// The older backups removed (`keep_backups`).
    pub pruned: Vec<PathBuf>,
    /// The files of an interrupted earlier write that were completed or discarded first.
    pub recovered: Vec<PathBuf>,
    /// What verification found after the write and the hook (`None`: nothing was written, or
    /// no endpoint to verify). Every check passed: a failure rolls the run back.
    pub verification: Option<crate::verify::VerifyReport>,
    /// An earlier run interrupted after its write, finished by this one before it planned
    /// ([`pending::finish_interrupted_locked`]; one that could not be finished is undone and ends this run with
    /// [`Error::RolledBack`]). In a dry run: still pending, reported, not touched.
    pub resumed: Option<ResumedRun>,
}

/// An interrupted earlier run this run found.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResumedRun {
    /// Its hook ran again and every endpoint verified: its change is kept.
    Finished(Box<pending::Pending>),
    /// A dry run found it and left it for the next real run.
    Pending(Box<pending::Pending>),
}

/// Told what a rotation is about to do, while it runs ([`rotate_observed`]).
pub trait RotationObserver {
    /// The plan, once every input is checked and before anything is written (also in a dry
    /// run, and when nothing is due).
    fn planned(&mut self, plan: &Plan) {
        let _ = plan;
    }

    /// An interrupted earlier run found first (before the plan): finished, or in a dry run
    /// still pending.
    fn resumed(&mut self, run: &ResumedRun) {
        let _ = run;
    }
}

/// No observer: [`rotate`].
impl RotationObserver for () {}

/// Renews what `request` says is due, and every copy of it, keeping the result only if the
/// Secrets, the hook and verification all succeed; see the [module](self) for the steps.
///
/// Errors: an input problem ([`Error::InvalidRequest`], [`Error::UnknownTarget`],
/// [`Error::InvalidEndpoint`], [`Error::Config`], a configuration the CA model refuses)
/// before anything is written; [`Error::RolledBack`] when a step after the write failed and
/// everything was put back; any other error (a lock held, an I/O failure) as it happened.
pub fn rotate(request: &RotateRequest) -> Result<RotateReport> {
    rotate_observed(request, &mut ())
}

/// [`rotate`], telling `observer` the plan before anything is written.
pub fn rotate_observed(request: &RotateRequest, observer: &mut dyn RotationObserver) -> Result<RotateReport> {
    request.check_paths()?;
    let verification = request.verification();
    let probes = verification.targets(&request.cert_dir)?;
    let now = request.plan.now;

    // The same lock and crash recovery as every writing command; a dry run takes it too, so
    // that it never reads a tree half-way through another run's commit.
    let options = InitOptions {
        now,
        lock_timeout: request.lock_timeout,
        allow_insecure_permissions: request.allow_insecure_permissions,
    };
    let (_lock, pki, recovered) = kubepki_pki::open_locked(&request.cert_dir, &request.kubeconfig_dir, &options)?;
    // A backup a crash interrupted is removed whether or not this run writes a new one.
    let backup_parent = backup::parent_dir(request.backup_dir.as_deref(), &request.cert_dir)?;
    backup::remove_unfinished(&backup_parent);
    // The cluster-wide lock comes second: a node never holds it while waiting for its own.
    let _etcd_lock = match &request.etcd_lock {
        Some(lock) if !request.dry_run && !lock.endpoints.is_empty() => Some(EtcdLock::acquire(&EtcdLockConfig {
            endpoints: &lock.endpoints,
            ca: &pki.cert_path("etcd/ca"),
            cert: &pki.cert_path("apiserver-etcd-client"),
            key: &pki.key_path("apiserver-etcd-client"),
            name: &lock.name,
            timeout: request.lock_timeout,
        })?),
        _ => None,
    };

    // A run killed after its write owes its hook and verification: finish them, or undo it.
    let resumed = if request.dry_run {
        pending::read(&request.cert_dir)?.map(|p| ResumedRun::Pending(Box::new(p)))
    } else {
        // Undone: this run ends with the error that says so.
        pending::finish_interrupted_locked(&request.cert_dir)?.map(|p| ResumedRun::Finished(Box::new(p)))
    };

    if let Some(run) = &resumed {
        observer.resumed(run);
    }

    // What exists and what is due.
    let mut cas = Cas::load(&pki)?;
    for (kind, cert) in &request.ca_certificates {
        cas.replace_certificate(*kind, cert.clone());
    }
    let discovery = targets::discover(&pki, &cas, &request.all_kubeconfigs(), &request.kubelet_serving_dirs)?;
    let plan = plan::plan(&discovery, &cas, &request.plan)?;
    for t in &request.config.secrets {
        if !discovery.targets.iter().any(|d| d.name == t.source) {
            return Err(Error::InvalidRequest {
                field: "config",
                reason: format!("secret {}: source {:?} is not a certificate rotate knows", t.secret, t.source),
            });
        }
    }

    observer.planned(&plan);

    let execution = if request.dry_run || plan.is_empty() {
        None
    } else {
        let backup_dir = backup::run_dir(&backup_parent, now)?;
        let exec_options = ExecuteOptions { backup_dir, audit_log: request.audit_log.clone() };
        Some(execute::execute(&plan, &discovery, &cas, &pki, &exec_options)?)
    };
    let from_backup = execution
        .as_ref()
        .and_then(|o| o.backup.as_ref())
        .map(|backup| FromBackup { backup, cert_dir: &request.cert_dir });
    let mut changes = Changes {
        files: from_backup.as_ref().map(|f| f as &dyn RestoreFiles),
        renewed: execution.as_ref().map_or(&[], |o| &o.renewed),
        audit_log: request.audit_log.as_deref(),
        secrets: None,
    };

    // From here until the run is kept or undone, what it owes is on disk.
    let hook_env = execution.as_ref().map(hook_environment).unwrap_or_default();
    let mut record = match (&execution, from_backup.as_ref()) {
        (Some(o), Some(b)) => {
            let record = pending::Pending {
                schema_version: 1,
                command: "rotate".into(),
                started_at: crate::text::rfc3339(now),
                pid: std::process::id(),
                renewed: o.renewed.iter().map(|r| r.name.clone()).collect(),
                backup_dir: b.backup.dir.clone(),
                hook: request.hook.as_ref().map(|h| h.command.clone()),
                hook_env: hook_env.iter().map(|(k, v)| ((*k).to_owned(), v.to_string_lossy().into_owned())).collect(),
                hook_group: None,
                verify: verification.endpoints.iter().map(|(k, u)| (k.name().to_owned(), u.clone())).collect(),
                verify_wait_seconds: verification.wait.as_secs(),
                audit_log: request.audit_log.clone(),
                restore_records: execute::records(&o.renewed, "restore"),
            };
            record.store(&request.cert_dir).map_err(|e| changes.fail(e))?;
            kubepki_pki::fsio::failpoint("rotate:pending-stored");
            Some(record)
        }
        _ => None,
    };

    // Secrets follow the certificates they mirror, whether renewed now or earlier.
    let secrets = if request.config.secrets.is_empty() {
        None
    } else {
        let mut session = SecretsSync::connect(&request.config, request.dry_run).map_err(|e| changes.fail(e))?;
        if let Err(e) = session.sync(&request.config.secrets, &discovery, &cas, execution.as_ref()) {
            return Err(Changes { secrets: Some(&session), ..changes }.fail(e));
        }
        Some(session)
    };
    changes.secrets = secrets.as_ref();

    // Keep what was written only if the hook and every live check pass.
    let mut verified = None;
    if execution.is_some() {
        let env: Vec<(&str, &OsStr)> = hook_env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        let after =
            AfterWrite { hook: request.hook.as_ref(), env: &env, verification: &verification, targets: &probes };
        let result = after.keep_or_roll_back_recorded(&changes, &mut |group| match record.as_mut() {
            Some(r) => {
                r.hook_group = Some(group);
                r.store(&request.cert_dir)
            }
            None => Ok(()),
        });
        kubepki_pki::fsio::failpoint("rotate:verified");
        // Kept or undone: nothing is owed any more.
        if record.is_some() {
            pending::clear(&request.cert_dir)?;
        }
        verified = result?;
    }

    // Only now, when this run's files are kept, are older backups expendable.
    let pruned = match (request.keep_backups, execution.as_ref().and_then(|o| o.backup.as_ref())) {
        (Some(keep), Some(backup)) => backup::prune(&backup.dir, keep)?,
        _ => Vec::new(),
    };
    Ok(RotateReport {
        plan,
        dry_run: request.dry_run,
        execution,
        secrets: secrets.map(SecretsSync::into_results).unwrap_or_default(),
        pruned,
        recovered,
        verification: verified,
        resumed,
    })
}

/// The hook's environment: the names renewed and the backup.
fn hook_environment(execution: &Execution) -> Vec<(&'static str, std::ffi::OsString)> {
    let names: Vec<&str> = execution.renewed.iter().map(|r| r.name.as_str()).collect();
    let backup_dir = execution.backup.as_ref().map(|b| b.dir.clone().into_os_string()).unwrap_or_default();
    vec![("KUBEPKI_ROTATED", names.join(" ").into()), ("KUBEPKI_BACKUP_DIR", backup_dir)]
}
