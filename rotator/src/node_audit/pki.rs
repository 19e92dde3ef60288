//! The PKI on the node: private key file modes, CA keys off the control plane, `system:masters`
//! credentials, certificate lifetimes and weak keys.

use std::path::PathBuf;

use kubepki_pki::profiles::SYSTEM_MASTERS_GROUP;
use kubepki_pki::sa::{PublicKey, PublicKeySet, SaKeyAlgorithm};
use kubepki_pki::{Certificate, original_lifetime};
use time::{Duration, OffsetDateTime};

use super::{Advice, AuditComponent, AuditStatus, CheckResult, LifetimePolicy};
use crate::inventory::sa_keys::{AgeSource, SaFile};
use crate::text::rfc3339;

/// A file holding a private key.
#[derive(Clone, Debug, Eq, PartialEq)]
pub(super) struct KeyFile {
    /// The file (as read, under the audit root).
    pub path: PathBuf,
    /// Its permission bits (of the file a symbolic link points at).
    pub mode: u32,
    /// Whether it is a CA's key (`ca.key`, `front-proxy-ca.key`, `etcd/ca.key`, or the key of
    /// another CA certificate of the cert dir).
    pub ca: bool,
}

/// A certificate found on the node.
#[derive(Clone, Debug)]
pub(super) struct CertFile {
    /// A name for people: kubeadm's file stem or kubeconfig name (`apiserver`, `etcd/ca`,
    /// `admin.conf`, `kubelet-client-current.pem`).
    pub name: String,
    /// The file it is in (as read).
    pub path: PathBuf,
    /// The certificate.
    pub cert: Certificate,
    /// Whether the cluster CA (`ca.crt`) issued it: then the API server accepts it as a client.
    pub from_cluster_ca: bool,
    /// Whether it is `super-admin.conf`'s, the one break-glass `system:masters` credential.
    pub super_admin: bool,
}

/// What the PKI checks judge.
#[derive(Clone, Debug, Default)]
pub(super) struct PkiFacts {
    /// Whether the node runs a control plane (it has a kube-apiserver manifest).
    pub control_plane: bool,
    /// Directories that hold keys, with their permission bits.
    pub dirs: Vec<(PathBuf, u32)>,
    /// Every private key file found.
    pub keys: Vec<KeyFile>,
    /// Every certificate found.
    pub certs: Vec<CertFile>,
}

/// The service-account keys kube-apiserver uses: the files its manifest names, or kubeadm's
/// `sa.key` and `sa.pub` of the cert dir.
#[derive(Clone, Debug)]
pub(super) struct SaFacts {
    /// The manifest that names the files (`None`: kubeadm's defaults in the cert dir).
    pub manifest: Option<PathBuf>,
    /// The signing key file (`--service-account-signing-key-file`).
    pub signing_key_file: PathBuf,
    /// Its public half (a file that could not be read is an input error of the audit).
    pub signing_key: SaFile<PublicKey>,
    /// Every `--service-account-key-file` (the flag may repeat), with its keys.
    pub key_files: Vec<(PathBuf, SaFile<PublicKeySet>)>,
    /// When the signing key was made ([`crate::inventory::sa_keys::sa_key_created_at`]).
    pub created_at: Option<(OffsetDateTime, AgeSource)>,
}

/// How far past the policy a lifetime may go unreported: kubeadm's 5-minute backdate, and
/// NotBefore taken from a CA made moments earlier (kubeconfig client certificates).
const LIFETIME_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

fn mode_string(mode: u32) -> String {
    format!("{mode:04o}")
}

