//! kubeadm's key encodings and PKCS#8. kubeadm writes RSA keys as PKCS#1 (`RSA PRIVATE KEY`)
//! and ECDSA keys as SEC 1 (`EC PRIVATE KEY`), while the crypto library reads and writes only
//! PKCS#8 (`PRIVATE KEY`): a key read is wrapped in PKCS#8, and a key written is unwrapped back
//! to kubeadm's encoding, so a cert dir kubepki writes reads as one kubeadm wrote. The RSA
//! modulus size, which no key parser is needed for, is read here too, even of keys too small
//! to load. All of it is DER work on the bytes, with [`crate::der`]'s reader.

use crate::der::{
    TAG_BIT_STRING, TAG_CONTEXT_0, TAG_CONTEXT_1, TAG_INTEGER, TAG_NULL, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE,
    expect, read_tlv, write_tlv,
};

/// rsaEncryption, 1.2.840.113549.1.1.1.
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey, 1.2.840.10045.2.1.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// A PKCS#8 PrivateKeyInfo (version 0) of an AlgorithmIdentifier's contents and the key inside.
fn private_key_info(algorithm_identifier: &[u8], inner_key: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(inner_key.len() + 32);
    write_tlv(&mut body, TAG_INTEGER, &[0]);
    write_tlv(&mut body, TAG_SEQUENCE, algorithm_identifier);
    write_tlv(&mut body, TAG_OCTET_STRING, inner_key);
    let mut out = Vec::with_capacity(body.len() + 4);
    write_tlv(&mut out, TAG_SEQUENCE, &body);
    out
}

/// Wraps a PKCS#1 RSAPrivateKey in a PKCS#8 PrivateKeyInfo.
pub(crate) fn wrap_pkcs1(pkcs1: &[u8]) -> Vec<u8> {
    let mut alg = Vec::new();
    write_tlv(&mut alg, TAG_OID, OID_RSA_ENCRYPTION);
    write_tlv(&mut alg, TAG_NULL, &[]);
    private_key_info(&alg, pkcs1)
}

/// Wraps a SEC 1 ECPrivateKey (which must name its curve) in a PKCS#8 PrivateKeyInfo.
pub(crate) fn wrap_sec1(sec1: &[u8]) -> Result<Vec<u8>, &'static str> {
    let (mut body, _) = expect(sec1, TAG_SEQUENCE)?;
    let mut curve = None;
    while !body.is_empty() {
        let (tag, contents, rest) = read_tlv(body)?;
        if tag == TAG_CONTEXT_0 {
            let (oid, _) = expect(contents, TAG_OID)?;
            curve = Some(oid);
        }
        body = rest;
    }
    let curve = curve.ok_or("the key does not name its curve")?;
    let mut alg = Vec::new();
    write_tlv(&mut alg, TAG_OID, OID_EC_PUBLIC_KEY);
    write_tlv(&mut alg, TAG_OID, curve);
    Ok(private_key_info(&alg, sec1))
}

/// The DER SubjectPublicKeyInfo of a PKCS#1 RSAPrivateKey's public half (its modulus and
/// public exponent), whatever the modulus size: what kube-apiserver trusts of an RSA private
/// key block, even one too small for [`crate::PrivateKey`]. Pure DER work.
pub(crate) fn rsa_private_to_spki(pkcs1: &[u8]) -> Option<Vec<u8>> {
    let (body, _) = expect(pkcs1, TAG_SEQUENCE).ok()?;
    let (_version, rest) = expect(body, TAG_INTEGER).ok()?;
    let (modulus, rest) = expect(rest, TAG_INTEGER).ok()?;
    let (exponent, _) = expect(rest, TAG_INTEGER).ok()?;
    let mut public = Vec::with_capacity(modulus.len() + exponent.len() + 8);
    write_tlv(&mut public, TAG_INTEGER, modulus);
    write_tlv(&mut public, TAG_INTEGER, exponent);
    let mut rsa_public_key = Vec::with_capacity(public.len() + 5);
    rsa_public_key.push(0); // no unused bits in the BIT STRING
    write_tlv(&mut rsa_public_key, TAG_SEQUENCE, &public);
    let mut alg = Vec::new();
    write_tlv(&mut alg, TAG_OID, OID_RSA_ENCRYPTION);
    write_tlv(&mut alg, TAG_NULL, &[]);
    let mut body = Vec::with_capacity(rsa_public_key.len() + alg.len() + 8);
    write_tlv(&mut body, TAG_SEQUENCE, &alg);
    write_tlv(&mut body, TAG_BIT_STRING, &rsa_public_key);
    let mut out = Vec::with_capacity(body.len() + 4);
    write_tlv(&mut out, TAG_SEQUENCE, &body);
    Some(out)
}

