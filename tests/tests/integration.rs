//! kubepki's integration tests: one binary, run against the `kubepki` binary cargo built, with
//! real etcd, kubectl and openssl. Modules are named after what they cover.

mod ca_rotation;
mod check;
mod common;
mod crash;
mod init;
mod rotate;
mod verify;
