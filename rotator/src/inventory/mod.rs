//! The inventory: every certificate a cluster trusts, from every source, each with a precise,
//! typed [`Location`] — the input of `kubepki check` and of rotation.
//!
//! Building an inventory has two steps, in this order (the types enforce it):
//!
//! 1. **Discovery** reads the sources — [`InventoryBuilder::discover`] the local ones (cert
//!    dir, kubeconfigs, kubelet PKI, files), [`crate::inventory::secrets`] and [`crate::inventory::endpoint`] the
//!    network ones ([`InventoryBuilder::add`]). It parses every certificate once, checks keys
//!    against certificates, and records what could not be read as [`InputError`]s or as
//!    invalid items. Nothing is ever written.
//! 2. **Linking** ([`InventoryBuilder::finish`]) matches every certificate to the cert dir's
//!    CAs: the signing CA's name, whether it is externally managed, and the findings that need
//!    a CA (a broken chain, a leaf that outlives its CA, a stale CA copy in a kubeconfig).
//!
//! Judging the inventory against thresholds at a point in time is separate and pure
//! ([`crate::check`]).
//!
//! ```
//! use kubepki_rotator::inventory::{InventoryBuilder, SourcePath, Sources};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let sources = Sources { cert_dir: Some(SourcePath::explicit(dir.path())), ..Sources::default() };
//! let inventory = InventoryBuilder::discover(&sources).finish();
//! assert!(inventory.items.is_empty() && inventory.errors.is_empty());
//! ```

pub(crate) mod discover;
#[cfg(feature = "live")]
pub mod endpoint;
pub mod flags;
pub mod manifests;
mod root;
pub(crate) mod sa_keys;
pub mod scan;
#[cfg(feature = "live")]
pub mod secrets;

pub use root::resolve_under;
pub use sa_keys::{AgeSource, SaFile, SaFinding, SaKeys, SigningKey, TrustedKeys};

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use kubepki_pki::{CaKind, Certificate};
use rayon::prelude::*;
use time::OffsetDateTime;

/// Which kind of source an item came from.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum SourceKind {
    /// The cert dir in kubeadm's layout (`--cert-dir`).
    CertDir,
    /// A kubeconfig file (`--kubeconfig-dir`, `--kubeconfig`, `$KUBECONFIG`, `~/.kube/config`).
    Kubeconfig,
    /// The kubelet's PKI directory (`--kubelet-pki-dir`).
    Kubelet,
    /// A file named with `--file`, or found under a directory named with it.
    File,
    /// A Kubernetes Secret.
    Secret,
    /// What a live TLS endpoint serves.
    Endpoint,
}

impl SourceKind {
    /// The name used in output: `cert-dir`, `kubeconfig`, `kubelet`, `file`, `secret`, `endpoint`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CertDir => "cert-dir",
            Self::Kubeconfig => "kubeconfig",
            Self::Kubelet => "kubelet",
            Self::File => "file",
            Self::Secret => "secret",
            Self::Endpoint => "endpoint",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a kubeconfig holds a certificate or a key.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Stored {
    /// Embedded as base64 (`client-certificate-data`, `client-key-data`,
    /// `certificate-authority-data`).
    Embedded,
    /// In a file the kubeconfig names (`client-certificate`, `client-key`,
    /// `certificate-authority`), resolved against the kubeconfig's directory as kubectl does.
    File(PathBuf),
}

/// Exactly where a certificate lives: enough to read it again or to replace it.
///
/// `index` is the certificate's position in its file, field or served chain (0 for the first,
/// which is the leaf of a chain).
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Location {
    /// `<cert dir>/<base>.crt` with its key `<base>.key`; `base` is kubeadm's file stem
    /// (`apiserver`, `etcd/server`, `ca`, `etcd/ca`).
    CertDir {
        /// kubeadm's file stem.
        base: String,
        /// The certificate file.
        cert_path: PathBuf,
        /// The key file (which may not exist: an externally managed CA).
        key_path: PathBuf,
        /// Position in the file.
        index: usize,
    },
    /// A user's client certificate in a kubeconfig.
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// The user's name in the file.
        user: String,
        /// Where the certificate is.
        cert: Stored,
        /// Where the key is (`None`: the user has no key).
        key: Option<Stored>,
        /// Position in the certificate data.
        index: usize,
    },
    /// A cluster's CA in a kubeconfig.
    KubeconfigCa {
        /// The kubeconfig file.
        path: PathBuf,
        /// The cluster's name in the file.
        cluster: String,
        /// Where the CA is.
        ca: Stored,
        /// Position in the CA data (a bundle during a CA rotation).
        index: usize,
    },
    /// A certificate of the kubelet's PKI directory: `kubelet-client-current.pem` and
    /// `kubelet-server-current.pem` hold certificate and key in one file (usually a symlink the
    /// kubelet swaps), `kubelet.crt` has its key in `kubelet.key`.
    KubeletPem {
        /// The certificate file, as named (not resolved through symlinks).
        path: PathBuf,
        /// The key file (the same file for the `*-current.pem` files).
        key_path: PathBuf,
        /// Position in the file.
        index: usize,
    },
    /// A file named with `--file`, or found under a directory named with it.
    File {
        /// The file.
        path: PathBuf,
        /// Position in the file (a bundle yields several).
        index: usize,
    },
    /// A key of a Kubernetes Secret.
    Secret {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The data key (`tls.crt`, `ca.crt`, ...).
        key: String,
        /// Position in the value.
        index: usize,
    },
    /// The chain a TLS endpoint served.
    Endpoint {
        /// `HOST:PORT`, as given.
        address: String,
        /// Position in the served chain (0 = the server's own certificate).
        index: usize,
    },
}

