//! Kubeconfig files: built exactly as kubeadm writes them, and edited in place without losing
//! anything kubepki does not own.
//!
//! The document is kept as a generic tree, so fields kubepki does not know (exec plugins,
//! extensions, several clusters) survive a rewrite. Keys are written in byte order, which is
//! also the order client-go's `clientcmd.Write` uses.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::cert::Certificate;
use crate::error::{Error, Result};

/// A kubeconfig document.
#[derive(Clone, PartialEq)]
pub struct Kubeconfig {
    doc: Value,
    source_name: String,
}

impl std::fmt::Debug for Kubeconfig {
    // Never print the document: it may hold client-key-data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubeconfig").field("source", &self.source_name).finish_non_exhaustive()
    }
}

/// Where a cluster's CA or a user's certificate or key comes from.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum PemSource {
    /// Embedded (`*-data`), decoded from base64.
    Embedded(Vec<u8>),
    /// A file path (`certificate-authority`, `client-certificate`, `client-key`), as written.
    File(PathBuf),
}

/// The cluster and user of a context, resolved.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ContextRef {
    /// The context's name.
    pub name: String,
    /// The cluster's name.
    pub cluster: String,
    /// The user's name.
    pub user: String,
}

impl Kubeconfig {
    /// The kubeconfig kubeadm's `CreateWithCerts` builds: one cluster with embedded CA data,
    /// one user named after the client certificate's CN with embedded certificate and key, one
    /// context `<user>@<cluster>`, which is current.
    pub fn with_client_cert(
        cluster: &str,
        server: &str,
        ca_pem: &str,
        user: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Self {
        let context = format!("{user}@{cluster}");
        let doc = json!({
            "apiVersion": "v1",
            "clusters": [{"cluster": {"certificate-authority-data": STANDARD.encode(ca_pem), "server": server}, "name": cluster}],
            "contexts": [{"context": {"cluster": cluster, "user": user}, "name": context}],
            "current-context": context,
            "kind": "Config",
            "preferences": {},
            "users": [{"name": user, "user": {"client-certificate-data": STANDARD.encode(cert_pem), "client-key-data": STANDARD.encode(key_pem)}}],
        });
        Self { doc, source_name: format!("{user} kubeconfig") }
    }

    /// The partial kubeconfig `kubeadm certs generate-csr` writes for an external CA: as
    /// [`with_client_cert`](Self::with_client_cert), but with the client key alone — no
    /// client certificate and no CA data until the external CA has signed.
    pub fn with_client_key(cluster: &str, server: &str, user: &str, key_pem: &str) -> Self {
        let mut kc = Self::with_client_cert(cluster, server, "", user, "", key_pem);
        for (list, entry, field) in
            [("clusters", "cluster", "certificate-authority-data"), ("users", "user", "client-certificate-data")]
        {
            if let Some(e) = kc
                .doc
                .get_mut(list)
                .and_then(|l| l.get_mut(0))
                .and_then(|e| e.get_mut(entry))
                .and_then(Value::as_object_mut)
            {
                e.remove(field);
            }
        }
        kc
    }

    /// Reads and parses a kubeconfig file (bounded read, contents zeroized after parsing);
    /// `None` if it does not exist.
    pub fn read(path: &std::path::Path) -> Result<Option<Self>> {
        let Some(bytes) = crate::fsio::read_optional(path, crate::fsio::MAX_CONFIG_FILE, "kubeconfig")? else {
            return Ok(None);
        };
        let bytes = Zeroizing::new(bytes);
        let source = path.display().to_string();
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Error::Kubeconfig { source_name: source.clone(), reason: "not text (UTF-8)".into() })?;
        Self::from_yaml(text, &source).map(Some)
    }

    /// [`read`](Self::read) of a file that must exist.
    pub fn read_required(path: &std::path::Path) -> Result<Self> {
        Self::read(path)?.ok_or_else(|| Error::Read {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        })
    }

