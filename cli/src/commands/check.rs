//! `kubepki check`: one read-only expiry inventory of every certificate a cluster trusts.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use kubepki_rotator::Error;
use kubepki_rotator::check::SaJudgement;
use kubepki_rotator::check::kubeadm::ExpirationInfo;
use kubepki_rotator::check::prometheus;
use kubepki_rotator::check::{self, Document, Evaluation, ExpiryPolicy, ExpiryStatus, Judged, Threshold};
use kubepki_rotator::inventory::endpoint::{self, EndpointOptions};
use kubepki_rotator::inventory::scan::FileScan;
use kubepki_rotator::inventory::secrets::{self, SecretRef};
use kubepki_rotator::inventory::{Inventory, InventoryBuilder, Item, ItemState, Sources};
use kubepki_rotator::text::{Cell, Tone, short_human_duration};
use time::OffsetDateTime;

use crate::output;
use crate::source_flags::SourceFlags;

const AFTER_HELP: &str = "\
Sources: the cert dir, every *.conf of the kubeconfig dir, $KUBECONFIG and ~/.kube/config, and
the kubelet PKI dir are read by default; a default location that does not exist is skipped, a
path named explicitly that does not exist is an error. Secrets and endpoints are read only when
named. check never writes, locks or changes anything.

With --root DIR (a node's filesystem copied or mounted there), the default locations and
--cert-dir, --kubeconfig-dir and --kubelet-pki-dir are paths on that node, and symbolic links
(the kubelet's absolute kubelet-client-current.pem link) are followed inside DIR; $KUBECONFIG
and ~/.kube/config are not read.

Run as a user who may read the certificates but not the private keys (a monitoring user on a
root-owned tree), check judges every certificate by its dates and says in one line how many
key pairings it could not check; that is not an error.

The service-account keys (sa.key, sa.pub) are shown with the signing key's ID (the kid of the
tokens it signs), algorithm, how many public keys sa.pub trusts and whether sa.key is one of
them: critical if it is not, or if either file is unreadable or not a key; a warning if it is
RSA below 2048 bits or older than --sa-max-age. -o kubeadm and -o kubeadm-json/yaml keep
kubeadm's format, which has no place for them.

Exit codes (the Nagios plugin convention):
  0  every certificate is ok
  1  something is within --warn, or has a warning finding (weak key, stale CA copy, an
     sa.key older than --sa-max-age, ...)
  2  something is expired, within --crit, not yet valid, missing (a leaf or kubeconfig kubeadm
     writes on this node, a file a kubeconfig names), or has a broken chain or a key that does
     not match or has no certificate, or sa.key is not in sa.pub (or either is not a key)
  3  an input could not be read or parsed (the message names it and why), or no certificate
     was found at all (no certificates found in ...); everything else was still checked
     and reported
When several apply, 2 wins over 3, and 3 over 1.";

/// `-o` for `kubepki check`.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, ValueEnum)]
pub(crate) enum CheckFormat {
    /// A table sorted by residual time, then the findings.
    #[default]
    Table,
    /// The text table of `kubeadm certs check-expiration`, byte for byte.
    Kubeadm,
    /// kubeadm's `CertificateExpirationInfo` (output.kubeadm.k8s.io/v1alpha3) as JSON.
    KubeadmJson,
    /// kubeadm's `CertificateExpirationInfo` as YAML.
    KubeadmYaml,
    /// kubepki's own schema (docs/check.md): {"items": [...], ...}.
    Json,
    /// kubepki's own schema as YAML.
    Yaml,
    /// Prometheus text exposition, for node-exporter's textfile collector.
    Prometheus,
}

/// `kubepki check`.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct CheckArgs {
    /// Check the node filesystem copied or mounted at DIR instead of this machine's.
    #[arg(long, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
    /// The cert dir in kubeadm's layout [default: /etc/kubernetes/pki].
    #[arg(long, value_name = "DIR")]
    pub(crate) cert_dir: Option<PathBuf>,
    /// A directory of kubeconfigs: every *.conf in it [default: /etc/kubernetes].
    #[arg(long, value_name = "DIR")]
    pub(crate) kubeconfig_dir: Option<PathBuf>,
    /// A kubeconfig file to check (repeatable); $KUBECONFIG's files and ~/.kube/config are
    /// checked too when present.
    #[arg(long = "kubeconfig", value_name = "FILE")]
    pub(crate) kubeconfigs: Vec<PathBuf>,
    /// The kubelet's PKI dir [default: /var/lib/kubelet/pki].
    #[arg(long, value_name = "DIR")]
    pub(crate) kubelet_pki_dir: Option<PathBuf>,
    /// A certificate file, or a directory scanned recursively for .crt, .pem and .cert files
    /// (repeatable). A bundle yields every certificate in it.
    #[arg(long = "file", value_name = "PATH")]
    pub(crate) files: Vec<PathBuf>,
    /// A Secret to read through the Kubernetes API (repeatable): every key holding PEM
    /// certificates.
    #[arg(long = "secret", value_name = "NAMESPACE/NAME", value_parser = parse_secret)]
    pub(crate) secrets: Vec<SecretRef>,
    /// Read every Secret of a namespace (repeatable).
    #[arg(long = "secrets-namespace", value_name = "NS")]
    pub(crate) secrets_namespaces: Vec<String>,
    /// The kubeconfig context for the API ($KUBECONFIG or ~/.kube/config) [default: the
    /// current context].
    #[arg(long, value_name = "NAME")]
    pub(crate) context: Option<String>,
    /// A TLS endpoint whose served chain to check (repeatable).
    #[arg(long = "endpoint", value_name = "HOST:PORT")]
    pub(crate) endpoints: Vec<String>,
    /// Judge served chains against this CA file (otherwise only their dates are checked).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// Warn from here: a duration before expiry (30d, 12h) or a share of the lifetime used (80%).
    #[arg(long, value_name = "THRESHOLD", allow_hyphen_values = true, default_value = "30d", value_parser = parse_threshold)]
    pub(crate) warn: Threshold,
    /// Critical from here: a duration before expiry or a share of the lifetime used.
    #[arg(long, value_name = "THRESHOLD", allow_hyphen_values = true, default_value = "7d", value_parser = parse_threshold)]
    pub(crate) crit: Threshold,
    /// Warn when the service-account signing key (sa.key) is older than this (365d, 8760h);
    /// by default its age is shown, not judged: a key has no expiry.
    #[arg(long, value_name = "DURATION", value_parser = crate::commands::init::parse_duration)]
    pub(crate) sa_max_age: Option<Duration>,
    /// Evaluate as of this time: RFC 3339, a date, or relative to now (+90d, -12h).
    #[arg(long, value_name = "TIME", default_value = "now", allow_hyphen_values = true)]
    pub(crate) at: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub(crate) output: CheckFormat,
    /// Read only the sources named on the command line (no default locations).
    #[arg(long)]
    pub(crate) no_defaults: bool,
    /// Timeout for each network step (connect, handshake, API response).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, default_value = "10s", value_parser = crate::commands::init::parse_duration)]
    pub(crate) timeout: Duration,
}

