//! An HA control plane as docs/ha.md sets it up: node 1 made by `init`, nodes 2 and 3 joined
//! from a copy of its cert dir (`init --join-from`), a real 3-member etcd cluster with each
//! member on its own node's certificates, and a client writing throughout.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Three control-plane nodes under `d`: `cp1` by init, `cp2` and `cp3` joined from it.
fn three_nodes(d: &TestDir) -> Vec<PathBuf> {
    let cp1 = d.join("cp1");
    init(&cp1, &[]).ok();
    let mut nodes = vec![cp1.clone()];
    for name in ["cp2", "cp3"] {
        nodes.push(join(&cp1, &d.join(name), name));
    }
    nodes
}

/// Node `name` at `node`, joined from the cert dir of `first` (`init --join-from`).
pub(crate) fn join(first: &Path, node: &Path, name: &str) -> PathBuf {
    run(kubepki()
        .arg("init")
        .arg("--join-from")
        .arg(first.join("pki"))
        .arg("--cert-dir")
        .arg(node.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(node)
        .args(["--node-name", name, "--apiserver-advertise-address", "127.0.0.1"]))
    .ok();
    node.to_path_buf()
}

/// `rotate --all` on `node` with the cluster-wide lock, its hook logging when it held the lock
/// and holding it for `hold`.
fn rotate_with_lock(node: &Path, urls: &str, hold: Duration) -> Child {
    let windows = node.join("windows");
    let exec = format!(
        "echo start $(date +%s%N) >> '{w}'; sleep {s}; echo end $(date +%s%N) >> '{w}'",
        w = windows.display(),
        s = hold.as_secs()
    );
    kubepki()
        .arg("rotate")
        .arg("--cert-dir")
        .arg(node.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(node)
        .args(["--all", "--etcd-lock", urls, "--lock-timeout", "2m", "--exec", &exec])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The (start, end) nanosecond times a node's hook logged.
pub(crate) fn windows(node: &Path) -> Vec<(u128, u128)> {
    let text = std::fs::read_to_string(node.join("windows")).unwrap_or_default();
    let times: Vec<(String, u128)> = text
        .lines()
        .map(|l| {
            let (what, t) = l.split_once(' ').unwrap();
            (what.to_owned(), t.parse().unwrap())
        })
        .collect();
    times.chunks(2).map(|c| (c[0].1, c[1].1)).collect()
}

#[test]
fn three_nodes_rotate_in_turn_under_the_etcd_lock_while_etcd_keeps_writing() {
    if !have("etcd") {
        return;
    }
    let d = TestDir::new();
    let nodes = three_nodes(&d);
    let pkis: Vec<PathBuf> = nodes.iter().map(|n| n.join("pki")).collect();
    let cluster = EtcdCluster::start_nodes(&pkis);
    let urls = cluster.client_urls.join(",");
    let writer = Writer::start(cluster.client_urls.clone(), &pkis[0]);
    progress(&writer, 20);

    // Node 1 holds the lock longer than the 10 s any single etcd request may take; nodes 2 and 3
    // start while it holds it and must wait their turn, not give up.
    let mut runs = vec![rotate_with_lock(&nodes[0], &urls, Duration::from_secs(12))];
    let deadline = Instant::now() + Duration::from_secs(60);
    while windows_started(&nodes[0]) == 0 {
        assert!(Instant::now() < deadline, "node 1 never held the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    runs.push(rotate_with_lock(&nodes[1], &urls, Duration::from_secs(1)));
    runs.push(rotate_with_lock(&nodes[2], &urls, Duration::from_secs(1)));
    for (i, child) in runs.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "node {}: {}", i + 1, String::from_utf8_lossy(&out.stderr));
    }
    progress(&writer, 20);

    // The hold windows never overlap, and nodes 2 and 3 went after node 1.
    let mut all: Vec<(u128, u128, usize)> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let w = windows(node);
        assert_eq!(w.len(), 1, "node {}: {w:?}", i + 1);
        all.push((w[0].0, w[0].1, i + 1));
    }
    all.sort();
    assert_eq!(all[0].2, 1, "node 1 held the lock first: {all:?}");
    for pair in all.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "hold windows overlap: {all:?}");
    }

    // Each member serves its node's renewed certificate (etcd reads it at each handshake) and
    // accepts every node's renewed clients.
    for (url, own) in cluster.client_urls.iter().zip(&pkis) {
        let on_disk = kubepki_pki::read_certs(&own.join("etcd/server.crt")).unwrap().unwrap().remove(0);
        assert_eq!(served(url).serial, on_disk.serial, "{url}");
        for pki in &pkis {
            run(etcdctl_healthcheck(url, pki).arg("endpoint").arg("health")).ok();
        }
    }
    let (ok, retries, failed) = writer.finish();
    eprintln!("three_nodes_rotate_in_turn: {ok} writes, {retries} retries, {failed} failed");
    assert_eq!(failed, 0, "writes failed during the rotations");
}

