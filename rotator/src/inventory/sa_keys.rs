//! The service-account key pair of a cert dir, as `check`, `tree` and `audit` see it: `sa.key`
//! signs every ServiceAccount token, `sa.pub` holds the public keys tokens are verified against
//! (read as kube-apiserver reads them: [`kubepki_pki::sa`]).
//!
//! A key has no expiry. What can be wrong is that `sa.key` is not among `sa.pub`'s keys (every
//! token it signs fails to verify), that a file cannot be read or is not a key, that the key is
//! weak (RSA below 2048 bits), or that it is older than a policy (`--sa-max-age`). Judging is
//! pure: [`SaKeys::judge`] takes the time and the policy.
//!
//! ```
//! use kubepki_rotator::inventory::SaKeys;
//!
//! let dir = tempfile::tempdir().unwrap();
//! // No sa.key and no sa.pub (a worker node): nothing to report.
//! assert!(SaKeys::read(dir.path()).is_none());
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use kubepki_pki::fsio::{self, MAX_PEM_FILE};
use kubepki_pki::sa::{PublicKey, PublicKeySet};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::inventory::Severity;
use crate::text::error_chain;

/// Where a key's creation time comes from.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum AgeSource {
    /// `kubepki rotate-sa`'s state: when `reissue` made the key `sa.key`.
    RotationState,
    /// The modification time of `sa.key` (no rotation recorded this key).
    FileModified,
}

impl AgeSource {
    /// `rotation-state` or `file-mtime`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RotationState => "rotation-state",
            Self::FileModified => "file-mtime",
        }
    }
}

/// When the signing key of `cert_dir`, whose kid is `kid` when it could be read, was made, and
/// how that is known; `None` if `sa.key` does not exist (or its time cannot be read).
///
/// The one place the age of the service-account key comes from: the time `kubepki rotate-sa
/// reissue` made this key (`kid`) `sa.key`, as its state records it, else the file's
/// modification time. Reads only.
pub(crate) fn sa_key_created_at(cert_dir: &Path, kid: Option<&str>) -> Option<(OffsetDateTime, AgeSource)> {
    let reissued = kid.and_then(|kid| RecordedReissue::read(cert_dir)?.of(kid));
    if let Some(at) = reissued {
        return Some((at, AgeSource::RotationState));
    }
    let modified = std::fs::metadata(cert_dir.join("sa.key")).and_then(|m| m.modified()).ok()?;
    Some((OffsetDateTime::from(modified), AgeSource::FileModified))
}

/// Where `kubepki rotate-sa` keeps its state for `cert_dir` (`<state dir>/sa-rotation`).
pub(crate) fn rotation_state_dir(cert_dir: &Path) -> PathBuf {
    kubepki_pki::lock::state_dir(cert_dir).join("sa-rotation")
}

/// What the key's age needs of `kubepki rotate-sa`'s state (`sa_rotation::State`, whose JSON
/// this reads a part of): the new key's kid and when `reissue` made it `sa.key`. Read here,
/// below the rotation, so that reading a cert dir never depends on the code that rotates it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordedReissue {
    new_key_id: String,
    history: Vec<RecordedPhase>,
}

#[derive(serde::Deserialize)]
struct RecordedPhase {
    phase: String,
    time: String,
}

impl RecordedReissue {
    /// The state in `cert_dir`'s rotation directory; `None` if there is none or it cannot be
    /// read (the file's time is the fall-back, and `rotate-sa` reports a broken state itself).
    fn read(cert_dir: &Path) -> Option<Self> {
        let path = rotation_state_dir(cert_dir).join("state.json");
        let bytes = fsio::read_optional(&path, fsio::MAX_CONFIG_FILE, "service-account key rotation state").ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// When `reissue` made the key `kid` the signing key, if it did.
    fn of(&self, kid: &str) -> Option<OffsetDateTime> {
        let record = self.history.iter().rev().find(|r| r.phase == "reissued").filter(|_| self.new_key_id == kid)?;
        OffsetDateTime::parse(&record.time, &time::format_description::well_known::Rfc3339).ok()
    }
}

/// What was read of one of the two files.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum SaFile<T> {
    /// What it holds.
    Read(T),
    /// This user may not read it (permission denied; kubeadm writes both files 0600): not
    /// checked, like any other key.
    NotReadable,
    /// It does not exist.
    Missing,
    /// It cannot be read, is not PEM, or holds no key kube-apiserver would use: why.
    Invalid(String),
}

