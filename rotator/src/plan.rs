//! The rotation plan: what is renewed, why, and into what — computed without touching disk.

use std::fmt;
use std::net::IpAddr;

use kubepki_pki::issue::CertRequest;
use kubepki_pki::profile::SanRule;
use kubepki_pki::validity::backdate_of;
use kubepki_pki::{AltNames, CaKind, ClusterConfig, KeyAlgorithm, Lifetime, Validity};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::targets::{Cas, Discovery, Location, Skipped, Target};

/// Why a certificate is renewed.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Reason {
    /// The policy says so: its renewal point has passed.
    Due {
        /// The renewal point.
        point: OffsetDateTime,
    },
    /// Named with `--force`, or `--all`.
    Forced,
    /// Its SANs differ from what the cluster configuration asks for.
    SanDrift {
        /// Names the configuration wants that the certificate lacks.
        added: Vec<String>,
        /// Names the certificate has that the configuration no longer wants.
        removed: Vec<String>,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Due { point } => write!(f, "due since {}", point.date()),
            Self::Forced => f.write_str("forced"),
            Self::SanDrift { added, removed } => {
                f.write_str("SAN drift")?;
                for a in added {
                    write!(f, " +{a}")?;
                }
                for r in removed {
                    write!(f, " -{r}")?;
                }
                Ok(())
            }
        }
    }
}

impl Reason {
    /// A short machine-readable kind: `due`, `forced` or `san-drift`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Due { .. } => "due",
            Self::Forced => "forced",
            Self::SanDrift { .. } => "san-drift",
        }
    }
}

/// One certificate to renew.
#[derive(Clone, Debug)]
pub struct Renewal {
    /// Index into the discovery's targets.
    pub target: usize,
    /// Its name.
    pub name: String,
    /// Where it lives.
    pub location: Location,
    /// Its CA.
    pub ca: CaKind,
    /// Why (at least one reason).
    pub reasons: Vec<Reason>,
    /// The serial being replaced.
    pub old_serial: String,
    /// The NotAfter being replaced.
    pub old_not_after: OffsetDateTime,
    /// The new certificate's subject, SANs and usages.
    pub request: CertRequest,
    /// The new validity window.
    pub validity: Validity,
    /// The NotAfter was cut back to the CA's.
    pub clamped: bool,
    /// The existing key is kept.
    pub reuse_key: bool,
    /// The algorithm of the new key (that of the old key unless overridden).
    pub algorithm: KeyAlgorithm,
}

/// A certificate that is not due.
#[derive(Clone, Debug)]
pub struct Kept {
    /// Its name.
    pub name: String,
    /// Where it lives.
    pub location: Location,
    /// Its NotAfter.
    pub not_after: OffsetDateTime,
    /// When it will be due.
    pub renewal_point: OffsetDateTime,
}

/// The whole plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The moment the policy was evaluated at.
    pub at: OffsetDateTime,
    /// What will be renewed, in discovery order.
    pub renewals: Vec<Renewal>,
    /// What is not due.
    pub kept: Vec<Kept>,
    /// What was found and is left alone.
    pub skipped: Vec<Skipped>,
    /// Things to know (a clamped lifetime).
    pub warnings: Vec<String>,
}

impl Plan {
    /// Whether nothing is to be renewed.
    pub fn is_empty(&self) -> bool {
        self.renewals.is_empty()
    }
}

/// What decides the plan.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// When certificates are due.
    pub policy: Policy,
    /// The moment to evaluate the policy at (`--at`; now by default).
    pub at: OffsetDateTime,
    /// The moment new certificates are issued at (now).
    pub now: OffsetDateTime,
    /// Names to renew whatever the policy says.
    pub force: Vec<String>,
    /// Renew everything.
    pub all: bool,
    /// A new lifetime for every renewed certificate (default: the one it had).
    pub validity: Option<Lifetime>,
    /// Keep the existing keys.
    pub reuse_key: bool,
    /// The algorithm of new keys (default: each certificate's current one).
    pub algorithm: Option<KeyAlgorithm>,
    /// The cluster configuration to reconcile SANs with (apiserver, etcd-server, etcd-peer).
    pub desired: Option<ClusterConfig>,
}

