//! The service-account keys judged: the findings of [`SaKeys`] and the key's age against
//! `--sa-max-age`, at a point in time, and their JSON view. Reading them is the inventory's
//! ([`crate::inventory::sa_keys`]).

use std::path::Path;

use kubepki_pki::sa::{PublicKey, SaKeyAlgorithm};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::check::{ExpiryStatus, FindingView};
use crate::inventory::Severity;
use crate::inventory::sa_keys::{SaFinding, SaKeys, SigningKey, TrustedKeys};
use crate::text::rfc3339;

/// The service-account keys judged at a point in time.
#[derive(Clone, Debug)]
pub struct SaJudgement<'a> {
    /// What was judged.
    pub keys: &'a SaKeys,
    /// `ok`, `warning` or `critical`.
    pub status: ExpiryStatus,
    /// What is wrong.
    pub findings: Vec<SaFinding>,
    /// Seconds from the key's creation to the evaluation time.
    pub age_seconds: Option<i64>,
}

impl SaKeys {
    /// Judges the keys at `at`, against `max_age` when given.
    pub fn judge(&self, max_age: Option<Duration>, at: OffsetDateTime) -> SaJudgement<'_> {
        let mut findings = Vec::new();
        match &self.trusted {
            TrustedKeys::Invalid(reason) => findings.push(SaFinding::PublicKeysInvalid { reason: reason.clone() }),
            TrustedKeys::Missing => findings.push(SaFinding::PublicKeysMissing),
            TrustedKeys::Read(_) | TrustedKeys::NotReadable => {}
        }
        match &self.signing {
            SigningKey::Invalid(reason) => findings.push(SaFinding::SigningKeyInvalid { reason: reason.clone() }),
            SigningKey::Missing => findings.push(SaFinding::SigningKeyMissing),
            SigningKey::Read(key) => {
                if let (Some(set), Some(false)) = (self.trusted_keys(), self.signing_key_trusted()) {
                    findings.push(SaFinding::NotTrusted { kid: key.key_id(), trusted: set.keys.len() });
                }
                if let SaKeyAlgorithm::Rsa { bits } = key.algorithm()
                    && bits < 2048
                {
                    findings.push(SaFinding::WeakKey { algorithm: key.algorithm().to_string() });
                }
            }
            SigningKey::NotReadable => {}
        }
        let age = self.created_at.filter(|_| self.signing != SigningKey::Missing).map(|(made, _)| at - made);
        if let (Some(age), Some(max_age)) = (age, max_age)
            && age > max_age
        {
            findings.push(SaFinding::TooOld { age, max_age });
        }
        let status = match findings.iter().map(SaFinding::severity).max() {
            Some(Severity::Critical) => ExpiryStatus::Critical,
            Some(Severity::Warning) => ExpiryStatus::Warning,
            None => ExpiryStatus::Ok,
        };
        SaJudgement { keys: self, status, findings, age_seconds: age.map(|a| a.whole_seconds()) }
    }
}

impl<'a> SaJudgement<'a> {
    /// The JSON view (`serviceAccountKeys` of `check -o json`; schema in `docs/check.md`).
    pub fn view(&self) -> SaView<'a> {
        let keys: &'a SaKeys = self.keys;
        let signing = keys.signing_key();
        let error = match (&keys.signing, &keys.trusted) {
            (SigningKey::Invalid(why), _) | (_, TrustedKeys::Invalid(why)) => Some(why.as_str()),
            _ => None,
        };
        SaView {
            key_path: &keys.key_path,
            public_key_path: &keys.pub_path,
            status: self.status.as_str(),
            key_id: signing.map(PublicKey::key_id),
            algorithm: signing.map(|k| k.algorithm().to_string()),
            bits: signing.map(|k| k.algorithm().bits()),
            jws_algorithm: signing.map(|k| k.algorithm().jws_algorithm()),
            public_keys: keys.trusted_keys().map(|set| {
                set.keys
                    .iter()
                    .map(|k| PublicKeyView { key_id: k.key_id(), algorithm: k.algorithm().to_string() })
                    .collect()
            }),
            signing_key_trusted: keys.signing_key_trusted(),
            created_at: keys.created_at.map(|(t, _)| rfc3339(t)),
            created_at_source: keys.created_at.map(|(_, s)| s.as_str()),
            age_seconds: self.age_seconds,
            findings: self.findings.iter().map(finding_view).collect(),
            error,
        }
    }
}

/// The service-account keys in `check -o json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaView<'a> {
    /// `sa.key`.
    pub key_path: &'a Path,
    /// `sa.pub`.
    pub public_key_path: &'a Path,
    /// `ok`, `warning` or `critical`.
    pub status: &'static str,
    /// The signing key's kid (null if `sa.key` was not read).
    pub key_id: Option<String>,
    /// `RSA-2048`, `ECDSA-P256`, ...
    pub algorithm: Option<String>,
    /// The key size in bits.
    pub bits: Option<usize>,
    /// `RS256`, `ES256`, ...
    pub jws_algorithm: Option<&'static str>,
    /// `sa.pub`'s keys, in file order (null if it was not read).
    pub public_keys: Option<Vec<PublicKeyView>>,
    /// Whether `sa.pub` holds `sa.key`'s public key (null if either was not read).
    pub signing_key_trusted: Option<bool>,
    /// When `sa.key` was made, RFC 3339.
    pub created_at: Option<String>,
    /// Where that time comes from (`file-mtime`).
    pub created_at_source: Option<&'static str>,
    /// Seconds from `createdAt` to the evaluation time.
    pub age_seconds: Option<i64>,
    /// What is wrong.
    pub findings: Vec<FindingView>,
    /// Why a file could not be read.
    pub error: Option<&'a str>,
}

/// One key of `sa.pub`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyView {
    /// Its kid.
    pub key_id: String,
    /// `RSA-2048`, `ECDSA-P256`, ...
    pub algorithm: String,
}

fn finding_view(finding: &SaFinding) -> FindingView {
    FindingView { code: finding.code(), severity: finding.severity().as_str(), message: finding.to_string() }
}
