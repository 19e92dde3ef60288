//! A cluster whose certificates expired, brought back from its files alone: what `kubepki
//! recover` does on a control-plane node, with no API server and no network.
//!
//! 1. Every input is checked before anything is written: each CA that is due has its key and
//!    the key matches; every leaf that is due has a CA key to sign it with; the kubelet's
//!    client certificate file, when `kubelet.conf` names one, can be read.
//! 2. **CAs first.** A CA that has expired or expires within the threshold is extended with
//!    its own key ([`kubepki_pki::extend_ca`]: same subject, key and subject key
//!    identifier, a new serial and validity), so that every certificate it ever signed still
//!    chains to it; its file and every trust point on this node holding it (kubeconfigs'
//!    `certificate-authority-data`, the kubelet's `clientCAFile` when it is another file) are
//!    rewritten in one journaled transaction, after a backup.
//! 3. **Then the leaves**, by [`rotation::rotate_observed`] itself: every leaf and kubeconfig
//!    client certificate that has expired or expires within the threshold, with the same plan,
//!    backup, journal, audit log and crash safety as `kubepki rotate`.
//! 4. **The kubelet**: when `kubelet.conf` names a client certificate file (the kubelet's
//!    `kubelet-client-current.pem` link), a new `kubelet-client-<time>.pem` (certificate and
//!    key, 0600) and the link swapped to it atomically, as the kubelet's certificate store
//!    does. A kubelet serving pair signed by the cluster CA is renewed with the leaves.
//! 5. **Workers**: a `kubelet.conf` and `ca.crt` per node named ([`Workers`]), for copying.
//!
//! Each step is its own journaled transaction, so a crash anywhere leaves every pair whole and
//! a rerun finds what is still due and completes.
//!
//! # Example: recover this node, then write two workers' kubelet.conf
//!
//! ```no_run
//! use kubepki_rotator::recover::{self, RecoverRequest, Workers};
//!
//! # fn main() -> Result<(), kubepki_rotator::Error> {
//! let mut request = RecoverRequest::new("/etc/kubernetes/pki", "/etc/kubernetes");
//! request.workers = Some(Workers {
//!     nodes: vec!["worker-1".into(), "worker-2".into()],
//!     out: "/root/recovered".into(),
//!     ..Workers::default()
//! });
//! let report = recover::recover(&request, &mut ())?;
//! for ca in report.plan.cas.iter().filter(|c| !c.is_refresh()) {
//!     println!("{} extended until {}", ca.ca.name(), ca.new.not_after);
//! }
//! for step in report.restart.lines() {
//!     println!("then: {step}");
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kubepki_pki::fsio;
use kubepki_pki::{
    CERT_MODE, CaKind, Certificate, InitOptions, Kubeconfig, Lifetime, PemSource, PkiDir, PrivateKey, Validity,
};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::ca_rotation;
use crate::error::{Error, Result};
use crate::rotation::audit_log;
use crate::rotation::backup::{self, Backup};
use crate::rotation::execute::{self, Renewed};
use crate::rotation::policy::RenewalPolicy;
use crate::rotation::targets::{self, Cas, Location};
use crate::rotation::{self, RotateReport, RotateRequest};

/// The kubelet's client certificate link, as its certificate store names it.
pub const KUBELET_CLIENT_CURRENT: &str = "kubelet-client-current.pem";

/// Node names and where their files go.
#[derive(Clone, Debug, Default)]
pub struct Workers {
    /// Node names given (`--nodes FILE`).
    pub nodes: Vec<String>,
    /// etcd client URLs to list the nodes from (`--nodes-from-etcd`): the keys under
    /// `/registry/minions/`, read with the cert dir's `apiserver-etcd-client` and `etcd/ca.crt`.
    pub from_etcd: Vec<String>,
    /// The directory each node's `kubelet.conf` and `ca.crt` go in (`<out>/<node>/`).
    pub out: PathBuf,
}

/// Everything a recovery needs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RecoverRequest {
    /// The rotation of the leaves: cert dir, kubeconfig dir, dry run, backup, audit log, lock.
    /// Its policy is replaced by [`Self::threshold`]'s; its `plan.backdate` by [`Self::backdate`].
    pub rotate: RotateRequest,
    /// Renew what has expired or expires within this.
    pub threshold: Duration,
    /// NotBefore this long before now, for every certificate written (kubeadm's 5 minutes).
    pub backdate: Duration,
    /// The lifetime of an extended CA (default: the one it had).
    pub ca_lifetime: Option<Lifetime>,
    /// The kubelet's PKI dir as the node names it (`/var/lib/kubelet/pki`); `None`: none.
    pub kubelet_dir: Option<PathBuf>,
    /// A node filesystem mounted or copied here: the kubelet dir and the files kubeconfigs
    /// name are read under it (the cert dir and kubeconfig dir of [`Self::rotate`] already are).
    pub root: Option<PathBuf>,
    /// Worker nodes' files to write, if any.
    pub workers: Option<Workers>,
}

