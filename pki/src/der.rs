//! The few DER structures kubepki must take apart or put together by hand: PKCS#8 around
//! PKCS#1 and SEC 1 keys (kubeadm's key encodings), and the RSA modulus size.

/// rsaEncryption, 1.2.840.113549.1.1.1.
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey, 1.2.840.10045.2.1.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
pub(crate) const TAG_NUMERIC_STRING: u8 = 0x12;
pub(crate) const TAG_PRINTABLE_STRING: u8 = 0x13;
pub(crate) const TAG_T61_STRING: u8 = 0x14;
pub(crate) const TAG_IA5_STRING: u8 = 0x16;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_BMP_STRING: u8 = 0x1e;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;
pub(crate) const TAG_CONTEXT_0: u8 = 0xa0;
pub(crate) const TAG_CONTEXT_1: u8 = 0xa1;
pub(crate) const TAG_CONTEXT_3: u8 = 0xa3;
/// `[n] IMPLICIT` of a primitive type.
pub(crate) const fn tag_implicit(n: u8) -> u8 {
    0x80 | n
}

/// One DER element: its tag (the identifier's first byte), its contents, and its whole
/// encoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub contents: &'a [u8],
    pub encoded: &'a [u8],
}

/// A strict DER reader: definite lengths in their shortest form, one element at a time.
/// A tag number above 30 (several identifier bytes) is read and reported by its first byte,
/// which no tag kubepki looks for has.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self(input)
    }

    /// Whether everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What is left.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.0
    }

    /// The next element's tag, without reading it.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Reads the next element.
    pub(crate) fn read(&mut self) -> Result<Tlv<'a>, &'static str> {
        let input = self.0;
        let (&tag, mut rest) = input.split_first().ok_or("unexpected end of data")?;
        if tag & 0x1f == 0x1f {
            // High tag number: base-128 digits, the last without the top bit.
            let digits = rest.iter().position(|&b| b & 0x80 == 0).ok_or("unexpected end of data")? + 1;
            if digits > 4 || rest[0] == 0x80 {
                return Err("invalid tag number");
            }
            rest = &rest[digits..];
        }
        let (&first, rest) = rest.split_first().ok_or("unexpected end of data")?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 {
                return Err("indefinite length (BER, not DER)");
            }
            if n > 4 || rest.len() < n {
                return Err("unsupported length encoding");
            }
            let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if rest[0] == 0 || len < 0x80 {
                return Err("length not in its shortest form (BER, not DER)");
            }
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err("length exceeds the data");
        }
        let header = input.len() - rest.len();
        self.0 = &rest[len..];
        Ok(Tlv { tag, contents: &rest[..len], encoded: &input[..header + len] })
    }

    /// Reads the next element, which must have tag `want`.
    pub(crate) fn expect_tlv(&mut self, want: u8) -> Result<Tlv<'a>, &'static str> {
        let before = *self;
        let tlv = self.read()?;
        if tlv.tag != want {
            *self = before;
            return Err("unexpected DER tag");
        }
        Ok(tlv)
    }

    /// The contents of the next element, which must have tag `want`.
    pub(crate) fn expect(&mut self, want: u8) -> Result<&'a [u8], &'static str> {
        self.expect_tlv(want).map(|tlv| tlv.contents)
    }

    /// The contents of the next element if it has tag `want` (an OPTIONAL field).
    pub(crate) fn optional(&mut self, want: u8) -> Result<Option<&'a [u8]>, &'static str> {
        if self.peek() == Some(want) { self.expect(want).map(Some) } else { Ok(None) }
    }

    /// Fails if anything is left.
    pub(crate) fn finish(self) -> Result<(), &'static str> {
        if self.is_empty() { Ok(()) } else { Err("trailing data") }
    }
}

/// Splits one TLV off the front of `input`: `(tag, contents, rest)`.
fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), &'static str> {
    let mut reader = Reader::new(input);
    let tlv = reader.read()?;
    Ok((tlv.tag, tlv.contents, reader.rest()))
}

fn expect(input: &[u8], want: u8) -> Result<(&[u8], &[u8]), &'static str> {
    let mut reader = Reader::new(input);
    let contents = reader.expect(want)?;
    Ok((contents, reader.rest()))
}

pub(crate) fn write_tlv(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
    out.push(tag);
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
}

fn pkcs8(algorithm_identifier: &[u8], inner_key: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(inner_key.len() + 32);
    write_tlv(&mut body, TAG_INTEGER, &[0]);
    write_tlv(&mut body, TAG_SEQUENCE, algorithm_identifier);
    write_tlv(&mut body, TAG_OCTET_STRING, inner_key);
    let mut out = Vec::with_capacity(body.len() + 4);
    write_tlv(&mut out, TAG_SEQUENCE, &body);
    out
}

