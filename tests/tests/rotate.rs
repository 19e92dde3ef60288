//! `kubepki rotate`: policy, plan, renewal that keeps what must be kept, kubeconfigs, backups,
//! the audit log, the lock, and restoring on failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use kubepki_pki::{Certificate, Kubeconfig, PemSource, PrivateKey};

use crate::common::*;

const LEAVES: [&str; 7] = [
    "apiserver",
    "apiserver-kubelet-client",
    "front-proxy-client",
    "etcd/server",
    "etcd/peer",
    "etcd/healthcheck-client",
    "apiserver-etcd-client",
];
const CONFS: [&str; 5] =
    ["admin.conf", "super-admin.conf", "kubelet.conf", "controller-manager.conf", "scheduler.conf"];

fn rotate(dir: &Path, extra: &[&str]) -> Run {
    run(kubepki().arg("rotate").arg("--cert-dir").arg(dir.join("pki")).arg("--kubeconfig-dir").arg(dir).args(extra))
}

fn leaf(dir: &Path, base: &str) -> (Certificate, PrivateKey) {
    let pki = dir.join("pki");
    let cert =
        Certificate::from_pem_bundle(&std::fs::read(pki.join(format!("{base}.crt"))).unwrap(), base).unwrap().remove(0);
    let key = PrivateKey::from_pem(&std::fs::read_to_string(pki.join(format!("{base}.key"))).unwrap(), base).unwrap();
    (cert, key)
}

fn client(conf: &Path) -> (Certificate, PrivateKey, Kubeconfig) {
    let kc = Kubeconfig::from_yaml(&std::fs::read_to_string(conf).unwrap(), "t").unwrap();
    let user = kc.current().unwrap().user;
    let (Some(PemSource::Embedded(c)), Some(PemSource::Embedded(k))) =
        (kc.client_certificate(&user).unwrap(), kc.client_key(&user).unwrap())
    else {
        panic!("{} has no embedded credentials", conf.display())
    };
    let cert = Certificate::from_pem_bundle(&c, "c").unwrap().remove(0);
    let key = PrivateKey::from_pem(std::str::from_utf8(&k).unwrap(), "k").unwrap();
    (cert, key, kc)
}

/// What readers see of the cert dir and kubeconfigs (without backups and logs), as a hash:
/// never print kubeconfigs in an assertion, they hold keys.
fn pki_hash(dir: &Path) -> String {
    let mut parts = vec![content_hash(&dir.join("pki"))];
    for c in CONFS {
        let body = std::fs::read(dir.join(c)).unwrap_or_default();
        parts.push(format!("{c}:{}:{:?}", body.len(), aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body)));
    }
    parts.join("|")
}