impl RecoverRequest {
    /// A recovery of `cert_dir` and `kubeconfig_dir` with kubeadm's defaults: what expires
    /// within 30 days, NotBefore 5 minutes back, the kubelet's `/var/lib/kubelet/pki`.
    pub fn new(cert_dir: impl Into<PathBuf>, kubeconfig_dir: impl Into<PathBuf>) -> Self {
        Self {
            rotate: RotateRequest::new(cert_dir, kubeconfig_dir),
            threshold: Duration::from_secs(30 * 86400),
            backdate: kubepki_pki::BACKDATE,
            ca_lifetime: None,
            kubelet_dir: Some(PathBuf::from(kubepki_pki::paths::KUBELET_PKI_DIR)),
            root: None,
            workers: None,
        }
    }

    /// "Expired, or expiring within the threshold".
    pub fn policy(&self) -> RenewalPolicy {
        RenewalPolicy { renew_before: Some(self.threshold), renew_at: None, jitter: None, floor: None }
    }

    /// A node path as it is read here: under [`Self::root`], links resolved inside it.
    pub fn on_node(&self, path: &Path) -> PathBuf {
        match &self.root {
            Some(root) => crate::inventory::resolve_under(root, path),
            None => path.to_owned(),
        }
    }
}

/// A CA extended with its own key, or (`old == new`) a CA whose copies on this node are of an
/// older issue of it and are brought in step.
#[derive(Clone, Debug)]
pub struct CaExtension {
    /// The CA.
    pub ca: CaKind,
    /// Its certificate file.
    pub path: PathBuf,
    /// The certificate replaced.
    pub old: Certificate,
    /// The re-issued certificate.
    pub new: Certificate,
    /// The other files on this node that hold it and get the new one.
    pub trust_points: Vec<PathBuf>,
}

impl CaExtension {
    /// Whether the CA itself stays as it is and only its copies change.
    pub fn is_refresh(&self) -> bool {
        self.old == self.new
    }
}

/// The kubelet's client certificate file and what becomes of it.
#[derive(Clone, Debug)]
pub struct KubeletClient {
    /// The file `kubelet.conf` names (the `kubelet-client-current.pem` link), as read here.
    pub link: PathBuf,
    /// Its certificate.
    pub old: Certificate,
    /// Whether it is due.
    pub due: bool,
    /// The new validity, when due.
    pub validity: Option<Validity>,
    /// The new pem written (`kubelet-client-<time>.pem`), and its certificate.
    pub written: Option<(PathBuf, Certificate)>,
}

/// The kubelet's own self-signed serving pair (`kubelet.crt`: the serving certificate, then
/// the CA the kubelet made for it), renewed the way the kubelet makes it.
#[derive(Clone, Debug)]
pub struct KubeletServing {
    /// `kubelet.crt`, as read here.
    pub path: PathBuf,
    /// Its serving certificate.
    pub old: Certificate,
    /// The new validity.
    pub validity: Validity,
    /// The new serving certificate, once written.
    pub written: Option<Certificate>,
}

/// What recover plans on top of the rotation's plan (shown before anything is written).
#[derive(Clone, Debug, Default)]
pub struct RecoverPlan {
    /// The moment of issue.
    pub now: Option<OffsetDateTime>,
    /// CAs to extend.
    pub cas: Vec<CaExtension>,
    /// The kubelet's client certificate file.
    pub kubelet_client: Option<KubeletClient>,
    /// The kubelet's self-signed serving pair, when it is due (one signed by the cluster CA is
    /// renewed by the rotation).
    pub kubelet_serving: Option<KubeletServing>,
    /// Things to know (this node's clock behind the tree).
    pub warnings: Vec<String>,
    /// Trust points on other machines that must get the extended CAs.
    pub elsewhere: Vec<String>,
}

/// What a recovery did.
#[derive(Debug)]
#[non_exhaustive]
pub struct RecoverReport {
    /// The plan, with what was written.
    pub plan: RecoverPlan,
    /// The files the CA step wrote.
    pub ca_written: Vec<PathBuf>,
    /// The CA step's backup.
    pub ca_backup: Option<PathBuf>,
    /// The rotation of the leaves.
    pub rotation: RotateReport,
    /// Each worker node and the directory of its files.
    pub workers: Vec<(String, PathBuf)>,
    /// What to restart on this node, in order ([`crate::rotation::restart`]).
    pub restart: rotation::restart::RestartList,
    /// An interrupted earlier rotation whose owed hook and verification were finished first.
    pub finished: Option<rotation::pending::Pending>,
}

/// Told what a recovery is about to do.
pub trait RecoveryObserver: rotation::RotationObserver {
    /// Recover's own plan, once every input is checked and before anything is written.
    fn recovery_planned(&mut self, plan: &RecoverPlan) {
        let _ = plan;
    }
}

/// No observer.
impl RecoveryObserver for () {}

fn invalid(field: &'static str, reason: String) -> Error {
    Error::InvalidRequest { field, reason }
}

