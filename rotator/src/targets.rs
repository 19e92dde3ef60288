//! What `rotate` can renew: the leaves of the cert dir and the client certificates embedded in
//! kubeconfigs, each with the CA of the cert dir that signed it.

use std::path::{Path, PathBuf};

use kubepki_pki::kubeconfig::PemSource;
use kubepki_pki::store::LoadedPair;
use kubepki_pki::{CaKind, Certificate, CertificateAuthority, Kubeconfig, PkiDir, PrivateKey, Profile};

use crate::error::{Error, Result};

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
pub struct Target {
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

/// Everything renewable under a cert dir and a set of kubeconfigs.
#[derive(Debug, Default)]
pub struct Discovery {
    /// What can be renewed.
    pub targets: Vec<Target>,
    /// What was found and left alone.
    pub skipped: Vec<Skipped>,
}

/// Finds the leaves of the cert dir (kubeadm's, and any other `<name>.crt` with its `.key`
/// signed by one of its CAs, in the cert dir and its `etcd/` directory), the client
/// certificates embedded in `kubeconfigs`, and kubelet serving certificates under
/// `kubelet_dirs`.
pub fn discover(pki: &PkiDir, cas: &Cas, kubeconfigs: &[PathBuf], kubelet_dirs: &[PathBuf]) -> Result<Discovery> {
    let mut out = Discovery::default();
    for base in leaf_bases(pki.root())? {
        let Some(pair) = pki.load_pair(&base)? else { continue };
        let name = Profile::ALL
            .into_iter()
            .find(|p| p.spec().base_name == base)
            .map_or_else(|| base.clone(), |p| p.name().to_owned());
        add_pair(&mut out, cas, name, base, pair);
    }
    for path in kubeconfigs {
        add_kubeconfig(&mut out, cas, path)?;
    }
    for dir in kubelet_dirs {
        for (name, node_dir) in kubelet_serving_dirs(dir)? {
            let Some(pair) = PkiDir::new(&node_dir).load_pair("kubelet")? else { continue };
            add_pair(&mut out, cas, name, "kubelet".into(), pair);
        }
    }
    Ok(out)
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
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|source| kubepki_pki::Error::Read { path: dir.to_owned(), source })?
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.path().join("kubelet.crt").exists())
        .map(|e| (format!("kubelet-serving/{}", e.file_name().to_string_lossy()), e.path()))
        .collect();
    found.sort();
    Ok(found)
}

fn add_pair(out: &mut Discovery, cas: &Cas, name: String, base: String, pair: LoadedPair) {
    let cert = pair.leaf().clone();
    if cert.is_ca {
        return;
    }
    let Some(ca) = cas.issuer_of(&cert) else {
        out.skipped.push(Skipped { name, path: pair.cert_path, reason: "not signed by a CA of the cert dir".into() });
        return;
    };
    let location = Location::CertDir { base, cert_path: pair.cert_path, key_path: pair.key_path };
    out.targets.push(Target { name, location, cert, key: pair.key, ca });
}

/// `<base>` for every `<base>.crt` in the cert dir and in `etcd/` (kubeadm's two levels).
fn leaf_bases(root: &Path) -> Result<Vec<String>> {
    let mut bases = Vec::new();
    for sub in ["", "etcd"] {
        let dir = root.join(sub);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".crt").filter(|s| !s.starts_with('.')) {
                bases.push(if sub.is_empty() { stem.to_owned() } else { format!("{sub}/{stem}") });
            }
        }
    }
    bases.sort();
    Ok(bases)
}

fn add_kubeconfig(out: &mut Discovery, cas: &Cas, path: &Path) -> Result<()> {
    let kc = Kubeconfig::read(path)?.ok_or_else(|| Error::Missing { path: path.to_owned() })?;
    let source = path.display().to_string();
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let current_user = kc.current().ok().map(|c| c.user);
    for user in kc.user_names() {
        let name =
            if Some(user) == current_user.as_deref() { file_name.clone() } else { format!("{file_name}:{user}") };
        let (cert, key) = match (kc.client_certificate(user)?, kc.client_key(user)?) {
            (Some(PemSource::Embedded(cert)), Some(PemSource::Embedded(key))) => (cert, zeroize::Zeroizing::new(key)),
            (Some(PemSource::File(f)), _) => {
                let reason = format!("its client certificate is the file {} (rotated by its owner)", f.display());
                out.skipped.push(Skipped { name, path: path.to_owned(), reason });
                continue;
            }
            _ => continue,
        };
        let cert_source = format!("{source} user {user:?} client-certificate-data");
        let cert = Certificate::from_pem_bundle(&cert, &cert_source)?.remove(0);
        let key_text = std::str::from_utf8(&key).map_err(|_| kubepki_pki::Error::InvalidKey {
            source_name: format!("{source} user {user:?} client-key-data"),
            reason: "not PEM text".into(),
        })?;
        let key = PrivateKey::from_pem(key_text, &format!("{source} user {user:?} client-key-data"))?;
        if !key.matches_spki(&cert.spki) {
            return Err(kubepki_pki::Error::KeyMismatch {
                key: format!("{source} user {user:?} client-key-data"),
                cert: cert_source,
            }
            .into());
        }
        let Some(ca) = cas.issuer_of(&cert) else {
            out.skipped.push(Skipped {
                name,
                path: path.to_owned(),
                reason: "not signed by a CA of the cert dir".into(),
            });
            continue;
        };
        let location = Location::Kubeconfig { path: path.to_owned(), user: user.to_owned() };
        out.targets.push(Target { name, location, cert, key, ca });
    }
    Ok(())
}

/// The `*.conf` files of a kubeconfig dir, sorted.
pub fn kubeconfigs_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
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
