//! `kubepki agent`: the real binary run as an agent on a tree with very short leaves, scraped
//! over HTTP, renewing what falls due while a real etcd on those certificates keeps answering,
//! stopped with SIGTERM in the middle of a rotation, and kept up by bad input.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

/// A running agent: its stderr (JSON lines) collected as it comes; killed when dropped.
struct Agent {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Agent {
    /// `kubepki agent --listen 127.0.0.1:<free port> <args>`, once it answers /healthz.
    fn start(args: &[&str]) -> Self {
        let agent = Self::spawn(args);
        agent.wait_until("/healthz answers", || agent.try_get("/healthz").is_some_and(|(s, _)| s == 200));
        agent
    }

    /// `kubepki agent --listen 127.0.0.1:<free port> <args>`, started.
    fn spawn(args: &[&str]) -> Self {
        let port = free_port();
        let mut child = kubepki()
            .arg("agent")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self { child, port, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The events logged so far (every line is a JSON object with time, level and event).
    fn events(&self) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l}: {e}")))
            .collect()
    }

    fn count(&self, event: &str) -> usize {
        self.events().iter().filter(|e| e["event"] == event).count()
    }

    fn try_get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: agent\r\n\r\n").ok()?;
        let mut response = String::new();
        s.read_to_string(&mut response).ok()?;
        let status = response.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, response.split_once("\r\n\r\n")?.1.to_owned()))
    }

    fn get(&self, path: &str) -> (u16, String) {
        self.try_get(path).unwrap_or_else(|| panic!("GET {path} failed; agent log:\n{}", self.log()))
    }

    /// Waits (up to two minutes: a bound on a hang, not a measurement) until `done`.
    #[track_caller]
    fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(120), "{what}: not after 120 s; agent log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, and the exit code.
    fn terminate(mut self) -> (i32, String) {
        assert_eq!(run(Command::new("kill").args(["-TERM", &self.child.id().to_string()])).code, 0);
        let status = self.child.wait().unwrap();
        // The reader thread ends with the pipe.
        std::thread::sleep(Duration::from_millis(100));
        (status.code().unwrap_or(-1), self.log())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the sample `series` (the whole series, labels included) in `metrics`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The serial in the `kubepki_certificate_expiration_timestamp_seconds` series of `name`.
fn serial_in(metrics: &str, name: &str) -> Option<String> {
    let line = metrics.lines().find(|l| {
        l.starts_with("kubepki_certificate_expiration_timestamp_seconds{") && l.contains(&format!("name=\"{name}\","))
    })?;
    Some(line.split("serial=\"").nth(1)?.split('"').next()?.to_owned())
}

fn serial_of(path: &Path) -> String {
    kubepki_pki::read_certs(path).unwrap().unwrap().remove(0).serial
}

/// The agent's flags for the tree `init` made in `dir`.
fn tree_args(dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir.join("kubelet")).unwrap();
    vec![
        "--cert-dir".into(),
        dir.join("pki").display().to_string(),
        "--kubeconfig-dir".into(),
        dir.display().to_string(),
        "--kubelet-pki-dir".into(),
        dir.join("kubelet").display().to_string(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `promtool check metrics`, where promtool is installed.
fn promtool_check_metrics(metrics: &str) {
    if !have("promtool") {
        return;
    }
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin.take().unwrap().write_all(metrics.as_bytes()).unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every certificate of the cert dir that has a key holds that key's public key (openssl), and
/// `check` finds no key that does not match anywhere (kubeconfigs included).
fn every_pair_consistent(dir: &Path) {
    let pki = dir.join("pki");
    for sub in [pki.clone(), pki.join("etcd")] {
        for entry in std::fs::read_dir(&sub).unwrap() {
            let crt = entry.unwrap().path();
            let key = crt.with_extension("key");
            if crt.extension().is_none_or(|e| e != "crt") || !key.exists() {
                continue;
            }
            let of_cert = run(Command::new("openssl").args(["x509", "-noout", "-pubkey", "-in"]).arg(&crt)).ok();
            let of_key = run(Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&key)).ok();
            assert_eq!(of_cert.stdout, of_key.stdout, "{} does not hold the public key of its key", crt.display());
        }
    }
    let check = run(kubepki()
        .args(["check", "--no-defaults", "-o", "json", "--cert-dir"])
        .arg(&pki)
        .arg("--kubeconfig-dir")
        .arg(dir));
    assert!(!check.stdout.contains("key-mismatch"), "{}", check.stdout);
    assert!(!check.stdout.contains("\"key-missing\""), "{}", check.stdout);
}

/// /metrics carries every certificate series of `check -o prometheus` on the same sources and
/// the agent's own, valid for promtool; /healthz and /readyz answer 200; with --no-rotate the
/// tree is left byte for byte as it was.
#[test]
fn the_agent_serves_the_checks_series_and_its_own() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let args = tree_args(d.path());
    let before = tree_hash(d.path());
    let agent = Agent::start(&[strs(&args), vec!["--no-rotate"]].concat());
    agent.wait_until("the first reading", || agent.get("/readyz").0 == 200);
    let (status, metrics) = agent.get("/metrics");
    assert_eq!(status, 200);
    let check = run(kubepki().args(["check", "-o", "prometheus", "--no-defaults"]).args(&args));
    let series = |text: &str| -> Vec<String> {
        let mut v: Vec<String> =
            text.lines().filter(|l| l.starts_with("kubepki_certificate_")).map(str::to_owned).collect();
        v.sort();
        v
    };
    assert!(series(&check.stdout).len() >= 15, "{}", check.stdout);
    assert_eq!(series(&metrics), series(&check.stdout));
    assert_eq!(sample(&metrics, "kubepki_agent_build_info{version=\"0.1.0\"}"), Some(1.0));
    assert_eq!(sample(&metrics, "kubepki_agent_inventory_problems"), Some(0.0));
    for source in ["inventory", "rotation", "watch"] {
        assert_eq!(sample(&metrics, &format!("kubepki_agent_errors_total{{source=\"{source}\"}}")), Some(0.0));
    }
    // Nothing was rotated: no rotation series yet.
    assert!(!metrics.contains("kubepki_agent_last_rotation_success"), "{metrics}");
    promtool_check_metrics(&metrics);
    assert_eq!(agent.get("/healthz"), (200, "ok\n".into()));
    assert_eq!(agent.get("/nothing").0, 404);
    let events = agent.events();
    assert_eq!(events[0]["event"], "started");
    assert!(events.iter().all(|e| e["time"].is_string() && e["level"].is_string()));
    let (code, log) = agent.terminate();
    assert_eq!(code, 0, "{log}");
    assert_eq!(tree_hash(d.path()), before, "a --no-rotate agent wrote into the tree");
}

/// A certificate renewed by someone else (`kubepki rotate --force apiserver`) shows in /metrics
/// through inotify, long before the hour-long --interval.
#[test]
fn a_file_replaced_by_hand_shows_in_metrics_at_once() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let args = tree_args(d.path());
    let agent = Agent::start(&[strs(&args), vec!["--no-rotate", "--interval", "1h"]].concat());
    agent.wait_until("the first reading", || agent.get("/readyz").0 == 200);
    let old = serial_of(&d.join("pki/apiserver.crt"));
    assert_eq!(serial_in(&agent.get("/metrics").1, "apiserver"), Some(old.clone()));
    run(kubepki()
        .args(["rotate", "--force", "apiserver", "--cert-dir"])
        .arg(d.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(d.path()))
    .ok();
    let new = serial_of(&d.join("pki/apiserver.crt"));
    assert_ne!(new, old);
    agent.wait_until("the new apiserver serial in /metrics", || {
        serial_in(&agent.get("/metrics").1, "apiserver").as_deref() == Some(new.as_str())
    });
}

/// inotify watches inodes: a directory deleted and made again (a restore) is watched again, so
/// a certificate replaced in it afterwards shows in /metrics at once, not at the next interval.
#[test]
fn a_directory_deleted_and_made_again_is_watched_again() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let args = tree_args(d.path());
    let agent = Agent::start(&[strs(&args), vec!["--no-rotate", "--interval", "1h"]].concat());
    agent.wait_until("the first reading", || agent.get("/readyz").0 == 200);
    let etcd = d.join("pki/etcd");
    let saved = d.join("etcd-saved");
    std::fs::rename(&etcd, &saved).unwrap();
    std::fs::create_dir(&etcd).unwrap();
    for entry in std::fs::read_dir(&saved).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), etcd.join(entry.file_name())).unwrap();
    }
    let old = serial_of(&etcd.join("server.crt"));
    agent.wait_until("the new directory watched", || {
        agent.events().iter().any(|e| e["event"] == "watching again" && e["dirs"][0] == etcd.to_str().unwrap())
    });
    // Written by hand in the new directory only (kubepki's own writes also touch the cert dir):
    // only a watch on the new inode sees it.
    let other = std::fs::read(etcd.join("peer.crt")).unwrap();
    let new = serial_of(&etcd.join("peer.crt"));
    assert_ne!(new, old);
    std::fs::write(etcd.join("server.crt"), other).unwrap();
    agent.wait_until("the new etcd-server serial in /metrics", || {
        serial_in(&agent.get("/metrics").1, "etcd-server").as_deref() == Some(new.as_str())
    });
}

