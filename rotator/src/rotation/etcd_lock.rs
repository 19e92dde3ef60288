//! A lock held in etcd, so that the control-plane nodes of an HA cluster, each running
//! `kubepki rotate` from the same cron schedule, rotate one at a time.
//!
//! It is etcd's own lock service (the `v3lock` API) bound to a lease: if the holder dies, the
//! lease expires after its TTL and the lock is released; while it lives, a background task
//! keeps the lease alive.

use std::path::Path;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, LockOptions, PutOptions, TlsOptions};

use crate::error::{Error, Result};

/// The lease's time to live: how long a dead holder keeps the lock.
pub const LEASE_TTL_SECS: i64 = 30;

/// How long one request other than the lock itself may take. The blocking lock call waits as
/// long as `--lock-timeout` says instead: a connection-wide request timeout would cut it off.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `request`, or an error naming `what` once [`REQUEST_TIMEOUT`] has passed.
async fn within<T>(
    config: &EtcdLockConfig<'_>,
    what: &str,
    request: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
) -> Result<T> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(r) => r.map_err(|e| etcd_err(config, what, &crate::verify::etcd::describe(&e))),
        Err(_) => Err(etcd_err(config, what, &format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()))),
    }
}

/// Where the lock lives and how to reach it.
#[derive(Clone, Debug)]
pub struct EtcdLockConfig<'a> {
    /// etcd client URLs (`https://10.0.0.11:2379`).
    pub endpoints: &'a [String],
    /// The etcd CA (`etcd/ca.crt`).
    pub ca: &'a Path,
    /// A client certificate of the etcd CA (`apiserver-etcd-client.crt`).
    pub cert: &'a Path,
    /// Its key.
    pub key: &'a Path,
    /// The lock's name (all nodes must use the same).
    pub name: &'a str,
    /// How long to wait for another holder.
    pub timeout: Duration,
}

/// A held etcd lock; released (and its lease revoked) on drop.
pub struct EtcdLock {
    runtime: &'static tokio::runtime::Runtime,
    client: Client,
    key: Vec<u8>,
    lease: i64,
    keeper: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for EtcdLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdLock")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("lease", &self.lease)
            .finish()
    }
}

/// One line: the step that failed, the deepest cause (never the client's debug dump of its
/// error chain, see [`describe`](crate::verify::etcd::describe)) and what to do about it.
fn etcd_err(config: &EtcdLockConfig<'_>, what: &str, cause: &str) -> Error {
    Error::EtcdLock {
        endpoints: config.endpoints.join(","),
        reason: format!(
            "cannot {what}: {cause}; check that etcd serves there (the URL and port of --etcd-lock) and trusts {} \
             (signed by {}), or run without --etcd-lock",
            config.cert.display(),
            config.ca.display()
        ),
    }
}

