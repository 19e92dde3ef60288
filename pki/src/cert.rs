//! Certificates as kubepki sees them: parsed once into an owned summary.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use aws_lc_rs::digest;
use time::OffsetDateTime;
use x509_parser::der_parser::asn1_rs::BitString;
use x509_parser::der_parser::oid::Oid;
use x509_parser::prelude::FromDer;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo, X509Name};

use crate::der::{TAG_IA5_STRING, TAG_NUMERIC_STRING, TAG_OID, TAG_PRINTABLE_STRING, TAG_UTF8_STRING};
use crate::error::{Error, Result};
use crate::profile::Usage;
use crate::san::AltNames;
use crate::x509::{self, AltName};

/// The subject fields kubeadm uses: CN (a Kubernetes user name) and O (its groups).
#[derive(Clone, Debug, Default, Eq, Hash, PartialEq)]
pub struct Subject {
    /// The CommonName.
    pub common_name: String,
    /// The Organization values, in order.
    pub organizations: Vec<String>,
}

impl Subject {
    /// A subject with a CN and the given organizations.
    pub fn new(common_name: impl Into<String>, organizations: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self { common_name: common_name.into(), organizations: organizations.into_iter().map(Into::into).collect() }
    }
}

impl fmt::Display for Subject {
    /// `O=system:nodes, CN=system:node:cp1`, in the order Go encodes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for o in &self.organizations {
            write!(f, "O={o}, ")?;
        }
        write!(f, "CN={}", self.common_name)
    }
}

/// The kind and size of a certificate's public key.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum PublicKeyKind {
    /// ECDSA on a named curve (`P-256`, `P-384`, `P-521`, or the OID of another).
    Ec {
        /// The curve.
        curve: String,
    },
    /// Ed25519.
    Ed25519,
    /// RSA.
    Rsa {
        /// The modulus size.
        bits: usize,
    },
    /// Anything else, by algorithm OID.
    Other {
        /// The algorithm OID.
        oid: String,
    },
}

impl PublicKeyKind {
    /// Whether the key is too weak for a cluster PKI (RSA below 2048 bits).
    pub fn is_weak(&self) -> bool {
        matches!(self, Self::Rsa { bits } if *bits < 2048)
    }

    /// The kubeadm key algorithm of this key, if it is one (`RSA-2048`, `ECDSA-P256`, ...).
    pub fn key_algorithm(&self) -> Option<crate::KeyAlgorithm> {
        self.to_string().parse().ok()
    }
}

impl fmt::Display for PublicKeyKind {
    /// kubeadm's names where they exist: `RSA-2048`, `ECDSA-P256`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ec { curve } => write!(f, "ECDSA-{}", curve.replace('-', "")),
            Self::Ed25519 => f.write_str("Ed25519"),
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::Other { oid } => write!(f, "unknown ({oid})"),
        }
    }
}

/// A parsed certificate: its DER and everything kubepki reads from it.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    /// Subject CN and O.
    pub subject: Subject,
    /// The subject as openssl would print it (`O=..., CN=...`).
    pub subject_string: String,
    /// The issuer as openssl would print it.
    pub issuer_string: String,
    /// The DER of the subject Name.
    pub raw_subject: Vec<u8>,
    /// The DER of the issuer Name.
    pub raw_issuer: Vec<u8>,
    /// The serial number in lowercase hex (as `openssl x509 -serial` prints it, but lowercase).
    pub serial: String,
    /// NotBefore.
    pub not_before: OffsetDateTime,
    /// NotAfter.
    pub not_after: OffsetDateTime,
    /// DNS and IP SANs.
    pub sans: AltNames,
    /// BasicConstraints CA:TRUE.
    pub is_ca: bool,
    /// The serverAuth/clientAuth EKUs, if any.
    pub usage: Option<Usage>,
    /// The public key's kind.
    pub public_key: PublicKeyKind,
    /// The DER SubjectPublicKeyInfo.
    pub spki: Vec<u8>,
    /// The signature algorithm's name (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`, ...).
    pub signature_algorithm: &'static str,
    /// Whether the signature uses SHA-1 or MD5.
    pub weak_signature: bool,
    /// The SubjectKeyIdentifier.
    pub subject_key_id: Option<Vec<u8>>,
    /// The AuthorityKeyIdentifier's key identifier.
    pub authority_key_id: Option<Vec<u8>>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject_string)
            .field("issuer", &self.issuer_string)
            .field("serial", &self.serial)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

