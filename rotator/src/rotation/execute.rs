//! Carrying out a plan: new keys and certificates, written in one transaction after a backup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kubepki_pki::fsio;
use kubepki_pki::{CaKind, Certificate, Kubeconfig, PemSource, PkiDir, PrivateKey};
use rayon::prelude::*;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::rotation::audit_log::{self, CertRef, Record};
use crate::rotation::backup::Backup;
use crate::rotation::plan::{Plan, Renewal};
use crate::rotation::targets::{Cas, Discovery, Location};

/// One renewed certificate.
#[derive(Debug)]
pub struct Renewed {
    /// Its name.
    pub name: String,
    /// Where it lives.
    pub location: Location,
    /// The certificate replaced (`None`: there was none that could be read: a missing or
    /// broken leaf issued anew).
    pub old: Option<Certificate>,
    /// The new certificate.
    pub new: Certificate,
    /// The new key, PEM (for Secrets that mirror it). Zeroized on drop; never printed.
    pub key_pem: Zeroizing<String>,
    /// Whether the key was kept.
    pub key_reused: bool,
    /// Why, as the plan said.
    pub reasons: Vec<String>,
}

/// What a run did.
#[derive(Debug)]
pub struct Execution {
    /// What was renewed.
    pub renewed: Vec<Renewed>,
    /// The backup of every file replaced.
    pub backup: Option<Backup>,
    /// The files written.
    pub written: Vec<PathBuf>,
}

/// How to execute.
#[derive(Clone, Debug)]
pub(crate) struct ExecuteOptions {
    /// Where to back up the files being replaced.
    pub backup_dir: PathBuf,
    /// Where to append audit records, if anywhere.
    pub audit_log: Option<PathBuf>,
}

/// Issues every renewal of `plan`, backs up what it replaces, and writes the new keys and
/// certificates, and the kubeconfigs holding them, in one transaction. Kubeconfigs are
/// rewritten with only the client certificate and key changed — and the cluster CA data, if
/// it is not the cert dir's `ca.crt` — keeping their mode.
pub(crate) fn execute(
    plan: &Plan,
    discovery: &Discovery,
    cas: &Cas,
    pki: &PkiDir,
    options: &ExecuteOptions,
) -> Result<Execution> {
    if plan.is_empty() {
        return Ok(Execution { renewed: Vec::new(), backup: None, written: Vec::new() });
    }
    // Keys are generated and certificates signed in parallel (RSA keys dominate).
    let issued: Vec<(PrivateKey, Certificate)> =
        plan.renewals.par_iter().map(|r| issue(r, discovery, cas)).collect::<Result<_>>()?;

    let mut tx = pki.transaction();
    let mut kubeconfigs: BTreeMap<PathBuf, Vec<(String, String, Zeroizing<String>)>> = BTreeMap::new();
    let mut touched: Vec<PathBuf> = Vec::new();
    let mut renewed = Vec::with_capacity(issued.len());
    for (r, (key, cert)) in plan.renewals.iter().zip(issued) {
        let key_pem = key.to_pem();
        match &r.location {
            Location::CertDir { cert_path, key_path, .. } => {
                // Certificate and key change together (fsio's journal), the certificate first:
                // the order Go's LoadX509KeyPair reads them in.
                tx.add(
                    cert_path,
                    cert.to_pem().into_bytes(),
                    fsio::mode_of(cert_path).unwrap_or(kubepki_pki::CERT_MODE),
                );
                touched.push(cert_path.clone());
                if !r.reuse_key {
                    tx.add(key_path, key_pem.as_bytes(), kubepki_pki::KEY_MODE);
                    touched.push(key_path.clone());
                }
            }
            Location::Kubeconfig { path, user } => {
                kubeconfigs.entry(path.clone()).or_default().push((user.clone(), cert.to_pem(), key_pem.clone()));
            }
        }
        renewed.push(Renewed {
            name: r.name.clone(),
            location: r.location.clone(),
            old: r.old.clone(),
            new: cert,
            key_pem,
            key_reused: r.reuse_key,
            reasons: r.reasons.iter().map(ToString::to_string).collect(),
        });
    }
    let cluster_ca_pem = cas.get(CaKind::Ca).map(|ca| ca.bundle_pem());
    for (path, users) in &kubeconfigs {
        tx.add(path, rewrite_kubeconfig(path, users, cluster_ca_pem.as_deref())?.as_bytes(), fsio::mode_of(path)?);
        touched.push(path.clone());
    }

    let files: Vec<&Path> = touched.iter().map(PathBuf::as_path).collect();
    let backup = Backup::create(&options.backup_dir, &files)?;
    let written = tx.commit()?;
    if let Some(log) = &options.audit_log {
        audit_log::append(log, &records(&renewed, "renew"))?;
    }
    Ok(Execution { renewed, backup: Some(backup), written })
}

