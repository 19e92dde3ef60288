//! `init`: create what is missing of a kubeadm PKI and its kubeconfigs, reuse what is there,
//! with kubeadm's semantics for existing files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rayon::prelude::*;
use time::OffsetDateTime;

use crate::ca::{CertificateAuthority, SigningCa};
use crate::cert::Certificate;
use crate::cluster::ClusterConfig;
use crate::error::{Error, Result};
use crate::fsio;
use crate::issue::CertRequest;
use crate::key::PrivateKey;
use crate::kubeconfig::{Kubeconfig, PemSource};
use crate::lock::DirLock;
use crate::profile::{CaKind, KubeconfigSpec, ProfileSpec};
use crate::store::{self, KEY_MODE, PkiDir};
use crate::validity::Validity;

/// What init did with one item.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Action {
    /// Generated and written.
    Created,
    /// Found on disk, checked, and kept.
    Reused,
    /// Found on disk and checked against an externally managed CA (its key is absent).
    External,
    /// Copied from the first control-plane node's shared material ([`join_control_plane`]).
    Copied,
}

impl Action {
    /// `created`, `reused`, `external` or `copied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Reused => "reused",
            Self::External => "external",
            Self::Copied => "copied",
        }
    }
}

/// The kind of an item init handles.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum ItemKind {
    /// A CA certificate and key.
    Ca,
    /// A leaf certificate and key in the cert dir.
    Certificate,
    /// A kubeconfig file.
    Kubeconfig,
    /// The service-account key pair.
    ServiceAccountKey,
}

/// One line of init's report.
#[derive(Clone, Debug)]
pub struct InitItem {
    /// kubeadm's name (`ca`, `apiserver`, `admin.conf`, `sa`).
    pub name: String,
    /// What it is.
    pub kind: ItemKind,
    /// What was done.
    pub action: Action,
    /// The (main) file.
    pub path: PathBuf,
    /// The certificate's NotAfter, if it has one.
    pub not_after: Option<OffsetDateTime>,
    /// The SANs of a serving certificate, as openssl prints them.
    pub sans: Option<String>,
}

/// What init did.
#[derive(Clone, Debug, Default)]
pub struct InitReport {
    /// Every item, in kubeadm's order.
    pub items: Vec<InitItem>,
    /// Things worth knowing that are not errors (a kubeconfig pointing at another server).
    pub warnings: Vec<String>,
    /// Files written.
    pub written: Vec<PathBuf>,
    /// Files of an interrupted earlier run that were completed or discarded first.
    pub recovered: Vec<PathBuf>,
}

/// How init runs.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// The moment certificates are issued at.
    pub now: OffsetDateTime,
    /// How long to wait for another kubepki process's lock.
    pub lock_timeout: Duration,
    /// Accept CA keys readable by group or others.
    pub allow_insecure_permissions: bool,
}

impl InitOptions {
    /// Issue at the current time, wait up to a minute for the lock.
    pub fn now() -> Self {
        Self {
            now: OffsetDateTime::now_utc(),
            lock_timeout: Duration::from_secs(60),
            allow_insecure_permissions: false,
        }
    }
}

/// Creates the cert dir and kubeconfigs for `cfg`, as `kubeadm init phase certs all` and
/// `kubeadm init phase kubeconfig all` do.
///
/// Existing files follow kubeadm's rules: an existing CA is reused (with its key) and never
/// overwritten; a CA without its key is external, and everything it signs must already exist
/// and verify; an existing leaf is reused if it verifies against its CA and carries the
/// subject, usages and (at least) the SANs wanted, and is an error otherwise; an existing
/// kubeconfig is reused if its CA is the cluster CA. Nothing is written unless everything
/// checks out, and then everything is written in one transaction. A second run with the same
/// configuration writes nothing.
pub fn init(cfg: &ClusterConfig, options: &InitOptions) -> Result<InitReport> {
    init_node(cfg, options, None)
}

