//! Reading kubeadm's own configuration file (`kubeadm init --config`), v1beta3 or v1beta4.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::cluster::ClusterConfig;
use crate::error::{Error, Result};
use crate::fsio::{self, MAX_CONFIG_FILE};
use crate::key::KeyAlgorithm;
use crate::validity::Lifetime;

/// What a kubeadm configuration file says about the PKI. Absent fields leave the defaults.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct KubeadmConfig {
    /// `InitConfiguration.nodeRegistration.name`.
    pub node_name: Option<String>,
    /// `InitConfiguration.localAPIEndpoint.advertiseAddress`.
    pub advertise_address: Option<IpAddr>,
    /// `InitConfiguration.localAPIEndpoint.bindPort`.
    pub bind_port: Option<u16>,
    /// `ClusterConfiguration.controlPlaneEndpoint`.
    pub control_plane_endpoint: Option<String>,
    /// `ClusterConfiguration.apiServer.certSANs`.
    pub apiserver_cert_sans: Option<Vec<String>>,
    /// `ClusterConfiguration.etcd.local.serverCertSANs`.
    pub etcd_server_cert_sans: Option<Vec<String>>,
    /// `ClusterConfiguration.etcd.local.peerCertSANs`.
    pub etcd_peer_cert_sans: Option<Vec<String>>,
    /// `ClusterConfiguration.etcd.external` is set.
    pub external_etcd: bool,
    /// `ClusterConfiguration.networking.serviceSubnet`.
    pub service_subnet: Option<String>,
    /// `ClusterConfiguration.networking.dnsDomain`.
    pub dns_domain: Option<String>,
    /// `ClusterConfiguration.clusterName`.
    pub cluster_name: Option<String>,
    /// `ClusterConfiguration.certificatesDir`.
    pub cert_dir: Option<PathBuf>,
    /// `ClusterConfiguration.encryptionAlgorithm` (v1beta4), or ECDSA-P256 from the v1beta3
    /// feature gate `PublicKeysECDSA`; kubeadm's default RSA-2048 when neither is set.
    pub encryption_algorithm: KeyAlgorithm,
    /// `ClusterConfiguration.certificateValidityPeriod` (v1beta4).
    pub cert_validity: Option<Lifetime>,
    /// `ClusterConfiguration.caCertificateValidityPeriod` (v1beta4).
    pub ca_validity: Option<Lifetime>,
}

