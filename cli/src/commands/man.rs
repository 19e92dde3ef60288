//! `kubepki man`: manual pages (roff), generated from the command line's definition.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};

use crate::app::Cli;

const AFTER_HELP: &str = "\
View: kubepki man | man -l -
Install: kubepki man --out-dir /usr/local/share/man/man1 (kubepki.1 and kubepki-<command>.1)";

/// `kubepki man`.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct ManArgs {
    /// Write one page per command (kubepki.1, kubepki-audit.1, ...) into DIR instead of
    /// printing kubepki(1).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

pub(crate) fn run(args: &ManArgs) -> Result<ExitCode> {
    let cmd = Cli::command();
    match &args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write the pages into {}", dir.display()))?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd).render(&mut out).context("cannot write to standard output")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
