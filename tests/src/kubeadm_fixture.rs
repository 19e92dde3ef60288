//! A kubeadm-made control plane written by an independent tool (`tests/fixtures/kubeadm_tree.py`,
//! pyca/cryptography under Debian's `/usr/bin/python3`), and an x509-parser reading of a
//! certificate's shape (subject, SANs, usages, extensions) to hold kubepki's output to it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::run;

/// The interpreter the fixture runs under: Debian's, which has python3-cryptography (a
/// `python3` earlier on PATH may be another interpreter without it).
pub const PYTHON: &str = "/usr/bin/python3";

/// The fixture script.
pub const KUBEADM_TREE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/kubeadm_tree.py");

/// The leaves kubeadm issues, by kubeadm's names, with the base name of their files in the
/// cert dir and their CA: `(name, base name, CA name)`.
pub const KUBEADM_LEAVES: [(&str, &str, &str); 7] = [
    ("apiserver", "apiserver", "ca"),
    ("apiserver-kubelet-client", "apiserver-kubelet-client", "ca"),
    ("front-proxy-client", "front-proxy-client", "front-proxy-ca"),
    ("etcd-server", "etcd/server", "etcd-ca"),
    ("etcd-peer", "etcd/peer", "etcd-ca"),
    ("etcd-healthcheck-client", "etcd/healthcheck-client", "etcd-ca"),
    ("apiserver-etcd-client", "apiserver-etcd-client", "etcd-ca"),
];

/// kubeadm's CAs: `(name, base name)`.
pub const KUBEADM_CAS: [(&str, &str); 3] = [("ca", "ca"), ("front-proxy-ca", "front-proxy-ca"), ("etcd-ca", "etcd/ca")];

/// kubeadm's five kubeconfig files.
pub const KUBEADM_KUBECONFIGS: [&str; 5] =
    ["admin.conf", "super-admin.conf", "kubelet.conf", "controller-manager.conf", "scheduler.conf"];

/// What `kubeadm certs check-expiration` lists (with local etcd), sorted as it prints it:
/// (name, CA name).
pub const KUBEADM_CHECK_EXPIRATION: [(&str, &str); 11] = [
    ("admin.conf", "ca"),
    ("apiserver", "ca"),
    ("apiserver-etcd-client", "etcd-ca"),
    ("apiserver-kubelet-client", "ca"),
    ("controller-manager.conf", "ca"),
    ("etcd-healthcheck-client", "etcd-ca"),
    ("etcd-peer", "etcd-ca"),
    ("etcd-server", "etcd-ca"),
    ("front-proxy-client", "front-proxy-ca"),
    ("scheduler.conf", "ca"),
    ("super-admin.conf", "ca"),
];

/// Writes a control plane as `kubeadm init` would: `<dir>/pki/` (kubeadm's cert dir: the three
/// CAs, seven leaves and `sa.key`/`sa.pub`, kubeadm's names, modes, subjects, SANs, usages and
/// extensions, RSA-2048 PKCS#1 keys by default) and the five kubeconfigs in `<dir>`, for node
/// `cp1` at `10.0.0.11` unless `options` says otherwise. Returns the script's summary:
/// `{"time": unix, "certificates": {name: {"path", "caName", "notBefore", "notAfter",
/// "serial"}}}` for every certificate it made (also those then left missing or broken).
///
/// `options` (every field optional; the script's header documents each): `node_name`,
/// `address`, `cluster_name`, `control_plane_endpoint`, `service_cidr`, `dns_domain`,
/// `cert_sans`, `etcd_server_sans`, `etcd_peer_sans`, `key` (`rsa2048`, `ecdsa-p256`, …),
/// `external_etcd`, `external_ca` (`true` or CA names whose key is absent), `leaf_days`,
/// `ca_days`, `expired` (leaf names or `"all"`), `broken` (`{leaf: "wrong-key" | "garbage" |
/// "truncated-key"}`), `missing` (leaf names), `kubelet_client_current`. Leaves are named as
/// kubeadm names them (`apiserver`, `etcd-server`, `admin.conf`, …).
///
/// Panics with the script's stderr if it fails, and with a pointer to `scripts/setup` if
/// `/usr/bin/python3` or its cryptography module is missing.
///
/// ```no_run
/// use kubepki_tests::{TestDir, kubeadm_tree};
/// use serde_json::json;
///
/// let d = TestDir::new();
/// let made = kubeadm_tree(d.path(), json!({"node_name": "cp1", "missing": ["front-proxy-client"]}));
/// assert!(d.join("pki/apiserver.crt").exists() && !d.join("pki/front-proxy-client.crt").exists());
/// assert_eq!(made["certificates"]["apiserver"]["caName"], "ca");
/// ```
#[track_caller]
pub fn kubeadm_tree(dir: &Path, options: Value) -> Value {
    if !Path::new(PYTHON).exists() {
        panic!("{PYTHON} is missing: run scripts/setup, which installs python3-cryptography (the fixture maker)");
    }
    let r = run(Command::new(PYTHON).arg(KUBEADM_TREE_SCRIPT).arg(dir).arg(options.to_string()));
    if r.stderr.contains("No module named 'cryptography'") {
        panic!("{PYTHON} has no cryptography module: run scripts/setup, which installs python3-cryptography");
    }
    assert_eq!(r.code, 0, "{KUBEADM_TREE_SCRIPT} {options} failed:\n{}", r.stderr);
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("{KUBEADM_TREE_SCRIPT} printed no summary ({e}):\n{}", r.stdout))
}