/// Reads a configuration file as text.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = fsio::read_required(path, MAX_CONFIG_FILE, "configuration file")?;
    String::from_utf8(bytes)
        .map_err(|_| Error::KubeadmConfig { path: path.to_owned(), reason: "not text (UTF-8)".into() })
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct InitConfiguration {
    node_registration: Option<NodeRegistration>,
    #[serde(rename = "localAPIEndpoint")]
    local_api_endpoint: Option<LocalApiEndpoint>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct NodeRegistration {
    name: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct LocalApiEndpoint {
    advertise_address: Option<String>,
    bind_port: Option<i64>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ClusterConfiguration {
    control_plane_endpoint: Option<String>,
    api_server: Option<ApiServer>,
    etcd: Option<Etcd>,
    networking: Option<Networking>,
    cluster_name: Option<String>,
    certificates_dir: Option<String>,
    encryption_algorithm: Option<String>,
    certificate_validity_period: Option<String>,
    ca_certificate_validity_period: Option<String>,
    feature_gates: Option<BTreeMap<String, Value>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ApiServer {
    #[serde(rename = "certSANs")]
    cert_sans: Option<Vec<String>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Etcd {
    local: Option<LocalEtcd>,
    external: Option<Value>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct LocalEtcd {
    #[serde(rename = "serverCertSANs")]
    server_cert_sans: Option<Vec<String>>,
    #[serde(rename = "peerCertSANs")]
    peer_cert_sans: Option<Vec<String>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Networking {
    service_subnet: Option<String>,
    dns_domain: Option<String>,
}

impl KubeadmConfig {
    /// Reads and parses a kubeadm configuration file.
    pub fn read(path: &Path) -> Result<Self> {
        Self::parse(&read_text(path)?, path)
    }

    /// Reads a file that may hold kubeadm documents (see [`parse_optional`](Self::parse_optional)).
    pub fn read_optional(path: &Path) -> Result<Option<Self>> {
        Self::parse_optional(&read_text(path)?, path)
    }

    /// Parses the documents of a kubeadm configuration file. Documents of other API groups
    /// (KubeletConfiguration, KubeProxyConfiguration) and other kubeadm kinds are ignored;
    /// kubeadm API versions other than v1beta3 and v1beta4 are refused, and so is a file with
    /// no kubeadm document at all.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        Self::parse_optional(text, path)?.ok_or_else(|| Error::KubeadmConfig {
            path: path.to_owned(),
            reason: "no kubeadm.k8s.io InitConfiguration or ClusterConfiguration document".into(),
        })
    }

    /// As [`parse`](Self::parse), but a file without kubeadm documents (one that only holds
    /// other tools' documents, such as kubepki's own) gives `None`.
    pub fn parse_optional(text: &str, path: &Path) -> Result<Option<Self>> {
        let invalid = |reason: String| Error::KubeadmConfig { path: path.to_owned(), reason };
        let docs: Vec<Value> = serde_saphyr::from_multiple(text)
            .map_err(|e| invalid(format!("not valid YAML: {}", e.to_string().lines().next().unwrap_or(""))))?;
        let mut out = Self { encryption_algorithm: KeyAlgorithm::Rsa2048, ..Self::default() };
        let mut seen_kubeadm = false;
        for (i, doc) in docs.iter().enumerate() {
            if doc.is_null() {
                continue;
            }
            let field = |f: &str| doc.get(f).and_then(Value::as_str).unwrap_or("");
            let (api_version, kind) = (field("apiVersion"), field("kind"));
            if api_version.is_empty() || kind.is_empty() {
                return Err(invalid(format!("document {} has no apiVersion or kind", i + 1)));
            }
            let Some(version) = api_version.strip_prefix("kubeadm.k8s.io/") else { continue };
            if version != "v1beta3" && version != "v1beta4" {
                return Err(invalid(format!(
                    "{api_version} is not supported (use kubeadm.k8s.io/v1beta3 or v1beta4; `kubeadm config migrate` converts older files)"
                )));
            }
            seen_kubeadm = true;
            let bad = |e: serde_json::Error| invalid(format!("{kind}: {e}"));
            match kind {
                "InitConfiguration" => out.apply_init(serde_json::from_value(doc.clone()).map_err(bad)?, &invalid)?,
                "ClusterConfiguration" => {
                    out.apply_cluster(serde_json::from_value(doc.clone()).map_err(bad)?, version, &invalid)?
                }
                _ => {}
            }
        }
        Ok(seen_kubeadm.then_some(out))
    }

    fn apply_init(&mut self, init: InitConfiguration, invalid: &dyn Fn(String) -> Error) -> Result<()> {
        self.node_name = init.node_registration.and_then(|n| n.name).filter(|s| !s.is_empty());
        if let Some(ep) = init.local_api_endpoint {
            if let Some(addr) = ep.advertise_address.filter(|s| !s.is_empty()) {
                self.advertise_address = Some(addr.parse().map_err(|_| {
                    invalid(format!("localAPIEndpoint.advertiseAddress {addr:?} is not an IP address"))
                })?);
            }
            if let Some(port) = ep.bind_port.filter(|&p| p != 0) {
                self.bind_port = Some(
                    u16::try_from(port)
                        .map_err(|_| invalid(format!("localAPIEndpoint.bindPort {port} is not a port number")))?,
                );
            }
        }
        Ok(())
    }

    fn apply_cluster(
        &mut self,
        c: ClusterConfiguration,
        version: &str,
        invalid: &dyn Fn(String) -> Error,
    ) -> Result<()> {
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
        self.control_plane_endpoint = nonempty(c.control_plane_endpoint);
        self.apiserver_cert_sans = c.api_server.and_then(|a| a.cert_sans);
        if let Some(etcd) = c.etcd {
            self.external_etcd = etcd.external.is_some_and(|v| !v.is_null());
            if let Some(local) = etcd.local {
                self.etcd_server_cert_sans = local.server_cert_sans;
                self.etcd_peer_cert_sans = local.peer_cert_sans;
            }
        }
        if let Some(n) = c.networking {
            self.service_subnet = nonempty(n.service_subnet);
            self.dns_domain = nonempty(n.dns_domain);
        }
        self.cluster_name = nonempty(c.cluster_name);
        self.cert_dir = nonempty(c.certificates_dir).map(PathBuf::from);
        if let Some(alg) = c.encryption_algorithm {
            self.encryption_algorithm = alg.parse().map_err(|e: Error| invalid(format!("encryptionAlgorithm: {e}")))?;
        } else if version == "v1beta3"
            && c.feature_gates.as_ref().and_then(|g| g.get("PublicKeysECDSA")).and_then(Value::as_bool) == Some(true)
        {
            self.encryption_algorithm = KeyAlgorithm::EcdsaP256;
        }
        let lifetime = |field: &str, v: Option<String>| -> Result<Option<Lifetime>> {
            nonempty(v).map(|s| s.parse().map_err(|e: Error| invalid(format!("{field}: {e}")))).transpose()
        };
        self.cert_validity = lifetime("certificateValidityPeriod", c.certificate_validity_period)?;
        self.ca_validity = lifetime("caCertificateValidityPeriod", c.ca_certificate_validity_period)?;
        Ok(())
    }

    /// Writes the values the file sets into `cfg`.
    pub fn apply_to(&self, cfg: &mut ClusterConfig) {
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = &self.$field { cfg.$field = v.clone(); } )* };
        }
        set!(node_name, advertise_address, bind_port, apiserver_cert_sans, etcd_server_cert_sans, etcd_peer_cert_sans);
        set!(service_subnet, dns_domain, cluster_name, cert_dir, cert_validity, ca_validity);
        if self.control_plane_endpoint.is_some() {
            cfg.control_plane_endpoint = self.control_plane_endpoint.clone();
        }
        cfg.external_etcd |= self.external_etcd;
        cfg.encryption_algorithm = self.encryption_algorithm;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1BETA4: &str = r#"
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  name: cp-1
  criSocket: unix:///var/run/containerd/containerd.sock
localAPIEndpoint:
  advertiseAddress: 10.0.0.11
  bindPort: 8443
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: prod
controlPlaneEndpoint: api.prod.example:6443
certificatesDir: /srv/pki
encryptionAlgorithm: ECDSA-P384
certificateValidityPeriod: 2160h0m0s
caCertificateValidityPeriod: 43800h0m0s
apiServer:
  certSANs: [10.0.0.100, api.internal]
  extraArgs: [{name: audit-log-path, value: /var/log/audit.log}]
etcd:
  local:
    serverCertSANs: [etcd.internal]
    peerCertSANs: [10.0.0.12]
networking:
  serviceSubnet: 10.100.0.0/16
  dnsDomain: prod.local
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
"#;

    #[test]
    fn v1beta4_fields_are_read_and_applied() {
        let k = KubeadmConfig::parse(V1BETA4, Path::new("kubeadm.yaml")).unwrap();
        let mut c = ClusterConfig::new("ignored", "127.0.0.1".parse().unwrap());
        k.apply_to(&mut c);
        assert_eq!(c.node_name, "cp-1");
        assert_eq!(c.advertise_address.to_string(), "10.0.0.11");
        assert_eq!(c.bind_port, 8443);
        assert_eq!(c.cluster_name, "prod");
        assert_eq!(c.control_plane_endpoint.as_deref(), Some("api.prod.example:6443"));
        assert_eq!(c.cert_dir, PathBuf::from("/srv/pki"));
        assert_eq!(c.encryption_algorithm, KeyAlgorithm::EcdsaP384);
        assert_eq!(c.cert_validity.to_string(), "2160h0m0s");
        assert_eq!(c.ca_validity.to_string(), "43800h0m0s");
        assert_eq!(c.apiserver_cert_sans, ["10.0.0.100", "api.internal"]);
        assert_eq!(c.etcd_server_cert_sans, ["etcd.internal"]);
        assert_eq!(c.etcd_peer_cert_sans, ["10.0.0.12"]);
        assert_eq!((c.service_subnet.as_str(), c.dns_domain.as_str()), ("10.100.0.0/16", "prod.local"));
        assert!(!c.external_etcd);
    }

    #[test]
    fn without_an_algorithm_a_kubeadm_file_means_rsa_2048() {
        let text = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\netcd:\n  external:\n    endpoints: [https://10.0.0.5:2379]\n";
        let k = KubeadmConfig::parse(text, Path::new("k.yaml")).unwrap();
        assert_eq!(k.encryption_algorithm, KeyAlgorithm::Rsa2048);
        assert!(k.external_etcd);
        let gate =
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nfeatureGates:\n  PublicKeysECDSA: true\n";
        assert_eq!(
            KubeadmConfig::parse(gate, Path::new("k.yaml")).unwrap().encryption_algorithm,
            KeyAlgorithm::EcdsaP256
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        for (text, want) in [
            ("apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\n", "v1beta2 is not supported"),
            ("kind: ClusterConfiguration\n", "no apiVersion"),
            ("apiVersion: v1\nkind: ConfigMap\n", "no kubeadm.k8s.io"),
            (
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nencryptionAlgorithm: DSA\n",
                "encryptionAlgorithm",
            ),
            (
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\ncertificateValidityPeriod: forever\n",
                "certificateValidityPeriod",
            ),
            (
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint: {advertiseAddress: nope}\n",
                "advertiseAddress",
            ),
            (
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer: {certSANs: 5}\n",
                "ClusterConfiguration",
            ),
            ("a: [\n", "not valid YAML"),
        ] {
            let err = KubeadmConfig::parse(text, Path::new("k.yaml")).unwrap_err().to_string();
            assert!(err.starts_with("k.yaml: ") && err.contains(want), "{text:?}: {err}");
        }
    }
}
