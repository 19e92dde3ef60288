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

/// The rows of docs/cli.md's "By command and situation" table: (command, situation, code).
fn documented_codes() -> Vec<(String, String, i32)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md")).unwrap();
    let (_, section) = doc.split_once("### By command and situation").expect("docs/cli.md has the table");
    let mut lines = section.lines().skip_while(|l| !l.starts_with('|')).take_while(|l| l.starts_with('|'));
    let cells = |l: &str| l.trim().trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect::<Vec<_>>();
    let header = cells(lines.next().unwrap());
    let mut rows = Vec::new();
    for line in lines.skip(1) {
        let row = cells(line);
        assert_eq!(row.len(), header.len(), "{line}");
        let command = row[0].trim_matches('`').to_owned();
        for (situation, code) in header.iter().zip(&row).skip(1) {
            if code != "—" {
                rows.push((command.clone(), situation.clone(), code.parse().unwrap_or_else(|_| panic!("{line}"))));
            }
        }
    }
    rows
}

/// `kubepki <command>` in `situation`, on the PKI of `dir` (`dir/pki`, kubeconfigs in `dir`).
/// `None` if the test knows no way to bring the situation about (the test fails then).
fn scenario(command: &str, situation: &str, dir: &TestDir) -> Option<std::process::Command> {
    let missing = dir.join("missing");
    let bad_yaml = dir.write("bad.yaml", "apiVersion: [\n");
    let mut cmd = kubepki();
    cmd.args(command.split(' '));
    let dirs = |cmd: &mut std::process::Command, cert_dir: &std::path::Path| {
        cmd.arg("--cert-dir").arg(cert_dir).arg("--kubeconfig-dir").arg(dir.path());
    };
    let node = ["--node-name", "cp1", "--apiserver-advertise-address", "127.0.0.1"];
    let lock = ["--lock-timeout", "1s"];
    let pki = dir.join("pki");
    match (command, situation) {
        ("init", "missing input file") => cmd.arg("--config").arg(&missing).args(node),
        ("init", "invalid input") => cmd.arg("--config").arg(&bad_yaml).args(node),
        ("init", "lock held") => {
            dirs(&mut cmd, &pki);
            cmd.args(node).args(lock)
        }
        ("issue", "missing input file") => {
            dirs(&mut cmd, &missing);
            cmd.arg("apiserver").args(node)
        }
        ("issue", "invalid input") | ("issue", "lock held") => {
            cmd.arg("apiserver");
            dirs(&mut cmd, &pki);
            cmd.args(node).args(lock)
        }
        ("kubeconfig user", "missing input file") => {
            dirs(&mut cmd, &missing);
            cmd.args(["--client-name", "alice"])
        }
        ("kubeconfig user", "invalid input") => {
            dirs(&mut cmd, &pki);
            cmd.args(["--client-name", ""])
        }
        ("rotate", "missing input file") => {
            dirs(&mut cmd, &missing);
            &mut cmd
        }
        ("rotate", "invalid input") => {
            dirs(&mut cmd, &pki);
            cmd.arg("--config").arg(&bad_yaml)
        }
        ("rotate", "lock held") => {
            dirs(&mut cmd, &pki);
            cmd.args(["--force", "apiserver"]).args(lock)
        }
        ("rotate", "partial failure") => {
            dirs(&mut cmd, &pki);
            cmd.args(["--force", "apiserver", "--exec", "false"])
        }
        ("rotate", "nothing found") => {
            dirs(&mut cmd, &pki);
            &mut cmd
        }
        ("recover", _) => {
            dirs(&mut cmd, if situation == "missing input file" { &missing } else { &pki });
            cmd.arg("--kubelet-dir").arg(&missing);
            match situation {
                "invalid input" => cmd.args(["--ca-validity", "bogus"]),
                "lock held" => cmd.args(lock),
                // This node's files are recovered (nothing was due), then etcd cannot be reached.
                "partial failure" => cmd
                    .args(["--nodes-from-etcd", &format!("https://127.0.0.1:{}", free_port())])
                    .arg("--out")
                    .arg(dir.join("workers")),
                _ => &mut cmd,
            }
        }
        ("rotate-ca", "missing input file") => {
            cmd.args(["prepare", "--ca", "front-proxy-ca"]);
            dirs(&mut cmd, &missing);
            &mut cmd
        }
        ("rotate-ca", "invalid input") => {
            cmd.args(["prepare", "--ca", "bogus-ca"]);
            dirs(&mut cmd, &pki);
            &mut cmd
        }
        ("rotate-ca", "lock held") => {
            cmd.args(["prepare", "--ca", "front-proxy-ca"]);
            dirs(&mut cmd, &pki);
            cmd.args(lock)
        }
        ("rotate-sa", "missing input file") => {
            cmd.arg("prepare");
            dirs(&mut cmd, &missing);
            &mut cmd
        }
        ("rotate-sa", "invalid input") => {
            cmd.args(["prepare", "--encryption-algorithm", "DSA-1024"]);
            dirs(&mut cmd, &pki);
            &mut cmd
        }
        ("rotate-sa", "lock held") => {
            cmd.arg("prepare");
            dirs(&mut cmd, &pki);
            cmd.args(lock)
        }
        ("rotate-sa", "partial failure") => {
            run(kubepki()
                .args(["rotate-sa", "prepare", "--cert-dir"])
                .arg(&pki)
                .arg("--kubeconfig-dir")
                .arg(dir.path()))
            .ok();
            cmd.arg("trust");
            dirs(&mut cmd, &pki);
            cmd.args(["--exec", "false"])
        }
        ("sa jwks", "missing input file") => cmd.arg(&missing),
        ("sa jwks", "invalid input") => cmd.arg(&bad_yaml),
        ("csr install", "missing input file") => {
            dirs(&mut cmd, &pki);
            cmd.arg("--from").arg(&missing)
        }
        ("csr install", "invalid input") | ("csr install", "lock held") => {
            let from = dir.join("signed");
            std::fs::create_dir_all(&from).unwrap();
            std::fs::copy(pki.join("apiserver.crt"), from.join("apiserver.crt")).unwrap();
            dirs(&mut cmd, &pki);
            cmd.arg("--from").arg(&from).args(lock)
        }
        ("check" | "tree", _) => {
            let empty = dir.join("empty");
            std::fs::create_dir_all(&empty).unwrap();
            let cert_dir = match situation {
                "missing input file" => missing.clone(),
                "nothing found" => empty.clone(),
                "partial failure" => {
                    // One unreadable certificate among readable ones.
                    let broken = dir.join("broken");
                    std::fs::create_dir_all(&broken).unwrap();
                    std::fs::write(broken.join("front-proxy-client.crt"), "not a certificate\n").unwrap();
                    for f in ["ca.crt", "apiserver.crt"] {
                        std::fs::copy(pki.join(f), broken.join(f)).unwrap();
                    }
                    broken
                }
                _ => pki.clone(),
            };
            cmd.arg("--cert-dir").arg(&cert_dir).arg("--kubeconfig-dir").arg(&empty);
            cmd.arg("--kubelet-pki-dir").arg(&empty);
            if situation == "invalid input" {
                cmd.args(["--at", "yesterday-ish"]);
            }
            &mut cmd
        }
        ("audit", "missing input file") => cmd.arg("--root").arg(&missing),
        ("audit", "invalid input") => cmd.arg("--root").arg(dir.path()).args(["--max-leaf-lifetime", "-5h"]),
        ("audit", "nothing found") => {
            let empty = dir.join("empty-root");
            std::fs::create_dir_all(&empty).unwrap();
            cmd.arg("--root").arg(&empty)
        }
        ("verify", "missing input file") => {
            cmd.arg("--cert-dir").arg(&missing).args(["--etcd", &format!("https://127.0.0.1:{}", free_port())])
        }
        ("verify", "invalid input") => cmd.arg("--cert-dir").arg(&pki),
        // Both stop before the agent listens; what it meets later it reports and stays up.
        ("agent", "missing input file" | "invalid input") => {
            dirs(&mut cmd, &pki);
            let config = if situation == "invalid input" { &bad_yaml } else { &missing };
            cmd.args(["--listen", &format!("127.0.0.1:{}", free_port())]).arg("--config").arg(config)
        }
        _ => return None,
    };
    Some(cmd)
}

