//! `kubepki recover` on trees made by an independent tool (tests/fixtures/kubeadm_tree.py):
//! every leaf expired 35 days ago, the CAs too, the kubelet's client certificate behind its
//! `kubelet-client-current.pem` link. The result is judged by openssl, etcd and etcdctl, and
//! kubectl; bad input is refused with nothing changed; a SIGKILL at any write leaves every pair
//! whole and a rerun completes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use kubepki_pki::{Certificate, Kubeconfig, PemSource, PrivateKey};
use serde_json::json;

use crate::common::*;
use crate::crash::{assert_consistent, assert_recovers, no_leftovers, points, with_failpoint};

/// A control plane whose leaves (and, with `cas_expired`, CAs) expired 35 days ago, its kubelet
/// dir `<dir>/kubelet` (the link, a kubelet serving pair signed by the cluster CA); the API
/// server's endpoint 127.0.0.1:`port`.
fn dead_cluster(dir: &Path, cas_expired: bool, port: u16) {
    dead_cluster_with(dir, cas_expired, port, "ca");
}

/// [`dead_cluster`] with a kubelet serving pair of this kind (`ca`, `self-signed`).
fn dead_cluster_with(dir: &Path, cas_expired: bool, port: u16, serving: &str) {
    let kubelet = dir.join("kubelet");
    kubeadm_tree(
        dir,
        json!({
            "address": "127.0.0.1",
            "control_plane_endpoint": format!("127.0.0.1:{port}"),
            "key": "ecdsa-p256",
            "expired": "all",
            "cas_expired": cas_expired,
            "kubelet_client_current": kubelet.to_str().unwrap(),
            "kubelet_serving": serving,
        }),
    );
}

