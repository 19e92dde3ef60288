//! The cert dir in kubeadm's layout: `<base>.crt` (0644) and `<base>.key` (0600), with the etcd
//! files under `etcd/`, and `sa.key`/`sa.pub`.

use std::path::{Path, PathBuf};

use crate::ca::CertificateAuthority;
use crate::cert::Certificate;
use crate::error::{Error, Result};
use crate::fsio::{self, MAX_PEM_FILE, Transaction};
use crate::key::PrivateKey;
use crate::profile::CaKind;

/// Mode of certificate files.
pub const CERT_MODE: u32 = 0o644;
/// Mode of private key files (and, as kubeadm writes it, `sa.pub`).
pub const KEY_MODE: u32 = 0o600;

/// A cert dir (`/etc/kubernetes/pki` by default).
#[derive(Clone, Debug)]
pub struct PkiDir {
    root: PathBuf,
    allow_insecure_permissions: bool,
}

/// A certificate file and its key, loaded and checked to match.
#[derive(Debug)]
pub struct LoadedPair {
    /// The certificates of the `.crt` file (the leaf first).
    pub certs: Vec<Certificate>,
    /// The key.
    pub key: PrivateKey,
    /// The certificate file.
    pub cert_path: PathBuf,
    /// The key file.
    pub key_path: PathBuf,
}

impl LoadedPair {
    /// The leaf certificate.
    pub fn leaf(&self) -> &Certificate {
        &self.certs[0]
    }
}

impl PkiDir {
    /// The cert dir at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), allow_insecure_permissions: false }
    }

    /// Accept CA keys readable by group or others (refused by default).
    pub fn allow_insecure_permissions(mut self, allow: bool) -> Self {
        self.allow_insecure_permissions = allow;
        self
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<base>.crt`.
    pub fn cert_path(&self, base: &str) -> PathBuf {
        self.root.join(format!("{base}.crt"))
    }

    /// `<root>/<base>.key`.
    pub fn key_path(&self, base: &str) -> PathBuf {
        self.root.join(format!("{base}.key"))
    }

    /// `<root>/sa.key`.
    pub fn sa_key_path(&self) -> PathBuf {
        self.root.join("sa.key")
    }

    /// `<root>/sa.pub`.
    pub fn sa_pub_path(&self) -> PathBuf {
        self.root.join("sa.pub")
    }

    /// Reads the certificates of `<base>.crt`; `None` if the file does not exist.
    pub fn read_certs(&self, base: &str) -> Result<Option<Vec<Certificate>>> {
        read_certs(&self.cert_path(base))
    }

    /// Reads `<base>.key`; `None` if the file does not exist.
    pub fn read_key(&self, base: &str) -> Result<Option<PrivateKey>> {
        read_key(&self.key_path(base))
    }

    /// Loads `<base>.crt` and `<base>.key` together: `None` if neither exists, an error if only
    /// one does or if the key does not match the certificate.
    pub fn load_pair(&self, base: &str) -> Result<Option<LoadedPair>> {
        let (cert_path, key_path) = (self.cert_path(base), self.key_path(base));
        let bytes = fsio::read_pair(&cert_path, &key_path, MAX_PEM_FILE, Some(&crate::lock::state_dir(&self.root)))?;
        let certs =
            bytes.cert.map(|b| Certificate::from_pem_bundle(&b, &cert_path.display().to_string())).transpose()?;
        let key = bytes.key.map(|b| parse_key(b, &key_path)).transpose()?;
        match (certs, key) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(Error::HalfPair { present: cert_path, missing: key_path }),
            (None, Some(_)) => Err(Error::HalfPair { present: key_path, missing: cert_path }),
            (Some(certs), Some(key)) => {
                if !key.matches_spki(&certs[0].spki) {
                    return Err(Error::KeyMismatch {
                        key: key_path.display().to_string(),
                        cert: cert_path.display().to_string(),
                    });
                }
                Ok(Some(LoadedPair { certs, key, cert_path, key_path }))
            }
        }
    }

    /// Loads a CA: `None` if its certificate does not exist. The certificate must be a CA; its
    /// key, when present, must match and must not be readable by group or others. A CA
    /// without its key is externally managed.
    pub fn load_ca(&self, kind: CaKind) -> Result<Option<CertificateAuthority>> {
        let base = kind.base_name();
        let (cert_path, key_path) = (self.cert_path(base), self.key_path(base));
        let Some(certs) = self.read_certs(base)? else {
            if key_path.exists() {
                return Err(Error::HalfPair { present: key_path, missing: cert_path });
            }
            return Ok(None);
        };
        let key = self.read_key(base)?;
        if key.is_some() && !self.allow_insecure_permissions {
            let mode = fsio::mode_of(&key_path)?;
            if mode & 0o077 != 0 {
                return Err(Error::InsecurePermissions { path: key_path, mode });
            }
        }
        CertificateAuthority::from_parts(kind.name().to_owned(), certs, key, cert_path, key_path).map(Some)
    }

    /// Adds a certificate and its key to `tx`, with kubeadm's modes; they change together, the
    /// certificate first (see [`fsio`]).
    pub fn stage_pair(&self, tx: &mut Transaction, base: &str, key: &PrivateKey, cert_pem: &str) {
        tx.add(self.cert_path(base), cert_pem.as_bytes(), CERT_MODE);
        tx.add(self.key_path(base), key.to_pem().as_bytes(), KEY_MODE);
    }

    /// A transaction for this cert dir (and the kubeconfigs beside it), journaled in its state
    /// dir ([`crate::lock::state_dir`]), outside the cert dir.
    pub fn transaction(&self) -> Transaction {
        Transaction::new(crate::lock::state_dir(&self.root))
    }
}

/// Reads every certificate of a PEM file; `None` if it does not exist.
pub fn read_certs(path: &Path) -> Result<Option<Vec<Certificate>>> {
    let Some(bytes) = fsio::read_optional(path, MAX_PEM_FILE, "certificate file")? else {
        return Ok(None);
    };
    Certificate::from_pem_bundle(&bytes, &path.display().to_string()).map(Some)
}

/// Reads a PEM private key; `None` if it does not exist.
pub fn read_key(path: &Path) -> Result<Option<PrivateKey>> {
    let Some(bytes) = fsio::read_optional(path, MAX_PEM_FILE, "key file")? else {
        return Ok(None);
    };
    parse_key(zeroize::Zeroizing::new(bytes), path).map(Some)
}

fn parse_key(bytes: zeroize::Zeroizing<Vec<u8>>, path: &Path) -> Result<PrivateKey> {
    let source = path.display().to_string();
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::InvalidKey {
        source_name: source.clone(),
        reason: "not PEM: the file is not text".into(),
    })?;
    PrivateKey::from_pem(text, &source)
}