/// Joins a control plane as `kubeadm join --control-plane` does with copied certificates: the
/// cluster's shared material (kubeadm's list for the join: the cluster CA, the front-proxy CA
/// and the etcd CA with their keys, `sa.key` and `sa.pub`; with external etcd, `etcd/ca.crt`
/// and the `apiserver-etcd-client` pair) is taken from `shared`, a copy of the first node's
/// cert dir of which nothing else is read; then this node's own leaves and kubeconfigs are made
/// as [`init`] makes them, without `super-admin.conf` (only `kubeadm init` writes it).
///
/// A shared file this node already has must be the same (the same certificate; a key with the
/// same public key): a node of another cluster is an error, and nothing is written. The copies
/// and the new leaves are one transaction. Running it again changes nothing.
pub fn join_control_plane(cfg: &ClusterConfig, shared: &Path, options: &InitOptions) -> Result<InitReport> {
    init_node(cfg, options, Some(shared))
}

fn init_node(cfg: &ClusterConfig, options: &InitOptions, shared: Option<&Path>) -> Result<InitReport> {
    cfg.validate()?;
    if let Some(dir) = shared.filter(|d| !d.is_dir()) {
        return Err(Error::Missing {
            path: dir.to_path_buf(),
            what: "the first node's cert dir (the shared material)",
            fix: "copy the first control-plane node's cert dir here (its CAs with their keys, sa.key, sa.pub)".into(),
        });
    }
    let created_dir = !cfg.cert_dir.exists();
    // Unsynced: the transaction makes the new entries durable with its files, in one round.
    let changed = fsio::create_dir_all_unsynced(&cfg.cert_dir, 0o755)?;
    let result = locked_init(cfg, options, changed, shared);
    if result.is_err() && created_dir {
        // Leave no trace of a failed first run: the cert dir is empty, the state dir holds
        // only the lock file (each directory goes only if empty).
        let state = crate::lock::state_dir(&cfg.cert_dir);
        let _ = std::fs::remove_file(state.join(crate::lock::LOCK_NAME));
        let _ = std::fs::remove_dir(&cfg.cert_dir);
        for dir in state.ancestors().take(3) {
            let _ = std::fs::remove_dir(dir);
        }
    }
    result
}

/// Takes the cert dir's lock and completes or discards an interrupted write: what every
/// command that writes does first.
pub fn open_locked(
    cert_dir: &Path,
    kubeconfig_dir: &Path,
    options: &InitOptions,
) -> Result<(DirLock, PkiDir, Vec<PathBuf>)> {
    let lock = DirLock::acquire(cert_dir, options.lock_timeout)?;
    let recovery = fsio::recover(&crate::lock::state_dir(cert_dir), cert_dir, &[kubeconfig_dir])?;
    let pki = PkiDir::new(cert_dir).allow_insecure_permissions(options.allow_insecure_permissions);
    Ok((lock, pki, recovery.completed.into_iter().chain(recovery.discarded).collect()))
}

/// Issues one missing cert-dir leaf (`kubepki issue apiserver`) from the existing CA. An
/// existing leaf is not replaced: that is rotation's job.
pub fn issue_leaf(cfg: &ClusterConfig, spec: &ProfileSpec, options: &InitOptions) -> Result<InitItem> {
    cfg.validate()?;
    if !cfg.cert_dir.is_dir() {
        return Err(Error::Missing {
            path: cfg.cert_dir.clone(),
            what: "the cert dir",
            fix: "run `kubepki init` first, or pass the cluster's --cert-dir".into(),
        });
    }
    let (_lock, pki, _) = open_locked(&cfg.cert_dir, &cfg.kubeconfig_dir, options)?;
    let (cert_path, key_path) = (pki.cert_path(spec.base_name), pki.key_path(spec.base_name));
    if cert_path.exists() || key_path.exists() {
        let present = if cert_path.exists() { cert_path } else { key_path };
        return Err(Error::ExistingMismatch { path: present, difference: format!("{} is already issued", spec.name) });
    }
    let ca = pki.load_ca(spec.ca)?.ok_or_else(|| Error::Missing {
        path: pki.cert_path(spec.ca.base_name()),
        what: "the CA certificate",
        fix: format!("{} is needed to issue {}; run `kubepki init` first", spec.ca, spec.name),
    })?;
    let signer = ca.signer(spec.name)?;
    let key = cfg.encryption_algorithm.generate()?;
    let der =
        signer.sign(spec.name, &cfg.request(spec)?, &key, Validity::starting_at(options.now, cfg.cert_validity))?;
    let cert = Certificate::from_der(der, spec.name)?;
    let mut tx = pki.transaction();
    pki.stage_pair(&mut tx, spec.base_name, &key, &cert.to_pem());
    tx.commit()?;
    Ok(InitItem {
        name: spec.name.into(),
        kind: ItemKind::Certificate,
        action: Action::Created,
        path: pki.cert_path(spec.base_name),
        not_after: Some(cert.not_after),
        sans: (!cert.sans.is_empty()).then(|| cert.sans.to_string()),
    })
}

