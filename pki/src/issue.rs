//! Issuing certificates with kubeadm's extensions: self-signed CAs and CA-signed leaves.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SigningKey,
};

use rcgen::string::PrintableString;

use crate::cert::{Certificate, Subject};
use crate::der;
use crate::error::{Error, Result};
use crate::key::PrivateKey;
use crate::profile::Usage;
use crate::san::AltNames;
use crate::validity::Validity;

/// What a leaf certificate asserts: the part a renewal keeps.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct CertRequest {
    /// Subject CN and O.
    pub subject: Subject,
    /// DNS and IP SANs (empty for client certificates: no SAN extension is written).
    pub sans: AltNames,
    /// Extended key usages.
    pub usage: Usage,
}

impl CertRequest {
    /// Reads the request back from an existing certificate (what `kubeadm certs renew` keeps:
    /// CN, O, DNS and IP SANs, EKUs). `None` if the certificate has neither serverAuth nor
    /// clientAuth.
    pub fn from_certificate(cert: &Certificate) -> Option<Self> {
        Some(Self { subject: cert.subject.clone(), sans: cert.sans.clone(), usage: cert.usage? })
    }
}

/// A random serial number uniform in [1, 2^63), as kubeadm's `NewSignedCert` draws it; never
/// derived from the key, so a renewal that keeps its key still gets a new serial.
pub fn random_serial() -> Result<SerialNumber> {
    let rng = SystemRandom::new();
    loop {
        let mut bytes = [0u8; 8];
        rng.fill(&mut bytes).map_err(|_| Error::Crypto {
            action: "draw a random serial number".into(),
            source: rcgen::Error::RingUnspecified,
        })?;
        bytes[0] &= 0x7f;
        if bytes != [0; 8] {
            return Ok(SerialNumber::from_slice(&bytes));
        }
    }
}

/// Encodes a name value as Go does: PrintableString when every character allows it,
/// UTF8String otherwise (`kubeadm:cluster-admins` has a `:`).
fn dn_value(s: &str) -> DnValue {
    match PrintableString::try_from(s) {
        Ok(p) => DnValue::PrintableString(p),
        Err(_) => DnValue::Utf8String(s.to_owned()),
    }
}

pub(crate) fn distinguished_name(subject: &Subject) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    // Go's pkix.Name order: O before CN. Several O values share one RDN, which rcgen cannot
    // write (it holds one value per attribute type, each in its own RDN): `go_subject` writes
    // that subject, and the certificate is signed again with it.
    if let [o] = subject.organizations.as_slice() {
        dn.push(DnType::OrganizationName, dn_value(o));
    }
    dn.push(DnType::CommonName, dn_value(&subject.common_name));
    dn
}

/// The subject as Go's crypto/x509 writes a `pkix.Name` with several Organization values, when
/// rcgen's encoding differs from it: `ToRDNSequence` puts every O value into one RDN (a
/// multi-valued RDN, a SET OF that encoding/asn1 sorts as DER sorts it: shorter values first,
/// so `--org a --org b --org c` stays a, b, c), then the CN in its own RDN. `None` with at most
/// one O, which rcgen writes as Go does.
pub(crate) fn go_subject(subject: &Subject) -> Option<Vec<u8>> {
    /// id-at-organizationName and id-at-commonName, 2.5.4.10 and 2.5.4.3.
    const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
    const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    if subject.organizations.len() < 2 {
        return None;
    }
    let attribute = |oid: &[u8], value: &str| {
        let tag = match dn_value(value) {
            DnValue::PrintableString(_) => der::TAG_PRINTABLE_STRING,
            _ => der::TAG_UTF8_STRING,
        };
        der::attribute(oid, tag, value)
    };
    let organizations = subject.organizations.iter().map(|o| attribute(OID_ORGANIZATION, o)).collect();
    Some(der::name(vec![organizations, vec![attribute(OID_COMMON_NAME, &subject.common_name)]]))
}

