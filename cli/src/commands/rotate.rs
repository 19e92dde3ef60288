//! `kubepki rotate`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use kubepki_pki::{Certificate, KeyAlgorithm, Lifetime};
use kubepki_rotator::rotation::plan::{self, Plan};
use kubepki_rotator::rotation::policy::{self, RenewalPolicy};
use kubepki_rotator::rotation::restart::{self, NodePaths, RestartList};
use kubepki_rotator::rotation::secret_sink::RotationConfig;
use kubepki_rotator::rotation::targets::{Location, Problem};
use kubepki_rotator::rotation::{EtcdLockRequest, Hook, ResumedRun, RotateReport, RotateRequest, RotationObserver};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::cluster_flags::ClusterFlags;
use crate::commands::init::parse_duration;
use crate::exit::{FAILURE, INPUT, coded};
use crate::lock_flags::LockFlags;
use crate::output::{self, Format};
use crate::verify_flags::VerifyFlags;

const AFTER_HELP: &str = "\
Exit codes: 0 nothing was due, or everything due was rotated (leaves of an externally managed
CA are listed, not renewed) · 1 a rotation failed, and what it had written was restored from the
backup; or a broken or missing leaf was left (named, with the command that fixes it) while
everything else due was rotated · 2 usage or input error; nothing was changed.
A second run right after a successful one changes nothing.
The table prints the plan (what will be renewed and why, SAN and key changes) before anything
is written, then the results, the verification checks and what on this node reads the files
written, with the command that restarts each (from its static pod manifest, else kubeadm's
wiring); -o json prints one document at the end, schemaVersion 1, every field (restart among
them) described in docs/rotation.md.";

/// `kubepki rotate`: renew what the policy says is due, and every copy of it.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct RotateArgs {
    #[command(flatten)]
    cluster: ClusterFlags,
    /// A kubeconfig (besides those in --kubeconfig-dir) whose embedded client certificates are
    /// renewed; repeatable.
    #[arg(long = "kubeconfig", value_name = "FILE", value_parser = crate::cluster_flags::absolute_path)]
    kubeconfigs: Vec<PathBuf>,
    /// Kubelet serving certificates to renew: a node's kubelet PKI dir holding kubelet.crt and
    /// kubelet.key (signed by the cluster CA), or a directory with one such directory per node
    /// (as `kubepki issue kubelet-serving --out DIR` writes); repeatable.
    #[arg(long = "kubelet-serving-dir", value_name = "DIR", value_parser = crate::cluster_flags::absolute_path)]
    kubelet_serving_dirs: Vec<PathBuf>,
    /// Renew this long before expiry (e.g. 30d, 72h). Without --renew-before and --renew-at:
    /// 2/3 of the lifetime or 30d before expiry, whichever comes first, never in the first
    /// half of a certificate's life.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_duration)]
    renew_before: Option<Duration>,
    /// Renew once this share of the lifetime has passed (e.g. 66%). With both, the earlier
    /// point wins.
    #[arg(long, value_name = "PERCENT", value_parser = policy::parse_share)]
    renew_at: Option<f64>,
    /// Move each certificate's renewal point earlier by up to this much (stable per
    /// certificate), so a fleet on one schedule spreads out.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_duration)]
    jitter: Option<Duration>,
    /// Renew these whatever the policy says (kubeadm names: apiserver, admin.conf, ...); also
    /// reissues a broken or missing leaf, with the identity of its old certificate when it can
    /// still be read, else kubeadm's profile filled from the flags or --config.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub(crate) force: Vec<String>,
    /// Renew everything that can be renewed (a broken or missing leaf must be named with
    /// --force).
    #[arg(long, conflicts_with = "force")]
    pub(crate) all: bool,
    /// Remove these SANs (DNS names or IP addresses) from every renewed certificate that has
    /// them; a certificate that has one is renewed. Without this or --config, a renewal keeps
    /// every SAN it had.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    remove_sans: Vec<String>,
    /// Evaluate the policy as of this moment: now, RFC 3339, a date (2027-01-01), or relative
    /// (+90d, -12h), as `check --at` takes it.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true, value_parser = parse_at)]
    pub(crate) at: Option<OffsetDateTime>,
    /// The lifetime of renewed certificates [default: the lifetime each had].
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    validity: Option<String>,
    /// Keep the existing keys (a new key is made by default).
    #[arg(long)]
    reuse_key: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// The directory under which each run backs up the files it replaces, in its own
    /// kubepki-backup-<UTC time> (DIR is created 0700 if missing, so one fixed DIR serves every
    /// run) [default: <cert dir>/../tmp].
    #[arg(long, value_name = "DIR", value_parser = crate::cluster_flags::absolute_path)]
    backup_dir: Option<PathBuf>,
    /// After a successful run, keep only this many of kubepki's backups in the backup
    /// directory (`kubepki-backup-<UTC time>`, the newest, this run's included) and remove the
    /// older ones, which hold old private keys; nothing else there is touched [default: keep all].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    keep_backups: Option<u32>,
    /// Append one JSON line per action to this file (never key material).
    #[arg(long, value_name = "FILE", value_parser = crate::cluster_flags::absolute_path)]
    audit_log: Option<PathBuf>,
    /// Run this shell command once after a run that renewed anything; the rotated names are in
    /// $KUBEPKI_ROTATED (space-separated) and the backup in $KUBEPKI_BACKUP_DIR. If it fails,
    /// the backup is restored.
    #[arg(long, value_name = "COMMAND")]
    exec: Option<String>,
    /// Also take a lock in etcd (these client URLs, with etcd/ca.crt and
    /// apiserver-etcd-client of the cert dir), so that the control-plane nodes of an HA
    /// cluster rotate one at a time; waits up to --lock-timeout.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    etcd_lock: Vec<String>,
    /// The etcd lock's name; every node of a cluster must use the same.
    #[arg(long, value_name = "NAME", default_value = "rotate")]
    etcd_lock_name: String,
    #[command(flatten)]
    verify: VerifyFlags,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub(crate) output: Format,
    #[command(flatten)]
    lock: LockFlags,
}

