//! Crash safety: `init`, `rotate`, the conversion of the earlier linked layout and a bulk
//! `issue kubelet-serving` killed with SIGKILL at every write step (failpoints), and `rotate` at
//! random moments, leave a tree that the next kubepki command brings to the old or the new
//! state of every pair — never a mix — with no temporary file standing in for a live one,
//! every kubeconfig parsing, only kubeadm's plain files in the cert dir, and a rerun completing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kubepki_pki::{Certificate, Kubeconfig, PemSource, PrivateKey};

use crate::common::*;

/// Checks the invariants of a cert dir and kubeconfig dir after a crash (and after a rerun).
/// Returns the number of live pairs checked.
pub(crate) fn assert_consistent(dir: &Path, context: &str) -> usize {
    let pki = dir.join("pki");
    let mut pairs = 0;
    for sub in ["", "etcd"] {
        let Ok(entries) = std::fs::read_dir(pki.join(sub)) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            assert!(meta.is_file() || meta.is_dir(), "{context}: {} is not a plain file", path.display());
            if let Some(stem) = name.strip_suffix(".key").filter(|s| *s != "sa") {
                let crt = path.with_file_name(format!("{stem}.crt"));
                assert!(crt.exists(), "{context}: {} is live without its certificate", path.display());
                let cert = Certificate::from_pem_bundle(&std::fs::read(&crt).unwrap(), "c")
                    .unwrap_or_else(|e| panic!("{context}: {}: {e}", crt.display()))
                    .remove(0);
                let key = PrivateKey::from_pem(&std::fs::read_to_string(&path).unwrap(), "k")
                    .unwrap_or_else(|e| panic!("{context}: {}: {e}", path.display()));
                assert!(key.matches_spki(&cert.spki), "{context}: {} does not match its certificate", path.display());
                pairs += 1;
            } else if let Some(stem) = name.strip_suffix(".crt") {
                assert!(
                    path.with_file_name(format!("{stem}.key")).exists(),
                    "{context}: {name} is live without its key"
                );
            }
        }
    }
    if pki.join("sa.key").exists() || pki.join("sa.pub").exists() {
        let key = PrivateKey::from_pem(&std::fs::read_to_string(pki.join("sa.key")).unwrap(), "sa").unwrap();
        assert_eq!(std::fs::read_to_string(pki.join("sa.pub")).unwrap(), key.public_key_pem(), "{context}: sa.pub");
    }
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "conf") {
            continue;
        }
        let kc = Kubeconfig::from_yaml(&std::fs::read_to_string(&path).unwrap(), "kc")
            .unwrap_or_else(|e| panic!("{context}: {}: {e}", path.display()));
        let user = kc.current().unwrap().user;
        let (c, k) = match (kc.client_certificate(&user).unwrap(), kc.client_key(&user).unwrap()) {
            (Some(PemSource::Embedded(c)), Some(PemSource::Embedded(k))) => (c, k),
            // The kubelet's one-file pair (kubelet-client-current.pem): whatever it links to.
            (Some(PemSource::File(c)), Some(PemSource::File(k))) if c == k => {
                let pem = std::fs::read(&c).unwrap_or_else(|e| panic!("{context}: {}: {e}", c.display()));
                (pem.clone(), pem)
            }
            _ => panic!("{context}: {} lost its credentials", path.display()),
        };
        let cert = Certificate::from_pem_bundle(&c, "c").unwrap().remove(0);
        let key = PrivateKey::from_pem(std::str::from_utf8(&k).unwrap(), "k").unwrap();
        assert!(key.matches_spki(&cert.spki), "{context}: {} client key does not match", path.display());
        pairs += 1;
    }
    pairs
}

pub(crate) fn no_leftovers(dir: &Path, context: &str) {
    let mut stack = vec![dir.join("pki"), dir.to_path_buf()];
    if dir.join("tmp").is_dir() {
        // Backups: finished ones only.
        stack.push(dir.join("tmp"));
    }
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".kubepki-new"), "{context}: {} was left behind", e.path().display());
            assert_ne!(name, ".kubepki-journal", "{context}: the journal was left behind");
            if e.file_type().unwrap().is_dir() && d != dir.to_path_buf() && !name.starts_with('.') {
                stack.push(e.path());
            }
        }
    }
}

pub(crate) fn with_failpoint(cmd: &mut Command, point: &str) -> Run {
    run(cmd.env("KUBEPKI_FAILPOINT", point))
}

/// Whether a commit of the cert dir `<dir>/pki` passed its commit point and was cut short: its
/// journal is there, outside the cert dir.
fn journal_pending(dir: &Path) -> bool {
    dir.join("tmp/kubepki/pki/.kubepki-journal").exists()
}