/// Leaves that expire a minute after they are issued: the agent renews them before they do
/// (sleeping until they fall due), the rotation verified against a real etcd serving those
/// certificates, which answers `etcdctl` before, during and after; /metrics reports it.
#[test]
fn the_agent_renews_leaves_before_they_expire_while_etcd_answers() {
    let d = TestDir::new();
    init(d.path(), &["--cert-validity", "1m"]).ok();
    let pki = d.join("pki");
    let etcd = Etcd::start(&EtcdConfig { name: "cp1", pki: &pki, client_cert_auth: true });
    let old = kubepki_pki::read_certs(&pki.join("etcd/server.crt")).unwrap().unwrap().remove(0);
    let audit = d.join("audit.jsonl");
    let args = tree_args(d.path());
    let agent = Agent::start(
        &[
            strs(&args),
            vec!["--renew-before", "30s", "--audit-log", audit.to_str().unwrap(), "--verify-etcd", &etcd.client_url],
        ]
        .concat(),
    );
    let mut healthchecks = 0;
    agent.wait_until("a renewal in the audit log", || {
        let h = run(etcdctl_healthcheck(&etcd.client_url, &pki).args(["endpoint", "health"]));
        assert_eq!(h.code, 0, "etcdctl failed during the agent's run: {}{}", h.stdout, h.stderr);
        healthchecks += 1;
        std::fs::read_to_string(&audit).is_ok_and(|a| a.contains("\"etcd-server\""))
    });
    agent.wait_until("the rotation reported", || agent.count("rotation done") >= 1);
    let done = agent.events().into_iter().find(|e| e["event"] == "rotation done").unwrap();
    let restart = done["restart"].as_array().unwrap_or_else(|| panic!("no restart list: {done}"));
    assert!(restart.iter().any(|r| r["component"] == "etcd"), "{done}");
    let new = kubepki_pki::read_certs(&pki.join("etcd/server.crt")).unwrap().unwrap().remove(0);
    assert_ne!(new.serial, old.serial);
    assert!(new.not_after > old.not_after);
    // Renewed before the old one expired: the audit record's time is before its NotAfter.
    let record: serde_json::Value = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["name"] == "etcd-server")
        .unwrap();
    assert_eq!(record["old"]["serial"], old.serial.as_str());
    openssl_verify(&pki.join("etcd/ca.crt"), &pki.join("etcd/server.crt")).unwrap();
    let h = run(etcdctl_healthcheck(&etcd.client_url, &pki).args(["endpoint", "health"]));
    assert_eq!(h.code, 0, "{}", h.stderr);
    assert!(healthchecks > 1);
    assert_eq!(served(&etcd.client_url).serial, new.serial);
    // Not renewed again at once: the agent sleeps until the new leaves fall due.
    let metrics = agent.get("/metrics").1;
    assert_eq!(sample(&metrics, "kubepki_agent_last_rotation_success"), Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, "kubepki_agent_last_verification_success"), Some(1.0), "{metrics}");
    let next = sample(&metrics, "kubepki_agent_next_rotation_timestamp_seconds").unwrap();
    assert!(next > old.not_after.unix_timestamp() as f64 - 30.0, "{metrics}");
    promtool_check_metrics(&metrics);
    // Every agent series the alert rules use is one the agent serves.
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/prometheus/kubepki-agent-alerts.yaml"),
    )
    .unwrap();
    let used: std::collections::BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("kubepki_agent_"))
        .collect();
    assert!(used.len() >= 4, "{used:?}");
    for family in used {
        assert!(metrics.contains(&format!("# TYPE {family} ")), "the rules use {family}, not served:\n{metrics}");
    }
    let (code, log) = agent.terminate();
    assert_eq!(code, 0, "{log}");
    every_pair_consistent(d.path());
}

