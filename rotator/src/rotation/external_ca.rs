//! kubeadm's external-CA mode: a CA certificate in the cert dir without its key. kubepki cannot
//! sign the leaves of such a CA; as `kubeadm certs generate-csr` does, it writes a new key and a
//! CSR for each of them ([`generate`]), and later installs the certificates the external CA
//! signed, after checking each against its key, its CSR and the CA in the cert dir
//! ([`install`]).
//!
//! The CSR directory has kubeadm's generate-csr layout: `<base>.key` and `<base>.csr` per
//! cert-dir leaf (`etcd/server.key`, `etcd/server.csr`), and per kubeconfig a partial
//! kubeconfig `<file>` holding the new key (`client-key-data`) with `<file>.csr` beside it
//! (`admin.conf`, `admin.conf.csr`). The signed certificates come back as `<base>.crt` and
//! `<file>.crt` (`admin.conf.crt`), or, as kubeadm documents it, in the partial kubeconfig's
//! `client-certificate-data`.
//!
//! A CSR asks for what `rotate --force` would reissue the leaf with ([`plan::reissue_request`]):
//! the identity of its existing certificate when it can still be read (even an expired one),
//! its SANs as the flags or `--config` change them ([`plan::Desired`]); else kubeadm's profile
//! for it, which then needs the node name and advertise address to be stated. Nothing is ever
//! taken from the host kubepki runs on.

use std::path::{Path, PathBuf};

use kubepki_pki::fsio;
use kubepki_pki::{
    AltNames, CaKind, CertRequest, Certificate, CommonName, Csr, KeyAlgorithm, Kubeconfig, KubeconfigSpec, PemSource,
    PkiDir, PrivateKey, ProfileSpec, SanRule, Subject, Usage,
    profiles::{KUBECONFIGS, LEAVES},
};
use rayon::prelude::*;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::rotation::audit_log::{self, CertRef, Record};
use crate::rotation::backup::Backup;
use crate::rotation::plan::{self, Desired};

/// Mode of a CSR file: 0600, as current kubeadm's `pkiutil.WriteCSR` writes it (older releases
/// wrote 0644; a CSR holds no secret, but kubeadm's mode is what scanners of its layout expect).
pub const CSR_MODE: u32 = 0o600;

/// A certificate an external CA signs: a cert-dir leaf, or the client certificate of one of
/// kubeadm's kubeconfigs.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Leaf {
    /// A leaf of the cert dir (`apiserver`, `etcd-server`, ...).
    CertDir(&'static ProfileSpec),
    /// The client certificate of a kubeconfig (`admin.conf`, ...).
    Kubeconfig(&'static KubeconfigSpec),
}

impl Leaf {
    /// Every leaf, cert-dir leaves in kubeadm's order, then the kubeconfigs.
    pub fn all() -> impl Iterator<Item = Self> {
        LEAVES.iter().map(Self::CertDir).chain(KUBECONFIGS.iter().map(Self::Kubeconfig))
    }

    /// The leaf of a kubeadm name: `apiserver`, `etcd-server`, `admin.conf`, ...
    pub fn from_name(name: &str) -> Result<Self> {
        Self::all().find(|l| l.name() == name).ok_or_else(|| {
            kubepki_pki::Error::InvalidValue {
                field: "certificate name",
                value: name.to_owned(),
                reason: format!("expected one of {}", Self::all().map(Self::name).collect::<Vec<_>>().join(", ")),
            }
            .into()
        })
    }

    /// kubeadm's name, as `kubeadm certs renew` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::CertDir(s) => s.name,
            Self::Kubeconfig(k) => k.file_name,
        }
    }

    /// The CA that signs it.
    pub fn ca(self) -> CaKind {
        match self {
            Self::CertDir(s) => s.ca,
            Self::Kubeconfig(_) => CaKind::Ca,
        }
    }

    /// The extended key usages kubeadm's components need it to have.
    pub fn usage(self) -> Usage {
        match self {
            Self::CertDir(s) => s.usage,
            Self::Kubeconfig(_) => Usage::Client,
        }
    }

    /// The stem of its files in a CSR directory: the base name (`etcd/server`) or the
    /// kubeconfig's file name (`admin.conf`).
    fn stem(self) -> &'static str {
        match self {
            Self::CertDir(s) => s.base_name,
            Self::Kubeconfig(k) => k.file_name,
        }
    }
}

/// A CSR directory in kubeadm's generate-csr layout (see the module docs).
#[derive(Clone, Debug)]
pub struct CsrDir {
    root: PathBuf,
}

impl CsrDir {
    /// The CSR directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the new key is: `<base>.key`, or the partial kubeconfig `<file>`.
    pub fn key_path(&self, leaf: Leaf) -> PathBuf {
        match leaf {
            Leaf::CertDir(s) => self.root.join(format!("{}.key", s.base_name)),
            Leaf::Kubeconfig(k) => self.root.join(k.file_name),
        }
    }

