//! What `rotate` can renew, read from the same [`Inventory`](crate::inventory::Inventory) `check` and `tree` report: the
//! leaves of the cert dir and the client certificates embedded in kubeconfigs, each with the CA
//! of the cert dir that signed it — and, named the same way, what it cannot renew: leaves whose
//! CA is externally managed, leaves that are broken or missing.

use std::fs;
use std::path::{Path, PathBuf};

use kubepki_pki::{
    CaKind, Certificate, CertificateAuthority, Kubeconfig, LoadedPair, PemSource, PkiDir, PrivateKey, Profile,
};

use crate::error::{Error, Result};
use crate::inventory::{self, InventoryBuilder, Item, SourcePath, Sources, Stored};

/// Where a renewable certificate lives.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Location {
    /// `<cert dir>/<base>.crt` and `.key`.
    CertDir {
        /// The file stem, e.g. `etcd/server`.
        base: String,
        /// The certificate file.
        cert_path: PathBuf,
        /// The key file.
        key_path: PathBuf,
    },
    /// A user's embedded `client-certificate-data`/`client-key-data` in a kubeconfig.
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// The user.
        user: String,
    },
}

impl Location {
    /// The file that holds the certificate.
    pub fn path(&self) -> &Path {
        match self {
            Self::CertDir { cert_path, .. } => cert_path,
            Self::Kubeconfig { path, .. } => path,
        }
    }
}

/// A certificate `rotate` can renew.
#[derive(Debug)]
pub struct RenewalTarget {
    /// kubeadm's name (`apiserver`, `etcd-peer`, `admin.conf`), the file stem of another leaf
    /// in the cert dir, or `<file>:<user>` for a kubeconfig user other than the current one.
    pub name: String,
    /// Where it lives.
    pub location: Location,
    /// The certificate in use.
    pub cert: Certificate,
    /// Its key (kept for `--reuse-key`).
    pub key: PrivateKey,
    /// The cert-dir CA that signed it.
    pub ca: CaKind,
}

/// A cert dir leaf `rotate` cannot renew as it is: its files are broken, or absent.
#[derive(Debug)]
pub struct Unusable {
    /// kubeadm's name (`apiserver`), or the file stem of another leaf.
    pub name: String,
    /// Its files.
    pub location: Location,
    /// kubeadm's profile, for a kubeadm leaf.
    pub profile: Option<Profile>,
    /// The CA that signs it.
    pub ca: CaKind,
    /// What is wrong.
    pub problem: Problem,
    /// The certificate, when it can still be read (its identity is kept when it is reissued).
    pub cert: Option<Certificate>,
}

/// What makes a leaf [`Unusable`].
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Problem {
    /// Its certificate or key cannot be read, or they do not belong together.
    Broken {
        /// Why, naming the file.
        reason: String,
    },
    /// kubeadm's leaf, expected (its CA is in the cert dir), and neither file is there.
    Missing,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Broken { reason } => write!(f, "broken: {reason}"),
            Self::Missing => f.write_str("missing"),
        }
    }
}

/// A leaf signed by an externally managed CA (kubeadm's external-CA mode: the CA's
/// certificate is in the cert dir, its key is not): renewed elsewhere, or through CSRs.
#[derive(Clone, Debug)]
pub struct External {
    /// Its name.
    pub name: String,
    /// Where it lives.
    pub location: Location,
    /// The CA.
    pub ca: CaKind,
    /// The CA key that is absent.
    pub ca_key: PathBuf,
    /// Its NotAfter.
    pub not_after: kubepki_pki::OffsetDateTime,
}

/// A certificate that was found but will not be rotated, and why.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Skipped {
    /// Its name.
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// Why it is left alone.
    pub reason: String,
}

/// The CAs of a cert dir, loaded once.
#[derive(Debug)]
pub struct Cas {
    cas: Vec<CertificateAuthority>,
}

impl Cas {
    /// Loads every CA that exists in `pki`.
    pub fn load(pki: &PkiDir) -> Result<Self> {
        let mut cas = Vec::new();
        for kind in CaKind::ALL {
            if let Some(ca) = pki.load_ca(kind)? {
                cas.push(ca);
            }
        }
        Ok(Self { cas })
    }

    /// Plans and signs with `cert` as the certificate of the CA `kind` (which must be present:
    /// otherwise nothing changes): a CA `recover` extends, with the same key and subject.
    pub fn replace_certificate(&mut self, kind: CaKind, cert: Certificate) {
        if let Some(ca) = self.cas.iter_mut().find(|c| c.name == kind.name()) {
            ca.cert = cert;
        }
    }

