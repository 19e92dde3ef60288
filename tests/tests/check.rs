//! `kubepki check`: statuses, residual times, findings and exit codes over certificates made by
//! an independent tool (python3-cryptography) — files, bundles, kubeconfigs, the kubelet's
//! PKI, Secrets served through the kube API and live TLS endpoints — and kubeadm's output
//! formats against dates read back with openssl.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kubepki_tests::kubeadm_fixture::KUBEADM_CHECK_EXPIRATION;
use serde_json::{Value, json};

use crate::common::*;

/// Makes certificates with python3-cryptography. argv[1] is a JSON list of specs, argv[2] the
/// output directory; prints `{id: {"notBefore": unix, "notAfter": unix}}`.
///
/// A spec: `id`, `cn`, `out` (certificate file), optional `key_out` (key file; `combined`
/// writes the key after the certificate in `out`), `not_before`/`not_after` (days from now,
/// fractional allowed), `issuer` (an earlier id, `{"cert": path, "key": path}`, or absent for
/// self-signed), `ca`, `key` (`ec` or `rsaNNNN`), `ip_sans`,
/// `bundle` (ids whose certificates make up `out`, written after every certificate is made).
const MAKE_CERTS: &str = r#"
import datetime, ipaddress, json, os, sys
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

specs, out = json.loads(sys.argv[1]), sys.argv[2]
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
keys, certs, result = {}, {}, {}

def path(p):
    p = os.path.join(out, p)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p

def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)

def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())

for s in specs:
    if "bundle" in s:
        continue
    k = s.get("key", "ec")
    key = ec.generate_private_key(ec.SECP256R1()) if k == "ec" else rsa.generate_private_key(public_exponent=65537, key_size=int(k[3:]))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, s["cn"])])
    issuer = s.get("issuer")
    if issuer is None:
        icert, ikey, iname = None, key, name
    elif isinstance(issuer, str):
        icert, ikey = certs[issuer], keys[issuer]
        iname = icert.subject
    else:
        icert = x509.load_pem_x509_certificate(open(issuer["cert"], "rb").read())
        ikey = serialization.load_pem_private_key(open(issuer["key"], "rb").read(), None)
        iname = icert.subject
    nb = now + datetime.timedelta(days=s.get("not_before", -1))
    na = now + datetime.timedelta(days=s["not_after"])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(iname).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(nb).not_valid_after(na))
    ca = bool(s.get("ca"))
    b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=not ca,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=False, encipher_only=False,
        decipher_only=False), critical=True)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if icert is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ikey.public_key()), critical=False)
    if s.get("ip_sans"):
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(i)) for i in s["ip_sans"]]), critical=False)
    cert = b.sign(ikey, hashes.SHA256())
    keys[s["id"]], certs[s["id"]] = key, cert
    body = pem(cert) + (key_pem(key) if s.get("combined") else b"")
    open(path(s["out"]), "wb").write(body)
    if s.get("key_out"):
        open(path(s["key_out"]), "wb").write(key_pem(key))
    result[s["id"]] = {"notBefore": int(nb.timestamp()), "notAfter": int(na.timestamp())}

for s in specs:
    if "bundle" in s:
        open(path(s["out"]), "wb").write(b"".join(pem(certs[i]) for i in s["bundle"]))
print(json.dumps(result))
"#;

