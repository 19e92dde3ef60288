//! `kubepki audit`: node filesystems written by the tests under a temp root — a PKI made by
//! `kubepki init`, kubeadm-shaped static pod manifests and kubelet configuration, good and bad —
//! checked for the findings, their severities and the exit codes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// kube-apiserver's flags as kubeadm writes them (kubeadm-pki §6.2), for node `cp1` on
/// 127.0.0.1.
fn kubeadm_apiserver_flags() -> Vec<String> {
    [
        "--advertise-address=127.0.0.1",
        "--allow-privileged=true",
        "--authorization-mode=Node,RBAC",
        "--client-ca-file=/etc/kubernetes/pki/ca.crt",
        "--enable-admission-plugins=NodeRestriction",
        "--enable-bootstrap-token-auth=true",
        "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
        "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
        "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
        "--etcd-servers=https://127.0.0.1:2379",
        "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
        "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        "--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt",
        "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-username-headers=X-Remote-User",
        "--secure-port=6443",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
        "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key",
        "--service-cluster-ip-range=10.96.0.0/12",
        "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
        "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
    ]
    .map(String::from)
    .to_vec()
}

/// etcd's flags as kubeadm writes them (kubeadm-pki §6.1).
fn kubeadm_etcd_flags() -> Vec<String> {
    [
        "--advertise-client-urls=https://127.0.0.1:2379",
        "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
        "--client-cert-auth=true",
        "--data-dir=/var/lib/etcd",
        "--experimental-initial-corrupt-check=true",
        "--experimental-watch-progress-notify-interval=5s",
        "--initial-advertise-peer-urls=https://127.0.0.1:2380",
        "--initial-cluster=cp1=https://127.0.0.1:2380",
        "--key-file=/etc/kubernetes/pki/etcd/server.key",
        "--listen-client-urls=https://127.0.0.1:2379",
        "--listen-metrics-urls=http://127.0.0.1:2381",
        "--listen-peer-urls=https://127.0.0.1:2380",
        "--name=cp1",
        "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt",
        "--peer-client-cert-auth=true",
        "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key",
        "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
        "--snapshot-count=10000",
        "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
    ]
    .map(String::from)
    .to_vec()
}

/// A static pod manifest shaped as kubeadm writes it: the binary and its flags in `command`,
/// hostPath volumes for the cert dir.
fn static_pod(component: &str, flags: &[String]) -> String {
    let mut command = format!("    - {component}\n");
    for f in flags {
        command.push_str(&format!("    - {f}\n"));
    }
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://127.0.0.1:2379
  creationTimestamp: null
  labels:
    component: {component}
    tier: control-plane
  name: {component}
  namespace: kube-system
spec:
  containers:
  - command:
{command}    image: registry.k8s.io/{component}:v1.31.2
    imagePullPolicy: IfNotPresent
    name: {component}
    resources:
      requests:
        cpu: 250m
    volumeMounts:
    - mountPath: /etc/kubernetes/pki
      name: k8s-certs
      readOnly: true
  hostNetwork: true
  priority: 2000001000
  priorityClassName: system-node-critical
  securityContext:
    seccompProfile:
      type: RuntimeDefault
  volumes:
  - hostPath:
      path: /etc/kubernetes/pki
      type: DirectoryOrCreate
    name: k8s-certs
status: {{}}
"
    )
}

/// The KubeletConfiguration kubeadm writes (kubeadm-pki §5.1), plus `extra` top-level lines.
fn kubelet_config(extra: &str) -> String {
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
healthzBindAddress: 127.0.0.1
healthzPort: 10248
kind: KubeletConfiguration
readOnlyPort: 0
rotateCertificates: true
staticPodPath: /etc/kubernetes/manifests
{extra}"
    )
}

const KUBEADM_FLAGS_ENV: &str = "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.10\"\n";

/// A control-plane node as `kubeadm init` leaves it: the PKI and kubeconfigs (made by
/// `kubepki init`), the four static pod manifests, the kubelet's configuration and flags, and
/// the kubelet's self-signed serving certificate.
fn kubeadm_node() -> TestDir {
    let root = TestDir::new();
    init(&root.join("etc/kubernetes"), &[]).ok();
    write_manifest(&root, "kube-apiserver", &kubeadm_apiserver_flags());
    write_manifest(&root, "etcd", &kubeadm_etcd_flags());
    let kcm = ["--bind-address=127.0.0.1", "--kubeconfig=/etc/kubernetes/controller-manager.conf"].map(String::from);
    write_manifest(&root, "kube-controller-manager", &kcm);
    let scheduler = ["--bind-address=127.0.0.1", "--kubeconfig=/etc/kubernetes/scheduler.conf"].map(String::from);
    write_manifest(&root, "kube-scheduler", &scheduler);
    root.write("var/lib/kubelet/config.yaml", kubelet_config(""));
    root.write("var/lib/kubelet/kubeadm-flags.env", KUBEADM_FLAGS_ENV);
    // The kubelet self-signs its serving certificate (CN=<node>@<timestamp>).
    std::fs::create_dir_all(root.join("var/lib/kubelet/pki")).unwrap();
    let r = run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "365"])
        .args(["-subj", "/CN=cp1@1700000000", "-keyout"])
        .arg(root.join("var/lib/kubelet/pki/kubelet.key"))
        .arg("-out")
        .arg(root.join("var/lib/kubelet/pki/kubelet.crt")));
    assert_eq!(r.code, 0, "openssl: {}", r.stderr);
    chmod(&root.join("var/lib/kubelet/pki/kubelet.key"), 0o600);
    root
}

