//! Discovery and evaluation of a directory of 10,000 certificates, as `kubepki check --file DIR`
//! does it: `cargo bench -p kubepki-rotator --bench scan`.
//!
//! Two runs: certificates from a CA that is not the cert dir's, and the same certificates with
//! their CA as the cert dir's (each is then linked to it by issuer name and key identifier).
//! Wall time and CPU time are printed: on a busy machine only the second is comparable.

use std::path::Path;
use std::time::{Duration, Instant};

use kubepki_pki::{AltNames, CertRequest, KeyAlgorithm, Lifetime, Signer, Subject, Usage, Validity, self_signed_ca};
use kubepki_rotator::check::{ExpiryPolicy, evaluate};
use kubepki_rotator::inventory::{InventoryBuilder, SourcePath, Sources};

const CERTS: usize = 10_000;
const RUNS: usize = 15;

/// Writes a CA into `<dir>/pki/ca.{crt,key}` and `CERTS` leaves it signed into `<dir>/certs`,
/// spread over 100 subdirectories.
fn fixtures(dir: &Path) {
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let ca = self_signed_ca("kubernetes", &ca_key, Validity::starting_at(now, Lifetime::DEFAULT_CA)).unwrap();
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

/// CPU time of this process so far (user + system), from /proc: wall time alone misleads on
/// a busy machine.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: u64 = fields.get(11..13).map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    Duration::from_millis(ticks * 10)
}

fn measure(label: &str, sources: &Sources) {
    let mut times = Vec::with_capacity(RUNS);
    let mut items = 0;
    let cpu_start = cpu_time();
    for _ in 0..RUNS {
        let start = Instant::now();
        let inventory = InventoryBuilder::discover(sources).finish();
        let report = evaluate(&inventory, &ExpiryPolicy::default(), time::OffsetDateTime::now_utc());
        items = report.entries.len();
        std::hint::black_box(report.verdict());
        times.push(start.elapsed());
    }
    let cpu = (cpu_time() - cpu_start).as_secs_f64() * 1e3 / RUNS as f64;
    times.sort();
    println!(
        "{label}: {items} certificates, median {:.1} ms, min {:.1} ms, max {:.1} ms, {cpu:.0} ms CPU per run ({} threads)",
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
    measure("scan, linked to the cert dir CA", &linked);
}