impl Location {
    /// The kind of source.
    pub fn source(&self) -> SourceKind {
        match self {
            Self::CertDir { .. } => SourceKind::CertDir,
            Self::Kubeconfig { .. } | Self::KubeconfigCa { .. } => SourceKind::Kubeconfig,
            Self::KubeletPem { .. } => SourceKind::Kubelet,
            Self::File { .. } => SourceKind::File,
            Self::Secret { .. } => SourceKind::Secret,
            Self::Endpoint { .. } => SourceKind::Endpoint,
        }
    }

    /// The position of the certificate in its file, field or chain.
    pub fn index(&self) -> usize {
        match self {
            Self::CertDir { index, .. }
            | Self::Kubeconfig { index, .. }
            | Self::KubeconfigCa { index, .. }
            | Self::KubeletPem { index, .. }
            | Self::File { index, .. }
            | Self::Secret { index, .. }
            | Self::Endpoint { index, .. } => *index,
        }
    }

    /// The file that holds the certificate, if it is in a file of its own: the certificate
    /// file, or the kubeconfig (embedded data), or the file a kubeconfig names.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::CertDir { cert_path: p, .. }
            | Self::KubeletPem { path: p, .. }
            | Self::File { path: p, .. }
            | Self::Kubeconfig { path: p, .. }
            | Self::KubeconfigCa { path: p, .. } => Some(p),
            Self::Secret { .. } | Self::Endpoint { .. } => None,
        }
    }

    /// A one-line reference for people and labels: the file path, `NAMESPACE/NAME:KEY` for a
    /// Secret, `HOST:PORT` for an endpoint.
    pub fn reference(&self) -> String {
        self.reference_str().into_owned()
    }

    /// [`reference`](Self::reference), borrowed where it can be (a file path that is UTF-8,
    /// an endpoint).
    pub fn reference_str(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Secret { namespace, name, key, .. } => format!("{namespace}/{name}:{key}").into(),
            Self::Endpoint { address, .. } => address.as_str().into(),
            other => other.file().map(Path::to_string_lossy).unwrap_or_default(),
        }
    }
}

/// How serious a finding is.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum Severity {
    /// Worth fixing; raises the verdict to warning.
    Warning,
    /// Breaks TLS now or at the next restart; raises the verdict to critical.
    Critical,
}