/// The kubeadm node, hardened as the advice says.
fn hardened_node() -> TestDir {
    let root = kubeadm_node();
    let mut flags = kubeadm_apiserver_flags();
    flags.extend(
        [
            "--anonymous-auth=false",
            "--audit-log-path=/var/log/kubernetes/audit/audit.log",
            "--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
            "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
        ]
        .map(String::from),
    );
    write_manifest(&root, "kube-apiserver", &flags);
    root.write("var/lib/kubelet/config.yaml", kubelet_config("serverTLSBootstrap: true\n"));
    std::fs::remove_file(root.join("var/lib/kubelet/pki/kubelet.crt")).unwrap();
    std::fs::remove_file(root.join("var/lib/kubelet/pki/kubelet.key")).unwrap();
    root
}

fn write_manifest(root: &TestDir, component: &str, flags: &[String]) {
    root.write(&format!("etc/kubernetes/manifests/{component}.yaml"), static_pod(component, flags));
}

fn write_mode(path: &Path, contents: &[u8], mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn audit(root: &Path, extra: &[&str]) -> Run {
    run(kubepki().arg("audit").arg("--root").arg(root).args(extra))
}

/// `kubepki audit -o json`, its exit code and document.
fn audit_json(root: &Path, extra: &[&str]) -> (i32, Value) {
    let r = run(kubepki().arg("audit").arg("--root").arg(root).args(["-o", "json"]).args(extra));
    let doc: Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", r.stdout, r.stderr));
    (r.code, doc)
}

/// `(id, severity)` of every finding.
fn findings(doc: &Value) -> Vec<(String, String)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_str().unwrap().to_owned(), f["severity"].as_str().unwrap().to_owned()))
        .collect()
}

fn has(doc: &Value, id: &str, severity: &str) -> bool {
    findings(doc).iter().any(|(i, s)| i == id && s == severity)
}

fn passed(doc: &Value, id: &str) -> bool {
    doc["passed"].as_array().unwrap().iter().any(|p| p["id"] == id)
}

/// The findings with this id.
fn finding<'a>(doc: &'a Value, id: &str) -> Vec<&'a Value> {
    doc["findings"].as_array().unwrap().iter().filter(|f| f["id"] == id).collect()
}

#[test]
fn a_hardened_control_plane_passes_every_check() {
    let root = hardened_node();
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!(findings(&doc), Vec::<(String, String)>::new(), "{doc:#}");
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(doc["verdict"], "ok");
    assert_eq!(doc["controlPlane"], true);
    assert_eq!(doc["certDir"], "/etc/kubernetes/pki");
    for id in [
        "kubelet-anonymous-auth",
        "kubelet-authorization-mode",
        "kubelet-client-ca",
        "kubelet-read-only-port",
        "kubelet-rotate-certificates",
        "kubelet-serving-cert",
        "apiserver-client-ca",
        "apiserver-tls-cert",
        "apiserver-anonymous-auth",
        "apiserver-audit-log",
        "apiserver-kubelet-ca",
        "apiserver-kubelet-client-cert",
        "apiserver-authorization-mode",
        "apiserver-insecure-port",
        "apiserver-etcd-tls",
        "etcd-client-cert-auth",
        "etcd-peer-client-cert-auth",
        "etcd-https-urls",
        "etcd-tls-cert",
        "etcd-trusted-ca",
        "controller-manager-insecure-port",
        "scheduler-insecure-port",
        "pki-key-permissions",
        "pki-dir-permissions",
        "pki-ca-key-placement",
        "pki-system-masters",
        "pki-lifetime",
        "pki-weak-key",
    ] {
        assert!(passed(&doc, id), "{id} did not pass:\n{doc:#}");
    }
    let table = audit(root.path(), &["--all"]).ok();
    assert!(table.stdout.contains("pass   kubelet-anonymous-auth"), "{}", table.stdout);
    assert!(table.stdout.trim_end().ends_with(": OK"), "{}", table.stdout);
}

