//! Kubernetes Secrets as a sink: Secrets that carry a copy of a certificate kubepki rotates
//! (`front-proxy-client` for an aggregated API server, an etcd client certificate for a backup
//! job), kept in step with it through the API with optimistic concurrency.
//!
//! Targets are declared in a `RotationConfiguration` document of the `--config` file:
//!
//! ```yaml
//! apiVersion: kubepki.io/v1alpha1
//! kind: RotationConfiguration
//! secrets:
//!   - secret: kube-system/front-proxy-client     # NAMESPACE/NAME
//!     source: front-proxy-client                 # a name `rotate` knows (apiserver, admin.conf, ...)
//!     keys: {cert: tls.crt, key: tls.key, ca: ca.crt}   # the defaults; ca: "" leaves the CA out
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::inventory::secrets::SecretRef;

/// The API group and version of kubepki's own configuration documents.
pub const API_VERSION: &str = "kubepki.io/v1alpha1";

/// The data keys a Secret target writes.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SecretKeys {
    /// The certificate's key (`tls.crt`).
    pub cert: String,
    /// The private key's key (`tls.key`).
    pub key: String,
    /// The CA bundle's key (`ca.crt`); empty leaves it out.
    pub ca: String,
}

impl Default for SecretKeys {
    fn default() -> Self {
        Self { cert: "tls.crt".into(), key: "tls.key".into(), ca: "ca.crt".into() }
    }
}

/// One Secret kept in step with a rotated certificate.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct SecretTarget {
    /// The Secret.
    pub secret: SecretRef,
    /// The name of the certificate it mirrors.
    pub source: String,
    /// Its data keys.
    pub keys: SecretKeys,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTarget {
    secret: String,
    source: String,
    #[serde(default)]
    keys: SecretKeys,
}

#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct RawVerify {
    etcd: Vec<String>,
    etcd_peer: Vec<String>,
    kubelet: Vec<String>,
    apiserver: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    secrets: Vec<RawTarget>,
    #[serde(default)]
    verify: RawVerify,
    #[serde(default)]
    kubeconfig: Option<String>,
    #[serde(default)]
    context: Option<String>,
}

/// kubepki's `RotationConfiguration`.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct RotationConfig {
    /// Secrets to keep in step.
    pub secrets: Vec<SecretTarget>,
    /// The kubeconfig to reach the API with (default: `$KUBECONFIG`, `~/.kube/config`).
    pub kubeconfig: Option<String>,
    /// Its context (default: the current one).
    pub context: Option<String>,
    /// Endpoints to verify after every run that wrote (`verify: {etcd: [URL], etcdPeer: [],
    /// kubelet: [], apiserver: []}`).
    pub verify: Vec<(crate::verify::TargetKind, String)>,
}

impl RotationConfig {
    /// The `RotationConfiguration` document of a (multi-document) YAML file, if it has one.
    /// Other documents (kubeadm's) are ignored.
    pub fn parse_optional(text: &str, path: &Path) -> Result<Option<Self>> {
        let invalid = |reason: String| Error::Config { path: path.to_owned(), reason };
        let docs: Vec<Value> = serde_saphyr::from_multiple(text)
            .map_err(|e| invalid(format!("not valid YAML: {}", e.to_string().lines().next().unwrap_or(""))))?;
        let mut found = None;
        for doc in docs.iter().filter(|d| d.get("kind").and_then(Value::as_str) == Some("RotationConfiguration")) {
            let api = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            if api != API_VERSION {
                return Err(invalid(format!("RotationConfiguration has apiVersion {api:?}; expected {API_VERSION}")));
            }
            if found.is_some() {
                return Err(invalid("more than one RotationConfiguration document".into()));
            }
            let mut body = doc.clone();
            if let Some(map) = body.as_object_mut() {
                map.remove("apiVersion");
                map.remove("kind");
            }
            let raw: RawConfig =
                serde_json::from_value(body).map_err(|e| invalid(format!("RotationConfiguration: {e}")))?;
            let mut secrets = Vec::with_capacity(raw.secrets.len());
            for (i, t) in raw.secrets.into_iter().enumerate() {
                let secret: SecretRef =
                    t.secret.parse().map_err(|e: Error| invalid(format!("secrets[{i}].secret: {e}")))?;
                if t.keys.cert.is_empty() || t.keys.key.is_empty() || t.keys.cert == t.keys.key {
                    return Err(invalid(format!("secrets[{i}].keys: cert and key must be distinct, non-empty keys")));
                }
                if secrets.iter().any(|s: &SecretTarget| s.secret == secret) {
                    return Err(invalid(format!("secrets[{i}]: {secret} is listed twice")));
                }
                secrets.push(SecretTarget { secret, source: t.source, keys: t.keys });
            }
            use crate::verify::TargetKind;
            let v = raw.verify;
            let verify = [
                (TargetKind::Etcd, v.etcd),
                (TargetKind::EtcdPeer, v.etcd_peer),
                (TargetKind::Kubelet, v.kubelet),
                (TargetKind::ApiServer, v.apiserver),
            ]
            .into_iter()
            .flat_map(|(kind, urls)| urls.into_iter().map(move |u| (kind, u)))
            .collect();
            found = Some(Self { secrets, kubeconfig: raw.kubeconfig, context: raw.context, verify });
        }
        Ok(found)
    }
}

