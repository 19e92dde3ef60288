//! Verification after a run wrote (`--verify-*`): live endpoints checked with mutual TLS, with
//! kubeadm's default credentials of the cert dir.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::verify::{self, CheckId, CheckStatus, Options, Target, TargetKind, VerifyReport};

/// Endpoints to verify after a run wrote (and after its hook); a failed check rolls the run
/// back.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Verification {
    /// The endpoints, in the order they are reported: each an `https://host[:port]` URL and the
    /// kind of component serving it.
    pub endpoints: Vec<(TargetKind, String)>,
    /// How long to wait for an endpoint that is restarting (or still serving the certificate
    /// it had) before its checks count.
    pub wait: Duration,
}

impl Default for Verification {
    /// No endpoints; a 30-second wait.
    fn default() -> Self {
        Self { endpoints: Vec::new(), wait: Duration::from_secs(30) }
    }
}

impl Verification {
    /// The targets, each with kubeadm's default CA and client credentials of `cert_dir`
    /// ([`Target::kubeadm_default`]); [`Error::InvalidEndpoint`] for a URL that is not
    /// `https://host[:port]`. Made before anything is written, so that a wrong URL changes
    /// nothing.
    pub fn targets(&self, cert_dir: &Path) -> Result<Vec<Target>> {
        self.endpoints.iter().map(|(kind, url)| Target::kubeadm_default(*kind, cert_dir, url)).collect()
    }

    /// Verifies `targets`, waiting up to [`Self::wait`] for each: the report of every check
    /// (`None` when there are no targets), or [`Error::VerificationFailed`] with every problem
    /// when any check fails.
    pub fn check(&self, targets: &[Target]) -> Result<Option<VerifyReport>> {
        if targets.is_empty() {
            return Ok(None);
        }
        let options = Options { wait_reachable: self.wait, ..Options::default() };
        let report = verify::verify_blocking(targets, &options)?;
        if report.passed() {
            return Ok(Some(report));
        }
        let stale = report
            .endpoints
            .iter()
            .zip(targets)
            .filter(|(e, _)| e.check(CheckId::ServedMatchesDisk).is_some_and(|c| c.status == CheckStatus::Fail))
            .filter_map(|(_, t)| t.served_cert().map(Path::to_owned))
            .collect();
        Err(Error::VerificationFailed { problems: report.problems(), stale })
    }
}
