//! kubeadm's certificate profiles as data: one table of names, files, issuers, subjects,
//! usages and SAN rules (kubeadm's `certlist.go` and kubeconfig phase).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// One of the three cluster CAs.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum CaKind {
    /// `ca`: the cluster CA (`ca.crt`, CN `kubernetes`), signing the API server, kubelets,
    /// kubeconfig clients and the API server's kubelet client.
    Ca,
    /// `etcd-ca`: etcd's own CA (`etcd/ca.crt`, CN `etcd-ca`).
    EtcdCa,
    /// `front-proxy-ca`: the aggregation-layer CA (`front-proxy-ca.crt`, CN `front-proxy-ca`).
    FrontProxyCa,
}

impl CaKind {
    /// The CAs in kubeadm's creation order.
    pub const ALL: [Self; 3] = [Self::Ca, Self::FrontProxyCa, Self::EtcdCa];

    /// kubeadm's name: `ca`, `front-proxy-ca` or `etcd-ca`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ca => "ca",
            Self::EtcdCa => "etcd-ca",
            Self::FrontProxyCa => "front-proxy-ca",
        }
    }

    /// The file stem under the cert dir: `ca`, `front-proxy-ca` or `etcd/ca`.
    pub fn base_name(self) -> &'static str {
        match self {
            Self::Ca => "ca",
            Self::EtcdCa => "etcd/ca",
            Self::FrontProxyCa => "front-proxy-ca",
        }
    }

    /// The subject CN (also the CA's single DNS SAN).
    pub fn common_name(self) -> &'static str {
        match self {
            Self::Ca => "kubernetes",
            Self::EtcdCa => "etcd-ca",
            Self::FrontProxyCa => "front-proxy-ca",
        }
    }

    /// kubeadm's long description.
    pub fn long_name(self) -> &'static str {
        match self {
            Self::Ca => "self-signed Kubernetes CA to provision identities for other Kubernetes components",
            Self::EtcdCa => "self-signed CA to provision identities for etcd",
            Self::FrontProxyCa => "self-signed CA to provision identities for front proxy",
        }
    }
}

impl fmt::Display for CaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CaKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| Error::InvalidValue {
            field: "CA",
            value: s.to_owned(),
            reason: "expected ca, front-proxy-ca or etcd-ca".into(),
        })
    }
}

/// The extended key usages a profile carries.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum Usage {
    /// clientAuth only.
    Client,
    /// serverAuth only.
    Server,
    /// serverAuth and clientAuth (etcd server and peer: etcd 3.2+ dials itself).
    ServerAndClient,
}

impl Usage {
    /// Whether serverAuth is present.
    pub fn server_auth(self) -> bool {
        matches!(self, Self::Server | Self::ServerAndClient)
    }

    /// Whether clientAuth is present.
    pub fn client_auth(self) -> bool {
        matches!(self, Self::Client | Self::ServerAndClient)
    }

    /// From the two EKU bits of an existing certificate; `None` if neither is set.
    pub fn from_flags(server_auth: bool, client_auth: bool) -> Option<Self> {
        match (server_auth, client_auth) {
            (true, true) => Some(Self::ServerAndClient),
            (true, false) => Some(Self::Server),
            (false, true) => Some(Self::Client),
            (false, false) => None,
        }
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Client => "clientAuth",
            Self::Server => "serverAuth",
            Self::ServerAndClient => "serverAuth, clientAuth",
        })
    }
}

/// Where a profile's subject CN comes from.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum CommonName {
    /// A fixed name.
    Fixed(&'static str),
    /// The node name (`nodeRegistration.name`): etcd server and peer.
    NodeName,
    /// `system:node:<node name>`: the kubelet's identity.
    NodeUser,
}

