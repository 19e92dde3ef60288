//! `kubepki init`, `issue` and `kubeconfig user`: kubeadm's PKI, checked by independent
//! verifiers (openssl, Go's TLS in etcd and kubectl, rustls/webpki).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use kubepki_pki::{Certificate, Kubeconfig, Profile};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::common::*;

/// Every cert-dir leaf with its CA file, as kubeadm pairs them.
const LEAF_CAS: [(&str, &str, &str); 7] = [
    ("apiserver.crt", "ca.crt", "sslserver"),
    ("apiserver-kubelet-client.crt", "ca.crt", "sslclient"),
    ("front-proxy-client.crt", "front-proxy-ca.crt", "sslclient"),
    ("etcd/server.crt", "etcd/ca.crt", "sslserver"),
    ("etcd/peer.crt", "etcd/ca.crt", "sslclient"),
    ("etcd/healthcheck-client.crt", "etcd/ca.crt", "sslclient"),
    ("apiserver-etcd-client.crt", "etcd/ca.crt", "sslclient"),
];

const KUBECONFIGS: [&str; 5] =
    ["admin.conf", "super-admin.conf", "kubelet.conf", "controller-manager.conf", "scheduler.conf"];

fn cert(path: &Path) -> Certificate {
    Certificate::from_pem_bundle(&std::fs::read(path).unwrap(), &path.display().to_string()).unwrap().remove(0)
}

/// Writes a kubeconfig's embedded client certificate to a file.
fn extract_client_cert(conf: &Path, out: &Path) -> Certificate {
    let kc = Kubeconfig::from_yaml(&std::fs::read_to_string(conf).unwrap(), "t").unwrap();
    let user = kc.current().unwrap().user;
    let Some(kubepki_pki::PemSource::Embedded(pem)) = kc.client_certificate(&user).unwrap() else {
        panic!("{} has no embedded client certificate", conf.display())
    };
    std::fs::write(out, &pem).unwrap();
    Certificate::from_pem_bundle(&pem, "client").unwrap().remove(0)
}

#[test]
fn init_twice_writes_nothing_the_second_time() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let before = tree_hash(d.path());
    let again = init(d.path(), &[]).ok();
    assert!(again.stdout.contains("nothing written"), "{}", again.stdout);
    assert_eq!(tree_hash(d.path()), before);
}

#[test]
fn openssl_verifies_every_leaf_strictly_for_ecdsa_and_rsa() {
    for alg in ["ECDSA-P256", "RSA-2048", "ECDSA-P384"] {
        let d = TestDir::new();
        init(d.path(), &["--encryption-algorithm", alg]).ok();
        let pki = d.join("pki");
        for (leaf, ca, purpose) in LEAF_CAS {
            openssl_verify_purpose(&pki.join(ca), &pki.join(leaf), Some(purpose))
                .unwrap_or_else(|e| panic!("{alg} {leaf}: {e}"));
        }
        // A leaf must not verify against another CA.
        assert!(openssl_verify(&pki.join("ca.crt"), &pki.join("etcd/server.crt")).is_err());
        for conf in KUBECONFIGS {
            let out = d.join(&format!("{conf}.crt"));
            extract_client_cert(&d.join(conf), &out);
            openssl_verify_purpose(&pki.join("ca.crt"), &out, Some("sslclient"))
                .unwrap_or_else(|e| panic!("{alg} {conf}: {e}"));
        }
        let key_header = std::fs::read_to_string(pki.join("apiserver.key")).unwrap();
        let want =
            if alg.starts_with("RSA") { "-----BEGIN RSA PRIVATE KEY-----" } else { "-----BEGIN EC PRIVATE KEY-----" };
        assert!(key_header.starts_with(want), "{alg}: kubeadm writes {want}");
        // openssl reads the key and it belongs to the certificate.
        let pubkey_of_key =
            run(Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(pki.join("apiserver.key"))).ok();
        let pubkey_of_cert =
            run(Command::new("openssl").args(["x509", "-pubkey", "-noout", "-in"]).arg(pki.join("apiserver.crt"))).ok();
        assert_eq!(pubkey_of_key.stdout, pubkey_of_cert.stdout);
    }
}

