//! What `rotate-ca` and `rotate-sa` share: once a phase has written, run `--exec`, verify, and
//! undo the phase if either fails; and how a phase, an abort and the history are shown.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use kubepki_rotator::phases::{Phase, PhaseRecord};
use serde_json::{Value, json};

use crate::output::{self, Format};
use kubepki_rotator::rotation::{AfterWrite, Changes, Hook, Verification};
use kubepki_rotator::verify::Target;

/// Runs the phase's hook, then verifies `probes`; if either fails, `changes` are undone
/// ([`kubepki_rotator::Error::RolledBack`]). After `prepare` nothing live changed, so there
/// is nothing to undo and a failing hook is not an error (one that cannot start is).
pub(crate) fn after_phase(
    phase: Phase,
    hook: Option<&Hook>,
    env: &[(&str, &OsStr)],
    changes: &Changes<'_>,
    verification: &Verification,
    probes: &[Target],
) -> Result<(), kubepki_rotator::Error> {
    if phase == Phase::Prepared {
        if let Some(hook) = hook
            && let Err(e @ kubepki_rotator::Error::HookStart { .. }) = hook.run(env)
        {
            return Err(e);
        }
        return Ok(());
    }
    AfterWrite { hook, env, verification, targets: probes }.keep_or_roll_back(changes).map(drop)
}

/// A phase done, as a table: `[tag] <subject>phase P done`, the `lines` (what it did, notes),
/// the numbered `restart` list under `restart_title`, then `next` (unless empty: the caller
/// prints more first).
pub(crate) fn print_done(
    tag: &str,
    subject: &str,
    phase: Phase,
    lines: &[String],
    restart_title: &str,
    restart: &[String],
    next: &str,
) {
    println!("[{tag}] {subject}phase {} done", phase.as_str());
    for line in lines {
        println!("[{tag}] {line}");
    }
    if !restart.is_empty() {
        println!("[{tag}] {restart_title}");
        for (i, r) in restart.iter().enumerate() {
            println!("  {}. {r}", i + 1);
        }
    }
    if !next.is_empty() {
        println!("[{tag}] {next}");
    }
}

/// What an abort restored and where the rotation is now; `abandoned` says what an abort of
/// `prepare` removed.
pub(crate) fn print_abort(
    format: Format,
    tag: &str,
    subject: &str,
    back_to: Option<Phase>,
    restored: &[PathBuf],
    abandoned: &str,
) -> anyhow::Result<()> {
    match format {
        Format::Json => output::print_json(&json!({"phase": back_to.map(Phase::as_str), "restored": restored}))?,
        Format::Table => {
            for r in restored {
                println!("[{tag}] restored {}", r.display());
            }
            match back_to {
                Some(p) => println!("[{tag}] {subject}back at phase {}", p.as_str()),
                None => println!("[{tag}] {subject}rotation abandoned; {abandoned}"),
            }
        }
    }
    Ok(())
}

/// The history of a rotation in `-o json`.
pub(crate) fn history_json(history: &[PhaseRecord]) -> Value {
    history.iter().map(|h| json!({"phase": h.phase.as_str(), "time": h.time, "backups": h.backups})).collect()
}

/// The cert dir a phase works on exists: else an input error (2), before the lock is taken.
pub(crate) fn require_cert_dir(cert_dir: &Path) -> anyhow::Result<()> {
    if !cert_dir.is_dir() {
        anyhow::bail!(crate::exit::coded(
            crate::exit::INPUT,
            anyhow::anyhow!("{} is not a directory (the cert dir)", cert_dir.display())
        ));
    }
    Ok(())
}
