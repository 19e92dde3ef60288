//! `kubepki issue`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use kubepki_pki::node::{self, Node};
use kubepki_pki::{CaKind, Endpoint, PkiDir, Profile, fsio};
use serde_json::json;

use crate::cluster_flags::{ClusterFlags, EndpointFlags, SignerFlags};
use crate::exit::{INPUT, coded};
use crate::lock_flags::LockFlags;
use crate::output::{self, Format};

/// `kubepki issue`: one certificate from an existing PKI.
#[derive(Args, Debug)]
pub(crate) struct IssueArgs {
    #[command(subcommand)]
    target: Target,
}

/// The flags of a cert-dir leaf: all the cluster flags (its SANs come from them).
#[derive(Args, Debug)]
struct Common {
    #[command(flatten)]
    cluster: ClusterFlags,
    #[command(flatten)]
    run: RunFlags,
}

/// How every `issue` runs: output, lock, progress.
#[derive(Args, Clone, Debug)]
struct RunFlags {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    lock: LockFlags,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Target {
    /// The certificate for serving the Kubernetes API (apiserver.crt).
    Apiserver(Common),
    /// The certificate for the API server to connect to kubelet.
    ApiserverKubeletClient(Common),
    /// The certificate for the front proxy client.
    FrontProxyClient(Common),
    /// The certificate for serving etcd (etcd/server.crt).
    EtcdServer(Common),
    /// The certificate for etcd nodes to communicate with each other (etcd/peer.crt).
    EtcdPeer(Common),
    /// The certificate for liveness probes to healthcheck etcd.
    EtcdHealthcheckClient(Common),
    /// The certificate the apiserver uses to access etcd.
    ApiserverEtcdClient(Common),
    /// A kubelet kubeconfig (client certificate system:node:<node-name> in system:nodes).
    KubeletClient {
        #[command(flatten)]
        signer: SignerFlags,
        #[command(flatten)]
        endpoint: EndpointFlags,
        #[command(flatten)]
        run: RunFlags,
        /// Where to write the kubeconfig [default: ./kubelet-<node-name>.conf].
        #[arg(long, value_name = "FILE", value_parser = crate::cluster_flags::absolute_path)]
        out: Option<PathBuf>,
    },
    /// Kubelet serving certificates (:10250), signed by the cluster CA, for one node
    /// (--node-name, --node-ip) or many (--nodes FILE); written as <out>/<node>/kubelet.crt
    /// and kubelet.key.
    KubeletServing {
        #[command(flatten)]
        signer: SignerFlags,
        #[command(flatten)]
        run: RunFlags,
        /// The node's IP addresses.
        #[arg(long, value_name = "IP[,IP...]", value_delimiter = ',', conflicts_with = "nodes")]
        node_ip: Vec<IpAddr>,
        /// A file with one node a line: `name ip[,ip...]` (# starts a comment).
        #[arg(long, value_name = "FILE")]
        nodes: Option<PathBuf>,
        /// The output directory.
        #[arg(long, value_name = "DIR", default_value = ".", value_parser = crate::cluster_flags::absolute_path)]
        out: PathBuf,
    },
}

pub(crate) fn run(args: &IssueArgs) -> Result<ExitCode> {
    let run = match &args.target {
        Target::Apiserver(c)
        | Target::ApiserverKubeletClient(c)
        | Target::FrontProxyClient(c)
        | Target::EtcdServer(c)
        | Target::EtcdPeer(c)
        | Target::EtcdHealthcheckClient(c)
        | Target::ApiserverEtcdClient(c) => &c.run,
        Target::KubeletClient { run, .. } | Target::KubeletServing { run, .. } => run,
    };
    crate::progress::install(!run.quiet && run.output == Format::Table);
    match &args.target {
        Target::Apiserver(c) => leaf(c, Profile::ApiServer),
        Target::ApiserverKubeletClient(c) => leaf(c, Profile::ApiServerKubeletClient),
        Target::FrontProxyClient(c) => leaf(c, Profile::FrontProxyClient),
        Target::EtcdServer(c) => leaf(c, Profile::EtcdServer),
        Target::EtcdPeer(c) => leaf(c, Profile::EtcdPeer),
        Target::EtcdHealthcheckClient(c) => leaf(c, Profile::EtcdHealthcheckClient),
        Target::ApiserverEtcdClient(c) => leaf(c, Profile::ApiServerEtcdClient),
        Target::KubeletClient { signer, endpoint, run, out } => {
            let cluster =
                ClusterFlags { signer: signer.clone(), endpoint: endpoint.clone(), ..ClusterFlags::default() };
            kubelet_client(&Common { cluster, run: run.clone() }, out.as_ref())
        }
        Target::KubeletServing { signer, run, node_ip, nodes, out } => {
            let cluster = ClusterFlags { signer: signer.clone(), ..ClusterFlags::default() };
            kubelet_serving(&Common { cluster, run: run.clone() }, node_ip, nodes.as_ref(), out)
        }
    }
}

fn leaf(c: &Common, profile: Profile) -> Result<ExitCode> {
    let cfg = c.cluster.resolve()?;
    crate::interrupted::finish(&cfg.cert_dir, &cfg.kubeconfig_dir, c.run.lock.lock_timeout)?;
    let item = kubepki_pki::issue_leaf(&cfg, profile.spec(), &c.run.lock.options())?;
    match c.run.output {
        Format::Json => output::print_json(&json!({
            "name": item.name,
            "path": item.path,
            "notAfter": item.not_after.map(output::rfc3339),
            "sans": item.sans,
        }))?,
        Format::Table => {
            println!("[issue] {} written to {}", item.name, item.path.display());
            if let Some(sans) = &item.sans {
                println!("[issue] {} is valid for {sans}", item.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load_cluster_ca(cfg: &kubepki_pki::ClusterConfig, c: &Common) -> Result<kubepki_pki::CertificateAuthority> {
    let pki = PkiDir::new(&cfg.cert_dir).allow_insecure_permissions(c.run.lock.allow_insecure_permissions);
    Ok(pki.load_ca(CaKind::Ca)?.ok_or_else(|| kubepki_pki::Error::Missing {
        path: pki.cert_path("ca"),
        what: "the cluster CA",
        fix: "run `kubepki init` first, or pass the cluster's --cert-dir".into(),
    })?)
}

fn kubelet_client(c: &Common, out: Option<&PathBuf>) -> Result<ExitCode> {
    let cfg = c.cluster.resolve()?;
    let ca = load_cluster_ca(&cfg, c)?;
    let server = cfg.server_url(Endpoint::ControlPlane)?;
    let kc = node::kubelet_kubeconfig(
        &ca,
        &cfg.cluster_name,
        &server,
        &cfg.node_name,
        cfg.encryption_algorithm,
        kubepki_pki::Validity::starting_at(time::OffsetDateTime::now_utc(), cfg.cert_validity),
    )?;
    let out = out.cloned().unwrap_or_else(|| PathBuf::from(format!("kubelet-{}.conf", cfg.node_name)));
    if out.exists() {
        bail!(coded(INPUT, anyhow::anyhow!("{} exists; remove it or choose another --out", out.display())));
    }
    fsio::replace_file(&out, kc.to_yaml().as_bytes(), 0o600)?;
    match c.run.output {
        Format::Json => output::print_json(&json!({"node": cfg.node_name, "path": out, "server": server}))?,
        Format::Table => {
            println!("[issue] kubelet kubeconfig for system:node:{} written to {}", cfg.node_name, out.display())
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn kubelet_serving(c: &Common, node_ips: &[IpAddr], nodes_file: Option<&PathBuf>, out: &PathBuf) -> Result<ExitCode> {
    // Nothing of this host is needed: the node names and addresses are given.
    let cfg = c.cluster.resolve_without_host()?;
    let nodes = match nodes_file {
        Some(file) => {
            let text = fsio::read_required(file, 64 << 20, "nodes file")?;
            let text =
                String::from_utf8(text).map_err(|_| coded(INPUT, anyhow::anyhow!("{} is not text", file.display())))?;
            node::parse_nodes(&text, file)?
        }
        None => {
            if c.cluster.signer.node_name.is_none() {
                bail!(coded(INPUT, anyhow::anyhow!("give --node-name and --node-ip, or --nodes FILE")));
            }
            vec![Node::new(&cfg.node_name, node_ips.to_vec())?]
        }
    };
    // An earlier run interrupted after its commit point is completed (one before it, discarded).
    let out_exists = out.is_dir();
    let completed = if out_exists { fsio::recover(out, out, &[])?.completed.len() } else { 0 };
    let existing: Vec<_> = match out_exists {
        true => nodes.iter().map(|n| out.join(&n.name).join(node::CERT_FILE)).filter(|p| p.exists()).collect(),
        false => Vec::new(),
    };
    if completed > 0 && existing.len() == nodes.len() {
        // This command, rerun after a crash: the interrupted run had written all of it.
        match c.run.output {
            Format::Json => output::print_json(
                &json!({"nodes": nodes.len(), "files": completed, "out": out, "completedInterrupted": true}),
            )?,
            Format::Table => println!(
                "[issue] an interrupted run was completed: {} under {}",
                output::count(nodes.len(), "kubelet serving certificate"),
                out.display()
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(first) = existing.first() {
        bail!(coded(
            INPUT,
            anyhow::anyhow!("{} exists (and {} more); nothing was written", first.display(), existing.len() - 1)
        ));
    }
    let ca = load_cluster_ca(&cfg, c)?;
    crate::progress::keys_planned("issue kubelet-serving", nodes.len(), cfg.encryption_algorithm);
    let written = node::issue_serving(
        &ca,
        &nodes,
        out,
        cfg.encryption_algorithm,
        cfg.cert_validity,
        time::OffsetDateTime::now_utc(),
        &|_| {},
    )?;
    match c.run.output {
        Format::Json => output::print_json(&json!({"nodes": nodes.len(), "files": written.len(), "out": out}))?,
        Format::Table => {
            println!(
                "[issue] {} written under {}",
                output::count(nodes.len(), "kubelet serving certificate"),
                out.display()
            )
        }
    }
    Ok(ExitCode::SUCCESS)
}
