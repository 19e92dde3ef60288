//! The integration-test harness: temporary directories, running the `kubepki` binary, real
//! etcd, openssl and kubectl, and an in-process mTLS HTTPS server.
//!
//! Everything here starts real processes or real TLS stacks; nothing is mocked except what
//! cannot be installed on the machine (a kube-apiserver), which is stood in for by a real
//! rustls server.

pub mod fuzz_support;
pub mod kubeadm_fixture;
pub mod x509_reference;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub mod secrets_api;

pub use kubeadm_fixture::{PYTHON, kubeadm_tree};

/// Installs aws-lc-rs as the process-wide rustls provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A temporary directory that is removed when dropped.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDir {
    /// A new empty directory.
    pub fn new() -> Self {
        Self { dir: tempfile::Builder::new().prefix("kubepki-test-").tempdir().expect("create temp dir") }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `<dir>/<rel>`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (creating parents).
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Reads a file as a string.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }
}

/// The result of running a command.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// Panics unless the command succeeded.
    #[track_caller]
    pub fn ok(self) -> Self {
        self.expect_code(0)
    }
}

/// Runs a command to completion, capturing its output.
pub fn run(cmd: &mut Command) -> Run {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    Run::from(child.wait_with_output().expect("wait"))
}

/// The programs `scripts/setup` installs (or, for kubectl, expects on the machine image).
const SETUP_INSTALLS: &[&str] =
    &["protoc", "etcd", "etcdctl", "openssl", "curl", "dot", "promtool", "zsh", "fish", "kubectl"];

/// Whether a program is on PATH. A test uses it to skip what needs a missing program, and a
/// missing program is said on stderr (`skipped: …`), never passed over in silence. Under
/// `CI=true` a program that `scripts/setup` installs must be there: CI runs the set-up first,
/// so its absence fails the test instead of skipping it.
pub fn have(program: &str) -> bool {
    let found =
        Command::new("sh").arg("-c").arg(format!("command -v {program}")).output().is_ok_and(|o| o.status.success());
    if !found {
        let installed_by_setup = SETUP_INSTALLS.contains(&program);
        assert!(
            !(installed_by_setup && std::env::var("CI").is_ok_and(|v| v == "true")),
            "{program} is missing although scripts/setup installs it (CI=true: nothing it installs may be skipped)"
        );
        let hint = if installed_by_setup { " (scripts/setup installs it)" } else { "" };
        eprintln!("skipped: {program} is not installed{hint}");
    }
    found
}

/// `openssl verify -x509_strict -CAfile ca cert`, returning openssl's output on failure.
pub fn openssl_verify(ca: &Path, cert: &Path) -> Result<(), String> {
    openssl_verify_purpose(ca, cert, None)
}

/// As [`openssl_verify`], with `-purpose sslserver|sslclient`.
pub fn openssl_verify_purpose(ca: &Path, cert: &Path, purpose: Option<&str>) -> Result<(), String> {
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-x509_strict", "-CAfile"]).arg(ca);
    if let Some(p) = purpose {
        cmd.args(["-purpose", p]);
    }
    let r = run(cmd.arg(cert));
    if r.code == 0 && r.stdout.trim_end().ends_with(": OK") { Ok(()) } else { Err(format!("{}{}", r.stdout, r.stderr)) }
}

/// `openssl x509 -noout -text` of a certificate file.
pub fn openssl_text(cert: &Path) -> String {
    run(Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(cert)).ok().stdout
}