    /// `<stem>.csr`.
    pub fn csr_path(&self, leaf: Leaf) -> PathBuf {
        self.root.join(format!("{}.csr", leaf.stem()))
    }

    /// `<stem>.crt`: where the signed certificate is expected.
    pub fn cert_path(&self, leaf: Leaf) -> PathBuf {
        self.root.join(format!("{}.crt", leaf.stem()))
    }
}

/// What [`generate`] writes, and for which leaves.
#[derive(Clone, Copy, Debug)]
pub struct GenerateOptions<'a> {
    /// The directory to write into: it must not exist, or be empty.
    pub out: &'a Path,
    /// kubeadm's names of the leaves to write; empty: every leaf of an external CA.
    pub names: &'a [String],
    /// What the command line or `--config` asks for beyond each certificate's identity, as
    /// `rotate` takes it ([`plan::Desired`]): never anything of this host.
    pub desired: &'a Desired,
    /// `--encryption-algorithm`: the algorithm of every new key. Without it a key keeps the
    /// algorithm of the certificate it replaces, else the configuration's.
    pub algorithm: Option<KeyAlgorithm>,
}

/// Where a CSR's identity came from.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum IdentitySource {
    /// The existing certificate (plus the SANs stated).
    Certificate,
    /// kubeadm's profile for the leaf, with the stated node name, address and SANs.
    Profile,
}

impl IdentitySource {
    /// `certificate` or `profile`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Certificate => "certificate",
            Self::Profile => "profile",
        }
    }
}

/// One key and CSR written.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The leaf's kubeadm name.
    pub name: String,
    /// Its CA.
    pub ca: CaKind,
    /// What the CSR asks for.
    pub request: CertRequest,
    /// The new key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// Where the identity came from.
    pub identity: IdentitySource,
    /// The new key (for a kubeconfig, the partial kubeconfig holding it).
    pub key_path: PathBuf,
    /// The CSR.
    pub csr_path: PathBuf,
}

