//! Live endpoints as a source: the chain a TLS server actually serves, fetched with a
//! handshake.
//!
//! The handshake uses a verifier that accepts any chain and records it, so an expired or
//! untrusted certificate is still seen (and a server that then asks for a client certificate
//! still shows its own). Trust is judged only when a CA file is given: the chain must then
//! verify for the host name against it, as a TLS client would check it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kubepki_pki::Certificate;
use kubepki_pki::fsio::MAX_PEM_FILE;
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::inventory::discover::{items_from, read_file};
use crate::inventory::{Finding, Found, InputError, Location};
use crate::verify::probe;

/// How to fetch endpoints.
#[derive(Clone, Debug)]
pub struct EndpointOptions {
    /// Bounds connecting and the handshake, each.
    pub timeout: Duration,
    /// A CA file to judge the served chains against (`--ca`).
    pub ca_file: Option<PathBuf>,
}

/// Splits `HOST:PORT` (`[v6]:PORT` for IPv6; an `https://` prefix and a path are ignored).
pub fn parse_address(address: &str) -> Result<(String, u16), String> {
    let a = address.strip_prefix("https://").unwrap_or(address);
    let a = a.split('/').next().unwrap_or(a);
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or("expected [IPv6]:PORT")?;
        (host, port)
    } else {
        a.rsplit_once(':').ok_or("expected HOST:PORT")?
    };
    if host.is_empty() {
        return Err("expected HOST:PORT (the host is empty)".into());
    }
    let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
    Ok((host.to_owned(), port))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_owned()).map_err(|_| format!("{host:?} is neither an IP address nor a DNS name"))
}

/// The chain `address` serves, leaf first: `verify`'s handshake, which records the chain
/// instead of judging it (handshake signatures are still checked, so the chain is the one the
/// server holds the key for), without a client certificate.
pub async fn served_chain(address: &str, timeout: Duration) -> Result<Vec<CertificateDer<'static>>, String> {
    let (host, port) = parse_address(address)?;
    let name = server_name(&host)?;
    let tcp = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host.as_str(), port))).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(format!("cannot connect: {e}")),
        Err(_) => return Err(format!("cannot connect: no answer within {}s", timeout.as_secs_f64())),
    };
    let handshake = probe::handshake_over(tcp, name, None, &provider(), timeout).await;
    match (handshake.chain, handshake.stream) {
        (chain, _) if !chain.is_empty() => Ok(chain),
        (_, Ok(_)) => Err("the server sent no certificate".into()),
        (_, Err(e)) => Err(format!("TLS handshake failed before the server's certificate: {e}")),
    }
}

/// Loads a CA file as trust anchors.
fn roots(path: &std::path::Path) -> Result<RootCertStore, String> {
    let bytes = read_file(path, MAX_PEM_FILE, "CA file")?.ok_or("does not exist")?;
    let certs = Certificate::from_pem_bundle(&bytes, &path.display().to_string()).map_err(|e| e.to_string())?;
    let mut store = RootCertStore::empty();
    for c in certs {
        store.add(CertificateDer::from(c.der().to_vec())).map_err(|e| format!("not a usable trust anchor: {e}"))?;
    }
    Ok(store)
}

/// Whether `chain` verifies for `host` against `roots`, now.
fn judge(chain: &[CertificateDer<'static>], host: &str, roots: Arc<RootCertStore>) -> Result<(), String> {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider()).build().map_err(|e| e.to_string())?;
    let name = server_name(host)?;
    let (leaf, intermediates) = chain.split_first().ok_or("the server sent no certificate")?;
    verifier.verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now()).map(|_| ()).map_err(|e| e.to_string())
}

/// Fetches every endpoint concurrently and returns the served certificates, named
/// `HOST:PORT` (`[i]` appended for the rest of the chain). An endpoint that cannot be reached
/// is an input error.
pub async fn fetch(addresses: &[String], options: &EndpointOptions) -> Found {
    let mut found = Found::default();
    let trust = match &options.ca_file {
        Some(path) => match roots(path) {
            Ok(r) => Some((path.clone(), Arc::new(r))),
            Err(e) => {
                found.errors.push(InputError::new(path.display().to_string(), e));
                None
            }
        },
        None => None,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (i, address) in addresses.iter().enumerate() {
        let (address, timeout) = (address.clone(), options.timeout);
        tasks.spawn(async move { (i, served_chain(&address, timeout).await) });
    }
    let mut results: Vec<(usize, Result<Vec<CertificateDer<'static>>, String>)> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(r) = r {
            results.push(r);
        }
    }
    results.sort_by_key(|(i, _)| *i);
    for (i, result) in results {
        let address = &addresses[i];
        let chain = match result {
            Ok(chain) => chain,
            Err(e) => {
                found.errors.push(InputError::new(address.clone(), e));
                continue;
            }
        };
        let certs = chain
            .iter()
            .map(|der| Certificate::from_der(der.to_vec(), address).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>();
        let mut items =
            items_from(address, certs, |index| Location::Endpoint { address: address.clone(), index }, None);
        if let Some((ca_file, roots)) = &trust
            && items[0].certificate.is_ok()
            && let Ok((host, _)) = parse_address(address)
            && let Err(reason) = judge(&chain, &host, roots.clone())
        {
            items[0].findings.push(Finding::Untrusted { ca_file: ca_file.clone(), reason });
        }
        found.items.extend(items);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(parse_address("127.0.0.1:6443").unwrap(), ("127.0.0.1".into(), 6443));
        assert_eq!(parse_address("https://api.example:443/healthz").unwrap(), ("api.example".into(), 443));
        assert_eq!(parse_address("[::1]:2379").unwrap(), ("::1".into(), 2379));
        for bad in ["nohost", ":443", "h:99999", "[::1]2379", "h:x"] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn an_endpoint_that_is_not_listening_is_an_input_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let options = EndpointOptions { timeout: Duration::from_secs(5), ca_file: None };
        let found = fetch(&[format!("127.0.0.1:{port}")], &options).await;
        assert!(found.items.is_empty());
        assert_eq!(found.errors.len(), 1);
        assert!(found.errors[0].message.starts_with("cannot connect"), "{:?}", found.errors);
    }
}
