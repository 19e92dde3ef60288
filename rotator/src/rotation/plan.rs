//! The rotation plan: what is renewed, why, and into what — computed without touching disk.
//!
//! A renewed leaf keeps the identity of the certificate it replaces — subject, SANs, usages,
//! key algorithm — plus exactly what the command line or a `--config` file states
//! ([`Desired`]). Nothing about the host kubepki runs on enters a plan.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use kubepki_pki::{
    AltNames, CaKind, CertRequest, Certificate, ClusterConfig, KeyAlgorithm, Lifetime, SanRule, Validity,
    original_lifetime,
};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::rotation::policy::RenewalPolicy;
use crate::rotation::targets::{Cas, Discovery, External, Location, Problem, Skipped, Unusable};

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
    /// Its SANs differ from what the command line or the configuration asks for.
    SanDrift {
        /// Names asked for that the certificate lacks.
        added: Vec<String>,
        /// Names the certificate has that are to go.
        removed: Vec<String>,
    },
    /// Its files are broken (named with `--force`): it is reissued.
    Broken {
        /// What is wrong.
        reason: String,
    },
    /// It is missing (named with `--force`): it is issued anew.
    Missing,
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
            Self::Broken { reason } => write!(f, "broken ({reason})"),
            Self::Missing => f.write_str("missing"),
        }
    }
}

impl Reason {
    /// A short machine-readable kind: `due`, `forced`, `san-drift`, `broken` or `missing`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Due { .. } => "due",
            Self::Forced => "forced",
            Self::SanDrift { .. } => "san-drift",
            Self::Broken { .. } => "broken",
            Self::Missing => "missing",
        }
    }
}

/// One certificate to renew.
#[derive(Clone, Debug)]
pub struct Renewal {
    /// Index into the discovery's targets; `None` for a broken or missing leaf reissued from
    /// the discovery's `unusable`.
    pub target: Option<usize>,
    /// Its name.
    pub name: String,
    /// Where it lives.
    pub location: Location,
    /// Its CA.
    pub ca: CaKind,
    /// Why (at least one reason).
    pub reasons: Vec<Reason>,
    /// The certificate being replaced, when there is one that can be read.
    pub old: Option<Certificate>,
    /// The new certificate's subject, SANs and usages.
    pub request: CertRequest,
    /// The new validity window.
    pub validity: Validity,
    /// The NotAfter was cut back to the CA's.
    pub clamped: bool,
    /// The existing key is kept.
    pub reuse_key: bool,
    /// The algorithm of the key being replaced, when known.
    pub old_algorithm: Option<KeyAlgorithm>,
    /// The algorithm of the new key (that of the old key unless `--encryption-algorithm`).
    pub algorithm: KeyAlgorithm,
}

impl Renewal {
    /// The serial being replaced, if any.
    pub fn old_serial(&self) -> Option<&str> {
        self.old.as_ref().map(|c| c.serial.as_str())
    }

    /// The NotAfter being replaced, if any.
    pub fn old_not_after(&self) -> Option<OffsetDateTime> {
        self.old.as_ref().map(|c| c.not_after)
    }

    /// SANs added and removed relative to the certificate replaced (`DNS:x`, `IP:y`).
    pub fn san_changes(&self) -> (Vec<String>, Vec<String>) {
        let Some(old) = &self.old else { return (sans_of(&self.request), Vec::new()) };
        (diff(&self.request.sans, &old.sans), diff(&old.sans, &self.request.sans))
    }

