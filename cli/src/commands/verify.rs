//! `kubepki verify`: prove mutual TLS on etcd, kubelet and API server endpoints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use kubepki_rotator::verify::{
    self, CheckStatus, ClientCredential, EndpointReport, Options, Outcome, Target, TargetKind, VerifyReport,
    VerifyVerdict,
};
use serde_json::json;

use crate::commands::init::parse_duration;
use crate::exit::{INPUT, coded};
use crate::output::{self, Format};

const AFTER_HELP: &str = "\
Checks per endpoint (each pass, warn, fail or skip, with a reason):
  tls-version             TLS 1.2+ negotiated; a TLS 1.1 ClientHello is refused
  chain                   the served chain leads to the expected CA (warn when there is none)
  hostname                the served certificate is valid for the URL's host
  expiry                  valid now and beyond --warn (warn inside it)
  served-matches-disk     the served certificate is the file on disk (catches a missed reload)
  client-cert-accepted    the right client certificate gets an answer (etcd: a gRPC Status)
  no-client-cert-refused  no certificate: refused handshake or request, or HTTP 401/403
  wrong-ca-refused        a certificate from a throwaway CA with the same names is refused
  self-signed             (kubelet) a self-signed serving certificate is a warning

Defaults from the kubeadm layout under --cert-dir:
  etcd       CA etcd/ca.crt, client apiserver-etcd-client, served etcd/server.crt
  etcd-peer  CA etcd/ca.crt, client etcd/peer, served etcd/peer.crt
  kubelet    CA none (kubeadm's kubelets self-sign), client apiserver-kubelet-client
  apiserver  CA ca.crt, client apiserver-kubelet-client (else ../admin.conf), served apiserver.crt

Exit codes: 0 every check passed (warnings allowed) · 1 a check failed · 2 an endpoint was
unreachable or the input is wrong (a flag, a missing or unreadable file).";

/// `kubepki verify`.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct VerifyArgs {
    /// The cert dir the default CA, client and served certificate files are taken from.
    #[arg(long, value_name = "DIR", default_value = kubepki_pki::paths::CERT_DIR)]
    cert_dir: PathBuf,
    /// An etcd client endpoint (repeatable), e.g. https://10.0.0.11:2379.
    #[arg(long = "etcd", value_name = "URL")]
    etcd: Vec<String>,
    /// An etcd peer endpoint (repeatable), e.g. https://10.0.0.11:2380.
    #[arg(long = "etcd-peer", value_name = "URL")]
    etcd_peer: Vec<String>,
    /// A kubelet endpoint (repeatable), e.g. https://10.0.0.21:10250.
    #[arg(long = "kubelet", value_name = "URL")]
    kubelet: Vec<String>,
    /// An API server endpoint (repeatable), e.g. https://10.0.0.11:6443.
    #[arg(long = "apiserver", value_name = "URL")]
    apiserver: Vec<String>,

    /// The CA etcd's serving certificate must chain to [default: etcd/ca.crt].
    #[arg(long, value_name = "FILE", help_heading = "etcd")]
    etcd_ca: Option<PathBuf>,
    /// The client certificate for etcd [default: apiserver-etcd-client.crt].
    #[arg(long, value_name = "FILE", requires = "etcd_key", help_heading = "etcd")]
    etcd_cert: Option<PathBuf>,
    /// The client key for etcd.
    #[arg(long, value_name = "FILE", requires = "etcd_cert", help_heading = "etcd")]
    etcd_key: Option<PathBuf>,
    /// The certificate etcd should be serving [default: etcd/server.crt].
    #[arg(long, value_name = "FILE", help_heading = "etcd")]
    etcd_served_cert: Option<PathBuf>,

    /// The CA etcd's peer certificate must chain to [default: etcd/ca.crt].
    #[arg(long, value_name = "FILE", help_heading = "etcd peer")]
    etcd_peer_ca: Option<PathBuf>,
    /// The client certificate for etcd's peer port [default: etcd/peer.crt].
    #[arg(long, value_name = "FILE", requires = "etcd_peer_key", help_heading = "etcd peer")]
    etcd_peer_cert: Option<PathBuf>,
    /// The client key for etcd's peer port.
    #[arg(long, value_name = "FILE", requires = "etcd_peer_cert", help_heading = "etcd peer")]
    etcd_peer_key: Option<PathBuf>,
    /// The certificate the peer port should be serving [default: etcd/peer.crt].
    #[arg(long, value_name = "FILE", help_heading = "etcd peer")]
    etcd_peer_served_cert: Option<PathBuf>,

    /// The CA kubelet serving certificates must chain to [default: none, a warning].
    #[arg(long, value_name = "FILE", help_heading = "kubelet")]
    kubelet_ca: Option<PathBuf>,
    /// The client certificate for kubelets [default: apiserver-kubelet-client.crt].
    #[arg(long, value_name = "FILE", requires = "kubelet_key", help_heading = "kubelet")]
    kubelet_cert: Option<PathBuf>,
    /// The client key for kubelets.
    #[arg(long, value_name = "FILE", requires = "kubelet_cert", help_heading = "kubelet")]
    kubelet_key: Option<PathBuf>,
    /// The certificate the kubelet should be serving (e.g. /var/lib/kubelet/pki/kubelet.crt)
    /// [default: not compared].
    #[arg(long, value_name = "FILE", help_heading = "kubelet")]
    kubelet_served_cert: Option<PathBuf>,

    /// The CA the API server's certificate must chain to [default: ca.crt].
    #[arg(long, value_name = "FILE", help_heading = "apiserver")]
    apiserver_ca: Option<PathBuf>,
    /// The client certificate for the API server [default: apiserver-kubelet-client.crt].
    #[arg(long, value_name = "FILE", requires = "apiserver_key", help_heading = "apiserver")]
    apiserver_cert: Option<PathBuf>,
    /// The client key for the API server.
    #[arg(long, value_name = "FILE", requires = "apiserver_cert", help_heading = "apiserver")]
    apiserver_key: Option<PathBuf>,
    /// A kubeconfig whose current user is the API server client (e.g. admin.conf).
    #[arg(long, value_name = "FILE", conflicts_with = "apiserver_cert", help_heading = "apiserver")]
    apiserver_kubeconfig: Option<PathBuf>,
    /// The certificate the API server should be serving [default: apiserver.crt].
    #[arg(long, value_name = "FILE", help_heading = "apiserver")]
    apiserver_served_cert: Option<PathBuf>,

    /// Warn about served certificates expiring within this long.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, default_value = "30d", value_parser = parse_duration)]
    warn: Duration,
    /// The limit for each connection, handshake and request.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Wait this long for an endpoint that is restarting: refused connections are retried,
    /// and one still serving another certificate than the file is checked again.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, default_value = "0s", value_parser = parse_duration)]
    wait: Duration,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

/// Per-kind overrides of the kubeadm defaults.
struct Overrides<'a> {
    ca: Option<&'a PathBuf>,
    client: Option<ClientCredential>,
    served: Option<&'a PathBuf>,
}

