//! kubepki on PKIs it did not make: kubeadm-made control planes written by an independent tool
//! (`tests/fixtures/kubeadm_tree.py`, pyca/cryptography), with RSA-2048 keys and a node name
//! and address that are not this machine's; and their variants: an external CA, a broken leaf,
//! expired leaves. Rotation keeps every identity, layout and key algorithm unless the command
//! line asks, shows each change first, and never takes anything from the host it runs on.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::*;
use kubepki_tests::kubeadm_fixture::KUBEADM_KUBECONFIGS;

fn rotate(dir: &Path, extra: &[&str]) -> Run {
    run(kubepki().arg("rotate").arg("--cert-dir").arg(dir.join("pki")).arg("--kubeconfig-dir").arg(dir).args(extra))
}

fn rotate_json(dir: &Path, extra: &[&str]) -> (Run, Value) {
    let r = rotate(dir, &[extra, &["-o", "json"]].concat());
    let v = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    (r, v)
}

/// A hash of the cert dir and the kubeconfigs: what a refused command must leave as it was
/// (kubepki's lock beside kubeadm's backups in `tmp/` is not part of the PKI).
fn pki_hash(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for conf in KUBEADM_KUBECONFIGS {
        std::fs::read(dir.join(conf)).ok().hash(&mut h);
    }
    format!("{} {:x}", tree_hash(&dir.join("pki")), h.finish())
}

fn cert(path: &Path) -> kubepki_pki::Certificate {
    kubepki_pki::read_certs(path).unwrap().unwrap().remove(0)
}

fn sans(path: &Path) -> Vec<String> {
    let c = cert(path);
    c.sans
        .dns_names()
        .map(|d| format!("DNS:{d}"))
        .chain(c.sans.ip_addresses().iter().map(|i| format!("IP:{i}")))
        .collect()
}

/// This machine's host name and the addresses it has: none may appear in a renewed certificate.
fn host_identities() -> Vec<String> {
    let mut ids = vec![std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_lowercase()];
    let r = run(Command::new("hostname").arg("-I"));
    ids.extend(r.stdout.split_whitespace().map(str::to_owned));
    ids.retain(|i| !i.is_empty() && i != "cp1" && i != "10.0.0.11" && i != "localhost");
    ids
}

