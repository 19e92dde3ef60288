//! What a rotation owes after its write — its `--exec` hook and its verification — survives the
//! rotation being killed: the next run ends what the hook left running, runs the hook again and
//! verifies (the change is finished), or restores the backup when that fails (the change is
//! undone), and says which. The hook runs in its own process group, ended with kubepki.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A hook that, on the first run, records its shell's PID, starts a background sleeper (also in
/// its process group) and blocks; run again by a resuming run (`KUBEPKI_RESUMED=1`), it records
/// that and exits with `resumed_status`.
fn hook(dir: &Path, resumed_status: i32) -> String {
    let d = dir.display();
    format!(
        "if [ -n \"$KUBEPKI_RESUMED\" ]; then echo \"$KUBEPKI_ROTATED\" > '{d}/resumed'; exit {resumed_status}; fi; \
         sleep 300 & echo $! > '{d}/sleeper'; echo $$ > '{d}/hook'; wait"
    )
}

fn rotate_cmd(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = kubepki();
    cmd.arg("rotate")
        .arg("--cert-dir")
        .arg(dir.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(dir)
        .arg("--audit-log")
        .arg(dir.join("audit.jsonl"))
        .args(extra);
    cmd
}

fn wait_for(path: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()) {
            return pid;
        }
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process runs (a zombie counts as gone).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
}

fn wait_gone(pid: i32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "{what} (pid {pid}) still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn record(dir: &Path) -> PathBuf {
    dir.join("tmp/kubepki/pki/pending-rotation.json")
}

fn serial(path: &Path) -> String {
    kubepki_pki::read_certs(path).unwrap().unwrap().remove(0).serial
}

/// Starts `rotate --force apiserver` with the blocking hook and waits until the hook runs.
fn rotation_in_its_hook(dir: &Path, resumed_status: i32) -> (Child, i32, i32) {
    let child = rotate_cmd(dir, &["--force", "apiserver", "--exec", &hook(dir, resumed_status)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let hook_pid = wait_for(&dir.join("hook"));
    let sleeper = wait_for(&dir.join("sleeper"));
    assert!(record(dir).exists(), "no record of what the run owes while its hook runs");
    (child, hook_pid, sleeper)
}

#[test]
fn a_rotation_killed_during_its_hook_is_finished_by_the_next_run() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let before = serial(&d.join("pki/apiserver.crt"));
    let (mut child, hook_pid, sleeper) = rotation_in_its_hook(d.path(), 0);
    let renewed = serial(&d.join("pki/apiserver.crt"));
    assert_ne!(renewed, before, "the files are written before the hook");

    child.kill().unwrap(); // SIGKILL: kubepki cannot clean up
    child.wait().unwrap();
    // The hook's group outlived kubepki (a SIGKILL cannot be passed on)...
    assert!(alive(sleeper), "the hook's background process should still run until the next run");

    // ... and the next run, with no --exec of its own, ends it, runs the recorded hook again
    // and keeps the change.
    let r = run(&mut rotate_cmd(d.path(), &[])).ok();
    assert!(r.stdout.contains("finished the rotation interrupted at"), "{}", r.stdout);
    assert!(r.stdout.contains("renewing apiserver"), "{}", r.stdout);
    wait_gone(hook_pid, "the interrupted hook");
    wait_gone(sleeper, "the interrupted hook's background process");
    assert_eq!(std::fs::read_to_string(d.join("resumed")).unwrap().trim(), "apiserver");
    assert!(!record(d.path()).exists());
    assert_eq!(serial(&d.join("pki/apiserver.crt")), renewed);
    // Nothing more is owed.
    let r = run(&mut rotate_cmd(d.path(), &[])).ok();
    assert!(!r.stdout.contains("interrupted"), "{}", r.stdout);
}

#[test]
fn a_rotation_killed_during_its_hook_is_undone_when_the_hook_fails_again() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let before = content_hash(&d.join("pki"));
    let (mut child, _, sleeper) = rotation_in_its_hook(d.path(), 7);
    child.kill().unwrap();
    child.wait().unwrap();

    let r = run(&mut rotate_cmd(d.path(), &[])).expect_code(1);
    assert!(
        r.stderr.contains("the rotation interrupted at") && r.stderr.contains("could not be finished"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("exit status: 7"), "{}", r.stderr);
    wait_gone(sleeper, "the interrupted hook's background process");
    assert_eq!(content_hash(&d.join("pki")), before, "the backup was not restored");
    assert!(!record(d.path()).exists());
    let log = std::fs::read_to_string(d.join("audit.jsonl")).unwrap();
    let actions: Vec<String> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["renew", "restore"], "{log}");
}

#[test]
fn sigterm_during_the_hook_ends_the_hooks_process_group_with_kubepki() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let (mut child, hook_pid, sleeper) = rotation_in_its_hook(d.path(), 0);
    let kubepki_pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(kubepki_pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    wait_gone(hook_pid, "the hook");
    wait_gone(sleeper, "the hook's background process");
    // What the run owed is still recorded: the next run finishes it.
    assert!(record(d.path()).exists());
    let r = run(&mut rotate_cmd(d.path(), &[])).ok();
    assert!(r.stdout.contains("finished the rotation interrupted"), "{}", r.stdout);
}

