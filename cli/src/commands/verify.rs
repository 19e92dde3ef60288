//! `kubepki verify` (being built).

use std::process::ExitCode;

use clap::Args;

/// `kubepki verify`.
#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {}

pub(crate) fn run(_args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`kubepki verify` is not implemented yet")
}
