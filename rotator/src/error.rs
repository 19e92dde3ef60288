//! The rotator's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the rotator.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error of the CA model (reading, parsing, issuing, writing).
    #[error(transparent)]
    Pki(#[from] kubepki_pki::Error),

    /// A path named explicitly does not exist.
    #[error("{} does not exist", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
}

/// The rotator's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