#[test]
fn a_stock_kubeadm_control_plane_gets_the_four_warnings_kubeadm_leaves() {
    let root = kubeadm_node();
    let (code, doc) = audit_json(root.path(), &[]);
    let mut got = findings(&doc);
    got.sort();
    let want: Vec<(String, String)> =
        ["apiserver-anonymous-auth", "apiserver-audit-log", "apiserver-kubelet-ca", "kubelet-serving-cert"]
            .iter()
            .map(|id| (id.to_string(), "warning".to_owned()))
            .collect();
    assert_eq!(got, want, "{doc:#}");
    assert_eq!(code, 1);
    assert_eq!(doc["verdict"], "warning");
    // Each finding carries the advice it refers to and a fix.
    let audit_log = finding(&doc, "apiserver-audit-log")[0];
    assert_eq!(audit_log["advice"]["id"], "audit-logging");
    assert!(audit_log["advice"]["text"].as_str().unwrap().contains("Audit logging is critical"));
    assert!(audit_log["fix"].as_str().unwrap().contains("--audit-policy-file"));
    assert!(audit_log["file"].as_str().unwrap().ends_with("etc/kubernetes/manifests/kube-apiserver.yaml"));
    let serving = finding(&doc, "kubelet-serving-cert")[0];
    assert!(serving["message"].as_str().unwrap().contains("self-signed"), "{serving:#}");
    assert!(serving["fix"].as_str().unwrap().contains("serverTLSBootstrap"), "{serving:#}");
    // The table says the same, worst first, and ends with the verdict.
    let table = audit(root.path(), &[]).expect_code(1);
    assert!(table.stdout.contains("WARNING   apiserver-audit-log"), "{}", table.stdout);
    assert!(table.stdout.contains("    fix:    "), "{}", table.stdout);
    assert!(table.stdout.contains("(control-plane node, cert dir /etc/kubernetes/pki)"), "{}", table.stdout);
    // 24 checks, and the service-account keys' three (trusted, strength, age).
    assert!(table.stdout.trim_end().ends_with("4 warning, 27 pass: WARNING"), "{}", table.stdout);
}

#[test]
fn an_insecure_control_plane_is_critical_on_every_point() {
    let root = kubeadm_node();
    let mut api: Vec<String> = kubeadm_apiserver_flags()
        .into_iter()
        .filter(|f| !f.starts_with("--authorization-mode") && !f.starts_with("--client-ca-file"))
        .collect();
    api.extend(["--authorization-mode=AlwaysAllow", "--insecure-port=8080", "--anonymous-auth=true"].map(String::from));
    write_manifest(&root, "kube-apiserver", &api);
    let etcd: Vec<String> = kubeadm_etcd_flags()
        .into_iter()
        .map(|f| match f.split_once('=') {
            Some(("--client-cert-auth", _)) => "--client-cert-auth=false".to_owned(),
            Some(("--listen-client-urls", _)) => "--listen-client-urls=http://0.0.0.0:2379".to_owned(),
            Some(("--trusted-ca-file", _)) => "--trusted-ca-file=/etc/kubernetes/pki/ca.crt".to_owned(),
            _ => f,
        })
        .filter(|f| !f.starts_with("--peer-client-cert-auth"))
        .collect();
    write_manifest(&root, "etcd", &etcd);
    let scheduler = ["--port=10251", "--kubeconfig=/etc/kubernetes/scheduler.conf"].map(String::from);
    write_manifest(&root, "kube-scheduler", &scheduler);
    let config = kubelet_config("")
        .replace("readOnlyPort: 0", "readOnlyPort: 10255")
        .replace("rotateCertificates: true", "rotateCertificates: false");
    root.write("var/lib/kubelet/config.yaml", config);
    // Flags in kubeadm-flags.env override the file, as they do for the kubelet.
    root.write(
        "var/lib/kubelet/kubeadm-flags.env",
        "KUBELET_KUBEADM_ARGS=\"--anonymous-auth=true --authorization-mode=AlwaysAllow\"\n",
    );

    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!(code, 2, "{doc:#}");
    assert_eq!(doc["verdict"], "critical");
    for (id, severity) in [
        ("kubelet-anonymous-auth", "critical"),
        ("kubelet-authorization-mode", "critical"),
        ("kubelet-read-only-port", "warning"),
        ("kubelet-rotate-certificates", "warning"),
        ("apiserver-client-ca", "critical"),
        ("apiserver-authorization-mode", "critical"),
        ("apiserver-insecure-port", "critical"),
        ("apiserver-anonymous-auth", "info"),
        // With a CA file, etcd demands client certificates even with --client-cert-auth=false:
        // the flag is missing, not the check (etcd_client_cert_auth_verdicts_match_what_real_etcd_does).
        ("etcd-client-cert-auth", "warning"),
        ("etcd-peer-client-cert-auth", "warning"),
        ("etcd-https-urls", "critical"),
        ("etcd-trusted-ca", "critical"),
        ("scheduler-insecure-port", "critical"),
    ] {
        assert!(has(&doc, id, severity), "no {severity} {id}:\n{doc:#}");
    }
    let anonymous = finding(&doc, "kubelet-anonymous-auth")[0]["message"].as_str().unwrap();
    assert!(anonymous.contains("--anonymous-auth in") && anonymous.contains("kubeadm-flags.env"), "{anonymous}");
    let urls = finding(&doc, "etcd-https-urls")[0]["message"].as_str().unwrap();
    assert!(urls.contains("http://0.0.0.0:2379"), "{urls}");
    let trusted = finding(&doc, "etcd-trusted-ca")[0]["message"].as_str().unwrap();
    assert!(trusted.contains("is the cluster CA"), "{trusted}");
    // The explicit --anonymous-auth=true is reported, not held against the node.
    assert!(passed(&doc, "controller-manager-insecure-port"));
}