/// `init` under the lock; `changed`: directories whose entries changed in making the cert dir,
/// made durable with the files written.
fn locked_init(
    cfg: &ClusterConfig,
    options: &InitOptions,
    changed: Vec<PathBuf>,
    shared: Option<&Path>,
) -> Result<InitReport> {
    let (_lock, pki, recovered) = open_locked(&cfg.cert_dir, &cfg.kubeconfig_dir, options)?;
    let mut report = InitReport { recovered, ..InitReport::default() };

    // The shared material a joining node copies, checked against what it already has.
    let copies = match shared {
        Some(dir) => {
            shared_copies(cfg, &pki, &PkiDir::new(dir).allow_insecure_permissions(options.allow_insecure_permissions))?
        }
        None => Vec::new(),
    };
    let copied = |path: &Path| copies.iter().any(|c| c.to == path);
    let source = shared.map(|dir| PkiDir::new(dir).allow_insecure_permissions(options.allow_insecure_permissions));
    let load_ca = |k: CaKind| -> Result<Option<CertificateAuthority>> {
        match &source {
            Some(src) if copied(&pki.cert_path(k.base_name())) => Ok(src.load_ca(k)?.map(|mut ca| {
                ca.cert_path = pki.cert_path(k.base_name());
                ca.key_path = pki.key_path(k.base_name());
                ca
            })),
            _ => pki.load_ca(k),
        }
    };

    // Read everything first: nothing is generated or written until the whole tree checks out.
    let cas: Vec<(CaKind, Option<CertificateAuthority>)> =
        cfg.cas().into_iter().map(|k| Ok((k, load_ca(k)?))).collect::<Result<_>>()?;
    let leaves: Vec<(&ProfileSpec, Option<store::LoadedPair>)> =
        cfg.leaves().into_iter().map(|s| Ok((s, pki.load_pair(s.base_name)?))).collect::<Result<_>>()?;
    let kubeconfigs: Vec<(&KubeconfigSpec, Option<Kubeconfig>)> = crate::profile::KUBECONFIGS
        .iter()
        .filter(|s| shared.is_none() || s.file_name != SUPER_ADMIN_CONF)
        .map(|s| Ok((s, Kubeconfig::read(&cfg.kubeconfig_dir.join(s.file_name))?)))
        .collect::<Result<_>>()?;
    let sa_key_path = match &source {
        Some(src) if copied(&pki.sa_key_path()) => src.sa_key_path(),
        _ => pki.sa_key_path(),
    };
    let sa: Option<PrivateKey> = store::read_key(&sa_key_path)?;

    // One key per missing item, generated in parallel (RSA keys take tens of milliseconds).
    let missing = cas.iter().filter(|(_, c)| c.is_none()).count()
        + leaves.iter().filter(|(_, p)| p.is_none()).count()
        + kubeconfigs.iter().filter(|(_, k)| k.is_none()).count()
        + usize::from(sa.is_none());
    crate::progress::keys_planned("init", missing, cfg.encryption_algorithm);
    let mut keys = (0..missing)
        .into_par_iter()
        .map(|_| cfg.encryption_algorithm.generate())
        .collect::<Result<Vec<_>>>()?
        .into_iter();
    let mut next_key = || {
        keys.next().ok_or_else(|| Error::InvalidValue {
            field: "internal",
            value: String::new(),
            reason: "key count mismatch".into(),
        })
    };

    let mut tx = pki.transaction();
    tx.sync_also(changed);
    for c in &copies {
        tx.add(&c.to, c.bytes.to_vec(), c.mode);
    }
    let mut ready: Vec<CertificateAuthority> = Vec::new();
    for (kind, existing) in cas {
        let (ca, action) = match existing {
            Some(ca) => {
                let action = if copied(&ca.cert_path) {
                    Action::Copied
                } else if ca.is_external() {
                    Action::External
                } else {
                    Action::Reused
                };
                (ca, action)
            }
            None => {
                let ca = SigningCa::from_key(
                    kind.name(),
                    kind.common_name(),
                    next_key()?,
                    cfg.ca_validity,
                    options.now,
                    pki.cert_path(kind.base_name()),
                    pki.key_path(kind.base_name()),
                )?;
                pki.stage_pair(&mut tx, kind.base_name(), ca.key(), &ca.cert.to_pem());
                (ca.into(), Action::Created)
            }
        };
        report.items.push(InitItem {
            name: kind.name().into(),
            kind: ItemKind::Ca,
            action,
            path: ca.cert_path.clone(),
            not_after: Some(ca.cert.not_after),
            // kubeadm's CAs carry their name as a DNS SAN; report what the certificate holds.
            sans: (!ca.cert.sans.is_empty()).then(|| ca.cert.sans.to_string()),
        });
        ready.push(ca);
    }
    let ca_of = |kind: CaKind| ready.iter().find(|c| c.name == kind.name());

    for (spec, existing) in leaves {
        let Some(ca) = ca_of(spec.ca) else { continue };
        let request = cfg.request(spec)?;
        let item = |action, cert: &Certificate, path: PathBuf| InitItem {
            name: spec.name.into(),
            kind: ItemKind::Certificate,
            action,
            path,
            not_after: Some(cert.not_after),
            sans: (!cert.sans.is_empty()).then(|| cert.sans.to_string()),
        };
        match existing {
            Some(pair) => {
                check_existing(&pair.cert_path, pair.leaf(), &request, ca, &mut report.warnings)?;
                let action = if ca.is_external() { Action::External } else { Action::Reused };
                report.items.push(item(action, pair.leaf(), pair.cert_path.clone()));
            }
            None => {
                let signer = ca.signer(spec.name)?;
                let key = next_key()?;
                let validity = Validity::starting_at(options.now, cfg.cert_validity);
                let der = signer.sign(spec.name, &request, &key, validity)?;
                let cert = Certificate::from_der(der, spec.name)?;
                pki.stage_pair(&mut tx, spec.base_name, &key, &cert.to_pem());
                report.items.push(item(Action::Created, &cert, pki.cert_path(spec.base_name)));
            }
        }
    }

    match sa {
        Some(key) => {
            let pub_path = pki.sa_pub_path();
            let read_from = match &source {
                Some(src) if copied(&pub_path) => src.sa_pub_path(),
                _ => pub_path.clone(),
            };
            match fsio::read_optional(&read_from, fsio::MAX_PEM_FILE, "public key file")? {
                // sa.pub may trust several keys (a service-account key rotation's overlap):
                // sa.key's must be one of them.
                Some(existing) => {
                    let trusted = crate::sa::PublicKeySet::parse(&existing, &read_from.display().to_string())?;
                    if !trusted.contains(&crate::sa::PublicKey::of(&key)?) {
                        return Err(Error::ExistingMismatch {
                            path: read_from,
                            difference: "it does not hold the public key of sa.key".into(),
                        });
                    }
                }
                None => tx.add(&pub_path, key.public_key_pem().into_bytes(), KEY_MODE),
            }
            let action = if copied(&pki.sa_key_path()) { Action::Copied } else { Action::Reused };
            report.items.push(sa_item(&pki, action));
        }
        None => {
            if pki.sa_pub_path().exists() {
                return Err(Error::HalfPair { present: pki.sa_pub_path(), missing: pki.sa_key_path() });
            }
            let key = next_key()?;
            tx.add(pki.sa_key_path(), key.to_pem().as_bytes(), KEY_MODE);
            tx.add(pki.sa_pub_path(), key.public_key_pem().into_bytes(), KEY_MODE);
            report.items.push(sa_item(&pki, Action::Created));
        }
    }

    let Some(cluster_ca) = ca_of(CaKind::Ca) else {
        return Err(Error::InvalidValue { field: "internal", value: String::new(), reason: "no cluster CA".into() });
    };
    for (spec, existing) in kubeconfigs {
        let path = cfg.kubeconfig_dir.join(spec.file_name);
        let server = cfg.server_url(spec.endpoint)?;
        match existing {
            Some(kc) => {
                let not_after = check_existing_kubeconfig(&path, &kc, &server, cluster_ca, &mut report.warnings)?;
                report.items.push(InitItem {
                    name: spec.file_name.into(),
                    kind: ItemKind::Kubeconfig,
                    action: if cluster_ca.is_external() { Action::External } else { Action::Reused },
                    path,
                    not_after,
                    sans: None,
                });
            }
            None => {
                let signer = cluster_ca.signer(spec.file_name)?;
                let request = cfg.kubeconfig_request(spec);
                let key = next_key()?;
                let validity = Validity::starting_at(options.now, cfg.cert_validity);
                let der = signer.sign(spec.file_name, &request, &key, validity)?;
                let cert = Certificate::from_der(der, spec.file_name)?;
                let kc = Kubeconfig::with_client_cert(
                    &cfg.cluster_name,
                    &server,
                    &cluster_ca.cert.to_pem(),
                    &request.subject.common_name,
                    &cert.to_pem(),
                    &key.to_pem(),
                );
                tx.add(&path, kc.to_yaml().as_bytes(), KEY_MODE);
                report.items.push(InitItem {
                    name: spec.file_name.into(),
                    kind: ItemKind::Kubeconfig,
                    action: Action::Created,
                    path,
                    not_after: Some(cert.not_after),
                    sans: None,
                });
            }
        }
    }

    report.written = tx.commit()?;
    Ok(report)
}