/// `--at`: `now`, RFC 3339, a date (midnight UTC), or `+DURATION` / `-DURATION` from now — as
/// `check --at` takes it.
pub(crate) fn parse_at(s: &str) -> Result<OffsetDateTime, String> {
    // One grammar for --at everywhere (check, tree, rotate, agent).
    kubepki_rotator::text::parse_time(s, OffsetDateTime::now_utc()).map_err(|e| e.to_string())
}

/// Shows the plan on the table output as soon as it is made: before anything is written.
pub(crate) struct PlanPrinter {
    pub(crate) table: bool,
    pub(crate) dry_run: bool,
    /// The flags every hint's command carries (` --cert-dir DIR`, as the user gave them).
    pub(crate) flags: String,
}

impl RotationObserver for PlanPrinter {
    fn resumed(&mut self, run: &ResumedRun) {
        if !self.table {
            return;
        }
        match run {
            ResumedRun::Finished(p) => println!("[rotate] {}", crate::interrupted::finished_text(p)),
            ResumedRun::Pending(p) => println!(
                "[rotate] {} still owes its --exec and verification: the next run without --dry-run finishes it, \
                 or undoes it",
                p.describe()
            ),
            _ => {}
        }
    }

    fn planned(&mut self, plan: &Plan) {
        if self.table {
            print_plan(&complete_fixes(plan.clone(), &self.flags), self.dry_run);
        }
        let new_keys: Vec<_> = plan.renewals.iter().filter(|r| !r.reuse_key).collect();
        if let (false, Some(first)) = (self.dry_run, new_keys.first()) {
            crate::progress::keys_planned("rotate", new_keys.len(), first.algorithm);
        }
    }
}

/// The plan with every fix a complete command: the flags of this run appended.
pub(crate) fn complete_fixes(mut plan: Plan, flags: &str) -> Plan {
    for u in &mut plan.unrenewable {
        u.fix = output::complete_command(&u.fix, flags);
    }
    plan
}

