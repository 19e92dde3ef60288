//! TLS probes: a rustls handshake that records what the server presented instead of judging
//! it, so that every check can be made (and reported) separately; a plain HTTP/1.1 request
//! over it; and a hand-made TLS 1.1 ClientHello to see whether old protocol versions are
//! refused.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::material::Identity;
use super::target::EndpointUrl;

/// What a handshake showed, whether or not it completed.
pub(crate) struct Handshake {
    /// The certificates the server presented (leaf first); empty if it presented none.
    pub(crate) chain: Vec<CertificateDer<'static>>,
    /// Whether the server asked for a client certificate (sent a CertificateRequest).
    pub(crate) client_cert_requested: bool,
    /// The connection, or why the handshake failed.
    pub(crate) stream: Result<TlsStream<TcpStream>, String>,
}

impl Handshake {
    /// The negotiated protocol, if the handshake completed.
    pub(crate) fn protocol(&self) -> Option<&'static str> {
        let version = self.stream.as_ref().ok()?.get_ref().1.protocol_version()?;
        Some(match version {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "an older TLS version",
        })
    }
}

/// Records the server's chain (accepting it: checks are made afterwards, one by one) while
/// still verifying the handshake signatures, so the server must hold the certificate's key;
/// and records whether a client certificate was asked for.
#[derive(Debug)]
struct Recorder {
    provider: Arc<CryptoProvider>,
    identity: Option<Arc<CertifiedKey>>,
    chain: Mutex<Vec<CertificateDer<'static>>>,
    requested: Mutex<bool>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = self.chain.lock().unwrap_or_else(PoisonError::into_inner);
        *chain = std::iter::once(end_entity).chain(intermediates).map(|c| c.clone().into_owned()).collect();
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl ResolvesClientCert for Recorder {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], _sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        *self.requested.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.identity.clone()
    }

    fn has_certs(&self) -> bool {
        self.identity.is_some()
    }
}

/// The endpoint could not be reached (no TCP connection).
#[derive(Debug)]
pub(crate) struct Unreachable(pub(crate) String);

/// Connects over TCP, retrying until `wait` has passed (for an endpoint that is restarting).
pub(crate) async fn connect(url: &EndpointUrl, timeout: Duration, wait: Duration) -> Result<TcpStream, Unreachable> {
    let deadline = Instant::now() + wait;
    loop {
        let attempt = tokio::time::timeout(timeout, TcpStream::connect((url.host(), url.port()))).await;
        let err = match attempt {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => format!("cannot connect to {}: {e}", url.authority()),
            Err(_) => format!("cannot connect to {}: no answer within {}s", url.authority(), timeout.as_secs_f32()),
        };
        if Instant::now() >= deadline {
            return Err(Unreachable(err));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A TLS handshake presenting `identity` (or no client certificate).
pub(crate) async fn handshake(
    url: &EndpointUrl,
    identity: Option<&Identity>,
    provider: &Arc<CryptoProvider>,
    timeout: Duration,
) -> Result<Handshake, Unreachable> {
    let tcp = connect(url, timeout, Duration::ZERO).await?;
    Ok(handshake_over(tcp, url.server_name().clone(), identity, provider, timeout).await)
}

/// A TLS handshake over a connected stream, presenting `identity` (or no client certificate):
/// the server's chain is recorded, not judged, but its handshake signature is verified.
pub(crate) async fn handshake_over(
    tcp: TcpStream,
    server_name: ServerName<'static>,
    identity: Option<&Identity>,
    provider: &Arc<CryptoProvider>,
    timeout: Duration,
) -> Handshake {
    let recorder = Arc::new(Recorder {
        provider: provider.clone(),
        identity: identity.map(|i| i.certified.clone()),
        chain: Mutex::new(Vec::new()),
        requested: Mutex::new(false),
    });
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map(|b| {
            b.dangerous().with_custom_certificate_verifier(recorder.clone()).with_client_cert_resolver(recorder.clone())
        });
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            return Handshake {
                chain: Vec::new(),
                client_cert_requested: false,
                stream: Err(format!("the TLS client cannot be configured: {e}")),
            };
        }
    };
    let connector = TlsConnector::from(Arc::new(config));
    let stream = match tokio::time::timeout(timeout, connector.connect(server_name, tcp)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(describe_io(&e)),
        Err(_) => Err(format!("the handshake did not finish within {}s", timeout.as_secs_f32())),
    };
    let chain = std::mem::take(&mut *recorder.chain.lock().unwrap_or_else(PoisonError::into_inner));
    let client_cert_requested = *recorder.requested.lock().unwrap_or_else(PoisonError::into_inner);
    Handshake { chain, client_cert_requested, stream }
}

/// Describes an I/O error, naming a TLS alert when that is what it carries.
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(alert)) => format!("the server sent the TLS alert {}", alert_name(*alert)),
        Some(tls) => format!("TLS error: {tls}"),
        None => match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "the server closed the connection".to_owned(),
            std::io::ErrorKind::ConnectionReset => "the server reset the connection".to_owned(),
            _ => e.to_string(),
        },
    }
}

