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
//!
//! What it offers, by module (each a namespace; the files inside a module are private unless
//! a command needs the module itself, and each type has one path):
//!
//! * [`inventory`]: `InventoryBuilder::discover(&Sources)` → `Inventory` of `Item`s with their
//!   `Location`s; `SaKeys`; Secrets and served chains as sources (`inventory::secrets`,
//!   `inventory::endpoint`).
//! * [`check`]: `evaluate(&Inventory, &ExpiryPolicy, at)`, the `Verdict`, and the outputs
//!   (`Document` for JSON, `check::kubeadm`, `check::prometheus`).
//! * [`tree`]: `Tree`, the trust tree. [`node_audit`]: `audit(&AuditOptions)`.
//! * [`verify`]: `verify`/`verify_blocking` of `Target`s.
//! * [`rotation`]: [`rotate`] and [`rotate_observed`] (`RotateRequest` → `RotateReport`), and
//!   the parts other commands share (`Hook`, `Verification`, `Changes`, `restart`, `phases`).
//! * [`ca_rotation`], [`sa_rotation`], [`recover`]: the phased rotations and recovery.
//! * [`text`]: `parse_time` (the one `--at` grammar), `rfc3339`, `Table` (the one table
//!   writer) and its palette `Tone`. [`runtime`]: the one tokio
//!   runtime.
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
