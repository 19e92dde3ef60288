//! `kubepki init` and `kubepki issue`: kubeadm's PKI, checked by independent verifiers.

use crate::common::*;

#[test]
fn init_twice_writes_nothing_the_second_time() {
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let before = tree_hash(d.path());
    let again = init(d.path(), &[]).ok();
    assert!(again.stdout.contains("nothing written"), "{}", again.stdout);
    assert_eq!(tree_hash(d.path()), before);
}