/// The certificate `cert`, signed again by `key` with its subject replaced by [`go_subject`]'s
/// when there is one.
fn with_go_subject(cert: Vec<u8>, subject: &Subject, key: &KeyPair, name: &str) -> Result<Vec<u8>> {
    let Some(go) = go_subject(subject) else { return Ok(cert) };
    let (tbs, algorithm) = der::tbs_with_subject(&cert, &go).map_err(|reason| Error::InvalidCertificate {
        source_name: name.to_owned(),
        reason: format!("the signed certificate does not parse: {reason}"),
    })?;
    let signature = key
        .sign(&tbs)
        .map_err(|source| Error::Crypto { action: format!("sign the {name} certificate again"), source })?;
    Ok(der::certificate(&tbs, algorithm, &signature))
}

pub(crate) fn san_types(sans: &AltNames) -> Result<Vec<SanType>> {
    let mut out = Vec::with_capacity(sans.dns_names().len() + sans.ip_addresses().len());
    for d in sans.dns_names() {
        let ia5 = d.try_into().map_err(|_| Error::InvalidValue {
            field: "DNS name",
            value: d.to_owned(),
            reason: "not ASCII".into(),
        })?;
        out.push(SanType::DnsName(ia5));
    }
    out.extend(sans.ip_addresses().iter().map(|&ip| SanType::IpAddress(ip)));
    Ok(out)
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits, as Go (and so kubeadm)
/// computes a CA's SubjectKeyIdentifier.
fn key_id(key: &PrivateKey) -> Vec<u8> {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, key.der_bytes()).as_ref().to_vec()
}

fn base_params(subject: &Subject, validity: Validity) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(subject);
    params.serial_number = Some(random_serial()?);
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    Ok(params)
}

/// Issues a self-signed CA certificate as kubeadm's `NewSelfSignedCACert` does: subject CN,
/// one DNS SAN equal to the CN, KeyUsage digitalSignature + keyEncipherment + keyCertSign
/// (critical), BasicConstraints CA:TRUE (critical, no path length), a SubjectKeyIdentifier and
/// no AuthorityKeyIdentifier.
pub fn self_signed_ca(common_name: &str, key: &PrivateKey, validity: Validity) -> Result<Certificate> {
    let mut params = base_params(&Subject::new(common_name, Vec::<String>::new()), validity)?;
    params.subject_alt_names = san_types(&{
        let mut n = AltNames::new();
        n.add_dns(common_name);
        n
    })?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment, KeyUsagePurpose::KeyCertSign];
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(key));
    params.use_authority_key_identifier_extension = false;
    let cert = params
        .self_signed(key.key_pair()?)
        .map_err(|source| Error::Crypto { action: format!("self-sign the {common_name} CA certificate"), source })?;
    Certificate::from_der(cert.der().to_vec(), common_name)
}

