//! Secrets hygiene: no key material in anything kubepki prints or logs — standard output and
//! errors of every command and format, the audit log, backups' manifests — and keys 0600.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use kubepki_pki::Kubeconfig;
use kubepki_pki::PemSource;

use crate::common::*;

/// Distinctive fragments of every private key under `dir`: 40-character windows of each key's
/// base64 body, and of the base64 of each kubeconfig's embedded key.
fn key_fragments(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() && !name.starts_with("..") {
                stack.push(p);
            } else if name.ends_with(".key") && p.is_file() {
                let pem = std::fs::read_to_string(&p).unwrap();
                let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
                out.push(body[body.len() / 2..body.len() / 2 + 40].to_owned());
            } else if name.ends_with(".conf") && p.is_file() {
                let kc = Kubeconfig::from_yaml(&std::fs::read_to_string(&p).unwrap(), "k").unwrap();
                for user in kc.user_names() {
                    if let Ok(Some(PemSource::Embedded(k))) = kc.client_key(user) {
                        let b64 = base64::engine::general_purpose::STANDARD.encode(&k);
                        out.push(b64[b64.len() / 2..b64.len() / 2 + 40].to_owned());
                        let pem = String::from_utf8(k).unwrap();
                        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
                        out.push(body[body.len() / 2..body.len() / 2 + 40].to_owned());
                    }
                }
            }
        }
    }
    out
}

#[test]
fn no_command_prints_or_logs_key_material() {
    let d = TestDir::new();
    let log = d.join("audit.jsonl");
    let pki = d.join("pki");
    let mut outputs = Vec::new();
    let mut keep = |r: Run| outputs.push(format!("{}{}", r.stdout, r.stderr));
    keep(init(d.path(), &["-o", "json"]).ok());
    keep(init(d.path(), &[]).ok());
    let base = |cmd: &str| {
        let mut c = kubepki();
        c.arg(cmd).arg("--cert-dir").arg(&pki).arg("--kubeconfig-dir").arg(d.path());
        c
    };
    for args in [
        &["--all", "--dry-run", "-o", "json"][..],
        &["--all", "--audit-log", log.to_str().unwrap()],
        &["--all", "-o", "json"],
    ] {
        keep(run(base("rotate").args(args)).ok());
    }
    for format in ["table", "json", "yaml", "kubeadm", "kubeadm-json", "prometheus"] {
        keep(run(base("check").args(["-o", format])));
    }
    keep(run(kubepki().args(["tree", "--cert-dir"]).arg(&pki).arg("--kubeconfig-dir").arg(d.path())));
    keep(run(kubepki().args(["audit", "--all", "-o", "json", "--root"]).arg(d.path())));
    keep(run(kubepki()
        .args(["rotate-ca", "status", "--ca", "ca", "--cert-dir"])
        .arg(&pki)
        .arg("--kubeconfig-dir")
        .arg(d.path())));
    // Errors: a broken key, a wrong kubeconfig.
    let key = std::fs::read_to_string(pki.join("front-proxy-client.key")).unwrap();
    std::fs::remove_file(pki.join("front-proxy-client.key")).unwrap();
    std::fs::write(pki.join("front-proxy-client.key"), &key[..key.len() - 40]).unwrap();
    keep(init(d.path(), &[]));
    keep(run(base("rotate").args(["--all"])));
    std::fs::remove_file(pki.join("front-proxy-client.key")).unwrap();
    std::fs::write(pki.join("front-proxy-client.key"), &key).unwrap();
    std::fs::set_permissions(pki.join("front-proxy-client.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .unwrap();

    let fragments = key_fragments(d.path());
    assert!(fragments.len() >= 20, "{} fragments", fragments.len());
    let audit = std::fs::read_to_string(&log).unwrap();
    let manifests: Vec<String> = std::fs::read_dir(d.join("tmp"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "kubepki")
        .map(|e| std::fs::read_to_string(e.path().join("manifest.json")).unwrap())
        .collect();
    for text in outputs.iter().chain([&audit]).chain(&manifests) {
        for f in &fragments {
            assert!(!text.contains(f.as_str()), "key material printed or logged:\n{text}");
        }
        assert!(!text.contains("PRIVATE KEY-----"), "a PEM key printed or logged:\n{text}");
    }
    // Every private key and every kubeconfig kubepki wrote is 0600.
    let r = run(Command::new("find")
        .arg(d.path())
        .args(["(", "-name", "*.key", "-o", "-name", "*.conf", ")", "-type", "f", "-perm", "/077"]));
    assert_eq!(r.stdout, "", "readable by group or others");
}