/// A hash of every file under `dir`: relative path, mode and contents. Equal hashes mean
/// nothing was written.
pub fn tree_hash(dir: &Path) -> String {
    let mut entries = BTreeMap::new();
    walk(dir, dir, &mut entries);
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for (path, (mode, contents)) in &entries {
        ctx.update(path.as_bytes());
        ctx.update(&mode.to_be_bytes());
        ctx.update(contents);
    }
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A hash of what readers see under `dir`: every visible (not dot-named) file, followed
/// through symlinks, with its mode and contents. Unlike [`tree_hash`] it does not change when
/// the same contents are rewritten into a new snapshot.
pub fn content_hash(dir: &Path) -> String {
    let mut entries = BTreeMap::new();
    visible(dir, dir, &mut entries);
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for (path, (mode, contents)) in &entries {
        ctx.update(path.as_bytes());
        ctx.update(&mode.to_be_bytes());
        ctx.update(contents);
    }
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn visible(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => visible(root, &p, out),
            Ok(m) => {
                out.insert(rel, (m.permissions().mode(), std::fs::read(&p).unwrap_or_default()));
            }
            Err(_) => {
                out.insert(rel, (0, b"<dangling>".to_vec()));
            }
        }
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        if meta.is_dir() {
            out.insert(format!("{rel}/"), (meta.permissions().mode(), Vec::new()));
            walk(root, &p, out);
        } else if meta.file_type().is_symlink() {
            out.insert(rel, (0, std::fs::read_link(&p).unwrap().display().to_string().into_bytes()));
        } else {
            out.insert(rel, (meta.permissions().mode(), std::fs::read(&p).unwrap_or_default()));
        }
    }
}

/// A TCP port that was free a moment ago on 127.0.0.1.
///
/// Ports are taken below the kernel's ephemeral range (`ip_local_port_range`) and handed out
/// once each per process: a port from `bind(127.0.0.1:0)` can be handed out again to the next
/// caller before the first binds it, or be taken meanwhile as an outgoing connection's source
/// port (an etcd member then failed with "address already in use").
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (low, span) =
        (ephemeral_low.saturating_sub(12_000).max(1024), 12_000.min(ephemeral_low.saturating_sub(1024)).max(1));
    // Processes (test binaries, CI jobs) start at different places in the range.
    let offset = std::process::id() % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = low + (offset + n) % span;
        if let Ok(port) = u16::try_from(port)
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port below {ephemeral_low} on 127.0.0.1");
}

/// `etcdctl` (etcd's Go client, API v3) against `url` with the kubeadm cert dir `pki`'s
/// `etcd/ca.crt` and its healthcheck client certificate, as kubeadm's probes used it; add the
/// command's arguments.
pub fn etcdctl_healthcheck(url: &str, pki: &Path) -> Command {
    etcdctl_as(url, pki, "etcd/healthcheck-client")
}

/// [`etcdctl_healthcheck`] with another client certificate of the cert dir `pki`, by its base
/// name (`apiserver-etcd-client`: the API server's).
pub fn etcdctl_as(url: &str, pki: &Path, client: &str) -> Command {
    let mut cmd = Command::new("etcdctl");
    cmd.env("ETCDCTL_API", "3")
        .args(["--endpoints", url])
        .arg("--cacert")
        .arg(pki.join("etcd/ca.crt"))
        .arg("--cert")
        .arg(pki.join(format!("{client}.crt")))
        .arg("--key")
        .arg(pki.join(format!("{client}.key")));
    cmd
}

/// A real etcd process (Debian `etcd-server`) on 127.0.0.1 with mutual TLS on its client and
/// peer ports; killed when dropped.
pub struct Etcd {
    child: Child,
    /// `https://127.0.0.1:<port>`.
    pub client_url: String,
    /// `https://127.0.0.1:<port>` of the peer listener.
    pub peer_url: String,
    _data: tempfile::TempDir,
    log: Arc<std::sync::Mutex<String>>,
}

/// How to start an etcd member.
pub struct EtcdConfig<'a> {
    /// The member name.
    pub name: &'a str,
    /// The kubeadm cert dir whose `etcd/` files it uses.
    pub pki: &'a Path,
    /// Require client certificates from the etcd CA (`--client-cert-auth --trusted-ca-file`).
    /// `false` leaves out both: etcd 3.4 requires client certificates whenever
    /// `--trusted-ca-file` is given, even with `--client-cert-auth=false`.
    pub client_cert_auth: bool,
}