fn parse_threshold(s: &str) -> Result<Threshold, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_secret(s: &str) -> Result<SecretRef, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

impl CheckArgs {
    /// The local sources: those of `tree` (defaults unless `--no-defaults`, the flags
    /// overriding them), and the named files.
    fn sources(&self) -> Sources {
        let mut s = SourceFlags {
            cert_dir: self.cert_dir.as_deref(),
            kubeconfig_dir: self.kubeconfig_dir.as_deref(),
            kubeconfigs: &self.kubeconfigs,
            kubelet_pki_dir: self.kubelet_pki_dir.as_deref(),
            no_defaults: self.no_defaults,
            root: self.root.as_deref(),
        }
        .sources();
        s.files.clone_from(&self.files);
        s
    }
}

pub(crate) fn run(args: &CheckArgs) -> Result<ExitCode> {
    let now = OffsetDateTime::now_utc();
    let at = kubepki_rotator::text::parse_time(&args.at, now).map_err(|e| crate::exit::coded(crate::exit::INPUT, e))?;
    let sa_max_age = args.sa_max_age.map(time::Duration::try_from).transpose().map_err(|_| {
        crate::exit::coded(crate::exit::INPUT, anyhow::anyhow!("--sa-max-age: too large; give a duration like 365d"))
    })?;
    let policy = ExpiryPolicy { warn: args.warn, crit: args.crit, sa_max_age };
    if let Some(root) = args.root.as_ref().filter(|r| !r.is_dir()) {
        return Err(crate::exit::coded(
            crate::exit::INPUT,
            anyhow::anyhow!("--root {}: not a directory; name the node's copied or mounted filesystem", root.display()),
        ));
    }
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    // `-o json` reads the files as it writes them: thousands of certificates are never all in
    // memory. Every other output needs them all (sorting, kubeadm's tables, totals).
    let streamed = args.output == CheckFormat::Json;
    let inventory = discover(args, !streamed)?;
    let (written, tally) = if streamed {
        let document = Document::new(&inventory, Some(FileScan::walk(&args.files)), &policy, at);
        (document.write_json(&mut out), document.into_tally())
    } else {
        let report = check::evaluate(&inventory, &policy, at);
        let expiration = || ExpirationInfo::from_inventory(&inventory, at);
        let written = match args.output {
            CheckFormat::Table => out.write_all(table(&report, output::colour()).as_bytes()),
            CheckFormat::Kubeadm => out.write_all(expiration().to_text().as_bytes()),
            CheckFormat::KubeadmJson => out.write_all(expiration().to_json().as_bytes()),
            CheckFormat::KubeadmYaml => out.write_all(expiration().to_yaml().as_bytes()),
            CheckFormat::Yaml => out.write_all(report.to_yaml().as_bytes()),
            CheckFormat::Json => report.document().write_json(&mut out),
            CheckFormat::Prometheus => out.write_all(prometheus::render(&report).as_bytes()),
        };
        (written, report.tally())
    };
    // A reader that stopped early (`| head`) ends the run quietly with 141 (exit::report).
    written.and_then(|()| out.flush()).context("cannot write to standard output")?;
    for e in &tally.errors {
        eprintln!("error: {e}");
    }
    for (name, reason) in &tally.invalid {
        eprintln!("error: {name}: {reason}");
    }
    for (name, reason) in &tally.missing {
        eprintln!("error: {name} is missing: {reason}");
    }
    for w in &inventory.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(note) = keys_not_read_note(&inventory.keys_not_read) {
        eprintln!("{note}");
    }
    let code = tally.verdict.exit_code();
    // The process ends now: freeing thousands of parsed certificates one by one would cost
    // more than the kernel reclaiming them at once.
    std::mem::forget(inventory);
    Ok(ExitCode::from(code))
}