/// SIGTERM while the agent rotates (at a few moments after it planned): it exits 0 having
/// finished or rolled back, every pair is consistent each time, and the next start completes.
#[test]
fn sigterm_in_the_middle_of_a_rotation_exits_0_and_leaves_every_pair_consistent() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let args = tree_args(d.path());
    let audit = d.join("audit.jsonl");
    // --renew-before longer than the lifetime: everything is due whenever the agent starts.
    let rotating = [strs(&args), vec!["--renew-before", "1000000h", "--audit-log", audit.to_str().unwrap()]].concat();
    for delay_ms in [0, 30, 120] {
        let agent = Agent::start(&rotating);
        agent.wait_until("the rotation planned", || agent.count("rotation planned") >= 1);
        std::thread::sleep(Duration::from_millis(delay_ms));
        let (code, log) = agent.terminate();
        assert_eq!(code, 0, "{log}");
        assert!(log.contains("\"event\":\"stopped\""), "{log}");
        every_pair_consistent(d.path());
    }
    let agent = Agent::start(&rotating);
    agent.wait_until("a rotation done", || agent.count("rotation done") >= 1);
    let (code, log) = agent.terminate();
    assert_eq!(code, 0, "{log}");
    every_pair_consistent(d.path());
    run(kubepki().args(["rotate", "--dry-run"]).args(&args[..4])).ok();

    // After an --exec hook ran, SIGTERM is still the agent's: it stops cleanly (exit 0) rather
    // than being ended by the hook runner's signal handling.
    let with_hook = [rotating.clone(), vec!["--exec", "true"]].concat();
    let agent = Agent::start(&with_hook);
    agent.wait_until("a rotation done", || agent.count("rotation done") >= 1);
    let (code, log) = agent.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("\"event\":\"stopped\""), "{log}");
}