    /// Whether the key algorithm changes.
    pub fn changes_algorithm(&self) -> bool {
        self.old_algorithm.is_some_and(|a| a != self.algorithm)
    }
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

/// A broken or missing leaf left as it is: it needs to be named with `--force`.
#[derive(Clone, Debug)]
pub struct Unrenewable {
    /// Its name.
    pub name: String,
    /// Its certificate file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: Problem,
    /// The command that fixes it.
    pub fix: String,
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
    /// Leaves of an externally managed CA: kubepki cannot sign them (see `kubepki csr`).
    pub external: Vec<External>,
    /// Broken or missing leaves not named with `--force`: the run reports them and fails.
    pub unrenewable: Vec<Unrenewable>,
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

/// What the command line or a configuration file says a renewed leaf must carry, beyond the
/// identity of the certificate it replaces.
#[derive(Clone, Debug, Default)]
pub struct Desired {
    /// A kubeadm configuration (`--config`): the whole desired SANs of `apiserver`,
    /// `etcd/server` and `etcd/peer` (a SAN it does not give is removed).
    pub config: Option<ClusterConfig>,
    /// SANs to add (flags), by the kubeadm SAN rule of the leaves they go to.
    pub add: Vec<(SanRule, AltNames)>,
    /// SANs to remove from every renewed leaf that has them.
    pub remove: AltNames,
    /// What kubeadm's profile of a leaf whose certificate cannot be read (broken or missing)
    /// is filled from: the configuration, or the flags. `None`: neither says enough, and such
    /// a leaf can only be reissued when its profile needs nothing of the node.
    pub profile: Option<ClusterConfig>,
}

impl Desired {
    /// Whether anything is asked for beyond keeping identities.
    pub fn is_empty(&self) -> bool {
        self.config.is_none() && self.add.iter().all(|(_, n)| n.is_empty()) && self.remove.is_empty()
    }
}

/// What decides the plan.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// When certificates are due.
    pub policy: RenewalPolicy,
    /// The moment to evaluate the policy at (`--at`; now by default).
    pub at: OffsetDateTime,
    /// The moment new certificates are issued at (now).
    pub now: OffsetDateTime,
    /// Names to renew whatever the policy says (also broken and missing leaves).
    pub force: Vec<String>,
    /// Renew every certificate that can be renewed (not broken or missing ones: name those).
    pub all: bool,
    /// A new lifetime for every renewed certificate (default: the one it had).
    pub validity: Option<Lifetime>,
    /// Keep the existing keys.
    pub reuse_key: bool,
    /// The algorithm of new keys (default: each certificate's current one).
    pub algorithm: Option<KeyAlgorithm>,
    /// What the command line or configuration asks for.
    pub desired: Desired,
    /// NotBefore this long before the moment of issue for every renewal (`recover
    /// --backdate`), instead of the backdate each certificate had.
    pub backdate: Option<std::time::Duration>,
}

impl PlanOptions {
    /// The default policy evaluated at `now`: what is due, nothing forced, each certificate
    /// keeping its lifetime and key algorithm, with a new key.
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            policy: RenewalPolicy::default(),
            at: now,
            now,
            force: Vec::new(),
            all: false,
            validity: None,
            reuse_key: false,
            algorithm: None,
            desired: Desired::default(),
            backdate: None,
        }
    }
}

fn san_strings(n: &AltNames) -> Vec<String> {
    n.dns_names()
        .map(|d| format!("DNS:{d}"))
        .chain(n.ip_addresses().iter().map(|ip: &IpAddr| format!("IP:{ip}")))
        .collect()
}

/// The names of `a` that `b` lacks, as `DNS:x`/`IP:y`.
fn diff(a: &AltNames, b: &AltNames) -> Vec<String> {
    let (dns, ips) = a.missing_from(b);
    dns.into_iter().map(|d| format!("DNS:{d}")).chain(ips.into_iter().map(|i| format!("IP:{i}"))).collect()
}

/// kubeadm's SAN rule of a cert dir leaf, by its file stem.
fn san_rule(location: &Location) -> SanRule {
    match location {
        Location::CertDir { base, .. } => match base.as_str() {
            "apiserver" => SanRule::ApiServer,
            "etcd/server" => SanRule::EtcdServer,
            "etcd/peer" => SanRule::EtcdPeer,
            _ => SanRule::None,
        },
        Location::Kubeconfig { .. } => SanRule::None,
    }
}

/// The SANs a renewed leaf carries: those of the certificate it replaces (or, with
/// `--config`, the configuration's for kubeadm's apiserver and etcd leaves), plus what the
/// flags add, less what they remove.
fn desired_sans(current: &AltNames, rule: SanRule, desired: &Desired) -> Result<AltNames> {
    let mut sans = match (&desired.config, rule) {
        (Some(cfg), SanRule::ApiServer | SanRule::EtcdServer | SanRule::EtcdPeer) => cfg.alt_names(rule)?,
        _ => current.clone(),
    };
    for (_, names) in desired.add.iter().filter(|(r, _)| *r == rule && rule != SanRule::None) {
        sans.extend(names);
    }
    sans.remove(&desired.remove);
    Ok(sans)
}