#[test]
fn etcd_trusting_a_copy_of_the_cluster_ca_under_another_name_is_found() {
    let root = kubeadm_node();
    let ca = root.read("etc/kubernetes/pki/ca.crt");
    root.write("etc/kubernetes/pki/etcd/trusted.crt", ca);
    let etcd: Vec<String> = kubeadm_etcd_flags()
        .into_iter()
        .map(|f| {
            if f.starts_with("--peer-trusted-ca-file=") {
                "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/trusted.crt".into()
            } else {
                f
            }
        })
        .collect();
    write_manifest(&root, "etcd", &etcd);
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!(code, 2);
    let f = finding(&doc, "etcd-trusted-ca");
    assert!(
        f[0]["message"].as_str().unwrap().contains("--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/trusted.crt"),
        "{doc:#}"
    );
}

#[test]
fn key_modes_are_judged_by_who_can_read_the_key() {
    let root = hardened_node();
    let pki = root.join("etc/kubernetes/pki");
    chmod(&pki.join("apiserver.key"), 0o640);
    chmod(&pki.join("etcd/peer.key"), 0o644);
    chmod(&pki.join("ca.key"), 0o640);
    chmod(&root.join("etc/kubernetes/admin.conf"), 0o644);
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!(code, 2, "{doc:#}");
    let mut got: Vec<(String, String)> = finding(&doc, "pki-key-permissions")
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap();
            let rel = file.strip_prefix(root.path().to_str().unwrap()).unwrap().to_owned();
            (rel, f["severity"].as_str().unwrap().to_owned())
        })
        .collect();
    let mut want: Vec<(String, String)> = [
        ("/etc/kubernetes/pki/apiserver.key", "warning"),
        ("/etc/kubernetes/pki/ca.key", "critical"),
        ("/etc/kubernetes/pki/etcd/peer.key", "critical"),
        ("/etc/kubernetes/admin.conf", "critical"),
    ]
    .iter()
    .map(|(p, s)| (p.to_string(), s.to_string()))
    .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "{doc:#}");
    let ca = finding(&doc, "pki-key-permissions").into_iter().find(|f| f["severity"] == "critical").unwrap();
    assert!(ca["fix"].as_str().unwrap().starts_with("chmod 600 "), "{ca:#}");
    // A group- or world-writable cert dir is critical too.
    chmod(&pki, 0o777);
    let (_, doc) = audit_json(root.path(), &[]);
    chmod(&pki, 0o755);
    assert!(has(&doc, "pki-dir-permissions", "critical"), "{doc:#}");
}

