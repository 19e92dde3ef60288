//! `kubepki csr`: kubeadm's external-CA mode (a CA certificate without its key).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use kubepki_pki::KeyAlgorithm;
use kubepki_rotator::rotation::external_ca::{self, GenerateOptions, GenerateReport, InstallOptions, InstallReport};
use kubepki_rotator::rotation::restart::{self, NodePaths, RestartList};
use serde_json::json;
use time::OffsetDateTime;

use crate::cluster_flags::ClusterFlags;
use crate::exit::{INPUT, coded};
use crate::lock_flags::LockFlags;
use crate::output::{self, Format};

const GENERATE_AFTER_HELP: &str = "\
Files written, in kubeadm's generate-csr layout: <base>.key (0600) and <base>.csr (0644) per
certificate (etcd/server.key, etcd/server.csr), and per kubeconfig a partial kubeconfig <file>
holding the new key with <file>.csr beside it (admin.conf, admin.conf.csr). The directory is
made whole (0700) or not at all; nothing in the cert dir or the kubeconfig dir changes.

A CSR carries the subject, the SANs and the usages of the certificate it replaces (read even
when expired), plus the SANs this command line or --config states; if that certificate cannot
be read, kubeadm's profile for it, which then needs --node-name and, for the API server and
etcd, --apiserver-advertise-address (never this host's). A new key has the algorithm of the
certificate it replaces unless --encryption-algorithm is given.

Exit codes: 0 written (or nothing to do) · 1 an I/O error · 2 usage or input error; nothing was
written.";

const INSTALL_AFTER_HELP: &str = "\
For each <name>.crt in DIR (or a partial kubeconfig whose client-certificate-data was filled in),
with the key csr generate wrote: the certificate must match the key and the CSR, be signed by
its CA in the cert dir (valid from the certificate's NotBefore until now), carry the CSR's
subject, at least its SANs and the usages kubeadm needs, and be valid now. Then all of them are
installed in one transaction, after a backup (--backup-dir, <cert dir>/../tmp by default).
Then what on this node reads the installed files is listed, with the command that restarts
each (restart in -o json; docs/rotation.md, section What to restart).

Exit codes: 0 installed · 1 an I/O error or the lock is held · 2 a certificate failed a check
(every file at fault is named); nothing was installed.";

/// `kubepki csr`: CSRs for the leaves of an external CA, and installing what it signed.
#[derive(Args, Debug)]
pub(crate) struct CsrArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Write a new key and a CSR for every leaf whose CA key is absent from the cert dir (or
    /// for the NAMEs given), like `kubeadm certs generate-csr`.
    Generate(GenerateArgs),
    /// Install the certificates the external CA signed for `csr generate`'s CSRs, after
    /// checking each; all of them or none.
    Install(InstallArgs),
}

#[derive(Args, Debug)]
#[command(
    after_help = GENERATE_AFTER_HELP,
    mut_arg("node_name", |a| a.help(
        "The node's name: a SAN added to the API server's and etcd's CSRs, and their identity when a \
         certificate cannot be read [default: none; never this host's]"
    )),
    mut_arg("apiserver_advertise_address", |a| a.help(
        "The node's address, likewise [default: none; never this host's]"
    ))
)]
struct GenerateArgs {
    #[command(flatten)]
    cluster: ClusterFlags,
    /// The directory to write the keys and CSRs into; it must not exist yet (or be empty).
    #[arg(long, value_name = "DIR", value_parser = crate::cluster_flags::absolute_path)]
    out: PathBuf,
    /// Only these, by kubeadm's names: apiserver, apiserver-kubelet-client, front-proxy-client,
    /// etcd-server, etcd-peer, etcd-healthcheck-client, apiserver-etcd-client, admin.conf,
    /// super-admin.conf, controller-manager.conf, scheduler.conf, kubelet.conf [default: every
    /// leaf of an external CA; a kubeconfig only if it exists with an embedded certificate].
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    lock: LockFlags,
}

#[derive(Args, Debug)]
#[command(after_help = INSTALL_AFTER_HELP)]
struct InstallArgs {
    #[command(flatten)]
    cluster: ClusterFlags,
    /// The directory `csr generate --out` wrote, now holding the signed certificates.
    #[arg(long, value_name = "DIR", value_parser = crate::cluster_flags::absolute_path)]
    from: PathBuf,
    /// Back up the files replaced under DIR: each run writes its own kubepki-backup-<UTC time>
    /// there (DIR is created 0700 if missing) [default: <cert dir>/../tmp].
    #[arg(long, value_name = "DIR", value_parser = crate::cluster_flags::absolute_path)]
    backup_dir: Option<PathBuf>,
    /// Append one JSON line per installed certificate to this file (never key material).
    #[arg(long, value_name = "FILE", value_parser = crate::cluster_flags::absolute_path)]
    audit_log: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    lock: LockFlags,
}

pub(crate) fn run(args: &CsrArgs) -> Result<ExitCode> {
    match &args.action {
        Action::Generate(a) => generate(a),
        Action::Install(a) => install(a),
    }
}

fn open(
    cluster: &ClusterFlags,
    lock: &LockFlags,
) -> Result<(kubepki_pki::lock::DirLock, kubepki_pki::PkiDir, PathBuf)> {
    let (cert_dir, kubeconfig_dir) = cluster.dirs()?;
    if !cert_dir.is_dir() {
        anyhow::bail!(coded(INPUT, anyhow::anyhow!("{} is not a directory (the cert dir)", cert_dir.display())));
    }
    let (guard, pki, _recovered) = kubepki_pki::open_locked(&cert_dir, &kubeconfig_dir, &lock.options())?;
    crate::interrupted::finish_locked(&cert_dir)?;
    Ok((guard, pki, kubeconfig_dir))
}

