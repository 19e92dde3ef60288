//! The Kubernetes cluster CA model: kubeadm's PKI, exactly.
//!
//! This crate knows kubeadm's certificate profiles ([`profile`]), derives their subjects and
//! SANs from a [`ClusterConfig`], issues certificates with kubeadm's extensions ([`issue`]),
//! reads existing certificates, keys and kubeconfigs (including kubeadm's PKCS#1 and SEC 1
//! keys), and writes the cert dir in kubeadm's layout through a crash-safe transaction
//! ([`fsio`]). It does no networking.
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

pub mod bootstrap;
pub mod ca;
pub mod cert;
pub mod cluster;
pub mod csr;
mod der;
mod error;
pub mod fsio;
pub mod issue;
pub mod key;
pub mod kubeadm_config;
pub mod kubeconfig;
pub mod lock;
pub mod node;
pub mod paths;
pub mod pem;
mod pkcs8;
pub mod profile;
pub mod progress;
pub mod sa;
pub mod san;
pub mod store;
pub mod validity;
mod x509;

pub use bootstrap::{InitOptions, InitReport, init};
pub use ca::{CertificateAuthority, SigningCa};
pub use cert::{Certificate, Subject};
pub use cluster::ClusterConfig;
pub use error::{Error, Result};
pub use issue::{CertRequest, Signer};
pub use key::{KeyAlgorithm, PrivateKey};
pub use kubeadm_config::KubeadmConfig;
pub use kubeconfig::Kubeconfig;
pub use profile::{CaKind, KubeconfigKind, Profile, ProfileSpec, Usage};
pub use san::AltNames;
pub use store::PkiDir;
/// The time type of certificate validity (re-exported from `time`).
pub use time::OffsetDateTime;
pub use validity::{Lifetime, Validity};