fn make(dir: &Path, specs: Value) -> Value {
    let r = run(Command::new(PYTHON).arg("-c").arg(MAKE_CERTS).arg(specs.to_string()).arg(dir));
    assert_eq!(r.code, 0, "python3-cryptography failed:\n{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `kubepki check --no-defaults <args>` with an empty HOME.
fn check(home: &Path, args: &[&str]) -> Run {
    run(kubepki().arg("check").arg("--no-defaults").args(args).env("HOME", home))
}

fn check_json(home: &Path, args: &[&str]) -> (i32, Value) {
    let r = check(home, &[args, &["-o", "json"]].concat());
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}\n{}", r.stdout, r.stderr));
    assert_eq!(v["exitCode"].as_i64(), Some(i64::from(r.code)), "{}", r.stderr);
    (r.code, v)
}

fn item<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no item {name} in {report:#}"))
}

fn codes(item: &Value) -> Vec<&str> {
    item["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect()
}

#[track_caller]
fn assert_residual(item: &Value, not_after: &Value, at: i64) {
    let want = not_after.as_i64().unwrap() - at;
    let got = item["residualSeconds"].as_i64().unwrap();
    assert!((got - want).abs() <= 120, "{}: residual {got}, want {want} ± 120", item["name"]);
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Five statuses from five certificates, with residual seconds and the exit code.
#[test]
fn dates_give_statuses_residual_seconds_and_the_exit_code() {
    let d = TestDir::new();
    let t = make(
        d.path(),
        json!([
            {"id": "soon", "cn": "soon", "out": "files/soon.crt", "not_after": 5},
            {"id": "later", "cn": "later", "out": "files/later.pem", "not_after": 40},
            {"id": "warn", "cn": "warn", "out": "files/sub/warn.cert", "not_after": 20},
            {"id": "expired", "cn": "expired", "out": "files/expired.crt", "not_before": -30, "not_after": -1},
            {"id": "future", "cn": "future", "out": "files/future.crt", "not_before": 2, "not_after": 30},
        ]),
    );
    let start = now();
    let (code, v) = check_json(d.path(), &["--file", p(&d.join("files"))]);
    assert_eq!(code, 2);
    assert_eq!(v["verdict"], "critical");
    let want = [
        ("soon.crt", "critical"),
        ("later.pem", "ok"),
        ("sub/warn.cert", "warning"),
        ("expired.crt", "expired"),
        ("future.crt", "not-yet-valid"),
    ];
    for (name, status) in want {
        let i = item(&v, name);
        assert_eq!(i["status"], status, "{name}");
        assert_eq!(i["source"], "file");
        assert_eq!(i["path"], p(&d.join("files").join(name)));
        let id = name.split(['/', '.']).rev().nth(1).unwrap();
        assert_residual(i, &t[id]["notAfter"], start);
        assert_eq!(i["subject"], format!("CN={id}"));
        assert_eq!(i["notAfter"].as_str().unwrap().len(), "2026-01-01T00:00:00Z".len());
    }
    assert!(item(&v, "expired.crt")["residualSeconds"].as_i64().unwrap() < -86_000);
    // 1 of 41 days used for the 40-day certificate: ~2.4 %.
    let used = item(&v, "later.pem")["lifetimeUsedPercent"].as_f64().unwrap();
    assert!((2.0..3.0).contains(&used), "{used}");
    assert_eq!(v["items"].as_array().unwrap().len(), 5);
}

#[test]
fn the_exit_code_is_the_worst_verdict_critical_then_unknown_then_warning() {
    let d = TestDir::new();
    make(
        d.path(),
        json!([
            {"id": "ok", "cn": "ok", "out": "ok.crt", "not_after": 40},
            {"id": "warn", "cn": "warn", "out": "warn.crt", "not_after": 20},
            {"id": "crit", "cn": "crit", "out": "crit.crt", "not_after": 3},
        ]),
    );
    d.write("garbage.pem", "this is not a certificate\n");
    let f = |name: &str| d.join(name).to_str().unwrap().to_owned();
    let code = |files: &[&str]| {
        let args: Vec<String> = files.iter().flat_map(|n| ["--file".to_owned(), f(n)]).collect();
        check(d.path(), &args.iter().map(String::as_str).collect::<Vec<_>>()).code
    };
    assert_eq!(code(&["ok.crt"]), 0);
    assert_eq!(code(&["ok.crt", "warn.crt"]), 1);
    assert_eq!(code(&["ok.crt", "crit.crt"]), 2);
    assert_eq!(code(&["warn.crt", "garbage.pem"]), 3);
    assert_eq!(code(&["crit.crt", "garbage.pem"]), 2);
    assert_eq!(code(&["ok.crt", "missing.crt"]), 3);
}

#[test]
fn an_unreadable_input_is_named_with_the_reason_and_everything_else_is_checked() {
    let d = TestDir::new();
    let t = make(d.path(), json!([{"id": "a", "cn": "a", "out": "dir/a.crt", "not_after": 40}]));
    d.write("dir/garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n");
    d.write("dir/binary.crt", [0u8, 1, 2, 3, 255]);
    let missing = d.join("nope");
    let r = check(d.path(), &["--file", p(&d.join("dir")), "--file", p(&missing)]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("error: {}: does not exist", missing.display())), "{}", r.stderr);
    assert!(r.stderr.contains("garbage.pem") && r.stderr.contains("not valid base64"), "{}", r.stderr);
    assert!(
        r.stderr.contains("binary.crt") && r.stderr.contains("neither a PEM nor a DER certificate"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("a.crt"), "{}", r.stdout);
    let (_, v) = check_json(d.path(), &["--file", p(&d.join("dir"))]);
    assert_eq!(item(&v, "garbage.pem")["status"], "invalid");
    assert!(item(&v, "garbage.pem")["error"].as_str().unwrap().contains("base64"));
    assert_eq!(item(&v, "a.crt")["status"], "ok");
    assert_residual(item(&v, "a.crt"), &t["a"]["notAfter"], now());
}

#[test]
fn a_bundle_yields_every_certificate_and_key_files_are_skipped() {
    let d = TestDir::new();
    let t = make(
        d.path(),
        json!([
            {"id": "root", "cn": "root", "out": "tmp/root.crt", "ca": true, "not_after": 3650},
            {"id": "mid", "cn": "mid", "issuer": "root", "out": "tmp/mid.crt", "ca": true, "not_after": 40},
            {"id": "leaf", "cn": "leaf", "issuer": "mid", "out": "tmp/leaf.crt", "key_out": "certs/leaf-key.pem", "not_after": 5},
            {"id": "b", "bundle": ["leaf", "mid", "root"], "out": "certs/chain.pem"},
        ]),
    );
    d.write("certs/.hidden/x.crt", "junk");
    let (code, v) = check_json(d.path(), &["--file", p(&d.join("certs"))]);
    assert_eq!(code, 2);
    let names: Vec<&str> = v["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["chain.pem", "chain.pem[1]", "chain.pem[2]"]);
    for (name, id, index) in [("chain.pem", "leaf", 0), ("chain.pem[1]", "mid", 1), ("chain.pem[2]", "root", 2)] {
        let i = item(&v, name);
        assert_eq!(i["subject"], format!("CN={id}"));
        assert_eq!(i["location"]["index"], index);
        assert_residual(i, &t[id]["notAfter"], now());
    }
    assert_eq!(item(&v, "chain.pem")["status"], "critical");
    assert_eq!(item(&v, "chain.pem[2]")["isCa"], true);
}

#[test]
fn at_moves_the_verdicts() {
    let d = TestDir::new();
    let t = make(
        d.path(),
        json!([
            {"id": "later", "cn": "later", "out": "later.crt", "not_after": 40},
            {"id": "future", "cn": "future", "out": "future.crt", "not_before": 2, "not_after": 60},
        ]),
    );
    let later = d.join("later.crt");
    let status = |at: &str| {
        let (code, v) = check_json(d.path(), &["--file", p(&later), "--at", at]);
        (item(&v, "later.crt")["status"].as_str().unwrap().to_owned(), code)
    };
    assert_eq!(status("now"), ("ok".into(), 0));
    assert_eq!(status("+12d"), ("warning".into(), 1));
    assert_eq!(status("+35d"), ("critical".into(), 2));
    assert_eq!(status("+41d"), ("expired".into(), 2));
    assert_eq!(status("-2d"), ("not-yet-valid".into(), 2));
    let after = t["later"]["notAfter"].as_i64().unwrap() + 60;
    let rfc =
        run(Command::new("date").env("LC_ALL", "C").args(["-u", "-d", &format!("@{after}"), "+%Y-%m-%dT%H:%M:%SZ"]))
            .ok()
            .stdout;
    assert_eq!(status(rfc.trim()), ("expired".into(), 2));
    // The residual is counted from --at.
    let (_, v) = check_json(d.path(), &["--file", p(&later), "--at", "+10d"]);
    assert_residual(item(&v, "later.crt"), &t["later"]["notAfter"], now() + 10 * 86_400);
    let future = d.join("future.crt");
    let (code, _) = check_json(d.path(), &["--file", p(&future)]);
    assert_eq!(code, 2);
    let (code, _) = check_json(d.path(), &["--file", p(&future), "--at", "+3d"]);
    assert_eq!(code, 0);
    let r = check(d.path(), &["--file", p(&future), "--at", "yesterday"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("invalid time \"yesterday\""), "{}", r.stderr);
}

#[test]
fn thresholds_can_be_shares_of_the_lifetime() {
    let d = TestDir::new();
    // 100 days long, 60 used.
    make(d.path(), json!([{"id": "c", "cn": "c", "out": "c.crt", "not_before": -60, "not_after": 40}]));
    let c = d.join("c.crt");
    let status = |warn: &str, crit: &str| {
        let (_, v) = check_json(d.path(), &["--file", p(&c), "--warn", warn, "--crit", crit]);
        assert_eq!(v["thresholds"], json!({"warn": warn, "crit": crit}));
        item(&v, "c.crt")["status"].as_str().unwrap().to_owned()
    };
    assert_eq!(status("50%", "90%"), "warning");
    assert_eq!(status("70%", "90%"), "ok");
    assert_eq!(status("70%", "55%"), "critical");
    assert_eq!(status("41d", "7d"), "warning");
    assert_eq!(status("39d", "7d"), "ok");
    let r = check(d.path(), &["--file", p(&c), "--warn", "120%"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("between 0% and 100%"), "{}", r.stderr);
}

fn kubeconfig_yaml(server: &str, ca: &str, user_fields: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: {server}\n    {ca}\ncontexts:\n- name: me@prod\n  context: {{cluster: prod, user: me}}\ncurrent-context: me@prod\nusers:\n- name: me\n  user:\n{user_fields}"
    )
}

#[test]
fn a_kubeconfig_copy_with_an_embedded_client_certificate() {
    let d = TestDir::new();
    let t = make(
        d.path(),
        json!([
            {"id": "ca", "cn": "copy-ca", "ca": true, "out": "gen/ca.crt", "not_after": 3650},
            {"id": "me", "cn": "me", "issuer": "ca", "out": "gen/me.crt", "key_out": "gen/me.key", "not_after": 20},
        ]),
    );
    let b64 = |f: &str| STANDARD.encode(d.read(f));
    let yaml = kubeconfig_yaml(
        "https://10.0.0.1:6443",
        &format!("certificate-authority-data: {}", b64("gen/ca.crt")),
        &format!("    client-certificate-data: {}\n    client-key-data: {}\n", b64("gen/me.crt"), b64("gen/me.key")),
    );
    let kc = d.write("home/.kube/copy-of-admin.conf", yaml);
    let (code, v) = check_json(d.path(), &["--kubeconfig", p(&kc)]);
    assert_eq!(code, 1);
    let me = item(&v, "copy-of-admin.conf");
    assert_eq!((me["source"].as_str(), me["status"].as_str()), (Some("kubeconfig"), Some("warning")));
    assert_eq!(me["path"], p(&kc));
    assert_eq!(
        me["location"],
        json!({"kind": "kubeconfig", "path": p(&kc), "user": "me", "certificate": "embedded", "key": "embedded", "index": 0})
    );
    assert_residual(me, &t["me"]["notAfter"], now());
    assert_eq!(me["findings"], json!([]));
    // Without a cert dir the kubeconfig's CA is reported on its own.
    let ca = item(&v, "copy-of-admin.conf:ca");
    assert_eq!(ca["subject"], "CN=copy-ca");
    assert_residual(ca, &t["ca"]["notAfter"], now());
}

#[test]
fn a_kubeconfig_that_references_certificate_files_by_path() {
    let d = TestDir::new();
    let t = make(
        d.path(),
        json!([
            {"id": "ca", "cn": "ref-ca", "ca": true, "out": "kc/ca.crt", "not_after": 3650},
            {"id": "me", "cn": "me", "issuer": "ca", "out": "kc/creds/me.crt", "key_out": "kc/creds/me.key", "not_after": 40},
            {"id": "other", "cn": "other", "out": "kc/creds/other.crt", "key_out": "kc/creds/other.key", "not_after": 40},
        ]),
    );
    let yaml = |key: &str| {
        kubeconfig_yaml(
            "https://10.0.0.1:6443",
            "certificate-authority: ca.crt",
            &format!("    client-certificate: creds/me.crt\n    client-key: {key}\n"),
        )
    };
    let kc = d.write("kc/user.conf", yaml("creds/me.key"));
    let (code, v) = check_json(d.path(), &["--kubeconfig", p(&kc)]);
    assert_eq!(code, 0, "{v:#}");
    let me = item(&v, "user.conf");
    assert_eq!(me["location"]["certificate"], p(&d.join("kc/creds/me.crt")));
    assert_eq!(me["location"]["key"], p(&d.join("kc/creds/me.key")));
    assert_residual(me, &t["me"]["notAfter"], now());
    assert_eq!(item(&v, "user.conf:ca")["location"]["certificateAuthority"], p(&d.join("kc/ca.crt")));
    // The wrong key: critical.
    std::fs::write(&kc, yaml("creds/other.key")).unwrap();
    let (code, v) = check_json(d.path(), &["--kubeconfig", p(&kc)]);
    assert_eq!(code, 2);
    let me = item(&v, "user.conf");
    assert_eq!((me["status"].as_str(), codes(me)), (Some("critical"), vec!["key-mismatch"]));
    // A certificate file that is gone: missing, critical (exit 2).
    std::fs::remove_file(d.join("kc/creds/me.crt")).unwrap();
    let r = check(d.path(), &["--kubeconfig", p(&kc)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("creds/me.crt (named by") && r.stderr.contains("does not exist"), "{}", r.stderr);
    let (_, v) = check_json(d.path(), &["--kubeconfig", p(&kc)]);
    assert_eq!(item(&v, "user.conf")["status"], "missing");
}

/// kubepki init for node cp1 on 127.0.0.1 into `<dir>/pki` and `<dir>`.
fn pki(d: &TestDir, extra: &[&str]) {
    init(d.path(), extra).ok();
}

fn check_pki(d: &TestDir, extra: &[&str]) -> (i32, Value) {
    let pki_dir = d.join("pki");
    let args = [&["--cert-dir", p(&pki_dir), "--kubeconfig-dir", p(d.path())][..], extra].concat();
    check_json(d.path(), &args)
}

#[test]
fn the_kubelets_client_certificate_behind_its_symlink() {
    let d = TestDir::new();
    pki(&d, &[]);
    let ca = json!({"cert": p(&d.join("pki/ca.crt")), "key": p(&d.join("pki/ca.key"))});
    let t = make(
        d.path(),
        json!([
            {"id": "client", "cn": "system:node:cp1", "issuer": ca, "out": "kubelet/kubelet-client-2026-01-01-00-00-00.pem", "combined": true, "not_after": 25},
            {"id": "serving", "cn": "cp1@1700000000", "out": "kubelet/kubelet.crt", "key_out": "kubelet/kubelet.key", "not_after": 300},
        ]),
    );
    std::os::unix::fs::symlink("kubelet-client-2026-01-01-00-00-00.pem", d.join("kubelet/kubelet-client-current.pem"))
        .unwrap();
    let (code, v) = check_pki(&d, &["--kubelet-pki-dir", p(&d.join("kubelet"))]);
    assert_eq!(code, 1, "{v:#}");
    let client = item(&v, "kubelet-client-current.pem");
    assert_eq!((client["source"].as_str(), client["status"].as_str()), (Some("kubelet"), Some("warning")));
    assert_eq!(client["caName"], "ca");
    assert_eq!(client["path"], p(&d.join("kubelet/kubelet-client-current.pem")));
    assert_eq!(client["location"]["keyPath"], client["path"]);
    assert_eq!(codes(client), Vec::<&str>::new());
    assert_residual(client, &t["client"]["notAfter"], now());
    let serving = item(&v, "kubelet.crt");
    assert_eq!((serving["status"].as_str(), serving["caName"].as_null()), (Some("ok"), Some(())));
    // kubepki init embeds kubelet.conf's client certificate, as kubeadm init does; with a
    // rotating kubelet-client-current.pem present, kubelet.conf should point at it.
    let kubelet_conf = item(&v, "kubelet.conf");
    assert_eq!(codes(kubelet_conf), ["kubelet-conf-embedded"]);
    assert!(kubelet_conf["findings"][0]["message"].as_str().unwrap().contains("kubelet-client-current.pem"));
}

/// Expected `kubeadm certs check-expiration` text, computed independently: dates from
/// openssl, columns as wide as their widest cell plus 3 (at least 10).
fn expected_kubeadm_text(d: &TestDir, at: i64, missing: &[&str]) -> String {
    let enddate = |file: &Path| {
        let out =
            run(Command::new("openssl").args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in"]).arg(file))
                .ok()
                .stdout;
        let iso = out.trim().strip_prefix("notAfter=").unwrap().to_owned(); // 2027-11-27 04:04:03Z
        let unix: i64 = run(Command::new("date").env("LC_ALL", "C").args(["-u", "-d", &iso, "+%s"]))
            .ok()
            .stdout
            .trim()
            .parse()
            .unwrap();
        let text = run(Command::new("date").env("LC_ALL", "C").args(["-u", "-d", &iso, "+%b %d, %Y %H:%M UTC"]))
            .ok()
            .stdout
            .trim()
            .to_owned();
        (unix, text)
    };
    let human = |s: i64| match s {
        _ if s < 60 => format!("{s}s"),
        _ if s < 3600 => format!("{}m", s / 60),
        _ if s < 86_400 => format!("{}h", s / 3600),
        _ if s < 365 * 86_400 => format!("{}d", s / 86_400),
        _ => format!("{}y", s / (365 * 86_400)),
    };
    let kubeconfig_cert = |conf: &str| {
        let text = d.read(conf);
        let line = text.lines().find(|l| l.trim_start().starts_with("client-certificate-data:")).unwrap();
        let pem = STANDARD.decode(line.split(':').nth(1).unwrap().trim()).unwrap();
        d.write(&format!("extracted/{conf}.crt"), pem)
    };
    let certs = KUBEADM_CHECK_EXPIRATION;
    let file_of = |name: &str| match name {
        n if n.ends_with(".conf") => kubeconfig_cert(n),
        "etcd-server" => d.join("pki/etcd/server.crt"),
        "etcd-peer" => d.join("pki/etcd/peer.crt"),
        "etcd-healthcheck-client" => d.join("pki/etcd/healthcheck-client.crt"),
        "etcd-ca" => d.join("pki/etcd/ca.crt"),
        n => d.join(&format!("pki/{n}.crt")),
    };
    let mut rows: Vec<Vec<String>> = vec![
        ["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED"]
            .map(String::from)
            .to_vec(),
    ];
    for (name, ca) in certs {
        if missing.contains(&name) {
            rows.push(vec![format!("!MISSING! {name}"), String::new(), String::new(), String::new(), String::new()]);
        } else {
            let (unix, date) = enddate(&file_of(name));
            rows.push(vec![name.into(), date, human(unix - at), ca.into(), "no      ".into()]);
        }
    }
    let mut cas: Vec<Vec<String>> =
        vec![["CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED"].map(String::from).to_vec()];
    for name in ["ca", "etcd-ca", "front-proxy-ca"] {
        let (unix, date) = enddate(&file_of(name));
        cas.push(vec![name.into(), date, human(unix - at), "no      ".into()]);
    }
    let layout = |rows: &[Vec<String>]| {
        let n = rows[0].len();
        let widths: Vec<usize> =
            (0..n - 1).map(|c| rows.iter().map(|r| r[c].len() + 3).max().unwrap().max(10)).collect();
        rows.iter()
            .map(|r| {
                let mut line: String = (0..n - 1).map(|c| format!("{:<w$}", r[c], w = widths[c])).collect();
                line.push_str(&r[n - 1]);
                line + "\n"
            })
            .collect::<String>()
    };
    format!("{}\n{}", layout(&rows), layout(&cas))
}

#[test]
fn kubeadm_text_is_byte_exact_for_a_known_pki() {
    let d = TestDir::new();
    pki(&d, &[]);
    let at = now() + 3 * 86_400 + 7 * 3600;
    let at_arg =
        run(Command::new("date").env("LC_ALL", "C").args(["-u", "-d", &format!("@{at}"), "+%Y-%m-%dT%H:%M:%SZ"]))
            .ok()
            .stdout;
    let r = check(
        d.path(),
        &["--cert-dir", p(&d.join("pki")), "--kubeconfig-dir", p(d.path()), "-o", "kubeadm", "--at", at_arg.trim()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, expected_kubeadm_text(&d, at, &[]));
    assert!(r.stdout.contains(" 361d ") && r.stdout.contains(" 9y "), "{}", r.stdout);
    // A missing kubeconfig is a !MISSING! row (kubeadm lists super-admin.conf so on joined nodes).
    std::fs::remove_file(d.join("super-admin.conf")).unwrap();
    let r = check(
        d.path(),
        &["--cert-dir", p(&d.join("pki")), "--kubeconfig-dir", p(d.path()), "-o", "kubeadm", "--at", at_arg.trim()],
    );
    assert_eq!(r.stdout, expected_kubeadm_text(&d, at, &["super-admin.conf"]));
    assert!(r.stdout.contains("!MISSING! super-admin.conf   "), "{}", r.stdout);
}

#[test]
fn kubeadm_json_and_yaml_are_certificate_expiration_info() {
    let d = TestDir::new();
    pki(&d, &[]);
    std::fs::remove_file(d.join("pki/apiserver.crt")).unwrap();
    std::fs::remove_file(d.join("pki/apiserver.key")).unwrap();
    std::fs::remove_file(d.join("pki/front-proxy-ca.key")).unwrap();
    let start = now();
    let r = check(d.path(), &["--cert-dir", p(&d.join("pki")), "--kubeconfig-dir", p(d.path()), "-o", "kubeadm-json"]);
    // apiserver is missing: critical.
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stdout.starts_with(
            "{\n    \"kind\": \"CertificateExpirationInfo\",\n    \"apiVersion\": \"output.kubeadm.k8s.io/v1alpha3\",\n"
        ),
        "{}",
        r.stdout
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let keys = |o: &Value| o.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&v), ["apiVersion", "certificateAuthorities", "certificates", "kind"]);
    let names = |list: &Value| {
        list.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(&v["certificates"]),
        [
            "admin.conf",
            "apiserver",
            "apiserver-etcd-client",
            "apiserver-kubelet-client",
            "controller-manager.conf",
            "etcd-healthcheck-client",
            "etcd-peer",
            "etcd-server",
            "front-proxy-client",
            "scheduler.conf",
            "super-admin.conf"
        ]
    );
    assert_eq!(names(&v["certificateAuthorities"]), ["ca", "etcd-ca", "front-proxy-ca"]);
    let find = |list: &str, name: &str| v[list].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();
    let present = find("certificates", "etcd-peer");
    assert_eq!(keys(&present), ["caName", "expirationDate", "externallyManaged", "missing", "name", "residualTime"]);
    let enddate = run(Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in"])
        .arg(d.join("pki/etcd/peer.crt")))
    .ok()
    .stdout;
    let iso = enddate.trim().strip_prefix("notAfter=").unwrap().replace(' ', "T");
    assert_eq!(present["expirationDate"], iso);
    let unix: i64 = run(Command::new("date").env("LC_ALL", "C").args(["-u", "-d", &iso, "+%s"]))
        .ok()
        .stdout
        .trim()
        .parse()
        .unwrap();
    assert!((present["residualTime"].as_i64().unwrap() - (unix - start)).abs() <= 120);
    assert_eq!((present["caName"].as_str(), present["missing"].as_bool()), (Some("etcd-ca"), Some(false)));
    assert_eq!(
        find("certificates", "apiserver"),
        json!({"name": "apiserver", "expirationDate": null, "residualTime": 0, "externallyManaged": false, "missing": true})
    );
    // front-proxy-ca without its key is external, and so is what it signs.
    assert_eq!(find("certificateAuthorities", "front-proxy-ca")["externallyManaged"], true);
    assert_eq!(find("certificates", "front-proxy-client")["externallyManaged"], true);
    assert_eq!(find("certificates", "admin.conf")["externallyManaged"], false);
    assert!(find("certificateAuthorities", "ca").get("caName").is_none());
    let r = check(d.path(), &["--cert-dir", p(&d.join("pki")), "--kubeconfig-dir", p(d.path()), "-o", "kubeadm-yaml"]);
    assert!(
        r.stdout
            .starts_with("apiVersion: output.kubeadm.k8s.io/v1alpha3\ncertificateAuthorities:\n- expirationDate: \""),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\n- expirationDate: null\n  externallyManaged: false\n  missing: true\n  name: apiserver\n  residualTime: 0\n"), "{}", r.stdout);
    assert!(r.stdout.ends_with("kind: CertificateExpirationInfo\n"));
    // The text table says yes for the same rows.
    let r = check(d.path(), &["--cert-dir", p(&d.join("pki")), "--kubeconfig-dir", p(d.path()), "-o", "kubeadm"]);
    let row = r.stdout.lines().find(|l| l.starts_with("front-proxy-client ")).unwrap();
    assert!(row.ends_with("front-proxy-ca          yes     "), "{row:?}");
}

/// Parses the text exposition format: (metric, labels, value) for every sample, checking that
/// each family's HELP and TYPE come first and its samples are contiguous.
fn parse_prometheus(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut samples = Vec::new();
    let mut typed: Vec<String> = Vec::new();
    let mut helped = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(kind, "gauge");
            assert_eq!(helped.last().map(String::as_str), Some(name), "HELP before TYPE for {name}");
            assert!(!typed.contains(&name.to_owned()), "family {name} declared twice");
            typed.push(name.to_owned());
            continue;
        }
        let (name, rest) = line.split_at(line.find(['{', ' ']).unwrap());
        assert_eq!(typed.last().map(String::as_str), Some(name), "sample of {name} outside its family");
        let mut labels = BTreeMap::new();
        let mut chars = rest.chars().peekable();
        if chars.peek() == Some(&'{') {
            chars.next();
            loop {
                let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                assert_eq!(chars.next(), Some('"'));
                let mut value = String::new();
                loop {
                    match chars.next().unwrap() {
                        '\\' => match chars.next().unwrap() {
                            'n' => value.push('\n'),
                            c @ ('\\' | '"') => value.push(c),
                            c => panic!("bad escape \\{c}"),
                        },
                        '"' => break,
                        '\n' => panic!("raw newline in a label value"),
                        c => value.push(c),
                    }
                }
                labels.insert(key.trim_start_matches(',').to_owned(), value);
                match chars.next() {
                    Some(',') => {}
                    Some('}') => break,
                    other => panic!("unexpected {other:?} in {line}"),
                }
            }
        }
        let value: String = chars.collect();
        samples.push((name.to_owned(), labels, value.trim().parse().unwrap()));
    }
    samples
}

/// `promtool check metrics` accepts `text`, where promtool is installed.
#[track_caller]
fn promtool_check(text: &str) {
    if !have("promtool") {
        return;
    }
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut lint.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = lint.wait_with_output().unwrap();
    assert!(out.status.success(), "promtool check metrics: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn prometheus_output_is_valid_exposition_with_escaped_labels() {
    let d = TestDir::new();
    let t = make(
        d.path(),
        json!([
            {"id": "odd", "cn": "we\"ird\\name", "out": "files/odd.crt", "not_after": 40},
            {"id": "plain", "cn": "plain", "out": "files/plain.crt", "not_before": -2, "not_after": 3},
        ]),
    );
    d.write("files/garbage.crt", "garbage");
    let r = check(d.path(), &["--file", p(&d.join("files")), "-o", "prometheus"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let samples = parse_prometheus(&r.stdout);
    let expiry: Vec<_> = samples.iter().filter(|s| s.0 == "kubepki_certificate_expiration_timestamp_seconds").collect();
    assert_eq!(expiry.len(), 2);
    let odd = expiry.iter().find(|s| s.1["name"] == "odd.crt").unwrap();
    // The label, unescaped, is the subject as the JSON output gives it, quote and backslash included.
    let (_, v) = check_json(d.path(), &["--file", p(&d.join("files/odd.crt"))]);
    let subject = item(&v, "odd.crt")["subject"].as_str().unwrap().to_owned();
    assert!(subject.contains('"') && subject.contains('\\'), "{subject}");
    assert_eq!(odd.1["subject"], subject);
    assert_eq!(odd.1["source"], "file");
    assert_eq!(odd.1["path"], p(&d.join("files/odd.crt")));
    assert_eq!(odd.1.keys().collect::<Vec<_>>(), ["issuer", "name", "path", "serial", "source", "subject"]);
    assert_eq!(odd.2 as i64, t["odd"]["notAfter"].as_i64().unwrap());
    let nb = samples
        .iter()
        .find(|s| s.0 == "kubepki_certificate_not_before_timestamp_seconds" && s.1["name"] == "plain.crt")
        .unwrap();
    assert_eq!(nb.2 as i64, t["plain"]["notBefore"].as_i64().unwrap());
    let errors = samples.iter().find(|s| s.0 == "kubepki_check_errors").unwrap();
    assert_eq!(errors.2, 1.0);
    let by_status: BTreeMap<_, _> =
        samples.iter().filter(|s| s.0 == "kubepki_check_certificates").map(|s| (s.1["status"].clone(), s.2)).collect();
    assert_eq!((by_status["ok"], by_status["critical"], by_status["invalid"]), (1.0, 1.0, 1.0));
}

#[test]
fn check_writes_nothing_and_takes_no_lock() {
    let d = TestDir::new();
    pki(&d, &[]);
    make(d.path(), json!([{"id": "x", "cn": "x", "out": "files/x.crt", "not_after": 3}]));
    std::fs::create_dir_all(d.join("kubelet")).unwrap();
    let before = tree_hash(d.path());
    for format in ["table", "kubeadm", "kubeadm-json", "kubeadm-yaml", "json", "yaml", "prometheus"] {
        let r = check(
            d.path(),
            &[
                "--cert-dir",
                p(&d.join("pki")),
                "--kubeconfig-dir",
                p(d.path()),
                "--kubelet-pki-dir",
                p(&d.join("kubelet")),
                "--file",
                p(&d.join("files")),
                "-o",
                format,
            ],
        );
        assert_eq!(r.code, 2, "{format}: {}", r.stderr);
    }
    assert_eq!(tree_hash(d.path()), before);
    // While another process holds the cert dir's lock, check still runs: it never takes it.
    if have("flock") {
        let lock = d.join("pki/.kubepki.lock");
        let mut holder = Command::new("flock").arg("-x").arg(&lock).args(["-c", "sleep 600"]).spawn().unwrap();
        while run(Command::new("flock").arg("-n").arg("-x").arg(&lock).arg("true")).code == 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let r = check(d.path(), &["--cert-dir", p(&d.join("pki")), "--kubeconfig-dir", p(d.path())]);
        let _ = holder.kill();
        let _ = holder.wait();
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
}

#[test]
fn cert_dir_findings_chain_outliving_weak_and_mismatched_keys() {
    let d = TestDir::new();
    // A hand-made cert dir with external etcd: a CA that expires before its apiserver
    // certificate, a kubelet client certificate from a different CA of the same name, a weak
    // front-proxy-client with the wrong key.
    make(
        d.path(),
        json!([
            {"id": "ca", "cn": "kubernetes", "ca": true, "out": "pki/ca.crt", "key_out": "pki/ca.key", "not_after": 60},
            {"id": "impostor", "cn": "kubernetes", "ca": true, "out": "other/ca.crt", "not_after": 3650},
            {"id": "fp", "cn": "front-proxy-ca", "ca": true, "key": "rsa2048", "out": "pki/front-proxy-ca.crt", "key_out": "pki/front-proxy-ca.key", "not_after": 3650},
            {"id": "api", "cn": "kube-apiserver", "issuer": "ca", "out": "pki/apiserver.crt", "key_out": "pki/apiserver.key", "not_after": 100},
            {"id": "akc", "cn": "kube-apiserver-kubelet-client", "issuer": "impostor", "out": "pki/apiserver-kubelet-client.crt", "key_out": "pki/apiserver-kubelet-client.key", "not_after": 100},
            {"id": "stray", "cn": "stray", "out": "tmp/stray.crt", "key_out": "pki/front-proxy-client.key", "not_after": 100},
        ]),
    );
    // python3-cryptography refuses SHA-1 signatures: openssl makes the weak one.
    let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(d.path()).args(args)).ok();
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:1024",
        "-nodes",
        "-keyout",
        "tmp/weak.key",
        "-subj",
        "/CN=front-proxy-client",
        "-out",
        "tmp/weak.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "tmp/weak.csr",
        "-CA",
        "pki/front-proxy-ca.crt",
        "-CAkey",
        "pki/front-proxy-ca.key",
        "-set_serial",
        "4660",
        "-days",
        "100",
        "-sha1",
        "-out",
        "pki/front-proxy-client.crt",
    ]);
    assert!(openssl_text(&d.join("pki/front-proxy-client.crt")).contains("sha1WithRSAEncryption"));
    let (code, v) = check_json(d.path(), &["--cert-dir", p(&d.join("pki"))]);
    assert_eq!(code, 2, "{v:#}");
    let api = item(&v, "apiserver");
    assert_eq!(
        (api["caName"].as_str(), codes(api), api["status"].as_str()),
        (Some("ca"), vec!["outlives-ca"], Some("warning"))
    );
    let akc = item(&v, "apiserver-kubelet-client");
    assert_eq!(
        (akc["caName"].as_null(), codes(akc), akc["status"].as_str()),
        (Some(()), vec!["chain-broken"], Some("critical"))
    );
    let fpc = item(&v, "front-proxy-client");
    let mut got = codes(fpc);
    got.sort_unstable();
    assert_eq!(got, ["key-mismatch", "weak-key", "weak-signature"]);
    assert!(fpc["findings"].as_array().unwrap().iter().any(|f| f["message"].as_str().unwrap().contains("RSA-1024")));
    assert_eq!(item(&v, "ca")["status"], "ok");
    // kubeadm's view takes etcd to be external: no etcd rows.
    let r = check(d.path(), &["--cert-dir", p(&d.join("pki")), "-o", "kubeadm"]);
    assert!(!r.stdout.contains("etcd"), "{}", r.stdout);
    assert!(r.stdout.contains("!MISSING! admin.conf"), "{}", r.stdout);
}

#[test]
fn a_stale_ca_in_a_kubeconfig_of_the_cluster_is_a_finding() {
    let d = TestDir::new();
    pki(&d, &[]);
    make(
        d.path(),
        json!([
            {"id": "old", "cn": "kubernetes", "ca": true, "out": "gen/old-ca.crt", "not_after": 300},
            {"id": "else", "cn": "elsewhere", "ca": true, "out": "gen/else-ca.crt", "not_after": 300},
            {"id": "me", "cn": "me", "issuer": "else", "out": "gen/me.crt", "key_out": "gen/me.key", "not_after": 300},
        ]),
    );
    let admin = d.read("admin.conf");
    let replace_ca = |text: &str, pem_file: &str| {
        text.lines()
            .map(|l| match l.split_once("certificate-authority-data:") {
                Some((indent, _)) => {
                    format!("{indent}certificate-authority-data: {}", STANDARD.encode(d.read(pem_file)))
                }
                None => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    d.write("stale.conf", replace_ca(&admin, "gen/old-ca.crt"));
    // A user's kubeconfig for another cluster has another CA, and that is fine.
    let b64 = |f: &str| STANDARD.encode(d.read(f));
    let other = d.write(
        "home/other.conf",
        kubeconfig_yaml(
            "https://elsewhere:6443",
            &format!("certificate-authority-data: {}", b64("gen/else-ca.crt")),
            &format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                b64("gen/me.crt"),
                b64("gen/me.key")
            ),
        ),
    );
    // ... but a copy of admin.conf outside the kubeconfig dir with the old CA is stale too.
    let copy = d.write("home/admin-copy.conf", replace_ca(&admin, "gen/old-ca.crt"));
    let (code, v) = check_pki(&d, &["--kubeconfig", p(&other), "--kubeconfig", p(&copy)]);
    assert_eq!(code, 1, "{v:#}");
    for name in ["stale.conf:ca", "admin-copy.conf:ca"] {
        let stale = item(&v, name);
        assert_eq!((codes(stale), stale["status"].as_str()), (vec!["stale-ca-copy"], Some("warning")), "{name}");
        assert_eq!(stale["location"]["kind"], "kubeconfig-ca");
    }
    assert_eq!(codes(item(&v, "other.conf:ca")), Vec::<&str>::new());
    // CA data identical to ca.crt is the CA itself: not listed again.
    let names: Vec<&str> = v["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(!names.contains(&"admin.conf:ca") && names.contains(&"admin.conf"), "{names:?}");
}

#[test]
fn an_interrupted_kubepki_write_is_a_warning() {
    let d = TestDir::new();
    pki(&d, &[]);
    let (code, _) = check_pki(&d, &[]);
    assert_eq!(code, 0);
    d.write("pki/.kubepki-journal", "{\"version\":1,\"renames\":[]}");
    let (code, v) = check_pki(&d, &[]);
    assert_eq!(code, 1);
    assert!(v["warnings"][0].as_str().unwrap().contains(".kubepki-journal: an interrupted kubepki write"), "{v:#}");
}

#[test]
fn missing_default_locations_are_skipped_but_named_paths_are_errors() {
    let d = TestDir::new();
    pki(&d, &[]);
    std::fs::create_dir_all(d.join("kubelet")).unwrap();
    let defaults_run = |extra: &[&str]| {
        run(kubepki()
            .arg("check")
            .args([
                "--cert-dir",
                p(&d.join("pki")),
                "--kubeconfig-dir",
                p(d.path()),
                "--kubelet-pki-dir",
                p(&d.join("kubelet")),
            ])
            .args(extra)
            .env("HOME", d.join("home"))
            .env("KUBECONFIG", d.join("no-such.conf")))
    };
    let r = defaults_run(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    let r = defaults_run(&["--kubeconfig", p(&d.join("named.conf"))]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains(&format!("error: {}: does not exist", d.join("named.conf").display())), "{}", r.stderr);
    assert!(r.stdout.contains("apiserver"), "everything else is still reported:\n{}", r.stdout);
    let r = check(d.path(), &["--cert-dir", p(&d.join("nope"))]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("nope: the cert dir does not exist"), "{}", r.stderr);
    let r = check(d.path(), &[]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("no certificates found in"), "{}", r.stderr);
}

#[test]
fn secrets_are_read_through_the_kube_api() {
    let d = TestDir::new();
    let reserved = secrets_api::SecretsApi::reserve();
    let port = reserved.port().to_string();
    pki(&d, &["--apiserver-bind-port", &port]);
    let server = reserved.serve(&d.join("pki/apiserver.crt"), &d.join("pki/apiserver.key"), &d.join("pki/ca.crt"));
    let t = make(
        d.path(),
        json!([
            {"id": "ca", "cn": "web-ca", "ca": true, "out": "gen/ca.crt", "not_after": 3650},
            {"id": "web", "cn": "web", "issuer": "ca", "out": "gen/web.crt", "key_out": "gen/web.key", "not_after": 5},
            {"id": "api", "cn": "api", "out": "gen/api.crt", "key_out": "gen/api.key", "not_after": 60},
        ]),
    );
    server.insert(secrets_api::tls_secret(
        "default",
        "web",
        &d.read("gen/web.crt"),
        &d.read("gen/web.key"),
        Some(&d.read("gen/ca.crt")),
    ));
    server.insert(secrets_api::tls_secret("prod", "api", &d.read("gen/api.crt"), &d.read("gen/web.key"), None));
    server.insert(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token", "namespace": "prod"}, "data": {"token": STANDARD.encode("abc")}}));
    let r = run(kubepki()
        .args([
            "check",
            "--no-defaults",
            "-o",
            "json",
            "--secret",
            "default/web",
            "--secret",
            "default/absent",
            "--secrets-namespace",
            "prod",
        ])
        .env("HOME", d.path())
        .env("KUBECONFIG", d.join("admin.conf")));
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    assert_eq!(r.code, 2, "{}", r.stderr);
    let web = item(&v, "default/web:tls.crt");
    assert_eq!((web["source"].as_str(), web["status"].as_str()), (Some("secret"), Some("critical")));
    assert_eq!(
        web["location"],
        json!({"kind": "secret", "namespace": "default", "name": "web", "key": "tls.crt", "index": 0})
    );
    assert_residual(web, &t["web"]["notAfter"], now());
    assert_eq!(codes(web), Vec::<&str>::new());
    assert_residual(item(&v, "default/web:ca.crt"), &t["ca"]["notAfter"], now());
    let api = item(&v, "prod/api:tls.crt");
    assert_eq!((codes(api), api["status"].as_str()), (vec!["key-mismatch"], Some("critical")));
    assert_eq!(v["items"].as_array().unwrap().len(), 3, "the token Secret holds no certificate");
    assert_eq!(v["errors"][0]["input"], "secret default/absent");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("not found"), "{v:#}");
    assert!(r.stderr.contains("error: secret default/absent: secrets \"absent\" not found"), "{}", r.stderr);
    let requests = server.requests();
    assert!(requests.contains(&"GET /api/v1/namespaces/default/secrets/web".to_owned()), "{requests:?}");
    assert!(requests.iter().any(|r| r.starts_with("GET /api/v1/namespaces/prod/secrets")), "{requests:?}");
    assert!(requests.iter().all(|r| r.starts_with("GET ")), "check only reads: {requests:?}");
}

#[test]
fn the_secrets_api_stand_in_speaks_to_kubectl() {
    if !have("kubectl") {
        return;
    }
    let d = TestDir::new();
    let reserved = secrets_api::SecretsApi::reserve();
    let port = reserved.port().to_string();
    pki(&d, &["--apiserver-bind-port", &port]);
    let server = reserved.serve(&d.join("pki/apiserver.crt"), &d.join("pki/apiserver.key"), &d.join("pki/ca.crt"));
    server.insert(secrets_api::tls_secret("default", "web", "CERT", "KEY", None));
    let kubectl = || {
        let mut c = Command::new("kubectl");
        c.arg("--kubeconfig").arg(d.join("admin.conf"));
        c
    };
    let r = run(kubectl().args(["get", "--raw", "/api/v1/namespaces/default/secrets/web"])).ok();
    let mut secret: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(secret["data"]["tls.crt"], STANDARD.encode("CERT"));
    let stale = secret.clone();
    secret["data"]["tls.crt"] = json!(STANDARD.encode("NEW"));
    let body = d.write("put.json", secret.to_string());
    run(kubectl().args(["replace", "--raw", "/api/v1/namespaces/default/secrets/web", "-f"]).arg(&body)).ok();
    assert_eq!(server.get("default", "web").unwrap()["data"]["tls.crt"], STANDARD.encode("NEW"));
    let body = d.write("stale.json", stale.to_string());
    let r = run(kubectl().args(["replace", "--raw", "/api/v1/namespaces/default/secrets/web", "-f"]).arg(&body));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("the object has been modified") || r.stderr.contains("Conflict"), "{}", r.stderr);
}

#[test]
fn an_endpoints_served_chain_is_checked_and_judged_only_with_a_ca() {
    let d = TestDir::new();
    pki(&d, &[]);
    let t = make(
        d.path(),
        json!([
            {"id": "ca", "cn": "serving-ca", "ca": true, "out": "gen/ca.crt", "not_after": 3650},
            {"id": "srv", "cn": "srv", "issuer": "ca", "ip_sans": ["127.0.0.1"], "out": "gen/srv.crt", "key_out": "gen/srv.key", "not_after": 5},
        ]),
    );
    // The server demands a client certificate from the cluster CA; its chain is still seen.
    let server = HttpsServer::start(
        &d.join("gen/srv.crt"),
        &d.join("gen/srv.key"),
        Some(&d.join("pki/ca.crt")),
        ClientAuth::Required,
    );
    let address = server.addr.to_string();
    let (code, v) = check_json(d.path(), &["--endpoint", &address]);
    assert_eq!(code, 2, "{v:#}");
    let served = item(&v, &address);
    assert_eq!((served["source"].as_str(), served["status"].as_str()), (Some("endpoint"), Some("critical")));
    assert_eq!(served["path"], address);
    assert_residual(served, &t["srv"]["notAfter"], now());
    assert_eq!(codes(served), Vec::<&str>::new());
    // Trusted by its own CA; not by the cluster's.
    let (_, v) = check_json(d.path(), &["--endpoint", &address, "--ca", p(&d.join("gen/ca.crt")), "--crit", "1d"]);
    assert_eq!(item(&v, &address)["status"], "warning");
    assert_eq!(codes(item(&v, &address)), Vec::<&str>::new());
    let (code, v) = check_json(d.path(), &["--endpoint", &address, "--ca", p(&d.join("pki/ca.crt")), "--crit", "1d"]);
    assert_eq!(code, 2);
    assert_eq!(codes(item(&v, &address)), ["untrusted"]);
    // An endpoint that does not answer is an unreadable input.
    let closed = format!("127.0.0.1:{}", free_port());
    let r = check(d.path(), &["--endpoint", &closed, "--timeout", "5s"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains(&format!("error: {closed}: cannot connect")), "{}", r.stderr);
}

/// Reads Secrets from the cluster of `$KUBECONFIG`.
#[test]
#[ignore = "needs a live cluster: KUBECONFIG=... cargo test -p kubepki --test integration -- --ignored live"]
fn live_cluster_secrets_through_kubeconfig() {
    let kubeconfig = std::env::var_os("KUBECONFIG").expect("set KUBECONFIG to a live cluster's kubeconfig");
    let r = run(kubepki()
        .args(["check", "--no-defaults", "-o", "json", "--secrets-namespace", "kube-system"])
        .env("KUBECONFIG", &kubeconfig));
    assert!(matches!(r.code, 0..=2), "exit {}: {}", r.code, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["errors"], json!([]), "{}", r.stderr);
    for i in v["items"].as_array().unwrap() {
        assert_eq!(i["source"], "secret");
        assert!(i["name"].as_str().unwrap().starts_with("kube-system/"));
    }
}

#[test]
fn the_table_is_sorted_by_residual_time_and_coloured_only_on_a_terminal() {
    let d = TestDir::new();
    make(
        d.path(),
        json!([
            {"id": "b", "cn": "b", "out": "files/b.crt", "not_after": 40},
            {"id": "a", "cn": "a", "out": "files/a.crt", "not_after": 5},
            {"id": "c", "cn": "c", "out": "files/c.crt", "not_before": -9, "not_after": -2},
        ]),
    );
    d.write("files/z.crt", "junk");
    let r = check(d.path(), &["--file", p(&d.join("files"))]);
    assert_eq!(r.code, 2);
    assert!(!r.stdout.contains('\x1b'), "no colour when piped:\n{}", r.stdout);
    let mut lines = r.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split("   ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(header, ["STATUS", "NAME", "EXPIRES", "RESIDUAL", "SOURCE", "CA", "PATH"]);
    let rows: Vec<(&str, &str)> = lines
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let mut cells = l.split_whitespace();
            (cells.next().unwrap(), cells.next().unwrap())
        })
        .collect();
    assert_eq!(rows, [("invalid", "z.crt"), ("expired", "c.crt"), ("critical", "a.crt"), ("ok", "b.crt")]);
    let summary = r.stdout.lines().last().unwrap();
    assert!(summary.starts_with("4 certificates: 1 ok, 1 critical, 1 expired, 1 invalid; at "), "{summary}");
    assert!(summary.ends_with("warn 30d, crit 7d: CRITICAL"), "{summary}");
    // On a terminal the statuses are coloured, unless NO_COLOR is set.
    if have("script") {
        let args = format!("check --no-defaults --file {}", d.join("files/a.crt").display());
        let tty = |no_color| on_a_terminal(&args, d.path(), no_color);
        assert!(tty(None).contains("\x1b[31mcritical\x1b[0m"), "{:?}", tty(None));
        assert!(!tty(Some("1")).contains('\x1b'));
    }
}

#[test]
fn kubeconfigs_alone_are_not_judged_against_an_absent_cert_dir() {
    let d = TestDir::new();
    pki(&d, &[]);
    let (code, v) = check_json(d.path(), &["--kubeconfig-dir", p(d.path())]);
    assert_eq!(code, 0, "{v:#}");
    let admin = item(&v, "admin.conf");
    assert_eq!((admin["caName"].as_null(), codes(admin)), (Some(()), vec![]));
    // Without the cert dir, the CA data is reported on its own, once per kubeconfig.
    assert_eq!(item(&v, "admin.conf:ca")["subject"], "CN=kubernetes");
}

/// `-o json` reads `--file` directories in chunks as it writes them: more certificates than a
/// chunk, each linked to the cert dir's CA, in walk order after the cert dir's and before a
/// served chain's, with the verdict (from an expired file in the middle) after the items — the
/// same report as `-o yaml`, which holds them all.
#[test]
fn json_streams_a_large_directory_in_order_with_the_verdict_last() {
    let d = TestDir::new();
    pki(&d, &[]);
    let nodes: String = (0..700).map(|i| format!("node-{i:04}\n")).collect();
    let nodes_file = d.write("nodes.txt", nodes);
    run(kubepki()
        .args(["issue", "kubelet-serving", "--quiet", "--cert-dir"])
        .arg(d.join("pki"))
        .arg("--nodes")
        .arg(&nodes_file)
        .arg("--out")
        .arg(d.join("fleet")))
    .ok();
    make(
        d.path(),
        json!([{"id": "x", "cn": "expired", "out": "fleet/node-0350/old.crt", "not_before": -30, "not_after": -1}]),
    );
    let (port, _server) = {
        let port = free_port();
        let pki = d.join("pki");
        (
            port,
            HttpsServer::start_on(port, &pki.join("apiserver.crt"), &pki.join("apiserver.key"), None, ClientAuth::None),
        )
    };
    let endpoint = format!("127.0.0.1:{port}");
    let (pki_dir, fleet) = (d.join("pki"), d.join("fleet"));
    let args = ["--cert-dir", p(&pki_dir), "--file", p(&fleet), "--endpoint", &endpoint];
    let r = check(d.path(), &[&args[..], &["-o", "json"]].concat());
    assert_eq!(r.code, 2, "{}", r.stderr);
    let keys: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("  \"") && !l.starts_with("   "))
        .map(|l| l.trim_start().split('"').nth(1).unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "at",
            "thresholds",
            "items",
            "serviceAccountKeys",
            "errors",
            "warnings",
            "keysNotChecked",
            "verdict",
            "exitCode"
        ]
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!((v["verdict"].as_str(), v["exitCode"].as_i64()), (Some("critical"), Some(2)));
    let items = v["items"].as_array().unwrap();
    let sources: Vec<&str> = items.iter().map(|i| i["source"].as_str().unwrap()).collect();
    let files: Vec<&Value> = items.iter().filter(|i| i["source"] == "file").collect();
    assert_eq!(files.len(), 701);
    // Order: cert dir, files (walk order: sorted), endpoint.
    let first_file = sources.iter().position(|s| *s == "file").unwrap();
    assert!(sources[..first_file].iter().all(|s| *s == "cert-dir"), "{sources:?}");
    assert_eq!(sources[first_file..first_file + 701].iter().filter(|s| **s == "file").count(), 701);
    assert_eq!(sources[first_file + 701..], ["endpoint"]);
    let names: Vec<&str> = files.iter().map(|i| i["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(files.iter().filter(|i| i["name"] != "node-0350/old.crt").all(|i| i["caName"] == "ca"));
    assert_eq!(item(&v, "node-0350/old.crt")["status"], "expired");
    assert_eq!(item(&v, "node-0350/old.crt")["caName"], Value::Null);
    // The same report through the path that holds every certificate.
    let y = check(d.path(), &[&args[..], &["-o", "yaml"]].concat());
    assert_eq!(y.code, 2, "{}", y.stderr);
    let yv: Value = serde_saphyr::from_str(&y.stdout).unwrap();
    let strip = |v: &Value| {
        let mut items = v["items"].as_array().unwrap().clone();
        for i in &mut items {
            i.as_object_mut().unwrap().retain(|k, _| !["residualSeconds", "lifetimeUsedPercent"].contains(&k.as_str()));
        }
        items
    };
    assert_eq!(strip(&yv), strip(&v));
    assert_eq!(yv["verdict"], v["verdict"]);
}

/// `check --no-defaults` of a kubeadm tree's cert dir and kubeconfig dir in `format`.
fn check_tree(d: &TestDir, format: &str) -> Run {
    check(d.path(), &["--cert-dir", p(&d.join("pki")), "--kubeconfig-dir", p(d.path()), "-o", format])
}

/// The items of a `-o json` or `-o yaml` document whose status is `missing`: (name, path).
fn missing_items(v: &Value) -> Vec<(String, String)> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "missing")
        .map(|i| (i["name"].as_str().unwrap().to_owned(), i["path"].as_str().unwrap().to_owned()))
        .collect()
}

/// The `kubepki_certificate_missing` samples: (name, source, path).
fn missing_series(text: &str) -> Vec<(String, String, String)> {
    parse_prometheus(text)
        .into_iter()
        .filter(|s| s.0 == "kubepki_certificate_missing")
        .map(|(_, l, value)| {
            assert_eq!(value, 1.0);
            assert_eq!(l.keys().collect::<Vec<_>>(), ["name", "path", "source"]);
            (l["name"].clone(), l["source"].clone(), l["path"].clone())
        })
        .collect()
}

fn status_count(text: &str, status: &str) -> f64 {
    parse_prometheus(text)
        .into_iter()
        .find(|s| s.0 == "kubepki_check_certificates" && s.1["status"] == status)
        .unwrap_or_else(|| panic!("no count for {status}:\n{text}"))
        .2
}

/// A deleted leaf of a kubeadm-made tree (written by an independent tool) is `missing` in
/// every output format, named with its path, and critical (exit 2); check writes nothing.
#[test]
fn a_missing_leaf_is_critical_in_every_format() {
    for (leaf, file, key) in [
        ("front-proxy-client", "pki/front-proxy-client.crt", "rsa2048"),
        ("apiserver-etcd-client", "pki/apiserver-etcd-client.crt", "ecdsa-p256"),
    ] {
        let d = TestDir::new();
        kubeadm_tree(d.path(), json!({"missing": [leaf], "key": key}));
        assert!(!d.join(file).exists() && !d.join(&file.replace(".crt", ".key")).exists());
        let path = p(&d.join(file)).to_owned();
        let before = tree_hash(d.path());

        let r = check_tree(&d, "table");
        assert_eq!(r.code, 2, "{leaf}: {}{}", r.stdout, r.stderr);
        let row = r.stdout.lines().find(|l| l.split_whitespace().nth(1) == Some(leaf)).unwrap();
        assert!(row.starts_with("missing ") && row.ends_with(&path), "{row}");
        assert!(r.stdout.contains(&format!("  {leaf}: missing: neither {path} nor its key")), "{}", r.stdout);
        assert!(r.stdout.contains(&format!("`kubepki issue {leaf}`")), "{}", r.stdout);
        assert!(r.stdout.contains("1 missing") && r.stdout.ends_with(": CRITICAL\n"), "{}", r.stdout);
        assert!(r.stderr.contains(&format!("error: {leaf} is missing: neither {path}")), "{}", r.stderr);

        let (code, v) = check_json(d.path(), &["--cert-dir", p(&d.join("pki")), "--kubeconfig-dir", p(d.path())]);
        assert_eq!((code, v["verdict"].as_str()), (2, Some("critical")));
        assert_eq!(missing_items(&v), [(leaf.to_owned(), path.clone())]);
        let it = item(&v, leaf);
        assert_eq!(it["location"]["kind"], "cert-dir");
        assert_eq!(it["location"]["keyPath"], p(&d.join(&file.replace(".crt", ".key"))));
        assert!(it["error"].as_str().unwrap().contains(&path) && it["notAfter"].is_null(), "{it:#}");
        let r = check_tree(&d, "yaml");
        assert_eq!(r.code, 2);
        let y: Value = serde_saphyr::from_str(&r.stdout).unwrap();
        assert_eq!(missing_items(&y), [(leaf.to_owned(), path.clone())]);

        let r = check_tree(&d, "kubeadm");
        assert_eq!(r.code, 2);
        assert!(r.stdout.contains(&format!("\n!MISSING! {leaf}   ")), "{}", r.stdout);
        assert_eq!(r.stdout.matches("!MISSING!").count(), 1, "{}", r.stdout);
        let r = check_tree(&d, "kubeadm-json");
        assert_eq!(r.code, 2);
        let k: Value = serde_json::from_str(&r.stdout).unwrap();
        let missing: Vec<&Value> =
            k["certificates"].as_array().unwrap().iter().filter(|c| c["missing"] == true).collect();
        assert_eq!(
            missing,
            [
                &json!({"name": leaf, "expirationDate": null, "residualTime": 0, "externallyManaged": false, "missing": true})
            ]
        );
        let r = check_tree(&d, "kubeadm-yaml");
        assert_eq!(r.code, 2);
        assert!(r.stdout.contains(&format!("  missing: true\n  name: {leaf}\n")), "{}", r.stdout);

        let r = check_tree(&d, "prometheus");
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert_eq!(missing_series(&r.stdout), [(leaf.to_owned(), "cert-dir".to_owned(), path.clone())]);
        assert_eq!(status_count(&r.stdout, "missing"), 1.0);
        assert!(!r.stdout.contains(&format!("name=\"{leaf}\",source=\"cert-dir\",path=\"{path}\",subject")));
        promtool_check(&r.stdout);
        assert_eq!(tree_hash(d.path()), before, "check wrote into the tree");
    }
}

/// On a whole kubeadm tree nothing is missing (exit 0); without an etcd CA (external etcd) no
/// etcd leaf is expected; a worker's cert dir (only `ca.crt`) expects no leaf and no
/// kubeconfig besides what is there.
#[test]
fn a_whole_kubeadm_tree_external_etcd_and_a_worker_miss_nothing() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"key": "ecdsa-p256"}));
    for format in ["table", "json", "yaml", "kubeadm", "kubeadm-json", "kubeadm-yaml", "prometheus"] {
        let r = check_tree(&d, format);
        assert_eq!(r.code, 0, "{format}: {}{}", r.stdout, r.stderr);
        assert!(!r.stdout.to_lowercase().contains("missing: true") && !r.stdout.contains("MISSING"), "{format}");
    }
    let (_, v) = check_pki_tree(&d);
    assert_eq!(missing_items(&v), []);
    assert_eq!(v["items"].as_array().unwrap().len(), 3 + 7 + 5, "{v:#}");
    let r = check_tree(&d, "prometheus");
    assert_eq!((missing_series(&r.stdout), status_count(&r.stdout, "missing")), (vec![], 0.0));

    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"key": "ecdsa-p256", "external_etcd": true}));
    let (code, v) = check_pki_tree(&d);
    assert_eq!(code, 0, "{v:#}");
    let names: Vec<&str> = v["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert!(!names.iter().any(|n| n.contains("etcd")), "{names:?}");
    assert_eq!(missing_items(&v), []);

    // A worker: the cluster CA and the kubelet's kubeconfig only.
    let w = TestDir::new();
    std::fs::create_dir(w.join("pki")).unwrap();
    std::fs::copy(d.join("pki/ca.crt"), w.join("pki/ca.crt")).unwrap();
    std::fs::copy(d.join("kubelet.conf"), w.join("kubelet.conf")).unwrap();
    let (code, v) = check_pki_tree(&w);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
}

fn check_pki_tree(d: &TestDir) -> (i32, Value) {
    check_json(d.path(), &["--cert-dir", p(&d.join("pki")), "--kubeconfig-dir", p(d.path())])
}

/// A key without its certificate, or a certificate without its key, is a broken pair:
/// critical, named as such, not missing.
#[test]
fn half_a_pair_is_broken_not_missing() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({"key": "ecdsa-p256"}));
    std::fs::remove_file(d.join("pki/apiserver.crt")).unwrap();
    std::fs::remove_file(d.join("pki/etcd/peer.key")).unwrap();
    let (code, v) = check_pki_tree(&d);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(missing_items(&v), []);
    let api = item(&v, "apiserver");
    assert_eq!((api["status"].as_str(), codes(api)), (Some("critical"), vec!["certificate-missing"]));
    assert!(api["findings"][0]["message"].as_str().unwrap().contains("apiserver.key does (a broken pair)"));
    let peer = item(&v, "etcd-peer");
    assert_eq!((peer["status"].as_str(), codes(peer)), (Some("critical"), vec!["key-missing"]));
    let r = check_tree(&d, "prometheus");
    assert_eq!((missing_series(&r.stdout), status_count(&r.stdout, "critical")), (vec![], 2.0));
    let r = check_tree(&d, "table");
    assert!(r.stdout.contains("  apiserver: critical [certificate-missing]: the certificate"), "{}", r.stdout);
    // kubeadm's table lists a leaf without its certificate file as missing, as kubeadm does.
    assert!(check_tree(&d, "kubeadm").stdout.contains("!MISSING! apiserver "));
}

