//! Mutual-TLS verification of live endpoints: etcd (client and peer ports), kubelets and the
//! API server.
//!
//! For each [`Target`] a run makes a few connections and reports named [`Check`]s, each
//! pass / warn / fail / skip with a reason:
//!
//! | check | passes when |
//! |---|---|
//! | `tls-version` | TLS 1.2 or 1.3 is negotiated, and a hand-made TLS 1.1 ClientHello is refused |
//! | `chain` | the served chain leads to the target's CA (webpki path validation, serverAuth, validity); a warning without a CA |
//! | `hostname` | the served certificate is valid for the URL's host |
//! | `expiry` | it is valid now and beyond [`Options::warn_within`] (a warning inside it) |
//! | `served-matches-disk` | its SHA-256 fingerprint equals the certificate file on disk, so a component that did not reload is caught |
//! | `client-cert-accepted` | the right client certificate gets an answer (etcd: a gRPC `Status`; HTTP: anything but 401) |
//! | `no-client-cert-refused` | without a client certificate the handshake or request is refused, or HTTP says 401/403 |
//! | `wrong-ca-refused` | the same, presenting a certificate from a throwaway CA that copies the real names |
//! | `self-signed` | (kubelet) the serving certificate is not self-signed (kubeadm's default is: a warning) |
//!
//! The served chain is recorded by a rustls verifier that accepts everything (while still
//! checking the handshake signatures, so the server must hold the key) and judged afterwards
//! with webpki, so one bad property does not hide the others. aws-lc-rs is the crypto provider.
//!
//! TLS 1.3 servers refuse a client certificate only after the client's side of the handshake
//! has completed, so client authentication is always judged by a request, never by the
//! handshake alone.
//!
//! # Example: verify etcd after a rotation, from synchronous code
//!
//! ```no_run
//! use std::path::Path;
//!
//! use kubepki_rotator::verify::{self, Options, Target};
//!
//! # fn main() -> Result<(), kubepki_rotator::Error> {
//! let pki = Path::new("/etc/kubernetes/pki");
//! let targets = [
//!     Target::etcd_default(pki, "https://127.0.0.1:2379")?,
//!     Target::etcd_peer_default(pki, "https://10.0.0.11:2380")?,
//! ];
//! let report = verify::verify_blocking(&targets, &Options::default())?;
//! if !report.passed() {
//!     for problem in report.problems() {
//!         eprintln!("{problem}");
//!     }
//!     // ... restore the backup
//! }
//! # Ok(())
//! # }
//! ```

pub(crate) mod etcd;
mod material;
pub(crate) mod probe;
mod report;
mod target;

use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use tokio::task::JoinSet;

pub use report::{Check, CheckId, CheckStatus, EndpointReport, Outcome, VerifyReport, VerifyVerdict};
pub use target::{ClientCredential, EndpointUrl, Target, TargetKind, WrongCa};

use crate::error::Result;
use material::{Identity, Material};
use probe::{HttpAnswer, LegacyAnswer, Unreachable};
use report::{short_date, short_duration};

/// How a run behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// A served certificate expiring within this window is a warning (default 30 days).
    pub warn_within: Duration,
    /// The limit for each connection, handshake and request (default 10 s).
    pub timeout: Duration,
    /// How long to wait for an endpoint that is restarting, e.g. after a rotation (default 0:
    /// one attempt): TCP connections that are refused are retried, and an endpoint whose
    /// `served-matches-disk` check fails (the old process still serving, or not yet reloaded)
    /// is verified again every half second until it passes or the time is up.
    pub wait_reachable: Duration,
    /// The time certificates are judged at (default: the clock when the run starts).
    pub now: Option<OffsetDateTime>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            warn_within: Duration::from_secs(30 * 86400),
            timeout: Duration::from_secs(10),
            wait_reachable: Duration::ZERO,
            now: None,
        }
    }
}

