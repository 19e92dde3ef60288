//! Broken and hostile inputs, table-driven: each gets a message naming the culprit, its
//! documented exit code, and the tree exactly as it was.

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// What a case runs, after `init` made a healthy PKI in `d` (`<d>/pki`, `<d>/*.conf`).
#[derive(Clone, Copy)]
enum Cmd {
    Init,
    Rotate,
    Check,
    Issue,
}

struct Case {
    what: &'static str,
    corrupt: fn(&TestDir),
    cmd: Cmd,
    args: &'static [&'static str],
    code: i32,
    want: &'static str,
}

fn write_mode(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

/// Replaces a versioned file's link by a plain file with `contents`.
fn replace(d: &TestDir, rel: &str, contents: impl AsRef<[u8]>) {
    let p = d.join(rel);
    let _ = std::fs::remove_file(&p);
    std::fs::write(&p, contents).unwrap();
}

fn copy(d: &TestDir, from: &str, to: &str) {
    let data = std::fs::read(d.join(from)).unwrap();
    let mode = kubepki_pki::fsio::mode_of(&d.join(to)).unwrap_or(0o600);
    replace(d, to, data);
    write_mode(&d.join(to), mode);
}

fn openssl(d: &TestDir, args: &[&str]) {
    let r = run(Command::new("openssl").current_dir(d.path()).args(args));
    assert_eq!(r.code, 0, "openssl {args:?}: {}", r.stderr);
}

fn python(d: &TestDir, script: &str) {
    let r = run(Command::new(PYTHON).current_dir(d.path()).arg("-c").arg(script));
    assert_eq!(r.code, 0, "python: {}", r.stderr);
}

const EXPIRED_CA: &str = r#"
import datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "front-proxy-ca")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(days=800)).not_valid_after(now - datetime.timedelta(days=1))
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .add_extension(x509.KeyUsage(True, False, True, False, False, True, False, False, False), critical=True)
    .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    .sign(key, hashes.SHA256()))
import os
for f in ["pki/front-proxy-ca.crt", "pki/front-proxy-ca.key", "pki/front-proxy-client.crt", "pki/front-proxy-client.key"]:
    os.remove(f)
