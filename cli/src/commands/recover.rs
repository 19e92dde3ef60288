//! `kubepki recover`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use kubepki_pki::Lifetime;
use kubepki_rotator::check;
use kubepki_rotator::inventory::resolve_under;
use kubepki_rotator::inventory::{InventoryBuilder, SourcePath, Sources};
use kubepki_rotator::recover::{self, RecoverPlan, RecoverReport, RecoverRequest, Workers};
use kubepki_rotator::rotation::plan::Plan;
use kubepki_rotator::rotation::{ResumedRun, RotationObserver};
use serde_json::{Value, json};

use crate::commands::init::parse_duration;
use crate::commands::rotate::{self, PlanPrinter};
use crate::exit::{FAILURE, INPUT, coded};
use crate::lock_flags::LockFlags;
use crate::output::{self, Format};

const AFTER_HELP: &str = "\
Order: expired or expiring CAs are extended first with their own key (same subject, key and
subject key identifier: everything they signed still chains to them) and every trust point on
this node gets them; then every leaf and kubeconfig client certificate that has expired or
expires within --threshold is renewed by the rotation (plan, backup, journal, audit log); then
the kubelet's client certificate (a new kubelet-client-<time>.pem and the
kubelet-client-current.pem link swapped to it); then, with --out, each worker's kubelet.conf and
ca.crt. Afterwards: the restart order for this node, and `kubepki check` of the result.
Reads files only; the network only with --nodes-from-etcd.
Exit codes: 0 recovered, and the check of the result is OK (a dry run: the plan was printed) ·
1 something failed, or the check of the result is not OK (its summary says what) · 2 usage or
input error (a CA key absent or not matching its certificate, an unreadable kubelet client
certificate); nothing was changed. Walkthrough: docs/recover.md.";

/// `kubepki recover`: bring back a cluster whose certificates expired, from its files.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct RecoverArgs {
    /// Recover the node filesystem copied or mounted at DIR: the default paths, --cert-dir,
    /// --kubeconfig-dir and --kubelet-dir are paths on that node.
    #[arg(long, value_name = "DIR", value_parser = crate::cluster_flags::absolute_path)]
    root: Option<PathBuf>,
    /// The cert dir [default: /etc/kubernetes/pki].
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// The kubeconfig dir: its *.conf are renewed [default: /etc/kubernetes].
    #[arg(long, value_name = "DIR")]
    kubeconfig_dir: Option<PathBuf>,
    /// The kubelet's PKI dir (kubelet-client-current.pem, kubelet.crt) [default: /var/lib/kubelet/pki].
    #[arg(long, value_name = "DIR")]
    kubelet_dir: Option<PathBuf>,
    /// Renew what has expired or expires within this (e.g. 30d, 72h).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, default_value = "30d", value_parser = parse_duration)]
    threshold: Duration,
    /// Set NotBefore this far back (kubeadm's is 5m), for nodes whose clocks lag.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, default_value = "5m", value_parser = parse_duration)]
    backdate: Duration,
    /// The lifetime of an extended CA [default: the one it had].
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    ca_validity: Option<String>,
    /// Worker node names, one a line: each gets <out>/<node>/kubelet.conf and ca.crt.
    #[arg(long, value_name = "FILE", requires = "out")]
    nodes: Option<PathBuf>,
    /// List the nodes from etcd (these client URLs): the keys under /registry/minions/, read
    /// with the cert dir's apiserver-etcd-client and etcd/ca.crt.
    #[arg(long, value_name = "URL", value_delimiter = ',', requires = "out")]
    nodes_from_etcd: Vec<String>,
    /// Where the workers' files go (with --nodes or --nodes-from-etcd).
    #[arg(long, value_name = "DIR", value_parser = crate::cluster_flags::absolute_path)]
    out: Option<PathBuf>,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The directory under which each step backs up the files it replaces [default: <cert dir>/../tmp].
    #[arg(long, value_name = "DIR", value_parser = crate::cluster_flags::absolute_path)]
    backup_dir: Option<PathBuf>,
    /// Append one JSON line per renewed certificate to this file (never key material).
    #[arg(long, value_name = "FILE", value_parser = crate::cluster_flags::absolute_path)]
    audit_log: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    lock: LockFlags,
}