/// Recovers the node `request` names; see the [module](self) for the steps.
///
/// Errors: an input problem (a CA key absent or not matching, a kubelet certificate file that
/// cannot be read) as [`Error::InvalidRequest`] or the CA model's error, before anything is
/// written; any error of the rotation; an I/O failure as it happened.
pub fn recover(request: &RecoverRequest, observer: &mut dyn RecoveryObserver) -> Result<RecoverReport> {
    let mut rotate = request.rotate.clone();
    rotate.plan.policy = request.policy();
    rotate.plan.backdate = Some(request.backdate);
    let now = rotate.plan.now;
    rotate.plan.at = now;
    if !rotate.cert_dir.is_dir() {
        return Err(invalid("cert_dir", format!("{} is not a directory (the cert dir)", rotate.cert_dir.display())));
    }
    let kubelet_dir = request.kubelet_dir.as_ref().map(|d| request.on_node(d)).filter(|d| d.is_dir());

    // 1. Every input, under the cert dir's lock.
    let options = InitOptions {
        now,
        lock_timeout: rotate.lock_timeout,
        allow_insecure_permissions: rotate.allow_insecure_permissions,
    };
    let (lock, pki, _) = kubepki_pki::open_locked(&rotate.cert_dir, &rotate.kubeconfig_dir, &options)?;
    // A rotation killed after its write still owes its hook and verification: settled first
    // (finished, or undone: an error), so that nothing here is undone by it later.
    let finished = if rotate.dry_run { None } else { rotation::pending::finish_interrupted_locked(&rotate.cert_dir)? };
    let cas = Cas::load(&pki).map_err(|e| match e {
        Error::Pki(kubepki_pki::Error::KeyMismatch { key, cert }) => invalid(
            "cert_dir",
            format!(
                "{key} does not match the public key of {cert}: recover extends a CA and signs with its own key; \
                 restore the CA's key from a backup of the cert dir"
            ),
        ),
        other => other,
    })?;
    // A kubelet serving pair signed by a CA of the cert dir is the rotation's; a self-signed one
    // is recover's own (below).
    let ca_signed = |d: &&PathBuf| {
        kubepki_pki::read_certs(&d.join(kubepki_pki::node::CERT_FILE))
            .ok()
            .flatten()
            .and_then(|certs| certs.into_iter().next())
            .is_some_and(|c| cas.issuer_of(&c).is_some())
    };
    if let Some(dir) = kubelet_dir.as_ref().filter(ca_signed) {
        rotate.kubelet_serving_dirs.push(dir.clone());
    }
    let kubeconfigs = targets::kubeconfigs_in(&rotate.kubeconfig_dir)
        .into_iter()
        .chain(rotate.kubeconfigs.iter().cloned())
        .collect::<Vec<_>>();
    let discovery = targets::discover(&pki, &cas, &kubeconfigs, &rotate.kubelet_serving_dirs)?;
    if let Some(e) = discovery.external.iter().find(|e| e.not_after <= now + to_time(request.threshold)) {
        return Err(invalid(
            "cert_dir",
            format!(
                "{} ({}) expires {} and is signed by {}, whose key {} is absent: recover signs with the CA's key; \
                 put it back (from a backup of the cert dir) or renew the leaf with the external CA",
                e.name,
                e.location.path().display(),
                e.not_after.date(),
                e.ca.name(),
                e.ca_key.display()
            ),
        ));
    }
    let kubelet_conf = rotate.kubeconfig_dir.join("kubelet.conf");
    let mut plan = plan_recovery(request, &cas, &discovery, &kubeconfigs, kubelet_dir.as_deref(), &kubelet_conf, now)?;
    observer.recovery_planned(&plan);

    // 2. The CAs, with every trust point on this node.
    let (mut ca_written, mut ca_backup) = (Vec::new(), None);
    if !rotate.dry_run && !plan.cas.is_empty() {
        let parent = backup::parent_dir(rotate.backup_dir.as_deref(), &rotate.cert_dir)?;
        let dir = backup::run_dir(&parent, now)?;
        ca_written = write_cas(&pki, &cas, &plan.cas, &dir)?;
        ca_backup = Some(dir);
        if let Some(log) = &rotate.audit_log {
            let renewed: Vec<Renewed> = plan
                .cas
                .iter()
                .filter(|e| !e.is_refresh())
                .map(|e| Renewed {
                    name: e.ca.name().into(),
                    location: Location::CertDir {
                        base: e.ca.base_name().into(),
                        cert_path: e.path.clone(),
                        key_path: pki.key_path(e.ca.base_name()),
                    },
                    old: Some(e.old.clone()),
                    new: e.new.clone(),
                    key_pem: Zeroizing::new(String::new()),
                    key_reused: true,
                    reasons: vec!["recover: CA extended with its own key".into()],
                })
                .collect();
            audit_log::append(log, &execute::records(&renewed, "renew"))?;
        }
    }
    if !rotate.dry_run
        && let Some(serving) = plan.kubelet_serving.as_mut()
    {
        let parent = backup::parent_dir(rotate.backup_dir.as_deref(), &rotate.cert_dir)?;
        serving.written = Some(renew_self_signed_serving(&pki, serving, &backup::run_dir(&parent, now)?, now)?);
    }
    drop(lock);

    // 3. The leaves, by the rotation itself (planned against the extended CAs in a dry run).
    if rotate.dry_run {
        rotate.ca_certificates = plan.cas.iter().filter(|e| !e.is_refresh()).map(|e| (e.ca, e.new.clone())).collect();
    }
    let rotation = rotation::rotate_observed(&rotate, observer)?;

    // 4. The kubelet's client certificate.
    if !rotate.dry_run
        && let Some(client) = plan.kubelet_client.as_mut().filter(|c| c.due)
    {
        let cas = Cas::load(&PkiDir::new(&rotate.cert_dir))?;
        client.written = Some(renew_kubelet_client(request, client, &cas, now)?);
        if let (Some(log), Some((pem, cert))) = (&rotate.audit_log, &client.written) {
            let renewed = Renewed {
                name: KUBELET_CLIENT_CURRENT.into(),
                location: Location::CertDir {
                    base: "kubelet-client".into(),
                    cert_path: pem.clone(),
                    key_path: pem.clone(),
                },
                old: Some(client.old.clone()),
                new: cert.clone(),
                key_pem: Zeroizing::new(String::new()),
                key_reused: false,
                reasons: vec!["recover: expired or expiring".into()],
            };
            audit_log::append(log, &execute::records(std::slice::from_ref(&renewed), "renew"))?;
        }
    }

    // 5. Worker nodes.
    let workers = match &request.workers {
        Some(w) if !rotate.dry_run => write_workers(request, w, &kubelet_conf, now)?,
        _ => Vec::new(),
    };
    // What reads what changed on this node, from its manifests and kubelet configuration.
    let mut changed = ca_written.clone();
    changed.extend(rotation.execution.iter().flat_map(|o| o.written.iter().cloned()));
    if let Some(client) = plan.kubelet_client.as_ref().filter(|c| c.written.is_some()) {
        changed.push(client.link.clone());
    }
    if let Some(serving) = plan.kubelet_serving.as_ref().filter(|s| s.written.is_some()) {
        changed.push(serving.path.clone());
    }
    let restart = rotation::restart::restarts(
        &changed,
        &rotation::restart::NodePaths::new(&rotate.cert_dir, &rotate.kubeconfig_dir),
    );
    Ok(RecoverReport { plan, ca_written, ca_backup, rotation, workers, restart, finished })
}