fn issue(r: &Renewal, discovery: &Discovery, cas: &Cas) -> Result<(PrivateKey, Certificate)> {
    let ca = cas.get(r.ca).ok_or_else(|| Error::Missing { path: PathBuf::from(r.ca.base_name()) })?;
    let signer = ca.signer(&r.name)?;
    let key = match r.target.map(|t| &discovery.targets[t]) {
        Some(target) if r.reuse_key => PrivateKey::from_pem(&target.key.to_pem(), &r.name)?,
        _ => r.algorithm.generate()?,
    };
    let der = signer.sign(&r.name, &r.request, &key, r.validity)?;
    Ok((key, Certificate::from_der(der, &r.name)?))
}

fn rewrite_kubeconfig(
    path: &Path,
    users: &[(String, String, Zeroizing<String>)],
    ca_pem: Option<&str>,
) -> Result<Zeroizing<String>> {
    let mut kc = Kubeconfig::read_required(path)?;
    for (user, cert, key) in users {
        kc.set_client_credentials(user, cert, key)?;
    }
    // A stale CA copy is refreshed from the cert dir's ca.crt (as `kubeadm certs renew` does),
    // for the clusters whose contexts use a renewed user.
    if let Some(ca_pem) = ca_pem {
        for cluster in clusters_of(&kc, users) {
            let stale = match kc.cluster_ca(&cluster)? {
                Some(PemSource::Embedded(have)) => normalize(&have) != normalize(ca_pem.as_bytes()),
                Some(PemSource::File(_)) | None => false,
            };
            if stale {
                kc.set_cluster_ca(&cluster, ca_pem)?;
            }
        }
    }
    Ok(kc.to_yaml())
}

fn clusters_of(kc: &Kubeconfig, users: &[(String, String, Zeroizing<String>)]) -> Vec<String> {
    let mut clusters = Vec::new();
    if let Ok(cur) = kc.current()
        && users.iter().any(|(u, _, _)| *u == cur.user)
    {
        clusters.push(cur.cluster);
    }
    clusters
}

fn normalize(b: &[u8]) -> Vec<u8> {
    b.iter().copied().filter(|c| !c.is_ascii_whitespace()).collect()
}

fn cert_ref(c: &Certificate) -> CertRef {
    CertRef {
        serial: c.serial.clone(),
        fingerprint: c.fingerprint_sha256(),
        not_after: c.not_after.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Audit records for renewed certificates (`action` is `renew` or `restore`).
pub(crate) fn records(renewed: &[Renewed], action: &str) -> Vec<Record> {
    let time = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or(OffsetDateTime::now_utc());
    let time = time.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let (host, user) = (audit_log::host(), audit_log::user());
    renewed
        .iter()
        .map(|r| {
            let (old, new) = (r.old.as_ref(), Some(&r.new));
            let (old, new) = if action == "restore" { (new, old) } else { (old, new) };
            Record {
                time: time.clone(),
                host: host.clone(),
                user: user.clone(),
                action: action.to_owned(),
                name: r.name.clone(),
                // Absolute, as the backup's manifest records it: the log outlives the working
                // directory.
                path: match &r.location {
                    Location::Kubeconfig { path, user } => format!("{}#{user}", absolute(path).display()),
                    other => absolute(other.path()).display().to_string(),
                },
                old: old.map(cert_ref),
                new: new.map(cert_ref),
                key_reused: r.key_reused,
                reason: r.reasons.join("; "),
            }
        })
        .collect()
}