impl RecoverArgs {
    /// A node path as read here: under --root, links resolved inside it.
    fn on_node(&self, path: &Path) -> PathBuf {
        match &self.root {
            Some(root) => resolve_under(root, path),
            None => path.to_owned(),
        }
    }

    fn dirs(&self) -> (PathBuf, PathBuf, PathBuf) {
        // Without --root a relative path means the working directory's (made absolute, so that
        // every path recover reports and records names the same file from anywhere); under
        // --root, it is the node's.
        let or = |p: &Option<PathBuf>, d: &str| {
            let path = p.clone().unwrap_or_else(|| PathBuf::from(d));
            if self.root.is_none() { std::path::absolute(&path).unwrap_or(path) } else { path }
        };
        (
            self.on_node(&or(&self.cert_dir, kubepki_pki::paths::CERT_DIR)),
            self.on_node(&or(&self.kubeconfig_dir, kubepki_pki::paths::KUBECONFIG_DIR)),
            or(&self.kubelet_dir, kubepki_pki::paths::KUBELET_PKI_DIR),
        )
    }
}

/// Shows recover's plan, then the rotation's, before anything is written.
struct Printer {
    rotate: PlanPrinter,
}

impl RotationObserver for Printer {
    fn planned(&mut self, plan: &Plan) {
        self.rotate.planned(plan);
    }

    fn resumed(&mut self, run: &ResumedRun) {
        self.rotate.resumed(run);
    }
}

impl recover::RecoveryObserver for Printer {
    fn recovery_planned(&mut self, plan: &RecoverPlan) {
        if self.rotate.table {
            print_recovery_plan(plan, self.rotate.dry_run);
        }
    }
}

