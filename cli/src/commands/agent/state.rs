//! What the agent knows, shared by its loop, its watcher and its HTTP server: the last
//! inventory reading, the last rotation, errors by source, and which errors were logged.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Result;
use kubepki_rotator::check::prometheus::escape_label_value;
use serde_json::json;
use time::OffsetDateTime;

use super::{Pass, Reading, log};

/// The state, shared.
pub(super) type Shared = Arc<Mutex<State>>;

/// Where errors come from, in `kubepki_agent_errors_total{source}`.
pub(super) const SOURCES: [&str; 3] = ["inventory", "rotation", "watch"];

/// Everything /metrics and /readyz report.
#[derive(Debug, Default)]
pub(super) struct State {
    /// The series of `check -o prometheus` from the last reading (`None`: not read yet).
    inventory: Option<String>,
    /// What the last reading found wrong (unreadable inputs, broken certificates).
    problems: Vec<String>,
    last_read: i64,
    /// Time and success of the last rotation run (a run that wrote, or failed).
    last_rotation: Option<(i64, bool)>,
    /// Whether the endpoints verified after the last run that verified any passed.
    last_verification: Option<bool>,
    errors: BTreeMap<&'static str, u64>,
    /// The errors of each source logged and not yet cleared: each is logged once.
    logged: BTreeMap<&'static str, BTreeSet<String>>,
    next_due: Option<OffsetDateTime>,
    /// Whether the last rotation pass wrote files.
    wrote: bool,
}

impl State {
    pub(super) fn new() -> Self {
        Self { errors: SOURCES.iter().map(|s| (*s, 0)).collect(), ..Self::default() }
    }

    /// Logs the errors of `source` not logged since they last went away, counts them, and
    /// forgets the ones gone (logged again if they come back).
    fn errors_now(&mut self, source: &'static str, errors: &[String]) {
        let logged = self.logged.entry(source).or_default();
        let fresh: Vec<&String> = errors.iter().filter(|e| !logged.contains(*e)).collect();
        for e in &fresh {
            log::event("error", &format!("{source} error"), json!({ "source": source, "error": e }));
        }
        *self.errors.entry(source).or_default() += fresh.len() as u64;
        let gone: Vec<String> = logged.iter().filter(|e| !errors.contains(e)).cloned().collect();
        for e in gone {
            log::event("info", &format!("{source} error resolved"), json!({ "source": source, "error": e }));
        }
        *logged = errors.iter().cloned().collect();
    }

    /// /readyz: `Ok` when the last reading found nothing wrong, else the reasons.
    pub(super) fn ready(&self) -> Result<(), String> {
        if self.inventory.is_none() {
            return Err("the inventory was not read yet".into());
        }
        if self.problems.is_empty() { Ok(()) } else { Err(self.problems.join("\n")) }
    }