/// Re-issues a self-signed CA certificate with its own key, as `kubepki recover` extends an
/// expired CA: a new serial number and the new `validity`, everything else — subject, issuer,
/// public key, SubjectKeyIdentifier, every extension — byte for byte the old certificate's, so
/// that every certificate the CA ever signed chains to the new one. `key` must be the CA's.
pub fn extend_ca(old: &Certificate, key: &PrivateKey, validity: Validity) -> Result<Certificate> {
    let name = old.subject.common_name.as_str();
    let invalid = |reason: String| Error::InvalidCertificate { source_name: name.to_owned(), reason };
    if !old.is_ca || !old.is_self_issued() {
        return Err(invalid("not a self-signed CA certificate: only a root CA is extended with its own key".into()));
    }
    if !key.matches_spki(&old.spki) {
        return Err(Error::KeyMismatch { key: format!("the key of {name}"), cert: name.to_owned() });
    }
    // kubeadm's serials: uniform in [1, 2^63), in the INTEGER's shortest form.
    let serial = random_serial()?.to_bytes();
    let start = serial.iter().position(|&b| b != 0).unwrap_or(serial.len() - 1);
    let serial = match serial[start] & 0x80 {
        0 => serial[start..].to_vec(),
        _ => [&[0][..], &serial[start..]].concat(),
    };
    let (tbs, algorithm) = der::tbs_with_serial_and_validity(
        old.der(),
        &serial,
        &der::time(validity.not_before),
        &der::time(validity.not_after),
    )
    .map_err(|reason| invalid(format!("its certificate does not parse: {reason}")))?;
    let signature = key
        .key_pair()?
        .sign(&tbs)
        .map_err(|source| Error::Crypto { action: format!("sign the {name} CA certificate again"), source })?;
    let new = Certificate::from_der(der::certificate(&tbs, algorithm, &signature), name)?;
    // The old certificate's signature algorithm must be the one this key signs with (Go's and
    // kubeadm's choice for the key: SHA-256, SHA-384 for P-384): otherwise refuse, naming it.
    new.verify_issued_by(&new).map_err(|reason| {
        invalid(format!("it cannot be re-signed with its key as it was signed ({}): {reason}", old.signature_algorithm))
    })?;
    Ok(new)
}

/// Signs leaves with one CA; build it once, sign many.
pub struct Signer<'a> {
    issuer: Issuer<'a, &'a KeyPair>,
    ca_key: &'a KeyPair,
    ca_cert: &'a Certificate,
    ca_name: &'a str,
}

impl std::fmt::Debug for Signer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("ca", &self.ca_name).finish_non_exhaustive()
    }
}

impl<'a> Signer<'a> {
    /// A signer for the CA `ca_cert` whose private key is `ca_key`. `ca_name` names the CA in
    /// errors. The key must belong to the certificate.
    pub fn new(ca_name: &'a str, ca_cert: &'a Certificate, ca_key: &'a PrivateKey) -> Result<Self> {
        if !ca_key.matches_spki(&ca_cert.spki) {
            return Err(Error::KeyMismatch { key: format!("the key of {ca_name}"), cert: ca_name.to_owned() });
        }
        let ca_key = ca_key.key_pair()?;
        let issuer = Issuer::from_ca_cert_der(&ca_cert.der().into(), ca_key)
            .map_err(|source| Error::Crypto { action: format!("use {ca_name} as an issuer"), source })?;
        Ok(Self { issuer, ca_key, ca_cert, ca_name })
    }

    /// The CA certificate.
    pub fn ca_certificate(&self) -> &Certificate {
        self.ca_cert
    }

