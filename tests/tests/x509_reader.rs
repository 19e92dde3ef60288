//! kubepki's own X.509 reader (`pki/src/x509.rs`) against x509-parser, on certificates made by
//! openssl in every shape a cluster meets, and on the committed fuzz corpus with Go's
//! crypto/x509 (through kubectl) as the judge of what only x509-parser reads.

use std::path::Path;
use std::process::Command;

use kubepki_tests::x509_reference::{Verdict, certificates_in, compare};

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn der_of(dir: &Path, pem: &str) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["x509", "-in", pem, "-outform", "DER"])
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(out.status.success());
    out.stdout
}

/// Certificates from openssl: RSA of several sizes, P-256/P-384, Ed25519, v1 without
/// extensions, GeneralizedTime past 2049, multi-valued RDNs, BMP/UTF-8/IA5 names, emails,
/// every common extension (policies, CRL distribution points, AIA, name constraints,
/// key usage, both EKUs, IP and DNS SANs, URIs and emails in the SAN).
#[test]
fn openssl_certificates_read_as_x509_parser_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("ext.cnf"),
        "[v3]\n\
         basicConstraints = critical, CA:TRUE, pathlen:2\n\
         keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign\n\
         extendedKeyUsage = serverAuth, clientAuth, codeSigning\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid:always, issuer\n\
         subjectAltName = DNS:kubernetes, DNS:kubernetes.default.svc, IP:10.96.0.1, IP:fd00::1, \
         email:ops@example.com, URI:spiffe://cluster.local/ns/a, DNS:*.example.com\n\
         certificatePolicies = 2.23.140.1.2.1\n\
         crlDistributionPoints = URI:http://crl.example.com/ca.crl\n\
         authorityInfoAccess = OCSP;URI:http://ocsp.example.com\n\
         nameConstraints = permitted;DNS:.cluster.local\n\
         [leaf]\n\
         basicConstraints = CA:FALSE\n\
         extendedKeyUsage = clientAuth\n\
         subjectAltName = IP:192.168.0.10\n",
    )
    .unwrap();
    std::fs::write(d.join("min.cnf"), "[req]\ndistinguished_name = dn\n[dn]\n").unwrap();
    std::fs::write(d.join("bmp.cnf"), "[req]\nstring_mask = MASK:0x800\ndistinguished_name = dn\n[dn]\n").unwrap();
    let keys: &[(&str, &[&str])] = &[
        ("rsa2048", &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"]),
        ("rsa3072", &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out"]),
        ("rsa1023", &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1023", "-out"]),
        ("p256", &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"]),
        ("p384", &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out"]),
        ("ed25519", &["genpkey", "-algorithm", "ED25519", "-out"]),
    ];
    let subjects = [
        "/CN=kubernetes",
        "/O=system:masters/O=kubeadm:cluster-admins/CN=kubernetes-admin",
        "/C=DE/ST=Berlin/L=Mitte/O=Example/OU=ops+OU=sre/CN=cp1.example.com/emailAddress=ops@example.com",
        "/DC=local/DC=cluster/CN=Grüße",
        "/serialNumber=42/CN=odd attribute",
    ];
    let mut made = Vec::new();
    for (i, (name, args)) in keys.iter().enumerate() {
        let key = format!("{name}.key");
        let mut a = args.to_vec();
        a.push(&key);
        openssl(&a, d);
        let subject = subjects[i % subjects.len()];
        for (ext, days) in [("v3", "3650"), ("leaf", "30")] {
            let crt = format!("{name}-{ext}.crt");
            let mut a = vec!["req", "-x509", "-new", "-key", &key, "-subj", subject, "-days", days, "-out", &crt];
            a.extend(["-utf8", "-config", "ext.cnf", "-extensions", ext]);
            openssl(&a, d);
            made.push(crt);
        }
        // Version 1, no extensions, serial 0, notAfter in 2126 (a GeneralizedTime).
        let (csr, crt) = (format!("{name}.csr"), format!("{name}-v1.crt"));
        openssl(&["req", "-new", "-key", &key, "-subj", subject, "-utf8", "-config", "min.cnf", "-out", &csr], d);
        let sign = ["x509", "-req", "-in", &csr, "-key", &key, "-days", "36500", "-set_serial", "0", "-out", &crt];
        openssl(&sign, d);
        made.push(crt);
    }
    // BMPString names (string_mask 0x800 makes openssl write every name string as one).
    openssl(
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "p256.key",
            "-subj",
            "/CN=bmp name/O=wide",
            "-config",
            "bmp.cnf",
            "-out",
            "bmp.crt",
        ],
        d,
    );
    made.push("bmp.crt".into());
    let mut both = 0;
    for crt in &made {
        let der = der_of(d, crt);
        assert_eq!(compare(&der), Verdict::Both, "{crt}");
        both += 1;
    }
    assert!(both >= 19, "{both}");
    // The sizes and names kubepki reports for them.
    let read = |crt: &str| kubepki_pki::Certificate::from_der(der_of(d, crt), crt).unwrap();
    assert_eq!(read("rsa1023-leaf.crt").public_key.to_string(), "RSA-1023");
    assert!(read("rsa1023-leaf.crt").public_key.is_weak());
    assert_eq!(read("p384-v3.crt").public_key.to_string(), "ECDSA-P384");
    assert_eq!(read("ed25519-v3.crt").public_key.to_string(), "Ed25519");
    let far = read("p256-v1.crt");
    assert!(far.not_after.year() > 2100, "GeneralizedTime after 2049: {}", far.not_after);
    assert_eq!(far.serial, "00");
    let admin = read("rsa3072-v3.crt");
    assert_eq!(admin.subject.organizations, ["system:masters", "kubeadm:cluster-admins"]);
    assert_eq!(admin.subject.common_name, "kubernetes-admin");
    assert!(admin.is_ca);
    assert_eq!(admin.sans.dns_names().collect::<Vec<_>>(), ["*.example.com", "kubernetes", "kubernetes.default.svc"]);
    assert_eq!(read("bmp.crt").subject.common_name, "", "a BMPString CN is not read as text, as x509-parser");
}

/// Whether `der` is exactly one SEQUENCE element with a definite, shortest-form length.
fn is_one_sequence(der: &[u8]) -> bool {
    let (len, header) = match der {
        [0x30, n, ..] if *n < 0x80 => (usize::from(*n), 2),
        [0x30, 0x81, n, ..] if *n >= 0x80 => (usize::from(*n), 3),
        [0x30, 0x82, a, b, ..] if *a != 0 => (usize::from(*a) << 8 | usize::from(*b), 4),
        _ => return false,
    };
    der.len() == header + len
}

/// Whether Go's crypto/x509 refuses `pem`, asked of kubectl (a Go program) by loading it as a
/// client certificate: `tls.X509KeyPair` parses the certificate before it looks at the key or
/// dials, and says `x509: ...` when it cannot; a certificate it reads gets as far as comparing
/// it with the key (an unrelated one) or dialing a closed port.
fn go_refuses(dir: &Path, pem: &str, key: &str) -> Result<bool, String> {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: x\n\
             clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: u, user: {{client-certificate-data: {}, client-key-data: {}}}}}]\n\
             contexts: [{{name: x, context: {{cluster: c, user: u}}}}]\n",
            b64(pem),
            b64(key)
        ),
    )
    .unwrap();
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "--raw", "/healthz", "--request-timeout", "5s"])
        .output()
        .expect("kubectl runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if stderr.contains("x509:") {
        Ok(true)
    } else if stderr.contains("refused") || stderr.contains("private key does not match") {
        Ok(false)
    } else {
        Err(stderr)
    }
}

