//! The hook a run executes once it has written (`--exec`): a shell command line.

use std::ffi::OsStr;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// A command line run through `sh -c` after a run wrote (to restart or reload what reads the
/// files), with the run's facts in its environment. Its standard input is empty; its output is
/// the caller's.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Hook {
    /// The command line, as `sh -c` takes it.
    pub command: String,
}

impl Hook {
    /// A hook running `command` with `sh -c`.
    pub fn shell(command: impl Into<String>) -> Self {
        Self { command: command.into() }
    }

    /// Runs the command with `env` added to the environment and waits for it:
    /// [`Error::HookStart`] if it cannot be started, [`Error::HookFailed`] if it exits
    /// unsuccessfully.
    pub fn run(&self, env: &[(&str, &OsStr)]) -> Result<()> {
        let status = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .status()
            .map_err(|source| Error::HookStart { command: self.command.clone(), source })?;
        if !status.success() {
            return Err(Error::HookFailed { command: self.command.clone(), status });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_sees_its_environment_and_its_exit_status_counts() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("env.txt");
        let hook = Hook::shell(format!("printf %s \"$KUBEPKI_ROTATED\" > '{}'", out.display()));
        hook.run(&[("KUBEPKI_ROTATED", OsStr::new("apiserver admin.conf"))]).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "apiserver admin.conf");

        let err = Hook::shell("exit 3").run(&[]).unwrap_err();
        assert!(matches!(err, Error::HookFailed { .. }), "{err}");
        assert_eq!(err.to_string(), "--exec \"exit 3\" failed (exit status: 3)");
    }
}
