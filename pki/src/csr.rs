//! Certificate signing requests (PKCS#10) for kubeadm's external-CA mode: what
//! `kubeadm certs generate-csr` writes, and reading one back.
//!
//! kubeadm's CSRs carry the subject and the SANs only; a kubepki CSR also requests the leaf's
//! usages in its extension request — KeyUsage digitalSignature + keyEncipherment (critical),
//! the profile's ExtendedKeyUsage and BasicConstraints CA:FALSE (critical) — so that an
//! external CA copying the requested extensions (`openssl x509 -req -copy_extensions copyall`)
//! issues exactly what kubeadm itself would.
//!
//! ```
//! use kubepki_pki::Csr;
//! use kubepki_pki::{AltNames, CertRequest, KeyAlgorithm, Subject, Usage};
//!
//! # fn main() -> Result<(), kubepki_pki::Error> {
//! let key = KeyAlgorithm::EcdsaP256.generate()?;
//! let mut sans = AltNames::new();
//! sans.add_dns("cp1");
//! let request = CertRequest { subject: Subject::new("kube-apiserver", Vec::<String>::new()), sans, usage: Usage::Server };
//! let csr = Csr::new(&request, &key)?;
//! let back = Csr::from_pem(csr.to_pem().as_bytes(), "apiserver.csr")?;
//! assert_eq!(back.request(), Some(request));
//! assert!(key.matches_spki(&back.spki));
//! # Ok(())
//! # }
//! ```

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SigningKey};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::cert::Subject;
use crate::error::{Error, Result};
use crate::issue::{self, CertRequest};
use crate::key::PrivateKey;
use crate::profile::Usage;
use crate::san::AltNames;

/// The PEM label of a CSR.
pub(crate) const PEM_LABEL: &str = "CERTIFICATE REQUEST";

/// A parsed certificate signing request whose self-signature verifies.
#[derive(Clone, Debug)]
pub struct Csr {
    der: Vec<u8>,
    /// Subject CN and O.
    pub subject: Subject,
    /// The DNS and IP SANs requested.
    pub sans: AltNames,
    /// The serverAuth/clientAuth usages requested, if any (kubeadm's own CSRs request none).
    pub usage: Option<Usage>,
    /// The DER SubjectPublicKeyInfo of the requesting key.
    pub spki: Vec<u8>,
}

impl Csr {
    /// A CSR for `request`, signed with `key` (the key the certificate will be issued to): the
    /// subject encoded as Go encodes it (O before CN), the SANs in kubeadm's order, and the
    /// usages as requested extensions.
    pub fn new(request: &CertRequest, key: &PrivateKey) -> Result<Self> {
        let mut params = CertificateParams::default();
        params.distinguished_name = issue::distinguished_name(&request.subject);
        params.subject_alt_names = issue::san_types(&request.sans)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = [
            (request.usage.server_auth(), ExtendedKeyUsagePurpose::ServerAuth),
            (request.usage.client_auth(), ExtendedKeyUsagePurpose::ClientAuth),
        ]
        .into_iter()
        .filter_map(|(on, eku)| on.then_some(eku))
        .collect();
        // BasicConstraints CA:FALSE (critical), as kubeadm's leaves carry it.
        params.is_ca = IsCa::ExplicitNoCa;
        let name = &request.subject.common_name;
        let pair = key.key_pair()?;
        let failed = |source| Error::Crypto { action: format!("sign the CSR of {name}"), source };
        let mut der = params.serialize_request(pair).map_err(failed)?.der().to_vec();
        // Several O values share one RDN as Go writes them, which rcgen cannot: the request is
        // signed again with Go's subject (as issue does for certificates).
        if let Some(go) = issue::go_subject(&request.subject) {
            let (info, algorithm) = crate::der::request_info_with_subject(&der, &go)
                .map_err(|reason| Error::InvalidCsr { source_name: name.clone(), reason: reason.into() })?;
            der = crate::der::certificate(&info, algorithm, &pair.sign(&info).map_err(failed)?);
        }
        Self::from_der(der, name)
    }

    /// Parses a PEM CSR (one `CERTIFICATE REQUEST` block) and checks its self-signature;
    /// `source_name` names it in errors.
    pub fn from_pem(pem: &[u8], source_name: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidCsr { source_name: source_name.to_owned(), reason };
        let blocks = crate::pem::parse(pem).map_err(invalid)?;
        let mut requests = blocks.into_iter().filter(|b| b.label == PEM_LABEL);
        let Some(mut block) = requests.next() else {
            return Err(invalid(format!("no {PEM_LABEL} PEM block")));
        };
        if requests.next().is_some() {
            return Err(invalid(format!("more than one {PEM_LABEL} block")));
        }
        Self::from_der(std::mem::take(&mut block.der), source_name)
    }

