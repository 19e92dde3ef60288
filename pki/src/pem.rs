//! PEM reading and writing, as Go's `encoding/pem` does it: text around blocks is ignored,
//! blocks are 64-column base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// One PEM block.
#[derive(Clone, Eq, PartialEq)]
pub struct Block {
    /// The label, e.g. `CERTIFICATE` or `EC PRIVATE KEY`.
    pub label: String,
    /// The decoded contents.
    pub der: Vec<u8>,
}

impl std::fmt::Debug for Block {
    // Never print contents: a block may be a private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Block({}, {} bytes)", self.label, self.der.len())
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if self.label.contains("PRIVATE KEY") {
            zeroize::Zeroize::zeroize(&mut self.der);
        }
    }
}

/// Parses every PEM block in `data`, ignoring text outside blocks.
///
/// A block that is malformed (bad base64, headers, a BEGIN without its END) is an error: a
/// half-readable file is reported, not silently skipped.
pub fn parse(data: &[u8]) -> Result<Vec<Block>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "not PEM: the file is not text".to_owned())?;
    let mut blocks = Vec::new();
    // One buffer for every block's base64, wiped when done: it may have held a private key.
    // A certificate's base64 is ~1.3 KiB; a larger block grows it.
    let mut b64 = zeroize::Zeroizing::new(Vec::with_capacity(2048));
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let line = line.trim_ascii_end();
        let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----")) else {
            continue;
        };
        let is_end = |line: &str| line.strip_prefix("-----END ").and_then(|l| l.strip_suffix("-----")) == Some(label);
        b64.clear();
        let mut closed = false;
        for (m, body) in lines.by_ref() {
            let body = body.trim_ascii();
            if is_end(body) {
                closed = true;
                break;
            }
            if body.as_bytes().contains(&b':') {
                return Err(format!("line {}: PEM headers (encrypted or legacy PEM) are not supported", m + 1));
            }
            b64.extend_from_slice(body.as_bytes());
        }
        if !closed {
            // Name the block, never quote file contents: it may be a key.
            return Err(format!("line {}: the {label} block has no END line (truncated?)", n + 1));
        }
        let der = STANDARD
            .decode(b64.as_slice())
            .map_err(|e| format!("line {}: {label} block is not valid base64: {e}", n + 1))?;
        if der.is_empty() {
            return Err(format!("line {}: {label} block is empty", n + 1));
        }
        blocks.push(Block { label: label.to_owned(), der });
    }
    Ok(blocks)
}

/// Whether `data` looks like PEM at all (has a BEGIN line).
pub fn looks_like_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Encodes one block with 64-column lines and a trailing newline.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + label.len() * 2 + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("invariant: base64 output is ASCII, so every chunk is UTF-8"));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_text_around_blocks() {
        let a = encode("CERTIFICATE", &[1, 2, 3]);
        let b = encode("EC PRIVATE KEY", &[9; 100]);
        let text = format!("subject=foo\n{a}garbage between\n{b}");
        let blocks = parse(text.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].label.as_str(), blocks[0].der.as_slice()), ("CERTIFICATE", &[1u8, 2, 3][..]));
        assert_eq!(blocks[1].der, vec![9; 100]);
        assert!(b.lines().all(|l| l.len() <= 64));
    }

    #[test]
    fn malformed_blocks_are_errors() {
        assert!(
            parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap_err().contains("CERTIFICATE block has no END line")
        );
        assert!(
            parse(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").unwrap_err().contains("base64")
        );
        assert!(
            parse(b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----\n")
                .unwrap_err()
                .contains("headers")
        );
        assert!(parse(&[0xff, 0xfe, 0x00]).unwrap_err().contains("not text"));
        assert_eq!(parse(b"no pem here").unwrap(), vec![]);
    }

    #[test]
    fn debug_does_not_print_contents() {
        let b = &parse(encode("EC PRIVATE KEY", &[0xab; 8]).as_bytes()).unwrap()[0];
        assert_eq!(format!("{b:?}"), "Block(EC PRIVATE KEY, 8 bytes)");
    }
}
