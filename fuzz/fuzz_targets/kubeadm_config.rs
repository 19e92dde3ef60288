//! kubeadm configuration files (v1beta3/v1beta4) and kubepki's RotationConfiguration.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kubepki_tests::fuzz_support::config_file(data);
});
