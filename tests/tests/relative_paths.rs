//! Relative `--cert-dir`, `--kubeconfig-dir` and other path flags: every path kubepki records —
//! `-o json`, the audit log, `$KUBEPKI_*` in hooks' environment — is absolute, so that it
//! names the same file read from any directory.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

/// Every string of `value` that names a path (holds a `/`, no space, no URL scheme), with
/// where it was found.
fn paths(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) if s.contains('/') && !s.contains(' ') && !s.contains("://") => {
            out.push((at.to_owned(), s.clone()));
        }
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| paths(v, &format!("{at}[{i}]"), out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| paths(v, &format!("{at}.{k}"), out)),
        _ => {}
    }
}

/// Asserts that every path in `json` (one document, or one per line) is absolute; returns
/// how many there were.
#[track_caller]
fn assert_absolute(what: &str, json: &str) -> usize {
    let docs: Vec<Value> = match serde_json::from_str(json) {
        Ok(v) => vec![v],
        Err(_) => {
            json.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: {e}: {l}"))).collect()
        }
    };
    let mut found = Vec::new();
    for doc in &docs {
        paths(doc, what, &mut found);
    }
    for (at, path) in &found {
        assert!(path.starts_with('/'), "{at}: a relative path {path:?}");
    }
    found.len()
}

/// `kubepki <args>` run in `dir`.
fn kubepki_in(dir: &Path, args: &[&str]) -> Run {
    run(kubepki().current_dir(dir).args(args))
}

#[test]
fn every_path_kubepki_records_is_absolute_though_the_flags_were_relative() {
    let root = TestDir::new();
    let dir = root.path();
    let dirs = ["--cert-dir", "pki", "--kubeconfig-dir", "."];
    let node = ["--node-name", "cp1", "--apiserver-advertise-address", "127.0.0.1"];
    let env_hook = |file: &str| format!("env | grep ^KUBEPKI_ >> {file}");

    let init = kubepki_in(dir, &[&["init", "-o", "json"][..], &dirs, &node].concat()).ok();
    assert!(assert_absolute("init -o json", &init.stdout) > 20, "{}", init.stdout);

    let hook = env_hook("rotate.env");
    let rotate =
        kubepki_in(
            dir,
            &[
                &[
                    "rotate",
                    "-o",
                    "json",
                    "--force",
                    "apiserver",
                    "--audit-log",
                    "audit.log",
                    "--backup-dir",
                    "backups",
                ][..],
                &["--exec", &hook],
                &dirs,
            ]
            .concat(),
        )
        .ok();
    assert!(assert_absolute("rotate -o json", &rotate.stdout) > 5, "{}", rotate.stdout);

    for phase in ["prepare", "trust", "reissue"] {
        let hook = env_hook("rotate-ca.env");
        let r = kubepki_in(
            dir,
            &[&["rotate-ca", phase, "--ca", "front-proxy-ca", "-o", "json", "--exec", &hook][..], &dirs].concat(),
        )
        .ok();
        assert!(assert_absolute(&format!("rotate-ca {phase} -o json"), &r.stdout) > 0, "{}", r.stdout);
    }

    let serving = kubepki_in(
        dir,
        &[&[
            "issue",
            "kubelet-serving",
            "--node-name",
            "w1",
            "--node-ip",
            "10.0.0.7",
            "--out",
            "serving",
            "-o",
            "json",
            "--cert-dir",
            "pki",
        ][..]]
        .concat(),
    )
    .ok();
    assert!(assert_absolute("issue kubelet-serving -o json", &serving.stdout) > 0, "{}", serving.stdout);

    // External-CA mode for the front-proxy CA: its key leaves the cert dir, csr generate writes
    // a CSR, openssl signs it, csr install puts it in place and audits it.
    let outside = TestDir::new();
    std::fs::rename(dir.join("pki/front-proxy-ca.key"), outside.join("front-proxy-ca.key")).unwrap();
    let generated = kubepki_in(
        dir,
        &[&["csr", "generate", "--out", "csrs", "-o", "json", "front-proxy-client"][..], &dirs, &node].concat(),
    )
    .ok();
    assert!(assert_absolute("csr generate -o json", &generated.stdout) >= 2, "{}", generated.stdout);
    crate::csr::sign_with(
        &dir.join("csrs/front-proxy-client.csr"),
        &dir.join("pki/front-proxy-ca.crt"),
        &outside.join("front-proxy-ca.key"),
        &dir.join("csrs/front-proxy-client.crt"),
        &["-copy_extensions", "copyall"],
    );
    let installed = kubepki_in(
        dir,
        &[
            &["csr", "install", "--from", "csrs", "-o", "json", "--audit-log", "audit.log", "--backup-dir", "backups"]
                [..],
            &dirs,
        ]
        .concat(),
    )
    .ok();
    assert!(assert_absolute("csr install -o json", &installed.stdout) > 0, "{}", installed.stdout);

    let audit = root.read("audit.log");
    assert!(audit.lines().count() >= 2, "{audit}");
    assert!(assert_absolute("audit.log", &audit) >= 2, "{audit}");
    for env in ["rotate.env", "rotate-ca.env"] {
        let vars = root.read(env);
        for line in vars.lines() {
            let (name, value) = line.split_once('=').unwrap();
            if value.contains('/') {
                assert!(value.starts_with('/'), "{env}: {name} is relative: {value}");
            }
        }
    }
    assert!(root.read("rotate.env").contains(&format!("KUBEPKI_BACKUP_DIR={}/backups/", dir.display())));
}
