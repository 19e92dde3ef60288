//! The parts of an X.509 certificate kubepki keeps, read straight from its DER (RFC 5280 §4.1)
//! without building a full parse tree: a check of 10,000 certificates spent a third of its CPU
//! time in a general-purpose parser's allocations and extension machinery.
//!
//! The reader refuses what Go's crypto/x509 (kubeadm's and the API server's parser) refuses in
//! the parts it reads: BER lengths, a version other than 1 to 3, inner and outer signature
//! algorithms that differ, times not in RFC 5280's two forms, an extension twice, a name
//! attribute that is not one of the string types Go reads, a DNS name not in ASCII; like Go,
//! it does not look at what follows the fields it reads inside a SEQUENCE. Of the extensions,
//! it reads SubjectAltName, the key identifiers, BasicConstraints and ExtendedKeyUsage; the
//! others stay opaque bytes. It is more lenient than Go where kubepki does not need the value
//! (the public key itself, the serial's sign, an IP SAN of odd length): what it refuses, Go
//! refuses too, which a test asks Go itself (through kubectl) for every certificate of the
//! fuzz corpus that x509-parser reads and kubepki does not. x509-parser stays the reference
//! for the values: a test and the `pem_certificates` fuzz target hold every certificate both
//! read to the same values.

use std::net::IpAddr;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::der::{
    Reader, TAG_BIT_STRING, TAG_BMP_STRING, TAG_BOOLEAN, TAG_CONTEXT_0, TAG_CONTEXT_3, TAG_GENERALIZED_TIME,
    TAG_IA5_STRING, TAG_INTEGER, TAG_NUMERIC_STRING, TAG_OCTET_STRING, TAG_OID, TAG_PRINTABLE_STRING, TAG_SEQUENCE,
    TAG_SET, TAG_T61_STRING, TAG_UTC_TIME, TAG_UTF8_STRING, Tlv, tag_implicit,
};

/// 2.5.29.17, 2.5.29.14, 2.5.29.35, 2.5.29.19, 2.5.29.37.
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
const OID_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
const OID_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_EXTENDED_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// id-kp-serverAuth and id-kp-clientAuth, 1.3.6.1.5.5.7.3.1 and .2.
const OID_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
const OID_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// What a certificate says, borrowed from its DER.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    /// The TBSCertificate, whole encoding: what the signature is over.
    pub tbs: &'a [u8],
    /// The signatureAlgorithm, whole encoding.
    pub signature_algorithm_encoded: &'a [u8],
    /// The signature BIT STRING: its unused-bits count and bits.
    pub signature: (u8, &'a [u8]),
    /// The serial number's INTEGER contents.
    pub serial: &'a [u8],
    /// The signature algorithm's OID (contents).
    pub signature_algorithm: &'a [u8],
    /// The issuer Name, whole encoding.
    pub issuer: &'a [u8],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The subject Name, whole encoding.
    pub subject: &'a [u8],
    /// The SubjectPublicKeyInfo, whole encoding.
    pub spki: &'a [u8],
    /// The public key algorithm's OID (contents) and its parameters, if any.
    pub key_algorithm: &'a [u8],
    pub key_parameters: Option<Tlv<'a>>,
    /// The SubjectAltName's GeneralNames (contents), checked: see [`alt_names`].
    pub alt_names: Option<&'a [u8]>,
    pub subject_key_id: Option<&'a [u8]>,
    /// The AuthorityKeyIdentifier's keyIdentifier.
    pub authority_key_id: Option<&'a [u8]>,
    /// BasicConstraints cA.
    pub is_ca: bool,
    /// The ExtendedKeyUsage's serverAuth and clientAuth, when the extension is present.
    pub extended_key_usage: Option<(bool, bool)>,
}