impl VerifyArgs {
    fn overrides(&self, kind: TargetKind) -> Overrides<'_> {
        let files = |cert: &Option<PathBuf>, key: &Option<PathBuf>| match (cert, key) {
            (Some(cert), Some(key)) => Some(ClientCredential::Files { cert: cert.clone(), key: key.clone() }),
            _ => None,
        };
        match kind {
            TargetKind::Etcd => Overrides {
                ca: self.etcd_ca.as_ref(),
                client: files(&self.etcd_cert, &self.etcd_key),
                served: self.etcd_served_cert.as_ref(),
            },
            TargetKind::EtcdPeer => Overrides {
                ca: self.etcd_peer_ca.as_ref(),
                client: files(&self.etcd_peer_cert, &self.etcd_peer_key),
                served: self.etcd_peer_served_cert.as_ref(),
            },
            TargetKind::Kubelet => Overrides {
                ca: self.kubelet_ca.as_ref(),
                client: files(&self.kubelet_cert, &self.kubelet_key),
                served: self.kubelet_served_cert.as_ref(),
            },
            TargetKind::ApiServer => Overrides {
                ca: self.apiserver_ca.as_ref(),
                client: files(&self.apiserver_cert, &self.apiserver_key)
                    .or_else(|| self.apiserver_kubeconfig.clone().map(ClientCredential::Kubeconfig)),
                served: self.apiserver_served_cert.as_ref(),
            },
        }
    }

    fn urls(&self, kind: TargetKind) -> &[String] {
        match kind {
            TargetKind::Etcd => &self.etcd,
            TargetKind::EtcdPeer => &self.etcd_peer,
            TargetKind::Kubelet => &self.kubelet,
            TargetKind::ApiServer => &self.apiserver,
        }
    }

    /// The targets: kubeadm defaults under the cert dir, with the flags' overrides.
    fn targets(&self) -> Result<Vec<Target>> {
        let mut targets = Vec::new();
        for kind in TargetKind::ALL {
            let o = self.overrides(kind);
            for url in self.urls(kind) {
                let mut t = Target::kubeadm_default(kind, &self.cert_dir, url).map_err(|e| coded(INPUT, e))?;
                if let Some(ca) = o.ca {
                    t = t.with_server_ca(Some(ca.clone()));
                }
                if let Some(client) = &o.client {
                    t = t.with_client(Some(client.clone()));
                }
                if let Some(served) = o.served {
                    t = t.with_served_cert(Some(served.clone()));
                }
                targets.push(t);
            }
        }
        Ok(targets)
    }
}

