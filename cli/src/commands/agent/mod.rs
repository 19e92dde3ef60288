//! `kubepki agent`: one long-running process per node that keeps the inventory of `check`
//! current (on an interval and on every file change), serves it as Prometheus metrics, and on a
//! control-plane node renews what the policy says is due with the one rotation workflow of
//! `kubepki rotate`, sleeping until the next certificate is due.

mod http;
mod log;
mod state;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use kubepki_rotator::check::prometheus;
use kubepki_rotator::check::{self, ExpiryPolicy};
use kubepki_rotator::inventory::{InventoryBuilder, SourcePath, Sources};
use kubepki_rotator::rotation::restart;
use kubepki_rotator::rotation::{RotateReport, RotateRequest};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::{Notify, watch as signal_watch};

use crate::commands::init::parse_duration;
use crate::commands::rotate::RotateArgs;
use crate::exit::{FAILURE, INPUT, coded};
use state::{Shared, State};

const AFTER_HELP: &str = "\
Endpoints on --listen: /metrics (the series of `check -o prometheus` and the agent's own),
/healthz (the process is alive), /readyz (200 if the last inventory read found no unreadable
input and no broken certificate, else 503 with the reasons).

Rotation (unless --no-rotate) is `kubepki rotate` with the same flags, run when the plan's next
certificate is due (and after every file change): the cert dir lock, --etcd-lock, the backup,
the audit log, --exec and --verify-* with rollback. rotate's one-shot flags (--dry-run,
--force, --all, --at, -o) are refused. One JSON line per event on standard error.

SIGTERM or SIGINT: the agent stops serving, lets a rotation in progress finish (or roll back)
and exits 0; a hook running then is ended with its process group, and its run rolled back.

Exit codes: 0 stopped by SIGTERM/SIGINT (or --check-args: the flags are valid) · 1 --listen
cannot be bound (in use, no permission) · 2 usage or input error (a flag, --config).
Anything the agent meets while running (an unreadable cert dir, a broken leaf, a failed
rotation) is reported in /metrics, /readyz and the log, and the agent stays up.";

/// `kubepki agent`.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
// rotate's one-shot flags are parsed (to be refused with a reason) but not offered.
#[command(mut_arg("dry_run", |a| a.hide(true)), mut_arg("force", |a| a.hide(true)), mut_arg("all", |a| a.hide(true)))]
#[command(mut_arg("at", |a| a.hide(true)), mut_arg("output", |a| a.hide(true)))]
pub(crate) struct AgentArgs {
    /// Serve /metrics, /healthz and /readyz here (HOST:PORT).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9842")]
    listen: SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Re-read the inventory this often (file changes are seen at once besides).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    interval: Duration,
    /// The kubelet's PKI dir to watch [default: /var/lib/kubelet/pki, skipped if absent].
    #[arg(long, value_name = "DIR")]
    kubelet_pki_dir: Option<PathBuf>,
    /// Only watch and export: never renew anything (a worker node, or a node whose CA keys are
    /// elsewhere).
    #[arg(long)]
    no_rotate: bool,
    /// Check the flags (and --config) and exit: 0 if the agent would start with them.
    #[arg(long)]
    check_args: bool,
    #[command(flatten)]
    rotate: RotateArgs,
}

/// What the agent was asked to do, checked before it starts.
struct Config {
    sources: Sources,
    /// The rotation request (its times are set at each run); `None` with --no-rotate.
    rotation: Option<RotateRequest>,
    interval: Duration,
    watched: Vec<PathBuf>,
}

pub(crate) fn run(args: &AgentArgs) -> Result<ExitCode> {
    // The agent handles SIGTERM and SIGINT itself: a hook's signal handling only ends the
    // hook's process group (its run is then rolled back), never the agent.
    kubepki_rotator::rotation::leave_signals_to_caller();
    let config = config(args).map_err(|e| coded(INPUT, e))?;
    if args.check_args {
        return Ok(ExitCode::SUCCESS);
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(http::tls_config(cert, key).map_err(|e| coded(INPUT, e))?),
        _ => None,
    };
    let runtime = kubepki_rotator::runtime::shared().context("cannot start the agent's runtime")?;
    runtime.block_on(serve(args, config, tls))
}