/// A `kubepki rotate` that holds `dir`'s cert-dir lock until dropped: its `--exec` hook waits
/// for a release file (bounded, in case the test dies first).
struct LockHolder {
    child: std::process::Child,
    release: std::path::PathBuf,
}

impl LockHolder {
    fn start(dir: &TestDir) -> Self {
        let (held, release) = (dir.join("held"), dir.join("release"));
        let hook = format!(
            "touch {}; i=0; while [ ! -e {} ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done",
            held.display(),
            release.display()
        );
        let mut child = kubepki()
            .arg("rotate")
            .arg("--cert-dir")
            .arg(dir.join("pki"))
            .arg("--kubeconfig-dir")
            .arg(dir.path())
            .args(["--force", "apiserver", "--exec", &hook])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        while !held.exists() {
            assert!(child.try_wait().unwrap().is_none(), "the lock holder ended before its hook ran");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { child, release }
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        std::fs::write(&self.release, "").unwrap();
        let _ = self.child.wait();
    }
}

#[test]
fn every_command_exits_as_the_exit_code_table_of_docs_cli_md_says() {
    let rows = documented_codes();
    assert!(rows.len() >= 30, "{rows:?}");
    let mut failures = Vec::new();
    for (command, situation, code) in &rows {
        let dir = TestDir::new();
        init(dir.path(), &[]).ok();
        let Some(mut cmd) = scenario(command, situation, &dir) else {
            failures.push(format!("{command} / {situation}: the test has no scenario"));
            continue;
        };
        let holder = (situation == "lock held").then(|| LockHolder::start(&dir));
        let before = tree_hash(&dir.join("pki"));
        let r = run(&mut cmd);
        drop(holder);
        if r.code != *code {
            failures.push(format!("{command} / {situation}: exit {} (documented {code}): {}", r.code, r.stderr.trim()));
        }
        // An input error or a held lock changes nothing.
        if (*code == 2 && !["check", "audit"].contains(&command.as_str())) || situation == "lock held" {
            let after = tree_hash(&dir.join("pki"));
            if situation != "lock held" && after != before {
                failures.push(format!("{command} / {situation}: the cert dir changed"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