/// Recover's own plan — the CAs to extend (or whose copies to bring in step), the kubelet's
/// client certificate and self-signed serving pair, warnings — from what step 1 read.
fn plan_recovery(
    request: &RecoverRequest,
    cas: &Cas,
    discovery: &targets::Discovery,
    kubeconfigs: &[PathBuf],
    kubelet_dir: Option<&Path>,
    kubelet_conf: &Path,
    now: OffsetDateTime,
) -> Result<RecoverPlan> {
    let policy = request.policy();
    let mut plan = RecoverPlan { now: Some(now), ..RecoverPlan::default() };
    for kind in CaKind::ALL {
        let Some(ca) = cas.get(kind) else { continue };
        if !policy.is_due(&ca.cert, now) {
            // Not due, but its copies on this node may be of an older issue (this node took
            // another node's extended CA): they get the CA file's, nothing is re-issued.
            let current = CaExtension {
                ca: kind,
                path: ca.cert_path.clone(),
                old: ca.cert.clone(),
                new: ca.cert.clone(),
                trust_points: Vec::new(),
            };
            if !trust_points_of(request, &current, &ca.others, kubeconfigs)?.is_empty() {
                plan.cas.push(current);
            }
            continue;
        }
        let Some(key) = ca.key() else {
            return Err(invalid(
                "cert_dir",
                format!(
                    "{} ({}) expires {} and its key {} is absent: recover extends a CA with its own key; put the key \
                     back (from a backup of the cert dir)",
                    ca.name,
                    ca.cert_path.display(),
                    ca.cert.not_after.date(),
                    ca.key_path.display()
                ),
            ));
        };
        let lifetime = request
            .ca_lifetime
            .or_else(|| kubepki_pki::original_lifetime(ca.cert.not_before, ca.cert.not_after))
            .unwrap_or(Lifetime::DEFAULT_CA);
        let new = kubepki_pki::extend_ca(&ca.cert, key, Validity::backdated(now, lifetime, request.backdate))?;
        plan.cas.push(CaExtension {
            ca: kind,
            path: ca.cert_path.clone(),
            old: ca.cert.clone(),
            new,
            trust_points: Vec::new(),
        });
        for point in ca_rotation::trust_points(kind) {
            if !plan.elsewhere.contains(&point) {
                plan.elsewhere.push(point);
            }
        }
    }
    plan.kubelet_client = kubelet_client(request, kubelet_conf, &policy, now)?;
    plan.kubelet_serving = kubelet_dir.and_then(|d| self_signed_serving(request, d, cas, &policy, now));
    for ext in &mut plan.cas {
        let others = cas.get(ext.ca).map_or(&[][..], |ca| ca.others.as_slice());
        ext.trust_points = trust_points_of(request, ext, others, kubeconfigs)?;
    }
    plan.warnings.extend(clock_behind(cas, discovery, plan.kubelet_client.as_ref(), now));
    Ok(plan)
}

