//! `kubepki rotate-ca`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use kubepki_pki::{CaKind, Certificate, InitOptions, KeyAlgorithm, Lifetime};
use kubepki_rotator::ca_rotation::{CaRotation, Phase, PhaseReport};
use kubepki_rotator::rotation::cluster_phases::NodePhase;
use kubepki_rotator::rotation::restart::{self, NodePaths, RestartList};
use kubepki_rotator::rotation::targets::{self, Cas};
use kubepki_rotator::rotation::{Changes, Hook};
use serde_json::json;
use time::OffsetDateTime;

use crate::exit::{FAILURE, coded};
use crate::lock_flags::LockFlags;
use crate::output::{self, Format};
use crate::phases::{ClusterArgs, ClusterSide};
use crate::verify_flags::VerifyFlags;

const AFTER_HELP: &str = "\
The phases, in order, each idempotent and resumable:
  prepare   a new CA in the staging area (<cert dir>/../tmp/kubepki/<name>/ca-rotation/<ca>/); nothing live changes
  trust     every trust point gets old + new (the CA file, kubeconfigs' certificate-authority-data); restart readers
            (each writing phase lists what on this node reads what it wrote, with the command to restart it)
  reissue   the new CA signs; every leaf and kubeconfig client certificate it signs is reissued; restart users
  retire    the old CA leaves every bundle, once nothing still chains to it; restart readers again
  status    where the rotation stands, and which certificates chain to which CA
  abort     back to the previous phase, from that phase's backup
The state (ca-rotation/<ca>/state.json there) records absolute paths: every phase, status and
abort work from any working directory, with --cert-dir given absolute or relative.
Exit codes: 0 done · 1 a phase failed (what it wrote was restored), or abort could not restore
(nothing was, and it names the backup and the files left) · 2 wrong order or wrong input.";

/// `kubepki rotate-ca`: phased CA rotation with an overlap bundle.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct RotateCaArgs {
    #[command(subcommand)]
    phase: PhaseCommand,
}

/// `--ca`: one of kubeadm's CA names, which `--help` lists and shell completion offers.
fn ca_kind() -> impl clap::builder::TypedValueParser<Value = CaKind> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(CaKind::ALL.map(CaKind::name)).try_map(|s| s.parse::<CaKind>())
}

#[derive(Args, Debug)]
struct Common {
    /// The CA to rotate.
    #[arg(long, value_name = "CA", value_parser = ca_kind())]
    ca: CaKind,
    /// The cert dir.
    #[arg(long, value_name = "DIR", default_value = kubepki_pki::paths::CERT_DIR, value_parser = crate::cluster_flags::absolute_path)]
    cert_dir: PathBuf,
    /// The kubeconfig dir (its *.conf carry the cluster CA).
    #[arg(long, value_name = "DIR", default_value = kubepki_pki::paths::KUBECONFIG_DIR, value_parser = crate::cluster_flags::absolute_path)]
    kubeconfig_dir: PathBuf,
    /// Another kubeconfig to keep in step; repeatable.
    #[arg(long = "kubeconfig", value_name = "FILE", value_parser = crate::cluster_flags::absolute_path)]
    kubeconfigs: Vec<PathBuf>,
    /// Run this shell command after the phase wrote its files (restart what must restart);
    /// $KUBEPKI_PHASE names the phase. If it fails, the phase is undone.
    #[arg(long, value_name = "COMMAND")]
    exec: Option<String>,
    #[command(flatten)]
    verify: VerifyFlags,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// With --etcd-lock: run `reissue` or `retire` although other nodes have not completed the
    /// phase before (their TLS to this node may break until they do).
    #[arg(long, requires = "etcd_lock")]
    force: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    lock: LockFlags,
}

