//! A certificate authority: its certificate, and its key when kubepki holds it.
//!
//! A CA read from a cert dir either signs (kubepki holds its key) or is externally managed
//! (kubeadm's external CA mode: the key is absent), so [`CertificateAuthority`] keeps its key
//! as an `Option`. A CA kubepki has just made always holds its key: [`SigningCa`], the same
//! type with the key not optional, is what [`SigningCa::generate`] and [`SigningCa::from_key`]
//! return and what [`CertificateAuthority::into_signing`] gives a CA read with its key, so
//! code that signs or writes a new CA's key never has to handle a key that cannot be missing.

use std::path::PathBuf;

use time::OffsetDateTime;

use crate::cert::Certificate;
use crate::error::{Error, Result};
use crate::issue::{self, Signer};
use crate::key::{KeyAlgorithm, PrivateKey};
use crate::validity::{Lifetime, Validity};

/// A CA as found in (or made for) a cert dir. `K` is how its key is held: `Option<PrivateKey>`
/// (the default) for a CA read from disk, which may be external; [`PrivateKey`] for a
/// [`SigningCa`].
#[derive(Debug)]
pub struct CertificateAuthority<K = Option<PrivateKey>> {
    /// The CA's name (`ca`, `front-proxy-ca`, `etcd-ca`).
    pub name: String,
    /// The signing certificate: the first certificate of the CA file.
    pub cert: Certificate,
    /// Further certificates in the CA file (an overlap bundle during a CA rotation).
    pub others: Vec<Certificate>,
    /// Where the certificate lives.
    pub cert_path: PathBuf,
    /// Where the key lives (or would live).
    pub key_path: PathBuf,
    key: K,
}

/// A CA whose key kubepki holds: one it made, or one read with its key
/// ([`CertificateAuthority::into_signing`]).
pub type SigningCa = CertificateAuthority<PrivateKey>;

impl<K> CertificateAuthority<K> {
    /// Every certificate of the CA file, signing certificate first.
    pub fn certificates(&self) -> impl Iterator<Item = &Certificate> {
        std::iter::once(&self.cert).chain(&self.others)
    }

    /// The CA file's PEM: every certificate, signing certificate first.
    pub fn bundle_pem(&self) -> String {
        self.certificates().map(Certificate::to_pem).collect()
    }
}

impl CertificateAuthority {
    /// A CA from parts already checked by the caller (the key, if any, matches the cert).
    pub(crate) fn from_parts(
        name: String,
        certs: Vec<Certificate>,
        key: Option<PrivateKey>,
        cert_path: PathBuf,
        key_path: PathBuf,
    ) -> Result<Self> {
        let mut certs = certs.into_iter();
        let cert = certs.next().ok_or_else(|| Error::InvalidCertificate {
            source_name: cert_path.display().to_string(),
            reason: "no certificate".into(),
        })?;
        if !cert.is_ca {
            return Err(Error::NotCa { source_name: cert_path.display().to_string() });
        }
        if let Some(k) = &key
            && !k.matches_spki(&cert.spki)
        {
            return Err(Error::KeyMismatch {
                key: key_path.display().to_string(),
                cert: cert_path.display().to_string(),
            });
        }
        Ok(Self { name, cert, others: certs.collect(), cert_path, key_path, key })
    }

    /// The CA's key, if kubepki holds it.
    pub fn key(&self) -> Option<&PrivateKey> {
        self.key.as_ref()
    }

    /// Whether the CA is externally managed: its key is absent (kubeadm's external CA mode).
    pub fn is_external(&self) -> bool {
        self.key.is_none()
    }

    /// A signer, or an error naming `what` if the CA is external.
    pub fn signer(&self, what: &str) -> Result<Signer<'_>> {
        let key = self.key.as_ref().ok_or_else(|| Error::ExternalCa {
            name: what.to_owned(),
            ca: self.name.clone(),
            key: self.key_path.clone(),
        })?;
        Signer::new(&self.name, &self.cert, key)
    }

    /// The CA as a [`SigningCa`] if kubepki holds its key; `None` if it is external.
    pub fn into_signing(self) -> Option<SigningCa> {
        let Self { name, cert, others, cert_path, key_path, key } = self;
        Some(SigningCa { name, cert, others, cert_path, key_path, key: key? })
    }
}

impl SigningCa {
    /// Generates a new self-signed CA named `name` with subject CN `common_name`.
    pub fn generate(
        name: &str,
        common_name: &str,
        algorithm: KeyAlgorithm,
        lifetime: Lifetime,
        now: OffsetDateTime,
        cert_path: PathBuf,
        key_path: PathBuf,
    ) -> Result<Self> {
        let key = algorithm.generate()?;
        Self::from_key(name, common_name, key, lifetime, now, cert_path, key_path)
    }

    /// A new self-signed CA for an already generated key.
    pub fn from_key(
        name: &str,
        common_name: &str,
        key: PrivateKey,
        lifetime: Lifetime,
        now: OffsetDateTime,
        cert_path: PathBuf,
        key_path: PathBuf,
    ) -> Result<Self> {
        let cert = issue::self_signed_ca(common_name, &key, Validity::starting_at(now, lifetime))?;
        Ok(Self { name: name.to_owned(), cert, others: Vec::new(), cert_path, key_path, key })
    }

    /// The CA's key.
    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// A signer with the CA's key.
    pub fn signer(&self) -> Result<Signer<'_>> {
        Signer::new(&self.name, &self.cert, &self.key)
    }
}

impl From<SigningCa> for CertificateAuthority {
    fn from(ca: SigningCa) -> Self {
        let SigningCa { name, cert, others, cert_path, key_path, key } = ca;
        Self { name, cert, others, cert_path, key_path, key: Some(key) }
    }
}
