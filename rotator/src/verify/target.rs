//! What to verify: an endpoint, the CA its certificate must chain to, the client certificate to
//! present, the file it should be serving, and how to make a client from a wrong CA.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rustls_pki_types::ServerName;

use crate::error::{Error, Result};

/// The kind of endpoint: decides the default material and how client authentication is probed.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum TargetKind {
    /// etcd's client port (2379), probed with etcd's own gRPC client (a `Status` request).
    Etcd,
    /// etcd's peer port (2380), probed with `GET /version` over mutual TLS.
    EtcdPeer,
    /// A kubelet's API (10250), probed with `GET /pods`.
    Kubelet,
    /// The API server (6443), probed with `GET /api`.
    ApiServer,
}

impl TargetKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [Self; 4] = [Self::Etcd, Self::EtcdPeer, Self::Kubelet, Self::ApiServer];

    /// The name used in reports and flags: `etcd`, `etcd-peer`, `kubelet`, `apiserver`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Etcd => "etcd",
            Self::EtcdPeer => "etcd-peer",
            Self::Kubelet => "kubelet",
            Self::ApiServer => "apiserver",
        }
    }

    /// The port kubeadm's components listen on, used when a URL has none.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Etcd => 2379,
            Self::EtcdPeer => 2380,
            Self::Kubelet => 10250,
            Self::ApiServer => 6443,
        }
    }

    /// The kinds whose verification a renewal of `name` affects with the kubeadm defaults:
    /// the endpoint serving it, or the endpoint it is the default client certificate for.
    /// `name` is kubeadm's (`etcd-server`, `apiserver-kubelet-client`, ...) or
    /// `kubelet-serving`; anything else affects none.
    ///
    /// ```
    /// use kubepki_rotator::verify::TargetKind;
    ///
    /// assert_eq!(TargetKind::affected_by("etcd-peer"), &[TargetKind::EtcdPeer]);
    /// assert_eq!(TargetKind::affected_by("apiserver-kubelet-client"), &[TargetKind::Kubelet, TargetKind::ApiServer]);
    /// assert!(TargetKind::affected_by("front-proxy-client").is_empty());
    /// ```
    pub fn affected_by(name: &str) -> &'static [Self] {
        match name {
            "etcd-server" | "apiserver-etcd-client" => &[Self::Etcd],
            "etcd-peer" => &[Self::EtcdPeer],
            "apiserver" => &[Self::ApiServer],
            "apiserver-kubelet-client" => &[Self::Kubelet, Self::ApiServer],
            "kubelet-serving" => &[Self::Kubelet],
            _ => &[],
        }
    }

    /// The path requested over HTTPS to judge client authentication. For etcd's client port it
    /// is used only when no server CA is known (otherwise etcd's gRPC client is used).
    pub fn http_path(self) -> &'static str {
        match self {
            Self::Etcd | Self::EtcdPeer => "/version",
            Self::Kubelet => "/pods",
            Self::ApiServer => "/api",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An `https://host[:port]` URL, parsed.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct EndpointUrl {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
}

impl EndpointUrl {
    /// Parses `https://host[:port][/]` (the scheme may be left out; `http://` is refused, as
    /// there is no TLS to verify). IPv6 hosts are written in brackets. `default_port` is used
    /// when the URL has no port.
    pub fn parse(url: &str, default_port: u16) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidEndpoint { url: url.to_owned(), reason: reason.to_owned() };
        let trimmed = url.trim();
        if trimmed.starts_with("http://") {
            return Err(invalid("verification needs TLS: use https://"));
        }
        let rest = trimmed.strip_prefix("https://").unwrap_or(trimmed);
        if rest.contains("://") {
            return Err(invalid("only https:// URLs can be verified"));
        }
        let authority = match rest.split_once('/') {
            Some((a, "")) => a,
            Some(_) => return Err(invalid("a path is not supported; give https://host:port")),
            None => rest,
        };
        if authority.contains('@') || authority.contains('?') || authority.contains('#') {
            return Err(invalid("expected https://host:port"));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or_else(|| invalid("unclosed [ in the host"))?;
            match after {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or_else(|| invalid("expected :port after ]"))?)),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => return Err(invalid("write an IPv6 address in brackets: [::1]")),
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(invalid("the port must be a number from 1 to 65535")),
                Ok(p) => p,
            },
        };
        let server_name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.to_owned())
                .map_err(|_| invalid("the host is neither an IP address nor a valid DNS name"))?,
        };
        Ok(Self { host: host.to_owned(), port, server_name })
    }

    /// The host (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port`, with an IPv6 host in brackets (also the HTTP `Host` header).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The name the served certificate must be valid for (an IP address or a DNS name).
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }
}

