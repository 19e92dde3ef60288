//! `kubepki rotate-ca`: the overlap-bundle CA rotation, proved on a live 3-member etcd cluster
//! with a client writing through all four phases and rolling restarts.

use std::path::Path;
use std::process::Command;

use kubepki_pki::Certificate;

use crate::common::*;

fn rotate_ca(dir: &Path, phase: &str, ca: &str, extra: &[&str]) -> Run {
    run(kubepki()
        .args(["rotate-ca", phase, "--ca", ca, "--cert-dir"])
        .arg(dir.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(dir)
        .args(extra))
}

fn certs(path: &Path) -> Vec<Certificate> {
    Certificate::from_pem_bundle(&std::fs::read(path).unwrap(), &path.display().to_string()).unwrap()
}

#[test]
fn etcd_ca_rotation_keeps_a_three_member_cluster_writing() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    let old_ca = certs(&pki.join("etcd/ca.crt")).remove(0);
    let mut cluster = EtcdCluster::start(&pki, 3);
    let writer = Writer::start(cluster.client_urls.clone(), &pki);
    progress(&writer, 20);

    // 1. prepare: nothing live changes.
    let before = tree_hash(&pki);
    rotate_ca(d.path(), "prepare", "etcd-ca", &[]).ok();
    assert_eq!(tree_hash(&pki), before, "prepare must not touch the cert dir");
    let new_ca = certs(&d.join("tmp/kubepki/pki/ca-rotation/etcd-ca/new/etcd/ca.crt")).remove(0);
    assert_ne!(new_ca.spki, old_ca.spki);
    progress(&writer, 10);

    // 2. trust: the bundle; etcd reads it only at start-up, so members restart one at a time.
    let r = rotate_ca(d.path(), "trust", "etcd-ca", &[]).ok();
    assert!(
        r.stdout.contains("1. etcd: reads") && r.stdout.contains("(--trusted-ca-file, --peer-trusted-ca-file)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("2. kube-apiserver: reads") && r.stdout.contains("(--etcd-cafile)"), "{}", r.stdout);
    let bundle = certs(&pki.join("etcd/ca.crt"));
    assert_eq!(bundle, vec![old_ca.clone(), new_ca.clone()]);
    openssl_verify(&pki.join("etcd/ca.crt"), &pki.join("etcd/server.crt")).unwrap();
    cluster.rolling_restart();
    writer.reload(&pki);
    progress(&writer, 20);

    // Keep a client certificate of the old CA, to prove at the end that it is refused.
    let old_client = d.write("old-client.crt", d.read("pki/apiserver-etcd-client.crt"));
    let old_key = d.write("old-client.key", d.read("pki/apiserver-etcd-client.key"));

    // 3. reissue: the new CA signs; etcd picks up its new serving and peer certificates on the
    // next handshake by itself; the client (the API server) restarts.
    let r = rotate_ca(d.path(), "reissue", "etcd-ca", &[]).ok();
    for name in ["etcd-server", "etcd-peer", "etcd-healthcheck-client", "apiserver-etcd-client"] {
        assert!(r.stdout.contains(&format!("reissued {name}")), "{}", r.stdout);
    }
    assert_eq!(certs(&pki.join("etcd/ca.crt"))[0], new_ca, "the new CA signs");
    for leaf in ["etcd/server.crt", "etcd/peer.crt", "apiserver-etcd-client.crt"] {
        certs(&pki.join(leaf))[0].verify_issued_by(&new_ca).unwrap_or_else(|e| panic!("{leaf}: {e}"));
    }
    for url in &cluster.client_urls {
        // A new connection sees the new serving certificate without a restart.
        served(url).verify_issued_by(&new_ca).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    writer.reload(&pki);
    progress(&writer, 20);

    // 4. retire: only the new CA; members restart again to forget the old one.
    rotate_ca(d.path(), "retire", "etcd-ca", &[]).ok();
    assert_eq!(certs(&pki.join("etcd/ca.crt")), vec![new_ca.clone()]);
    cluster.rolling_restart();
    writer.reload(&pki);
    progress(&writer, 20);

    let (ok, retries, failed) = writer.finish();
    eprintln!("etcd CA rotation: {ok} writes, {retries} retried attempts, {failed} failed");
    assert_eq!(failed, 0, "writes failed during the rotation ({retries} retried attempts)");

    // Every served certificate — client and peer ports of every member — chains only to the
    // new CA.
    for url in cluster.client_urls.iter().chain(cluster.peer_urls()) {
        let cert = served(url);
        cert.verify_issued_by(&new_ca).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert!(cert.verify_issued_by(&old_ca).is_err(), "{url} still chains to the old CA");
    }
    // A client holding an old-CA certificate is refused by every member.
    for url in &cluster.client_urls {
        let r = run(Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", url, "--dial-timeout", "3s", "--command-timeout", "3s"])
            .arg("--cacert")
            .arg(pki.join("etcd/ca.crt"))
            .arg("--cert")
            .arg(&old_client)
            .arg("--key")
            .arg(&old_key)
            .args(["get", "/kubepki/w1"]));
        assert_ne!(r.code, 0, "{url} accepted an old-CA client");
        // And the new healthcheck client is accepted.
        let ok = run(etcdctl_healthcheck(url, &pki).args(["endpoint", "health"]));
        assert_eq!(ok.code, 0, "{url}: {}{}", ok.stdout, ok.stderr);
    }
    let status = rotate_ca(d.path(), "status", "etcd-ca", &["-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["phase"], "retire");
    assert!(v["signedBy"].as_array().unwrap().iter().all(|s| s["ca"] == "new"), "{v:#}");
    assert!(d.join("tmp/kubepki/pki/ca-rotation/etcd-ca/old/etcd/ca.key").exists(), "the old CA is kept");
}

/// The cluster CA: kubeconfigs carry the bundle, kubectl keeps working through every phase
/// against a server that trusts what the phase says.
#[test]
fn cluster_ca_rotation_keeps_kubeconfigs_working() {
    let d = TestDir::new();
    let port = free_port();
    init(d.path(), &["--apiserver-bind-port", &port.to_string()]).ok();
    let pki = d.join("pki");
    let kubectl =
        |conf: &str| run(Command::new("kubectl").arg("--kubeconfig").arg(d.join(conf)).args(["get", "--raw", "/"]));
    let serve = || HttpsServer::apiserver_on(port, &pki);

    rotate_ca(d.path(), "prepare", "ca", &["--cross-sign"]).ok();
    assert!(d.join("tmp/kubepki/pki/ca-rotation/ca/cross-signed.crt").exists());
    rotate_ca(d.path(), "trust", "ca", &[]).ok();
    let bundle = d.read("pki/ca.crt");
    let admin = kubepki_pki::Kubeconfig::from_yaml(&d.read("admin.conf"), "admin").unwrap();
    let Some(kubepki_pki::PemSource::Embedded(ca_data)) = admin.cluster_ca("kubernetes").unwrap() else { panic!() };
    assert_eq!(String::from_utf8(ca_data).unwrap(), bundle, "kubeconfigs carry the bundle");
    {
        let _server = serve();
        for conf in ["admin.conf", "kubelet.conf", "scheduler.conf"] {
            assert_eq!(kubectl(conf).code, 0, "{conf} after trust");
        }
    }
    rotate_ca(d.path(), "reissue", "ca", &[]).ok();
    {
        // The API server restarted with its reissued certificate and the bundle.
        let _server = serve();
        for conf in ["admin.conf", "super-admin.conf", "controller-manager.conf"] {
            let r = kubectl(conf);
            assert_eq!(r.code, 0, "{conf} after reissue: {}", r.stderr);
        }
    }
    rotate_ca(d.path(), "retire", "ca", &[]).ok();
    let _server = serve();
    for conf in ["admin.conf", "kubelet.conf", "scheduler.conf", "controller-manager.conf", "super-admin.conf"] {
        let r = kubectl(conf);
        assert_eq!(r.code, 0, "{conf} after retire: {}", r.stderr);
    }
    assert_eq!(certs(&pki.join("ca.crt")).len(), 1);
}

#[test]
fn phases_run_in_order_and_abort_goes_back() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    let r = rotate_ca(d.path(), "trust", "front-proxy-ca", &[]).expect_code(2);
    assert!(r.stderr.contains("this phase follows prepare"), "{}", r.stderr);
    let original = content_hash(&pki);
    rotate_ca(d.path(), "prepare", "front-proxy-ca", &[]).ok();
    rotate_ca(d.path(), "prepare", "front-proxy-ca", &[]).ok(); // idempotent
    rotate_ca(d.path(), "trust", "front-proxy-ca", &[]).ok();
    assert_eq!(certs(&pki.join("front-proxy-ca.crt")).len(), 2);
    let r = rotate_ca(d.path(), "retire", "front-proxy-ca", &[]).expect_code(2);
    assert!(r.stderr.contains("this phase follows reissue"), "{}", r.stderr);
    let trusted = content_hash(&pki);
    rotate_ca(d.path(), "reissue", "front-proxy-ca", &[]).ok();
    // Back to trust: the old CA signs again and front-proxy-client is the old one.
    rotate_ca(d.path(), "abort", "front-proxy-ca", &[]).ok();
    assert_eq!(content_hash(&pki), trusted);
    rotate_ca(d.path(), "abort", "front-proxy-ca", &[]).ok();
    assert_eq!(content_hash(&pki), original);
    rotate_ca(d.path(), "abort", "front-proxy-ca", &[]).ok();
    assert!(!d.join("tmp/kubepki/pki/ca-rotation/front-proxy-ca").exists());
    // An --exec that fails undoes the phase.
    rotate_ca(d.path(), "prepare", "front-proxy-ca", &[]).ok();
    let r = rotate_ca(d.path(), "trust", "front-proxy-ca", &["--exec", "exit 1"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(content_hash(&pki), original);
    // An external CA cannot be rotated by kubepki.
    std::fs::remove_file(pki.join("etcd/ca.key")).unwrap();
    let r = rotate_ca(d.path(), "prepare", "etcd-ca", &[]).expect_code(2);
    assert!(r.stderr.contains("externally managed"), "{}", r.stderr);
}

/// Regression: reissue with the staged CA's key gone is refused before it writes anything; it
/// once wrote the new CA certificate beside the old CA's key, a pair no command could load.
#[test]
fn reissue_without_the_staged_key_is_refused_and_writes_nothing() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    rotate_ca(d.path(), "prepare", "front-proxy-ca", &[]).ok();
    rotate_ca(d.path(), "trust", "front-proxy-ca", &[]).ok();
    let trusted = content_hash(&pki);
    std::fs::remove_file(d.join("tmp/kubepki/pki/ca-rotation/front-proxy-ca/new/front-proxy-ca.key")).unwrap();
    let r = rotate_ca(d.path(), "reissue", "front-proxy-ca", &[]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stderr.contains("the staged CA's key is missing"), "{}", r.stderr);
    assert_eq!(content_hash(&pki), trusted);
}

/// The live CA's key removed by hand between prepare and trust: trust refuses (exit 2), naming
/// the key, and writes nothing (it used to go on without keeping the old key for an undo).
#[test]
fn trust_without_the_live_key_is_refused_and_writes_nothing() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    rotate_ca(d.path(), "prepare", "front-proxy-ca", &[]).ok();
    std::fs::remove_file(pki.join("front-proxy-ca.key")).unwrap();
    let prepared = tree_hash(d.path());
    let r = rotate_ca(d.path(), "trust", "front-proxy-ca", &[]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("front-proxy-ca.key is absent"), "{}", r.stderr);
    assert_eq!(tree_hash(d.path()), prepared);
}

/// `rotate-ca PHASE --ca CA` run from `cwd` with the cert dir and kubeconfig dir as given
/// (relative to `cwd`, or not).
fn rotate_ca_from(cwd: &Path, phase: &str, ca: &str, cert_dir: &str, kubeconfig_dir: &str, extra: &[&str]) -> Run {
    run(kubepki()
        .current_dir(cwd)
        .args(["rotate-ca", phase, "--ca", ca, "--cert-dir", cert_dir, "--kubeconfig-dir", kubeconfig_dir])
        .args(extra))
}

/// The cluster CA's prepare and trust run from the node's directory with relative paths (trust
/// rewrites ca.crt and every kubeconfig); status and abort from another directory, with other
/// relative paths to the same dirs, find the same rotation and restore everything.
#[test]
fn abort_from_another_directory_restores_a_rotation_started_with_relative_paths() {
    let d = TestDir::new();
    let (a, b) = (d.join("A"), d.join("B"));
    std::fs::create_dir_all(&b).unwrap();
    init(&a, &[]).ok();
    let before = tree_hash(&a);
    rotate_ca_from(&a, "prepare", "ca", "pki", ".", &[]).ok();
    rotate_ca_from(&a, "trust", "ca", "pki", ".", &[]).ok();
    assert_eq!(certs(&a.join("pki/ca.crt")).len(), 2);
    let state: serde_json::Value =
        serde_json::from_str(&d.read("A/tmp/kubepki/pki/ca-rotation/ca/state.json")).unwrap();
    let canonical = a.canonicalize().unwrap();
    assert_eq!(state["certDir"], canonical.join("pki").display().to_string(), "{state:#}");
    assert_eq!(state["kubeconfigDir"], canonical.display().to_string(), "{state:#}");
    let backup = state["history"][1]["backups"][0].as_str().unwrap();
    assert!(
        backup.starts_with(&format!("{}/tmp/kubepki/pki/ca-rotation/ca/backups/", canonical.display())),
        "{state:#}"
    );

    // A later phase keeps the kubeconfigs prepare recorded in step, not others.
    let trusted = content_hash(&a);
    let r = rotate_ca_from(&b, "reissue", "ca", "../A/pki", ".", &[]).expect_code(2);
    assert!(r.stderr.contains(&format!("--kubeconfig-dir {}", canonical.display())), "{}", r.stderr);
    assert_eq!(content_hash(&a), trusted);

    let status = rotate_ca_from(&b, "status", "ca", "../A/pki", "../A", &["-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["phase"], "trust", "{v:#}");
    let r = rotate_ca_from(&b, "abort", "ca", "../A/pki", "../A", &["-o", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["phase"], "prepare", "{v:#}");
    assert!(
        v["restored"].as_array().unwrap().iter().any(|p| p == &canonical.join("admin.conf").display().to_string()),
        "{v:#}"
    );
    assert_eq!(certs(&a.join("pki/ca.crt")).len(), 1, "the bundle is gone");
    rotate_ca_from(&b, "abort", "ca", "../A/pki", "../A", &[]).ok();
    assert!(!a.join("tmp/kubepki/pki/ca-rotation").exists());
    assert_eq!(tree_hash(&a), before, "the node is as before prepare");
}

/// An abort whose backup was deleted restores nothing, exits 1 and names the backup and the
/// files left; the state stays at the phase. A copied tree's state is refused.
#[test]
fn abort_without_its_backup_exits_1_and_names_what_is_left() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    rotate_ca(d.path(), "prepare", "front-proxy-ca", &[]).ok();
    rotate_ca(d.path(), "trust", "front-proxy-ca", &[]).ok();
    let backup = d.join("tmp/kubepki/pki/ca-rotation/front-proxy-ca/backups/trust-1");
    std::fs::remove_dir_all(&backup).unwrap();
    let before = tree_hash(d.path());
    let r = rotate_ca(d.path(), "abort", "front-proxy-ca", &[]).expect_code(1);
    let canonical = d.path().canonicalize().unwrap();
    for want in [
        format!(
            "cannot undo phase trust: its backup {}/tmp/kubepki/pki/ca-rotation/front-proxy-ca/backups/trust-1 is missing",
            canonical.display()
        ),
        "nothing was restored".to_owned(),
        format!("Left as the phase wrote them: {}/pki/front-proxy-ca.crt", canonical.display()),
        "the rotation stays at phase trust".to_owned(),
    ] {
        assert!(r.stderr.contains(&want), "no {want:?} in {}", r.stderr);
    }
    assert!(!r.stdout.contains("back at phase"), "{}", r.stdout);
    assert_eq!(tree_hash(d.path()), before, "nothing was written");
    let status = rotate_ca(d.path(), "status", "front-proxy-ca", &["-o", "json"]).ok();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&status.stdout).unwrap()["phase"], "trust");

    // The same tree copied elsewhere: its state names the original cert dir and is refused.
    let elsewhere = TestDir::new();
    let copy = elsewhere.join("copy");
    let cp = run(Command::new("cp").arg("-a").arg(d.path()).arg(&copy));
    assert_eq!(cp.code, 0, "{}", cp.stderr);
    let copied = tree_hash(&copy);
    let r = rotate_ca(&copy, "abort", "front-proxy-ca", &[]).expect_code(2);
    assert!(
        r.stderr.contains(&format!("records a rotation of the cert dir {}/pki", canonical.display())),
        "{}",
        r.stderr
    );
    assert_eq!(tree_hash(&copy), copied);
}

/// A state file of an older kubepki: backups relative to the working directory of the phase,
/// no cert dir recorded. It is read with each backup where kubepki always puts them, so an
/// abort from anywhere restores.
#[test]
fn an_older_state_with_relative_backups_is_aborted_from_anywhere() {
    let d = TestDir::new();
    let a = d.join("A");
    init(&a, &[]).ok();
    let before = content_hash(&a.join("pki"));
    rotate_ca_from(&a, "prepare", "front-proxy-ca", "pki", ".", &[]).ok();
    rotate_ca_from(&a, "trust", "front-proxy-ca", "pki", ".", &[]).ok();
    // What kubepki wrote before it recorded absolute paths (taken with --cert-dir pki), where it
    // kept a rotation then: beside the cert dir.
    std::fs::create_dir(a.join("kubepki-ca-rotation")).unwrap();
    std::fs::rename(a.join("tmp/kubepki/pki/ca-rotation/front-proxy-ca"), a.join("kubepki-ca-rotation/front-proxy-ca"))
        .unwrap();
    let state_path = a.join("kubepki-ca-rotation/front-proxy-ca/state.json");
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    let object = state.as_object_mut().unwrap();
    object.remove("certDir");
    object.remove("kubeconfigDir");
    for record in object["history"].as_array_mut().unwrap() {
        let record = record.as_object_mut().unwrap();
        record.remove("written");
        for b in record["backups"].as_array_mut().unwrap() {
            let name = Path::new(b.as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned();
            *b = serde_json::json!(format!("./kubepki-ca-rotation/front-proxy-ca/backups/{name}"));
        }
    }
    std::fs::write(&state_path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    assert!(d.read("A/kubepki-ca-rotation/front-proxy-ca/state.json").contains("\"./kubepki-ca-rotation/"));

    let r = rotate_ca_from(d.path(), "abort", "front-proxy-ca", "A/pki", "A", &[]).ok();
    assert!(r.stdout.contains("back at phase prepare"), "{}", r.stdout);
    assert_eq!(content_hash(&a.join("pki")), before, "restored");
    // Saved again with absolute paths.
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    assert_eq!(state["certDir"], a.canonicalize().unwrap().join("pki").display().to_string(), "{state:#}");
}

/// `rotate-ca` runs its hook and undoes its phase through the rotation library's rollback: a
/// failed `--exec` after reissue is undone back to trust and the restore is in the audit log;
/// a wrong `--verify-*` URL is an input error before the phase writes anything.
#[test]
fn a_failed_hook_after_reissue_is_undone_and_audited() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    rotate_ca(d.path(), "prepare", "front-proxy-ca", &[]).ok();
    let prepared = content_hash(&pki);
    let r = rotate_ca(d.path(), "trust", "front-proxy-ca", &["--verify-etcd", "http://127.0.0.1:1"]).expect_code(2);
    assert!(r.stderr.contains("invalid endpoint"), "{}", r.stderr);
    assert_eq!(content_hash(&pki), prepared, "nothing was written");
    rotate_ca(d.path(), "trust", "front-proxy-ca", &[]).ok();
    let trusted = content_hash(&pki);

    let log = d.join("audit.jsonl");
    let r =
        rotate_ca(d.path(), "reissue", "front-proxy-ca", &["--exec", "exit 1", "--audit-log", log.to_str().unwrap()])
            .expect_code(1);
    assert!(
        r.stderr.contains("--exec \"exit 1\" failed (exit status: 1); the reissue phase was undone (back at trust)"),
        "{}",
        r.stderr
    );
    assert_eq!(content_hash(&pki), trusted);
    let audit = std::fs::read_to_string(&log).unwrap();
    let actions: Vec<serde_json::Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let actions: Vec<(&str, &str)> =
        actions.iter().map(|a| (a["action"].as_str().unwrap(), a["name"].as_str().unwrap())).collect();
    assert_eq!(actions, [("renew", "front-proxy-client"), ("restore", "front-proxy-client")]);
    let status = rotate_ca(d.path(), "status", "front-proxy-ca", &["-o", "json"]).ok();
    assert!(status.stdout.contains("\"phase\": \"trust\""), "{}", status.stdout);
}

/// Runs a hint as printed, with `kubepki` on PATH, from `/`.
fn run_hint(hint: &str) -> Run {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_kubepki")).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    run(Command::new("sh").arg("-c").arg(hint).current_dir("/").env("PATH", path).env("NO_COLOR", "1"))
}

/// Every phase's "next:" is a complete command (the CA, the cert dir, the kubeconfig dir),
/// which runs as printed; reissue against an etcd that was not restarted after trust fails on
/// TLS, and the error names the restart and the command to run again.
#[test]
fn next_steps_are_complete_commands_and_a_tls_refusal_names_the_restart() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    let etcd = Etcd::start(&EtcdConfig { name: "cp1", pki: &pki, client_cert_auth: true });
    let flags = format!("--ca etcd-ca --cert-dir {} --kubeconfig-dir {}", pki.display(), d.path().display());
    let r = rotate_ca(d.path(), "prepare", "etcd-ca", &[]).ok();
    let next = format!("[rotate-ca] next: kubepki rotate-ca trust {flags}\n");
    assert!(r.stdout.ends_with(&next), "{}", r.stdout);
    let r = run_hint(&format!("kubepki rotate-ca trust {flags}"));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&format!("kubepki rotate-ca reissue {flags}\n")), "{}", r.stdout);

    // etcd was not restarted: it still trusts only the old etcd CA for client certificates.
    let before = content_hash(&pki);
    let r = rotate_ca(d.path(), "reissue", "etcd-ca", &["--verify-etcd", &etcd.client_url, "--verify-wait", "2s"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("not restarted after `kubepki rotate-ca trust`"), "{}", r.stderr);
    // The components that read what trust wrote, each with its command (kubeadm's wiring: no manifests).
    let manifest = d.join("manifests/etcd.yaml");
    assert!(r.stderr.contains(&format!("restart them: etcd (mv {} ", manifest.display())), "{}", r.stderr);
    assert!(r.stderr.contains("), then kube-apiserver (mv "), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("then run kubepki rotate-ca reissue {flags} again")), "{}", r.stderr);
    assert_eq!(content_hash(&pki), before, "everything reissue wrote was restored");
}