/// Which SAN rule of kubeadm's `pkiutil` a profile follows.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum SanRule {
    /// No SAN extension (client certificates).
    None,
    /// `GetAPIServerAltNames`: node name, the `kubernetes` Service names, the Service IP, the
    /// advertise address, the control-plane endpoint host and `apiServer.certSANs`.
    ApiServer,
    /// `GetEtcdAltNames`: node name, localhost, advertise address, 127.0.0.1, ::1 and
    /// `etcd.local.serverCertSANs`.
    EtcdServer,
    /// `GetEtcdPeerAltNames`: as the server, with `etcd.local.peerCertSANs`.
    EtcdPeer,
    /// The node's own names and addresses (a kubelet serving certificate).
    Node,
}

/// A leaf certificate in the cert dir, by kubeadm's name.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum Profile {
    /// `apiserver`.
    ApiServer,
    /// `apiserver-etcd-client`.
    ApiServerEtcdClient,
    /// `apiserver-kubelet-client`.
    ApiServerKubeletClient,
    /// `etcd-healthcheck-client`.
    EtcdHealthcheckClient,
    /// `etcd-peer`.
    EtcdPeer,
    /// `etcd-server`.
    EtcdServer,
    /// `front-proxy-client`.
    FrontProxyClient,
}

/// The specification of a certificate profile: one row of kubeadm's certificate list.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct ProfileSpec {
    /// kubeadm's name, as `kubeadm certs renew <name>` takes it.
    pub name: &'static str,
    /// kubeadm's long description.
    pub long_name: &'static str,
    /// File stem under the cert dir (`apiserver`, `etcd/server`).
    pub base_name: &'static str,
    /// The signing CA.
    pub ca: CaKind,
    /// The subject CN.
    pub common_name: CommonName,
    /// The subject O values (Kubernetes groups).
    pub organizations: &'static [&'static str],
    /// Extended key usages.
    pub usage: Usage,
    /// How SANs are derived.
    pub sans: SanRule,
}

/// kubeadm's group for admin.conf and the API server's kubelet client since the super-admin
/// split; bound to ClusterRole `cluster-admin` by ClusterRoleBinding `kubeadm:cluster-admins`.
pub const CLUSTER_ADMINS_GROUP: &str = "kubeadm:cluster-admins";
/// The group that bypasses RBAC; only super-admin.conf carries it.
pub const SYSTEM_MASTERS_GROUP: &str = "system:masters";
/// The kubelets' group.
pub const NODES_GROUP: &str = "system:nodes";

/// The cert-dir leaves, in kubeadm's `GetDefaultCertList` order.
pub const LEAVES: [ProfileSpec; 7] = [
    ProfileSpec {
        name: "apiserver",
        long_name: "certificate for serving the Kubernetes API",
        base_name: "apiserver",
        ca: CaKind::Ca,
        common_name: CommonName::Fixed("kube-apiserver"),
        organizations: &[],
        usage: Usage::Server,
        sans: SanRule::ApiServer,
    },
    ProfileSpec {
        name: "apiserver-kubelet-client",
        long_name: "certificate for the API server to connect to kubelet",
        base_name: "apiserver-kubelet-client",
        ca: CaKind::Ca,
        common_name: CommonName::Fixed("kube-apiserver-kubelet-client"),
        organizations: &[CLUSTER_ADMINS_GROUP],
        usage: Usage::Client,
        sans: SanRule::None,
    },
    ProfileSpec {
        name: "front-proxy-client",
        long_name: "certificate for the front proxy client",
        base_name: "front-proxy-client",
        ca: CaKind::FrontProxyCa,
        common_name: CommonName::Fixed("front-proxy-client"),
        organizations: &[],
        usage: Usage::Client,
        sans: SanRule::None,
    },
    ProfileSpec {
        name: "etcd-server",
        long_name: "certificate for serving etcd",
        base_name: "etcd/server",
        ca: CaKind::EtcdCa,
        common_name: CommonName::NodeName,
        organizations: &[],
        usage: Usage::ServerAndClient,
        sans: SanRule::EtcdServer,
    },
    ProfileSpec {
        name: "etcd-peer",
        long_name: "certificate for etcd nodes to communicate with each other",
        base_name: "etcd/peer",
        ca: CaKind::EtcdCa,
        common_name: CommonName::NodeName,
        organizations: &[],
        usage: Usage::ServerAndClient,
        sans: SanRule::EtcdPeer,
    },
    ProfileSpec {
        name: "etcd-healthcheck-client",
        long_name: "certificate for liveness probes to healthcheck etcd",
        base_name: "etcd/healthcheck-client",
        ca: CaKind::EtcdCa,
        common_name: CommonName::Fixed("kube-etcd-healthcheck-client"),
        organizations: &[],
        usage: Usage::Client,
        sans: SanRule::None,
    },
    ProfileSpec {
        name: "apiserver-etcd-client",
        long_name: "certificate the apiserver uses to access etcd",
        base_name: "apiserver-etcd-client",
        ca: CaKind::EtcdCa,
        common_name: CommonName::Fixed("kube-apiserver-etcd-client"),
        organizations: &[],
        usage: Usage::Client,
        sans: SanRule::None,
    },
];