/// Judges the PKI.
pub(super) fn check(f: &PkiFacts, policy: &LifetimePolicy) -> Vec<CheckResult> {
    let at = |id, status, advice| CheckResult::new(id, AuditComponent::Pki, status, advice);
    let mut out = Vec::new();

    // Key file modes: owner only, as kubeadm writes them.
    let mut bad = Vec::new();
    for k in &f.keys {
        let others = k.mode & 0o007 != 0;
        let group = k.mode & 0o070 != 0;
        if !others && !group {
            continue;
        }
        let status = if k.ca || others { AuditStatus::Critical } else { AuditStatus::Warning };
        let who = if others { "every user on the node" } else { "its group" };
        bad.push(
            at("pki-key-permissions", status, Advice::KeyProtection)
                .file(&k.path)
                .message(format!(
                    "{} has mode {}: {who} can read it",
                    if k.ca { "a CA key" } else { "a private key" },
                    mode_string(k.mode)
                ))
                .fix(format!("chmod 600 {}", k.path.display())),
        );
    }
    if bad.is_empty() {
        out.push(if f.keys.is_empty() {
            at("pki-key-permissions", AuditStatus::Skipped, Advice::KeyProtection).message("no private key files found")
        } else {
            at("pki-key-permissions", AuditStatus::Pass, Advice::KeyProtection)
                .message(format!("{} private key files are readable by their owner only", f.keys.len()))
        });
    }
    out.extend(bad);

    let mut bad = Vec::new();
    for (dir, mode) in &f.dirs {
        if mode & 0o022 != 0 {
            bad.push(
                at("pki-dir-permissions", AuditStatus::Critical, Advice::KeyProtection)
                    .file(dir)
                    .message(format!(
                        "a directory of keys has mode {}: others can replace the keys and certificates in it",
                        mode_string(*mode)
                    ))
                    .fix(format!("chmod go-w {}", dir.display())),
            );
        }
    }
    if bad.is_empty() && !f.dirs.is_empty() {
        out.push(
            at("pki-dir-permissions", AuditStatus::Pass, Advice::KeyProtection)
                .message("the directories holding keys are writable by their owner only"),
        );
    }
    out.extend(bad);

    // CA keys belong on control-plane nodes.
    let ca_keys: Vec<&KeyFile> = f.keys.iter().filter(|k| k.ca).collect();
    if f.control_plane {
        out.push(at("pki-ca-key-placement", AuditStatus::Pass, Advice::KeyProtection).message(format!(
            "a control-plane node (it has a kube-apiserver manifest) with {} CA keys",
            ca_keys.len()
        )));
    } else if ca_keys.is_empty() {
        out.push(
            at("pki-ca-key-placement", AuditStatus::Pass, Advice::KeyProtection)
                .message("no CA key on this node, which runs no control plane"),
        );
    } else {
        for k in ca_keys {
            out.push(
                at("pki-ca-key-placement", AuditStatus::Critical, Advice::KeyProtection)
                    .file(&k.path)
                    .message(
                        "a CA key on a node that runs no control plane (no kube-apiserver manifest): whoever \
                         owns this node can sign any identity",
                    )
                    .fix(format!(
                        "move {} to the control-plane nodes or offline storage and remove it here",
                        k.path.display()
                    )),
            );
        }
    }

    if f.certs.is_empty() {
        for id in ["pki-system-masters", "pki-lifetime", "pki-weak-key"] {
            out.push(at(id, AuditStatus::Skipped, Advice::Rotation).message("no certificates found"));
        }
        return out;
    }

    // system:masters bypasses RBAC: only super-admin.conf should carry it.
    let mut bad = Vec::new();
    for c in &f.certs {
        let masters = c.cert.subject.organizations.iter().any(|o| o == SYSTEM_MASTERS_GROUP);
        if !masters || c.cert.is_ca || c.super_admin || !c.from_cluster_ca {
            continue;
        }
        bad.push(
            at("pki-system-masters", AuditStatus::Warning, Advice::Rbac)
                .file(&c.path)
                .message(format!(
                    "{} ({}) is in group system:masters, which bypasses RBAC and cannot be revoked short of \
                     rotating the CA",
                    c.name, c.cert.subject
                ))
                .fix(
                    "reissue it in a group bound by RBAC (kubeadm's admin.conf uses kubeadm:cluster-admins: \
                     `kubepki kubeconfig user --client-name NAME --org kubeadm:cluster-admins`) and keep \
                     system:masters only in super-admin.conf, offline",
                ),
        );
    }
    if bad.is_empty() {
        out.push(
            at("pki-system-masters", AuditStatus::Pass, Advice::Rbac)
                .message("no system:masters client certificate besides super-admin.conf's"),
        );
    }
    out.extend(bad);

    // Lifetimes beyond the policy (kubeadm's 5-minute backdate is not counted).
    let mut bad = Vec::new();
    for c in &f.certs {
        let max = if c.cert.is_ca { policy.max_ca } else { policy.max_leaf };
        let Some(lifetime) = original_lifetime(c.cert.not_before, c.cert.not_after) else { continue };
        if lifetime.duration() <= max.duration() + LIFETIME_GRACE {
            continue;
        }
        bad.push(
            at("pki-lifetime", AuditStatus::Warning, Advice::Rotation)
                .file(&c.path)
                .message(format!(
                    "{} lives {} days (until {}), more than the {} days allowed for a {}",
                    c.name,
                    lifetime.duration().as_secs() / 86400,
                    rfc3339(c.cert.not_after),
                    max.duration().as_secs() / 86400,
                    if c.cert.is_ca { "CA" } else { "leaf" }
                ))
                .fix(if c.cert.is_ca {
                    format!(
                        "rotate the CA to a shorter lifetime: `kubepki rotate-ca prepare --ca {} --ca-validity \
                         87600h`, then trust, reissue and retire",
                        c.name
                    )
                } else {
                    format!("reissue it with a shorter lifetime (`kubepki rotate --force {} --validity 8760h`)", c.name)
                }),
        );
    }
    if bad.is_empty() {
        out.push(at("pki-lifetime", AuditStatus::Pass, Advice::Rotation).message(format!(
            "every certificate lives at most {} days (CAs {} days)",
            policy.max_leaf.duration().as_secs() / 86400,
            policy.max_ca.duration().as_secs() / 86400
        )));
    }
    out.extend(bad);

    let mut bad = Vec::new();
    let weak_keys = f
        .certs
        .iter()
        .map(|c| (&c.path, Some(c.name.as_str()), format!("{} ({})", c.name, c.cert.subject), &c.cert.public_key));
    let cas: Vec<&str> = f.certs.iter().filter(|c| c.cert.is_ca).map(|c| c.name.as_str()).collect();
    for (path, name, what, key) in weak_keys {
        if !key.is_weak() {
            continue;
        }
        let fix = match name {
            Some(ca) if cas.contains(&ca) => format!(
                "rotate the CA to a stronger key: `kubepki rotate-ca prepare --ca {ca} --encryption-algorithm \
                 ECDSA-P256`, then trust, reissue and retire"
            ),
            Some(name) => format!("reissue it: `kubepki rotate --force {name} --encryption-algorithm ECDSA-P256`"),
            None => "replace it with an RSA-2048 or ECDSA-P256 key".to_owned(),
        };
        bad.push(
            at("pki-weak-key", AuditStatus::Critical, Advice::Authentication)
                .file(path)
                .message(format!("{what} has a {key} key: RSA keys need at least 2048 bits"))
                .fix(fix),
        );
    }
    if bad.is_empty() {
        out.push(at("pki-weak-key", AuditStatus::Pass, Advice::Authentication).message("no RSA key below 2048 bits"));
    }
    out.extend(bad);
    out
}

