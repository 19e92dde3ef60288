//! Discovery and evaluation of a directory of 10,000 certificates, as `kubepki check --file DIR`
//! does it: `cargo bench -p kubepki-rotator --bench scan`.
//!
//! Two runs: certificates from a CA that is not the cert dir's (parsing only), and the same
//! number issued by the cert dir's CA (each signature is then verified while linking).

use std::path::Path;
use std::time::{Duration, Instant};

use kubepki_pki::issue::{self, Signer};
use kubepki_pki::{AltNames, CertRequest, KeyAlgorithm, Lifetime, Subject, Usage, Validity};
use kubepki_rotator::check::{Policy, evaluate};
use kubepki_rotator::inventory::{InventoryBuilder, SourcePath, Sources};

const CERTS: usize = 10_000;
const RUNS: usize = 15;

/// Writes a CA into `<dir>/pki/ca.{crt,key}` and `CERTS` leaves it signed into `<dir>/certs`,
/// spread over 100 subdirectories.
fn fixtures(dir: &Path) {
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let ca = issue::self_signed_ca("kubernetes", &ca_key, Validity::starting_at(now, Lifetime::DEFAULT_CA)).unwrap();
    std::fs::create_dir_all(dir.join("pki")).unwrap();
    std::fs::write(dir.join("pki/ca.crt"), ca.to_pem()).unwrap();
    std::fs::write(dir.join("pki/ca.key"), ca_key.to_pem().as_bytes()).unwrap();
    let signer = Signer::new("ca", &ca, &ca_key).unwrap();
    let leaf_key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    for i in 0..CERTS {
        let request = CertRequest {
            subject: Subject::new(format!("leaf-{i}"), ["bench"]),
            sans: AltNames::new(),
            usage: Usage::Client,
        };
        let lifetime = Lifetime::new(Duration::from_secs(86_400 * (1 + i as u64 % 400))).unwrap();
        let der = signer.sign("leaf", &request, &leaf_key, Validity::starting_at(now, lifetime)).unwrap();
        let sub = dir.join(format!("certs/{:02}", i % 100));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("leaf-{i}.crt")), kubepki_pki::pem::encode("CERTIFICATE", &der)).unwrap();
    }
}

fn measure(label: &str, sources: &Sources) {
    let mut times = Vec::with_capacity(RUNS);
    let mut items = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let inventory = InventoryBuilder::discover(sources).finish();
        let report = evaluate(&inventory, &Policy::default(), time::OffsetDateTime::now_utc());
        items = report.entries.len();
        std::hint::black_box(report.verdict());
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "{label}: {items} certificates, median {:.1} ms, min {:.1} ms, max {:.1} ms ({} threads)",
        times[RUNS / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[RUNS - 1].as_secs_f64() * 1e3,
        rayon::current_num_threads(),
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    fixtures(dir.path());
    let files = Sources { files: vec![dir.path().join("certs")], ..Sources::default() };
    measure("scan (issuer unknown)", &files);
    let linked = Sources { cert_dir: Some(SourcePath::explicit(dir.path().join("pki"))), ..files };
    measure("scan + verify against the cert dir CA", &linked);
}