#[test]
fn a_ca_key_on_a_worker_is_critical_and_a_ca_certificate_is_not() {
    // A worker: the kubelet and the cluster CA certificate, no manifests.
    let cp = kubeadm_node();
    let worker = TestDir::new();
    worker.write("etc/kubernetes/pki/ca.crt", cp.read("etc/kubernetes/pki/ca.crt"));
    worker.write("var/lib/kubelet/config.yaml", kubelet_config("serverTLSBootstrap: true\n"));
    worker.write("var/lib/kubelet/kubeadm-flags.env", KUBEADM_FLAGS_ENV);
    let (code, doc) = audit_json(worker.path(), &[]);
    assert_eq!(findings(&doc), Vec::<(String, String)>::new(), "{doc:#}");
    assert_eq!(code, 0);
    assert_eq!(doc["controlPlane"], false);
    assert!(passed(&doc, "pki-ca-key-placement"));
    let skipped: Vec<&str> = doc["skipped"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(skipped.contains(&"kube-apiserver") && skipped.contains(&"etcd"), "{skipped:?}");

    let key = std::fs::read(cp.join("etc/kubernetes/pki/ca.key")).unwrap();
    write_mode(&worker.join("etc/kubernetes/pki/ca.key"), &key, 0o600);
    let (code, doc) = audit_json(worker.path(), &[]);
    assert_eq!(code, 2);
    let f = finding(&doc, "pki-ca-key-placement");
    assert_eq!(f.len(), 1, "{doc:#}");
    assert_eq!(f[0]["severity"], "critical");
    assert!(f[0]["file"].as_str().unwrap().ends_with("/etc/kubernetes/pki/ca.key"));
}

#[test]
fn system_masters_credentials_besides_super_admin_are_found() {
    let root = hardened_node();
    let kubernetes = root.join("etc/kubernetes");
    let user = run(kubepki()
        .args(["kubeconfig", "user", "--client-name", "alice", "--org", "system:masters", "--cert-dir"])
        .arg(kubernetes.join("pki"))
        .args(["--node-name", "cp1", "--apiserver-advertise-address", "127.0.0.1"]))
    .ok();
    write_mode(&kubernetes.join("alice.conf"), user.stdout.as_bytes(), 0o600);
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!(code, 1, "{doc:#}");
    let f = finding(&doc, "pki-system-masters");
    assert_eq!(f.len(), 1, "only alice.conf, not super-admin.conf:\n{doc:#}");
    assert!(f[0]["file"].as_str().unwrap().ends_with("/etc/kubernetes/alice.conf"));
    assert!(f[0]["message"].as_str().unwrap().contains("O=system:masters, CN=alice"), "{doc:#}");
    assert_eq!(f[0]["advice"]["id"], "rbac");
}

#[test]
fn lifetimes_beyond_the_policy_are_warnings_and_the_policy_is_configurable() {
    let root = hardened_node();
    let kubernetes = root.join("etc/kubernetes");
    let user = run(kubepki()
        .args(["kubeconfig", "user", "--client-name", "bob", "--validity", "800d", "--cert-dir"])
        .arg(kubernetes.join("pki"))
        .args(["--node-name", "cp1", "--apiserver-advertise-address", "127.0.0.1"]))
    .ok();
    write_mode(&kubernetes.join("bob.conf"), user.stdout.as_bytes(), 0o600);
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!(code, 1, "{doc:#}");
    let f = finding(&doc, "pki-lifetime");
    assert_eq!(f.len(), 1, "{doc:#}");
    assert!(f[0]["message"].as_str().unwrap().starts_with("bob.conf lives 800 days"), "{doc:#}");
    // kubeadm's own 1-year leaves and 10-year CAs are within the default policy (the 5-minute
    // backdate does not count); a longer allowance accepts bob, a shorter one flags the CAs.
    let (code, _) = audit_json(root.path(), &["--max-leaf-lifetime", "900d"]);
    assert_eq!(code, 0);
    let (code, doc) = audit_json(root.path(), &["--max-leaf-lifetime", "900d", "--max-ca-lifetime", "1000d"]);
    assert_eq!(code, 1);
    let cas: Vec<&str> = finding(&doc, "pki-lifetime").iter().map(|f| f["message"].as_str().unwrap()).collect();
    assert_eq!(cas.len(), 3, "{cas:?}");
    assert!(cas.iter().any(|m| m.starts_with("etcd-ca lives 3650 days")), "{cas:?}");
}

#[test]
fn rsa_keys_below_2048_bits_are_critical() {
    let root = hardened_node();
    let pki = root.join("etc/kubernetes/pki");
    let r = run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:1024", "-nodes", "-days", "30", "-subj", "/CN=legacy"])
        .arg("-keyout")
        .arg(pki.join("legacy.key"))
        .arg("-out")
        .arg(pki.join("legacy.crt")));
    assert_eq!(r.code, 0, "openssl: {}", r.stderr);
    chmod(&pki.join("legacy.key"), 0o600);
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!(code, 2, "{doc:#}");
    let f = finding(&doc, "pki-weak-key");
    assert_eq!(f.len(), 1, "{doc:#}");
    assert!(f[0]["message"].as_str().unwrap().contains("RSA-1024"), "{doc:#}");
}