/// How to replace the service-account key without breaking a token: with an overlap.
const SA_ROTATE_FIX: &str = "rotate the service-account key with an overlap: `kubepki rotate-sa prepare`, then trust, \
                             reissue and retire (tokens keep verifying throughout)";

/// Judges the service-account keys at `at`: `sa-key-trusted` (the signing key's public half is
/// in a `--service-account-key-file`, and every file is usable), `sa-key-strength` (no RSA key
/// below 2048 bits) and `sa-key-age` (the signing key is no older than `max_age`). `None`
/// (no manifest and no `sa.key`/`sa.pub`) skips them.
pub(super) fn check_sa(f: Option<&SaFacts>, max_age: Duration, at: OffsetDateTime) -> Vec<CheckResult> {
    let ids = ["sa-key-trusted", "sa-key-strength", "sa-key-age"];
    let advice = [Advice::Authentication, Advice::Authentication, Advice::Rotation];
    let at_ = |i: usize, status| CheckResult::new(ids[i], AuditComponent::Pki, status, advice[i]);
    let Some(f) = f else {
        return (0..3).map(|i| at_(i, AuditStatus::Skipped).message("no service-account keys on this node")).collect();
    };
    let mut out = Vec::new();
    let files = f.key_files.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>().join(", ");
    let named = match &f.manifest {
        Some(m) => format!(" (named in {})", m.display()),
        None => String::new(),
    };

    // Trusted: every key file usable, the signing key among their keys. A file that could not
    // be read (an input error) leaves the answer open.
    let mut sets = Vec::new();
    let mut unread = false;
    for (path, read) in &f.key_files {
        match read {
            SaFile::Read(set) => sets.push(set),
            SaFile::NotReadable => unread = true,
            SaFile::Missing => out.push(
                at_(0, AuditStatus::Critical)
                    .file(path)
                    .message(format!(
                        "the --service-account-key-file{named} does not exist: kube-apiserver cannot start"
                    ))
                    .fix("restore it from a backup (kubeadm writes the public key of sa.key to sa.pub)"),
            ),
            SaFile::Invalid(why) => out.push(
                at_(0, AuditStatus::Critical)
                    .file(path)
                    .message(format!("the --service-account-key-file{named} is unusable: {why}"))
                    .fix("restore it from a backup: kube-apiserver cannot start with it"),
            ),
        }
    }
    let trusted_count: usize = sets.iter().map(|s| s.keys.len()).sum();
    match &f.signing_key {
        SaFile::Read(key) if sets.iter().any(|s| s.contains(key)) => {
            out.push(at_(0, AuditStatus::Pass).file(&f.signing_key_file).message(format!(
                "the signing key (kid {}) is one of the {trusted_count} public keys of {files}",
                key.key_id()
            )));
        }
        SaFile::Read(key) if !sets.is_empty() && !unread => out.push(
            at_(0, AuditStatus::Critical)
                .file(&f.signing_key_file)
                .message(format!(
                    "the signing key (kid {}) is not one of the {trusted_count} public keys of {files}: every token \
                     kube-apiserver signs with it fails to verify",
                    key.key_id()
                ))
                .fix(format!(
                    "add its public key to {files} and restart kube-apiserver, or restore the signing key that \
                     matches; `kubepki rotate-sa` changes the key with an overlap"
                )),
        ),
        SaFile::Read(_) | SaFile::NotReadable => {}
        SaFile::Missing => out.push(
            at_(0, AuditStatus::Critical)
                .file(&f.signing_key_file)
                .message(format!(
                    "the --service-account-signing-key-file{named} does not exist: no token can be signed"
                ))
                .fix("restore it from a backup, with the public key that matches it in sa.pub"),
        ),
        SaFile::Invalid(why) => out.push(
            at_(0, AuditStatus::Critical)
                .file(&f.signing_key_file)
                .message(format!("the --service-account-signing-key-file{named} is unusable: {why}"))
                .fix("restore it from a backup: kube-apiserver cannot start with it"),
        ),
    }

    if !out.iter().any(|r| r.id == ids[0]) {
        out.push(
            at_(0, AuditStatus::Skipped).message("the service-account key files could not be read (see the errors)"),
        );
    }

    // Strength: the signing key and every trusted key (a weak old key can still forge tokens).
    let signing = match &f.signing_key {
        SaFile::Read(key) => Some((&f.signing_key_file, key)),
        _ => None,
    };
    let trusted = f.key_files.iter().filter_map(|(p, r)| match r {
        SaFile::Read(set) => Some((p, set)),
        _ => None,
    });
    let all = signing.into_iter().chain(trusted.flat_map(|(p, s)| s.keys.iter().map(move |k| (p, k))));
    let mut bad = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (path, key) in all {
        // A key is judged once, where it is first found (the signing key is in sa.pub too).
        if seen.contains(&key.key_id()) {
            continue;
        }
        seen.push(key.key_id());
        if let SaKeyAlgorithm::Rsa { bits } = key.algorithm()
            && bits < 2048
        {
            bad.push(
                at_(1, AuditStatus::Critical)
                    .file(path)
                    .message(format!(
                        "service-account key kid {} is {}: RSA keys need at least 2048 bits, or tokens can be forged",
                        key.key_id(),
                        key.algorithm()
                    ))
                    .fix(format!("{SA_ROTATE_FIX}; prepare with --encryption-algorithm RSA-2048 or ECDSA-P256")),
            );
        }
    }
    if bad.is_empty() && !seen.is_empty() {
        let n = seen.len();
        out.push(at_(1, AuditStatus::Pass).message(format!("no service-account key below RSA-2048 ({n} keys)")));
    }
    out.extend(bad);

    // Age.
    let days = |d: Duration| d.whole_days();
    let max_days = days(max_age);
    out.push(match f.created_at.filter(|_| matches!(f.signing_key, SaFile::Read(_))) {
        Some((made, source)) if at - made > max_age => at_(2, AuditStatus::Warning)
            .file(&f.signing_key_file)
            .message(format!(
                "the signing key is {} days old (since {}, from its {}), more than the {max_days} days allowed",
                days(at - made),
                rfc3339(made),
                age_source(source)
            ))
            .fix(SA_ROTATE_FIX),
        Some((made, source)) => at_(2, AuditStatus::Pass).file(&f.signing_key_file).message(format!(
            "the signing key is {} days old (from its {}), within {max_days} days",
            days(at - made),
            age_source(source)
        )),
        None => at_(2, AuditStatus::Skipped).file(&f.signing_key_file).message("the signing key's age is unknown"),
    });
    out
}

