//! Node credentials: kubelet client kubeconfigs and kubelet serving certificates, one node or
//! thousands at a time.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::ca::CertificateAuthority;
use crate::cert::Subject;
use crate::error::{Error, Result};
use crate::fsio::{NewDir, Transaction};
use crate::issue::CertRequest;
use crate::key::KeyAlgorithm;
use crate::kubeconfig::Kubeconfig;
use crate::profile::{KUBELET_CLIENT, KUBELET_SERVING};
use crate::san::{self, AltNames};
use crate::store::{CERT_MODE, KEY_MODE};
use crate::validity::{Lifetime, Validity};

/// A kubelet serving certificate's file name in its node's directory (the kubelet's own name
/// for a serving certificate in its `--cert-dir`).
pub const CERT_FILE: &str = "kubelet.crt";
/// Its key's file name.
pub const KEY_FILE: &str = "kubelet.key";

/// How many nodes a bulk issue into a new directory holds in memory at once.
const BULK_CHUNK: usize = 2048;

/// A node: its name and addresses.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Node {
    /// The node name (an RFC 1123 subdomain).
    pub name: String,
    /// Its IP addresses.
    pub ips: Vec<IpAddr>,
}

impl Node {
    /// A node, checking the name.
    pub fn new(name: &str, ips: Vec<IpAddr>) -> Result<Self> {
        if !san::is_dns1123_subdomain(name) {
            return Err(Error::InvalidValue {
                field: "node name",
                value: name.to_owned(),
                reason: "must be a lowercase RFC 1123 subdomain".into(),
            });
        }
        Ok(Self { name: name.to_owned(), ips })
    }

    /// The serving certificate request: `system:node:<name>` in `system:nodes`, serverAuth,
    /// SANs the name and the addresses.
    pub fn serving_request(&self) -> CertRequest {
        let mut sans = AltNames::new();
        sans.add_dns(&self.name);
        for &ip in &self.ips {
            sans.add_ip(ip);
        }
        CertRequest {
            subject: Subject::new(
                KUBELET_SERVING.common_name.resolve(&self.name),
                KUBELET_SERVING.organizations.iter().copied(),
            ),
            sans,
            usage: KUBELET_SERVING.usage,
        }
    }
}

/// Parses a nodes file: one node a line, `name ip[,ip...]`; blank lines and `#` comments are
/// skipped. Errors name the line.
pub fn parse_nodes(text: &str, source: &Path) -> Result<Vec<Node>> {
    let mut nodes = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let invalid = |reason: String| Error::InvalidValue {
            field: "nodes file line",
            value: format!("{}:{}", source.display(), n + 1),
            reason,
        };
        let mut fields = line.split_whitespace();
        let name = fields.next().unwrap_or("");
        let ips = fields
            .flat_map(|f| f.split(','))
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<IpAddr>().map_err(|_| invalid(format!("{s:?} is not an IP address"))))
            .collect::<Result<Vec<_>>>()?;
        nodes.push(Node::new(name, ips).map_err(|e| invalid(e.to_string()))?);
    }
    let mut names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::InvalidValue {
            field: "nodes file",
            value: source.display().to_string(),
            reason: format!("node {:?} is listed twice", w[0]),
        });
    }
    Ok(nodes)
}

