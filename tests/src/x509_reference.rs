//! x509-parser as the reference for kubepki's own certificate reader (`pki/src/x509.rs`):
//! whatever both accept must read the same, and where only one accepts, the difference must
//! be one of the documented ones.

use std::net::IpAddr;

use kubepki_pki::Certificate;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

/// How kubepki and the reference judged one DER certificate.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Both read it, to the same values.
    Both,
    /// Neither reads it.
    Neither,
    /// kubepki reads it; the reference rejects a part kubepki does not read (an extension
    /// other than the five it uses, or a SubjectAltName entry other than a DNS name or IP).
    OnlyKubepki,
    /// The reference reads it, kubepki rejects it, for this reason (where Go's crypto/x509
    /// does too, `tests/tests/x509_reader.rs` checks).
    OnlyReference(String),
}

/// The certificates of a file as the `pem_certificates` fuzz target takes it: the DER of every
/// CERTIFICATE block of a PEM file, or the whole file as one DER certificate.
pub fn certificates_in(data: &[u8]) -> Vec<Vec<u8>> {
    match kubepki_pki::pem::parse(data) {
        Ok(blocks) => blocks.iter().filter(|b| b.label == "CERTIFICATE").map(|b| b.der.clone()).collect(),
        Err(_) => vec![data.to_vec()],
    }
}

/// Compares kubepki's reading of `der` with x509-parser's; panics on any difference in the
/// values both read.
pub fn compare(der: &[u8]) -> Verdict {
    let ours = Certificate::from_der(der.to_vec(), "reference");
    let theirs = reference(der);
    match (ours, theirs) {
        (Ok(ours), Ok(x)) => {
            same_values(&ours, &x, der);
            Verdict::Both
        }
        (Err(_), Err(_)) => Verdict::Neither,
        (Ok(_), Err(_)) => Verdict::OnlyKubepki,
        (Err(e), Ok(_)) => Verdict::OnlyReference(e.to_string()),
    }
}

/// x509-parser's reading, with every extension deep-parsed: what kubepki's reader replaced.
fn reference(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    let (rest, x) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err("trailing data".into());
    }
    if go_reads_extensions(der, &x) {
        for ext in x.extensions() {
            if let ParsedExtension::ParseError { error } = ext.parsed_extension() {
                return Err(error.to_string());
            }
        }
        x.extended_key_usage().map_err(|e| e.to_string())?;
    }
    Ok(x)
}

/// Whether Go (and kubepki) read the extensions x509-parser found: only those of a version 3
/// certificate, under the tag [3] constructed (0xa3); x509-parser takes tag number 3 whatever
/// its class and form.
fn go_reads_extensions(der: &[u8], x: &X509Certificate<'_>) -> bool {
    if x.version() != x509_parser::x509::X509Version::V3 {
        return false;
    }
    // After the SubjectPublicKeyInfo's declared end (x509-parser's raw may stop short of it)
    // and the unique identifiers.
    let spki = x.public_key().raw;
    let Some((h, len)) = tlv_header(spki) else { return false };
    let mut at = spki.as_ptr() as usize - der.as_ptr() as usize + h + len;
    while let Some(0x81 | 0x82) = der.get(at) {
        let Some((h, len)) = tlv_header(&der[at..]) else { return false };
        at += h + len;
    }
    der.get(at) == Some(&0xa3)
}

