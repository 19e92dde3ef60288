//! Everything that keeps a kubeadm-layout PKI alive: the inventory of every certificate a
//! cluster trusts, expiry policy, rotation plans and their execution, mutual-TLS verification
//! of live endpoints, and Kubernetes Secrets as a source and a sink.
//!
//! It sits on `kubepki-pki` (the CA model, no network) as kube-runtime sits on kube-core.
//! Its modules are the capabilities users name, layered one way (docs/architecture.md):
//!
//! | layer | modules | may use |
//! |-------|---------|---------|
//! | 0 | [`text`], [`runtime`], `error` | `kubepki-pki` |
//! | 1 | [`verify`] | layer 0 |
//! | 2 | [`inventory`] | layers 0–1 |
//! | 3 | [`check`], [`tree`], [`node_audit`] | layers 0–2 |
//! | 4 | [`rotation`] | layers 0–3 |
//! | 5 | [`ca_rotation`], [`sa_rotation`] | layers 0–4 |
//! | 6 | [`recover`] | layers 0–5 |
#![deny(missing_docs)]

#[cfg(feature = "live")]
pub mod ca_rotation;
pub mod check;
mod error;
pub mod inventory;
pub mod node_audit;
#[cfg(feature = "live")]
pub mod recover;
#[cfg(feature = "live")]
pub mod rotation;
#[cfg(feature = "live")]
pub mod runtime;
#[cfg(feature = "live")]
pub mod sa_rotation;
pub mod text;
pub mod tree;
#[cfg(feature = "live")]
pub mod verify;

pub use error::{Error, Result};
#[cfg(feature = "live")]
pub use rotation::{RotateReport, RotateRequest, rotate, rotate_observed};
