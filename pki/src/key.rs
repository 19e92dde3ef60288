//! Key algorithms, key generation, and private keys in kubeadm's encodings.
//!
//! kubeadm writes RSA keys as PKCS#1 (`RSA PRIVATE KEY`) and ECDSA keys as SEC 1
//! (`EC PRIVATE KEY`, with the curve named inside). We write the same, and read those as
//! well as PKCS#8 (`PRIVATE KEY`).

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use aws_lc_rs::signature::{self, KeyPair as _};

use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256, PublicKeyData, RsaKeySize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::pkcs8;

/// A key algorithm, named as kubeadm's `encryptionAlgorithm` names it.
#[derive(Clone, Copy, Debug, Default, Eq, Hash, PartialEq)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 (`ECDSA-P256`), kubepki's default: fast, small, accepted everywhere.
    #[default]
    EcdsaP256,
    /// ECDSA on NIST P-384 (`ECDSA-P384`).
    EcdsaP384,
    /// RSA with a 2048-bit modulus (`RSA-2048`), kubeadm's default.
    Rsa2048,
    /// RSA with a 3072-bit modulus (`RSA-3072`).
    Rsa3072,
    /// RSA with a 4096-bit modulus (`RSA-4096`).
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order kubeadm's documentation lists them.
    pub const ALL: [Self; 5] = [Self::Rsa2048, Self::Rsa3072, Self::Rsa4096, Self::EcdsaP256, Self::EcdsaP384];

    /// kubeadm's name for the algorithm, e.g. `RSA-2048`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ECDSA-P256",
            Self::EcdsaP384 => "ECDSA-P384",
            Self::Rsa2048 => "RSA-2048",
            Self::Rsa3072 => "RSA-3072",
            Self::Rsa4096 => "RSA-4096",
        }
    }

    /// Whether keys of this algorithm are RSA keys (slow to generate: worth doing in parallel).
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    /// Generates a new private key (and tells the [progress](crate::progress) observer).
    pub fn generate(self) -> Result<PrivateKey> {
        let key = self.make()?;
        crate::progress::key_made(self);
        Ok(key)
    }

    fn make(self) -> Result<PrivateKey> {
        let failed = |source| Error::Crypto { action: format!("generate a {} key", self.as_str()), source };
        let rsa = match self {
            Self::EcdsaP256 | Self::EcdsaP384 => {
                // aws-lc-rs directly, not rcgen's `generate_for`, which reads the new key back
                // from its PKCS#8 (see `PrivateKey::pair`).
                let signing = match self {
                    Self::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                    _ => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                };
                let unspecified = |_| failed(rcgen::Error::RingUnspecified);
                let pair = signature::EcdsaKeyPair::generate(signing).map_err(unspecified)?;
                let pkcs8 = Zeroizing::new(pair.to_pkcs8v1().map_err(unspecified)?.as_ref().to_vec());
                let public = pair.public_key().as_ref().to_vec();
                return Ok(PrivateKey { algorithm: self, pkcs8, public, pair: OnceLock::new() });
            }
            Self::Rsa2048 => RsaKeySize::_2048,
            Self::Rsa3072 => RsaKeySize::_3072,
            Self::Rsa4096 => RsaKeySize::_4096,
        };
        let pair = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, rsa).map_err(failed)?;
        Ok(PrivateKey::from_pair(pair, self))
    }

    /// rcgen's signature algorithm for keys of this algorithm (RSA: PKCS#1 v1.5 with SHA-256,
    /// as Go signs with RSA keys).
    fn signature_algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
            Self::EcdsaP384 => &PKCS_ECDSA_P384_SHA384,
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => &PKCS_RSA_SHA256,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;

    /// Parses kubeadm's names. An empty string means `RSA-2048`, as it does to kubeadm.
    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Ok(Self::Rsa2048);
        }
        Self::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| Error::InvalidValue {
            field: "encryption algorithm",
            value: s.to_owned(),
            reason: "expected one of RSA-2048, RSA-3072, RSA-4096, ECDSA-P256, ECDSA-P384".into(),
        })
    }
}