fn recover_cmd(dir: &Path) -> Command {
    let mut c = kubepki();
    c.arg("recover")
        .arg("--cert-dir")
        .arg(dir.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(dir)
        .arg("--kubelet-dir")
        .arg(dir.join("kubelet"));
    c
}

/// Everything recover may change: the cert dir, the kubelet dir (links as links), the kubeconfigs.
fn state(dir: &Path) -> String {
    let confs: Vec<String> = ["admin", "super-admin", "kubelet", "controller-manager", "scheduler"]
        .iter()
        .map(|c| std::fs::read_to_string(dir.join(format!("{c}.conf"))).unwrap())
        .collect();
    format!("{} {} {}", tree_hash(&dir.join("pki")), tree_hash(&dir.join("kubelet")), confs.concat())
}

/// The certificate and key of the file the kubelet's link names, checked to match, and the
/// file.
fn kubelet_client(dir: &Path) -> (Certificate, PathBuf) {
    let link = dir.join("kubelet/kubelet-client-current.pem");
    let target = std::fs::read_link(&link).expect("kubelet-client-current.pem is a link");
    let pem = std::fs::read(&target).unwrap();
    let cert = Certificate::from_pem_bundle(&pem, "pem").unwrap().remove(0);
    let key = PrivateKey::from_pem(std::str::from_utf8(&pem).unwrap(), "pem").unwrap();
    assert!(key.matches_spki(&cert.spki), "{}: the key does not match the certificate", target.display());
    (cert, target)
}

/// An ECDSA client certificate signed by the CA files given (openssl, outside the tree).
fn openssl_leaf(ca: &Path, ca_key: &Path, out: &Path) {
    let ext = out.with_extension("ext");
    std::fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n\
         authorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    let key = out.with_extension("key");
    let csr = out.with_extension("csr");
    run(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=untouched",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr))
    .ok();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "30", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(ca)
        .arg("-CAkey")
        .arg(ca_key)
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(out))
    .ok();
}

/// The whole recovery of a cluster whose CAs expired too, checked by independent stacks.
#[test]
fn a_cluster_whose_cas_expired_is_recovered_and_works() {
    let d = TestDir::new();
    let port = free_port();
    dead_cluster(d.path(), true, port);
    let pki = d.join("pki");
    let old_ca = Certificate::from_pem_bundle(&std::fs::read(pki.join("ca.crt")).unwrap(), "ca").unwrap().remove(0);
    let (old_client, old_pem) = kubelet_client(d.path());
    // A certificate recover does not touch, signed by the old CA (openssl signs with an expired CA).
    let outside = TestDir::new();
    let untouched = outside.join("untouched.crt");
    openssl_leaf(&pki.join("ca.crt"), &pki.join("ca.key"), &untouched);
    assert!(openssl_verify(&pki.join("ca.crt"), &untouched).is_err(), "the old CA has expired");
    let nodes = outside.write("nodes.txt", "# workers\nworker-1\nworker-2 10.0.0.22\n");
    // The kubelet's clientCAFile, a copy of ca.crt of its own (`<kubelet dir>/../config.yaml`).
    let client_ca = d.write("kubelet-ca.crt", d.read("pki/ca.crt"));
    d.write(
        "config.yaml",
        format!("kind: KubeletConfiguration\nauthentication:\n  x509:\n    clientCAFile: {}\n", client_ca.display()),
    );
    let workers = outside.join("workers");

    // The dry run changes nothing and plans against the extended CAs (no clamping to them).
    let before = state(d.path());
    let dry = run(recover_cmd(d.path()).args(["--dry-run", "-o", "json"])).ok();
    assert_eq!(state(d.path()), before, "a dry run wrote something");
    let plan: serde_json::Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(plan["cas"].as_array().unwrap().len(), 3, "{plan:#}");
    assert_eq!(plan["rotation"]["renewals"].as_array().unwrap().len(), 12, "{plan:#}");
    assert!(plan["rotation"]["renewals"].as_array().unwrap().iter().all(|r| r["clamped"] == false), "{plan:#}");
    assert_eq!(plan["kubeletClient"]["due"], true);

    let audit = outside.join("audit.jsonl");
    let r =
        run(recover_cmd(d.path()).arg("--nodes").arg(&nodes).arg("--out").arg(&workers).arg("--audit-log").arg(&audit));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("[recover] check: ") && r.stdout.trim_end().ends_with(": OK"), "{}", r.stdout);
    // What to restart, from kubeadm's default wiring (the fixture has no manifests): every
    // control-plane component reads an extended CA, the kubelet its new client certificate.
    assert!(
        r.stdout.contains("what reads the changed files, in restart order (derived from kubeadm's default"),
        "{}",
        r.stdout
    );
    for component in ["1. etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"] {
        assert!(r.stdout.contains(component), "{component}: {}", r.stdout);
    }

    // The CAs: same subject, key and SKI, valid again; what they signed before still chains.
    for (ca, base) in [("ca", "ca"), ("front-proxy-ca", "front-proxy-ca"), ("etcd-ca", "etcd/ca")] {
        let new = Certificate::from_pem_bundle(&std::fs::read(pki.join(format!("{base}.crt"))).unwrap(), ca)
            .unwrap()
            .remove(0);
        assert!(new.not_after > kubepki_pki::OffsetDateTime::now_utc() + time::Duration::days(3000), "{ca}");
        if ca == "ca" {
            assert_eq!(
                (&new.raw_subject, &new.spki, &new.subject_key_id),
                (&old_ca.raw_subject, &old_ca.spki, &old_ca.subject_key_id)
            );
            assert_ne!(new.serial, old_ca.serial);
        }
    }
    assert_eq!(openssl_verify(&pki.join("ca.crt"), &untouched), Ok(()), "an untouched old-CA leaf");
    assert_eq!(d.read("kubelet-ca.crt"), d.read("pki/ca.crt"), "the kubelet's clientCAFile");
    // Every leaf, by openssl.
    for (ca, leaves) in [
        ("ca.crt", &["apiserver", "apiserver-kubelet-client"][..]),
        ("front-proxy-ca.crt", &["front-proxy-client"][..]),
        ("etcd/ca.crt", &["etcd/server", "etcd/peer", "etcd/healthcheck-client", "apiserver-etcd-client"][..]),
    ] {
        for leaf in leaves {
            assert_eq!(openssl_verify(&pki.join(ca), &pki.join(format!("{leaf}.crt"))), Ok(()), "{leaf}");
        }
    }
    assert_eq!(openssl_verify(&pki.join("ca.crt"), &d.join("kubelet/kubelet.crt")), Ok(()), "kubelet serving");
    // Every kubeconfig carries the re-issued CA and a client certificate that verifies.
    for conf in ["admin", "super-admin", "controller-manager", "scheduler", "kubelet"] {
        let kc = Kubeconfig::read_required(&d.join(&format!("{conf}.conf"))).unwrap();
        let Some(PemSource::Embedded(ca)) = kc.cluster_ca(&kc.current().unwrap().cluster).unwrap() else { panic!() };
        assert_eq!(String::from_utf8(ca).unwrap(), d.read("pki/ca.crt"), "{conf}.conf's CA");
    }
    // The kubelet's link: a new kubelet-client-<time>.pem, 0600, its pair whole, its identity kept.
    let (client, pem) = kubelet_client(d.path());
    assert_ne!(pem, old_pem);
    assert!(old_pem.exists(), "the old pem is left, as the kubelet leaves it");
    let name = pem.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("kubelet-client-2") && name.len() == "kubelet-client-2006-01-02-15-04-05.pem".len(),
        "{name}"
    );
    assert_eq!(std::fs::metadata(&pem).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!((client.subject_string.as_str(), client.usage), (old_client.subject_string.as_str(), old_client.usage));
    assert_eq!(client.subject_string, "O=system:nodes, CN=system:node:cp1");
    let cert_only = outside.write("kubelet-client.crt", client.to_pem());
    assert_eq!(openssl_verify(&pki.join("ca.crt"), &cert_only), Ok(()));
    assert!(!d.join("kubelet/kubelet-client-updated.pem").exists());
    // The audit log names every renewal, never a key.
    let log = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(log.lines().count(), 3 + 12 + 1, "{log}");
    assert!(!log.contains("PRIVATE KEY"));

    // etcd on the recovered certificates; etcdctl with the recovered apiserver-etcd-client.
    let etcd = Etcd::start(&EtcdConfig { name: "cp1", pki: &pki, client_cert_auth: true });
    let etcdctl = |args: &[&str]| run(etcdctl_as(&etcd.client_url, &pki, "apiserver-etcd-client").args(args));
    let health = etcdctl(&["endpoint", "health"]);
    assert_eq!(health.code, 0, "{}{}\n{}", health.stdout, health.stderr, etcd.log());
    // The nodes etcd knows, for --nodes-from-etcd.
    for node in ["worker-3", "worker-4"] {
        etcdctl(&["put", &format!("/registry/minions/{node}"), "opaque"]).ok();
    }
    etcdctl(&["put", "/registry/pods/default/x", "opaque"]).ok();
    let from_etcd = outside.join("from-etcd");
    let r = run(recover_cmd(d.path()).args(["--nodes-from-etcd", &etcd.client_url]).arg("--out").arg(&from_etcd));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let mut listed: Vec<String> =
        std::fs::read_dir(&from_etcd).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    listed.sort();
    assert_eq!(listed, ["worker-3", "worker-4"]);

    // Workers: a kubelet.conf and ca.crt each, their client certificates chain to the CA.
    for node in ["worker-1", "worker-2", "worker-3"] {
        let dir = if node == "worker-3" { from_etcd.join(node) } else { workers.join(node) };
        assert_eq!(std::fs::read_to_string(dir.join("ca.crt")).unwrap(), d.read("pki/ca.crt"), "{node}");
        let kc = Kubeconfig::read_required(&dir.join("kubelet.conf")).unwrap();
        let user = kc.current().unwrap().user;
        let Some(PemSource::Embedded(c)) = kc.client_certificate(&user).unwrap() else { panic!() };
        let crt = outside.write(&format!("{node}.crt"), &c);
        assert_eq!(openssl_verify(&dir.join("ca.crt"), &crt), Ok(()), "{node}");
        assert_eq!(
            Certificate::from_pem_bundle(&c, "c").unwrap()[0].subject.common_name,
            format!("system:node:{node}")
        );
        assert_eq!(kc.server(&kc.current().unwrap().cluster), Some(format!("https://127.0.0.1:{port}").as_str()));
    }

    // kubectl with the recovered admin.conf, against a server presenting the recovered apiserver
    // certificate and demanding a client certificate of the re-issued CA.
    if have("kubectl") {
        let _server = HttpsServer::apiserver_on(port, &pki);
        let r = run(Command::new("kubectl").arg("--kubeconfig").arg(d.join("admin.conf")).args(["get", "--raw", "/"]));
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("kubernetes-admin"), "{}", r.stdout);
    } else {
        eprintln!("kubectl is not installed: its part was skipped");
    }
}