fn sa_item(pki: &PkiDir, action: Action) -> InitItem {
    InitItem {
        name: "sa".into(),
        kind: ItemKind::ServiceAccountKey,
        action,
        path: pki.sa_key_path(),
        not_after: None,
        sans: None,
    }
}

/// kubeadm's kubeconfig for `system:masters`, written by `kubeadm init` only.
const SUPER_ADMIN_CONF: &str = "super-admin.conf";

/// A shared file a joining control-plane node copies from the first node.
struct SharedCopy {
    to: PathBuf,
    bytes: zeroize::Zeroizing<Vec<u8>>,
    mode: u32,
}

/// The shared material to copy from `src` into `pki` (kubeadm's list for `join
/// --control-plane`), without the files `pki` already has; a file it has must be the same.
fn shared_copies(cfg: &ClusterConfig, pki: &PkiDir, src: &PkiDir) -> Result<Vec<SharedCopy>> {
    let mut names: Vec<(String, bool)> = Vec::new();
    for kind in [CaKind::Ca, CaKind::FrontProxyCa, CaKind::EtcdCa] {
        let base = kind.base_name();
        if cfg.external_etcd && kind == CaKind::EtcdCa {
            names.push((format!("{base}.crt"), true));
            names.push(("apiserver-etcd-client.crt".into(), false));
            names.push(("apiserver-etcd-client.key".into(), false));
        } else {
            names.push((format!("{base}.crt"), true));
            // A CA without its key (external CA mode) is copied as it is.
            names.push((format!("{base}.key"), false));
        }
    }
    names.push(("sa.key".into(), true));
    names.push(("sa.pub".into(), true));

    let mut copies = Vec::new();
    for (name, required) in names {
        let from = src.root().join(&name);
        let to = pki.root().join(&name);
        let Some(bytes) = fsio::read_optional(&from, fsio::MAX_PEM_FILE, "shared file")? else {
            if required {
                return Err(Error::Missing {
                    path: from,
                    what: "a shared file of the first control-plane node",
                    fix: "copy the first node's whole cert dir (its CAs with their keys, sa.key and sa.pub)".into(),
                });
            }
            continue;
        };
        let bytes = zeroize::Zeroizing::new(bytes);
        match fsio::read_optional(&to, fsio::MAX_PEM_FILE, "shared file")? {
            Some(mine) if same_material(&mine, &bytes, &name) => {}
            Some(_) => {
                return Err(Error::NotShared { path: to, shared: from });
            }
            None => {
                let mode = if name.ends_with(".crt") { store::CERT_MODE } else { KEY_MODE };
                copies.push(SharedCopy { to, bytes, mode });
            }
        }
    }
    Ok(copies)
}

