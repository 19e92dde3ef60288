//! Kubeconfig files: parsing, every accessor, and an edit-and-rewrite round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kubepki_tests::fuzz_support::kubeconfig(data);
});