fn alert_name(alert: rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    match alert {
        A::CertificateRequired => "certificate_required".into(),
        A::BadCertificate => "bad_certificate".into(),
        A::UnknownCA => "unknown_ca".into(),
        A::HandshakeFailure => "handshake_failure".into(),
        A::DecryptError => "decrypt_error".into(),
        A::ProtocolVersion => "protocol_version".into(),
        A::AccessDenied => "access_denied".into(),
        A::CertificateExpired => "certificate_expired".into(),
        A::UnsupportedCertificate => "unsupported_certificate".into(),
        other => format!("{other:?}"),
    }
}

/// What an HTTP request got.
pub(crate) enum HttpAnswer {
    /// A status line.
    Status(u16),
    /// The server ended the connection with a TLS alert (how TLS 1.3 servers refuse a client
    /// certificate: after the client's side of the handshake completed).
    Refused(String),
    /// No answer: the connection was closed, or the request timed out.
    NoAnswer(String),
}

/// `GET path` over an established connection, reading only the status line.
pub(crate) async fn http_get(
    stream: &mut TlsStream<TcpStream>,
    url: &EndpointUrl,
    path: &str,
    timeout: Duration,
) -> HttpAnswer {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: kubepki-verify\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        url.authority()
    );
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await?;
        let mut buf = Vec::with_capacity(512);
        let mut chunk = [0u8; 1024];
        while !buf.contains(&b'\n') && buf.len() < 8192 {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(buf)
    };
    let buf = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => return HttpAnswer::NoAnswer(format!("no answer within {}s", timeout.as_secs_f32())),
        Ok(Err(e)) => {
            let described = describe_io(&e);
            return if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                HttpAnswer::Refused(described)
            } else {
                HttpAnswer::NoAnswer(described)
            };
        }
        Ok(Ok(buf)) => buf,
    };
    let line = String::from_utf8_lossy(buf.split(|&b| b == b'\n').next().unwrap_or_default()).into_owned();
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next().and_then(|c| c.parse::<u16>().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => HttpAnswer::Status(code),
        _ if buf.is_empty() => HttpAnswer::NoAnswer("the server closed the connection without answering".into()),
        _ => HttpAnswer::NoAnswer("the answer is not HTTP".into()),
    }
}

/// How a server answered a ClientHello that offers at most TLS 1.1.
pub(crate) enum LegacyAnswer {
    /// It chose an old version (a ServerHello with this version, e.g. `TLS 1.1`).
    Accepted(&'static str),
    /// It refused (an alert, a closed connection, or no answer): how.
    Refused(String),
}

/// Sends a TLS 1.1 ClientHello (rustls cannot speak TLS 1.1, so it is built by hand) and reads
/// the first record of the answer.
pub(crate) async fn legacy_hello(mut tcp: TcpStream, url: &EndpointUrl, timeout: Duration) -> LegacyAnswer {
    let hello = tls11_client_hello(url);
    let exchange = async {
        tcp.write_all(&hello).await?;
        let mut header = [0u8; 5];
        tcp.read_exact(&mut header).await?;
        let len = usize::from(u16::from_be_bytes([header[3], header[4]])).min(1 << 14);
        let mut body = vec![0u8; len];
        tcp.read_exact(&mut body).await?;
        Ok::<_, std::io::Error>((header[0], body))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => LegacyAnswer::Refused(format!("no answer within {}s", timeout.as_secs_f32())),
        Ok(Err(e)) => LegacyAnswer::Refused(match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "the connection was closed".into(),
            std::io::ErrorKind::ConnectionReset => "the connection was reset".into(),
            _ => e.to_string(),
        }),
        // An alert record: level, description.
        Ok(Ok((21, body))) => LegacyAnswer::Refused(match body.get(1) {
            Some(70) => "alert protocol_version".into(),
            Some(40) => "alert handshake_failure".into(),
            Some(71) => "alert insufficient_security".into(),
            Some(80) => "alert internal_error".into(),
            Some(d) => format!("alert {d}"),
            None => "an empty alert".into(),
        }),
        // A handshake record starting with a ServerHello: type 2, 3 length bytes, version.
        Ok(Ok((22, body))) if body.first() == Some(&2) && body.len() >= 6 => match (body[4], body[5]) {
            (3, 0) => LegacyAnswer::Accepted("SSL 3.0"),
            (3, 1) => LegacyAnswer::Accepted("TLS 1.0"),
            (3, 2) => LegacyAnswer::Accepted("TLS 1.1"),
            (major, minor) => LegacyAnswer::Refused(format!("a ServerHello for version {major}.{minor}")),
        },
        Ok(Ok(_)) => LegacyAnswer::Refused("an answer that is not a TLS handshake".into()),
    }
}