open("pki/front-proxy-ca.crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open("pki/front-proxy-ca.key", "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
os.chmod("pki/front-proxy-ca.key", 0o600)
"#;

const KUBEADM_HEAD: &str = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n";

fn cases() -> Vec<Case> {
    use Cmd::*;
    vec![
        // The cert dir.
        Case {
            what: "garbage CA key",
            corrupt: |d| replace(d, "pki/ca.key", "not a key"),
            cmd: Init,
            args: &[],
            code: 2,
            want: "pki/ca.key: no PEM private key",
        },
        Case {
            what: "empty CA key",
            corrupt: |d| replace(d, "pki/ca.key", ""),
            cmd: Init,
            args: &[],
            code: 2,
            want: "pki/ca.key: no PEM private key",
        },
        Case {
            what: "truncated CA key",
            corrupt: |d| {
                let k = d.read("pki/ca.key");
                replace(d, "pki/ca.key", &k[..k.len() / 2]);
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "pki/ca.key: line 1",
        },
        Case {
            what: "a CA that is not a CA",
            corrupt: |d| copy(d, "pki/apiserver.crt", "pki/front-proxy-ca.crt"),
            cmd: Init,
            args: &[],
            code: 2,
            want: "front-proxy-ca.crt is not a CA certificate",
        },
        Case {
            what: "the key of another certificate",
            corrupt: |d| copy(d, "pki/etcd/peer.key", "pki/etcd/server.key"),
            cmd: Init,
            args: &[],
            code: 2,
            want: "etcd/server.key does not match the public key of",
        },
        Case {
            what: "garbage certificate",
            corrupt: |d| {
                replace(d, "pki/apiserver.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "apiserver.crt: not a valid X.509 certificate",
        },
        Case {
            what: "empty certificate",
            corrupt: |d| replace(d, "pki/apiserver.crt", ""),
            cmd: Init,
            args: &[],
            code: 2,
            want: "apiserver.crt: the file is empty",
        },
        Case {
            what: "truncated certificate",
            corrupt: |d| {
                let c = d.read("pki/etcd/ca.crt");
                replace(d, "pki/etcd/ca.crt", &c[..c.len() * 2 / 3]);
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "etcd/ca.crt: line 1",
        },
        Case {
            what: "a key where a certificate should be",
            corrupt: |d| copy(d, "pki/apiserver.key", "pki/apiserver.crt"),
            cmd: Init,
            args: &[],
            code: 2,
            want: "apiserver.crt: no CERTIFICATE block (found EC PRIVATE KEY)",
        },
        Case {
            what: "a certificate where a key should be",
            corrupt: |d| copy(d, "pki/apiserver.crt", "pki/apiserver.key"),
            cmd: Init,
            args: &[],
            code: 2,
            want: "apiserver.key: no PEM private key",
        },
        Case {
            what: "DER where PEM is expected",
            corrupt: |d| {
                openssl(d, &["x509", "-in", "pki/front-proxy-client.crt", "-outform", "DER", "-out", "der.tmp"])
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "front-proxy-client.crt: not PEM",
        },
        Case {
            what: "an expired CA that must sign",
            corrupt: |d| python(d, EXPIRED_CA),
            cmd: Init,
            args: &[],
            code: 2,
            want: "front-proxy-ca expired at",
        },
        Case {
            what: "a leaf that would outlive its CA",
            corrupt: |d| {
                std::fs::remove_file(d.join("pki/apiserver.crt")).unwrap();
                std::fs::remove_file(d.join("pki/apiserver.key")).unwrap();
            },
            cmd: Issue,
            args: &["--ca-validity", "200000h", "--cert-validity", "100000h"],
            code: 2,
            want: "apiserver would expire",
        },
        Case {
            what: "a directory where a key should be",
            corrupt: |d| {
                replace(d, "pki/sa.key", "");
                std::fs::remove_file(d.join("pki/sa.key")).unwrap();
                std::fs::create_dir(d.join("pki/sa.key")).unwrap();
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "sa.key is not a regular file",
        },
        Case {
            what: "a dangling symlink",
            corrupt: |d| {
                std::fs::remove_file(d.join("pki/front-proxy-client.crt")).unwrap();
                std::os::unix::fs::symlink("/nonexistent/x.crt", d.join("pki/front-proxy-client.crt")).unwrap();
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "front-proxy-client.crt is a dangling symbolic link",
        },
        Case {
            what: "a certificate file of 300 MB",
            corrupt: |d| {
                std::fs::remove_file(d.join("pki/ca.crt")).unwrap();
                std::fs::File::create(d.join("pki/ca.crt")).unwrap().set_len(300 << 20).unwrap();
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "ca.crt is 314572800 bytes, more than the 1048576",
        },
        Case {
            what: "a world-readable CA key",
            corrupt: |d| write_mode(&d.join("pki/etcd/ca.key"), 0o644),
            cmd: Init,
            args: &[],
            code: 2,
            want: "etcd/ca.key has mode 0644",
        },
        Case {
            what: "a certificate without its key",
            corrupt: |d| std::fs::remove_file(d.join("pki/etcd/peer.key")).unwrap(),
            cmd: Init,
            args: &[],
            code: 2,
            want: "etcd/peer.crt exists but",
        },
        Case {
            what: "a CA key without its certificate",
            corrupt: |d| std::fs::remove_file(d.join("pki/front-proxy-ca.crt")).unwrap(),
            cmd: Init,
            args: &[],
            code: 2,
            want: "front-proxy-ca.key exists but",
        },
        Case {
            what: "an encrypted CA key",
            corrupt: |d| {
                openssl(d, &["pkcs8", "-topk8", "-in", "pki/ca.key", "-passout", "pass:x", "-out", "enc.tmp"]);
                copy(d, "enc.tmp", "pki/ca.key");
                std::fs::remove_file(d.join("enc.tmp")).unwrap();
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "ca.key: encrypted private keys are not supported",
        },
        Case {
            what: "an Ed25519 key (not a kubeadm key type)",
            corrupt: |d| {
                openssl(d, &["genpkey", "-algorithm", "ed25519", "-out", "ed.tmp"]);
                copy(d, "ed.tmp", "pki/apiserver-etcd-client.key");
                std::fs::remove_file(d.join("ed.tmp")).unwrap();
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "apiserver-etcd-client.key: unsupported key type",
        },
        Case {
            what: "an RSA-1024 key",
            corrupt: |d| {
                openssl(d, &["genrsa", "-traditional", "-out", "rsa.tmp", "1024"]);
                copy(d, "rsa.tmp", "pki/front-proxy-client.key");
                std::fs::remove_file(d.join("rsa.tmp")).unwrap();
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "front-proxy-client.key: unsupported key type",
        },
        Case {
            what: "sa.pub holding no usable key",
            corrupt: |d| {
                replace(
                    d,
                    "pki/sa.pub",
                    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAAAA\n-----END PUBLIC KEY-----\n",
                )
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "sa.pub: no RSA or ECDSA public key (kube-apiserver would refuse it)",
        },
        Case {
            what: "sa.pub without sa.key's public key",
            corrupt: |d| {
                replace(d, "pki/sa.pub", kubepki_pki::KeyAlgorithm::EcdsaP256.generate().unwrap().public_key_pem())
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "sa.pub exists but it does not hold the public key of sa.key",
        },
        // Kubeconfigs.
        Case {
            what: "invalid kubeconfig YAML",
            corrupt: |d| replace(d, "scheduler.conf", "clusters: [\n"),
            cmd: Init,
            args: &[],
            code: 2,
            want: "scheduler.conf: not valid YAML",
        },
        Case {
            what: "invalid base64 in a kubeconfig",
            corrupt: |d| {
                let t =
                    d.read("admin.conf").replace("client-certificate-data: LS0t", "client-certificate-data: Zm9v$$$$");
                replace(d, "admin.conf", t);
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "admin.conf: client-certificate-data is not valid base64",
        },
        Case {
            what: "a kubeconfig without current-context",
            corrupt: |d| {
                replace(d, "kubelet.conf", d.read("kubelet.conf").replace("current-context:", "x-current-context:"))
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "kubelet.conf: no current-context",
        },
        Case {
            what: "a kubeconfig that is a directory",
            corrupt: |d| {
                std::fs::remove_file(d.join("controller-manager.conf")).unwrap();
                std::fs::create_dir(d.join("controller-manager.conf")).unwrap();
            },
            cmd: Init,
            args: &[],
            code: 2,
            want: "controller-manager.conf is not a regular file",
        },
        Case {
            what: "a kubeconfig of another cluster",
            corrupt: |d| replace(d, "admin.conf", d.read("other/admin.conf")),
            cmd: Init,
            args: &[],
            code: 2,
            want: "admin.conf exists but its cluster CA is not",
        },
        Case {
            what: "a kubeconfig with a key of another certificate (rotate)",
            corrupt: |d| {
                let other = kubepki_pki::Kubeconfig::from_yaml(&d.read("other/admin.conf"), "o").unwrap();
                let Some(kubepki_pki::PemSource::Embedded(k)) = other.client_key("kubernetes-admin").unwrap() else {
                    panic!()
                };
                let mut kc = kubepki_pki::Kubeconfig::from_yaml(&d.read("admin.conf"), "a").unwrap();
                let Some(kubepki_pki::PemSource::Embedded(c)) = kc.client_certificate("kubernetes-admin").unwrap()
                else {
                    panic!()
                };
                kc.set_client_credentials(
                    "kubernetes-admin",
                    std::str::from_utf8(&c).unwrap(),
                    std::str::from_utf8(&k).unwrap(),
                )
                .unwrap();
                replace(d, "admin.conf", kc.to_yaml().as_bytes());
            },
            // Broken, not blocking: the rest is renewed, this one named with its fix (exit 1).
            cmd: Rotate,
            args: &[],
            code: 1,
            want: "client-certificate-data; fix: kubepki rotate --force admin.conf",
        },
        // Configuration files.
        Case {
            what: "kubeadm config: invalid YAML",
            corrupt: |d| drop(d.write("cfg.yaml", "a: [\n")),
            cmd: Init,
            args: &["--config", "cfg.yaml"],
            code: 2,
            want: "cfg.yaml: not valid YAML",
        },
        Case {
            what: "kubeadm config: v1beta2",
            corrupt: |d| drop(d.write("cfg.yaml", "apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\n")),
            cmd: Init,
            args: &["--config", "cfg.yaml"],
            code: 2,
            want: "v1beta2 is not supported",
        },
        Case {
            what: "kubeadm config: unknown algorithm",
            corrupt: |d| drop(d.write("cfg.yaml", format!("{KUBEADM_HEAD}encryptionAlgorithm: DSA-1024\n"))),
            cmd: Init,
            args: &["--config", "cfg.yaml"],
            code: 2,
            want: "encryptionAlgorithm",
        },
        Case {
            what: "kubeadm config: bad duration",
            corrupt: |d| drop(d.write("cfg.yaml", format!("{KUBEADM_HEAD}certificateValidityPeriod: a year\n"))),
            cmd: Init,
            args: &["--config", "cfg.yaml"],
            code: 2,
            want: "certificateValidityPeriod",
        },
        Case {
            what: "kubeadm config: advertise address not an IP",
            corrupt: |d| {
                drop(d.write("cfg.yaml", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint: {advertiseAddress: cp1.example}\n"))
            },
            cmd: Init,
            args: &["--config", "cfg.yaml"],
            code: 2,
            want: "advertiseAddress",
        },
        Case {
            what: "kubeadm config: a missing file",
            corrupt: |_| {},
            cmd: Init,
            args: &["--config", "nonexistent.yaml"],
            // A missing input file is an input error, as an invalid one (docs/cli.md).
            code: 2,
            want: "nonexistent.yaml",
        },
        Case {
            what: "kubeadm config: certSANs not a list",
            corrupt: |d| drop(d.write("cfg.yaml", format!("{KUBEADM_HEAD}apiServer: {{certSANs: 42}}\n"))),
            cmd: Init,
            args: &["--config", "cfg.yaml"],
            code: 2,
            want: "cfg.yaml: ClusterConfiguration: apiServer.certSANs: expected a list of strings, found a number",
        },
        Case {
            what: "kubeadm config: a typo'd field (init)",
            corrupt: |d| {
                drop(d.write("cfg.yaml", format!("{KUBEADM_HEAD}apiServer:\n  certSAN: [new-lb.example.com]\n")))
            },
            cmd: Init,
            args: &["--config", "cfg.yaml"],
            code: 2,
            want: "cfg.yaml: ClusterConfiguration: apiServer.certSAN: unknown field; did you mean certSANs?",
        },
        Case {
            what: "kubeadm config: a typo'd field (rotate)",
            corrupt: |d| {
                drop(d.write("cfg.yaml", format!("{KUBEADM_HEAD}etcd:\n  local:\n    serverCertSAN: [etcd.example]\n")))
            },
            cmd: Rotate,
            args: &["--config", "cfg.yaml", "--force", "etcd-server"],
            code: 2,
            want: "cfg.yaml: ClusterConfiguration: etcd.local.serverCertSAN: unknown field; did you mean serverCertSANs?",
        },
        Case {
            what: "kubeadm config: a misplaced field (rotate)",
            corrupt: |d| drop(d.write("cfg.yaml", format!("{KUBEADM_HEAD}certSANs: [new-lb.example.com]\n"))),
            cmd: Rotate,
            args: &["--config", "cfg.yaml"],
            code: 2,
            want: "cfg.yaml: ClusterConfiguration: certSANs: unknown field; did you mean apiServer.certSANs?",
        },
        Case {
            what: "kubeadm config: a field of the other kind, in the second document (issue)",
            corrupt: |d| {
                drop(d.write(
                    "cfg.yaml",
                    "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n---\n\
                     apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nclusterName: prod\n",
                ))
            },
            cmd: Issue,
            args: &["--config", "cfg.yaml"],
            code: 2,
            want: "cfg.yaml: InitConfiguration (document 2): clusterName: unknown field; it belongs in ClusterConfiguration (clusterName)",
        },
        Case {
            what: "rotation config: a bad secret reference",
            corrupt: |d| {
                drop(d.write("cfg.yaml", "apiVersion: kubepki.io/v1alpha1\nkind: RotationConfiguration\nsecrets: [{secret: nonamespace, source: apiserver}]\n"))
            },
            cmd: Rotate,
            args: &["--config", "cfg.yaml"],
            code: 2,
            want: "secrets[0].secret",
        },
        Case {
            what: "rotation config: an unknown field",
            corrupt: |d| {
                drop(d.write("cfg.yaml", "apiVersion: kubepki.io/v1alpha1\nkind: RotationConfiguration\nsecrets: [{secret: a/b, sourc: apiserver}]\n"))
            },
            cmd: Rotate,
            args: &["--config", "cfg.yaml"],
            code: 2,
            want: "unknown field",
        },
        Case {
            what: "rotation config: an unknown source (a Secret target)",
            corrupt: |d| {
                drop(d.write("cfg.yaml", "apiVersion: kubepki.io/v1alpha1\nkind: RotationConfiguration\nsecrets: [{secret: a/b, source: apiserverr}]\n"))
            },
            cmd: Rotate,
            args: &["--config", "cfg.yaml"],
            code: 2,
            want: "source \"apiserverr\" is not a certificate",
        },
        // Flags.
        Case {
            what: "an unknown algorithm",
            corrupt: |_| {},
            cmd: Init,
            args: &["--encryption-algorithm", "ED25519"],
            code: 2,
            want: "ED25519",
        },
        Case {
            what: "an invalid extra SAN",
            corrupt: |_| {},
            cmd: Init,
            args: &["--apiserver-cert-extra-sans", "bad_name!"],
            code: 2,
            want: "bad_name!",
        },
        Case {
            what: "a bad service CIDR",
            corrupt: |_| {},
            cmd: Init,
            args: &["--service-cidr", "10.96.0.0/33"],
            code: 2,
            want: "service CIDR",
        },
        Case {
            what: "a leaf validity beyond the CA validity",
            corrupt: |_| {},
            cmd: Init,
            args: &["--cert-validity", "100000h"],
            code: 2,
            want: "leaf never outlives its CA",
        },
        Case {
            what: "contradictory flags",
            corrupt: |_| {},
            cmd: Rotate,
            args: &["--all", "--force", "apiserver"],
            code: 2,
            want: "cannot be used with",
        },
        Case {
            what: "a bad --at",
            corrupt: |_| {},
            cmd: Rotate,
            args: &["--at", "next tuesday"],
            code: 2,
            want: "expected RFC 3339 (2027-01-01T00:00:00Z), a date (2027-01-01), now, or +90d",
        },
        Case {
            what: "an unknown --force name",
            corrupt: |_| {},
            cmd: Rotate,
            args: &["--force", "apiservr"],
            code: 2,
            want: "--force apiservr: no such certificate",
        },
        Case {
            what: "a bad --renew-at",
            corrupt: |_| {},
            cmd: Rotate,
            args: &["--renew-at", "2x"],
            code: 2,
            want: "not a percentage",
        },
        Case {
            what: "check: an explicit path that does not exist",
            corrupt: |_| {},
            cmd: Check,
            args: &["--file", "nonexistent.crt"],
            code: 3,
            want: "nonexistent.crt",
        },
    ]
}

#[test]
fn every_broken_input_is_named_refused_and_changes_nothing() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for case in &cases {
        let d = TestDir::new();
        init(d.path(), &[]).ok();
        std::fs::create_dir(d.join("other")).unwrap();
        init(&d.join("other"), &[]).ok();
        (case.corrupt)(&d);
        if d.join("der.tmp").exists() {
            let der = std::fs::read(d.join("der.tmp")).unwrap();
            std::fs::remove_file(d.join("der.tmp")).unwrap();
            replace(&d, "pki/front-proxy-client.crt", der);
        }
        let before = tree_hash(d.path());
        let mut cmd = kubepki();
        cmd.current_dir(d.path());
        match case.cmd {
            Cmd::Init => {
                cmd.arg("init").args(["--node-name", "cp1", "--apiserver-advertise-address", "127.0.0.1"]);
            }
            Cmd::Rotate => {
                cmd.arg("rotate");
            }
            Cmd::Check => {
                cmd.arg("check");
            }
            Cmd::Issue => {
                cmd.args(["issue", "apiserver", "--node-name", "cp1", "--apiserver-advertise-address", "127.0.0.1"]);
            }
        }
        cmd.arg("--cert-dir").arg(d.join("pki")).arg("--kubeconfig-dir").arg(d.path()).args(case.args);
        let r = run(&mut cmd);
        assert_eq!(r.code, case.code, "{}: exit code\n{}{}", case.what, r.stdout, r.stderr);
        assert!(r.stderr.contains(case.want), "{}: expected {:?} in\n{}", case.what, case.want, r.stderr);
        for material in ["-----BEGIN", "LS0tLS1CRUdJTi", "MHcCAQEE", "MIIE"] {
            assert!(!r.stderr.contains(material), "{}: key material in an error", case.what);
        }
        assert_eq!(tree_hash(d.path()), before, "{}: the tree changed", case.what);
    }
}