#[test]
fn a_rotation_killed_at_any_step_after_its_write_is_finished_by_the_next_run() {
    for point in ["rotate:pending-stored", "rotate:hook-done", "rotate:verified"] {
        let d = TestDir::new();
        init(d.path(), &[]).ok();
        let marker = d.join("ran");
        let exec =
            format!("echo \"${{KUBEPKI_RESUMED:-first}}\" >> '{}'; test -n \"$KUBEPKI_BACKUP_DIR\"", marker.display());
        let r = run(rotate_cmd(d.path(), &["--force", "apiserver", "--exec", &exec]).env("KUBEPKI_FAILPOINT", point));
        assert_ne!(r.code, 0, "{point}: the failpoint did not stop the run");
        assert!(record(d.path()).exists(), "{point}: nothing recorded");
        let renewed = serial(&d.join("pki/apiserver.crt"));

        let r = run(&mut rotate_cmd(d.path(), &["-o", "json"])).ok();
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["resumed"]["state"], "finished", "{point}: {}", r.stdout);
        assert_eq!(v["resumed"]["renewed"], serde_json::json!(["apiserver"]), "{point}");
        assert!(!record(d.path()).exists(), "{point}");
        assert_eq!(serial(&d.join("pki/apiserver.crt")), renewed, "{point}");
        // The hook ran again, with the interrupted run's environment, once more than before.
        let ran = std::fs::read_to_string(&marker).unwrap_or_default();
        let want = if point == "rotate:pending-stored" { "1\n" } else { "first\n1\n" };
        assert_eq!(ran, want, "{point}");
    }
}

#[test]
fn a_dry_run_reports_an_interrupted_rotation_and_leaves_it() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let r = run(rotate_cmd(d.path(), &["--force", "apiserver", "--exec", "true"])
        .env("KUBEPKI_FAILPOINT", "rotate:pending-stored"));
    assert_ne!(r.code, 0);
    let r = run(&mut rotate_cmd(d.path(), &["--dry-run"])).ok();
    assert!(r.stdout.contains("still owes its --exec and verification"), "{}", r.stdout);
    assert!(record(d.path()).exists());
}

/// `rotate` with `extra` and the blocking hook, SIGKILLed once its hook runs.
fn killed_in_its_hook(dir: &Path, extra: &[&str]) {
    let exec = hook(dir, 0);
    let mut child = rotate_cmd(dir, &[extra, &["--exec", &exec]].concat())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&dir.join("hook"));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn the_next_run_verifies_what_the_interrupted_run_would_have_verified() {
    if !have("etcd") {
        return;
    }
    // A live etcd on the cert dir's certificates: the resumed run verifies it and keeps the
    // change.
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let etcd = Etcd::start(&EtcdConfig { name: "cp1", pki: &d.join("pki"), client_cert_auth: true });
    let url = etcd.client_url.clone();
    killed_in_its_hook(d.path(), &["--force", "etcd-server", "--verify-etcd", &url]);
    let r = run(&mut rotate_cmd(d.path(), &["-o", "json"])).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["resumed"]["state"], "finished", "{}", r.stdout);
    drop(etcd);

    // The same with the endpoint gone: verification fails, the change is undone.
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let before = content_hash(&d.join("pki"));
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    killed_in_its_hook(d.path(), &["--force", "etcd-server", "--verify-etcd", &url, "--verify-wait", "1s"]);
    let r = run(&mut rotate_cmd(d.path(), &[])).expect_code(1);
    assert!(r.stderr.contains("could not be finished") && r.stderr.contains(&port.to_string()), "{}", r.stderr);
    assert_eq!(content_hash(&d.join("pki")), before);
}

#[test]
fn any_writing_command_finishes_an_interrupted_rotation_first() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let (mut child, _, sleeper) = rotation_in_its_hook(d.path(), 0);
    child.kill().unwrap();
    child.wait().unwrap();
    // `init` (here with nothing to do) ends the leftover hook, runs it again and keeps the change.
    let r = init(d.path(), &[]).ok();
    assert!(r.stderr.contains("finished the rotation interrupted at"), "{}", r.stderr);
    wait_gone(sleeper, "the interrupted hook's background process");
    assert!(d.join("resumed").exists());
    assert!(!record(d.path()).exists());
}

#[test]
fn recover_finishes_an_interrupted_rotation_before_it_writes() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let (mut child, _, sleeper) = rotation_in_its_hook(d.path(), 0);
    child.kill().unwrap();
    child.wait().unwrap();
    let r = run(kubepki()
        .arg("recover")
        .arg("--cert-dir")
        .arg(d.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(d.path())
        .arg("--kubelet-dir")
        .arg(d.join("no-kubelet")))
    .ok();
    assert!(r.stderr.contains("finished the rotation interrupted at"), "{}", r.stderr);
    wait_gone(sleeper, "the interrupted hook's background process");
    assert!(d.join("resumed").exists());
    assert!(!record(d.path()).exists());
}
