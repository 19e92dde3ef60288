//! The hook a run executes once it has written (`--exec`): a shell command line, run in its own
//! process group so that it can be ended as a whole — by kubepki when kubepki is told to stop,
//! or by the next run when kubepki was killed while the hook ran.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A command line run through `sh -c` after a run wrote (to restart or reload what reads the
/// files), with the run's facts in its environment. Its standard input is empty; its output is
/// the caller's.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Hook {
    /// The command line, as `sh -c` takes it.
    pub command: String,
}

/// A hook's process group: its shell's process ID (the group's ID) and the shell's start time
/// (in clock ticks after boot, `/proc/<pid>/stat`), which tells the group from a later process
/// that reuses the ID.
#[derive(Clone, Copy, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessGroup {
    /// The process group ID.
    pub id: i32,
    /// The leader's start time, in clock ticks after boot.
    pub start_ticks: u64,
}

impl ProcessGroup {
    fn of(pid: u32) -> Option<Self> {
        let id = i32::try_from(pid).ok()?;
        Some(Self { id, start_ticks: start_ticks(id)? })
    }

    /// Whether the group's leader is still the process that was started (a group whose leader
    /// has exited while members live on is ended as well: its ID cannot be reused while it has
    /// members).
    fn is_ours(&self) -> bool {
        match start_ticks(self.id) {
            Some(ticks) => ticks == self.start_ticks,
            None => Pid::from_raw(self.id).is_some_and(|p| rustix::process::test_kill_process_group(p).is_ok()),
        }
    }

    /// Ends the group: SIGTERM to every member, then SIGKILL to what is left after `grace`.
    /// Whether anything was still running.
    pub fn end(&self, grace: Duration) -> bool {
        let Some(pid) = Pid::from_raw(self.id) else { return false };
        if !self.is_ours() || rustix::process::kill_process_group(pid, Signal::TERM).is_err() {
            return false;
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if rustix::process::test_kill_process_group(pid).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        true
    }
}

/// Field 22 of `/proc/<pid>/stat`: the process's start time (after the command name, which is
/// in parentheses and may hold anything).
fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
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
        self.run_recorded(env, &mut |_| Ok(()))
    }

    /// [`Self::run`], telling `started` the hook's process group before waiting for it (to
    /// record it durably: if this process is killed, the next run ends what the hook left).
    /// If `started` fails, the hook is ended and its error returned.
    ///
    /// The hook runs in its own process group. While it runs, SIGTERM, SIGINT or SIGHUP to this
    /// process end the hook's group too, and this process exits with 128 + the signal's number
    /// (what it would have without the hook; what the hook was doing is finished or undone by
    /// the next run, as after a crash). From the first hook on, those signals end the process
    /// that way at any moment — unless the process handles them itself
    /// ([`leave_signals_to_caller`]).
    pub fn run_recorded(
        &self,
        env: &[(&str, &OsStr)],
        started: &mut dyn FnMut(ProcessGroup) -> Result<()>,
    ) -> Result<()> {
        // The shell waits for a go-ahead on its standard input before it runs the command, so
        // that the group is recorded before the command does anything (and a kubepki killed
        // in between leaves nothing running); then it reads an empty standard input.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(GATE)
            .arg("sh")
            .arg(&self.command)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|source| Error::HookStart { command: self.command.clone(), source })?;
        let gate = child.stdin.take();
        let group = ProcessGroup::of(child.id());
        if let Some(g) = group {
            watch_signals(g);
            if let Err(e) = started(g) {
                // Without its go-ahead the shell exits at once, having run nothing.
                drop(gate);
                let _ = child.wait();
                RUNNING.store(0, Ordering::SeqCst);
                return Err(e);
            }
        }
        if let Some(mut gate) = gate {
            use std::io::Write as _;
            // A shell that is gone already reports it through its exit status below.
            let _ = gate.write_all(b"go\n");
        }
        let status = child.wait();
        RUNNING.store(0, Ordering::SeqCst);
        let status = status.map_err(|source| Error::HookStart { command: self.command.clone(), source })?;
        if !status.success() {
            return Err(Error::HookFailed { command: self.command.clone(), status });
        }
        Ok(())
    }
}

/// The shell that runs a hook's command once told to: `go` on its standard input (which is
/// then at its end), else it exits 125 without running anything.
const GATE: &str = r#"read -r go && [ "$go" = go ] && exec sh -c "$1"; exit 125"#;

