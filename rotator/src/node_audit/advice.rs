//! The advice the checks refer to: the points of "Securing Cluster Communications" (a
//! Certified Kubernetes Administrator course) that a node's configuration can contradict, and
//! the file conventions of kubeadm's PKI that keep the credentials it speaks of private.

use serde_json::{Value, json};

/// A point of the advice.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum Advice {
    /// TLS is the default for cluster communications, but some components may open local
    /// ports over plain HTTP: check them.
    Tls,
    /// Everything that connects to the API server is authenticated.
    Authentication,
    /// Every API call passes an authorization check; RBAC decides who may do what.
    Authorization,
    /// Role-based access control: users get only the rights they need (and `system:masters`
    /// bypasses it).
    Rbac,
    /// Secure the kubelet: authentication and authorization on its HTTPS endpoints, no
    /// anonymous access, an x509 client CA.
    Kubelet,
    /// etcd is the whole cluster's state: strong credentials, reachable only by the API
    /// servers.
    Etcd,
    /// Enable audit logging and archive the log on a secure server.
    AuditLogging,
    /// Rotate infrastructure credentials frequently, with short lifetimes.
    Rotation,
    /// Private keys are readable by their owner only, and CA keys live only on control-plane
    /// nodes (kubeadm's PKI layout).
    KeyProtection,
}

impl Advice {
    /// Every point, in the order of the source.
    pub const ALL: [Self; 9] = [
        Self::Tls,
        Self::Authentication,
        Self::Authorization,
        Self::Rbac,
        Self::Kubelet,
        Self::Etcd,
        Self::AuditLogging,
        Self::Rotation,
        Self::KeyProtection,
    ];

    /// A stable identifier: `tls`, `authentication`, `authorization`, `rbac`, `kubelet`,
    /// `etcd`, `audit-logging`, `rotation`, `key-protection`.
    pub fn id(self) -> &'static str {
        match self {
            Self::Tls => "tls",
            Self::Authentication => "authentication",
            Self::Authorization => "authorization",
            Self::Rbac => "rbac",
            Self::Kubelet => "kubelet",
            Self::Etcd => "etcd",
            Self::AuditLogging => "audit-logging",
            Self::Rotation => "rotation",
            Self::KeyProtection => "key-protection",
        }
    }

    /// Where the advice comes from: the section of the source.
    pub fn source(self) -> &'static str {
        match self {
            Self::Tls | Self::Authentication | Self::Authorization => {
                "Securing Cluster Communications: Cluster Communications"
            }
            Self::Rbac => "Securing Cluster Communications: Role-Based Access Control",
            Self::Kubelet => "Securing Cluster Communications: Securing the Kubelet",
            Self::Etcd | Self::AuditLogging | Self::Rotation => "Securing Cluster Communications: Vulnerabilities",
            Self::KeyProtection => "kubeadm's PKI layout: file modes and where CA keys live",
        }
    }

    /// The advice, in a sentence.
    pub fn text(self) -> &'static str {
        match self {
            Self::Tls => {
                "The default encryption for communication in Kubernetes is TLS, but some components may enable \
                 local ports over HTTP: double check their settings to find unsecured traffic."
            }
            Self::Authentication => {
                "Anything that connects to the API — nodes, proxies, the scheduler, volume plugins and users — \
                 should be authenticated."
            }
            Self::Authorization => "Once authenticated, every API call should pass an authorization check.",
            Self::Rbac => {
                "Carefully consider what users are allowed to do; roles grant specific actions (system:masters \
                 bypasses every role)."
            }
            Self::Kubelet => {
                "Secure the kubelet on each node: its HTTPS endpoints give access to data and actions on the node; \
                 enable kubelet authentication and authorization (--anonymous-auth=false) with an x509 client \
                 certificate authority."
            }
            Self::Etcd => {
                "Write access to etcd is like root on the whole cluster, and even read access is damaging: strong \
                 credentials on etcd are a must, and only the API servers should reach it."
            }
            Self::AuditLogging => {
                "Audit logging is critical: it records the actions taken through the API for later analysis; \
                 enable it and archive the audit file on a secure server."
            }
            Self::Rotation => {
                "Rotate infrastructure credentials frequently: smaller lifetime windows for secrets and \
                 credentials create bigger problems for attackers trying to use them."
            }
            Self::KeyProtection => {
                "A private key is the credential: kubeadm writes keys readable by root only (0600), and a CA key \
                 signs any identity, so it belongs on control-plane nodes only."
            }
        }
    }

    /// `{"id", "source", "text"}`.
    pub fn to_json(self) -> Value {
        json!({"id": self.id(), "source": self.source(), "text": self.text()})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_kebab_case() {
        let mut ids: Vec<&str> = Advice::ALL.iter().map(|a| a.id()).collect();
        assert!(ids.iter().all(|id| id.chars().all(|c| c.is_ascii_lowercase() || c == '-')));
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Advice::ALL.len());
    }
}