/// Wraps a PKCS#1 RSAPrivateKey in a PKCS#8 PrivateKeyInfo.
pub(crate) fn wrap_pkcs1_in_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    let mut alg = Vec::new();
    write_tlv(&mut alg, TAG_OID, OID_RSA_ENCRYPTION);
    write_tlv(&mut alg, TAG_NULL, &[]);
    pkcs8(&alg, pkcs1)
}

/// Wraps a SEC 1 ECPrivateKey (which must name its curve) in a PKCS#8 PrivateKeyInfo.
pub(crate) fn wrap_sec1_in_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, &'static str> {
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
    Ok(pkcs8(&alg, sec1))
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
pub(crate) fn pkcs8_is_rsa(pkcs8: &[u8]) -> bool {
    let alg = expect(pkcs8, TAG_SEQUENCE)
        .and_then(|(body, _)| expect(body, TAG_INTEGER))
        .and_then(|(_, rest)| expect(rest, TAG_SEQUENCE))
        .and_then(|(alg, _)| expect(alg, TAG_OID));
    alg.is_ok_and(|(oid, _)| oid == OID_RSA_ENCRYPTION)
}

/// The key inside a PKCS#8 PrivateKeyInfo (PKCS#1 for RSA).
pub(crate) fn pkcs8_inner_key(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (body, _) = expect(pkcs8, TAG_SEQUENCE).ok()?;
    let (_version, rest) = expect(body, TAG_INTEGER).ok()?;
    let (_alg, rest) = expect(rest, TAG_SEQUENCE).ok()?;
    let (key, _) = expect(rest, TAG_OCTET_STRING).ok()?;
    Some(key.to_vec())
}

