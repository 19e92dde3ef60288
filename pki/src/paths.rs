//! kubeadm's default paths on a node, written once: every command's defaults, the inventory's
//! default sources, the node audit and the restart list take them from here.

/// The cert dir (`certificatesDir`).
pub const CERT_DIR: &str = "/etc/kubernetes/pki";
/// The kubeconfig dir: `admin.conf`, `kubelet.conf`, … and `manifests/`.
pub const KUBECONFIG_DIR: &str = "/etc/kubernetes";
/// The static pod manifests.
pub const MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";
/// The kubelet's PKI dir (`kubelet-client-current.pem`, `kubelet.crt`).
pub const KUBELET_PKI_DIR: &str = "/var/lib/kubelet/pki";
/// The kubelet's configuration file (`KubeletConfiguration`) as kubeadm writes it.
pub const KUBELET_CONFIG: &str = "/var/lib/kubelet/config.yaml";
