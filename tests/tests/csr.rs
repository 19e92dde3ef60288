//! `kubepki csr`: kubeadm's external-CA mode on a tree kubepki did not make. The tree is written
//! by pyca/cryptography (Debian's /usr/bin/python3) as `kubeadm init` lays it out, the CSRs are
//! checked with `openssl req -verify` and signed with `openssl x509 -req` as the external CA
//! would, and the installed leaves are held to `openssl verify -x509_strict`, `kubepki check`
//! and kubectl.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::common::*;

/// The node of the fixture: neither this host's name nor its address.
const NODE: &str = "cp-test-1";
const ADDRESS: &str = "10.11.12.13";

/// Signs a CSR with a CA key as an external CA would, with validity in the past or future:
/// argv: csr, CA certificate, CA key, output, days from now of NotBefore, of NotAfter.
const SIGN_AT: &str = r#"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
csr_path, ca_crt, ca_key, out, nb, na = sys.argv[1:7]
csr = x509.load_pem_x509_csr(open(csr_path, "rb").read())
ca = x509.load_pem_x509_certificate(open(ca_crt, "rb").read())
key = serialization.load_pem_private_key(open(ca_key, "rb").read(), None)
now = datetime.datetime.now(datetime.timezone.utc)
b = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject).public_key(csr.public_key())
     .serial_number(x509.random_serial_number())
     .not_valid_before(now + datetime.timedelta(days=int(nb))).not_valid_after(now + datetime.timedelta(days=int(na))))
for ext in csr.extensions:
    b = b.add_extension(ext.value, critical=ext.critical)
