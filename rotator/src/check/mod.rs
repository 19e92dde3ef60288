//! Judging an inventory: a status per certificate from thresholds at a point in time, and one
//! verdict with the monitoring convention's exit code. Pure: no I/O, the time is an argument.
//!
//! The outputs are beside it: the JSON document written as it is made (`json`: `Document`,
//! which reads and judges a directory of files a chunk at a time), kubeadm's
//! `check-expiration` text ([`kubeadm`]), Prometheus ([`prometheus`]), and the SA keys'
//! judgement (`SaJudgement`).
//!
//! ```
//! use kubepki_rotator::check::{ExpiryPolicy, Threshold, Verdict, evaluate};
//! use kubepki_rotator::inventory::Inventory;
//!
//! let policy = ExpiryPolicy { warn: "30d".parse().unwrap(), crit: "80%".parse().unwrap(), sa_max_age: None };
//! assert_eq!(policy.crit, Threshold::LifetimeUsed(80.0));
//! let inventory = Inventory::default();
//! let report = evaluate(&inventory, &policy, time::OffsetDateTime::now_utc());
//! // Nothing found at all is an input error: there was nothing to judge.
//! assert_eq!(report.verdict(), Verdict::Unknown);
//! assert!(report.errors()[0].message.starts_with("no certificates found in"));
//! ```

pub mod kubeadm;
pub mod prometheus;
pub(crate) mod sa_keys;

mod json;

pub use json::{CHUNK, Document, ErrorView, FindingView, ItemView, LocationView, Names, Shown, Tally, Thresholds};
pub use sa_keys::{PublicKeyView, SaJudgement, SaView};

use std::fmt;
use std::str::FromStr;

use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result};
use crate::inventory::{InputError, Inventory, Item, ItemState, Severity};

/// When a certificate is due: a time before NotAfter, or a share of its lifetime used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    /// Due when at most this much validity remains (`30d`, `36h`).
    Remaining(Duration),
    /// Due when at least this percentage of NotBefore..NotAfter has passed (`80%`).
    LifetimeUsed(f64),
}

impl Threshold {
    /// Whether a certificate with `remaining` validity left and `used_percent` of its lifetime
    /// used has reached the threshold.
    pub fn reached(&self, remaining: Duration, used_percent: f64) -> bool {
        match *self {
            Self::Remaining(d) => remaining <= d,
            Self::LifetimeUsed(p) => used_percent >= p,
        }
    }
}

impl FromStr for Threshold {
    type Err = Error;

    /// `80%` (a percentage of the lifetime, 0 to 100) or a duration (`30d`, `12h`, `1w`).
    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidValue { field: "threshold", value: s.to_owned(), reason };
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| invalid("expected a percentage like 80%".into()))?;
            if !(0.0..=100.0).contains(&p) {
                return Err(invalid("a percentage of the lifetime must be between 0% and 100%".into()));
            }
            return Ok(Self::LifetimeUsed(p));
        }
        let d = kubepki_pki::parse_duration(t).map_err(|e| match e {
            kubepki_pki::Error::InvalidValue { reason, .. } => {
                invalid(format!("{reason}; expected a duration like 30d or a percentage like 80%"))
            }
            other => invalid(other.to_string()),
        })?;
        let d = Duration::try_from(d).map_err(|_| invalid("too large".into()))?;
        Ok(Self::Remaining(d))
    }
}

impl fmt::Display for Threshold {
    /// `80%`, or the duration in its largest whole unit (`30d`, `36h`, `90m`, `45s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::LifetimeUsed(p) => write!(f, "{p}%"),
            Self::Remaining(d) => {
                let s = d.whole_seconds();
                match s {
                    _ if s != 0 && s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
                    _ if s != 0 && s % 3600 == 0 => write!(f, "{}h", s / 3600),
                    _ if s != 0 && s % 60 == 0 => write!(f, "{}m", s / 60),
                    _ => write!(f, "{s}s"),
                }
            }
        }
    }
}