/// What a Secret must hold.
pub struct DesiredSecret<'a> {
    /// The target.
    pub target: &'a SecretTarget,
    /// The certificate PEM.
    pub cert_pem: String,
    /// The key PEM (never printed).
    pub key_pem: Zeroizing<String>,
    /// The CA bundle PEM.
    pub ca_pem: String,
}

/// What happened to one Secret, enough to undo it.
#[derive(Clone, Debug)]
pub struct Synced {
    /// The Secret.
    pub secret: SecretRef,
    /// It did not exist and was created.
    pub created: bool,
    /// Its data before (when it was replaced).
    pub previous: Option<BTreeMap<String, ByteString>>,
}

fn api_err(secret: &SecretRef, what: &str, e: &kube::Error) -> Error {
    Error::SecretSync {
        secret: secret.to_string(),
        reason: format!("{what}: {}", crate::inventory::secrets::api_error(e)),
    }
}

fn desired_data(d: &DesiredSecret<'_>) -> BTreeMap<String, ByteString> {
    let mut data = BTreeMap::new();
    data.insert(d.target.keys.cert.clone(), ByteString(d.cert_pem.clone().into_bytes()));
    data.insert(d.target.keys.key.clone(), ByteString(d.key_pem.as_bytes().to_vec()));
    if !d.target.keys.ca.is_empty() {
        data.insert(d.target.keys.ca.clone(), ByteString(d.ca_pem.clone().into_bytes()));
    }
    data
}

/// Whether the Secret already holds what it must.
fn in_step(secret: &Secret, want: &BTreeMap<String, ByteString>) -> bool {
    let have = secret.data.as_ref();
    want.iter().all(|(k, v)| have.and_then(|d| d.get(k)) == Some(v))
}

/// How many times a replace is retried after a 409 Conflict.
pub const CONFLICT_RETRIES: usize = 5;

/// Brings one Secret in step: created (type `kubernetes.io/tls`) if absent, else its data keys
/// replaced — other keys, labels and annotations kept — with the resourceVersion it was read
/// at; a 409 Conflict (someone wrote in between) re-reads and retries. `None` when it was
/// already in step. With `dry_run`, reports what would change without writing.
pub async fn sync_one(client: &kube::Client, desired: &DesiredSecret<'_>, dry_run: bool) -> Result<Option<Synced>> {
    let target = desired.target;
    let api: Api<Secret> = Api::namespaced(client.clone(), &target.secret.namespace);
    let want = desired_data(desired);
    for _ in 0..=CONFLICT_RETRIES {
        let existing = api.get_opt(&target.secret.name).await.map_err(|e| api_err(&target.secret, "read", &e))?;
        let Some(mut secret) = existing else {
            if dry_run {
                return Ok(Some(Synced { secret: target.secret.clone(), created: true, previous: None }));
            }
            let mut new = Secret::default();
            new.metadata.name = Some(target.secret.name.clone());
            new.metadata.namespace = Some(target.secret.namespace.clone());
            new.type_ = Some("kubernetes.io/tls".into());
            new.data = Some(want.clone());
            match api.create(&PostParams::default(), &new).await {
                Ok(_) => return Ok(Some(Synced { secret: target.secret.clone(), created: true, previous: None })),
                // Created by someone else in between: read it again.
                Err(kube::Error::Api(s)) if s.is_already_exists() => continue,
                Err(e) => return Err(api_err(&target.secret, "create", &e)),
            }
        };
        if in_step(&secret, &want) {
            return Ok(None);
        }
        let previous = secret.data.clone().unwrap_or_default();
        if dry_run {
            return Ok(Some(Synced { secret: target.secret.clone(), created: false, previous: Some(previous) }));
        }
        let data = secret.data.get_or_insert_with(BTreeMap::new);
        data.extend(want.clone());
        match api.replace(&target.secret.name, &PostParams::default(), &secret).await {
            Ok(_) => {
                return Ok(Some(Synced { secret: target.secret.clone(), created: false, previous: Some(previous) }));
            }
            Err(kube::Error::Api(s)) if s.is_conflict() => continue,
            Err(e) => return Err(api_err(&target.secret, "replace", &e)),
        }
    }
    Err(Error::SecretSync {
        secret: target.secret.to_string(),
        reason: format!("still conflicting after {CONFLICT_RETRIES} retries; someone else keeps writing it"),
    })
}