/// After a kill: with no commit cut short, the tree is consistent as it is; either way, the
/// next kubepki command (here a dry run, which takes the lock and completes or discards an
/// interrupted write before it reads anything) leaves every pair old or new.
pub(crate) fn assert_recovers(dir: &Path, context: &str) {
    if !journal_pending(dir) {
        assert_consistent(dir, context);
    }
    let r = run(kubepki()
        .arg("rotate")
        .arg("--dry-run")
        .arg("--cert-dir")
        .arg(dir.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(dir));
    assert!(!journal_pending(dir), "{context}: the journal is still there after a dry run: {}", r.stderr);
    no_leftovers(dir, context);
    assert_consistent(dir, &format!("{context}, then a dry run"));
}

fn init_cmd(dir: &Path) -> Command {
    let mut c = kubepki();
    c.arg("init").arg("--cert-dir").arg(dir.join("pki")).arg("--kubeconfig-dir").arg(dir).args([
        "--node-name",
        "cp1",
        "--apiserver-advertise-address",
        "127.0.0.1",
    ]);
    c
}

fn rotate_cmd(dir: &Path) -> Command {
    let mut c = kubepki();
    c.arg("rotate").arg("--cert-dir").arg(dir.join("pki")).arg("--kubeconfig-dir").arg(dir).arg("--all");
    c
}

/// The failpoints of one transaction of `files` files.
pub(crate) fn points(files: usize) -> Vec<String> {
    let mut v: Vec<String> =
        ["commit:begin", "commit:staged", "commit:journaled", "commit:renamed-all"].map(String::from).to_vec();
    v.extend((1..=files).map(|n| format!("commit:renamed-one@{n}")));
    v
}

#[test]
fn init_killed_at_every_write_step_is_consistent_and_completes() {
    let mut kills = 0;
    // 10 pairs in pki/ and pki/etcd/, sa.key and sa.pub, 5 kubeconfigs.
    for point in points(27) {
        let d = TestDir::new();
        let r = with_failpoint(&mut init_cmd(d.path()), &point);
        assert_eq!(r.code, -1, "{point}: the failpoint did not fire: {}", r.stderr);
        kills += 1;
        assert_recovers(d.path(), &format!("after a kill at {point}"));
        run(&mut init_cmd(d.path())).ok();
        no_leftovers(d.path(), &point);
        assert_eq!(assert_consistent(d.path(), &format!("rerun after {point}")), 15, "{point}");
        // And the tree is now complete: a third run writes nothing.
        let again = run(&mut init_cmd(d.path())).ok();
        assert!(again.stdout.contains("nothing written"), "{point}: {}", again.stdout);
    }
    assert_eq!(kills, 31);
}

#[test]
fn rotate_killed_at_every_write_step_is_consistent_and_completes() {
    let base = TestDir::new();
    init(base.path(), &[]).ok();
    let mut kills = 0;
    // The backup (a new directory, staged whole) comes first, then the rotation's transaction
    // (7 pairs, 5 kubeconfigs).
    let backup = ["newdir:written", "newdir:durable", "newdir:renamed"].map(String::from);
    for point in backup.into_iter().chain(points(19)) {
        let d = TestDir::new();
        std::fs::remove_dir(d.path()).unwrap();
        assert_eq!(run(Command::new("cp").arg("-a").arg(base.path()).arg(d.path())).code, 0);
        let r = with_failpoint(&mut rotate_cmd(d.path()), &point);
        if r.code == 0 {
            // renamed-one@n beyond the last rename: nothing to kill.
            continue;
        }
        assert_eq!(r.code, -1, "{point}: {}", r.stderr);
        kills += 1;
        assert_recovers(d.path(), &format!("rotate killed at {point}"));
        // The next run (cron's, with the default policy) completes the interrupted write.
        run(kubepki().arg("rotate").arg("--cert-dir").arg(d.join("pki")).arg("--kubeconfig-dir").arg(d.path())).ok();
        no_leftovers(d.path(), &point);
        assert_eq!(assert_consistent(d.path(), &format!("rerun after {point}")), 15, "{point}");
    }
    assert_eq!(kills, 26);
}

/// Lays `<dir>/pki` and `<dir>/pki/etcd` out as an earlier kubepki left them: every visible
/// name a link `..data/<name>`, `..data` a link to a snapshot directory holding the files.
/// Returns how many links it made.
fn make_linked_layout(dir: &Path) -> usize {
    let mut links = 0;
    for sub in ["pki", "pki/etcd"] {
        let d = dir.join(sub);
        let snapshot = d.join("..1795834573019583422.4711.0");
        std::fs::create_dir(&snapshot).unwrap();
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name();
            if e.file_type().unwrap().is_file() {
                std::fs::rename(e.path(), snapshot.join(&name)).unwrap();
                std::os::unix::fs::symlink(Path::new("..data").join(&name), d.join(&name)).unwrap();
                links += 1;
            }
        }
        std::os::unix::fs::symlink("..1795834573019583422.4711.0", d.join("..data")).unwrap();
    }
    links
}

