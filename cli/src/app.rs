//! The command line: every subcommand and its flags.

use clap::{Parser, Subcommand};

use crate::commands::{
    agent::AgentArgs, audit::AuditArgs, check::CheckArgs, completion::CompletionArgs, csr::CsrArgs, init::InitArgs,
    issue::IssueArgs, kubeconfig::KubeconfigArgs, man::ManArgs, recover::RecoverArgs, rotate::RotateArgs,
    rotate_ca::RotateCaArgs, rotate_sa::RotateSaArgs, sa::SaArgs, tree::TreeArgs, verify::VerifyArgs,
};

const AFTER_HELP: &str = "\
Exit codes: 0 success · 1 the operation failed (I/O, lock held, a check failed) · 2 the input
is wrong (flags, config file, existing files that do not fit); nothing was changed.
`kubepki check` and `kubepki audit` use the monitoring convention 0 ok · 1 warning · 2 critical ·
3 unreadable input. A closed standard output (`kubepki man | head`) ends any command quietly
with 141. Every command and situation: docs/cli.md (Exit codes).";

/// Own a Kubernetes cluster's PKI end to end: bootstrap it in kubeadm's layout, check expiry
/// everywhere, rotate on a policy, and verify mutual TLS.
#[derive(Debug, Parser)]
#[command(name = "kubepki", version, after_help = AFTER_HELP, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a kubeadm PKI (CAs, leaves, SA keys) and kubeconfigs; reuse what exists.
    Init(InitArgs),
    /// Issue one certificate from an existing PKI: a missing leaf, a kubelet kubeconfig, or
    /// kubelet serving certificates for many nodes.
    Issue(IssueArgs),
    /// Kubeconfig utilities (a kubeconfig for a user, like `kubeadm kubeconfig user`).
    Kubeconfig(KubeconfigArgs),
    /// Report the expiry of every certificate the cluster trusts: PKI files, kubeconfigs,
    /// kubelet PKI, Secrets and what live endpoints serve.
    Check(CheckArgs),
    /// Renew what a policy says is due — leaves, kubeconfig copies — with a plan, a backup,
    /// an audit log and a lock; safe to run from cron.
    Rotate(Box<RotateArgs>),
    /// Bring back a cluster whose certificates expired, offline: extend expired CAs with their
    /// own keys, renew every expired leaf, kubeconfig and the kubelet's client certificate,
    /// write the workers' kubelet.conf, then check the result.
    Recover(Box<RecoverArgs>),
    /// Rotate a CA in phases (prepare, trust, reissue, retire) with an overlap bundle.
    RotateCa(RotateCaArgs),
    /// Rotate the service-account signing key in phases (prepare, trust, reissue, retire) with
    /// an overlap: no token breaks.
    RotateSa(RotateSaArgs),
    /// Service-account key utilities: the JWKS of sa.pub.
    Sa(SaArgs),
    /// External-CA mode (a CA certificate without its key): write keys and CSRs for its
    /// leaves, like `kubeadm certs generate-csr`, and install what the external CA signed.
    Csr(CsrArgs),
    /// Prove mutual TLS on etcd, kubelet and API server endpoints.
    Verify(VerifyArgs),
    /// Check this node (or a node filesystem under --root) against the hardening advice:
    /// kubelet config, kube-apiserver and etcd manifests, key modes, CA keys, lifetimes.
    Audit(AuditArgs),
    /// Show the PKI as a tree: each CA, the leaves it signed, then the kubeconfigs (text with
    /// expiry bars, dot, mermaid).
    Tree(TreeArgs),
    /// Run on a node for good: serve the check's metrics, re-read on every change, and (on a
    /// control-plane node) renew what falls due, as `rotate` does.
    Agent(Box<AgentArgs>),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(CompletionArgs),
    /// Print the manual page (roff), generated from these definitions.
    Man(ManArgs),
}
