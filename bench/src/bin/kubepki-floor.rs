//! `kubepki-floor [--quick]`: measures the crypto floor in-process and prints it as JSON, for
//! `scripts/bench` to put each whole-process workload next to the work it cannot avoid.
//!
//! Every operation is timed one call at a time on one thread (medians, p10, p90, means in
//! microseconds). `rsa2048_x16_on_2_threads` is the one parallel measure: sixteen RSA-2048 keys
//! (W1's count) on a two-thread rayon pool, timed as a whole, repeated. `kubepki-floor --rsa-x16`
//! only generates those sixteen keys on all cores and exits, to be timed as a whole process.

use std::time::Instant;

use anyhow::Result;
use kubepki_bench::{Stats, cluster_ca, issue_pem, leaf_validity, parse_expiry, sample, serving_request, sign_leaf};
use kubepki_pki::{Certificate, KeyAlgorithm};
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
