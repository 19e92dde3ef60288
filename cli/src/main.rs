//! `kubepki`: own a Kubernetes cluster's PKI end to end.

mod app;
mod cluster_flags;
mod commands;
mod exit;
mod interrupted;
mod lock_flags;
mod output;
mod phases;
mod progress;
mod source_flags;
mod verify_flags;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // aws-lc-rs is the one crypto provider; installing it up front guards against a feature
    // leak bringing in a second one (an Err here means one is already installed).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    exit::quiet_on_closed_stdout();
    let cli = app::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}