/// Whether two PEM files hold the same material: the same bytes but for whitespace, or private
/// keys with the same public key (PKCS#1 and PKCS#8 encodings of one key).
fn same_material(a: &[u8], b: &[u8], name: &str) -> bool {
    if normalize_pem(a) == normalize_pem(b) {
        return true;
    }
    let key = |bytes: &[u8]| {
        std::str::from_utf8(bytes).ok().and_then(|s| PrivateKey::from_pem(s, name).ok()).map(|k| k.public_key_der())
    };
    name.ends_with(".key") && key(a).is_some() && key(a) == key(b)
}

fn normalize_pem(b: &[u8]) -> Vec<u8> {
    b.iter().copied().filter(|c| !c.is_ascii_whitespace()).collect()
}

/// kubeadm's checks on an existing leaf, with the difference spelled out: it must verify
/// against its CA and carry the CN, the usages and (at least) the SANs wanted. Other groups
/// (O) than today's kubeadm issues — `system:masters` on older clusters' client certificates —
/// are a warning, so that an older cluster can be adopted as kubeadm itself would keep it.
fn check_existing(
    path: &Path,
    cert: &Certificate,
    want: &CertRequest,
    ca: &CertificateAuthority,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let mismatch = |difference: String| Error::ExistingMismatch { path: path.to_owned(), difference };
    cert.verify_issued_by(&ca.cert).map_err(|reason| {
        mismatch(format!("it is not signed by {} ({}): {reason}", ca.name, ca.cert_path.display()))
    })?;
    if cert.subject.common_name != want.subject.common_name {
        return Err(mismatch(format!("its subject is \"{}\" where \"{}\" is wanted", cert.subject, want.subject)));
    }
    if cert.subject.organizations != want.subject.organizations {
        warnings.push(format!(
            "{} has subject \"{}\"; kubeadm now issues \"{}\" (kept as it is)",
            path.display(),
            cert.subject,
            want.subject
        ));
    }
    if cert.usage != Some(want.usage) {
        let have = cert.usage.map_or_else(|| "none".to_owned(), |u| u.to_string());
        return Err(mismatch(format!("its extended key usage is {have} where {} is wanted", want.usage)));
    }
    let (dns, ips) = want.sans.missing_from(&cert.sans);
    if !dns.is_empty() || !ips.is_empty() {
        let missing: Vec<String> =
            dns.iter().map(|d| format!("DNS:{d}")).chain(ips.iter().map(|i| format!("IP:{i}"))).collect();
        return Err(mismatch(format!("it lacks the SANs {}", missing.join(", "))));
    }
    Ok(())
}

