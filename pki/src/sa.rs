//! The service-account keys: `sa.key` signs every ServiceAccount token of the cluster, `sa.pub`
//! holds the public keys tokens are verified against.
//!
//! kube-apiserver signs with the one private key of `--service-account-signing-key-file` and
//! verifies a token against every public key of `--service-account-key-file` (a file that may hold
//! several PEM blocks, and a flag that may repeat). It reads those files with client-go's
//! `keyutil.ParsePublicKeysPEM`: each PEM block that is a private key (PKCS#1, SEC 1, PKCS#8)
//! contributes its public half, a block whose contents parse as a PKIX public key or as a
//! certificate contributes that public key, any other block is skipped, and a file with no key at
//! all is an error. [`PublicKeySet::parse`] reads `sa.pub` by the same rules.
//!
//! A token names its signing key in the JWS `kid` header: the unpadded base64url of the SHA-256
//! of the key's DER SubjectPublicKeyInfo (kube-apiserver's `keyIDFromPublicKey`), computed by
//! [`key_id`]. Only RSA and ECDSA (P-256, P-384, P-521) keys sign tokens: RS256 for RSA, ES256,
//! ES384 and ES512 by curve.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey as ParsedKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::error::{Error, Result};
use crate::key::PrivateKey;

/// The key ID kube-apiserver gives a token signed by the key whose DER SubjectPublicKeyInfo is
/// `spki_der`: the unpadded base64url of its SHA-256.
///
/// ```
/// let id = kubepki_pki::sa::key_id(b"not really a key");
/// assert_eq!(id.len(), 43);
/// assert!(!id.contains('='));
/// ```
pub fn key_id(spki_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki_der))
}

/// What kind of key a service-account public key is.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum SaKeyAlgorithm {
    /// RSA, with the modulus size in bits.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
    },
    /// ECDSA on a named curve.
    Ecdsa(Curve),
}

/// The ECDSA curves kube-apiserver signs tokens with.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
}

impl Curve {
    fn jwk_name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }

    fn bits(self) -> usize {
        match self {
            Self::P256 => 256,
            Self::P384 => 384,
            Self::P521 => 521,
        }
    }
}

impl SaKeyAlgorithm {
    /// The key size in bits (the modulus for RSA, the curve's for ECDSA).
    pub fn bits(self) -> usize {
        match self {
            Self::Rsa { bits } => bits,
            Self::Ecdsa(curve) => curve.bits(),
        }
    }

    /// The JWS algorithm kube-apiserver signs tokens with for such a key (RFC 7518).
    pub fn jws_algorithm(self) -> &'static str {
        match self {
            Self::Rsa { .. } => "RS256",
            Self::Ecdsa(Curve::P256) => "ES256",
            Self::Ecdsa(Curve::P384) => "ES384",
            Self::Ecdsa(Curve::P521) => "ES512",
        }
    }
}

/// kubeadm's spelling where it has one (`RSA-2048`, `ECDSA-P256`), the same shape otherwise.
impl fmt::Display for SaKeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa { bits } => write!(f, "RSA-{bits}"),
            Self::Ecdsa(curve) => write!(f, "ECDSA-P{}", curve.bits()),
        }
    }
}

/// A public key that can verify ServiceAccount tokens.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct PublicKey {
    spki: Vec<u8>,
    algorithm: SaKeyAlgorithm,
    /// JWK members of the key itself: `n` and `e` (RSA) or `crv`, `x` and `y` (ECDSA).
    members: Vec<(&'static str, String)>,
}

