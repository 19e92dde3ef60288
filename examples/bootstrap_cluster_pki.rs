//! Bootstraps a kubeadm PKI with the library, then issues kubelet serving certificates for a
//! few nodes from its CA.
//!
//! ```sh
//! cargo run -p kubepki-examples --example bootstrap_cluster_pki
//! ```

use anyhow::Result;
use kubepki_pki::node::{self, Node};
use kubepki_pki::{CaKind, ClusterConfig, InitOptions, KeyAlgorithm, OffsetDateTime, PkiDir};

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cfg = ClusterConfig::new("cp1", "10.0.0.11".parse()?);
    cfg.cert_dir = dir.path().join("pki");
    cfg.kubeconfig_dir = dir.path().to_path_buf();
    cfg.control_plane_endpoint = Some("api.example.internal:6443".into());
    cfg.encryption_algorithm = KeyAlgorithm::EcdsaP256;

    let report = kubepki_pki::init(&cfg, &InitOptions::now())?;
    for item in &report.items {
        println!("{:<8} {:<26} {}", item.action.as_str(), item.name, item.path.display());
    }

    let ca = PkiDir::new(&cfg.cert_dir).load_ca(CaKind::Ca)?.ok_or_else(|| anyhow::anyhow!("init made no CA"))?;
    let nodes =
        vec![Node::new("worker-1", vec!["10.0.1.1".parse()?])?, Node::new("worker-2", vec!["10.0.1.2".parse()?])?];
    let written = node::issue_serving(
        &ca,
        &nodes,
        &dir.path().join("kubelet-serving"),
        cfg.encryption_algorithm,
        cfg.cert_validity,
        OffsetDateTime::now_utc(),
        &|_| {},
    )?;
    println!("wrote {} kubelet serving files", written.len());
    Ok(())
}
