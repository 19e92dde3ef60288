//! `kubepki audit`: static checks of a node against the advice on securing cluster
//! communications.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use kubepki_pki::Lifetime;
use kubepki_rotator::node_audit::{self, AuditOptions, AuditReport, AuditStatus, CheckResult, LifetimePolicy};
use kubepki_rotator::text::{Cell, Table, Tone};

use crate::output::{self, Format};

const AFTER_HELP: &str = "\
Reads, under --root: /etc/kubernetes/manifests/{kube-apiserver,etcd,kube-controller-manager,
kube-scheduler}.yaml, /var/lib/kubelet/config.yaml with the kubelet flags of
/var/lib/kubelet/kubeadm-flags.env and /etc/default/kubelet, the cert dir, /etc/kubernetes/*.conf
and /var/lib/kubelet/pki, and the service-account keys kube-apiserver's manifest names
(--service-account-signing-key-file, every --service-account-key-file; else the cert dir's
sa.key and sa.pub). Symbolic links are followed inside the root. audit never writes.

Exit codes (as `kubepki check`):
  0  every check passed (or was skipped, or is an explicit decision reported as info)
  1  a warning finding
  2  a critical finding
  3  an input exists but could not be read or parsed (it is named); the rest was still checked
When several apply, 2 wins over 3, and 3 over 1.";

/// `kubepki audit`.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct AuditArgs {
    /// Audit the node filesystem mounted or copied at DIR instead of this machine's.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// The cert dir, as a path on the node [default: the directory of kube-apiserver's
    /// --client-ca-file, else of the kubelet's clientCAFile, else /etc/kubernetes/pki].
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// The longest lifetime a leaf or kubeconfig certificate may have (kubeadm's 1 year).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, default_value = "365d")]
    max_leaf_lifetime: Lifetime,
    /// The longest lifetime a CA may have (kubeadm's 10 years).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, default_value = "3650d")]
    max_ca_lifetime: Lifetime,
    /// The oldest the service-account signing key (sa.key) may be; its age counts from
    /// `rotate-sa reissue` when that made it, else from the file's modification time.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, default_value = "365d")]
    sa_max_age: Lifetime,
    /// Also list the checks that passed or were skipped.
    #[arg(long)]
    all: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

pub(crate) fn run(args: &AuditArgs) -> Result<ExitCode> {
    if !args.root.is_dir() {
        eprintln!("error: --root {}: not a directory", args.root.display());
        return Ok(ExitCode::from(3));
    }
    let options = AuditOptions {
        root: args.root.clone(),
        cert_dir: args.cert_dir.clone(),
        lifetimes: LifetimePolicy { max_leaf: args.max_leaf_lifetime, max_ca: args.max_ca_lifetime },
        sa_max_age: args.sa_max_age,
    };
    let report = node_audit::audit(&options);
    let text = match args.output {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&report.to_json()).context("cannot render the report")?;
            s.push('\n');
            s
        }
        Format::Table => render(&report, args.all, output::colour()),
    };
    let mut out = std::io::stdout().lock();
    // A reader that stopped early (`| head`) ends the run quietly with 141 (exit::report).
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("cannot write to standard output")?;
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    Ok(ExitCode::from(report.verdict().exit_code()))
}

/// The palette's colour of a status.
fn tone(status: AuditStatus) -> Tone {
    match status {
        AuditStatus::Critical => Tone::Critical,
        AuditStatus::Warning => Tone::Warning,
        AuditStatus::Info => Tone::Info,
        AuditStatus::Pass => Tone::Good,
        AuditStatus::Skipped => Tone::Muted,
    }
}

fn file_of(r: &CheckResult) -> String {
    r.file.as_ref().map_or_else(|| "-".into(), |f| f.display().to_string())
}

/// The findings, worst first, each with its message, advice and fix; then (with `all`) the
/// checks that passed or were skipped; then a summary line.
fn render(report: &AuditReport, all: bool, color: bool) -> String {
    let mut out = String::new();
    let findings = report.findings();
    if !findings.is_empty() {
        // Their first lines make one table, each followed by its message, advice and fix.
        let mut heads = Table::new(0, 3);
        for r in &findings {
            heads.row([
                Cell::toned(r.status.as_str().to_uppercase(), color.then(|| tone(r.status))),
                r.id.into(),
                file_of(r).into(),
            ]);
        }
        for (r, head) in findings.iter().zip(heads.lines()) {
            out.push_str(&head);
            out.push('\n');
            out.push_str(&format!("    {}\n", r.message));
            out.push_str(&format!("    advice: {} ({})\n", r.advice.text(), r.advice.source()));
            if !r.fix.is_empty() {
                out.push_str(&format!("    fix:    {}\n", r.fix));
            }
            out.push('\n');
        }
    }
    if all {
        let rows: Vec<Vec<String>> = report
            .results
            .iter()
            .filter(|r| !r.status.is_finding())
            .map(|r| vec![r.status.as_str().to_owned(), r.id.to_owned(), r.message.clone()])
            .collect();
        if !rows.is_empty() {
            out.push_str(&output::table(&rows));
            out.push('\n');
        }
    }
    let mut counts = Vec::new();
    for status in
        [AuditStatus::Critical, AuditStatus::Warning, AuditStatus::Info, AuditStatus::Pass, AuditStatus::Skipped]
    {
        let n = report.count(status);
        if n > 0 {
            counts.push(format!("{n} {}", status.as_str()));
        }
    }
    if !report.errors.is_empty() {
        counts.push(output::count(report.errors.len(), "unreadable input"));
    }
    out.push_str(&format!(
        "{} of {} ({} node, cert dir {}): {}: {}\n",
        output::count(report.results.len(), "check"),
        report.root.display(),
        if report.control_plane { "control-plane" } else { "worker" },
        report.cert_dir.display(),
        if counts.is_empty() { "nothing checked".to_owned() } else { counts.join(", ") },
        report.verdict().as_str().to_uppercase(),
    ));
    out
}