fn generate(args: &GenerateArgs) -> Result<ExitCode> {
    // What rotate takes from the flags and --config: never the host's name or address.
    let desired = args.cluster.rotation_desired(&[])?;
    let algorithm = args.cluster.signer.encryption_algorithm.as_deref().map(str::parse::<KeyAlgorithm>).transpose()?;
    let (_lock, pki, kubeconfig_dir) = open(&args.cluster, &args.lock)?;
    let options = GenerateOptions { out: &args.out, names: &args.names, desired: &desired, algorithm };
    let report = external_ca::generate(&pki, &kubeconfig_dir, &options)?;
    render_generate(args, &report)?;
    Ok(ExitCode::SUCCESS)
}

fn render_generate(args: &GenerateArgs, report: &GenerateReport) -> Result<()> {
    match args.output {
        Format::Json => output::print_json(&json!({
            "out": report.generated.first().map(|_| &args.out),
            "generated": report.generated.iter().map(|g| json!({
                "name": g.name,
                "ca": g.ca.name(),
                "identityFrom": g.identity.as_str(),
                "algorithm": g.algorithm.as_str(),
                "subject": g.request.subject.to_string(),
                "sans": g.request.sans.to_string(),
                "usage": g.request.usage.to_string(),
                "key": g.key_path,
                "csr": g.csr_path,
            })).collect::<Vec<_>>(),
            "left": report.left.iter().map(|l| json!({"name": l.name, "reason": l.reason})).collect::<Vec<_>>(),
            "warnings": report.warnings,
        })),
        Format::Table => {
            let notes = || {
                for l in &report.left {
                    println!("[csr] left alone: {}: {}", l.name, l.reason);
                }
                for w in &report.warnings {
                    println!("[csr] warning: {w}");
                }
            };
            if report.generated.is_empty() {
                notes();
                println!("[csr] nothing to request: no leaf of an external CA (a CA certificate without its key)");
                return Ok(());
            }
            let mut rows = vec![["NAME", "CA", "IDENTITY FROM", "KEY", "SUBJECT", "SANS"].map(str::to_owned).to_vec()];
            for g in &report.generated {
                rows.push(vec![
                    g.name.clone(),
                    g.ca.name().to_owned(),
                    g.identity.as_str().to_owned(),
                    g.algorithm.as_str().to_owned(),
                    g.request.subject.to_string(),
                    g.request.sans.to_string(),
                ]);
            }
            println!(
                "[csr] wrote a key and a CSR for {} into {}:",
                output::count(report.generated.len(), "certificate"),
                args.out.display()
            );
            print!("{}", output::table(&rows));
            notes();
            println!(
                "[csr] have the external CA sign each <name>.csr, put the certificate beside it as <name>.crt, then \
                 run: kubepki csr install --from {}",
                args.out.display()
            );
            Ok(())
        }
    }
}

fn install(args: &InstallArgs) -> Result<ExitCode> {
    let (_lock, pki, kubeconfig_dir) = open(&args.cluster, &args.lock)?;
    let now = OffsetDateTime::now_utc();
    let backup_parent = kubepki_rotator::rotation::backup::parent_dir(args.backup_dir.as_deref(), pki.root())?;
    // A backup a crash interrupted is removed whether or not this run writes a new one.
    kubepki_rotator::rotation::backup::remove_unfinished(&backup_parent);
    let options = InstallOptions { backup_parent, audit_log: args.audit_log.clone(), now };
    let report = external_ca::install(&pki, &kubeconfig_dir, &args.from, &options)?;
    let restart = restart::restarts(&report.written, &NodePaths::new(pki.root(), &kubeconfig_dir));
    render_install(args, &report, &restart)?;
    Ok(ExitCode::SUCCESS)
}

fn render_install(args: &InstallArgs, report: &InstallReport, restart: &RestartList) -> Result<()> {
    match args.output {
        Format::Json => output::print_json(&json!({
            "installed": report.installed.iter().map(|i| json!({
                "name": i.name,
                "ca": i.ca.name(),
                "path": i.path,
                "serial": i.cert.serial,
                "fingerprint": i.cert.fingerprint_sha256(),
                "notAfter": output::rfc3339(i.cert.not_after),
                "subject": i.cert.subject.to_string(),
                "sans": i.cert.sans.to_string(),
                "replacedSerial": i.replaced.as_ref().map(|c| &c.serial),
            })).collect::<Vec<_>>(),
            "backup": report.backup.as_ref().map(|b| &b.dir),
            "written": report.written,
            "warnings": report.warnings,
            "restart": restart.to_json(),
        })),
        Format::Table => {
            let mut rows = vec![["NAME", "CA", "SERIAL", "EXPIRES", "PATH"].map(str::to_owned).to_vec()];
            for i in &report.installed {
                rows.push(vec![
                    i.name.clone(),
                    i.ca.name().to_owned(),
                    i.cert.serial.clone(),
                    output::short_date(i.cert.not_after),
                    i.path.display().to_string(),
                ]);
            }
            println!("[csr] installed {}:", output::count(report.installed.len(), "certificate"));
            print!("{}", output::table(&rows));
            for w in &report.warnings {
                println!("[csr] warning: {w}");
            }
            if let Some(b) = &report.backup {
                println!("[csr] previous files backed up in {}", b.dir.display());
            }
            println!(
                "[csr] {} still holds the new private keys: remove it once the components are restarted",
                args.from.display()
            );
            output::print_restart("csr", restart);
            Ok(())
        }
    }
}
