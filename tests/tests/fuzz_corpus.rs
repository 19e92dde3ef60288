//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same code the fuzz
//! targets run, on stable Rust: every input ever found interesting stays a regression test.

use std::path::Path;

use crate::common::*;

fn replay(target: &str, body: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| body(&data));
        assert!(result.is_ok(), "{} panicked on {}", target, path.display());
        n += 1;
    }
    n
}

#[test]
fn the_fuzz_corpus_replays_without_a_panic() {
    assert!(replay("pem_certificates", fuzz_support::certificates) >= 250);
    assert!(replay("private_keys", fuzz_support::private_key) >= 250);
    assert!(replay("kubeconfig", fuzz_support::kubeconfig) >= 1000);
    assert!(replay("kubeadm_config", fuzz_support::config_file) >= 1000);
}