    /// Parses a kubeconfig. `source_name` names it in errors.
    pub fn from_yaml(text: &str, source_name: &str) -> Result<Self> {
        let invalid = |reason: String| Error::Kubeconfig { source_name: source_name.to_owned(), reason };
        let doc: Value = serde_saphyr::from_str(text)
            .map_err(|e| invalid(format!("not valid YAML: {}", first_line(&e.to_string()))))?;
        let doc = match doc {
            Value::Object(_) => doc,
            Value::Null => return Err(invalid("the file is empty".into())),
            _ => return Err(invalid("not a kubeconfig: the document is not a mapping".into())),
        };
        for list in ["clusters", "contexts", "users"] {
            if !matches!(doc.get(list), None | Some(Value::Null | Value::Array(_))) {
                return Err(invalid(format!("`{list}` is not a list")));
            }
        }
        Ok(Self { doc, source_name: source_name.to_owned() })
    }

    /// The YAML text, with base64 data on single lines as kubectl writes it.
    pub fn to_yaml(&self) -> Zeroizing<String> {
        let mut options = serde_saphyr::SerializerOptions::default();
        options.prefer_block_scalars = false;
        Zeroizing::new(
            serde_saphyr::to_string_with_options(&self.doc, options)
                .expect("invariant: a tree of JSON values always serializes"),
        )
    }