/// The kubelet's client certificate (`system:node:<name>` in `system:nodes`), as in kubelet.conf
/// and as the kubelet's own CSRs ask for.
pub const KUBELET_CLIENT: ProfileSpec = ProfileSpec {
    name: "kubelet-client",
    long_name: "certificate the kubelet uses to authenticate to the API server",
    base_name: "kubelet-client",
    ca: CaKind::Ca,
    common_name: CommonName::NodeUser,
    organizations: &[NODES_GROUP],
    usage: Usage::Client,
    sans: SanRule::None,
};

/// The kubelet's serving certificate for :10250, signed by the cluster CA (what
/// `serverTLSBootstrap: true` obtains through the `kubernetes.io/kubelet-serving` signer), with
/// the node's names and addresses.
pub const KUBELET_SERVING: ProfileSpec = ProfileSpec {
    name: "kubelet-serving",
    long_name: "certificate the kubelet serves its API with",
    base_name: "kubelet",
    ca: CaKind::Ca,
    common_name: CommonName::NodeUser,
    organizations: &[NODES_GROUP],
    usage: Usage::Server,
    sans: SanRule::Node,
};

impl Profile {
    /// Every cert-dir leaf, in kubeadm's order.
    pub const ALL: [Self; 7] = [
        Self::ApiServer,
        Self::ApiServerKubeletClient,
        Self::FrontProxyClient,
        Self::EtcdServer,
        Self::EtcdPeer,
        Self::EtcdHealthcheckClient,
        Self::ApiServerEtcdClient,
    ];

    /// The profile's row of the table.
    pub fn spec(self) -> &'static ProfileSpec {
        &LEAVES[match self {
            Self::ApiServer => 0,
            Self::ApiServerKubeletClient => 1,
            Self::FrontProxyClient => 2,
            Self::EtcdServer => 3,
            Self::EtcdPeer => 4,
            Self::EtcdHealthcheckClient => 5,
            Self::ApiServerEtcdClient => 6,
        }]
    }

    /// kubeadm's name.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Whether the profile belongs to local etcd (absent with external etcd).
    pub fn is_etcd(self) -> bool {
        self.spec().ca == CaKind::EtcdCa
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| Error::InvalidValue {
            field: "certificate name",
            value: s.to_owned(),
            reason: format!("expected one of {}", Self::ALL.map(Self::name).join(", ")),
        })
    }
}

/// Which API server address a kubeconfig points at.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Endpoint {
    /// The control-plane endpoint (the load balancer, or the advertise address without one).
    ControlPlane,
    /// This node's own API server (`https://<advertise address>:<bind port>`).
    Local,
}

/// One of the kubeconfig files kubeadm writes into `/etc/kubernetes`.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum KubeconfigKind {
    /// `admin.conf`.
    Admin,
    /// `controller-manager.conf`.
    ControllerManager,
    /// `kubelet.conf`.
    Kubelet,
    /// `scheduler.conf`.
    Scheduler,
    /// `super-admin.conf`.
    SuperAdmin,
}