    /// Issues a leaf for `public_key` as kubeadm's `NewSignedCert` does: KeyUsage
    /// digitalSignature + keyEncipherment (critical), the request's EKUs, BasicConstraints
    /// CA:FALSE (critical), AuthorityKeyIdentifier = the CA's SubjectKeyIdentifier, no
    /// SubjectKeyIdentifier, SANs only when there are some. Returns the DER.
    ///
    /// `name` names the certificate in errors. A leaf that would outlive its CA is refused.
    pub fn sign(
        &self,
        name: &str,
        request: &CertRequest,
        public_key: &PrivateKey,
        validity: Validity,
    ) -> Result<Vec<u8>> {
        // NotBefore is the moment of issue minus the backdate: a CA that ends before the
        // moment of issue has expired.
        let issued_at = validity.not_before + time::Duration::seconds(crate::validity::BACKDATE.as_secs() as i64);
        if self.ca_cert.not_after <= issued_at {
            return Err(Error::CaExpired { ca: self.ca_name.to_owned(), not_after: self.ca_cert.not_after });
        }
        if validity.not_after > self.ca_cert.not_after {
            return Err(Error::OutlivesCa {
                name: name.to_owned(),
                not_after: validity.not_after,
                ca: self.ca_name.to_owned(),
                ca_not_after: self.ca_cert.not_after,
            });
        }
        let mut params = base_params(&request.subject, validity)?;
        params.subject_alt_names = san_types(&request.sans)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = [
            (request.usage.server_auth(), rcgen::ExtendedKeyUsagePurpose::ServerAuth),
            (request.usage.client_auth(), rcgen::ExtendedKeyUsagePurpose::ClientAuth),
        ]
        .into_iter()
        .filter_map(|(on, eku)| on.then_some(eku))
        .collect();
        // CA:FALSE without a SubjectKeyIdentifier, as Go writes non-CA certificates: rcgen's
        // ExplicitNoCa would add an SKI, so BasicConstraints is written by hand (an empty
        // SEQUENCE, critical).
        params.is_ca = IsCa::NoCa;
        let mut basic_constraints = CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x00]);
        basic_constraints.set_criticality(true);
        params.custom_extensions = vec![basic_constraints];
        params.use_authority_key_identifier_extension = self.ca_cert.subject_key_id.is_some();
        let cert = params.signed_by(public_key, &self.issuer).map_err(|source| Error::Crypto {
            action: format!("sign the {name} certificate with {}", self.ca_name),
            source,
        })?;
        let der = with_go_subject(cert.der().to_vec(), &request.subject, self.ca_key, name)?;
        // rcgen re-encodes the CA's subject as the issuer; a CA made by another tool with an
        // unusual name encoding would produce a leaf that does not chain. Refuse that here.
        let issuer_raw = raw_issuer(&der).ok_or_else(|| Error::InvalidCertificate {
            source_name: name.to_owned(),
            reason: "the signed certificate does not parse".into(),
        })?;
        if issuer_raw != self.ca_cert.raw_subject {
            return Err(Error::InvalidCertificate {
                source_name: self.ca_name.to_owned(),
                reason: "its subject name cannot be reproduced byte-for-byte as an issuer name".into(),
            });
        }
        Ok(der)
    }
}

impl Signer<'_> {
    /// Certifies another CA's key with this CA (cross-signing, for a CA rotation): a CA
    /// certificate with `subject`, the other CA's public key and its SubjectKeyIdentifier,
    /// issued by this CA. Clients that trust only this CA can then verify chains of the other.
    pub fn cross_sign(&self, subject: &Subject, key: &PrivateKey, validity: Validity) -> Result<Vec<u8>> {
        if validity.not_after > self.ca_cert.not_after {
            return Err(Error::OutlivesCa {
                name: format!("cross-signed {}", subject.common_name),
                not_after: validity.not_after,
                ca: self.ca_name.to_owned(),
                ca_not_after: self.ca_cert.not_after,
            });
        }
        let mut params = base_params(subject, validity)?;
        params.subject_alt_names = san_types(&{
            let mut n = AltNames::new();
            n.add_dns(&subject.common_name);
            n
        })?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment, KeyUsagePurpose::KeyCertSign];
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_id(key));
        params.use_authority_key_identifier_extension = self.ca_cert.subject_key_id.is_some();
        let cert = params.signed_by(key, &self.issuer).map_err(|source| Error::Crypto {
            action: format!("cross-sign {} with {}", subject.common_name, self.ca_name),
            source,
        })?;
        with_go_subject(cert.der().to_vec(), subject, self.ca_key, &subject.common_name)
    }
}

