//! The bodies of the fuzz targets (`fuzz/`), shared with the test that replays the committed
//! corpus on stable Rust in CI. Each takes arbitrary bytes and must never panic, hang or
//! allocate without bound; errors are fine.

use std::path::Path;

use kubepki_pki::{Certificate, KubeadmConfig, Kubeconfig, PemSource, PrivateKey};

/// Certificate files: a PEM bundle (every CERTIFICATE block), or one DER certificate, and
/// everything kubepki derives from each certificate. Every block is also read by x509-parser:
/// whatever both read must read the same ([`crate::x509_reference::compare`] panics).
pub fn certificates(data: &[u8]) {
    // kubepki's certificate reader against x509-parser's, block by block.
    for der in crate::x509_reference::certificates_in(data) {
        crate::x509_reference::compare(&der);
    }
    let certs = match Certificate::from_pem_bundle(data, "fuzz") {
        Ok(certs) => certs,
        Err(_) => match Certificate::from_der(data.to_vec(), "fuzz") {
            Ok(c) => vec![c],
            Err(_) => return,
        },
    };
    for c in &certs {
        let _ = (c.fingerprint_sha256(), c.to_pem(), c.lifetime(), c.is_self_issued(), c.sans.to_string());
        let _ = (c.public_key.to_string(), c.public_key.is_weak(), c.subject.to_string());
        // Chains as check and init verify them: each against each.
        for other in &certs {
            let _ = c.verify_issued_by(other);
        }
        if let Some(req) = kubepki_pki::CertRequest::from_certificate(c) {
            let _ = req.sans.dns_names().count();
        }
    }
}

/// Private key files.
pub fn private_key(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(key) = PrivateKey::from_pem(text, "fuzz") {
        // A key that loads must also write back and load again as the same key.
        let again = PrivateKey::from_pem(&key.to_pem(), "fuzz").expect("a loaded key must round-trip");
        assert_eq!(again.public_key_der(), key.public_key_der());
    }
}

/// Kubeconfig files: parse, read every field kubepki reads, edit and rewrite, parse again.
pub fn kubeconfig(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(mut kc) = Kubeconfig::from_yaml(text, "fuzz") else { return };
    let _ = kc.current();
    let clusters: Vec<String> = kc.cluster_names().into_iter().map(str::to_owned).collect();
    let users: Vec<String> = kc.user_names().into_iter().map(str::to_owned).collect();
    for c in &clusters {
        let _ = (kc.server(c), kc.cluster_ca(c));
    }
    for u in &users {
        if let Ok(Some(PemSource::Embedded(pem))) = kc.client_certificate(u) {
            certificates(&pem);
        }
        let _ = kc.client_key(u);
    }
    if let Some(u) = users.first() {
        let _ = kc.set_client_credentials(u, "CERT", "KEY");
    }
    if let Some(c) = clusters.first() {
        let _ = kc.set_cluster_ca(c, "CA");
    }
    let yaml = kc.to_yaml();
    Kubeconfig::from_yaml(&yaml, "fuzz").expect("kubepki must read back what it writes");
}

/// kubeadm configuration files and kubepki's RotationConfiguration.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(Some(k)) = KubeadmConfig::parse_optional(text, Path::new("fuzz.yaml")) {
        let mut cfg = kubepki_pki::ClusterConfig::new("fuzz", std::net::IpAddr::from([127, 0, 0, 1]));
        k.apply_to(&mut cfg);
        if cfg.validate().is_ok() {
            for rule in [kubepki_pki::SanRule::ApiServer, kubepki_pki::SanRule::EtcdPeer] {
                let _ = cfg.alt_names(rule);
            }
            let _ = cfg.server_url(kubepki_pki::Endpoint::ControlPlane);
        }
    }
}