fn same_values(ours: &Certificate, x: &X509Certificate<'_>, der: &[u8]) {
    let ctx = format!("{der:02x?}");
    assert_eq!(ours.subject_string, x.subject().to_string(), "{ctx}");
    assert_eq!(ours.issuer_string, x.issuer().to_string(), "{ctx}");
    assert_eq!(ours.raw_subject, x.subject().as_raw(), "{ctx}");
    assert_eq!(ours.raw_issuer, x.issuer().as_raw(), "{ctx}");
    let cn = x.subject().iter_common_name().next().and_then(|a| a.as_str().ok()).unwrap_or("");
    assert_eq!(ours.subject.common_name, cn, "{ctx}");
    let orgs: Vec<&str> = x.subject().iter_organization().filter_map(|a| a.as_str().ok()).collect();
    assert_eq!(ours.subject.organizations, orgs, "{ctx}");
    assert_eq!(ours.serial, hex(x.raw_serial()), "{ctx}");
    assert_eq!(ours.not_before, x.validity().not_before.to_datetime(), "{ctx}");
    assert_eq!(ours.not_after, x.validity().not_after.to_datetime(), "{ctx}");
    // cA only under the BOOLEAN tag (x509-parser takes tag number 1 in any class).
    let ca_boolean = x.extensions().iter().any(|e| {
        e.oid == x509_parser::oid_registry::OID_X509_EXT_BASIC_CONSTRAINTS && first_inner_tag(e.value) == Some(0x01)
    });
    assert_eq!(ours.is_ca, x.is_ca() && ca_boolean && go_reads_extensions(der, x), "{ctx}");
    // x509-parser's raw SubjectPublicKeyInfo stops at the last field it reads; kubepki's is the
    // whole element, as Go's RawSubjectPublicKeyInfo.
    assert!(ours.spki.starts_with(x.public_key().raw), "{ctx}");
    let extensions = go_reads_extensions(der, x);
    let eku = x.extended_key_usage().ok().flatten().map(|e| (e.value.server_auth, e.value.client_auth));
    let eku = eku.filter(|_| extensions);
    assert_eq!(ours.usage, eku.and_then(|(s, c)| kubepki_pki::Usage::from_flags(s, c)), "{ctx}");
    let (mut dns, mut ips) = (Vec::new(), Vec::<IpAddr>::new());
    let mut ski = None;
    let mut aki = None;
    for ext in x.extensions().iter().filter(|_| extensions) {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                let mut tags = element_tags(ext.value).into_iter();
                for name in &san.general_names {
                    // x509-parser takes a name by its tag number whatever its class and form;
                    // Go and kubepki read a dNSName only under 0x82, an iPAddress under 0x87.
                    match (name, tags.next()) {
                        (GeneralName::DNSName(d), Some(0x82)) => dns.push(d.to_string()),
                        (GeneralName::IPAddress(b), Some(0x87)) => {
                            let ip = match b.len() {
                                4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()),
                                16 => IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()),
                                _ => continue,
                            };
                            if !ips.contains(&ip) {
                                ips.push(ip);
                            }
                        }
                        _ => {}
                    }
                }
            }
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
            // x509-parser takes a universal tag 0 where [0] (0x80) belongs; Go and kubepki
            // look for 0x80 only.
            ParsedExtension::AuthorityKeyIdentifier(a) if first_inner_tag(ext.value) == Some(0x80) => {
                aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            _ => {}
        }
    }
    dns.sort();
    dns.dedup();
    assert_eq!(ours.sans.dns_names().collect::<Vec<_>>(), dns, "{ctx}");
    assert_eq!(ours.sans.ip_addresses(), ips, "{ctx}");
    assert_eq!(ours.subject_key_id, ski, "{ctx}");
    assert_eq!(ours.authority_key_id, aki, "{ctx}");
    // The key: the curve by name, RSA by its modulus's exact size (x509-parser rounds to bytes).
    let kind = match x.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let m = &rsa.modulus[rsa.modulus.iter().position(|&b| b != 0).unwrap_or(rsa.modulus.len())..];
            Some(format!("RSA-{}", m.first().map_or(0, |b| m.len() * 8 - b.leading_zeros() as usize)))
        }
        _ => None,
    };
    if let Some(kind) = kind {
        assert_eq!(ours.public_key.to_string(), kind, "{ctx}");
    }
}

/// A TLV's header: (header length, contents length), low tag numbers only.
fn tlv_header(b: &[u8]) -> Option<(usize, usize)> {
    let first = *b.get(1)?;
    if first < 0x80 {
        return Some((2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    let len = b.get(2..2 + n)?.iter().fold(0usize, |acc, &d| (acc << 8) | usize::from(d));
    Some((2 + n, len))
}

/// The tags of the elements inside the SEQUENCE `value` begins with, in order.
fn element_tags(value: &[u8]) -> Vec<u8> {
    let mut tags = Vec::new();
    let Some((h, len)) = tlv_header(value) else { return tags };
    let mut rest = value.get(h..h + len).unwrap_or_default();
    while let Some((eh, elen)) = tlv_header(rest) {
        tags.push(rest[0]);
        rest = rest.get(eh + elen..).unwrap_or_default();
    }
    tags
}

/// The tag of the first element inside the SEQUENCE `value` begins with.
fn first_inner_tag(value: &[u8]) -> Option<u8> {
    value.get(tlv_header(value)?.0).copied()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