/// Every certificate in the committed fuzz corpus: what both kubepki and x509-parser read
/// reads the same (compare panics otherwise); whatever kubepki refuses, Go's crypto/x509
/// (kubeadm's and the API server's parser) refuses too, whether x509-parser reads it or not.
/// x509-parser is lenient where Go is not: it stops reading a Name at its first malformed
/// attribute and carries on as if the rest were not there, ignores what follows the fields it
/// knows in a SEQUENCE, and reads a tag by its number whatever its class.
#[test]
fn the_fuzz_corpus_reads_as_x509_parser_reads_it_and_kubepki_refuses_only_what_go_refuses() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/pem_certificates");
    let key = kubepki_pki::KeyAlgorithm::EcdsaP256.generate().unwrap().to_pem();
    let (mut both, mut refused) = (0, Vec::new());
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        for der in certificates_in(&data) {
            match compare(&der) {
                Verdict::Both => both += 1,
                Verdict::OnlyKubepki => {}
                // Not one whole DER SEQUENCE: Go's ParseCertificate refuses it on its first read
                // ("malformed certificate") or its last check ("trailing data"), as kubepki does.
                Verdict::Neither if !is_one_sequence(&der) => {}
                Verdict::OnlyReference(_) | Verdict::Neither => refused.push((path.clone(), der)),
            }
        }
    }
    assert!(both >= 50 && refused.len() >= 100, "both {both}, refused {}", refused.len());
    // Go is asked through a process per certificate: four at a time.
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let scratch = tempfile::tempdir().unwrap();
                while let Some((path, der)) = refused.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                    let pem = kubepki_pki::pem::encode("CERTIFICATE", der);
                    let go = go_refuses(scratch.path(), &pem, &key).unwrap_or_else(|e| panic!("kubectl: {e}"));
                    let ours = kubepki_pki::Certificate::from_der(der.clone(), "corpus").unwrap_err();
                    assert!(go, "{}: Go reads it, kubepki says {ours}", path.display());
                }
            });
        }
    });
}
