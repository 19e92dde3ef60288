//! Progress while kubepki waits: for the cert dir's lock another run holds (`--lock-timeout`)
//! and for an endpoint verification waits for (`--wait`, `--verify-wait`). Shown on a terminal
//! only (a pseudo-terminal from `script`), through the one progress mechanism; never into a pipe
//! nor with `-o json`.

use std::fs::File;
use std::process::Command;

use serde_json::json;

use crate::common::*;

/// `cmd` run with a pseudo-terminal for stdin, stdout and stderr (which `script` merges into
/// its stdout).
fn on_a_terminal(cmd: &str) -> Run {
    run(Command::new("script").args(["-qec", cmd, "/dev/null"]).env_remove("NO_COLOR"))
}

#[test]
fn a_held_lock_is_waited_for_with_progress_on_a_terminal_only() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({}));
    let pki = d.join("pki");
    let state = kubepki_pki::lock::state_dir(&pki);
    std::fs::create_dir_all(&state).unwrap();
    // Another run holds the lock for as long as this test runs.
    let held = File::create(state.join(kubepki_pki::lock::LOCK_NAME)).unwrap();
    held.lock().unwrap();
    let rotate = |extra: &str| {
        format!(
            "{} rotate --force apiserver --lock-timeout 2s --cert-dir {} --kubeconfig-dir {}{extra}",
            env!("CARGO_BIN_EXE_kubepki"),
            pki.display(),
            d.path().display()
        )
    };
    let before = content_hash(&pki);
    let r = on_a_terminal(&rotate(""));
    assert_ne!(r.code, 0, "{}", r.stdout);
    let waiting = format!("waiting for the lock of {} held by another kubepki run (", pki.display());
    assert!(r.stdout.contains(&waiting) && r.stdout.contains(" s of 2 s)"), "{:?}", r.stdout);
    assert!(!r.stdout.contains("\x1b[3"), "no colour: {:?}", r.stdout);

    // Piped: the error only. On a terminal with -o json: no progress either.
    let r = run(Command::new("sh").arg("-c").arg(rotate("")));
    assert_ne!(r.code, 0);
    assert!(!r.stderr.contains("waiting for") && !r.stdout.contains("waiting for"), "{}{}", r.stdout, r.stderr);
    let r = on_a_terminal(&rotate(" -o json"));
    assert_ne!(r.code, 0);
    assert!(!r.stdout.contains("waiting for"), "{:?}", r.stdout);
    assert_eq!(content_hash(&pki), before);
    drop(held);
}

#[test]
fn an_endpoint_being_waited_for_shows_progress_on_a_terminal() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({}));
    // Nothing listens there: verify waits the whole --wait for it to come up.
    let url = format!("https://127.0.0.1:{}", free_port());
    let verify = |extra: &str| {
        format!(
            "{} verify --wait 2s --apiserver {url} --cert-dir {}{extra}",
            env!("CARGO_BIN_EXE_kubepki"),
            d.join("pki").display()
        )
    };
    let r = on_a_terminal(&verify(""));
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains(&format!("waiting for {url} (")) && r.stdout.contains(" s of 2 s)"), "{:?}", r.stdout);
    let r = on_a_terminal(&verify(" -o json"));
    assert!(!r.stdout.contains("waiting for"), "{:?}", r.stdout);
}

/// The etcd lock (`--etcd-lock`) held by another client of the same etcd (etcdctl, here):
/// rotate shows that it waits for it, on a terminal, until `--lock-timeout`.
#[test]
fn a_held_etcd_lock_is_waited_for_with_progress() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    let etcd = Etcd::start(&EtcdConfig { name: "cp1", pki: &pki, client_cert_auth: true });
    let flag = d.join("holding");
    let mut holder = etcdctl_healthcheck(&etcd.client_url, &pki)
        .args(["lock", "/kubepki/lock/rotate", "--", "sh", "-c"])
        .arg(format!("touch {}; sleep 120", flag.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until etcdctl holds the lock (it runs the command only then).
    for _ in 0..600 {
        if flag.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(flag.exists(), "etcdctl never took the lock");
    let r = on_a_terminal(&format!(
        "{} rotate --force apiserver --etcd-lock {} --lock-timeout 2s --cert-dir {} --kubeconfig-dir {}",
        env!("CARGO_BIN_EXE_kubepki"),
        etcd.client_url,
        pki.display(),
        d.path().display()
    ));
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("waiting for the etcd lock \"rotate\" held by ") && r.stdout.contains(" s of 2 s)"),
        "{:?}",
        r.stdout
    );
    assert!(r.stdout.contains("gave up after waiting 2s"), "{:?}", r.stdout);
}