/// The two thresholds, and the age limit of the service-account signing key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExpiryPolicy {
    /// Warning from here (`--warn`, default 30 days).
    pub warn: Threshold,
    /// Critical from here (`--crit`, default 7 days).
    pub crit: Threshold,
    /// A service-account signing key older than this is a warning (`--sa-max-age`, default
    /// none: a key has no expiry).
    pub sa_max_age: Option<Duration>,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self {
            warn: Threshold::Remaining(Duration::days(30)),
            crit: Threshold::Remaining(Duration::days(7)),
            sa_max_age: None,
        }
    }
}

/// A certificate's status.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum ExpiryStatus {
    /// Valid, not within `--warn`, no finding.
    Ok,
    /// Within `--warn`, or a warning finding.
    Warning,
    /// Within `--crit`, or a critical finding.
    Critical,
    /// Past NotAfter.
    Expired,
    /// Before NotBefore.
    NotYetValid,
    /// Could not be read or parsed.
    Invalid,
    /// Absent where kubeadm expects it ([`ItemState::Missing`]).
    Missing,
}

impl ExpiryStatus {
    /// Every status, in the order reports count them.
    pub const ALL: [Self; 7] =
        [Self::Ok, Self::Warning, Self::Critical, Self::Expired, Self::NotYetValid, Self::Invalid, Self::Missing];

    /// `ok`, `warning`, `critical`, `expired`, `not-yet-valid`, `invalid`, `missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Critical => "critical",
            Self::Expired => "expired",
            Self::NotYetValid => "not-yet-valid",
            Self::Invalid => "invalid",
            Self::Missing => "missing",
        }
    }

    /// The verdict this status contributes.
    pub fn verdict(self) -> Verdict {
        match self {
            Self::Ok => Verdict::Ok,
            Self::Warning => Verdict::Warning,
            Self::Critical | Self::Expired | Self::NotYetValid | Self::Missing => Verdict::Critical,
            Self::Invalid => Verdict::Unknown,
        }
    }
}

impl fmt::Display for ExpiryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The overall result, in the Nagios plugin convention.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum Verdict {
    /// Everything is fine (exit 0).
    Ok,
    /// Something is within `--warn`, or has a warning finding (exit 1).
    Warning,
    /// Something is expired, within `--crit`, not yet valid, missing, or has a broken chain or
    /// key (exit 2).
    Critical,
    /// An input could not be read or parsed (exit 3).
    Unknown,
}

impl Verdict {
    /// 0, 1, 2 or 3.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warning => 1,
            Self::Critical => 2,
            Self::Unknown => 3,
        }
    }

    /// `ok`, `warning`, `critical`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Critical => "critical",
            Self::Unknown => "unknown",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warning => 1,
            Self::Unknown => 2,
            Self::Critical => 3,
        }
    }

    /// The worse of two verdicts: critical, then unknown (something may be worse than a
    /// warning and could not be seen), then warning, then ok.
    pub fn worst(self, other: Self) -> Self {
        if other.rank() > self.rank() { other } else { self }
    }

    /// The overall verdict from the certificates' (`self`): an input that could not be read
    /// makes it at least unknown, a general warning at least a warning.
    pub fn with_inputs(self, input_errors: bool, warnings: bool) -> Self {
        let mut v = self;
        if input_errors {
            v = v.worst(Self::Unknown);
        }
        if warnings {
            v = v.worst(Self::Warning);
        }
        v
    }
}

/// One reported certificate, judged.
#[derive(Clone, Copy, Debug)]
pub struct Judged<'a> {
    /// The inventory item.
    pub item: &'a Item,
    /// Its status.
    pub status: ExpiryStatus,
    /// Seconds from the evaluation time to NotAfter (negative once expired), truncated toward
    /// zero; `None` if there is no certificate (invalid, missing, key only).
    pub residual_seconds: Option<i64>,
    /// How much of NotBefore..NotAfter has passed at the evaluation time, in percent; `None`
    /// if invalid.
    pub lifetime_used_percent: Option<f64>,
}

