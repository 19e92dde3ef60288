//! kubepki's integration tests: one binary, run against the `kubepki` binary cargo built, with
//! real etcd, kubectl and openssl. Modules are named after what they cover.

mod agent;
mod audit;
mod broken_inputs;
mod ca_rotation;
mod check;
mod common;
mod crash;
mod csr;
mod examples;
mod existing_pki;
mod exit_codes;
mod fuzz_corpus;
mod ha;
mod help_and_text;
mod hygiene;
mod init;
mod join;
mod kubeadm_fixture;
mod post_write;
mod progress;
mod recover;
mod relative_paths;
mod restart;
mod rotate;
mod rotation_library;
mod sa_rotation;
mod shell;
mod tree;
mod verify;
mod x509_reader;
