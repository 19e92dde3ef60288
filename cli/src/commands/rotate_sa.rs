//! `kubepki rotate-sa`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use kubepki_pki::KeyAlgorithm;
use kubepki_pki::sa::PublicKey;
use kubepki_rotator::rotation::cluster_phases::NodePhase;
use kubepki_rotator::rotation::phases::Phase;
use kubepki_rotator::rotation::restart::{self, NodePaths};
use kubepki_rotator::rotation::{Changes, Hook, Verification};
use kubepki_rotator::sa_rotation::{self, PhaseReport, SaRotation, State, TokenLifetime};
use serde_json::json;
use time::OffsetDateTime;

use crate::commands::init::parse_duration;
use crate::exit::{FAILURE, coded};
use crate::lock_flags::LockFlags;
use crate::output::{self, Format};
use crate::phases::{ClusterArgs, ClusterSide};

const AFTER_HELP: &str = "\
The phases, in order, each idempotent and resumable:
  prepare   a new key in the staging area (<cert dir>/../tmp/kubepki/<name>/sa-rotation/new/sa.key); nothing live changes
  trust     sa.pub = old + new public keys; sa.key unchanged; restart kube-apiserver
  reissue   sa.key = the new key (sa.pub keeps both); restart kube-apiserver: new tokens carry the new kid
  retire    the old public key leaves sa.pub, once no token it signed can still be valid (or --force);
            restart kube-apiserver
  status    the phase, both key IDs, when retire becomes safe, legacy token Secrets, peers' keys
  abort     back to the previous phase, byte for byte, from that phase's backup
Every control-plane node must hold the same sa.key and sa.pub before the next phase: docs/sa-rotation.md.
Exit codes: 0 done · 1 a phase failed (what it wrote was restored), abort could not restore, or
status found a peer that differs · 2 wrong order or wrong input (nothing changed), retire before
it is safe.";

/// `kubepki rotate-sa`: phased rotation of the service-account signing key.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct RotateSaArgs {
    #[command(subcommand)]
    phase: PhaseCommand,
}

#[derive(Args, Debug)]
struct Common {
    /// The cert dir (holding sa.key and sa.pub).
    #[arg(long, value_name = "DIR", default_value = kubepki_pki::paths::CERT_DIR, value_parser = crate::cluster_flags::absolute_path)]
    cert_dir: PathBuf,
    /// The kubeconfig dir (its manifests/kube-apiserver.yaml says how long tokens live).
    #[arg(long, value_name = "DIR", default_value = kubepki_pki::paths::KUBECONFIG_DIR, value_parser = crate::cluster_flags::absolute_path)]
    kubeconfig_dir: PathBuf,
    /// Run this shell command after the phase wrote its files (restart kube-apiserver, copy the
    /// files to the other control-plane nodes); $KUBEPKI_PHASE names the phase,
    /// $KUBEPKI_CERT_DIR the cert dir, $KUBEPKI_SA_KEY_ID the signing key's kid. If it fails,
    /// the phase is undone.
    #[arg(long, value_name = "COMMAND")]
    exec: Option<String>,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    lock: LockFlags,
}

#[derive(Args, Debug)]
struct Lifetime {
    /// The longest lifetime a token can have [default: from the kube-apiserver manifest's
    /// --service-account-max-token-expiration and --service-account-extend-token-expiration,
    /// else kubeadm's defaults: 1 year].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    max_token_lifetime: Option<Duration>,
}

