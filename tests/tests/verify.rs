//! `kubepki verify`: mutual TLS proven against a real etcd (with and without
//! `--client-cert-auth`), kubelet and API server stand-ins (a rustls server and `openssl
//! s_server`), wrong-CA material, a server that did not reload after a rotation, and the
//! zero-downtime proof: continuous mTLS requests to etcd while `kubepki rotate` replaces its
//! certificates.

use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kubepki_pki::{AltNames, CertRequest, KeyAlgorithm, Lifetime, PkiDir, Signer, Subject, Usage, Validity};
use kubepki_rotator::verify::{self, CheckId, CheckStatus, ClientCredential, Options, Target, WrongCa};
use serde_json::Value;

use crate::common::*;

/// `kubepki verify -o json --cert-dir <dir>/pki` plus `args`: the exit code and the report.
fn verify_json(dir: &Path, args: &[&str]) -> (i32, Value) {
    let r = run(kubepki().arg("verify").arg("--cert-dir").arg(dir.join("pki")).args(["-o", "json"]).args(args));
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n--- stderr\n{}", r.stdout, r.stderr));
    (r.code, v)
}

/// The status and reason of check `name` of endpoint `i`.
fn check(v: &Value, i: usize, name: &str) -> (String, String) {
    let c = v["endpoints"][i]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("endpoint {i} has no checks: {v:#}"))
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} at endpoint {i}: {v:#}"));
    (c["status"].as_str().unwrap().to_owned(), c["reason"].as_str().unwrap().to_owned())
}

/// Every check of endpoint `i` with its status, for one-line assertions.
fn statuses(v: &Value, i: usize) -> Vec<(String, String)> {
    v["endpoints"][i]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c["status"].as_str().unwrap().to_owned()))
        .collect()
}

fn all_pass(v: &Value, i: usize) -> bool {
    statuses(v, i).iter().all(|(_, s)| s == "pass")
}

fn etcd(pki: &Path, client_cert_auth: bool) -> Etcd {
    Etcd::start(&EtcdConfig { name: "cp1", pki, client_cert_auth })
}

/// A kubelet serving certificate as the kubelet makes one for itself when nothing else is
/// configured (kubeadm's default): a CA `<node>-ca@<time>` and a leaf `<node>@<time>` signed
/// by it, both in kubelet.crt.
fn kubelet_self_signed(d: &TestDir) -> (PathBuf, PathBuf) {
    let validity = Validity::starting_at(time::OffsetDateTime::now_utc(), Lifetime::DEFAULT_CERT);
    let ca_key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let ca = kubepki_pki::self_signed_ca("cp1-ca@1764201600", &ca_key, validity).unwrap();
    let signer = Signer::new("cp1-ca", &ca, &ca_key).unwrap();
    let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let mut sans = AltNames::new();
    sans.add_dns("cp1");
    sans.add_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let request =
        CertRequest { subject: Subject::new("cp1@1764201600", Vec::<String>::new()), sans, usage: Usage::Server };
    let der = signer.sign("kubelet", &request, &key, validity).unwrap();
    let leaf = kubepki_pki::Certificate::from_der(der, "kubelet").unwrap();
    let crt = d.write("kubelet/kubelet.crt", format!("{}{}", leaf.to_pem(), ca.to_pem()));
    let key = d.write("kubelet/kubelet.key", key.to_pem().as_bytes());
    (crt, key)
}

/// `openssl s_server` with extra arguments, answering GET with a status page; killed when
/// dropped.
struct OpensslServer {
    child: Child,
    port: u16,
}

