//! What verification found: per endpoint, named checks that pass, warn, fail or were skipped.

use std::fmt;

use kubepki_pki::Certificate;
use time::OffsetDateTime;

use super::target::TargetKind;

/// A check's result.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum CheckStatus {
    /// The check passed.
    Pass,
    /// The check could not be applied (no material for it); never affects the verdict.
    Skip,
    /// Something an operator should know about; does not fail verification.
    Warn,
    /// The endpoint does not do what it must.
    Fail,
}

impl CheckStatus {
    /// `pass`, `skip`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Skip => "skip",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The checks, in the order they are reported.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum CheckId {
    /// `tls-version`: TLS 1.2 or 1.3 is negotiated, and a TLS 1.1 ClientHello is refused.
    TlsVersion,
    /// `chain`: the served chain leads to the expected CA (path validation with webpki,
    /// serverAuth usage, validity).
    Chain,
    /// `hostname`: the served certificate is valid for the URL's host (SAN).
    Hostname,
    /// `expiry`: the served certificate is valid now and does not expire within the warning
    /// window.
    Expiry,
    /// `served-matches-disk`: the served certificate is the one on disk (SHA-256 fingerprint),
    /// so a component that did not reload after a rotation is caught.
    ServedMatchesDisk,
    /// `client-cert-accepted`: a client certificate from the right CA is accepted (the handshake
    /// and a request succeed).
    ClientCertAccepted,
    /// `no-client-cert-refused`: a client without a certificate gets no answer (refused
    /// handshake or request, or HTTP 401/403).
    NoClientCertRefused,
    /// `wrong-ca-refused`: a client certificate from another CA is refused likewise.
    WrongCaRefused,
    /// `self-signed` (kubelet only): a self-signed serving certificate is a warning, as the API
    /// server cannot verify the kubelet.
    SelfSigned,
}

impl CheckId {
    /// The check's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::TlsVersion => "tls-version",
            Self::Chain => "chain",
            Self::Hostname => "hostname",
            Self::Expiry => "expiry",
            Self::ServedMatchesDisk => "served-matches-disk",
            Self::ClientCertAccepted => "client-cert-accepted",
            Self::NoClientCertRefused => "no-client-cert-refused",
            Self::WrongCaRefused => "wrong-ca-refused",
            Self::SelfSigned => "self-signed",
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One check's result and why.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Check {
    /// Which check.
    pub id: CheckId,
    /// Its result.
    pub status: CheckStatus,
    /// Why, in a sentence naming the file or endpoint at fault.
    pub reason: String,
}

impl Check {
    pub(crate) fn new(id: CheckId, status: CheckStatus, reason: impl Into<String>) -> Self {
        Self { id, status, reason: reason.into() }
    }
}

/// Whether an endpoint could be checked at all.
#[derive(Clone, Debug, Eq, PartialEq)]
pub enum Outcome {
    /// The checks ran.
    Checked,
    /// No TCP connection could be made.
    Unreachable {
        /// Why.
        reason: String,
    },
    /// The material could not be read (a missing or malformed CA, certificate or key file).
    InvalidInput {
        /// Why, naming the file.
        reason: String,
    },
}

/// Everything found about one endpoint.
#[derive(Clone, Debug)]
pub struct EndpointReport {
    /// The endpoint's kind.
    pub kind: TargetKind,
    /// `https://host:port`.
    pub url: String,
    /// Whether the checks ran.
    pub outcome: Outcome,
    /// The checks, in [`CheckId`] order.
    pub checks: Vec<Check>,
    /// The served chain as received (leaf first); empty if no certificate was served.
    pub served_chain: Vec<Certificate>,
    /// The negotiated protocol (`TLSv1.3`), if a handshake completed.
    pub protocol: Option<&'static str>,
}

impl EndpointReport {
    pub(crate) fn new(kind: TargetKind, url: String) -> Self {
        Self { kind, url, outcome: Outcome::Checked, checks: Vec::new(), served_chain: Vec::new(), protocol: None }
    }

    /// The check with `id`, if it was reported.
    pub fn check(&self, id: CheckId) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The served leaf certificate.
    pub fn served_leaf(&self) -> Option<&Certificate> {
        self.served_chain.first()
    }

    /// The worst status among the checks (`Pass` when there are none).
    pub fn worst(&self) -> CheckStatus {
        self.checks.iter().map(|c| c.status).max().unwrap_or(CheckStatus::Pass)
    }

