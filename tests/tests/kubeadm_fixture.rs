//! The independent kubeadm fixture (`tests/fixtures/kubeadm_tree.py`) held to kubeadm: every
//! leaf verifies against its CA with `openssl verify -x509_strict`, kubectl parses each
//! kubeconfig, `kubepki check -o kubeadm-json` lists what `kubeadm certs check-expiration`
//! lists, and kubepki's own `init` writes the same subjects, SANs, usages and extensions for the
//! same node — two independent writers agreeing with kubeadm's reference.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kubepki_tests::kubeadm_fixture::{
    KUBEADM_CAS, KUBEADM_CHECK_EXPIRATION, KUBEADM_KUBECONFIGS, KUBEADM_LEAVES, Shape, first_certificate_der, shape,
};
use serde_json::{Value, json};

use crate::common::*;

const KU_OID: &str = "2.5.29.15";
const EKU_OID: &str = "2.5.29.37";
const BC_OID: &str = "2.5.29.19";
const SKI_OID: &str = "2.5.29.14";
const AKI_OID: &str = "2.5.29.35";
const SAN_OID: &str = "2.5.29.17";

fn pki_path(dir: &Path, base: &str, ext: &str) -> PathBuf {
    dir.join("pki").join(format!("{base}.{ext}"))
}

fn ca_base(ca: &str) -> &'static str {
    KUBEADM_CAS.iter().find(|(n, _)| *n == ca).unwrap().1
}