/// A private key with the algorithm it was made for.
///
/// Its `Debug` output never shows key material.
pub struct PrivateKey {
    algorithm: KeyAlgorithm,
    /// The key as PKCS#8 DER.
    pkcs8: Zeroizing<Vec<u8>>,
    /// The public key, as a SubjectPublicKeyInfo's BIT STRING holds it.
    public: Vec<u8>,
    /// The rcgen key pair, for signing. A key read from a file has it from the start (reading
    /// checks the key); a new ECDSA key gets it only when it first signs (a CA's key): aws-lc
    /// checks a key it reads with a scalar multiplication, as costly as making the key, which
    /// a new leaf key (most keys) never needs.
    pair: OnceLock<KeyPair>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// Reads a PEM private key: PKCS#1 `RSA PRIVATE KEY`, SEC 1 `EC PRIVATE KEY` or PKCS#8
    /// `PRIVATE KEY`. `source_name` names the origin in errors.
    ///
    /// Only RSA (2048, 3072 or 4096 bits) and ECDSA P-256/P-384 keys are accepted, as kubeadm
    /// accepts only RSA and ECDSA keys.
    pub fn from_pem(pem: &str, source_name: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidKey { source_name: source_name.to_owned(), reason };
        let blocks = crate::pem::parse(pem.as_bytes()).map_err(invalid)?;
        let block = blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY")).ok_or_else(|| {
            invalid("no PEM private key found (expected RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)".into())
        })?;
        if block.label == "ENCRYPTED PRIVATE KEY" {
            return Err(invalid("encrypted private keys are not supported".into()));
        }
        let der = Zeroizing::new(block.der.clone());
        let pkcs8 = match block.label.as_str() {
            "PRIVATE KEY" => der,
            "RSA PRIVATE KEY" => Zeroizing::new(pkcs8::wrap_pkcs1(&der)),
            "EC PRIVATE KEY" => {
                Zeroizing::new(pkcs8::wrap_sec1(&der).map_err(|e| invalid(format!("malformed EC PRIVATE KEY: {e}")))?)
            }
            other => return Err(invalid(format!("unsupported PEM block {other:?}"))),
        };
        let rsa_bits = match block.label.as_str() {
            "RSA PRIVATE KEY" => pkcs8::rsa_private_modulus_bits(&block.der),
            "PRIVATE KEY" => pkcs8::inner_key(&pkcs8).and_then(|k| pkcs8::rsa_private_modulus_bits(&k)),
            _ => None,
        };
        if let Some(bits) = rsa_bits.filter(|b| ![2048, 3072, 4096].contains(b)) {
            return Err(invalid(format!(
                "unsupported key type: RSA with a {bits}-bit modulus (only RSA 2048, 3072, 4096 bits and ECDSA \
                 P-256/P-384 keys are accepted)"
            )));
        }
        let pair =
            KeyPair::try_from(pkcs8.as_slice()).map_err(|e| invalid(format!("cannot load the private key: {e}")))?;
        let algorithm = algorithm_of(&pair).ok_or_else(|| {
            invalid(
                "unsupported key type: only RSA (2048, 3072, 4096 bits) and ECDSA P-256/P-384 keys are accepted".into(),
            )
        })?;
        Ok(Self::from_pair(pair, algorithm))
    }

    fn from_pair(pair: KeyPair, algorithm: KeyAlgorithm) -> Self {
        let (pkcs8, public) = (Zeroizing::new(pair.serialize_der()), pair.public_key_raw().to_vec());
        Self { algorithm, pkcs8, public, pair: OnceLock::from(pair) }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The rcgen key pair, for signing.
    pub fn key_pair(&self) -> Result<&KeyPair> {
        if let Some(pair) = self.pair.get() {
            return Ok(pair);
        }
        let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(self.pkcs8.as_slice());
        let pair = KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, self.algorithm.signature_algorithm())
            .map_err(|source| Error::Crypto { action: format!("load a new {} key", self.algorithm), source })?;
        // Another thread may have set it meanwhile: the same key either way.
        Ok(self.pair.get_or_init(|| pair))
    }

    /// The DER SubjectPublicKeyInfo of the public key.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.subject_public_key_info()
    }

    /// The public key as a PKIX `PUBLIC KEY` PEM block (the format of kubeadm's `sa.pub`).
    pub fn public_key_pem(&self) -> String {
        crate::pem::encode("PUBLIC KEY", &self.public_key_der())
    }

    /// The private key in kubeadm's PEM encoding: PKCS#1 for RSA, SEC 1 for ECDSA.
    pub fn to_pem(&self) -> Zeroizing<String> {
        // The PKCS#8 PrivateKeyInfo was made by aws-lc (a new key) or by rcgen from a key
        // aws-lc read, so the inner key is always present. The EC key is rewritten as DER
        // rather than parsed back through aws-lc (see `pair`).
        const WELL_FORMED: &str = "invariant: aws-lc made or checked this PKCS#8, which holds the inner key";
        let (label, der) = if self.algorithm.is_rsa() {
            ("RSA PRIVATE KEY", pkcs8::inner_key(&self.pkcs8).expect(WELL_FORMED))
        } else {
            ("EC PRIVATE KEY", pkcs8::ec_to_sec1(&self.pkcs8).expect(WELL_FORMED))
        };
        let der = Zeroizing::new(der);
        Zeroizing::new(crate::pem::encode(label, &der))
    }

    /// Whether this key is the private half of the public key in `spki_der`.
    pub fn matches_spki(&self, spki_der: &[u8]) -> bool {
        self.subject_public_key_info() == spki_der
    }
}