    /// Parses a DER CSR and checks its self-signature.
    pub fn from_der(der: Vec<u8>, source_name: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidCsr { source_name: source_name.to_owned(), reason };
        let (rest, req) =
            X509CertificationRequest::from_der(&der).map_err(|e| invalid(format!("not a PKCS#10 request: {e}")))?;
        if !rest.is_empty() {
            return Err(invalid("trailing data after the request".into()));
        }
        req.verify_signature().map_err(|_| invalid("its signature does not verify with its own key".into()))?;
        let info = &req.certification_request_info;
        let subject = crate::cert::subject_of_name(info.subject.as_raw())
            .map_err(|e| invalid(format!("its subject cannot be read: {e}")))?;
        let (mut sans, mut usage) = (AltNames::new(), None);
        for ext in req.requested_extensions().into_iter().flatten() {
            match ext {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::DNSName(d) => sans.add_dns(*d),
                            GeneralName::IPAddress(b) => sans.add_ip(ip_of(b).ok_or_else(|| {
                                invalid(format!("an IP SAN of {} bytes (not IPv4 or IPv6)", b.len()))
                            })?),
                            _ => {}
                        }
                    }
                }
                ParsedExtension::ExtendedKeyUsage(eku) => usage = Usage::from_flags(eku.server_auth, eku.client_auth),
                _ => {}
            }
        }
        let spki = info.subject_pki.raw.to_vec();
        Ok(Self { subject, sans, usage, spki, der })
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM encoding (one `CERTIFICATE REQUEST` block), as kubeadm writes `<name>.csr`.
    pub fn to_pem(&self) -> String {
        crate::pem::encode(PEM_LABEL, &self.der)
    }

    /// What the CSR asks for, if it names a usage.
    pub fn request(&self) -> Option<CertRequest> {
        Some(CertRequest { subject: self.subject.clone(), sans: self.sans.clone(), usage: self.usage? })
    }
}

fn ip_of(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => Some(<[u8; 4]>::try_from(bytes).ok()?.into()),
        16 => Some(<[u8; 16]>::try_from(bytes).ok()?.into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyAlgorithm;

    fn request() -> CertRequest {
        let mut sans = AltNames::new();
        sans.add_dns("kubernetes");
        sans.add_dns("cp1");
        sans.add_ip("10.96.0.1".parse().unwrap());
        sans.add_ip("fd00::1".parse().unwrap());
        CertRequest {
            // In DER order (a shorter value first), as Go writes and reads several O values.
            subject: Subject::new("kube-apiserver-kubelet-client", ["system:masters", "kubeadm:cluster-admins"]),
            sans,
            usage: Usage::ServerAndClient,
        }
    }

    #[test]
    fn a_csr_round_trips_for_every_key_algorithm() {
        for a in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384, KeyAlgorithm::Rsa2048] {
            let key = a.generate().unwrap();
            let csr = Csr::new(&request(), &key).unwrap();
            assert!(csr.to_pem().starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"), "{a}");
            let back = Csr::from_pem(csr.to_pem().as_bytes(), "x.csr").unwrap();
            assert_eq!(back.request(), Some(request()), "{a}");
            assert!(key.matches_spki(&back.spki), "{a}");
        }
    }

    #[test]
    fn the_subject_is_encoded_as_go_encodes_it() {
        let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let csr = Csr::new(&request(), &key).unwrap();
        let (_, req) = X509CertificationRequest::from_der(csr.der()).unwrap();
        assert_eq!(
            req.certification_request_info.subject.to_string(),
            "O=system:masters + O=kubeadm:cluster-admins, CN=kube-apiserver-kubelet-client"
        );
    }

    #[test]
    fn a_tampered_or_foreign_request_is_refused_with_the_source_named() {
        let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let mut der = Csr::new(&request(), &key).unwrap().der().to_vec();
        // Flip a byte of the CN: the self-signature no longer verifies.
        let at = der.windows(6).position(|w| w == b"kube-a").unwrap();
        der[at] = b'K';
        let err = Csr::from_der(der, "out/apiserver.csr").unwrap_err().to_string();
        assert!(err.starts_with("out/apiserver.csr: ") && err.contains("signature"), "{err}");
        let err = Csr::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "c").unwrap_err();
        assert!(err.to_string().contains("no CERTIFICATE REQUEST"), "{err}");
    }
}
