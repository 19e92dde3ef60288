//! The Kubernetes cluster CA model: kubeadm's PKI, exactly.
//!
//! This crate knows kubeadm's certificate profiles ([`profiles`]), derives their subjects and
//! SANs from a [`ClusterConfig`], issues certificates with kubeadm's extensions ([`Signer`]),
//! reads existing certificates, keys and kubeconfigs (including kubeadm's PKCS#1 and SEC 1
//! keys), and writes the cert dir in kubeadm's layout through a crash-safe transaction
//! ([`fsio`]). It does no networking.
//!
//! Each item has one path. The types, and the functions that go with them, are at the crate
//! root; a few public modules are namespaces whose path is part of the name: [`fsio`],
//! [`lock`], [`node`], [`paths`], [`pem`], [`profiles`], [`progress`] and [`sa`]. The list
//! that ends this file is what the crate offers.
//!
//! ```
//! use kubepki_pki::{ClusterConfig, InitOptions, KeyAlgorithm};
//!
//! # fn main() -> Result<(), kubepki_pki::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let mut cfg = ClusterConfig::new("cp1", "192.168.0.10".parse().unwrap());
//! cfg.cert_dir = dir.path().join("pki");
//! cfg.kubeconfig_dir = dir.path().to_path_buf();
//! cfg.encryption_algorithm = KeyAlgorithm::EcdsaP256;
//!
//! let report = kubepki_pki::init(&cfg, &InitOptions::now())?;
//! assert!(dir.path().join("pki/etcd/server.crt").exists());
//! assert!(dir.path().join("admin.conf").exists());
//!
//! // A second run finds everything in place and writes nothing.
//! let again = kubepki_pki::init(&cfg, &InitOptions::now())?;
//! assert!(again.written.is_empty());
//! # let _ = report;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod bootstrap;
mod ca;
mod cert;
mod cluster;
mod csr;
mod der;
mod error;
pub mod fsio;
mod issue;
mod key;
mod kubeadm_config;
mod kubeconfig;
pub mod lock;
pub mod node;
pub mod paths;
pub mod pem;
mod pkcs8;
mod profile;
pub mod progress;
pub mod sa;
mod san;
mod store;
mod validity;
mod x509;

/// kubeadm's profiles table: every leaf certificate and kubeconfig kubeadm makes, and the
/// groups their subjects name. The types that describe a profile ([`ProfileSpec`],
/// [`KubeconfigSpec`], [`CaKind`], …) are at the crate root.
pub mod profiles {
    pub use crate::profile::{
        CLUSTER_ADMINS_GROUP, KUBECONFIGS, KUBELET_CLIENT, KUBELET_SERVING, LEAVES, NODES_GROUP, SYSTEM_MASTERS_GROUP,
    };
}

// What the crate offers at its root, by module.
// Setting up a cert dir: `kubepki init` and `kubepki certs`' building blocks.
pub use bootstrap::{
    Action, InitItem, InitOptions, InitReport, ItemKind, init, issue_leaf, join_control_plane, open_locked,
};
// The CA model: a CA read from disk, and one that signs.
pub use ca::{CertificateAuthority, SigningCa};
// Certificates read, and their parts.
pub use cert::{Certificate, Fingerprint, PublicKeyKind, Subject};
// The cluster a PKI is for, as kubeadm's configuration describes it.
pub use cluster::ClusterConfig;
pub use kubeadm_config::{KubeadmConfig, read_config_text};
// Requests for kubeadm's external-CA mode.
pub use csr::Csr;
// The one error type.
pub use error::{Error, Result};
// Issuing.
pub use issue::{CertRequest, Signer, extend_ca, random_serial, self_signed_ca};
// Keys.
pub use key::{KeyAlgorithm, PrivateKey};
// Kubeconfigs.
pub use kubeconfig::{ContextRef, Kubeconfig, PemSource};
// What a profile is (the table itself is `profiles`).
pub use profile::{CaKind, CommonName, Endpoint, KubeconfigKind, KubeconfigSpec, Profile, ProfileSpec, SanRule, Usage};
// Subject alternative names.
pub use san::{AltNames, first_service_ip, is_dns1123_subdomain};
// The cert dir in kubeadm's layout.
pub use store::{CERT_MODE, KEY_MODE, LoadedPair, PkiDir, read_certs, read_key};
/// The time type of certificate validity (re-exported from `time`).
pub use time::OffsetDateTime;
// Validity periods: kubeadm's lifetimes, its backdate, Go's durations.
pub use validity::{BACKDATE, Lifetime, Validity, backdate_of, original_lifetime, parse_duration};
