//! `kubepki check` (being built).

use std::process::ExitCode;

use clap::Args;

/// `kubepki check`.
#[derive(Args, Debug)]
pub(crate) struct CheckArgs {}

pub(crate) fn run(_args: &CheckArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`kubepki check` is not implemented yet")
}
