//! The material a target is verified with, read from disk (or made in memory) when a run
//! starts: the server CA as rustls roots, client identities, the certificate that should be
//! served, and a throwaway client from a wrong CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kubepki_pki::fsio::{self, MAX_CONFIG_FILE, MAX_PEM_FILE};
use kubepki_pki::{
    AltNames, CertRequest, Certificate, KeyAlgorithm, Kubeconfig, Lifetime, PemSource, PrivateKey, Signer,
};
use kubepki_pki::{Subject, Usage, Validity};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::target::{ClientCredential, Target, WrongCa};

/// A client certificate and key, ready for rustls and for etcd's gRPC client.
pub(crate) struct Identity {
    /// The leaf, parsed.
    pub(crate) leaf: Certificate,
    /// Where it came from (a file, a kubeconfig, or "a throwaway CA").
    pub(crate) source: String,
    /// For rustls.
    pub(crate) certified: Arc<CertifiedKey>,
    /// The certificate chain's PEM (for tonic).
    pub(crate) cert_pem: Vec<u8>,
    /// The key's PEM (for tonic). Key material: never printed.
    pub(crate) key_pem: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("subject", &self.leaf.subject_string)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// From PEM bytes; `cert_name`/`key_name` name the sources in errors.
    fn from_pem(
        cert_pem: Vec<u8>,
        key_pem: Zeroizing<Vec<u8>>,
        cert_name: &str,
        key_name: &str,
        provider: &CryptoProvider,
    ) -> Result<Self, String> {
        let certs = Certificate::from_pem_bundle(&cert_pem, cert_name).map_err(|e| e.to_string())?;
        let key_text =
            std::str::from_utf8(&key_pem).map_err(|_| format!("{key_name}: not PEM: the key is not text"))?;
        let key = PrivateKey::from_pem(key_text, key_name).map_err(|e| e.to_string())?;
        if !key.matches_spki(&certs[0].spki) {
            return Err(format!("the key {key_name} does not belong to the certificate {cert_name}"));
        }
        let chain: Vec<CertificateDer<'static>> =
            certs.iter().map(|c| CertificateDer::from(c.der().to_vec())).collect();
        let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| format!("{key_name}: the private key cannot be read: {e}"))?;
        let certified = CertifiedKey::from_der(chain, key_der, provider)
            .map_err(|e| format!("{key_name}: the key cannot be used for TLS: {e}"))?;
        let leaf = certs.into_iter().next().ok_or_else(|| format!("{cert_name}: no certificate"))?;
        Ok(Self { leaf, source: cert_name.to_owned(), certified: Arc::new(certified), cert_pem, key_pem })
    }

    fn from_files(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Self, String> {
        let cert_pem = fsio::read_required(cert, MAX_PEM_FILE, "certificate file").map_err(|e| e.to_string())?;
        let key_pem = Zeroizing::new(fsio::read_required(key, MAX_PEM_FILE, "key file").map_err(|e| e.to_string())?);
        Self::from_pem(cert_pem, key_pem, &cert.display().to_string(), &key.display().to_string(), provider)
    }

    fn from_kubeconfig(path: &Path, provider: &CryptoProvider) -> Result<Self, String> {
        let name = path.display().to_string();
        let text = fsio::read_required(path, MAX_CONFIG_FILE, "kubeconfig").map_err(|e| e.to_string())?;
        let text = Zeroizing::new(String::from_utf8(text).map_err(|_| format!("{name}: not a text file"))?);
        let kc = Kubeconfig::from_yaml(&text, &name).map_err(|e| e.to_string())?;
        let user = kc.current().map_err(|e| e.to_string())?.user;
        let base = path.parent().unwrap_or(Path::new("."));
        let read = |source: Option<PemSource>, what: &'static str| -> Result<(Zeroizing<Vec<u8>>, String), String> {
            match source {
                None => Err(format!("{name}: user {user:?} has no {what} (a client certificate is needed)")),
                Some(PemSource::Embedded(bytes)) => Ok((Zeroizing::new(bytes), format!("{name} ({what}-data)"))),
                Some(PemSource::File(p)) => {
                    let p = if p.is_absolute() { p } else { base.join(p) };
                    let bytes = fsio::read_required(&p, MAX_PEM_FILE, what).map_err(|e| e.to_string())?;
                    Ok((Zeroizing::new(bytes), p.display().to_string()))
                }
            }
        };
        let (cert_pem, cert_name) =
            read(kc.client_certificate(&user).map_err(|e| e.to_string())?, "client-certificate")?;
        let (key_pem, key_name) = read(kc.client_key(&user).map_err(|e| e.to_string())?, "client-key")?;
        let mut id = Self::from_pem(cert_pem.to_vec(), key_pem, &cert_name, &key_name, provider)?;
        id.source = format!("{name} (user {user})");
        Ok(id)
    }

    fn load(credential: &ClientCredential, provider: &CryptoProvider) -> Result<Self, String> {
        match credential {
            ClientCredential::Files { cert, key } => Self::from_files(cert, key, provider),
            ClientCredential::Kubeconfig(path) => Self::from_kubeconfig(path, provider),
        }
    }

    /// A client certificate from a CA made here and now: the CA is named `ca_common_name` and
    /// the certificate carries `subject` and clientAuth. Nothing is written anywhere.
    fn throwaway(
        subject: &Subject,
        ca_common_name: &str,
        now: OffsetDateTime,
        provider: &CryptoProvider,
    ) -> Result<Self, String> {
        let fail = |e: kubepki_pki::Error| format!("could not make a throwaway CA for the wrong-CA probe: {e}");
        let lifetime = Lifetime::new(Duration::from_secs(3600)).map_err(fail)?;
        let validity = Validity::starting_at(now, lifetime);
        let ca_key = KeyAlgorithm::EcdsaP256.generate().map_err(fail)?;
        let ca = kubepki_pki::self_signed_ca(ca_common_name, &ca_key, validity).map_err(fail)?;
        let signer = Signer::new("the throwaway CA", &ca, &ca_key).map_err(fail)?;
        let key = KeyAlgorithm::EcdsaP256.generate().map_err(fail)?;
        let request = CertRequest { subject: subject.clone(), sans: AltNames::new(), usage: Usage::Client };
        let der = signer.sign("the wrong-CA client certificate", &request, &key, validity).map_err(fail)?;
        let cert = Certificate::from_der(der, "the wrong-CA client certificate").map_err(fail)?;
        let key_pem = Zeroizing::new(key.to_pem().as_bytes().to_vec());
        let mut id =
            Self::from_pem(cert.to_pem().into_bytes(), key_pem, "wrong-CA certificate", "wrong-CA key", provider)?;
        id.source = format!("a throwaway CA named {ca_common_name:?}");
        Ok(id)
    }
}