fn config(args: &AgentArgs) -> Result<Config> {
    let refused = [
        ("--dry-run", args.rotate.dry_run),
        ("--force", !args.rotate.force.is_empty()),
        ("--all", args.rotate.all),
        ("--at", args.rotate.at.is_some()),
        ("-o", args.rotate.output != crate::output::Format::default()),
    ];
    if let Some((flag, _)) = refused.iter().find(|(_, given)| *given) {
        anyhow::bail!("{flag} is a one-shot flag of `kubepki rotate`; the agent renews what is due as it falls due");
    }
    let request = crate::commands::rotate::request(&args.rotate)?;
    let kubelet_pki_dir = match &args.kubelet_pki_dir {
        Some(d) => SourcePath::explicit(d),
        None => SourcePath::default_location(kubepki_pki::paths::KUBELET_PKI_DIR),
    };
    let sources = Sources {
        cert_dir: Some(SourcePath::explicit(&request.cert_dir)),
        kubeconfig_dir: Some(SourcePath::default_location(&request.kubeconfig_dir)),
        kubelet_pki_dir: Some(kubelet_pki_dir.clone()),
        ..Sources::default()
    };
    let watched = vec![
        request.cert_dir.clone(),
        request.cert_dir.join("etcd"),
        request.kubeconfig_dir.clone(),
        kubelet_pki_dir.path,
    ];
    Ok(Config { sources, rotation: (!args.no_rotate).then_some(request), interval: args.interval, watched })
}

async fn serve(args: &AgentArgs, config: Config, tls: Option<Arc<rustls::ServerConfig>>) -> Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| coded(FAILURE, anyhow::anyhow!("cannot listen on {} (--listen): {e}", args.listen)))?;
    let shared: Shared = Arc::new(Mutex::new(State::new()));
    let (stop_tx, stop_rx) = signal_watch::channel(false);
    let changed = Arc::new(Notify::new());
    log::event(
        "info",
        "started",
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "listen": args.listen.to_string(),
            "tls": tls.is_some(),
            "rotate": config.rotation.is_some(),
            "intervalSeconds": config.interval.as_secs(),
        }),
    );
    watch::start(&config.watched, changed.clone(), shared.clone());
    let server = tokio::spawn(http::serve(listener, tls, shared.clone(), stop_rx.clone()));
    let worker = tokio::spawn(work(config, shared, changed, stop_rx));

    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let signal = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    };
    log::event("info", "stopping", json!({ "signal": signal }));
    let _ = stop_tx.send(true);
    // The server stops accepting at once; a rotation in progress runs to its end (kept or
    // rolled back) before the worker returns.
    let _ = server.await;
    let _ = worker.await;
    log::event("info", "stopped", json!({}));
    Ok(ExitCode::SUCCESS)
}

/// The agent's loop: read the inventory, rotate what is due, sleep until the next due time, the
/// interval or a file change.
async fn work(config: Config, shared: Shared, changed: Arc<Notify>, mut stop: signal_watch::Receiver<bool>) {
    let config = Arc::new(config);
    // Plan the rotation at start, after a file change, and when the next certificate (or the
    // retry of a failed run) falls due.
    let mut plan_now = true;
    let mut next_due: Option<OffsetDateTime> = None;
    // What the last run that wrote renewed, and when: a certificate due again at once is not
    // renewed again before --interval has passed (its lifetime is shorter than the margin).
    let mut recent: Option<(Instant, Vec<String>)> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let c = config.clone();
        if let Ok(reading) = tokio::task::spawn_blocking(move || read_inventory(&c.sources)).await {
            state::inventory_read(&shared, reading);
        }
        let due = next_due.is_some_and(|due| due <= OffsetDateTime::now_utc());
        if let Some(request) = config.rotation.clone().filter(|_| plan_now || due) {
            let hold = match &recent {
                Some((at, names)) if at.elapsed() < config.interval => names.clone(),
                _ => Vec::new(),
            };
            let ran = tokio::task::spawn_blocking(move || rotate_if_due(request, &hold)).await;
            let ran = ran.unwrap_or_else(|e| Err(anyhow::anyhow!("the rotation task ended: {e}")));
            if let Ok(Pass { wrote: Some(report), .. }) = &ran {
                let names = report.execution.iter().flat_map(|o| &o.renewed).map(|r| r.name.clone()).collect();
                recent = Some((Instant::now(), names));
            }
            next_due = state::rotation_ran(&shared, ran, config.interval);
            plan_now = false;
            // A rotation wrote files: read them again at once.
            if state::wrote_last(&shared) {
                continue;
            }
        }
        plan_now = false;
        let mut sleep = config.interval;
        if let Some(due) = next_due {
            let until = Duration::try_from(due - OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO);
            sleep = sleep.min(until);
        }
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = changed.notified() => {
                // Events come in bursts (a rotation writes a dozen files): let it end.
                tokio::time::sleep(Duration::from_millis(200)).await;
                plan_now = true;
            }
            _ = stop.changed() => return,
        }
    }
}