/// Verifies every target concurrently; the report lists them in the order given.
///
/// Never fails as a whole: an unreadable file or an unreachable endpoint is reported for
/// its target (see [`Outcome`]).
pub async fn verify(targets: &[Target], options: &Options) -> VerifyReport {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut set = JoinSet::new();
    for (i, target) in targets.iter().cloned().enumerate() {
        let (options, provider) = (options.clone(), provider.clone());
        set.spawn(async move { (i, verify_settled(&target, &options, &provider).await) });
    }
    let mut found: Vec<Option<EndpointReport>> = (0..targets.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => found[i] = Some(r),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    if !options.wait_reachable.is_zero() {
        kubepki_pki::progress::wait_over();
    }
    let endpoints = found
        .into_iter()
        .zip(targets)
        .map(|(r, t)| {
            r.unwrap_or_else(|| {
                let mut r = EndpointReport::new(t.kind(), t.url().to_string());
                r.outcome = Outcome::Unreachable { reason: "the verification task was cancelled".into() };
                r
            })
        })
        .collect();
    VerifyReport { endpoints }
}

/// [`verify`] for synchronous callers (`rotate`), on the process's runtime
/// ([`crate::runtime::block_on`]).
pub fn verify_blocking(targets: &[Target], options: &Options) -> Result<VerifyReport> {
    crate::runtime::block_on(verify(targets, options))
}

/// [`verify_target`], again while the endpoint serves another certificate than the file or
/// cannot be reached, until [`Options::wait_reachable`] has passed.
async fn verify_settled(target: &Target, options: &Options, provider: &Arc<CryptoProvider>) -> EndpointReport {
    let started = tokio::time::Instant::now();
    let deadline = started + options.wait_reachable;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let attempt = verify_target(target, options, provider, left);
        tokio::pin!(attempt);
        // While an endpoint is awaited (a refused connection is retried for `left`), progress
        // says so; the front end shows it only once the wait has lasted.
        let report = loop {
            tokio::select! {
                report = &mut attempt => break report,
                () = tokio::time::sleep(Duration::from_millis(250)), if !options.wait_reachable.is_zero() => {
                    let what = target.url().to_string();
                    kubepki_pki::progress::waiting(&what, started.elapsed(), options.wait_reachable);
                }
            }
        };
        // Still the old process, or it went away between two probes of this run.
        let stale = report.check(CheckId::ServedMatchesDisk).is_some_and(|c| c.status == CheckStatus::Fail)
            || matches!(report.outcome, Outcome::Unreachable { .. });
        if !stale || tokio::time::Instant::now() >= deadline {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Verifies one target; a refused TCP connection is retried for `wait`.
async fn verify_target(
    target: &Target,
    options: &Options,
    provider: &Arc<CryptoProvider>,
    wait: Duration,
) -> EndpointReport {
    let mut report = EndpointReport::new(target.kind(), target.url().to_string());
    let now = options.now.unwrap_or_else(OffsetDateTime::now_utc);
    let material = match Material::load(target, OffsetDateTime::now_utc(), provider) {
        Ok(m) => m,
        Err(reason) => {
            report.outcome = Outcome::InvalidInput { reason };
            return report;
        }
    };
    let url = target.url();
    let legacy = match probe::connect(url, options.timeout, wait).await {
        Ok(tcp) => probe::legacy_hello(tcp, url, options.timeout).await,
        Err(Unreachable(reason)) => {
            report.outcome = Outcome::Unreachable { reason };
            return report;
        }
    };
    let main = match probe::handshake(url, material.client.as_ref(), provider, options.timeout).await {
        Ok(h) => h,
        Err(Unreachable(reason)) => {
            report.outcome = Outcome::Unreachable { reason };
            return report;
        }
    };
    report.protocol = main.protocol();
    report.checks.push(tls_version(&main, &legacy));
    let probe::Handshake { chain, client_cert_requested, stream } = main;
    report.served_chain = chain
        .iter()
        .filter_map(|der| kubepki_pki::Certificate::from_der(der.to_vec(), "the served certificate").ok())
        .collect();
    let Some(leaf) = report.served_chain.first().cloned() else {
        let why = if chain.is_empty() {
            "no certificate was served (no TLS handshake)"
        } else {
            "the served certificate does not parse"
        };
        let mut ids = vec![
            CheckId::Chain,
            CheckId::Hostname,
            CheckId::Expiry,
            CheckId::ServedMatchesDisk,
            CheckId::ClientCertAccepted,
            CheckId::NoClientCertRefused,
            CheckId::WrongCaRefused,
        ];
        if target.kind() == TargetKind::Kubelet {
            ids.push(CheckId::SelfSigned);
        }
        let status = if chain.is_empty() { CheckStatus::Skip } else { CheckStatus::Fail };
        report.checks.extend(ids.into_iter().map(|id| Check::new(id, status, why)));
        return report;
    };
    let unix_now = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now.unix_timestamp()).unwrap_or(0)));
    let chain_ok = material.server_ca.as_ref().map(|ca| probe::verify_chain(&chain, &ca.roots, provider, unix_now));
    report.checks.push(chain_check(target, &material, chain_ok.as_ref(), &leaf));
    report.checks.push(hostname_check(target, &chain, &leaf));
    report.checks.push(expiry_check(&leaf, now, options.warn_within));
    report.checks.push(served_check(target, &material, &leaf));
    let attempts = Attempts { target, material: &material, provider, timeout: options.timeout };
    let wrong_attempt = async {
        match material.wrong.as_ref() {
            Some(id) => Some(attempts.other(Some(id)).await),
            None => None,
        }
    };
    let (right, anonymous, wrong) =
        tokio::join!(attempts.right(stream, client_cert_requested), attempts.other(None), wrong_attempt);
    let right_answered = matches!(right, Some(Attempt::Http { .. } | Attempt::EtcdAnswered { .. }));
    report.checks.push(accepted_check(target, &material, right));
    let seen = Seen { right_answered, server_asks: client_cert_requested };
    report.checks.push(refused_check(target, &material, anonymous, seen, None));
    match (wrong, material.wrong.as_ref()) {
        (Some(attempt), Some(id)) => report.checks.push(refused_check(target, &material, attempt, seen, Some(id))),
        _ => report.checks.push(Check::new(
            CheckId::WrongCaRefused,
            CheckStatus::Skip,
            "no wrong-CA probe was asked for",
        )),
    }
    if target.kind() == TargetKind::Kubelet {
        let chain_verified = matches!(chain_ok, Some(Ok(())));
        report.checks.push(self_signed_check(&report.served_chain, chain_verified));
    }
    report
}

