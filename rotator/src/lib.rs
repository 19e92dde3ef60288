//! Everything that keeps a kubeadm-layout PKI alive: the inventory of every certificate a
//! cluster trusts, expiry policy, rotation plans and their execution, mutual-TLS verification
//! of live endpoints, and Kubernetes Secrets as a source and a sink.
//!
//! It sits on `kubepki-pki` (the CA model, no network) as kube-runtime sits on kube-core.
#![deny(missing_docs)]

mod error;

pub use error::{Error, Result};
