//! A phased rotation held together across the control-plane nodes of a cluster, through etcd.
//!
//! `rotate-ca` (and `rotate-sa`) must run each phase on every control-plane node before the next
//! phase runs anywhere: a node that signs with the new CA while another does not trust it yet
//! breaks the TLS between them. Given the cluster's etcd, each node records under
//! `/kubepki/rotation/<rotation>/` (`<rotation>` names what rotates: `etcd-ca`, `ca`,
//! `front-proxy-ca`, `sa`):
//!
//! * `identity`: the rotation in progress — the new CA's SHA-256 fingerprint (or the new key's
//!   ID) — and the node that prepared it, written once (an etcd transaction that only creates):
//!   a second node can adopt that rotation, never start a different one;
//! * `nodes/<node>`: the phase each node has completed, with the identity and the time.
//!
//! A node moves to a phase only when every node known to the rotation has completed the
//! previous one ([`Registry::behind`]). Etcd's own access control is the cert dir's
//! `apiserver-etcd-client` certificate, as for the rotation lock ([`crate::rotation::etcd_lock`]).

use std::path::Path;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, TlsOptions, Txn, TxnOp,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rotation::phases::Phase;

/// Each request's limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the cluster's etcd.
#[derive(Clone, Copy, Debug)]
pub struct EtcdAccess<'a> {
    /// etcd client URLs.
    pub endpoints: &'a [String],
    /// The etcd CA (`etcd/ca.crt`).
    pub ca: &'a Path,
    /// A client certificate of the etcd CA (`apiserver-etcd-client.crt`).
    pub cert: &'a Path,
    /// Its key.
    pub key: &'a Path,
}

/// The rotation in progress, as the node that prepared it recorded it.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationIdentity {
    /// The new CA's SHA-256 fingerprint (or the new key's ID).
    pub identity: String,
    /// The node that prepared it.
    pub prepared_by: String,
    /// When, RFC 3339.
    pub prepared_at: String,
}

/// What one node has completed.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePhase {
    /// The node's name.
    pub node: String,
    /// The last phase it completed (`None`: it aborted the rotation).
    pub phase: Option<Phase>,
    /// The rotation it is in.
    pub identity: String,
    /// When it got there, RFC 3339.
    pub updated_at: String,
}

/// The rotation's records in etcd.
pub struct Registry {
    runtime: &'static tokio::runtime::Runtime,
    client: Client,
    prefix: String,
    endpoints: String,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("prefix", &self.prefix).field("endpoints", &self.endpoints).finish()
    }
}

fn now() -> String {
    crate::text::rfc3339(time::OffsetDateTime::now_utc())
}

impl Registry {
    /// Connects with mutual TLS to the records of `rotation` (`etcd-ca`, `sa`, …).
    pub fn connect(access: &EtcdAccess<'_>, rotation: &str) -> Result<Self> {
        let read =
            |p: &Path| std::fs::read(p).map_err(|source| kubepki_pki::Error::Read { path: p.to_owned(), source });
        let (ca, cert) = (read(access.ca)?, read(access.cert)?);
        let key = zeroize::Zeroizing::new(read(access.key)?);
        let runtime = crate::runtime::shared()?;
        let endpoints = access.endpoints.join(",");
        let client = runtime.block_on(async {
            let tls = TlsOptions::new()
                .ca_certificate(Certificate::from_pem(ca))
                .identity(Identity::from_pem(cert, key.as_slice()));
            let options = ConnectOptions::new()
                .with_tls(tls)
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(REQUEST_TIMEOUT);
            Client::connect(access.endpoints, Some(options)).await
        });
        let client = client.map_err(|e| Error::EtcdLock {
            endpoints: endpoints.clone(),
            reason: format!(
                "cannot connect to record the rotation's phases: {}; check that etcd serves there and trusts {} \
                 (signed by {})",
                crate::verify::etcd::describe(&e),
                access.cert.display(),
                access.ca.display()
            ),
        })?;
        Ok(Self { runtime, client, prefix: format!("/kubepki/rotation/{rotation}/"), endpoints })
    }

    fn failed(&self, what: &str, e: &etcd_client::Error) -> Error {
        Error::EtcdLock {
            endpoints: self.endpoints.clone(),
            reason: format!("cannot {what}: {}", crate::verify::etcd::describe(e)),
        }
    }

    /// The rotation in progress, if any node prepared one.
    pub fn identity(&self) -> Result<Option<RotationIdentity>> {
        let key = format!("{}identity", self.prefix);
        let mut client = self.client.clone();
        let resp = self.runtime.block_on(client.get(key, None)).map_err(|e| self.failed("read the rotation", &e))?;
        Ok(resp.kvs().first().and_then(|kv| serde_json::from_slice(kv.value()).ok()))
    }

    /// Records `identity` as the rotation in progress unless one is already recorded (one
    /// transaction); returns the rotation in progress afterwards: `identity`'s, or the other
    /// one that was there first.
    pub fn claim(&self, identity: &str, node: &str) -> Result<RotationIdentity> {
        let key = format!("{}identity", self.prefix);
        let mine = RotationIdentity { identity: identity.to_owned(), prepared_by: node.to_owned(), prepared_at: now() };
        let value = serde_json::to_vec(&mine).expect("invariant: strings always serialize");
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, None)]);
        let mut client = self.client.clone();
        let resp = self.runtime.block_on(client.txn(txn)).map_err(|e| self.failed("record the rotation", &e))?;
        if resp.succeeded() {
            return Ok(mine);
        }
        self.identity()?.ok_or_else(|| Error::EtcdLock {
            endpoints: self.endpoints.clone(),
            reason: "the rotation's record vanished while it was read".into(),
        })
    }

    /// Records that `node` completed `phase` (`None`: it aborted) of rotation `identity`.
    pub fn set_phase(&self, node: &str, phase: Option<Phase>, identity: &str) -> Result<()> {
        let record = NodePhase { node: node.to_owned(), phase, identity: identity.to_owned(), updated_at: now() };
        let value = serde_json::to_vec(&record).expect("invariant: strings always serialize");
        let mut client = self.client.clone();
        self.runtime
            .block_on(client.put(format!("{}nodes/{node}", self.prefix), value, None))
            .map_err(|e| self.failed("record this node's phase", &e))?;
        Ok(())
    }

    /// Every node's record, by name.
    pub fn nodes(&self) -> Result<Vec<NodePhase>> {
        let mut client = self.client.clone();
        let resp = self
            .runtime
            .block_on(client.get(format!("{}nodes/", self.prefix), Some(GetOptions::new().with_prefix())))
            .map_err(|e| self.failed("read the nodes' phases", &e))?;
        let mut nodes: Vec<NodePhase> =
            resp.kvs().iter().filter_map(|kv| serde_json::from_slice(kv.value()).ok()).collect();
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }

    /// The nodes of rotation `identity`, other than `node`, that have not completed `phase`.
    pub fn behind(&self, identity: &str, phase: Phase, node: &str) -> Result<Vec<NodePhase>> {
        Ok(self
            .nodes()?
            .into_iter()
            .filter(|n| n.node != node && n.identity == identity && n.phase.is_none_or(|p| p < phase))
            .collect())
    }

    /// Removes the rotation's records: when it is retired on every node, or aborted on all.
    pub fn clear(&self) -> Result<()> {
        let mut client = self.client.clone();
        self.runtime
            .block_on(client.delete(self.prefix.clone(), Some(etcd_client::DeleteOptions::new().with_prefix())))
            .map_err(|e| self.failed("remove the rotation's records", &e))?;
        Ok(())
    }
}