open(out, "wb").write(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
"#;

/// A kubeadm tree at `<root>/pki` and `<root>`; the external CAs' keys at `<ext>/<base>.key`.
struct Tree {
    root: TestDir,
    ext: TestDir,
}

impl Tree {
    /// kubeadm's tree for node `cp-test-1` at 10.11.12.13 (its API server certificate also
    /// carries `legacy.example.com`), made by the shared fixture with `options` added; then put
    /// in kubeadm's external-CA mode: the cluster CA's and the front-proxy CA's keys move out of
    /// the cert dir to the "external CA". kubepki holds the etcd CA's key.
    fn new(options: Value) -> Self {
        let (root, ext) = (TestDir::new(), TestDir::new());
        let mut all = json!({"node_name": NODE, "address": ADDRESS, "cert_sans": ["legacy.example.com"]});
        all.as_object_mut().unwrap().extend(options.as_object().unwrap().clone());
        kubeadm_tree(root.path(), all);
        for base in ["ca", "front-proxy-ca"] {
            std::fs::rename(root.join(&format!("pki/{base}.key")), ext.join(&format!("{base}.key"))).unwrap();
        }
        assert!(root.join("pki/etcd/ca.key").exists());
        Self { root, ext }
    }

    /// A hash of the cert dir (every entry, mode and content) and the five kubeconfigs: what
    /// kubeadm reads (kubepki's state dir and backups under `<root>/tmp` aside).
    fn kubeadm_files(&self) -> String {
        let mut parts = vec![tree_hash(&self.pki())];
        for conf in ["admin.conf", "super-admin.conf", "kubelet.conf", "controller-manager.conf", "scheduler.conf"] {
            let path = self.root.join(conf);
            let mode = if path.exists() { mode(&path) } else { 0 };
            parts.push(format!("{conf}:{mode:o}:{}", sha256_of_file(&path)));
        }
        parts.join("|")
    }

    fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }

    fn csr(&self, action: &str, extra: &[&str]) -> Run {
        run(kubepki()
            .args(["csr", action, "--cert-dir"])
            .arg(self.pki())
            .arg("--kubeconfig-dir")
            .arg(self.root.path())
            .args(extra))
    }

    fn generate(&self, out: &Path, extra: &[&str]) -> Run {
        let mut args = vec!["--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.csr("generate", &args)
    }

    fn install(&self, from: &Path, extra: &[&str]) -> Run {
        let mut args = vec!["--from", from.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.csr("install", &args)
    }

    /// The CA (certificate, external key) that signs `stem`'s leaf.
    fn ca_of(&self, stem: &str) -> (PathBuf, PathBuf) {
        let base = if stem == "front-proxy-client" { "front-proxy-ca" } else { "ca" };
        (self.pki().join(format!("{base}.crt")), self.ext.join(&format!("{base}.key")))
    }

    /// `openssl x509 -req` over `<out>/<stem>.csr` into `<out>/<stem>.crt`, copying the requested
    /// extensions, as an external CA does.
    fn sign(&self, out: &Path, stem: &str, extra: &[&str]) {
        let (ca, key) = self.ca_of(stem);
        let mut args = vec!["-copy_extensions", "copyall"];
        args.extend_from_slice(extra);
        sign_with(&out.join(format!("{stem}.csr")), &ca, &key, &out.join(format!("{stem}.crt")), &args);
    }
}

/// `openssl x509 -req -days 365` of `csr` with a CA, and `extra`.
pub(crate) fn sign_with(csr: &Path, ca: &Path, key: &Path, out: &Path, extra: &[&str]) {
    let r = run(Command::new("openssl")
        .args(["x509", "-req", "-days", "365", "-in"])
        .arg(csr)
        .arg("-CA")
        .arg(ca)
        .arg("-CAkey")
        .arg(key)
        .arg("-out")
        .arg(out)
        .args(extra));
    assert_eq!(r.code, 0, "openssl x509 -req {}: {}", csr.display(), r.stderr);
}

/// The stems `csr generate` writes for the fixture's external CAs.
const EXTERNAL: [&str; 8] = [
    "apiserver",
    "apiserver-kubelet-client",
    "front-proxy-client",
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
    "controller-manager.conf",
    "scheduler.conf",
];

fn sha256_of_file(path: &Path) -> String {
    let body = std::fs::read(path).unwrap_or_default();
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Every entry under `dir`, relative, with its type (`d` directory, `f` regular file, `?` else).
fn entries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            let kind = if t.is_dir() {
                "d"
            } else if t.is_file() {
                "f"
            } else {
                "?"
            };
            out.push(format!("{kind} {}", e.path().strip_prefix(dir).unwrap().display()));
            if t.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    assert!(out.iter().all(|e| !e.starts_with('?')), "not kubeadm's layout: {out:?}");
    out
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn openssl(args: &[&str], file: &Path) -> Run {
    run(Command::new("openssl").args(args).arg(file))
}

/// `openssl req -text` of a CSR, which must verify.
fn csr_text(csr: &Path) -> String {
    let v = openssl(&["req", "-verify", "-noout", "-in"], csr);
    assert!(v.code == 0 && v.stderr.contains("verify OK"), "openssl req -verify {}: {}", csr.display(), v.stderr);
    openssl(&["req", "-noout", "-text", "-in"], csr).ok().stdout
}

fn subject_of(args: &[&str], file: &Path) -> String {
    openssl(args, file).ok().stdout.trim().trim_start_matches("subject=").to_owned()
}

/// The public key of a certificate or key file, as openssl writes it.
fn public_key(args: &[&str], file: &Path) -> String {
    openssl(args, file).ok().stdout
}

#[test]
fn csrs_carry_the_existing_identity_and_signed_certificates_install_in_kubeadm_layout() {
    let t = Tree::new(json!({}));
    let out_dir = TestDir::new();
    let out = out_dir.join("csrs");
    let entries_before = entries(&t.pki());
    let before = t.kubeadm_files();
    let etcd_before = tree_hash(&t.pki().join("etcd"));

    let r = t.generate(&out, &["--apiserver-cert-extra-sans", "new-lb.example.com", "-o", "json"]).ok();
    assert_eq!(t.kubeadm_files(), before, "csr generate changed the cert dir or the kubeconfigs");
    let report = json(&r);
    let names: Vec<&str> =
        report["generated"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, EXTERNAL);
    let left: Vec<&str> = report["left"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(left, ["etcd-server", "etcd-peer", "etcd-healthcheck-client", "apiserver-etcd-client"]);
    assert!(
        report["generated"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["identityFrom"] == "certificate" && g["algorithm"] == "RSA-2048")
    );
    assert_eq!(mode(&out), 0o700);

    for stem in EXTERNAL {
        let csr = out.join(format!("{stem}.csr"));
        let key = if stem.ends_with(".conf") { out.join(stem) } else { out.join(format!("{stem}.key")) };
        assert_eq!((mode(&csr), mode(&key)), (0o600, 0o600), "{stem}");
        let text = csr_text(&csr);
        // The subject is the existing certificate's, byte for byte as openssl prints it.
        let existing = if stem.ends_with(".conf") {
            let kc = kubepki_pki::Kubeconfig::read_required(&t.root.join(stem)).unwrap();
            let user = kc.current().unwrap().user;
            let Some(kubepki_pki::PemSource::Embedded(pem)) = kc.client_certificate(&user).unwrap() else {
                panic!("{stem}: no embedded certificate")
            };
            let p = out_dir.write(&format!("{stem}.old.crt"), pem);
            subject_of(&["x509", "-noout", "-subject", "-in"], &p)
        } else {
            subject_of(&["x509", "-noout", "-subject", "-in"], &t.pki().join(format!("{stem}.crt")))
        };
        assert_eq!(subject_of(&["req", "-noout", "-subject", "-in"], &csr), existing, "{stem}");
        assert!(text.contains("Digital Signature, Key Encipherment"), "{stem}:\n{text}");
        let eku = if stem == "apiserver" { "TLS Web Server Authentication" } else { "TLS Web Client Authentication" };
        assert!(text.contains(eku), "{stem}:\n{text}");
        assert!(text.contains("CA:FALSE"), "{stem}:\n{text}");
    }
    let apiserver = csr_text(&out.join("apiserver.csr"));
    for san in [
        "DNS:cp-test-1",
        "DNS:kubernetes.default.svc.cluster.local",
        "DNS:legacy.example.com",
        "DNS:new-lb.example.com",
        "IP Address:10.96.0.1",
        "IP Address:10.11.12.13",
    ] {
        assert!(apiserver.contains(san), "{san} missing:\n{apiserver}");
    }
    assert!(!csr_text(&out.join("admin.conf.csr")).contains("Subject Alternative Name"));

    for stem in EXTERNAL {
        t.sign(&out, stem, &[]);
    }
    // The scheduler's certificate comes back as kubeadm documents it: embedded into the
    // partial kubeconfig's client-certificate-data (here by kubectl), with no .crt file.
    std::fs::rename(out.join("scheduler.conf.crt"), out_dir.join("scheduler.conf.crt")).unwrap();
    run(Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(out.join("scheduler.conf"))
        .args(["config", "set-credentials", "system:kube-scheduler", "--embed-certs=true", "--client-certificate"])
        .arg(out_dir.join("scheduler.conf.crt")))
    .ok();
    let audit = out_dir.join("audit.jsonl");
    let r = t.install(&out, &["--audit-log", audit.to_str().unwrap(), "-o", "json"]).ok();
    // No output shows a line of a new key.
    let generated = t.generate(&out_dir.join("again"), &[]).ok();
    for key in ["apiserver.key", "front-proxy-client.key"] {
        for dir in [&out, &out_dir.join("again")] {
            let pem = std::fs::read_to_string(dir.join(key)).unwrap();
            let line = pem.lines().nth(3).unwrap();
            for output in [&r.stdout, &r.stderr, &generated.stdout, &generated.stderr] {
                assert!(!output.contains(line), "{key}: key material in the output");
            }
        }
    }
    let report = json(&r);
    assert_eq!(report["installed"].as_array().unwrap().len(), 8, "{}", r.stdout);
    // What reads what was installed (this tree has no manifests: kubeadm's wiring), in restart order.
    let restart: Vec<(&str, &str)> = report["restart"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["component"].as_str().unwrap(), r["source"].as_str().unwrap()))
        .collect();
    let components = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"];
    assert_eq!(restart, components.map(|c| (c, "kubeadm-default")), "{}", r.stdout);

    for stem in ["apiserver", "apiserver-kubelet-client", "front-proxy-client"] {
        let (ca, _) = t.ca_of(stem);
        let crt = t.pki().join(format!("{stem}.crt"));
        let key = t.pki().join(format!("{stem}.key"));
        openssl_verify(&ca, &crt).unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert_eq!((mode(&crt), mode(&key)), (0o644, 0o600), "{stem}");
        let signed = out.join(format!("{stem}.crt"));
        assert_eq!(
            public_key(&["x509", "-noout", "-fingerprint", "-sha256", "-in"], &crt),
            public_key(&["x509", "-noout", "-fingerprint", "-sha256", "-in"], &signed),
            "{stem}: not the certificate the CA signed"
        );
        assert_eq!(
            public_key(&["x509", "-noout", "-pubkey", "-in"], &crt),
            public_key(&["pkey", "-pubout", "-in"], &key),
            "{stem}: the installed key is not the certificate's"
        );
    }
    assert_eq!(tree_hash(&t.pki().join("etcd")), etcd_before, "the etcd CA's leaves were touched");
    // kubeadm's layout: the same names as before, regular files only.
    assert_eq!(entries(&t.pki()), entries_before);

    for conf in ["admin.conf", "super-admin.conf", "kubelet.conf", "controller-manager.conf", "scheduler.conf"] {
        let path = t.root.join(conf);
        assert_eq!(mode(&path), 0o600, "{conf}");
        let view =
            run(Command::new("kubectl").arg("--kubeconfig").arg(&path).args(["config", "view", "--raw", "-o", "json"]))
                .ok();
        let view: Value = serde_json::from_str(&view.stdout).unwrap();
        assert_eq!(view["clusters"][0]["cluster"]["server"], "https://10.11.12.13:6443", "{conf}");
        let cert = view["users"][0]["user"]["client-certificate-data"].as_str().unwrap();
        let signed = std::fs::read_to_string(out.join(format!("{conf}.crt")))
            .or_else(|_| std::fs::read_to_string(out_dir.join(&format!("{conf}.crt"))))
            .unwrap();
        let pem = String::from_utf8(base64_decode(cert)).unwrap();
        let got = kubepki_pki::Certificate::from_pem_bundle(pem.as_bytes(), conf).unwrap().remove(0);
        let want = kubepki_pki::Certificate::from_pem_bundle(signed.as_bytes(), conf).unwrap().remove(0);
        assert_eq!(got, want, "{conf}: not the certificate the CA signed");
        let p = out_dir.write(&format!("{conf}.installed.crt"), &pem);
        openssl_verify(&t.pki().join("ca.crt"), &p).unwrap_or_else(|e| panic!("{conf}: {e}"));
    }

    let check = run(kubepki()
        .arg("check")
        .arg("--cert-dir")
        .arg(t.pki())
        .arg("--kubeconfig-dir")
        .arg(t.root.path())
        .args(["-o", "json"]));
    assert_eq!(check.code, 0, "kubepki check after install:\n{}\n{}", check.stdout, check.stderr);
    let log = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(log.lines().count(), 8);
    assert!(log.lines().all(|l| l.contains("\"action\":\"install\"") && !l.contains("PRIVATE")), "{log}");
    let backups: Vec<_> = std::fs::read_dir(t.root.join("tmp"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("kubepki-backup-"))
        .collect();
    assert_eq!(backups.len(), 1, "one backup of what was replaced");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Each bad certificate is refused with exit 2 and the file named; nothing is installed, not
/// even the good certificates beside it.
#[test]
fn a_certificate_that_fails_a_check_installs_nothing() {
    let t = Tree::new(json!({}));
    let out_dir = TestDir::new();
    let out = out_dir.join("csrs");
    t.generate(&out, &[]).ok();
    for stem in EXTERNAL {
        t.sign(&out, stem, &[]);
    }
    let good = std::fs::read(out.join("apiserver.crt")).unwrap();
    let before = tree_hash(t.root.path());
    let apiserver_crt = out.join("apiserver.crt");
    let bad = |make: &dyn Fn(), want: &str| {
        make();
        let r = t.install(&out, &[]).expect_code(2);
        assert!(
            r.stderr.contains(&format!("{}: ", apiserver_crt.display()))
                && r.stderr.contains(want)
                && r.stderr.contains("nothing was installed"),
            "want {want:?}:\n{}",
            r.stderr
        );
        assert_eq!(tree_hash(t.root.path()), before, "a refused install changed the tree ({want})");
        std::fs::write(&apiserver_crt, &good).unwrap();
    };

    // Signed by another CA with the same name: the issuer matches, the signature does not.
    let other = TestDir::new();
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kubernetes", "-days", "30", "-keyout"])
        .arg(other.join("ca.key"))
        .arg("-out")
        .arg(other.join("ca.crt")))
    .ok();
    let (other_crt, other_key) = (other.join("ca.crt"), other.join("ca.key"));
    let csr = out.join("apiserver.csr");
    bad(
        &|| sign_with(&csr, &other_crt, &other_key, &apiserver_crt, &["-copy_extensions", "copyall"]),
        "not signed by ca",
    );

    // The API server's identity on the key of another CSR.
    let pubkey = out_dir.join("front-proxy-client.pub");
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(out.join("front-proxy-client.key"))
        .arg("-out")
        .arg(&pubkey))
    .ok();
    bad(&|| t.sign(&out, "apiserver", &["-force_pubkey", pubkey.to_str().unwrap()]), "its public key is not that of");

    // A SAN of the CSR left out by the CA.
    let ext = out_dir.write(
        "ext.cnf",
        "[v3]\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n\
         subjectAltName=DNS:cp-test-1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,\
         DNS:kubernetes.default.svc.cluster.local,DNS:legacy.example.com,IP:10.96.0.1\n",
    );
    let (ca, ca_key) = t.ca_of("apiserver");
    let ext = ext.to_str().unwrap();
    bad(
        &|| sign_with(&csr, &ca, &ca_key, &apiserver_crt, &["-extensions", "v3", "-extfile", ext]),
        "it lacks the SANs IP:10.11.12.13",
    );

    // Expired yesterday (signed by the right CA, with the requested extensions).
    bad(
        &|| {
            let (ca, key) = t.ca_of("apiserver");
            let r = run(Command::new("/usr/bin/python3")
                .arg("-c")
                .arg(SIGN_AT)
                .arg(out.join("apiserver.csr"))
                .arg(ca)
                .arg(key)
                .arg(&apiserver_crt)
                .args(["-2", "-1"]));
            assert_eq!(r.code, 0, "{}", r.stderr);
        },
        "expired at",
    );

    // With every certificate good, all of them install.
    t.install(&out, &[]).ok();
    assert_ne!(tree_hash(t.root.path()), before);
}

#[test]
fn an_unreadable_or_missing_leaf_takes_kubeadm_profile_and_the_node_is_never_this_host() {
    // A control-plane node that joined has no super-admin.conf.
    let t = Tree::new(json!({
        "broken": {"apiserver": "garbage"},
        "missing": ["front-proxy-client", "super-admin.conf"],
    }));
    let out_dir = TestDir::new();
    let before = t.kubeadm_files();

    let out = out_dir.join("a");
    let r = t.generate(&out, &["apiserver"]).expect_code(2);
    assert!(r.stderr.contains("apiserver.crt") && r.stderr.contains("needs --node-name"), "{}", r.stderr);
    let r = t.generate(&out, &["apiserver", "--node-name", NODE]).expect_code(2);
    assert!(r.stderr.contains("--apiserver-advertise-address"), "{}", r.stderr);
    assert!(!out.exists(), "a refused generate wrote {}", out.display());
    assert_eq!(t.kubeadm_files(), before);

    let r = t
        .generate(
            &out,
            &[
                "--node-name",
                NODE,
                "--apiserver-advertise-address",
                ADDRESS,
                "--apiserver-cert-extra-sans",
                "lb.example.com",
                "-o",
                "json",
            ],
        )
        .ok();
    let report = json(&r);
    let from = |name: &str| {
        report["generated"].as_array().unwrap().iter().find(|g| g["name"] == name).unwrap()["identityFrom"].clone()
    };
    assert_eq!(from("apiserver"), "profile");
    assert_eq!(from("front-proxy-client"), "profile");
    assert_eq!(from("apiserver-kubelet-client"), "certificate");
    assert!(report["left"].as_array().unwrap().iter().any(|l| l["name"] == "super-admin.conf"), "{}", r.stdout);
    let text = csr_text(&out.join("apiserver.csr"));
    for san in [
        "DNS:cp-test-1",
        "DNS:kubernetes",
        "DNS:kubernetes.default.svc.cluster.local",
        "DNS:lb.example.com",
        "IP Address:10.96.0.1",
        "IP Address:10.11.12.13",
    ] {
        assert!(text.contains(san), "{san} missing:\n{text}");
    }
    assert!(!text.contains("legacy.example.com"), "the unreadable certificate's SANs cannot be known:\n{text}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_lowercase();
    assert!(host == NODE || !text.contains(&format!("DNS:{host}")), "this host's name is in the CSR:\n{text}");
    assert_eq!(
        subject_of(&["req", "-noout", "-subject", "-in"], &out.join("front-proxy-client.csr")),
        "CN = front-proxy-client"
    );
    assert_eq!(t.kubeadm_files(), before);

    // A kubeconfig that does not exist, named: its server needs an address or an endpoint.
    let conf_out = out_dir.join("b");
    let r = t.generate(&conf_out, &["super-admin.conf"]).expect_code(2);
    assert!(r.stderr.contains("super-admin.conf") && r.stderr.contains("--control-plane-endpoint"), "{}", r.stderr);
    t.generate(&conf_out, &["super-admin.conf", "--control-plane-endpoint", "lb.example.com:6443"]).ok();
    assert_eq!(
        subject_of(&["req", "-noout", "-subject", "-in"], &conf_out.join("super-admin.conf.csr")),
        "O = system:masters, CN = kubernetes-super-admin"
    );

    // Signed, the missing and unreadable leaves are installed in kubeadm's layout.
    for stem in EXTERNAL.iter().filter(|s| **s != "super-admin.conf") {
        t.sign(&out, stem, &[]);
    }
    t.sign(&conf_out, "super-admin.conf", &[]);
    t.install(&out, &[]).ok();
    t.install(&conf_out, &[]).ok();
    for stem in ["apiserver", "front-proxy-client"] {
        let (ca, _) = t.ca_of(stem);
        openssl_verify(&ca, &t.pki().join(format!("{stem}.crt"))).unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert_eq!(mode(&t.pki().join(format!("{stem}.key"))), 0o600);
    }
    let conf = t.root.join("super-admin.conf");
    assert_eq!(mode(&conf), 0o600);
    let view =
        run(Command::new("kubectl").arg("--kubeconfig").arg(&conf).args(["config", "view", "--raw", "-o", "json"]))
            .ok();
    let view: Value = serde_json::from_str(&view.stdout).unwrap();
    assert_eq!(view["clusters"][0]["cluster"]["server"], "https://lb.example.com:6443");
    assert_eq!(view["current-context"], "kubernetes-super-admin@kubernetes");
    let ca_data = String::from_utf8(base64_decode(
        view["clusters"][0]["cluster"]["certificate-authority-data"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(ca_data, std::fs::read_to_string(t.pki().join("ca.crt")).unwrap());
}

#[test]
fn generate_never_overwrites_and_says_what_kubepki_can_renew_itself() {
    let t = Tree::new(json!({}));
    let out_dir = TestDir::new();
    let out = out_dir.join("csrs");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("apiserver.key"), "an earlier key\n").unwrap();
    let r = t.generate(&out, &[]).expect_code(2);
    assert!(r.stderr.contains(&out.display().to_string()) && r.stderr.contains("not empty"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(out.join("apiserver.key")).unwrap(), "an earlier key\n");

    // An empty directory is used; a leaf of a CA kubepki holds is written only when named.
    std::fs::remove_file(out.join("apiserver.key")).unwrap();
    let r = t.generate(&out, &["etcd-server", "admin.conf", "-o", "json"]).ok();
    let report = json(&r);
    assert_eq!(report["generated"].as_array().unwrap().len(), 2);
    assert!(report["warnings"][0].as_str().unwrap().contains("kubepki rotate --force etcd-server"), "{}", r.stdout);
    assert!(out.join("etcd/server.key").exists() && out.join("etcd/server.csr").exists());
    assert!(
        csr_text(&out.join("etcd/server.csr")).contains("TLS Web Server Authentication, TLS Web Client Authentication")
    );
    let r = t.generate(&out_dir.join("x"), &["no-such-leaf"]).expect_code(2);
    assert!(r.stderr.contains("no-such-leaf") && r.stderr.contains("apiserver-kubelet-client"), "{}", r.stderr);
}