impl OpensslServer {
    fn start(cert: &Path, key: &Path, extra: &[&str]) -> Self {
        let port = free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept", &port.to_string(), "-cert"])
            .arg(cert)
            .arg("-key")
            .arg(key)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "openssl s_server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn etcd_with_client_cert_auth_passes_every_check_on_client_and_peer_ports() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let etcd = etcd(&d.join("pki"), true);
    let (code, v) = verify_json(d.path(), &["--etcd", &etcd.client_url, "--etcd-peer", &etcd.peer_url]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["verdict"], "passed");
    for i in [0, 1] {
        assert!(all_pass(&v, i), "{:?}\n{v:#}", statuses(&v, i));
        assert_eq!(statuses(&v, i).len(), 8, "{v:#}");
    }
    assert!(check(&v, 0, "client-cert-accepted").1.contains("answered a Status request"), "{v:#}");
    assert!(check(&v, 0, "tls-version").1.contains("TLS 1.1 ClientHello was refused"), "{v:#}");
    // The served certificates are the files, as the JSON reports them.
    let disk = |f: &str| kubepki_pki::read_certs(&d.join(f)).unwrap().unwrap().remove(0);
    assert_eq!(v["endpoints"][0]["served"]["sha256"], disk("pki/etcd/server.crt").fingerprint_sha256());
    assert_eq!(v["endpoints"][1]["served"]["sha256"], disk("pki/etcd/peer.crt").fingerprint_sha256());
    assert_eq!(v["endpoints"][0]["protocol"], "TLSv1.3");
}

#[test]
fn etcd_without_client_cert_auth_fails_the_no_client_cert_check() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let etcd = etcd(&d.join("pki"), false);
    let (code, v) = verify_json(d.path(), &["--etcd", &etcd.client_url]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["verdict"], "failed");
    let (status, reason) = check(&v, 0, "no-client-cert-refused");
    assert_eq!(status, "fail", "{reason}");
    assert!(reason.contains("--client-cert-auth"), "{reason}");
    // It never asks for a certificate, so a wrong one gets in too, and the right one proves nothing.
    assert_eq!(check(&v, 0, "wrong-ca-refused").0, "fail", "{v:#}");
    assert_eq!(check(&v, 0, "client-cert-accepted").0, "warn", "{v:#}");
    for name in ["tls-version", "chain", "hostname", "expiry", "served-matches-disk"] {
        assert_eq!(check(&v, 0, name).0, "pass", "{name}: {v:#}");
    }
    // The table says the same, and the exit code is the same.
    let r = run(kubepki().arg("verify").arg("--cert-dir").arg(d.join("pki")).args(["--etcd", &etcd.client_url]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("no-client-cert-refused   fail"), "{}", r.stdout);
    assert!(r.stdout.contains("[verify] failed: 1 endpoint,"), "{}", r.stdout);
}

#[test]
fn a_kubeadm_kubelet_with_a_self_signed_certificate_passes_with_warnings() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let (crt, key) = kubelet_self_signed(&d);
    let kubelet = HttpsServer::start(&crt, &key, Some(&d.join("pki/ca.crt")), ClientAuth::Required);
    let (code, v) = verify_json(d.path(), &["--kubelet", &kubelet.url()]);
    assert_eq!(code, 0, "{v:#}");
    let (status, reason) = check(&v, 0, "self-signed");
    assert_eq!(status, "warn");
    assert!(reason.contains("its own CA \"CN=cp1-ca@1764201600\""), "{reason}");
    assert_eq!(check(&v, 0, "chain").0, "warn");
    assert_eq!(check(&v, 0, "served-matches-disk").0, "skip");
    for name in
        ["tls-version", "hostname", "expiry", "client-cert-accepted", "no-client-cert-refused", "wrong-ca-refused"]
    {
        assert_eq!(check(&v, 0, name).0, "pass", "{name}: {v:#}");
    }
    assert!(check(&v, 0, "client-cert-accepted").1.contains("GET /pods answered 200"), "{v:#}");
    // The stand-in saw exactly one authenticated request: the other two never got an answer.
    assert_eq!(kubelet.requests.load(Ordering::SeqCst), 1);

