//! The operations kubepki's benchmarks time, shared by the criterion micro-benchmarks
//! (`cargo bench -p kubepki-bench`) and the floor probe (`kubepki-floor`) that `scripts/bench`
//! runs to put every whole-process workload next to its crypto floor.
//!
//! Each operation is the smallest unit of one workload: a key, one signature, one parse. None
//! of them touches the disk except [`init_in`], the whole `init` in-process.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use kubepki_pki::node::Node;
use kubepki_pki::{
    CertRequest, CertificateAuthority, ClusterConfig, InitOptions, KeyAlgorithm, Lifetime, PrivateKey, Signer,
    SigningCa, Validity,
};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

/// Timing statistics of one operation, in microseconds.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    /// Samples taken.
    pub n: usize,
    /// Median.
    pub median: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Mean.
    pub mean: f64,
}

impl Stats {
    /// Statistics of `samples` (microseconds); `samples` must not be empty.
    pub fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let at = |q: f64| samples[((n - 1) as f64 * q).round() as usize];
        Self { n, median: at(0.5), p10: at(0.1), p90: at(0.9), mean: samples.iter().sum::<f64>() / n as f64 }
    }

    /// As a JSON object.
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({"n": self.n, "median_us": self.median, "p10_us": self.p10, "p90_us": self.p90, "mean_us": self.mean})
    }
}

/// Times `n` calls of `f`, one by one, after `n / 10` warm-up calls.
pub fn sample<T>(n: usize, mut f: impl FnMut() -> T) -> Stats {
    for _ in 0..n / 10 {
        std::hint::black_box(f());
    }
    let samples = (0..n.max(1))
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    Stats::of(samples)
}

/// A cluster CA (`kubernetes`) held in memory, with a key of `algorithm`, as the commands
/// hold a CA read from the cert dir.
pub fn cluster_ca(algorithm: KeyAlgorithm) -> Result<CertificateAuthority> {
    let ca = SigningCa::generate(
        "ca",
        "kubernetes",
        algorithm,
        Lifetime::DEFAULT_CA,
        OffsetDateTime::now_utc(),
        PathBuf::from("ca.crt"),
        PathBuf::from("ca.key"),
    )?;
    Ok(ca.into())
}

/// The kubelet serving request of node `i` (`node-<i>`, one IPv4 address), as W2 issues it.
pub fn serving_request(i: u32) -> Result<CertRequest> {
    let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
    Ok(Node::new(&format!("node-{i:05}"), vec![ip.into()])?.serving_request())
}

/// One year from now, backdated as kubeadm backdates.
pub fn leaf_validity() -> Validity {
    Validity::starting_at(OffsetDateTime::now_utc(), Lifetime::DEFAULT_CERT)
}

/// Issues one leaf for an existing key: one signature, the DER returned. The signer is built
/// once per CA, as every bulk path of kubepki builds it.
pub fn sign_leaf(signer: &Signer<'_>, request: &CertRequest, key: &PrivateKey, validity: Validity) -> Result<Vec<u8>> {
    Ok(signer.sign("bench", request, key, validity)?)
}

/// One W2 unit: a new key, one signature, the certificate and the key as PEM.
pub fn issue_pem(
    signer: &Signer<'_>,
    request: &CertRequest,
    algorithm: KeyAlgorithm,
    validity: Validity,
) -> Result<(String, Zeroizing<String>)> {
    let key = algorithm.generate()?;
    let der = signer.sign("bench", request, &key, validity)?;
    Ok((kubepki_pki::pem::encode("CERTIFICATE", &der), key.to_pem()))
}

/// The PEM of a kubelet serving certificate signed by a P-256 CA (W3's input, one file's worth).
pub fn sample_certificate_pem() -> Result<String> {
    let ca = cluster_ca(KeyAlgorithm::EcdsaP256)?;
    Ok(issue_pem(&ca.signer("bench")?, &serving_request(1)?, KeyAlgorithm::EcdsaP256, leaf_validity())?.0)
}

/// The floor of an expiry check: PEM decode, X.509 parse, NotAfter against `now` (seconds
/// left). This is what any checker has to do per certificate, and nothing more.
pub fn parse_expiry(pem: &[u8], now: i64) -> Result<i64> {
    let blocks = kubepki_pki::pem::parse(pem).map_err(anyhow::Error::msg)?;
    let block = blocks.first().ok_or_else(|| anyhow::anyhow!("no PEM block"))?;
    let (_, x509) = x509_parser::certificate::X509Certificate::from_der(&block.der)?;
    Ok(x509.validity().not_after.timestamp() - now)
}

/// The whole `init` in-process: a full kubeadm PKI and five kubeconfigs under `dir` (which
/// must not hold one yet), written through the journal.
pub fn init_in(dir: &Path, algorithm: KeyAlgorithm) -> Result<usize> {
    let mut cfg = ClusterConfig::new("cp1", "10.0.0.11".parse()?);
    cfg.cert_dir = dir.join("pki");
    cfg.kubeconfig_dir = dir.to_path_buf();
    cfg.encryption_algorithm = algorithm;
    cfg.control_plane_endpoint = Some("api.example.internal:6443".into());
    Ok(kubepki_pki::init(&cfg, &InitOptions::now())?.written.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_runs_and_the_sample_cert_is_a_year_long() {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let pem = sample_certificate_pem().unwrap();
        let left = parse_expiry(pem.as_bytes(), now).unwrap();
        assert!((364 * 86400..=366 * 86400).contains(&left), "{left}");
        let ca = cluster_ca(KeyAlgorithm::EcdsaP256).unwrap();
        let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let der = sign_leaf(&ca.signer("t").unwrap(), &serving_request(7).unwrap(), &key, leaf_validity()).unwrap();
        let cert = kubepki_pki::Certificate::from_der(der, "t").unwrap();
        assert_eq!(cert.subject.common_name, "system:node:node-00007");
        let dir = tempfile::tempdir().unwrap();
        assert!(init_in(dir.path(), KeyAlgorithm::EcdsaP256).unwrap() >= 20);
    }

    #[test]
    fn stats_take_percentiles_of_sorted_samples() {
        let s = Stats::of(vec![5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((s.n, s.median, s.mean), (5, 3.0, 3.0));
        assert_eq!((s.p10, s.p90), (1.0, 5.0));
    }
}