/// An agent killed (SIGKILL, a failpoint) at each step of its rotation's commit: the next start
/// completes or discards the interrupted write, renews what is still due, and leaves every pair
/// consistent.
#[test]
fn an_agent_killed_in_the_middle_of_its_write_is_completed_by_the_next_start() {
    for point in ["commit:staged", "commit:journaled", "commit:renamed-one@5", "commit:renamed-all"] {
        let d = TestDir::new();
        init(d.path(), &[]).ok();
        let args = tree_args(d.path());
        let rotating = [strs(&args), vec!["--renew-before", "1000000h"]].concat();
        let mut killed = kubepki()
            .arg("agent")
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .args(&rotating)
            .env("KUBEPKI_FAILPOINT", point)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let status = killed.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "{point}: {status:?}");
        let agent = Agent::start(&rotating);
        agent.wait_until("a rotation done", || agent.count("rotation done") >= 1);
        let (code, log) = agent.terminate();
        assert_eq!(code, 0, "{point}: {log}");
        every_pair_consistent(d.path());
    }
}

/// With --tls-cert and --tls-key the endpoints are served over TLS (rustls), verified by openssl
/// against the certificate; plain HTTP gets no answer.
#[test]
fn tls_serves_the_same_endpoints() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let (cert, key) = (d.join("tls.crt"), d.join("tls.key"));
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=kubepki-agent", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert))
    .ok();
    let args = tree_args(d.path());
    let agent = Agent::spawn(
        &[strs(&args), vec!["--no-rotate", "--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]]
            .concat(),
    );
    let get = |path: &str| {
        run(Command::new("sh").arg("-c").arg(format!(
            "printf 'GET {path} HTTP/1.1\\r\\nHost: agent\\r\\n\\r\\n' | openssl s_client -connect 127.0.0.1:{} \
             -CAfile '{}' -verify_return_error -verify_ip 127.0.0.1 -quiet 2>/dev/null",
            agent.port,
            cert.display()
        )))
        .stdout
    };
    agent.wait_until("/readyz over TLS", || get("/readyz").starts_with("HTTP/1.1 200 OK"));
    let metrics = get("/metrics");
    assert!(metrics.contains("kubepki_certificate_expiration_timestamp_seconds{name=\"apiserver\""), "{metrics}");
    assert_eq!(agent.try_get("/healthz").map(|(s, _)| s), None, "plain HTTP answered on a TLS port");
    // A key that is not the certificate's: exit 2 before anything is served.
    let other = d.join("other.key");
    run(Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&other)).ok();
    let r = run(kubepki()
        .args(["agent", "--no-rotate", "--tls-cert", cert.to_str().unwrap(), "--tls-key"])
        .arg(&other)
        .args(&args));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--tls-key"), "{}", r.stderr);
}

