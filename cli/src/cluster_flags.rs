//! The cluster flags shared by `init`, `issue` and `rotate`: kubeadm's flag names, layered as
//! defaults < `--config` file < flags.

use std::net::{IpAddr, UdpSocket};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use kubepki_pki::{AltNames, ClusterConfig, KeyAlgorithm, KubeadmConfig, Lifetime, SanRule};
use kubepki_rotator::rotation::plan::Desired;

use crate::exit::{INPUT, coded};

/// Flags that describe the cluster, named as kubeadm names them: the groups a command that
/// issues certificates for the control plane uses. A command that needs less flattens only its
/// groups (`issue kubelet-serving` takes [`SignerFlags`] alone), so its `--help` and completion
/// list only what it reads.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct ClusterFlags {
    #[command(flatten)]
    pub(crate) signer: SignerFlags,
    #[command(flatten)]
    pub(crate) kubeconfigs: KubeconfigDirFlags,
    #[command(flatten)]
    pub(crate) endpoint: EndpointFlags,
    #[command(flatten)]
    pub(crate) sans: SanFlags,
}

/// What every issuing command reads: the configuration, the cert dir holding the CAs, the
/// node, and how keys and certificates are made.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct SignerFlags {
    /// A kubeadm configuration file (v1beta3 or v1beta4; InitConfiguration and
    /// ClusterConfiguration are read, strictly: a field kubeadm does not define is an error;
    /// other documents are skipped). Flags override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Where certificates are stored [default: /etc/kubernetes/pki].
    #[arg(long, value_name = "DIR", value_parser = absolute_path)]
    pub(crate) cert_dir: Option<PathBuf>,
    /// The node's name [default: the host name, lowercased].
    #[arg(long, value_name = "NAME")]
    pub(crate) node_name: Option<String>,
    /// RSA-2048, RSA-3072, RSA-4096, ECDSA-P256 or ECDSA-P384 [default: ECDSA-P256; with
    /// --config, the file's encryptionAlgorithm, which kubeadm defaults to RSA-2048].
    #[arg(long, value_name = "ALGORITHM")]
    pub(crate) encryption_algorithm: Option<String>,
    /// Leaf certificate validity, a Go duration or days (8760h, 90d) [default: 8760h].
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub(crate) cert_validity: Option<String>,
    /// CA certificate validity [default: 87600h].
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub(crate) ca_validity: Option<String>,
}

/// Where the kubeconfigs are.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct KubeconfigDirFlags {
    /// Where kubeconfig files are stored [default: /etc/kubernetes].
    #[arg(long, value_name = "DIR", value_parser = absolute_path)]
    pub(crate) kubeconfig_dir: Option<PathBuf>,
}

/// Where the API server is, for kubeconfigs: its address, port, stable endpoint and the
/// cluster's name.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct EndpointFlags {
    /// The IP address the API server advertises [default: the address of the default route].
    #[arg(long, value_name = "IP")]
    pub(crate) apiserver_advertise_address: Option<IpAddr>,
    /// The API server's port [default: 6443].
    #[arg(long, value_name = "PORT")]
    pub(crate) apiserver_bind_port: Option<u16>,
    /// A stable address for the control plane (a load balancer): HOST[:PORT].
    #[arg(long, value_name = "HOST[:PORT]")]
    pub(crate) control_plane_endpoint: Option<String>,
    /// The cluster's name in kubeconfigs [default: kubernetes].
    #[arg(long, value_name = "NAME")]
    pub(crate) cluster_name: Option<String>,
}

/// The SANs of the control plane's serving certificates, and whether etcd is kubeadm's.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct SanFlags {
    /// Extra SANs for the API server certificate (IP addresses or DNS names).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub(crate) apiserver_cert_extra_sans: Option<Vec<String>>,
    /// Extra SANs for the etcd server certificate.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub(crate) etcd_server_cert_extra_sans: Option<Vec<String>>,
    /// Extra SANs for the etcd peer certificate.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub(crate) etcd_peer_cert_extra_sans: Option<Vec<String>>,
    /// The Service IP range; its first address is an API server SAN [default: 10.96.0.0/12].
    #[arg(long, value_name = "CIDR")]
    pub(crate) service_cidr: Option<String>,
    /// The Services' DNS domain [default: cluster.local].
    #[arg(long, value_name = "DOMAIN")]
    pub(crate) service_dns_domain: Option<String>,
    /// etcd is external: no etcd CA and no etcd certificates.
    #[arg(long)]
    pub(crate) external_etcd: bool,
}

impl ClusterFlags {
    /// The kubeadm documents of `--config`, if it has any.
    pub(crate) fn kubeadm_file(&self) -> Result<Option<KubeadmConfig>> {
        Ok(self.signer.config.as_deref().map(KubeadmConfig::read_optional).transpose()?.flatten())
    }