impl EtcdLock {
    /// Connects with mutual TLS and takes the lock, waiting up to `config.timeout`.
    pub fn acquire(config: &EtcdLockConfig<'_>) -> Result<Self> {
        let read =
            |p: &Path| std::fs::read(p).map_err(|source| kubepki_pki::Error::Read { path: p.to_owned(), source });
        let (ca, cert) = (read(config.ca)?, read(config.cert)?);
        let key = zeroize::Zeroizing::new(read(config.key)?);
        let runtime = crate::runtime::shared()?;
        let endpoints = config.endpoints;
        let (client, key, lease, keeper) = runtime.block_on(async {
            let tls = TlsOptions::new()
                .ca_certificate(Certificate::from_pem(ca))
                .identity(Identity::from_pem(cert, key.as_slice()));
            // No connection-wide request timeout: each request has its own (`within`), and the
            // lock call waits up to --lock-timeout.
            let options = ConnectOptions::new().with_tls(tls).with_connect_timeout(Duration::from_secs(5));
            let mut client = within(config, "connect", Client::connect(endpoints, Some(options))).await?;
            let lease = within(config, "grant a lease", client.lease_grant(LEASE_TTL_SECS, None)).await?.id();
            let (mut keeper, _stream) = within(config, "keep the lease alive", client.lease_keep_alive(lease)).await?;
            let keeper = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs((LEASE_TTL_SECS / 3) as u64)).await;
                    if !matches!(tokio::time::timeout(REQUEST_TIMEOUT, keeper.keep_alive()).await, Ok(Ok(()))) {
                        return;
                    }
                }
            });
            let name = format!("/kubepki/lock/{}", config.name);
            let holder_key = format!("/kubepki/lock-holder/{}", config.name);
            let started = std::time::Instant::now();
            let locked = {
                // While the lock is awaited, progress names its holder (read once, on another handle).
                let deadline = tokio::time::Instant::now() + config.timeout;
                let mut watcher = client.clone();
                let lock = client.lock(name, Some(LockOptions::new().with_lease(lease)));
                tokio::pin!(lock);
                let mut holder: Option<String> = None;
                let locked = loop {
                    tokio::select! {
                        r = tokio::time::timeout_at(deadline, &mut lock) => break r,
                        () = tokio::time::sleep(Duration::from_millis(250)) => {
                            if holder.is_none() {
                                let get = tokio::time::timeout(Duration::from_secs(2), watcher.get(holder_key.clone(), None));
                                holder = Some(
                                    get.await
                                        .ok()
                                        .and_then(std::result::Result::ok)
                                        .and_then(|r| r.kvs().first().and_then(|kv| kv.value_str().ok().map(str::to_owned)))
                                        .unwrap_or_else(|| "another kubepki run".into()),
                                );
                            }
                            let what = format!(
                                "the etcd lock {:?} held by {}",
                                config.name,
                                holder.as_deref().unwrap_or_default()
                            );
                            kubepki_pki::progress::waiting(&what, started.elapsed(), config.timeout);
                        }
                    }
                };
                if holder.is_some() {
                    kubepki_pki::progress::wait_over();
                }
                locked
            };
            match locked {
                Ok(Ok(resp)) => {
                    // Who holds it and since when, bound to the same lease: a waiter that gives up
                    // names the holder.
                    let holder = format!(
                        "{} (pid {}) since {}",
                        crate::rotation::audit_log::host(),
                        std::process::id(),
                        time::OffsetDateTime::now_utc()
                            .replace_nanosecond(0)
                            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default()
                    );
                    let put = client.put(holder_key, holder, Some(PutOptions::new().with_lease(lease)));
                    within(config, "record the holder", put).await?;
                    Ok((client, resp.key().to_vec(), lease, keeper))
                }
                Ok(Err(e)) => {
                    keeper.abort();
                    let _ = client.lease_revoke(lease).await;
                    Err(etcd_err(config, "take the lock", &crate::verify::etcd::describe(&e)))
                }
                Err(_) => {
                    keeper.abort();
                    let _ = within(config, "revoke the lease", client.lease_revoke(lease)).await;
                    let holder = within(config, "read the holder", client.get(holder_key, None))
                        .await
                        .ok()
                        .and_then(|r| r.kvs().first().and_then(|kv| kv.value_str().ok().map(str::to_owned)))
                        .unwrap_or_else(|| "another kubepki run".into());
                    Err(Error::EtcdLock {
                        endpoints: endpoints.join(","),
                        reason: format!(
                            "the lock {:?} is held by {holder}; gave up after waiting {}s (raise --lock-timeout)",
                            config.name,
                            started.elapsed().as_secs()
                        ),
                    })
                }
            }
        })?;
        Ok(Self { runtime, client, key, lease, keeper })
    }
}

impl Drop for EtcdLock {
    fn drop(&mut self) {
        self.keeper.abort();
        let (key, lease) = (self.key.clone(), self.lease);
        let client = &mut self.client;
        // Best effort: if etcd is gone, the lease expires on its own.
        self.runtime.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(5), client.unlock(key)).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), client.lease_revoke(lease)).await;
        });
    }
}
