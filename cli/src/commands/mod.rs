//! One module per subcommand.

pub(crate) mod agent;
pub(crate) mod audit;
pub(crate) mod check;
pub(crate) mod completion;
pub(crate) mod csr;
pub(crate) mod init;
pub(crate) mod issue;
pub(crate) mod kubeconfig;
pub(crate) mod man;
pub(crate) mod recover;
pub(crate) mod rotate;
pub(crate) mod rotate_ca;
pub(crate) mod rotate_sa;
pub(crate) mod sa;
pub(crate) mod tree;
pub(crate) mod verify;

use std::process::ExitCode;

use crate::app::{Cli, Command};

/// Runs the parsed command line; `Ok` carries the exit code of a command that decides its own.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(args) => init::run(&args),
        Command::Issue(args) => issue::run(&args),
        Command::Kubeconfig(args) => kubeconfig::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Rotate(args) => rotate::run(&args),
        Command::Recover(args) => recover::run(&args),
        Command::RotateCa(args) => rotate_ca::run(&args),
        Command::RotateSa(args) => rotate_sa::run(&args),
        Command::Sa(args) => sa::run(&args),
        Command::Csr(args) => csr::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Agent(args) => agent::run(&args),
        Command::Tree(args) => tree::run(&args),
        Command::Completion(args) => completion::run(&args),
        Command::Man(args) => man::run(&args),
    }
}