fn tls_version(main: &probe::Handshake, legacy: &LegacyAnswer) -> Check {
    let negotiated = match (main.protocol(), &main.stream) {
        (Some(p), _) => Ok(format!("{p} negotiated")),
        (None, Err(e)) if !main.chain.is_empty() => {
            Ok(format!("TLS 1.2 or 1.3 (the certificate was presented; the handshake then ended: {e})"))
        }
        (None, Err(e)) => Err(format!("no TLS 1.2 or 1.3 handshake: {e}")),
        (None, Ok(_)) => Ok("TLS 1.2 or 1.3 negotiated".to_owned()),
    };
    let id = CheckId::TlsVersion;
    match (negotiated, legacy) {
        (Err(e), LegacyAnswer::Accepted(v)) => {
            Check::new(id, CheckStatus::Fail, format!("{e}; the server accepts {v}"))
        }
        (Err(e), LegacyAnswer::Refused(_)) => Check::new(id, CheckStatus::Fail, e),
        (Ok(n), LegacyAnswer::Accepted(v)) => Check::new(
            id,
            CheckStatus::Fail,
            format!("{n}, but the server also accepts {v}: set its minimum TLS version to 1.2"),
        ),
        (Ok(n), LegacyAnswer::Refused(how)) => {
            Check::new(id, CheckStatus::Pass, format!("{n}; a TLS 1.1 ClientHello was refused ({how})"))
        }
    }
}

fn chain_check(
    target: &Target,
    material: &Material,
    verified: Option<&Result<(), rustls::Error>>,
    leaf: &kubepki_pki::Certificate,
) -> Check {
    let id = CheckId::Chain;
    let (Some(ca), Some(verified)) = (&material.server_ca, verified) else {
        let hint = if target.kind() == TargetKind::Kubelet {
            " (kubeadm's kubelets serve a self-signed certificate; give the CA if yours are CA-signed)"
        } else {
            ""
        };
        return Check::new(
            id,
            CheckStatus::Warn,
            format!("not checked: no CA was given for the {} serving certificate{hint}", target.kind()),
        );
    };
    let path = ca.path.display();
    match verified {
        Ok(()) => Check::new(id, CheckStatus::Pass, format!("chains to {path} (issuer {})", leaf.issuer_string)),
        Err(e) => {
            let why = match e {
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                    format!("it is issued by \"{}\", which {path} does not hold", leaf.issuer_string)
                }
                rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature) => {
                    format!("its signature does not verify with a CA of {path}")
                }
                other => format!("{other}"),
            };
            Check::new(id, CheckStatus::Fail, format!("does not chain to {path}: {why}"))
        }
    }
}

