//! `kubepki rotate-sa` and `kubepki sa jwks`: the service-account key rotated with an overlap,
//! held against an independent verifier (PyJWT under Debian's /usr/bin/python3, following
//! kube-apiserver's rules: every key of sa.pub is tried, the kid is the SHA-256 of the SPKI).

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::*;

const SA_TOKEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/sa_token.py");

/// Whether PyJWT is there: a test without it fails under CI, and is skipped (saying so) elsewhere.
fn have_pyjwt() -> bool {
    let ok = Command::new(PYTHON).args(["-c", "import jwt"]).output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PyJWT is missing under {PYTHON}: run scripts/setup (it installs python3-jwt)"
        );
        eprintln!("skipped: PyJWT is missing under {PYTHON} (scripts/setup installs python3-jwt)");
    }
    ok
}

fn py(args: &[&str]) -> Run {
    run(Command::new(PYTHON).arg(SA_TOKEN).args(args))
}

/// A token signed with the cert dir's sa.key now.
fn sign(pki: &Path, name: &str) -> String {
    py(&["sign", &pki.join("sa.key").display().to_string(), name]).ok().stdout.trim().to_owned()
}

/// Whether a key of sa.pub verifies `token`.
fn verifies(pki: &Path, token: &str) -> bool {
    py(&["verify", &pki.join("sa.pub").display().to_string(), token]).code == 0
}

/// The kids of the keys of a PEM file, computed in Python.
fn python_kids(file: &Path) -> Vec<String> {
    py(&["kid", &file.display().to_string()]).ok().stdout.lines().map(str::to_owned).collect()
}

/// The kid in a token's header.
fn header_kid(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn rotate_sa(dir: &Path, phase: &str, extra: &[&str]) -> Run {
    run(kubepki()
        .args(["rotate-sa", phase, "--cert-dir"])
        .arg(dir.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(dir)
        .args(extra))
}

fn status(dir: &Path, extra: &[&str]) -> Value {
    let r = rotate_sa(dir, "status", &[&["-o", "json"], extra].concat());
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr))
}

fn jwks_kids(file: &Path) -> Vec<String> {
    let r = run(kubepki().args(["sa", "jwks"]).arg(file)).ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

fn jwks_algs(file: &Path) -> Vec<String> {
    let r = run(kubepki().args(["sa", "jwks"]).arg(file)).ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap().to_owned()).collect()
}

/// Signs and verifies through every phase, for a kubeadm tree of `key` keys.
fn tokens_keep_verifying_through_the_phases(key: &str, alg: &str) {
    if !have_pyjwt() {
        return;
    }
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"key": key}));
    let pki = d.join("pki");
    let before = sign(&pki, "before");
    assert!(verifies(&pki, &before));
    let old_kid = python_kids(&pki.join("sa.key"))[0].clone();
    assert_eq!(header_kid(&before), old_kid);
    assert_eq!(jwks_kids(&pki.join("sa.pub")), std::slice::from_ref(&old_kid), "sa jwks gives kube-apiserver's kid");
    assert_eq!(jwks_algs(&pki.join("sa.pub")), [alg]);

    let untouched = tree_hash(&pki);
    rotate_sa(d.path(), "prepare", &[]).ok();
    assert_eq!(tree_hash(&pki), untouched, "prepare changed the cert dir");
    assert!(verifies(&pki, &before));

    rotate_sa(d.path(), "trust", &[]).ok();
    let trusted = python_kids(&pki.join("sa.pub"));
    assert_eq!(trusted.len(), 2);
    assert_eq!(trusted[0], old_kid, "the old key comes first");
    assert_eq!(jwks_kids(&pki.join("sa.pub")), trusted);
    assert_eq!(python_kids(&pki.join("sa.key")), std::slice::from_ref(&old_kid), "trust does not change the signer");
    let during_trust = sign(&pki, "trust");
    assert!(verifies(&pki, &before) && verifies(&pki, &during_trust));

    let r = rotate_sa(d.path(), "reissue", &[]).ok();
    assert!(r.stdout.contains("kube-apiserver"), "{}", r.stdout);
    let new_kid = python_kids(&pki.join("sa.key"))[0].clone();
    assert_eq!(new_kid, trusted[1], "the staged key signs");
    assert_eq!(jwks_algs(&pki.join("sa.pub")), [alg, alg], "the new key keeps the old one's algorithm");
    let after = sign(&pki, "after");
    assert_eq!(header_kid(&after), new_kid);
    for t in [&before, &during_trust, &after] {
        assert!(verifies(&pki, t), "a token stopped verifying at reissue");
    }
    let v = status(d.path(), &[]);
    assert_eq!((v["oldKeyId"].as_str(), v["newKeyId"].as_str()), (Some(&*old_kid), Some(&*new_kid)));
    assert_eq!(v["signingKeyId"], new_kid);

    rotate_sa(d.path(), "retire", &["--force"]).ok();
    assert_eq!(python_kids(&pki.join("sa.pub")), std::slice::from_ref(&new_kid));
    assert!(!verifies(&pki, &before), "a token of the old key still verifies after retire");
    assert!(!verifies(&pki, &during_trust));
    assert!(verifies(&pki, &after));
    assert!(verifies(&pki, &sign(&pki, "later")));
}