/// A tree in the earlier linked layout is turned into kubeadm's plain files by the next
/// command that takes the lock; killed after each link is replaced, every name still reads
/// its own contents and the next run finishes the job.
#[test]
fn the_linked_layout_is_converted_safely_at_every_step() {
    let base = TestDir::new();
    init(base.path(), &[]).ok();
    let plain = content_hash(&base.join("pki"));
    let links = make_linked_layout(base.path());
    // 7 pairs and sa.key, sa.pub in pki/; 4 pairs in pki/etcd/.
    assert_eq!(links, 22);
    assert_eq!(content_hash(&base.join("pki")), plain, "the fixture reads as the plain tree");
    // check reads the linked layout as it is.
    let r =
        run(kubepki().arg("check").arg("--cert-dir").arg(base.join("pki")).arg("--kubeconfig-dir").arg(base.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut kills = 0;
    for n in 1..=links {
        let point = format!("flatten:one@{n}");
        let d = TestDir::new();
        std::fs::remove_dir(d.path()).unwrap();
        assert_eq!(run(Command::new("cp").arg("-a").arg(base.path()).arg(d.path())).code, 0);
        let r = with_failpoint(
            kubepki()
                .arg("rotate")
                .arg("--dry-run")
                .arg("--cert-dir")
                .arg(d.join("pki"))
                .arg("--kubeconfig-dir")
                .arg(d.path()),
            &point,
        );
        assert_eq!(r.code, -1, "{point}: the failpoint did not fire: {}", r.stderr);
        kills += 1;
        assert_eq!(content_hash(&d.join("pki")), plain, "{point}: a name reads other contents");
        let r = run(kubepki().arg("rotate").arg("--cert-dir").arg(d.join("pki")).arg("--kubeconfig-dir").arg(d.path()));
        assert_eq!(r.code, 0, "{point}: {}", r.stderr);
        assert_eq!(content_hash(&d.join("pki")), plain, "{point}: converting changed a file");
        no_leftovers(d.path(), &point);
        assert_eq!(assert_consistent(d.path(), &point), 15, "{point}");
        for sub in ["pki", "pki/etcd"] {
            for e in std::fs::read_dir(d.join(sub)).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                assert!(!name.starts_with('.'), "{point}: {sub}/{name} is left");
                assert!(!e.file_type().unwrap().is_symlink(), "{point}: {sub}/{name} is still a link");
            }
        }
    }
    assert_eq!(kills, 22);
}

/// The kubelet serving directories under `out`: each is whole (a certificate with its matching
/// key) or absent, and nothing staged is visible. Returns how many there are.
fn assert_nodes_consistent(out: &Path, context: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(out) else { return 0 };
    let mut nodes = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let (crt, key) = (e.path().join("kubelet.crt"), e.path().join("kubelet.key"));
        let cert = Certificate::from_pem_bundle(
            &std::fs::read(&crt).unwrap_or_else(|e| panic!("{context}: {}: {e}", crt.display())),
            "c",
        )
        .unwrap()
        .remove(0);
        let key = PrivateKey::from_pem(
            &std::fs::read_to_string(&key).unwrap_or_else(|e| panic!("{context}: {}: {e}", key.display())),
            "k",
        )
        .unwrap();
        assert!(key.matches_spki(&cert.spki), "{context}: {name}'s key does not match its certificate");
        assert_eq!(cert.subject.to_string(), format!("O=system:nodes, CN=system:node:{name}"), "{context}");
        nodes += 1;
    }
    nodes
}