/// An inventory judged at a point in time.
#[derive(Debug)]
pub struct Evaluation<'a> {
    /// What was judged.
    pub inventory: &'a Inventory,
    /// The evaluation time.
    pub at: OffsetDateTime,
    /// The thresholds.
    pub policy: ExpiryPolicy,
    /// Every reported certificate, in inventory order.
    pub entries: Vec<Judged<'a>>,
}

/// The status of one certificate at `at` (ignoring findings).
pub fn date_status(
    cert: &kubepki_pki::Certificate,
    policy: &ExpiryPolicy,
    at: OffsetDateTime,
) -> (ExpiryStatus, i64, f64) {
    let remaining = cert.not_after - at;
    let lifetime = (cert.not_after - cert.not_before).as_seconds_f64();
    let used = if lifetime > 0.0 { (at - cert.not_before).as_seconds_f64() / lifetime * 100.0 } else { 100.0 };
    let status = if at < cert.not_before {
        ExpiryStatus::NotYetValid
    } else if at > cert.not_after {
        ExpiryStatus::Expired
    } else if policy.crit.reached(remaining, used) {
        ExpiryStatus::Critical
    } else if policy.warn.reached(remaining, used) {
        ExpiryStatus::Warning
    } else {
        ExpiryStatus::Ok
    };
    (status, remaining.whole_seconds(), used)
}

/// Judges one item at `at`. A finding raises an `ok` or `warning` status to its own severity.
/// Without a certificate: `missing` if it is expected and absent, `critical` if only its key
/// is there (a broken pair), `invalid` if it could not be read or parsed.
pub fn judge<'a>(item: &'a Item, policy: &ExpiryPolicy, at: OffsetDateTime) -> Judged<'a> {
    let Some(cert) = item.cert() else {
        let status = match item.state {
            ItemState::Missing => ExpiryStatus::Missing,
            ItemState::KeyOnly => ExpiryStatus::Critical,
            ItemState::Present => ExpiryStatus::Invalid,
        };
        return Judged { item, status, residual_seconds: None, lifetime_used_percent: None };
    };
    let (mut status, residual, used) = date_status(cert, policy, at);
    match item.findings.iter().map(|f| f.severity()).max() {
        Some(Severity::Critical) if matches!(status, ExpiryStatus::Ok | ExpiryStatus::Warning) => {
            status = ExpiryStatus::Critical
        }
        Some(Severity::Warning) if status == ExpiryStatus::Ok => status = ExpiryStatus::Warning,
        _ => {}
    }
    Judged { item, status, residual_seconds: Some(residual), lifetime_used_percent: Some(used) }
}

/// Judges every reported item of `inventory` at `at`.
pub fn evaluate<'a>(inventory: &'a Inventory, policy: &ExpiryPolicy, at: OffsetDateTime) -> Evaluation<'a> {
    let entries = inventory.reported().map(|item| judge(item, policy, at)).collect();
    Evaluation { inventory, at, policy: *policy, entries }
}

