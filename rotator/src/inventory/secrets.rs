//! Kubernetes Secrets as a source: `kubernetes.io/tls` Secrets and any Secret key holding PEM
//! certificates, read through the Kubernetes API.
//!
//! Every data key whose value holds a `CERTIFICATE` PEM block becomes items named
//! `NAMESPACE/NAME:KEY` (`[i]` appended after the first certificate of a bundle); other keys
//! (private keys, tokens) are ignored. When a Secret has both `tls.crt` and `tls.key`, the key
//! is checked against the certificate.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::config::KubeConfigOptions;

use crate::error::{Error, Result};
use crate::inventory::discover::{items_from, key_finding, parse_certificates};
use crate::inventory::scan::contains;
use crate::inventory::{Found, InputError, Location};
use crate::text::error_chain;

/// A Secret named as `NAMESPACE/NAME`.
#[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct SecretRef {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl FromStr for SecretRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid =
            |reason: &str| Error::InvalidValue { field: "secret", value: s.to_owned(), reason: reason.to_owned() };
        let (namespace, name) = s.split_once('/').ok_or_else(|| invalid("expected NAMESPACE/NAME"))?;
        if namespace.is_empty() || name.is_empty() || name.contains('/') {
            return Err(invalid("expected NAMESPACE/NAME"));
        }
        Ok(Self { namespace: namespace.to_owned(), name: name.to_owned() })
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A Kubernetes API client from `$KUBECONFIG` or `~/.kube/config` (the `context`, or the
/// current one), or from the in-cluster service account when no kubeconfig exists and no
/// context is named. `timeout` bounds connecting and each response.
pub async fn client(context: Option<&str>, timeout: Duration) -> Result<kube::Client> {
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| Error::KubeClient {
        context: context.map(str::to_owned),
        source,
    };
    let mut config = match context {
        Some(c) => {
            let options = KubeConfigOptions { context: Some(c.to_owned()), ..KubeConfigOptions::default() };
            kube::Config::from_kubeconfig(&options).await.map_err(|e| failed(Box::new(e)))?
        }
        None => kube::Config::infer().await.map_err(|e| failed(Box::new(e)))?,
    };
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    config.write_timeout = Some(timeout);
    kube::Client::try_from(config).map_err(|e| failed(Box::new(e)))
}

/// An API error in one line: the server's message and code, else the client's error chain.
pub(crate) fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => format!("{} ({})", status.message, status.code),
        other => error_chain(other),
    }
}

/// Reads every Secret of `namespaces` and each of `secrets` (once each), and returns the
/// certificates they hold. A Secret or namespace the API does not return is an input error.
pub async fn read(client: &kube::Client, secrets: &[SecretRef], namespaces: &[String]) -> Found {
    let mut found = Found::default();
    let mut seen = BTreeSet::new();
    for ns in namespaces {
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                for secret in &list.items {
                    let key = SecretRef {
                        namespace: secret.metadata.namespace.clone().unwrap_or_else(|| ns.clone()),
                        name: secret.metadata.name.clone().unwrap_or_default(),
                    };
                    if seen.insert(key.clone()) {
                        found.extend(certificates_of(&key, secret));
                    }
                }
            }
            Err(e) => found
                .errors
                .push(InputError::new(format!("namespace {ns}"), format!("cannot list Secrets: {}", api_error(&e)))),
        }
    }
    for r in secrets {
        if seen.contains(r) {
            continue;
        }
        let api: Api<Secret> = Api::namespaced(client.clone(), &r.namespace);
        match api.get(&r.name).await {
            Ok(secret) => {
                seen.insert(r.clone());
                found.extend(certificates_of(r, &secret));
            }
            Err(e) => found.errors.push(InputError::new(format!("secret {r}"), api_error(&e))),
        }
    }
    found
}

/// The certificates of one Secret (pure: used by [`read`], and by anything that already holds
/// the object).
pub fn certificates_of(secret_ref: &SecretRef, secret: &Secret) -> Found {
    let mut found = Found::default();
    let Some(data) = &secret.data else { return found };
    for (key, value) in data {
        let bytes = &value.0;
        if !kubepki_pki::pem::looks_like_pem(bytes) || !contains(bytes, b"-----BEGIN CERTIFICATE-----") {
            continue;
        }
        let name = format!("{secret_ref}:{key}");
        let certs = parse_certificates(bytes, &name);
        let location = |index| Location::Secret {
            namespace: secret_ref.namespace.clone(),
            name: secret_ref.name.clone(),
            key: key.clone(),
            index,
        };
        let mut items = items_from(&name, certs, location, None);
        if key == "tls.crt"
            && let Some(tls_key) = data.get("tls.key")
            && let Some(cert) = items[0].cert().cloned()
        {
            match key_finding(&cert, &tls_key.0, &format!("{secret_ref}:tls.key")) {
                Ok(f) => items[0].findings.extend(f),
                Err(e) => found.errors.push(e),
            }
        }
        found.items.extend(items);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_refs_parse() {
        let r: SecretRef = "kube-system/etcd-certs".parse().unwrap();
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("kube-system", "etcd-certs"));
        assert_eq!(r.to_string(), "kube-system/etcd-certs");
        for bad in ["nope", "/x", "x/", "a/b/c"] {
            let err = bad.parse::<SecretRef>().unwrap_err().to_string();
            assert!(err.contains("NAMESPACE/NAME"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_keys_holding_certificates_become_items() {
        use k8s_openapi::ByteString;
        let mut secret = Secret::default();
        let data = [
            ("token", b"abc".to_vec()),
            ("tls.key", b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n".to_vec()),
            ("ca.crt", b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".to_vec()),
        ];
        secret.data = Some(data.into_iter().map(|(k, v)| (k.to_owned(), ByteString(v))).collect());
        let r: SecretRef = "ns/s".parse().unwrap();
        let found = certificates_of(&r, &secret);
        assert_eq!(found.items.len(), 1);
        assert_eq!(found.items[0].name, "ns/s:ca.crt");
        assert!(found.items[0].certificate.as_ref().unwrap_err().contains("base64"));
        assert_eq!(found.items[0].location.reference(), "ns/s:ca.crt");
    }
}
