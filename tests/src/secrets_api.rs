//! An in-process stand-in for the Kubernetes API server's Secrets endpoints, over real TLS
//! (rustls) with client-certificate authentication, for the real `kube` client and kubectl.
//!
//! It implements what reading and rotating Secrets uses, with the API server's semantics:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /api/v1/namespaces/{ns}/secrets/{name}` | the Secret, or a 404 `Status` |
//! | `GET /api/v1/namespaces/{ns}/secrets` | a `SecretList` (sorted by name) |
//! | `GET /api/v1/secrets` | a `SecretList` of every namespace (`?fieldSelector=type=T`: those of type `T`) |
//! | `POST /api/v1/namespaces/{ns}/secrets` | creates (201), or 409 `AlreadyExists` |
//! | `PUT /api/v1/namespaces/{ns}/secrets/{name}` | replaces (200) if `metadata.resourceVersion` is current; 409 `Conflict` if stale; 422 `Invalid` if absent; 404 if there is no such Secret |
//! | `DELETE /api/v1/namespaces/{ns}/secrets/{name}` | deletes (200 `Status` Success), or 404 |
//!
//! Every write bumps one cluster-wide resourceVersion, as etcd's revision does.
//! [`SecretsApi::inject_conflict`] makes the next `PUT` fail with 409 whatever its
//! resourceVersion, to test retry loops. Every request is recorded ([`SecretsApi::requests`]).
//!
//! The port is known before the server starts ([`SecretsApi::reserve`]), so a PKI and an
//! admin kubeconfig can be made for `https://127.0.0.1:<port>` first.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A bound port, before the server runs.
pub struct Reserved {
    listener: TcpListener,
}

impl Reserved {
    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Starts serving with `cert`/`key`, requiring client certificates issued by `client_ca`.
    pub fn serve(self, cert: &Path, key: &Path, client_ca: &Path) -> SecretsApi {
        SecretsApi::serve(self.listener, cert, key, client_ca)
    }
}

#[derive(Default)]
struct State {
    secrets: BTreeMap<(String, String), Value>,
    resource_version: u64,
    conflicts_to_inject: usize,
    requests: Vec<String>,
}

impl State {
    fn bump(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }
}

/// The running server; stopped when dropped.
pub struct SecretsApi {
    /// The listening address.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SecretsApi {
    /// Binds 127.0.0.1 on a free port.
    pub fn reserve() -> Reserved {
        Reserved { listener: TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1") }
    }

    fn serve(listener: TcpListener, cert: &Path, key: &Path, client_ca: &Path) -> Self {
        crate::install_crypto_provider();
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(cert).unwrap().collect::<Result<_, _>>().unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(client_ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().unwrap();
        let config =
            rustls::ServerConfig::builder().with_client_cert_verifier(verifier).with_single_cert(certs, key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (state2, stop2) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while !stop2.load(Ordering::SeqCst) {
                    let Ok(Ok((tcp, _))) = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await
                    else {
                        continue;
                    };
                    let (acceptor, state) = (acceptor.clone(), state2.clone());
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else { return };
                        connection(tls, state).await;
                    });
                }
            });
        });
        Self { addr, state, stop, thread: Some(thread) }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stores `secret` (a v1 Secret as JSON; `metadata.namespace` and `metadata.name` are
    /// required) as if created, and returns the stored object.
    pub fn insert(&self, secret: Value) -> Value {
        let mut st = self.state.lock().unwrap();
        let ns = secret["metadata"]["namespace"].as_str().expect("metadata.namespace").to_owned();
        let name = secret["metadata"]["name"].as_str().expect("metadata.name").to_owned();
        let rv = st.bump();
        let stored = stamp(secret, &ns, &rv, None);
        st.secrets.insert((ns, name), stored.clone());
        stored
    }

    /// The stored Secret, if any.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Value> {
        self.state.lock().unwrap().secrets.get(&(namespace.to_owned(), name.to_owned())).cloned()
    }

    /// Makes the next `PUT` fail with 409 Conflict, whatever its resourceVersion.
    pub fn inject_conflict(&self) {
        self.state.lock().unwrap().conflicts_to_inject += 1;
    }

    /// Every request so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for SecretsApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A `kubernetes.io/tls` Secret with `tls.crt` and `tls.key` (and `ca.crt` if given).
pub fn tls_secret(namespace: &str, name: &str, cert_pem: &str, key_pem: &str, ca_pem: Option<&str>) -> Value {
    let mut data = json!({"tls.crt": STANDARD.encode(cert_pem), "tls.key": STANDARD.encode(key_pem)});
    if let Some(ca) = ca_pem {
        data["ca.crt"] = json!(STANDARD.encode(ca));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/tls",
        "data": data,
    })
}