/// kubeadm-pki.md §1.2–1.5, read back with openssl (an independent parser).
#[test]
fn certificate_contents_match_kubeadm() {
    let d = TestDir::new();
    init(
        d.path(),
        &["--control-plane-endpoint", "lb.example.com:443", "--apiserver-cert-extra-sans", "10.0.0.5,api.example.com"],
    )
    .ok();
    let pki = d.join("pki");

    let ca = openssl_text(&pki.join("ca.crt"));
    assert!(ca.contains("Subject: CN = kubernetes\n"), "{ca}");
    assert!(
        ca.contains(
            "X509v3 Key Usage: critical\n                Digital Signature, Key Encipherment, Certificate Sign"
        ),
        "{ca}"
    );
    assert!(ca.contains("X509v3 Basic Constraints: critical\n                CA:TRUE\n"), "{ca}");
    assert!(ca.contains("DNS:kubernetes\n"), "{ca}");
    assert!(ca.contains("Subject Key Identifier") && !ca.contains("Authority Key Identifier"), "{ca}");

    let api = openssl_text(&pki.join("apiserver.crt"));
    assert!(api.contains("Subject: CN = kube-apiserver\n"), "{api}");
    assert!(
        api.contains(
            "DNS:api.example.com, DNS:cp1, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, \
             DNS:kubernetes.default.svc.cluster.local, DNS:lb.example.com, IP Address:10.96.0.1, IP Address:127.0.0.1, \
             IP Address:10.0.0.5"
        ),
        "{api}"
    );
    assert!(api.contains("X509v3 Key Usage: critical\n                Digital Signature, Key Encipherment\n"), "{api}");
    assert!(api.contains("X509v3 Extended Key Usage: \n                TLS Web Server Authentication\n"), "{api}");
    assert!(api.contains("X509v3 Basic Constraints: critical\n                CA:FALSE\n"), "{api}");
    assert!(api.contains("Authority Key Identifier") && !api.contains("Subject Key Identifier"), "{api}");

    let subject = |f: &str| {
        run(Command::new("openssl").args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"]).arg(pki.join(f)))
            .ok()
            .stdout
    };
    assert_eq!(
        subject("apiserver-kubelet-client.crt"),
        "subject=CN=kube-apiserver-kubelet-client,O=kubeadm:cluster-admins\n"
    );
    assert_eq!(subject("etcd/server.crt"), "subject=CN=cp1\n");
    assert_eq!(subject("apiserver-etcd-client.crt"), "subject=CN=kube-apiserver-etcd-client\n");
    assert_eq!(subject("front-proxy-client.crt"), "subject=CN=front-proxy-client\n");
    let etcd = openssl_text(&pki.join("etcd/server.crt"));
    assert!(etcd.contains("TLS Web Server Authentication, TLS Web Client Authentication"), "{etcd}");
    assert!(etcd.contains("DNS:cp1, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"), "{etcd}");

    // Validity: CA 10 years, leaves 1 year, NotBefore backdated 5 minutes, random serials.
    let ca_cert = cert(&pki.join("ca.crt"));
    let leaf = cert(&pki.join("apiserver.crt"));
    assert_eq!((ca_cert.not_after - ca_cert.not_before).whole_seconds(), 87600 * 3600 + 300);
    assert_eq!((leaf.not_after - leaf.not_before).whole_seconds(), 8760 * 3600 + 300);
    let now = time::OffsetDateTime::now_utc();
    assert!((leaf.not_before - (now - time::Duration::minutes(5))).whole_seconds().abs() < 120);
    let mut serials: std::collections::BTreeSet<String> =
        LEAF_CAS.iter().map(|(f, _, _)| cert(&pki.join(f)).serial).collect();
    serials.insert(ca_cert.serial);
    assert_eq!(serials.len(), 8, "serials must be distinct");

    // Kubeconfigs: kubeadm's subjects, names, contexts and servers; mode 0600.
    for (conf, cn, org, server) in [
        ("admin.conf", "kubernetes-admin", Some("kubeadm:cluster-admins"), "https://lb.example.com:443"),
        ("super-admin.conf", "kubernetes-super-admin", Some("system:masters"), "https://lb.example.com:443"),
        ("kubelet.conf", "system:node:cp1", Some("system:nodes"), "https://lb.example.com:443"),
        ("controller-manager.conf", "system:kube-controller-manager", None, "https://127.0.0.1:6443"),
        ("scheduler.conf", "system:kube-scheduler", None, "https://127.0.0.1:6443"),
    ] {
        let path = d.join(conf);
        let kc = Kubeconfig::from_yaml(&std::fs::read_to_string(&path).unwrap(), conf).unwrap();
        let cur = kc.current().unwrap();
        assert_eq!(cur.name, format!("{cn}@kubernetes"));
        assert_eq!((cur.cluster.as_str(), cur.user.as_str()), ("kubernetes", cn));
        assert_eq!(kc.server("kubernetes"), Some(server), "{conf}");
        let client = extract_client_cert(&path, &d.join("client.crt"));
        assert_eq!(client.subject.common_name, cn);
        assert_eq!(client.subject.organizations.first().map(String::as_str), org);
        assert_eq!(kubepki_pki::fsio::mode_of(&path).unwrap(), 0o600, "{conf}");
    }
    for key in ["ca.key", "apiserver.key", "etcd/ca.key", "etcd/peer.key", "sa.key", "sa.pub"] {
        assert_eq!(kubepki_pki::fsio::mode_of(&pki.join(key)).unwrap(), 0o600, "{key}");
    }
    assert_eq!(kubepki_pki::fsio::mode_of(&pki.join("apiserver.crt")).unwrap(), 0o644);
    assert!(std::fs::read_to_string(pki.join("sa.pub")).unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
}

#[test]
fn rustls_webpki_accepts_every_chain_for_its_purpose() {
    install_crypto_provider();
    let d = TestDir::new();
    init(d.path(), &["--encryption-algorithm", "RSA-2048"]).ok();
    let pki = d.join("pki");
    let roots = |ca: &str| {
        let mut r = rustls::RootCertStore::empty();
        r.add(CertificateDer::from_pem_file(pki.join(ca)).unwrap()).unwrap();
        Arc::new(r)
    };
    let der = |f: &str| CertificateDer::from_pem_file(pki.join(f)).unwrap();
    let now = UnixTime::now();

    let api = rustls::client::WebPkiServerVerifier::builder(roots("ca.crt")).build().unwrap();
    for name in ["kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "cp1", "10.96.0.1", "127.0.0.1"] {
        api.verify_server_cert(&der("apiserver.crt"), &[], &ServerName::try_from(name).unwrap(), &[], now)
            .unwrap_or_else(|e| panic!("apiserver for {name}: {e}"));
    }
    assert!(
        api.verify_server_cert(&der("apiserver.crt"), &[], &ServerName::try_from("evil.example").unwrap(), &[], now)
            .is_err()
    );
    // A client certificate is not a server certificate.
    assert!(
        api.verify_server_cert(
            &der("apiserver-kubelet-client.crt"),
            &[],
            &ServerName::try_from("cp1").unwrap(),
            &[],
            now
        )
        .is_err()
    );

    let etcd = rustls::client::WebPkiServerVerifier::builder(roots("etcd/ca.crt")).build().unwrap();
    for leaf in ["etcd/server.crt", "etcd/peer.crt"] {
        etcd.verify_server_cert(&der(leaf), &[], &ServerName::try_from("localhost").unwrap(), &[], now).unwrap();
    }

    let clients = |ca: &str| rustls::server::WebPkiClientVerifier::builder(roots(ca)).build().unwrap();
    for (leaf, ca) in [
        ("apiserver-kubelet-client.crt", "ca.crt"),
        ("front-proxy-client.crt", "front-proxy-ca.crt"),
        ("etcd/healthcheck-client.crt", "etcd/ca.crt"),
        ("apiserver-etcd-client.crt", "etcd/ca.crt"),
        ("etcd/peer.crt", "etcd/ca.crt"),
        ("etcd/server.crt", "etcd/ca.crt"),
    ] {
        clients(ca).verify_client_cert(&der(leaf), &[], now).unwrap_or_else(|e| panic!("{leaf}: {e}"));
    }
    // The cluster CA's clients are strangers to etcd.
    assert!(clients("etcd/ca.crt").verify_client_cert(&der("apiserver-kubelet-client.crt"), &[], now).is_err());
    // A server-only certificate is not a client certificate.
    assert!(clients("ca.crt").verify_client_cert(&der("apiserver.crt"), &[], now).is_err());
}

/// kubectl (a real Go TLS client) with every generated kubeconfig against an mTLS server that
/// presents the generated apiserver certificate and trusts the cluster CA for clients.
#[test]
fn kubectl_authenticates_with_every_kubeconfig() {
    let d = TestDir::new();
    // Reserve a port, then make it the kubeconfigs' server port.
    let port = free_port();
    init(d.path(), &["--apiserver-bind-port", &port.to_string()]).ok();
    let pki = d.join("pki");
    let server = HttpsServer::apiserver_on(port, &pki);
    for (conf, cn) in [
        ("admin.conf", "kubernetes-admin"),
        ("super-admin.conf", "kubernetes-super-admin"),
        ("kubelet.conf", "system:node:cp1"),
        ("controller-manager.conf", "system:kube-controller-manager"),
        ("scheduler.conf", "system:kube-scheduler"),
    ] {
        let r = run(Command::new("kubectl").arg("--kubeconfig").arg(d.join(conf)).args(["get", "--raw", "/"]));
        assert_eq!(r.code, 0, "kubectl with {conf}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(&format!("CN={cn}")), "{conf}: the server saw {}", r.stdout);
    }
    // A kubeconfig of another cluster (other CA) is refused by kubectl: the server's
    // certificate does not chain to the CA it trusts.
    let other = TestDir::new();
    init(other.path(), &["--apiserver-bind-port", &port.to_string()]).ok();
    let r = run(Command::new("kubectl").arg("--kubeconfig").arg(other.join("admin.conf")).args(["get", "--raw", "/"]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("certificate"), "{}", r.stderr);
    assert!(server.requests.load(std::sync::atomic::Ordering::SeqCst) >= 5);
}

/// A real etcd (Debian etcd-server) with the generated etcd server and peer certificates and
/// mutual TLS on both ports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_etcd_accepts_its_clients_and_refuses_the_cluster_ca() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    let etcd = Etcd::start(&EtcdConfig { name: "cp1", pki: &pki, client_cert_auth: true });

    let client = |cert: &str, key: &str| {
        let tls = etcd_client::TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(std::fs::read(pki.join("etcd/ca.crt")).unwrap()))
            .identity(etcd_client::Identity::from_pem(
                std::fs::read(pki.join(cert)).unwrap(),
                std::fs::read(pki.join(key)).unwrap(),
            ));
        etcd_client::ConnectOptions::new().with_tls(tls).with_timeout(std::time::Duration::from_secs(5))
    };
    let mut c = etcd_client::Client::connect(
        [etcd.client_url.clone()],
        Some(client("apiserver-etcd-client.crt", "apiserver-etcd-client.key")),
    )
    .await
    .unwrap();
    c.put("/registry/kubepki", "ok", None).await.unwrap();
    let got = c.get("/registry/kubepki", None).await.unwrap();
    assert_eq!(got.kvs()[0].value_str().unwrap(), "ok");

    // etcdctl (Go) with the healthcheck client, as kubeadm's probes did.
    let health = run(etcdctl_healthcheck(&etcd.client_url, &pki).args(["endpoint", "health"]));
    assert_eq!(health.code, 0, "{}{}", health.stdout, health.stderr);
    assert!(format!("{}{}", health.stdout, health.stderr).contains("is healthy"));

    // A client certificate from the cluster CA is refused.
    let refused = run(Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg("--endpoints")
        .arg(&etcd.client_url)
        .arg("--cacert")
        .arg(pki.join("etcd/ca.crt"))
        .arg("--cert")
        .arg(pki.join("apiserver-kubelet-client.crt"))
        .arg("--key")
        .arg(pki.join("apiserver-kubelet-client.key"))
        .args(["--dial-timeout", "3s", "--command-timeout", "3s", "get", "/registry/kubepki"]));
    assert_ne!(refused.code, 0, "etcd accepted a cluster-CA client: {}", refused.stdout);
    let mut bad = etcd_client::Client::connect(
        [etcd.client_url.clone()],
        Some(client("apiserver-kubelet-client.crt", "apiserver-kubelet-client.key")),
    )
    .await;
    if let Ok(c) = &mut bad {
        assert!(c.get("/registry/kubepki", None).await.is_err(), "etcd served a cluster-CA client");
    }
}

/// An existing PKI made by openssl the way a hand-built ("hard way") or kubeadm cluster has it:
/// PKCS#1 RSA and SEC 1 EC keys. kubepki adopts the CAs, fills in what is missing, and issues a
/// leaf later on demand.
#[test]
fn adopts_an_openssl_made_pki_with_pkcs1_and_sec1_keys() {
    let d = TestDir::new();
    let pki = d.join("pki");
    std::fs::create_dir_all(pki.join("etcd")).unwrap();
    let ossl = |args: &[&str]| {
        run(Command::new("openssl").current_dir(&pki).args(args)).ok();
    };
    ossl(&["genrsa", "-traditional", "-out", "ca.key", "2048"]);
    // As kubeadm (and any careful hand-made CA) has them: keyUsage with keyCertSign.
    let ku = "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign";
    ossl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-subj",
        "/CN=kubernetes",
        "-days",
        "3650",
        "-addext",
        ku,
        "-out",
        "ca.crt",
    ]);
    ossl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "etcd/ca.key"]);
    ossl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "etcd/ca.key",
        "-subj",
        "/CN=etcd-ca",
        "-days",
        "3650",
        "-addext",
        ku,
        "-out",
        "etcd/ca.crt",
    ]);
    ossl(&["genrsa", "-traditional", "-out", "front-proxy-ca.key", "2048"]);
    ossl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "front-proxy-ca.key",
        "-subj",
        "/CN=front-proxy-ca",
        "-days",
        "3650",
        "-addext",
        ku,
        "-out",
        "front-proxy-ca.crt",
    ]);
    for k in ["ca.key", "etcd/ca.key", "front-proxy-ca.key"] {
        std::fs::set_permissions(pki.join(k), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    // A client certificate from an older kubeadm, with system:masters, which kubeadm would keep.
    ossl(&["genrsa", "-traditional", "-out", "apiserver-kubelet-client.key", "2048"]);
    ossl(&[
        "req",
        "-new",
        "-key",
        "apiserver-kubelet-client.key",
        "-subj",
        "/O=system:masters/CN=kube-apiserver-kubelet-client",
        "-out",
        "akc.csr",
    ]);
    let ext =
        d.write("pki/akc.ext", "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n");
    ossl(&[
        "x509",
        "-req",
        "-in",
        "akc.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "365",
        "-extfile",
        ext.to_str().unwrap(),
        "-out",
        "apiserver-kubelet-client.crt",
    ]);
    for f in ["akc.csr", "akc.ext", "ca.srl"] {
        std::fs::remove_file(pki.join(f)).unwrap();
    }
    assert!(d.read("pki/ca.key").starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert!(d.read("pki/etcd/ca.key").starts_with("-----BEGIN EC PRIVATE KEY-----"));
    let ca_before = d.read("pki/ca.crt");

    let out = init(d.path(), &[]).ok();
    assert!(out.stdout.contains("reused    ca "), "{}", out.stdout);
    assert!(out.stdout.contains("reused    apiserver-kubelet-client "), "{}", out.stdout);
    assert!(
        out.stdout.contains("has subject \"O=system:masters, CN=kube-apiserver-kubelet-client\"; kubeadm now issues"),
        "{}",
        out.stdout
    );
    assert_eq!(d.read("pki/ca.crt"), ca_before, "an existing CA is never rewritten");
    for (leaf, ca, _) in LEAF_CAS {
        openssl_verify(&pki.join(ca), &pki.join(leaf)).unwrap_or_else(|e| panic!("{leaf}: {e}"));
    }
    // The leaves carry the adopted CA's key identifier and are signed with its algorithm.
    let api = openssl_text(&pki.join("apiserver.crt"));
    assert!(api.contains("Signature Algorithm: sha256WithRSAEncryption"), "{api}");
    let server = openssl_text(&pki.join("etcd/server.crt"));
    assert!(server.contains("Signature Algorithm: ecdsa-with-SHA256"), "{server}");

    // A missing leaf is issued on demand from the adopted CA.
    std::fs::remove_file(pki.join("apiserver-etcd-client.crt")).unwrap();
    std::fs::remove_file(pki.join("apiserver-etcd-client.key")).unwrap();
    run(kubepki().args(["issue", "apiserver-etcd-client", "--cert-dir"]).arg(&pki).args([
        "--node-name",
        "cp1",
        "--apiserver-advertise-address",
        "127.0.0.1",
    ]))
    .ok();
    openssl_verify_purpose(&pki.join("etcd/ca.crt"), &pki.join("apiserver-etcd-client.crt"), Some("sslclient"))
        .unwrap();
    // Issuing over an existing leaf is refused: that is rotation's job.
    let again = run(kubepki().args(["issue", "apiserver-etcd-client", "--cert-dir"]).arg(&pki).args([
        "--node-name",
        "cp1",
        "--apiserver-advertise-address",
        "127.0.0.1",
    ]));
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("apiserver-etcd-client.crt exists"), "{}", again.stderr);
}

#[test]
fn a_kubeadm_config_file_is_honoured_and_flags_override_it() {
    let d = TestDir::new();
    let cfg = d.write(
        "kubeadm.yaml",
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration:\n  name: cp-a\n\
             localAPIEndpoint:\n  advertiseAddress: 10.1.2.3\n  bindPort: 7443\n---\n\
             apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: prod\n\
             certificatesDir: {}\ncertificateValidityPeriod: 720h0m0s\napiServer:\n  certSANs: [api.prod.example]\n\
             networking:\n  serviceSubnet: 10.200.0.0/16\n  dnsDomain: prod.local\n",
            d.join("pki").display()
        ),
    );
    run(kubepki()
        .arg("init")
        .arg("--config")
        .arg(&cfg)
        .arg("--kubeconfig-dir")
        .arg(d.path())
        .args(["--cluster-name", "override"]))
    .ok();
    let api = cert(&d.join("pki/apiserver.crt"));
    assert_eq!(
        api.sans.to_string(),
        "DNS:api.prod.example, DNS:cp-a, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, \
         DNS:kubernetes.default.svc.prod.local, IP:10.200.0.1, IP:10.1.2.3"
    );
    assert_eq!(api.lifetime().whole_hours(), 720);
    // No encryptionAlgorithm in the file: kubeadm's default, RSA-2048.
    assert_eq!(api.public_key.to_string(), "RSA-2048");
    let kc = Kubeconfig::from_yaml(&d.read("admin.conf"), "admin.conf").unwrap();
    assert_eq!(kc.current().unwrap().cluster, "override");
    assert_eq!(kc.server("override"), Some("https://10.1.2.3:7443"));
}