fn hostname_check(target: &Target, chain: &[CertificateDer<'static>], leaf: &kubepki_pki::Certificate) -> Check {
    let host = target.url().host();
    match probe::verify_name(chain, target.url().server_name()) {
        Ok(()) => Check::new(CheckId::Hostname, CheckStatus::Pass, format!("valid for {host}")),
        Err(_) => {
            let sans = leaf.sans.to_string();
            let sans = if sans.is_empty() { "none".to_owned() } else { sans };
            Check::new(CheckId::Hostname, CheckStatus::Fail, format!("not valid for {host}: its SANs are {sans}"))
        }
    }
}

fn expiry_check(leaf: &kubepki_pki::Certificate, now: OffsetDateTime, warn_within: Duration) -> Check {
    let id = CheckId::Expiry;
    if now < leaf.not_before {
        return Check::new(id, CheckStatus::Fail, format!("not valid until {}", short_date(leaf.not_before)));
    }
    if now >= leaf.not_after {
        return Check::new(id, CheckStatus::Fail, format!("expired on {}", short_date(leaf.not_after)));
    }
    let left = leaf.not_after - now;
    let window = time::Duration::try_from(warn_within).unwrap_or(time::Duration::MAX);
    if left < window {
        Check::new(
            id,
            CheckStatus::Warn,
            format!(
                "expires on {} (in {}), within the warning window of {}",
                short_date(leaf.not_after),
                short_duration(left),
                short_duration(window)
            ),
        )
    } else {
        Check::new(
            id,
            CheckStatus::Pass,
            format!("valid until {} ({} left)", short_date(leaf.not_after), short_duration(left)),
        )
    }
}

fn served_check(target: &Target, material: &Material, leaf: &kubepki_pki::Certificate) -> Check {
    let id = CheckId::ServedMatchesDisk;
    let Some((path, disk)) = &material.served_on_disk else {
        let hint = match target.kind() {
            TargetKind::Kubelet => " (the kubelet's is /var/lib/kubelet/pki/kubelet.crt by default)",
            _ => "",
        };
        return Check::new(id, CheckStatus::Skip, format!("no certificate file to compare with was given{hint}"));
    };
    let (served, on_disk) = (leaf.fingerprint_sha256(), disk.fingerprint_sha256());
    if served == on_disk {
        Check::new(id, CheckStatus::Pass, format!("serves {} (serial {})", path.display(), leaf.serial))
    } else {
        Check::new(
            id,
            CheckStatus::Fail,
            format!(
                "serves serial {} (sha256 {}…) but {} holds serial {} (sha256 {}…): the component has not loaded the \
                 certificate on disk; reload or restart it",
                leaf.serial,
                served.get(..16).unwrap_or(&served),
                path.display(),
                disk.serial,
                on_disk.get(..16).unwrap_or(&on_disk)
            ),
        )
    }
}

/// What one client-authentication attempt got.
enum Attempt {
    /// An HTTP answer; `requested`: whether the server asked for a client certificate.
    Http { code: u16, requested: bool },
    /// etcd answered a gRPC `Status` request; `requested` as for `Http`.
    EtcdAnswered { version: String, requested: bool },
    /// The handshake or the request was refused: how.
    Refused(String),
    /// No answer (closed connection, timeout): why.
    NoAnswer(String),
}

struct Attempts<'a> {
    target: &'a Target,
    material: &'a Material,
    provider: &'a Arc<CryptoProvider>,
    timeout: Duration,
}

