//! Failures as the operator sees them: one line naming what is at fault, its cause and the fix,
//! and the exit code docs/cli.md's table gives for the situation.

use crate::common::*;

#[test]
fn an_unreachable_etcd_lock_endpoint_is_one_line_naming_it_the_cause_and_the_fix() {
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    // A port nobody listens on: the connection is refused.
    let endpoint = format!("https://127.0.0.1:{}", free_port());
    let before = tree_hash(dir.path());
    let r = run(kubepki()
        .arg("rotate")
        .arg("--cert-dir")
        .arg(dir.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(dir.path())
        .args(["--force", "apiserver", "--etcd-lock", &endpoint]))
    .expect_code(1);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    let line = lines[0];
    assert!(line.starts_with(&format!("error: etcd lock at {endpoint}: ")), "{line}");
    assert!(line.contains("Connection refused"), "no cause: {line}");
    assert!(line.contains("--etcd-lock") && line.contains("apiserver-etcd-client.crt"), "no fix: {line}");
    for dump in ["Os {", "kind:", "source:", "tonic", "ConnectError", "Status {"] {
        assert!(!line.contains(dump), "a debug dump ({dump}): {line}");
    }
    assert_eq!(tree_hash(dir.path()), before, "the failed run changed the tree");
}