/// A leaf left out, and why.
#[derive(Clone, Debug)]
pub struct Left {
    /// The leaf's kubeadm name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// What [`generate`] did.
#[derive(Clone, Debug, Default)]
pub struct GenerateReport {
    /// The keys and CSRs written (none: the directory was not created).
    pub generated: Vec<Generated>,
    /// The leaves left out.
    pub left: Vec<Left>,
    /// Things to know.
    pub warnings: Vec<String>,
}

/// The state of a CA in the cert dir.
enum CaState {
    /// No certificate.
    Absent,
    /// Certificate and key: kubepki signs its leaves.
    Held,
    /// Certificate without key: kubeadm's external-CA mode.
    External,
}

fn ca_state(pki: &PkiDir, ca: CaKind) -> CaState {
    let base = ca.base_name();
    match (pki.cert_path(base).exists(), pki.key_path(base).exists()) {
        (false, _) => CaState::Absent,
        (true, true) => CaState::Held,
        (true, false) => CaState::External,
    }
}

/// A leaf chosen, with what is known of it.
struct Chosen {
    leaf: Leaf,
    /// The existing certificate, if readable.
    existing: Option<Certificate>,
    /// The existing kubeconfig's cluster, server and user, for the partial kubeconfig.
    kubeconfig: Option<Partial>,
}

/// The cluster name, server and user of a partial kubeconfig.
#[derive(Clone)]
struct Partial {
    cluster: String,
    server: String,
    user: String,
}

/// Writes a new key and a CSR into `out` (which must not exist, or be empty) for every leaf
/// whose CA is external — or for the leaves `names` (kubeadm names) — in kubeadm's
/// generate-csr layout. `out` appears whole, with every file, or not at all; nothing in the
/// cert dir or the kubeconfig dir changes. Call it under the cert dir's lock
/// ([`kubepki_pki::open_locked`]).
///
/// Without `names`, a kubeconfig is included only if it exists with an embedded client
/// certificate (a kubelet.conf pointing at the kubelet's rotating file is the kubelet's). A
/// named leaf whose CA key is present is included with a warning: kubepki can renew it.
pub fn generate(pki: &PkiDir, kubeconfig_dir: &Path, options: &GenerateOptions<'_>) -> Result<GenerateReport> {
    let GenerateOptions { out, names, desired, algorithm } = *options;
    check_out_dir(out)?;
    let mut report = GenerateReport::default();
    let mut wanted: Vec<(Leaf, bool)> = Vec::new();
    if names.is_empty() {
        wanted.extend(Leaf::all().map(|l| (l, false)));
    } else {
        for name in names {
            let leaf = Leaf::from_name(name)?;
            if !wanted.iter().any(|(l, _)| *l == leaf) {
                wanted.push((leaf, true));
            }
        }
    }
    let mut chosen: Vec<Chosen> = Vec::new();
    for (leaf, named) in wanted {
        let ca = leaf.ca();
        let leave = |reason: String| Left { name: leaf.name().to_owned(), reason };
        match ca_state(pki, ca) {
            CaState::Absent if named => {
                return Err(Error::Csr {
                    path: pki.cert_path(ca.base_name()),
                    reason: format!("{} cannot be requested: its CA {ca} does not exist", leaf.name()),
                });
            }
            CaState::Absent => {
                report.left.push(leave(format!("its CA {ca} does not exist")));
                continue;
            }
            CaState::Held if named => report.warnings.push(format!(
                "kubepki holds the key of {ca} ({}): it can renew {} itself (kubepki rotate --force {})",
                pki.key_path(ca.base_name()).display(),
                leaf.name(),
                leaf.name()
            )),
            CaState::Held => {
                report.left.push(leave(format!("the key of {ca} is present: kubepki rotate renews it")));
                continue;
            }
            CaState::External => {}
        }
        let (existing, kubeconfig) = match leaf {
            Leaf::CertDir(spec) => (read_existing(pki, spec, &mut report.warnings), None),
            Leaf::Kubeconfig(spec) => {
                let path = kubeconfig_dir.join(spec.file_name);
                match existing_kubeconfig(&path) {
                    Ok(Some(k)) if !named && !k.embedded => {
                        report.left.push(leave(format!(
                            "its client certificate is the file {} (the kubelet renews its own); name it to replace it \
                             with an embedded one",
                            k.cert_file.unwrap_or_default().display()
                        )));
                        continue;
                    }
                    Ok(Some(k)) => {
                        if let Some(e) = k.cert_error {
                            report.warnings.push(format!(
                                "{}: its client certificate cannot be read ({e}); the identity comes from kubeadm's \
                                 profile",
                                path.display()
                            ));
                        }
                        (k.cert, Some(Partial { cluster: k.cluster, server: k.server, user: k.user }))
                    }
                    Ok(None) if !named => {
                        report.left.push(leave(format!("{} does not exist; name it to request one", path.display())));
                        continue;
                    }
                    Ok(None) => (None, None),
                    Err(e) => {
                        report
                            .warnings
                            .push(format!("{e}; the identity of {} comes from kubeadm's profile", leaf.name()));
                        (None, None)
                    }
                }
            }
        };
        chosen.push(Chosen { leaf, existing, kubeconfig });
    }

    // Every identity is settled before a key is made: a missing flag fails the whole run.
    let plans: Vec<(Chosen, CertRequest, IdentitySource, KeyAlgorithm)> = chosen
        .into_iter()
        .map(|c| {
            let (request, source) = identity(pki, kubeconfig_dir, &c, desired)?;
            let algorithm = algorithm
                .or_else(|| c.existing.as_ref().and_then(|cert| cert.public_key.key_algorithm()))
                .or_else(|| desired.config.as_ref().map(|cfg| cfg.encryption_algorithm))
                .or_else(|| desired.profile.as_ref().map(|cfg| cfg.encryption_algorithm))
                .unwrap_or_default();
            Ok((c, request, source, algorithm))
        })
        .collect::<Result<_>>()?;
    let partials: Vec<Option<Partial>> = plans
        .iter()
        .map(|(c, request, ..)| match (c.leaf, &c.kubeconfig) {
            (Leaf::Kubeconfig(_), Some(k)) => Ok(Some(k.clone())),
            (Leaf::Kubeconfig(spec), None) => {
                let (cluster, server) = kubeconfig_server(desired, spec, &kubeconfig_dir.join(spec.file_name))?;
                Ok(Some(Partial { cluster, server, user: request.subject.common_name.clone() }))
            }
            (Leaf::CertDir(_), _) => Ok(None),
        })
        .collect::<Result<_>>()?;
    if plans.is_empty() {
        return Ok(report);
    }

    let made: Vec<(PrivateKey, Csr)> = plans
        .par_iter()
        .map(|(_, request, _, algorithm)| {
            let key = algorithm.generate()?;
            let csr = Csr::new(request, &key)?;
            Ok((key, csr))
        })
        .collect::<Result<_>>()?;
    // The files' paths relative to `out`, and as reported.
    let (relative, dir) = (CsrDir::new(""), CsrDir::new(out));
    let mut files: Vec<(PathBuf, Zeroizing<Vec<u8>>, u32)> = Vec::new();
    for (((c, request, source, algorithm), (key, csr)), partial) in plans.into_iter().zip(made).zip(partials) {
        let key_bytes = match partial {
            Some(Partial { cluster, server, user }) => {
                // kubeadm's partial kubeconfig: the key, no certificate, no CA data yet.
                let kc = Kubeconfig::with_client_key(&cluster, &server, &user, &key.to_pem());
                Zeroizing::new(kc.to_yaml().as_bytes().to_vec())
            }
            None => Zeroizing::new(key.to_pem().as_bytes().to_vec()),
        };
        files.push((relative.key_path(c.leaf), key_bytes, kubepki_pki::KEY_MODE));
        files.push((relative.csr_path(c.leaf), Zeroizing::new(csr.to_pem().into_bytes()), CSR_MODE));
        report.generated.push(Generated {
            name: c.leaf.name().to_owned(),
            ca: c.leaf.ca(),
            request,
            algorithm,
            identity: source,
            key_path: dir.key_path(c.leaf),
            csr_path: dir.csr_path(c.leaf),
        });
    }
    if out.is_dir() {
        // Checked empty above: it is made again whole, 0700.
        std::fs::remove_dir(out).map_err(|source| kubepki_pki::Error::Write { path: out.to_owned(), source })?;
    }
    let refs: Vec<(PathBuf, &[u8], u32)> = files.iter().map(|(p, b, m)| (p.clone(), b.as_slice(), *m)).collect();
    fsio::create_dir_with(out, 0o700, &refs)?;
    Ok(report)
}

/// The cluster name and server URL of a kubeconfig that does not exist yet, from the flags or
/// `--config`: an address or (for a kubeconfig that dials it) the control-plane endpoint must
/// be stated.
fn kubeconfig_server(desired: &Desired, spec: &KubeconfigSpec, path: &Path) -> Result<(String, String)> {
    let local = spec.endpoint == kubepki_pki::Endpoint::Local;
    let missing = || Error::Csr {
        path: path.to_owned(),
        reason: format!(
            "{} does not exist, and the server it points at needs the node's address: pass \
             --apiserver-advertise-address{} (never taken from this host)",
            spec.file_name,
            if local { "" } else { " or --control-plane-endpoint" }
        ),
    };
    let cfg = desired.profile.as_ref().ok_or_else(missing)?;
    let endpoint = !local && cfg.control_plane_endpoint.as_deref().is_some_and(|e| !e.is_empty());
    if !endpoint && cfg.advertise_address.is_unspecified() {
        return Err(missing());
    }
    Ok((cfg.cluster_name.clone(), cfg.server_url(spec.endpoint)?))
}

/// Refuses an `out` that exists and is not an empty directory.
fn check_out_dir(out: &Path) -> Result<()> {
    let refuse = |reason: String| Error::Csr { path: out.to_owned(), reason };
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(kubepki_pki::Error::Read { path: out.to_owned(), source }.into()),
        Ok(m) if !m.is_dir() => Err(refuse("exists and is not a directory; choose a new --out".into())),
        Ok(_) => {
            let mut entries =
                std::fs::read_dir(out).map_err(|source| kubepki_pki::Error::Read { path: out.to_owned(), source })?;
            match entries.next() {
                None => Ok(()),
                Some(e) => Err(refuse(format!(
                    "is not empty ({} is there): csr generate writes a new directory whole and never overwrites a \
                     key; choose a new --out",
                    e.map(|e| e.file_name().to_string_lossy().into_owned()).unwrap_or_default()
                ))),
            }
        }
    }
}