#[derive(Debug, Subcommand)]
enum PhaseCommand {
    /// Make a new key pair in the staging area; nothing live changes.
    Prepare {
        #[command(flatten)]
        common: Common,
        /// The new key's algorithm [default: today's sa.key's].
        #[arg(long, value_name = "ALGORITHM", conflicts_with = "from")]
        encryption_algorithm: Option<KeyAlgorithm>,
        /// Adopt the new key another control-plane node prepared: DIR is a copy of its
        /// <state dir>/sa-rotation/ (or of the new/ in it). Never a second key.
        #[arg(long, value_name = "DIR", value_parser = crate::cluster_flags::absolute_path)]
        from: Option<PathBuf>,
    },
    /// Trust old + new in sa.pub; signing stays with the old key.
    Trust(Common),
    /// Sign with the new key; sa.pub keeps trusting the old one.
    Reissue {
        #[command(flatten)]
        common: Common,
        /// With --etcd-lock: reissue although other nodes have not completed `trust` (tokens
        /// this node signs are refused by their API servers until they do).
        #[arg(long, requires = "etcd_lock")]
        force: bool,
    },
    /// Remove the old public key from sa.pub, once no token it signed can still be valid.
    Retire {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        lifetime: Lifetime,
        /// Retire now, even though tokens the old key signed may still be valid (they stop
        /// verifying), and (with --etcd-lock) other nodes have not completed `reissue`.
        #[arg(long)]
        force: bool,
    },
    /// Show where the rotation stands, the legacy token Secrets, and how peers compare.
    Status {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        lifetime: Lifetime,
        /// The kubeconfig to count legacy token Secrets with [default: <kubeconfig dir>/admin.conf].
        #[arg(long, value_name = "FILE", value_parser = crate::cluster_flags::absolute_path)]
        kubeconfig: Option<PathBuf>,
        /// Another control-plane node's cert dir (a copy): its sa.key and sa.pub must equal
        /// this node's before the next phase; repeatable.
        #[arg(long = "peer-cert-dir", value_name = "DIR")]
        peer_cert_dirs: Vec<PathBuf>,
        /// Another node's sa.pub: it must trust the same keys; repeatable.
        #[arg(long = "peer-sa-pub", value_name = "FILE")]
        peer_sa_pubs: Vec<PathBuf>,
    },
    /// Go back to the previous phase, from that phase's backup.
    Abort(Common),
}