    /// The CA of a kind, if present.
    pub fn get(&self, kind: CaKind) -> Option<&CertificateAuthority> {
        self.cas.iter().find(|c| c.name == kind.name())
    }

    /// The CA that issued `cert`, if it is one of these.
    pub fn issuer_of(&self, cert: &Certificate) -> Option<CaKind> {
        CaKind::ALL
            .into_iter()
            .find(|&k| self.get(k).is_some_and(|ca| ca.certificates().any(|c| cert.verify_issued_by(c).is_ok())))
    }
}

/// Everything under a cert dir and a set of kubeconfigs, sorted by what `rotate` can do with it.
#[derive(Debug, Default)]
pub struct Discovery {
    /// What can be renewed.
    pub targets: Vec<RenewalTarget>,
    /// Cert dir leaves that are broken or missing: renewed only when named with `--force`.
    pub unusable: Vec<Unusable>,
    /// Leaves of an externally managed CA.
    pub external: Vec<External>,
    /// What was found and left alone.
    pub skipped: Vec<Skipped>,
    /// Inputs that could not be read at all (a kubeconfig that is not YAML).
    pub unreadable: Vec<Skipped>,
}

impl Discovery {
    /// Every name `--force` can take.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().map(|t| t.name.as_str()).chain(self.unusable.iter().map(|u| u.name.as_str()))
    }
}

/// Finds what `rotate` works on, through the same inventory as `check`: kubeadm's leaves of the
/// cert dir (a broken one is [`Unusable`], not an error; so is a missing one, when its CA is
/// there), any other `<name>.crt` with its `.key` in the cert dir and its `etcd/` directory,
/// the client certificates embedded in `kubeconfigs`, and kubelet serving certificates under
/// `kubelet_dirs`. CAs are not targets (`rotate-ca` rotates them).
pub fn discover(pki: &PkiDir, cas: &Cas, kubeconfigs: &[PathBuf], kubelet_dirs: &[PathBuf]) -> Result<Discovery> {
    let sources = Sources {
        cert_dir: Some(SourcePath::explicit(pki.root())),
        kubeconfigs: kubeconfigs.iter().map(SourcePath::explicit).collect(),
        ..Sources::default()
    };
    let inventory = InventoryBuilder::discover(&sources).finish();
    let mut out = Discovery::default();
    // A kubeconfig that cannot be read at all is reported by name; the rest is still renewed.
    // (What the cert dir's files lack is on their items.)
    for e in inventory.errors.iter().filter(|e| !Path::new(&e.input).starts_with(pki.root())) {
        out.unreadable.push(Skipped {
            name: e.input.clone(),
            path: PathBuf::from(&e.input),
            reason: e.message.clone(),
        });
    }
    for item in inventory.items.iter().filter(|i| i.location.index() == 0) {
        match &item.location {
            inventory::Location::CertDir { base, cert_path, key_path, .. } => {
                if CaKind::ALL.iter().any(|k| k.base_name() == base) {
                    continue;
                }
                let location =
                    Location::CertDir { base: base.clone(), cert_path: cert_path.clone(), key_path: key_path.clone() };
                add_cert_dir_item(&mut out, cas, item, location);
            }
            // A kubeconfig that is not there is reported by `check`; rotate does not make one.
            inventory::Location::Kubeconfig { .. } if item.is_missing() => {}
            inventory::Location::Kubeconfig { path, user, cert, key, .. } => {
                add_kubeconfig_item(&mut out, cas, item, path, user, cert, key.as_ref());
            }
            _ => {}
        }
    }
    // Leaves of the cert dir that are not kubeadm's (the inventory reads kubeadm's names only).
    for base in other_leaf_bases(pki.root())? {
        let location =
            Location::CertDir { base: base.clone(), cert_path: pki.cert_path(&base), key_path: pki.key_path(&base) };
        match pki.load_pair(&base) {
            Ok(Some(pair)) => add_pair(&mut out, cas, base, location, pair),
            Ok(None) => {}
            Err(e) => {
                let cert = read_cert(&location);
                let Some(ca) = cert.as_ref().and_then(|c| cas.issuer_of(c)) else {
                    let path = location.path().to_owned();
                    out.skipped.push(Skipped { name: base, path, reason: e.to_string() });
                    continue;
                };
                out.unusable.push(Unusable {
                    name: base,
                    location,
                    profile: None,
                    ca,
                    problem: Problem::Broken { reason: e.to_string() },
                    cert,
                });
            }
        }
    }
    for dir in kubelet_dirs {
        for (name, node_dir) in kubelet_serving_dirs(dir)? {
            let node = PkiDir::new(&node_dir);
            let location = Location::CertDir {
                base: "kubelet".into(),
                cert_path: node.cert_path("kubelet"),
                key_path: node.key_path("kubelet"),
            };
            match node.load_pair("kubelet") {
                Ok(Some(pair)) => add_pair(&mut out, cas, name, location, pair),
                Ok(None) => {}
                Err(e) => {
                    let cert = read_cert(&location);
                    let ca = cert.as_ref().and_then(|c| cas.issuer_of(c)).unwrap_or(CaKind::Ca);
                    let problem = Problem::Broken { reason: e.to_string() };
                    out.unusable.push(Unusable { name, location, profile: None, ca, problem, cert });
                }
            }
        }
    }
    Ok(out)
}