/// The backup directories in `<dir>/tmp` (not kubepki's state dir beside them).
fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("tmp"))
        .map(|e| e.flatten().map(|e| e.path()).filter(|p| !p.ends_with("kubepki")).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn short_lived_certificates_are_renewed_keeping_what_must_be_kept() {
    let d = TestDir::new();
    let port = free_port();
    init(d.path(), &["--cert-validity", "48h", "--apiserver-bind-port", &port.to_string()]).ok();
    let before_leaves: Vec<_> = LEAVES.iter().map(|b| leaf(d.path(), b)).collect();
    let before_clients: Vec<_> = CONFS.iter().map(|c| client(&d.join(c))).collect();
    let cas_before: Vec<String> = ["ca", "front-proxy-ca", "etcd/ca"]
        .iter()
        .flat_map(|c| [d.read(&format!("pki/{c}.crt")), d.read(&format!("pki/{c}.key"))])
        .collect();

    // The dry run plans everything and changes nothing.
    let hash = tree_hash(d.path());
    let plan = rotate(d.path(), &["--renew-before", "72h", "--dry-run", "-o", "json"]).ok();
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["renewals"].as_array().unwrap().len(), 12, "{plan:#}");
    assert_eq!(plan["renewals"][0]["reasons"][0]["kind"], "due");
    assert_eq!(tree_hash(d.path()), hash, "a dry run changed the tree");

    let log = d.join("audit.log");
    rotate(d.path(), &["--renew-before", "72h", "--audit-log", log.to_str().unwrap()]).ok();

    for (base, (old, old_key)) in LEAVES.iter().zip(&before_leaves) {
        let (new, new_key) = leaf(d.path(), base);
        assert_eq!(new.subject, old.subject, "{base}");
        assert_eq!(new.issuer_string, old.issuer_string, "{base}");
        assert_eq!(new.sans, old.sans, "{base}");
        assert_eq!(new.usage, old.usage, "{base}");
        assert_eq!(new.authority_key_id, old.authority_key_id, "{base}");
        assert_ne!(new.serial, old.serial, "{base}");
        assert_ne!(new_key.public_key_der(), old_key.public_key_der(), "{base}: a new key by default");
        assert!(new_key.matches_spki(&new.spki), "{base}: key and certificate match");
        assert_eq!(new.lifetime(), old.lifetime(), "{base}: 48h certificates stay 48h certificates");
        assert!(new.not_after >= old.not_after, "{base}");
    }
    for (conf, (old, old_key, _)) in CONFS.iter().zip(&before_clients) {
        let (new, new_key, _) = client(&d.join(conf));
        assert_eq!(new.subject, old.subject, "{conf}");
        assert_ne!(new.serial, old.serial, "{conf}");
        assert_ne!(new_key.public_key_der(), old_key.public_key_der(), "{conf}");
        assert!(new_key.matches_spki(&new.spki), "{conf}");
        assert_eq!(kubepki_pki::fsio::mode_of(&d.join(conf)).unwrap(), 0o600);
    }
    let cas_after: Vec<String> = ["ca", "front-proxy-ca", "etcd/ca"]
        .iter()
        .flat_map(|c| [d.read(&format!("pki/{c}.crt")), d.read(&format!("pki/{c}.key"))])
        .collect();
    assert_eq!(cas_after, cas_before, "CAs are never touched");
    for (leaf, ca) in [("apiserver", "ca"), ("etcd/server", "etcd/ca"), ("front-proxy-client", "front-proxy-ca")] {
        openssl_verify(&d.join(&format!("pki/{ca}.crt")), &d.join(&format!("pki/{leaf}.crt"))).unwrap();
    }

    // The renewed kubeconfigs work with kubectl against a server presenting the renewed
    // apiserver certificate.
    let pki = d.join("pki");
    let _server = HttpsServer::apiserver_on(port, &pki);
    for conf in CONFS {
        let r = run(Command::new("kubectl").arg("--kubeconfig").arg(d.join(conf)).args(["get", "--raw", "/"]));
        assert_eq!(r.code, 0, "{conf}: {}", r.stderr);
    }

    // The backup holds the previous files, keys 0600.
    let b = backups(d.path());
    assert_eq!(b.len(), 1);
    let old_api = b[0].join(pki.join("apiserver.crt").strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(&old_api).unwrap(), before_leaves[0].0.to_pem().into_bytes());
    let old_key = b[0].join(pki.join("apiserver.key").strip_prefix("/").unwrap());
    assert_eq!(kubepki_pki::fsio::mode_of(&old_key).unwrap(), 0o600);

    // One audit line per renewal, with serials and fingerprints and no key material.
    let audit = std::fs::read_to_string(&log).unwrap();
    assert_eq!(audit.lines().count(), 12);
    let first: serde_json::Value = serde_json::from_str(audit.lines().next().unwrap()).unwrap();
    assert_eq!(first["action"], "renew");
    assert_eq!(first["old"]["serial"], before_leaves[0].0.serial.as_str());
    assert_eq!(first["new"]["serial"], leaf(d.path(), "apiserver").0.serial.as_str());
    assert_eq!(first["keyReused"], false);
    assert!(!audit.contains("PRIVATE KEY") && !audit.contains("LS0tLS1CRUdJTi"), "key material in the audit log");
    for conf in CONFS {
        let key_b64 = {
            let kc = Kubeconfig::from_yaml(&d.read(conf), conf).unwrap();
            let Some(PemSource::Embedded(k)) = kc.client_key(&kc.current().unwrap().user).unwrap() else { panic!() };
            String::from_utf8(k).unwrap()
        };
        assert!(!audit.contains(key_b64.lines().nth(1).unwrap()));
    }

    // A second run, as cron would do it with the default policy, changes nothing.
    let hash = tree_hash(d.path());
    let again = rotate(d.path(), &[]).ok();
    assert!(again.stdout.contains("nothing is due"), "{}", again.stdout);
    assert_eq!(tree_hash(d.path()), hash);
}

/// Flags add what they state; a SAN goes only when asked (`--remove-sans`): the plan shows both.
#[test]
fn san_drift_is_reconciled_and_shown_in_the_plan() {
    let d = TestDir::new();
    init(d.path(), &["--apiserver-cert-extra-sans", "old.example.com"]).ok();
    let flags = [
        "--node-name",
        "cp1",
        "--apiserver-advertise-address",
        "127.0.0.1",
        "--apiserver-cert-extra-sans",
        "10.0.0.100,new.example.com",
        "--remove-sans",
        "old.example.com",
    ];
    let plan = rotate(d.path(), &[&flags[..], &["--dry-run", "-o", "json"]].concat()).ok();
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let renewals = plan["renewals"].as_array().unwrap();
    assert_eq!(renewals.len(), 1, "only the apiserver drifted: {plan:#}");
    assert_eq!(renewals[0]["name"], "apiserver");
    let text = renewals[0]["reasons"][0]["text"].as_str().unwrap();
    assert_eq!(text, "SAN drift +DNS:new.example.com +IP:10.0.0.100 -DNS:old.example.com");

    // Without --remove-sans, the old SAN stays.
    let plan = rotate(d.path(), &[&flags[..6], &["--dry-run", "-o", "json"]].concat()).ok();
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["renewals"][0]["reasons"][0]["text"], "SAN drift +DNS:new.example.com +IP:10.0.0.100");

    rotate(d.path(), &flags).ok();
    let (api, _) = leaf(d.path(), "apiserver");
    assert!(api.sans.to_string().contains("DNS:new.example.com") && api.sans.to_string().contains("IP:10.0.0.100"));
    assert!(!api.sans.to_string().contains("old.example.com"));
    // Reconciled: the same flags again find nothing to do.
    let again = rotate(d.path(), &flags).ok();
    assert!(again.stdout.contains("nothing is due"), "{}", again.stdout);
}