/// kubeadm's kubeconfigs of a control-plane node: admin.conf, controller-manager.conf and
/// scheduler.conf are missing when absent; super-admin.conf (first node only) is not, though
/// kubeadm's own table lists it; a kubeconfig naming a client-certificate file that does not
/// exist is missing.
#[test]
fn absent_control_plane_kubeconfigs_and_certificate_files_they_name_are_missing() {
    let d = TestDir::new();
    kubeadm_tree(
        d.path(),
        json!({"key": "ecdsa-p256", "missing": ["admin.conf", "super-admin.conf"], "kubelet_client_current": true}),
    );
    let (code, v) = check_pki_tree(&d);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(
        missing_items(&v),
        [
            ("admin.conf".to_owned(), p(&d.join("admin.conf")).to_owned()),
            ("kubelet.conf".to_owned(), p(&d.join("kubelet.conf")).to_owned())
        ]
    );
    let admin = item(&v, "admin.conf");
    assert_eq!(
        admin["location"],
        json!({"kind": "kubeconfig", "path": p(&d.join("admin.conf")), "user": "kubernetes-admin", "certificate": "embedded", "key": "embedded", "index": 0})
    );
    let kubelet = item(&v, "kubelet.conf");
    assert_eq!(kubelet["location"]["certificate"], "/var/lib/kubelet/pki/kubelet-client-current.pem");
    assert!(
        kubelet["error"].as_str().unwrap().starts_with("/var/lib/kubelet/pki/kubelet-client-current.pem (named by")
    );
    assert!(v["items"].as_array().unwrap().iter().all(|i| i["name"] != "super-admin.conf"));
    let r = check_tree(&d, "prometheus");
    let series: Vec<String> = missing_series(&r.stdout).into_iter().map(|s| format!("{} {}", s.0, s.1)).collect();
    assert_eq!(series, ["admin.conf kubeconfig", "kubelet.conf kubeconfig"]);
    let r = check_tree(&d, "kubeadm");
    assert_eq!(r.code, 2);
    assert!(r.stdout.contains("!MISSING! admin.conf ") && r.stdout.contains("!MISSING! super-admin.conf "));

    // With the kubelet's rotated certificate where kubelet.conf points, and admin.conf back,
    // only super-admin.conf is absent: nothing is missing.
    let d = TestDir::new();
    let kubelet_dir = d.join("kubelet");
    kubeadm_tree(
        d.path(),
        json!({"key": "ecdsa-p256", "missing": ["super-admin.conf"], "kubelet_client_current": kubelet_dir}),
    );
    let (code, v) = check_pki_tree(&d);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(item(&v, "kubelet.conf")["status"], "ok");
}