/// The specification of a kubeconfig file.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct KubeconfigSpec {
    /// Which file.
    pub kind: KubeconfigKind,
    /// The file name, which is also kubeadm's certificate name for it (`admin.conf`).
    pub file_name: &'static str,
    /// kubeadm's long description.
    pub long_name: &'static str,
    /// The client certificate's CN, which is also the kubeconfig user name.
    pub common_name: CommonName,
    /// The client certificate's O values.
    pub organizations: &'static [&'static str],
    /// The server URL the file points at.
    pub endpoint: Endpoint,
}

/// The kubeconfigs, in kubeadm's creation order.
pub const KUBECONFIGS: [KubeconfigSpec; 5] = [
    KubeconfigSpec {
        kind: KubeconfigKind::Admin,
        file_name: "admin.conf",
        long_name: "certificate embedded in the kubeconfig file for the admin to use and for kubeadm itself",
        common_name: CommonName::Fixed("kubernetes-admin"),
        organizations: &[CLUSTER_ADMINS_GROUP],
        endpoint: Endpoint::ControlPlane,
    },
    KubeconfigSpec {
        kind: KubeconfigKind::SuperAdmin,
        file_name: "super-admin.conf",
        long_name: "certificate embedded in the kubeconfig file for the super-admin",
        common_name: CommonName::Fixed("kubernetes-super-admin"),
        organizations: &[SYSTEM_MASTERS_GROUP],
        endpoint: Endpoint::ControlPlane,
    },
    KubeconfigSpec {
        kind: KubeconfigKind::Kubelet,
        file_name: "kubelet.conf",
        long_name: "certificate embedded in the kubeconfig file for the kubelet to use",
        common_name: CommonName::NodeUser,
        organizations: &[NODES_GROUP],
        endpoint: Endpoint::ControlPlane,
    },
    KubeconfigSpec {
        kind: KubeconfigKind::ControllerManager,
        file_name: "controller-manager.conf",
        long_name: "certificate embedded in the kubeconfig file for the controller manager to use",
        common_name: CommonName::Fixed("system:kube-controller-manager"),
        organizations: &[],
        endpoint: Endpoint::Local,
    },
    KubeconfigSpec {
        kind: KubeconfigKind::Scheduler,
        file_name: "scheduler.conf",
        long_name: "certificate embedded in the kubeconfig file for the scheduler manager to use",
        common_name: CommonName::Fixed("system:kube-scheduler"),
        organizations: &[],
        endpoint: Endpoint::Local,
    },
];

impl KubeconfigKind {
    /// Every kubeconfig, in kubeadm's order.
    pub const ALL: [Self; 5] = [Self::Admin, Self::SuperAdmin, Self::Kubelet, Self::ControllerManager, Self::Scheduler];

    /// The file's row of the table.
    pub fn spec(self) -> &'static KubeconfigSpec {
        &KUBECONFIGS[match self {
            Self::Admin => 0,
            Self::SuperAdmin => 1,
            Self::Kubelet => 2,
            Self::ControllerManager => 3,
            Self::Scheduler => 4,
        }]
    }

    /// The file name, e.g. `admin.conf`.
    pub fn file_name(self) -> &'static str {
        self.spec().file_name
    }
}