impl Etcd {
    /// Starts a single-member cluster and waits until it serves clients.
    pub fn start(cfg: &EtcdConfig<'_>) -> Self {
        Self::start_with(cfg, &[])
    }

    /// As [`Etcd::start`], with `extra` flags after the others: a later occurrence of a flag
    /// overrides an earlier one, as in etcd's flag parsing (`--peer-trusted-ca-file=` clears it).
    pub fn start_with(cfg: &EtcdConfig<'_>, extra: &[String]) -> Self {
        let (cport, pport) = (free_port(), free_port());
        let client_url = format!("https://127.0.0.1:{cport}");
        let peer_url = format!("https://127.0.0.1:{pport}");
        let data = tempfile::tempdir().unwrap();
        let etcd = cfg.pki.join("etcd");
        let mut cmd = Command::new("etcd");
        cmd.arg("--name")
            .arg(cfg.name)
            .arg("--data-dir")
            .arg(data.path())
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .arg("--initial-cluster")
            .arg(format!("{}={peer_url}", cfg.name))
            .arg("--cert-file")
            .arg(etcd.join("server.crt"))
            .arg("--key-file")
            .arg(etcd.join("server.key"))
            .arg("--peer-cert-file")
            .arg(etcd.join("peer.crt"))
            .arg("--peer-key-file")
            .arg(etcd.join("peer.key"))
            .arg("--peer-trusted-ca-file")
            .arg(etcd.join("ca.crt"))
            .arg("--peer-client-cert-auth")
            .args(["--listen-metrics-urls", &format!("http://127.0.0.1:{}", free_port())]);
        if cfg.client_cert_auth {
            cmd.arg("--client-cert-auth").arg("--trusted-ca-file").arg(etcd.join("ca.crt"));
        }
        cmd.args(extra);
        let mut child =
            cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start etcd (apt-get install etcd-server)");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let ready = Arc::new(AtomicBool::new(false));
        {
            let (log, ready) = (log.clone(), ready.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("ready to serve client requests") {
                        ready.store(true, Ordering::SeqCst);
                    }
                    log.lock().unwrap().push_str(&line);
                    log.lock().unwrap().push('\n');
                }
            });
        }
        let start = Instant::now();
        while !ready.load(Ordering::SeqCst) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("etcd exited with {status}:\n{}", log.lock().unwrap());
            }
            assert!(start.elapsed() < Duration::from_secs(30), "etcd did not start:\n{}", log.lock().unwrap());
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, client_url, peer_url, _data: data, log }
    }

    /// What etcd logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTPS server on 127.0.0.1 (rustls), standing in for the API server or a kubelet: it
/// presents `cert`/`key`, verifies client certificates against `client_ca` when given
/// (required unless `optional_client_auth`), and answers every request with 200 and a small
/// JSON body naming the client's certificate subject, or 401 for anonymous requests when
/// `anonymous_401` is set.
pub struct HttpsServer {
    /// The listening address.
    pub addr: SocketAddr,
    /// Requests answered.
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How an [`HttpsServer`] authenticates clients.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum ClientAuth {
    /// No client certificates are asked for.
    None,
    /// A client certificate from the CA is optional; anonymous requests get 401.
    Optional,
    /// A client certificate from the CA is required (the handshake fails without one).
    Required,
}

impl HttpsServer {
    /// Starts the server on a free port.
    pub fn start(cert_pem: &Path, key_pem: &Path, client_ca: Option<&Path>, auth: ClientAuth) -> Self {
        Self::start_on(0, cert_pem, key_pem, client_ca, auth)
    }

    /// An API server stand-in on a free port: the cert dir `pki`'s `apiserver.crt` and key, read
    /// once at start, client certificates of its `ca.crt` optional (as kube-apiserver's
    /// `--client-ca-file`).
    pub fn apiserver(pki: &Path) -> Self {
        Self::start(
            &pki.join("apiserver.crt"),
            &pki.join("apiserver.key"),
            Some(&pki.join("ca.crt")),
            ClientAuth::Optional,
        )
    }

