//! The audit log: one JSON line per action, appended; never key material.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A certificate's identity in the log.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertRef {
    /// Serial, lowercase hex.
    pub serial: String,
    /// SHA-256 fingerprint of the DER, lowercase hex.
    pub fingerprint: String,
    /// NotAfter, RFC 3339.
    pub not_after: String,
}

impl CertRef {
    /// The identity of `cert`.
    pub fn of(cert: &kubepki_pki::Certificate) -> Self {
        Self {
            serial: cert.serial.clone(),
            fingerprint: cert.fingerprint_sha256(),
            not_after: cert.not_after.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        }
    }
}

/// One action.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// When, RFC 3339.
    pub time: String,
    /// This host's name.
    pub host: String,
    /// Who ran kubepki (`$SUDO_USER`, `$USER`, or `uid:<n>`).
    pub user: String,
    /// `renew` or `restore`.
    pub action: String,
    /// The certificate's name.
    pub name: String,
    /// The file (or Secret) it lives in.
    pub path: String,
    /// What was there before.
    pub old: Option<CertRef>,
    /// What is there now.
    pub new: Option<CertRef>,
    /// Whether the key was kept.
    pub key_reused: bool,
    /// Why.
    pub reason: String,
}

/// The host name.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_default()
}

/// Who runs this process.
pub fn user() -> String {
    for var in ["SUDO_USER", "USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var)
            && !u.is_empty()
        {
            return u;
        }
    }
    std::fs::metadata("/proc/self").map(|m| format!("uid:{}", m.uid())).unwrap_or_default()
}

/// Appends records to the log (created 0600), one JSON object per line, and syncs it.
pub fn append(path: &Path, records: &[Record]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let write_err = |source| kubepki_pki::Error::Write { path: path.to_owned(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        kubepki_pki::fsio::create_dir_all(parent, 0o755)?;
    }
    let mut f = OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(write_err)?;
    let mut buf = Vec::new();
    for r in records {
        serde_json::to_writer(&mut buf, r).expect("invariant: plain strings and bools always serialize");
        buf.push(b'\n');
    }
    f.write_all(&buf).map_err(write_err)?;
    f.sync_all().map_err(write_err)?;
    Ok(())
}
