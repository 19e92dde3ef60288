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

mod schema;

use schema::{Decoded, KindUse};

/// kubeadm's API group.
const KUBEADM_GROUP: &str = "kubeadm.k8s.io";

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
pub fn read_config_text(path: &Path) -> Result<String> {
    let bytes = fsio::read_required(path, MAX_CONFIG_FILE, "configuration file").map_err(|e| match e {
        Error::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Error::Missing {
            path: path.to_owned(),
            what: "the configuration file",
            fix: "check the path given to --config".into(),
        },
        other => other,
    })?;
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
        Self::parse(&read_config_text(path)?, path)
    }

    /// Reads a file that may hold kubeadm documents (see [`parse_optional`](Self::parse_optional)).
    pub fn read_optional(path: &Path) -> Result<Option<Self>> {
        Self::parse_optional(&read_config_text(path)?, path)
    }

    /// Parses the documents of a kubeadm configuration file. InitConfiguration and
    /// ClusterConfiguration documents are decoded strictly: a field kubeadm's v1beta3/v1beta4
    /// types do not define where it stands, or a value of the wrong type, is an error naming
    /// the document, the field's path and the closest known field. JoinConfiguration,
    /// ResetConfiguration and UpgradeConfiguration (other kubeadm commands' documents) are
    /// skipped whole, as `kubeadm init` skips them; an unknown kubeadm kind is an error.
    /// Documents of other API groups (KubeletConfiguration, KubeProxyConfiguration, kubepki's
    /// own) are skipped. kubeadm API versions other than v1beta3 and v1beta4 are refused, and
    /// so is a file with no kubeadm document at all.
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
        let docs: Vec<&Value> = docs.iter().filter(|d| !d.is_null()).collect();
        let several = docs.len() > 1;
        let mut out = Self { encryption_algorithm: KeyAlgorithm::Rsa2048, ..Self::default() };
        let mut seen_kubeadm = false;
        for (i, doc) in docs.into_iter().enumerate() {
            let field = |f: &str| doc.get(f).and_then(Value::as_str).unwrap_or("");
            let (api_version, kind) = (field("apiVersion"), field("kind"));
            // The document as a reader finds it: its kind, and where it is when there are several.
            let label = match (kind.is_empty(), several) {
                (true, _) => format!("document {}", i + 1),
                (false, true) => format!("{kind} (document {})", i + 1),
                (false, false) => kind.to_owned(),
            };
            let in_doc = |reason: String| invalid(format!("{label}: {reason}"));
            if api_version.is_empty() || kind.is_empty() {
                return Err(in_doc("no apiVersion or kind".into()));
            }
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            if group != KUBEADM_GROUP {
                if schema::is_near(group, KUBEADM_GROUP) {
                    return Err(in_doc(format!(
                        "apiVersion {api_version}: unknown API group {group:?}; did you mean {KUBEADM_GROUP}?"
                    )));
                }
                continue;
            }
            let Some(schema) = schema::version(version) else {
                return Err(in_doc(format!(
                    "{api_version} is not supported (use kubeadm.k8s.io/v1beta3 or v1beta4; `kubeadm config migrate` converts older files)"
                )));
            };
            seen_kubeadm = true;
            let decoded = match schema.kind_use(kind).map_err(&in_doc)? {
                KindUse::Decoded(decoded) => decoded,
                KindUse::Skipped => continue,
            };
            schema.check(decoded, doc).map_err(&in_doc)?;
            let bad = |e: serde_json::Error| in_doc(e.to_string());
            match decoded {
                Decoded::Init => out.apply_init(serde_json::from_value((*doc).clone()).map_err(bad)?, &in_doc)?,
                Decoded::Cluster => {
                    out.apply_cluster(serde_json::from_value((*doc).clone()).map_err(bad)?, version, &in_doc)?
                }
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

    /// Every field kubeadm's v1beta4 types define, in one realistic file (with a kubelet and a
    /// kube-proxy document, and the other kubeadm commands' documents).
    const FULL_V1BETA4: &str = r#"
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
  - token: "9a08jv.c0izixklcxtmnze7"
    description: "kubeadm bootstrap token"
    ttl: "24h"
  - token: "783bde.3f89s0fje9f38fhf"
    description: "another bootstrap token"
    expires: "2030-01-01T00:00:00Z"
    usages: [authentication, signing]
    groups: [system:bootstrappers:kubeadm:default-node-token]
dryRun: false
nodeRegistration:
  name: ec2-10-100-0-1
  criSocket: unix:///var/run/containerd/containerd.sock
  taints:
    - key: kubeadmNode
      value: someValue
      effect: NoSchedule
    - key: node-role.kubernetes.io/control-plane
      effect: NoExecute
      timeAdded: "2030-01-01T00:00:00Z"
  kubeletExtraArgs:
    - name: v
      value: "5"
  ignorePreflightErrors: [IsPrivilegedUser]
  imagePullPolicy: IfNotPresent
  imagePullSerial: true
localAPIEndpoint:
  advertiseAddress: 10.100.0.1
  bindPort: 6443
certificateKey: e6a2eb8581237ab72a4f494f30285ec12a9694d750b9785706a83bfcbbbd2204
skipPhases: [preflight]
patches:
  directory: /etc/kubernetes/patches
timeouts:
  controlPlaneComponentHealthCheck: 60s
  kubeletHealthCheck: 4m0s
  kubernetesAPICall: 40s
  etcdAPICall: 2m0s
  tlsBootstrap: 5m0s
  discovery: 5m0s
  upgradeManifests: 5m0s
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
etcd:
  local:
    imageRepository: registry.k8s.io
    imageTag: 3.5.16-0
    dataDir: /var/lib/etcd
    extraArgs:
      - name: listen-client-urls
        value: https://10.100.0.1:2379
    extraEnvs:
      - name: SOME_VAR
        value: SOME_VALUE
      - name: POD_IP
        valueFrom:
          fieldRef: {fieldPath: status.podIP}
    serverCertSANs: [ec2-10-100-0-1.compute-1.amazonaws.com]
    peerCertSANs: [10.100.0.1]
networking:
  serviceSubnet: 10.96.0.0/16
  podSubnet: 10.244.0.0/24
  dnsDomain: cluster.local
kubernetesVersion: v1.31.0
controlPlaneEndpoint: 10.100.0.1:6443
apiServer:
  extraArgs:
    - name: authorization-mode
      value: Node,RBAC
  extraEnvs:
    - name: SOME_VAR
      value: SOME_VALUE
  extraVolumes:
    - name: some-volume
      hostPath: /etc/some-path
      mountPath: /etc/some-pod-path
      readOnly: false
      pathType: File
  certSANs: [10.100.1.1, ec2-10-100-0-1.compute-1.amazonaws.com]
controllerManager:
  extraArgs:
    - name: node-cidr-mask-size
      value: "20"
  extraVolumes:
    - {name: some-volume, hostPath: /etc/some-path, mountPath: /etc/some-pod-path, readOnly: false, pathType: File}
  extraEnvs: []
scheduler:
  extraArgs:
    - name: bind-address
      value: 10.100.0.1
  extraVolumes: []
dns:
  imageRepository: registry.k8s.io/coredns
  imageTag: v1.11.3
  disabled: false
proxy:
  disabled: true
certificatesDir: /etc/kubernetes/pki
imageRepository: registry.k8s.io
featureGates:
  ControlPlaneKubeletLocalMode: true
  NodeLocalCRISocket: false
clusterName: example-cluster
encryptionAlgorithm: ECDSA-P256
certificateValidityPeriod: 8760h0m0s
caCertificateValidityPeriod: 87600h0m0s
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
anyField: [is, not, kubeadm's]
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: some-address:6443
    token: abcdef.0123456789abcdef
    unsafeSkipCAVerification: true
  tlsBootstrapToken: abcdef.0123456789abcdef
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ResetConfiguration
force: true
cleanupTmpDir: true
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: UpgradeConfiguration
apply:
  forceUpgrade: true
"#;

    /// Every field of kubeadm's v1beta3 types.
    const FULL_V1BETA3: &str = r#"
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
bootstrapTokens:
  - {token: abcdef.0123456789abcdef, description: d, ttl: 24h, usages: [signing], groups: [g]}
nodeRegistration:
  name: cp-1
  criSocket: unix:///run/containerd/containerd.sock
  taints: []
  kubeletExtraArgs: {v: "4", node-ip: 10.0.0.11}
  ignorePreflightErrors: [all]
  imagePullPolicy: Always
localAPIEndpoint: {advertiseAddress: 10.0.0.11, bindPort: 6443}
certificateKey: "0000"
skipPhases: [addon/kube-proxy]
patches: {directory: /tmp/patches}
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
etcd:
  local:
    imageRepository: registry.k8s.io
    imageTag: 3.5.9-0
    dataDir: /var/lib/etcd
    extraArgs: {listen-metrics-urls: "http://127.0.0.1:2381"}
    serverCertSANs: [etcd.internal]
    peerCertSANs: [10.0.0.12]
networking: {serviceSubnet: 10.96.0.0/12, podSubnet: 10.244.0.0/16, dnsDomain: cluster.local}
kubernetesVersion: v1.28.0
controlPlaneEndpoint: api.internal:6443
apiServer:
  extraArgs: {audit-log-path: /var/log/audit.log}
  extraVolumes: [{name: audit, hostPath: /var/log, mountPath: /var/log, readOnly: false, pathType: DirectoryOrCreate}]
  certSANs: [10.0.0.100]
  timeoutForControlPlane: 4m0s
controllerManager: {extraArgs: {bind-address: 0.0.0.0}, extraVolumes: []}
scheduler: {extraArgs: {}}
dns: {imageRepository: registry.k8s.io/coredns, imageTag: v1.10.1}
certificatesDir: /etc/kubernetes/pki
imageRepository: registry.k8s.io
featureGates: {PublicKeysECDSA: true}
clusterName: kubernetes
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: JoinConfiguration
discovery: {file: {kubeConfigPath: /etc/kubernetes/discovery.conf}}
"#;

    #[test]
    fn every_field_kubeadm_defines_is_accepted() {
        let k = KubeadmConfig::parse(FULL_V1BETA4, Path::new("kubeadm.yaml")).unwrap();
        assert_eq!(k.node_name.as_deref(), Some("ec2-10-100-0-1"));
        assert_eq!(k.cluster_name.as_deref(), Some("example-cluster"));
        assert_eq!(k.apiserver_cert_sans.as_deref().map(<[String]>::len), Some(2));
        assert_eq!(k.encryption_algorithm, KeyAlgorithm::EcdsaP256);
        let k = KubeadmConfig::parse(FULL_V1BETA3, Path::new("kubeadm.yaml")).unwrap();
        assert_eq!(k.control_plane_endpoint.as_deref(), Some("api.internal:6443"));
        assert_eq!(k.encryption_algorithm, KeyAlgorithm::EcdsaP256);
    }

    /// `parse`'s error for `text`, without the file name.
    fn refusal(text: &str) -> String {
        let err = KubeadmConfig::parse(text, Path::new("k.yaml")).expect_err(text).to_string();
        err.strip_prefix("k.yaml: ").unwrap_or_else(|| panic!("{err}")).to_owned()
    }

    #[test]
    fn unknown_and_misplaced_fields_are_named_with_the_closest_known_field() {
        let cluster = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n";
        let init = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n";
        for (text, want) in [
            // Typos, nested.
            (
                format!("{cluster}apiServer:\n  certSAN: [a.example]\n"),
                "ClusterConfiguration: apiServer.certSAN: unknown field; did you mean certSANs?",
            ),
            (
                format!("{cluster}etcd:\n  local:\n    serverCertSAN: [a]\n"),
                "ClusterConfiguration: etcd.local.serverCertSAN: unknown field; did you mean serverCertSANs?",
            ),
            // kubeadm's field names are case-sensitive.
            (
                format!("{cluster}networking:\n  servicesubnet: 10.0.0.0/16\n"),
                "ClusterConfiguration: networking.servicesubnet: unknown field; did you mean serviceSubnet?",
            ),
            (
                format!(
                    "{init}nodeRegistration:\n  taints:\n    - {{key: a, effect: NoSchedule}}\n    - {{key: b, efect: NoSchedule}}\n"
                ),
                "InitConfiguration: nodeRegistration.taints[1].efect: unknown field; did you mean effect?",
            ),
            (
                format!("{init}timeouts: {{kubenetesAPICall: 40s}}\n"),
                "InitConfiguration: timeouts.kubenetesAPICall: unknown field; did you mean kubernetesAPICall?",
            ),
            // Misplaced: valid elsewhere in the same kind.
            (
                format!("{cluster}certSANs: [a.example]\n"),
                "ClusterConfiguration: certSANs: unknown field; did you mean apiServer.certSANs?",
            ),
            (
                format!("{cluster}etcd:\n  serverCertSANs: [a]\n"),
                "ClusterConfiguration: etcd.serverCertSANs: unknown field; did you mean etcd.local.serverCertSANs?",
            ),
            (
                format!("{cluster}extraArgs: []\n"),
                "did you mean etcd.local.extraArgs or apiServer.extraArgs or controllerManager.extraArgs or scheduler.extraArgs?",
            ),
            // A field of the other kind, at the top level of the wrong one.
            (
                format!("{init}controlPlaneEndpoint: lb.example:6443\n"),
                "InitConfiguration: controlPlaneEndpoint: unknown field; it belongs in ClusterConfiguration (controlPlaneEndpoint)",
            ),
            (
                format!("{cluster}nodeRegistration: {{name: cp1}}\n"),
                "ClusterConfiguration: nodeRegistration: unknown field; it belongs in InitConfiguration (nodeRegistration)",
            ),
            // A field of the other version.
            (
                "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nencryptionAlgorithm: ECDSA-P256\n"
                    .into(),
                "ClusterConfiguration: encryptionAlgorithm: unknown field in kubeadm.k8s.io/v1beta3 (a v1beta4 field",
            ),
            (
                format!("{cluster}apiServer: {{timeoutForControlPlane: 4m}}\n"),
                "apiServer.timeoutForControlPlane: unknown field in kubeadm.k8s.io/v1beta4 (a v1beta3 field",
            ),
            // Nothing close: the fields valid there.
            (
                format!("{cluster}networking: {{zzz: 1}}\n"),
                "networking.zzz: unknown field (known fields here: serviceSubnet, podSubnet, dnsDomain)",
            ),
            // Values of the wrong type.
            (
                format!("{cluster}apiServer: {{certSANs: 5}}\n"),
                "ClusterConfiguration: apiServer.certSANs: expected a list of strings, found a number",
            ),
            (
                format!("{cluster}featureGates: {{A: maybe}}\n"),
                "featureGates.A: expected true or false, found a string",
            ),
            (
                format!("{init}localAPIEndpoint: {{bindPort: \"6443\"}}\n"),
                "localAPIEndpoint.bindPort: expected a whole number",
            ),
            (format!("{cluster}kubernetesVersion: 1.30\n"), "kubernetesVersion: expected a string, found a number"),
            (format!("{cluster}apiServer: [a]\n"), "apiServer: expected a mapping, found a list"),
            // An unknown kubeadm kind or a group that is nearly kubeadm's.
            (
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguraton\n".into(),
                "ClusterConfiguraton: kind ClusterConfiguraton is not a kind of kubeadm.k8s.io/v1beta4; did you mean ClusterConfiguration?",
            ),
            (
                "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfig\n".into(),
                "kind ClusterConfig is not a kind of kubeadm.k8s.io/v1beta4 (its kinds: InitConfiguration, ClusterConfiguration, JoinConfiguration, ResetConfiguration, UpgradeConfiguration)",
            ),
            (
                "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ResetConfiguration\n".into(),
                "kind ResetConfiguration is not a kind of kubeadm.k8s.io/v1beta3",
            ),
            (
                format!("{cluster}---\napiVersion: kubadm.k8s.io/v1beta4\nkind: InitConfiguration\n"),
                "InitConfiguration (document 2): apiVersion kubadm.k8s.io/v1beta4: unknown API group \"kubadm.k8s.io\"; did you mean kubeadm.k8s.io?",
            ),
        ] {
            let reason = refusal(&text);
            assert!(reason.contains(want), "{text}\n  got: {reason}\n want: {want}");
        }
    }

    #[test]
    fn the_document_is_named_by_its_kind_and_place_when_there_are_several() {
        let text = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n---\n\
                    apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer: {certSAN: []}\n";
        assert_eq!(
            refusal(text),
            "ClusterConfiguration (document 2): apiServer.certSAN: unknown field; did you mean certSANs?"
        );
    }

    #[test]
    fn other_groups_and_other_kubeadm_commands_documents_are_skipped_whole() {
        let text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nnot: [checked]\n---\n\
                    apiVersion: kubepki.io/v1alpha1\nkind: RotationConfiguration\nsecrets: []\n---\n\
                    apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\nanything: goes\n";
        assert_eq!(KubeadmConfig::parse_optional(text, Path::new("k.yaml")).unwrap().map(|k| k.node_name), Some(None));
    }
}