/// Reads every source — the local ones (the named files too, if `with_files`), then Secrets
/// and endpoints — and links them.
fn discover(args: &CheckArgs, with_files: bool) -> Result<Inventory> {
    let mut sources = args.sources();
    if !with_files {
        sources.files.clear();
    }
    let mut builder = InventoryBuilder::discover(&sources);
    if !args.secrets.is_empty() || !args.secrets_namespaces.is_empty() || !args.endpoints.is_empty() {
        let runtime = kubepki_rotator::runtime::shared().context("cannot start the runtime for network sources")?;
        runtime.block_on(async {
            if !args.secrets.is_empty() || !args.secrets_namespaces.is_empty() {
                match secrets::client(args.context.as_deref(), args.timeout).await {
                    Ok(client) => builder.add(secrets::read(&client, &args.secrets, &args.secrets_namespaces).await),
                    Err(e) => {
                        let mut found = kubepki_rotator::inventory::Found::default();
                        found.errors.push(kubepki_rotator::inventory::InputError::new(
                            "kubernetes api",
                            format!("{:#}", anyhow::Error::new(e)),
                        ));
                        builder.add(found);
                    }
                }
            }
            if !args.endpoints.is_empty() {
                let options = EndpointOptions { timeout: args.timeout, ca_file: args.ca.clone() };
                builder.add(endpoint::fetch(&args.endpoints, &options).await);
            }
        });
    }
    Ok(builder.finish())
}

/// One line for every private key this user may not read: their certificates were judged by
/// their dates, the pairing with the key was not checked. `None` if every key was read.
fn keys_not_read_note(keys: &[PathBuf]) -> Option<String> {
    let first = keys.first()?;
    let n = keys.len();
    let (these, keys_word) = if n == 1 { ("its", "key") } else { ("their", "keys") };
    // Where they are: the directory every one of them is under (the cert dir for its own).
    let mut under = first.parent().map(PathBuf::from).unwrap_or_default();
    while !keys.iter().all(|k| k.starts_with(&under)) && under.pop() {}
    let place = if under.as_os_str().is_empty() { String::new() } else { format!(" under {}", under.display()) };
    Some(format!(
        "note: {n} private {keys_word}{place} not readable by this user: {these} certificates were judged by their \
         dates, the pairing with the {keys_word} was not checked (run as root to check it)"
    ))
}

/// The palette's colour of a status.
fn tone(status: ExpiryStatus) -> Tone {
    match status {
        ExpiryStatus::Ok => Tone::Good,
        ExpiryStatus::Warning => Tone::Warning,
        ExpiryStatus::Critical | ExpiryStatus::Expired | ExpiryStatus::NotYetValid | ExpiryStatus::Missing => {
            Tone::Critical
        }
        ExpiryStatus::Invalid => Tone::Broken,
    }
}

/// Residual time for people: `364d`, `5h`, `-3d` once expired.
fn residual(seconds: i64) -> String {
    if seconds < 0 { format!("-{}", short_human_duration(-seconds)) } else { short_human_duration(seconds) }
}

/// Why an item has no certificate, for the table: `NAME: invalid: why` or `NAME: missing:
/// which file` (a key-only item's reason is its `certificate-missing` finding).
fn unread(item: &Item) -> Option<String> {
    let reason = item.certificate.as_ref().err()?;
    match item.state {
        ItemState::Present => Some(format!("{}: invalid: {reason}", item.name)),
        ItemState::Missing => Some(format!("{}: missing: {reason}", item.name)),
        ItemState::KeyOnly => None,
    }
}