/// One reading of the inventory: the metrics of `check -o prometheus` and what is wrong.
pub(super) struct Reading {
    metrics: String,
    problems: Vec<String>,
    certificates: usize,
}

fn read_inventory(sources: &Sources) -> Reading {
    let inventory = InventoryBuilder::discover(sources).finish();
    let report = check::evaluate(&inventory, &ExpiryPolicy::default(), OffsetDateTime::now_utc());
    let metrics = prometheus::render(&report);
    let tally = report.tally();
    let mut problems: Vec<String> = tally.errors.iter().map(ToString::to_string).collect();
    problems.extend(tally.invalid.iter().map(|(name, why)| format!("{name}: invalid: {why}")));
    if tally.items == 0 && tally.errors.is_empty() {
        problems.push(inventory.nothing_found().to_string());
    }
    Reading { metrics, problems, certificates: tally.items }
}

/// What one rotation pass did: the report of the run that wrote (`None`: nothing was due),
/// and when the next certificate falls due.
pub(super) struct Pass {
    wrote: Option<RotateReport>,
    next_due: Option<OffsetDateTime>,
    /// The restart list of what was written (`restart` in `rotate -o json`).
    restart: Option<serde_json::Value>,
}

/// Plans (a dry run: no etcd lock is taken); if anything is due, or an interrupted run owes
/// its steps, runs the rotation itself. A certificate of `hold` (renewed a moment ago) that
/// is due again is an error: renewing it again would not make it any less due.
fn rotate_if_due(request: RotateRequest, hold: &[String]) -> Result<Pass> {
    let at = |mut r: RotateRequest| {
        let now = OffsetDateTime::now_utc();
        r.plan.now = now;
        r.plan.at = now;
        r
    };
    let mut dry = at(request.clone());
    dry.dry_run = true;
    let planned = kubepki_rotator::rotate(&dry)?;
    if planned.plan.renewals.is_empty() && planned.resumed.is_none() {
        return Ok(Pass { next_due: next_due(&planned), wrote: None, restart: None });
    }
    let again: Vec<&str> =
        planned.plan.renewals.iter().map(|r| r.name.as_str()).filter(|n| hold.iter().any(|h| h == n)).collect();
    if !again.is_empty() {
        anyhow::bail!(
            "{} fell due again right after this agent renewed them: their lifetime is shorter than the policy's \
             margin (set --renew-before or --renew-at below it, or a longer --validity); retrying after --interval",
            again.join(", ")
        );
    }
    log::event(
        "info",
        "rotation planned",
        json!({ "renew": planned.plan.renewals.iter().map(|r| r.name.clone()).collect::<Vec<_>>() }),
    );
    let report = kubepki_rotator::rotate(&at(request.clone()))?;
    // What reads the files written and whether it must be restarted, as `rotate` reports it.
    let node = restart::NodePaths::new(&request.cert_dir, &request.kubeconfig_dir);
    let restart = report.execution.as_ref().map(|o| restart::restarts(&o.written, &node).to_json());
    // The run's plan kept only what was not due; the next due time counts the new leaves too.
    let mut dry = at(request);
    dry.dry_run = true;
    // If that plan fails, the run's own (what it kept) serves, and the next change or
    // interval plans again.
    let next = kubepki_rotator::rotate(&dry).map_or_else(|_| next_due(&report), |after| next_due(&after));
    Ok(Pass { next_due: next, wrote: Some(report), restart })
}

fn next_due(report: &RotateReport) -> Option<OffsetDateTime> {
    report.plan.kept.iter().map(|k| k.renewal_point).min()
}