#[test]
fn kubeconfig_copies_are_renewed_keeping_everything_else() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    // A user's copy of admin.conf with extra content and a stale embedded CA.
    let other = TestDir::new();
    init(other.path(), &[]).ok();
    let mut kc = Kubeconfig::from_yaml(&d.read("admin.conf"), "copy").unwrap();
    kc.set_cluster_ca("kubernetes", &other.read("pki/ca.crt")).unwrap();
    let copy = d.write(
        "home/.kube/config",
        format!("{}\n", kc.to_yaml().as_str()).replace("preferences: {}", "preferences:\n  colors: true"),
    );
    std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    rotate(d.path(), &["--force", "config", "--kubeconfig", copy.to_str().unwrap()]).ok();
    let (new, _, kc) = client(&copy);
    assert_ne!(new.serial, client(&d.join("admin.conf")).0.serial, "the copy has its own new certificate");
    let Some(PemSource::Embedded(ca)) = kc.cluster_ca("kubernetes").unwrap() else { panic!() };
    assert_eq!(String::from_utf8(ca).unwrap(), d.read("pki/ca.crt"), "the stale CA copy was refreshed");
    assert!(d.read("home/.kube/config").contains("colors: true"));
    assert_eq!(kubepki_pki::fsio::mode_of(&copy).unwrap(), 0o640, "the file mode is kept");
}

#[test]
fn reuse_key_keeps_the_key_and_changes_the_serial() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let (old, old_key) = leaf(d.path(), "etcd/peer");
    let key_file = d.read("pki/etcd/peer.key");
    rotate(d.path(), &["--force", "etcd-peer", "--reuse-key"]).ok();
    let (new, new_key) = leaf(d.path(), "etcd/peer");
    assert_eq!(new_key.public_key_der(), old_key.public_key_der());
    assert_eq!(d.read("pki/etcd/peer.key"), key_file, "the key file is not rewritten");
    assert_ne!(new.serial, old.serial);
}

#[test]
fn a_renewal_never_outlives_its_ca() {
    let d = TestDir::new();
    init(d.path(), &["--ca-validity", "100h", "--cert-validity", "48h"]).ok();
    let r = rotate(d.path(), &["--force", "apiserver", "--validity", "200h"]).ok();
    assert!(r.stdout.contains("cut back to the CA's"), "{}", r.stdout);
    let (api, _) = leaf(d.path(), "apiserver");
    let ca = Certificate::from_pem_bundle(d.read("pki/ca.crt").as_bytes(), "ca").unwrap().remove(0);
    assert_eq!(api.not_after, ca.not_after);
}

#[test]
fn a_failed_exec_restores_every_file() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let before = pki_hash(d.path());
    let log = d.join("audit.log");
    let r = rotate(d.path(), &["--all", "--exec", "exit 3", "--audit-log", log.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("was restored from"), "{}", r.stderr);
    assert_eq!(pki_hash(d.path()), before, "the cert dir and kubeconfigs are as they were");
    // The plan was shown before anything was written, so a failed run still says what it
    // tried: every renewal with its reason; no result line, since nothing was kept.
    assert!(r.stdout.contains("[rotate] renewing 12:"), "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l.starts_with("apiserver ") && l.contains("forced")), "{}", r.stdout);
    assert!(!r.stdout.contains(" renewed: serial"), "{}", r.stdout);
    let audit = std::fs::read_to_string(&log).unwrap();
    assert_eq!(audit.lines().filter(|l| l.contains("\"action\":\"restore\"")).count(), 12);
}

#[test]
fn exec_sees_the_rotated_names() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let out = d.join("rotated.txt");
    rotate(
        d.path(),
        &["--force", "apiserver,admin.conf", "--exec", &format!("echo \"$KUBEPKI_ROTATED\" > {}", out.display())],
    )
    .ok();
    assert_eq!(std::fs::read_to_string(out).unwrap().trim(), "apiserver admin.conf");
}

