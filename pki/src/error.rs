//! The one error type of the pki crate.

use std::io;
use std::path::PathBuf;

use time::OffsetDateTime;

/// Everything that can go wrong while building, loading or writing a cluster PKI.
///
/// Messages are lowercase, name the file or value at fault, and never contain key material.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("failed to read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// A file or directory could not be written.
    #[error("failed to write {}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// A file is larger than anything of its kind can sanely be; it was not read whole.
    #[error("{} is {size} bytes, more than the {limit} bytes a {what} may have", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What the file was expected to hold.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// A symbolic link points at nothing.
    #[error("{} is a dangling symbolic link (to {})", path.display(), target.display())]
    DanglingSymlink {
        /// The link.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
    },

    /// A path that should be a regular file is something else (a directory, a socket, ...).
    #[error("{} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },

    /// A certificate could not be decoded.
    #[error("{source_name}: {reason}")]
    InvalidCertificate {
        /// The file (or other source) it came from.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A certificate signing request could not be decoded, or its self-signature does not
    /// verify.
    #[error("{source_name}: {reason}")]
    InvalidCsr {
        /// The file (or other source) it came from.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A private key could not be decoded, or is of an unsupported type.
    #[error("{source_name}: {reason}")]
    InvalidKey {
        /// The file (or other source) it came from.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A private key does not belong to the certificate it is paired with.
    #[error("{key} does not match the public key of {cert}")]
    KeyMismatch {
        /// The key's source.
        key: String,
        /// The certificate's source.
        cert: String,
    },

    /// A certificate that must be a CA is not one.
    #[error("{source_name} is not a CA certificate (basicConstraints CA:TRUE is missing)")]
    NotCa {
        /// The certificate's source.
        source_name: String,
    },

    /// A certificate is not signed by the CA it should chain to.
    #[error("{cert} is not signed by the CA in {ca}: {reason}")]
    NotSignedBy {
        /// The certificate's source.
        cert: String,
        /// The CA's source.
        ca: String,
        /// Why verification failed.
        reason: String,
    },

    /// The CA that would sign has expired.
    #[error("{ca} expired at {not_after}; it cannot sign — rotate the CA (kubepki rotate-ca) first")]
    CaExpired {
        /// The CA's name.
        ca: String,
        /// Its NotAfter.
        not_after: OffsetDateTime,
    },

    /// A leaf would be valid beyond the NotAfter of the CA that signs it.
    #[error(
        "{name} would expire {not_after}, after its CA {ca} ({ca_not_after}); \
         shorten the validity or rotate the CA first"
    )]
    OutlivesCa {
        /// The certificate's name.
        name: String,
        /// The leaf's requested NotAfter.
        not_after: OffsetDateTime,
        /// The CA's name.
        ca: String,
        /// The CA's NotAfter.
        ca_not_after: OffsetDateTime,
    },

    /// An existing certificate does not match what the configuration asks for.
    #[error("{} exists but {difference}; remove it or use `kubepki rotate` to reissue it", path.display())]
    ExistingMismatch {
        /// The certificate file.
        path: PathBuf,
        /// A description of the difference.
        difference: String,
    },

    /// A joining control-plane node already has a shared file (a CA, a service-account key)
    /// that is not the first node's.
    #[error(
        "{} is not {}: a control-plane node shares the first node's CAs and service-account keys (is this node \
         of another cluster, or the copy of another cluster's node?)",
        path.display(), shared.display()
    )]
    NotShared {
        /// This node's file.
        path: PathBuf,
        /// The first node's.
        shared: PathBuf,
    },

    /// An input file or directory the command needs does not exist (an input error: nothing
    /// was changed).
    #[error("{}: {what} does not exist ({fix})", path.display())]
    Missing {
        /// The file or directory.
        path: PathBuf,
        /// What it is (`the cert dir`, `the configuration file`).
        what: &'static str,
        /// What to do about it.
        fix: String,
    },

    /// Half of a certificate/key pair exists on disk.
    #[error("{} exists but {} does not; a certificate and its key are only used together", present.display(), missing.display())]
    HalfPair {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },

    /// A CA's key is absent (external CA mode) and something that needs it was asked for.
    #[error("{name} cannot be issued: {ca} is externally managed (its key {} is absent)", key.display())]
    ExternalCa {
        /// What was to be issued.
        name: String,
        /// The CA's name.
        ca: String,
        /// The absent key file.
        key: PathBuf,
    },

    /// A configuration value (flag or config file field) is invalid.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidValue {
        /// The flag or field.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is invalid.
        reason: String,
    },

    /// A kubeadm configuration file could not be used.
    #[error("{}: {reason}", path.display())]
    KubeadmConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A kubeconfig could not be parsed or does not have what is needed.
    #[error("{source_name}: {reason}")]
    Kubeconfig {
        /// The file (or other source).
        source_name: String,
        /// What is wrong.
        reason: String,
    },

    /// Key generation or signing failed inside the crypto library.
    #[error("failed to {action}")]
    Crypto {
        /// What was being done.
        action: String,
        /// The library's error.
        #[source]
        source: rcgen::Error,
    },

    /// Another kubepki process holds the cert dir's lock.
    #[error(
        "{} is locked by another kubepki process; gave up after {waited_secs}s \
         (raise --lock-timeout to wait longer)",
        path.display()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited_secs: u64,
    },

    /// A file is readable by others although it holds a private key.
    #[error(
        "{} has mode {mode:04o}: a private key must not be readable by group or others \
         (chmod 600 it, or pass --allow-insecure-permissions)",
        path.display()
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
}

/// The pki crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