    /// An API server stand-in on `port` of 127.0.0.1 that demands a client certificate of the
    /// cert dir `pki`'s `ca.crt` (kube-apiserver with `--client-ca-file` and anonymous
    /// authentication off), serving its `apiserver.crt` and key.
    pub fn apiserver_on(port: u16, pki: &Path) -> Self {
        Self::start_on(
            port,
            &pki.join("apiserver.crt"),
            &pki.join("apiserver.key"),
            Some(&pki.join("ca.crt")),
            ClientAuth::Required,
        )
    }

    /// Starts the server on `port` of 127.0.0.1 (0: any free port).
    pub fn start_on(port: u16, cert_pem: &Path, key_pem: &Path, client_ca: Option<&Path>, auth: ClientAuth) -> Self {
        install_crypto_provider();
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(cert_pem).unwrap().collect::<Result<_, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_file(key_pem).unwrap();
        let builder = rustls::ServerConfig::builder();
        let config = match (client_ca, auth) {
            (Some(ca), ClientAuth::Optional | ClientAuth::Required) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca).unwrap() {
                    roots.add(c.unwrap()).unwrap();
                }
                let v = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots));
                let v = if auth == ClientAuth::Optional { v.allow_unauthenticated() } else { v };
                builder.with_client_cert_verifier(v.build().unwrap())
            }
            _ => builder.with_no_client_auth(),
        }
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (req2, stop2) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while !stop2.load(Ordering::SeqCst) {
                    let Ok(Ok((tcp, _))) = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await else {
                        continue;
                    };
                    let (acceptor, requests) = (acceptor.clone(), req2.clone());
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                        let peer = tls.get_ref().1.peer_certificates().and_then(|c| c.first().cloned());
                        let mut buf = vec![0u8; 16384];
                        let mut got = Vec::new();
                        loop {
                            let Ok(n) = tls.read(&mut buf).await else { return };
                            if n == 0 {
                                return;
                            }
                            got.extend_from_slice(&buf[..n]);
                            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                                break;
                            }
                        }
                        requests.fetch_add(1, Ordering::SeqCst);
                        let (status, body) = match &peer {
                            Some(der) => ("200 OK", format!("{{\"kind\":\"Status\",\"client\":\"{}\"}}", subject_of(der))),
                            None if auth == ClientAuth::Optional => ("401 Unauthorized", "{\"kind\":\"Status\",\"code\":401}".to_owned()),
                            None => ("200 OK", "{\"kind\":\"Status\",\"client\":\"anonymous\"}".to_owned()),
                        };
                        let resp = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = tls.write_all(resp.as_bytes()).await;
                        let _ = tls.shutdown().await;
                    });
                }
            });
        });
        Self { addr, requests, stop, thread: Some(thread) }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn subject_of(der: &[u8]) -> String {
    kubepki_pki::Certificate::from_der(der.to_vec(), "peer").map(|c| c.subject.to_string()).unwrap_or_default()
}

/// A multi-member etcd cluster on 127.0.0.1 (distinct ports), mutual TLS on client and peer
/// ports, each member using the `etcd/` files of a cert dir (one for all, or one per member as on
/// an HA control plane; their server and peer certificates carry 127.0.0.1). Members can be
/// restarted one at a time.
pub struct EtcdCluster {
    pkis: Vec<PathBuf>,
    names: Vec<String>,
    /// Client URLs, one per member.
    pub client_urls: Vec<String>,
    peer_urls: Vec<String>,
    data: Vec<tempfile::TempDir>,
    children: Vec<Option<Child>>,
    logs: Vec<Arc<std::sync::Mutex<String>>>,
}

impl EtcdCluster {
    /// Starts `members` members on one cert dir and waits until each serves clients.
    pub fn start(pki: &Path, members: usize) -> Self {
        Self::start_nodes(&vec![pki.to_owned(); members])
    }