#[test]
fn symbolic_links_resolve_inside_the_root() {
    // The kubelet's client certificate is an absolute symlink into its own directory; under
    // --root it must resolve to the node's file, not to this machine's /var/lib/kubelet.
    let root = hardened_node();
    let cert = root.read("etc/kubernetes/pki/apiserver-kubelet-client.crt");
    let key = root.read("etc/kubernetes/pki/apiserver-kubelet-client.key");
    let pem = root.join("var/lib/kubelet/pki/kubelet-client-2026-01-01-00-00-00.pem");
    write_mode(&pem, format!("{cert}{key}").as_bytes(), 0o644);
    std::os::unix::fs::symlink(
        "/var/lib/kubelet/pki/kubelet-client-2026-01-01-00-00-00.pem",
        root.join("var/lib/kubelet/pki/kubelet-client-current.pem"),
    )
    .unwrap();
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!(code, 2, "{doc:#}");
    let f = finding(&doc, "pki-key-permissions");
    assert_eq!(f.len(), 1, "one file behind the link:\n{doc:#}");
    assert!(f[0]["file"].as_str().unwrap().starts_with(root.path().to_str().unwrap()), "{doc:#}");
    assert!(doc["errors"].as_array().unwrap().is_empty(), "{doc:#}");
}

#[test]
fn unreadable_inputs_exit_3_unless_something_is_critical() {
    let root = hardened_node();
    root.write("etc/kubernetes/manifests/etcd.yaml", "apiVersion: v1\nkind: Pod\nspec: [unclosed\n");
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!(code, 3, "{doc:#}");
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{doc:#}");
    assert!(errors[0]["input"].as_str().unwrap().ends_with("etc/kubernetes/manifests/etcd.yaml"));
    assert!(errors[0]["message"].as_str().unwrap().contains("not valid YAML"), "{doc:#}");
    // The rest was still checked.
    assert!(passed(&doc, "apiserver-authorization-mode"));
    let r = audit(root.path(), &[]).expect_code(3);
    assert!(r.stderr.contains("etcd.yaml: not valid YAML"), "{}", r.stderr);

    // A critical finding wins over the unreadable input.
    chmod(&root.join("etc/kubernetes/pki/ca.key"), 0o644);
    let (code, _) = audit_json(root.path(), &[]);
    assert_eq!(code, 2);

    // A kubelet setting of the wrong type names the file and the setting.
    let root = hardened_node();
    root.write(
        "var/lib/kubelet/config.yaml",
        kubelet_config("serverTLSBootstrap: true\n").replace("readOnlyPort: 0", "readOnlyPort: none"),
    );
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!(code, 3, "{doc:#}");
    let message = doc["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("readOnlyPort") && message.contains("is not a port number"), "{doc:#}");
}

#[test]
fn nothing_to_audit_is_an_unreadable_input() {
    let empty = TestDir::new();
    let r = audit(empty.path(), &[]).expect_code(3);
    assert!(r.stderr.contains("nothing to audit"), "{}", r.stderr);
    let r = audit(&empty.join("missing"), &[]).expect_code(3);
    assert!(r.stderr.contains("--root") && r.stderr.contains("not a directory"), "{}", r.stderr);
}

#[test]
fn audit_writes_nothing() {
    let root = kubeadm_node();
    let before = tree_hash(root.path());
    audit(root.path(), &["--all"]).expect_code(1);
    audit_json(root.path(), &[]);
    assert_eq!(tree_hash(root.path()), before);
}

/// etcd's three ways with a client CA, for clients and for peers, as flag words (`CA` stands
/// for the etcd CA file): the explicit flag with a CA (kubeadm's), a CA alone, neither.
const ETCD_CLIENT_AUTH: [(&str, &[&str]); 3] = [
    (
        "explicit",
        &[
            "--client-cert-auth=true",
            "--trusted-ca-file=CA",
            "--peer-client-cert-auth=true",
            "--peer-trusted-ca-file=CA",
        ],
    ),
    ("ca-only", &["--trusted-ca-file=CA", "--peer-trusted-ca-file=CA"]),
    ("neither", &[]),
];

/// Each combination, run by a real etcd: does a client (etcdctl) and a peer (curl on the peer
/// port) WITHOUT a certificate get in? And audit's verdict on a manifest with the same flags:
/// critical exactly when it got in, a warning when etcd demanded a certificate only because
/// it had a CA, a pass with the explicit flag.
#[test]
fn etcd_client_cert_auth_verdicts_match_what_real_etcd_does() {
    for program in ["etcd", "etcdctl", "curl"] {
        if !have(program) {
            return;
        }
    }
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let ca = d.join("pki/etcd/ca.crt");
    for (name, flags) in ETCD_CLIENT_AUTH {
        // The harness's own peer flags are cleared first, so the combination is the whole story.
        let mut extra = vec!["--peer-client-cert-auth=false".to_owned(), "--peer-trusted-ca-file=".to_owned()];
        extra.extend(flags.iter().map(|f| f.replace("CA", &ca.display().to_string())));
        let etcd = Etcd::start_with(&EtcdConfig { name: "cp1", pki: &d.join("pki"), client_cert_auth: false }, &extra);
        let log = etcd.log();
        let tls_line = |which: &str| log.lines().find(|l| l.contains(which)).unwrap_or_default().to_owned();
        let (client_tls, peer_tls) = (tls_line("ClientTLS:"), tls_line("peerTLS:"));
        let (auth, trusted) = match name {
            "explicit" => ("client-cert-auth = true", format!("trusted-ca = {}", ca.display())),
            "ca-only" => ("client-cert-auth = false", format!("trusted-ca = {}", ca.display())),
            _ => ("client-cert-auth = false", "trusted-ca = ,".to_owned()),
        };
        for line in [&client_tls, &peer_tls] {
            assert!(line.contains(auth) && line.contains(&trusted), "{name}: etcd runs with {line}");
        }

        let client = run(Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &etcd.client_url, "--dial-timeout", "3s", "--command-timeout", "3s"])
            .arg("--cacert")
            .arg(&ca)
            .args(["endpoint", "health"]));
        let client_in = client.code == 0;
        let peer = run(Command::new("curl")
            .args(["--http1.1", "--silent", "--show-error", "--max-time", "5", "--cacert"])
            .arg(&ca)
            .arg(format!("{}/members", etcd.peer_url)));
        let peer_in = peer.code == 0;
        if peer_in {
            assert!(peer.stdout.contains("peerURLs"), "{name}: the peer port answered {}", peer.stdout);
        }
        drop(etcd);
        // Reality, as etcd's transport has it: a certificate is demanded once there is a CA.
        assert_eq!(
            client_in,
            name == "neither",
            "{name}: etcdctl without a certificate: {}{}",
            client.stdout,
            client.stderr
        );
        assert_eq!(peer_in, name == "neither", "{name}: a peer without a certificate: {}{}", peer.stdout, peer.stderr);

        let root = kubeadm_node();
        let mut manifest: Vec<String> = kubeadm_etcd_flags()
            .into_iter()
            .filter(|f| {
                !["--client-cert-auth=", "--trusted-ca-file=", "--peer-client-cert-auth=", "--peer-trusted-ca-file="]
                    .iter()
                    .any(|p| f.starts_with(p))
            })
            .collect();
        manifest.extend(flags.iter().map(|f| f.replace("CA", "/etc/kubernetes/pki/etcd/ca.crt")));
        write_manifest(&root, "etcd", &manifest);
        let (_, doc) = audit_json(root.path(), &[]);
        for (id, got_in) in [("etcd-client-cert-auth", client_in), ("etcd-peer-client-cert-auth", peer_in)] {
            let severity = finding(&doc, id).first().map(|f| f["severity"].as_str().unwrap().to_owned());
            assert_eq!(severity.as_deref() == Some("critical"), got_in, "{name}: {id}: {severity:?}\n{doc:#}");
            match name {
                "explicit" => assert!(passed(&doc, id), "{name}: {id} did not pass:\n{doc:#}"),
                "ca-only" => {
                    assert_eq!(severity.as_deref(), Some("warning"), "{name}: {id}\n{doc:#}");
                    let f = finding(&doc, id)[0];
                    assert!(f["message"].as_str().unwrap().contains("already demands and verifies"), "{f:#}");
                    let flag = if id == "etcd-client-cert-auth" {
                        "--client-cert-auth=true"
                    } else {
                        "--peer-client-cert-auth=true"
                    };
                    assert!(f["fix"].as_str().unwrap().contains(flag), "{f:#}");
                }
                _ => assert_eq!(severity.as_deref(), Some("critical"), "{name}: {id}\n{doc:#}"),
            }
        }
    }
}

/// Replaces the hardened node's `sa.key` and `sa.pub` with those of the independent fixture
/// (`kubeadm_tree`, pyca) made with `options`; returns the fixture's summary (the kids).
fn with_sa_keys(root: &TestDir, options: Value) -> Value {
    let made_dir = TestDir::new();
    let made = kubeadm_tree(made_dir.path(), options);
    for file in ["sa.key", "sa.pub"] {
        std::fs::copy(made_dir.join(&format!("pki/{file}")), root.join(&format!("etc/kubernetes/pki/{file}"))).unwrap();
    }
    made
}

/// The passed result with this id.
fn pass_of<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["passed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} did not pass: {doc:#}"))
}