/// What a certificate asserts and how it is encoded, read by x509-parser: the parts kubeadm
/// fixes (everything but keys, serials, dates and signatures).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Shape {
    /// The subject's DER, hex (attribute order and string types included).
    pub subject_der: String,
    /// The subject as text.
    pub subject: String,
    /// The issuer as text.
    pub issuer: String,
    /// SANs in encoded order: `DNS:name`, `IP:address`.
    pub sans: Vec<String>,
    /// The KeyUsage bits, as x509-parser names them.
    pub key_usage: Option<String>,
    /// Extended key usages: `serverAuth`, `clientAuth` (others by OID).
    pub ext_key_usage: Vec<String>,
    /// BasicConstraints: (cA, pathLen).
    pub basic_constraints: Option<(bool, Option<u32>)>,
    /// Extensions as (OID, critical), in encoded order.
    pub extensions: Vec<(String, bool)>,
    /// The public key: `RSA-<bits>` or `EC`.
    pub key: String,
    /// The signature algorithm's OID.
    pub signature_algorithm: String,
}

impl Shape {
    /// The extensions as a sorted list: what is present, whatever the order.
    pub fn extension_set(&self) -> Vec<(String, bool)> {
        let mut e = self.extensions.clone();
        e.sort();
        e
    }
}

/// The [`Shape`] of a DER certificate.
pub fn shape(der: &[u8]) -> Shape {
    let (_, x) = X509Certificate::from_der(der).unwrap_or_else(|e| panic!("not a certificate: {e}"));
    let mut sans = Vec::new();
    let mut key_usage = None;
    let mut ext_key_usage = Vec::new();
    let mut basic_constraints = None;
    for ext in x.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    sans.push(match name {
                        GeneralName::DNSName(d) => format!("DNS:{d}"),
                        GeneralName::IPAddress(b) => match b.len() {
                            4 => format!("IP:{}", std::net::IpAddr::from(<[u8; 4]>::try_from(*b).unwrap())),
                            16 => format!("IP:{}", std::net::IpAddr::from(<[u8; 16]>::try_from(*b).unwrap())),
                            _ => format!("IP:{b:02x?}"),
                        },
                        other => format!("{other:?}"),
                    });
                }
            }
            ParsedExtension::KeyUsage(k) => key_usage = Some(k.to_string()),
            ParsedExtension::ExtendedKeyUsage(e) => {
                if e.server_auth {
                    ext_key_usage.push("serverAuth".to_owned());
                }
                if e.client_auth {
                    ext_key_usage.push("clientAuth".to_owned());
                }
                ext_key_usage.extend(e.other.iter().map(ToString::to_string));
            }
            ParsedExtension::BasicConstraints(b) => basic_constraints = Some((b.ca, b.path_len_constraint)),
            _ => {}
        }
    }
    let key = match x.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA-{}", rsa.key_size()),
        Ok(PublicKey::EC(_)) => "EC".to_owned(),
        other => format!("{other:?}"),
    };
    Shape {
        subject_der: x.subject().as_raw().iter().map(|b| format!("{b:02x}")).collect(),
        subject: x.subject().to_string(),
        issuer: x.issuer().to_string(),
        sans,
        key_usage,
        ext_key_usage,
        basic_constraints,
        extensions: x.extensions().iter().map(|e| (e.oid.to_id_string(), e.critical)).collect(),
        key,
        signature_algorithm: x.signature_algorithm.algorithm.to_id_string(),
    }
}

/// The DER of the first CERTIFICATE block of a PEM text (read by x509-parser, not kubepki).
pub fn first_certificate_der(pem: &[u8]) -> Vec<u8> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .map(|p| p.unwrap_or_else(|e| panic!("not PEM: {e}")))
        .find(|p| p.label == "CERTIFICATE")
        .unwrap_or_else(|| panic!("no CERTIFICATE block"))
        .contents
}
