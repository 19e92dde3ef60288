//! The cluster's desired PKI configuration — the subset of kubeadm's InitConfiguration and
//! ClusterConfiguration that decides certificate contents — and what follows from it.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::cert::Subject;
use crate::error::{Error, Result};
use crate::issue::CertRequest;
use crate::key::KeyAlgorithm;
use crate::profile::{CaKind, Endpoint, KubeconfigSpec, ProfileSpec, SanRule};
use crate::san::{self, AltNames};
use crate::validity::Lifetime;

/// Everything that decides the contents of a kubeadm-layout PKI.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ClusterConfig {
    /// `nodeRegistration.name`: the etcd CN and a SAN of the API server and etcd.
    pub node_name: String,
    /// `localAPIEndpoint.advertiseAddress`.
    pub advertise_address: IpAddr,
    /// `localAPIEndpoint.bindPort` (6443).
    pub bind_port: u16,
    /// `controlPlaneEndpoint`: `HOST[:PORT]`, a load balancer's name or address.
    pub control_plane_endpoint: Option<String>,
    /// `apiServer.certSANs`.
    pub apiserver_cert_sans: Vec<String>,
    /// `networking.serviceSubnet` (`10.96.0.0/12`; comma-separated when dual-stack).
    pub service_subnet: String,
    /// `networking.dnsDomain` (`cluster.local`).
    pub dns_domain: String,
    /// `clusterName` (`kubernetes`): the kubeconfigs' cluster name.
    pub cluster_name: String,
    /// `encryptionAlgorithm`.
    pub encryption_algorithm: KeyAlgorithm,
    /// `certificateValidityPeriod` (8760h).
    pub cert_validity: Lifetime,
    /// `caCertificateValidityPeriod` (87600h).
    pub ca_validity: Lifetime,
    /// `etcd.local.serverCertSANs`.
    pub etcd_server_cert_sans: Vec<String>,
    /// `etcd.local.peerCertSANs`.
    pub etcd_peer_cert_sans: Vec<String>,
    /// `etcd.external` is set: no etcd CA and no etcd certificates.
    pub external_etcd: bool,
    /// `certificatesDir` (`/etc/kubernetes/pki`).
    pub cert_dir: PathBuf,
    /// Where kubeconfigs go (`/etc/kubernetes`).
    pub kubeconfig_dir: PathBuf,
}

impl ClusterConfig {
    /// kubeadm's defaults for a node called `node_name` advertising `advertise_address`, with
    /// kubepki's default key algorithm (ECDSA-P256).
    pub fn new(node_name: impl Into<String>, advertise_address: IpAddr) -> Self {
        Self {
            node_name: node_name.into(),
            advertise_address,
            bind_port: 6443,
            control_plane_endpoint: None,
            apiserver_cert_sans: Vec::new(),
            service_subnet: "10.96.0.0/12".into(),
            dns_domain: "cluster.local".into(),
            cluster_name: "kubernetes".into(),
            encryption_algorithm: KeyAlgorithm::default(),
            cert_validity: Lifetime::DEFAULT_CERT,
            ca_validity: Lifetime::DEFAULT_CA,
            etcd_server_cert_sans: Vec::new(),
            etcd_peer_cert_sans: Vec::new(),
            external_etcd: false,
            cert_dir: PathBuf::from(crate::paths::CERT_DIR),
            kubeconfig_dir: PathBuf::from(crate::paths::KUBECONFIG_DIR),
        }
    }

