//! `kubepki-floor [--quick]`: measures the crypto floor in-process and prints it as JSON, for
//! `scripts/bench` to put each whole-process workload next to the work it cannot avoid.
//!
//! Every operation is timed one call at a time on one thread (medians, p10, p90, means in
//! microseconds). `rsa2048_x16_on_2_threads` is the one parallel measure: sixteen RSA-2048 keys
//! (W1's count) on a two-thread rayon pool, timed as a whole, repeated. `kubepki-floor --rsa-x16`
//! only generates those sixteen keys on all cores and exits, to be timed as a whole process.
//! `kubepki-floor --fs-nodes N OUT` only writes W2's files — N node directories under the new
//! directory OUT, each with a key and a certificate of the sizes kubepki writes (one key and one
//! certificate made once, written N times) — and syncs them, as cheaply as a program can: the
//! directories made on one thread (directories made in one directory wait for each other),
//! then each file created, written and closed on all cores, the file system synced in the
//! background meanwhile (as kubepki does), then once more. W2's file-system floor, as a whole
//! process.

use std::time::Instant;

use anyhow::Result;
use kubepki_bench::{Stats, cluster_ca, issue_pem, leaf_validity, parse_expiry, sample, serving_request, sign_leaf};
use kubepki_pki::{Certificate, KeyAlgorithm, node};
use rayon::prelude::*;
use serde_json::json;
use time::OffsetDateTime;

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--rsa-x16") {
        // W1 RSA's floor as a process of its own, which scripts/bench runs in the same
        // alternating rounds as kubepki init: sixteen RSA-2048 keys on all cores, nothing else.
        let keys = (0..16).into_par_iter().map(|_| KeyAlgorithm::Rsa2048.generate()).collect::<Result<Vec<_>, _>>()?;
        std::hint::black_box(keys);
        return Ok(());
    }
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, n, out] = args.as_slice()
        && flag == "--fs-nodes"
    {
        return fs_nodes(n.parse()?, std::path::Path::new(out));
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (fast, rsa, par) = if quick { (500, 40, 5) } else { (3000, 200, 15) };
    let validity = leaf_validity();
    let p256_ca = cluster_ca(KeyAlgorithm::EcdsaP256)?;
    let rsa_ca = cluster_ca(KeyAlgorithm::Rsa2048)?;
    let (p256_signer, rsa_signer) = (p256_ca.signer("bench")?, rsa_ca.signer("bench")?);
    let request = serving_request(1)?;
    let p256_key = KeyAlgorithm::EcdsaP256.generate()?;
    let pem = kubepki_bench::sample_certificate_pem()?;
    let now = OffsetDateTime::now_utc().unix_timestamp();

    let mut out = serde_json::Map::new();
    let mut put = |name: &str, s: Stats| {
        eprintln!(
            "{name:<28} median {:>10.1} µs  p10 {:>10.1}  p90 {:>10.1}  mean {:>10.1}",
            s.median, s.p10, s.p90, s.mean
        );
        out.insert(name.to_owned(), s.to_json());
    };
    put("keygen_p256", sample(fast, || KeyAlgorithm::EcdsaP256.generate()));
    put("keygen_p384", sample(fast / 2, || KeyAlgorithm::EcdsaP384.generate()));
    put("sign_p256_ca", sample(fast, || sign_leaf(&p256_signer, &request, &p256_key, validity)));
    put("sign_rsa2048_ca", sample(fast / 5, || sign_leaf(&rsa_signer, &request, &p256_key, validity)));
    put("issue_p256_pem", sample(fast, || issue_pem(&p256_signer, &request, KeyAlgorithm::EcdsaP256, validity)));
    put("parse_expiry", sample(fast * 4, || parse_expiry(pem.as_bytes(), now)));
    put("kubepki_certificate_parse", sample(fast * 4, || Certificate::from_pem_bundle(pem.as_bytes(), "bench")));
    put("keygen_rsa2048", sample(rsa, || KeyAlgorithm::Rsa2048.generate()));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
    let sixteen: Vec<f64> = (0..par)
        .map(|_| {
            let start = Instant::now();
            pool.install(|| (0..16).into_par_iter().map(|_| KeyAlgorithm::Rsa2048.generate()).collect::<Vec<_>>());
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    put("rsa2048_x16_on_2_threads", Stats::of(sixteen));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{}", serde_json::to_string_pretty(&json!({"cores": cores, "quick": quick, "ops": out}))?);
    Ok(())
}

/// W2's files alone: `n` node directories under `out` with a key and a certificate each.
fn fs_nodes(n: usize, out: &std::path::Path) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let cert = kubepki_bench::sample_certificate_pem()?;
    let key = KeyAlgorithm::EcdsaP256.generate()?.to_pem();
    std::fs::create_dir(out)?;
    let root = std::fs::File::open(out)?;
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        // The disk syncs in the background while the files are written, as kubepki's does.
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = rustix::fs::syncfs(&root);
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        let written = (|| -> Result<()> {
            let dirs: Vec<_> = (1..=n).map(|i| out.join(format!("node-{i:05}"))).collect();
            dirs.iter().try_for_each(std::fs::create_dir)?;
            dirs.par_iter().try_for_each(|dir| -> std::io::Result<()> {
                for (name, contents, mode) in
                    [(node::KEY_FILE, key.as_bytes(), 0o600), (node::CERT_FILE, cert.as_bytes(), 0o644)]
                {
                    let mut file =
                        std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(dir.join(name))?;
                    file.write_all(contents)?;
                }
                Ok(())
            })?;
            Ok(())
        })();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        written
    })?;
    rustix::fs::syncfs(&root)?;
    Ok(())
}
