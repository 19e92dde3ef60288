//! `kubepki completion`: shell completion scripts, generated from the command line's definition.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::app::Cli;

const AFTER_HELP: &str = "\
Install:
  bash  kubepki completion bash > /etc/bash_completion.d/kubepki
  zsh   kubepki completion zsh > \"${fpath[1]}/_kubepki\"
  fish  kubepki completion fish > ~/.config/fish/completions/kubepki.fish";

/// `kubepki completion`.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

pub(crate) fn run(args: &CompletionArgs) -> Result<ExitCode> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_owned();
    clap_complete::generate(args.shell, &mut cmd, name, &mut std::io::stdout().lock());
    Ok(ExitCode::SUCCESS)
}