/// `kubepki check` run as `nobody` (a monitoring user) with `args`, HOME `home`.
fn check_as_nobody(home: &Path, args: &[&str]) -> Run {
    run(Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", env!("CARGO_BIN_EXE_kubepki"), "check"])
        .args(args)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .env("HOME", home))
}

/// A monitoring user on a root-owned tree in kubeadm's modes (certificates 0644, keys 0600):
/// every certificate is judged by its dates, the keys it may not read are one line, and the
/// exit code is the dates'.
#[test]
fn a_monitoring_user_judges_the_dates_without_reading_the_keys() {
    use std::os::unix::fs::PermissionsExt;
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({}));
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pki = d.join("pki");
    let args = ["--no-defaults", "--cert-dir", p(&pki)];
    let r = check_as_nobody(d.path(), &args);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(!r.stderr.to_lowercase().contains("permission denied"), "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one summary line:\n{}", r.stderr);
    // The 9 leaf and CA keys kubeadm_tree writes with certificates, and sa.key.
    let want = format!("note: 11 private keys under {} not readable by this user", pki.display());
    assert!(lines[0].starts_with(&want) && lines[0].contains("not checked"), "{}", lines[0]);
    assert!(r.stdout.contains("10 certificates: 10 ok;") && r.stdout.trim_end().ends_with(": OK"), "{}", r.stdout);

    let r = check_as_nobody(d.path(), &[&args[..], &["-o", "json"]].concat());
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}\n{}", r.stdout, r.stderr));
    assert_eq!((r.code, v["exitCode"].as_i64(), v["errors"].as_array().map(Vec::len)), (0, Some(0), Some(0)));
    let unchecked: Vec<&str> = v["keysNotChecked"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(unchecked.len(), 11, "{v:#}");
    assert!(unchecked.iter().all(|k| k.starts_with(p(&pki)) && k.ends_with(".key")), "{unchecked:?}");
    assert!(unchecked.contains(&p(&pki.join("sa.key"))), "{unchecked:?}");
    // Neither SA file is readable (kubeadm writes both 0600): shown, not judged.
    let sa = &v["serviceAccountKeys"];
    assert_eq!(
        (sa["status"].as_str(), sa["keyId"].is_null(), sa["signingKeyTrusted"].is_null()),
        (Some("ok"), true, true)
    );
    assert!(v["items"].as_array().unwrap().iter().all(|i| i["findings"].as_array().unwrap().is_empty()), "{v:#}");

    // The dates still decide: a year and a month on, every leaf has expired.
    assert_eq!(check_as_nobody(d.path(), &[&args[..], &["--at", "+400d"]].concat()).code, 2);
    // Root reads every key: nothing to note, every pairing checked.
    let (code, v) = check_json(d.path(), &["--cert-dir", p(&pki)]);
    assert_eq!((code, v["keysNotChecked"].as_array().map(Vec::len)), (0, Some(0)));
}

