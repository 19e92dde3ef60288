//! Rotates a PKI with the library's one call, `kubepki_rotator::rotate`: what `kubepki rotate`
//! does, with a reload hook and a rollback. Bootstraps a throwaway PKI, renews everything with a
//! hook that fails (every file is put back, and the error says from where), then again with a
//! hook that succeeds (the renewal is kept and the report says what was renewed).
//!
//! ```sh
//! cargo run -p kubepki-examples --example rotate
//! ```

use anyhow::{Result, ensure};
use kubepki_pki::{ClusterConfig, InitOptions, KeyAlgorithm};
use kubepki_rotator::rotation::{Hook, RotateRequest};
use kubepki_rotator::{Error, rotate};

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut cfg = ClusterConfig::new("cp1", "10.0.0.11".parse()?);
    cfg.cert_dir = dir.path().join("pki");
    cfg.kubeconfig_dir = dir.path().to_path_buf();
    cfg.encryption_algorithm = KeyAlgorithm::EcdsaP256;
    kubepki_pki::init(&cfg, &InitOptions::now())?;
    let apiserver = std::fs::read(cfg.cert_dir.join("apiserver.crt"))?;

    // Everything, now; the hook is where a real run restarts the control plane.
    let mut request = RotateRequest::new(&cfg.cert_dir, &cfg.kubeconfig_dir);
    request.plan.all = true;
    request.audit_log = Some(dir.path().join("audit.jsonl"));
    request.hook = Some(Hook::shell("echo \"reloading for: $KUBEPKI_ROTATED\"; exit 1"));
    match rotate(&request) {
        Err(Error::RolledBack { cause, undone }) => {
            println!("rolled back ({cause}): {} files restored", undone.restored.len());
            for note in &undone.notes {
                println!("  {note}");
            }
        }
        other => anyhow::bail!("expected a rollback, got {other:?}"),
    }
    ensure!(std::fs::read(cfg.cert_dir.join("apiserver.crt"))? == apiserver, "apiserver.crt was not restored");

    request.hook = Some(Hook::shell("echo \"backup in $KUBEPKI_BACKUP_DIR\""));
    let report = rotate(&request)?;
    for r in report.execution.iter().flat_map(|o| &o.renewed) {
        let old = r.old.as_ref().map_or("(none)", |c| c.serial.as_str());
        println!("{:<26} serial {old} → {}", r.name, r.new.serial);
    }
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl"))?;
    println!("audit log: {} lines (renew, restore, renew)", audit.lines().count());
    Ok(())
}
