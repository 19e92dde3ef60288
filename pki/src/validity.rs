//! Lifetimes and validity windows, with kubeadm's constants.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use time::OffsetDateTime;

use crate::error::{Error, Result};

/// How far NotBefore is set before the moment of issue (kubeadm's `CertificateBackdate`), so
/// that a node whose clock is a little behind still accepts a fresh certificate.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// A positive length of time, written as a Go duration (`8760h`, `87600h0m0s`, `1h30m`) or with
/// the day and week units operators use (`30d`, `2w`).
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct Lifetime(Duration);

impl Lifetime {
    /// kubeadm's leaf validity, `CertificateValidityPeriod`: 365 × 24h.
    pub const DEFAULT_CERT: Self = Self(Duration::from_secs(365 * 24 * 3600));
    /// kubeadm's CA validity, `CACertificateValidityPeriod`: 10 × 365 × 24h.
    pub const DEFAULT_CA: Self = Self(Duration::from_secs(10 * 365 * 24 * 3600));

    /// A lifetime of `duration`; zero is refused.
    pub fn new(duration: Duration) -> Result<Self> {
        if duration.is_zero() {
            return Err(Error::InvalidValue {
                field: "duration",
                value: "0s".into(),
                reason: "must be greater than zero".into(),
            });
        }
        Ok(Self(duration))
    }

    /// The length as a std duration.
    pub fn duration(self) -> Duration {
        self.0
    }

    /// The length as a `time` duration.
    pub fn as_time(self) -> time::Duration {
        time::Duration::new(self.0.as_secs() as i64, self.0.subsec_nanos() as i32)
    }
}

impl fmt::Display for Lifetime {
    /// Go's `time.Duration` format for whole seconds: `8760h0m0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        write!(f, "{}h{}m{}s", s / 3600, s / 60 % 60, s % 60)
    }
}

impl FromStr for Lifetime {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::new(parse_duration(s)?)
    }
}