/// The existing certificate of a cert-dir leaf, if it can be read (even expired).
fn read_existing(pki: &PkiDir, spec: &ProfileSpec, warnings: &mut Vec<String>) -> Option<Certificate> {
    match pki.read_certs(spec.base_name) {
        Ok(Some(mut certs)) => Some(certs.swap_remove(0)),
        Ok(None) => None,
        Err(e) => {
            warnings.push(format!("{e}; the identity of {} comes from kubeadm's profile", spec.name));
            None
        }
    }
}

/// What an existing kubeconfig holds for generate.
struct ExistingKubeconfig {
    cluster: String,
    server: String,
    user: String,
    /// The client certificate is embedded (not a file reference).
    embedded: bool,
    cert_file: Option<PathBuf>,
    cert: Option<Certificate>,
    cert_error: Option<String>,
}

fn existing_kubeconfig(path: &Path) -> Result<Option<ExistingKubeconfig>> {
    let Some(kc) = Kubeconfig::read(path)? else { return Ok(None) };
    let current = kc.current()?;
    let server = kc.server(&current.cluster).unwrap_or_default().to_owned();
    let source = kc.client_certificate(&current.user)?;
    let (embedded, cert_file) = match &source {
        Some(PemSource::File(f)) => (false, Some(f.clone())),
        _ => (true, None),
    };
    let pem = match source {
        Some(PemSource::Embedded(pem)) => Ok(Some(pem)),
        Some(PemSource::File(f)) => {
            fsio::read_optional(&f, fsio::MAX_PEM_FILE, "certificate file").map_err(|e| e.to_string())
        }
        None => Ok(None),
    };
    let (cert, cert_error) = match pem.and_then(|p| {
        p.map(|p| Certificate::from_pem_bundle(&p, &path.display().to_string())).transpose().map_err(|e| e.to_string())
    }) {
        Ok(certs) => (certs.map(|mut c| c.swap_remove(0)), None),
        Err(e) => (None, Some(e)),
    };
    Ok(Some(ExistingKubeconfig {
        cluster: current.cluster,
        server,
        user: current.user,
        embedded,
        cert_file,
        cert,
        cert_error,
    }))
}