/// Issues a serving certificate and key for every node, written as
/// `<out>/<node>/kubelet.crt` and `kubelet.key`, in parallel, all or nothing. A new `out`
/// appears whole, with every node's directory in it, in one rename; in an existing `out`, each
/// node's directory appears whole, in one journaled transaction (none of them may exist).
/// `progress` is called with the number of nodes done so far.
pub fn issue_serving(
    ca: &CertificateAuthority,
    nodes: &[Node],
    out: &Path,
    algorithm: KeyAlgorithm,
    lifetime: Lifetime,
    now: OffsetDateTime,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<PathBuf>> {
    let signer = ca.signer(KUBELET_SERVING.name)?;
    let validity = Validity::starting_at(now, lifetime);
    let done = AtomicUsize::new(0);
    let issue = |node: &Node| -> Result<(String, Zeroizing<String>)> {
        let key = algorithm.generate()?;
        let der = signer.sign(
            &format!("{} for {}", KUBELET_SERVING.name, node.name),
            &node.serving_request(),
            &key,
            validity,
        )?;
        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
        Ok((crate::pem::encode("CERTIFICATE", &der), key.to_pem()))
    };
    let written = nodes.iter().flat_map(|node| [KEY_FILE, CERT_FILE].map(|name| out.join(&node.name).join(name)));
    if std::fs::symlink_metadata(out).is_err() {
        // A new `out` appears whole. A chunk of nodes at a time: their directories are made by
        // one thread while the others make the keys and certificates (two threads making
        // directories in one directory wait for each other), then their files are written on
        // every thread; the disk syncs in the background meanwhile.
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::fsio::create_dir_all(parent, 0o755)?;
        }
        let new = NewDir::create(out, 0o755)?;
        for chunk in nodes.chunks(BULK_CHUNK) {
            let (made, issued) = rayon::join(
                || chunk.iter().try_for_each(|node| new.make_dir(Path::new(&node.name))),
                || chunk.par_iter().map(issue).collect::<Result<Vec<_>>>(),
            );
            made?;
            chunk.par_iter().zip(issued?).try_for_each(|(node, (cert, key))| {
                let dir = Path::new(&node.name);
                new.write(&dir.join(KEY_FILE), key.as_bytes(), KEY_MODE)?;
                new.write(&dir.join(CERT_FILE), cert.as_bytes(), CERT_MODE)
            })?;
        }
        new.commit()?;
        return Ok(written.collect());
    }
    let issued: Vec<(String, Zeroizing<String>)> = nodes.par_iter().map(issue).collect::<Result<_>>()?;
    let mut tx = Transaction::new(out);
    for (node, (cert, key)) in nodes.iter().zip(issued) {
        let dir = out.join(&node.name);
        tx.add_in_new_dir(dir.join(KEY_FILE), key.as_bytes(), KEY_MODE);
        tx.add_in_new_dir(dir.join(CERT_FILE), cert, CERT_MODE);
    }
    tx.commit()
}

/// A kubelet kubeconfig for `node_name` (`system:node:<name>` in `system:nodes`), with the
/// cluster CA and a new key embedded, as kubeadm writes kubelet.conf; valid for `validity`
/// (kubeadm's window is [`Validity::starting_at`]).
pub fn kubelet_kubeconfig(
    ca: &CertificateAuthority,
    cluster_name: &str,
    server: &str,
    node_name: &str,
    algorithm: KeyAlgorithm,
    validity: Validity,
) -> Result<Kubeconfig> {
    Node::new(node_name, Vec::new())?;
    let request = CertRequest {
        subject: Subject::new(
            KUBELET_CLIENT.common_name.resolve(node_name),
            KUBELET_CLIENT.organizations.iter().copied(),
        ),
        sans: AltNames::new(),
        usage: KUBELET_CLIENT.usage,
    };
    user_kubeconfig(ca, cluster_name, server, &request, algorithm, validity)
}

/// A kubeconfig for any client identity, as `kubeadm kubeconfig user` builds it. Its CA data is
/// the CA file (every certificate of it: old and new during a CA rotation), as kubepki writes it
/// into the kubeconfigs it manages.
pub fn user_kubeconfig(
    ca: &CertificateAuthority,
    cluster_name: &str,
    server: &str,
    request: &CertRequest,
    algorithm: KeyAlgorithm,
    validity: Validity,
) -> Result<Kubeconfig> {
    let signer = ca.signer(&request.subject.common_name)?;
    let key = algorithm.generate()?;
    let der = signer.sign(&request.subject.common_name, request, &key, validity)?;
    Ok(Kubeconfig::with_client_cert(
        cluster_name,
        server,
        &ca.bundle_pem(),
        &request.subject.common_name,
        &crate::pem::encode("CERTIFICATE", &der),
        &key.to_pem(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_file_lines_and_errors() {
        let text = "# fleet\nnode-1 10.0.0.1\nnode-2 10.0.0.2,fd00::2  # dual stack\n\nnode-3\n";
        let nodes = parse_nodes(text, Path::new("nodes.txt")).unwrap();
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[1].ips.len(), 2);
        assert!(nodes[2].ips.is_empty());
        let err = parse_nodes("ok 10.0.0.1\nBad_Name 10.0.0.2\n", Path::new("n")).unwrap_err().to_string();
        assert!(err.contains("n:2"), "{err}");
        let err = parse_nodes("a 10.0.0.300\n", Path::new("n")).unwrap_err().to_string();
        assert!(err.contains("10.0.0.300"), "{err}");
        assert!(parse_nodes("a\na\n", Path::new("n")).unwrap_err().to_string().contains("twice"));
    }
}