pub(crate) fn run(args: &RecoverArgs) -> Result<ExitCode> {
    if let Some(root) = args.root.as_ref().filter(|r| !r.is_dir()) {
        return Err(coded(INPUT, anyhow::anyhow!("--root {}: not a directory", root.display())));
    }
    let (cert_dir, kubeconfig_dir, kubelet_dir) = args.dirs();
    let mut request = RecoverRequest::new(cert_dir.clone(), kubeconfig_dir.clone());
    request.threshold = args.threshold;
    request.backdate = args.backdate;
    request.ca_lifetime =
        args.ca_validity.as_deref().map(str::parse::<Lifetime>).transpose().context("--ca-validity")?;
    request.kubelet_dir = Some(kubelet_dir.clone());
    request.root.clone_from(&args.root);
    if let Some(out) = &args.out {
        let nodes = match &args.nodes {
            Some(file) => read_nodes(file)?,
            None => Vec::new(),
        };
        request.workers = Some(Workers { nodes, from_etcd: args.nodes_from_etcd.clone(), out: out.clone() });
    }
    let r = &mut request.rotate;
    r.dry_run = args.dry_run;
    r.backup_dir.clone_from(&args.backup_dir);
    r.audit_log.clone_from(&args.audit_log);
    r.lock_timeout = args.lock.lock_timeout;
    r.allow_insecure_permissions = args.lock.allow_insecure_permissions;

    crate::progress::install(args.output == Format::Table);
    let flags = output::flags_given(&[
        ("--root", args.root.as_deref()),
        ("--cert-dir", args.cert_dir.as_deref()),
        ("--kubeconfig-dir", args.kubeconfig_dir.as_deref()),
    ]);
    let mut printer =
        Printer { rotate: PlanPrinter { table: args.output == Format::Table, dry_run: args.dry_run, flags } };
    let mut report = recover::recover(&request, &mut printer)?;
    crate::interrupted::say(report.finished.as_ref());
    report.rotation.plan = rotate::complete_fixes(report.rotation.plan, &printer.rotate.flags);

    // The result, judged as `kubepki check` judges it (nothing to judge in a dry run).
    let sources = Sources {
        cert_dir: Some(SourcePath::explicit(&cert_dir)),
        kubeconfig_dir: Some(SourcePath::explicit(&kubeconfig_dir)),
        kubelet_pki_dir: Some(SourcePath::default_location(args.on_node(&kubelet_dir))),
        root: args.root.clone(),
        ..Sources::default()
    };
    let inventory = InventoryBuilder::discover(&sources).finish();
    let now = time::OffsetDateTime::now_utc();
    let checked = (!args.dry_run).then(|| check::evaluate(&inventory, &check::ExpiryPolicy::default(), now));
    let verdict = checked.as_ref().map(check::Evaluation::verdict);
    match args.output {
        Format::Json => output::print_json(&json!({
            "schemaVersion": 1,
            "dryRun": args.dry_run,
            "cas": report.plan.cas.iter().map(|e| json!({
                "name": e.ca.name(),
                "extended": !e.is_refresh(),
                "path": e.path,
                "oldSerial": e.old.serial,
                "oldNotAfter": output::rfc3339(e.old.not_after),
                "newSerial": e.new.serial,
                "newNotBefore": output::rfc3339(e.new.not_before),
                "newNotAfter": output::rfc3339(e.new.not_after),
                "trustPoints": e.trust_points,
            })).collect::<Vec<_>>(),
            "caBackup": report.ca_backup,
            "kubeletClient": report.plan.kubelet_client.as_ref().map(|k| json!({
                "link": k.link,
                "oldNotAfter": output::rfc3339(k.old.not_after),
                "due": k.due,
                "newNotAfter": k.validity.map(|v| output::rfc3339(v.not_after)),
                "written": k.written.as_ref().map(|(p, _)| p),
            })),
            "kubeletServing": report.plan.kubelet_serving.as_ref().map(|s| json!({
                "path": s.path,
                "oldNotAfter": output::rfc3339(s.old.not_after),
                "newNotAfter": output::rfc3339(s.validity.not_after),
                "newSerial": s.written.as_ref().map(|c| c.serial.clone()),
            })),
            "rotation": rotate::report_json(&report.rotation, None),
            "workers": report.workers.iter().map(|(n, d)| json!({"node": n, "dir": d})).collect::<Vec<_>>(),
            "warnings": report.plan.warnings,
            "elsewhere": report.plan.elsewhere,
            "restart": report.restart.to_json(),
            "check": checked.as_ref().map(|c| json!({
                "verdict": c.verdict().as_str(),
                "counts": c.counts().iter().filter(|(_, n)| *n > 0).map(|(s, n)| (s.as_str().to_owned(), Value::from(*n))).collect::<serde_json::Map<_, _>>(),
            })),
        }))?,
        Format::Table => print_result(&report, checked.as_ref())?,
    }
    if !report.rotation.plan.unrenewable.is_empty() {
        for u in &report.rotation.plan.unrenewable {
            eprintln!("kubepki: {} ({}) is {}; fix: {}", u.name, u.path.display(), u.problem, u.fix);
        }
        return Ok(ExitCode::from(FAILURE));
    }
    Ok(match verdict {
        None | Some(check::Verdict::Ok) => ExitCode::SUCCESS,
        Some(_) => ExitCode::from(FAILURE),
    })
}

/// The nodes file: one name a line (an address after it is ignored), `#` comments.
fn read_nodes(file: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("--nodes {}: cannot be read", file.display()))
        .map_err(|e| coded(INPUT, e))?;
    let nodes = kubepki_pki::node::parse_nodes(&text, file).map_err(|e| coded(INPUT, e))?;
    Ok(nodes.into_iter().map(|n| n.name).collect())
}