impl PublicKey {
    /// Reads a DER SubjectPublicKeyInfo; only RSA and ECDSA on P-256, P-384 and P-521 are keys
    /// kube-apiserver verifies tokens with.
    pub fn from_spki(der: &[u8]) -> std::result::Result<Self, String> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der).map_err(|e| format!("not a public key: {e}"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the public key".into());
        }
        let parsed = spki.parsed().map_err(|e| format!("unreadable public key: {e}"))?;
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let (algorithm, members) = match parsed {
            ParsedKey::RSA(rsa) => {
                let strip = |b: &[u8]| b.iter().position(|&x| x != 0).map_or(vec![0], |i| b[i..].to_vec());
                let (n, e) = (strip(rsa.modulus), strip(rsa.exponent));
                (SaKeyAlgorithm::Rsa { bits: rsa.key_size() }, vec![("n", b64(&n)), ("e", b64(&e))])
            }
            ParsedKey::EC(point) => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|oid| oid.to_id_string())
                    .and_then(|oid| match oid.as_str() {
                        "1.2.840.10045.3.1.7" => Some(Curve::P256),
                        "1.3.132.0.34" => Some(Curve::P384),
                        "1.3.132.0.35" => Some(Curve::P521),
                        _ => None,
                    })
                    .ok_or("an ECDSA key on a curve other than P-256, P-384 or P-521")?;
                let width = curve.bits().div_ceil(8);
                let data = point.data();
                if data.len() != 1 + 2 * width || data[0] != 4 {
                    return Err("an ECDSA public key that is not an uncompressed point".into());
                }
                let (x, y) = data[1..].split_at(width);
                (SaKeyAlgorithm::Ecdsa(curve), vec![("crv", curve.jwk_name().to_owned()), ("x", b64(x)), ("y", b64(y))])
            }
            _ => return Err("not an RSA or ECDSA key (kube-apiserver signs tokens with RSA or ECDSA only)".into()),
        };
        Ok(Self { spki: der.to_vec(), algorithm, members })
    }

    /// The public half of a private key.
    pub fn of(key: &PrivateKey) -> Result<Self> {
        Self::from_spki(&key.public_key_der())
            .map_err(|reason| Error::InvalidKey { source_name: "the service-account signing key".into(), reason })
    }

    /// The public half of the first private key of a PEM file (PKCS#1, SEC 1 or PKCS#8), as
    /// kube-apiserver reads `--service-account-signing-key-file`: an RSA key of any size too
    /// (its public half is taken from the DER; [`PrivateKey`] refuses sizes other than 2048,
    /// 3072 and 4096 bits), so that a weak key can be named rather than refused.
    pub fn of_private_pem(pem: &[u8], source_name: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidKey { source_name: source_name.to_owned(), reason };
        let text = std::str::from_utf8(pem).map_err(|_| invalid("not PEM text".into()))?;
        let refused = match PrivateKey::from_pem(text, source_name) {
            Ok(key) => return Self::from_spki(&key.public_key_der()).map_err(invalid),
            Err(e) => e,
        };
        let blocks = crate::pem::parse(pem).unwrap_or_default();
        let Some(block) = blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY")) else { return Err(refused) };
        let pkcs1 = match block.label.as_str() {
            "RSA PRIVATE KEY" => Some(zeroize::Zeroizing::new(block.der.clone())),
            "PRIVATE KEY" if crate::pkcs8::is_rsa(&block.der) => {
                crate::pkcs8::inner_key(&block.der).map(zeroize::Zeroizing::new)
            }
            _ => None,
        };
        pkcs1
            .and_then(|k| crate::pkcs8::rsa_private_to_spki(&k))
            .and_then(|spki| Self::from_spki(&spki).ok())
            .ok_or(refused)
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key's algorithm and size.
    pub fn algorithm(&self) -> SaKeyAlgorithm {
        self.algorithm
    }

    /// The `kid` of the tokens this key signs ([`key_id`]).
    pub fn key_id(&self) -> String {
        key_id(&self.spki)
    }

    /// The key as a `PUBLIC KEY` PEM block, as kubeadm writes `sa.pub`.
    pub fn to_pem(&self) -> String {
        crate::pem::encode("PUBLIC KEY", &self.spki)
    }

    /// The key as a JSON Web Key (RFC 7517) for verifying tokens: `kty`, `use: sig`, `alg`,
    /// `kid` as kube-apiserver computes it, and the key's own members.
    pub fn to_jwk(&self) -> Value {
        let mut jwk = serde_json::Map::new();
        let kty = match self.algorithm {
            SaKeyAlgorithm::Rsa { .. } => "RSA",
            SaKeyAlgorithm::Ecdsa(_) => "EC",
        };
        jwk.insert("kty".into(), json!(kty));
        jwk.insert("use".into(), json!("sig"));
        jwk.insert("alg".into(), json!(self.algorithm.jws_algorithm()));
        jwk.insert("kid".into(), json!(self.key_id()));
        for (name, value) in &self.members {
            jwk.insert((*name).into(), json!(value));
        }
        Value::Object(jwk)
    }
}