#[derive(Debug, Subcommand)]
enum PhaseCommand {
    /// Make the new CA in the staging area; nothing live changes.
    Prepare {
        #[command(flatten)]
        common: Common,
        /// The new CA's key algorithm [default: the old CA's].
        #[arg(long, value_name = "ALGORITHM")]
        encryption_algorithm: Option<KeyAlgorithm>,
        /// The new CA's validity [default: the old CA's lifetime].
        #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
        ca_validity: Option<Lifetime>,
        /// Also certify the new CA's key with the old CA (cross-signed.crt in the staging area).
        #[arg(long, conflicts_with = "from")]
        cross_sign: bool,
        /// Adopt the new CA another control-plane node prepared: DIR is a copy of its
        /// <state dir>/ca-rotation/<ca>/ (or of the new/ in it). Never a second CA.
        #[arg(long, value_name = "DIR", value_parser = crate::cluster_flags::absolute_path,
              conflicts_with_all = ["encryption_algorithm", "ca_validity"])]
        from: Option<PathBuf>,
    },
    /// Put old + new into every trust point; signing stays with the old CA.
    Trust(Common),
    /// Make the new CA the signer and reissue everything the old one signed.
    Reissue {
        #[command(flatten)]
        common: Common,
        /// Append one JSON line per reissued certificate to this file.
        #[arg(long, value_name = "FILE", value_parser = crate::cluster_flags::absolute_path)]
        audit_log: Option<PathBuf>,
    },
    /// Remove the old CA from every trust point.
    Retire(Common),
    /// Show where the rotation stands.
    Status(Common),
    /// Go back to the previous phase, from that phase's backups; if one is missing, restore
    /// nothing, exit 1 and name what is left.
    Abort(Common),
}