/// Reads one DER certificate, which must be all of `der`, as Go's crypto/x509 reads one: every
/// field it reads must be well-formed DER, and what follows those fields inside a SEQUENCE is
/// not looked at (nor are the unique identifiers of a version 1 certificate, or the extensions
/// of one below version 3).
pub(crate) fn parse(der: &[u8]) -> Result<Fields<'_>, &'static str> {
    let mut outer = Reader::new(der);
    let mut cert = Reader::new(outer.expect(TAG_SEQUENCE).map_err(|_| "not a DER SEQUENCE")?);
    outer.finish().map_err(|_| "trailing data after the certificate")?;
    let tbs_encoded = cert.expect_tlv(TAG_SEQUENCE).map_err(|_| "no TBSCertificate")?;
    let mut tbs = Reader::new(tbs_encoded.contents);
    let version = match tbs.optional(TAG_CONTEXT_0)? {
        Some(version) => {
            let mut version = Reader::new(version);
            let number = version.expect(TAG_INTEGER)?;
            version.finish()?;
            match number {
                [n @ 0..=2] => *n,
                _ => return Err("unsupported version (not 1, 2 or 3)"),
            }
        }
        None => 0,
    };
    let serial = tbs.expect(TAG_INTEGER).map_err(|_| "no serial number")?;
    if serial.is_empty() {
        return Err("empty serial number");
    }
    let inner_algorithm = tbs.expect_tlv(TAG_SEQUENCE).map_err(|_| "no signature algorithm")?;
    let outer_algorithm = cert.expect_tlv(TAG_SEQUENCE).map_err(|_| "no signatureAlgorithm")?;
    if inner_algorithm.encoded != outer_algorithm.encoded {
        return Err("the inner and outer signature algorithms differ");
    }
    let (signature_algorithm, _) = algorithm_identifier(inner_algorithm.contents)?;
    let issuer = name(&mut tbs).map_err(|e| if e == NOT_A_STRING { e } else { "malformed issuer name" })?;
    let mut validity = Reader::new(tbs.expect(TAG_SEQUENCE).map_err(|_| "no validity")?);
    let not_before = time(&mut validity).ok_or("notBefore is not a time in RFC 5280's form")?;
    let not_after = time(&mut validity).ok_or("notAfter is not a time in RFC 5280's form")?;
    let subject = name(&mut tbs).map_err(|e| if e == NOT_A_STRING { e } else { "malformed subject name" })?;
    let spki = tbs.expect_tlv(TAG_SEQUENCE).map_err(|_| "no subjectPublicKeyInfo")?;
    let (key_algorithm, key_parameters) = {
        let mut spki = Reader::new(spki.contents);
        let algorithm = spki.expect(TAG_SEQUENCE)?;
        bit_string(&mut spki).map_err(|_| "malformed public key BIT STRING")?;
        algorithm_identifier(algorithm)?
    };
    let mut fields = Fields {
        tbs: tbs_encoded.encoded,
        signature_algorithm_encoded: outer_algorithm.encoded,
        signature: (0, &[]),
        serial,
        signature_algorithm,
        issuer,
        not_before,
        not_after,
        subject,
        spki: spki.encoded,
        key_algorithm,
        key_parameters,
        alt_names: None,
        subject_key_id: None,
        authority_key_id: None,
        is_ca: false,
        extended_key_usage: None,
    };
    if version >= 1 {
        // issuerUniqueID and subjectUniqueID: read past.
        tbs.optional(tag_implicit(1))?;
        tbs.optional(tag_implicit(2))?;
    }
    if version == 2
        && let Some(extensions) = tbs.optional(TAG_CONTEXT_3)?
    {
        read_extensions(Reader::new(extensions).expect(TAG_SEQUENCE)?, &mut fields)?;
    }
    fields.signature = bit_string(&mut cert).map_err(|_| "malformed signature BIT STRING")?;
    Ok(fields)
}