/// The SEC 1 ECPrivateKey inside an EC PKCS#8 PrivateKeyInfo, with the curve named inside (the
/// `[0]` parameters that PKCS#8 carries in its AlgorithmIdentifier instead), as kubeadm writes
/// `EC PRIVATE KEY`. Pure DER work: no key is parsed or checked again.
pub(crate) fn pkcs8_ec_to_sec1(pkcs8: &[u8]) -> Option<Vec<u8>> {
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

/// An AttributeTypeAndValue: `oid` (contents) and a string `value` with tag `tag`.
pub(crate) fn attribute(oid: &[u8], tag: u8, value: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(oid.len() + value.len() + 4);
    write_tlv(&mut body, TAG_OID, oid);
    write_tlv(&mut body, tag, value.as_bytes());
    let mut out = Vec::with_capacity(body.len() + 2);
    write_tlv(&mut out, TAG_SEQUENCE, &body);
    out
}

/// A Name of these RDNs, each a SET OF its attributes (encoded by [`attribute`]) in DER order:
/// ascending as octet strings (X.690 §11.6), as Go's encoding/asn1 sorts a SET OF, so a
/// shorter attribute comes first.
pub(crate) fn name(rdns: Vec<Vec<Vec<u8>>>) -> Vec<u8> {
    let mut body = Vec::new();
    for mut attributes in rdns {
        attributes.sort();
        write_tlv(&mut body, TAG_SET, &attributes.concat());
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    write_tlv(&mut out, TAG_SEQUENCE, &body);
    out
}

/// A certificate's TBSCertificate (whole encoding) with its subject replaced by `subject` (a
/// Name's whole encoding), and its signatureAlgorithm (whole encoding): what must be signed
/// again, and with what, for the certificate to carry the new subject.
pub(crate) fn tbs_with_subject<'a>(cert: &'a [u8], subject: &[u8]) -> Result<(Vec<u8>, &'a [u8]), &'static str> {
    // [0] version (optional), then serialNumber, signature, issuer, validity.
    signed_with_subject(cert, &[TAG_INTEGER, TAG_SEQUENCE, TAG_SEQUENCE, TAG_SEQUENCE], subject)
}

/// A CSR's CertificationRequestInfo (whole encoding) with its subject replaced by `subject`, and
/// its signatureAlgorithm: as [`tbs_with_subject`], for a PKCS#10 request (which is then
/// [`certificate`]'s shape).
pub(crate) fn request_info_with_subject<'a>(
    csr: &'a [u8],
    subject: &[u8],
) -> Result<(Vec<u8>, &'a [u8]), &'static str> {
    // version, then the subject.
    signed_with_subject(csr, &[TAG_INTEGER], subject)
}

/// The signed part of `signed` (a SEQUENCE of it, an algorithm and a signature) with the Name
/// that follows an optional `[0]` and fields of the tags `before` replaced by `subject`, and the
/// algorithm's whole encoding.
fn signed_with_subject<'a>(
    signed: &'a [u8],
    before: &[u8],
    subject: &[u8],
) -> Result<(Vec<u8>, &'a [u8]), &'static str> {
    let mut outer = Reader::new(Reader::new(signed).expect(TAG_SEQUENCE)?);
    let part = outer.expect(TAG_SEQUENCE)?;
    let algorithm = outer.expect_tlv(TAG_SEQUENCE)?.encoded;
    let mut fields = Reader::new(part);
    let mut body = Vec::with_capacity(part.len() + subject.len());
    if fields.peek() == Some(TAG_CONTEXT_0) {
        body.extend_from_slice(fields.read()?.encoded);
    }
    for &tag in before {
        body.extend_from_slice(fields.expect_tlv(tag)?.encoded);
    }
    fields.expect_tlv(TAG_SEQUENCE)?;
    body.extend_from_slice(subject);
    body.extend_from_slice(fields.rest());
    let mut out = Vec::with_capacity(body.len() + 4);
    write_tlv(&mut out, TAG_SEQUENCE, &body);
    Ok((out, algorithm))
}

/// A certificate's TBSCertificate (whole encoding) with its serial number and validity
/// replaced — `serial` the INTEGER's contents, `not_before`/`not_after` whole Time encodings
/// ([`time`]) — and everything else (issuer, subject, key, extensions) kept byte for byte, and
/// its signatureAlgorithm (whole encoding): what a CA re-issued with its own key signs.
pub(crate) fn tbs_with_serial_and_validity<'a>(
    cert: &'a [u8],
    serial: &[u8],
    not_before: &[u8],
    not_after: &[u8],
) -> Result<(Vec<u8>, &'a [u8]), &'static str> {
    let mut outer = Reader::new(Reader::new(cert).expect(TAG_SEQUENCE)?);
    let part = outer.expect(TAG_SEQUENCE)?;
    let algorithm = outer.expect_tlv(TAG_SEQUENCE)?.encoded;
    let mut fields = Reader::new(part);
    let mut body = Vec::with_capacity(part.len() + 16);
    if fields.peek() == Some(TAG_CONTEXT_0) {
        body.extend_from_slice(fields.read()?.encoded);
    }
    fields.expect(TAG_INTEGER)?;
    write_tlv(&mut body, TAG_INTEGER, serial);
    body.extend_from_slice(fields.expect_tlv(TAG_SEQUENCE)?.encoded);
    body.extend_from_slice(fields.expect_tlv(TAG_SEQUENCE)?.encoded);
    fields.expect(TAG_SEQUENCE)?;
    write_tlv(&mut body, TAG_SEQUENCE, &[not_before, not_after].concat());
    body.extend_from_slice(fields.rest());
    let mut out = Vec::with_capacity(body.len() + 4);
    write_tlv(&mut out, TAG_SEQUENCE, &body);
    Ok((out, algorithm))
}

/// An X.509 Time as RFC 5280 §4.1.2.5 wants it: UTCTime through 2049, GeneralizedTime from 2050.
pub(crate) fn time(t: time::OffsetDateTime) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (tag, year) = if (1950..2050).contains(&t.year()) {
        (TAG_UTC_TIME, format!("{:02}", t.year() % 100))
    } else {
        (TAG_GENERALIZED_TIME, format!("{:04}", t.year()))
    };
    let text =
        format!("{year}{:02}{:02}{:02}{:02}{:02}Z", u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second());
    let mut out = Vec::with_capacity(text.len() + 2);
    write_tlv(&mut out, tag, text.as_bytes());
    out
}

/// A Certificate of `tbs` and `algorithm` (whole encodings) and the `signature` over `tbs`.
pub(crate) fn certificate(tbs: &[u8], algorithm: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0);
    bits.extend_from_slice(signature);
    let mut body = Vec::with_capacity(tbs.len() + algorithm.len() + bits.len() + 8);
    body.extend_from_slice(tbs);
    body.extend_from_slice(algorithm);
    write_tlv(&mut body, TAG_BIT_STRING, &bits);
    let mut out = Vec::with_capacity(body.len() + 4);
    write_tlv(&mut out, TAG_SEQUENCE, &body);
    out
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
    fn long_lengths_round_trip() {
        let contents = vec![7u8; 300];
        let mut out = Vec::new();
        write_tlv(&mut out, TAG_OCTET_STRING, &contents);
        assert_eq!(&out[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (tag, back, rest) = read_tlv(&out).unwrap();
        assert_eq!((tag, back, rest.len()), (TAG_OCTET_STRING, &contents[..], 0));
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for input in [&[][..], &[0x30], &[0x30, 0x05, 0x01], &[0x30, 0x85, 0, 0, 0, 0, 1]] {
            assert!(read_tlv(input).is_err(), "{input:?}");
        }
        assert!(wrap_sec1_in_pkcs8(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
        assert_eq!(pkcs8_inner_key(&[0x30, 0x00]), None);
    }
}