impl Severity {
    /// `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// Something wrong with a certificate beyond its dates.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Finding {
    /// The private key paired with the certificate is not its key.
    KeyMismatch {
        /// Where the key is (a path or a reference).
        key: String,
    },
    /// The certificate's private key is absent.
    KeyMissing {
        /// Where the key should be.
        key: String,
    },
    /// The private key exists but its certificate does not: a broken pair (the item is
    /// [`ItemState::KeyOnly`]).
    CertificateMissing {
        /// Where the certificate should be.
        cert: String,
        /// The key that exists.
        key: String,
    },
    /// The certificate does not verify against the cert dir CA that should have signed it.
    ChainBroken {
        /// The CA's name (`ca`, `etcd-ca`, `front-proxy-ca`).
        ca: String,
        /// Why it does not verify.
        reason: String,
    },
    /// A served chain does not verify against the CA given with `--ca`.
    Untrusted {
        /// The CA file.
        ca_file: PathBuf,
        /// Why it does not verify.
        reason: String,
    },
    /// A kubeconfig's CA is not the cert dir's `ca.crt`: a stale copy.
    StaleCaCopy {
        /// The cert dir's CA file.
        ca_file: PathBuf,
    },
    /// `kubelet.conf` embeds a client certificate, which the kubelet never rotates, although
    /// the kubelet keeps a rotating one in `kubelet-client-current.pem`.
    KubeletConfEmbedded {
        /// The rotating file it should point at.
        current: PathBuf,
    },
    /// The certificate expires after the CA that signed it.
    OutlivesCa {
        /// The CA's name.
        ca: String,
        /// The CA's NotAfter.
        ca_not_after: OffsetDateTime,
    },
    /// The public key is too weak (RSA below 2048 bits).
    WeakKey {
        /// The key, as `RSA-1024`.
        key: String,
    },
    /// The signature uses SHA-1 or MD5.
    WeakSignature {
        /// The signature algorithm.
        algorithm: String,
    },
}

impl Finding {
    /// A stable identifier: `key-mismatch`, `key-missing`, `certificate-missing`,
    /// `chain-broken`, `untrusted`, `stale-ca-copy`, `kubelet-conf-embedded`, `outlives-ca`,
    /// `weak-key`, `weak-signature`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::KeyMismatch { .. } => "key-mismatch",
            Self::KeyMissing { .. } => "key-missing",
            Self::CertificateMissing { .. } => "certificate-missing",
            Self::ChainBroken { .. } => "chain-broken",
            Self::Untrusted { .. } => "untrusted",
            Self::StaleCaCopy { .. } => "stale-ca-copy",
            Self::KubeletConfEmbedded { .. } => "kubelet-conf-embedded",
            Self::OutlivesCa { .. } => "outlives-ca",
            Self::WeakKey { .. } => "weak-key",
            Self::WeakSignature { .. } => "weak-signature",
        }
    }

    /// How serious it is: a key that does not match or is missing, a key without its
    /// certificate, and a chain that does not verify, are critical; the rest are warnings.
    pub fn severity(&self) -> Severity {
        match self {
            Self::KeyMismatch { .. }
            | Self::KeyMissing { .. }
            | Self::CertificateMissing { .. }
            | Self::ChainBroken { .. }
            | Self::Untrusted { .. } => Severity::Critical,
            Self::StaleCaCopy { .. }
            | Self::KubeletConfEmbedded { .. }
            | Self::OutlivesCa { .. }
            | Self::WeakKey { .. }
            | Self::WeakSignature { .. } => Severity::Warning,
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyMismatch { key } => write!(f, "the private key {key} does not match the certificate"),
            Self::KeyMissing { key } => write!(f, "the private key {key} does not exist"),
            Self::CertificateMissing { cert, key } => {
                write!(f, "the certificate {cert} does not exist but its private key {key} does (a broken pair)")
            }
            Self::ChainBroken { ca, reason } => write!(f, "does not verify against the cert dir's {ca}: {reason}"),
            Self::Untrusted { ca_file, reason } => {
                write!(f, "the served chain does not verify against {}: {reason}", ca_file.display())
            }
            Self::StaleCaCopy { ca_file } => {
                write!(f, "the embedded CA is not the cert dir's {} (a stale copy)", ca_file.display())
            }
            Self::KubeletConfEmbedded { current } => write!(
                f,
                "kubelet.conf embeds a client certificate the kubelet never rotates; point client-certificate \
                 and client-key at {}",
                current.display()
            ),
            Self::OutlivesCa { ca, ca_not_after } => {
                write!(f, "expires after its CA {ca}, which expires {}", crate::text::rfc3339(*ca_not_after))
            }
            Self::WeakKey { key } => write!(f, "weak {key} key (RSA keys need at least 2048 bits)"),
            Self::WeakSignature { algorithm } => write!(f, "weak signature algorithm {algorithm}"),
        }
    }
}

/// Whether an item's certificate is there to be read.
///
/// Discovery reports what kubeadm expects and does not find as items too, so that `check`,
/// `tree` and rotation see the same names: see `docs/check.md` (*Missing certificates*) for
/// what is expected.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, PartialEq)]
pub enum ItemState {
    /// The certificate is there: [`Item::certificate`] holds it, or why it could not be
    /// parsed (an invalid item).
    #[default]
    Present,
    /// Expected and absent: a cert dir leaf whose CA is there and of which neither the
    /// certificate nor the key exists (on a control-plane node), one of kubeadm's kubeconfigs
    /// of a control-plane node, or the client-certificate file a kubeconfig names.
    /// [`Item::certificate`] says which file is absent; the location is where it belongs.
    Missing,
    /// The key is there, its certificate is not: a broken pair (with a
    /// [`Finding::CertificateMissing`]).
    KeyOnly,
}

