//! `kubepki audit`: static checks of a node's configuration against the advice on securing
//! cluster communications — the kubelet's configuration and flags, the static pod manifests of
//! kube-apiserver and etcd, and the PKI on disk.
//!
//! Auditing has two steps, as rotation does:
//!
//! 1. **Reading** ([`audit`]) reads the node's files under a root directory (`/`, or a mounted or
//!    copied node filesystem): symbolic links are resolved *inside* the root, as if chrooted,
//!    so an absolute link such as the kubelet's `kubelet-client-current.pem` points at the
//!    node's file and never at the machine running the audit. Nothing is written.
//! 2. **Judging** is pure: the functions of its `kubelet`, `manifests` and `pki` modules turn
//!    what was read into [`CheckResult`]s, each with its [`AuditStatus`], the [`Advice`] it refers
//!    to and the fix.
//!
//! ```
//! use kubepki_rotator::node_audit::{self, AuditOptions};
//!
//! let root = tempfile::tempdir().unwrap();
//! let report = node_audit::audit(&AuditOptions::new(root.path()));
//! // An empty directory holds no node configuration: that is an unreadable input (exit 3).
//! assert_eq!(report.verdict().exit_code(), 3);
//! ```

mod advice;
mod kubelet;
mod manifests;
mod node;
mod pki;

use std::fmt;
use std::path::{Path, PathBuf};

use kubepki_pki::Lifetime;
use serde_json::{Value, json};

pub use self::advice::Advice;
use crate::check::Verdict;
use crate::inventory::InputError;

/// The outcome of one check.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum AuditStatus {
    /// The node follows the advice.
    Pass,
    /// Nothing was checked: what the check looks at is not on this node (no etcd manifest with
    /// an external etcd, no kubelet configuration).
    Skipped,
    /// An explicit decision that departs from the advice, reported but not held against the
    /// node (`--anonymous-auth=true` written out).
    Info,
    /// Worth fixing; raises the verdict to warning (exit 1).
    Warning,
    /// Contradicts the advice in a way an attacker can use now; raises the verdict to
    /// critical (exit 2).
    Critical,
}

impl AuditStatus {
    /// `pass`, `skipped`, `info`, `warning`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Skipped => "skipped",
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    /// Whether this is a finding: something to show an operator (info, warning, critical).
    pub fn is_finding(self) -> bool {
        matches!(self, Self::Info | Self::Warning | Self::Critical)
    }

    fn verdict(self) -> Verdict {
        match self {
            Self::Pass | Self::Skipped | Self::Info => Verdict::Ok,
            Self::Warning => Verdict::Warning,
            Self::Critical => Verdict::Critical,
        }
    }
}

impl fmt::Display for AuditStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The part of the node a check looks at.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum AuditComponent {
    /// The kubelet: `/var/lib/kubelet/config.yaml` and its flags.
    Kubelet,
    /// The kube-apiserver static pod.
    ApiServer,
    /// The etcd static pod.
    Etcd,
    /// The kube-controller-manager and kube-scheduler static pods.
    ControlPlane,
    /// The certificates, keys and kubeconfigs on disk.
    Pki,
}

impl AuditComponent {
    /// `kubelet`, `kube-apiserver`, `etcd`, `control-plane`, `pki`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kubelet => "kubelet",
            Self::ApiServer => "kube-apiserver",
            Self::Etcd => "etcd",
            Self::ControlPlane => "control-plane",
            Self::Pki => "pki",
        }
    }
}

/// One check's result.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct CheckResult {
    /// A stable identifier, e.g. `kubelet-anonymous-auth` (the list is in `docs/audit.md`).
    pub id: &'static str,
    /// What it looks at.
    pub component: AuditComponent,
    /// The outcome.
    pub status: AuditStatus,
    /// The file at fault or checked (the path read, under the audit root).
    pub file: Option<PathBuf>,
    /// What was found, in a sentence naming the setting.
    pub message: String,
    /// The advice the check refers to.
    pub advice: Advice,
    /// How to fix it (empty for a pass).
    pub fix: String,
}

impl CheckResult {
    /// A result.
    pub fn new(id: &'static str, component: AuditComponent, status: AuditStatus, advice: Advice) -> Self {
        Self { id, component, status, file: None, message: String::new(), advice, fix: String::new() }
    }

    /// With the file it is about.
    pub fn file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// With the message.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// With the fix.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = fix.into();
        self
    }
}

/// Limits on certificate lifetimes ("smaller lifetime windows for secrets and credentials").
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct LifetimePolicy {
    /// The longest a leaf (or a kubeconfig's client certificate) may live: kubeadm's 1 year.
    pub max_leaf: Lifetime,
    /// The longest a CA may live: kubeadm's 10 years.
    pub max_ca: Lifetime,
}