/// What was read of `sa.key`: its public half.
pub type SigningKey = SaFile<PublicKey>;

/// What was read of `sa.pub`: its keys.
pub type TrustedKeys = SaFile<PublicKeySet>;

/// The service-account key pair of a cert dir.
#[derive(Clone, Debug)]
pub struct SaKeys {
    /// `<cert dir>/sa.key`.
    pub key_path: PathBuf,
    /// `<cert dir>/sa.pub`.
    pub pub_path: PathBuf,
    /// The signing key.
    pub signing: SigningKey,
    /// The public keys tokens are verified against.
    pub trusted: TrustedKeys,
    /// When the signing key was made (`sa_key_created_at`: the rotate-sa record, else the file time).
    pub created_at: Option<(OffsetDateTime, AgeSource)>,
}

/// Something wrong with the service-account keys.
#[non_exhaustive]
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum SaFinding {
    /// `sa.key`'s public key is not in `sa.pub`: tokens it signs do not verify.
    NotTrusted {
        /// The signing key's kid.
        kid: String,
        /// How many keys `sa.pub` holds.
        trusted: usize,
    },
    /// `sa.pub` cannot be read, is not PEM or holds no usable key.
    PublicKeysInvalid {
        /// Why.
        reason: String,
    },
    /// `sa.pub` does not exist but `sa.key` does.
    PublicKeysMissing,
    /// `sa.key` cannot be read or is not a signing key.
    SigningKeyInvalid {
        /// Why.
        reason: String,
    },
    /// `sa.key` does not exist but `sa.pub` does.
    SigningKeyMissing,
    /// The signing key is RSA below 2048 bits.
    WeakKey {
        /// `RSA-1024`.
        algorithm: String,
    },
    /// The signing key is older than `--sa-max-age`.
    TooOld {
        /// How old.
        age: Duration,
        /// The policy.
        max_age: Duration,
    },
}

impl SaFinding {
    /// A stable identifier: `sa-key-not-trusted`, `sa-pub-invalid`, `sa-pub-missing`,
    /// `sa-key-invalid`, `sa-key-missing`, `weak-key`, `sa-key-too-old`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotTrusted { .. } => "sa-key-not-trusted",
            Self::PublicKeysInvalid { .. } => "sa-pub-invalid",
            Self::PublicKeysMissing => "sa-pub-missing",
            Self::SigningKeyInvalid { .. } => "sa-key-invalid",
            Self::SigningKeyMissing => "sa-key-missing",
            Self::WeakKey { .. } => "weak-key",
            Self::TooOld { .. } => "sa-key-too-old",
        }
    }

    /// Critical when tokens stop verifying or kube-apiserver cannot start; a weak or old key
    /// is a warning.
    pub fn severity(&self) -> Severity {
        match self {
            Self::WeakKey { .. } | Self::TooOld { .. } => Severity::Warning,
            _ => Severity::Critical,
        }
    }
}

