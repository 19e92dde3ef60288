//! `--verify-*`: endpoints `rotate` and `rotate-ca` verify after they wrote (and after
//! `--exec`), rolling back when verification fails.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use kubepki_rotator::verify::{self, Options, Target, TargetKind};

use crate::commands::init::parse_duration;

/// Endpoints to verify after writing, with the kubeadm defaults of `kubepki verify`.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct VerifyFlags {
    /// After writing (and --exec), verify this etcd client URL with mutual TLS; on failure
    /// everything written is restored. Repeatable.
    #[arg(long, value_name = "URL")]
    verify_etcd: Vec<String>,
    /// As --verify-etcd, for an etcd peer URL.
    #[arg(long, value_name = "URL")]
    verify_etcd_peer: Vec<String>,
    /// As --verify-etcd, for a kubelet URL (:10250).
    #[arg(long, value_name = "URL")]
    verify_kubelet: Vec<String>,
    /// As --verify-etcd, for the API server URL.
    #[arg(long, value_name = "URL")]
    verify_apiserver: Vec<String>,
    /// How long verification waits for an endpoint that is restarting.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    verify_wait: Duration,
}

impl VerifyFlags {
    /// The targets, from the flags and from a configuration's lists (`kind`, `url`).
    pub(crate) fn targets(&self, cert_dir: &Path, configured: &[(TargetKind, String)]) -> Result<Vec<Target>> {
        let mut targets = Vec::new();
        let flagged = [
            (TargetKind::Etcd, &self.verify_etcd),
            (TargetKind::EtcdPeer, &self.verify_etcd_peer),
            (TargetKind::Kubelet, &self.verify_kubelet),
            (TargetKind::ApiServer, &self.verify_apiserver),
        ];
        for (kind, urls) in flagged {
            for url in urls {
                targets.push(Target::kubeadm_default(kind, cert_dir, url)?);
            }
        }
        for (kind, url) in configured {
            targets.push(Target::kubeadm_default(*kind, cert_dir, url)?);
        }
        Ok(targets)
    }

    /// Verifies `targets`; `Err` with every problem when any check fails.
    pub(crate) fn run(&self, targets: &[Target]) -> Result<()> {
        if targets.is_empty() {
            return Ok(());
        }
        let options = Options { wait_reachable: self.verify_wait, ..Options::default() };
        let report = verify::verify_blocking(targets, &options)?;
        if report.passed() {
            return Ok(());
        }
        anyhow::bail!("verification failed: {}", report.problems().join("; "))
    }
}