/// Parses a Go duration (`8760h0m0s`, `1.5h`, `90s`, `300ms`) extended with `d` (24h) and `w`
/// (7d). Negative durations are refused.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let invalid =
        |reason: &str| Error::InvalidValue { field: "duration", value: s.to_owned(), reason: reason.to_owned() };
    let t = s.trim();
    if t.is_empty() {
        return Err(invalid("empty"));
    }
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.starts_with('-') {
        return Err(invalid("must not be negative"));
    }
    let mut rest = t.strip_prefix('+').unwrap_or(t);
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err(invalid("expected a number, like 8760h, 30d or 1h30m"));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| invalid("malformed number"))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "w" => 7.0 * 86400.0,
            "" => return Err(invalid("missing unit (use ns, us, ms, s, m, h, d or w)")),
            _ => return Err(invalid("unknown unit (use ns, us, ms, s, m, h, d or w)")),
        };
        rest = &rest[unit_len..];
        total += value * seconds;
    }
    // 10,000 years is far beyond any X.509 validity and keeps the arithmetic exact enough.
    if !total.is_finite() || total > 10_000.0 * 365.25 * 86400.0 {
        return Err(invalid("too large"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// A certificate's validity window.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Validity {
    /// The first moment the certificate is valid.
    pub not_before: OffsetDateTime,
    /// The last moment the certificate is valid.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// kubeadm's window for a certificate issued at `now`: NotBefore = now − 5 min,
    /// NotAfter = now + `lifetime`. Sub-second parts are dropped, as X.509 times have none.
    pub fn starting_at(now: OffsetDateTime, lifetime: Lifetime) -> Self {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        Self {
            not_before: now - time::Duration::seconds(BACKDATE.as_secs() as i64),
            not_after: now + lifetime.as_time(),
        }
    }

    /// A window for a certificate issued at `now` with NotBefore `backdate` earlier (recover's
    /// `--backdate`, for nodes whose clocks lag) and NotAfter = now + `lifetime`.
    pub fn backdated(now: OffsetDateTime, lifetime: Lifetime, backdate: Duration) -> Self {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let backdate = time::Duration::try_from(backdate).unwrap_or(time::Duration::ZERO);
        Self { not_before: now - backdate, not_after: now + lifetime.as_time() }
    }

    /// The window of a renewal issued at `now` of a certificate valid from `not_before` to
    /// `not_after`: the same span to the second, with the same backdate — kubeadm's five
    /// minutes when the certificate has it ([`backdate_of`]), none when it has not — so NotAfter
    /// is `now` plus the certificate's lifetime either way. The choice depends only on the span,
    /// which the renewal keeps: a certificate renewed any number of times keeps its span, its
    /// backdate and its lifetime. `None` if the span is not positive.
    pub fn renewing(now: OffsetDateTime, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Option<Self> {
        let span = u64::try_from((not_after - not_before).whole_seconds()).ok().filter(|&s| s > 0)?;
        let backdate = backdate_of(span).as_secs();
        let not_before = now.replace_nanosecond(0).unwrap_or(now) - time::Duration::seconds(backdate as i64);
        Some(Self { not_before, not_after: not_before + time::Duration::seconds(span as i64) })
    }

    /// The span from NotBefore to NotAfter.
    pub fn span(&self) -> time::Duration {
        self.not_after - self.not_before
    }
}

/// The backdate a certificate spanning `span` seconds was issued with, as far as its window
/// tells: [`BACKDATE`] or zero.
///
/// kubeadm and kubepki set NotBefore five minutes before the moment of issue and NotAfter at
/// that moment plus the lifetime they were asked for, so their certificates span the lifetime
/// plus five minutes; openssl, pyca/cryptography, cfssl and most scripts span the lifetime
/// itself. A window alone cannot say which made it — a 5-minute kubeadm leaf and a 10-minute
/// openssl one both span 10 minutes — so the lifetime is read as the one a person would have
/// asked for: the span minus five minutes when that is at least as round a duration as the
/// span (roundness being the coarsest of 1 h, 30, 15, 10, 5 and 1 min and 1 s that divides it),
/// the span itself otherwise, and always when the span is five minutes or less. So 24h05m is a
/// backdated 24h (kubeadm's), 24h an un-backdated 24h (openssl's), 1h35m a backdated 1h30m,
/// 1h30m an un-backdated 1h30m, 6m30s a backdated 90 s, 90 s an un-backdated 90 s. Whichever
/// reading is taken, a renewal by [`Validity::renewing`] keeps the span to the second, so the
/// reading never changes and nothing drifts: it only decides whether the renewed certificate is
/// valid from five minutes before its issue or from its issue.
pub fn backdate_of(span: u64) -> Duration {
    fn roundness(secs: u64) -> u64 {
        [3600, 1800, 900, 600, 300, 60].into_iter().find(|unit| secs.is_multiple_of(*unit)).unwrap_or(1)
    }
    let backdate = BACKDATE.as_secs();
    if span > backdate && roundness(span - backdate) >= roundness(span) { BACKDATE } else { Duration::ZERO }
}

/// The lifetime a certificate was issued with, to the second: its span, without kubeadm's
/// 5-minute backdate when it has one ([`backdate_of`] reads it from the span), so a 24h
/// certificate is a 24h certificate, not 24h05m. A renewal ([`Validity::renewing`]) keeps the
/// span and so this lifetime.
pub fn original_lifetime(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Option<Lifetime> {
    let span = (not_after - not_before).whole_seconds().max(0) as u64;
    Lifetime::new(Duration::from_secs(span) - backdate_of(span)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_and_days_parse() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(parse_duration("8760h").unwrap(), h(8760));
        assert_eq!(parse_duration("87600h0m0s").unwrap(), h(87600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("30d").unwrap(), h(720));
        assert_eq!(parse_duration("2w").unwrap(), h(336));
        assert_eq!(parse_duration("+90d").unwrap(), h(2160));
        assert_eq!(parse_duration("300ms").unwrap(), Duration::from_millis(300));
    }

    #[test]
    fn bad_durations_are_refused() {
        for bad in ["", "h", "10", "10x", "-1h", "1e400h", "1..5h", "99999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!("0s".parse::<Lifetime>().is_err());
    }

    #[test]
    fn kubeadm_defaults_print_like_go() {
        assert_eq!(Lifetime::DEFAULT_CERT.to_string(), "8760h0m0s");
        assert_eq!(Lifetime::DEFAULT_CA.to_string(), "87600h0m0s");
    }

    #[test]
    fn the_backdate_is_read_from_the_span() {
        let backdated = |span: u64| backdate_of(span) == BACKDATE;
        // kubeadm's and kubepki's: the lifetime plus five minutes.
        for lifetime in [90, 5400, 3600, 86_400, 8760 * 3600, 87_600 * 3600, 30 * 60, 45 * 60] {
            assert!(backdated(lifetime + 300), "{lifetime} s + backdate");
        }
        // openssl's and pyca's: the lifetime alone.
        for lifetime in [90, 300, 5400, 3600, 86_400, 365 * 86_400, 600, 900, 10 * 3600] {
            assert!(!backdated(lifetime), "{lifetime} s");
        }
    }

    #[test]
    fn a_renewal_keeps_the_span_and_the_backdate() {
        let now = time::macros::datetime!(2027-03-01 12:00:00.7 UTC);
        let nb = time::macros::datetime!(2026-01-01 09:55 UTC);
        let v = Validity::renewing(now, nb, nb + time::Duration::minutes(95)).unwrap();
        assert_eq!(v.not_before, time::macros::datetime!(2027-03-01 11:55 UTC));
        assert_eq!(v.not_after, time::macros::datetime!(2027-03-01 13:30 UTC));
        let v = Validity::renewing(now, nb, nb + time::Duration::seconds(90)).unwrap();
        assert_eq!(v.not_before, time::macros::datetime!(2027-03-01 12:00 UTC));
        assert_eq!(v.span(), time::Duration::seconds(90));
        assert_eq!(Validity::renewing(now, nb, nb), None);
    }

    #[test]
    fn validity_is_backdated_five_minutes() {
        let now = time::macros::datetime!(2026-11-27 10:00:00.5 UTC);
        let v = Validity::starting_at(now, "24h".parse().unwrap());
        assert_eq!(v.not_before, time::macros::datetime!(2026-11-27 09:55:00 UTC));
        assert_eq!(v.not_after, time::macros::datetime!(2026-11-28 10:00:00 UTC));
    }
}