impl fmt::Display for SaFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotTrusted { kid, trusted } => write!(
                f,
                "sa.key (kid {kid}) is not one of the {trusted} public keys of sa.pub: every token it signs fails \
                 to verify; put its public key in sa.pub (`kubepki rotate-sa`) or restore the sa.key that matches"
            ),
            Self::PublicKeysInvalid { reason } => {
                write!(f, "sa.pub: {reason}; kube-apiserver cannot start with it (restore it from a backup)")
            }
            Self::PublicKeysMissing => {
                write!(f, "sa.pub does not exist but sa.key does: kube-apiserver cannot verify any token")
            }
            Self::SigningKeyInvalid { reason } => {
                write!(f, "sa.key: {reason}; kube-apiserver cannot sign tokens with it (restore it from a backup)")
            }
            Self::SigningKeyMissing => {
                write!(f, "sa.key does not exist but sa.pub does: kube-apiserver cannot sign tokens")
            }
            Self::WeakKey { algorithm } => {
                write!(
                    f,
                    "weak {algorithm} signing key (RSA keys need at least 2048 bits); rotate it (`kubepki rotate-sa`)"
                )
            }
            Self::TooOld { age, max_age } => write!(
                f,
                "sa.key is {} days old, more than --sa-max-age {} days; rotate it (`kubepki rotate-sa`)",
                age.whole_days(),
                max_age.whole_days()
            ),
        }
    }
}

impl SaKeys {
    /// Reads `sa.key` and `sa.pub` of `cert_dir`; `None` if neither exists (a worker node).
    pub fn read(cert_dir: &Path) -> Option<Self> {
        let (key_path, pub_path) = (cert_dir.join("sa.key"), cert_dir.join("sa.pub"));
        let signing = read(&key_path, "private key", |pem| PublicKey::of_private_pem(pem, "sa.key"));
        let trusted = read(&pub_path, "public key file", |pem| PublicKeySet::parse(pem, "sa.pub"));
        if signing == SigningKey::Missing && trusted == TrustedKeys::Missing {
            return None;
        }
        let kid = match &signing {
            SaFile::Read(key) => Some(key.key_id()),
            _ => None,
        };
        let created_at = sa_key_created_at(cert_dir, kid.as_deref());
        Some(Self { key_path, pub_path, signing, trusted, created_at })
    }

    /// The signing key's public half, if it was read.
    pub fn signing_key(&self) -> Option<&PublicKey> {
        match &self.signing {
            SigningKey::Read(key) => Some(key),
            _ => None,
        }
    }

    /// `sa.pub`'s keys, if they were read.
    pub fn trusted_keys(&self) -> Option<&PublicKeySet> {
        match &self.trusted {
            TrustedKeys::Read(set) => Some(set),
            _ => None,
        }
    }

    /// Whether `sa.pub` holds `sa.key`'s public key; `None` if either could not be read.
    pub fn signing_key_trusted(&self) -> Option<bool> {
        Some(self.trusted_keys()?.contains(self.signing_key()?))
    }

    /// The files this user may not read (`sa.key`, `sa.pub`): their pairing was not checked.
    pub fn not_readable(&self) -> Vec<PathBuf> {
        let key = (self.signing == SigningKey::NotReadable).then(|| self.key_path.clone());
        let public = (self.trusted == TrustedKeys::NotReadable).then(|| self.pub_path.clone());
        key.into_iter().chain(public).collect()
    }
}

/// Reads a file and parses what it holds.
fn read<T>(path: &Path, what: &'static str, parse: impl FnOnce(&[u8]) -> kubepki_pki::Result<T>) -> SaFile<T> {
    match fsio::read_optional(path, MAX_PEM_FILE, what) {
        Ok(Some(bytes)) => match parse(&Zeroizing::new(bytes)) {
            Ok(value) => SaFile::Read(value),
            Err(e) => SaFile::Invalid(strip_source(&e.to_string())),
        },
        Ok(None) => SaFile::Missing,
        Err(kubepki_pki::Error::Read { source, .. }) if source.kind() == io::ErrorKind::PermissionDenied => {
            SaFile::NotReadable
        }
        Err(e) => SaFile::Invalid(error_chain(&e)),
    }
}

/// `invalid key in sa.pub: why` without the file's name (the finding names it).
fn strip_source(message: &str) -> String {
    message.split_once(": ").map_or(message, |(_, rest)| rest).to_owned()
}