/// Sets the server-owned fields of a stored Secret.
fn stamp(mut secret: Value, namespace: &str, resource_version: &str, previous: Option<&Value>) -> Value {
    secret["apiVersion"] = json!("v1");
    secret["kind"] = json!("Secret");
    let meta = &mut secret["metadata"];
    meta["namespace"] = json!(namespace);
    meta["resourceVersion"] = json!(resource_version);
    let (uid, created) = match previous {
        Some(p) => (p["metadata"]["uid"].clone(), p["metadata"]["creationTimestamp"].clone()),
        None => (json!(format!("00000000-0000-4000-8000-{:012}", resource_version)), json!("2026-01-01T00:00:00Z")),
    };
    meta["uid"] = uid;
    meta["creationTimestamp"] = created;
    secret
}

fn status(code: u16, reason: &str, message: String, name: Option<&str>) -> (u16, Value) {
    (
        code,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "details": {"name": name, "kind": "secrets"}, "code": code,
        }),
    )
}

fn list(items: Vec<Value>, resource_version: u64) -> (u16, Value) {
    (
        200,
        json!({"kind": "SecretList", "apiVersion": "v1", "metadata": {"resourceVersion": resource_version.to_string()}, "items": items}),
    )
}

/// The Secret type of a request's `fieldSelector=type=<type>` (the one field selector served).
fn type_selector(target: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    let value = query.split('&').find_map(|p| p.strip_prefix("fieldSelector="))?;
    let decoded = value.replace("%3D", "=").replace("%3d", "=").replace("%2F", "/").replace("%2f", "/");
    decoded.strip_prefix("type=").map(str::to_owned)
}

/// Answers one request.
fn handle(state: &Mutex<State>, method: &str, target: &str, body: &[u8]) -> (u16, Value) {
    let mut st = state.lock().unwrap();
    st.requests.push(format!("{method} {target}"));
    let path = target.split('?').next().unwrap_or(target);
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["api", "v1", "secrets"]) => {
            let wanted = type_selector(target);
            let items = st.secrets.values().filter(|s| wanted.as_ref().is_none_or(|t| s["type"] == *t)).cloned();
            list(items.collect(), st.resource_version)
        }
        ("GET", ["api", "v1", "namespaces", ns, "secrets"]) => {
            list(st.secrets.iter().filter(|((n, _), _)| n == ns).map(|(_, v)| v.clone()).collect(), st.resource_version)
        }
        ("GET", ["api", "v1", "namespaces", ns, "secrets", name]) => {
            match st.secrets.get(&((*ns).to_owned(), (*name).to_owned())) {
                Some(s) => (200, s.clone()),
                None => status(404, "NotFound", format!("secrets \"{name}\" not found"), Some(name)),
            }
        }
        ("POST", ["api", "v1", "namespaces", ns, "secrets"]) => {
            let Ok(secret) = serde_json::from_slice::<Value>(body) else {
                return status(400, "BadRequest", "the body is not a JSON object".into(), None);
            };
            let Some(name) = secret["metadata"]["name"].as_str().map(str::to_owned) else {
                return status(422, "Invalid", "Secret \"\" is invalid: metadata.name: Required value".into(), None);
            };
            let key = ((*ns).to_owned(), name.clone());
            if st.secrets.contains_key(&key) {
                return status(409, "AlreadyExists", format!("secrets \"{name}\" already exists"), Some(&name));
            }
            let rv = st.bump();
            let stored = stamp(secret, ns, &rv, None);
            st.secrets.insert(key, stored.clone());
            (201, stored)
        }
        ("PUT", ["api", "v1", "namespaces", ns, "secrets", name]) => {
            let Ok(secret) = serde_json::from_slice::<Value>(body) else {
                return status(400, "BadRequest", "the body is not a JSON object".into(), Some(name));
            };
            if secret["metadata"]["name"].as_str() != Some(name) {
                return status(
                    400,
                    "BadRequest",
                    "the name of the object does not match the name on the URL".into(),
                    Some(name),
                );
            }
            let key = ((*ns).to_owned(), (*name).to_owned());
            let Some(current) = st.secrets.get(&key).cloned() else {
                return status(404, "NotFound", format!("secrets \"{name}\" not found"), Some(name));
            };
            let conflict = || {
                status(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on secrets \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                    ),
                    Some(name),
                )
            };
            if st.conflicts_to_inject > 0 {
                st.conflicts_to_inject -= 1;
                return conflict();
            }
            match secret["metadata"]["resourceVersion"].as_str() {
                None | Some("") => {
                    return status(
                        422,
                        "Invalid",
                        format!(
                            "Secret \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
                        ),
                        Some(name),
                    );
                }
                Some(rv) if Some(rv) != current["metadata"]["resourceVersion"].as_str() => return conflict(),
                Some(_) => {}
            }
            let rv = st.bump();
            let stored = stamp(secret, ns, &rv, Some(&current));
            st.secrets.insert(key, stored.clone());
            (200, stored)
        }
        ("DELETE", ["api", "v1", "namespaces", ns, "secrets", name]) => {
            if st.secrets.remove(&((*ns).to_owned(), (*name).to_owned())).is_none() {
                return status(404, "NotFound", format!("secrets \"{name}\" not found"), Some(name));
            }
            st.bump();
            (
                200,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"name": name, "kind": "secrets"}}),
            )
        }
        (_, ["api", "v1", "namespaces", _, "secrets", ..] | ["api", "v1", "secrets"]) => {
            status(405, "MethodNotAllowed", format!("{method} is not supported here"), None)
        }
        _ => status(404, "NotFound", "the server could not find the requested resource".into(), None),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Serves HTTP/1.1 requests on one connection until the client closes it.