impl ItemState {
    /// `present`, `missing`, `key-only`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Present => "present",
            Self::Missing => "missing",
            Self::KeyOnly => "key-only",
        }
    }
}

/// One certificate at one location.
#[derive(Clone, Debug)]
pub struct Item {
    /// kubeadm's name for what kubeadm knows (`apiserver`, `etcd-server`, `ca`, `admin.conf`);
    /// otherwise a name derived from the location (see `docs/check.md`). A certificate after
    /// the first in a file or chain gets `[index]` appended.
    pub name: String,
    /// Where it is.
    pub location: Location,
    /// The certificate, or why it could not be read or parsed (then the item is invalid), or
    /// which file is absent (a missing or key-only item: see [`state`](Self::state)).
    pub certificate: Result<Certificate, String>,
    /// Whether the certificate is there, missing, or only its key is.
    pub state: ItemState,
    /// The cert dir CA that signed it (`ca`, `etcd-ca`, `front-proxy-ca`), once linked.
    pub ca_name: Option<String>,
    /// Whether the signing CA (for a CA: the CA itself) is externally managed: its key is absent.
    pub externally_managed: bool,
    /// The CA that must have signed it, when the location says so (a cert dir leaf, a
    /// kubeconfig of the kubeconfig dir, the kubelet's client certificate).
    pub expected_ca: Option<CaKind>,
    /// Findings beyond the dates.
    pub findings: Vec<Finding>,
    /// For a kubeconfig's CA data that is the cert dir CA itself: that CA's item name. Such
    /// copies are not reported on their own.
    pub copy_of: Option<String>,
}

impl Item {
    /// A new item with nothing linked yet.
    pub fn new(name: impl Into<String>, location: Location, certificate: Result<Certificate, String>) -> Self {
        Self {
            name: name.into(),
            location,
            certificate,
            state: ItemState::Present,
            ca_name: None,
            externally_managed: false,
            expected_ca: None,
            findings: Vec::new(),
            copy_of: None,
        }
    }

    /// An item for a certificate that kubeadm expects at `location` and that is absent
    /// ([`ItemState::Missing`]); `reason` names the absent file.
    pub fn missing(name: impl Into<String>, location: Location, reason: impl Into<String>) -> Self {
        Self { state: ItemState::Missing, ..Self::new(name, location, Err(reason.into())) }
    }

    /// Whether the certificate is missing where it is expected.
    pub fn is_missing(&self) -> bool {
        self.state == ItemState::Missing
    }

    /// Whether the certificate is there but could not be read or parsed.
    pub fn is_invalid(&self) -> bool {
        self.state == ItemState::Present && self.certificate.is_err()
    }

    /// The certificate, if it was read and parsed.
    pub fn cert(&self) -> Option<&Certificate> {
        self.certificate.as_ref().ok()
    }

    /// The kind of source.
    pub fn source(&self) -> SourceKind {
        self.location.source()
    }
}

/// An input that could not be read or parsed as a whole (a missing explicit path, an
/// unreadable kubeconfig, a Secret the API refused, an endpoint that did not answer).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct InputError {
    /// The path or reference at fault.
    pub input: String,
    /// What went wrong.
    pub message: String,
}

impl InputError {
    /// An error about `input`.
    pub fn new(input: impl Into<String>, message: impl Into<String>) -> Self {
        Self { input: input.into(), message: message.into() }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.input, self.message)
    }
}

/// Items and errors from one source.
#[derive(Debug, Default)]
pub struct Found {
    /// The certificates found.
    pub items: Vec<Item>,
    /// What could not be read.
    pub errors: Vec<InputError>,
    /// Private keys this user may not read (permission denied): their certificates are
    /// reported, their pairing with the key is not checked.
    pub keys_not_read: Vec<PathBuf>,
}

impl Found {
    /// Appends `other`.
    pub fn extend(&mut self, other: Self) {
        self.items.extend(other.items);
        self.errors.extend(other.errors);
        self.keys_not_read.extend(other.keys_not_read);
    }
}