pub(crate) fn run(args: &RotateArgs) -> Result<ExitCode> {
    let request = request(args)?;
    crate::progress::install(args.output == Format::Table);
    let flags = output::flags_given(&[
        ("--config", args.cluster.signer.config.as_deref()),
        ("--cert-dir", args.cluster.signer.cert_dir.as_deref()),
        ("--kubeconfig-dir", args.cluster.kubeconfigs.kubeconfig_dir.as_deref()),
    ]);
    let mut printer = PlanPrinter { table: args.output == Format::Table, dry_run: request.dry_run, flags };
    let node = NodePaths::new(&request.cert_dir, &request.kubeconfig_dir);
    let mut report =
        kubepki_rotator::rotate_observed(&request, &mut printer).map_err(|e| match stale_hint(&e, &node) {
            Some(hint) => coded(FAILURE, anyhow::anyhow!("{e}; {hint}")),
            None => anyhow::Error::from(e),
        })?;
    report.plan = complete_fixes(report.plan, &printer.flags);
    let restart = report.execution.as_ref().map(|o| restart::restarts(&o.written, &node));
    render(args.output, &report, restart.as_ref())?;
    // Everything else was renewed; what could not be is named, with its fix, and fails the run.
    if !report.plan.unrenewable.is_empty() {
        for u in &report.plan.unrenewable {
            eprintln!("kubepki: {} ({}) is {}; fix: {}", u.name, u.path.display(), u.problem, u.fix);
        }
        return Ok(ExitCode::from(FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}

/// A verification that failed because an endpoint still serves the certificate it had before
/// the renewal (its `served-matches-disk` check): which component reads that file, and the
/// command that restarts it (or, for one that reloads by itself, that it needs longer).
fn stale_hint(error: &kubepki_rotator::Error, node: &NodePaths) -> Option<String> {
    let kubepki_rotator::Error::RolledBack { cause, .. } = error else { return None };
    let kubepki_rotator::Error::VerificationFailed { stale, .. } = cause.as_ref() else { return None };
    if stale.is_empty() {
        return None;
    }
    let list = restart::restarts(stale, node);
    let hints: Vec<String> = list
        .items
        .iter()
        .map(|r| {
            let files = r.reads.iter().map(|x| x.file.display().to_string()).collect::<Vec<_>>().join(", ");
            let command = restart::command(r.component, r.manifest.as_deref());
            let restart = format!("restart it after the write, e.g. --exec {}", output::shell_word(&command));
            match r.reloads_itself() {
                false => format!("{} still serves the old certificate of {files}: {restart}", r.component.as_str()),
                true => format!(
                    "{} still serves the old certificate of {files}, although it should reload it by itself ({}): \
                     give it longer with --verify-wait, or {restart}",
                    r.component.as_str(),
                    r.why().join("; ")
                ),
            }
        })
        .collect();
    (!hints.is_empty()).then(|| hints.join("; "))
}

/// The flags as a library request.
pub(crate) fn request(args: &RotateArgs) -> Result<RotateRequest> {
    let (cert_dir, kubeconfig_dir) = args.cluster.dirs()?;
    let mut request = RotateRequest::new(cert_dir, kubeconfig_dir);
    request.kubeconfigs.clone_from(&args.kubeconfigs);
    request.kubelet_serving_dirs.clone_from(&args.kubelet_serving_dirs);
    let plan = &mut request.plan;
    plan.desired = args.cluster.rotation_desired(&args.remove_sans)?;
    plan.validity = args.validity.as_deref().map(str::parse::<Lifetime>).transpose().context("--validity")?;
    plan.algorithm = args.cluster.signer.encryption_algorithm.as_deref().map(str::parse::<KeyAlgorithm>).transpose()?;
    plan.policy = match (args.renew_before, args.renew_at) {
        (None, None) => RenewalPolicy { jitter: args.jitter, ..RenewalPolicy::default() },
        (before, at) => RenewalPolicy { renew_before: before, renew_at: at, jitter: args.jitter, floor: None },
    };
    plan.at = args.at.unwrap_or(plan.now);
    plan.force.clone_from(&args.force);
    plan.all = args.all;
    plan.reuse_key = args.reuse_key;
    request.dry_run = args.dry_run;
    request.backup_dir.clone_from(&args.backup_dir);
    request.keep_backups = args.keep_backups.map(|k| k as usize);
    request.audit_log.clone_from(&args.audit_log);
    if !args.etcd_lock.is_empty() {
        request.etcd_lock =
            Some(EtcdLockRequest { endpoints: args.etcd_lock.clone(), name: args.etcd_lock_name.clone() });
    }
    request.lock_timeout = args.lock.lock_timeout;
    request.allow_insecure_permissions = args.lock.allow_insecure_permissions;
    request.config = rotation_config(args.cluster.signer.config.as_deref())?;
    request.hook = args.exec.as_deref().map(Hook::shell);
    request.verify = args.verify.verification();
    Ok(request)
}

/// The `RotationConfiguration` document of `--config`, if any.
fn rotation_config(path: Option<&Path>) -> Result<RotationConfig> {
    let Some(path) = path else { return Ok(RotationConfig::default()) };
    let text = kubepki_pki::read_config_text(path)?;
    Ok(RotationConfig::parse_optional(&text, path).map_err(|e| coded(INPUT, e))?.unwrap_or_default())
}

fn location_json(l: &Location) -> Value {
    match l {
        Location::CertDir { cert_path, .. } => json!({"kind": "cert-dir", "path": cert_path}),
        Location::Kubeconfig { path, user } => json!({"kind": "kubeconfig", "path": path, "user": user}),
    }
}

/// An interrupted earlier run, in the JSON: `finished` or (dry run) `pending`.
fn resumed_json(run: &ResumedRun) -> Option<Value> {
    let (state, p) = match run {
        ResumedRun::Finished(p) => ("finished", p),
        ResumedRun::Pending(p) => ("pending", p),
        _ => return None,
    };
    Some(json!({
        "state": state,
        "startedAt": p.started_at,
        "pid": p.pid,
        "renewed": p.renewed,
        "backupDir": p.backup_dir,
    }))
}

/// `-o json`'s document (schemaVersion 1, docs/rotation.md); `restart`: what reads the files
/// written (`None`: nothing was written).
pub(crate) fn report_json(report: &RotateReport, restart: Option<&RestartList>) -> Value {
    let (plan, execution, pruned, dry_run) = (&report.plan, report.execution.as_ref(), &report.pruned, report.dry_run);
    let secret_results = secret_results(report);
    json!({
            "schemaVersion": 1,
            "at": output::rfc3339(plan.at),
            "dryRun": dry_run,
            "renewals": plan.renewals.iter().map(|r| json!({
                "name": r.name,
                "location": location_json(&r.location),
                "ca": r.ca.name(),
                "reasons": r.reasons.iter().map(|x| json!({"kind": x.kind(), "text": x.to_string()})).collect::<Vec<_>>(),
                "oldSerial": r.old_serial(),
                "oldNotAfter": r.old_not_after().map(output::rfc3339),
                "newNotBefore": output::rfc3339(r.validity.not_before),
                "newNotAfter": output::rfc3339(r.validity.not_after),
                "clamped": r.clamped,
                "reuseKey": r.reuse_key,
                "subject": r.request.subject.to_string(),
                "sans": plan::sans_of(&r.request),
                "sansAdded": r.san_changes().0,
                "sansRemoved": r.san_changes().1,
                "oldKeyAlgorithm": r.old_algorithm.map(|a| a.to_string()),
                "keyAlgorithm": r.algorithm.to_string(),
            })).collect::<Vec<_>>(),
            "external": plan.external.iter().map(|e| json!({
                "name": e.name,
                "location": location_json(&e.location),
                "ca": e.ca.name(),
                "absentCaKey": e.ca_key,
                "notAfter": output::rfc3339(e.not_after),
            })).collect::<Vec<_>>(),
            "unrenewable": plan.unrenewable.iter().map(|u| json!({
                "name": u.name,
                "path": u.path,
                "problem": match &u.problem { Problem::Missing => "missing", Problem::Broken { .. } => "broken" },
                "reason": u.problem.to_string(),
                "fix": u.fix,
            })).collect::<Vec<_>>(),
            "kept": plan.kept.iter().map(|k| json!({
                "name": k.name,
                "location": location_json(&k.location),
                "notAfter": output::rfc3339(k.not_after),
                "renewalPoint": output::rfc3339(k.renewal_point),
            })).collect::<Vec<_>>(),
            "skipped": plan.skipped.iter().map(|s| json!({"name": s.name, "path": s.path, "reason": s.reason})).collect::<Vec<_>>(),
            "warnings": plan.warnings,
            "secrets": secret_results.iter().map(|(secret, source, action)| json!({"secret": secret, "source": source, "action": action})).collect::<Vec<_>>(),
            "result": execution.map(|o| json!({
                "renewed": o.renewed.iter().map(|r| json!({
                    "name": r.name,
                    "oldSerial": r.old.as_ref().map(|c| c.serial.clone()),
                    "newSerial": r.new.serial,
                    "oldFingerprint": r.old.as_ref().map(Certificate::fingerprint_sha256),
                    "newFingerprint": r.new.fingerprint_sha256(),
                    "newNotAfter": output::rfc3339(r.new.not_after),
                    "keyReused": r.key_reused,
                })).collect::<Vec<_>>(),
                "backup": o.backup.as_ref().map(|b| b.dir.clone()),
                "prunedBackups": pruned,
                "written": o.written,
            })),
            "verification": report.verification.as_ref().map(super::verify::report_json),
            "resumed": report.resumed.as_ref().and_then(resumed_json),
            "restart": restart.map(RestartList::to_json),
    })
}

fn secret_results(report: &RotateReport) -> Vec<(String, String, &'static str)> {
    report
        .secrets
        .iter()
        .map(|s| (s.target.secret.to_string(), s.target.source.clone(), s.action(report.dry_run)))
        .collect()
}

pub(crate) fn render(format: Format, report: &RotateReport, restart: Option<&RestartList>) -> Result<()> {
    let (execution, pruned, dry_run) = (report.execution.as_ref(), &report.pruned, report.dry_run);
    let secret_results = secret_results(report);
    match format {
        Format::Json => output::print_json(&report_json(report, restart)),
        Format::Table => {
            for (secret, source, action) in &secret_results {
                println!("[rotate] secret {secret} ({source}): {action}");
            }
            if let Some(o) = execution {
                for r in &o.renewed {
                    match &r.old {
                        Some(old) => println!("[rotate] {} renewed: serial {} → {}", r.name, old.serial, r.new.serial),
                        None => println!("[rotate] {} issued: serial {}", r.name, r.new.serial),
                    }
                }
                if let Some(b) = &o.backup {
                    println!("[rotate] previous files backed up in {}", b.dir.display());
                }
                if !pruned.is_empty() {
                    println!("[rotate] removed {} (--keep-backups)", output::count(pruned.len(), "older backup"));
                }
                if let Some(v) = &report.verification {
                    println!("[rotate] verified after the write:");
                    print!("{}", output::table(&super::verify::report_rows(v)));
                }
                if let Some(list) = restart {
                    output::print_restart("rotate", list);
                }
            } else if dry_run {
                println!("[rotate] dry run: nothing was changed");
            }
            Ok(())
        }
    }
}

/// The plan, as the table shows it before anything is written: what will be renewed and why,
/// SAN and key changes, what is external, unrenewable, not due or left alone.
fn print_plan(plan: &Plan, dry_run: bool) {
    let verb = if dry_run { "would renew" } else { "renewing" };
    println!("[rotate] policy evaluated at {}", output::short_date(plan.at));
    if plan.renewals.is_empty() {
        println!("[rotate] nothing is due");
    } else {
        let mut rows = vec![vec![
            "NAME".to_owned(),
            "WHY".to_owned(),
            "SERIAL".to_owned(),
            "EXPIRES".to_owned(),
            "NEW EXPIRY".to_owned(),
            "PATH".to_owned(),
        ]];
        for r in &plan.renewals {
            rows.push(vec![
                r.name.clone(),
                r.reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
                r.old_serial().unwrap_or("-").to_owned(),
                r.old_not_after().map_or_else(|| "-".to_owned(), output::short_date),
                format!(
                    "{}{}",
                    output::short_date(r.validity.not_after),
                    if r.clamped { " (clamped to CA)" } else { "" }
                ),
                r.location.path().display().to_string(),
            ]);
        }
        println!("[rotate] {verb} {}:", plan.renewals.len());
        print!("{}", output::table(&rows));
        // Every change of identity, before anything else is said.
        for r in &plan.renewals {
            let (added, removed) = r.san_changes();
            for a in added.iter().filter(|_| r.old.is_some()) {
                println!("[rotate] {}: SAN +{a}", r.name);
            }
            for d in &removed {
                println!("[rotate] {}: SAN -{d}", r.name);
            }
            if r.changes_algorithm() {
                let old = r.old_algorithm.map(|a| a.to_string()).unwrap_or_default();
                println!("[rotate] {}: key {old} -> {}", r.name, r.algorithm);
            }
            if r.old.is_none() {
                println!(
                    "[rotate] {}: issued anew as {} with {}, a {} key",
                    r.name,
                    r.request.subject,
                    if r.request.sans.is_empty() { "no SAN".to_owned() } else { r.request.sans.to_string() },
                    r.algorithm
                );
            }
        }
    }
    for e in &plan.external {
        println!(
            "[rotate] external: {} ({}) is signed by {}, whose key {} is absent; renew it with the external CA \
             (kubepki csr generate)",
            e.name,
            e.location.path().display(),
            e.ca.name(),
            e.ca_key.display()
        );
    }
    for u in &plan.unrenewable {
        println!("[rotate] NOT RENEWED: {} ({}): {}; fix: {}", u.name, u.path.display(), u.problem, u.fix);
    }
    if let Some(next) = plan.kept.iter().min_by_key(|k| k.renewal_point) {
        println!(
            "[rotate] {} not due; the next is {} on {}",
            plan.kept.len(),
            next.name,
            output::short_date(next.renewal_point)
        );
    }
    for s in &plan.skipped {
        println!("[rotate] left alone: {} ({}): {}", s.name, s.path.display(), s.reason);
    }
    for w in &plan.warnings {
        println!("[rotate] warning: {w}");
    }
}
