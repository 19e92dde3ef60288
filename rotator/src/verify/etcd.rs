//! Client authentication on etcd's client port, judged the way the API server talks to etcd:
//! with etcd's own gRPC client (etcd-client over tonic and rustls) and a `Status` request.
//!
//! With TLS 1.3 a server refuses a client certificate only after the client's side of the
//! handshake has completed, so the handshake alone proves nothing: the request decides.

use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity as EtcdIdentity, TlsOptions};

use super::material::{Identity, ServerCa};
use super::target::EndpointUrl;

/// Sends a `Status` request over a new connection that trusts `ca` and presents `identity`.
/// `Ok` carries etcd's version.
pub(crate) async fn status(
    url: &EndpointUrl,
    ca: &ServerCa,
    identity: Option<&Identity>,
    timeout: Duration,
) -> Result<String, String> {
    let mut tls = TlsOptions::new().ca_certificate(Certificate::from_pem(&ca.pem));
    if let Some(id) = identity {
        tls = tls.identity(EtcdIdentity::from_pem(&id.cert_pem, &*id.key_pem));
    }
    let options = ConnectOptions::new().with_tls(tls).with_connect_timeout(timeout).with_timeout(timeout);
    let request = async {
        let mut client = Client::connect([url.to_string()], Some(options)).await?;
        client.status().await
    };
    match tokio::time::timeout(timeout + Duration::from_secs(1), request).await {
        Ok(Ok(status)) => Ok(status.version().to_owned()),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err(format!("no answer within {}s", timeout.as_secs_f32())),
    }
}

/// The gRPC code and the deepest cause: tonic's own message for a refused connection
/// ("transport error", "operation was canceled") says little, the TLS alert under it more.
pub(crate) fn describe(e: &etcd_client::Error) -> String {
    let etcd_client::Error::GRpcStatus(status) = e else {
        return first_line(&e.to_string());
    };
    let mut cause = std::error::Error::source(status);
    let mut deepest = status.message().to_owned();
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            deepest = super::probe::describe_io(io);
            break;
        }
        deepest = c.to_string();
        cause = c.source();
    }
    first_line(&format!("gRPC {:?}: {deepest}", status.code()))
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(300).collect::<String>())
    } else {
        line.to_owned()
    }
}
