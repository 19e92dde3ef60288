//! The renewal policy: when is a certificate due?

use std::time::Duration;

use kubepki_pki::Certificate;
use time::OffsetDateTime;

/// When certificates are renewed.
///
/// A certificate is due at the *earliest* of the configured points: once `renew_at` of its
/// lifetime has passed, or `renew_before` before it expires.
///
/// The default is 2/3 of the lifetime or 30 days before expiry, whichever comes first, but
/// never in the first half of a certificate's life (`floor`): without that floor every
/// certificate shorter than 30 days would be due on every run. So a one-year certificate is
/// renewed after 243 days, a 90-day one after 60, a 60-day one 30 days before expiry, and a
/// 24-hour one after 12 hours. Explicit `--renew-before`/`--renew-at` have no floor: they mean what they say.
///
/// An optional jitter moves the point earlier by a per-certificate amount derived from its
/// serial, so that a fleet on one cron schedule spreads out while each node's decision stays
/// the same from run to run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RenewalPolicy {
    /// Renew this long before NotAfter.
    pub renew_before: Option<Duration>,
    /// Renew once this share of the lifetime (0–1) has passed.
    pub renew_at: Option<f64>,
    /// Move the renewal point earlier by up to this much.
    pub jitter: Option<Duration>,
    /// Never due before this share (0–1) of the lifetime has passed.
    pub floor: Option<f64>,
}

impl Default for RenewalPolicy {
    fn default() -> Self {
        Self {
            renew_before: Some(Duration::from_secs(30 * 86400)),
            renew_at: Some(2.0 / 3.0),
            jitter: None,
            floor: Some(0.5),
        }
    }
}

impl RenewalPolicy {
    /// The moment `cert` becomes due under this policy.
    ///
    /// Shares of the lifetime count from the moment of issue: NotBefore, or five minutes after
    /// it for a certificate kubeadm's way backdated ([`kubepki_pki::backdate_of`]).
    /// Counted from a backdated NotBefore, a 90-second leaf would be past half its lifetime the
    /// moment it is issued, and renewed again at once, for ever.
    pub fn renewal_point(&self, cert: &Certificate) -> OffsetDateTime {
        let span = u64::try_from((cert.not_after - cert.not_before).whole_seconds()).unwrap_or(0);
        let issued = cert.not_before + to_time(kubepki_pki::backdate_of(span));
        let lifetime = cert.not_after - issued;
        let mut points = Vec::with_capacity(2);
        if let Some(before) = self.renew_before {
            points.push(cert.not_after - to_time(before));
        }
        if let Some(share) = self.renew_at {
            points.push(issued + lifetime * share.clamp(0.0, 1.0));
        }
        let mut point = points.into_iter().min().unwrap_or(cert.not_after);
        if let Some(floor) = self.floor {
            point = point.max(issued + lifetime * floor.clamp(0.0, 1.0));
        }
        if let Some(jitter) = self.jitter.filter(|j| !j.is_zero()) {
            let seed = cert
                .serial
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
            let span = jitter.as_secs().max(1);
            point -= time::Duration::seconds((seed % span) as i64);
        }
        point
    }

    /// Whether `cert` is due at `at`.
    pub fn is_due(&self, cert: &Certificate, at: OffsetDateTime) -> bool {
        at >= self.renewal_point(cert)
    }
}

fn to_time(d: Duration) -> time::Duration {
    time::Duration::new(d.as_secs() as i64, d.subsec_nanos() as i32)
}