/// The certificate of a location, if it can be read (a broken leaf's identity).
fn read_cert(location: &Location) -> Option<Certificate> {
    kubepki_pki::read_certs(location.path()).ok()??.into_iter().next()
}

fn ca_kind(item: &Item) -> Option<CaKind> {
    let name = item.ca_name.as_deref().or(item.expected_ca.map(CaKind::name))?;
    CaKind::ALL.into_iter().find(|k| k.name() == name)
}

/// A kubeadm leaf of the cert dir, as the inventory judged it.
fn add_cert_dir_item(out: &mut Discovery, cas: &Cas, item: &Item, location: Location) {
    let profile = Profile::ALL.into_iter().find(|p| p.name() == item.name);
    let Some(ca) = ca_kind(item) else { return };
    let broken = |reason: String, cert: Option<Certificate>| Unusable {
        name: item.name.clone(),
        location: location.clone(),
        profile,
        ca,
        problem: Problem::Broken { reason },
        cert,
    };
    let Location::CertDir { key_path, .. } = &location else { return };
    let cert = match &item.certificate {
        // Neither file, and the inventory expects it (its CA is here, on a control plane).
        Err(_) if item.is_missing() => {
            return out.unusable.push(Unusable { problem: Problem::Missing, ..broken(String::new(), None) });
        }
        Ok(cert) => cert.clone(),
        Err(reason) => return out.unusable.push(broken(reason.clone(), None)),
    };
    if let Some(f) = item
        .findings
        .iter()
        .find(|f| matches!(f, inventory::Finding::KeyMismatch { .. } | inventory::Finding::KeyMissing { .. }))
    {
        return out.unusable.push(broken(f.to_string(), Some(cert)));
    }
    let key = match kubepki_pki::read_key(key_path) {
        Ok(Some(key)) if key.matches_spki(&cert.spki) => key,
        Ok(Some(_)) => {
            let reason = format!("{} does not match {}", key_path.display(), location.path().display());
            return out.unusable.push(broken(reason, Some(cert)));
        }
        Ok(None) => {
            let reason = format!("{} exists but {} does not", location.path().display(), key_path.display());
            return out.unusable.push(broken(reason, Some(cert)));
        }
        Err(e) => return out.unusable.push(broken(e.to_string(), Some(cert))),
    };
    add_sound(out, cas, item.name.clone(), location, cert, key, Some(ca));
}

/// A sound pair: a target, an external leaf, or skipped when no CA of the cert dir signed it.
fn add_sound(
    out: &mut Discovery,
    cas: &Cas,
    name: String,
    location: Location,
    cert: Certificate,
    key: PrivateKey,
    expected: Option<CaKind>,
) {
    if cert.is_ca {
        return;
    }
    let Some(ca) = cas.issuer_of(&cert) else {
        let reason = match expected {
            Some(ca) => format!("not signed by {} (the cert dir's {})", ca.base_name(), ca.name()),
            None => "not signed by a CA of the cert dir".into(),
        };
        out.skipped.push(Skipped { name, path: location.path().to_owned(), reason });
        return;
    };
    match cas.get(ca) {
        Some(authority) if authority.is_external() => out.external.push(External {
            name,
            ca,
            ca_key: authority.key_path.clone(),
            not_after: cert.not_after,
            location,
        }),
        _ => out.targets.push(RenewalTarget { name, location, cert, key, ca }),
    }
}

fn add_pair(out: &mut Discovery, cas: &Cas, name: String, location: Location, pair: LoadedPair) {
    let cert = pair.leaf().clone();
    add_sound(out, cas, name, location, cert, pair.key, None);
}

