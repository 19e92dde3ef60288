//! The process's one tokio runtime. Everything that talks to a cluster (Secrets through the
//! API, the etcd lock and the cluster-wide rotation records, verification probes, the hook's
//! signal watch, the agent's server) runs on it, so a process holds one set of worker threads
//! and one I/O, time and signal driver however many of those it uses; the etcd lease is kept
//! alive by a task on it while the caller's thread does blocking work.
//!
//! The library's entry points stay blocking: [`block_on`] runs a future to completion from
//! synchronous code, and from inside a runtime (a caller's, or this one's) on a thread of its
//! own, since tokio forbids blocking a thread that drives tasks.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::{Error, Result};

static RUNTIME: OnceLock<std::io::Result<Runtime>> = OnceLock::new();

/// The runtime, built the first time it is asked for (two worker threads, every driver on),
/// once: callers racing to it wait for the one build, and a build that failed stays failed.
pub fn shared() -> Result<&'static Runtime> {
    // Two workers whatever the node's core count (tokio's default is one per core: 64 threads
    // for an idle agent on a large node): enough for a lease kept alive beside a request.
    let built = RUNTIME.get_or_init(|| {
        Builder::new_multi_thread().worker_threads(2).thread_name("kubepki-runtime").enable_all().build()
    });
    built.as_ref().map_err(|e| Error::Runtime { source: std::io::Error::new(e.kind(), e.to_string()) })
}

/// Runs `future` to completion on the shared runtime, blocking the calling thread.
pub fn block_on<F>(future: F) -> Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = shared()?;
    if Handle::try_current().is_err() {
        return Ok(runtime.block_on(future));
    }
    Ok(std::thread::scope(|scope| {
        scope.spawn(|| runtime.block_on(future)).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_runtime_serves_every_caller_inside_a_runtime_or_not() {
        let outside = block_on(async { Handle::current().id() }).unwrap();
        let inside = shared().unwrap().block_on(async { block_on(async { Handle::current().id() }).unwrap() });
        assert_eq!(outside, inside);
        assert_eq!(outside, shared().unwrap().handle().id());
    }
}