impl Default for LifetimePolicy {
    fn default() -> Self {
        Self { max_leaf: Lifetime::DEFAULT_CERT, max_ca: Lifetime::DEFAULT_CA }
    }
}

/// What to audit.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// The node's filesystem root: `/`, or where a node's filesystem is mounted or copied.
    pub root: PathBuf,
    /// The cert dir, as a path on the node [default: the directory of the API server's
    /// `--client-ca-file`, else of the kubelet's `clientCAFile`, else `/etc/kubernetes/pki`].
    pub cert_dir: Option<PathBuf>,
    /// Certificate lifetime limits.
    pub lifetimes: LifetimePolicy,
    /// The oldest the service-account signing key may be (`--sa-max-age`, default 1 year, as
    /// kubeadm's leaf lifetime).
    pub sa_max_age: Lifetime,
}

impl AuditOptions {
    /// Audits the node whose filesystem is at `root`, with the default policy.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            cert_dir: None,
            lifetimes: LifetimePolicy::default(),
            sa_max_age: Lifetime::DEFAULT_CERT,
        }
    }
}

/// Everything an audit found.
#[derive(Clone, Debug)]
pub struct AuditReport {
    /// The root audited.
    pub root: PathBuf,
    /// The cert dir, as a path on the node.
    pub cert_dir: PathBuf,
    /// Whether the node runs a control plane (it has a kube-apiserver manifest).
    pub control_plane: bool,
    /// Every check's result, in the order run: kubelet, kube-apiserver, etcd, control plane,
    /// PKI.
    pub results: Vec<CheckResult>,
    /// Inputs that exist but could not be read or parsed; the checks that needed them did
    /// not run.
    pub errors: Vec<InputError>,
}

impl AuditReport {
    /// The results that are findings (info, warning, critical), worst first.
    pub fn findings(&self) -> Vec<&CheckResult> {
        let mut f: Vec<&CheckResult> = self.results.iter().filter(|r| r.status.is_finding()).collect();
        f.sort_by_key(|r| std::cmp::Reverse(r.status));
        f
    }

    /// How many results have `status`.
    pub fn count(&self, status: AuditStatus) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }

    /// The verdict, as `kubepki check`'s: critical wins over an unreadable input, which wins
    /// over a warning.
    pub fn verdict(&self) -> Verdict {
        let mut v = self.results.iter().fold(Verdict::Ok, |v, r| v.worst(r.status.verdict()));
        if !self.errors.is_empty() {
            v = v.worst(Verdict::Unknown);
        }
        v
    }

    /// The JSON document of `kubepki audit -o json` (schema in `docs/audit.md`).
    pub fn to_json(&self) -> Value {
        let findings: Vec<Value> = self
            .findings()
            .into_iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "severity": r.status.as_str(),
                    "component": r.component.as_str(),
                    "file": r.file,
                    "message": r.message,
                    "advice": r.advice.to_json(),
                    "fix": r.fix,
                })
            })
            .collect();
        let others = |status: AuditStatus| -> Vec<Value> {
            self.results
                .iter()
                .filter(|r| r.status == status)
                .map(|r| json!({"id": r.id, "component": r.component.as_str(), "file": r.file, "message": r.message}))
                .collect()
        };
        json!({
            "root": self.root,
            "certDir": self.cert_dir,
            "controlPlane": self.control_plane,
            "verdict": self.verdict().as_str(),
            "counts": {
                "pass": self.count(AuditStatus::Pass),
                "skipped": self.count(AuditStatus::Skipped),
                "info": self.count(AuditStatus::Info),
                "warning": self.count(AuditStatus::Warning),
                "critical": self.count(AuditStatus::Critical),
                "errors": self.errors.len(),
            },
            "findings": findings,
            "passed": others(AuditStatus::Pass),
            "skipped": others(AuditStatus::Skipped),
            "errors": self.errors.iter().map(|e| json!({"input": e.input, "message": e.message})).collect::<Vec<_>>(),
        })
    }
}

/// Audits the node whose filesystem is at `options.root`. Reads only.
///
/// A file that exists but cannot be read or parsed is an [`InputError`]; a file that does not
/// exist skips the checks that need it (an etcd manifest with an external etcd, a kubelet
/// config on a machine without a kubelet). If nothing at all is found under the root, that is
/// an error too: there is nothing to audit.
pub fn audit(options: &AuditOptions) -> AuditReport {
    node::audit(options)
}

/// `root` + `node_path`, for a path as the node names it.
pub(crate) fn display_path(root: &Path, node_path: &Path) -> PathBuf {
    root.join(node_path.strip_prefix("/").unwrap_or(node_path))
}