/// The public keys of a `--service-account-key-file` (kubeadm's `sa.pub`), read as
/// kube-apiserver reads it.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct PublicKeySet {
    /// The keys, in file order, duplicates kept (kube-apiserver keeps them too).
    pub keys: Vec<PublicKey>,
    /// PEM blocks that hold no key kube-apiserver would use, each with why (kube-apiserver
    /// skips them silently).
    pub ignored: Vec<String>,
}

impl PublicKeySet {
    /// Reads every key of a PEM file by kube-apiserver's rules (see the module doc). A file
    /// that is not PEM, or holds no usable key, is an error naming `source_name`.
    pub fn parse(data: &[u8], source_name: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidKey { source_name: source_name.to_owned(), reason };
        let blocks = crate::pem::parse(data).map_err(invalid)?;
        if blocks.is_empty() {
            return Err(invalid("no PEM block: expected PUBLIC KEY blocks (kube-apiserver reads only PEM)".into()));
        }
        let mut set = Self::default();
        for (i, block) in blocks.iter().enumerate() {
            let key = if block.label.ends_with("PRIVATE KEY") {
                let pem = zeroize::Zeroizing::new(crate::pem::encode(&block.label, &block.der));
                PublicKey::of_private_pem(pem.as_bytes(), source_name).map_err(|e| e.to_string())
            } else {
                PublicKey::from_spki(&block.der).or_else(|spki_error| {
                    match x509_parser::parse_x509_certificate(&block.der) {
                        Ok((_, cert)) => PublicKey::from_spki(cert.tbs_certificate.subject_pki.raw),
                        Err(_) => Err(spki_error),
                    }
                })
            };
            match key {
                Ok(key) => set.keys.push(key),
                Err(why) => set.ignored.push(format!("PEM block {} ({}): {why}", i + 1, block.label)),
            }
        }
        if set.keys.is_empty() {
            return Err(invalid(format!(
                "no RSA or ECDSA public key (kube-apiserver would refuse it): {}",
                set.ignored.join("; ")
            )));
        }
        Ok(set)
    }