/// A ClientHello with client_version TLS 1.1 (no supported_versions extension), CBC suites
/// that TLS 1.0/1.1 servers support, SNI for DNS hosts, and the EC extensions.
fn tls11_client_hello(url: &EndpointUrl) -> Vec<u8> {
    fn u16be(n: usize) -> [u8; 2] {
        u16::try_from(n)
            .expect("invariant: every length here is far below 64 KiB (a host name is at most 253 bytes)")
            .to_be_bytes()
    }
    let mut ext = Vec::new();
    if let ServerName::DnsName(name) = url.server_name() {
        let name = name.as_ref().as_bytes();
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&u16be(name.len() + 5));
        ext.extend_from_slice(&u16be(name.len() + 3));
        ext.push(0);
        ext.extend_from_slice(&u16be(name.len()));
        ext.extend_from_slice(name);
    }
    // supported_groups: x25519, secp256r1, secp384r1.
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x08, 0x00, 0x06, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18]);
    // ec_point_formats: uncompressed.
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    let suites: [u8; 16] =
        [0xc0, 0x0a, 0xc0, 0x09, 0xc0, 0x14, 0xc0, 0x13, 0x00, 0x35, 0x00, 0x2f, 0x00, 0x0a, 0x00, 0xff];
    let mut random = [0u8; 32];
    let _ = aws_lc_rs::rand::fill(&mut random);
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&random);
    body.push(0); // no session id
    body.extend_from_slice(&u16be(suites.len()));
    body.extend_from_slice(&suites);
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&u16be(ext.len()));
    body.extend_from_slice(&ext);
    let mut handshake = vec![1, 0];
    handshake.extend_from_slice(&u16be(body.len()));
    handshake.extend_from_slice(&body);
    let mut record = vec![22, 3, 1];
    record.extend_from_slice(&u16be(handshake.len()));
    record.extend_from_slice(&handshake);
    record
}

/// Path validation of a recorded chain against `roots`, as rustls' WebPkiServerVerifier does it
/// (serverAuth usage, validity at `now`), without the name check.
pub(crate) fn verify_chain(
    chain: &[CertificateDer<'static>],
    roots: &rustls::RootCertStore,
    provider: &CryptoProvider,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let (leaf, intermediates) = chain.split_first().ok_or(rustls::Error::NoCertificatesPresented)?;
    let parsed = rustls::server::ParsedCertificate::try_from(leaf)?;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        roots,
        intermediates,
        now,
        provider.signature_verification_algorithms.all,
    )
}

/// Whether the leaf of `chain` is valid for `name` (its SANs).
pub(crate) fn verify_name(chain: &[CertificateDer<'static>], name: &ServerName<'_>) -> Result<(), rustls::Error> {
    let leaf = chain.first().ok_or(rustls::Error::NoCertificatesPresented)?;
    let parsed = rustls::server::ParsedCertificate::try_from(leaf)?;
    rustls::client::verify_server_name(&parsed, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls11_client_hello_is_well_formed_and_names_dns_hosts_only() {
        let hello = tls11_client_hello(&EndpointUrl::parse("https://etcd.example:2379", 1).unwrap());
        // Record: handshake, TLS 1.0 record version, length of the rest.
        assert_eq!(&hello[..3], &[22, 3, 1]);
        assert_eq!(usize::from(u16::from_be_bytes([hello[3], hello[4]])), hello.len() - 5);
        // Handshake: ClientHello, 24-bit length, client_version TLS 1.1.
        assert_eq!(hello[5], 1);
        assert_eq!(usize::from(u16::from_be_bytes([hello[7], hello[8]])), hello.len() - 9);
        assert_eq!(&hello[9..11], &[3, 2]);
        assert!(hello.windows(12).any(|w| w == b"etcd.example"));
        let by_ip = tls11_client_hello(&EndpointUrl::parse("https://10.0.0.1:2379", 1).unwrap());
        assert_eq!(by_ip.len(), hello.len() - (b"etcd.example".len() + 9));
    }
}