impl Attempts<'_> {
    /// etcd's client port is judged with etcd's gRPC client when the CA is known.
    fn uses_grpc(&self) -> bool {
        self.target.kind() == TargetKind::Etcd && self.material.server_ca.is_some()
    }

    /// With the right client certificate, over the connection of the main handshake (HTTP) or
    /// a new gRPC connection (etcd). `None` when there is no client certificate.
    async fn right(
        &self,
        stream: Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String>,
        requested: bool,
    ) -> Option<Attempt> {
        let id = self.material.client.as_ref()?;
        if self.uses_grpc() {
            return Some(self.etcd(Some(id), requested).await);
        }
        Some(self.http(stream, requested).await)
    }

    /// Without a client certificate, or with one from a wrong CA, over a new connection.
    async fn other(&self, identity: Option<&Identity>) -> Attempt {
        if self.uses_grpc() {
            return self.etcd(identity, true).await;
        }
        let url = self.target.url();
        match probe::handshake(url, identity, self.provider, self.timeout).await {
            Err(Unreachable(why)) => Attempt::NoAnswer(why),
            Ok(h) => self.http(h.stream, h.client_cert_requested).await,
        }
    }

    async fn etcd(&self, identity: Option<&Identity>, requested: bool) -> Attempt {
        let Some(ca) = &self.material.server_ca else {
            return Attempt::NoAnswer("no CA to connect with".into());
        };
        match etcd::status(self.target.url(), ca, identity, self.timeout).await {
            Ok(version) => Attempt::EtcdAnswered { version, requested },
            Err(e) => Attempt::Refused(e),
        }
    }

    async fn http(
        &self,
        stream: Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String>,
        requested: bool,
    ) -> Attempt {
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => return Attempt::Refused(format!("the handshake failed: {e}")),
        };
        let url = self.target.url();
        match probe::http_get(&mut stream, url, self.target.kind().http_path(), self.timeout).await {
            HttpAnswer::Status(code) => Attempt::Http { code, requested },
            HttpAnswer::Refused(why) => Attempt::Refused(format!("refused after the handshake: {why}")),
            HttpAnswer::NoAnswer(why) => Attempt::NoAnswer(why),
        }
    }
}

fn accepted_check(target: &Target, material: &Material, attempt: Option<Attempt>) -> Check {
    let id = CheckId::ClientCertAccepted;
    let (Some(attempt), Some(client)) = (attempt, &material.client) else {
        return Check::new(id, CheckStatus::Skip, "no client certificate was given");
    };
    let who = format!("{} ({})", client.leaf.subject, client.source);
    let path = target.kind().http_path();
    match attempt {
        Attempt::EtcdAnswered { version, requested: true } => {
            Check::new(id, CheckStatus::Pass, format!("etcd {version} answered a Status request from {who}"))
        }
        Attempt::EtcdAnswered { version, requested: false } => Check::new(
            id,
            CheckStatus::Warn,
            format!("etcd {version} answered, but never asked for a client certificate, so {who} was not checked"),
        ),
        Attempt::Http { code: 401, .. } => {
            Check::new(id, CheckStatus::Fail, format!("GET {path} answered 401 Unauthorized: {who} was not accepted"))
        }
        Attempt::Http { code, requested: false } => Check::new(
            id,
            CheckStatus::Warn,
            format!("answered {code}, but the server never asked for a client certificate, so {who} was not checked"),
        ),
        Attempt::Http { code: 403, .. } => Check::new(
            id,
            CheckStatus::Pass,
            format!("GET {path} answered 403: {who} was authenticated (but is not authorized for {path})"),
        ),
        Attempt::Http { code, .. } => {
            Check::new(id, CheckStatus::Pass, format!("GET {path} answered {code} for {who}"))
        }
        Attempt::Refused(why) => Check::new(id, CheckStatus::Fail, format!("{who} was refused: {why}")),
        Attempt::NoAnswer(why) => Check::new(id, CheckStatus::Fail, format!("no answer with {who}: {why}")),
    }
}

/// What the other probes of an endpoint showed, to judge a refusal by.
#[derive(Clone, Copy)]
struct Seen {
    /// The right client certificate got an answer.
    right_answered: bool,
    /// The server asked for a client certificate in the main handshake.
    server_asks: bool,
}