#[test]
fn rsa_tokens_keep_verifying_through_the_phases() {
    tokens_keep_verifying_through_the_phases("rsa2048", "RS256");
}

#[test]
fn ecdsa_tokens_keep_verifying_through_the_phases() {
    tokens_keep_verifying_through_the_phases("ecdsa-p256", "ES256");
}

#[test]
fn abort_goes_back_one_phase_byte_for_byte() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({}));
    let pki = d.join("pki");
    let mut hashes = vec![tree_hash(&pki)];
    for (phase, extra) in [("prepare", &[][..]), ("trust", &[]), ("reissue", &[]), ("retire", &["--force"][..])] {
        rotate_sa(d.path(), phase, extra).ok();
        hashes.push(tree_hash(&pki));
    }
    for (back_to, hash) in ["reissue", "trust", "prepare"].iter().zip(hashes.iter().rev().skip(1)) {
        let r = rotate_sa(d.path(), "abort", &[]).ok();
        assert!(r.stdout.contains(&format!("back at phase {back_to}")), "{}", r.stdout);
        assert_eq!(&tree_hash(&pki), hash, "abort back to {back_to}");
    }
    let r = rotate_sa(d.path(), "abort", &[]).ok();
    assert!(r.stdout.contains("rotation abandoned"), "{}", r.stdout);
    assert_eq!(tree_hash(&pki), hashes[0]);
    assert!(!d.join("tmp/kubepki/pki/sa-rotation").exists(), "the state is gone");
    // An abort whose backup is gone restores nothing, says what is left, and keeps the phase.
    rotate_sa(d.path(), "prepare", &[]).ok();
    rotate_sa(d.path(), "trust", &[]).ok();
    let trusted = tree_hash(&pki);
    std::fs::remove_dir_all(d.join("tmp/kubepki/pki/sa-rotation/backups/trust-1")).unwrap();
    let r = rotate_sa(d.path(), "abort", &[]).expect_code(1);
    assert!(r.stderr.contains("cannot undo phase trust") && r.stderr.contains("trust-1 is missing"), "{}", r.stderr);
    assert!(r.stderr.contains("sa.pub"), "the file left is named: {}", r.stderr);
    assert_eq!(tree_hash(&pki), trusted);
    assert_eq!(status(d.path(), &[])["phase"], "trust");
    // Carried forward instead: the rotation goes on from there.
    rotate_sa(d.path(), "reissue", &[]).ok();
    rotate_sa(d.path(), "retire", &["--force"]).ok();
    // A phase runs again after an abort: resumable.
    rotate_sa(d.path(), "prepare", &["--encryption-algorithm", "ECDSA-P256"]).ok();
    rotate_sa(d.path(), "trust", &[]).ok();
    assert_eq!(jwks_algs(&pki.join("sa.pub")), ["RS256", "ES256"]);
}

