//! A client writing to etcd continuously, as the API server does: the measure of every
//! zero-downtime test (a write that never succeeds within its retries counts as failed).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The TLS material a client process loaded at its last (re)start.
#[derive(Clone)]
pub(crate) struct Material {
    ca: Vec<u8>,
    cert: Vec<u8>,
    key: Vec<u8>,
    generation: u64,
}

impl Material {
    fn load(pki: &Path, generation: u64) -> Self {
        let read = |f: &str| std::fs::read(pki.join(f)).unwrap();
        Self {
            ca: read("etcd/ca.crt"),
            cert: read("apiserver-etcd-client.crt"),
            key: read("apiserver-etcd-client.key"),
            generation,
        }
    }
}

/// A client writing continuously through all members, like the API server: it loads its
/// certificates at start-up and again when "restarted". A write that fails is retried on a new
/// connection for up to 10 s; only a write that never succeeds counts as failed.
pub(crate) struct Writer {
    material: Arc<Mutex<Material>>,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    retries: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub(crate) fn start(urls: Vec<String>, pki: &Path) -> Self {
        let material = Arc::new(Mutex::new(Material::load(pki, 0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, retries, failed) =
            (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (m, s, o, r, f) = (material.clone(), stop.clone(), ok.clone(), retries.clone(), failed.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let connect = |m: Material| {
                    let urls = urls.clone();
                    async move {
                        let tls = etcd_client::TlsOptions::new()
                            .ca_certificate(etcd_client::Certificate::from_pem(m.ca))
                            .identity(etcd_client::Identity::from_pem(m.cert, m.key));
                        let opts = etcd_client::ConnectOptions::new()
                            .with_tls(tls)
                            .with_connect_timeout(Duration::from_secs(2))
                            .with_timeout(Duration::from_secs(2));
                        etcd_client::Client::connect(urls, Some(opts)).await
                    }
                };
                let mut current = m.lock().unwrap().clone();
                let mut client = connect(current.clone()).await.ok();
                let mut n = 0u64;
                while !s.load(Ordering::SeqCst) {
                    let latest = m.lock().unwrap().clone();
                    if latest.generation != current.generation {
                        current = latest;
                        client = connect(current.clone()).await.ok();
                    }
                    n += 1;
                    let mut done = false;
                    for attempt in 0..100 {
                        if let Some(c) = client.as_mut()
                            && c.put(format!("/kubepki/w{}", n % 100), n.to_string(), None).await.is_ok()
                        {
                            done = true;
                            break;
                        }
                        r.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if attempt % 3 == 2 || client.is_none() {
                            client = connect(current.clone()).await.ok();
                        }
                    }
                    if done {
                        o.fetch_add(1, Ordering::SeqCst)
                    } else {
                        f.fetch_add(1, Ordering::SeqCst)
                    };
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
        });
        Self { material, stop, ok, retries, failed, thread: Some(thread) }
    }

    /// "Restart the API server": load the certificates on disk now.
    pub(crate) fn reload(&self, pki: &Path) {
        let generation = self.material.lock().unwrap().generation + 1;
        *self.material.lock().unwrap() = Material::load(pki, generation);
    }

    pub(crate) fn ok(&self) -> u64 {
        self.ok.load(Ordering::SeqCst)
    }

    pub(crate) fn finish(mut self) -> (u64, u64, u64) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        (self.ok(), self.retries.load(Ordering::SeqCst), self.failed.load(Ordering::SeqCst))
    }
}

/// Waits until the writer made `more` further writes.
pub(crate) fn progress(w: &Writer, more: u64) {
    let target = w.ok() + more;
    let start = std::time::Instant::now();
    while w.ok() < target {
        assert!(start.elapsed() < Duration::from_secs(60), "the writer stalled at {} writes", w.ok());
        std::thread::sleep(Duration::from_millis(20));
    }
}