/// A CA of the cert dir, as found.
#[derive(Clone, Debug)]
pub struct CaState {
    /// Which CA.
    pub kind: CaKind,
    /// `<cert dir>/<base>.crt`.
    pub cert_path: PathBuf,
    /// `<cert dir>/<base>.key`.
    pub key_path: PathBuf,
    /// The certificates of the CA file, the signing one first (more during a CA rotation).
    pub certs: Vec<Certificate>,
    /// Whether the key is absent (kubeadm's external CA mode).
    pub external: bool,
}

/// A path given to discovery, and whether the user named it (a missing explicit path is an
/// error; a missing default is skipped).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct SourcePath {
    /// The path.
    pub path: PathBuf,
    /// Whether the user named it.
    pub explicit: bool,
}

impl SourcePath {
    /// A path the user named.
    pub fn explicit(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), explicit: true }
    }

    /// A default location.
    pub fn default_location(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), explicit: false }
    }
}

/// The local sources to discover.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// The cert dir (`/etc/kubernetes/pki`).
    pub cert_dir: Option<SourcePath>,
    /// The directory of kubeadm's kubeconfigs: every `*.conf` in it (`/etc/kubernetes`).
    pub kubeconfig_dir: Option<SourcePath>,
    /// More kubeconfig files (`$KUBECONFIG`, `~/.kube/config`, `--kubeconfig`).
    pub kubeconfigs: Vec<SourcePath>,
    /// The kubelet's PKI directory (`/var/lib/kubelet/pki`).
    pub kubelet_pki_dir: Option<SourcePath>,
    /// Files and directories (scanned recursively for `.crt`, `.pem`, `.cert`); always explicit.
    pub files: Vec<PathBuf>,
    /// A node's filesystem copied or mounted here (`check --root`): the files the kubelet's
    /// PKI dir and the kubeconfigs name are read with every symbolic link resolved inside it
    /// (an absolute link starts again at the root). The directories above are real paths.
    pub root: Option<PathBuf>,
}

impl Sources {
    /// kubeadm's default locations: `/etc/kubernetes/pki`, `/etc/kubernetes`,
    /// `/var/lib/kubelet/pki`, every file of `kubeconfig_env` (`$KUBECONFIG`, `:`-separated)
    /// and `<home>/.kube/config`. None of them is an error when absent.
    pub fn defaults(home: Option<&Path>, kubeconfig_env: Option<&std::ffi::OsStr>) -> Self {
        let mut kubeconfigs: Vec<SourcePath> = kubeconfig_env
            .map(|v| std::env::split_paths(v).filter(|p| !p.as_os_str().is_empty()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(SourcePath::default_location)
            .collect();
        if let Some(home) = home {
            kubeconfigs.push(SourcePath::default_location(home.join(".kube/config")));
        }
        Self {
            cert_dir: Some(SourcePath::default_location(kubepki_pki::paths::CERT_DIR)),
            kubeconfig_dir: Some(SourcePath::default_location(kubepki_pki::paths::KUBECONFIG_DIR)),
            kubeconfigs,
            kubelet_pki_dir: Some(SourcePath::default_location(kubepki_pki::paths::KUBELET_PKI_DIR)),
            files: Vec::new(),
            root: None,
        }
    }
}

/// Every certificate found, linked to the cert dir's CAs.
#[derive(Debug, Default)]
pub struct Inventory {
    /// The certificates, in discovery order: cert dir (kubeadm's order, CAs first), kubeconfigs,
    /// kubelet PKI, files, Secrets, endpoints.
    pub items: Vec<Item>,
    /// Inputs that could not be read or parsed as a whole.
    pub errors: Vec<InputError>,
    /// Problems that belong to no single certificate (an interrupted kubepki write).
    pub warnings: Vec<String>,
    /// Private keys this user may not read (permission denied): their certificates are
    /// judged by their dates, the pairing with the key is not checked. Not an input error.
    pub keys_not_read: Vec<PathBuf>,
    /// The local sources looked at, found or not (for "no certificates found in …").
    pub searched: Vec<PathBuf>,
    /// The cert dir, if it was read.
    pub cert_dir: Option<PathBuf>,
    /// The kubeconfig dir, if it was read.
    pub kubeconfig_dir: Option<PathBuf>,
    /// The cert dir's CAs that were found and read.
    pub cas: Vec<CaState>,
    /// The cert dir's service-account key pair (`sa.key`, `sa.pub`), if either exists.
    pub service_account: Option<SaKeys>,
    /// CAs whose certificate file exists but could not be read: their leaves are not judged.
    unreadable_cas: BTreeSet<CaKind>,
}

impl Inventory {
    /// The cert dir CA of `kind`, if present.
    pub fn ca(&self, kind: CaKind) -> Option<&CaState> {
        self.cas.iter().find(|c| c.kind == kind)
    }

    /// The items to report: every item except kubeconfig CA data that is a copy of the cert
    /// dir's CA (reported once, as the CA).
    pub fn reported(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.copy_of.is_none())
    }

    /// Links one more item, found after the inventory was finished (a certificate file read
    /// in a later chunk), to the cert dir's CAs, as [`InventoryBuilder::finish`] links its own.
    pub fn link(&self, item: &mut Item) {
        link(item, &self.cas, &self.unreadable_cas, self.cert_dir.is_some());
    }

    /// The input error of an inventory in which nothing at all was found: "no certificates
    /// found in" the sources looked at.
    pub fn nothing_found(&self) -> InputError {
        let searched: Vec<String> = self.searched.iter().map(|p| p.display().to_string()).collect();
        let input = if searched.is_empty() { "the sources named".to_owned() } else { searched.join(", ") };
        let message = format!(
            "no certificates found in {input} (`kubepki check --help` lists the sources; --root reads a copied node)"
        );
        InputError::new("sources", message)
    }

    /// Whether any input could not be read or parsed (an input error or an invalid item; a
    /// missing certificate is not unreadable input).
    pub fn has_unreadable_input(&self) -> bool {
        !self.errors.is_empty() || self.items.iter().any(Item::is_invalid)
    }

    /// The items whose certificate is missing where it is expected.
    pub fn missing(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.is_missing())
    }
}