impl Certificate {
    /// Parses one DER certificate; `source_name` names its origin in errors.
    pub fn from_der(der: Vec<u8>, source_name: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidCertificate { source_name: source_name.to_owned(), reason };
        let x = x509::parse(&der).map_err(|e| invalid(format!("not a valid X.509 certificate: {e}")))?;
        let mut sans = AltNames::new();
        for name in x.alt_names.into_iter().flat_map(x509::alt_names) {
            match name {
                Ok(AltName::Dns(d)) => sans.add_dns(d),
                Ok(AltName::Ip(ip)) => sans.add_ip(ip),
                Err(_) => {}
            }
        }
        let subject = subject_of_name(x.subject).map_err(|e| invalid(format!("not a valid X.509 certificate: {e}")))?;
        let (signature_algorithm, weak_signature) =
            lookup(&SIGNATURES, x.signature_algorithm).unwrap_or(("unknown", false));
        let cert = Self {
            subject_string: name_string(x.subject),
            issuer_string: name_string(x.issuer),
            raw_subject: x.subject.to_vec(),
            raw_issuer: x.issuer.to_vec(),
            serial: hex(x.serial),
            not_before: x.not_before,
            not_after: x.not_after,
            sans,
            is_ca: x.is_ca,
            usage: x.extended_key_usage.and_then(|(server, client)| Usage::from_flags(server, client)),
            public_key: public_key_kind(&x),
            spki: x.spki.to_vec(),
            signature_algorithm,
            weak_signature,
            subject_key_id: x.subject_key_id.map(<[u8]>::to_vec),
            authority_key_id: x.authority_key_id.map(<[u8]>::to_vec),
            subject,
            der: Vec::new(),
        };
        Ok(Self { der, ..cert })
    }

    /// The issuer's CN and O values, as [`Certificate::subject`] holds the subject's; `None` if
    /// the issuer Name cannot be read that way.
    pub fn issuer(&self) -> Option<Subject> {
        subject_of_name(&self.raw_issuer).ok()
    }

    /// Parses every `CERTIFICATE` block of a PEM file (a bundle yields several). A file with
    /// no certificate at all is an error.
    pub fn from_pem_bundle(pem: &[u8], source_name: &str) -> Result<Vec<Self>> {
        let invalid = |reason: String| Error::InvalidCertificate { source_name: source_name.to_owned(), reason };
        if !crate::pem::looks_like_pem(pem) {
            return Err(invalid(if pem.is_empty() {
                "the file is empty".into()
            } else {
                "not PEM: no BEGIN line (DER, or not a certificate?)".into()
            }));
        }
        let mut blocks = crate::pem::parse(pem).map_err(invalid)?;
        let certs = blocks
            .iter_mut()
            .filter(|b| b.label == "CERTIFICATE")
            .map(|b| Self::from_der(std::mem::take(&mut b.der), source_name))
            .collect::<Result<Vec<_>>>()?;
        if certs.is_empty() {
            let labels: Vec<_> = blocks.iter().map(|b| b.label.as_str()).collect();
            return Err(invalid(format!("no CERTIFICATE block (found {})", labels.join(", "))));
        }
        Ok(certs)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM encoding (one `CERTIFICATE` block).
    pub fn to_pem(&self) -> String {
        crate::pem::encode("CERTIFICATE", &self.der)
    }

    /// The SHA-256 fingerprint of the DER, in lowercase hex.
    pub fn fingerprint_sha256(&self) -> String {
        self.fingerprint().as_str().to_owned()
    }

    /// [`fingerprint_sha256`](Self::fingerprint_sha256) without an allocation, for writing
    /// thousands of them.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.der)
    }

    /// Whether the subject equals the issuer (byte-wise) — a root or self-issued certificate.
    pub fn is_self_issued(&self) -> bool {
        self.raw_subject == self.raw_issuer
    }

    /// The lifetime NotAfter − NotBefore.
    pub fn lifetime(&self) -> time::Duration {
        self.not_after - self.not_before
    }