/// `--root` reads a copied node: the default locations under it, and the kubelet's absolute
/// `kubelet-client-current.pem` link (and kubelet.conf's absolute path to it) inside it.
#[test]
fn root_reads_a_copied_node_and_its_absolute_kubelet_link() {
    let d = TestDir::new();
    let node = d.join("node");
    let kubelet = node.join("var/lib/kubelet/pki");
    std::fs::create_dir_all(&kubelet).unwrap();
    let made = kubeadm_tree(&node.join("etc/kubernetes"), json!({"kubelet_client_current": p(&kubelet)}));
    // As on the node: the link and kubelet.conf name /var/lib/kubelet/pki, not the copy.
    let link = kubelet.join("kubelet-client-current.pem");
    let target = std::fs::read_link(&link).unwrap();
    let on_node = Path::new("/var/lib/kubelet/pki").join(target.file_name().unwrap());
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&on_node, &link).unwrap();
    let conf = node.join("etc/kubernetes/kubelet.conf");
    let text = std::fs::read_to_string(&conf).unwrap().replace(p(&kubelet), "/var/lib/kubelet/pki");
    std::fs::write(&conf, text).unwrap();

    let r = run(kubepki().args(["check", "--root", p(&node), "-o", "json"]).env("HOME", d.join("home")));
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}\n{}", r.stdout, r.stderr));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{v:#}");
    let current = item(&v, "kubelet-client-current.pem");
    assert_eq!((current["status"].as_str(), current["caName"].as_str()), (Some("ok"), Some("ca")), "{current:#}");
    assert_residual(current, &made["certificates"]["kubelet-client-current.pem"]["notAfter"], now());
    assert_eq!(item(&v, "apiserver")["location"]["certPath"], p(&node.join("etc/kubernetes/pki/apiserver.crt")));
    let kubelet_conf = item(&v, "kubelet.conf");
    assert_eq!((kubelet_conf["status"].as_str(), codes(kubelet_conf)), (Some("ok"), vec![]), "{kubelet_conf:#}");
    assert_eq!(v["items"].as_array().unwrap().len(), 10 + 5 + 1, "{v:#}");

    // Without --root, the same copy's link dangles.
    let r = check(d.path(), &["--cert-dir", p(&node.join("etc/kubernetes/pki")), "--kubelet-pki-dir", p(&kubelet)]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("kubelet-client-current.pem"), "{}", r.stderr);
    // A root that is not a directory is a usage error.
    let r = run(kubepki().args(["check", "--root", p(&d.join("nope"))]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--root") && r.stderr.contains("nope"), "{}", r.stderr);
}

/// Nothing found is the same in every format: "no certificates found in" the sources looked
/// at, exit 3 (unknown), and the same verdict in the documents.
#[test]
fn an_empty_inventory_says_so_in_every_format() {
    let d = TestDir::new();
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let want = format!("no certificates found in {}", empty.display());
    for format in ["table", "kubeadm", "kubeadm-json", "kubeadm-yaml", "json", "yaml", "prometheus"] {
        let r = check(d.path(), &["--cert-dir", p(&empty), "-o", format]);
        assert_eq!(r.code, 3, "{format}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{format}: {}", r.stderr);
        assert!(r.stderr.starts_with("error: ") && r.stderr.contains(&want), "{format}: {}", r.stderr);
        match format {
            "table" => assert_eq!(
                r.stdout,
                format!("{want} (`kubepki check --help` lists the sources; --root reads a copied node): UNKNOWN\n")
            ),
            "json" => {
                let v: Value = serde_json::from_str(&r.stdout).unwrap();
                assert_eq!((v["verdict"].as_str(), v["exitCode"].as_i64()), (Some("unknown"), Some(3)), "{v:#}");
                assert!(v["errors"][0]["message"].as_str().unwrap().starts_with(&want), "{v:#}");
            }
            "yaml" => {
                let tail = ["verdict: unknown", "exitCode: 3"];
                assert!(r.stdout.contains(&want) && tail.iter().all(|t| r.stdout.contains(t)), "{}", r.stdout);
            }
            "prometheus" => assert!(r.stdout.contains("\nkubepki_check_errors 1\n"), "{}", r.stdout),
            _ => {}
        }
    }
}

/// `kubepki tree --no-defaults --cert-dir <dir> -o <format>`.
fn tree_of(pki: &Path, format: &str) -> Run {
    run(kubepki().args(["tree", "--no-defaults", "--cert-dir"]).arg(pki).args(["-o", format]))
}

/// One sample of `metric`: its labels and value.
fn sample(samples: &[(String, BTreeMap<String, String>, f64)], metric: &str) -> (BTreeMap<String, String>, f64) {
    let s = samples.iter().find(|s| s.0 == metric).unwrap_or_else(|| panic!("no {metric} sample"));
    (s.1.clone(), s.2)
}

/// The SA key pair as kubeadm writes it, and in a rotation's overlap (sa.pub holding an older
/// key and sa.key's): the kid is the one pyca computes (base64url SHA-256 of the SPKI), and
/// check (table, JSON, Prometheus) and tree (text, JSON, dot, mermaid) say how many keys sa.pub
/// trusts and that sa.key is one of them. kubeadm's formats do not list SA keys.
#[test]
fn service_account_keys_show_their_kid_and_what_sa_pub_trusts() {
    for (options, algorithm, n) in
        [(json!({}), "RSA-2048", 1), (json!({"sa_key": "ecdsa-p256", "sa_pub": "two"}), "ECDSA-P256", 2)]
    {
        let d = TestDir::new();
        let made = kubeadm_tree(d.path(), options);
        let kid = made["sa"]["kid"].as_str().unwrap();
        let pki = d.join("pki");
        let before = tree_hash(d.path());
        let (code, v) = check_json(d.path(), &["--cert-dir", p(&pki)]);
        assert_eq!(code, 0, "{v:#}");
        let sa = &v["serviceAccountKeys"];
        assert_eq!((sa["keyId"].as_str(), sa["algorithm"].as_str()), (Some(kid), Some(algorithm)), "{sa:#}");
        let kids: Vec<&Value> = sa["publicKeys"].as_array().unwrap().iter().map(|k| &k["keyId"]).collect();
        assert_eq!(json!(kids), made["sa"]["pubKids"]);
        assert_eq!((sa["signingKeyTrusted"].as_bool(), sa["status"].as_str()), (Some(true), Some("ok")));
        assert_eq!(
            (sa["keyPath"].as_str(), sa["createdAtSource"].as_str()),
            (Some(p(&pki.join("sa.key"))), Some("file-mtime"))
        );
        assert!(sa["findings"].as_array().unwrap().is_empty() && sa["ageSeconds"].as_i64().unwrap() >= 0, "{sa:#}");
        let keys = if n == 1 { "1 public key".to_owned() } else { format!("{n} public keys") };

        let r = check(d.path(), &["--cert-dir", p(&pki)]);
        let line =
            r.stdout.lines().find(|l| l.contains(&format!("kid {kid}"))).unwrap_or_else(|| panic!("{}", r.stdout));
        assert!(
            line.contains(&format!("sa.pub trusts {keys}, sa.key among them")) && line.contains(algorithm),
            "{line}"
        );

        let r = check(d.path(), &["--cert-dir", p(&pki), "-o", "prometheus"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let samples = parse_prometheus(&r.stdout);
        assert_eq!(sample(&samples, "kubepki_sa_public_keys").1, n as f64);
        let (labels, trusted) = sample(&samples, "kubepki_sa_key_trusted");
        assert_eq!((labels["kid"].as_str(), labels["algorithm"].as_str(), trusted), (kid, algorithm, 1.0));
        assert!(sample(&samples, "kubepki_sa_key_age_seconds").1 >= 0.0);
        promtool_check(&r.stdout);

        let r = check(d.path(), &["--cert-dir", p(&pki), "-o", "kubeadm"]);
        assert!(!r.stdout.contains(kid) && !r.stdout.contains("sa.key"), "{}", r.stdout);

        for format in ["text", "dot", "mermaid"] {
            let r = tree_of(&pki, format);
            assert_eq!(r.code, 0, "{}", r.stderr);
            let want = [format!("kid {kid}, {algorithm}"), format!("sa.pub trusts {keys}; sa.key is trusted")];
            assert!(want.iter().all(|w| r.stdout.contains(w.as_str())), "{format}: {want:?} in\n{}", r.stdout);
        }
        let tree: Value = serde_json::from_str(&tree_of(&pki, "json").stdout).unwrap();
        assert_eq!(tree["serviceAccountKeys"]["kind"], "service-account-keys", "{tree:#}");
        assert_eq!(tree_hash(d.path()), before, "check or tree wrote into the tree");
    }
}

/// sa.key whose public key sa.pub does not hold (every token it signs fails to verify), and an
/// sa.pub that is not PEM (kube-apiserver refuses to start): critical, exit 2, the file named,
/// the tree unchanged.
#[test]
fn an_untrusted_sa_key_or_an_sa_pub_that_is_not_pem_is_critical() {
    let d = TestDir::new();
    let made = kubeadm_tree(d.path(), json!({"sa_pub": "other"}));
    let kid = made["sa"]["kid"].as_str().unwrap();
    let pki = d.join("pki");
    let before = tree_hash(d.path());
    let (code, v) = check_json(d.path(), &["--cert-dir", p(&pki)]);
    let sa = &v["serviceAccountKeys"];
    assert_eq!((code, sa["status"].as_str(), sa["signingKeyTrusted"].as_bool()), (2, Some("critical"), Some(false)));
    assert_eq!(codes(sa), ["sa-key-not-trusted"]);
    let message = sa["findings"][0]["message"].as_str().unwrap();
    assert!(message.contains(kid) && message.contains("sa.pub"), "{message}");
    let r = check(d.path(), &["--cert-dir", p(&pki)]);
    assert!(
        r.stdout.contains("sa.key: critical [sa-key-not-trusted]") && r.stdout.ends_with(": CRITICAL\n"),
        "{}",
        r.stdout
    );
    let r = check(d.path(), &["--cert-dir", p(&pki), "-o", "prometheus"]);
    assert_eq!((r.code, sample(&parse_prometheus(&r.stdout), "kubepki_sa_key_trusted").1), (2, 0.0));
    promtool_check(&r.stdout);
    assert!(tree_of(&pki, "text").stdout.contains("sa.key is NOT trusted"));
    assert_eq!(tree_hash(d.path()), before);

    d.write("pki/sa.pub", "not a key\n");
    let before = tree_hash(d.path());
    let (code, v) = check_json(d.path(), &["--cert-dir", p(&pki)]);
    let sa = &v["serviceAccountKeys"];
    assert_eq!((code, sa["status"].as_str(), codes(sa)), (2, Some("critical"), vec!["sa-pub-invalid"]), "{sa:#}");
    assert!(sa["publicKeys"].is_null() && sa["signingKeyTrusted"].is_null(), "{sa:#}");
    let message = sa["findings"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("sa.pub: ") && message.contains("PEM"), "{message}");
    let r = check(d.path(), &["--cert-dir", p(&pki), "-o", "prometheus"]);
    assert_eq!(sample(&parse_prometheus(&r.stdout), "kubepki_sa_public_keys").1, 0.0);
    assert!(tree_of(&pki, "text").stdout.contains("sa.pub unusable"));
    assert_eq!(tree_hash(d.path()), before);

    // sa.pub without sa.key: no token can be signed.
    std::fs::remove_file(pki.join("sa.key")).unwrap();
    d.write("pki/sa.pub", std::fs::read(d.join("pki/ca.crt")).unwrap());
    let (code, v) = check_json(d.path(), &["--cert-dir", p(&pki)]);
    let sa = &v["serviceAccountKeys"];
    assert_eq!((code, codes(sa), sa["keyId"].is_null()), (2, vec!["sa-key-missing"], true), "{sa:#}");
}

/// A 1024-bit RSA sa.key (kube-apiserver signs with it; kubepki's own key reader refuses the
/// size) is a warning with its kid; an sa.key older than --sa-max-age is a warning, and without
/// the flag its age is shown, not judged.
#[test]
fn a_weak_or_old_sa_key_is_a_warning() {
    let d = TestDir::new();
    let made = kubeadm_tree(d.path(), json!({"sa_key": "rsa1024"}));
    let pki = d.join("pki");
    let (code, v) = check_json(d.path(), &["--cert-dir", p(&pki)]);
    let sa = &v["serviceAccountKeys"];
    assert_eq!((code, codes(sa)), (1, vec!["weak-key"]), "{sa:#}");
    assert_eq!((sa["keyId"].as_str(), sa["bits"].as_u64()), (made["sa"]["kid"].as_str(), Some(1024)));
    assert_eq!(sa["signingKeyTrusted"], true);

    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({}));
    let pki = d.join("pki");
    let (code, v) = check_json(d.path(), &["--cert-dir", p(&pki), "--at", "+30d"]);
    let age = v["serviceAccountKeys"]["ageSeconds"].as_i64().unwrap();
    assert!((30 * 86400..31 * 86400).contains(&age), "{age}");
    assert_eq!((code, v["thresholds"]["saMaxAge"].is_null()), (0, true));
    let (code, v) = check_json(d.path(), &["--cert-dir", p(&pki), "--at", "+30d", "--sa-max-age", "7d"]);
    let sa = &v["serviceAccountKeys"];
    assert_eq!((code, sa["status"].as_str(), codes(sa)), (1, Some("warning"), vec!["sa-key-too-old"]), "{sa:#}");
    assert_eq!(v["thresholds"]["saMaxAge"], "7d");
    assert_eq!(check_json(d.path(), &["--cert-dir", p(&pki), "--sa-max-age", "7d"]).0, 0);
    let r = check(d.path(), &["--cert-dir", p(&pki), "--sa-max-age", "soon"]);
    assert_eq!(r.code, 2, "a usage error: {}", r.stderr);
    assert!(r.stderr.contains("--sa-max-age"), "{}", r.stderr);
}

/// After `kubepki rotate-sa reissue` the key's age is counted from the reissue its state
/// records, not from the file's time (here set 400 days back).
#[test]
fn the_sa_key_age_comes_from_rotate_sas_reissue() {
    let d = TestDir::new();
    kubeadm_tree(d.path(), json!({}));
    let pki = d.join("pki");
    for phase in ["prepare", "trust", "reissue"] {
        let r = run(kubepki().args(["rotate-sa", phase, "--cert-dir", p(&pki), "--kubeconfig-dir", p(d.path())]));
        assert_eq!(r.code, 0, "rotate-sa {phase}: {}", r.stderr);
    }
    assert_eq!(run(Command::new("touch").args(["-d", "400 days ago"]).arg(pki.join("sa.key"))).code, 0);
    let (code, v) = check_json(d.path(), &["--cert-dir", p(&pki), "--sa-max-age", "7d"]);
    let sa = &v["serviceAccountKeys"];
    assert_eq!((code, sa["createdAtSource"].as_str(), sa["status"].as_str()), (0, Some("rotation-state"), Some("ok")));
    assert!(sa["ageSeconds"].as_i64().unwrap() < 3600, "{sa:#}");
    // Without the state (another key than the one reissued), the file's time counts.
    let other = TestDir::new();
    kubeadm_tree(other.path(), json!({}));
    std::fs::copy(other.join("pki/sa.key"), pki.join("sa.key")).unwrap();
    std::fs::copy(other.join("pki/sa.pub"), pki.join("sa.pub")).unwrap();
    assert_eq!(run(Command::new("touch").args(["-d", "400 days ago"]).arg(pki.join("sa.key"))).code, 0);
    let (code, v) = check_json(d.path(), &["--cert-dir", p(&pki), "--sa-max-age", "7d"]);
    assert_eq!((code, v["serviceAccountKeys"]["createdAtSource"].as_str()), (1, Some("file-mtime")), "{v:#}");
}