/// `issue kubelet-serving` for a fleet, killed at every write step. Into an existing directory
/// (a journaled transaction): each node's directory is there whole or not at all, and a rerun
/// completes the fleet. Into a new one: the directory is there whole, with every node, or not
/// at all, and a rerun writes it.
#[test]
fn bulk_kubelet_serving_killed_at_every_write_step_is_consistent_and_completes() {
    let base = TestDir::new();
    init(base.path(), &[]).ok();
    let file = base.write("nodes.txt", (0..4).map(|i| format!("worker-{i} 10.0.0.{}\n", i + 1)).collect::<String>());
    let new_dir = ["newdir:written", "newdir:durable", "newdir:renamed"].map(String::from);
    let cases = points(4).into_iter().map(|p| (p, true)).chain(new_dir.into_iter().map(|p| (p, false)));
    let mut kills = 0;
    for (n, (point, existing)) in cases.enumerate() {
        let out = base.join(&format!("serving-{n}"));
        if existing {
            std::fs::create_dir(&out).unwrap();
        }
        let cmd = || {
            let mut c = kubepki();
            c.args(["issue", "kubelet-serving", "--quiet", "--cert-dir"])
                .arg(base.join("pki"))
                .arg("--nodes")
                .arg(&file)
                .arg("--out")
                .arg(&out);
            c
        };
        let r = with_failpoint(&mut cmd(), &point);
        if r.code == 0 {
            // renamed-one@n beyond the last rename: nothing to kill.
            assert!(point.starts_with("commit:renamed-one@"), "{point}: the failpoint did not fire");
            continue;
        }
        assert_eq!(r.code, -1, "{point}: {}", r.stderr);
        kills += 1;
        // Each node is whole or absent; past the commit point some may be there already.
        let before = if out.exists() { assert_nodes_consistent(&out, &format!("killed at {point}")) } else { 0 };
        let visible = match existing {
            true => !matches!(point.as_str(), "commit:begin" | "commit:staged"),
            false => point == "newdir:renamed",
        };
        assert!(visible || before == 0, "{point}: {before} nodes before the commit point");
        assert!(!visible || existing || before == 4, "{point}: the new directory has {before} of 4 nodes");
        // The rerun completes an interrupted commit, or writes the fleet anew; a new directory
        // renamed into place before the kill was complete: the rerun finds every node there.
        let again = run(&mut cmd());
        if visible && !existing {
            assert_eq!(again.code, 2, "{point}: {}", again.stderr);
            assert!(again.stderr.contains("exists (and 3 more); nothing was written"), "{point}: {}", again.stderr);
        } else {
            assert_eq!(again.code, 0, "{point}: {}", again.stderr);
            assert_eq!(again.stdout.contains("an interrupted run was completed"), visible, "{point}: {}", again.stdout);
        }
        assert_eq!(assert_nodes_consistent(&out, &format!("rerun after {point}")), 4, "{point}");
        for dir in [&out, &base.path().to_path_buf()] {
            let staged: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.') && n.contains("kubepki"))
                .collect();
            assert!(staged.is_empty(), "{point}: left behind in {}: {staged:?}", dir.display());
        }
    }
    assert_eq!(kills, 8 + 3);
}

/// SIGKILL at 48 random moments while rotations run back to back (RSA keys make each run long
/// enough to be hit mid-way).
#[test]
fn rotate_killed_at_random_moments_is_consistent() {
    let d = TestDir::new();
    init(d.path(), &["--encryption-algorithm", "RSA-2048"]).ok();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..48 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = rotate_cmd(d.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(20_000 + seed % 400_000));
        let _ = child.kill();
        let _ = child.wait();
        assert_recovers(d.path(), &format!("random kill {i}"));
    }
    run(kubepki().arg("rotate").arg("--cert-dir").arg(d.join("pki")).arg("--kubeconfig-dir").arg(d.path())).ok();
    no_leftovers(d.path(), "random kills");
    assert_eq!(assert_consistent(d.path(), "after random kills"), 15);
}

/// Readers and writers at once: `check` (read-only, no lock) while rotations rename pairs
/// into place must never see a certificate with another key or a file half there; `init` waits for the
/// rotation's lock and then finds everything in place.
#[test]
fn check_and_init_run_safely_during_rotations() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rotations = {
        let (dir, stop) = (d.path().to_owned(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                run(&mut rotate_cmd(&dir)).ok();
                n += 1;
            }
            n
        })
    };
    let mut checks = 0;
    for i in 0..40 {
        let r = run(kubepki()
            .arg("check")
            .arg("--cert-dir")
            .arg(d.join("pki"))
            .arg("--kubeconfig-dir")
            .arg(d.path())
            .args(["-o", "json"]));
        assert_eq!(r.code, 0, "check {i} during rotations:\n{}\n{}", r.stdout, r.stderr);
        checks += 1;
        if i % 10 == 5 {
            let r = run(&mut init_cmd(d.path()));
            assert_eq!(r.code, 0, "init during rotations: {}", r.stderr);
            assert!(r.stdout.contains("nothing written"), "init found something missing: {}", r.stdout);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let n = rotations.join().unwrap();
    assert!(n >= 2 && checks == 40, "{n} rotations");
    no_leftovers(d.path(), "concurrent");
    assert_eq!(assert_consistent(d.path(), "concurrent"), 15);
}
