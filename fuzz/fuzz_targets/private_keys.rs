//! Private key files: PKCS#1, SEC 1 and PKCS#8 PEM, through kubepki's own DER wrapping.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kubepki_tests::fuzz_support::private_key(data);
});
