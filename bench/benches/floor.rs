//! Criterion micro-benchmarks of the crypto floor: key generation, one signature, one parse,
//! and the whole `init` in-process. `cargo bench -p kubepki-bench [-- FILTER]`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use kubepki_bench::{cluster_ca, init_in, issue_pem, leaf_validity, parse_expiry, serving_request, sign_leaf};
use kubepki_pki::{Certificate, KeyAlgorithm};
use time::OffsetDateTime;

fn keygen(c: &mut Criterion) {
    let mut g = c.benchmark_group("keygen");
    g.bench_function("ecdsa-p256", |b| b.iter(|| KeyAlgorithm::EcdsaP256.generate().unwrap()));
    g.bench_function("ecdsa-p384", |b| b.iter(|| KeyAlgorithm::EcdsaP384.generate().unwrap()));
    // About 50 ms a key with a long tail: few samples, long enough to see the tail.
    g.sample_size(20).measurement_time(Duration::from_secs(20));
    g.bench_function("rsa-2048", |b| b.iter(|| KeyAlgorithm::Rsa2048.generate().unwrap()));
    g.finish();
}

fn issue(c: &mut Criterion) {
    let validity = leaf_validity();
    let request = serving_request(1).unwrap();
    let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
    let mut g = c.benchmark_group("issue");
    for (name, alg) in
        [("sign-with-ecdsa-p256-ca", KeyAlgorithm::EcdsaP256), ("sign-with-rsa-2048-ca", KeyAlgorithm::Rsa2048)]
    {
        let ca = cluster_ca(alg).unwrap();
        let signer = ca.signer("bench").unwrap();
        g.bench_function(name, |b| b.iter(|| sign_leaf(&signer, black_box(&request), &key, validity).unwrap()));
    }
    let ca = cluster_ca(KeyAlgorithm::EcdsaP256).unwrap();
    let signer = ca.signer("bench").unwrap();
    g.bench_function("keygen-sign-pem-ecdsa-p256", |b| {
        b.iter(|| issue_pem(&signer, black_box(&request), KeyAlgorithm::EcdsaP256, validity).unwrap())
    });
    g.finish();
}

fn parse(c: &mut Criterion) {
    let pem = kubepki_bench::sample_certificate_pem().unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut g = c.benchmark_group("parse");
    g.bench_function("pem-x509-expiry", |b| b.iter(|| parse_expiry(black_box(pem.as_bytes()), now).unwrap()));
    g.bench_function("kubepki-certificate", |b| {
        b.iter(|| Certificate::from_pem_bundle(black_box(pem.as_bytes()), "bench").unwrap())
    });
    g.finish();
}

fn init(c: &mut Criterion) {
    let mut g = c.benchmark_group("init");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for (name, alg) in [("ecdsa-p256", KeyAlgorithm::EcdsaP256), ("rsa-2048", KeyAlgorithm::Rsa2048)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |dir| init_in(dir.path(), alg).unwrap(),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, keygen, issue, parse, init);
criterion_main!(benches);