    /// Checks that `ca` issued this certificate: the issuer name equals the CA's subject and
    /// the signature verifies with the CA's public key. Returns the reason on failure.
    pub fn verify_issued_by(&self, ca: &Self) -> std::result::Result<(), String> {
        if self.raw_issuer != ca.raw_subject {
            return Err(format!(
                "its issuer \"{}\" is not the CA's subject \"{}\"",
                self.issuer_string, ca.subject_string
            ));
        }
        // The signature over the TBSCertificate kubepki's reader found, checked by x509-parser's
        // verifier (aws-lc; RSA-PSS parameters too) with the CA's key.
        let leaf = x509::parse(&self.der).map_err(str::to_owned)?;
        let (_, key) = SubjectPublicKeyInfo::from_der(&ca.spki).map_err(|e| format!("the CA's key: {e}"))?;
        let (_, algorithm) =
            AlgorithmIdentifier::from_der(leaf.signature_algorithm_encoded).map_err(|e| e.to_string())?;
        let signature = BitString::new(leaf.signature.0, leaf.signature.1);
        x509_parser::verify::verify_signature(&key, &algorithm, &signature, leaf.tbs)
            .map_err(|_| "the signature does not verify with the CA's key".to_owned())
    }
}

/// A table of known OIDs, parsed once from their dotted form and matched by their DER bytes:
/// formatting every certificate's OIDs as dotted strings to compare them took ~2 µs a
/// certificate.
type OidTable<T> = LazyLock<Vec<(Vec<u8>, T)>>;

fn oid_table<T: Copy>(entries: &[(&str, T)]) -> Vec<(Vec<u8>, T)> {
    entries
        .iter()
        .map(|&(dotted, v)| (Oid::from_str(dotted).expect("a valid OID literal").as_bytes().to_vec(), v))
        .collect()
}

/// The entry of `table` for the OID whose DER contents are `oid`.
fn lookup<T: Copy>(table: &OidTable<T>, oid: &[u8]) -> Option<T> {
    table.iter().find(|(known, _)| known == oid).map(|&(_, v)| v)
}

/// An OID's dotted form, from its DER contents.
fn dotted(oid: &[u8]) -> String {
    Oid::new(std::borrow::Cow::Borrowed(oid)).to_id_string()
}

/// Signature algorithms: openssl's name, and whether the hash is broken (SHA-1, MD5).
static SIGNATURES: OidTable<(&'static str, bool)> = LazyLock::new(|| {
    oid_table(&[
        ("1.2.840.113549.1.1.11", ("sha256WithRSAEncryption", false)),
        ("1.2.840.113549.1.1.12", ("sha384WithRSAEncryption", false)),
        ("1.2.840.113549.1.1.13", ("sha512WithRSAEncryption", false)),
        ("1.2.840.113549.1.1.10", ("rsassaPss", false)),
        ("1.2.840.10045.4.3.2", ("ecdsa-with-SHA256", false)),
        ("1.2.840.10045.4.3.3", ("ecdsa-with-SHA384", false)),
        ("1.2.840.10045.4.3.4", ("ecdsa-with-SHA512", false)),
        ("1.3.101.112", ("ED25519", false)),
        ("1.2.840.113549.1.1.5", ("sha1WithRSAEncryption", true)),
        ("1.2.840.113549.1.1.4", ("md5WithRSAEncryption", true)),
        ("1.2.840.10045.4.1", ("ecdsa-with-SHA1", true)),
        ("1.2.840.10040.4.3", ("dsa-with-SHA1", true)),
    ])
});

#[derive(Clone, Copy)]
enum KeyAlgorithmOid {
    Rsa,
    Ec,
    Ed25519,
}

static KEY_ALGORITHMS: OidTable<KeyAlgorithmOid> = LazyLock::new(|| {
    oid_table(&[
        ("1.2.840.113549.1.1.1", KeyAlgorithmOid::Rsa),
        ("1.2.840.10045.2.1", KeyAlgorithmOid::Ec),
        ("1.3.101.112", KeyAlgorithmOid::Ed25519),
    ])
});

static CURVES: OidTable<&'static str> = LazyLock::new(|| {
    oid_table(&[("1.2.840.10045.3.1.7", "P-256"), ("1.3.132.0.34", "P-384"), ("1.3.132.0.35", "P-521")])
});

/// The attribute types x509-parser abbreviates, and their abbreviations.
static NAME_ATTRIBUTES: OidTable<&'static str> = LazyLock::new(|| {
    oid_table(&[
        ("2.5.4.3", "CN"),
        ("2.5.4.10", "O"),
        ("2.5.4.11", "OU"),
        ("2.5.4.6", "C"),
        ("2.5.4.7", "L"),
        ("2.5.4.8", "ST"),
        ("0.9.2342.19200300.100.1.25", "DC"),
        ("1.2.840.113549.1.9.1", "Email"),
    ])
});