#[test]
fn bad_inputs_are_one_line_exit_2_and_change_nothing() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({}));
    let pki = d.join("pki");
    let refused = |phase: &str, extra: &[&str], says: &[&str]| {
        let before = tree_hash(&pki);
        let r = rotate_sa(d.path(), phase, extra).expect_code(2);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        for s in says {
            assert!(r.stderr.contains(s), "{phase}: no {s:?} in {}", r.stderr);
        }
        assert_eq!(tree_hash(&pki), before, "{phase} changed the cert dir");
    };
    // Phases out of order.
    refused("trust", &[], &["follows prepare", "not started"]);
    refused("retire", &[], &["follows reissue"]);
    rotate_sa(d.path(), "prepare", &[]).ok();
    refused("reissue", &[], &["follows trust", "at: prepare"]);
    rotate_sa(d.path(), "abort", &[]).ok();

    // sa.pub that is not PEM.
    let good_pub = std::fs::read(pki.join("sa.pub")).unwrap();
    std::fs::write(pki.join("sa.pub"), "ssh-rsa AAAA not a pem file\n").unwrap();
    refused("prepare", &[], &["sa.pub", "no PEM block"]);
    let r = run(kubepki().args(["sa", "jwks"]).arg(pki.join("sa.pub"))).expect_code(2);
    assert!(r.stderr.contains("sa.pub") && r.stdout.is_empty(), "{}", r.stderr);
    // sa.key that is none of sa.pub's keys.
    let other = d.write("other.pem", kubepki_pki::KeyAlgorithm::Rsa2048.generate().unwrap().public_key_pem());
    std::fs::copy(&other, pki.join("sa.pub")).unwrap();
    refused("prepare", &[], &["sa.key", "is not one of the keys of", "sa.pub"]);
    std::fs::write(pki.join("sa.pub"), &good_pub).unwrap();
    assert!(!d.join("tmp/kubepki/pki/sa-rotation").exists(), "a refused prepare left a state");

    // retire before it is safe: the time it becomes safe and why.
    for phase in ["prepare", "trust", "reissue"] {
        rotate_sa(d.path(), phase, &[]).ok();
    }
    let next_year = (time::OffsetDateTime::now_utc() + time::Duration::days(365)).year().to_string();
    refused("retire", &[], &["retire is refused until", &next_year, "ExpirationExtensionSeconds", "--force"]);
    let v = status(d.path(), &[]);
    assert!(v["retireSafeAt"].as_str().unwrap().starts_with(&next_year), "{v:#}");
}

#[test]
fn the_wait_before_retire_follows_the_apiserver_manifest() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({}));
    for phase in ["prepare", "trust", "reissue"] {
        rotate_sa(d.path(), phase, &[]).ok();
    }
    assert_eq!(status(d.path(), &[])["maxTokenLifetime"], 365 * 24 * 3600, "kubeadm's defaults: one year");
    d.write(
        "manifests/kube-apiserver.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver, namespace: kube-system}\nspec:\n  containers:\n  \
         - name: kube-apiserver\n    command:\n    - kube-apiserver\n    - --service-account-extend-token-expiration=false\n    \
         - --service-account-max-token-expiration=2h\n",
    );
    let v = status(d.path(), &[]);
    assert_eq!(v["maxTokenLifetime"], 2 * 3600, "{v:#}");
    assert!(v["maxTokenLifetimeWhy"].as_str().unwrap().contains("kube-apiserver.yaml"), "{v:#}");
    let r = rotate_sa(d.path(), "retire", &[]).expect_code(2);
    assert!(r.stderr.contains("2h0m0s"), "{}", r.stderr);
    // --max-token-lifetime overrides: with none to wait for, retire runs.
    rotate_sa(d.path(), "retire", &["--max-token-lifetime", "0s"]).ok();
    assert_eq!(status(d.path(), &[])["phase"], "retire");
}