fn refused_check(
    target: &Target,
    material: &Material,
    attempt: Attempt,
    seen: Seen,
    wrong: Option<&Identity>,
) -> Check {
    let id = if wrong.is_some() { CheckId::WrongCaRefused } else { CheckId::NoClientCertRefused };
    let what = match wrong {
        Some(w) => format!("a client certificate for {} from {}", w.leaf.subject, w.source),
        None => "a client without a certificate".to_owned(),
    };
    let path = target.kind().http_path();
    let fix = match target.kind() {
        TargetKind::Etcd => "client certificate authentication is off: set --client-cert-auth=true".to_owned(),
        TargetKind::EtcdPeer => {
            "peer client certificate authentication is off: set --peer-client-cert-auth=true".to_owned()
        }
        TargetKind::Kubelet => {
            "anonymous requests are allowed: set --anonymous-auth=false (authentication.anonymous.enabled: false)"
                .to_owned()
        }
        TargetKind::ApiServer => format!("anonymous requests are authorized for {path}"),
    };
    let answered_hint = match (wrong.is_some(), seen.server_asks) {
        (true, true) => {
            let ca = material.server_ca.as_ref().map(|c| c.path.display().to_string());
            format!(
                "the server trusts a CA it should not{}",
                ca.map(|c| format!(" (expected only {c})")).unwrap_or_default()
            )
        }
        (true, false) => format!("the server never asks for a client certificate; {fix}"),
        (false, _) => fix,
    };
    match attempt {
        Attempt::Refused(why) if !seen.right_answered && target.kind() == TargetKind::Etcd => Check::new(
            id,
            CheckStatus::Warn,
            format!("inconclusive: {what} was refused ({why}), but so was the right client certificate"),
        ),
        Attempt::Refused(why) => Check::new(id, CheckStatus::Pass, format!("{what} was refused: {why}")),
        Attempt::NoAnswer(why) => Check::new(id, CheckStatus::Pass, format!("{what} got no answer: {why}")),
        Attempt::EtcdAnswered { version, .. } => Check::new(
            id,
            CheckStatus::Fail,
            format!("etcd {version} answered a Status request from {what}: {answered_hint}"),
        ),
        Attempt::Http { code: 401, .. } => {
            Check::new(id, CheckStatus::Pass, format!("GET {path} from {what} answered 401 Unauthorized"))
        }
        Attempt::Http { code: 403, .. } => Check::new(
            id,
            CheckStatus::Pass,
            format!(
                "GET {path} from {what} answered 403: not authorized (it was treated as anonymous; \
                 --anonymous-auth=false would answer 401)"
            ),
        ),
        Attempt::Http { code, .. } if (200..300).contains(&code) => {
            Check::new(id, CheckStatus::Fail, format!("GET {path} from {what} answered {code}: {answered_hint}"))
        }
        Attempt::Http { code, .. } => Check::new(
            id,
            CheckStatus::Warn,
            format!("GET {path} from {what} answered {code}; expected a refused handshake, 401 or 403"),
        ),
    }
}

fn self_signed_check(chain: &[kubepki_pki::Certificate], chain_verified: bool) -> Check {
    let id = CheckId::SelfSigned;
    let Some(leaf) = chain.first() else {
        return Check::new(id, CheckStatus::Skip, "no certificate was served");
    };
    let consequence = "the API server cannot verify the kubelet; issue its serving certificate from the cluster CA \
                       (serverTLSBootstrap: true, or kubepki issue kubelet-serving)";
    if leaf.is_self_issued() {
        return Check::new(
            id,
            CheckStatus::Warn,
            format!("the kubelet serves a self-signed certificate: {consequence}"),
        );
    }
    let own_root = chain.iter().skip(1).find(|c| c.is_self_issued() && c.raw_subject == leaf.raw_issuer);
    match own_root {
        Some(root) if !chain_verified => Check::new(
            id,
            CheckStatus::Warn,
            format!(
                "the kubelet serves a certificate signed by its own CA \"{}\" (the kubelet's generated one): \
                 {consequence}",
                root.subject_string
            ),
        ),
        _ => Check::new(id, CheckStatus::Pass, format!("issued by \"{}\", not self-signed", leaf.issuer_string)),
    }
}
