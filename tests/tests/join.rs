//! Joining a control plane: `kubepki init --join-from DIR` on node N takes the shared material
//! of node 1 (a kubeadm control plane made by an independent tool, pyca) as `kubeadm join
//! --control-plane` takes it from the `kubeadm-certs` Secret, and makes node N's own leaves.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::*;

const SHARED: [&str; 10] = [
    "ca.crt",
    "ca.key",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "etcd/ca.crt",
    "etcd/ca.key",
    "sa.key",
    "sa.pub",
    // Not shared: checked to be node 2's own below.
    "apiserver.crt",
    "etcd/peer.crt",
];

fn join(node: &Path, shared: &Path, name: &str, address: &str, extra: &[&str]) -> Run {
    run(kubepki()
        .arg("init")
        .arg("--join-from")
        .arg(shared)
        .arg("--cert-dir")
        .arg(node.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(node)
        .args(["--node-name", name, "--apiserver-advertise-address", address])
        .args(["--encryption-algorithm", "RSA-2048"])
        .args(extra))
}

#[test]
fn a_second_control_plane_node_shares_the_first_nodes_cas_and_keys_and_has_its_own_leaves() {
    let d = TestDir::new();
    let cp1 = d.join("cp1");
    kubeadm_tree(&cp1, json!({}));
    // What the operator copies: node 1's whole cert dir (its own leaves in it are ignored).
    let copy = d.join("from-cp1");
    assert!(std::process::Command::new("cp").arg("-a").arg(cp1.join("pki")).arg(&copy).status().unwrap().success());

    let cp2 = d.join("cp2");
    let r = join(&cp2, &copy, "cp2", "10.0.0.12", &["-o", "json"]).ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let action =
        |name: &str| v["items"].as_array().unwrap().iter().find(|i| i["name"] == name).unwrap()["action"].clone();
    assert_eq!(action("ca"), "copied");
    assert_eq!(action("etcd-ca"), "copied");
    assert_eq!(action("sa"), "copied");
    assert_eq!(action("apiserver"), "created");

    for f in &SHARED[..8] {
        assert_eq!(
            std::fs::read(cp1.join("pki").join(f)).unwrap(),
            std::fs::read(cp2.join("pki").join(f)).unwrap(),
            "{f}"
        );
    }
    for f in &SHARED[8..] {
        assert_ne!(
            std::fs::read(cp1.join("pki").join(f)).unwrap(),
            std::fs::read(cp2.join("pki").join(f)).unwrap(),
            "{f}"
        );
    }
    // kubeadm's join writes no super-admin.conf; the rest as on node 1, in kubeadm's modes.
    assert!(!cp2.join("super-admin.conf").exists());
    for conf in ["admin.conf", "kubelet.conf", "controller-manager.conf", "scheduler.conf"] {
        assert!(cp2.join(conf).exists(), "{conf}");
    }
    use std::os::unix::fs::PermissionsExt;
    for (f, mode) in [("ca.key", 0o600), ("ca.crt", 0o644), ("sa.key", 0o600), ("etcd/ca.key", 0o600)] {
        assert_eq!(std::fs::metadata(cp2.join("pki").join(f)).unwrap().permissions().mode() & 0o777, mode, "{f}");
    }

    // Node 2's leaves name node 2 and chain to node 1's CAs, for openssl.
    let text = openssl_text(&cp2.join("pki/apiserver.crt"));
    assert!(text.contains("DNS:cp2") && text.contains("IP Address:10.0.0.12"), "{text}");
    assert!(!text.contains("DNS:cp1") && !text.contains("10.0.0.11"), "{text}");
    for (ca, leaf) in [
        ("ca.crt", "apiserver.crt"),
        ("etcd/ca.crt", "etcd/peer.crt"),
        ("front-proxy-ca.crt", "front-proxy-client.crt"),
    ] {
        openssl_verify(&cp1.join("pki").join(ca), &cp2.join("pki").join(leaf)).unwrap();
    }
    // A node-1 client is accepted by node 2's etcd, which serves node 2's certificate.
    if have("etcd") && have("etcdctl") {
        let etcd = Etcd::start(&EtcdConfig { name: "cp2", pki: &cp2.join("pki"), client_cert_auth: true });
        run(etcdctl_healthcheck(&etcd.client_url, &cp1.join("pki")).arg("endpoint").arg("health")).ok();
    }

    // Again: nothing to do.
    let before = tree_hash(&cp2);
    let r = join(&cp2, &copy, "cp2", "10.0.0.12", &[]).ok();
    assert!(r.stdout.contains("nothing written"), "{}", r.stdout);
    assert_eq!(tree_hash(&cp2), before);
}

#[test]
fn a_node_of_another_cluster_or_an_incomplete_copy_is_refused_and_nothing_is_written() {
    let d = TestDir::new();
    let cp1 = d.join("cp1");
    kubeadm_tree(&cp1, json!({}));

    // A node that already has another cluster's CA.
    let other = d.join("other");
    kubeadm_tree(&other, json!({"node_name": "cp9", "address": "10.0.0.19"}));
    std::fs::remove_file(other.join("pki/apiserver.crt")).unwrap();
    std::fs::remove_file(other.join("pki/apiserver.key")).unwrap();
    // The PKI itself (kubepki's lock appears in the state dir, beside kubeadm's backups).
    let before = (tree_hash(&other.join("pki")), std::fs::read(other.join("admin.conf")).unwrap());
    let r = join(&other, &cp1.join("pki"), "cp9", "10.0.0.19", &[]).expect_code(2);
    assert!(r.stderr.contains("ca.crt is not") && r.stderr.contains("another cluster"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert_eq!((tree_hash(&other.join("pki")), std::fs::read(other.join("admin.conf")).unwrap()), before);

    // A copy without the service-account key.
    let copy = d.join("copy");
    assert!(std::process::Command::new("cp").arg("-a").arg(cp1.join("pki")).arg(&copy).status().unwrap().success());
    std::fs::remove_file(copy.join("sa.key")).unwrap();
    let fresh = d.join("cp2");
    let r = join(&fresh, &copy, "cp2", "10.0.0.12", &[]).expect_code(2);
    assert!(r.stderr.contains("sa.key") && r.stderr.contains("copy the first node's"), "{}", r.stderr);
    assert!(!fresh.join("pki").exists() || std::fs::read_dir(fresh.join("pki")).unwrap().next().is_none());

    // No such directory.
    let r = join(&fresh, &d.join("nowhere"), "cp2", "10.0.0.12", &[]).expect_code(2);
    assert!(r.stderr.contains("nowhere") && r.stderr.contains("does not exist"), "{}", r.stderr);
}