    /// Checks every value that is not checked by its type: the node name, the endpoint, the
    /// service subnet, the DNS domain, the cluster name and all extra SANs. Every later step
    /// may assume a validated config.
    pub fn validate(&self) -> Result<()> {
        if !san::is_dns1123_subdomain(&self.node_name) {
            return Err(Error::InvalidValue {
                field: "node name",
                value: self.node_name.clone(),
                reason: "must be a lowercase RFC 1123 subdomain (letters, digits, '-' and '.')".into(),
            });
        }
        if !san::is_dns1123_subdomain(&self.dns_domain) {
            return Err(Error::InvalidValue {
                field: "service DNS domain",
                value: self.dns_domain.clone(),
                reason: "must be an RFC 1123 subdomain".into(),
            });
        }
        if self.cluster_name.is_empty() || self.cluster_name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::InvalidValue {
                field: "cluster name",
                value: self.cluster_name.clone(),
                reason: "must be non-empty and contain no whitespace".into(),
            });
        }
        if self.bind_port == 0 {
            return Err(Error::InvalidValue {
                field: "API server bind port",
                value: "0".into(),
                reason: "must be 1-65535".into(),
            });
        }
        san::first_service_ip(&self.service_subnet)?;
        self.control_plane_host_port()?;
        for rule in [SanRule::ApiServer, SanRule::EtcdServer, SanRule::EtcdPeer] {
            self.alt_names(rule)?;
        }
        Ok(())
    }

    /// The control-plane endpoint split into host and optional port.
    pub fn control_plane_host_port(&self) -> Result<Option<(String, Option<u16>)>> {
        let Some(ep) = self.control_plane_endpoint.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let invalid = |reason: &str| Error::InvalidValue {
            field: "control-plane endpoint",
            value: ep.to_owned(),
            reason: reason.to_owned(),
        };
        let (host, port) = if let Some(rest) = ep.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| invalid("unterminated '[' in an IPv6 address"))?;
            match after.strip_prefix(':') {
                Some(p) => (h.to_owned(), Some(p)),
                None if after.is_empty() => (h.to_owned(), None),
                None => return Err(invalid("expected HOST[:PORT]")),
            }
        } else if ep.parse::<IpAddr>().is_ok() {
            (ep.to_owned(), None)
        } else {
            match ep.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (ep.to_owned(), None),
            }
        };
        let port = port
            .map(|p| {
                p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| invalid("the port must be a number in 1-65535"))
            })
            .transpose()?;
        if host.parse::<IpAddr>().is_err() && !san::is_dns1123_subdomain(&host) {
            return Err(invalid("the host must be an IP address or a DNS name"));
        }
        Ok(Some((host, port)))
    }

    /// The URL kubeconfigs use to reach the API server: the control-plane endpoint (with its
    /// port, or the bind port), or else this node's own endpoint.
    pub fn server_url(&self, endpoint: Endpoint) -> Result<String> {
        if endpoint == Endpoint::ControlPlane
            && let Some((host, port)) = self.control_plane_host_port()?
        {
            return Ok(format_url(&host, port.unwrap_or(self.bind_port)));
        }
        Ok(format_url(&self.advertise_address.to_string(), self.bind_port))
    }

    /// The SANs a profile gets under this configuration (kubeadm-pki.md §1.3).
    pub fn alt_names(&self, rule: SanRule) -> Result<AltNames> {
        let mut n = AltNames::new();
        match rule {
            SanRule::None => {}
            SanRule::ApiServer => {
                n.add_dns(&self.node_name);
                for d in ["kubernetes", "kubernetes.default", "kubernetes.default.svc"] {
                    n.add_dns(d);
                }
                n.add_dns(format!("kubernetes.default.svc.{}", self.dns_domain));
                n.add_ip(san::first_service_ip(&self.service_subnet)?);
                n.add_ip(self.advertise_address);
                if let Some((host, _)) = self.control_plane_host_port()? {
                    match host.parse::<IpAddr>() {
                        Ok(ip) => n.add_ip(ip),
                        Err(_) => n.add_dns(host),
                    }
                }
                for s in &self.apiserver_cert_sans {
                    n.add_parsed(s, "apiserver")?;
                }
            }
            SanRule::EtcdServer | SanRule::EtcdPeer => {
                n.add_dns(&self.node_name);
                n.add_dns("localhost");
                n.add_ip(self.advertise_address);
                n.add_ip(IpAddr::from([127, 0, 0, 1]));
                n.add_ip(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]));
                let (extra, cert) = if rule == SanRule::EtcdServer {
                    (&self.etcd_server_cert_sans, "etcd-server")
                } else {
                    (&self.etcd_peer_cert_sans, "etcd-peer")
                };
                for s in extra {
                    n.add_parsed(s, cert)?;
                }
            }
            SanRule::Node => {
                n.add_dns(&self.node_name);
                n.add_ip(self.advertise_address);
            }
        }
        Ok(n)
    }

    /// The certificate request for a cert-dir profile on this node.
    pub fn request(&self, spec: &ProfileSpec) -> Result<CertRequest> {
        Ok(CertRequest {
            subject: Subject::new(spec.common_name.resolve(&self.node_name), spec.organizations.iter().copied()),
            sans: self.alt_names(spec.sans)?,
            usage: spec.usage,
        })
    }

    /// The client certificate request for a kubeconfig on this node.
    pub fn kubeconfig_request(&self, spec: &KubeconfigSpec) -> CertRequest {
        CertRequest {
            subject: Subject::new(spec.common_name.resolve(&self.node_name), spec.organizations.iter().copied()),
            sans: AltNames::new(),
            usage: crate::profile::Usage::Client,
        }
    }

    /// The CAs this configuration has (no etcd CA with external etcd).
    pub fn cas(&self) -> Vec<CaKind> {
        CaKind::ALL.into_iter().filter(|&c| !(self.external_etcd && c == CaKind::EtcdCa)).collect()
    }

    /// The cert-dir leaves this configuration has (no etcd leaves with external etcd).
    pub fn leaves(&self) -> Vec<&'static ProfileSpec> {
        crate::profile::LEAVES.iter().filter(|s| !(self.external_etcd && s.ca == CaKind::EtcdCa)).collect()
    }
}