impl PlanOptions {
    /// The default policy evaluated at `now`: what is due, nothing forced, each certificate
    /// keeping its lifetime and key algorithm, with a new key.
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            policy: Policy::default(),
            at: now,
            now,
            force: Vec::new(),
            all: false,
            validity: None,
            reuse_key: false,
            algorithm: None,
            desired: None,
        }
    }
}

/// The lifetime a certificate was issued with, to the second: its span, without kubeadm's
/// 5-minute backdate when it has one ([`backdate_of`] reads it from the span), so a 24h
/// certificate is a 24h certificate, not 24h05m. A renewal ([`Validity::renewing`]) keeps the
/// span and so this lifetime.
pub fn original_lifetime(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Option<Lifetime> {
    let span = (not_after - not_before).whole_seconds().max(0) as u64;
    Lifetime::new(std::time::Duration::from_secs(span) - backdate_of(span)).ok()
}

fn san_strings(n: &AltNames) -> Vec<String> {
    n.dns_names()
        .map(|d| format!("DNS:{d}"))
        .chain(n.ip_addresses().iter().map(|ip: &IpAddr| format!("IP:{ip}")))
        .collect()
}

/// Computes the plan. Pure: reads only what it is given.
pub fn plan(discovery: &Discovery, cas: &Cas, options: &PlanOptions) -> Result<Plan> {
    for name in &options.force {
        if !discovery.targets.iter().any(|t| &t.name == name) {
            let known: Vec<&str> = discovery.targets.iter().map(|t| t.name.as_str()).collect();
            return Err(Error::UnknownTarget { name: name.clone(), known: known.join(", ") });
        }
    }
    let mut out = Plan {
        at: options.at,
        renewals: Vec::new(),
        kept: Vec::new(),
        skipped: discovery.skipped.clone(),
        warnings: Vec::new(),
    };
    for (index, target) in discovery.targets.iter().enumerate() {
        let mut reasons = Vec::new();
        let point = options.policy.renewal_point(&target.cert);
        if let Some(before) = options.policy.renew_before {
            let lifetime = target.cert.not_after - target.cert.not_before;
            if options.policy.floor.is_none() && time::Duration::try_from(before).is_ok_and(|b| b >= lifetime) {
                out.warnings.push(format!(
                    "{}: --renew-before is not shorter than its lifetime ({}h): it is due on every run",
                    target.name,
                    lifetime.whole_hours()
                ));
            }
        }
        if options.at >= point {
            reasons.push(Reason::Due { point });
        }
        if options.all || options.force.contains(&target.name) {
            reasons.push(Reason::Forced);
        }
        let mut request = CertRequest {
            subject: target.cert.subject.clone(),
            sans: target.cert.sans.clone(),
            usage: target.cert.usage.unwrap_or(kubepki_pki::Usage::Client),
        };
        if let Some(desired) = desired_sans(target, options.desired.as_ref())? {
            if !desired.same_names(&target.cert.sans) {
                let (add_dns, add_ip) = desired.missing_from(&target.cert.sans);
                let (rm_dns, rm_ip) = target.cert.sans.missing_from(&desired);
                let fmt = |dns: Vec<String>, ips: Vec<IpAddr>| {
                    dns.into_iter()
                        .map(|d| format!("DNS:{d}"))
                        .chain(ips.into_iter().map(|i| format!("IP:{i}")))
                        .collect()
                };
                reasons.push(Reason::SanDrift { added: fmt(add_dns, add_ip), removed: fmt(rm_dns, rm_ip) });
            }
            request.sans = desired;
        }
        if reasons.is_empty() {
            out.kept.push(Kept {
                name: target.name.clone(),
                location: target.location.clone(),
                not_after: target.cert.not_after,
                renewal_point: point,
            });
            continue;
        }
        let Some(ca) = cas.get(target.ca) else { continue };
        if ca.is_external() {
            out.skipped.push(Skipped {
                name: target.name.clone(),
                path: target.location.path().to_owned(),
                reason: format!("{} is externally managed (its key {} is absent)", ca.name, ca.key_path.display()),
            });
            continue;
        }
        if target.cert.usage.is_none() {
            out.skipped.push(Skipped {
                name: target.name.clone(),
                path: target.location.path().to_owned(),
                reason: "it has neither serverAuth nor clientAuth".into(),
            });
            continue;
        }
        // A renewal keeps the certificate's span and backdate, so its lifetime, to the second.
        let mut validity = match options.validity {
            Some(lifetime) => Validity::starting_at(options.now, lifetime),
            None => Validity::renewing(options.now, target.cert.not_before, target.cert.not_after)
                .unwrap_or_else(|| Validity::starting_at(options.now, Lifetime::DEFAULT_CERT)),
        };
        let clamped = validity.not_after > ca.cert.not_after;
        if clamped {
            validity.not_after = ca.cert.not_after;
            out.warnings.push(format!(
                "{}: the new certificate would outlive {} ({}); its NotAfter is cut back to the CA's",
                target.name, ca.name, ca.cert.not_after
            ));
        }
        out.renewals.push(Renewal {
            target: index,
            name: target.name.clone(),
            location: target.location.clone(),
            ca: target.ca,
            reasons,
            old_serial: target.cert.serial.clone(),
            old_not_after: target.cert.not_after,
            request,
            validity,
            clamped,
            reuse_key: options.reuse_key,
            algorithm: options.algorithm.unwrap_or_else(|| target.key.algorithm()),
        });
    }
    Ok(out)
}

/// The SANs the configuration wants for a cert-dir apiserver/etcd certificate.
fn desired_sans(target: &Target, desired: Option<&ClusterConfig>) -> Result<Option<AltNames>> {
    let (Some(cfg), Location::CertDir { base, .. }) = (desired, &target.location) else { return Ok(None) };
    let rule = match base.as_str() {
        "apiserver" => SanRule::ApiServer,
        "etcd/server" => SanRule::EtcdServer,
        "etcd/peer" => SanRule::EtcdPeer,
        _ => return Ok(None),
    };
    Ok(Some(cfg.alt_names(rule)?))
}

/// The SANs of a request as strings (`DNS:x`, `IP:y`), for reports.
pub fn sans_of(request: &CertRequest) -> Vec<String> {
    san_strings(&request.sans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// Renewing a certificate any number of times changes neither its span nor its lifetime,
    /// whatever they are, with kubeadm's backdate or without (openssl, pyca).
    #[test]
    fn renewals_keep_the_span_and_the_lifetime_to_the_second() {
        for lifetime in [90, 90 * 60, 24 * 3600, 8760 * 3600] {
            for backdate in [0, 300] {
                let mut now = datetime!(2026-01-01 10:00:00.25 UTC);
                let (mut nb, mut na) = (
                    datetime!(2026-01-01 10:00 UTC) - time::Duration::seconds(backdate),
                    datetime!(2026-01-01 10:00 UTC) + time::Duration::seconds(lifetime),
                );
                let case = format!("{lifetime} s, backdate {backdate} s");
                let want = original_lifetime(nb, na).unwrap();
                assert_eq!(want.duration().as_secs(), lifetime as u64, "{case}");
                for _ in 0..5 {
                    // Renewed at two thirds of its lifetime, a second and a half late.
                    now += time::Duration::seconds(lifetime * 2 / 3) + time::Duration::milliseconds(1500);
                    let v = Validity::renewing(now, nb, na).unwrap();
                    assert_eq!(v.span(), na - nb, "{case}: the span");
                    assert_eq!(original_lifetime(v.not_before, v.not_after), Some(want), "{case}: the lifetime");
                    assert_eq!(v.not_after - now.replace_nanosecond(0).unwrap(), time::Duration::seconds(lifetime));
                    (nb, na) = (v.not_before, v.not_after);
                }
            }
        }
    }

    #[test]
    fn the_backdate_is_not_counted_as_lifetime() {
        let nb = datetime!(2026-01-01 09:55 UTC);
        assert_eq!(original_lifetime(nb, datetime!(2026-01-02 10:00 UTC)).unwrap().to_string(), "24h0m0s");
        // Without a backdate (another tool), the span is the lifetime.
        assert_eq!(
            original_lifetime(datetime!(2026-01-01 10:00 UTC), datetime!(2026-01-02 10:00 UTC)).unwrap().to_string(),
            "24h0m0s"
        );
        assert_eq!(original_lifetime(nb, nb).map(|l| l.to_string()), None);
    }
}