/// `kubectl config view --raw -o json` of a kubeconfig: kubectl (client-go) must parse it.
fn kubectl_view(conf: &Path) -> Value {
    let r = run(Command::new("kubectl").arg("--kubeconfig").arg(conf).args(["config", "view", "--raw", "-o", "json"]));
    assert_eq!(r.code, 0, "kubectl could not read {}:\n{}", conf.display(), r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

/// A kubeconfig as kubectl reads it: (cluster name, server, context name, user name, the
/// client certificate's DER, its CA data's DER).
struct Conf {
    cluster: String,
    server: String,
    context: String,
    user: String,
    client_der: Vec<u8>,
    client_pem: Vec<u8>,
    ca_der: Vec<u8>,
}

fn conf(path: &Path) -> Conf {
    let v = kubectl_view(path);
    let one = |list: &str| {
        let a = v[list].as_array().unwrap();
        assert_eq!(a.len(), 1, "{}: one {list} entry: {v:#}", path.display());
        a[0].clone()
    };
    let (cluster, context, user) = (one("clusters"), one("contexts"), one("users"));
    assert_eq!(v["current-context"], context["name"]);
    assert_eq!(context["context"]["cluster"], cluster["name"]);
    assert_eq!(context["context"]["user"], user["name"]);
    let data = |v: &Value| STANDARD.decode(v.as_str().unwrap()).unwrap();
    let client_pem = data(&user["user"]["client-certificate-data"]);
    Conf {
        cluster: cluster["name"].as_str().unwrap().to_owned(),
        server: cluster["cluster"]["server"].as_str().unwrap().to_owned(),
        context: context["name"].as_str().unwrap().to_owned(),
        user: user["name"].as_str().unwrap().to_owned(),
        client_der: first_certificate_der(&client_pem),
        ca_der: first_certificate_der(&data(&cluster["cluster"]["certificate-authority-data"])),
        client_pem,
    }
}

/// Every visible file under `dir` (links followed, dot-named entries skipped) with its mode.
fn modes(dir: &Path) -> BTreeMap<String, u32> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, u32>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            // kubeadm's own tmp/ holds kubepki's state (the lock) and backups, not PKI.
            if e.file_name().to_string_lossy().starts_with('.') || (dir == root && e.file_name() == "tmp") {
                continue;
            }
            let meta = std::fs::metadata(e.path()).unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            if meta.is_dir() {
                out.insert(format!("{rel}/"), meta.permissions().mode() & 0o7777);
                walk(root, &e.path(), out);
            } else {
                out.insert(rel, meta.permissions().mode() & 0o7777);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn pem_label(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().next().unwrap().trim_start_matches("-----BEGIN ").trim_end_matches("-----").to_owned()
}

#[test]
fn every_fixture_leaf_verifies_against_its_ca_with_kubeadms_files_modes_and_fields() {
    let d = TestDir::new();
    let made = kubeadm_tree(d.path(), json!({}));
    // kubeadm's files and modes, nothing else.
    let mut want: BTreeMap<String, u32> = BTreeMap::from([("pki/".into(), 0o755), ("pki/etcd/".into(), 0o755)]);
    for base in KUBEADM_CAS.iter().map(|c| c.1).chain(KUBEADM_LEAVES.iter().map(|l| l.1)) {
        want.insert(format!("pki/{base}.crt"), 0o644);
        want.insert(format!("pki/{base}.key"), 0o600);
    }
    want.extend([("pki/sa.key".into(), 0o600), ("pki/sa.pub".into(), 0o600)]);
    want.extend(KUBEADM_KUBECONFIGS.map(|k| (k.to_owned(), 0o600)));
    assert_eq!(modes(d.path()), want);
    for (rel, mode) in &want {
        if rel.ends_with(".key") {
            assert_eq!(pem_label(&d.join(rel)), "RSA PRIVATE KEY", "{rel} is PKCS#1");
        } else if rel.ends_with(".crt") {
            assert_eq!(pem_label(&d.join(rel)), "CERTIFICATE", "{rel}");
            assert_eq!(*mode, 0o644);
        }
    }
    assert_eq!(pem_label(&d.join("pki/sa.pub")), "PUBLIC KEY");

    let t = made["time"].as_i64().unwrap();
    let span = |name: &str| {
        let c = &made["certificates"][name];
        (c["notBefore"].as_i64().unwrap() - t, c["notAfter"].as_i64().unwrap() - t)
    };
    for (ca, base) in KUBEADM_CAS {
        let path = pki_path(d.path(), base, "crt");
        openssl_verify(&path, &path).unwrap_or_else(|e| panic!("{ca}: {e}"));
        let s = shape(&std::fs::read(&path).map(|p| first_certificate_der(&p)).unwrap());
        assert_eq!(s.extensions.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), [KU_OID, BC_OID, SKI_OID, SAN_OID]);
        assert_eq!(s.basic_constraints, Some((true, None)));
        assert_eq!(s.key_usage.as_deref(), Some("Digital Signature, Key Encipherment, Key Cert Sign"));
        assert_eq!(s.key, "RSA-2048");
        assert_eq!(span(ca), (-300, 87_600 * 3600), "{ca}: NotBefore T - 5m, NotAfter T + 87600h");
    }
    for (name, base, ca) in KUBEADM_LEAVES {
        let path = pki_path(d.path(), base, "crt");
        let s = shape(&first_certificate_der(&std::fs::read(&path).unwrap()));
        let ca_file = pki_path(d.path(), ca_base(ca), "crt");
        openssl_verify(&ca_file, &path).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (eku, purpose) in [("serverAuth", "sslserver"), ("clientAuth", "sslclient")] {
            if s.ext_key_usage.iter().any(|e| e == eku) {
                openssl_verify_purpose(&ca_file, &path, Some(purpose)).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
        // Go's extension order; an AKI and no SKI on leaves; a SAN only with names.
        let mut order = vec![KU_OID, EKU_OID, BC_OID, AKI_OID];
        if !s.sans.is_empty() {
            order.push(SAN_OID);
        }
        assert_eq!(s.extensions.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), order, "{name}");
        assert_eq!(s.basic_constraints, Some((false, None)), "{name}");
        assert_eq!(s.key_usage.as_deref(), Some("Digital Signature, Key Encipherment"), "{name}");
        assert_eq!(span(name), (-300, 8760 * 3600), "{name}: NotBefore T - 5m, NotAfter T + 8760h");
        assert_eq!(made["certificates"][name]["caName"], ca);
    }
    let leaf = |base: &str| shape(&first_certificate_der(&std::fs::read(pki_path(d.path(), base, "crt")).unwrap()));
    assert_eq!(
        leaf("apiserver").sans,
        [
            "DNS:cp1",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
            "IP:10.96.0.1",
            "IP:10.0.0.11"
        ]
    );
    assert_eq!(leaf("etcd/peer").sans, ["DNS:cp1", "DNS:localhost", "IP:10.0.0.11", "IP:127.0.0.1", "IP:::1"]);
    assert_eq!(leaf("etcd/server").ext_key_usage, ["serverAuth", "clientAuth"]);
    // O before CN, as Go encodes pkix.Name; PrintableString (0x13) for both values.
    let akc = leaf("apiserver-kubelet-client");
    assert_eq!(akc.subject, "O=kubeadm:cluster-admins, CN=kube-apiserver-kubelet-client");
    assert!(akc.subject_der.contains("13166b75626561646d3a636c75737465722d61646d696e73"), "{}", akc.subject_der);

    // Every kubeconfig: kubectl parses it; its client certificate chains to ca.crt, which is
    // its CA data.
    let ca_der = first_certificate_der(&std::fs::read(d.join("pki/ca.crt")).unwrap());
    let users = [
        ("admin.conf", "kubernetes-admin", "O=kubeadm:cluster-admins, CN=kubernetes-admin"),
        ("super-admin.conf", "kubernetes-super-admin", "O=system:masters, CN=kubernetes-super-admin"),
        ("kubelet.conf", "system:node:cp1", "O=system:nodes, CN=system:node:cp1"),
        ("controller-manager.conf", "system:kube-controller-manager", "CN=system:kube-controller-manager"),
        ("scheduler.conf", "system:kube-scheduler", "CN=system:kube-scheduler"),
    ];
    for (file, user, subject) in users {
        let c = conf(&d.join(file));
        assert_eq!((c.cluster.as_str(), c.user.as_str()), ("kubernetes", user), "{file}");
        assert_eq!(c.context, format!("{user}@kubernetes"));
        assert_eq!(c.server, "https://10.0.0.11:6443", "{file}");
        assert_eq!(c.ca_der, ca_der, "{file}");
        let s = shape(&c.client_der);
        assert_eq!((s.subject.as_str(), s.ext_key_usage.as_slice()), (subject, &["clientAuth".to_owned()][..]));
        assert!(s.sans.is_empty() && !s.extensions.iter().any(|e| e.0 == SKI_OID), "{file}: {s:?}");
        let cert = d.write(&format!("extracted/{file}.crt"), &c.client_pem);
        openssl_verify_purpose(&d.join("pki/ca.crt"), &cert, Some("sslclient"))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(span(file), (-300, 8760 * 3600), "{file}");
    }
}

/// `kubepki check -o kubeadm-json` on the fixture: (exit code, certificates, CAs) as
/// name → (caName, externallyManaged, missing).
fn check_kubeadm_json(d: &Path) -> (i32, Value) {
    let r = run(kubepki()
        .args(["check", "--no-defaults", "-o", "kubeadm-json", "--cert-dir"])
        .arg(d.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(d)
        .env("HOME", d));
    let v = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}\n{}", r.stdout, r.stderr));
    (r.code, v)
}

fn rows(list: &Value) -> Vec<(String, String, bool, bool)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["caName"].as_str().unwrap_or("").to_owned(),
                c["externallyManaged"].as_bool().unwrap(),
                c["missing"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn kubepki_check_lists_every_certificate_kubeadm_lists_on_the_fixture() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"node_name": "cp7", "address": "192.0.2.7"}));
    let (code, v) = check_kubeadm_json(d.path());
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        rows(&v["certificates"]),
        KUBEADM_CHECK_EXPIRATION.map(|(n, ca)| (n.to_owned(), ca.to_owned(), false, false)).to_vec()
    );
    assert_eq!(
        rows(&v["certificateAuthorities"]),
        ["ca", "etcd-ca", "front-proxy-ca"].map(|n| (n.to_owned(), String::new(), false, false)).to_vec()
    );
    let text = run(kubepki()
        .args(["check", "--no-defaults", "-o", "kubeadm", "--cert-dir"])
        .arg(d.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(d.path())
        .env("HOME", d.path()))
    .ok()
    .stdout;
    for (name, ca) in KUBEADM_CHECK_EXPIRATION {
        let row = text.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("{text}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[cells.len() - 3..], ["364d", ca, "no"], "{row}");
    }
    assert!(!text.contains("MISSING"), "{text}");

    // External etcd (no etcd CA): kubeadm lists no etcd rows.
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"external_etcd": true, "key": "ecdsa-p256"}));
    assert!(!d.join("pki/etcd").exists() && !d.join("pki/apiserver-etcd-client.crt").exists());
    let (code, v) = check_kubeadm_json(d.path());
    assert_eq!(code, 0, "{v:#}");
    let names: Vec<String> = rows(&v["certificates"]).into_iter().map(|r| r.0).collect();
    let want: Vec<&str> = KUBEADM_CHECK_EXPIRATION.iter().map(|c| c.0).filter(|n| !n.contains("etcd")).collect();
    assert_eq!(names, want);
    assert_eq!(rows(&v["certificateAuthorities"]).len(), 2);

    // External CA (ca.key absent): the CA and what it signs are externally managed.
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"external_ca": true, "key": "ecdsa-p256"}));
    assert!(!d.join("pki/ca.key").exists() && d.join("pki/front-proxy-ca.key").exists());
    let (code, v) = check_kubeadm_json(d.path());
    assert_eq!(code, 0, "{v:#}");
    let external: Vec<String> = rows(&v["certificates"]).into_iter().filter(|r| r.2).map(|r| r.0).collect();
    assert!(external.contains(&"apiserver".to_owned()) && !external.contains(&"front-proxy-client".to_owned()));
    assert_eq!(rows(&v["certificateAuthorities"])[0], ("ca".to_owned(), String::new(), true, false));
}