/// The validity of a renewal: `--validity`, else the span of the certificate replaced (its
/// lifetime to the second, backdate kept), else kubeadm's one year.
fn renewal_validity(options: &PlanOptions, old: Option<&Certificate>) -> Validity {
    let (now, validity) = (options.now, options.validity);
    if let Some(backdate) = options.backdate {
        let lifetime = validity
            .or_else(|| old.and_then(|o| original_lifetime(o.not_before, o.not_after)))
            .unwrap_or(Lifetime::DEFAULT_CERT);
        return Validity::backdated(now, lifetime, backdate);
    }
    match (validity, old) {
        (Some(lifetime), _) => Validity::starting_at(now, lifetime),
        (None, Some(old)) => Validity::renewing(now, old.not_before, old.not_after)
            .unwrap_or_else(|| Validity::starting_at(now, Lifetime::DEFAULT_CERT)),
        (None, None) => Validity::starting_at(now, Lifetime::DEFAULT_CERT),
    }
}

/// Computes the plan. Pure: reads only what it is given.
pub fn plan(discovery: &Discovery, cas: &Cas, options: &PlanOptions) -> Result<Plan> {
    for name in &options.force {
        if let Some(e) = discovery.external.iter().find(|e| &e.name == name) {
            return Err(Error::ExternalCa { name: name.clone(), ca: e.ca.name().into(), key: e.ca_key.clone() });
        }
        if let Some(u) = discovery.unusable.iter().find(|u| &u.name == name)
            && let Some(ca) = cas.get(u.ca).filter(|ca| ca.is_external())
        {
            return Err(Error::ExternalCa { name: name.clone(), ca: ca.name.clone(), key: ca.key_path.clone() });
        }
        if !discovery.names().any(|n| n == name) {
            let known: Vec<&str> = discovery.names().collect();
            return Err(Error::UnknownTarget { name: name.clone(), known: known.join(", ") });
        }
    }
    let mut out = Plan {
        at: options.at,
        renewals: Vec::new(),
        kept: Vec::new(),
        external: discovery.external.clone(),
        unrenewable: Vec::new(),
        skipped: discovery.skipped.clone(),
        warnings: Vec::new(),
    };
    for u in &discovery.unreadable {
        out.unrenewable.push(Unrenewable {
            name: u.name.clone(),
            path: u.path.clone(),
            problem: Problem::Broken { reason: u.reason.clone() },
            fix: format!("repair or remove {}", u.path.display()),
        });
    }
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
        let sans = desired_sans(&target.cert.sans, san_rule(&target.location), &options.desired)?;
        if !sans.same_names(&target.cert.sans) {
            reasons.push(Reason::SanDrift {
                added: diff(&sans, &target.cert.sans),
                removed: diff(&target.cert.sans, &sans),
            });
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
        let Some(usage) = target.cert.usage else {
            out.skipped.push(Skipped {
                name: target.name.clone(),
                path: target.location.path().to_owned(),
                reason: "it has neither serverAuth nor clientAuth".into(),
            });
            continue;
        };
        let request = CertRequest { subject: target.cert.subject.clone(), sans, usage };
        let old_algorithm = target.key.algorithm();
        let renewal = Renewal {
            target: Some(index),
            name: target.name.clone(),
            location: target.location.clone(),
            ca: target.ca,
            reasons,
            old: Some(target.cert.clone()),
            request,
            validity: renewal_validity(options, Some(&target.cert)),
            clamped: false,
            reuse_key: options.reuse_key,
            old_algorithm: Some(old_algorithm),
            algorithm: options.algorithm.unwrap_or(old_algorithm),
        };
        push_renewal(&mut out, cas, renewal);
    }
    for u in &discovery.unusable {
        if !options.force.contains(&u.name) {
            let external = cas.get(u.ca).is_some_and(|ca| ca.is_external());
            out.unrenewable.push(Unrenewable {
                name: u.name.clone(),
                path: u.location.path().to_owned(),
                problem: u.problem.clone(),
                fix: if external {
                    format!("renew it with the external {} (kubepki csr generate {})", u.ca.name(), u.name)
                } else {
                    format!("kubepki rotate --force {}", u.name)
                },
            });
            continue;
        }
        let renewal = reissue(u, cas, options)?;
        if options.reuse_key {
            out.warnings.push(format!("{}: reissued with a new key (its key cannot be reused: {})", u.name, u.problem));
        }
        push_renewal(&mut out, cas, renewal);
    }
    Ok(out)
}