/// Leaves expired under valid CAs: the CAs are left as they are; a second run changes nothing.
#[test]
fn expired_leaves_under_valid_cas_are_renewed_and_a_rerun_changes_nothing() {
    let d = TestDir::new();
    dead_cluster_with(d.path(), false, 6443, "self-signed");
    let ca = d.read("pki/ca.crt");
    let old_serving = Certificate::from_pem_bundle(d.read("kubelet/kubelet.crt").as_bytes(), "s").unwrap();
    let r = run(&mut recover_cmd(d.path()));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(d.read("pki/ca.crt"), ca, "a valid CA is not extended");
    assert!(!r.stdout.contains("extending CA"), "{}", r.stdout);
    assert_eq!(openssl_verify(&d.join("pki/ca.crt"), &d.join("pki/apiserver.crt")), Ok(()));
    kubelet_client(d.path());
    // The kubelet's self-signed serving pair, renewed as the kubelet makes one: the serving
    // certificate for the same names, then its own new CA; openssl verifies the one by the other.
    let chain = Certificate::from_pem_bundle(d.read("kubelet/kubelet.crt").as_bytes(), "s").unwrap();
    assert_eq!(chain.len(), 2);
    assert!(chain[0].not_after > kubepki_pki::OffsetDateTime::now_utc() + time::Duration::days(300));
    assert!(chain[0].sans.same_names(&old_serving[0].sans), "{:?}", chain[0].sans);
    assert!(chain[0].subject.common_name.starts_with("cp1@") && chain[1].subject.common_name.starts_with("cp1-ca@"));
    let key = PrivateKey::from_pem(&d.read("kubelet/kubelet.key"), "k").unwrap();
    assert!(key.matches_spki(&chain[0].spki));
    let (own, leaf) = (d.write("own-ca.crt", chain[1].to_pem()), d.write("serving.crt", chain[0].to_pem()));
    assert_eq!(openssl_verify(&own, &leaf), Ok(()));
    std::fs::remove_file(own).unwrap();
    std::fs::remove_file(leaf).unwrap();
    let after = state(d.path());
    let again = run(&mut recover_cmd(d.path())).ok();
    assert!(again.stdout.contains("nothing is due"), "{}", again.stdout);
    assert_eq!(state(d.path()), after, "a second run wrote something");
}