    // Given the file it serves, the comparison runs; given a CA, the chain is checked (and
    // a self-signed chain does not lead to the cluster CA).
    let (code, v) = verify_json(
        d.path(),
        &[
            "--kubelet",
            &kubelet.url(),
            "--kubelet-served-cert",
            crt.to_str().unwrap(),
            "--kubelet-ca",
            d.join("pki/ca.crt").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(check(&v, 0, "served-matches-disk").0, "pass");
    let (status, reason) = check(&v, 0, "chain");
    assert_eq!(status, "fail");
    assert!(reason.contains("CN=cp1-ca@1764201600"), "{reason}");
}

#[test]
fn a_kubelet_that_answers_anonymous_requests_fails() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let (crt, key) = kubelet_self_signed(&d);
    let kubelet = HttpsServer::start(&crt, &key, None, ClientAuth::None);
    let (code, v) = verify_json(d.path(), &["--kubelet", &kubelet.url()]);
    assert_eq!(code, 1, "{v:#}");
    let (status, reason) = check(&v, 0, "no-client-cert-refused");
    assert_eq!(status, "fail");
    assert!(reason.contains("answered 200") && reason.contains("--anonymous-auth=false"), "{reason}");
    assert_eq!(check(&v, 0, "client-cert-accepted").0, "warn", "the server never asked: {v:#}");
    assert_eq!(check(&v, 0, "wrong-ca-refused").0, "fail");
}

#[test]
fn a_kubelet_with_optional_client_certificates_and_401_for_anonymous_passes() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let (crt, key) = kubelet_self_signed(&d);
    let kubelet = HttpsServer::start(&crt, &key, Some(&d.join("pki/ca.crt")), ClientAuth::Optional);
    let (code, v) = verify_json(d.path(), &["--kubelet", &kubelet.url()]);
    assert_eq!(code, 0, "{v:#}");
    let (status, reason) = check(&v, 0, "no-client-cert-refused");
    assert_eq!(status, "pass");
    assert!(reason.contains("401"), "{reason}");
    // rustls refuses the wrong-CA certificate in the handshake even when certificates are optional.
    assert_eq!(check(&v, 0, "wrong-ca-refused").0, "pass");
}

#[test]
fn a_kubelet_with_a_ca_signed_serving_certificate_passes_without_warnings() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    run(kubepki()
        .args(["issue", "kubelet-serving", "--cert-dir"])
        .arg(d.join("pki"))
        .args(["--node-name", "cp1", "--node-ip", "127.0.0.1", "--out"])
        .arg(d.join("serving")))
    .ok();
    let (crt, key) = (d.join("serving/cp1/kubelet.crt"), d.join("serving/cp1/kubelet.key"));
    let kubelet = HttpsServer::start(&crt, &key, Some(&d.join("pki/ca.crt")), ClientAuth::Required);
    let ca = d.join("pki/ca.crt");
    let (code, v) = verify_json(
        d.path(),
        &[
            "--kubelet",
            &kubelet.url(),
            "--kubelet-ca",
            ca.to_str().unwrap(),
            "--kubelet-served-cert",
            crt.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{v:#}");
    assert!(all_pass(&v, 0), "{:?}", statuses(&v, 0));
    assert_eq!(statuses(&v, 0).len(), 9);
}

#[test]
fn a_server_that_trusts_another_ca_refuses_the_right_client() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let (crt, key) = kubelet_self_signed(&d);
    // The kubelet's client CA is the etcd CA: apiserver-kubelet-client does not chain to it.
    let kubelet = HttpsServer::start(&crt, &key, Some(&d.join("pki/etcd/ca.crt")), ClientAuth::Required);
    let (code, v) = verify_json(d.path(), &["--kubelet", &kubelet.url()]);
    assert_eq!(code, 1, "{v:#}");
    let (status, reason) = check(&v, 0, "client-cert-accepted");
    assert_eq!(status, "fail");
    assert!(reason.contains("kube-apiserver-kubelet-client") && reason.contains("refused"), "{reason}");
}

#[test]
fn a_server_that_also_trusts_a_foreign_ca_fails_the_wrong_ca_check() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    // A second, unrelated PKI; the server's client-CA bundle holds both cluster CAs.
    let other = TestDir::new();
    init(other.path(), &[]).ok();
    let bundle =
        d.write("bundle.crt", d.read("pki/ca.crt") + &std::fs::read_to_string(other.join("pki/ca.crt")).unwrap());
    let pki = d.join("pki");
    let server =
        HttpsServer::start(&pki.join("apiserver.crt"), &pki.join("apiserver.key"), Some(&bundle), ClientAuth::Optional);
    let foreign = WrongCa::Files {
        cert: other.join("pki/apiserver-kubelet-client.crt"),
        key: other.join("pki/apiserver-kubelet-client.key"),
    };
    let target = Target::apiserver_default(&pki, &server.url()).unwrap().with_wrong_ca(foreign);
    let report = verify::verify_blocking(std::slice::from_ref(&target), &Options::default()).unwrap();
    let wrong = report.endpoints[0].check(CheckId::WrongCaRefused).unwrap();
    assert_eq!(wrong.status, CheckStatus::Fail, "{report:#?}");
    assert!(wrong.reason.contains("trusts a CA it should not"), "{}", wrong.reason);
    assert!(!report.passed());
    // The generated wrong CA (same names as the real one) is refused by the same server.
    let report = verify::verify_blocking(&[target.with_wrong_ca(WrongCa::Generate)], &Options::default()).unwrap();
    assert!(report.passed(), "{:?}", report.problems());
}