    /// The name used in errors.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    fn invalid(&self, reason: String) -> Error {
        Error::Kubeconfig { source_name: self.source_name.clone(), reason }
    }

    fn named<'a>(&'a self, list: &str, name: &str) -> Option<&'a Map<String, Value>> {
        self.doc
            .get(list)?
            .as_array()?
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))?
            .get(match list {
                "clusters" => "cluster",
                "contexts" => "context",
                _ => "user",
            })?
            .as_object()
    }

    fn named_mut(&mut self, list: &str, name: &str) -> Option<&mut Map<String, Value>> {
        let key = match list {
            "clusters" => "cluster",
            "contexts" => "context",
            _ => "user",
        };
        self.doc
            .get_mut(list)?
            .as_array_mut()?
            .iter_mut()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))?
            .get_mut(key)?
            .as_object_mut()
    }

    fn names(&self, list: &str) -> Vec<&str> {
        self.doc
            .get(list)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|e| e.get("name").and_then(Value::as_str)).collect())
            .unwrap_or_default()
    }

    /// The `current-context`, if set.
    pub fn current_context(&self) -> Option<&str> {
        self.doc.get("current-context").and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    /// The cluster and user of context `name`.
    pub fn context(&self, name: &str) -> Result<ContextRef> {
        let ctx =
            self.named("contexts", name).ok_or_else(|| self.invalid(format!("context {name:?} does not exist")))?;
        let field = |f: &str| ctx.get(f).and_then(Value::as_str).map(str::to_owned);
        Ok(ContextRef {
            name: name.to_owned(),
            cluster: field("cluster").ok_or_else(|| self.invalid(format!("context {name:?} has no cluster")))?,
            user: field("user").ok_or_else(|| self.invalid(format!("context {name:?} has no user")))?,
        })
    }

    /// The cluster and user of the current context.
    pub fn current(&self) -> Result<ContextRef> {
        let name = self.current_context().ok_or_else(|| self.invalid("no current-context".into()))?;
        self.context(name)
    }

    /// Every cluster name.
    pub fn cluster_names(&self) -> Vec<&str> {
        self.names("clusters")
    }

    /// Every user name.
    pub fn user_names(&self) -> Vec<&str> {
        self.names("users")
    }

    /// A cluster's `server`.
    pub fn server(&self, cluster: &str) -> Option<&str> {
        self.named("clusters", cluster)?.get("server")?.as_str()
    }

    fn pem_source(
        &self,
        entry: Option<&Map<String, Value>>,
        data_key: &str,
        file_key: &str,
    ) -> Result<Option<PemSource>> {
        let Some(entry) = entry else { return Ok(None) };
        if let Some(data) = entry.get(data_key).and_then(Value::as_str).filter(|s| !s.is_empty()) {
            let bytes = STANDARD
                .decode(data.trim().as_bytes())
                .map_err(|e| self.invalid(format!("{data_key} is not valid base64: {e}")))?;
            return Ok(Some(PemSource::Embedded(bytes)));
        }
        Ok(entry
            .get(file_key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|p| PemSource::File(PathBuf::from(p))))
    }

    /// A cluster's CA: embedded `certificate-authority-data` or a `certificate-authority` path.
    pub fn cluster_ca(&self, cluster: &str) -> Result<Option<PemSource>> {
        self.pem_source(self.named("clusters", cluster), "certificate-authority-data", "certificate-authority")
    }

    /// The certificates of a cluster's CA: embedded, or read from its `certificate-authority`
    /// file, a relative path being relative to `base_dir` (the kubeconfig's directory, as
    /// client-go resolves it). `None` if the cluster names no CA.
    pub fn cluster_ca_certificates(
        &self,
        cluster: &str,
        base_dir: &std::path::Path,
    ) -> Result<Option<Vec<Certificate>>> {
        let (pem, source) = match self.cluster_ca(cluster)? {
            None => return Ok(None),
            Some(PemSource::Embedded(pem)) => (pem, format!("{} certificate-authority-data", self.source_name)),
            Some(PemSource::File(file)) => {
                let file = base_dir.join(file);
                let pem = crate::fsio::read_required(&file, crate::fsio::MAX_PEM_FILE, "certificate file")?;
                (pem, file.display().to_string())
            }
        };
        Certificate::from_pem_bundle(&pem, &source).map(Some)
    }

    /// A user's client certificate: embedded or by path.
    pub fn client_certificate(&self, user: &str) -> Result<Option<PemSource>> {
        self.pem_source(self.named("users", user), "client-certificate-data", "client-certificate")
    }

    /// A user's client key: embedded or by path. The embedded bytes are key material.
    pub fn client_key(&self, user: &str) -> Result<Option<PemSource>> {
        self.pem_source(self.named("users", user), "client-key-data", "client-key")
    }

    /// Replaces a user's client certificate and key with embedded data (removing any path
    /// references), as `kubeadm certs renew` does. Everything else is kept.
    pub fn set_client_credentials(&mut self, user: &str, cert_pem: &str, key_pem: &str) -> Result<()> {
        let source = self.source_name.clone();
        let entry = self.named_mut("users", user).ok_or_else(|| Error::Kubeconfig {
            source_name: source,
            reason: format!("user {user:?} does not exist"),
        })?;
        entry.remove("client-certificate");
        entry.remove("client-key");
        entry.insert("client-certificate-data".into(), Value::String(STANDARD.encode(cert_pem)));
        entry.insert("client-key-data".into(), Value::String(STANDARD.encode(key_pem)));
        Ok(())
    }

    /// Points a user's client certificate and key at files (kubelet.conf after kubeadm's
    /// kubelet-finalize: both at `kubelet-client-current.pem`), removing embedded data.
    pub fn set_client_credential_files(&mut self, user: &str, cert: &str, key: &str) -> Result<()> {
        let source = self.source_name.clone();
        let entry = self.named_mut("users", user).ok_or_else(|| Error::Kubeconfig {
            source_name: source,
            reason: format!("user {user:?} does not exist"),
        })?;
        entry.remove("client-certificate-data");
        entry.remove("client-key-data");
        entry.insert("client-certificate".into(), Value::String(cert.into()));
        entry.insert("client-key".into(), Value::String(key.into()));
        Ok(())
    }

    /// Replaces a cluster's embedded CA data (removing a `certificate-authority` path).
    pub fn set_cluster_ca(&mut self, cluster: &str, ca_pem: &str) -> Result<()> {
        let source = self.source_name.clone();
        let entry = self.named_mut("clusters", cluster).ok_or_else(|| Error::Kubeconfig {
            source_name: source,
            reason: format!("cluster {cluster:?} does not exist"),
        })?;
        entry.remove("certificate-authority");
        entry.insert("certificate-authority-data".into(), Value::String(STANDARD.encode(ca_pem)));
        Ok(())
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeadm_shape_and_key_order() {
        let kc = Kubeconfig::with_client_cert(
            "kubernetes",
            "https://10.0.0.1:6443",
            "CA",
            "kubernetes-admin",
            "CERT",
            "KEY",
        );
        let y = kc.to_yaml();
        let keys: Vec<&str> = y
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('-'))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        assert_eq!(keys, ["apiVersion", "clusters", "contexts", "current-context", "kind", "preferences", "users"]);
        assert!(y.contains("current-context: kubernetes-admin@kubernetes\n"), "{}", *y);
        assert!(y.contains("preferences: {}\n"), "{}", *y);
        let back = Kubeconfig::from_yaml(&y, "t").unwrap();
        assert_eq!(back, Kubeconfig { source_name: "t".into(), ..kc });
        let cur = back.current().unwrap();
        assert_eq!((cur.cluster.as_str(), cur.user.as_str()), ("kubernetes", "kubernetes-admin"));
        assert_eq!(back.client_key("kubernetes-admin").unwrap(), Some(PemSource::Embedded(b"KEY".to_vec())));
    }

    #[test]
    fn a_partial_kubeconfig_holds_the_key_alone() {
        let kc = Kubeconfig::with_client_key("kubernetes", "https://10.0.0.1:6443", "kubernetes-admin", "KEY");
        let y = kc.to_yaml();
        assert!(!y.contains("certificate-authority-data") && !y.contains("client-certificate-data"), "{}", *y);
        assert_eq!(kc.client_key("kubernetes-admin").unwrap(), Some(PemSource::Embedded(b"KEY".to_vec())));
        assert_eq!(kc.client_certificate("kubernetes-admin").unwrap(), None);
        assert_eq!(kc.server("kubernetes"), Some("https://10.0.0.1:6443"));
    }

    #[test]
    fn editing_keeps_unknown_fields() {
        let text = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://x:6443\n    certificate-authority: /etc/kubernetes/pki/ca.crt\n    extensions:\n    - name: e\n      extension: {a: 1}\ncontexts:\n- name: ctx\n  context: {cluster: c, user: u, namespace: kube-system}\ncurrent-context: ctx\nusers:\n- name: u\n  user:\n    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem\n- name: other\n  user:\n    token: abc\n";
        let mut kc = Kubeconfig::from_yaml(text, "t").unwrap();
        assert_eq!(
            kc.client_certificate("u").unwrap(),
            Some(PemSource::File("/var/lib/kubelet/pki/kubelet-client-current.pem".into()))
        );
        kc.set_client_credentials("u", "C", "K").unwrap();
        kc.set_cluster_ca("c", "CA").unwrap();
        let y = kc.to_yaml();
        let back = Kubeconfig::from_yaml(&y, "t").unwrap();
        assert_eq!(back.client_certificate("u").unwrap(), Some(PemSource::Embedded(b"C".to_vec())));
        assert_eq!(back.cluster_ca("c").unwrap(), Some(PemSource::Embedded(b"CA".to_vec())));
        assert!(y.contains("namespace: kube-system") && y.contains("token: abc") && y.contains("extension:"), "{}", *y);
        assert!(!y.contains("client-key: /var"));
        assert!(kc.set_client_credentials("nobody", "C", "K").is_err());
    }

    #[test]
    fn malformed_kubeconfigs_are_errors() {
        for (text, want) in [
            ("", "empty"),
            ("- a\n- b\n", "not a mapping"),
            ("clusters: 5\n", "not a list"),
            ("a: [\n", "not valid YAML"),
        ] {
            let err = Kubeconfig::from_yaml(text, "x.conf").unwrap_err().to_string();
            assert!(err.starts_with("x.conf: ") && err.contains(want), "{text:?}: {err}");
        }
        let kc = Kubeconfig::from_yaml("users:\n- name: u\n  user:\n    client-certificate-data: '!!'\n", "x").unwrap();
        assert!(kc.client_certificate("u").unwrap_err().to_string().contains("base64"));
        assert!(kc.current().unwrap_err().to_string().contains("no current-context"));
    }
}