async fn connection<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut tls: S, state: Arc<Mutex<State>>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16384];
    loop {
        // The head of the next request.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let (method, target) =
            (request_line.next().unwrap_or_default().to_owned(), request_line.next().unwrap_or("/").to_owned());
        let header = |name: &str| {
            head.split("\r\n").skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(i) = find(&buf, b"\r\n") {
                        break i;
                    }
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
                let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
                buf.drain(..line_end + 2);
                while buf.len() < size + 2 {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                body.extend_from_slice(&buf[..size]);
                buf.drain(..size + 2);
                if size == 0 {
                    break;
                }
            }
            body
        } else {
            let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            while buf.len() < len {
                match tls.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf.drain(..len).collect()
        };
        let (code, value) = handle(&state, &method, &target, &body);
        let body = serde_json::to_vec(&value).unwrap();
        let reason = match code {
            200 => "OK",
            201 => "Created",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            409 => "Conflict",
            _ => "Unprocessable Entity",
        };
        let head = format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if tls.write_all(head.as_bytes()).await.is_err() || tls.write_all(&body).await.is_err() {
            return;
        }
        let _ = tls.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, ListParams, PostParams};

    use super::*;

    /// A PKI for 127.0.0.1:<port> and a kube client built from its admin.conf.
    async fn setup() -> (tempfile::TempDir, SecretsApi, kube::Client) {
        crate::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let reserved = SecretsApi::reserve();
        let mut cfg = kubepki_pki::ClusterConfig::new("cp1", "127.0.0.1".parse().unwrap());
        cfg.cert_dir = dir.path().join("pki");
        cfg.kubeconfig_dir = dir.path().to_path_buf();
        cfg.bind_port = reserved.port();
        kubepki_pki::init(&cfg, &kubepki_pki::InitOptions::now()).unwrap();
        let pki = dir.path().join("pki");
        let api = reserved.serve(&pki.join("apiserver.crt"), &pki.join("apiserver.key"), &pki.join("ca.crt"));
        let kc = kube::config::Kubeconfig::read_from(dir.path().join("admin.conf")).unwrap();
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default()).await.unwrap();
        assert_eq!(config.cluster_url.to_string(), format!("{}/", api.url()));
        (dir, api, kube::Client::try_from(config).unwrap())
    }

    fn tls(name: &str) -> Value {
        tls_secret("default", name, "CERT", "KEY", None)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_kube_client_gets_and_lists_secrets() {
        let (_dir, server, client) = setup().await;
        server.insert(tls("a"));
        server.insert(tls("b"));
        server.insert(tls_secret("other", "c", "X", "Y", None));
        let api: Api<Secret> = Api::namespaced(client.clone(), "default");
        let a = api.get("a").await.unwrap();
        assert_eq!(a.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(a.data.unwrap()["tls.crt"].0, b"CERT");
        let names: Vec<_> = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|s| s.metadata.name.unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        let err = api.get("nope").await.unwrap_err();
        assert!(matches!(&err, kube::Error::Api(s) if s.code == 404 && s.reason == "NotFound"), "{err:?}");
        assert!(server.requests().iter().any(|r| r.starts_with("GET /api/v1/namespaces/default/secrets")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replace_needs_the_current_resource_version() {
        let (_dir, server, client) = setup().await;
        server.insert(tls("a"));
        let api: Api<Secret> = Api::namespaced(client, "default");
        let mut first = api.get("a").await.unwrap();
        let stale = first.clone();
        first.string_data = None;
        first.data.as_mut().unwrap().insert("tls.crt".into(), k8s_openapi::ByteString(b"NEW".to_vec()));
        let replaced = api.replace("a", &PostParams::default(), &first).await.unwrap();
        assert_ne!(replaced.metadata.resource_version, stale.metadata.resource_version);
        assert_eq!(server.get("default", "a").unwrap()["data"]["tls.crt"].as_str().unwrap(), STANDARD.encode("NEW"));
        // The old resourceVersion is stale now.
        let err = api.replace("a", &PostParams::default(), &stale).await.unwrap_err();
        assert!(matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"), "{err:?}");
        // An injected conflict fails one PUT with a current resourceVersion; the retry succeeds.
        server.inject_conflict();
        let current = api.get("a").await.unwrap();
        let err = api.replace("a", &PostParams::default(), &current).await.unwrap_err();
        assert!(matches!(&err, kube::Error::Api(s) if s.code == 409), "{err:?}");
        api.replace("a", &PostParams::default(), &current).await.unwrap();
        // Creating an existing Secret is refused; a new one is created.
        let err = api.create(&PostParams::default(), &current).await.unwrap_err();
        assert!(matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"), "{err:?}");
        let mut new = current.clone();
        new.metadata.name = Some("b".into());
        new.metadata.resource_version = None;
        api.create(&PostParams::default(), &new).await.unwrap();
        assert!(server.get("default", "b").is_some());
    }
}