/// Two control-plane nodes (the second joined from the first), each with its agent, sharing one
/// etcd lock: everything is due on both at once, and their rotations (each holding the lock
/// for 2 s in its --exec hook) never overlap.
#[test]
fn two_agents_sharing_an_etcd_lock_never_rotate_at_the_same_time() {
    let d = TestDir::new();
    let (cp1, cp2) = (d.join("cp1"), d.join("cp2"));
    init(&cp1, &[]).ok();
    crate::ha::join(&cp1, &cp2, "cp2");
    let etcd = Etcd::start(&EtcdConfig { name: "cp1", pki: &cp1.join("pki"), client_cert_auth: true });
    let agents: Vec<Agent> = [&cp1, &cp2]
        .iter()
        .map(|node| {
            let exec = format!(
                "echo start $(date +%s%N) >> '{w}'; sleep 2; echo end $(date +%s%N) >> '{w}'",
                w = node.join("windows").display()
            );
            let args = tree_args(node);
            Agent::start(
                &[
                    strs(&args),
                    vec!["--renew-before", "1000000h", "--etcd-lock", &etcd.client_url, "--lock-timeout", "2m"],
                    vec!["--exec", &exec],
                ]
                .concat(),
            )
        })
        .collect();
    for agent in &agents {
        agent.wait_until("a rotation done", || agent.count("rotation done") >= 1);
    }
    let (a, b) = (crate::ha::windows(&cp1), crate::ha::windows(&cp2));
    assert_eq!((a.len(), b.len()), (1, 1), "{a:?} {b:?}");
    let ((s1, e1), (s2, e2)) = (a[0], b[0]);
    assert!(e1 < s2 || e2 < s1, "the two agents held the lock at once: {a:?} {b:?}");
}

/// A port in use: exit 1, one line naming the address, nothing written.
#[test]
fn a_port_in_use_is_exit_1_with_one_line() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let args = tree_args(d.path());
    let before = tree_hash(d.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let r = run(kubepki().args(["agent", "--listen", &addr]).args(&args));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", r.stderr);
    assert!(errors[0].contains(&addr) && errors[0].contains("--listen"), "{}", r.stderr);
    assert_eq!(tree_hash(d.path()), before);
}