#[test]
fn a_server_that_did_not_reload_after_rotation_fails_served_matches_disk_until_restarted() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    // An API server stand-in: reads its certificate once, at start.
    let server = HttpsServer::apiserver(&pki);
    let (code, v) = verify_json(d.path(), &["--apiserver", &server.url()]);
    assert_eq!(code, 0, "{v:#}");
    assert!(all_pass(&v, 0), "{:?}", statuses(&v, 0));
    let old_serial = v["endpoints"][0]["served"]["serial"].as_str().unwrap().to_owned();

    run(kubepki()
        .arg("rotate")
        .arg("--cert-dir")
        .arg(&pki)
        .arg("--kubeconfig-dir")
        .arg(d.path())
        .args(["--force", "apiserver"]))
    .ok();
    let new = kubepki_pki::read_certs(&pki.join("apiserver.crt")).unwrap().unwrap().remove(0);
    assert_ne!(new.serial, old_serial);

    let (code, v) = verify_json(d.path(), &["--apiserver", &server.url()]);
    assert_eq!(code, 1, "{v:#}");
    let (status, reason) = check(&v, 0, "served-matches-disk");
    assert_eq!(status, "fail");
    assert!(reason.contains(&old_serial) && reason.contains(&new.serial) && reason.contains("reload"), "{reason}");
    // Everything else still holds: only the reload is missing.
    for (name, status) in statuses(&v, 0) {
        assert!(name == "served-matches-disk" || status == "pass", "{name}: {v:#}");
    }

    // With --wait, verify waits for the component to come back with the new certificate: the
    // stand-in restarts on the same port while verify runs (it sees the old certificate, or a
    // refused connection, and tries again).
    let port = server.addr.port();
    let waiting = kubepki()
        .arg("verify")
        .arg("--cert-dir")
        .arg(&pki)
        .args(["-o", "json", "--wait", "60s", "--apiserver", &server.url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(server);
    let restarted = HttpsServer::start_on(
        port,
        &pki.join("apiserver.crt"),
        &pki.join("apiserver.key"),
        Some(&pki.join("ca.crt")),
        ClientAuth::Optional,
    );
    let out = waiting.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{v:#}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(v["endpoints"][0]["served"]["serial"], new.serial.as_str());
    assert!(restarted.requests.load(Ordering::SeqCst) >= 1);
}

#[test]
fn the_apiserver_is_probed_with_the_admin_conf_client() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    let server = HttpsServer::apiserver(&pki);
    let conf = d.join("admin.conf");
    let (code, v) =
        verify_json(d.path(), &["--apiserver", &server.url(), "--apiserver-kubeconfig", conf.to_str().unwrap()]);
    assert_eq!(code, 0, "{v:#}");
    let (_, reason) = check(&v, 0, "client-cert-accepted");
    assert!(reason.contains("kubernetes-admin") && reason.contains("admin.conf"), "{reason}");
}

#[test]
fn a_certificate_not_valid_for_the_host_fails_and_one_expiring_soon_warns() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let etcd = etcd(&d.join("pki"), true);
    // etcd's certificate is valid for localhost as well as 127.0.0.1.
    let (code, v) = verify_json(d.path(), &["--etcd", &etcd.client_url.replace("127.0.0.1", "localhost")]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(check(&v, 0, "hostname").1, "valid for localhost");

    let (crt, key) = kubelet_self_signed(&d);
    let kubelet = HttpsServer::start(&crt, &key, Some(&d.join("pki/ca.crt")), ClientAuth::Required);
    let other_name = kubelet.url().replace("127.0.0.1", "localhost");
    let (code, v) = verify_json(d.path(), &["--kubelet", &other_name, "--warn", "400d"]);
    assert_eq!(code, 1, "{v:#}");
    let (status, reason) = check(&v, 0, "hostname");
    assert_eq!(status, "fail");
    assert!(reason.contains("not valid for localhost") && reason.contains("DNS:cp1, IP:127.0.0.1"), "{reason}");
    let (status, reason) = check(&v, 0, "expiry");
    assert_eq!(status, "warn");
    assert!(reason.contains("within the warning window of 400d"), "{reason}");
}

#[test]
fn a_server_that_accepts_tls_1_1_fails_the_tls_version_check() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    let old = OpensslServer::start(
        &pki.join("apiserver.crt"),
        &pki.join("apiserver.key"),
        &["-min_protocol", "TLSv1.1", "-cipher", "DEFAULT:@SECLEVEL=0"],
    );
    let (code, v) = verify_json(d.path(), &["--apiserver", &old.url()]);
    assert_eq!(code, 1, "{v:#}");
    let (status, reason) = check(&v, 0, "tls-version");
    assert_eq!(status, "fail");
    assert!(reason.contains("also accepts TLS 1.1"), "{reason}");
    // openssl's defaults here (TLS 1.2 at least) pass; it asks for no client certificate.
    let current = OpensslServer::start(&pki.join("apiserver.crt"), &pki.join("apiserver.key"), &[]);
    let (_, v) = verify_json(d.path(), &["--apiserver", &current.url()]);
    assert_eq!(check(&v, 0, "tls-version").0, "pass", "{v:#}");
    assert_eq!(check(&v, 0, "no-client-cert-refused").0, "fail", "{v:#}");
}