impl CommonName {
    /// The CN for a node called `node_name`.
    pub fn resolve(self, node_name: &str) -> String {
        match self {
            Self::Fixed(cn) => cn.to_owned(),
            Self::NodeName => node_name.to_owned(),
            Self::NodeUser => format!("system:node:{node_name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_table_rows_are_in_enum_order() {
        for (i, p) in Profile::ALL.iter().enumerate() {
            assert_eq!(p.spec(), &LEAVES[i]);
            assert_eq!(p.name().parse::<Profile>().unwrap(), *p);
        }
        for (i, k) in KubeconfigKind::ALL.iter().enumerate() {
            assert_eq!(k.spec().kind, *k);
            assert_eq!(k.spec(), &KUBECONFIGS[i]);
        }
    }

    /// kubeadm-pki.md §1.2: names, files, issuers, subjects and EKUs of the current certlist.
    #[test]
    fn leaves_match_kubeadm_certlist() {
        let row = |name: &str| LEAVES.iter().find(|s| s.name == name).unwrap();
        let a = row("apiserver");
        assert_eq!(
            (a.base_name, a.ca, a.common_name, a.usage),
            ("apiserver", CaKind::Ca, CommonName::Fixed("kube-apiserver"), Usage::Server)
        );
        let k = row("apiserver-kubelet-client");
        assert_eq!(
            (k.common_name, k.organizations, k.usage),
            (CommonName::Fixed("kube-apiserver-kubelet-client"), &["kubeadm:cluster-admins"][..], Usage::Client)
        );
        let f = row("front-proxy-client");
        assert_eq!(
            (f.ca, f.common_name, f.organizations.len()),
            (CaKind::FrontProxyCa, CommonName::Fixed("front-proxy-client"), 0)
        );
        let s = row("etcd-server");
        assert_eq!(
            (s.base_name, s.ca, s.common_name, s.usage),
            ("etcd/server", CaKind::EtcdCa, CommonName::NodeName, Usage::ServerAndClient)
        );
        let p = row("etcd-peer");
        assert_eq!(
            (p.base_name, p.common_name, p.usage, p.sans),
            ("etcd/peer", CommonName::NodeName, Usage::ServerAndClient, SanRule::EtcdPeer)
        );
        let h = row("etcd-healthcheck-client");
        assert_eq!(
            (h.base_name, h.common_name, h.organizations.len()),
            ("etcd/healthcheck-client", CommonName::Fixed("kube-etcd-healthcheck-client"), 0)
        );
        let e = row("apiserver-etcd-client");
        assert_eq!(
            (e.base_name, e.ca, e.common_name, e.organizations.len()),
            ("apiserver-etcd-client", CaKind::EtcdCa, CommonName::Fixed("kube-apiserver-etcd-client"), 0)
        );
        assert!(LEAVES.iter().filter(|s| s.organizations.contains(&SYSTEM_MASTERS_GROUP)).count() == 0);
    }

    #[test]
    fn cas_match_kubeadm() {
        let got: Vec<_> = CaKind::ALL.iter().map(|c| (c.name(), c.base_name(), c.common_name())).collect();
        assert_eq!(
            got,
            [
                ("ca", "ca", "kubernetes"),
                ("front-proxy-ca", "front-proxy-ca", "front-proxy-ca"),
                ("etcd-ca", "etcd/ca", "etcd-ca")
            ]
        );
    }

    /// kubeadm-pki.md §2.1: only super-admin.conf is in system:masters.
    #[test]
    fn kubeconfigs_match_kubeadm() {
        let got: Vec<_> = KUBECONFIGS
            .iter()
            .map(|k| (k.file_name, k.common_name.resolve("cp1"), k.organizations.first().copied(), k.endpoint))
            .collect();
        assert_eq!(
            got,
            [
                ("admin.conf", "kubernetes-admin".to_owned(), Some("kubeadm:cluster-admins"), Endpoint::ControlPlane),
                (
                    "super-admin.conf",
                    "kubernetes-super-admin".to_owned(),
                    Some("system:masters"),
                    Endpoint::ControlPlane
                ),
                ("kubelet.conf", "system:node:cp1".to_owned(), Some("system:nodes"), Endpoint::ControlPlane),
                ("controller-manager.conf", "system:kube-controller-manager".to_owned(), None, Endpoint::Local),
                ("scheduler.conf", "system:kube-scheduler".to_owned(), None, Endpoint::Local),
            ]
        );
    }
}