    /// Starts one member per cert dir (member `i` on `pkis[i]`, a node's own certificates) and
    /// waits until each serves clients.
    pub fn start_nodes(pkis: &[PathBuf]) -> Self {
        let members = pkis.len();
        let names: Vec<String> = (1..=members).map(|i| format!("m{i}")).collect();
        let client_urls = (0..members).map(|_| format!("https://127.0.0.1:{}", free_port())).collect();
        let peer_urls = (0..members).map(|_| format!("https://127.0.0.1:{}", free_port())).collect();
        let data = (0..members).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut cluster = Self {
            pkis: pkis.to_vec(),
            names,
            client_urls,
            peer_urls,
            data,
            children: (0..members).map(|_| None).collect(),
            logs: (0..members).map(|_| Arc::new(std::sync::Mutex::new(String::new()))).collect(),
        };
        let ready: Vec<_> = (0..members).map(|i| cluster.spawn(i, "new")).collect();
        for (i, r) in ready.into_iter().enumerate() {
            cluster.wait_ready(i, &r);
        }
        cluster
    }

    fn spawn(&mut self, i: usize, state: &str) -> Arc<AtomicBool> {
        let etcd = self.pkis[i].join("etcd");
        let initial: Vec<String> = self.names.iter().zip(&self.peer_urls).map(|(n, u)| format!("{n}={u}")).collect();
        let mut cmd = Command::new("etcd");
        cmd.arg("--name")
            .arg(&self.names[i])
            .arg("--data-dir")
            .arg(self.data[i].path())
            .args(["--listen-client-urls", &self.client_urls[i], "--advertise-client-urls", &self.client_urls[i]])
            .args(["--listen-peer-urls", &self.peer_urls[i], "--initial-advertise-peer-urls", &self.peer_urls[i]])
            .args(["--initial-cluster", &initial.join(","), "--initial-cluster-state", state])
            .args(["--initial-cluster-token", "kubepki-test"])
            .arg("--cert-file")
            .arg(etcd.join("server.crt"))
            .arg("--key-file")
            .arg(etcd.join("server.key"))
            .arg("--trusted-ca-file")
            .arg(etcd.join("ca.crt"))
            .arg("--client-cert-auth")
            .arg("--peer-cert-file")
            .arg(etcd.join("peer.crt"))
            .arg("--peer-key-file")
            .arg(etcd.join("peer.key"))
            .arg("--peer-trusted-ca-file")
            .arg(etcd.join("ca.crt"))
            .arg("--peer-client-cert-auth")
            .args(["--listen-metrics-urls", &format!("http://127.0.0.1:{}", free_port())]);
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start etcd");
        let stderr = child.stderr.take().unwrap();
        let ready = Arc::new(AtomicBool::new(false));
        let (log, flag) = (self.logs[i].clone(), ready.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("ready to serve client requests") {
                    flag.store(true, Ordering::SeqCst);
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        self.children[i] = Some(child);
        ready
    }

    fn wait_ready(&mut self, i: usize, ready: &AtomicBool) {
        let start = Instant::now();
        while !ready.load(Ordering::SeqCst) {
            if let Some(Ok(Some(status))) = self.children[i].as_mut().map(Child::try_wait) {
                panic!("etcd {} exited with {status}:\n{}", self.names[i], self.logs[i].lock().unwrap());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "etcd {} did not start:\n{}",
                self.names[i],
                self.logs[i].lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops member `i` and starts it again with the files now on disk (a restart of one
    /// member: the others keep quorum), waiting until it serves clients.
    pub fn restart(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.logs[i].lock().unwrap().push_str("--- restart ---\n");
        let ready = self.spawn(i, "existing");
        self.wait_ready(i, &ready);
    }

    /// Restarts every member, one at a time.
    pub fn rolling_restart(&mut self) {
        for i in 0..self.names.len() {
            self.restart(i);
        }
    }

    /// What member `i` logged.
    pub fn log(&self, i: usize) -> String {
        self.logs[i].lock().unwrap().clone()
    }

    /// The peer URLs.
    pub fn peer_urls(&self) -> &[String] {
        &self.peer_urls
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