fn age_source(source: AgeSource) -> &'static str {
    match source {
        AgeSource::RotationState => "reissue recorded by kubepki rotate-sa",
        AgeSource::FileModified => "file's modification time",
    }
}

#[cfg(test)]
mod tests {
    use kubepki_pki::{ClusterConfig, InitOptions, PkiDir};

    use super::*;

    fn key(path: &str, mode: u32, ca: bool) -> KeyFile {
        KeyFile { path: path.into(), mode, ca }
    }

    fn results<'a>(all: &'a [CheckResult], id: &str) -> Vec<&'a CheckResult> {
        all.iter().filter(|r| r.id == id).collect()
    }

    #[test]
    fn key_modes_are_graded_by_who_can_read() {
        let facts = PkiFacts {
            control_plane: true,
            keys: vec![
                key("/pki/ok.key", 0o600, false),
                key("/pki/group.key", 0o640, false),
                key("/pki/world.key", 0o604, false),
                key("/pki/ca.key", 0o640, true),
            ],
            ..PkiFacts::default()
        };
        let all = check(&facts, &LifetimePolicy::default());
        let found: Vec<(String, AuditStatus)> = results(&all, "pki-key-permissions")
            .iter()
            .map(|r| (r.file.as_ref().unwrap().display().to_string(), r.status))
            .collect();
        assert_eq!(
            found,
            [
                ("/pki/group.key".to_owned(), AuditStatus::Warning),
                ("/pki/world.key".to_owned(), AuditStatus::Critical),
                ("/pki/ca.key".to_owned(), AuditStatus::Critical),
            ]
        );
        assert_eq!(results(&all, "pki-ca-key-placement")[0].status, AuditStatus::Pass);
    }

    #[test]
    fn ca_keys_off_the_control_plane_are_critical_each() {
        let facts = PkiFacts {
            control_plane: false,
            keys: vec![
                key("/pki/ca.key", 0o600, true),
                key("/pki/etcd/ca.key", 0o600, true),
                key("/pki/x.key", 0o600, false),
            ],
            ..PkiFacts::default()
        };
        let all = check(&facts, &LifetimePolicy::default());
        let placement = results(&all, "pki-ca-key-placement");
        assert_eq!(placement.len(), 2);
        assert!(placement.iter().all(|r| r.status == AuditStatus::Critical));
        // Without certificates the certificate checks are skipped, not passed.
        assert_eq!(results(&all, "pki-lifetime")[0].status, AuditStatus::Skipped);
    }

    #[test]
    fn kubeadm_lifetimes_fit_kubeadm_policy_and_not_a_stricter_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ClusterConfig::new("cp1", "127.0.0.1".parse().unwrap());
        cfg.cert_dir = dir.path().join("pki");
        cfg.kubeconfig_dir = dir.path().to_path_buf();
        kubepki_pki::init(&cfg, &InitOptions::now()).unwrap();
        let pki = PkiDir::new(&cfg.cert_dir);
        let certs: Vec<CertFile> = ["ca", "apiserver", "etcd/ca", "etcd/server"]
            .into_iter()
            .map(|base| CertFile {
                name: base.to_owned(),
                path: pki.cert_path(base),
                cert: pki.read_certs(base).unwrap().unwrap().remove(0),
                from_cluster_ca: false,
                super_admin: false,
            })
            .collect();
        let facts = PkiFacts { control_plane: true, certs, ..PkiFacts::default() };
        let all = check(&facts, &LifetimePolicy::default());
        assert_eq!(results(&all, "pki-lifetime")[0].status, AuditStatus::Pass, "{all:#?}");
        let strict = LifetimePolicy { max_leaf: "90d".parse().unwrap(), max_ca: "3650d".parse().unwrap() };
        let all = check(&facts, &strict);
        let names: Vec<&str> =
            results(&all, "pki-lifetime").iter().map(|r| r.message.split(' ').next().unwrap()).collect();
        assert_eq!(names, ["apiserver", "etcd/server"]);
    }
}
