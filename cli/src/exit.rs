//! Exit codes and error reporting.

use std::process::ExitCode;

/// The operation failed at run time (an I/O error, a lock held elsewhere, a failed check).
pub(crate) const FAILURE: u8 = 1;
/// The input is wrong (a flag, a config file, an existing file that does not fit); nothing
/// was changed.
pub(crate) const INPUT: u8 = 2;

/// An error with the exit code it maps to.
#[derive(Debug)]
pub(crate) struct CodedError {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
}

impl std::fmt::Display for CodedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for CodedError {}

/// Wraps an error with an explicit exit code.
pub(crate) fn coded(code: u8, error: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(CodedError { code, error: error.into() })
}

/// The exit code for an error: explicit if coded, else by the kind of pki error in the chain
/// (input problems are 2, everything else 1).
pub(crate) fn code_of(err: &anyhow::Error) -> u8 {
    if let Some(c) = err.downcast_ref::<CodedError>() {
        return c.code;
    }
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<kubepki_pki::Error>() {
            return pki_code(e);
        }
        if let Some(e) = cause.downcast_ref::<kubepki_rotator::Error>() {
            use kubepki_rotator::Error as E;
            return match e {
                E::Pki(e) => pki_code(e),
                E::UnknownTarget { .. }
                | E::ExternalCa { .. }
                | E::NeedsIdentity { .. }
                | E::Missing { .. }
                | E::InvalidEndpoint { .. }
                | E::CaRotation { .. }
                | E::SaRotation { .. }
                | E::InvalidRequest { .. }
                | E::Config { .. }
                | E::Csr { .. } => INPUT,
                _ => FAILURE,
            };
        }
    }
    FAILURE
}

fn pki_code(e: &kubepki_pki::Error) -> u8 {
    use kubepki_pki::Error as E;
    match e {
        // A file the command needs to read that does not exist is the input's fault (a path
        // given wrong, a cert dir not initialized): 2, as for an invalid file. Other read
        // errors (permissions, I/O) are failures at run time.
        E::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => INPUT,
        E::Read { .. } | E::Write { .. } | E::Crypto { .. } | E::Locked { .. } => FAILURE,
        _ => INPUT,
    }
}

/// The status of a command whose standard output was closed by its reader (`kubepki man |
/// head`): 128 + SIGPIPE, what a shell reports for a Unix tool killed by SIGPIPE.
pub(crate) const CLOSED_STDOUT: u8 = 128 + 13;

/// Ends the process quietly when its standard output's reader has gone.
///
/// The one mechanism for closed pipes. Rust starts every program with SIGPIPE ignored, so a
/// write to a closed pipe fails with `EPIPE` instead of killing the process; restoring the
/// default disposition would need `unsafe` (forbidden in this workspace). So a broken pipe is
/// handled where it surfaces, in two places that share [`closed_stdout`]: a fallible write
/// returns `ErrorKind::BrokenPipe` up to [`report`], and `println!` (and clap's generators,
/// which `expect` their writes) panic — this panic hook asks the kernel whether stdout's
/// reader has gone (`poll` reports `POLLERR` on a pipe without readers) and, if so, exits
/// with [`CLOSED_STDOUT`] and no message. Any other panic keeps the default report.
pub(crate) fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if stdout_reader_gone() {
            closed_stdout();
        }
        default(info);
    }));
}

/// Whether standard output is a pipe (or socket) whose reader has closed it.
fn stdout_reader_gone() -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(&stdout, PollFlags::OUT)];
    let zero = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
    poll(&mut fds, Some(&zero)).is_ok() && fds[0].revents().contains(PollFlags::ERR)
}

/// Exits at once with [`CLOSED_STDOUT`], printing nothing: the reader wanted no more.
fn closed_stdout() -> ! {
    std::process::exit(i32::from(CLOSED_STDOUT))
}

/// Whether an error is a write to a standard output whose reader has gone.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
        && stdout_reader_gone()
}

/// Prints `error: <chain>` to stderr and returns the exit code; a closed standard output ends
/// the process quietly instead (see [`quiet_on_closed_stdout`]).
pub(crate) fn report(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        closed_stdout();
    }
    let code = code_of(err);
    let msg = match err.downcast_ref::<CodedError>() {
        Some(c) => format!("{:#}", c.error),
        None => format!("{err:#}"),
    };
    eprintln!("error: {msg}");
    ExitCode::from(code)
}