impl fmt::Display for EndpointUrl {
    /// `https://host:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "https://{}", self.authority())
    }
}

/// The client certificate to present.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum ClientCredential {
    /// A PEM certificate file (leaf first, intermediates after it) and its key file.
    Files {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The current context's user of a kubeconfig (`admin.conf`): embedded data or file paths,
    /// relative paths taken from the kubeconfig's directory.
    Kubeconfig(PathBuf),
}

impl fmt::Display for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Files { cert, .. } => write!(f, "{}", cert.display()),
            Self::Kubeconfig(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Where the client certificate from a wrong CA comes from.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub enum WrongCa {
    /// A throwaway CA and client certificate made in memory for each run (never written): the
    /// CA copies the common name of the real client CA and the client certificate copies the
    /// real client's subject, so only the signature tells them apart.
    #[default]
    Generate,
    /// A client certificate and key from some other CA, given as files.
    Files {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// Do not probe with a wrong CA (the check is reported as skipped).
    Skip,
}

/// One endpoint to verify and the material to verify it with.
///
/// Build one with a kubeadm default ([`Target::etcd_default`], …) and adjust it with the
/// `with_*` methods. Files are read when [`verify`](super::verify) runs, so a target built
/// before a rotation sees the rotated files.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Target {
    kind: TargetKind,
    url: EndpointUrl,
    server_ca: Option<PathBuf>,
    client: Option<ClientCredential>,
    served_cert: Option<PathBuf>,
    wrong_ca: WrongCa,
}

impl Target {
    /// A target with no material at all: no server CA (the chain check warns), no client
    /// certificate (client checks are skipped), no on-disk certificate to compare with, and a
    /// generated wrong CA.
    pub fn new(kind: TargetKind, url: &str) -> Result<Self> {
        Ok(Self {
            kind,
            url: EndpointUrl::parse(url, kind.default_port())?,
            server_ca: None,
            client: None,
            served_cert: None,
            wrong_ca: WrongCa::Generate,
        })
    }

    /// The kubeadm defaults for `kind` under `cert_dir` (`/etc/kubernetes/pki`):
    ///
    /// | kind | server CA | client certificate | served certificate on disk |
    /// |---|---|---|---|
    /// | etcd | `etcd/ca.crt` | `apiserver-etcd-client` | `etcd/server.crt` |
    /// | etcd-peer | `etcd/ca.crt` | `etcd/peer` | `etcd/peer.crt` |
    /// | kubelet | none (kubeadm's kubelets serve a self-signed certificate) | `apiserver-kubelet-client` | none |
    /// | apiserver | `ca.crt` | `apiserver-kubelet-client`, else `../admin.conf` | `apiserver.crt` |
    pub fn kubeadm_default(kind: TargetKind, cert_dir: &Path, url: &str) -> Result<Self> {
        let pair = |base: &str| ClientCredential::Files {
            cert: cert_dir.join(format!("{base}.crt")),
            key: cert_dir.join(format!("{base}.key")),
        };
        let target = Self::new(kind, url)?;
        Ok(match kind {
            TargetKind::Etcd => target
                .with_server_ca(Some(cert_dir.join("etcd/ca.crt")))
                .with_client(Some(pair("apiserver-etcd-client")))
                .with_served_cert(Some(cert_dir.join("etcd/server.crt"))),
            TargetKind::EtcdPeer => target
                .with_server_ca(Some(cert_dir.join("etcd/ca.crt")))
                .with_client(Some(pair("etcd/peer")))
                .with_served_cert(Some(cert_dir.join("etcd/peer.crt"))),
            TargetKind::Kubelet => target.with_client(Some(pair("apiserver-kubelet-client"))),
            TargetKind::ApiServer => {
                let admin_conf = cert_dir.parent().map(|p| p.join("admin.conf"));
                let client = match admin_conf {
                    Some(conf) if !cert_dir.join("apiserver-kubelet-client.crt").exists() && conf.exists() => {
                        ClientCredential::Kubeconfig(conf)
                    }
                    _ => pair("apiserver-kubelet-client"),
                };
                target
                    .with_server_ca(Some(cert_dir.join("ca.crt")))
                    .with_client(Some(client))
                    .with_served_cert(Some(cert_dir.join("apiserver.crt")))
            }
        })
    }

    /// etcd's client port with kubeadm's defaults (see [`Target::kubeadm_default`]).
    pub fn etcd_default(cert_dir: &Path, url: &str) -> Result<Self> {
        Self::kubeadm_default(TargetKind::Etcd, cert_dir, url)
    }

    /// etcd's peer port with kubeadm's defaults.
    pub fn etcd_peer_default(cert_dir: &Path, url: &str) -> Result<Self> {
        Self::kubeadm_default(TargetKind::EtcdPeer, cert_dir, url)
    }

    /// A kubelet with kubeadm's defaults.
    pub fn kubelet_default(cert_dir: &Path, url: &str) -> Result<Self> {
        Self::kubeadm_default(TargetKind::Kubelet, cert_dir, url)
    }

    /// The API server with kubeadm's defaults.
    pub fn apiserver_default(cert_dir: &Path, url: &str) -> Result<Self> {
        Self::kubeadm_default(TargetKind::ApiServer, cert_dir, url)
    }

    /// The CA file (one or more certificates) the served chain must lead to; `None` turns the
    /// chain check into a warning.
    pub fn with_server_ca(mut self, ca: Option<PathBuf>) -> Self {
        self.server_ca = ca;
        self
    }

    /// The client certificate to present; `None` skips the client-certificate checks.
    pub fn with_client(mut self, client: Option<ClientCredential>) -> Self {
        self.client = client;
        self
    }

    /// The certificate file the endpoint should be serving; `None` skips the comparison.
    pub fn with_served_cert(mut self, path: Option<PathBuf>) -> Self {
        self.served_cert = path;
        self
    }

    /// Where the wrong-CA client certificate comes from.
    pub fn with_wrong_ca(mut self, wrong_ca: WrongCa) -> Self {
        self.wrong_ca = wrong_ca;
        self
    }

    /// The kind.
    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    /// The URL.
    pub fn url(&self) -> &EndpointUrl {
        &self.url
    }

    /// The server CA file.
    pub fn server_ca(&self) -> Option<&Path> {
        self.server_ca.as_deref()
    }

    /// The client credential.
    pub fn client(&self) -> Option<&ClientCredential> {
        self.client.as_ref()
    }

    /// The certificate file the endpoint should be serving.
    pub fn served_cert(&self) -> Option<&Path> {
        self.served_cert.as_deref()
    }

    /// The wrong-CA material.
    pub fn wrong_ca(&self) -> &WrongCa {
        &self.wrong_ca
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports_brackets_and_no_scheme() {
        let u = EndpointUrl::parse("https://127.0.0.1:2379", 1).unwrap();
        assert_eq!((u.host(), u.port()), ("127.0.0.1", 2379));
        assert!(matches!(u.server_name(), ServerName::IpAddress(_)));
        let u = EndpointUrl::parse("https://[::1]/", 10250).unwrap();
        assert_eq!((u.host(), u.port(), u.authority()), ("::1", 10250, "[::1]:10250".to_owned()));
        let u = EndpointUrl::parse("node-1.example:10250", 1).unwrap();
        assert!(matches!(u.server_name(), ServerName::DnsName(_)));
        assert_eq!(u.to_string(), "https://node-1.example:10250");
    }

    #[test]
    fn urls_without_tls_or_with_paths_or_bad_ports_are_refused() {
        for bad in [
            "http://127.0.0.1:2379",
            "https://h:2379/pods",
            "https://h:0",
            "https://h:99999",
            "https://::1:5",
            "https://",
        ] {
            let err = EndpointUrl::parse(bad, 1).unwrap_err().to_string();
            assert!(err.contains(bad.trim()), "{bad}: {err}");
        }
    }

    #[test]
    fn kubeadm_defaults_name_the_kubeadm_files() {
        let dir = Path::new("/etc/kubernetes/pki");
        let t = Target::etcd_default(dir, "https://10.0.0.1:2379").unwrap();
        assert_eq!(t.server_ca(), Some(dir.join("etcd/ca.crt").as_path()));
        assert_eq!(
            t.client(),
            Some(&ClientCredential::Files {
                cert: dir.join("apiserver-etcd-client.crt"),
                key: dir.join("apiserver-etcd-client.key")
            })
        );
        assert_eq!(t.served_cert(), Some(dir.join("etcd/server.crt").as_path()));
        let t = Target::etcd_peer_default(dir, "10.0.0.1").unwrap();
        assert_eq!(t.url().port(), 2380);
        assert_eq!(t.served_cert(), Some(dir.join("etcd/peer.crt").as_path()));
        let t = Target::kubelet_default(dir, "10.0.0.2").unwrap();
        assert_eq!((t.server_ca(), t.served_cert(), t.url().port()), (None, None, 10250));
        let t = Target::apiserver_default(dir, "10.0.0.1").unwrap();
        assert_eq!(t.server_ca(), Some(dir.join("ca.crt").as_path()));
        assert_eq!(t.wrong_ca(), &WrongCa::Generate);
    }
}