fn to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// The kubelet's client certificate file `kubelet.conf` names, read (an error if it cannot be:
/// the input is wrong), and whether it is due. `None` when `kubelet.conf` is absent or embeds
/// its credentials (renewed in place by the rotation).
fn kubelet_client(
    request: &RecoverRequest,
    kubelet_conf: &Path,
    policy: &RenewalPolicy,
    now: OffsetDateTime,
) -> Result<Option<KubeletClient>> {
    let Some(kc) = Kubeconfig::read(kubelet_conf)? else { return Ok(None) };
    let Ok(current) = kc.current() else { return Ok(None) };
    let Some(PemSource::File(file)) = kc.client_certificate(&current.user)? else { return Ok(None) };
    let named = kubelet_conf.parent().unwrap_or(Path::new(".")).join(&file);
    // The link itself (its directory resolved on the node, not the link: it is swapped), and
    // the file it names, read through the node's links.
    let link = match (named.parent(), named.file_name()) {
        (Some(dir), Some(name)) => request.on_node(dir).join(name),
        _ => request.on_node(&named),
    };
    let target = request.on_node(&named);
    let here = if target == named { String::new() } else { format!(" ({})", target.display()) };
    let unreadable = |why: String| {
        invalid(
            "kubelet_dir",
            format!(
                "{} names the client certificate {}{here}, which {why}; restore it from a backup of {}, or point \
                 kubelet.conf at a readable certificate and key",
                kubelet_conf.display(),
                named.display(),
                named.parent().unwrap_or(Path::new("/")).display()
            ),
        )
    };
    let text = fsio::read_optional(&target, fsio::MAX_PEM_FILE, "kubelet client certificate")
        .map_err(|e| unreadable(format!("cannot be read: {e}")))?
        .ok_or_else(|| unreadable("does not exist".into()))?;
    let source = target.display().to_string();
    let old = Certificate::from_pem_bundle(&text, &source)
        .map_err(|e| unreadable(format!("holds no certificate: {e}")))?
        .remove(0);
    let text = Zeroizing::new(String::from_utf8_lossy(&text).into_owned());
    let key = PrivateKey::from_pem(&text, &source).map_err(|e| unreadable(format!("holds no usable key: {e}")))?;
    if !key.matches_spki(&old.spki) {
        return Err(unreadable("holds a key that does not match its certificate".into()));
    }
    let due = policy.is_due(&old, now);
    let validity = due.then(|| {
        let lifetime = kubepki_pki::original_lifetime(old.not_before, old.not_after).unwrap_or(Lifetime::DEFAULT_CERT);
        Validity::backdated(now, lifetime, request.backdate)
    });
    Ok(Some(KubeletClient { link, old, due, validity, written: None }))
}

/// The kubelet's serving pair in `dir` when the kubelet signed it itself (no CA of the cert
/// dir did) and it is due.
fn self_signed_serving(
    request: &RecoverRequest,
    dir: &Path,
    cas: &Cas,
    policy: &RenewalPolicy,
    now: OffsetDateTime,
) -> Option<KubeletServing> {
    let path = dir.join(kubepki_pki::node::CERT_FILE);
    let chain = kubepki_pki::read_certs(&path).ok()??;
    let old = chain.first()?.clone();
    let own = chain.get(1).unwrap_or(&old);
    let self_made = own.is_self_issued() && old.verify_issued_by(own).is_ok() && cas.issuer_of(&old).is_none();
    if !self_made || !policy.is_due(&old, now) {
        return None;
    }
    let lifetime = kubepki_pki::original_lifetime(old.not_before, old.not_after).unwrap_or(Lifetime::DEFAULT_CERT);
    Some(KubeletServing { path, old, validity: Validity::backdated(now, lifetime, request.backdate), written: None })
}

/// A new self-signed serving pair as the kubelet makes one (client-go's
/// `GenerateSelfSignedCertKey`): a CA `<host>-ca@<unix time>` and a serving certificate
/// `<host>@<unix time>` with the old one's SANs and key algorithm, `kubelet.crt` holding both;
/// written with `kubelet.key` in one transaction, after a backup in `backup_dir`.
fn renew_self_signed_serving(
    pki: &PkiDir,
    serving: &KubeletServing,
    backup_dir: &Path,
    now: OffsetDateTime,
) -> Result<Certificate> {
    let host = serving.old.subject.common_name.split('@').next().unwrap_or_default().to_owned();
    let stamp = now.unix_timestamp();
    let algorithm = serving.old.public_key.key_algorithm().unwrap_or(kubepki_pki::KeyAlgorithm::Rsa2048);
    let (ca_key, key) = (algorithm.generate()?, algorithm.generate()?);
    let own_ca = kubepki_pki::self_signed_ca(&format!("{host}-ca@{stamp}"), &ca_key, serving.validity)?;
    let name = format!("{host}@{stamp}");
    let request = kubepki_pki::CertRequest {
        subject: kubepki_pki::Subject::new(name.clone(), Vec::<String>::new()),
        sans: serving.old.sans.clone(),
        usage: kubepki_pki::Usage::Server,
    };
    let der = kubepki_pki::Signer::new(&name, &own_ca, &ca_key)?.sign(&name, &request, &key, serving.validity)?;
    let cert = Certificate::from_der(der, &name)?;
    let key_path = serving.path.with_file_name(kubepki_pki::node::KEY_FILE);
    let mut tx = pki.transaction();
    tx.add(
        &serving.path,
        format!("{}{}", cert.to_pem(), own_ca.to_pem()).into_bytes(),
        fsio::mode_of(&serving.path).unwrap_or(CERT_MODE),
    );
    tx.add(&key_path, key.to_pem().as_bytes(), kubepki_pki::KEY_MODE);
    Backup::create(backup_dir, &[serving.path.as_path(), key_path.as_path()])?;
    tx.commit()?;
    Ok(cert)
}