pub(crate) fn run(args: &RotateSaArgs) -> Result<ExitCode> {
    let common = match &args.phase {
        PhaseCommand::Prepare { common, .. }
        | PhaseCommand::Reissue { common, .. }
        | PhaseCommand::Retire { common, .. }
        | PhaseCommand::Status { common, .. } => common,
        PhaseCommand::Trust(c) | PhaseCommand::Abort(c) => c,
    };
    crate::phases::require_cert_dir(&common.cert_dir)?;
    let now = OffsetDateTime::now_utc();
    let (_lock, _, _) = kubepki_pki::open_locked(&common.cert_dir, &common.kubeconfig_dir, &common.lock.options())?;
    if !matches!(args.phase, PhaseCommand::Status { .. }) {
        crate::interrupted::finish_locked(&common.cert_dir)?;
    }
    let rotation = SaRotation::new(&common.cert_dir)?;

    // With --etcd-lock: the cluster-wide lock, and the phase checked against every node's.
    let force =
        matches!(args.phase, PhaseCommand::Reissue { force: true, .. } | PhaseCommand::Retire { force: true, .. });
    let cluster = ClusterSide::open(
        &common.cluster,
        force,
        common.lock.lock_timeout,
        &kubepki_pki::PkiDir::new(&common.cert_dir),
        "sa",
        "rotate-sa".into(),
    )?;
    let local_identity = |r: &SaRotation| -> Result<Option<String>> { Ok(r.state()?.map(|s| s.new_key_id)) };
    if let Some(c) = &cluster {
        let this = local_identity(&rotation)?;
        let done_before = match &args.phase {
            PhaseCommand::Prepare { from: None, .. } => {
                let command = format!("kubepki rotate-sa prepare{}", common.flags());
                c.before_prepare(this.as_deref(), &sa_rotation::state_dir(&common.cert_dir), &command)?;
                None
            }
            PhaseCommand::Trust(_) => Some(Phase::Prepared),
            PhaseCommand::Reissue { .. } => Some(Phase::Trusted),
            PhaseCommand::Retire { .. } => Some(Phase::Reissued),
            _ => None,
        };
        if let (Some(done), Some(fp)) = (done_before, &this) {
            c.before(done, fp)?;
        }
    }
    let (phase, report) = match &args.phase {
        PhaseCommand::Prepare { from: Some(from), .. } => (Phase::Prepared, rotation.prepare_adopting(from)?),
        PhaseCommand::Prepare { encryption_algorithm, .. } => {
            (Phase::Prepared, rotation.prepare(*encryption_algorithm)?)
        }
        PhaseCommand::Trust(_) => (Phase::Trusted, rotation.trust()?),
        PhaseCommand::Reissue { .. } => (Phase::Reissued, rotation.reissue()?),
        PhaseCommand::Retire { lifetime, force, .. } => {
            let lifetime = lifetime.resolve(common)?;
            (Phase::Retired, rotation.retire(&lifetime, *force, now)?)
        }
        PhaseCommand::Status { lifetime, kubeconfig, peer_cert_dirs, peer_sa_pubs, .. } => {
            let peers: Vec<&Path> = peer_cert_dirs.iter().chain(peer_sa_pubs).map(PathBuf::as_path).collect();
            let kubeconfig = kubeconfig.clone().unwrap_or_else(|| common.kubeconfig_dir.join("admin.conf"));
            return status(&rotation, common, &lifetime.resolve(common)?, &kubeconfig, &peers, now, cluster.as_ref());
        }
        PhaseCommand::Abort(c) => {
            let identity = local_identity(&rotation)?;
            let (back_to, restored) = rotation.abort()?;
            if let (Some(side), Some(fp)) = (&cluster, &identity) {
                side.after(back_to, fp)?;
            }
            crate::phases::print_abort(c.output, "rotate-sa", "", back_to, &restored, "the staged key is deleted")?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    // The same hook runner and undo as rotate-ca; the phase's undo is its abort.
    let hook = common.exec.as_deref().map(Hook::shell);
    let kid = rotation.live().map(|l| l.public.key_id()).unwrap_or_default();
    let env = [
        ("KUBEPKI_PHASE", OsStr::new(phase.as_str())),
        ("KUBEPKI_CERT_DIR", rotation.cert_dir().as_os_str()),
        ("KUBEPKI_SA_KEY_ID", OsStr::new(&kid)),
    ];
    // A phase run again wrote nothing: a failing hook then has nothing to undo.
    let files: Option<&dyn kubepki_rotator::rotation::RestoreFiles> = (!report.written.is_empty()).then_some(&rotation);
    let changes = Changes { files, renewed: &[], audit_log: None, secrets: None };
    crate::phases::after_phase(phase, hook.as_ref(), &env, &changes, &Verification::default(), &[])
        .map_err(|e| coded(FAILURE, e))?;
    // Recorded only once the phase is kept (a failed hook undid it above).
    let behind = match (&cluster, local_identity(&rotation)?) {
        (Some(c), Some(fp)) => c.phase_done(phase, &fp, || {
            rotation.abort()?;
            Ok(())
        })?,
        _ => Vec::new(),
    };
    render(common, phase, &report, &behind)
}

impl Lifetime {
    fn resolve(&self, common: &Common) -> Result<TokenLifetime> {
        Ok(match self.max_token_lifetime {
            Some(d) => TokenLifetime::given(d),
            None => TokenLifetime::from_manifest(&common.kubeconfig_dir)?,
        })
    }
}

impl Common {
    /// ` --cert-dir DIR`, and the kubeconfig dir when not kubeadm's.
    fn flags(&self) -> String {
        let default_kubeconfig_dir = self.kubeconfig_dir == Path::new(kubepki_pki::paths::KUBECONFIG_DIR);
        let mut flags = output::flags_given(&[
            ("--cert-dir", Some(self.cert_dir.as_path())),
            ("--kubeconfig-dir", (!default_kubeconfig_dir).then_some(self.kubeconfig_dir.as_path())),
        ]);
        flags.push_str(&self.cluster.flags());
        flags
    }
}

/// What to run next after `phase`, as a complete command.
fn next_step(phase: Phase, common: &Common) -> String {
    let (when, next) = match phase {
        Phase::Prepared => ("next, once every control-plane node holds the same staged key", "trust"),
        Phase::Trusted => ("next, once kube-apiserver restarted on every control-plane node", "reissue"),
        Phase::Reissued => ("next, once kube-apiserver restarted everywhere and `status` says it is safe", "retire"),
        Phase::Retired => return "done".to_owned(),
    };
    format!("{when}: kubepki rotate-sa {next}{}", common.flags())
}

fn render(common: &Common, phase: Phase, report: &PhaseReport, behind: &[NodePhase]) -> Result<ExitCode> {
    // What reads the files this phase changed on this node (kube-apiserver's
    // --service-account-key-file and --service-account-signing-key-file, the controller
    // manager's --service-account-private-key-file), from its manifests.
    let restart = restart::restarts(&report.written, &NodePaths::new(&common.cert_dir, &common.kubeconfig_dir));
    match common.output {
        Format::Json => output::print_json(&json!({
            "phase": phase.as_str(),
            "written": report.written,
            "restart": restart.to_json(),
            "nodesBehind": behind.iter().map(|n| json!({"node": n.node, "phase": n.phase.map(Phase::as_str)})).collect::<Vec<_>>(),
            "notes": report.notes,
            "next": next_step(phase, common),
        }))?,
        Format::Table => {
            let next = next_step(phase, common);
            crate::phases::print_done("rotate-sa", "", phase, &report.notes, &restart);
            if phase != Phase::Prepared {
                println!("[rotate-sa] the same on every other control-plane node, once it holds these files");
            }
            crate::phases::print_behind("rotate-sa", phase, behind);
            println!("[rotate-sa] {next}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Legacy token Secrets, counted through the API: `Ok(names)`, or why they could not be.
fn legacy_secrets(kubeconfig: &Path) -> std::result::Result<Vec<String>, String> {
    if !kubeconfig.is_file() {
        return Err(format!("no kubeconfig at {} (give --kubeconfig)", kubeconfig.display()));
    }
    sa_rotation::legacy_token_secrets(kubeconfig, Duration::from_secs(5))
}

fn status(
    rotation: &SaRotation,
    c: &Common,
    lifetime: &TokenLifetime,
    kubeconfig: &Path,
    peers: &[&Path],
    now: OffsetDateTime,
    cluster: Option<&ClusterSide>,
) -> Result<ExitCode> {
    let state = rotation.state()?;
    let nodes = cluster.map(|c| c.registry.nodes()).transpose()?.unwrap_or_default();
    let live = rotation.live()?;
    let label = |kid: &str| -> &'static str {
        match &state {
            Some(s) if s.old_key_id == kid => "old",
            Some(s) if s.new_key_id == kid => "new",
            _ => "",
        }
    };
    let trusted: Vec<String> = live.trusted.keys.iter().map(PublicKey::key_id).collect();
    let safe_at = state.as_ref().and_then(|s| SaRotation::retire_safe_at(s, lifetime));
    let secrets = legacy_secrets(kubeconfig);
    let mut compared = Vec::new();
    for peer in peers {
        compared.push(sa_rotation::compare_peer(&live, peer)?);
    }
    let differ = compared.iter().any(|p| !p.differences.is_empty());
    match c.output {
        Format::Json => output::print_json(&json!({
            "phase": state.as_ref().map(|s| s.phase.as_str()),
            "history": state.as_ref().map(|s| crate::phases::history_json(&s.history)),
            "oldKeyId": state.as_ref().map(|s| &s.old_key_id),
            "newKeyId": state.as_ref().map(|s| &s.new_key_id),
            "signingKeyId": live.public.key_id(),
            "trustedKeyIds": trusted,
            "retireSafeAt": safe_at.map(output::rfc3339),
            "maxTokenLifetime": lifetime.longest.as_secs(),
            "maxTokenLifetimeWhy": lifetime.why,
            "legacyTokenSecrets": secrets.as_ref().ok().map(Vec::len),
            "legacyTokenSecretsError": secrets.as_ref().err(),
            "peers": compared.iter().map(|p| json!({"peer": p.peer, "differences": p.differences})).collect::<Vec<_>>(),
            "next": state.as_ref().map(|s| next_step(s.phase, c)),
            "cluster": cluster.map(|_| nodes.iter().map(|n| json!({"node": n.node, "phase": n.phase.map(Phase::as_str), "newKeyId": n.identity, "updatedAt": n.updated_at})).collect::<Vec<_>>()),
        }))?,
        Format::Table => {
            print_status(state.as_ref(), c, &live, lifetime, safe_at, &secrets, &compared, now, &label);
            if cluster.is_some() {
                let mut rows = vec![vec!["NODE".to_owned(), "PHASE DONE".to_owned(), "NEW KEY".to_owned()]];
                rows.extend(nodes.iter().map(|n| {
                    vec![n.node.clone(), n.phase.map_or("none (aborted)", Phase::as_str).to_owned(), n.identity.clone()]
                }));
                println!("[rotate-sa] the cluster's nodes (etcd):");
                print!("{}", output::table(&rows));
            }
        }
    }
    Ok(if differ { ExitCode::from(FAILURE) } else { ExitCode::SUCCESS })
}

#[allow(clippy::too_many_arguments)]
fn print_status(
    state: Option<&State>,
    c: &Common,
    live: &sa_rotation::Live,
    lifetime: &TokenLifetime,
    safe_at: Option<OffsetDateTime>,
    secrets: &std::result::Result<Vec<String>, String>,
    compared: &[sa_rotation::PeerDifference],
    now: OffsetDateTime,
    label: &dyn Fn(&str) -> &'static str,
) {
    match state {
        None => println!("[rotate-sa] no rotation in progress"),
        Some(s) => {
            println!("[rotate-sa] last phase done: {} — {}", s.phase.as_str(), next_step(s.phase, c));
            for h in &s.history {
                println!("  {} at {}", h.phase.as_str(), h.time);
            }
            println!("[rotate-sa] old key: kid {}", s.old_key_id);
            println!("[rotate-sa] new key: kid {} ({})", s.new_key_id, s.algorithm);
        }
    }
    let with_label = |kid: String| match label(&kid) {
        "" => kid,
        l => format!("{kid} ({l})"),
    };
    println!("[rotate-sa] signing (sa.key): {}", with_label(live.public.key_id()));
    let trusted: Vec<String> = live.trusted.keys.iter().map(|k| with_label(k.key_id())).collect();
    println!("[rotate-sa] trusted (sa.pub): {}", trusted.join(", "));
    match (state.map(|s| s.phase), safe_at) {
        (Some(Phase::Reissued), Some(at)) if now < at => {
            println!("[rotate-sa] retire becomes safe at {} ({})", output::rfc3339(at), lifetime.why)
        }
        (Some(Phase::Reissued), Some(_)) => println!("[rotate-sa] retire is safe now ({})", lifetime.why),
        (Some(Phase::Prepared | Phase::Trusted), _) => {
            println!("[rotate-sa] retire becomes safe {} after reissue ({})", humantime(lifetime.longest), lifetime.why)
        }
        _ => {}
    }
    match secrets {
        Ok(names) if names.is_empty() => println!("[rotate-sa] legacy token Secrets: none"),
        Ok(names) => {
            println!(
                "[rotate-sa] WARNING: {} legacy token Secret(s) (type kubernetes.io/service-account-token) hold \
                 non-expiring tokens: those the old key signed STOP WORKING at retire; after reissue, re-create \
                 each (kube-controller-manager's token controller fills a new token signed by the new key):",
                names.len()
            );
            for n in names {
                println!("  {n}");
            }
        }
        Err(why) => println!("[rotate-sa] legacy token Secrets: could not be counted ({why})"),
    }
    for p in compared {
        if p.differences.is_empty() {
            println!("[rotate-sa] peer {}: same keys", p.peer.display());
        } else {
            println!("[rotate-sa] peer {}: DIFFERS — {}", p.peer.display(), p.differences.join("; "));
        }
    }
}

/// `8760h` as `365 days`, `48h` as `2 days`, shorter in hours.
fn humantime(d: Duration) -> String {
    let h = d.as_secs() / 3600;
    if h >= 48 && h.is_multiple_of(24) {
        format!("{} days", h / 24)
    } else {
        format!("{}h{}m", h, d.as_secs() / 60 % 60)
    }
}
