//! A certificate authority: its certificate, and its key when kubepki holds it.

use std::path::PathBuf;

use time::OffsetDateTime;

use crate::cert::Certificate;
use crate::error::{Error, Result};
use crate::issue::{self, Signer};
use crate::key::{KeyAlgorithm, PrivateKey};
use crate::validity::{Lifetime, Validity};

/// A CA as found in (or made for) a cert dir.
#[derive(Debug)]
pub struct CertificateAuthority {
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
    key: Option<PrivateKey>,
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
        Ok(Self { name: name.to_owned(), cert, others: Vec::new(), cert_path, key_path, key: Some(key) })
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

    /// Every certificate of the CA file, signing certificate first.
    pub fn certificates(&self) -> impl Iterator<Item = &Certificate> {
        std::iter::once(&self.cert).chain(&self.others)
    }

    /// The CA file's PEM: every certificate, signing certificate first.
    pub fn bundle_pem(&self) -> String {
        self.certificates().map(Certificate::to_pem).collect()
    }
}
