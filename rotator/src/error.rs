//! The rotator's error type.

use std::path::PathBuf;

#[cfg(feature = "live")]
use crate::rotation::Undone;
#[cfg(feature = "live")]
use crate::text::error_chain;

/// Everything that can go wrong in the rotator.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error of the CA model (reading, parsing, issuing, writing).
    #[error(transparent)]
    Pki(#[from] kubepki_pki::Error),

    /// A leaf named with `--force` is signed by an externally managed CA.
    #[error(
        "--force {name}: it is signed by {ca}, which is externally managed: its key {} is absent (kubeadm's \
         external-CA mode); renew it with the external CA (`kubepki csr generate {name}` writes its CSR)",
        key.display()
    )]
    ExternalCa {
        /// The name given.
        name: String,
        /// The CA.
        ca: String,
        /// The CA key that is absent.
        key: PathBuf,
    },
    /// A broken or missing leaf named with `--force` whose identity is not known enough.
    #[error("--force {name}: it is {problem} and its certificate cannot be read; reissuing it needs {needs}")]
    NeedsIdentity {
        /// The name given.
        name: String,
        /// What is wrong with it.
        problem: String,
        /// What must be given.
        needs: String,
    },
    /// A name given to `--force` is not a certificate rotate found.
    #[error("--force {name}: no such certificate (found: {known})")]
    UnknownTarget {
        /// The name given.
        name: String,
        /// The names found.
        known: String,
    },

    /// A rotation failed after it had changed something (files, Secrets), and what it changed
    /// was put back: as far as it could be, [`Undone::failures`] lists what was not.
    #[cfg(feature = "live")]
    #[error("{}", rolled_back(cause, undone))]
    RolledBack {
        /// What failed (the hook, verification, a Secret).
        cause: Box<Self>,
        /// What was put back.
        undone: Box<Undone>,
    },

    /// An earlier run was interrupted after it wrote (killed during its hook or verification),
    /// and finishing what it owed failed: its change was undone ([`Error::RolledBack`] holds
    /// this as its cause).
    #[error("{rotation} could not be finished: {cause}")]
    Interrupted {
        /// The interrupted run: when it started, its process, what it renewed
        /// ([`crate::rotation::pending::Pending::describe`]).
        rotation: String,
        /// Why finishing failed (its hook, verification).
        cause: Box<Self>,
    },

    /// Restoring files from a backup failed.
    #[error("restoring from {} failed", backup.display())]
    Restore {
        /// The backup.
        backup: PathBuf,
        /// Why.
        #[source]
        source: Box<Self>,
    },

    /// A rotation request names something that is not there (a cert dir, a kubeconfig, the
    /// source of a Secret); nothing was changed.
    #[error("{reason}")]
    InvalidRequest {
        /// The request's field (`cert_dir`, `kubeconfigs`, `kubelet_serving_dirs`, `config`).
        field: &'static str,
        /// What is wrong, naming the flag and the path.
        reason: String,
    },

    /// The hook (`--exec`) could not be started.
    #[error("could not run --exec {command:?}")]
    HookStart {
        /// The command line.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// The hook (`--exec`) exited unsuccessfully.
    #[error("--exec {command:?} failed ({status})")]
    HookFailed {
        /// The command line.
        command: String,
        /// How it exited.
        status: std::process::ExitStatus,
    },

    /// Verification of the live endpoints after a run found problems.
    #[error("verification failed: {}", problems.join("; "))]
    VerificationFailed {
        /// Every failed check, naming the endpoint.
        problems: Vec<String>,
        /// The certificate files on disk that an endpoint does not serve yet (its
        /// `served-matches-disk` check failed): the component reading each has not reloaded it.
        stale: Vec<PathBuf>,
    },

    /// A value given for a flag (a threshold, a time, a Secret reference) is invalid.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidValue {
        /// What the value is for.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is invalid.
        reason: String,
    },

    /// No Kubernetes API client could be configured (no kubeconfig, an unknown context).
    #[error("cannot configure a Kubernetes API client{}", context.as_ref().map(|c| format!(" for context {c:?}")).unwrap_or_default())]
    KubeClient {
        /// The context asked for, if any.
        context: Option<String>,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A CA rotation phase cannot run (wrong order, missing state, something still chains to the
    /// old CA).
    #[error("rotate-ca {ca}: {reason}")]
    CaRotation {
        /// The CA.
        ca: String,
        /// Why.
        reason: String,
    },

    /// `rotate-ca abort` could not put back what a phase changed: nothing is claimed undone,
    /// and the rotation stays at that phase.
    #[error(
        "rotate-ca {ca}: cannot undo phase {phase}: {reason}; the rotation stays at phase {phase}. {}",
        left_as_written(left)
    )]
    CaAbortIncomplete {
        /// The CA.
        ca: String,
        /// The phase that could not be undone.
        phase: String,
        /// What is wrong: which backup is missing or incomplete, or what failed.
        reason: String,
        /// The files the phase wrote that were not restored.
        left: Vec<PathBuf>,
    },

    /// A service-account key rotation phase cannot run (wrong order, a key pair that does not
    /// belong together, `retire` before it is safe).
    #[error("rotate-sa: {reason}")]
    SaRotation {
        /// Why.
        reason: String,
    },

    /// `rotate-sa abort` could not put back what a phase changed: nothing is claimed undone,
    /// and the rotation stays at that phase.
    #[error(
        "rotate-sa: cannot undo phase {phase}: {reason}; the rotation stays at phase {phase}. {}",
        left_as_written(left)
    )]
    SaAbortIncomplete {
        /// The phase that could not be undone.
        phase: String,
        /// What is wrong: which backup is missing or incomplete, or what failed.
        reason: String,
        /// The files the phase wrote that were not restored.
        left: Vec<PathBuf>,
    },

    /// A configuration file could not be used.
    #[error("{}: {reason}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A Secret could not be brought in step.
    #[error("secret {secret}: {reason}")]
    SecretSync {
        /// The Secret (`NAMESPACE/NAME`).
        secret: String,
        /// What went wrong.
        reason: String,
    },

    /// The etcd lock could not be taken.
    #[error("etcd lock at {endpoints}: {reason}")]
    EtcdLock {
        /// The endpoints.
        endpoints: String,
        /// What went wrong.
        reason: String,
    },

    /// External-CA mode: a CSR directory, or a certificate signed for it, that cannot be used;
    /// nothing was written.
    #[error("{}: {reason}", path.display())]
    Csr {
        /// The directory or file at fault.
        path: PathBuf,
        /// What is wrong, naming each file.
        reason: String,
    },

    /// A path named explicitly does not exist.
    #[error("{} does not exist", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },

    /// An endpoint URL given for verification is not `https://host[:port]`.
    #[error("invalid endpoint {url:?}: {reason}")]
    InvalidEndpoint {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The async runtime that runs the verification probes could not be started.
    #[error("could not start the runtime for verification: {source}")]
    Runtime {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// `cause; what could not be undone; what was`, each with its sources.
#[cfg(feature = "live")]
fn rolled_back(cause: &Error, undone: &Undone) -> String {
    let mut parts = vec![error_chain(cause)];
    parts.extend(undone.failures.iter().map(|e| error_chain(e)));
    parts.extend(undone.notes.iter().cloned());
    parts.join("; ")
}

fn left_as_written(left: &[PathBuf]) -> String {
    if left.is_empty() {
        return "Which files it wrote is not recorded (a state file of an older kubepki): see the \
                backups named above"
            .into();
    }
    let files: Vec<String> = left.iter().map(|p| p.display().to_string()).collect();
    format!(
        "Left as the phase wrote them: {}. Put them back from a copy of your own, or carry the rotation \
         forward (kubepki rotate-ca status)",
        files.join(", ")
    )
}

/// The rotator's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