/// An inventory being discovered; [`finish`](Self::finish) links it.
#[derive(Debug, Default)]
pub struct InventoryBuilder {
    inventory: Inventory,
}

impl InventoryBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Discovers the local sources: the cert dir, every kubeconfig, the kubelet's PKI and the
    /// named files. Reads only; never writes, never locks.
    pub fn discover(sources: &Sources) -> Self {
        let mut builder = Self::new();
        discover::local(sources, &mut builder);
        builder
    }

    pub(crate) fn inventory_mut(&mut self) -> &mut Inventory {
        &mut self.inventory
    }

    pub(crate) fn mark_unreadable_ca(&mut self, kind: CaKind) {
        self.inventory.unreadable_cas.insert(kind);
    }

    /// Adds what another source found (Secrets, endpoints).
    pub fn add(&mut self, found: Found) {
        self.inventory.items.extend(found.items);
        self.inventory.errors.extend(found.errors);
        self.inventory.keys_not_read.extend(found.keys_not_read);
    }

    /// Links every item to the cert dir's CAs and returns the inventory.
    pub fn finish(self) -> Inventory {
        let Self { mut inventory } = self;
        let mut items = std::mem::take(&mut inventory.items);
        items.par_iter_mut().for_each(|item| inventory.link(item));
        inventory.items = items;
        link_kubeconfig_cas(&mut inventory);
        inventory
    }
}

fn is_cert_dir_ca(item: &Item) -> Option<CaKind> {
    match &item.location {
        Location::CertDir { base, .. } => CaKind::ALL.into_iter().find(|k| k.base_name() == base),
        _ => None,
    }
}

/// How a certificate names a CA as its issuer.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Naming {
    /// Another name, or the same name with another key identifier: not this CA.
    Other,
    /// The same name and no key identifier to tell: only the signature can say.
    NameOnly,
    /// The same name and the same key identifier (AuthorityKeyIdentifier = the CA's
    /// SubjectKeyIdentifier).
    NameAndKey,
}

fn naming(cert: &Certificate, ca: &Certificate) -> Naming {
    if cert.raw_issuer != ca.raw_subject {
        return Naming::Other;
    }
    match (&cert.authority_key_id, &ca.subject_key_id) {
        (Some(aki), Some(ski)) if aki == ski => Naming::NameAndKey,
        (Some(_), Some(_)) => Naming::Other,
        _ => Naming::NameOnly,
    }
}