/// A kubeconfig user's client certificate, as the inventory read it. A certificate or key
/// that cannot be used makes the user [`Unusable`], not the run fail.
fn add_kubeconfig_item(
    out: &mut Discovery,
    cas: &Cas,
    item: &Item,
    path: &Path,
    user: &str,
    cert: &Stored,
    key: Option<&Stored>,
) {
    if let Stored::File(f) = cert {
        let reason = format!("its client certificate is the file {} (rotated by its owner)", f.display());
        out.skipped.push(Skipped { name: item.name.clone(), path: path.to_owned(), reason });
        return;
    }
    if key.is_some_and(|k| k != &Stored::Embedded) {
        return;
    }
    let location = Location::Kubeconfig { path: path.to_owned(), user: user.to_owned() };
    match embedded_pair(path, user) {
        Ok((cert, key)) => add_sound(out, cas, item.name.clone(), location, cert, key, None),
        Err(e) => {
            let cert = item.cert().cloned();
            let Some(ca) = cert.as_ref().and_then(|c| cas.issuer_of(c)).or_else(|| ca_kind(item)) else { return };
            let problem = Problem::Broken { reason: e.to_string() };
            out.unusable.push(Unusable { name: item.name.clone(), location, profile: None, ca, problem, cert });
        }
    }
}

/// A kubeconfig user's embedded certificate and key, checked to match.
fn embedded_pair(path: &Path, user: &str) -> Result<(Certificate, PrivateKey)> {
    let kc = Kubeconfig::read(path)?.ok_or_else(|| Error::Missing { path: path.to_owned() })?;
    let source = path.display().to_string();
    let (cert_source, key_source) =
        (format!("{source} user {user:?} client-certificate-data"), format!("{source} user {user:?} client-key-data"));
    let (Some(PemSource::Embedded(cert_pem)), Some(PemSource::Embedded(key_pem))) =
        (kc.client_certificate(user)?, kc.client_key(user)?)
    else {
        return Err(kubepki_pki::Error::InvalidKey { source_name: key_source, reason: "no embedded key".into() }.into());
    };
    let cert = Certificate::from_pem_bundle(&cert_pem, &cert_source)?.remove(0);
    let key_pem = zeroize::Zeroizing::new(key_pem);
    let key_text = std::str::from_utf8(&key_pem).map_err(|_| kubepki_pki::Error::InvalidKey {
        source_name: key_source.clone(),
        reason: "not PEM text".into(),
    })?;
    let key = PrivateKey::from_pem(key_text, &key_source)?;
    if !key.matches_spki(&cert.spki) {
        return Err(kubepki_pki::Error::KeyMismatch { key: key_source, cert: cert_source }.into());
    }
    Ok((cert, key))
}

/// The kubelet serving certificates (`kubelet.crt` + `kubelet.key`) under `dir`: the directory
/// itself (a node's `/var/lib/kubelet/pki`, named `kubelet-serving`) or, as `kubepki issue
/// kubelet-serving --out DIR` lays them out, one directory per node (`kubelet-serving/<node>`).
fn kubelet_serving_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    if !dir.is_dir() {
        return Err(Error::Missing { path: dir.to_owned() });
    }
    if dir.join("kubelet.crt").exists() {
        return Ok(vec![("kubelet-serving".into(), dir.to_owned())]);
    }
    let mut found: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .map_err(|source| kubepki_pki::Error::Read { path: dir.to_owned(), source })?
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.path().join("kubelet.crt").exists())
        .map(|e| (format!("kubelet-serving/{}", e.file_name().to_string_lossy()), e.path()))
        .collect();
    found.sort();
    Ok(found)
}

/// `<base>` for every `<base>.crt` in the cert dir and in `etcd/` (kubeadm's two levels) that
/// is neither a kubeadm leaf nor a CA.
fn other_leaf_bases(root: &Path) -> Result<Vec<String>> {
    let mut bases = Vec::new();
    for sub in ["", "etcd"] {
        let dir = root.join(sub);
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".crt").filter(|s| !s.starts_with('.')) {
                let base = if sub.is_empty() { stem.to_owned() } else { format!("{sub}/{stem}") };
                let known = Profile::ALL.iter().any(|p| p.spec().base_name == base)
                    || CaKind::ALL.iter().any(|k| k.base_name() == base);
                if !known {
                    bases.push(base);
                }
            }
        }
    }
    bases.sort();
    Ok(bases)
}

/// The `*.conf` files of a kubeconfig dir, sorted.
pub fn kubeconfigs_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