/// The files on this node other than the CA file that hold an issue of the CA `ext` extends
/// (or brings in step) other than its file's: kubeconfigs embedding it, and the kubelet's
/// `clientCAFile` when that is another file. `others`: the rest of the CA file's bundle.
fn trust_points_of(
    request: &RecoverRequest,
    ext: &CaExtension,
    others: &[Certificate],
    kubeconfigs: &[PathBuf],
) -> Result<Vec<PathBuf>> {
    let mut points = Vec::new();
    if ext.ca != CaKind::Ca {
        return Ok(points);
    }
    let bundle: Vec<Certificate> = std::iter::once(ext.new.clone()).chain(others.iter().cloned()).collect();
    let bundle_pem: String = bundle.iter().map(Certificate::to_pem).collect();
    for path in kubeconfigs {
        if ca_rotation::kubeconfig_with_bundle(path, &bundle, &bundle_pem)?.is_some() {
            points.push(path.clone());
        }
    }
    if let Some(file) = kubelet_client_ca_file(request).filter(|f| !rotation::same_file(f, &ext.path))
        && let Ok(Some(have)) = kubepki_pki::read_certs(&file)
        && have.iter().any(|c| c.spki == ext.old.spki && c.raw_subject == ext.old.raw_subject)
        && have != bundle
    {
        points.push(file);
    }
    Ok(points)
}

/// The kubelet's `authentication.x509.clientCAFile` from `<kubelet dir>/../config.yaml`, as read here.
fn kubelet_client_ca_file(request: &RecoverRequest) -> Option<PathBuf> {
    let config = request.on_node(&request.kubelet_dir.as_ref()?.parent()?.join("config.yaml"));
    let text = std::fs::read_to_string(config).ok()?;
    let doc: serde_json::Value = serde_saphyr::from_str(&text).ok()?;
    let file = doc.pointer("/authentication/x509/clientCAFile")?.as_str()?;
    Some(request.on_node(Path::new(file)))
}

/// Writes the extended CAs and their trust points in one transaction, after a backup in `dir`.
fn write_cas(pki: &PkiDir, cas: &Cas, extensions: &[CaExtension], dir: &Path) -> Result<Vec<PathBuf>> {
    let mut tx = pki.transaction();
    let mut touched: Vec<PathBuf> = Vec::new();
    for ext in extensions {
        let others: String =
            cas.get(ext.ca).map(|ca| ca.others.iter().map(Certificate::to_pem).collect()).unwrap_or_default();
        let bundle_pem = format!("{}{others}", ext.new.to_pem());
        if !ext.is_refresh() {
            tx.add(&ext.path, bundle_pem.clone().into_bytes(), fsio::mode_of(&ext.path).unwrap_or(CERT_MODE));
            touched.push(ext.path.clone());
        }
        for point in &ext.trust_points {
            let bundle = Certificate::from_pem_bundle(bundle_pem.as_bytes(), &ext.path.display().to_string())?;
            // A CA file (the kubelet's clientCAFile) gets the CA file's bundle; a kubeconfig, the
            // bundle in each cluster that held the CA.
            let mode = fsio::mode_of(point)?;
            if std::fs::read(point).is_ok_and(|b| kubepki_pki::pem::looks_like_pem(&b)) {
                tx.add(point, bundle_pem.clone().into_bytes(), mode);
            } else if let Some(text) = ca_rotation::kubeconfig_with_bundle(point, &bundle, &bundle_pem)? {
                tx.add(point, text.as_bytes(), mode);
            }
            touched.push(point.clone());
        }
    }
    let files: Vec<&Path> = touched.iter().map(PathBuf::as_path).collect();
    Backup::create(dir, &files)?;
    Ok(tx.commit()?)
}

