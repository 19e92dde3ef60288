//! Plans a rotation with the library, without touching disk: bootstraps a throwaway PKI with
//! 90-day leaves, finds what `kubepki rotate` would renew, and asks the policy what is due two
//! months from now — then audits the PKI against the hardening advice and draws it as a tree.
//!
//! ```sh
//! cargo run -p kubepki-examples --example plan_rotation
//! ```

use std::time::Duration;

use anyhow::Result;
use kubepki_pki::{ClusterConfig, InitOptions, KeyAlgorithm, Lifetime, OffsetDateTime, PkiDir};
use kubepki_rotator::inventory::{InventoryBuilder, SourcePath, Sources};
use kubepki_rotator::node_audit::{self, AuditOptions, AuditStatus};
use kubepki_rotator::rotation::plan::{self, PlanOptions};
use kubepki_rotator::rotation::targets::{self, Cas};
use kubepki_rotator::tree::{TextStyle, Tree};

fn main() -> Result<()> {
    // A node filesystem in a temp dir: /etc/kubernetes{,/pki} under it.
    let root = tempfile::tempdir()?;
    let kubernetes = root.path().join("etc/kubernetes");
    let mut cfg = ClusterConfig::new("cp1", "10.0.0.11".parse()?);
    cfg.cert_dir = kubernetes.join("pki");
    cfg.kubeconfig_dir = kubernetes.clone();
    cfg.encryption_algorithm = KeyAlgorithm::EcdsaP256;
    cfg.cert_validity = Lifetime::new(Duration::from_secs(90 * 86400))?;
    kubepki_pki::init(&cfg, &InitOptions::now())?;

    // What rotate can renew: the cert dir's leaves and the kubeconfigs' client certificates.
    let pki = PkiDir::new(&cfg.cert_dir);
    let cas = Cas::load(&pki)?;
    let kubeconfigs = targets::kubeconfigs_in(&kubernetes);
    let discovery = targets::discover(&pki, &cas, &kubeconfigs, &[])?;

    // The default policy renews at 2/3 of the lifetime: a 90-day leaf is due after 60 days.
    let now = OffsetDateTime::now_utc();
    for days in [30, 61] {
        let options = PlanOptions { at: now + Duration::from_secs(days * 86400), ..PlanOptions::new(now) };
        let plan = plan::plan(&discovery, &cas, &options)?;
        println!("in {days} days: {} due, {} not yet", plan.renewals.len(), plan.kept.len());
        for r in &plan.renewals {
            let reasons: Vec<String> = r.reasons.iter().map(ToString::to_string).collect();
            println!("  renew {:<26} signed by {:<15} {}", r.name, r.ca.name(), reasons.join(", "));
        }
    }

    // The same PKI, audited as a node would be (no manifests here: the CA keys sit on a node
    // with no control plane, which the audit calls critical).
    let report = node_audit::audit(&AuditOptions::new(root.path()));
    for finding in report.findings() {
        let file = finding.file.as_deref().map(|f| f.display().to_string()).unwrap_or_default();
        println!("audit: {} {} {file}: {}", finding.status, finding.id, finding.message);
    }
    assert!(report.results.iter().any(|r| r.id == "pki-ca-key-placement" && r.status == AuditStatus::Critical));

    // And drawn: CA -> leaves -> kubeconfigs.
    let sources = Sources {
        cert_dir: Some(SourcePath::explicit(&cfg.cert_dir)),
        kubeconfig_dir: Some(SourcePath::explicit(&kubernetes)),
        ..Sources::default()
    };
    let tree = Tree::build(&InventoryBuilder::discover(&sources).finish());
    print!("{}", tree.to_text(now, TextStyle::plain()));
    Ok(())
}