/// kubeadm's checks on an existing kubeconfig: its current cluster's CA must be the cluster
/// CA; another server is only a warning. An embedded client certificate must be signed by the
/// CA. Returns the client certificate's NotAfter when it is embedded.
fn check_existing_kubeconfig(
    path: &Path,
    kc: &Kubeconfig,
    server: &str,
    ca: &CertificateAuthority,
    warnings: &mut Vec<String>,
) -> Result<Option<OffsetDateTime>> {
    let mismatch = |difference: String| Error::ExistingMismatch { path: path.to_owned(), difference };
    let current = kc.current()?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let Some(certs) = kc.cluster_ca_certificates(&current.cluster, base_dir)? else {
        return Err(mismatch(format!("its cluster {:?} has no certificate-authority", current.cluster)));
    };
    if !certs.iter().any(|c| c == &ca.cert) {
        return Err(mismatch(format!(
            "its cluster CA is not {} (a kubeconfig from another cluster?)",
            ca.cert_path.display()
        )));
    }
    if let Some(have) = kc.server(&current.cluster).filter(|s| *s != server) {
        warnings.push(format!("{} points at {have}, not {server}", path.display()));
    }
    match kc.client_certificate(&current.user)? {
        Some(PemSource::Embedded(pem)) => {
            let source = format!("{} client-certificate-data", path.display());
            let cert = &Certificate::from_pem_bundle(&pem, &source)?[0];
            cert.verify_issued_by(&ca.cert)
                .map_err(|reason| mismatch(format!("its client certificate is not signed by {}: {reason}", ca.name)))?;
            Ok(Some(cert.not_after))
        }
        _ => Ok(None),
    }
}