/// Reads a BIT STRING: its unused-bits count (0 to 7, none if empty) and bits.
fn bit_string<'a>(reader: &mut Reader<'a>) -> Result<(u8, &'a [u8]), &'static str> {
    let bits = reader.expect(TAG_BIT_STRING)?;
    match bits {
        [unused, rest @ ..] if *unused <= 7 && (!rest.is_empty() || *unused == 0) => Ok((*unused, rest)),
        _ => Err("malformed BIT STRING"),
    }
}

/// An AlgorithmIdentifier's OID and parameters (what follows them is not read).
fn algorithm_identifier(contents: &[u8]) -> Result<(&[u8], Option<Tlv<'_>>), &'static str> {
    let mut reader = Reader::new(contents);
    let oid = oid(&mut reader, "malformed algorithm identifier")?;
    let parameters = if reader.is_empty() { None } else { Some(reader.read()?) };
    Ok((oid, parameters))
}

/// Reads an OBJECT IDENTIFIER's contents, which must not be empty; `malformed` if the next
/// element is not one.
fn oid<'a>(reader: &mut Reader<'a>, malformed: &'static str) -> Result<&'a [u8], &'static str> {
    match reader.expect(TAG_OID).map_err(|_| malformed)? {
        [] => Err("empty OID"),
        oid => Ok(oid),
    }
}

/// Reads a Name (a SEQUENCE of SETs of SEQUENCE { type, value }) and returns its encoding.
fn name<'a>(reader: &mut Reader<'a>) -> Result<&'a [u8], &'static str> {
    let tlv = reader.expect_tlv(TAG_SEQUENCE)?;
    for_each_attribute(tlv.encoded, |_| {})?;
    Ok(tlv.encoded)
}

/// One attribute of a Name: its place and its type and value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attribute<'a> {
    /// The index of its RelativeDistinguishedName, and its index within it.
    pub rdn: usize,
    pub index: usize,
    /// The attribute type's OID (contents).
    pub oid: &'a [u8],
    /// The value's tag and contents.
    pub tag: u8,
    pub value: &'a [u8],
}