/// kube-apiserver verifies tokens against every `--service-account-key-file` (the flag repeats)
/// and signs with `--service-account-signing-key-file`: its public half must be in one of them.
/// A key in a rotation's overlap passes; one in no file is critical (exit 2) with its kid, the
/// advice and the fix; a second key file holding it makes it pass again.
#[test]
fn the_signing_key_must_be_in_a_service_account_key_file() {
    let root = hardened_node();
    let made = with_sa_keys(&root, serde_json::json!({"sa_pub": "two"}));
    let kid = made["sa"]["kid"].as_str().unwrap();
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!((code, findings(&doc)), (0, vec![]), "{doc:#}");
    let message = pass_of(&doc, "sa-key-trusted")["message"].as_str().unwrap();
    assert!(message.contains(kid) && message.contains("one of the 2 public keys"), "{message}");

    let made = with_sa_keys(&root, serde_json::json!({"sa_pub": "other"}));
    let kid = made["sa"]["kid"].as_str().unwrap();
    let before = tree_hash(root.path());
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!((code, findings(&doc)), (2, vec![("sa-key-trusted".to_owned(), "critical".to_owned())]), "{doc:#}");
    let f = finding(&doc, "sa-key-trusted")[0];
    assert!(f["message"].as_str().unwrap().contains(kid), "{f:#}");
    assert_eq!(f["file"].as_str(), root.join("etc/kubernetes/pki/sa.key").to_str());
    assert_eq!(f["advice"]["id"], "authentication");
    assert!(f["fix"].as_str().unwrap().contains("rotate-sa"), "{f:#}");
    assert_eq!(tree_hash(root.path()), before, "audit wrote into the node");

    // A second --service-account-key-file with sa.key's public key: trusted again.
    let pki = root.join("etc/kubernetes/pki");
    let r = run(Command::new("openssl")
        .arg("pkey")
        .arg("-in")
        .arg(pki.join("sa.key"))
        .arg("-pubout")
        .arg("-out")
        .arg(pki.join("sa-next.pub")));
    assert_eq!(r.code, 0, "openssl: {}", r.stderr);
    let mut flags = kubeadm_apiserver_flags();
    flags.extend(["--anonymous-auth=false", "--audit-log-path=/var/log/kubernetes/audit/audit.log"].map(String::from));
    flags.extend(["--audit-policy-file=/etc/kubernetes/audit-policy.yaml"].map(String::from));
    flags.extend(["--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt"].map(String::from));
    flags.push("--service-account-key-file=/etc/kubernetes/pki/sa-next.pub".into());
    write_manifest(&root, "kube-apiserver", &flags);
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!((code, findings(&doc)), (0, vec![]), "{doc:#}");
    let message = pass_of(&doc, "sa-key-trusted")["message"].as_str().unwrap();
    assert!(message.contains("one of the 2 public keys") && message.contains("sa-next.pub"), "{message}");

    // A key file that exists but cannot be read: an unreadable input (3), the question left open.
    std::fs::remove_file(pki.join("sa-next.pub")).unwrap();
    std::fs::create_dir(pki.join("sa-next.pub")).unwrap();
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!((code, findings(&doc)), (3, vec![]), "{doc:#}");
    assert!(
        doc["errors"].as_array().unwrap().iter().any(|e| e["input"].as_str().unwrap().ends_with("sa-next.pub")),
        "{doc:#}"
    );
}

