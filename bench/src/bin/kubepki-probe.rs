//! `kubepki-probe`: one workload in-process, for profilers (perf, callgrind) and for timing the
//! library without the CLI around it.
//!
//! ```text
//! kubepki-probe init ECDSA-P256|RSA-2048 OUT       # W1: a full PKI under OUT (must not exist)
//! kubepki-probe issue-serving N OUT                # W2: N kubelet serving certificates under OUT
//! ```
//!
//! Prints the wall time of the workload (not of the set-up) on standard error.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use kubepki_pki::node::{self, Node};
use kubepki_pki::{KeyAlgorithm, Lifetime, OffsetDateTime};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["init", alg, out] => {
            let alg: KeyAlgorithm = alg.parse()?;
            let start = Instant::now();
            let n = kubepki_bench::init_in(Path::new(out), alg)?;
            eprintln!("init {alg}: {n} files in {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
        }
        ["issue-serving", n, out] => {
            let n: u32 = n.parse().context("N")?;
            let ca = kubepki_bench::cluster_ca(KeyAlgorithm::EcdsaP256)?;
            let nodes = (1..=n)
                .map(|i| Node::new(&format!("node-{i:05}"), vec![std::net::Ipv4Addr::from(0x0a00_0000 + i).into()]))
                .collect::<Result<Vec<_>, _>>()?;
            let start = Instant::now();
            let written = node::issue_serving(
                &ca,
                &nodes,
                Path::new(out),
                KeyAlgorithm::EcdsaP256,
                Lifetime::DEFAULT_CERT,
                OffsetDateTime::now_utc(),
                &|_| {},
            )?;
            eprintln!("issue-serving: {} files in {:.1} ms", written.len(), start.elapsed().as_secs_f64() * 1e3);
        }
        _ => bail!("usage: kubepki-probe init ALG OUT | issue-serving N OUT"),
    }
    Ok(())
}