/// Calls `f` with every attribute of the encoded Name `name`, in order.
pub(crate) fn for_each_attribute<'a>(name: &'a [u8], mut f: impl FnMut(Attribute<'a>)) -> Result<(), &'static str> {
    let mut outer = Reader::new(name);
    let mut rdns = Reader::new(outer.expect(TAG_SEQUENCE)?);
    outer.finish()?;
    let mut rdn = 0;
    while !rdns.is_empty() {
        let mut set = Reader::new(rdns.expect(TAG_SET)?);
        let mut index = 0;
        while !set.is_empty() {
            let mut pair = Reader::new(set.expect(TAG_SEQUENCE)?);
            let oid = oid(&mut pair, "malformed name attribute")?;
            let value = pair.read()?;
            if !is_string_go_reads(value.tag, value.contents) {
                return Err(NOT_A_STRING);
            }
            f(Attribute { rdn, index, oid, tag: value.tag, value: value.contents });
            index += 1;
        }
        rdn += 1;
    }
    Ok(())
}

const NOT_A_STRING: &str = "a name attribute that is not a valid string of a type Go reads";

/// Whether a name attribute's value is one of the string types Go's crypto/x509 reads in
/// names, with valid contents (Go rejects a certificate with any other).
fn is_string_go_reads(tag: u8, v: &[u8]) -> bool {
    match tag {
        // Go also lets '*' and '&' through, for the certificates that misuse them.
        TAG_PRINTABLE_STRING => v.iter().all(|&b| b.is_ascii_alphanumeric() || b" '()+,-./:=?*&".contains(&b)),
        TAG_UTF8_STRING => std::str::from_utf8(v).is_ok(),
        TAG_IA5_STRING => v.is_ascii(),
        TAG_NUMERIC_STRING => v.iter().all(|&b| b.is_ascii_digit() || b == b' '),
        TAG_T61_STRING => true,
        TAG_BMP_STRING => v.len().is_multiple_of(2),
        _ => false,
    }
}

/// Reads a UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or a GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`): RFC 5280 §4.1.2.5's two forms, in UTC, whole seconds.
fn time(reader: &mut Reader<'_>) -> Option<OffsetDateTime> {
    let tlv = reader.read().ok()?;
    let digits = |s: &[u8]| -> Option<u32> {
        s.iter().try_fold(0u32, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0')))
    };
    let (year, rest) = match (tlv.tag, tlv.contents) {
        (TAG_UTC_TIME, c) if c.len() == 13 => {
            let yy = digits(&c[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &c[2..])
        }
        (TAG_GENERALIZED_TIME, c) if c.len() == 15 => (digits(&c[..4])?, &c[4..]),
        _ => return None,
    };
    if rest.len() != 11 || rest[10] != b'Z' {
        return None;
    }
    let field = |i: usize| digits(&rest[i..i + 2]).and_then(|v| u8::try_from(v).ok());
    let month = Month::try_from(field(0)?).ok()?;
    let date = Date::from_calendar_date(i32::try_from(year).ok()?, month, field(2)?).ok()?;
    let time = Time::from_hms(field(4)?, field(6)?, field(8)?).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

fn boolean(contents: &[u8]) -> Result<bool, &'static str> {
    match contents {
        [0x00] => Ok(false),
        [0xff] => Ok(true),
        _ => Err("malformed BOOLEAN"),
    }
}

fn read_extensions<'a>(list: &'a [u8], fields: &mut Fields<'a>) -> Result<(), &'static str> {
    let mut list = Reader::new(list);
    let mut seen: Vec<&[u8]> = Vec::with_capacity(8);
    while !list.is_empty() {
        let mut extension = Reader::new(list.expect(TAG_SEQUENCE).map_err(|_| "malformed extensions")?);
        let oid = oid(&mut extension, "malformed extension")?;
        if let Some(critical) = extension.optional(TAG_BOOLEAN)? {
            boolean(critical)?;
        }
        let value = extension.expect(TAG_OCTET_STRING).map_err(|_| "malformed extension")?;
        if seen.contains(&oid) {
            return Err("an extension appears twice");
        }
        seen.push(oid);
        match oid {
            OID_SUBJECT_ALT_NAME => {
                let names = Reader::new(value).expect(TAG_SEQUENCE).map_err(|_| "malformed subjectAltName")?;
                for name in alt_names(names) {
                    name.map_err(|e| if e == NOT_ASCII { e } else { "malformed subjectAltName" })?;
                }
                fields.alt_names = Some(names);
            }
            OID_SUBJECT_KEY_ID => {
                let key_id = Reader::new(value).expect(TAG_OCTET_STRING);
                fields.subject_key_id = Some(key_id.map_err(|_| "malformed subjectKeyIdentifier")?);
            }
            OID_AUTHORITY_KEY_ID => {
                fields.authority_key_id = authority_key_id(value).map_err(|_| "malformed authorityKeyIdentifier")?;
            }
            OID_BASIC_CONSTRAINTS => {
                fields.is_ca = basic_constraints(value).map_err(|_| "malformed basicConstraints")?;
            }
            OID_EXTENDED_KEY_USAGE => {
                fields.extended_key_usage = Some(extended_key_usage(value).map_err(|_| "malformed extendedKeyUsage")?);
            }
            _ => {}
        }
    }
    Ok(())
}

const NOT_ASCII: &str = "a dNSName not in ASCII";

/// A SubjectAltName entry kubepki reads.
#[derive(Debug, PartialEq)]
pub(crate) enum AltName<'a> {
    Dns(&'a str),
    Ip(IpAddr),
}

/// The dNSName ([2] IA5String) and iPAddress ([7] OCTET STRING) entries of GeneralNames
/// contents, in order (an address of other than 4 or 16 bytes is not one); the other forms
/// are read past.
pub(crate) fn alt_names(names: &[u8]) -> impl Iterator<Item = Result<AltName<'_>, &'static str>> {
    let mut reader = Reader::new(names);
    std::iter::from_fn(move || {
        loop {
            if reader.is_empty() {
                return None;
            }
            let name = match reader.read() {
                Ok(name) => name,
                Err(e) => {
                    reader = Reader::new(&[]);
                    return Some(Err(e));
                }
            };
            match name.tag {
                t if t == tag_implicit(2) => {
                    return Some(
                        std::str::from_utf8(name.contents)
                            .ok()
                            .filter(|s| s.is_ascii())
                            .map(AltName::Dns)
                            .ok_or(NOT_ASCII),
                    );
                }
                t if t == tag_implicit(7) => {
                    if let Some(ip) = ip_from_bytes(name.contents) {
                        return Some(Ok(AltName::Ip(ip)));
                    }
                }
                _ => {}
            }
        }
    })
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

/// AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] OPTIONAL, authorityCertIssuer [1]
/// OPTIONAL, authorityCertSerialNumber [2] OPTIONAL }: the keyIdentifier, the rest not read
/// (as Go reads it).
fn authority_key_id(value: &[u8]) -> Result<Option<&[u8]>, &'static str> {
    Reader::new(Reader::new(value).expect(TAG_SEQUENCE)?).optional(tag_implicit(0))
}

/// BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }:
/// cA (the rest not read, as Go reads it).
fn basic_constraints(value: &[u8]) -> Result<bool, &'static str> {
    let mut bc = Reader::new(Reader::new(value).expect(TAG_SEQUENCE)?);
    Ok(bc.optional(TAG_BOOLEAN)?.map(boolean).transpose()?.unwrap_or(false))
}

/// ExtKeyUsageSyntax ::= SEQUENCE OF KeyPurposeId: (serverAuth, clientAuth).
fn extended_key_usage(value: &[u8]) -> Result<(bool, bool), &'static str> {
    let mut purposes = Reader::new(Reader::new(value).expect(TAG_SEQUENCE)?);
    let (mut server, mut client) = (false, false);
    while !purposes.is_empty() {
        match oid(&mut purposes, "a key purpose that is not an OID")? {
            OID_SERVER_AUTH => server = true,
            OID_CLIENT_AUTH => client = true,
            _ => {}
        }
    }
    Ok((server, client))
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, CustomExtension, KeyPair, PKCS_ECDSA_P256_SHA256};

    use super::*;

    fn der(params: &CertificateParams) -> Vec<u8> {
        params.self_signed(&KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()).unwrap().der().to_vec()
    }

    /// `der` with the first occurrence of `from` replaced by `to` (same length).
    fn patched(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = der.windows(from.len()).position(|w| w == from).expect("the bytes to patch");
        let mut out = der.to_vec();
        out[at..at + to.len()].copy_from_slice(to);
        out
    }

    #[test]
    fn what_go_refuses_is_refused() {
        let mut params = CertificateParams::new(vec!["a.example".into()]).unwrap();
        let good = der(&params);
        let fields = parse(&good).unwrap();
        assert_eq!(fields.alt_names.map(|n| alt_names(n).count()), Some(1));
        // Version 6 (the INTEGER 5).
        assert_eq!(
            parse(&patched(&good, &[0xa0, 0x03, 0x02, 0x01, 0x02], &[0xa0, 0x03, 0x02, 0x01, 0x05])).unwrap_err(),
            "unsupported version (not 1, 2 or 3)"
        );
        // The outer signature algorithm says SHA-384, the signed one SHA-256.
        let ecdsa_sha256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
        let at = good.windows(10).rposition(|w| w == ecdsa_sha256).unwrap();
        let mut outer = good.clone();
        outer[at + 9] = 0x03;
        assert_eq!(parse(&outer).unwrap_err(), "the inner and outer signature algorithms differ");
        // A notBefore without its Z.
        let not_before = &good[good.windows(2).position(|w| w == [TAG_UTC_TIME, 13]).unwrap()..][..15];
        let mut local = not_before.to_vec();
        local[14] = b'0';
        assert_eq!(
            parse(&patched(&good, not_before, &local)).unwrap_err(),
            "notBefore is not a time in RFC 5280's form"
        );
        // The same extension twice.
        let twice = CustomExtension::from_oid_content(&[1, 2, 3, 4], vec![0x05, 0x00]);
        params.custom_extensions = vec![twice.clone(), twice];
        assert_eq!(parse(&der(&params)).unwrap_err(), "an extension appears twice");
        // A PrintableString name with a character outside its set.
        let mut params = CertificateParams::new(vec![]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, rcgen::DnValue::PrintableString("node-1".try_into().unwrap()));
        let printable = der(&params);
        assert!(parse(&printable).is_ok());
        assert_eq!(parse(&patched(&printable, b"node-1", b"node@1")).unwrap_err(), NOT_A_STRING);
        // Trailing data, and a long-form length that could be short (BER).
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(parse(&trailing).unwrap_err(), "trailing data after the certificate");
        assert_eq!(
            Reader::new(&[0x04, 0x81, 0x01, 0xff]).read().unwrap_err(),
            "length not in its shortest form (BER, not DER)"
        );
        assert_eq!(Reader::new(&[0x30, 0x80, 0x00, 0x00]).read().unwrap_err(), "indefinite length (BER, not DER)");
    }

    /// `element` with `extra` appended inside the element at `path` (indices of nested
    /// elements, from `element`'s own children down), every enclosing length re-encoded.
    fn with_inside(element: &[u8], path: &[usize], extra: &[u8]) -> Vec<u8> {
        let tlv = Reader::new(element).read().unwrap();
        let mut children = Reader::new(tlv.contents);
        let mut contents = Vec::new();
        let mut i = 0;
        while !children.is_empty() {
            let child = children.read().unwrap();
            contents.extend(match path.split_first() {
                Some((&at, below)) if at == i => with_inside(child.encoded, below, extra),
                _ => child.encoded.to_vec(),
            });
            i += 1;
        }
        if path.is_empty() {
            contents.extend_from_slice(extra);
        }
        let mut out = Vec::new();
        crate::der::write_tlv(&mut out, tlv.tag, &contents);
        out
    }

    /// Like Go's crypto/x509, the reader does not look at what follows the fields it reads
    /// inside a SEQUENCE, nor at the extensions of a certificate below version 3; what follows
    /// the certificate itself is refused.
    #[test]
    fn what_go_does_not_look_at_is_not_looked_at() {
        let good = der(&CertificateParams::new(vec!["a.example".into()]).unwrap());
        let null = [0x05, 0x00];
        // After the signature, inside the Certificate; after the extensions, inside the TBS.
        for path in [&[][..], &[0]] {
            let more = with_inside(&good, path, &null);
            assert_ne!(more, good);
            let fields = parse(&more).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            assert_eq!(fields.alt_names.map(|n| alt_names(n).count()), Some(1));
        }
        // Version 1 (the explicit INTEGER 0) with extensions: they are not read.
        let v1 = patched(&good, &[0xa0, 0x03, 0x02, 0x01, 0x02], &[0xa0, 0x03, 0x02, 0x01, 0x00]);
        let fields = parse(&v1).unwrap();
        assert!(fields.alt_names.is_none() && fields.extended_key_usage.is_none());
        let mut trailing = good;
        trailing.extend_from_slice(&null);
        assert_eq!(parse(&trailing).unwrap_err(), "trailing data after the certificate");
    }

    #[test]
    fn times_are_read_in_both_forms() {
        let read = |tag: u8, text: &[u8]| {
            let mut tlv = vec![tag, text.len() as u8];
            tlv.extend_from_slice(text);
            time(&mut Reader::new(&tlv))
        };
        let t = |s: &str| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        assert_eq!(read(TAG_UTC_TIME, b"491231235959Z"), Some(t("2049-12-31T23:59:59Z")));
        assert_eq!(read(TAG_UTC_TIME, b"500101000000Z"), Some(t("1950-01-01T00:00:00Z")));
        assert_eq!(read(TAG_GENERALIZED_TIME, b"21260229120000Z"), None, "2126 is not a leap year");
        assert_eq!(read(TAG_GENERALIZED_TIME, b"21240229120000Z"), Some(t("2124-02-29T12:00:00Z")));
        for bad in [&b"4912312359Z"[..], b"491231235959+0100", b"49123123595aZ", b"491331235959Z", b"491231245959Z"] {
            assert_eq!(read(TAG_UTC_TIME, bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(read(TAG_GENERALIZED_TIME, b"20491231235959.5Z"), None, "no fractions (RFC 5280)");
        assert_eq!(read(TAG_OCTET_STRING, b"491231235959Z"), None);
    }
}