    /// Whether `key` is among the set's keys.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.keys.iter().any(|k| k.spki == key.spki)
    }

    /// The set as `sa.pub` holds it: one `PUBLIC KEY` block per key, in order.
    pub fn to_pem(&self) -> String {
        self.keys.iter().map(PublicKey::to_pem).collect()
    }

    /// The JSON Web Key Set (RFC 7517) of the keys, duplicates removed.
    pub fn to_jwks(&self) -> Value {
        let mut seen = Vec::new();
        let keys: Vec<Value> = self
            .keys
            .iter()
            .filter(|k| {
                let new = !seen.contains(&k.spki);
                seen.push(k.spki.clone());
                new
            })
            .map(PublicKey::to_jwk)
            .collect();
        json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyAlgorithm;

    #[test]
    fn the_key_id_is_the_base64url_sha256_of_the_spki() {
        let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let public = PublicKey::of(&key).unwrap();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &key.public_key_der());
        assert_eq!(URL_SAFE_NO_PAD.decode(public.key_id()).unwrap(), digest.as_ref());
        assert_eq!(public.algorithm().to_string(), "ECDSA-P256");
        assert_eq!(public.to_jwk()["alg"], "ES256");
        assert_eq!(public.to_jwk()["crv"], "P-256");
    }

    #[test]
    fn a_key_file_is_read_as_kube_apiserver_reads_it() {
        let rsa = KeyAlgorithm::Rsa2048.generate().unwrap();
        let ec = KeyAlgorithm::EcdsaP384.generate().unwrap();
        // A public key, a private key (its public half counts), a non-key block, a duplicate.
        let file = format!(
            "{}{}{}{}",
            rsa.public_key_pem(),
            ec.to_pem().as_str(),
            crate::pem::encode("X509 CRL", b"\x30\x00"),
            rsa.public_key_pem()
        );
        let set = PublicKeySet::parse(file.as_bytes(), "sa.pub").unwrap();
        assert_eq!(set.keys.len(), 3);
        assert_eq!(set.ignored.len(), 1, "{:?}", set.ignored);
        assert!(set.contains(&PublicKey::of(&ec).unwrap()));
        assert_eq!(set.keys[0].algorithm(), SaKeyAlgorithm::Rsa { bits: 2048 });
        assert_eq!(set.to_jwks()["keys"].as_array().unwrap().len(), 2);
        let jwk = &set.to_jwks()["keys"][0];
        assert_eq!(
            (jwk["kty"].as_str(), jwk["alg"].as_str(), jwk["e"].as_str()),
            (Some("RSA"), Some("RS256"), Some("AQAB"))
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap().len(), 256);
    }

    #[test]
    fn an_rsa_key_of_any_size_yields_its_public_half() {
        // The shape of a 1024-bit PKCS#1 RSAPrivateKey (version, n, e, then the private
        // numbers, here dummies): PrivateKey refuses the size, kube-apiserver signs with it.
        // The integration tests hold a real one made by pyca.
        let mut fields = Vec::new();
        crate::der::write_tlv(&mut fields, crate::der::TAG_INTEGER, &[0]);
        crate::der::write_tlv(&mut fields, crate::der::TAG_INTEGER, &[[0u8].as_slice(), &[0xc5; 128]].concat());
        crate::der::write_tlv(&mut fields, crate::der::TAG_INTEGER, &[1, 0, 1]);
        for _ in 0..6 {
            crate::der::write_tlv(&mut fields, crate::der::TAG_INTEGER, &[7]);
        }
        let mut pkcs1 = Vec::new();
        crate::der::write_tlv(&mut pkcs1, crate::der::TAG_SEQUENCE, &fields);
        let pem = crate::pem::encode("RSA PRIVATE KEY", &pkcs1);
        assert!(PrivateKey::from_pem(&pem, "sa.key").is_err());
        let public = PublicKey::of_private_pem(pem.as_bytes(), "sa.key").unwrap();
        assert_eq!(public.algorithm(), SaKeyAlgorithm::Rsa { bits: 1024 });
        let set = PublicKeySet::parse(pem.as_bytes(), "sa.pub").unwrap();
        assert!(set.contains(&public));
        let ec = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let from_pem = PublicKey::of_private_pem(ec.to_pem().as_bytes(), "sa.key").unwrap();
        assert_eq!(from_pem, PublicKey::of(&ec).unwrap());
    }

    #[test]
    fn a_file_without_keys_is_refused() {
        let err = PublicKeySet::parse(b"hello", "sa.pub").unwrap_err().to_string();
        assert!(err.contains("sa.pub"), "{err}");
        let only_crl = crate::pem::encode("X509 CRL", b"\x30\x00");
        let err = PublicKeySet::parse(only_crl.as_bytes(), "sa.pub").unwrap_err().to_string();
        assert!(err.contains("no RSA or ECDSA public key"), "{err}");
    }
}