pub(crate) fn run(args: &VerifyArgs) -> Result<ExitCode> {
    let targets = args.targets()?;
    crate::progress::install(args.output == Format::Table);
    if targets.is_empty() {
        bail!(coded(
            INPUT,
            anyhow::anyhow!("nothing to verify: give --etcd, --etcd-peer, --kubelet or --apiserver URLs")
        ));
    }
    let options = Options { warn_within: args.warn, timeout: args.timeout, wait_reachable: args.wait, now: None };
    let report = verify::verify_blocking(&targets, &options)?;
    match args.output {
        Format::Json => output::print_json(&report_json(&report))?,
        Format::Table => print_table(&report, &args.cert_dir),
    }
    Ok(ExitCode::from(match report.verdict() {
        VerifyVerdict::Passed => 0,
        VerifyVerdict::Failed => crate::exit::FAILURE,
        VerifyVerdict::Incomplete => INPUT,
    }))
}

fn verdict_str(v: VerifyVerdict) -> &'static str {
    match v {
        VerifyVerdict::Passed => "passed",
        VerifyVerdict::Failed => "failed",
        VerifyVerdict::Incomplete => "incomplete",
    }
}

fn endpoint_json(e: &EndpointReport) -> serde_json::Value {
    let (outcome, reason) = match &e.outcome {
        Outcome::Checked => ("checked", None),
        Outcome::Unreachable { reason } => ("unreachable", Some(reason)),
        Outcome::InvalidInput { reason } => ("invalid-input", Some(reason)),
    };
    json!({
        "kind": e.kind.name(),
        "url": e.url,
        "verdict": verdict_str(e.verdict()),
        "outcome": outcome,
        "reason": reason,
        "protocol": e.protocol,
        "served": e.served_leaf().map(|c| json!({
            "subject": c.subject_string,
            "issuer": c.issuer_string,
            "serial": c.serial,
            "notAfter": output::rfc3339(c.not_after),
            "sha256": c.fingerprint_sha256(),
            "sans": c.sans.to_string(),
        })),
        "checks": e.checks.iter().map(|c| json!({
            "name": c.id.name(),
            "status": c.status.as_str(),
            "reason": c.reason,
        })).collect::<Vec<_>>(),
    })
}

/// The JSON of a verification report (`verify -o json`, `verification` in `rotate -o json`).
pub(crate) fn report_json(report: &VerifyReport) -> serde_json::Value {
    json!({
        "verdict": verdict_str(report.verdict()),
        "endpoints": report.endpoints.iter().map(endpoint_json).collect::<Vec<_>>(),
    })
}

fn print_table(report: &VerifyReport, cert_dir: &Path) {
    println!("[verify] cert dir {}", cert_dir.display());
    print!("{}", output::table(&report_rows(report)));
    let count = |s: CheckStatus| report.endpoints.iter().flat_map(|e| &e.checks).filter(|c| c.status == s).count();
    let unchecked = report.endpoints.iter().filter(|e| e.outcome != Outcome::Checked).count();
    let n = report.endpoints.len();
    println!(
        "[verify] {}: {}, {} pass, {} warn, {} fail, {} skip{}",
        verdict_str(report.verdict()),
        output::count(n, "endpoint"),
        count(CheckStatus::Pass),
        count(CheckStatus::Warn),
        count(CheckStatus::Fail),
        count(CheckStatus::Skip),
        if unchecked > 0 { format!(", {unchecked} not checked") } else { String::new() }
    );
}

/// One row per check (endpoint, check, status, reason) under a heading; an endpoint that could
/// not be checked is one row saying why.
pub(crate) fn report_rows(report: &VerifyReport) -> Vec<Vec<String>> {
    let mut rows = vec![vec!["ENDPOINT".to_owned(), "CHECK".into(), "STATUS".into(), "REASON".into()]];
    for e in &report.endpoints {
        let name = format!("{} {}", e.kind, e.url);
        match &e.outcome {
            Outcome::Unreachable { reason } => rows.push(vec![name, "-".into(), "unreachable".into(), reason.clone()]),
            Outcome::InvalidInput { reason } => rows.push(vec![name, "-".into(), "input".into(), reason.clone()]),
            Outcome::Checked => {
                for (i, c) in e.checks.iter().enumerate() {
                    let endpoint = if i == 0 { name.clone() } else { String::new() };
                    rows.push(vec![endpoint, c.id.name().into(), c.status.as_str().into(), c.reason.clone()]);
                }
            }
        }
    }
    rows
}