fn print_recovery_plan(plan: &RecoverPlan, dry_run: bool) {
    let verb = if dry_run { "would extend" } else { "extending" };
    for e in plan.cas.iter().filter(|e| e.is_refresh()) {
        let verb = if dry_run { "would bring" } else { "bringing" };
        println!("[recover] {verb} copies of CA {} in step with {}:", e.ca.name(), e.path.display());
        for p in &e.trust_points {
            println!("[recover]   {}", p.display());
        }
    }
    for e in plan.cas.iter().filter(|e| !e.is_refresh()) {
        println!(
            "[recover] {verb} CA {} ({}): expires {} → {} with its own key (serial {} → {})",
            e.ca.name(),
            e.path.display(),
            output::short_date(e.old.not_after),
            output::short_date(e.new.not_after),
            e.old.serial,
            e.new.serial
        );
        for p in &e.trust_points {
            println!("[recover]   and its copy in {}", p.display());
        }
    }
    if let Some(k) = &plan.kubelet_client {
        match k.validity {
            Some(v) => println!(
                "[recover] {} kubelet client certificate {} (expires {}): a new kubelet-client-<time>.pem until {}",
                if dry_run { "would renew" } else { "renewing" },
                k.link.display(),
                output::short_date(k.old.not_after),
                output::short_date(v.not_after)
            ),
            None => println!(
                "[recover] kubelet client certificate {} is not due (expires {})",
                k.link.display(),
                output::short_date(k.old.not_after)
            ),
        }
    }
    if let Some(s) = &plan.kubelet_serving {
        println!(
            "[recover] {} the kubelet's self-signed serving pair {} (expires {}): a new one until {}",
            if dry_run { "would renew" } else { "renewing" },
            s.path.display(),
            output::short_date(s.old.not_after),
            output::short_date(s.validity.not_after)
        );
    }
    for w in &plan.warnings {
        println!("[recover] warning: {w}");
    }
}

fn print_result(report: &RecoverReport, checked: Option<&check::Evaluation<'_>>) -> Result<()> {
    rotate::render(Format::Table, &report.rotation, None)?;
    if let Some(dir) = &report.ca_backup {
        println!("[recover] previous CA files backed up in {}", dir.display());
    }
    if let Some((pem, cert)) = report.plan.kubelet_client.as_ref().and_then(|k| k.written.as_ref()) {
        println!("[recover] kubelet client certificate written to {} (serial {})", pem.display(), cert.serial);
    }
    for (node, dir) in &report.workers {
        println!(
            "[recover] worker {node}: copy {0}/kubelet.conf to /etc/kubernetes/kubelet.conf and {0}/ca.crt to \
             /etc/kubernetes/pki/ca.crt on it, then restart its kubelet",
            dir.display()
        );
    }
    let Some(checked) = checked else { return Ok(()) };
    if report.plan.cas.iter().any(|e| !e.is_refresh()) {
        println!("[recover] on other machines, the extended CAs must reach:");
        for e in &report.plan.elsewhere {
            println!("[recover]   {e}");
        }
    }
    output::print_restart("recover", &report.restart);
    let counts: Vec<String> =
        checked.counts().iter().filter(|(_, n)| *n > 0).map(|(s, n)| format!("{n} {}", s.as_str())).collect();
    println!(
        "[recover] check: {}: {}: {}",
        output::count(checked.entries.len(), "certificate"),
        counts.join(", "),
        checked.verdict().as_str().to_uppercase()
    );
    for e in checked.entries.iter().filter(|e| e.status != check::ExpiryStatus::Ok) {
        println!("[recover]   {} {} ({})", e.status.as_str(), e.item.name, e.item.location.reference());
        for f in &e.item.findings {
            println!("[recover]     {f}");
        }
    }
    Ok(())
}
