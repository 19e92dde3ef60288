//! Helpers shared by the test modules.

use std::path::Path;
use std::process::Command;

pub(crate) use kubepki_tests::*;

/// The `kubepki` binary under test.
pub(crate) fn kubepki() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubepki"));
    cmd.env_remove("KUBECONFIG").env("NO_COLOR", "1");
    cmd
}

/// `kubepki init` into `<dir>/pki` and `<dir>` for node `cp1` on 127.0.0.1, plus `extra`.
pub(crate) fn init(dir: &Path, extra: &[&str]) -> Run {
    run(kubepki()
        .arg("init")
        .arg("--cert-dir")
        .arg(dir.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(dir)
        .args(["--node-name", "cp1", "--apiserver-advertise-address", "127.0.0.1"])
        .args(extra))
}