/// The request for a chosen leaf, as `rotate --force` would reissue it
/// ([`plan::reissue_request`]): its certificate's identity and SANs as the flags or `--config`
/// change them, else kubeadm's profile filled from them; at least the usages kubeadm needs.
fn identity(
    pki: &PkiDir,
    kubeconfig_dir: &Path,
    c: &Chosen,
    desired: &Desired,
) -> Result<(CertRequest, IdentitySource)> {
    let source = if c.existing.is_some() { IdentitySource::Certificate } else { IdentitySource::Profile };
    let (path, rule, profile) = match c.leaf {
        Leaf::CertDir(spec) => {
            (pki.cert_path(spec.base_name), spec.sans, spec.name.parse::<kubepki_pki::Profile>().ok())
        }
        Leaf::Kubeconfig(spec) => (kubeconfig_dir.join(spec.file_name), SanRule::None, None),
    };
    let name = c.leaf.name();
    let needs = |needs: &str| Error::Csr {
        path: path.clone(),
        reason: format!(
            "no readable certificate to take the identity of {name} from, and kubeadm's profile for it needs {needs} \
             (never taken from this host)"
        ),
    };
    let mut request = match (c.leaf, &c.existing) {
        (Leaf::Kubeconfig(spec), None) => {
            let node = desired.profile.as_ref().map(|cfg| cfg.node_name.as_str()).filter(|n| !n.is_empty());
            let node = match (spec.common_name, node) {
                (CommonName::Fixed(_), _) => "",
                (_, Some(node)) => node,
                (_, None) => return Err(needs("--node-name (or a --config that gives nodeRegistration.name)")),
            };
            CertRequest {
                subject: Subject::new(spec.common_name.resolve(node), spec.organizations.iter().copied()),
                sans: AltNames::new(),
                usage: Usage::Client,
            }
        }
        _ => plan::reissue_request(name, "unreadable or missing", rule, c.existing.as_ref(), profile, desired)
            .map_err(|e| match e {
                Error::NeedsIdentity { needs: what, .. } => needs(&what),
                e => e,
            })?,
    };
    let need = c.leaf.usage();
    let (server, client) = (request.usage.server_auth(), request.usage.client_auth());
    request.usage = Usage::from_flags(server || need.server_auth(), client || need.client_auth()).unwrap_or(need);
    Ok((request, source))
}

/// One certificate installed.
#[derive(Clone, Debug)]
pub struct Installed {
    /// The leaf's kubeadm name.
    pub name: String,
    /// Its CA.
    pub ca: CaKind,
    /// Where it was installed: the certificate file, or the kubeconfig.
    pub path: PathBuf,
    /// The certificate installed.
    pub cert: Certificate,
    /// The certificate it replaced, if one could be read.
    pub replaced: Option<Certificate>,
}

/// What [`install`] did.
#[derive(Debug)]
pub struct InstallReport {
    /// What was installed.
    pub installed: Vec<Installed>,
    /// The backup of every file replaced (none if nothing existed).
    pub backup: Option<Backup>,
    /// The files written.
    pub written: Vec<PathBuf>,
    /// Things to know (a certificate that outlives its CA, a file in the directory that is
    /// not a certificate kubepki installs).
    pub warnings: Vec<String>,
}

/// How [`install`] runs.
#[derive(Clone, Debug)]
pub struct InstallOptions {
    /// The directory the backup of the files replaced goes under, as
    /// [`backup::parent_dir`](crate::rotation::backup::parent_dir) gives it: this run's backup is a new
    /// `kubepki-backup-<UTC time>` there, made only when something is installed.
    pub backup_parent: PathBuf,
    /// Where to append audit records, if anywhere.
    pub audit_log: Option<PathBuf>,
    /// The moment validity is checked at.
    pub now: OffsetDateTime,
}

/// A certificate of the CSR directory, checked and ready to install.
struct Ready {
    leaf: Leaf,
    certs: Vec<Certificate>,
    key: PrivateKey,
    /// The partial kubeconfig of a kubeconfig leaf (for a kubeconfig that does not exist).
    partial: Option<Kubeconfig>,
}