/// No CA key, a CA key that is not the CA's, an unreadable kubelet client certificate: a clear
/// message naming the file, exit 2, nothing changed.
#[test]
fn bad_input_is_refused_with_nothing_changed() {
    let base = TestDir::new();
    dead_cluster(base.path(), true, 6443);
    let other_key = TestDir::new();
    kubeadm_tree(other_key.path(), json!({"key": "ecdsa-p256"}));
    type Spoil = fn(&Path, &Path);
    let cases: [(&str, Spoil, &str); 3] = [
        ("no CA key", |d, _| std::fs::remove_file(d.join("pki/ca.key")).unwrap(), "ca.key"),
        (
            "a CA key not matching",
            |d, other| {
                std::fs::copy(other.join("pki/ca.key"), d.join("pki/ca.key")).unwrap();
            },
            "ca.key",
        ),
        (
            "an unreadable kubelet pem",
            |d, _| {
                let target = std::fs::read_link(d.join("kubelet/kubelet-client-current.pem")).unwrap();
                std::fs::write(target, "garbage\n").unwrap();
            },
            "kubelet-client-current.pem",
        ),
    ];
    for (case, spoil, names) in cases {
        let d = TestDir::new();
        copy_tree(base.path(), d.path());
        spoil(d.path(), other_key.path());
        let before = state(d.path());
        let r = run(&mut recover_cmd(d.path()));
        assert_eq!(r.code, 2, "{case}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(names), "{case}: the message names {names}: {}", r.stderr);
        assert_eq!(state(d.path()), before, "{case}: something was written");
    }
}

/// `cp -a` of a fixture tree, its kubelet link re-pointed into the copy (the kubelet writes an
/// absolute link).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::remove_dir(to).unwrap();
    assert_eq!(run(Command::new("cp").arg("-a").arg(from).arg(to)).code, 0);
    let link = to.join("kubelet/kubelet-client-current.pem");
    let target = std::fs::read_link(&link).unwrap();
    let name = target.file_name().unwrap();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(to.join("kubelet").join(name), &link).unwrap();
    let conf = std::fs::read_to_string(to.join("kubelet.conf")).unwrap();
    let conf = conf.replace(from.to_str().unwrap(), to.to_str().unwrap());
    std::fs::write(to.join("kubelet.conf"), conf).unwrap();
}

