//! What `rotate-ca` and `rotate-sa` do once a phase has written: run `--exec`, verify, and undo
//! the phase if either fails.

use std::ffi::OsStr;

use kubepki_rotator::phases::Phase;
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
