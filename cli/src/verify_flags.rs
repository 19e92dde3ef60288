//! `--verify-*`: endpoints `rotate` and `rotate-ca` verify after they wrote (and after
//! `--exec`), rolling back when verification fails.

use std::time::Duration;

use clap::Args;
use kubepki_rotator::rotation::Verification;
use kubepki_rotator::verify::TargetKind;

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
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, default_value = "30s", value_parser = parse_duration)]
    verify_wait: Duration,
}

impl VerifyFlags {
    /// The verification the flags ask for, in the order `--verify-etcd`, `--verify-etcd-peer`,
    /// `--verify-kubelet`, `--verify-apiserver`.
    pub(crate) fn verification(&self) -> Verification {
        let flagged = [
            (TargetKind::Etcd, &self.verify_etcd),
            (TargetKind::EtcdPeer, &self.verify_etcd_peer),
            (TargetKind::Kubelet, &self.verify_kubelet),
            (TargetKind::ApiServer, &self.verify_apiserver),
        ];
        let endpoints =
            flagged.into_iter().flat_map(|(kind, urls)| urls.iter().map(move |url| (kind, url.clone()))).collect();
        Verification { endpoints, wait: self.verify_wait }
    }
}