/// The process group of the hook running now (0: none).
static RUNNING: AtomicI32 = AtomicI32::new(0);
/// Whether a terminating signal ends the process (a command line tool) or only the hook's group
/// (a long-running caller that handles the signal itself).
static EXIT_ON_SIGNAL: AtomicBool = AtomicBool::new(true);

/// For a long-running process that handles SIGTERM, SIGINT and SIGHUP itself (`kubepki
/// agent`): such a signal while a hook runs still ends the hook's process group (the hook then
/// fails and its run is rolled back), but no longer ends the process, and between hooks it is
/// left entirely to the caller.
pub fn leave_signals_to_caller() {
    EXIT_ON_SIGNAL.store(false, Ordering::SeqCst);
}
static SIGNAL_THREAD: Once = Once::new();

/// Makes `group` the one a terminating signal ends, starting the thread that waits for such
/// signals the first time.
fn watch_signals(group: ProcessGroup) {
    RUNNING.store(group.id, Ordering::SeqCst);
    SIGNAL_THREAD.call_once(|| {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered here, before the hook can be asked to stop: a signal from now on is ours.
        let Ok(runtime) = crate::runtime::shared() else { return };
        let streams = runtime.block_on(async {
            Some((
                signal(SignalKind::terminate()).ok()?,
                signal(SignalKind::interrupt()).ok()?,
                signal(SignalKind::hangup()).ok()?,
            ))
        });
        let Some((mut term, mut int, mut hup)) = streams else { return };
        std::thread::spawn(move || {
            loop {
                let signo = runtime.block_on(async {
                    tokio::select! {
                        _ = term.recv() => 15,
                        _ = int.recv() => 2,
                        _ = hup.recv() => 1,
                    }
                });
                let running = RUNNING.load(Ordering::SeqCst);
                if let Some(pid) = Pid::from_raw(running) {
                    let _ = rustix::process::kill_process_group(pid, Signal::TERM);
                }
                if EXIT_ON_SIGNAL.load(Ordering::SeqCst) {
                    std::process::exit(128 + signo);
                }
            }
        });
    });
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

    #[test]
    fn the_hook_runs_in_its_own_process_group_which_can_be_ended_whole() {
        let d = tempfile::tempdir().unwrap();
        let pids = d.path().join("pids");
        // The shell and a grandchild in the background: both in the hook's group.
        let hook = Hook::shell(format!("sleep 30 & echo $$ $! > '{}'; wait", pids.display()));
        let (tx, rx) = std::sync::mpsc::channel();
        let runner = std::thread::spawn(move || {
            hook.run_recorded(&[], &mut |g| {
                tx.send(g).unwrap();
                Ok(())
            })
        });
        let g = rx.recv().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pids.exists() || std::fs::read_to_string(&pids).unwrap().split_whitespace().count() < 2 {
            assert!(Instant::now() < deadline, "the hook did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        let text = std::fs::read_to_string(&pids).unwrap();
        let ids: Vec<i32> = text.split_whitespace().map(|p| p.parse().unwrap()).collect();
        assert_eq!(g.id, ids[0], "the group is the hook's shell");
        assert!(g.end(Duration::from_secs(5)));
        let err = runner.join().unwrap().unwrap_err();
        assert!(matches!(err, Error::HookFailed { .. }), "{err}");
        // The background sleep was in the group and is gone with it.
        let gone = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |s| s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
        };
        while !gone(ids[1]) {
            assert!(Instant::now() < deadline, "the hook's background process outlived the hook's group");
            std::thread::sleep(Duration::from_millis(20));
        }
        // A recorded group that is gone is not ended again.
        assert!(!g.end(Duration::from_millis(10)));
    }

    #[test]
    fn a_hook_whose_group_cannot_be_recorded_never_runs() {
        let d = tempfile::tempdir().unwrap();
        let ran = d.path().join("ran");
        let err = Hook::shell(format!("touch '{}'", ran.display()))
            .run_recorded(&[], &mut |_| Err(Error::InvalidRequest { field: "test", reason: "no record".into() }))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(!ran.exists(), "the hook ran although its group was not recorded");
    }

    #[test]
    fn the_hook_reads_an_empty_standard_input() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("stdin");
        Hook::shell(format!("cat > '{}'", out.display())).run(&[]).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"");
    }
}