/// The service-account keys in one line: status, kid, algorithm, how many keys sa.pub trusts
/// and whether sa.key is one of them, its age, the files.
fn service_account_line(sa: &SaJudgement<'_>, color: bool) -> String {
    let keys = sa.keys;
    let status = if color { tone(sa.status).paint(sa.status.as_str()) } else { sa.status.as_str().to_owned() };
    let signing = match keys.signing_key() {
        Some(k) => format!("kid {}  {}", k.key_id(), k.algorithm()),
        None if keys.not_readable().contains(&keys.key_path) => "sa.key not readable by this user".to_owned(),
        None => "sa.key unusable".to_owned(),
    };
    let trusted = match (keys.trusted_keys(), keys.signing_key_trusted()) {
        (Some(set), trusted) => {
            let n = output::count(set.keys.len(), "public key");
            match trusted {
                Some(true) => format!("sa.pub trusts {n}, sa.key among them"),
                Some(false) => format!("sa.pub trusts {n}, NOT sa.key"),
                None => format!("sa.pub trusts {n}"),
            }
        }
        (None, _) if keys.not_readable().contains(&keys.pub_path) => "sa.pub not readable by this user".to_owned(),
        (None, _) => "sa.pub unusable".to_owned(),
    };
    let age = sa.age_seconds.map_or_else(String::new, |s| format!("  age {}", residual(s)));
    format!("  {status}   {signing}   {trusted}{age}   {}", keys.key_path.display())
}

/// The human table: sorted by residual time (invalid and missing first), then findings and a
/// summary.
fn table(report: &Evaluation<'_>, color: bool) -> String {
    if report.entries.is_empty() && report.inventory.errors.is_empty() {
        let nothing = report.inventory.nothing_found();
        return format!("{}: {}\n", nothing.message, report.verdict().as_str().to_uppercase());
    }
    let mut entries: Vec<&Judged<'_>> = report.entries.iter().collect();
    entries.sort_by_key(|e| (e.residual_seconds.unwrap_or(i64::MIN), e.item.name.clone()));
    let mut table = output::new_table();
    table.row(["STATUS", "NAME", "EXPIRES", "RESIDUAL", "SOURCE", "CA", "PATH"]);
    for e in &entries {
        let cert = e.item.cert();
        table.row([
            Cell::toned(e.status.as_str(), color.then(|| tone(e.status))),
            e.item.name.as_str().into(),
            cert.map_or_else(|| "-".into(), |c| output::short_date(c.not_after)).into(),
            e.residual_seconds.map_or_else(|| "-".into(), residual).into(),
            e.item.source().as_str().into(),
            e.item.ca_name.as_deref().unwrap_or("-").into(),
            e.item.location.reference().into(),
        ]);
    }
    let mut out = table.render();
    let service_account = report.service_account();
    if let Some(sa) = &service_account {
        out.push_str(&format!("\nSERVICE-ACCOUNT KEYS\n{}\n", service_account_line(sa, color)));
    }
    let sa_findings = service_account
        .iter()
        .flat_map(|sa| sa.findings.iter().map(|f| format!("sa.key: {} [{}]: {f}", f.severity().as_str(), f.code())));
    let findings: Vec<String> = entries
        .iter()
        .flat_map(|e| {
            let item = e.item;
            unread(item).into_iter().chain(
                item.findings
                    .iter()
                    .map(move |f| format!("{}: {} [{}]: {f}", item.name, f.severity().as_str(), f.code())),
            )
        })
        .chain(sa_findings)
        .collect();
    if !findings.is_empty() {
        out.push_str("\nFINDINGS\n");
        for f in findings {
            out.push_str(&format!("  {f}\n"));
        }
    }
    for w in &report.inventory.warnings {
        out.push_str(&format!("\nwarning: {w}\n"));
    }
    let counts: Vec<String> =
        report.counts().iter().filter(|(_, n)| *n > 0).map(|(s, n)| format!("{n} {}", s.as_str())).collect();
    out.push_str(&format!(
        "\n{}{}{}; at {}, warn {}, crit {}: {}\n",
        output::count(report.entries.len(), "certificate"),
        if counts.is_empty() { String::new() } else { format!(": {}", counts.join(", ")) },
        if report.inventory.errors.is_empty() {
            String::new()
        } else {
            format!("; {}", output::count(report.inventory.errors.len(), "unreadable input"))
        },
        kubepki_rotator::text::rfc3339(report.at),
        report.policy.warn,
        report.policy.crit,
        report.verdict().as_str().to_uppercase(),
    ));
    out
}