#[test]
fn rotate_keeps_every_identity_and_takes_nothing_from_the_host() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({}));
    let pki = d.join("pki");
    let before: Vec<_> =
        ["apiserver", "etcd/server", "etcd/peer"].iter().map(|b| (b, sans(&pki.join(format!("{b}.crt"))))).collect();
    let etcd_serials = (cert(&pki.join("etcd/server.crt")).serial, cert(&pki.join("etcd/peer.crt")).serial);

    // The plan first: exactly one SAN added to exactly one certificate; nothing written.
    let hash = tree_hash(&pki);
    let (r, plan) = rotate_json(d.path(), &["--dry-run", "--apiserver-cert-extra-sans", "new-lb.example.com"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(tree_hash(&pki), hash, "a dry run writes nothing");
    let renewals = plan["renewals"].as_array().unwrap();
    assert_eq!(renewals.len(), 1, "{plan:#}");
    assert_eq!(renewals[0]["name"], "apiserver");
    assert_eq!(renewals[0]["sansAdded"], json!(["DNS:new-lb.example.com"]));
    assert_eq!(renewals[0]["sansRemoved"], json!([]));
    assert_eq!(renewals[0]["keyAlgorithm"], "RSA-2048");
    let table = rotate(d.path(), &["--dry-run", "--apiserver-cert-extra-sans", "new-lb.example.com"]);
    assert!(table.stdout.contains("[rotate] apiserver: SAN +DNS:new-lb.example.com"), "{}", table.stdout);

    let r = rotate(d.path(), &["--apiserver-cert-extra-sans", "new-lb.example.com"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut want = before[0].1.clone();
    want.insert(want.iter().position(|s| s.starts_with("IP:")).unwrap(), "DNS:new-lb.example.com".into());
    assert_eq!(sans(&pki.join("apiserver.crt")), want, "the old SANs, in kubeadm's order, and the new one");
    assert_eq!(cert(&pki.join("apiserver.crt")).subject.to_string(), "CN=kube-apiserver");
    assert_eq!(cert(&pki.join("apiserver.crt")).public_key.to_string(), "RSA-2048", "the key algorithm is kept");
    assert_eq!(
        (cert(&pki.join("etcd/server.crt")).serial, cert(&pki.join("etcd/peer.crt")).serial),
        etcd_serials,
        "etcd's certificates are not touched"
    );
    for (base, old) in &before[1..] {
        assert_eq!(&sans(&pki.join(format!("{base}.crt"))), old, "{base}");
    }
    // Nothing of this machine in any certificate.
    let all = run(Command::new("sh").arg("-c").arg(format!(
        "for f in $(find {} -name '*.crt'); do openssl x509 -noout -subject -ext subjectAltName -in $f; done",
        pki.display()
    )));
    for id in host_identities() {
        assert!(!all.stdout.contains(&id), "this host's {id} leaked into a certificate:\n{}", all.stdout);
    }
    openssl_verify(&pki.join("ca.crt"), &pki.join("apiserver.crt")).unwrap();
}

#[test]
fn sans_are_removed_only_when_asked_and_a_key_algorithm_changes_only_when_asked() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"cert_sans": ["old-lb.example.com", "10.0.0.100"]}));
    let pki = d.join("pki");
    let (r, plan) = rotate_json(d.path(), &["--dry-run", "--remove-sans", "old-lb.example.com,10.0.0.100"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let renewals = plan["renewals"].as_array().unwrap();
    assert_eq!(renewals.len(), 1, "{plan:#}");
    assert_eq!(renewals[0]["sansRemoved"], json!(["DNS:old-lb.example.com", "IP:10.0.0.100"]));
    let r = rotate(d.path(), &["--remove-sans", "old-lb.example.com,10.0.0.100"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!sans(&pki.join("apiserver.crt")).iter().any(|s| s.contains("old-lb") || s.contains("10.0.0.100")));
    assert!(sans(&pki.join("apiserver.crt")).contains(&"DNS:cp1".to_owned()));

    // A new key algorithm, shown in the plan; the subject and SANs stay.
    let old = cert(&pki.join("front-proxy-client.crt"));
    let (_, plan) =
        rotate_json(d.path(), &["--dry-run", "--force", "front-proxy-client", "--encryption-algorithm", "ECDSA-P256"]);
    assert_eq!(plan["renewals"][0]["oldKeyAlgorithm"], "RSA-2048");
    assert_eq!(plan["renewals"][0]["keyAlgorithm"], "ECDSA-P256");
    let table = rotate(d.path(), &["--force", "front-proxy-client", "--encryption-algorithm", "ECDSA-P256"]);
    assert!(table.stdout.contains("front-proxy-client: key RSA-2048 -> ECDSA-P256"), "{}", table.stdout);
    let new = cert(&pki.join("front-proxy-client.crt"));
    assert_eq!((new.subject, new.public_key.to_string()), (old.subject, "ECDSA-P256".to_owned()));
}

#[test]
fn a_config_is_the_whole_desired_state_and_must_name_the_node() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"cert_sans": ["old-lb.example.com"]}));
    let pki = d.join("pki");
    let without_node = d.write(
        "cluster.yaml",
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n  certSANs: [new-lb.example.com]\n",
    );
    let hash = pki_hash(d.path());
    let r = rotate(d.path(), &["--config", without_node.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("does not name this node") && r.stderr.contains("nodeRegistration.name"), "{}", r.stderr);
    assert_eq!(pki_hash(d.path()), hash);
    // The node named by flags: the file's SANs replace the old ones (old-lb goes, new-lb comes).
    let (r, plan) = rotate_json(
        d.path(),
        &[
            "--dry-run",
            "--config",
            without_node.to_str().unwrap(),
            "--node-name",
            "cp1",
            "--apiserver-advertise-address",
            "10.0.0.11",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let renewals = plan["renewals"].as_array().unwrap();
    assert_eq!(renewals.len(), 1, "only the apiserver differs from the configuration: {plan:#}");
    assert_eq!(renewals[0]["sansAdded"], json!(["DNS:new-lb.example.com"]));
    assert_eq!(renewals[0]["sansRemoved"], json!(["DNS:old-lb.example.com"]));
    assert!(sans(&pki.join("apiserver.crt")).contains(&"DNS:old-lb.example.com".to_owned()), "a dry run");
}

#[test]
fn external_ca_mode_renews_what_it_can_and_lists_the_rest() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"external_ca": true, "expired": "all"}));
    let pki = d.join("pki");
    assert!(!pki.join("ca.key").exists());
    // --force on a leaf of the external CA: an input error naming the missing key; nothing written.
    let hash = pki_hash(d.path());
    let r = rotate(d.path(), &["--force", "apiserver"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("externally managed") && r.stderr.contains(&pki.join("ca.key").display().to_string()),
        "{}",
        r.stderr
    );
    assert_eq!(pki_hash(d.path()), hash);

    let (r, v) = rotate_json(d.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let renewed: Vec<&str> = v["renewals"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        renewed,
        ["front-proxy-client", "etcd-server", "etcd-peer", "etcd-healthcheck-client", "apiserver-etcd-client"],
        "every leaf of a CA whose key is here"
    );
    let external: Vec<&str> = v["external"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    for name in ["apiserver", "apiserver-kubelet-client", "admin.conf", "kubelet.conf", "super-admin.conf"] {
        assert!(external.contains(&name), "{name} is listed as external: {external:?}");
    }
    assert_eq!(v["external"][0]["ca"], "ca");
    for base in ["front-proxy-client", "etcd/server", "apiserver-etcd-client"] {
        let c = cert(&pki.join(format!("{base}.crt")));
        assert!(c.not_after > kubepki_pki::OffsetDateTime::now_utc(), "{base} renewed");
    }
    assert!(cert(&pki.join("apiserver.crt")).not_after < kubepki_pki::OffsetDateTime::now_utc(), "apiserver untouched");
    assert!(!pki.join("ca.key").exists());
    // The table says the same.
    let t = rotate(d.path(), &["--dry-run"]);
    assert!(t.stdout.contains("[rotate] external: apiserver"), "{}", t.stdout);
}

#[test]
fn a_broken_leaf_does_not_block_the_rest_and_force_reissues_it() {
    let d = TestDir::new();
    kubeadm_tree(
        d.path(),
        json!({"broken": {"apiserver": "wrong-key", "etcd-peer": "garbage"}, "expired": ["etcd-server", "apiserver-etcd-client"]}),
    );
    let pki = d.join("pki");
    let broken_before =
        (std::fs::read(pki.join("apiserver.crt")).unwrap(), std::fs::read(pki.join("etcd/peer.crt")).unwrap());

    // A dry run names both, with the fix, and exits 1 having written nothing.
    let hash = pki_hash(d.path());
    let (r, v) = rotate_json(d.path(), &["--dry-run"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(pki_hash(d.path()), hash);
    let unrenewable: Vec<(&str, &str)> = v["unrenewable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap(), u["fix"].as_str().unwrap()))
        .collect();
    // Each fix is a complete command: it carries the --cert-dir and --kubeconfig-dir of the run.
    let flags = format!("--cert-dir {} --kubeconfig-dir {}", pki.display(), d.path().display());
    let want = |name: &str| format!("kubepki rotate --force {name} {flags}");
    assert_eq!(unrenewable, [("apiserver", want("apiserver").as_str()), ("etcd-peer", want("etcd-peer").as_str())]);
    assert!(r.stderr.contains("does not match"), "{}", r.stderr);

    // The real run renews everything else that is due, leaves the broken ones, and exits 1.
    let r = rotate(d.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.contains("etcd-server renewed") && r.stdout.contains("apiserver-etcd-client renewed"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains(&format!("fix: {}\n", want("apiserver"))), "{}", r.stderr);
    assert!(r.stdout.contains(&format!("fix: {}\n", want("apiserver"))), "{}", r.stdout);
    assert_eq!(std::fs::read(pki.join("apiserver.crt")).unwrap(), broken_before.0);
    assert_eq!(std::fs::read(pki.join("etcd/peer.crt")).unwrap(), broken_before.1);
    // The fix, run as printed from another directory, renews it.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_kubepki")).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let fixed = run(Command::new("sh").arg("-c").arg(want("apiserver")).current_dir("/").env("PATH", path));
    // (exit 1: etcd-peer is still broken, and named)
    assert_eq!(fixed.code, 1, "{}\n{}", fixed.stdout, fixed.stderr);
    assert!(fixed.stdout.contains("apiserver renewed") && fixed.stderr.contains("etcd-peer"), "{}", fixed.stderr);
    assert_ne!(std::fs::read(pki.join("apiserver.crt")).unwrap(), broken_before.0);

    // --force on the garbage one needs the node's identity (its certificate cannot be read):
    // refused without it, naming the flags, nothing written.
    let hash = pki_hash(d.path());
    let r = rotate(d.path(), &["--force", "etcd-peer"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--node-name"), "{}", r.stderr);
    assert_eq!(pki_hash(d.path()), hash);

    // With it, both are reissued: apiserver with its old identity, etcd-peer from kubeadm's
    // profile; the run is clean again.
    let old_api = cert(&pki.join("apiserver.crt"));
    let r = rotate(
        d.path(),
        &["--force", "apiserver,etcd-peer", "--node-name", "cp1", "--apiserver-advertise-address", "10.0.0.11"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let api = cert(&pki.join("apiserver.crt"));
    assert_eq!((api.subject.clone(), api.sans.clone()), (old_api.subject, old_api.sans));
    assert_eq!(api.public_key.to_string(), "RSA-2048");
    let peer = cert(&pki.join("etcd/peer.crt"));
    assert_eq!(peer.subject.to_string(), "CN=cp1");
    assert_eq!(
        sans(&pki.join("etcd/peer.crt")),
        ["DNS:cp1", "DNS:localhost", "IP:10.0.0.11", "IP:127.0.0.1", "IP:::1"],
        "kubeadm's etcd peer SANs"
    );
    assert_eq!(peer.public_key.to_string(), "RSA-2048", "the CA's algorithm, as kubeadm uses one throughout");
    for (ca, leaf) in [("ca.crt", "apiserver.crt"), ("etcd/ca.crt", "etcd/peer.crt")] {
        openssl_verify(&pki.join(ca), &pki.join(leaf)).unwrap_or_else(|e| panic!("{leaf}: {e}"));
    }
    let key = kubepki_pki::read_key(&pki.join("apiserver.key")).unwrap().unwrap();
    assert!(key.matches_spki(&api.spki));
    assert_eq!(rotate(d.path(), &["--dry-run"]).code, 0);
}

/// kube-bench's CIS checks 1.1.19–1.1.21, run as kube-bench runs them, read the same on a tree
/// kubepki made and rotated as on a kubeadm-made one: root:root, certificates 644, keys 600,
/// every file once (no links, which `stat` would read as 777).
#[test]
fn kube_bench_file_checks_read_a_kubepki_tree_as_a_kubeadm_tree() {
    let kubeadm = TestDir::new();
    kubeadm_tree(kubeadm.path(), json!({}));
    let ours = TestDir::new();
    init(ours.path(), &[]).ok();
    assert_eq!(rotate(ours.path(), &["--all"]).code, 0);
    let converted = TestDir::new();
    kubeadm_tree(converted.path(), json!({}));
    assert_eq!(rotate(converted.path(), &["--all"]).code, 0);
    let cis = |dir: &Path| -> Vec<String> {
        let pki = dir.join("pki");
        let mut out = Vec::new();
        for check in [
            "find {pki}/ | xargs stat -c '%n %U:%G'",
            "find {pki}/ -name '*.crt' | xargs stat -c '%n permissions=%a'",
            "find {pki}/ -name '*.key' | xargs stat -c '%n permissions=%a'",
        ] {
            let r = run(Command::new("sh").arg("-c").arg(check.replace("{pki}", &pki.display().to_string())));
            assert_eq!(r.code, 0, "{check}: {}", r.stderr);
            let mut lines: Vec<String> =
                r.stdout.lines().map(|l| l.replace(&pki.display().to_string(), "PKI")).collect();
            lines.sort();
            out.extend(lines);
        }
        out
    };
    let want = cis(kubeadm.path());
    assert!(want.iter().any(|l| l == "PKI/apiserver.key permissions=600"), "{want:?}");
    assert!(want.iter().any(|l| l == "PKI/etcd/server.crt permissions=644"), "{want:?}");
    assert_eq!(cis(ours.path()), want, "a tree kubepki made and rotated");
    assert_eq!(cis(converted.path()), want, "a kubeadm tree kubepki rotated");
    // The kubeconfig dir holds kubeadm's five files, the cert dir and kubeadm's tmp (kubepki's
    // state and backups), nothing else; every one a regular file.
    for dir in [ours.path(), converted.path()] {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "admin.conf",
                "controller-manager.conf",
                "kubelet.conf",
                "pki",
                "scheduler.conf",
                "super-admin.conf",
                "tmp"
            ]
        );
        let links = run(Command::new("find").arg(dir).args(["-type", "l"]));
        assert_eq!(links.stdout, "", "no links anywhere");
    }
}

/// A real etcd serving with the kubeadm-made fixture's own certificates, client-certificate
/// authentication on, keeps answering etcdctl while kubepki rotates every etcd certificate
/// under it (etcd reads its pair on each handshake: no restart).
#[test]
fn etcd_keeps_serving_while_a_kubeadm_tree_is_rotated() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({}));
    let pki = d.join("pki");
    let etcd = Etcd::start(&EtcdConfig { name: "cp1", pki: &pki, client_cert_auth: true });
    let etcdctl = |args: &[&str]| run(etcdctl_healthcheck(&etcd.client_url, &pki).args(args));
    assert_eq!(etcdctl(&["put", "k", "before"]).code, 0, "{}", etcd.log());
    let served_before = cert(&pki.join("etcd/server.crt")).serial;
    for round in 0..3 {
        let r = rotate(d.path(), &["--force", "etcd-server,etcd-peer,etcd-healthcheck-client,apiserver-etcd-client"]);
        assert_eq!(r.code, 0, "round {round}: {}", r.stderr);
        let put = etcdctl(&["put", "k", &format!("round {round}")]);
        assert_eq!(put.code, 0, "round {round}: {}\n{}", put.stderr, etcd.log());
    }
    let get = etcdctl(&["get", "k", "--print-value-only"]);
    assert_eq!(get.stdout.trim(), "round 2");
    assert_ne!(cert(&pki.join("etcd/server.crt")).serial, served_before);
    // Without a client certificate, etcd still refuses.
    let anonymous = run(Command::new("etcdctl")
        .arg("--endpoints")
        .arg(&etcd.client_url)
        .arg("--cacert")
        .arg(pki.join("etcd/ca.crt"))
        .args(["--dial-timeout", "3s", "--command-timeout", "3s", "get", "k"]));
    assert_ne!(anonymous.code, 0);
}

/// A deleted leaf is seen: `rotate` names it with its fix (exit 1) and renews the rest; `--force`
/// issues it from kubeadm's profile; a rollback of that run removes it again.
#[test]
fn a_missing_leaf_is_named_and_force_issues_it() {
    let d = TestDir::new();
    kubeadm_tree(
        d.path(),
        json!({"missing": ["front-proxy-client", "etcd-server"], "expired": ["apiserver-etcd-client"]}),
    );
    let pki = d.join("pki");
    let (r, v) = rotate_json(d.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let missing: Vec<(&str, &str)> = v["unrenewable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap(), u["problem"].as_str().unwrap()))
        .collect();
    assert_eq!(missing, [("front-proxy-client", "missing"), ("etcd-server", "missing")], "{v:#}");
    assert_eq!(v["result"]["renewed"][0]["name"], "apiserver-etcd-client", "the rest is renewed");
    assert!(!pki.join("front-proxy-client.crt").exists());

    // A failed hook rolls the issue back: the new files go again.
    let hash = pki_hash(d.path());
    let r = rotate(d.path(), &["--force", "front-proxy-client", "--exec", "exit 3"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!pki.join("front-proxy-client.crt").exists() && !pki.join("front-proxy-client.key").exists());
    assert_eq!(pki_hash(d.path()), hash);

    // Its profile needs nothing of the node: issued from kubeadm's profile, with the CA's
    // algorithm; etcd-server needs the node, named by flags.
    let r = rotate(d.path(), &["--force", "front-proxy-client"]);
    assert_eq!(r.code, 1, "etcd-server is still missing: {}", r.stderr);
    let c = cert(&pki.join("front-proxy-client.crt"));
    assert_eq!(c.subject.to_string(), "CN=front-proxy-client");
    assert_eq!(c.public_key.to_string(), "RSA-2048");
    assert_eq!(kubepki_pki::fsio::mode_of(&pki.join("front-proxy-client.key")).unwrap(), 0o600);
    openssl_verify(&pki.join("front-proxy-ca.crt"), &pki.join("front-proxy-client.crt")).unwrap();
    let r = rotate(
        d.path(),
        &["--force", "etcd-server", "--node-name", "cp1", "--apiserver-advertise-address", "10.0.0.11"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sans(&pki.join("etcd/server.crt")),
        ["DNS:cp1", "DNS:localhost", "IP:10.0.0.11", "IP:127.0.0.1", "IP:::1"]
    );
    assert_eq!(rotate(d.path(), &["--dry-run"]).code, 0, "nothing missing any more");
}

/// A missing client leaf whose kubeadm profile names no node (its CN is fixed, it has no SAN)
/// is issued with no node flags; one that names the node is refused without them.
#[test]
fn a_missing_client_leaf_needs_no_node_flags() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"missing": ["apiserver-kubelet-client", "etcd-peer"]}));
    let pki = d.join("pki");
    let r = rotate(d.path(), &["--force", "apiserver-kubelet-client"]);
    assert_eq!(r.code, 1, "etcd-peer is still missing: {}", r.stderr);
    let c = cert(&pki.join("apiserver-kubelet-client.crt"));
    assert_eq!(c.subject.to_string(), "O=kubeadm:cluster-admins, CN=kube-apiserver-kubelet-client");
    openssl_verify(&pki.join("ca.crt"), &pki.join("apiserver-kubelet-client.crt")).unwrap();
    let hash = pki_hash(d.path());
    let r = rotate(d.path(), &["--force", "etcd-peer"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--node-name"), "{}", r.stderr);
    assert_eq!(pki_hash(d.path()), hash);
}
