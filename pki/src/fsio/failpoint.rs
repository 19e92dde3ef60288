//! Failpoints: the crash tests' way to stop a write at each of its steps, as a power cut
//! would. They exist for the test suite only and compile to nothing in other builds.

/// In builds with the `failpoints` feature (test builds: the `kubepki` package's tests enable
/// it), `KUBEPKI_FAILPOINT=<name>[@<n>]` SIGKILLs the process the n-th time (default: first) the
/// named point is reached. The points: `commit:begin`, `flatten:one` (after each link of the
/// earlier linked layout is made a plain file), `commit:staged` (everything staged), `commit:journaled`
/// (the commit point passed), `commit:renamed-one` (after each step of the journal, also
/// during recovery), `commit:renamed-all` (before the journal is removed); and a rotation's
/// steps after its write: `rotate:pending-stored` (what it owes recorded), `rotate:hook-done`,
/// `rotate:verified` (before the record is removed).
/// Crash-safety tests use them to stop a write at every step.
#[cfg(feature = "failpoints")]
pub fn failpoint(name: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static HITS: AtomicUsize = AtomicUsize::new(0);
    let Ok(spec) = std::env::var("KUBEPKI_FAILPOINT") else { return };
    let (want, nth) = match spec.rsplit_once('@') {
        Some((w, n)) => (w, n.parse().unwrap_or(1)),
        None => (spec.as_str(), 1),
    };
    if want == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        // SIGKILL: no unwinding, no destructors, no buffered writes flushed — a power cut as
        // far as the file system state of this process is concerned.
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}

/// Failpoints compile to nothing without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn failpoint(_name: &str) {}