fn format_url(host: &str, port: u16) -> String {
    if host.contains(':') { format!("https://[{host}]:{port}") } else { format!("https://{host}:{port}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ClusterConfig {
        ClusterConfig::new("cp1", "192.168.0.10".parse().unwrap())
    }

    /// kubeadm-pki.md §1.3's example, plus an endpoint and extra SANs.
    #[test]
    fn apiserver_sans_as_kubeadm() {
        let mut c = cfg();
        c.control_plane_endpoint = Some("lb.example.com:443".into());
        c.apiserver_cert_sans = vec!["10.0.0.5".into(), "api.example.com".into(), "192.168.0.10".into()];
        let n = c.alt_names(SanRule::ApiServer).unwrap();
        assert_eq!(
            n.to_string(),
            "DNS:api.example.com, DNS:cp1, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, \
             DNS:kubernetes.default.svc.cluster.local, DNS:lb.example.com, IP:10.96.0.1, IP:192.168.0.10, IP:10.0.0.5"
        );
        c.control_plane_endpoint = Some("10.1.1.1".into());
        assert!(c.alt_names(SanRule::ApiServer).unwrap().ip_addresses().contains(&"10.1.1.1".parse().unwrap()));
    }

    #[test]
    fn etcd_sans_as_kubeadm() {
        let mut c = cfg();
        c.etcd_peer_cert_sans = vec!["etcd-1.internal".into()];
        assert_eq!(
            c.alt_names(SanRule::EtcdServer).unwrap().to_string(),
            "DNS:cp1, DNS:localhost, IP:192.168.0.10, IP:127.0.0.1, IP:::1"
        );
        assert_eq!(
            c.alt_names(SanRule::EtcdPeer).unwrap().to_string(),
            "DNS:cp1, DNS:etcd-1.internal, DNS:localhost, IP:192.168.0.10, IP:127.0.0.1, IP:::1"
        );
    }

    #[test]
    fn server_urls() {
        let mut c = cfg();
        assert_eq!(c.server_url(Endpoint::ControlPlane).unwrap(), "https://192.168.0.10:6443");
        c.control_plane_endpoint = Some("lb.example.com".into());
        assert_eq!(c.server_url(Endpoint::ControlPlane).unwrap(), "https://lb.example.com:6443");
        c.control_plane_endpoint = Some("[fd00::1]:8443".into());
        assert_eq!(c.server_url(Endpoint::ControlPlane).unwrap(), "https://[fd00::1]:8443");
        assert_eq!(c.server_url(Endpoint::Local).unwrap(), "https://192.168.0.10:6443");
    }

    #[test]
    fn validation_names_the_bad_value() {
        let mut c = cfg();
        c.node_name = "CP_1".into();
        assert!(c.validate().unwrap_err().to_string().contains("\"CP_1\""));
        let mut c = cfg();
        c.control_plane_endpoint = Some("lb:99999".into());
        assert!(c.validate().unwrap_err().to_string().contains("control-plane endpoint"));
        let mut c = cfg();
        c.etcd_server_cert_sans = vec!["not valid!".into()];
        assert!(c.validate().unwrap_err().to_string().contains("etcd-server"));
        let mut c = cfg();
        c.service_subnet = "10.96.0.0".into();
        assert!(c.validate().is_err());
        assert!(cfg().validate().is_ok());
    }
}