#[test]
fn bad_input_changes_nothing() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let before = tree_hash(d.path());
    for (args, want) in [
        (&["--force", "nonesuch"][..], "--force nonesuch: no such certificate"),
        (&["--renew-at", "150%"], "between 0% and 100%"),
        (&["--at", "tomorrow"], "expected RFC 3339 (2027-01-01T00:00:00Z), a date (2027-01-01), now"),
        (&["--kubeconfig", "/nonexistent/kubeconfig"], "does not exist"),
        (&["--all", "--force", "apiserver"], "cannot be used with"),
    ] {
        let r = rotate(d.path(), args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
    assert_eq!(tree_hash(d.path()), before);
}

#[test]
fn two_concurrent_rotations_are_serialized_by_the_lock() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let spawn = || {
        kubepki()
            .arg("rotate")
            .arg("--cert-dir")
            .arg(d.join("pki"))
            .arg("--kubeconfig-dir")
            .arg(d.path())
            .args(["--all", "--encryption-algorithm", "RSA-2048"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // Both ran, one after the other: two backups, and every pair on disk matches.
    assert_eq!(backups(d.path()).len(), 2);
    for base in LEAVES {
        let (cert, key) = leaf(d.path(), base);
        assert!(key.matches_spki(&cert.spki), "{base}");
    }
    for conf in CONFS {
        let (cert, key, _) = client(&d.join(conf));
        assert!(key.matches_spki(&cert.spki), "{conf}");
    }

    // With the lock held and no patience, a run gives up, saying so, and changes nothing.
    let _held = kubepki_pki::lock::DirLock::acquire(&d.join("pki"), std::time::Duration::ZERO).unwrap();
    let before = tree_hash(d.path());
    let r = rotate(d.path(), &["--all", "--lock-timeout", "200ms"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("locked by another kubepki process"), "{}", r.stderr);
    assert_eq!(tree_hash(d.path()), before);
}

fn copy_tree(from: &Path, to: &Path) {
    let r = run(Command::new("cp").arg("-a").arg(from).arg(to));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// Two control-plane nodes of one cluster (`node-a` made by `init`, `node-b` a copy of it) and
/// a real etcd serving on node A's certificates.
fn two_nodes_and_their_etcd() -> (TestDir, PathBuf, PathBuf, Etcd) {
    let root = TestDir::new();
    let (a, b) = (root.join("node-a"), root.join("node-b"));
    std::fs::create_dir(&a).unwrap();
    init(&a, &[]).ok();
    copy_tree(&a, &b);
    let etcd = Etcd::start(&EtcdConfig { name: "cp1", pki: &a.join("pki"), client_cert_auth: true });
    (root, a, b, etcd)
}

/// Two control-plane nodes (two cert dirs of one cluster) on the same schedule: the etcd lock,
/// held in a real etcd, makes them rotate one after the other, and a node that cannot get it
/// in time gives up saying so.
#[test]
fn the_etcd_lock_serializes_nodes_of_a_cluster() {
    let (root, a, b, etcd) = two_nodes_and_their_etcd();
    let log = root.join("exec.log");
    let exec = format!("echo start $(date +%s%N) >> {0}; sleep 1; echo end $(date +%s%N) >> {0}", log.display());
    let spawn = |dir: &Path, timeout: &str| {
        kubepki()
            .arg("rotate")
            .arg("--cert-dir")
            .arg(dir.join("pki"))
            .arg("--kubeconfig-dir")
            .arg(dir)
            .args(["--all", "--etcd-lock", &etcd.client_url, "--lock-timeout", timeout, "--exec", &exec])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (pa, pb) = (spawn(&a, "60s"), spawn(&b, "60s"));
    for p in [pa, pb] {
        let out = p.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let times: Vec<(String, u128)> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let (what, t) = l.split_once(' ').unwrap();
            (what.to_owned(), t.parse().unwrap())
        })
        .collect();
    let kinds: Vec<&str> = times.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(kinds, ["start", "end", "start", "end"], "the two runs overlapped: {times:?}");

    // Node A holds the lock (its --exec sleeps); node B, with little patience, gives up.
    let holding = a.join("holding");
    let slow = format!("touch {}; sleep 3; echo done >> {}", holding.display(), log.display());
    let holder = kubepki()
        .arg("rotate")
        .arg("--cert-dir")
        .arg(a.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(&a)
        .args(["--force", "apiserver", "--etcd-lock", &etcd.client_url, "--exec", &slow])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The hook runs under the lock: once it has started, A holds the lock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !holding.exists() {
        assert!(std::time::Instant::now() < deadline, "node A never held the lock");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let before = tree_hash(&b);
    let r = rotate(&b, &["--all", "--etcd-lock", &etcd.client_url, "--lock-timeout", "1s"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    // The message names the holder (its node, pid and since when) and how long it waited.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let named = format!("is held by {} (pid {}) since 20", host.trim(), holder.id());
    assert!(r.stderr.contains(&named), "{named:?} in {}", r.stderr);
    assert!(r.stderr.contains("gave up after waiting 1s"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {}", r.stderr);
    assert_eq!(tree_hash(&b), before);
    assert!(holder.wait_with_output().unwrap().status.success());
}

/// The etcd lock waits as long as `--lock-timeout` says, well past the 10 s a single etcd
/// request may take (it once gave up after 10 s whatever the flag said); and when its holder is
/// killed, the waiter gets the lock once the holder's lease expires.
#[test]
fn the_etcd_lock_waits_as_long_as_lock_timeout_says_and_outlives_a_killed_holder() {
    use std::os::unix::process::CommandExt;
    let (root, a, b, etcd) = two_nodes_and_their_etcd();
    let marker = root.join("holding");
    let holder = |hold: &str| {
        kubepki()
            .arg("rotate")
            .arg("--cert-dir")
            .arg(a.join("pki"))
            .arg("--kubeconfig-dir")
            .arg(&a)
            .args(["--force", "apiserver", "--etcd-lock", &etcd.client_url])
            .arg("--exec")
            .arg(format!("touch {}; sleep {hold}", marker.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let wait_for_marker = || {
        let start = std::time::Instant::now();
        while !marker.exists() {
            assert!(start.elapsed() < std::time::Duration::from_secs(60), "the holder never ran its hook");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    // A holder that keeps the lock for 14 s: the waiter waits it out.
    let mut first = holder("14");
    wait_for_marker();
    let r = rotate(&b, &["--force", "apiserver", "--etcd-lock", &etcd.client_url, "--lock-timeout", "90s"]);
    assert_eq!(r.code, 0, "the waiter gave up early: {}", r.stderr);
    assert!(first.wait().unwrap().success());
    // A holder killed (with its hook) while it holds the lock: its lease expires after 30 s and
    // the waiter goes on.
    std::fs::remove_file(&marker).unwrap();
    let mut second = holder("600");
    wait_for_marker();
    let pgid = second.id();
    assert_eq!(run(Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")])).code, 0);
    let _ = second.wait();
    let r = rotate(&b, &["--force", "apiserver", "--etcd-lock", &etcd.client_url, "--lock-timeout", "90s"]);
    assert_eq!(r.code, 0, "the waiter did not get the lock of a killed holder: {}", r.stderr);
}

fn secret_data(api: &secrets_api::SecretsApi, ns: &str, name: &str, key: &str) -> Option<String> {
    use base64::Engine as _;
    let s = api.get(ns, name)?;
    let b64 = s["data"][key].as_str()?;
    Some(String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap())
}

/// Secrets declared in the config follow the certificates they mirror, through the real kube
/// client against an in-process Secrets API, with optimistic concurrency (a 409 is retried).
#[test]
fn secrets_follow_the_certificates_they_mirror() {
    use secrets_api::{SecretsApi, tls_secret};
    let d = TestDir::new();
    let reserved = SecretsApi::reserve();
    init(d.path(), &["--apiserver-bind-port", &reserved.port().to_string()]).ok();
    let pki = d.join("pki");
    let api = reserved.serve(&pki.join("apiserver.crt"), &pki.join("apiserver.key"), &pki.join("ca.crt"));
    // An existing, stale copy with a key of its own that must survive.
    let mut stale = tls_secret("kube-system", "front-proxy-client", "old cert", "old key", None);
    stale["data"]["extra"] = serde_json::json!("a2VlcA==");
    api.insert(stale);
    let config = d.write(
        "kubepki.yaml",
        format!(
            "apiVersion: kubepki.io/v1alpha1\nkind: RotationConfiguration\nkubeconfig: {}\nsecrets:\n\
             - secret: kube-system/front-proxy-client\n  source: front-proxy-client\n\
             - secret: backup/etcd-client\n  source: apiserver-etcd-client\n  keys: {{cert: cert.pem, key: key.pem, ca: ''}}\n",
            d.join("admin.conf").display()
        ),
    );
    api.inject_conflict();
    let r = rotate(d.path(), &["--force", "front-proxy-client", "--config", config.to_str().unwrap()]).ok();
    assert!(r.stdout.contains("secret kube-system/front-proxy-client (front-proxy-client): updated"), "{}", r.stdout);
    assert!(r.stdout.contains("secret backup/etcd-client (apiserver-etcd-client): created"), "{}", r.stdout);

    let cert = secret_data(&api, "kube-system", "front-proxy-client", "tls.crt").unwrap();
    assert_eq!(cert, d.read("pki/front-proxy-client.crt"), "the Secret has the renewed certificate");
    assert_eq!(
        secret_data(&api, "kube-system", "front-proxy-client", "tls.key").unwrap(),
        d.read("pki/front-proxy-client.key")
    );
    assert_eq!(
        secret_data(&api, "kube-system", "front-proxy-client", "ca.crt").unwrap(),
        d.read("pki/front-proxy-ca.crt")
    );
    assert_eq!(secret_data(&api, "kube-system", "front-proxy-client", "extra").unwrap(), "keep");
    assert_eq!(
        secret_data(&api, "backup", "etcd-client", "cert.pem").unwrap(),
        d.read("pki/apiserver-etcd-client.crt")
    );
    assert_eq!(secret_data(&api, "backup", "etcd-client", "ca.crt"), None);
    let puts = api.requests().iter().filter(|r| r.starts_with("PUT ")).count();
    assert_eq!(puts, 2, "one 409 and its retry: {:?}", api.requests());

    // In step: a second run reads and writes nothing.
    let before = api.requests().len();
    let again = rotate(d.path(), &["--config", config.to_str().unwrap()]).ok();
    assert!(again.stdout.contains("front-proxy-client): in step"), "{}", again.stdout);
    assert!(api.requests()[before..].iter().all(|r| r.starts_with("GET ")), "{:?}", &api.requests()[before..]);

    // The API gone: the run fails, and the files it wrote are restored.
    drop(api);
    let content = content_hash(&pki);
    let r = rotate(d.path(), &["--force", "front-proxy-client", "--config", config.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("was restored from"), "{}", r.stderr);
    assert_eq!(content_hash(&pki), content);
}

/// The same against a live cluster: `KUBECONFIG=... cargo test -- --ignored live_cluster`.
/// Creates and deletes the Secret `kubepki-test/rotate-live` (the namespace must exist).
#[test]
#[ignore = "needs a live cluster via KUBECONFIG"]
fn live_cluster_secret_sync() {
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let config = d.write(
        "kubepki.yaml",
        format!(
            "apiVersion: kubepki.io/v1alpha1\nkind: RotationConfiguration\nkubeconfig: {kubeconfig}\nsecrets:\n\
             - secret: kubepki-test/rotate-live\n  source: front-proxy-client\n"
        ),
    );
    rotate(d.path(), &["--force", "front-proxy-client", "--config", config.to_str().unwrap()]).ok();
    let got = run(Command::new("kubectl").args([
        "get",
        "secret",
        "-n",
        "kubepki-test",
        "rotate-live",
        "-o",
        "jsonpath={.data.tls\\.crt}",
    ]))
    .ok();
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD.decode(got.stdout.trim()).unwrap();
    assert_eq!(String::from_utf8(pem).unwrap(), d.read("pki/front-proxy-client.crt"));
    run(Command::new("kubectl").args(["delete", "secret", "-n", "kubepki-test", "rotate-live"])).ok();
}

#[test]
fn kubelet_serving_certificates_issued_by_kubepki_are_renewed() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let nodes = d.write("nodes.txt", "worker-1 10.0.1.1\nworker-2 10.0.1.2\n");
    let out = d.join("serving");
    run(kubepki()
        .args(["issue", "kubelet-serving", "--cert-dir"])
        .arg(d.join("pki"))
        .arg("--nodes")
        .arg(&nodes)
        .arg("--out")
        .arg(&out)
        .args(["--node-name", "cp1", "--cert-validity", "48h"]))
    .ok();
    let before =
        Certificate::from_pem_bundle(&std::fs::read(out.join("worker-2/kubelet.crt")).unwrap(), "w").unwrap().remove(0);
    let r =
        rotate(d.path(), &["--renew-before", "72h", "--kubelet-serving-dir", out.to_str().unwrap(), "-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<&str> = v["renewals"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["kubelet-serving/worker-1", "kubelet-serving/worker-2"], "only the 48h certificates are due");
    let after =
        Certificate::from_pem_bundle(&std::fs::read(out.join("worker-2/kubelet.crt")).unwrap(), "w").unwrap().remove(0);
    assert_ne!(after.serial, before.serial);
    assert_eq!((&after.subject, &after.sans, after.lifetime()), (&before.subject, &before.sans, before.lifetime()));
    openssl_verify_purpose(&d.join("pki/ca.crt"), &out.join("worker-2/kubelet.crt"), Some("sslserver")).unwrap();
    let key = PrivateKey::from_pem(&std::fs::read_to_string(out.join("worker-2/kubelet.key")).unwrap(), "k").unwrap();
    assert!(key.matches_spki(&after.spki));
}

/// `--verify-*`: etcd reloads its serving certificate on every handshake, so a rotation of
/// etcd-server verifies; an API server that did not reload serves the old certificate, the
/// check fails, and everything written is restored.
#[test]
fn verify_after_rotation_keeps_or_rolls_back() {
    let d = TestDir::new();
    let port = free_port();
    init(d.path(), &["--apiserver-bind-port", &port.to_string()]).ok();
    let pki = d.join("pki");
    let etcd = Etcd::start(&EtcdConfig { name: "cp1", pki: &pki, client_cert_auth: true });
    let before = leaf(d.path(), "etcd/server").0;
    let r = rotate(d.path(), &["--force", "etcd-server", "--verify-etcd", &etcd.client_url, "-o", "json"]).ok();
    assert_ne!(leaf(d.path(), "etcd/server").0.serial, before.serial, "kept after verification");
    // The JSON (schema version 1) carries every check of the verification, which passed.
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["schemaVersion"], 1);
    let endpoints = v["verification"]["endpoints"].as_array().unwrap();
    assert_eq!((v["verification"]["verdict"].as_str(), endpoints.len()), (Some("passed"), 1), "{v:#}");
    assert_eq!((endpoints[0]["kind"].as_str(), endpoints[0]["url"].as_str()), (Some("etcd"), Some(&*etcd.client_url)));
    let checks = endpoints[0]["checks"].as_array().unwrap();
    let served = checks.iter().find(|c| c["name"] == "served-matches-disk").unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(served["status"], "pass", "{v:#}");
    assert!(checks.iter().all(|c| c["status"] != "fail"), "{v:#}");
    // And the table shows them after the results.
    let r = rotate(d.path(), &["--force", "etcd-server", "--verify-etcd", &etcd.client_url]).ok();
    let results = r.stdout.split("[rotate] verified after the write:").nth(1).unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(
        results.contains(&format!("etcd {}", etcd.client_url)) && results.contains("served-matches-disk"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.find("renewing 1:") < r.stdout.find("etcd-server renewed"), "plan first:\n{}", r.stdout);

    // A stand-in API server that loaded its certificate once and never reloads.
    let _api = HttpsServer::apiserver_on(port, &pki);
    let content = content_hash(&pki);
    let url = format!("https://127.0.0.1:{port}");
    let r = rotate(d.path(), &["--force", "apiserver", "--verify-apiserver", &url, "--verify-wait", "1s"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("served-matches-disk"), "{}", r.stderr);
    assert!(r.stderr.contains("was restored from"), "{}", r.stderr);
    assert_eq!(content_hash(&pki), content, "the rotation was rolled back");
}

/// Cron keeps rotating; `--keep-backups` keeps the newest backups (old private keys) and
/// removes the rest, only once a run has succeeded, and never a directory that is not its own.
#[test]
fn keep_backups_removes_the_oldest_after_a_successful_run() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    std::fs::create_dir_all(d.join("tmp/kubeadm-backup-etcd-2026-11-20")).unwrap();
    let rotate = |extra: &[&str]| {
        run(kubepki()
            .arg("rotate")
            .arg("--cert-dir")
            .arg(d.join("pki"))
            .arg("--kubeconfig-dir")
            .arg(d.path())
            .arg("--all")
            .args(extra))
    };
    for _ in 0..3 {
        rotate(&[]).ok();
    }
    // Three backups of kubepki's, and kubeadm's.
    let before = backups(d.path());
    assert_eq!(before.len(), 4, "{before:?}");
    // A failed run removes nothing (and restores its files).
    let failed = rotate(&["--keep-backups", "1", "--exec", "exit 1"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_eq!(backups(d.path()).len(), 5);
    let r = rotate(&["--keep-backups", "2", "-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let pruned = doc["result"]["prunedBackups"].as_array().unwrap();
    assert_eq!(pruned.len(), 3, "{doc:#}");
    let after = backups(d.path());
    let names: Vec<_> = after.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "kubeadm-backup-etcd-2026-11-20");
    // The newest two: this run's backup and the failed run's.
    let this_run = doc["result"]["backup"].as_str().unwrap();
    assert!(after.iter().any(|p| p.to_str() == Some(this_run)), "{after:?} {this_run}");
    assert!(before[1..].iter().all(|b| !after.contains(b)), "{after:?}");
    // 0 is refused: this run's own backup must stay.
    let zero = rotate(&["--keep-backups", "0"]);
    assert_eq!(zero.code, 2, "{}", zero.stderr);
}

/// The subdirectories of `dir` named as kubepki names its backups, oldest first.
fn kubepki_backups(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("kubepki-backup-2"))
        .collect();
    v.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    v
}

/// Where a backup keeps the copy of `file` (an absolute path, kept under it as given).
fn backed_up(backup: &Path, file: &Path) -> PathBuf {
    backup.join(file.strip_prefix("/").unwrap())
}

/// A cron job with one fixed `--backup-dir`: every run writes its own time-stamped directory
/// under it, `--keep-backups` prunes there, and nothing else in it is touched.
#[test]
fn backup_dir_names_a_parent_that_serves_every_cron_run() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let x = d.join("backups");
    let notes = d.write("backups/notes.txt", "not kubepki's");
    std::fs::create_dir_all(x.join("kubepki-backup-mine")).unwrap();
    let mut runs = Vec::new();
    for _ in 0..3 {
        let before = d.read("pki/apiserver.crt");
        let r = rotate(d.path(), &["--all", "--backup-dir", x.to_str().unwrap(), "--keep-backups", "2", "-o", "json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let backup = PathBuf::from(doc["result"]["backup"].as_str().unwrap());
        assert_eq!(backup.parent(), Some(x.canonicalize().unwrap().as_path()), "{doc:#}");
        runs.push((backup, before));
    }
    let left = kubepki_backups(&x);
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(left, [runs[1].0.clone(), runs[2].0.clone()], "the two newest are kept");
    // The newest holds what the third run replaced: the second run's apiserver.crt.
    let (newest, replaced) = &runs[2];
    let copy = std::fs::read_to_string(backed_up(newest, &d.join("pki/apiserver.crt"))).unwrap();
    assert_eq!(&copy, replaced);
    assert_ne!(&copy, &d.read("pki/apiserver.crt"));
    // Nothing else in the directory is touched; it is 0700 as kubepki made its backups.
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "not kubepki's");
    assert!(x.join("kubepki-backup-mine").is_dir());
    assert_eq!(kubepki_pki::fsio::mode_of(newest).unwrap(), 0o700);
}

/// A relative `--backup-dir` (and cert dir, and audit log) from the working directory: the run's
/// backup directory is absolute in the JSON, in the hook's `$KUBEPKI_BACKUP_DIR` and in the
/// table; the audit log records absolute paths; a missing directory is created 0700.
#[test]
fn relative_backup_dir_and_audit_paths_are_reported_absolute() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let here = d.path().canonicalize().unwrap();
    let rotate_here = |extra: &[&str]| {
        run(kubepki()
            .current_dir(d.path())
            .args(["rotate", "--cert-dir", "pki", "--kubeconfig-dir", ".", "--force", "apiserver"])
            .args(["--backup-dir", "cron/backups", "--audit-log", "audit.jsonl"])
            .args(extra))
    };
    let r = rotate_here(&["-o", "json", "--exec", "printf %s \"$KUBEPKI_BACKUP_DIR\" > hook-env.txt"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let backup = doc["result"]["backup"].as_str().unwrap();
    assert!(backup.starts_with(&format!("{}/cron/backups/kubepki-backup-", here.display())), "{backup}");
    assert_eq!(d.read("hook-env.txt"), backup, "$KUBEPKI_BACKUP_DIR");
    assert_eq!(kubepki_pki::fsio::mode_of(&d.join("cron/backups")).unwrap(), 0o700);
    assert!(Path::new(backup).join("manifest.json").is_file());
    let table = rotate_here(&[]).ok();
    let line = table.stdout.lines().find(|l| l.contains("backed up in")).unwrap_or_default();
    assert!(line.contains(&format!(" {}/cron/backups/kubepki-backup-", here.display())), "{}", table.stdout);
    for record in d.read("audit.jsonl").lines() {
        let v: serde_json::Value = serde_json::from_str(record).unwrap();
        let path = v["path"].as_str().unwrap();
        assert!(path.starts_with(&format!("{}/pki/", here.display())), "{record}");
    }
}

/// `--backup-dir` naming a file is an input error naming it; nothing is written.
#[test]
fn backup_dir_naming_a_file_is_an_input_error() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let file = d.write("backups", "a file");
    let before = tree_hash(d.path());
    let r = rotate(d.path(), &["--all", "--backup-dir", file.to_str().unwrap()]).expect_code(2);
    let named = file.canonicalize().unwrap().display().to_string();
    assert!(r.stderr.contains(&named) && r.stderr.contains("names a file"), "{}", r.stderr);
    assert_eq!(tree_hash(d.path()), before);
}

/// Re-makes the leaf `base` of the cert dir with pyca/cryptography, as another tool would: the
/// same subject and extensions, a new P-256 key, signed by `ca`, valid from now for `seconds`
/// seconds, without a backdate.
const PYCA_LEAF: &str = r#"
import datetime, os, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
pki, base, ca, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
read = lambda p: open(os.path.join(pki, p), "rb").read()
old = x509.load_pem_x509_certificate(read(base + ".crt"))
ca_cert = x509.load_pem_x509_certificate(read(ca + ".crt"))
ca_key = serialization.load_pem_private_key(read(ca + ".key"), None)
key = ec.generate_private_key(ec.SECP256R1())
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
b = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(ca_cert.subject)
     .public_key(key.public_key()).serial_number(x509.random_serial_number())
     .not_valid_before(now).not_valid_after(now + datetime.timedelta(seconds=seconds)))
for ext in old.extensions:
    b = b.add_extension(ext.value, ext.critical)
cert = b.sign(ca_key, hashes.SHA256())
for suffix, data, mode in [(".crt", cert.public_bytes(serialization.Encoding.PEM), 0o644),
        (".key", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                   serialization.NoEncryption()), 0o600)]:
    path = os.path.join(pki, base + suffix)
    os.remove(path)
    open(path, "wb").write(data)
    os.chmod(path, mode)
"#;

/// The current time, to the second, as a certificate's times are.
fn now_seconds() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

#[test]
fn lifetimes_are_kept_to_the_second_across_renewals() {
    let d = TestDir::new();
    init(d.path(), &["--cert-validity", "1h30m"]).ok();
    let pki = d.join("pki");
    for (base, ca, seconds) in
        [("front-proxy-client", "front-proxy-ca", "90"), ("apiserver-etcd-client", "etcd/ca", "5400")]
    {
        let r = run(Command::new("/usr/bin/python3").args(["-c", PYCA_LEAF]).arg(&pki).args([base, ca, seconds]));
        assert_eq!(r.code, 0, "pyca: {}", r.stderr);
    }
    // (name, file, CA, span, backdate): kubepki's 1h30m leaf spans 1h35m from five minutes
    // before its issue; pyca's 90 s and 1h30m leaves span just that, from their issue.
    for (name, base, ca, span, backdate) in [
        ("apiserver-kubelet-client", "apiserver-kubelet-client", "ca", 5700, 300),
        ("front-proxy-client", "front-proxy-client", "front-proxy-ca", 90, 0),
        ("apiserver-etcd-client", "apiserver-etcd-client", "etcd/ca", 5400, 0),
    ] {
        let (original, _) = leaf(d.path(), base);
        assert_eq!((original.not_after - original.not_before).whole_seconds(), span, "{name} before any renewal");
        for round in 1..=3 {
            let before = now_seconds();
            rotate(d.path(), &["--force", name]).ok();
            let after = now_seconds();
            let (cert, key) = leaf(d.path(), base);
            let case = format!("{name}, renewal {round}");
            assert_eq!((cert.not_after - cert.not_before).whole_seconds(), span, "{case}: the span");
            let issued = cert.not_before + time::Duration::seconds(backdate);
            assert!(before <= issued && issued <= after, "{case}: issued {issued}, run {before}..{after}");
            assert_eq!(cert.subject, original.subject, "{case}");
            assert!(key.matches_spki(&cert.spki), "{case}");
            openssl_verify(&pki.join(format!("{ca}.crt")), &pki.join(format!("{base}.crt"))).unwrap();
        }
    }
}

/// A `--verify-*` URL that is not `https://host[:port]` is an input error found before the
/// run writes anything (it was found only after the files were written, and left them).
#[test]
fn a_wrong_verify_url_changes_nothing() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let before = tree_hash(d.path());
    let r = rotate(d.path(), &["--force", "apiserver", "--verify-etcd", "http://127.0.0.1:1"]).expect_code(2);
    assert!(r.stderr.contains("invalid endpoint \"http://127.0.0.1:1\""), "{}", r.stderr);
    assert_eq!(tree_hash(d.path()), before);
}

/// `rotate --at` takes what `check --at` takes: `now`, a date, RFC 3339, a relative time; and
/// both refuse the same nonsense with exit 2.
#[test]
fn at_means_the_same_for_rotate_and_check() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    for at in ["now", "2027-01-01", "2027-01-01T00:00:00Z", "+90d", "-12h"] {
        rotate(d.path(), &["--dry-run", "--at", at]).ok();
        // check judges the tree as of then (12 h ago it was not yet valid: critical, 2 by the
        // monitoring convention), but takes the time: no error.
        let r = run(kubepki().args(["check", "--cert-dir"]).arg(d.join("pki")).args(["--at", at]));
        assert!(r.stderr.trim().is_empty() && r.stdout.contains("apiserver"), "check --at {at}: {}", r.stderr);
    }
    let r = rotate(d.path(), &["--dry-run", "--at", "tomorrow"]).expect_code(2);
    assert!(r.stderr.contains("a date (2027-01-01), now, or +90d"), "{}", r.stderr);
    let r = run(kubepki().args(["check", "--cert-dir"]).arg(d.join("pki")).args(["--at", "tomorrow"])).expect_code(2);
    assert!(r.stderr.contains("a date (2027-01-01), now, or +90d"), "{}", r.stderr);
}