/// The node's time zone as the kubelet's Go runtime has it (no `TZ` in its unit): the zone
/// file `/etc/localtime` names (read inside `--root` for a node filesystem there), or UTC
/// without one, as Go falls back.
fn node_time_zone(root: Option<&Path>) -> jiff::tz::TimeZone {
    let localtime = Path::new("/etc/localtime");
    let path = root.map_or_else(|| localtime.to_owned(), |r| crate::inventory::resolve_under(r, localtime));
    std::fs::read(&path)
        .ok()
        .and_then(|zone| jiff::tz::TimeZone::tzif("localtime", &zone).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

/// `2006-01-02-15-04-05` in the node's local time: the time stamp client-go's certificate store
/// puts in a `kubelet-client-<time>.pem` name (`time.Now().Format`).
fn pem_time_stamp(now: OffsetDateTime, zone: &jiff::tz::TimeZone) -> String {
    let local = jiff::Timestamp::from_second(now.unix_timestamp())
        .map(|t| t.to_zoned(zone.clone()))
        .expect("invariant: an X.509-representable time is within jiff's range");
    local.strftime("%Y-%m-%d-%H-%M-%S").to_string()
}

/// A new `kubelet-client-<time>.pem` (certificate then key, 0600) with the identity of the old
/// one and a new key of its algorithm, and the link swapped to it as the kubelet's certificate
/// store swaps it: a `kubelet-client-updated.pem` link made, then renamed over the current one
/// (one atomic rename: a reader sees the old pair or the new, never neither). Returns the new
/// file (as read here) and its certificate.
fn renew_kubelet_client(
    request: &RecoverRequest,
    client: &KubeletClient,
    cas: &Cas,
    now: OffsetDateTime,
) -> Result<(PathBuf, Certificate)> {
    let ca_kind = cas.issuer_of(&client.old).unwrap_or(CaKind::Ca);
    let ca = cas.get(ca_kind).ok_or_else(|| Error::Missing { path: PathBuf::from(ca_kind.base_name()) })?;
    let request_of = kubepki_pki::CertRequest::from_certificate(&client.old).ok_or_else(|| {
        invalid("kubelet_dir", format!("{}: its certificate has no clientAuth usage", client.link.display()))
    })?;
    let algorithm = client.old.public_key.key_algorithm().unwrap_or(kubepki_pki::KeyAlgorithm::EcdsaP256);
    let key = algorithm.generate()?;
    let validity =
        client.validity.unwrap_or_else(|| Validity::backdated(now, Lifetime::DEFAULT_CERT, request.backdate));
    let der = ca.signer(KUBELET_CLIENT_CURRENT)?.sign(KUBELET_CLIENT_CURRENT, &request_of, &key, validity)?;
    let cert = Certificate::from_der(der, KUBELET_CLIENT_CURRENT)?;
    // The link's directory, as read here and as the node names it (the link's target).
    let dir = client.link.parent().unwrap_or(Path::new(".")).to_owned();
    let node_dir = match (&request.root, &request.kubelet_dir) {
        (Some(_), Some(d)) => d.clone(),
        _ => std::path::absolute(&dir).map_err(|source| kubepki_pki::Error::Read { path: dir.clone(), source })?,
    };
    let stamp = pem_time_stamp(now, &node_time_zone(request.root.as_deref()));
    let name = format!("kubelet-client-{stamp}.pem");
    let pem = dir.join(&name);
    let body = Zeroizing::new(format!("{}{}", cert.to_pem(), key.to_pem().as_str()));
    fsio::replace_file(&pem, body.as_bytes(), kubepki_pki::KEY_MODE)?;
    let updated = dir.join("kubelet-client-updated.pem");
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| kubepki_pki::Error::Write { path, source }
    };
    if std::fs::symlink_metadata(&updated).is_ok() {
        std::fs::remove_file(&updated).map_err(write_err(&updated))?;
    }
    std::os::unix::fs::symlink(node_dir.join(&name), &updated).map_err(write_err(&updated))?;
    fsio::failpoint("recover:kubelet-link");
    std::fs::rename(&updated, &client.link).map_err(write_err(&client.link))?;
    fsio::sync_dir(&dir)?;
    Ok((pem, cert))
}

/// The nodes named, and those etcd lists; sorted, each once.
fn worker_names(request: &RecoverRequest, workers: &Workers) -> Result<Vec<String>> {
    let mut names: BTreeSet<String> = workers.nodes.iter().cloned().collect();
    if !workers.from_etcd.is_empty() {
        names.extend(nodes_from_etcd(&workers.from_etcd, &request.rotate.cert_dir)?);
    }
    Ok(names.into_iter().collect())
}

/// The node names etcd holds: the keys under `/registry/minions/` (keys only, no values read).
pub fn nodes_from_etcd(endpoints: &[String], cert_dir: &Path) -> Result<Vec<String>> {
    let pki = PkiDir::new(cert_dir);
    let (ca, cert, key) =
        (pki.cert_path("etcd/ca"), pki.cert_path("apiserver-etcd-client"), pki.key_path("apiserver-etcd-client"));
    let read = |p: &Path| std::fs::read(p).map_err(|source| kubepki_pki::Error::Read { path: p.to_owned(), source });
    let (ca_pem, cert_pem, key_pem) = (read(&ca)?, read(&cert)?, Zeroizing::new(read(&key)?));
    let failed = |what: &str, cause: String| Error::EtcdLock {
        endpoints: endpoints.join(","),
        reason: format!(
            "cannot {what} to list the nodes: {cause}; check that etcd serves there and trusts {} (signed by {})",
            cert.display(),
            ca.display()
        ),
    };
    let runtime = crate::runtime::shared()?;
    runtime.block_on(async {
        use etcd_client::{Client, ConnectOptions, GetOptions, Identity, TlsOptions};
        let tls = TlsOptions::new()
            .ca_certificate(etcd_client::Certificate::from_pem(ca_pem))
            .identity(Identity::from_pem(cert_pem, key_pem.as_slice()));
        let options = ConnectOptions::new()
            .with_tls(tls)
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(10));
        let mut client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|e| failed("connect", crate::verify::etcd::describe(&e)))?;
        let prefix = "/registry/minions/";
        let resp = client
            .get(prefix, Some(GetOptions::new().with_prefix().with_keys_only()))
            .await
            .map_err(|e| failed("read /registry/minions/", crate::verify::etcd::describe(&e)))?;
        Ok(resp
            .kvs()
            .iter()
            .filter_map(|kv| kv.key_str().ok()?.strip_prefix(prefix).map(str::to_owned))
            .filter(|n| !n.is_empty())
            .collect())
    })
}