/// Installs every signed certificate of the CSR directory `from` (`<stem>.crt`, or a partial
/// kubeconfig's `client-certificate-data`) with the key [`generate`] wrote for it, all in one
/// transaction, after a backup of what it replaces. Each must match its key and its CSR's key,
/// be signed by its CA in the cert dir (valid from the certificate's NotBefore until now),
/// carry the CSR's subject, at least its SANs and the usages kubeadm's profile needs, not be a
/// CA, and be valid now. If any check fails, nothing is installed and the error names every
/// file and what is wrong. Call it under the cert dir's lock.
///
/// Cert-dir leaves are written as `<base>.crt` (0644) and `<base>.key` (0600); a kubeconfig
/// gets the certificate and key embedded, every other field kept (a kubeconfig that does not
/// exist is written from the partial one, with the cluster CA's data).
pub fn install(pki: &PkiDir, kubeconfig_dir: &Path, from: &Path, options: &InstallOptions) -> Result<InstallReport> {
    let dir = CsrDir::new(from);
    if !from.is_dir() {
        return Err(Error::Csr {
            path: from.to_owned(),
            reason: "is not a directory (csr generate --out wrote it)".into(),
        });
    }
    let mut warnings = Vec::new();
    warn_unknown_certificates(from, &dir, &mut warnings);
    let mut problems: Vec<String> = Vec::new();
    let mut ready: Vec<Ready> = Vec::new();
    for leaf in Leaf::all() {
        match check_one(pki, &dir, leaf, options.now, &mut warnings) {
            Ok(Some(r)) => ready.push(r),
            Ok(None) => {}
            Err(p) => problems.extend(p),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Csr {
            path: from.to_owned(),
            reason: format!("nothing was installed:\n  {}", problems.join("\n  ")),
        });
    }
    if ready.is_empty() {
        return Err(Error::Csr {
            path: from.to_owned(),
            reason: "holds no signed certificate: put each one beside its CSR as <name>.crt (apiserver.crt, \
                     etcd/server.crt, admin.conf.crt)"
                .into(),
        });
    }

    let cluster_ca_pem =
        pki.read_certs(CaKind::Ca.base_name())?.map(|cs| cs.iter().map(Certificate::to_pem).collect::<String>());
    let mut tx = pki.transaction();
    let mut touched: Vec<PathBuf> = Vec::new();
    let mut installed = Vec::with_capacity(ready.len());
    for r in &ready {
        let cert_pem: String = r.certs.iter().map(Certificate::to_pem).collect();
        let (path, replaced) = match r.leaf {
            Leaf::CertDir(spec) => {
                let (cert_path, key_path) = (pki.cert_path(spec.base_name), pki.key_path(spec.base_name));
                let replaced = pki.read_certs(spec.base_name).ok().flatten().map(|mut c| c.swap_remove(0));
                touched.extend([&cert_path, &key_path].into_iter().filter(|p| p.exists()).cloned());
                pki.stage_pair(&mut tx, spec.base_name, &r.key, &cert_pem);
                (cert_path, replaced)
            }
            Leaf::Kubeconfig(spec) => {
                let path = kubeconfig_dir.join(spec.file_name);
                let key_pem = r.key.to_pem();
                let (kc, replaced, mode) = match Kubeconfig::read(&path)? {
                    Some(mut kc) => {
                        let user = kc.current()?.user;
                        let replaced = match kc.client_certificate(&user) {
                            Ok(Some(PemSource::Embedded(pem))) => {
                                Certificate::from_pem_bundle(&pem, spec.file_name).ok().map(|mut c| c.swap_remove(0))
                            }
                            _ => None,
                        };
                        kc.set_client_credentials(&user, &cert_pem, &key_pem)?;
                        touched.push(path.clone());
                        (kc, replaced, fsio::mode_of(&path)?)
                    }
                    None => {
                        let mut kc = r.partial.clone().expect(
                            "invariant: a kubeconfig leaf is ready only with its partial kubeconfig (its key is read \
                             from it)",
                        );
                        let current = kc.current()?;
                        kc.set_cluster_ca(&current.cluster, cluster_ca_pem.as_deref().unwrap_or_default())?;
                        kc.set_client_credentials(&current.user, &cert_pem, &key_pem)?;
                        (kc, None, kubepki_pki::KEY_MODE)
                    }
                };
                tx.add(&path, kc.to_yaml().as_bytes(), mode);
                (path, replaced)
            }
        };
        installed.push(Installed {
            name: r.leaf.name().to_owned(),
            ca: r.leaf.ca(),
            path,
            cert: r.certs[0].clone(),
            replaced,
        });
    }
    let backup = if touched.is_empty() {
        None
    } else {
        let files: Vec<&Path> = touched.iter().map(PathBuf::as_path).collect();
        Some(Backup::create(&crate::rotation::backup::run_dir(&options.backup_parent, options.now)?, &files)?)
    };
    let written = tx.commit()?;
    if let Some(log) = &options.audit_log {
        audit_log::append(log, &records(&installed, from))?;
    }
    Ok(InstallReport { installed, backup, written, warnings })
}