    /// /metrics: the inventory's series, then the agent's own.
    pub(super) fn metrics(&self) -> String {
        let mut out = self.inventory.clone().unwrap_or_default();
        // One family: its HELP and TYPE, then its samples (`labels`, value).
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let one = |value: String| [(String::new(), value)];
        let version = format!("{{version=\"{}\"}}", escape_label_value(env!("CARGO_PKG_VERSION")));
        family("kubepki_agent_build_info", "gauge", "1, labelled with the agent's version.", &[(version, "1".into())]);
        family(
            "kubepki_agent_last_inventory_timestamp_seconds",
            "gauge",
            "When the agent last read the inventory, as a Unix timestamp.",
            &one(self.last_read.to_string()),
        );
        family(
            "kubepki_agent_inventory_problems",
            "gauge",
            "Unreadable inputs and broken certificates in the last reading (0: /readyz is 200).",
            &one(self.problems.len().to_string()),
        );
        if let Some((at, ok)) = self.last_rotation {
            family(
                "kubepki_agent_last_rotation_timestamp_seconds",
                "gauge",
                "When the agent last ran a rotation that wrote or failed, as a Unix timestamp.",
                &one(at.to_string()),
            );
            family(
                "kubepki_agent_last_rotation_success",
                "gauge",
                "1 if the last rotation was kept, 0 if it failed (and was rolled back).",
                &one(u8::from(ok).to_string()),
            );
        }
        if let Some(ok) = self.last_verification {
            family(
                "kubepki_agent_last_verification_success",
                "gauge",
                "1 if the endpoints verified after the last rotation that verified any passed, else 0.",
                &one(u8::from(ok).to_string()),
            );
        }
        if let Some(due) = self.next_due {
            family(
                "kubepki_agent_next_rotation_timestamp_seconds",
                "gauge",
                "When the next certificate falls due for renewal, as a Unix timestamp.",
                &one(due.unix_timestamp().to_string()),
            );
        }
        let errors: Vec<(String, String)> =
            self.errors.iter().map(|(source, n)| (format!("{{source=\"{source}\"}}"), n.to_string())).collect();
        family(
            "kubepki_agent_errors_total",
            "counter",
            "Errors the agent met, by source (each counted once).",
            &errors,
        );
        out
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock leaves plain data behind: still fit to serve.
    shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Locks the state for reading.
pub(super) fn read(shared: &Shared) -> MutexGuard<'_, State> {
    lock(shared)
}

/// Records a reading; logs it if anything changed.
pub(super) fn inventory_read(shared: &Shared, reading: Reading) {
    let mut s = lock(shared);
    s.last_read = OffsetDateTime::now_utc().unix_timestamp();
    // What was read, without the time of the reading (which changes every time).
    let content = |metrics: &str| {
        metrics.lines().filter(|l| !l.starts_with("kubepki_check_timestamp_seconds ")).collect::<Vec<_>>().join("\n")
    };
    let changed = s.inventory.as_deref().is_none_or(|m| content(m) != content(&reading.metrics))
        || s.problems != reading.problems;
    if changed {
        log::event(
            "info",
            "inventory read",
            json!({ "certificates": reading.certificates, "problems": reading.problems.len() }),
        );
    }
    s.errors_now("inventory", &reading.problems);
    s.inventory = Some(reading.metrics);
    s.problems = reading.problems;
}

/// Records a rotation pass; returns when to plan again (a failed run is retried after
/// `retry`).
pub(super) fn rotation_ran(shared: &Shared, pass: Result<Pass>, retry: Duration) -> Option<OffsetDateTime> {
    let mut s = lock(shared);
    let now = OffsetDateTime::now_utc();
    s.wrote = false;
    match pass {
        Ok(pass) => {
            s.errors_now("rotation", &[]);
            if let Some(report) = &pass.wrote {
                let renewed: Vec<_> = report
                    .execution
                    .iter()
                    .flat_map(|o| &o.renewed)
                    .map(|r| {
                        json!({"name": r.name, "oldSerial": r.old.as_ref().map(|c| c.serial.clone()), "newSerial": r.new.serial})
                    })
                    .collect();
                log::event(
                    "info",
                    "rotation done",
                    json!({
                        "renewed": renewed,
                        "backup": report.execution.as_ref().and_then(|o| o.backup.as_ref()).map(|b| b.dir.clone()),
                        "verified": report.verification.is_some(),
                        "restart": pass.restart,
                    }),
                );
                s.last_rotation = Some((now.unix_timestamp(), true));
                if report.verification.is_some() {
                    s.last_verification = Some(true);
                }
                s.wrote = true;
            }
            if s.next_due != pass.next_due {
                log::event(
                    "info",
                    "next rotation",
                    json!({ "due": pass.next_due.map(kubepki_rotator::text::rfc3339) }),
                );
            }
            s.next_due = pass.next_due;
            pass.next_due
        }
        Err(e) => {
            let message = format!("{e:#}");
            let verification_failed = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<kubepki_rotator::Error>(),
                    Some(kubepki_rotator::Error::VerificationFailed { .. })
                )
            }) || matches!(
                e.downcast_ref::<kubepki_rotator::Error>(),
                Some(kubepki_rotator::Error::RolledBack { cause, .. })
                    if matches!(**cause, kubepki_rotator::Error::VerificationFailed { .. })
            );
            if verification_failed {
                s.last_verification = Some(false);
            }
            s.last_rotation = Some((now.unix_timestamp(), false));
            s.errors_now("rotation", &[message]);
            let retry_at = now + retry;
            s.next_due = Some(retry_at);
            Some(retry_at)
        }
    }
}

/// Whether the last rotation pass wrote files.
pub(super) fn wrote_last(shared: &Shared) -> bool {
    lock(shared).wrote
}

/// Records (once) an error of the file watcher.
pub(super) fn watch_error(shared: &Shared, error: String) {
    lock(shared).errors_now("watch", &[error]);
}