#[test]
fn a_failing_hook_undoes_its_phase() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({}));
    let pki = d.join("pki");
    rotate_sa(d.path(), "prepare", &[]).ok();
    let before = tree_hash(&pki);
    let seen = d.join("hook-env");
    let hook = format!("echo \"$KUBEPKI_PHASE $KUBEPKI_SA_KEY_ID $KUBEPKI_CERT_DIR\" > '{}'; exit 3", seen.display());
    let r = rotate_sa(d.path(), "trust", &["--exec", &hook]).expect_code(1);
    assert!(r.stderr.contains("exit status: 3") && r.stderr.contains("undone"), "{}", r.stderr);
    assert_eq!(tree_hash(&pki), before, "the failed trust was not undone");
    assert_eq!(status(d.path(), &[])["phase"], "prepare");
    let env = std::fs::read_to_string(&seen).unwrap();
    let kid = python_kids(&pki.join("sa.key")).remove(0);
    assert_eq!(env.trim(), format!("trust {kid} {}", pki.canonicalize().unwrap().display()));
    // The same phase succeeds with a hook that does.
    rotate_sa(d.path(), "trust", &["--exec", "true"]).ok();
    assert_eq!(status(d.path(), &[])["phase"], "trust");
    // Run again it changes nothing, and a failing hook then has nothing to undo.
    let trusted = tree_hash(&pki);
    let r = rotate_sa(d.path(), "trust", &[]).ok();
    assert!(r.stdout.contains("already at phase trust"), "{}", r.stdout);
    rotate_sa(d.path(), "trust", &["--exec", "false"]).expect_code(1);
    assert_eq!(tree_hash(&pki), trusted);
    assert_eq!(status(d.path(), &[])["phase"], "trust");
}

/// The points a phase's writes pass: the backup directory, then the journaled commit.
const WRITE_STEPS: [&str; 10] = [
    "newdir:written",
    "newdir:durable",
    "newdir:renamed",
    "commit:begin",
    "commit:staged",
    "commit:journaled",
    "commit:renamed-one@1",
    "commit:renamed-one@2",
    "commit:renamed-one@3",
    "commit:renamed-all",
];

/// sa.key's public key is one of sa.pub's, checked in Python.
fn pair_matches(pki: &Path) -> bool {
    let key = python_kids(&pki.join("sa.key")).remove(0);
    python_kids(&pki.join("sa.pub")).contains(&key)
}

#[test]
fn sigkill_at_every_write_step_leaves_a_matching_pair_and_abort_restores_the_bytes() {
    let phases: [(&str, &[&str]); 4] = [("prepare", &[]), ("trust", &[]), ("reissue", &[]), ("retire", &["--force"])];
    let template = TestDir::new();
    kubeadm_tree(template.path(), json!({}));
    let (mut killed, mut completed_by_recovery) = (0, 0);
    for (i, (phase, extra)) in phases.iter().enumerate() {
        for step in WRITE_STEPS {
            let d = TestDir::new();
            run(Command::new("cp").arg("-a").arg(template.join(".")).arg(d.path())).ok();
            let pki = d.join("pki");
            for (earlier, earlier_extra) in &phases[..i] {
                rotate_sa(d.path(), earlier, earlier_extra).ok();
            }
            let before = tree_hash(&pki);
            let context = format!("{phase} killed at {step}");
            let r = run(kubepki()
                .args(["rotate-sa", phase, "--cert-dir"])
                .arg(&pki)
                .arg("--kubeconfig-dir")
                .arg(d.path())
                .args(*extra)
                .env("KUBEPKI_FAILPOINT", step));
            assert!(r.code == -1 || r.code == 0, "{context}: {r:?}");
            killed += usize::from(r.code == -1);
            // The next command completes or discards the interrupted commit first.
            let v = status(d.path(), &[]);
            assert!(pair_matches(&pki), "{context}: sa.key is not among sa.pub's keys");
            let leftovers = run(Command::new("find").arg(d.path()).args(["-name", "*.kubepki-new"])).ok().stdout;
            assert!(leftovers.is_empty(), "{context}: staged files left behind: {leftovers}");
            let done = v["phase"] == *phase;
            if !done {
                assert_eq!(tree_hash(&pki), before, "{context}: not done, yet the cert dir changed");
                assert_eq!(v["phase"].as_str(), i.checked_sub(1).map(|j| phases[j].0), "{context}");
                continue;
            }
            completed_by_recovery += usize::from(r.code == -1);
            rotate_sa(d.path(), "abort", &[]).ok();
            assert_eq!(tree_hash(&pki), before, "{context}: abort did not restore the bytes");
            assert!(pair_matches(&pki), "{context}: after abort");
        }
    }
    // prepare takes no backup (3 steps not reached), each commit has 2 renames (one not reached).
    assert!(killed >= 30, "only {killed} runs were killed: the failpoints were not reached");
    assert!(completed_by_recovery > 0, "no kill after the commit point was completed by recovery");
    eprintln!("{killed} phases killed, {completed_by_recovery} completed by the next command's recovery");
}

