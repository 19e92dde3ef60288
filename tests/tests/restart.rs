//! What to restart after a command wrote PKI files (`kubepki_rotator::rotation::restart`): derived from the
//! static pod manifests of a kubeadm-made node (`tests/fixtures/kubeadm_tree.py` with
//! `manifests`, kubeadm's flags), or from kubeadm's wiring when the node has none; shown after
//! the results and as the `restart` array of the JSON.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::*;

/// `rotate` on the tree at `dir` (`<dir>/pki`, `<dir>`), plus `extra`.
fn rotate(dir: &Path, extra: &[&str]) -> Run {
    run(kubepki().arg("rotate").arg("--cert-dir").arg(dir.join("pki")).arg("--kubeconfig-dir").arg(dir).args(extra))
}

fn rotate_json(dir: &Path, extra: &[&str]) -> Value {
    let r = rotate(dir, &[extra, &["-o", "json"]].concat());
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

fn components(restart: &Value) -> Vec<&str> {
    restart.as_array().unwrap().iter().map(|r| r["component"].as_str().unwrap()).collect()
}

fn entry<'a>(restart: &'a Value, component: &str) -> &'a Value {
    restart.as_array().unwrap().iter().find(|r| r["component"] == component).unwrap_or_else(|| panic!("{restart:#}"))
}

#[test]
fn a_renewed_client_certificate_names_only_the_component_whose_manifest_reads_it() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"manifests": true}));
    let v = rotate_json(d.path(), &["--force", "apiserver-etcd-client"]);
    let restart = &v["restart"];
    assert_eq!(components(restart), ["kube-apiserver"], "{restart:#}");
    let a = entry(restart, "kube-apiserver");
    let manifest = d.join("manifests/kube-apiserver.yaml");
    assert_eq!(a["source"], "manifest");
    assert_eq!(a["manifest"], json!(manifest));
    assert_eq!(a["reloadsItself"], false);
    assert_eq!(
        a["files"][0],
        json!({"path": d.join("pki/apiserver-etcd-client.crt"), "flags": ["--etcd-certfile"], "reloads": false})
    );
    assert_eq!(a["files"][1]["flags"], json!(["--etcd-keyfile"]));
    let command = a["command"].as_str().unwrap();
    assert!(command.starts_with(&format!("mv {} ", manifest.display())) && command.contains("sleep 20"), "{command}");
    assert!(command.ends_with(&format!(" {}", manifest.display())), "{command}");
}

#[test]
fn etcds_serving_certificate_reloads_by_itself_and_a_kubeconfig_names_its_reader() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"manifests": true}));
    let v = rotate_json(d.path(), &["--force", "etcd-server"]);
    assert_eq!(components(&v["restart"]), ["etcd"]);
    let etcd = entry(&v["restart"], "etcd");
    assert_eq!(etcd["reloadsItself"], true);
    assert_eq!(etcd["command"], Value::Null);
    assert!(etcd["why"].as_str().unwrap().contains("every new connection"), "{etcd:#}");

    let v = rotate_json(d.path(), &["--force", "controller-manager.conf"]);
    assert_eq!(components(&v["restart"]), ["kube-controller-manager"]);
    let cm = entry(&v["restart"], "kube-controller-manager");
    assert_eq!(
        cm["files"][0]["flags"],
        json!(["--authentication-kubeconfig", "--authorization-kubeconfig", "--kubeconfig"])
    );
    assert!(cm["command"].as_str().unwrap().contains("manifests/kube-controller-manager.yaml"), "{cm:#}");

    // The table: after the results, in restart order, with the command to copy.
    let r = rotate(d.path(), &["--force", "etcd-peer,scheduler.conf,apiserver"]).ok();
    let lines: Vec<&str> = r.stdout.lines().skip_while(|l| !l.contains("what reads the changed files")).collect();
    assert!(
        lines[0].contains(&format!("derived from the static pod manifests in {}", d.join("manifests").display())),
        "{}",
        r.stdout
    );
    assert!(
        lines[1].starts_with("[rotate]   1. etcd: reads") && lines[2].contains("nothing to do, it reloads by itself"),
        "{}",
        r.stdout
    );
    assert!(
        lines[3].starts_with("[rotate]   2. kube-apiserver: reads") && lines[4].contains("reloads by itself"),
        "{}",
        r.stdout
    );
    assert!(lines[5].starts_with("[rotate]   3. kube-scheduler: reads"), "{}", r.stdout);
    assert!(lines[6].starts_with("[rotate]      restart: mv "), "{}", r.stdout);
}