fn windows_started(node: &Path) -> usize {
    std::fs::read_to_string(node.join("windows")).unwrap_or_default().lines().filter(|l| l.starts_with("start")).count()
}

/// `rotate-ca` on node `i` (0-based) of `nodes`, with the cluster's etcd.
fn rotate_ca(nodes: &[PathBuf], i: usize, urls: &str, phase: &str, extra: &[&std::ffi::OsStr]) -> Run {
    run(kubepki()
        .args(["rotate-ca", phase, "--ca", "etcd-ca", "--cert-dir"])
        .arg(nodes[i].join("pki"))
        .arg("--kubeconfig-dir")
        .arg(&nodes[i])
        .args(["--etcd-lock", urls, "--node-name", &format!("cp{}", i + 1)])
        .args(extra))
}

#[test]
fn an_etcd_ca_rotation_across_three_nodes_is_held_together_through_etcd() {
    if !have("etcd") || !have("etcdctl") {
        return;
    }
    let d = TestDir::new();
    let nodes = three_nodes(&d);
    let pkis: Vec<PathBuf> = nodes.iter().map(|n| n.join("pki")).collect();
    // A client of the old etcd CA, kept aside: refused once the rotation is retired.
    let old_client = d.join("old-client");
    std::fs::create_dir_all(old_client.join("etcd")).unwrap();
    for f in ["etcd/ca.crt", "etcd/healthcheck-client.crt", "etcd/healthcheck-client.key"] {
        std::fs::copy(pkis[0].join(f), old_client.join(f)).unwrap();
    }
    let mut cluster = EtcdCluster::start_nodes(&pkis);
    let urls = cluster.client_urls.join(",");
    let writer = Writer::start(cluster.client_urls.clone(), &pkis[0]);
    progress(&writer, 20);
    let ca = |i: usize, phase: &str, extra: &[&std::ffi::OsStr]| rotate_ca(&nodes, i, &urls, phase, extra);

    ca(0, "prepare", &[]).ok();
    // Node 2 may not make a second new CA: it is told to adopt node 1's.
    let before = tree_hash(&nodes[1]);
    let r = ca(1, "prepare", &[]).expect_code(2);
    assert!(r.stderr.contains("prepared on cp1") && r.stderr.contains("--from"), "{}", r.stderr);
    assert_eq!(tree_hash(&nodes[1]), before);
    let staged =
        |i: usize| std::fs::read(nodes[i].join("tmp/kubepki/pki/ca-rotation/etcd-ca/new/etcd/ca.crt")).unwrap();
    for i in [1, 2] {
        // What the operator copies: node 1's rotation directory.
        let copy = d.join(&format!("cp1-rotation-for-cp{}", i + 1));
        let from = nodes[0].join("tmp/kubepki/pki/ca-rotation/etcd-ca");
        assert!(std::process::Command::new("cp").arg("-a").arg(&from).arg(&copy).status().unwrap().success());
        let r = ca(i, "prepare", &["--from".as_ref(), copy.as_os_str()]).ok();
        assert!(r.stdout.contains("adopted the new CA"), "{}", r.stdout);
        assert_eq!(staged(i), staged(0), "node {} staged another CA", i + 1);
    }

    ca(0, "trust", &[]).ok();
    // Node 1 may not reissue while nodes 2 and 3 do not trust the new CA yet.
    let before = tree_hash(&pkis[0]);
    let r = ca(0, "reissue", &[]).expect_code(2);
    assert!(r.stderr.contains("cp2 (at prepare), cp3 (at prepare) have not completed `trust`"), "{}", r.stderr);
    assert_eq!(tree_hash(&pkis[0]), before);
    for i in [1, 2] {
        ca(i, "trust", &[]).ok();
    }
    // Each member reads its node's bundle at start-up: restart them one at a time.
    cluster.rolling_restart();
    writer.reload(&pkis[0]);
    progress(&writer, 20);

    let r = ca(0, "reissue", &[]).ok();
    assert!(
        r.stdout.contains("still to run `kubepki rotate-ca reissue` on: cp2 (at trust), cp3 (at trust)"),
        "{}",
        r.stdout
    );
    for i in [1, 2] {
        ca(i, "reissue", &[]).ok();
    }
    cluster.rolling_restart();
    writer.reload(&pkis[0]);
    progress(&writer, 20);

    // Every node's phase, as status shows it from any node.
    let r = ca(2, "status", &["-o".as_ref(), "json".as_ref()]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let phases: Vec<(String, String)> = v["cluster"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].as_str().unwrap().to_owned(), n["phase"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        phases,
        [("cp1".into(), "reissue".into()), ("cp2".into(), "reissue".into()), ("cp3".into(), "reissue".into())]
    );

    for i in 0..3 {
        ca(i, "retire", &[]).ok();
    }
    cluster.rolling_restart();
    writer.reload(&pkis[0]);
    progress(&writer, 20);

    // The old CA's client is refused everywhere; each node's own renewed one is accepted.
    for (url, pki) in cluster.client_urls.iter().zip(&pkis) {
        let r = run(etcdctl_healthcheck(url, &old_client).args(["endpoint", "health", "--command-timeout=3s"]));
        assert_ne!(r.code, 0, "{url} still accepts a client of the old etcd CA");
        run(etcdctl_healthcheck(url, pki).arg("endpoint").arg("health")).ok();
    }
    // Retired everywhere: the cluster's records are gone, ready for the next rotation.
    let r = ca(0, "status", &["-o".as_ref(), "json".as_ref()]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["cluster"]["rotation"].is_null(), "{}", r.stdout);

    let (ok, retries, failed) = writer.finish();
    eprintln!("etcd-ca across three nodes: {ok} writes, {retries} retries, {failed} failed");
    assert_eq!(failed, 0, "writes failed during the rotation");
}

#[test]
fn a_service_account_key_rotation_across_three_nodes_is_held_together_through_etcd() {
    if !have("etcd") {
        return;
    }
    let d = TestDir::new();
    let nodes = three_nodes(&d);
    let etcd = Etcd::start(&EtcdConfig { name: "cp1", pki: &nodes[0].join("pki"), client_cert_auth: true });
    let sa = |i: usize, phase: &str, extra: &[&std::ffi::OsStr]| {
        run(kubepki()
            .args(["rotate-sa", phase, "--cert-dir"])
            .arg(nodes[i].join("pki"))
            .arg("--kubeconfig-dir")
            .arg(&nodes[i])
            .args(["--etcd-lock", &etcd.client_url, "--node-name", &format!("cp{}", i + 1)])
            .args(extra))
    };
    let read = |i: usize, f: &str| std::fs::read(nodes[i].join(f)).unwrap();

    sa(0, "prepare", &[]).ok();
    let r = sa(1, "prepare", &[]).expect_code(2);
    assert!(r.stderr.contains("prepared on cp1") && r.stderr.contains("--from"), "{}", r.stderr);
    for i in [1, 2] {
        let copy = d.join(&format!("cp1-sa-rotation-for-cp{}", i + 1));
        let from = nodes[0].join("tmp/kubepki/pki/sa-rotation");
        assert!(std::process::Command::new("cp").arg("-a").arg(&from).arg(&copy).status().unwrap().success());
        sa(i, "prepare", &["--from".as_ref(), copy.as_os_str()]).ok();
        assert_eq!(
            read(i, "tmp/kubepki/pki/sa-rotation/new/sa.key"),
            read(0, "tmp/kubepki/pki/sa-rotation/new/sa.key"),
            "node {} staged another key",
            i + 1
        );
    }
    sa(0, "trust", &[]).ok();
    let before = tree_hash(&nodes[0].join("pki"));
    let r = sa(0, "reissue", &[]).expect_code(2);
    assert!(r.stderr.contains("cp2 (at prepare), cp3 (at prepare) have not completed `trust`"), "{}", r.stderr);
    assert_eq!(tree_hash(&nodes[0].join("pki")), before);
    for i in [1, 2] {
        sa(i, "trust", &[]).ok();
    }
    for i in 0..3 {
        sa(i, "reissue", &[]).ok();
    }
    // Every API server signs with the same key and trusts the same set.
    for i in [1, 2] {
        assert_eq!(read(i, "pki/sa.key"), read(0, "pki/sa.key"));
        assert_eq!(read(i, "pki/sa.pub"), read(0, "pki/sa.pub"));
    }
    std::thread::sleep(Duration::from_secs(2));
    for i in 0..3 {
        sa(i, "retire", &["--max-token-lifetime".as_ref(), "1s".as_ref()]).ok();
    }
    let r = sa(0, "status", &["-o".as_ref(), "json".as_ref(), "--max-token-lifetime".as_ref(), "1s".as_ref()]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["cluster"], serde_json::json!([]), "the records outlived the rotation: {}", r.stdout);
    for i in [1, 2] {
        assert_eq!(read(i, "pki/sa.pub"), read(0, "pki/sa.pub"));
    }
}