    /// The cert dir and kubeconfig dir: flags, else the config file's `certificatesDir`, else
    /// kubeadm's defaults. Needs no other input.
    pub(crate) fn dirs(&self) -> Result<(PathBuf, PathBuf)> {
        let from_file = self.kubeadm_file()?.and_then(|k| k.cert_dir).map(absolute).transpose()?;
        let cert_dir =
            self.signer.cert_dir.clone().or(from_file).unwrap_or_else(|| PathBuf::from(kubepki_pki::paths::CERT_DIR));
        let kubeconfig_dir = self
            .kubeconfigs
            .kubeconfig_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(kubepki_pki::paths::KUBECONFIG_DIR));
        Ok((cert_dir, kubeconfig_dir))
    }

    /// What `rotate` is asked for beyond keeping each certificate's identity — never anything
    /// of this host. With `--config`, the file (flags over it) is the whole desired state of
    /// kubeadm's apiserver and etcd SANs, and it or the flags must name the node
    /// (`nodeRegistration.name`, `localAPIEndpoint.advertiseAddress`). Without it, each flag
    /// adds what it states to the leaves kubeadm's SAN rules give it to (`--node-name` and
    /// `--apiserver-advertise-address` to apiserver, etcd-server and etcd-peer; the endpoint,
    /// the Service CIDR and DNS domain, and `--apiserver-cert-extra-sans` to apiserver; the
    /// etcd extra SANs to theirs). `remove`: SANs to take off every renewed leaf.
    pub(crate) fn rotation_desired(&self, remove: &[String]) -> Result<Desired> {
        let file = self.kubeadm_file()?;
        let node_known = self.signer.node_name.is_some() || file.as_ref().is_some_and(|k| k.node_name.is_some());
        let address_known = self.endpoint.apiserver_advertise_address.is_some()
            || file.as_ref().is_some_and(|k| k.advertise_address.is_some());
        // A --config holding only kubepki's own RotationConfiguration describes no cluster.
        let mut flags = self.clone();
        if file.is_none() {
            flags.signer.config = None;
        }
        let base = flags.resolve_without_host()?;
        let mut profile = base.clone();
        if !node_known {
            profile.node_name = String::new();
        }
        let mut desired = Desired { profile: Some(profile), ..Desired::default() };
        for value in remove {
            desired.remove.add_parsed(value, "--remove-sans").map_err(|e| coded(INPUT, e))?;
        }
        if let Some(path) = self.signer.config.as_ref().filter(|_| file.is_some()) {
            if !node_known || !address_known {
                bail!(coded(
                    INPUT,
                    anyhow::anyhow!(
                        "{}: the configuration gives the whole desired state of the apiserver and etcd certificates \
                         but does not name this node: set nodeRegistration.name and \
                         localAPIEndpoint.advertiseAddress, or pass --node-name and --apiserver-advertise-address \
                         (rotate never takes them from the host it runs on)",
                        path.display()
                    )
                ));
            }
            desired.config = Some(base);
            return Ok(desired);
        }
        let (mut api, mut etcd_server, mut etcd_peer) = (AltNames::new(), AltNames::new(), AltNames::new());
        for names in [&mut api, &mut etcd_server, &mut etcd_peer] {
            if let Some(node) = &self.signer.node_name {
                names.add_parsed(node, "--node-name").map_err(|e| coded(INPUT, e))?;
            }
            if let Some(address) = self.endpoint.apiserver_advertise_address {
                names.add_ip(address);
            }
        }
        if self.endpoint.control_plane_endpoint.is_some()
            && let Some((host, _)) = base.control_plane_host_port()?
        {
            api.add_parsed(&host, "apiserver")?;
        }
        if self.sans.service_cidr.is_some() {
            api.add_ip(kubepki_pki::first_service_ip(&base.service_subnet)?);
        }
        if self.sans.service_dns_domain.is_some() {
            api.add_dns(format!("kubernetes.default.svc.{}", base.dns_domain));
        }
        for (names, extra, cert) in [
            (&mut api, &self.sans.apiserver_cert_extra_sans, "apiserver"),
            (&mut etcd_server, &self.sans.etcd_server_cert_extra_sans, "etcd-server"),
            (&mut etcd_peer, &self.sans.etcd_peer_cert_extra_sans, "etcd-peer"),
        ] {
            for value in extra.iter().flatten() {
                names.add_parsed(value, cert).map_err(|e| coded(INPUT, e))?;
            }
        }
        desired.add =
            vec![(SanRule::ApiServer, api), (SanRule::EtcdServer, etcd_server), (SanRule::EtcdPeer, etcd_peer)];
        Ok(desired)
    }

    /// As [`resolve`](Self::resolve), for a command that uses neither the node name nor the
    /// advertise address unless they are given: nothing is taken from this host. A node name
    /// or address neither the flags nor the file give stays a placeholder (`localhost`,
    /// 0.0.0.0) that such a command never reads.
    pub(crate) fn resolve_without_host(&self) -> Result<ClusterConfig> {
        let file = self.kubeadm_file()?;
        let mut flags = self.clone();
        if flags.signer.node_name.is_none() && file.as_ref().is_none_or(|k| k.node_name.is_none()) {
            flags.signer.node_name = Some("localhost".into());
        }
        if flags.endpoint.apiserver_advertise_address.is_none()
            && file.as_ref().is_none_or(|k| k.advertise_address.is_none())
        {
            flags.endpoint.apiserver_advertise_address = Some(IpAddr::from([0, 0, 0, 0]));
        }
        flags.resolve()
    }

    /// Defaults, then the config file, then the flags; validated.
    pub(crate) fn resolve(&self) -> Result<ClusterConfig> {
        let file = match &self.signer.config {
            Some(path) => Some(KubeadmConfig::read(path)?),
            None => None,
        };
        let mut cfg = ClusterConfig::new(String::new(), IpAddr::from([0, 0, 0, 0]));
        if let Some(file) = &file {
            file.apply_to(&mut cfg);
            cfg.cert_dir = absolute(cfg.cert_dir)?;
        }
        let from_file = |f: fn(&KubeadmConfig) -> bool| file.as_ref().is_some_and(f);
        if let Some(v) = &self.signer.cert_dir {
            cfg.cert_dir = v.clone();
        }
        if let Some(v) = &self.kubeconfigs.kubeconfig_dir {
            cfg.kubeconfig_dir = v.clone();
        }
        cfg.node_name = match (&self.signer.node_name, from_file(|k| k.node_name.is_some())) {
            (Some(n), _) => n.clone(),
            (None, true) => cfg.node_name,
            (None, false) => host_name()?,
        };
        cfg.advertise_address =
            match (self.endpoint.apiserver_advertise_address, from_file(|k| k.advertise_address.is_some())) {
                (Some(a), _) => a,
                (None, true) => cfg.advertise_address,
                (None, false) => default_route_address()?,
            };
        if let Some(v) = self.endpoint.apiserver_bind_port {
            cfg.bind_port = v;
        }
        if let Some(v) = &self.endpoint.control_plane_endpoint {
            cfg.control_plane_endpoint = Some(v.clone());
        }
        if let Some(v) = &self.sans.apiserver_cert_extra_sans {
            cfg.apiserver_cert_sans = v.clone();
        }
        if let Some(v) = &self.sans.etcd_server_cert_extra_sans {
            cfg.etcd_server_cert_sans = v.clone();
        }
        if let Some(v) = &self.sans.etcd_peer_cert_extra_sans {
            cfg.etcd_peer_cert_sans = v.clone();
        }
        if let Some(v) = &self.sans.service_cidr {
            cfg.service_subnet = v.clone();
        }
        if let Some(v) = &self.sans.service_dns_domain {
            cfg.dns_domain = v.clone();
        }
        if let Some(v) = &self.endpoint.cluster_name {
            cfg.cluster_name = v.clone();
        }
        if let Some(v) = &self.signer.encryption_algorithm {
            cfg.encryption_algorithm = v.parse::<KeyAlgorithm>()?;
        } else if file.is_none() {
            cfg.encryption_algorithm = KeyAlgorithm::EcdsaP256;
        }
        if let Some(v) = &self.signer.cert_validity {
            cfg.cert_validity = v.parse::<Lifetime>().context("--cert-validity")?;
        }
        if let Some(v) = &self.signer.ca_validity {
            cfg.ca_validity = v.parse::<Lifetime>().context("--ca-validity")?;
        }
        cfg.external_etcd |= self.sans.external_etcd;
        if cfg.cert_validity > cfg.ca_validity {
            bail!(coded(
                INPUT,
                anyhow::anyhow!(
                    "the certificate validity ({}) is longer than the CA validity ({}): a leaf never outlives its CA",
                    cfg.cert_validity,
                    cfg.ca_validity
                )
            ));
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

/// A path flag's value made absolute against the working directory (lexically: `..` and
/// symbolic links are kept, as the user wrote them), so that every path kubepki records — the
/// audit log, `-o json`, `$KUBEPKI_BACKUP_DIR`, hooks' environment — means the same file from
/// any directory.
pub(crate) fn absolute_path(value: &str) -> std::result::Result<PathBuf, String> {
    if value.is_empty() {
        return Err("an empty path".into());
    }
    std::path::absolute(value).map_err(|e| format!("cannot make {value} absolute: {e}"))
}

/// [`absolute_path`] for a path read from a file.
fn absolute(path: PathBuf) -> Result<PathBuf> {
    std::path::absolute(&path).with_context(|| format!("cannot make {} absolute", path.display()))
}

/// The host name, lowercased, as kubeadm's default node name.
fn host_name() -> Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .context("could not read the host name; pass --node-name")?;
    Ok(name.trim().to_lowercase())
}

/// The local address of the default route (no packet is sent: connecting a UDP socket only
/// picks the route), as kubeadm picks the advertise address.
fn default_route_address() -> Result<IpAddr> {
    for target in ["8.8.8.8:53", "[2001:4860:4860::8888]:53"] {
        let bind = if target.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" };
        if let Ok(addr) = UdpSocket::bind(bind).and_then(|s| s.connect(target).and_then(|()| s.local_addr()))
            && !addr.ip().is_unspecified()
            && !addr.ip().is_loopback()
        {
            return Ok(addr.ip());
        }
    }
    bail!(coded(
        INPUT,
        anyhow::anyhow!(
            "could not find this host's address from its default route; pass --apiserver-advertise-address"
        )
    ))
}