#[test]
fn external_etcd_has_no_etcd_pki() {
    let d = TestDir::new();
    init(d.path(), &["--external-etcd"]).ok();
    assert!(!d.join("pki/etcd").exists());
    assert!(!d.join("pki/apiserver-etcd-client.crt").exists());
    assert!(d.join("pki/front-proxy-client.crt").exists());
}

/// kubeadm's external CA mode: ca.crt without ca.key. Existing leaves are validated against it;
/// a missing one cannot be made.
#[test]
fn external_ca_mode_validates_and_refuses_to_sign() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    std::fs::remove_file(d.join("pki/ca.key")).unwrap();
    let out = init(d.path(), &["-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let action =
        |name: &str| v["items"].as_array().unwrap().iter().find(|i| i["name"] == name).unwrap()["action"].clone();
    assert_eq!(action("ca"), "external");
    assert_eq!(action("apiserver"), "external");
    assert_eq!(action("etcd-ca"), "reused");
    std::fs::remove_file(d.join("pki/apiserver.crt")).unwrap();
    std::fs::remove_file(d.join("pki/apiserver.key")).unwrap();
    let before = tree_hash(d.path());
    let err = init(d.path(), &[]).expect_code(2);
    assert!(err.stderr.contains("externally managed") && err.stderr.contains("ca.key"), "{}", err.stderr);
    assert_eq!(tree_hash(d.path()), before);
}

#[test]
fn an_existing_leaf_that_does_not_match_is_an_error_naming_the_difference() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let before = tree_hash(d.path());
    let r = init(d.path(), &["--apiserver-cert-extra-sans", "10.9.9.9,new.example.com"]).expect_code(2);
    assert!(
        r.stderr.contains("apiserver.crt exists but it lacks the SANs DNS:new.example.com, IP:10.9.9.9"),
        "{}",
        r.stderr
    );
    let r = run(kubepki()
        .arg("init")
        .arg("--cert-dir")
        .arg(d.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(d.path())
        .args(["--node-name", "cp2", "--apiserver-advertise-address", "127.0.0.1"]))
    .expect_code(2);
    // A new node name: the first leaf checked (apiserver) lacks it as a SAN.
    assert!(r.stderr.contains("apiserver.crt exists but it lacks the SANs DNS:cp2"), "{}", r.stderr);
    assert_eq!(tree_hash(d.path()), before);
}

#[test]
fn a_leaf_never_outlives_its_ca() {
    let d = TestDir::new();
    let r = init(d.path(), &["--ca-validity", "24h", "--cert-validity", "48h"]).expect_code(2);
    assert!(r.stderr.contains("leaf never outlives its CA"), "{}", r.stderr);
    assert!(!d.join("pki").exists(), "nothing may be written");
    init(d.path(), &["--ca-validity", "24h", "--cert-validity", "12h"]).ok();
    std::fs::remove_file(d.join("pki/apiserver.crt")).unwrap();
    std::fs::remove_file(d.join("pki/apiserver.key")).unwrap();
    let r = init(d.path(), &["--ca-validity", "720h", "--cert-validity", "48h"]).expect_code(2);
    assert!(r.stderr.contains("apiserver would expire") && r.stderr.contains("after its CA ca"), "{}", r.stderr);
}

/// Broken inputs: each gets a message naming the file, exit code 2, and the tree unchanged.
#[test]
fn bad_inputs_name_the_file_and_change_nothing() {
    type Corrupt<'a> = &'a dyn Fn(&TestDir);
    let cases: &[(&str, Corrupt, &str)] = &[
        ("garbage CA key", &|d| drop(d.write("pki/ca.key", "this is not a key")), "pki/ca.key: no PEM private key"),
        ("empty CA key", &|d| drop(d.write("pki/ca.key", "")), "pki/ca.key: no PEM private key"),
        (
            "CA that is not a CA",
            &|d| std::fs::copy(d.join("pki/apiserver.crt"), d.join("pki/front-proxy-ca.crt")).map(drop).unwrap(),
            "front-proxy-ca.crt is not a CA certificate",
        ),
        (
            "key of another certificate",
            &|d| std::fs::copy(d.join("pki/etcd/peer.key"), d.join("pki/etcd/server.key")).map(drop).unwrap(),
            "etcd/server.key does not match the public key of",
        ),
        (
            "garbage certificate",
            &|d| drop(d.write("pki/apiserver.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")),
            "apiserver.crt: not a valid X.509 certificate",
        ),
        (
            "certificate without its key",
            &|d| std::fs::remove_file(d.join("pki/etcd/peer.key")).unwrap(),
            "etcd/peer.crt exists but",
        ),
        (
            "a directory where a key should be",
            &|d| {
                std::fs::remove_file(d.join("pki/sa.key")).unwrap();
                std::fs::create_dir(d.join("pki/sa.key")).unwrap();
            },
            "sa.key is not a regular file",
        ),
        (
            "a dangling symlink",
            &|d| {
                std::fs::remove_file(d.join("pki/front-proxy-client.crt")).unwrap();
                std::os::unix::fs::symlink("/nonexistent/front-proxy-client.crt", d.join("pki/front-proxy-client.crt"))
                    .unwrap();
            },
            "dangling symbolic link",
        ),
        (
            "a world-readable CA key",
            &|d| {
                std::fs::set_permissions(d.join("pki/etcd/ca.key"), std::os::unix::fs::PermissionsExt::from_mode(0o644))
                    .unwrap()
            },
            "etcd/ca.key has mode 0644",
        ),
        (
            "kubeconfig of another cluster",
            &|d| {
                let other = TestDir::new();
                init(other.path(), &[]).ok();
                std::fs::copy(other.join("admin.conf"), d.join("admin.conf")).unwrap();
            },
            "admin.conf exists but its cluster CA is not",
        ),
        (
            "invalid kubeconfig YAML",
            &|d| drop(d.write("scheduler.conf", "clusters: [\n")),
            "scheduler.conf: not valid YAML",
        ),
        (
            "a huge certificate file",
            &|d| std::fs::File::create(d.join("pki/ca.crt")).unwrap().set_len(300 << 20).unwrap(),
            "more than the 1048576 bytes",
        ),
    ];
    for (what, corrupt, want) in cases {
        let d = TestDir::new();
        init(d.path(), &[]).ok();
        corrupt(&d);
        let before = tree_hash(d.path());
        let r = init(d.path(), &[]);
        assert_eq!(r.code, 2, "{what}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(want), "{what}: expected {want:?} in: {}", r.stderr);
        assert_eq!(tree_hash(d.path()), before, "{what}: the tree changed");
    }
}

#[test]
fn bad_flags_are_refused_before_anything_is_written() {
    for (args, want) in [
        (&["--encryption-algorithm", "ED25519"][..], "ED25519"),
        (&["--apiserver-cert-extra-sans", "not_a_name"], "not_a_name"),
        (&["--service-cidr", "10.96.0.0"], "service CIDR"),
        (&["--cert-validity", "forever"], "--cert-validity"),
        (&["--control-plane-endpoint", "lb:0"], "control-plane endpoint"),
    ] {
        let d = TestDir::new();
        let r = init(d.path(), args).expect_code(2);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0, "{args:?} wrote something");
    }
}

#[test]
fn an_unwritable_target_fails_cleanly() {
    let d = TestDir::new();
    d.write("blocker", "a file where a directory should be");
    let r = run(kubepki()
        .arg("init")
        .arg("--cert-dir")
        .arg(d.join("blocker/pki"))
        .arg("--kubeconfig-dir")
        .arg(d.path())
        .args(["--node-name", "cp1", "--apiserver-advertise-address", "127.0.0.1"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("blocker/pki"), "{}", r.stderr);
    let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["blocker"]);

    // Kubeconfig dir unwritable after the cert dir was fine: nothing at all is committed.
    let d = TestDir::new();
    d.write("kc", "a file");
    let r = run(kubepki()
        .arg("init")
        .arg("--cert-dir")
        .arg(d.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(d.join("kc/sub"))
        .args(["--node-name", "cp1", "--apiserver-advertise-address", "127.0.0.1"]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("kc/sub"), "{}", r.stderr);
    assert!(!d.join("pki/ca.crt").exists(), "no key or cert may be committed when the transaction fails");
}

#[test]
fn kubelet_serving_certificates_for_a_fleet() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let nodes: String =
        (0..40).map(|i| format!("worker-{i} 10.0.{}.{} ,fd00::{i:x}\n", i / 200, i % 200 + 1)).collect();
    let file = d.write("nodes.txt", format!("# the fleet\n{nodes}"));
    let out = d.join("serving");
    run(kubepki()
        .args(["issue", "kubelet-serving", "--cert-dir"])
        .arg(d.join("pki"))
        .arg("--nodes")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(["--node-name", "cp1", "--cert-validity", "720h"]))
    .ok();
    for i in [0, 17, 39] {
        let crt = out.join(format!("worker-{i}/kubelet.crt"));
        openssl_verify_purpose(&d.join("pki/ca.crt"), &crt, Some("sslserver")).unwrap();
        let c = cert(&crt);
        assert_eq!(c.subject.to_string(), format!("O=system:nodes, CN=system:node:worker-{i}"));
        let v6: std::net::Ipv6Addr = format!("fd00::{i:x}").parse().unwrap();
        assert_eq!(c.sans.to_string(), format!("DNS:worker-{i}, IP:10.0.0.{}, IP:{v6}", i + 1));
        assert_eq!(c.lifetime().whole_hours(), 720);
        assert_eq!(kubepki_pki::fsio::mode_of(&out.join(format!("worker-{i}/kubelet.key"))).unwrap(), 0o600);
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 40);
    // The same fleet again is refused, and nothing is overwritten.
    let before = tree_hash(&out);
    let r = run(kubepki()
        .args(["issue", "kubelet-serving", "--cert-dir"])
        .arg(d.join("pki"))
        .arg("--nodes")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(["--node-name", "cp1", "--apiserver-advertise-address", "127.0.0.1"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(tree_hash(&out), before);
}

#[test]
fn kubelet_client_and_user_kubeconfigs_work_with_kubectl() {
    let d = TestDir::new();
    let port = free_port();
    init(d.path(), &["--apiserver-bind-port", &port.to_string()]).ok();
    let pki = d.join("pki");
    let _server = HttpsServer::apiserver_on(port, &pki);
    let base = |cmd: &mut Command| {
        cmd.arg("--cert-dir").arg(&pki).args([
            "--apiserver-advertise-address",
            "127.0.0.1",
            "--apiserver-bind-port",
            &port.to_string(),
        ]);
    };
    let mut issue = kubepki();
    issue.args(["issue", "kubelet-client", "--node-name", "worker-7", "--out"]).arg(d.join("worker-7.conf"));
    base(&mut issue);
    run(&mut issue).ok();
    let r =
        run(Command::new("kubectl").arg("--kubeconfig").arg(d.join("worker-7.conf")).args(["get", "--raw", "/"])).ok();
    assert!(r.stdout.contains("O=system:nodes, CN=system:node:worker-7"), "{}", r.stdout);

    let mut user = kubepki();
    user.args([
        "kubeconfig",
        "user",
        "--client-name",
        "alice",
        "--org",
        "developers",
        "--org",
        "oncall",
        "--validity",
        "24h",
    ]);
    base(&mut user);
    let out = run(&mut user).ok();
    let conf = d.write("alice.conf", &out.stdout);
    let r = run(Command::new("kubectl").arg("--kubeconfig").arg(&conf).args(["get", "--raw", "/"])).ok();
    // Both groups, in the one RDN Go writes them in, sorted as DER sorts a SET: shorter first.
    assert!(r.stdout.contains("O=oncall, O=developers, CN=alice"), "{}", r.stdout);
    let client = extract_client_cert(&conf, &d.join("alice.crt"));
    assert_eq!(client.lifetime().whole_hours(), 24);
    assert_eq!(client.subject_string, "O=oncall + O=developers, CN=alice");
}

/// `kubectl --kubeconfig conf config view --raw -o jsonpath=...`: Go's client reads the file.
fn kubectl_view(conf: &Path, jsonpath: &str) -> String {
    let r = run(Command::new("kubectl").arg("--kubeconfig").arg(conf).args([
        "config",
        "view",
        "--raw",
        "-o",
        &format!("jsonpath={jsonpath}"),
    ]));
    assert_eq!(r.code, 0, "kubectl config view: {}", r.stderr);
    r.stdout
}

/// pyca/cryptography's DER of the Name Go's crypto/x509 writes for a pkix.Name with these
/// Organization values and this CommonName: one RDN with every O, then the CN.
const PYCA_GO_NAME: &str = r#"
import sys
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
cn, orgs = sys.argv[1], sys.argv[2:]
attr = lambda oid, v: x509.NameAttribute(oid, v, _type=_ASN1Type.PrintableString)
name = x509.Name([x509.RelativeDistinguishedName([attr(NameOID.ORGANIZATION_NAME, o) for o in orgs]),
                  x509.RelativeDistinguishedName([attr(NameOID.COMMON_NAME, cn)])])
print(name.public_bytes().hex())
"#;

#[test]
fn user_kubeconfigs_take_the_cluster_from_admin_conf() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let (pki, admin) = (d.join("pki"), d.join("admin.conf"));
    // An admin.conf for cluster prod-cluster behind a load balancer, written by kubectl.
    std::fs::remove_file(&admin).unwrap();
    let kubectl_config = |args: &[&str]| {
        let r = run(Command::new("kubectl").arg("--kubeconfig").arg(&admin).arg("config").args(args));
        assert_eq!(r.code, 0, "kubectl config {args:?}: {}", r.stderr);
    };
    let ca_flag = format!("--certificate-authority={}", pki.join("ca.crt").display());
    kubectl_config(&[
        "set-cluster",
        "prod-cluster",
        "--server=https://lb.prod.example:6443",
        &ca_flag,
        "--embed-certs",
    ]);
    kubectl_config(&[
        "set-context",
        "kubernetes-admin@prod-cluster",
        "--cluster=prod-cluster",
        "--user=kubernetes-admin",
    ]);
    kubectl_config(&["use-context", "kubernetes-admin@prod-cluster"]);
    let user = |extra: &[&str]| {
        run(kubepki()
            .args(["kubeconfig", "user", "--client-name", "alice", "--cert-dir"])
            .arg(&pki)
            .arg("--kubeconfig-dir")
            .arg(d.path())
            .args(extra))
    };

    let out = user(&["--org", "a", "--org", "b", "--org", "c"]).ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let conf = d.write("alice.conf", &out.stdout);
    let ca_data = base64::engine::Engine::encode(&base64::engine::general_purpose::STANDARD, d.read("pki/ca.crt"));
    assert_eq!(
        kubectl_view(
            &conf,
            "{.clusters[0].name} {.clusters[0].cluster.server} {.clusters[0].cluster.certificate-authority-data}"
        ),
        format!("prod-cluster https://lb.prod.example:6443 {ca_data}")
    );
    let contexts = run(Command::new("kubectl").arg("--kubeconfig").arg(&conf).args(["config", "get-contexts"])).ok();
    let current = contexts.stdout.lines().find(|l| l.starts_with('*')).unwrap_or_default().to_owned();
    assert_eq!(current.split_whitespace().collect::<Vec<_>>(), ["*", "alice@prod-cluster", "prod-cluster", "alice"]);
    // One O per group, in order, in the one RDN Go writes them in; byte for byte Go's name.
    let client = extract_client_cert(&conf, &d.join("alice.crt"));
    let subject =
        run(Command::new("openssl").args(["x509", "-noout", "-subject", "-in"]).arg(d.join("alice.crt"))).ok();
    assert_eq!(subject.stdout.trim(), "subject=O = a + O = b + O = c, CN = alice");
    openssl_verify_purpose(&pki.join("ca.crt"), &d.join("alice.crt"), Some("sslclient")).unwrap();
    let go_name = run(Command::new("/usr/bin/python3").args(["-c", PYCA_GO_NAME, "alice", "a", "b", "c"])).ok();
    let hex: String = client.raw_subject.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, go_name.stdout.trim());

    // Flags say otherwise: they win, and nothing of admin.conf is used.
    let out = user(&["--cluster-name", "staging", "--control-plane-endpoint", "api.staging.example:7443"]).ok();
    let conf = d.write("alice-staging.conf", &out.stdout);
    assert_eq!(
        kubectl_view(&conf, "{.clusters[0].name} {.clusters[0].cluster.server}"),
        "staging https://api.staging.example:7443"
    );

    // An admin.conf that trusts another CA belongs to another cluster: refused, nothing printed.
    let other_ca = format!("--certificate-authority={}", pki.join("front-proxy-ca.crt").display());
    kubectl_config(&["set-cluster", "prod-cluster", &other_ca, "--embed-certs"]);
    let before = tree_hash(d.path());
    let r = user(&["--org", "a"]).expect_code(2);
    assert!(r.stdout.is_empty());
    let want =
        format!("{}: its cluster \"prod-cluster\" does not trust {}", admin.display(), pki.join("ca.crt").display());
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    assert_eq!(tree_hash(d.path()), before);

    // Without admin.conf and without flags, the server is this host's address, and stderr says so
    // (or, on a host without a default route, the command asks for the address).
    std::fs::remove_file(&admin).unwrap();
    let r = user(&[]);
    match r.code {
        0 => assert!(
            r.stderr.contains("is this host's address (its default route)")
                && r.stderr.contains("admin.conf does not exist"),
            "{}",
            r.stderr
        ),
        _ => assert!(r.code == 2 && r.stderr.contains("default route"), "{}", r.stderr),
    }
}

/// docs/profiles.md's table is the code's table.
#[test]
fn the_documented_profile_table_is_the_code() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/profiles.md")).unwrap();
    for p in Profile::ALL {
        let s = p.spec();
        let cn = match s.common_name {
            kubepki_pki::CommonName::Fixed(cn) => cn.to_owned(),
            kubepki_pki::CommonName::NodeName => "<node name>".to_owned(),
            kubepki_pki::CommonName::NodeUser => "system:node:<node name>".to_owned(),
        };
        let orgs = if s.organizations.is_empty() { "—".to_owned() } else { s.organizations.join(", ") };
        let row =
            format!("| `{}` | `{}.crt` | `{}` | `{cn}` | {orgs} | {} |", s.name, s.base_name, s.ca.name(), s.usage);
        assert!(doc.contains(&row), "docs/profiles.md lacks the row\n{row}");
    }
    for k in kubepki_pki::profiles::KUBECONFIGS {
        let cn = match k.common_name {
            kubepki_pki::CommonName::Fixed(cn) => cn.to_owned(),
            _ => "system:node:<node name>".to_owned(),
        };
        let orgs = if k.organizations.is_empty() { "—".to_owned() } else { k.organizations.join(", ") };
        let endpoint = match k.endpoint {
            kubepki_pki::Endpoint::ControlPlane => "control-plane endpoint",
            kubepki_pki::Endpoint::Local => "local API endpoint",
        };
        let row = format!("| `{}` | `{cn}` | {orgs} | {endpoint} |", k.file_name);
        assert!(doc.contains(&row), "docs/profiles.md lacks the row\n{row}");
    }
}

/// On a terminal, `init` with RSA-4096 keys (seconds of work) shows what it makes, n of m;
/// with output piped, or with `-o json`, nothing but the report.
#[test]
fn key_generation_progress_on_a_terminal_only() {
    let d = TestDir::new();
    let init_cmd = |dir: &Path, extra: &str| {
        format!(
            "{} init --cert-dir {} --kubeconfig-dir {} --node-name cp1 --apiserver-advertise-address 127.0.0.1 \
             --encryption-algorithm RSA-4096{extra}",
            env!("CARGO_BIN_EXE_kubepki"),
            dir.join("pki").display(),
            dir.display()
        )
    };
    // `script` gives the command a pseudo-terminal for stdin, stdout and stderr.
    let tty = d.join("tty");
    std::fs::create_dir_all(&tty).unwrap();
    let r = run(Command::new("script").args(["-qec", &init_cmd(&tty, ""), "/dev/null"]).env_remove("NO_COLOR"));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("init: generating RSA-4096 keys ") && r.stdout.contains("/16 ["), "{}", r.stdout);
    assert!(r.stdout.contains("created   apiserver"), "{}", r.stdout);
    assert!(!r.stdout.contains("\x1b[3"), "no colour: {:?}", r.stdout);

    // Piped (the harness's pipes): the report only, nothing on stderr.
    let piped = d.join("piped");
    let r = run(Command::new("sh").arg("-c").arg(init_cmd(&piped, "")));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{}", r.stdout);
    assert!(!r.stdout.contains("generating"), "{}", r.stdout);
    // On a terminal with -o json: the document only.
    let json = d.join("json");
    let r = run(Command::new("script").args(["-qec", &init_cmd(&json, " -o json"), "/dev/null"]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("generating") && r.stdout.trim_start().starts_with('{'), "{}", r.stdout);
}