/// The CN and O values of an encoded Name, as Go reads them: the first CN (a later one is not
/// read, as by Go's `Subject.CommonName`), every O in order.
pub(crate) fn subject_of_name(name: &[u8]) -> std::result::Result<Subject, &'static str> {
    let mut subject = Subject::default();
    let mut common_names = 0;
    x509::for_each_attribute(name, |attr| {
        let text = || attribute_text(&attr);
        match lookup(&NAME_ATTRIBUTES, attr.oid) {
            Some("CN") => {
                if common_names == 0 {
                    subject.common_name = text().unwrap_or("").to_owned();
                }
                common_names += 1;
            }
            Some("O") => subject.organizations.extend(text().map(str::to_owned)),
            _ => {}
        }
    })?;
    Ok(subject)
}

/// A name attribute's value as text, for the string types x509-parser reads as text (its
/// `as_str`) and copies verbatim into a name's `Display`: Numeric, Printable, UTF-8 and IA5.
/// A BMP or T61 string is not text here.
fn attribute_text<'a>(attr: &x509::Attribute<'a>) -> Option<&'a str> {
    matches!(attr.tag, TAG_NUMERIC_STRING | TAG_PRINTABLE_STRING | TAG_UTF8_STRING | TAG_IA5_STRING)
        .then(|| std::str::from_utf8(attr.value).ok())
        .flatten()
}

/// A name as x509-parser's `Display` writes it (`CN=a, O=b`, multi-valued RDNs joined by
/// ` + `), made in one buffer when every attribute is one of [`NAME_ATTRIBUTES`] with a
/// string value x509-parser would copy verbatim; any other name is left to x509-parser.
/// `name` is a Name's encoding, already read by [`x509::parse`].
fn name_string(name: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    let mut verbatim = true;
    let read = x509::for_each_attribute(name, |attr| {
        let (Some(abbrev), Some(text), true) = (lookup(&NAME_ATTRIBUTES, attr.oid), attribute_text(&attr), verbatim)
        else {
            verbatim = false;
            return;
        };
        out.push_str(match (attr.rdn, attr.index) {
            (0, 0) => "",
            (_, 0) => ", ",
            _ => " + ",
        });
        out.push_str(abbrev);
        out.push('=');
        out.push_str(text);
    });
    if read.is_ok() && verbatim {
        return out;
    }
    X509Name::from_der(name).map(|(_, name)| name.to_string()).unwrap_or_default()
}

fn public_key_kind(x: &x509::Fields<'_>) -> PublicKeyKind {
    match lookup(&KEY_ALGORITHMS, x.key_algorithm) {
        Some(KeyAlgorithmOid::Rsa) => PublicKeyKind::Rsa { bits: crate::pkcs8::rsa_modulus_bits(x.spki).unwrap_or(0) },
        Some(KeyAlgorithmOid::Ec) => PublicKeyKind::Ec {
            curve: match x.key_parameters {
                Some(p) if p.tag == TAG_OID => {
                    lookup(&CURVES, p.contents).map_or_else(|| dotted(p.contents), str::to_owned)
                }
                _ => String::new(),
            },
        },
        Some(KeyAlgorithmOid::Ed25519) => PublicKeyKind::Ed25519,
        None => PublicKeyKind::Other { oid: dotted(x.key_algorithm) },
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    hex_into(bytes, &mut out);
    String::from_utf8(out).expect("invariant: hex digits are ASCII")
}

/// Writes the lowercase hex of `bytes` into `out` (two digits a byte).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 15)];
    }
}

/// A SHA-256 fingerprint in lowercase hex, made on the stack.
#[derive(Clone, Copy)]
pub struct Fingerprint([u8; 64]);

impl Fingerprint {
    /// The fingerprint of `der`.
    pub fn of(der: &[u8]) -> Self {
        let mut hex = [0; 64];
        hex_into(digest::digest(&digest::SHA256, der).as_ref(), &mut hex);
        Self(hex)
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("invariant: hex digits are ASCII")
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair, PKCS_ECDSA_P256_SHA256};

    use super::*;
    use crate::KeyAlgorithm;

    /// kubepki's subject string and x509-parser's, for a certificate with `dn` as its subject.
    fn subjects(dn: DistinguishedName) -> (String, String) {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        let der = params.self_signed(&KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()).unwrap().der().to_vec();
        let expected = x509_parser::certificate::X509Certificate::from_der(&der).unwrap().1.subject().to_string();
        (Certificate::from_der(der, "test").unwrap().subject_string, expected)
    }

