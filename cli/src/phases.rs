//! What `rotate-ca` and `rotate-sa` share: once a phase has written, run `--exec`, verify, and
//! undo the phase if either fails; and how a phase, an abort and the history are shown.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::Result;
use kubepki_rotator::rotation::cluster_phases::{EtcdAccess, NodePhase, Registry};
use kubepki_rotator::rotation::etcd_lock::{EtcdLock, EtcdLockConfig};
use kubepki_rotator::rotation::phases::{Phase, PhaseRecord};
use kubepki_rotator::rotation::restart::RestartList;
use serde_json::{Value, json};

use crate::output::{self, Format};
use kubepki_rotator::rotation::{AfterWrite, Changes, Hook, Verification};
use kubepki_rotator::verify::Target;

/// Runs the phase's hook, then verifies `probes`; if either fails, `changes` are undone
/// ([`kubepki_rotator::Error::RolledBack`]). After `prepare` nothing live changed, so there
/// is nothing to undo and a failing hook is not an error (one that cannot start is).
pub(crate) fn after_phase(
    phase: Phase,
    hook: Option<&Hook>,
    env: &[(&str, &OsStr)],
    changes: &Changes<'_>,
    verification: &Verification,
    probes: &[Target],
) -> Result<(), kubepki_rotator::Error> {
    if phase == Phase::Prepared {
        if let Some(hook) = hook
            && let Err(e @ kubepki_rotator::Error::HookStart { .. }) = hook.run(env)
        {
            return Err(e);
        }
        return Ok(());
    }
    AfterWrite { hook, env, verification, targets: probes }.keep_or_roll_back(changes).map(drop)
}

/// A phase done, as a table: `[tag] <subject>phase P done`, the `lines` (what it did, notes),
/// then, after a phase that changed what is live, what to restart on this node.
pub(crate) fn print_done(tag: &str, subject: &str, phase: Phase, lines: &[String], restart: &RestartList) {
    println!("[{tag}] {subject}phase {} done", phase.as_str());
    for line in lines {
        println!("[{tag}] {line}");
    }
    if phase != Phase::Prepared {
        output::print_restart(tag, restart);
    }
}

/// The nodes of the rotation still to run `phase` (`--etcd-lock`), if any.
pub(crate) fn print_behind(tag: &str, phase: Phase, behind: &[NodePhase]) {
    if !behind.is_empty() {
        println!(
            "[{tag}] still to run `kubepki {tag} {}` on: {} (the next phase waits for them)",
            phase.as_str(),
            nodes_text(behind)
        );
    }
}

/// What an abort restored and where the rotation is now; `abandoned` says what an abort of
/// `prepare` removed.
pub(crate) fn print_abort(
    format: Format,
    tag: &str,
    subject: &str,
    back_to: Option<Phase>,
    restored: &[PathBuf],
    abandoned: &str,
) -> Result<()> {
    match format {
        Format::Json => output::print_json(&json!({"phase": back_to.map(Phase::as_str), "restored": restored}))?,
        Format::Table => {
            for r in restored {
                println!("[{tag}] restored {}", r.display());
            }
            match back_to {
                Some(p) => println!("[{tag}] {subject}back at phase {}", p.as_str()),
                None => println!("[{tag}] {subject}rotation abandoned; {abandoned}"),
            }
        }
    }
    Ok(())
}

/// The history of a rotation in `-o json`.
pub(crate) fn history_json(history: &[PhaseRecord]) -> Value {
    history.iter().map(|h| json!({"phase": h.phase.as_str(), "time": h.time, "backups": h.backups})).collect()
}

/// The cert dir a phase works on exists: else an input error (2), before the lock is taken.
pub(crate) fn require_cert_dir(cert_dir: &Path) -> Result<()> {
    if !cert_dir.is_dir() {
        anyhow::bail!(crate::exit::coded(
            crate::exit::INPUT,
            anyhow::anyhow!("{} is not a directory (the cert dir)", cert_dir.display())
        ));
    }
    Ok(())
}

/// The cluster-wide side of a phase (`--etcd-lock`): the rotation lock held while the phase
/// runs, and the record of the rotation and of every node's phase in etcd
/// ([`kubepki_rotator::rotation::cluster_phases`]).
pub(crate) struct ClusterSide {
    _lock: EtcdLock,
    pub(crate) registry: Registry,
    pub(crate) node: String,
    force: bool,
    /// The command and what it rotates, for messages (`rotate-ca etcd-ca`).
    what: String,
}

/// The flags of a phased rotation's cluster-wide side, the same for `rotate-ca` and
/// `rotate-sa`.
#[derive(clap::Args, Debug)]
pub(crate) struct ClusterArgs {
    /// The cluster's etcd (every member's client URL, comma-separated): the phase takes the
    /// cluster-wide rotation lock there; the rotation (the new CA's fingerprint, the new key's
    /// kid) and this node's phase are recorded there; a second `prepare` is told to adopt the
    /// first's, and `reissue`/`retire` are refused while a node of the rotation has not
    /// completed the phase before (docs/ha.md). Reached with the cert dir's etcd/ca.crt and
    /// apiserver-etcd-client certificate.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub(crate) etcd_lock: Vec<String>,
    /// This node's name in the cluster-wide record [default: the host name].
    #[arg(long, value_name = "NAME", requires = "etcd_lock")]
    pub(crate) node_name: Option<String>,
}

impl ClusterArgs {
    /// The flags as given, for a next-step command: ` --etcd-lock URLS --node-name NAME`.
    pub(crate) fn flags(&self) -> String {
        let mut flags = String::new();
        if !self.etcd_lock.is_empty() {
            flags.push_str(&format!(" --etcd-lock {}", self.etcd_lock.join(",")));
        }
        if let Some(node) = &self.node_name {
            flags.push_str(&format!(" --node-name {node}"));
        }
        flags
    }
}