#[test]
fn the_fixture_and_kubepki_init_agree_on_every_certificate_and_kubeconfig() {
    let node = ["--node-name", "cp2", "--apiserver-advertise-address", "192.0.2.12"];
    let fixture = TestDir::new();
    kubeadm_tree(
        fixture.path(),
        json!({
            "node_name": "cp2", "address": "192.0.2.12", "cluster_name": "prod-eu",
            "control_plane_endpoint": "lb.example.internal:8443", "service_cidr": "10.112.0.0/12",
            "dns_domain": "corp.local", "cert_sans": ["10.0.0.100", "api.example.internal", "192.0.2.12"],
            "etcd_server_sans": ["etcd.example.internal"], "etcd_peer_sans": ["10.1.1.1"],
        }),
    );
    let ours = TestDir::new();
    run(kubepki()
        .arg("init")
        .arg("--cert-dir")
        .arg(ours.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(ours.path())
        .args(node)
        .args(["--cluster-name", "prod-eu", "--control-plane-endpoint", "lb.example.internal:8443"])
        .args(["--service-cidr", "10.112.0.0/12", "--service-dns-domain", "corp.local"])
        .args(["--apiserver-cert-extra-sans", "10.0.0.100,api.example.internal,192.0.2.12"])
        .args(["--etcd-server-cert-extra-sans", "etcd.example.internal", "--etcd-peer-cert-extra-sans", "10.1.1.1"])
        .args(["--encryption-algorithm", "RSA-2048"]))
    .ok();
    assert_eq!(modes(ours.path()), modes(fixture.path()), "the same files with the same modes");

    // Everything kubeadm fixes is the same; only the extensions' order may differ (Go's is
    // keyUsage, extKeyUsage, basicConstraints, SKI, AKI, SAN).
    let same = |what: &str, a: &Shape, b: &Shape| {
        let key = |s: &Shape| {
            (
                s.subject_der.clone(),
                s.issuer.clone(),
                s.sans.clone(),
                s.key_usage.clone(),
                s.ext_key_usage.clone(),
                s.basic_constraints,
                s.extension_set(),
                s.key.clone(),
                s.signature_algorithm.clone(),
            )
        };
        assert_eq!(key(a), key(b), "{what}: fixture {a:#?}\nkubepki {b:#?}");
    };
    let file_shape = |dir: &TestDir, base: &str| {
        shape(&first_certificate_der(&std::fs::read(pki_path(dir.path(), base, "crt")).unwrap()))
    };
    for (name, base) in KUBEADM_CAS.iter().copied().chain(KUBEADM_LEAVES.iter().map(|l| (l.0, l.1))) {
        same(name, &file_shape(&fixture, base), &file_shape(&ours, base));
    }
    assert_eq!(
        file_shape(&fixture, "apiserver").sans,
        [
            "DNS:api.example.internal",
            "DNS:cp2",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.corp.local",
            "DNS:lb.example.internal",
            "IP:10.112.0.1",
            "IP:192.0.2.12",
            "IP:10.0.0.100"
        ]
    );
    for (ours_key, fixture_key) in [("pki/sa.pub", "pki/sa.pub"), ("pki/ca.key", "pki/ca.key")] {
        assert_eq!(pem_label(&ours.join(ours_key)), pem_label(&fixture.join(fixture_key)), "{ours_key}");
    }
    for file in KUBEADM_KUBECONFIGS {
        let (a, b) = (conf(&fixture.join(file)), conf(&ours.join(file)));
        assert_eq!(
            (&a.cluster, &a.server, &a.context, &a.user),
            (&b.cluster, &b.server, &b.context, &b.user),
            "{file}"
        );
        same(file, &shape(&a.client_der), &shape(&b.client_der));
    }
    assert_eq!(conf(&fixture.join("admin.conf")).server, "https://lb.example.internal:8443");
    assert_eq!(conf(&fixture.join("scheduler.conf")).server, "https://192.0.2.12:6443");
}

/// The variants make what they say: ECDSA keys, expired, broken and missing leaves, an
/// external CA, a kubelet.conf pointing at the kubelet's rotated certificate.
#[test]
fn the_fixture_variants_are_what_they_say() {
    let d = TestDir::new();
    let kubelet_dir = d.join("kubelet-pki");
    let made = kubeadm_tree(
        d.path(),
        json!({
            "key": "ecdsa-p256", "leaf_days": 90, "external_ca": ["front-proxy-ca"],
            "expired": ["apiserver", "admin.conf"],
            "broken": {"front-proxy-client": "wrong-key", "apiserver-kubelet-client": "garbage", "etcd-peer": "truncated-key"},
            "missing": ["apiserver-etcd-client", "scheduler.conf"],
            "kubelet_client_current": kubelet_dir,
        }),
    );
    let openssl = |args: &[&str], file: &Path| run(Command::new("openssl").args(args).arg(file));
    let pki = |rel: &str| d.join(&format!("pki/{rel}"));
    assert_eq!(pem_label(&pki("ca.key")), "EC PRIVATE KEY");
    assert!(!pki("front-proxy-ca.key").exists() && pki("front-proxy-ca.crt").exists());
    // Expired: NotAfter 35 days ago; the others live 90 days.
    assert_eq!(openssl(&["x509", "-noout", "-checkend", "0", "-in"], &pki("apiserver.crt")).code, 1);
    let t = made["time"].as_i64().unwrap();
    assert_eq!(made["certificates"]["apiserver"]["notAfter"].as_i64().unwrap() - t, -35 * 86_400);
    assert_eq!(made["certificates"]["admin.conf"]["notAfter"].as_i64().unwrap() - t, -35 * 86_400);
    let hc = pki("etcd/healthcheck-client.crt");
    assert_eq!(openssl(&["x509", "-noout", "-checkend", &(89 * 86_400).to_string(), "-in"], &hc).code, 0);
    assert_eq!(openssl(&["x509", "-noout", "-checkend", &(91 * 86_400).to_string(), "-in"], &hc).code, 1);
    openssl_verify(&pki("ca.crt"), &pki("apiserver.crt")).unwrap_err();
    // Broken: a valid key of another pair, a garbage certificate, a truncated key.
    let pubkey = |args: &[&str], f: &Path| openssl(args, f).ok().stdout;
    let (cert_pub, key_pub) = (
        pubkey(&["x509", "-noout", "-pubkey", "-in"], &pki("front-proxy-client.crt")),
        pubkey(&["pkey", "-pubout", "-in"], &pki("front-proxy-client.key")),
    );
    assert_ne!(cert_pub, key_pub);
    assert_ne!(openssl(&["x509", "-noout", "-in"], &pki("apiserver-kubelet-client.crt")).code, 0);
    openssl(&["pkey", "-noout", "-in"], &pki("apiserver-kubelet-client.key")).ok();
    assert_ne!(openssl(&["pkey", "-noout", "-in"], &pki("etcd/peer.key")).code, 0);
    openssl_verify(&pki("etcd/ca.crt"), &pki("etcd/peer.crt")).unwrap();
    // Missing: neither file, nor the kubeconfig.
    assert!(!pki("apiserver-etcd-client.crt").exists() && !pki("apiserver-etcd-client.key").exists());
    assert!(!d.join("scheduler.conf").exists() && d.join("controller-manager.conf").exists());
    // kubelet.conf points at the kubelet's rotated client certificate, as kubelet-finalize
    // leaves it.
    let current = kubelet_dir.join("kubelet-client-current.pem");
    let v = kubectl_view(&d.join("kubelet.conf"));
    assert_eq!(v["users"][0]["user"]["client-certificate"], current.to_str().unwrap());
    assert_eq!(v["users"][0]["user"]["client-key"], current.to_str().unwrap());
    assert!(std::fs::symlink_metadata(&current).unwrap().file_type().is_symlink());
    openssl_verify_purpose(&pki("ca.crt"), &current, Some("sslclient")).unwrap();
    openssl(&["pkey", "-noout", "-in"], &current).ok();
}