#[test]
fn unreachable_endpoints_and_wrong_input_exit_2() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let closed = format!("https://127.0.0.1:{}", free_port());
    let (code, v) = verify_json(d.path(), &["--etcd", &closed]);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["verdict"], "incomplete");
    assert!(v["endpoints"][0]["reason"].as_str().unwrap().contains("cannot connect"), "{v:#}");

    // A missing client certificate is named, before anything is probed.
    let missing = d.join("nowhere.crt");
    let (code, v) = verify_json(
        d.path(),
        &["--etcd", &closed, "--etcd-cert", missing.to_str().unwrap(), "--etcd-key", missing.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert_eq!(v["endpoints"][0]["outcome"], "invalid-input");
    assert!(v["endpoints"][0]["reason"].as_str().unwrap().contains("nowhere.crt"), "{v:#}");

    for bad in [&["--etcd", "http://127.0.0.1:2379"][..], &[], &["--etcd-cert", "x.crt", "--etcd", "https://h"]] {
        let r = run(kubepki().arg("verify").arg("--cert-dir").arg(d.join("pki")).args(bad));
        assert_eq!(r.code, 2, "{bad:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{bad:?}: {}", r.stdout);
    }
}

/// What the zero-downtime clients counted.
#[derive(Default)]
struct Load {
    /// Requests (a put and a get on a new connection) that succeeded at the first attempt.
    ok: AtomicUsize,
    /// Requests that failed at first and succeeded when retried on new connections.
    retried: AtomicUsize,
    /// Requests that failed at every attempt.
    failed: AtomicUsize,
    /// Times a client's own certificate and key, read as a pair by kubepki's reader while
    /// rotate replaced them, did not match (kubepki's reader re-reads a pair it saw replaced,
    /// so this must stay 0).
    torn_reads: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

/// The client's certificate and key, read as a matching pair (re-read if rotate swapped the
/// files between the two reads).
fn client_pair(pki: &Path, load: &Load) -> (String, String) {
    let dir = PkiDir::new(pki);
    for _ in 0..1000 {
        match dir.load_pair("apiserver-etcd-client") {
            Ok(Some(pair)) => return (pair.leaf().to_pem(), pair.key.to_pem().to_string()),
            Ok(None) => panic!("apiserver-etcd-client is missing"),
            Err(_) => {
                load.torn_reads.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    panic!("the client pair never matched")
}

/// A put and a get over a new connection.
async fn etcd_request(url: &str, pki: &Path, key: &str, load: &Load) -> Result<(), String> {
    use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
    let ca = std::fs::read(pki.join("etcd/ca.crt")).map_err(|e| e.to_string())?;
    let (cert, key_pem) = client_pair(pki, load);
    let tls = TlsOptions::new().ca_certificate(Certificate::from_pem(ca)).identity(Identity::from_pem(cert, key_pem));
    let options = ConnectOptions::new()
        .with_tls(tls)
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(5));
    let mut client = Client::connect([url], Some(options)).await.map_err(|e| e.to_string())?;
    client.put(key, "v", None).await.map_err(|e| e.to_string())?;
    let got = client.get(key, None).await.map_err(|e| e.to_string())?;
    match got.kvs().first().map(|kv| kv.value()) {
        Some(b"v") => Ok(()),
        other => Err(format!("read back {other:?}")),
    }
}

fn client_loop(url: String, pki: PathBuf, worker: usize, stop: Arc<AtomicBool>, load: Arc<Load>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut n = 0usize;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let key = format!("zero-downtime/{worker}/{n}");
            let Err(first) = etcd_request(&url, &pki, &key, &load).await else {
                load.ok.fetch_add(1, Ordering::SeqCst);
                continue;
            };
            // Retries on new connections with a growing pause, as etcd's clients (the API
            // server's among them) retry: 20, 40, 80, 160 ms.
            let mut retry = Err(String::new());
            for attempt in 0..4 {
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                retry = etcd_request(&url, &pki, &key, &load).await;
                if retry.is_ok() {
                    break;
                }
            }
            let counter = if retry.is_ok() { &load.retried } else { &load.failed };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut errors = load.errors.lock().unwrap();
            errors.push(format!("first attempt: {first}"));
            if let Err(e) = retry {
                errors.push(format!("last retry: {e}"));
            }
        }
    });
}

/// The zero-downtime proof: two clients make mTLS requests to a real etcd, each on a new
/// connection, while `kubepki rotate` replaces etcd's serving and peer certificates and the
/// clients' own certificate 20 times (`KUBEPKI_ZERO_DOWNTIME_ROUNDS` for a longer measurement).
/// etcd re-reads its pair on every handshake, and kubeadm's plain files change by two renames:
/// a handshake that reads across them fails, and a client's retry succeeds. No request may
/// fail once retried, and kubepki's own reader never hands out a mixed pair; after each
/// rotation new connections see the new certificates (the verify fingerprint check), with
/// every mTLS check passing.
#[test]
fn etcd_keeps_serving_while_rotate_replaces_its_certificates() {
    let rounds: usize = std::env::var("KUBEPKI_ZERO_DOWNTIME_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20);
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    let etcd = etcd(&pki, true);
    let (stop, load) = (Arc::new(AtomicBool::new(false)), Arc::new(Load::default()));
    let clients: Vec<_> = (0..2)
        .map(|worker| {
            let (url, pki, stop, load) = (etcd.client_url.clone(), pki.clone(), stop.clone(), load.clone());
            std::thread::spawn(move || client_loop(url, pki, worker, stop, load))
        })
        .collect();
    let targets = [
        Target::etcd_default(&pki, &etcd.client_url).unwrap(),
        Target::etcd_peer_default(&pki, &etcd.peer_url).unwrap(),
    ];
    let served = |base: &str| kubepki_pki::read_certs(&pki.join(format!("{base}.crt"))).unwrap().unwrap().remove(0);
    let mut serials = vec![served("etcd/server").serial];
    for round in 0..rounds {
        // Rotate only once the clients have made progress since the last rotation.
        let done =
            |l: &Load| l.ok.load(Ordering::SeqCst) + l.retried.load(Ordering::SeqCst) + l.failed.load(Ordering::SeqCst);
        let (before, start) = (done(&load), Instant::now());
        while done(&load) < before + 3 {
            assert!(start.elapsed() < Duration::from_secs(120), "the clients made no progress:\n{}", etcd.log());
            std::thread::sleep(Duration::from_millis(5));
        }
        run(kubepki()
            .arg("rotate")
            .arg("--cert-dir")
            .arg(&pki)
            .arg("--kubeconfig-dir")
            .arg(d.path())
            .args(["--force", "etcd-server,etcd-peer,apiserver-etcd-client"]))
        .ok();
        let report = verify::verify_blocking(&targets, &Options::default()).unwrap();
        assert!(report.passed(), "round {round}: {:?}", report.problems());
        assert_eq!(report.endpoints[0].served_leaf().unwrap().serial, served("etcd/server").serial);
        assert_eq!(report.endpoints[1].served_leaf().unwrap().serial, served("etcd/peer").serial);
        for e in &report.endpoints {
            assert!(e.checks.iter().all(|c| c.status == CheckStatus::Pass), "round {round}: {e:#?}");
        }
        serials.push(served("etcd/server").serial);
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let (ok, retried, failed, torn) = (
        load.ok.load(Ordering::SeqCst),
        load.retried.load(Ordering::SeqCst),
        load.failed.load(Ordering::SeqCst),
        load.torn_reads.load(Ordering::SeqCst),
    );
    eprintln!(
        "zero-downtime: {rounds} rotations, {} requests: {ok} ok at the first attempt, {retried} ok when retried, \
         {failed} failed; {torn} torn reads of the client's own pair; errors: {:?}",
        ok + retried + failed,
        load.errors.lock().unwrap()
    );
    serials.dedup();
    assert_eq!(serials.len(), rounds + 1, "every rotation gave etcd a new serial");
    assert_eq!(failed, 0, "{:?}", load.errors.lock().unwrap());
    assert_eq!(torn, 0, "kubepki's reader handed out a certificate with another key");
    assert!(ok + retried >= rounds * 3);
}

/// The library's synchronous wrapper also works from inside a tokio runtime (rotate may be
/// async one day), and an explicitly given client credential is used.
#[test]
fn verify_blocking_runs_inside_a_runtime_too() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    let etcd = etcd(&pki, true);
    let target = Target::etcd_default(&pki, &etcd.client_url).unwrap().with_client(Some(ClientCredential::Files {
        cert: pki.join("etcd/healthcheck-client.crt"),
        key: pki.join("etcd/healthcheck-client.key"),
    }));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report =
        rt.block_on(async { verify::verify_blocking(std::slice::from_ref(&target), &Options::default()) }).unwrap();
    assert!(report.passed(), "{:?}", report.problems());
    let accepted = report.endpoints[0].check(CheckId::ClientCertAccepted).unwrap();
    assert!(accepted.reason.contains("kube-etcd-healthcheck-client"), "{}", accepted.reason);
}
