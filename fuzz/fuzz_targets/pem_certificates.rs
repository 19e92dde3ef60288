//! Certificate files as `check` and every loader read them: PEM bundles (every CERTIFICATE
//! block) and single DER certificates, then everything kubepki derives from a certificate.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kubepki_tests::fuzz_support::certificates(data);
});