    #[test]
    fn names_are_written_as_x509_parser_writes_them() {
        let mut common = DistinguishedName::new();
        common.push(DnType::CountryName, "DE");
        common.push(DnType::StateOrProvinceName, "Berlin");
        common.push(DnType::LocalityName, DnValue::PrintableString("Mitte".try_into().unwrap()));
        common.push(DnType::OrganizationName, "system:masters");
        common.push(DnType::OrganizationalUnitName, "ops");
        common.push(DnType::CommonName, DnValue::Ia5String("kubernetes-admin".try_into().unwrap()));
        // A BMPString value and an attribute type outside the common ones are x509-parser's.
        let mut bmp = DistinguishedName::new();
        bmp.push(DnType::CommonName, DnValue::BmpString("wide".try_into().unwrap()));
        let mut custom = DistinguishedName::new();
        custom.push(DnType::CommonName, "node");
        custom.push(DnType::CustomDnType(vec![2, 5, 4, 5]), "serial-7");
        for dn in [common, bmp, custom, DistinguishedName::new()] {
            let (ours, theirs) = subjects(dn);
            assert_eq!(ours, theirs);
        }
        let (ours, _) = subjects({
            let mut dn = DistinguishedName::new();
            dn.push(DnType::OrganizationName, "system:nodes");
            dn.push(DnType::CommonName, "system:node:cp1");
            dn
        });
        assert_eq!(ours, "O=system:nodes, CN=system:node:cp1");
    }

    #[test]
    fn fingerprints_and_hex_are_lowercase_digits() {
        let abc = Fingerprint::of(b"abc");
        assert_eq!(abc.as_str(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(serde_json::to_string(&abc).unwrap(), format!("\"{abc}\""));
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    /// A leaf verifies with the CA that signed it, not with another CA of the same name; for
    /// ECDSA and RSA (the signature found by kubepki's reader, verified by aws-lc).
    #[test]
    fn a_leaf_verifies_only_with_its_own_ca() {
        use crate::issue::{CertRequest, Signer, self_signed_ca};
        use crate::validity::Validity;
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let validity = |days| Validity { not_before: now, not_after: now + time::Duration::days(days) };
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
            let (key, other_key) = (alg.generate().unwrap(), alg.generate().unwrap());
            let ca = self_signed_ca("kubernetes", &key, validity(3650)).unwrap();
            let impostor = self_signed_ca("kubernetes", &other_key, validity(3650)).unwrap();
            let request = CertRequest {
                subject: Subject::new("kube-apiserver", Vec::<String>::new()),
                sans: AltNames::new(),
                usage: Usage::Server,
            };
            let leaf_key = KeyAlgorithm::EcdsaP256.generate().unwrap();
            let der = Signer::new("ca", &ca, &key).unwrap().sign("leaf", &request, &leaf_key, validity(365)).unwrap();
            let leaf = Certificate::from_der(der, "leaf").unwrap();
            assert_eq!(leaf.verify_issued_by(&ca), Ok(()), "{alg:?}");
            assert_eq!(
                leaf.verify_issued_by(&impostor),
                Err("the signature does not verify with the CA's key".to_owned()),
                "{alg:?}"
            );
            assert!(leaf.verify_issued_by(&leaf).unwrap_err().contains("is not the CA's subject"));
        }
    }

    #[test]
    fn key_and_signature_algorithms_are_named() {
        for (alg, key, signature) in [
            (KeyAlgorithm::EcdsaP256, "ECDSA-P256", "ecdsa-with-SHA256"),
            (KeyAlgorithm::EcdsaP384, "ECDSA-P384", "ecdsa-with-SHA384"),
            (KeyAlgorithm::Rsa2048, "RSA-2048", "sha256WithRSAEncryption"),
        ] {
            let key_pair = alg.generate().unwrap();
            let params = CertificateParams::new(vec!["a.example".into()]).unwrap();
            let der = params.self_signed(key_pair.key_pair().unwrap()).unwrap().der().to_vec();
            let cert = Certificate::from_der(der, "test").unwrap();
            assert_eq!((cert.public_key.to_string().as_str(), cert.signature_algorithm), (key, signature));
            assert!(!cert.weak_signature);
        }
    }
}