/// Links one item to the cert dir's CAs.
///
/// Where the location says which CA must have signed it, the signature is verified against
/// that CA (every certificate of its file), and a failure is a broken chain. Any other
/// certificate — a file, a Secret, a served chain, of which there may be thousands — is
/// matched by its issuer's name and key identifier; the signature is verified only when no key
/// identifier settles it, and a mismatch means another CA, not a broken chain.
fn link(item: &mut Item, cas: &[CaState], unreadable: &BTreeSet<CaKind>, cert_dir_read: bool) {
    let Ok(cert) = &item.certificate else { return };
    if cert.public_key.is_weak() {
        item.findings.push(Finding::WeakKey { key: cert.public_key.to_string() });
    }
    if cert.weak_signature {
        item.findings.push(Finding::WeakSignature { algorithm: cert.signature_algorithm.to_owned() });
    }
    if let Some(kind) = is_cert_dir_ca(item) {
        item.externally_managed = cas.iter().find(|c| c.kind == kind).is_some_and(|c| c.external);
        return;
    }
    if matches!(item.location, Location::KubeconfigCa { .. }) {
        return;
    }
    let Some(kind) = item.expected_ca else {
        for ca in cas {
            for ca_cert in &ca.certs {
                let issued = match naming(cert, ca_cert) {
                    Naming::Other => false,
                    Naming::NameAndKey => true,
                    Naming::NameOnly => cert.verify_issued_by(ca_cert).is_ok(),
                };
                if issued {
                    return issued_by(item, ca, ca_cert);
                }
            }
        }
        return;
    };
    let Some(ca) = cas.iter().find(|c| c.kind == kind) else {
        // An absent CA breaks the chain only where the cert dir was read and the CA belongs
        // there: without etcd's CA, etcd is external and its client certificate comes from
        // elsewhere.
        if cert_dir_read && !unreadable.contains(&kind) && kind != CaKind::EtcdCa {
            item.findings.push(Finding::ChainBroken {
                ca: kind.name().to_owned(),
                reason: "the CA certificate does not exist".into(),
            });
        }
        return;
    };
    let mut first_error = None;
    for ca_cert in &ca.certs {
        match cert.verify_issued_by(ca_cert) {
            Ok(()) => return issued_by(item, ca, ca_cert),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    item.findings.push(Finding::ChainBroken {
        ca: kind.name().to_owned(),
        reason: format!("{} ({})", first_error.unwrap_or_default(), ca.cert_path.display()),
    });
}

/// Records that `ca_cert` of `ca` issued the item.
fn issued_by(item: &mut Item, ca: &CaState, ca_cert: &Certificate) {
    item.ca_name = Some(ca.kind.name().to_owned());
    item.externally_managed = ca.external;
    if let Ok(cert) = &item.certificate
        && cert.not_after > ca_cert.not_after
    {
        item.findings.push(Finding::OutlivesCa { ca: ca.kind.name().to_owned(), ca_not_after: ca_cert.not_after });
    }
}

/// Kubeconfig CA data: a certificate of the cert dir's `ca.crt` is marked as a copy (and not
/// reported again); anything else is reported. A CA field that lacks the cert dir's signing CA
/// certificate is a stale copy when the kubeconfig belongs to this cluster: it is in the
/// kubeconfig dir, or one of its client certificates was issued by the cert dir's `ca`.
fn link_kubeconfig_cas(inventory: &mut Inventory) {
    let Some(ca) = inventory.cas.iter().find(|c| c.kind == CaKind::Ca) else { return };
    let ours: BTreeSet<PathBuf> = inventory
        .items
        .iter()
        .filter_map(|i| match &i.location {
            Location::Kubeconfig { path, .. } if i.ca_name.as_deref() == Some("ca") => Some(path.clone()),
            _ => None,
        })
        .collect();
    let kubeconfig_dir = inventory.kubeconfig_dir.as_deref();
    // Per (kubeconfig, cluster): whether the field holds the signing CA certificate.
    let mut current: BTreeSet<(PathBuf, String)> = BTreeSet::new();
    for item in &mut inventory.items {
        let Location::KubeconfigCa { path, cluster, .. } = &item.location else { continue };
        let Ok(cert) = &item.certificate else { continue };
        if let Some(pos) = ca.certs.iter().position(|c| c == cert) {
            item.copy_of = Some(if pos == 0 { "ca".to_owned() } else { format!("ca[{pos}]") });
            if pos == 0 {
                current.insert((path.clone(), cluster.clone()));
            }
        }
    }
    for item in &mut inventory.items {
        let Location::KubeconfigCa { path, cluster, index: 0, .. } = &item.location else { continue };
        if item.certificate.is_err() || current.contains(&(path.clone(), cluster.clone())) {
            continue;
        }
        let in_dir = kubeconfig_dir.is_some_and(|d| path.parent() == Some(d));
        if in_dir || ours.contains(path) {
            // Reported even if it is an older certificate of ca.crt: the field is stale.
            item.copy_of = None;
            item.findings.push(Finding::StaleCaCopy { ca_file: ca.cert_path.clone() });
        }
    }
}

#[cfg(test)]
mod tests {
    use kubepki_pki::{
        AltNames, CertRequest, KeyAlgorithm, Lifetime, Signer, Subject, Usage, Validity, self_signed_ca,
    };

    use super::*;

    fn ca(cn: &str) -> (Certificate, kubepki_pki::PrivateKey) {
        let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let now = OffsetDateTime::now_utc();
        (self_signed_ca(cn, &key, Validity::starting_at(now, Lifetime::DEFAULT_CA)).unwrap(), key)
    }

    fn leaf(ca: &(Certificate, kubepki_pki::PrivateKey), cn: &str) -> Certificate {
        let signer = Signer::new("ca", &ca.0, &ca.1).unwrap();
        let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let request =
            CertRequest { subject: Subject::new(cn, [] as [&str; 0]), sans: AltNames::new(), usage: Usage::Client };
        let validity = Validity::starting_at(OffsetDateTime::now_utc(), Lifetime::DEFAULT_CERT);
        Certificate::from_der(signer.sign(cn, &request, &key, validity).unwrap(), cn).unwrap()
    }

    fn file_item(name: &str, cert: Certificate, expected_ca: Option<CaKind>) -> Item {
        let mut item = Item::new(name, Location::File { path: name.into(), index: 0 }, Ok(cert));
        item.expected_ca = expected_ca;
        item
    }

    #[test]
    fn files_are_matched_to_a_ca_by_name_and_key_and_expected_cas_are_verified() {
        let ours = ca("kubernetes");
        let impostor = ca("kubernetes");
        let mut builder = InventoryBuilder::new();
        builder.inventory_mut().cert_dir = Some(PathBuf::from("/pki"));
        builder.inventory_mut().cas.push(CaState {
            kind: CaKind::Ca,
            cert_path: "/pki/ca.crt".into(),
            key_path: "/pki/ca.key".into(),
            certs: vec![ours.0.clone()],
            external: true,
        });
        builder.add(Found {
            items: vec![
                file_item("ours", leaf(&ours, "a"), None),
                file_item("other", leaf(&impostor, "b"), None),
                file_item("expected-ours", leaf(&ours, "c"), Some(CaKind::Ca)),
                file_item("expected-other", leaf(&impostor, "d"), Some(CaKind::Ca)),
                file_item("expected-front-proxy", leaf(&ours, "e"), Some(CaKind::FrontProxyCa)),
                file_item("expected-etcd", leaf(&ours, "f"), Some(CaKind::EtcdCa)),
            ],
            ..Found::default()
        });
        let inventory = builder.finish();
        let get = |name: &str| inventory.items.iter().find(|i| i.name == name).unwrap();
        let codes = |name: &str| get(name).findings.iter().map(Finding::code).collect::<Vec<_>>();
        assert_eq!((get("ours").ca_name.as_deref(), get("ours").externally_managed), (Some("ca"), true));
        assert_eq!((get("other").ca_name.as_deref(), codes("other")), (None, vec![]));
        assert_eq!((get("expected-ours").ca_name.as_deref(), codes("expected-ours")), (Some("ca"), vec![]));
        assert_eq!((get("expected-other").ca_name.as_deref(), codes("expected-other")), (None, vec!["chain-broken"]));
        // An absent front-proxy CA breaks the chain; an absent etcd CA means external etcd.
        assert_eq!(codes("expected-front-proxy"), ["chain-broken"]);
        assert_eq!(codes("expected-etcd"), Vec::<&str>::new());
    }

    #[test]
    fn a_certificate_without_key_identifiers_is_matched_by_its_signature() {
        let ours = ca("kubernetes");
        let cert = leaf(&ours, "a");
        let mut bare = ours.0.clone();
        bare.subject_key_id = None;
        assert_eq!(naming(&cert, &ours.0), Naming::NameAndKey);
        assert_eq!(naming(&cert, &bare), Naming::NameOnly);
        assert_eq!(naming(&cert, &ca("kubernetes").0), Naming::Other);
        assert_eq!(naming(&cert, &ca("etcd-ca").0), Naming::Other);
    }
}
