//! Everything that keeps a kubeadm-layout PKI alive: the inventory of every certificate a
//! cluster trusts, expiry policy, rotation plans and their execution, mutual-TLS verification
//! of live endpoints, and Kubernetes Secrets as a source and a sink.
//!
//! It sits on `kubepki-pki` (the CA model, no network) as kube-runtime sits on kube-core.
#![deny(missing_docs)]

pub mod audit;
pub mod backup;
pub mod ca_rotation;
pub mod check;
pub mod cluster_phases;
mod discover;
pub mod endpoint;
mod error;
pub mod etcd_lock;
pub mod execute;
pub mod expiration;
pub mod external_ca;
pub mod hardening;
pub mod inventory;
pub mod phases;
pub mod plan;
pub mod policy;
pub mod prometheus;
pub mod recover;
pub mod restart;
pub mod rotation;
pub mod sa_keys;
pub mod sa_rotation;
pub mod scan;
pub mod secret_sink;
pub mod secrets;
mod tabwriter;
pub mod targets;
pub mod tree;
pub mod verify;

pub use error::{Error, Result};
pub use rotation::{RotateReport, RotateRequest, rotate, rotate_observed};
