//! `kubepki init`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use kubepki_pki::InitReport;
use kubepki_pki::{InitItem, ItemKind};
use serde_json::json;

use crate::cluster_flags::ClusterFlags;
use crate::lock_flags::LockFlags;
use crate::output::{self, Format};

/// `kubepki init`: what `kubeadm init phase certs all` and `kubeadm init phase kubeconfig all`
/// write, with kubeadm's rules for files that already exist.
#[derive(Args, Debug)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    pub(crate) cluster: ClusterFlags,
    /// Join a control plane (as `kubeadm join --control-plane` with copied certificates): take
    /// the cluster's shared material — the CAs with their keys, sa.key and sa.pub — from DIR, a
    /// copy of the first control-plane node's cert dir, and make this node's own leaves and
    /// kubeconfigs (no super-admin.conf). See docs/ha.md.
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath, value_parser = crate::cluster_flags::absolute_path)]
    pub(crate) join_from: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub(crate) output: Format,
    #[command(flatten)]
    pub(crate) lock: LockFlags,
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    kubepki_pki::parse_duration(s).map_err(|e| e.to_string())
}

pub(crate) fn run(args: &InitArgs) -> Result<ExitCode> {
    crate::progress::install(args.output == Format::Table);
    let cfg = args.cluster.resolve()?;
    let options = args.lock.options();
    crate::interrupted::finish(&cfg.cert_dir, &cfg.kubeconfig_dir, options.lock_timeout)?;
    let report = match &args.join_from {
        Some(shared) => kubepki_pki::join_control_plane(&cfg, shared, &options)?,
        None => kubepki_pki::init(&cfg, &options)?,
    };
    match args.output {
        Format::Json => output::print_json(&json!({
            "certDir": cfg.cert_dir,
            "kubeconfigDir": cfg.kubeconfig_dir,
            "encryptionAlgorithm": cfg.encryption_algorithm.as_str(),
            "items": report.items.iter().map(item_json).collect::<Vec<_>>(),
            "warnings": report.warnings,
            "written": report.written,
            "recovered": report.recovered,
        }))?,
        Format::Table => print_table(&cfg, &report),
    }
    Ok(ExitCode::SUCCESS)
}

fn kind_str(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Ca => "ca",
        ItemKind::Certificate => "certificate",
        ItemKind::Kubeconfig => "kubeconfig",
        ItemKind::ServiceAccountKey => "service-account-key",
    }
}

fn item_json(i: &InitItem) -> serde_json::Value {
    json!({
        "name": i.name,
        "kind": kind_str(i.kind),
        "action": i.action.as_str(),
        "path": i.path,
        "notAfter": i.not_after.map(output::rfc3339),
        "sans": i.sans,
    })
}

fn print_table(cfg: &kubepki_pki::ClusterConfig, report: &InitReport) {
    for path in &report.recovered {
        println!("[init] completed an interrupted write: {}", path.display());
    }
    println!(
        "[init] cert dir {}, kubeconfig dir {}, {} keys",
        cfg.cert_dir.display(),
        cfg.kubeconfig_dir.display(),
        cfg.encryption_algorithm
    );
    let mut rows = vec![vec!["ACTION".into(), "NAME".into(), "EXPIRES".into(), "PATH".into()]];
    rows.extend(report.items.iter().map(|i| {
        vec![
            i.action.as_str().into(),
            i.name.clone(),
            i.not_after.map(output::short_date).unwrap_or_else(|| "-".into()),
            i.path.display().to_string(),
        ]
    }));
    print!("{}", output::table(&rows));
    for i in report.items.iter().filter(|i| i.sans.is_some()) {
        println!("[init] {} is valid for {}", i.name, i.sans.as_deref().unwrap_or(""));
    }
    for w in &report.warnings {
        println!("[init] warning: {w}");
    }
    match report.written.len() {
        0 => println!("[init] everything was already in place; nothing written"),
        n => println!("[init] wrote {}", output::count(n, "file")),
    }
}