/// `*.crt` files of the CSR directory that are no leaf's certificate: a warning each.
fn warn_unknown_certificates(from: &Path, dir: &CsrDir, warnings: &mut Vec<String>) {
    let known: Vec<PathBuf> = Leaf::all().map(|l| dir.cert_path(l)).collect();
    for sub in [from.to_path_buf(), from.join("etcd")] {
        let Ok(entries) = std::fs::read_dir(&sub) else { continue };
        let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        names.sort();
        for p in names {
            if p.extension().is_some_and(|e| e == "crt") && !known.contains(&p) {
                warnings.push(format!("{} is not the certificate of a leaf kubepki installs; left alone", p.display()));
            }
        }
    }
}

/// Checks one leaf's signed certificate; `None` if the directory holds none for it. The
/// problems name the file at fault.
fn check_one(
    pki: &PkiDir,
    dir: &CsrDir,
    leaf: Leaf,
    now: OffsetDateTime,
    warnings: &mut Vec<String>,
) -> std::result::Result<Option<Ready>, Vec<String>> {
    let (cert_path, key_path, csr_path) = (dir.cert_path(leaf), dir.key_path(leaf), dir.csr_path(leaf));
    let at = |p: &Path, what: String| format!("{}: {what}", p.display());
    let one = |p: &Path, what: String| vec![at(p, what)];
    let partial = match leaf {
        Leaf::Kubeconfig(_) => Kubeconfig::read(&key_path).map_err(|e| vec![e.to_string()])?,
        Leaf::CertDir(_) => None,
    };
    let embedded = partial.as_ref().and_then(|kc| {
        let user = kc.current().ok()?.user;
        match kc.client_certificate(&user) {
            Ok(Some(PemSource::Embedded(pem))) if !pem.is_empty() => Some(pem),
            _ => None,
        }
    });
    let (source, pem) = match (fsio::read_optional(&cert_path, fsio::MAX_PEM_FILE, "certificate file"), embedded) {
        (Err(e), _) => return Err(vec![e.to_string()]),
        (Ok(Some(pem)), _) => (cert_path.display().to_string(), pem),
        (Ok(None), Some(pem)) => (format!("{} client-certificate-data", key_path.display()), pem),
        (Ok(None), None) => return Ok(None),
    };
    let certs = Certificate::from_pem_bundle(&pem, &source).map_err(|e| vec![e.to_string()])?;
    let cert = &certs[0];
    let key = match (&partial, leaf) {
        (_, Leaf::CertDir(_)) => match kubepki_pki::read_key(&key_path) {
            Ok(Some(k)) => k,
            Ok(None) => return Err(one(&key_path, format!("missing: the key csr generate wrote for {source}"))),
            Err(e) => return Err(vec![e.to_string()]),
        },
        (Some(kc), Leaf::Kubeconfig(_)) => {
            let key = kc.current().and_then(|c| kc.client_key(&c.user));
            match key {
                Ok(Some(PemSource::Embedded(pem))) => {
                    let pem = Zeroizing::new(pem);
                    let text = std::str::from_utf8(&pem).unwrap_or_default();
                    PrivateKey::from_pem(text, &format!("{} client-key-data", key_path.display()))
                        .map_err(|e| vec![e.to_string()])?
                }
                Ok(_) => return Err(one(&key_path, "has no client-key-data (the key csr generate wrote)".into())),
                Err(e) => return Err(vec![e.to_string()]),
            }
        }
        (None, Leaf::Kubeconfig(_)) => {
            return Err(one(&key_path, format!("missing: the partial kubeconfig csr generate wrote for {source}")));
        }
    };
    let mut problems = Vec::new();
    if !key.matches_spki(&cert.spki) {
        problems.push(format!(
            "{source}: its public key is not that of {} (a certificate for another CSR?)",
            key_path.display()
        ));
    }
    let csr = match fsio::read_optional(&csr_path, fsio::MAX_PEM_FILE, "CSR file") {
        Ok(Some(b)) => Csr::from_pem(&b, &csr_path.display().to_string()).map_err(|e| vec![e.to_string()])?,
        Ok(None) => return Err(one(&csr_path, "missing: install takes the expected identity from the CSR".into())),
        Err(e) => return Err(vec![e.to_string()]),
    };
    if !key.matches_spki(&csr.spki) {
        problems.push(at(&csr_path, format!("it is not the CSR of {}", key_path.display())));
    }
    check_chain(pki, leaf, cert, &source, now, &mut problems, warnings);
    check_identity(leaf, cert, &csr, &source, &mut problems);
    if now < cert.not_before {
        problems.push(format!("{source}: not valid before {}", cert.not_before));
    }
    if now > cert.not_after {
        problems.push(format!("{source}: expired at {}", cert.not_after));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Some(Ready { leaf, certs, key, partial }))
}