/// `<out>/<node>/kubelet.conf` (a new `system:node:<node>` client certificate and key, the
/// cluster CA) and `<out>/<node>/ca.crt` for every worker, as `kubepki issue kubelet-client`
/// writes one; the cluster name and server from this node's `kubelet.conf`.
fn write_workers(
    request: &RecoverRequest,
    workers: &Workers,
    kubelet_conf: &Path,
    now: OffsetDateTime,
) -> Result<Vec<(String, PathBuf)>> {
    let names = worker_names(request, workers)?;
    let pki = PkiDir::new(&request.rotate.cert_dir);
    let ca = pki.load_ca(CaKind::Ca)?.ok_or_else(|| Error::Missing { path: pki.cert_path("ca") })?;
    let (cluster, server) = Kubeconfig::read(kubelet_conf)?
        .and_then(|kc| {
            let cur = kc.current().ok()?;
            let server = kc.server(&cur.cluster)?.to_owned();
            Some((cur.cluster, server))
        })
        .ok_or_else(|| {
            invalid(
                "workers",
                format!(
                    "{} names no cluster server: the workers' kubelet.conf needs the API server's URL",
                    kubelet_conf.display()
                ),
            )
        })?;
    let algorithm = ca.cert.public_key.key_algorithm().unwrap_or_default();
    fsio::create_dir_all(&workers.out, 0o700)?;
    let mut tx = fsio::Transaction::new(&workers.out);
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let kc = kubepki_pki::node::kubelet_kubeconfig(
            &ca,
            &cluster,
            &server,
            &name,
            algorithm,
            Validity::backdated(now, Lifetime::DEFAULT_CERT, request.backdate),
        )?;
        let dir = workers.out.join(&name);
        let files = [
            (dir.join("kubelet.conf"), kc.to_yaml().as_bytes().to_vec(), kubepki_pki::KEY_MODE),
            (dir.join("ca.crt"), ca.bundle_pem().into_bytes(), CERT_MODE),
        ];
        let exists = dir.is_dir();
        for (path, body, mode) in files {
            if exists { tx.add(path, body, mode) } else { tx.add_in_new_dir(path, body, mode) }
        }
        out.push((name, dir));
    }
    tx.commit()?;
    Ok(out)
}

/// The newest NotBefore in the tree, when this node's clock is behind it: a warning.
fn clock_behind(
    cas: &Cas,
    discovery: &targets::Discovery,
    kubelet: Option<&KubeletClient>,
    now: OffsetDateTime,
) -> Option<String> {
    let newest = CaKind::ALL
        .into_iter()
        .filter_map(|k| cas.get(k).map(|ca| (ca.name.clone(), ca.cert.not_before)))
        .chain(discovery.targets.iter().map(|t| (t.name.clone(), t.cert.not_before)))
        .chain(kubelet.map(|k| (KUBELET_CLIENT_CURRENT.to_owned(), k.old.not_before)))
        .max_by_key(|(_, nb)| *nb)?;
    (newest.1 > now).then(|| {
        format!(
            "this node's clock ({}) is behind the newest NotBefore in the tree ({}, {}): a certificate issued now \
             may not yet be valid on the nodes that made it; fix the clock (chrony, timedatectl), or raise --backdate \
             past the difference",
            crate::text::rfc3339(now),
            newest.0,
            crate::text::rfc3339(newest.1)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pem_time_stamp_is_the_nodes_local_time() {
        let now = time::macros::datetime!(2026-12-04 23:30:05 UTC);
        assert_eq!(pem_time_stamp(now, &jiff::tz::TimeZone::UTC), "2026-12-04-23-30-05");
        let tokyo = jiff::tz::TimeZone::fixed(jiff::tz::offset(9));
        assert_eq!(pem_time_stamp(now, &tokyo), "2026-12-05-08-30-05");
    }
}