#[test]
fn without_manifests_kubeadms_wiring_is_assumed_and_said() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({}));
    let v = rotate_json(d.path(), &["--force", "apiserver-kubelet-client"]);
    assert_eq!(components(&v["restart"]), ["kube-apiserver"]);
    let a = entry(&v["restart"], "kube-apiserver");
    assert_eq!(a["source"], "kubeadm-default");
    assert_eq!(a["files"][0]["flags"], json!(["--kubelet-client-certificate"]));
    assert!(a["command"].as_str().unwrap().contains(&d.join("manifests/kube-apiserver.yaml").display().to_string()));
    let r = rotate(d.path(), &["--force", "kubelet.conf"]).ok();
    assert!(r.stdout.contains("derived from kubeadm's default wiring"), "{}", r.stdout);
    assert!(
        r.stdout.contains("1. kubelet: reads") && r.stdout.contains("restart: systemctl restart kubelet"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_manifest_naming_another_cert_dir_is_followed() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"manifests": {"kube-apiserver": "/srv/pki"}}));
    // The API server reads /srv/pki, not the renewed file: nothing on this node reads it.
    let v = rotate_json(d.path(), &["--force", "apiserver-etcd-client"]);
    assert_eq!(v["restart"], json!([]), "{v:#}");
    // The other components' manifests still name the cert dir.
    let v = rotate_json(d.path(), &["--force", "etcd-server,front-proxy-client"]);
    assert_eq!(components(&v["restart"]), ["etcd"], "{v:#}");
}

#[test]
fn rotate_ca_phases_list_what_reads_what_they_wrote() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"manifests": true}));
    let phase = |phase: &str, ca: &str| -> Value {
        let r = run(kubepki()
            .args(["rotate-ca", phase, "--ca", ca, "-o", "json", "--cert-dir"])
            .arg(d.join("pki"))
            .arg("--kubeconfig-dir")
            .arg(d.path()))
        .ok();
        serde_json::from_str(&r.stdout).unwrap()
    };
    assert_eq!(phase("prepare", "etcd-ca")["restart"], json!([]));
    // etcd reads its CA bundle only at start-up; so does the API server's etcd client.
    let v = phase("trust", "etcd-ca");
    assert_eq!(components(&v["restart"]), ["etcd", "kube-apiserver"], "{v:#}");
    assert_eq!(
        entry(&v["restart"], "etcd")["files"][0]["flags"],
        json!(["--peer-trusted-ca-file", "--trusted-ca-file"])
    );
    assert_eq!(entry(&v["restart"], "kube-apiserver")["files"][0]["flags"], json!(["--etcd-cafile"]));
    assert!(v["restart"].as_array().unwrap().iter().all(|r| r["reloadsItself"] == false));

    // The cluster CA: the API server reloads its client CA; the others restart, the kubelet last.
    phase("prepare", "ca");
    let v = phase("trust", "ca");
    assert_eq!(
        components(&v["restart"]),
        ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"],
        "{v:#}"
    );
    assert_eq!(entry(&v["restart"], "kube-apiserver")["reloadsItself"], true);
    assert_eq!(entry(&v["restart"], "kubelet")["command"], "systemctl restart kubelet");
    let cm = entry(&v["restart"], "kube-controller-manager");
    let ca = cm["files"].as_array().unwrap().iter().find(|f| f["path"] == json!(d.join("pki/ca.crt"))).unwrap();
    assert_eq!(ca["flags"], json!(["--client-ca-file", "--cluster-signing-cert-file", "--root-ca-file"]));
}

/// `rotate --verify-apiserver` against an API server that did not pick up its renewed
/// certificate (a stand-in that reads it once, at start): the run is rolled back, and the error
/// names the component still serving the old certificate and the command that restarts it.
#[test]
fn a_verification_seeing_the_old_certificate_names_the_component_and_its_restart() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"manifests": true}));
    let pki = d.join("pki");
    let server = HttpsServer::apiserver(&pki);
    let before = content_hash(&pki);
    let url = server.url();
    let r = rotate(d.path(), &["--force", "apiserver", "--verify-wait", "1s", "--verify-apiserver", &url]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("served-matches-disk"), "{}", r.stderr);
    let manifest = d.join("manifests/kube-apiserver.yaml");
    assert!(
        r.stderr.contains(&format!(
            "kube-apiserver still serves the old certificate of {}",
            pki.join("apiserver.crt").display()
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&format!("--exec 'mv {} ", manifest.display())), "{}", r.stderr);
    assert_eq!(content_hash(&pki), before, "the renewal was rolled back");
}