/// An unreadable cert dir and a broken leaf: the agent stays up, /readyz is 503 naming the
/// problem, /metrics counts it, the log names it once however many times it is read again;
/// fixed, /readyz is 200 again.
#[test]
fn bad_input_keeps_the_agent_up_and_is_reported_once() {
    let d = TestDir::new();
    let absent = d.join("nowhere/pki");
    std::fs::create_dir(d.join("kubelet")).unwrap();
    let agent = Agent::start(&[
        "--cert-dir",
        absent.to_str().unwrap(),
        "--kubeconfig-dir",
        d.path().to_str().unwrap(),
        "--kubelet-pki-dir",
        d.join("kubelet").to_str().unwrap(),
        "--interval",
        "1s",
    ]);
    agent.wait_until("/readyz 503", || agent.get("/readyz").0 == 503);
    let (_, reason) = agent.get("/readyz");
    assert!(reason.contains(absent.to_str().unwrap()), "{reason}");
    let read_at = |a: &Agent| sample(&a.get("/metrics").1, "kubepki_agent_last_inventory_timestamp_seconds").unwrap();
    let first = read_at(&agent);
    agent.wait_until("three more readings", || read_at(&agent) >= first + 3.0);
    // A reading that finds what the last one found is not logged again.
    assert_eq!(agent.count("inventory read"), 1, "{}", agent.log());
    let errors = agent.events().into_iter().filter(|e| e["level"] == "error").collect::<Vec<_>>();
    let inventory: Vec<_> = errors.iter().filter(|e| e["source"] == "inventory").collect();
    assert_eq!(inventory.len(), 1, "{}", agent.log());
    assert!(inventory[0]["error"].as_str().unwrap().contains(absent.to_str().unwrap()));
    // The rotation cannot plan either: logged once as well.
    assert_eq!(errors.iter().filter(|e| e["source"] == "rotation").count(), 1, "{}", agent.log());
    let metrics = agent.get("/metrics").1;
    assert_eq!(sample(&metrics, "kubepki_agent_inventory_problems"), Some(1.0));
    assert_eq!(sample(&metrics, "kubepki_agent_errors_total{source=\"inventory\"}"), Some(1.0));
    assert_eq!(sample(&metrics, "kubepki_agent_last_rotation_success"), Some(0.0));
    promtool_check_metrics(&metrics);
    assert_eq!(agent.get("/healthz").0, 200);
    drop(agent);

    // A broken leaf in an otherwise good tree.
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    std::fs::write(d.join("pki/apiserver.crt"), "not a certificate\n").unwrap();
    let args = tree_args(d.path());
    let agent = Agent::start(&[strs(&args), vec!["--no-rotate", "--interval", "1s"]].concat());
    agent.wait_until("/readyz 503", || agent.get("/readyz").0 == 503);
    assert!(agent.get("/readyz").1.contains("apiserver"), "{}", agent.get("/readyz").1);
    let first = read_at(&agent);
    agent.wait_until("three more readings", || read_at(&agent) >= first + 3.0);
    let logged: Vec<_> = agent.events().into_iter().filter(|e| e["level"] == "error").collect();
    assert_eq!(logged.len(), 1, "{}", agent.log());
    assert!(logged[0]["error"].as_str().unwrap().contains("apiserver"));
    // Fixed by hand: ready again, and the fix is logged.
    run(kubepki()
        .args(["rotate", "--force", "apiserver", "--node-name", "cp1", "--apiserver-advertise-address", "127.0.0.1"])
        .arg("--cert-dir")
        .arg(d.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(d.path()))
    .ok();
    agent.wait_until("/readyz 200", || agent.get("/readyz").0 == 200);
    assert_eq!(agent.count("inventory error resolved"), 1, "{}", agent.log());
}

/// `--check-args` checks the flags and exits 0; rotate's one-shot flags are refused with 2.
#[test]
fn check_args_and_one_shot_flags() {
    run(kubepki().args(["agent", "--check-args", "--no-rotate", "--listen", "0.0.0.0:9842"])).ok();
    for flag in [&["--dry-run"][..], &["--all"], &["--force", "apiserver"], &["-o", "json"], &["--at", "+1d"]] {
        let r = run(kubepki().args(["agent", "--check-args"]).args(flag));
        assert_eq!(r.code, 2, "{flag:?}: {}", r.stderr);
        assert!(r.stderr.contains(flag[0]), "{}", r.stderr);
    }
    let r = run(kubepki().args(["agent", "--check-args", "--tls-cert", "/x"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
}