fn check_chain(
    pki: &PkiDir,
    leaf: Leaf,
    cert: &Certificate,
    source: &str,
    now: OffsetDateTime,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let ca = leaf.ca();
    let ca_path = pki.cert_path(ca.base_name());
    let cas = match pki.read_certs(ca.base_name()) {
        Ok(Some(cas)) => cas,
        Ok(None) => return problems.push(format!("{source}: its CA {} does not exist", ca_path.display())),
        Err(e) => return problems.push(format!("{source}: its CA cannot be read: {e}")),
    };
    let mut reason = String::new();
    let Some(issuer) = cas.iter().find(|c| match cert.verify_issued_by(c) {
        Ok(()) => true,
        Err(r) => {
            if reason.is_empty() {
                reason = r;
            }
            false
        }
    }) else {
        return problems.push(format!("{source}: not signed by {ca} ({}): {reason}", ca_path.display()));
    };
    if issuer.not_before > cert.not_before || now > issuer.not_after {
        problems.push(format!(
            "{source}: its CA {ca} ({}) is valid from {} to {}, which does not cover the certificate's NotBefore {} \
             until now",
            ca_path.display(),
            issuer.not_before,
            issuer.not_after,
            cert.not_before
        ));
    }
    if cert.not_after > issuer.not_after {
        warnings.push(format!(
            "{source} expires {}, after its CA {ca} ({}): it is only usable until then",
            cert.not_after, issuer.not_after
        ));
    }
}

fn check_identity(leaf: Leaf, cert: &Certificate, csr: &Csr, source: &str, problems: &mut Vec<String>) {
    if cert.is_ca {
        problems.push(format!("{source}: it is a CA certificate (basicConstraints CA:TRUE), not a leaf"));
    }
    if cert.subject != csr.subject {
        problems
            .push(format!("{source}: its subject is \"{}\" where the CSR asks for \"{}\"", cert.subject, csr.subject));
    }
    let (dns, ips) = csr.sans.missing_from(&cert.sans);
    if !dns.is_empty() || !ips.is_empty() {
        let missing: Vec<String> =
            dns.iter().map(|d| format!("DNS:{d}")).chain(ips.iter().map(|i| format!("IP:{i}"))).collect();
        problems.push(format!("{source}: it lacks the SANs {} that its CSR asks for{COPY_HINT}", missing.join(", ")));
    }
    let need = leaf.usage();
    let (server, client) = csr.usage.map_or((false, false), |u| (u.server_auth(), u.client_auth()));
    let (need_server, need_client) = (need.server_auth() || server, need.client_auth() || client);
    let have = cert.usage;
    let has = |s: bool, c: bool| have.is_some_and(|u| (!s || u.server_auth()) && (!c || u.client_auth()));
    if !has(need_server, need_client) {
        let want = Usage::from_flags(need_server, need_client).unwrap_or(need);
        let have = have.map_or_else(|| "none".to_owned(), |u| u.to_string());
        problems.push(format!("{source}: its extended key usage is {have} where {want} is needed{COPY_HINT}"));
    }
}

/// How to have an external CA issue what the CSR asks for.
const COPY_HINT: &str =
    " (have the CA copy the CSR's requested extensions, e.g. openssl x509 -req -copy_extensions copyall)";

/// Audit records for installed certificates.
fn records(installed: &[Installed], from: &Path) -> Vec<Record> {
    let now = OffsetDateTime::now_utc();
    let time = now
        .replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let (host, user) = (audit_log::host(), audit_log::user());
    installed
        .iter()
        .map(|i| Record {
            time: time.clone(),
            host: host.clone(),
            user: user.clone(),
            action: "install".into(),
            name: i.name.clone(),
            path: i.path.display().to_string(),
            old: i.replaced.as_ref().map(CertRef::of),
            new: Some(CertRef::of(&i.cert)),
            key_reused: false,
            reason: format!("signed by the external CA {}; installed from {}", i.ca, from.display()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_have_kubeadm_names_and_the_csr_layout() {
        let names: Vec<&str> = Leaf::all().map(Leaf::name).collect();
        assert_eq!(names.len(), 12);
        let dir = CsrDir::new("/out");
        let server = Leaf::from_name("etcd-server").unwrap();
        assert_eq!(dir.key_path(server), Path::new("/out/etcd/server.key"));
        assert_eq!(dir.csr_path(server), Path::new("/out/etcd/server.csr"));
        let admin = Leaf::from_name("admin.conf").unwrap();
        assert_eq!(dir.key_path(admin), Path::new("/out/admin.conf"));
        assert_eq!(dir.csr_path(admin), Path::new("/out/admin.conf.csr"));
        assert_eq!(dir.cert_path(admin), Path::new("/out/admin.conf.crt"));
        assert!(Leaf::from_name("apiserver.crt").unwrap_err().to_string().contains("etcd-server"));
    }
}
