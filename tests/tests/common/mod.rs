//! Helpers shared by the test modules.

use std::path::Path;
use std::process::Command;

pub(crate) use kubepki_tests::*;
pub(crate) use writer::{Writer, progress};

mod writer;

/// The `kubepki` binary under test.
pub(crate) fn kubepki() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kubepki"));
    cmd.env_remove("KUBECONFIG").env("NO_COLOR", "1");
    cmd
}

/// What `kubepki <args>` prints with stdout on a terminal (`script` makes one), `NO_COLOR` as
/// given (unset for `None`), `HOME` at `home`.
pub(crate) fn on_a_terminal(args: &str, home: &Path, no_color: Option<&str>) -> String {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_kubepki"));
    let mut c = Command::new("script");
    c.args(["-qec", &command, "/dev/null"]).env_remove("NO_COLOR").env_remove("KUBECONFIG").env("HOME", home);
    if let Some(v) = no_color {
        c.env("NO_COLOR", v);
    }
    run(&mut c).stdout
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

/// The certificate a TLS endpoint serves (fetched with openssl s_client).
pub(crate) fn served(url: &str) -> kubepki_pki::Certificate {
    let host = url.trim_start_matches("https://");
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(format!("openssl s_client -connect {host} -showcerts </dev/null 2>/dev/null")));
    let pem = out.stdout;
    let begin = pem.find("-----BEGIN CERTIFICATE-----").unwrap_or_else(|| panic!("{url} served nothing: {pem}"));
    let end = pem[begin..].find("-----END CERTIFICATE-----").unwrap() + begin + 25;
    kubepki_pki::Certificate::from_pem_bundle(&pem.as_bytes()[begin..end], url).unwrap().remove(0)
}