fn raw_issuer(der: &[u8]) -> Option<Vec<u8>> {
    use x509_parser::prelude::FromDer;
    let (_, x) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
    Some(x.issuer().as_raw().to_vec())
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::cert::hex;
    use crate::key::KeyAlgorithm;

    /// An extended CA keeps its subject, key and SKI (every byte but the serial, the dates and
    /// the signature), and what the old one signed verifies against it.
    #[test]
    fn an_extended_ca_keeps_its_identity_and_its_leaves() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let then = now - time::Duration::days(4000);
        let old_validity = Validity { not_before: then, not_after: then + time::Duration::days(3650) };
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384, KeyAlgorithm::Rsa2048] {
            let key = alg.generate().unwrap();
            let old = self_signed_ca("kubernetes", &key, old_validity).unwrap();
            let leaf_key = KeyAlgorithm::EcdsaP256.generate().unwrap();
            let request =
                CertRequest { subject: Subject::new("x", ["y"]), sans: AltNames::new(), usage: Usage::Client };
            let leaf_validity = Validity { not_before: then, not_after: then + time::Duration::days(365) };
            let leaf = Signer::new("ca", &old, &key).unwrap().sign("x", &request, &leaf_key, leaf_validity).unwrap();
            let leaf = Certificate::from_der(leaf, "x").unwrap();
            // 2059: GeneralizedTime.
            let validity = Validity { not_before: now, not_after: now + time::Duration::days(3650 * 3) };
            let new = extend_ca(&old, &key, validity).unwrap();
            assert_eq!((new.raw_subject.clone(), new.spki.clone()), (old.raw_subject.clone(), old.spki.clone()));
            assert_eq!(new.subject_key_id, old.subject_key_id);
            assert_ne!(new.serial, old.serial);
            assert_eq!((new.not_before, new.not_after), (validity.not_before, validity.not_after), "{alg:?}");
            assert_eq!(leaf.verify_issued_by(&new), Ok(()), "{alg:?}");
            let other = alg.generate().unwrap();
            assert!(extend_ca(&old, &other, validity).is_err());
            assert!(extend_ca(&leaf, &leaf_key, validity).is_err());
        }
    }

    /// Groups are written as Go's crypto/x509 writes a pkix.Name's Organization: all in one RDN
    /// sorted as DER sorts a SET OF, then the CN. The expected bytes are pyca/cryptography's
    /// encoding of `Name([RDN([O=zeta, O=a, O=b]), RDN([CN=alice])])` with PrintableStrings,
    /// which sorts the SET as DER does.
    #[test]
    fn any_number_of_groups_are_encoded_as_go_encodes_them() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let validity = Validity { not_before: now, not_after: now + time::Duration::days(1) };
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
            let ca_key = alg.generate().unwrap();
            let ca = self_signed_ca("kubernetes", &ca_key, validity).unwrap();
            let signer = Signer::new("ca", &ca, &ca_key).unwrap();
            let leaf_key = KeyAlgorithm::EcdsaP256.generate().unwrap();
            let sign = |orgs: &[&str]| {
                let request = CertRequest {
                    subject: Subject::new("alice", orgs.iter().copied()),
                    sans: AltNames::new(),
                    usage: Usage::Client,
                };
                let der = signer.sign("alice", &request, &leaf_key, validity).unwrap();
                Certificate::from_der(der, "alice").unwrap()
            };
            let three = sign(&["zeta", "a", "b"]);
            assert_eq!(
                hex(&three.raw_subject),
                "303331213008060355040a1301613008060355040a130162300b060355040a13047a657461\
                 310e300c06035504031305616c696365"
            );
            assert_eq!(three.subject.organizations, ["a", "b", "zeta"]);
            assert_eq!(three.subject_string, "O=a + O=b + O=zeta, CN=alice");
            assert_eq!(three.verify_issued_by(&ca), Ok(()), "{alg:?}: signed again over the new subject");
            assert!(leaf_key.matches_spki(&three.spki));
            // A UTF8String (`_` is not printable) sorts before PrintableStrings of its length.
            let mixed = sign(&["b_c", "abc", "kubeadm:cluster-admins", "x", "y", "z", "w"]);
            assert_eq!(mixed.subject.organizations, ["w", "x", "y", "z", "b_c", "abc", "kubeadm:cluster-admins"]);
            assert_eq!(mixed.verify_issued_by(&ca), Ok(()));
            // One group or none: one RDN per attribute, as rcgen writes it and Go too.
            assert_eq!(sign(&["developers"]).subject_string, "O=developers, CN=alice");
            assert_eq!(sign(&[]).subject_string, "CN=alice");
        }
    }
}