/// SIGKILL at every write step of the CA transaction and the rotation's, and at the kubelet
/// link's swap: every pair is old or new, and a rerun completes.
#[test]
fn recover_killed_at_every_write_step_is_consistent_and_completes() {
    let base = TestDir::new();
    dead_cluster(base.path(), true, 6443);
    // The CA transaction: 3 CAs, 5 kubeconfigs; then the rotation's: 8 pairs, 4 kubeconfigs.
    let mut steps: Vec<String> = points(8);
    steps.extend(["commit:journaled@2", "commit:renamed-one@12", "commit:renamed-all@2"].map(String::from));
    steps.push("recover:kubelet-link".into());
    for point in steps {
        let d = TestDir::new();
        copy_tree(base.path(), d.path());
        let r = with_failpoint(&mut recover_cmd(d.path()), &point);
        assert_eq!(r.code, -1, "{point}: the failpoint did not fire: {}{}", r.stdout, r.stderr);
        assert_recovers(d.path(), &format!("recover killed at {point}"));
        kubelet_client(d.path());
        let r = run(&mut recover_cmd(d.path()));
        assert_eq!(r.code, 0, "rerun after {point}: {}{}", r.stdout, r.stderr);
        no_leftovers(d.path(), &point);
        assert_consistent(d.path(), &format!("rerun after {point}"));
        let (client, _) = kubelet_client(d.path());
        assert_eq!(openssl_verify(&d.join("pki/ca.crt"), &d.write("client.crt", client.to_pem())), Ok(()), "{point}");
    }
}