impl Evaluation<'_> {
    /// The overall verdict: the worst status (the service-account keys' too), an input error
    /// (unknown), a general warning.
    pub fn verdict(&self) -> Verdict {
        let sa = self.service_account().map_or(Verdict::Ok, |j| j.status.verdict());
        let items = self.entries.iter().fold(sa, |v, e| v.worst(e.status.verdict()));
        items.with_inputs(!self.errors().is_empty(), !self.inventory.warnings.is_empty())
    }

    /// The inputs that could not be read or parsed as a whole; when nothing at all was found
    /// and nothing failed, that ([`Inventory::nothing_found`]): there was nothing to judge.
    pub fn errors(&self) -> Vec<InputError> {
        if self.entries.is_empty() && self.inventory.errors.is_empty() {
            return vec![self.inventory.nothing_found()];
        }
        self.inventory.errors.clone()
    }

    /// The cert dir's service-account keys judged at the evaluation time, if it has any.
    pub fn service_account(&self) -> Option<SaJudgement<'_>> {
        Some(self.inventory.service_account.as_ref()?.judge(self.policy.sa_max_age, self.at))
    }

    /// How many entries have each status, in the order of [`ExpiryStatus::ALL`].
    pub fn counts(&self) -> [(ExpiryStatus, usize); 7] {
        ExpiryStatus::ALL.map(|s| (s, self.entries.iter().filter(|e| e.status == s).count()))
    }

    /// Inputs that could not be read: input errors and invalid items.
    pub fn unreadable(&self) -> usize {
        self.errors().len() + self.entries.iter().filter(|e| e.status == ExpiryStatus::Invalid).count()
    }

    /// kubepki's own document (`-o json`, `-o yaml`); the schema is in `docs/check.md`.
    pub fn document(&self) -> Document<'_> {
        Document::new(self.inventory, None, &self.policy, self.at)
    }

    /// What the report says, in the terms of a written [`Document`]'s [`Tally`].
    pub fn tally(&self) -> Tally {
        Tally {
            items: self.entries.len(),
            verdict: self.verdict(),
            errors: self.errors(),
            invalid: self.entries.iter().filter_map(invalid).collect(),
            missing: self.entries.iter().filter_map(missing).collect(),
        }
    }

    /// [`document`](Self::document) as YAML.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(&self.document()).expect("invariant: as for JSON, the views always serialize")
    }
}

/// An invalid item's name and why.
fn invalid(entry: &Judged<'_>) -> Option<(String, String)> {
    let item = entry.item;
    item.is_invalid().then(|| (item.name.clone(), item.certificate.as_ref().err().cloned().unwrap_or_default()))
}

/// A missing item's name and which file is absent.
fn missing(entry: &Judged<'_>) -> Option<(String, String)> {
    let item = entry.item;
    item.is_missing().then(|| (item.name.clone(), item.certificate.as_ref().err().cloned().unwrap_or_default()))
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn thresholds_parse_durations_and_percentages() {
        assert_eq!("30d".parse::<Threshold>().unwrap(), Threshold::Remaining(Duration::days(30)));
        assert_eq!("1w".parse::<Threshold>().unwrap(), Threshold::Remaining(Duration::days(7)));
        assert_eq!("36h".parse::<Threshold>().unwrap(), Threshold::Remaining(Duration::hours(36)));
        assert_eq!(" 80% ".parse::<Threshold>().unwrap(), Threshold::LifetimeUsed(80.0));
        assert_eq!("66.6%".parse::<Threshold>().unwrap(), Threshold::LifetimeUsed(66.6));
        for bad in ["", "30", "abc", "120%", "-5%", "x%", "-3d"] {
            let err = bad.parse::<Threshold>().unwrap_err().to_string();
            assert!(err.starts_with(&format!("invalid threshold {bad:?}")), "{bad}: {err}");
        }
    }

    #[test]
    fn thresholds_display_in_their_largest_unit() {
        for s in ["30d", "36h", "90m", "45s", "80%", "0s"] {
            assert_eq!(s.parse::<Threshold>().unwrap().to_string(), s);
        }
        assert_eq!("1w".parse::<Threshold>().unwrap().to_string(), "7d");
    }

    #[test]
    fn thresholds_are_reached_at_their_bound() {
        let t = Threshold::Remaining(Duration::days(7));
        assert!(t.reached(Duration::days(7), 0.0));
        assert!(!t.reached(Duration::days(7) + Duration::SECOND, 0.0));
        let p = Threshold::LifetimeUsed(80.0);
        assert!(p.reached(Duration::days(999), 80.0));
        assert!(!p.reached(Duration::ZERO, 79.99));
    }

    #[test]
    fn critical_beats_unknown_beats_warning() {
        use Verdict::*;
        assert_eq!(Ok.worst(Warning), Warning);
        assert_eq!(Warning.worst(Unknown), Unknown);
        assert_eq!(Unknown.worst(Critical), Critical);
        assert_eq!(Critical.worst(Unknown), Critical);
        assert_eq!(Unknown.worst(Warning), Unknown);
        assert_eq!([Ok, Warning, Critical, Unknown].map(Verdict::exit_code), [0, 1, 2, 3]);
    }
}