/// The public half, for the certificates issued to the key.
impl PublicKeyData for PrivateKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm.signature_algorithm()
    }
}

fn algorithm_of(pair: &KeyPair) -> Option<KeyAlgorithm> {
    let alg = pair.algorithm();
    if alg == &PKCS_ECDSA_P256_SHA256 {
        return Some(KeyAlgorithm::EcdsaP256);
    }
    if alg == &PKCS_ECDSA_P384_SHA384 {
        return Some(KeyAlgorithm::EcdsaP384);
    }
    if alg == &PKCS_RSA_SHA256 {
        let spki = pair.subject_public_key_info();
        return match pkcs8::rsa_modulus_bits(&spki)? {
            2048 => Some(KeyAlgorithm::Rsa2048),
            3072 => Some(KeyAlgorithm::Rsa3072),
            4096 => Some(KeyAlgorithm::Rsa4096),
            _ => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_empty_means_rsa_2048() {
        for a in KeyAlgorithm::ALL {
            assert_eq!(a.as_str().parse::<KeyAlgorithm>().unwrap(), a);
        }
        assert_eq!("".parse::<KeyAlgorithm>().unwrap(), KeyAlgorithm::Rsa2048);
        let err = "ED25519".parse::<KeyAlgorithm>().unwrap_err().to_string();
        assert!(err.contains("ED25519") && err.contains("ECDSA-P384"), "{err}");
    }

    #[test]
    fn ecdsa_keys_are_written_as_sec1_with_the_curve_and_read_back() {
        for a in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384] {
            let key = a.generate().unwrap();
            let pem = key.to_pem();
            assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"), "{}", a);
            let back = PrivateKey::from_pem(&pem, "test").unwrap();
            assert_eq!(back.algorithm(), a);
            assert_eq!(back.public_key_der(), key.public_key_der());
        }
    }

    #[test]
    fn a_new_key_and_the_same_key_read_back_agree() {
        for a in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384, KeyAlgorithm::Rsa2048] {
            let key = a.generate().unwrap();
            let back = PrivateKey::from_pem(&key.to_pem(), "test").unwrap();
            assert_eq!(back.algorithm(), a);
            let read = back.key_pair().unwrap();
            assert_eq!(key.public_key_der(), read.subject_public_key_info(), "{a}");
            assert_eq!(key.public_key_pem(), read.public_key_pem(), "{a}");
            assert_eq!(key.der_bytes(), read.public_key_raw(), "{a}");
            assert_eq!(PublicKeyData::algorithm(&key), read.algorithm(), "{a}");
            // The signing pair of a new key, made when first needed, is the same key.
            assert_eq!(key.key_pair().unwrap().subject_public_key_info(), key.public_key_der(), "{a}");
            assert_eq!(*key.to_pem(), *back.to_pem(), "{a}");
        }
    }

    #[test]
    fn sec1_keys_are_byte_for_byte_what_aws_lc_marshals() {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair};
        for (a, alg) in [
            (KeyAlgorithm::EcdsaP256, &ECDSA_P256_SHA256_ASN1_SIGNING),
            (KeyAlgorithm::EcdsaP384, &ECDSA_P384_SHA384_ASN1_SIGNING),
        ] {
            for _ in 0..20 {
                let key = a.generate().unwrap();
                let pkcs8 = key.key_pair().unwrap().serialize_der();
                let want = EcdsaKeyPair::from_pkcs8(alg, &pkcs8).unwrap().private_key().as_der().unwrap();
                let pem = key.to_pem();
                let block = &crate::pem::parse(pem.as_bytes()).unwrap()[0];
                assert_eq!(block.der, want.as_ref(), "{a}");
            }
        }
    }

    #[test]
    fn rsa_keys_are_written_as_pkcs1_and_read_back() {
        let key = KeyAlgorithm::Rsa2048.generate().unwrap();
        let pem = key.to_pem();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        let back = PrivateKey::from_pem(&pem, "test").unwrap();
        assert_eq!(back.algorithm(), KeyAlgorithm::Rsa2048);
        assert!(back.matches_spki(&key.public_key_der()));
    }

    #[test]
    fn garbage_and_encrypted_keys_are_refused_with_the_source_named() {
        let err = PrivateKey::from_pem("hello", "pki/ca.key").unwrap_err().to_string();
        assert!(err.starts_with("pki/ca.key: no PEM private key"), "{err}");
        let enc = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = PrivateKey::from_pem(enc, "k").unwrap_err().to_string();
        assert!(err.contains("encrypted"), "{err}");
    }

    #[test]
    fn debug_output_has_no_key_material() {
        let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let dbg = format!("{key:?}");
        assert_eq!(dbg, "PrivateKey { algorithm: EcdsaP256, .. }");
    }
}