    /// The endpoint's verdict.
    pub fn verdict(&self) -> VerifyVerdict {
        match self.outcome {
            Outcome::Checked if self.worst() == CheckStatus::Fail => VerifyVerdict::Failed,
            Outcome::Checked => VerifyVerdict::Passed,
            Outcome::Unreachable { .. } | Outcome::InvalidInput { .. } => VerifyVerdict::Incomplete,
        }
    }
}

/// The overall result.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum VerifyVerdict {
    /// Every endpoint was checked and no check failed (warnings allowed).
    Passed,
    /// Some check failed.
    Failed,
    /// Some endpoint was unreachable or its material unreadable.
    Incomplete,
}

/// The report of a [`verify`](super::verify) run.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// One report per target, in the order the targets were given.
    pub endpoints: Vec<EndpointReport>,
}

impl VerifyReport {
    /// `Incomplete` if any endpoint was unreachable or had unreadable material, else `Failed`
    /// if any check failed, else `Passed`.
    pub fn verdict(&self) -> VerifyVerdict {
        let verdicts: Vec<_> = self.endpoints.iter().map(EndpointReport::verdict).collect();
        if verdicts.contains(&VerifyVerdict::Incomplete) {
            VerifyVerdict::Incomplete
        } else if verdicts.contains(&VerifyVerdict::Failed) {
            VerifyVerdict::Failed
        } else {
            VerifyVerdict::Passed
        }
    }

    /// Whether verification passed: what `rotate` keeps a rotation on.
    pub fn passed(&self) -> bool {
        self.verdict() == VerifyVerdict::Passed
    }

    /// Every failed check and every endpoint that could not be checked, as one line each
    /// (`etcd https://10.0.0.1:2379: served-matches-disk: ...`), for logs and rollback reasons.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.endpoints {
            match &e.outcome {
                Outcome::Unreachable { reason } => out.push(format!("{} {}: unreachable: {reason}", e.kind, e.url)),
                Outcome::InvalidInput { reason } => out.push(format!("{} {}: {reason}", e.kind, e.url)),
                Outcome::Checked => out.extend(
                    e.checks
                        .iter()
                        .filter(|c| c.status == CheckStatus::Fail)
                        .map(|c| format!("{} {}: {}: {}", e.kind, e.url, c.id, c.reason)),
                ),
            }
        }
        out
    }
}

/// `2026-11-27 10:00 UTC`.
pub(crate) fn short_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

/// `45d`, `3h`, `12m` or `40s`: the largest whole unit.
pub(crate) fn short_duration(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    match s {
        s if s >= 86400 => format!("{}d", s / 86400),
        s if s >= 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(outcome: Outcome, statuses: &[CheckStatus]) -> EndpointReport {
        let mut e = EndpointReport::new(TargetKind::Etcd, "https://127.0.0.1:2379".into());
        e.outcome = outcome;
        e.checks = statuses.iter().map(|&s| Check::new(CheckId::Chain, s, "r")).collect();
        e
    }

    #[test]
    fn warnings_and_skips_pass_a_failure_fails_and_an_unchecked_endpoint_is_incomplete() {
        let ok = endpoint(Outcome::Checked, &[CheckStatus::Pass, CheckStatus::Warn, CheckStatus::Skip]);
        let failed = endpoint(Outcome::Checked, &[CheckStatus::Pass, CheckStatus::Fail]);
        let down = endpoint(Outcome::Unreachable { reason: "refused".into() }, &[]);
        assert!(VerifyReport { endpoints: vec![ok.clone()] }.passed());
        let r = VerifyReport { endpoints: vec![ok.clone(), failed.clone()] };
        assert_eq!(r.verdict(), VerifyVerdict::Failed);
        assert_eq!(r.problems(), vec!["etcd https://127.0.0.1:2379: chain: r".to_owned()]);
        assert_eq!(VerifyReport { endpoints: vec![failed, down] }.verdict(), VerifyVerdict::Incomplete);
        assert_eq!(ok.worst(), CheckStatus::Warn);
    }

    #[test]
    fn durations_are_shown_in_their_largest_whole_unit() {
        assert_eq!(short_duration(time::Duration::days(400)), "400d");
        assert_eq!(short_duration(time::Duration::hours(25)), "1d");
        assert_eq!(short_duration(time::Duration::minutes(90)), "1h");
        assert_eq!(short_duration(time::Duration::seconds(-5)), "0s");
    }
}