pub(crate) fn run(args: &RotateCaArgs) -> Result<ExitCode> {
    let common = match &args.phase {
        PhaseCommand::Prepare { common, .. } | PhaseCommand::Reissue { common, .. } => common,
        PhaseCommand::Trust(c) | PhaseCommand::Retire(c) | PhaseCommand::Status(c) | PhaseCommand::Abort(c) => c,
    };
    crate::phases::require_cert_dir(&common.cert_dir)?;
    crate::progress::install(common.output == Format::Table);
    let now = OffsetDateTime::now_utc();
    let options = InitOptions { now, ..common.lock.options() };
    let (_lock, pki, _) = kubepki_pki::open_locked(&common.cert_dir, &common.kubeconfig_dir, &options)?;
    if !matches!(args.phase, PhaseCommand::Status(_)) {
        crate::interrupted::finish_locked(&common.cert_dir)?;
    }
    let mut kubeconfigs = targets::kubeconfigs_in(&common.kubeconfig_dir);
    kubeconfigs.extend(common.kubeconfigs.iter().cloned());
    let rotation = CaRotation::new(&common.cert_dir, &common.kubeconfig_dir, kubeconfigs.clone(), common.ca)?;

    // Endpoints are checked before the phase writes anything; prepare changes nothing live.
    let verification = common.verify.verification();
    let probes = match &args.phase {
        PhaseCommand::Prepare { .. } => Vec::new(),
        _ => verification.targets(&common.cert_dir)?,
    };
    // With --etcd-lock: the cluster-wide lock, and the phase checked against every node's.
    let cluster = ClusterSide::open(
        &common.cluster,
        common.force,
        common.lock.lock_timeout,
        &pki,
        common.ca.name(),
        format!("rotate-ca {}", common.ca.name()),
    )?;
    let local_identity = |r: &CaRotation| -> Result<Option<String>> { Ok(r.state()?.map(|s| s.new_fingerprint)) };
    if let Some(c) = &cluster {
        let this = local_identity(&rotation)?;
        match &args.phase {
            PhaseCommand::Prepare { from: None, .. } => c.before_prepare(
                this.as_deref(),
                &kubepki_rotator::ca_rotation::state_dir(&common.cert_dir, common.ca),
                &format!("kubepki rotate-ca prepare{}", common.flags()),
            )?,
            PhaseCommand::Trust(_) | PhaseCommand::Reissue { .. } | PhaseCommand::Retire(_) => {
                let want = match &args.phase {
                    PhaseCommand::Trust(_) => Phase::Prepared,
                    PhaseCommand::Reissue { .. } => Phase::Trusted,
                    _ => Phase::Reissued,
                };
                if let Some(fp) = &this {
                    c.before(want, fp)?;
                }
            }
            _ => {}
        }
    }
    let (phase, report, execution, audit_log) = match &args.phase {
        PhaseCommand::Prepare { from: Some(from), .. } => {
            (Phase::Prepared, rotation.prepare_adopting(from)?, None, None)
        }
        PhaseCommand::Prepare { encryption_algorithm, ca_validity, cross_sign, .. } => {
            (Phase::Prepared, rotation.prepare(*encryption_algorithm, *ca_validity, *cross_sign, now)?, None, None)
        }
        PhaseCommand::Trust(_) => (Phase::Trusted, rotation.trust()?, None, None),
        PhaseCommand::Reissue { audit_log, .. } => {
            let (report, execution) = rotation.reissue(audit_log.clone(), now)?;
            (Phase::Reissued, report, execution, audit_log.as_deref())
        }
        PhaseCommand::Retire(_) => (Phase::Retired, rotation.retire()?, None, None),
        PhaseCommand::Status(c) => return status(&rotation, &pki, &kubeconfigs, c, cluster.as_ref()),
        PhaseCommand::Abort(c) => {
            let identity = local_identity(&rotation)?;
            let (back_to, restored) = rotation.abort()?;
            if let (Some(side), Some(fp)) = (&cluster, &identity) {
                side.after(back_to, fp)?;
            }
            let subject = format!("{}: ", c.ca);
            crate::phases::print_abort(
                c.output,
                "rotate-ca",
                &subject,
                back_to,
                &restored,
                "the staged CA is deleted",
            )?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    // The same hook runner and rollback as `rotate`; the phase's undo is its abort.
    let hook = common.exec.as_deref().map(Hook::shell);
    let env = [("KUBEPKI_PHASE", OsStr::new(phase.as_str())), ("KUBEPKI_CA", OsStr::new(common.ca.name()))];
    let changes = Changes {
        files: Some(&rotation),
        renewed: execution.as_ref().map_or(&[], |o| &o.renewed),
        audit_log,
        secrets: None,
    };
    crate::phases::after_phase(phase, hook.as_ref(), &env, &changes, &verification, &probes).map_err(|e| {
        match restart_hint(phase, &e, common, &rotation) {
            Some(hint) => coded(FAILURE, anyhow::anyhow!("{e}; {hint}")),
            None => coded(FAILURE, e),
        }
    })?;
    // Recorded only once the phase is kept (a failed hook undid it above).
    let behind = match (&cluster, local_identity(&rotation)?) {
        (Some(c), Some(fp)) => c.phase_done(phase, &fp, || {
            rotation.abort()?;
            Ok(())
        })?,
        _ => Vec::new(),
    };
    let restart = restart::restarts(&report.written, &NodePaths::new(&common.cert_dir, &common.kubeconfig_dir));
    render(common, phase, &report, &restart, &behind)
}

/// What to run next after `phase`, as a complete command: the CA, the cert dir and the
/// kubeconfigs of this run.
fn next_step(phase: Phase, common: &Common) -> String {
    let (when, next) = match phase {
        Phase::Prepared => ("next", "trust"),
        Phase::Trusted => ("next, once every reader above has restarted", "reissue"),
        Phase::Reissued => ("next, once every user above has restarted", "retire"),
        Phase::Retired => return "done".to_owned(),
    };
    format!("{when}: kubepki rotate-ca {next}{}", common.flags())
}

impl Common {
    /// ` --ca CA --cert-dir DIR`, then the kubeconfig dir when not kubeadm's and every
    /// `--kubeconfig`: what a command for the same rotation must carry.
    fn flags(&self) -> String {
        let default_kubeconfig_dir = self.kubeconfig_dir == std::path::Path::new(kubepki_pki::paths::KUBECONFIG_DIR);
        let mut flags = format!(" --ca {}", self.ca.name());
        flags.push_str(&output::flags_given(&[
            ("--cert-dir", Some(self.cert_dir.as_path())),
            ("--kubeconfig-dir", (!default_kubeconfig_dir).then_some(self.kubeconfig_dir.as_path())),
        ]));
        for k in &self.kubeconfigs {
            flags.push_str(&output::flags_given(&[("--kubeconfig", Some(k.as_path()))]));
        }
        flags.push_str(&self.cluster.flags());
        flags
    }
}

/// A failed verification after `reissue` whose cause is a TLS refusal (a certificate the
/// endpoint does not trust): what the endpoints were not given after `trust` — a restart, of the
/// components that read what `trust` wrote (the restart list of that phase), with their commands.
fn restart_hint(
    phase: Phase,
    error: &kubepki_rotator::Error,
    common: &Common,
    rotation: &CaRotation,
) -> Option<String> {
    let kubepki_rotator::Error::RolledBack { cause, .. } = error else { return None };
    let kubepki_rotator::Error::VerificationFailed { problems, .. } = cause.as_ref() else { return None };
    // A client certificate refused (the check `client-cert-accepted`, whatever the transport
    // made of the refusal), or a TLS alert about a certificate.
    let tls = ["client-cert-accepted", "BadCertificate", "UnknownCA", "unknown ca", "bad certificate"];
    let refused = problems.iter().any(|p| tls.iter().any(|t| p.to_lowercase().contains(&t.to_lowercase())));
    if phase != Phase::Reissued || !refused {
        return None;
    }
    // What `trust` wrote, and so who had to restart after it.
    let trusted: Vec<PathBuf> = rotation
        .state()
        .ok()
        .flatten()
        .and_then(|s| s.history.into_iter().rev().find(|h| h.phase == Phase::Trusted))
        .map(|h| h.written)
        .unwrap_or_default();
    let list = restart::restarts(&trusted, &NodePaths::new(&common.cert_dir, &common.kubeconfig_dir));
    let restarts: Vec<String> = list
        .to_restart()
        .map(|r| format!("{} ({})", r.component.as_str(), r.command.as_deref().unwrap_or_default()))
        .collect();
    let which = if restarts.is_empty() {
        "etcd and kube-apiserver for etcd-ca, every control-plane component and the kubelet for ca, kube-apiserver \
         for front-proxy-ca"
            .to_owned()
    } else {
        restarts.join(", then ")
    };
    Some(format!(
        "the endpoints refused certificates of the new {ca}: they still trust only the old one, so they were not \
         restarted after `kubepki rotate-ca trust`; restart them: {which}; then run kubepki rotate-ca reissue{flags} \
         again",
        ca = common.ca.name(),
        flags = common.flags()
    ))
}

fn render(
    common: &Common,
    phase: Phase,
    report: &PhaseReport,
    restart: &RestartList,
    behind: &[NodePhase],
) -> Result<ExitCode> {
    match common.output {
        Format::Json => output::print_json(&json!({
            "ca": common.ca.name(),
            "phase": phase.as_str(),
            "nodesBehind": behind.iter().map(|n| json!({"node": n.node, "phase": n.phase.map(Phase::as_str)})).collect::<Vec<_>>(),
            "written": report.written,
            "reissued": report.reissued,
            "restart": restart.to_json(),
            "elsewhere": report.elsewhere,
            "notes": report.notes,
            "next": next_step(phase, common),
        }))?,
        Format::Table => {
            let lines: Vec<String> = report
                .reissued
                .iter()
                .map(|name| format!("reissued {name}"))
                .chain(report.notes.iter().cloned())
                .collect();
            crate::phases::print_done("rotate-ca", &format!("{}: ", common.ca), phase, &lines, restart);
            for e in &report.elsewhere {
                println!("[rotate-ca] beyond this node: {e}");
            }
            crate::phases::print_behind("rotate-ca", phase, behind);
            println!("[rotate-ca] {}", next_step(phase, common));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status(
    rotation: &CaRotation,
    pki: &kubepki_pki::PkiDir,
    kubeconfigs: &[PathBuf],
    c: &Common,
    cluster: Option<&ClusterSide>,
) -> Result<ExitCode> {
    let state = rotation.state()?;
    let (identity, nodes) = match cluster {
        Some(side) => (side.registry.identity()?, side.registry.nodes()?),
        None => (None, Vec::new()),
    };
    let cas = Cas::load(pki)?;
    let live = cas.get(c.ca);
    let bundle: Vec<&Certificate> = live.map(|ca| ca.certificates().collect()).unwrap_or_default();
    let label = |cert: &Certificate| -> String {
        let fp = cert.fingerprint_sha256();
        match &state {
            Some(s) if s.old_fingerprint == fp => "old".into(),
            Some(s) if s.new_fingerprint == fp => "new".into(),
            _ => format!("{}…", &fp[..12]),
        }
    };
    let discovery = targets::discover(pki, &cas, kubeconfigs, &[])?;
    let signed: Vec<(String, String)> = discovery
        .targets
        .iter()
        .filter(|t| t.ca == c.ca)
        .map(|t| {
            let by =
                bundle.iter().find(|b| t.cert.verify_issued_by(b).is_ok()).map_or_else(|| "?".into(), |b| label(b));
            (t.name.clone(), by)
        })
        .collect();
    match c.output {
        Format::Json => output::print_json(&json!({
            "ca": c.ca.name(),
            "phase": state.as_ref().map(|s| s.phase.as_str()),
            "history": state.as_ref().map(|s| crate::phases::history_json(&s.history)),
            "bundle": bundle.iter().map(|b| json!({"ca": label(b), "fingerprint": b.fingerprint_sha256(), "notAfter": output::rfc3339(b.not_after)})).collect::<Vec<_>>(),
            "signedBy": signed.iter().map(|(n, by)| json!({"name": n, "ca": by})).collect::<Vec<_>>(),
            "cluster": cluster.map(|_| json!({
                "rotation": identity.as_ref().map(|i| json!({"newCa": i.identity, "preparedBy": i.prepared_by, "preparedAt": i.prepared_at})),
                "nodes": nodes.iter().map(|n| json!({"node": n.node, "phase": n.phase.map(Phase::as_str), "newCa": n.identity, "updatedAt": n.updated_at})).collect::<Vec<_>>(),
            })),
        }))?,
        Format::Table => {
            match &state {
                None => println!("[rotate-ca] {}: no rotation in progress", c.ca),
                Some(s) => {
                    println!("[rotate-ca] {}: last phase done: {} — {}", c.ca, s.phase.as_str(), next_step(s.phase, c));
                    for h in &s.history {
                        println!("  {} at {}", h.phase.as_str(), h.time);
                    }
                }
            }
            let names: Vec<String> =
                bundle.iter().map(|b| format!("{} (until {})", label(b), output::short_date(b.not_after))).collect();
            println!("[rotate-ca] trusted ({}): {}", pki.cert_path(c.ca.base_name()).display(), names.join(", "));
            let mut rows = vec![vec!["CERTIFICATE".to_owned(), "SIGNED BY".to_owned()]];
            rows.extend(signed.iter().map(|(n, by)| vec![n.clone(), by.clone()]));
            print!("{}", output::table(&rows));
            if let Some(id) = &identity {
                println!(
                    "[rotate-ca] the cluster's rotation: new CA {} prepared on {} at {}",
                    id.identity, id.prepared_by, id.prepared_at
                );
                let mut rows = vec![vec!["NODE".to_owned(), "PHASE DONE".to_owned(), "SINCE".to_owned()]];
                rows.extend(nodes.iter().filter(|n| n.identity == id.identity).map(|n| {
                    vec![
                        n.node.clone(),
                        n.phase.map_or("none (aborted)", Phase::as_str).to_owned(),
                        n.updated_at.clone(),
                    ]
                }));
                print!("{}", output::table(&rows));
            } else if cluster.is_some() {
                println!("[rotate-ca] the cluster's etcd records no rotation of {}", c.ca);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
