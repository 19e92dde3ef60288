//! A strict DER reader and writer, for the few structures kubepki takes apart or puts
//! together by hand, where the X.509 libraries would change bytes kubepki must keep: a
//! certificate's subject or validity replaced with everything else kept byte for byte (then
//! signed again), a Name in the SET OF order Go sorts it in, a Time as RFC 5280 wants it, and
//! the key encodings of [`crate::pkcs8`]. The reader accepts DER only (definite lengths in
//! their shortest form) and returns errors, never panics, on any input.

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
pub(crate) fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), &'static str> {
    let mut reader = Reader::new(input);
    let tlv = reader.read()?;
    Ok((tlv.tag, tlv.contents, reader.rest()))
}

/// Splits off the front of `input` an element that must have tag `want`: `(contents, rest)`.
pub(crate) fn expect(input: &[u8], want: u8) -> Result<(&[u8], &[u8]), &'static str> {
    let mut reader = Reader::new(input);
    let contents = reader.expect(want)?;
    Ok((contents, reader.rest()))
}

/// Appends an element of tag `tag` and `contents` to `out`, its length in the shortest form.
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
    }
}