/// Whether a PKCS#8 PrivateKeyInfo holds an RSA key.
pub(crate) fn is_rsa(pkcs8: &[u8]) -> bool {
    let alg = expect(pkcs8, TAG_SEQUENCE)
        .and_then(|(body, _)| expect(body, TAG_INTEGER))
        .and_then(|(_, rest)| expect(rest, TAG_SEQUENCE))
        .and_then(|(alg, _)| expect(alg, TAG_OID));
    alg.is_ok_and(|(oid, _)| oid == OID_RSA_ENCRYPTION)
}

/// The key inside a PKCS#8 PrivateKeyInfo (PKCS#1 for RSA).
pub(crate) fn inner_key(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (body, _) = expect(pkcs8, TAG_SEQUENCE).ok()?;
    let (_version, rest) = expect(body, TAG_INTEGER).ok()?;
    let (_alg, rest) = expect(rest, TAG_SEQUENCE).ok()?;
    let (key, _) = expect(rest, TAG_OCTET_STRING).ok()?;
    Some(key.to_vec())
}

/// The SEC 1 ECPrivateKey inside an EC PKCS#8 PrivateKeyInfo, with the curve named inside (the
/// `[0]` parameters that PKCS#8 carries in its AlgorithmIdentifier instead), as kubeadm writes
/// `EC PRIVATE KEY`. Pure DER work: no key is parsed or checked again.
pub(crate) fn ec_to_sec1(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (body, _) = expect(pkcs8, TAG_SEQUENCE).ok()?;
    let (_version, rest) = expect(body, TAG_INTEGER).ok()?;
    let (alg, rest) = expect(rest, TAG_SEQUENCE).ok()?;
    let (key, _) = expect(rest, TAG_OCTET_STRING).ok()?;
    let (oid, alg_rest) = expect(alg, TAG_OID).ok()?;
    let (curve, _) = expect(alg_rest, TAG_OID).ok()?;
    if oid != OID_EC_PUBLIC_KEY {
        return None;
    }
    let (ec_body, _) = expect(key, TAG_SEQUENCE).ok()?;
    let (version, rest) = expect(ec_body, TAG_INTEGER).ok()?;
    let (private, mut rest) = expect(rest, TAG_OCTET_STRING).ok()?;
    let mut public = None;
    while !rest.is_empty() {
        let (tag, contents, next) = read_tlv(rest).ok()?;
        if tag == TAG_CONTEXT_1 {
            public = Some(contents);
        }
        rest = next;
    }
    let mut params = Vec::with_capacity(curve.len() + 2);
    write_tlv(&mut params, TAG_OID, curve);
    let mut out_body = Vec::with_capacity(key.len() + params.len() + 16);
    write_tlv(&mut out_body, TAG_INTEGER, version);
    write_tlv(&mut out_body, TAG_OCTET_STRING, private);
    write_tlv(&mut out_body, TAG_CONTEXT_0, &params);
    if let Some(public) = public {
        write_tlv(&mut out_body, TAG_CONTEXT_1, public);
    }
    let mut out = Vec::with_capacity(out_body.len() + 4);
    write_tlv(&mut out, TAG_SEQUENCE, &out_body);
    zeroize::Zeroize::zeroize(&mut out_body);
    Some(out)
}

/// The modulus size in bits of an RSA SubjectPublicKeyInfo, or `None` if it is not RSA.
pub(crate) fn rsa_modulus_bits(spki: &[u8]) -> Option<usize> {
    let (body, _) = expect(spki, TAG_SEQUENCE).ok()?;
    let (alg, rest) = expect(body, TAG_SEQUENCE).ok()?;
    let (oid, _) = expect(alg, TAG_OID).ok()?;
    if oid != OID_RSA_ENCRYPTION {
        return None;
    }
    let (bits, _) = expect(rest, TAG_BIT_STRING).ok()?;
    let (key, _) = expect(bits.get(1..)?, TAG_SEQUENCE).ok()?;
    let (modulus, _) = expect(key, TAG_INTEGER).ok()?;
    let modulus = match modulus.iter().position(|&b| b != 0) {
        Some(i) => &modulus[i..],
        None => return Some(0),
    };
    Some(modulus.len() * 8 - modulus[0].leading_zeros() as usize)
}

/// The modulus size in bits of a PKCS#1 RSAPrivateKey, or `None` if it is not one.
pub(crate) fn rsa_private_modulus_bits(pkcs1: &[u8]) -> Option<usize> {
    let (body, _) = expect(pkcs1, TAG_SEQUENCE).ok()?;
    let (_version, rest) = expect(body, TAG_INTEGER).ok()?;
    let (modulus, _) = expect(rest, TAG_INTEGER).ok()?;
    let modulus = &modulus[modulus.iter().position(|&b| b != 0)?..];
    Some(modulus.len() * 8 - modulus[0].leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_keys_are_an_error_not_a_panic() {
        assert!(wrap_sec1(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
        assert_eq!(inner_key(&[0x30, 0x00]), None);
    }
}