/// A 1024-bit RSA service-account key is critical (tokens can be forged), named by its kid; a
/// signing key older than --sa-max-age (default 365 days; its age is the file's time) is a
/// warning.
#[test]
fn a_weak_or_old_service_account_key_is_flagged() {
    let root = hardened_node();
    let made = with_sa_keys(&root, serde_json::json!({"sa_key": "rsa1024"}));
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!((code, findings(&doc)), (2, vec![("sa-key-strength".to_owned(), "critical".to_owned())]), "{doc:#}");
    let message = finding(&doc, "sa-key-strength")[0]["message"].as_str().unwrap();
    assert!(message.contains("RSA-1024") && message.contains(made["sa"]["kid"].as_str().unwrap()), "{message}");

    let root = hardened_node();
    let sa_key = root.join("etc/kubernetes/pki/sa.key");
    assert_eq!(run(Command::new("touch").args(["-d", "400 days ago"]).arg(&sa_key)).code, 0);
    let (code, doc) = audit_json(root.path(), &[]);
    assert_eq!((code, findings(&doc)), (1, vec![("sa-key-age".to_owned(), "warning".to_owned())]), "{doc:#}");
    let f = finding(&doc, "sa-key-age")[0];
    assert!(f["message"].as_str().unwrap().contains("400 days old"), "{f:#}");
    assert_eq!(f["advice"]["id"], "rotation");
    let (code, doc) = audit_json(root.path(), &["--sa-max-age", "500d"]);
    assert_eq!(code, 0, "{doc:#}");
    assert!(pass_of(&doc, "sa-key-age")["message"].as_str().unwrap().contains("within 500 days"));
}