/// Parses a share of the lifetime: `66%`, `0.66` or `66`. Values outside 0–100 % are refused.
pub fn parse_share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, percent) = match t.strip_suffix('%') {
        Some(n) => (n, true),
        None => (t, false),
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("{s:?} is not a percentage (like 66% or 0.66)"))?;
    let share = if percent || v > 1.0 { v / 100.0 } else { v };
    if !(0.0..=1.0).contains(&share) || !share.is_finite() {
        return Err(format!("{s:?} must be between 0% and 100%"));
    }
    Ok(share)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubepki_pki::CertRequest;
    use kubepki_pki::{AltNames, KeyAlgorithm, Lifetime, Subject, Usage, Validity};
    use time::macros::datetime;

    fn cert_valid(not_before: OffsetDateTime, lifetime: &str) -> Certificate {
        let now = not_before + time::Duration::minutes(5);
        let ca_key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let ca = kubepki_pki::self_signed_ca("ca", &ca_key, Validity::starting_at(now, Lifetime::DEFAULT_CA)).unwrap();
        let signer = kubepki_pki::Signer::new("ca", &ca, &ca_key).unwrap();
        let req = CertRequest {
            subject: Subject::new("x", Vec::<String>::new()),
            sans: AltNames::new(),
            usage: Usage::Client,
        };
        let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let der = signer.sign("x", &req, &key, Validity::starting_at(now, lifetime.parse().unwrap())).unwrap();
        Certificate::from_der(der, "x").unwrap()
    }

    /// When a kubepki leaf (backdated five minutes) was issued, and the lifetime asked for.
    fn issued(c: &Certificate) -> OffsetDateTime {
        c.not_before + time::Duration::minutes(5)
    }

    fn lifetime(c: &Certificate) -> time::Duration {
        c.not_after - issued(c)
    }

    #[test]
    fn default_is_two_thirds_or_thirty_days_whichever_first() {
        let t0 = datetime!(2026-01-01 00:00 UTC);
        let year = cert_valid(t0, "8760h");
        // 2/3 of a year comes before 30 days before expiry.
        assert_eq!(RenewalPolicy::default().renewal_point(&year), issued(&year) + lifetime(&year) * (2.0 / 3.0));
        let sixty = cert_valid(t0, "1440h");
        // For 60 days, 30 days before expiry comes first.
        assert_eq!(RenewalPolicy::default().renewal_point(&sixty), sixty.not_after - time::Duration::days(30));
        let day = cert_valid(t0, "24h");
        // For 24 hours, 30 days before expiry is before it started: the floor, half the
        // lifetime, decides.
        let want = issued(&day) + lifetime(&day) / 2;
        assert_eq!(RenewalPolicy::default().renewal_point(&day), want);
        assert!(!RenewalPolicy::default().is_due(&day, issued(&day) + time::Duration::hours(11)));
        assert!(RenewalPolicy::default().is_due(&day, issued(&day) + time::Duration::hours(13)));
    }

    #[test]
    fn shares_count_from_the_moment_of_issue_not_from_a_backdated_not_before() {
        // A 90-second leaf issued kubeadm's way spans 6m30s: counted from NotBefore, half its
        // span is already behind it when it is issued, and it would be due again at once.
        let short = cert_valid(datetime!(2026-01-01 00:00 UTC), "90s");
        let point = RenewalPolicy::default().renewal_point(&short);
        assert_eq!(point, issued(&short) + time::Duration::seconds(45));
        assert!(!RenewalPolicy::default().is_due(&short, issued(&short) + time::Duration::seconds(1)));
    }

    #[test]
    fn only_the_given_rules_apply() {
        let c = cert_valid(datetime!(2026-01-01 00:00 UTC), "48h");
        let before = RenewalPolicy {
            renew_before: Some(Duration::from_secs(72 * 3600)),
            renew_at: None,
            jitter: None,
            floor: None,
        };
        assert!(before.is_due(&c, c.not_before), "72h before a 48h cert's expiry is before its start");
        let at = RenewalPolicy { renew_before: None, renew_at: Some(0.5), jitter: None, floor: None };
        assert_eq!(at.renewal_point(&c), issued(&c) + lifetime(&c) / 2);
    }

    #[test]
    fn jitter_is_stable_per_certificate_and_bounded() {
        let c = cert_valid(datetime!(2026-01-01 00:00 UTC), "8760h");
        let p = RenewalPolicy { jitter: Some(Duration::from_secs(6 * 3600)), ..RenewalPolicy::default() };
        let point = p.renewal_point(&c);
        assert_eq!(point, p.renewal_point(&c));
        let base = RenewalPolicy::default().renewal_point(&c);
        assert!(point <= base && base - point < time::Duration::hours(6));
    }

    #[test]
    fn shares_parse() {
        assert_eq!(parse_share("80%").unwrap(), 0.8);
        assert_eq!(parse_share("0.5").unwrap(), 0.5);
        assert_eq!(parse_share("66").unwrap(), 0.66);
        assert!(parse_share("120%").is_err());
        assert!(parse_share("x").is_err());
    }
}