#[test]
fn status_counts_legacy_token_secrets_through_the_api() {
    let d = TestDir::new();
    let reserved = secrets_api::SecretsApi::reserve();
    let port = reserved.port().to_string();
    init(d.path(), &["--apiserver-bind-port", &port]).ok();
    let server = reserved.serve(&d.join("pki/apiserver.crt"), &d.join("pki/apiserver.key"), &d.join("pki/ca.crt"));
    let token = |ns: &str, name: &str, type_: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "type": type_,
               "metadata": {"name": name, "namespace": ns, "annotations": {"kubernetes.io/service-account.name": "default"}},
               "data": {"token": "dG9rZW4="}})
    };
    server.insert(token("default", "legacy", "kubernetes.io/service-account-token"));
    server.insert(token("ci", "deployer", "kubernetes.io/service-account-token"));
    server.insert(token("default", "opaque", "Opaque"));
    rotate_sa(d.path(), "prepare", &[]).ok();
    let v = status(d.path(), &[]);
    assert_eq!(v["legacyTokenSecrets"], 2, "{v:#}");
    let r = rotate_sa(d.path(), "status", &[]).ok();
    assert!(
        r.stdout.contains("WARNING: 2 legacy token Secret(s)") && r.stdout.contains("STOP WORKING"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("ci/deployer") && r.stdout.contains("default/legacy"), "{}", r.stdout);
    assert!(!r.stdout.contains("default/opaque"), "{}", r.stdout);
    assert!(server.requests().iter().all(|r| r.starts_with("GET /api/v1/secrets")), "{:?}", server.requests());
    drop(server);
    // No API reachable: said, not an error.
    let v = status(d.path(), &[]);
    assert!(v["legacyTokenSecrets"].is_null(), "{v:#}");
    assert!(!v["legacyTokenSecretsError"].as_str().unwrap().is_empty(), "{v:#}");
    let r = rotate_sa(d.path(), "status", &["--kubeconfig", "/nonexistent/admin.conf"]).ok();
    assert!(r.stdout.contains("could not be counted (no kubeconfig at /nonexistent/admin.conf"), "{}", r.stdout);
}

#[test]
fn status_compares_this_node_with_its_peers() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({}));
    let pki = d.join("pki");
    let peer = d.join("peer-pki");
    std::fs::create_dir_all(&peer).unwrap();
    for f in ["sa.key", "sa.pub"] {
        std::fs::copy(pki.join(f), peer.join(f)).unwrap();
    }
    let peer_pub = d.join("peer2-sa.pub");
    std::fs::copy(pki.join("sa.pub"), &peer_pub).unwrap();
    let peer_flags = ["--peer-cert-dir", peer.to_str().unwrap(), "--peer-sa-pub", peer_pub.to_str().unwrap()];
    let r = rotate_sa(d.path(), "status", &peer_flags).ok();
    assert_eq!(r.stdout.matches(": same keys").count(), 2, "{}", r.stdout);
    rotate_sa(d.path(), "prepare", &[]).ok();
    rotate_sa(d.path(), "trust", &[]).ok();
    // This node trusts old + new; the peers do not yet.
    let r = rotate_sa(d.path(), "status", &peer_flags).expect_code(1);
    assert_eq!(r.stdout.matches("DIFFERS").count(), 2, "{}", r.stdout);
    std::fs::copy(pki.join("sa.pub"), peer.join("sa.pub")).unwrap();
    std::fs::copy(pki.join("sa.pub"), &peer_pub).unwrap();
    rotate_sa(d.path(), "status", &peer_flags).ok();
    rotate_sa(d.path(), "reissue", &[]).ok();
    // The peer's sa.key still signs with the old key.
    let r = rotate_sa(d.path(), "status", &peer_flags).expect_code(1);
    assert!(r.stdout.contains("sa.key signs with kid"), "{}", r.stdout);
    let v = status(d.path(), &["--peer-cert-dir", peer.to_str().unwrap()]);
    assert_eq!(v["peers"][0]["differences"].as_array().unwrap().len(), 1, "{v:#}");
}