/// The server CA: the certificates of one file, as rustls roots and as PEM for tonic.
pub(crate) struct ServerCa {
    pub(crate) path: PathBuf,
    pub(crate) roots: Arc<RootCertStore>,
    pub(crate) pem: Vec<u8>,
}

impl ServerCa {
    fn load(path: &Path) -> Result<Self, String> {
        let certs = kubepki_pki::read_certs(path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the CA file {} does not exist", path.display()))?;
        let mut roots = RootCertStore::empty();
        for c in &certs {
            roots
                .add(CertificateDer::from(c.der().to_vec()))
                .map_err(|e| format!("{}: a certificate cannot be used as a trust anchor: {e}", path.display()))?;
        }
        let pem = certs.iter().map(Certificate::to_pem).collect::<String>().into_bytes();
        Ok(Self { path: path.to_owned(), roots: Arc::new(roots), pem })
    }
}

/// Everything a target is verified with.
pub(crate) struct Material {
    pub(crate) server_ca: Option<ServerCa>,
    pub(crate) client: Option<Identity>,
    pub(crate) served_on_disk: Option<(PathBuf, Certificate)>,
    pub(crate) wrong: Option<Identity>,
}

impl Material {
    /// Reads (and makes) the material of `target`; the error names the file at fault. The
    /// throwaway CA is valid around `now`, the real clock (not a time the certificates are
    /// judged at), so the server refuses it for its issuer and not for its dates.
    pub(crate) fn load(target: &Target, now: OffsetDateTime, provider: &CryptoProvider) -> Result<Self, String> {
        let server_ca = target.server_ca().map(ServerCa::load).transpose()?;
        let client = target.client().map(|c| Identity::load(c, provider)).transpose()?;
        let served_on_disk = match target.served_cert() {
            None => None,
            Some(path) => {
                let certs = kubepki_pki::read_certs(path)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("the certificate file {} does not exist", path.display()))?;
                certs.into_iter().next().map(|leaf| (path.to_owned(), leaf))
            }
        };
        let wrong = match target.wrong_ca() {
            WrongCa::Skip => None,
            WrongCa::Files { cert, key } => Some(Identity::from_files(cert, key, provider)?),
            WrongCa::Generate => {
                let subject = client
                    .as_ref()
                    .map(|c| c.leaf.subject.clone())
                    .unwrap_or_else(|| Subject::new("kubepki-verify", Vec::<String>::new()));
                let ca_name = client
                    .as_ref()
                    .and_then(|c| issuer_common_name(&c.leaf))
                    .unwrap_or_else(|| "kubepki-verify-untrusted-ca".to_owned());
                Some(Identity::throwaway(&subject, &ca_name, now, provider)?)
            }
        };
        Ok(Self { server_ca, client, served_on_disk, wrong })
    }
}

fn issuer_common_name(cert: &Certificate) -> Option<String> {
    cert.issuer().map(|issuer| issuer.common_name).filter(|cn| !cn.is_empty())
}
