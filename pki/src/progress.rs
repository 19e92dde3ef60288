//! Progress of slow work for a front end to show: key generation (an RSA-4096 key takes a
//! second or more) and waits (for a lock another run holds, for an endpoint that is
//! restarting). One observer per process, set once by the program ([`set_observer`]); without
//! one, nothing is reported. The observer is told what is made, never key material.

use std::sync::OnceLock;
use std::time::Duration;

use crate::key::KeyAlgorithm;

/// Told about key generation as it happens; called from any thread.
pub trait Observer: Send + Sync {
    /// `count` keys of `algorithm` are about to be made, for `what` (`init`, `rotate`).
    fn keys_planned(&self, what: &str, count: usize, algorithm: KeyAlgorithm) {
        let _ = (what, count, algorithm);
    }

    /// One key of `algorithm` was made.
    fn key_made(&self, algorithm: KeyAlgorithm) {
        let _ = algorithm;
    }

    /// Still waiting for `what` (`the lock of /etc/kubernetes/pki held by another kubepki run`,
    /// `https://10.0.0.11:6443`): `waited` so far, at most `limit` in all. Called again and
    /// again (a few times a second) while the wait lasts.
    fn waiting(&self, what: &str, waited: Duration, limit: Duration) {
        let _ = (what, waited, limit);
    }

    /// The waits reported by [`Observer::waiting`] are over.
    fn wait_over(&self) {}
}

static OBSERVER: OnceLock<Box<dyn Observer>> = OnceLock::new();

/// Sets the process's observer; `false` if one was already set (it stays).
pub fn set_observer(observer: Box<dyn Observer>) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// Tells the observer, if any, that `count` keys are about to be made for `what`.
pub fn keys_planned(what: &str, count: usize, algorithm: KeyAlgorithm) {
    if let Some(o) = OBSERVER.get() {
        o.keys_planned(what, count, algorithm);
    }
}

/// Tells the observer, if any, that a key was made.
pub(crate) fn key_made(algorithm: KeyAlgorithm) {
    if let Some(o) = OBSERVER.get() {
        o.key_made(algorithm);
    }
}

/// Tells the observer, if any, that `what` is still awaited: `waited` so far of at most `limit`.
pub fn waiting(what: &str, waited: Duration, limit: Duration) {
    if let Some(o) = OBSERVER.get() {
        o.waiting(what, waited, limit);
    }
}

/// Tells the observer, if any, that the wait is over.
pub fn wait_over() {
    if let Some(o) = OBSERVER.get() {
        o.wait_over();
    }
}