impl ClusterSide {
    /// Connects when `--etcd-lock` was given, and takes the lock of rotation `rotation`
    /// (`etcd-ca`, `sa`), waiting up to `lock_timeout`; with `force`, nodes behind are warned
    /// about rather than refused.
    pub(crate) fn open(
        flags: &ClusterArgs,
        force: bool,
        lock_timeout: std::time::Duration,
        pki: &kubepki_pki::PkiDir,
        rotation: &str,
        what: String,
    ) -> Result<Option<Self>> {
        if flags.etcd_lock.is_empty() {
            return Ok(None);
        }
        let (ca, cert, key) =
            (pki.cert_path("etcd/ca"), pki.cert_path("apiserver-etcd-client"), pki.key_path("apiserver-etcd-client"));
        let name = format!("rotation-{rotation}");
        let lock = EtcdLock::acquire(&EtcdLockConfig {
            endpoints: &flags.etcd_lock,
            ca: &ca,
            cert: &cert,
            key: &key,
            name: &name,
            timeout: lock_timeout,
        })?;
        let access = EtcdAccess { endpoints: &flags.etcd_lock, ca: &ca, cert: &cert, key: &key };
        let registry = Registry::connect(&access, rotation)?;
        let node = flags.node_name.clone().unwrap_or_else(kubepki_rotator::rotation::audit_log::host);
        Ok(Some(Self { _lock: lock, registry, node, force, what }))
    }

    fn refuse(&self, reason: String) -> anyhow::Error {
        crate::exit::coded(crate::exit::INPUT, anyhow::anyhow!("{}: {reason}", self.what))
    }

    /// `prepare` without `--from`: refused when the cluster has a rotation in progress that is
    /// not this node's (`this`): this node adopts it instead, from a copy of `state_dir` on the
    /// preparing node, with `prepare_command --from`.
    pub(crate) fn before_prepare(&self, this: Option<&str>, state_dir: &Path, prepare_command: &str) -> Result<()> {
        match self.registry.identity()? {
            Some(id) if this != Some(id.identity.as_str()) => Err(self.refuse(format!(
                "a rotation is in progress in the cluster: {} prepared on {} at {}; adopt it rather than make a \
                 second one: copy {}'s {} here and run `{prepare_command} --from <that copy>`",
                id.identity,
                id.prepared_by,
                id.prepared_at,
                id.prepared_by,
                state_dir.display(),
            ))),
            _ => Ok(()),
        }
    }

    /// Makes `fp` the cluster's rotation, or refuses when another one is.
    pub(crate) fn claim(&self, fp: &str) -> Result<()> {
        let claimed = self.registry.claim(fp, &self.node)?;
        if claimed.identity != fp {
            return Err(self.refuse(format!(
                "the cluster's rotation is {} (prepared on {} at {}), not this node's {fp}: this node's prepare \
                 was undone; adopt the cluster's with `prepare --from`",
                claimed.identity, claimed.prepared_by, claimed.prepared_at
            )));
        }
        Ok(())
    }

    /// Before the phase after `done`: this node's rotation is the cluster's, and every other
    /// node of it has completed `done` (unless `--force`, said loudly).
    pub(crate) fn before(&self, done: Phase, fp: &str) -> Result<()> {
        self.claim(fp)?;
        let behind = self.registry.behind(fp, done, &self.node)?;
        if behind.is_empty() {
            return Ok(());
        }
        let list = nodes_text(&behind);
        if self.force {
            eprintln!(
                "kubepki: WARNING: --force: going on although {list} have not completed `{}`; TLS between them and \
                 this node may fail until they do",
                done.as_str()
            );
            return Ok(());
        }
        Err(self.refuse(format!(
            "{list} have not completed `{}` yet: run it there first (every control-plane node completes a phase \
             before the next runs anywhere), or pass --force",
            done.as_str()
        )))
    }

    /// After a phase was kept: makes this node's rotation the cluster's (after `prepare`: if
    /// another node claimed a different one meanwhile, `undo` undoes this node's prepare and the
    /// error says to adopt the cluster's), records the phase, and returns the nodes still to run
    /// it.
    pub(crate) fn phase_done(
        &self,
        phase: Phase,
        fp: &str,
        undo: impl FnOnce() -> Result<()>,
    ) -> Result<Vec<NodePhase>> {
        if phase == Phase::Prepared
            && let Err(e) = self.claim(fp)
        {
            undo()?;
            return Err(e);
        }
        self.after(Some(phase), fp)?;
        Ok(self.registry.behind(fp, phase, &self.node)?)
    }

    /// Records this node at `phase` (`None`: it aborted the rotation); clears the records once
    /// every node has retired, or every node has aborted.
    pub(crate) fn after(&self, phase: Option<Phase>, fp: &str) -> Result<()> {
        self.registry.set_phase(&self.node, phase, fp)?;
        let nodes = self.registry.nodes()?;
        let done = |p: Option<Phase>| p.is_none() || p == Some(Phase::Retired);
        if nodes.iter().all(|n| n.identity != fp || done(n.phase)) {
            self.registry.clear()?;
        }
        Ok(())
    }
}

/// `cp2 (at prepare), cp3 (not started)`.
fn nodes_text(nodes: &[NodePhase]) -> String {
    nodes
        .iter()
        .map(|n| format!("{} (at {})", n.node, n.phase.map_or("no phase", Phase::as_str)))
        .collect::<Vec<_>>()
        .join(", ")
}