/// A certificate of the tree that starts later than this node's clock says: the plan warns,
/// naming it, before anything is written.
#[test]
fn a_clock_behind_the_tree_is_warned_about() {
    let d = TestDir::new();
    dead_cluster(d.path(), false, 6443);
    // A leaf the CA signed with a NotBefore two hours ahead (a node whose clock runs fast made it).
    let script = r#"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
pki = sys.argv[1]
ca = x509.load_pem_x509_certificate(open(pki + "/ca.crt", "rb").read())
ca_key = serialization.load_pem_private_key(open(pki + "/ca.key", "rb").read(), None)
key = ec.generate_private_key(ec.SECP256R1())
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ahead")]))
        .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(hours=2)).not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256()))
open(pki + "/ahead.key", "wb").write(key.private_bytes(serialization.Encoding.PEM,
     serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
open(pki + "/ahead.crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
"#;
    run(Command::new("/usr/bin/python3").arg("-c").arg(script).arg(d.join("pki"))).ok();
    let before = state(d.path());
    let r = run(recover_cmd(d.path()).arg("--dry-run")).ok();
    let warning =
        r.stdout.lines().find(|l| l.starts_with("[recover] warning: this node's clock")).unwrap_or_else(|| {
            panic!("no clock warning:\n{}", r.stdout);
        });
    assert!(warning.contains("ahead") && warning.contains("--backdate"), "{warning}");
    assert_eq!(state(d.path()), before);
    // In step with the tree, no warning.
    let calm = TestDir::new();
    dead_cluster(calm.path(), false, 6443);
    let r = run(recover_cmd(calm.path()).arg("--dry-run")).ok();
    assert!(!r.stdout.contains("clock"), "{}", r.stdout);
}

/// `--backdate` reaches every certificate recover makes, the workers' kubelet.conf among them
/// (they used to get kubeadm's five minutes whatever was asked).
#[test]
fn the_backdate_asked_for_reaches_the_workers_certificates() {
    let d = TestDir::new();
    dead_cluster(d.path(), false, 6443);
    let outside = TestDir::new();
    let nodes = outside.write("nodes.txt", "worker-1\n");
    let workers = outside.join("workers");
    let r = run(recover_cmd(d.path()).args(["--backdate", "2h", "--nodes"]).arg(&nodes).arg("--out").arg(&workers));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let kc = Kubeconfig::read_required(&workers.join("worker-1/kubelet.conf")).unwrap();
    let user = kc.current().unwrap().user;
    let Some(PemSource::Embedded(pem)) = kc.client_certificate(&user).unwrap() else { panic!("no embedded client") };
    let worker = Certificate::from_pem_bundle(&pem, "worker-1").unwrap().remove(0);
    let apiserver =
        Certificate::from_pem_bundle(d.read("pki/apiserver.crt").as_bytes(), "apiserver").unwrap().remove(0);
    for (name, cert) in [("worker-1", &worker), ("apiserver", &apiserver)] {
        let span = cert.not_after - cert.not_before;
        assert_eq!(span, time::Duration::days(365) + time::Duration::hours(2), "{name}: {span}");
    }
}

/// A node filesystem under `--root`: `kubelet.conf` and the kubelet's link name node paths
/// (`/var/lib/kubelet/pki/...`); the new link names the node's path too, and the old pem is
/// left a file.
#[test]
fn a_node_filesystem_under_root_is_recovered_with_the_nodes_paths() {
    let root = TestDir::new();
    let kubelet = root.join("var/lib/kubelet/pki");
    kubeadm_tree(
        &root.join("etc/kubernetes"),
        json!({"expired": "all", "key": "ecdsa-p256", "kubelet_client_current": kubelet.to_str().unwrap()}),
    );
    // As the node has them: paths without the root.
    let prefix = root.path().to_str().unwrap();
    let conf = root.join("etc/kubernetes/kubelet.conf");
    std::fs::write(&conf, std::fs::read_to_string(&conf).unwrap().replace(prefix, "")).unwrap();
    let link = kubelet.join("kubelet-client-current.pem");
    let old = std::fs::read_link(&link).unwrap();
    let old_name = old.file_name().unwrap().to_owned();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(Path::new("/var/lib/kubelet/pki").join(&old_name), &link).unwrap();

    // The node's time zone, as its systems have it: /etc/localtime a link into the zone files.
    std::fs::create_dir_all(root.join("usr/share/zoneinfo/Asia")).unwrap();
    std::fs::copy("/usr/share/zoneinfo/Asia/Tokyo", root.join("usr/share/zoneinfo/Asia/Tokyo")).unwrap();
    std::os::unix::fs::symlink("/usr/share/zoneinfo/Asia/Tokyo", root.join("etc/localtime")).unwrap();

    let before = time::OffsetDateTime::now_utc();
    let r = run(kubepki().arg("recover").arg("--root").arg(root.path()));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let target = std::fs::read_link(&link).unwrap();
    // Named in the node's local time (UTC+9), as the kubelet names it.
    let stamp =
        target.file_name().unwrap().to_str().unwrap().trim_start_matches("kubelet-client-").trim_end_matches(".pem");
    let format = time::macros::format_description!("[year]-[month]-[day]-[hour]-[minute]-[second]");
    let local = time::PrimitiveDateTime::parse(stamp, &format).unwrap().assume_offset(time::macros::offset!(+9));
    assert!((local - before).whole_seconds().abs() < 300, "{stamp} is not Tokyo's time at {before}");
    assert!(target.to_str().unwrap().starts_with("/var/lib/kubelet/pki/kubelet-client-2"), "{}", target.display());
    assert_ne!(target.file_name().unwrap(), old_name);
    assert!(std::fs::symlink_metadata(kubelet.join(&old_name)).unwrap().is_file(), "the old pem is left a file");
    let pem = std::fs::read(kubelet.join(target.file_name().unwrap())).unwrap();
    let cert = Certificate::from_pem_bundle(&pem, "pem").unwrap().remove(0);
    let key = PrivateKey::from_pem(std::str::from_utf8(&pem).unwrap(), "pem").unwrap();
    assert!(key.matches_spki(&cert.spki));
    let check = run(kubepki().arg("check").arg("--root").arg(root.path()));
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
}

/// A second control-plane node of the same dead cluster, given the first node's extended CAs:
/// nothing is re-issued, its own copies (the kubelet's kubelet.conf among them, which no renewal
/// rewrites) are brought in step, and the check of the result is OK.
#[test]
fn a_second_node_given_the_first_nodes_extended_cas_brings_its_copies_in_step() {
    let base = TestDir::new();
    dead_cluster(base.path(), true, 6443);
    let (first, second) = (TestDir::new(), TestDir::new());
    copy_tree(base.path(), first.path());
    copy_tree(base.path(), second.path());
    run(&mut recover_cmd(first.path())).ok();
    for ca in ["pki/ca.crt", "pki/front-proxy-ca.crt", "pki/etcd/ca.crt"] {
        std::fs::copy(first.join(ca), second.join(ca)).unwrap();
    }
    let r = run(&mut recover_cmd(second.path()));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("extending CA"), "{}", r.stdout);
    assert!(r.stdout.contains("[recover] bringing copies of CA ca in step"), "{}", r.stdout);
    assert_eq!(second.read("pki/ca.crt"), first.read("pki/ca.crt"));
    for conf in ["kubelet", "admin"] {
        let kc = Kubeconfig::read_required(&second.join(&format!("{conf}.conf"))).unwrap();
        let Some(PemSource::Embedded(ca)) = kc.cluster_ca(&kc.current().unwrap().cluster).unwrap() else { panic!() };
        assert_eq!(String::from_utf8(ca).unwrap(), second.read("pki/ca.crt"), "{conf}.conf");
    }
    // In step now: a rerun has nothing to do.
    let again = run(&mut recover_cmd(second.path())).ok();
    assert!(!again.stdout.contains("copies of CA"), "{}", again.stdout);
}