/// Adds a renewal, its NotAfter cut back to its CA's if it would outlive it.
fn push_renewal(out: &mut Plan, cas: &Cas, mut renewal: Renewal) {
    let Some(ca) = cas.get(renewal.ca) else {
        out.skipped.push(Skipped {
            name: renewal.name.clone(),
            path: renewal.location.path().to_owned(),
            reason: format!("{} is not in the cert dir", renewal.ca.name()),
        });
        return;
    };
    if renewal.validity.not_after > ca.cert.not_after {
        renewal.validity.not_after = ca.cert.not_after;
        renewal.clamped = true;
        out.warnings.push(format!(
            "{}: the new certificate would outlive {} ({}); its NotAfter is cut back to the CA's",
            renewal.name, ca.name, ca.cert.not_after
        ));
    }
    out.renewals.push(renewal);
}

/// The request of a leaf reissued from what is known of it: the identity of its `old`
/// certificate when that can still be read (its SANs as `desired` changes them), else
/// kubeadm's `profile` filled from the flags or `--config` (never from the host). `rule` is the
/// leaf's kubeadm SAN rule. [`Error::NeedsIdentity`] (naming `name` and its `problem`) when
/// neither says enough.
pub fn reissue_request(
    name: &str,
    problem: &str,
    rule: SanRule,
    old: Option<&Certificate>,
    profile: Option<kubepki_pki::Profile>,
    desired: &Desired,
) -> Result<CertRequest> {
    let needs =
        |needs: &str| Error::NeedsIdentity { name: name.to_owned(), problem: problem.to_owned(), needs: needs.into() };
    Ok(match (old, profile) {
        (Some(old), profile) => CertRequest {
            subject: old.subject.clone(),
            sans: desired_sans(&old.sans, rule, desired)?,
            usage: old.usage.or(profile.map(|p| p.spec().usage)).unwrap_or(kubepki_pki::Usage::Client),
        },
        (None, Some(profile)) => {
            let spec = profile.spec();
            // The node is in the profile when a SAN rule or the subject names it (etcd's CN).
            let needs_node =
                spec.sans != SanRule::None || !matches!(spec.common_name, kubepki_pki::CommonName::Fixed(_));
            let cfg = match &desired.profile {
                Some(cfg) if !cfg.node_name.is_empty() && !cfg.advertise_address.is_unspecified() => cfg.clone(),
                Some(cfg) if !needs_node => cfg.clone(),
                None if !needs_node => ClusterConfig::new(String::new(), IpAddr::from([0, 0, 0, 0])),
                _ => {
                    return Err(needs(
                        "--node-name and --apiserver-advertise-address (or a --config that gives \
                         nodeRegistration.name and localAPIEndpoint.advertiseAddress)",
                    ));
                }
            };
            let mut request = cfg.request(spec)?;
            if desired.config.is_none() {
                for (_, names) in desired.add.iter().filter(|(r, _)| *r == rule && rule != SanRule::None) {
                    request.sans.extend(names);
                }
            }
            request.sans.remove(&desired.remove);
            request
        }
        (None, None) => {
            return Err(needs("a readable certificate: kubepki has no profile for it; restore it from a backup"));
        }
    })
}

/// A broken or missing leaf named with `--force`, reissued with the identity of its old
/// certificate when that can still be read, else with kubeadm's profile filled from the flags
/// or `--config` (never from the host).
fn reissue(u: &Unusable, cas: &Cas, options: &PlanOptions) -> Result<Renewal> {
    let rule = san_rule(&u.location);
    let request = reissue_request(&u.name, &u.problem.to_string(), rule, u.cert.as_ref(), u.profile, &options.desired)?;
    let old_algorithm = u.cert.as_ref().and_then(|c| c.public_key.key_algorithm());
    let ca_algorithm = cas.get(u.ca).and_then(|ca| ca.cert.public_key.key_algorithm());
    let algorithm = options
        .algorithm
        .or(old_algorithm)
        .or(options.desired.config.as_ref().map(|c| c.encryption_algorithm))
        .or(ca_algorithm)
        .unwrap_or_default();
    let problem = match &u.problem {
        Problem::Broken { reason } => Reason::Broken { reason: reason.clone() },
        Problem::Missing => Reason::Missing,
    };
    Ok(Renewal {
        target: None,
        name: u.name.clone(),
        location: u.location.clone(),
        ca: u.ca,
        reasons: vec![Reason::Forced, problem],
        old: u.cert.clone(),
        request,
        validity: renewal_validity(options, u.cert.as_ref()),
        clamped: false,
        reuse_key: false,
        old_algorithm,
        algorithm,
    })
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
