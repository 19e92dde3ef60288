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
        E::Read { .. } | E::Write { .. } | E::Crypto { .. } | E::Locked { .. } => FAILURE,
        _ => INPUT,
    }
}

/// Prints `error: <chain>` to stderr and returns the exit code.
pub(crate) fn report(err: &anyhow::Error) -> ExitCode {
    let code = code_of(err);
    let msg = match err.downcast_ref::<CodedError>() {
        Some(c) => format!("{:#}", c.error),
        None => format!("{err:#}"),
    };
    eprintln!("error: {msg}");
    ExitCode::from(code)
}