/// Undoes what [`sync_one`] did: a created Secret is deleted, a replaced one gets its previous
/// data back (with the same conflict retries). Best effort; returns what could not be undone.
pub async fn undo(client: &kube::Client, synced: &[Synced]) -> Vec<Error> {
    let mut failed = Vec::new();
    for s in synced {
        let api: Api<Secret> = Api::namespaced(client.clone(), &s.secret.namespace);
        let result = match &s.previous {
            None => api.delete(&s.secret.name, &DeleteParams::default()).await.map(drop),
            Some(previous) => {
                let mut outcome = Ok(());
                for _ in 0..=CONFLICT_RETRIES {
                    let mut secret = match api.get(&s.secret.name).await {
                        Ok(secret) => secret,
                        Err(e) => {
                            outcome = Err(e);
                            break;
                        }
                    };
                    secret.data = Some(previous.clone());
                    outcome = api.replace(&s.secret.name, &PostParams::default(), &secret).await.map(drop);
                    if !matches!(&outcome, Err(kube::Error::Api(st)) if st.is_conflict()) {
                        break;
                    }
                }
                outcome
            }
        };
        if let Err(e) = result {
            failed.push(api_err(&s.secret, "undo", &e));
        }
    }
    failed
}

/// A client from an explicit kubeconfig file (and context), or else as
/// [`crate::inventory::secrets::client`] finds one.
pub async fn client_for(kubeconfig: Option<&Path>, context: Option<&str>, timeout: Duration) -> Result<kube::Client> {
    let Some(path) = kubeconfig else {
        return crate::inventory::secrets::client(context, timeout).await;
    };
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| Error::KubeClient {
        context: context.map(str::to_owned),
        source,
    };
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| failed(Box::new(e)))?;
    let options = kube::config::KubeConfigOptions { context: context.map(str::to_owned), ..Default::default() };
    let mut config = kube::Config::from_custom_kubeconfig(kc, &options).await.map_err(|e| failed(Box::new(e)))?;
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    kube::Client::try_from(config).map_err(|e| failed(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_configuration_is_read_beside_kubeadm_documents() {
        let text = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n---\n\
                    apiVersion: kubepki.io/v1alpha1\nkind: RotationConfiguration\nkubeconfig: /etc/kubernetes/admin.conf\n\
                    secrets:\n- secret: kube-system/front-proxy-client\n  source: front-proxy-client\n\
                    - secret: backup/etcd\n  source: apiserver-etcd-client\n  keys: {cert: cert.pem, key: key.pem, ca: ''}\n";
        let c = RotationConfig::parse_optional(text, Path::new("k.yaml")).unwrap().unwrap();
        assert_eq!(c.kubeconfig.as_deref(), Some("/etc/kubernetes/admin.conf"));
        assert_eq!(c.secrets.len(), 2);
        assert_eq!(c.secrets[0].keys, SecretKeys::default());
        assert_eq!(c.secrets[1].secret.to_string(), "backup/etcd");
        assert_eq!(c.secrets[1].keys.ca, "");
        assert_eq!(RotationConfig::parse_optional("apiVersion: v1\nkind: ConfigMap\n", Path::new("k")).unwrap(), None);
    }

    #[test]
    fn bad_rotation_configurations_name_the_field() {
        for (text, want) in [
            ("apiVersion: kubepki.io/v9\nkind: RotationConfiguration\n", "expected kubepki.io/v1alpha1"),
            (
                "apiVersion: kubepki.io/v1alpha1\nkind: RotationConfiguration\nsecrets: [{secret: nons, source: x}]\n",
                "secrets[0].secret",
            ),
            (
                "apiVersion: kubepki.io/v1alpha1\nkind: RotationConfiguration\nsecrets: [{secret: a/b, source: x, keys: {cert: x, key: x}}]\n",
                "distinct",
            ),
            (
                "apiVersion: kubepki.io/v1alpha1\nkind: RotationConfiguration\nsecrets: [{secret: a/b, sorce: x}]\n",
                "unknown field",
            ),
            (
                "apiVersion: kubepki.io/v1alpha1\nkind: RotationConfiguration\nsecrets: [{secret: a/b, source: x}, {secret: a/b, source: z}]\n",
                "twice",
            ),
        ] {
            let err = RotationConfig::parse_optional(text, Path::new("k.yaml")).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
