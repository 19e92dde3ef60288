//! Reading a node's files under an audit root. Symbolic links are resolved inside the root, as
//! if chrooted there; nothing is written.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kubepki_pki::fsio::{self, MAX_CONFIG_FILE, MAX_PEM_FILE};
use kubepki_pki::{CaKind, Certificate, Kubeconfig, PemSource};
use serde_json::Value;

use super::kubelet::{self, KubeletFacts, ServingCert};
use super::manifests::{self, EtcdCaFacts};
use super::pki::{self, CertFile, KeyFile, PkiFacts, SaFacts};
use super::{AuditOptions, AuditReport, display_path};
use crate::inventory::InputError;
use crate::inventory::flags::{Flags, env_file, split_words};
use crate::inventory::manifests::{Manifest, flags_of};
use crate::inventory::resolve_under;
use crate::inventory::sa_keys::SaFile;
use crate::text::error_chain;

use kubepki_pki::paths::{CERT_DIR, KUBECONFIG_DIR, KUBELET_CONFIG, KUBELET_PKI_DIR, MANIFESTS_DIR};

/// Where the kubelet's flags come from, in the order its systemd unit reads them (later wins).
const KUBELET_FLAG_FILES: [&str; 3] =
    ["/var/lib/kubelet/kubeadm-flags.env", "/etc/default/kubelet", "/etc/sysconfig/kubelet"];

/// A node's filesystem under a root.
struct NodeFs<'a> {
    root: &'a Path,
    errors: Vec<InputError>,
}

impl NodeFs<'_> {
    /// The path to show for a node path.
    fn shown(&self, node_path: &Path) -> PathBuf {
        display_path(self.root, node_path)
    }

    fn real(&self, node_path: &Path) -> PathBuf {
        resolve_under(self.root, node_path)
    }

    fn error(&mut self, node_path: &Path, message: impl Into<String>) {
        self.errors.push(InputError::new(self.shown(node_path).display().to_string(), message));
    }

    /// Reads a file: `None` if it does not exist; an error (recorded) if it cannot be read.
    fn read(&mut self, node_path: &Path, limit: u64, what: &'static str) -> Option<Vec<u8>> {
        match fsio::read_optional(&self.real(node_path), limit, what) {
            Ok(v) => v,
            Err(e) => {
                let why = error_chain(&e);
                self.error(node_path, strip_path(&why));
                None
            }
        }
    }

    fn read_text(&mut self, node_path: &Path, limit: u64, what: &'static str) -> Option<String> {
        let bytes = self.read(node_path, limit, what)?;
        match String::from_utf8(bytes) {
            Ok(s) => Some(s),
            Err(_) => {
                self.error(node_path, "not text (UTF-8)");
                None
            }
        }
    }

    /// Reads a YAML document into a JSON value.
    fn read_yaml(&mut self, node_path: &Path, what: &'static str) -> Option<Value> {
        let text = self.read_text(node_path, MAX_CONFIG_FILE, what)?;
        match serde_saphyr::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => Some(Value::Object(m)),
            Ok(Value::Null) => {
                self.error(node_path, "the file is empty");
                None
            }
            Ok(_) => {
                self.error(node_path, "the document is not a mapping");
                None
            }
            Err(e) => {
                let e = e.to_string();
                self.error(node_path, format!("not valid YAML: {}", e.lines().next().unwrap_or_default()));
                None
            }
        }
    }

    fn exists(&self, node_path: &Path) -> bool {
        self.real(node_path).exists()
    }

    fn mode(&self, node_path: &Path) -> Option<u32> {
        fs::metadata(self.real(node_path)).ok().map(|m| m.permissions().mode() & 0o7777)
    }

    /// The visible entries of a directory, sorted (dot-named ones — kubepki's snapshots and
    /// journal — are skipped).
    fn list(&self, node_dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.real(node_dir))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Every certificate of a PEM file; `None` if it does not exist or is not certificates
    /// (recorded as an error).
    fn certs(&mut self, node_path: &Path) -> Option<Vec<Certificate>> {
        let bytes = self.read(node_path, MAX_PEM_FILE, "certificate file")?;
        let shown = self.shown(node_path).display().to_string();
        match Certificate::from_pem_bundle(&bytes, &shown) {
            Ok(c) => Some(c),
            Err(e) => {
                self.errors.push(InputError::new(shown, strip_path(&e.to_string())));
                None
            }
        }
    }
}

/// An error message without a leading path (the input error names it already).
fn strip_path(message: &str) -> String {
    message.split_once(": ").map_or(message, |(_, rest)| rest).to_owned()
}

pub(super) fn audit(options: &AuditOptions) -> AuditReport {
    let mut node = NodeFs { root: &options.root, errors: Vec::new() };
    let mut results = Vec::new();

    // Static pod manifests.
    let manifests_dir = Path::new(MANIFESTS_DIR);
    let manifest = |node: &mut NodeFs<'_>, file: &str, container: &str| -> Option<Manifest> {
        let path = manifests_dir.join(file);
        let doc = node.read_yaml(&path, "manifest")?;
        match flags_of(&doc, container) {
            Ok(flags) => Some(Manifest { path: node.shown(&path), flags }),
            Err(why) => {
                node.error(&path, why);
                None
            }
        }
    };
    let apiserver = manifest(&mut node, "kube-apiserver.yaml", "kube-apiserver");
    let etcd = manifest(&mut node, "etcd.yaml", "etcd");
    let controller_manager = manifest(&mut node, "kube-controller-manager.yaml", "kube-controller-manager");
    let scheduler = manifest(&mut node, "kube-scheduler.yaml", "kube-scheduler");
    let control_plane = node.exists(&manifests_dir.join("kube-apiserver.yaml"));

    // The kubelet: flags from its environment files, then its configuration file.
    let mut flags = Flags::default();
    let mut flag_files = Vec::new();
    for file in KUBELET_FLAG_FILES {
        let path = Path::new(file);
        let Some(text) = node.read_text(path, MAX_CONFIG_FILE, "environment file") else { continue };
        flag_files.push(node.shown(path).display().to_string());
        for (_, value) in env_file(&text) {
            let words = split_words(&value);
            flags.extend(Flags::parse(words.iter().map(String::as_str)));
        }
    }
    let config_path = PathBuf::from(flags.get("config").unwrap_or(KUBELET_CONFIG));
    let config = node.read_yaml(&config_path, "kubelet configuration");
    let config_shown = node.shown(&config_path);
    let kubelet_present = config.is_some() || !flag_files.is_empty();
    let kubelet_settings = kubelet_present.then(|| {
        let shown = config_shown.display().to_string();
        let (settings, problems) =
            kubelet::settings(config.as_ref().map(|c| (shown.as_str(), c)), &flags, &flag_files.join(", "));
        for p in problems {
            node.errors.push(InputError::new(shown.clone(), p));
        }
        settings
    });

    // The cert dir: given, else where the API server's or the kubelet's client CA is.
    let cert_dir = options
        .cert_dir
        .clone()
        .or_else(|| {
            let ca = apiserver
                .as_ref()
                .and_then(|m| m.flags.get("client-ca-file"))
                .map(str::to_owned)
                .or_else(|| kubelet_settings.as_ref().and_then(|s| s.client_ca_file.value.clone()))?;
            Path::new(&ca).parent().filter(|p| p.is_absolute()).map(Path::to_owned)
        })
        .unwrap_or_else(|| PathBuf::from(CERT_DIR));
    let cluster_ca_path = cert_dir.join("ca.crt");
    let cluster_ca = if node.exists(&cluster_ca_path) { node.certs(&cluster_ca_path) } else { None };

    if let Some(settings) = kubelet_settings {
        let file = if config.is_some() { config_shown } else { PathBuf::from(flag_files.join(", ")) };
        let client_ca = settings.client_ca_file.value.as_ref().map(|ca| {
            let p = node_path_of(ca, &config_path);
            match fsio::read_optional(&node.real(&p), MAX_PEM_FILE, "certificate file") {
                Ok(None) => Err("it does not exist".to_owned()),
                Ok(Some(bytes)) => {
                    Certificate::from_pem_bundle(&bytes, ca).map(|_| ()).map_err(|e| strip_path(&e.to_string()))
                }
                Err(e) => Err(strip_path(&error_chain(&e))),
            }
        });
        let serving = if settings.server_tls_bootstrap.value {
            ServingCert::Bootstrap
        } else {
            let p = match &settings.tls_cert_file.value {
                Some(f) => node_path_of(f, &config_path),
                None => Path::new(&settings.cert_dir).join("kubelet.crt"),
            };
            if node.exists(&p) {
                match node.certs(&p) {
                    Some(certs) => ServingCert::File { path: node.shown(&p), self_signed: certs[0].is_self_issued() },
                    None => ServingCert::Missing { path: node.shown(&p) },
                }
            } else {
                ServingCert::Missing { path: node.shown(&p) }
            }
        };
        results.extend(kubelet::check(&KubeletFacts { file, settings, client_ca, serving }));
    } else {
        results.push(
            super::CheckResult::new(
                "kubelet",
                super::AuditComponent::Kubelet,
                super::AuditStatus::Skipped,
                super::Advice::Kubelet,
            )
            .file(node.shown(Path::new(KUBELET_CONFIG)))
            .message("no kubelet configuration and no kubelet flags file on this node"),
        );
    }

    match &apiserver {
        Some(m) => results.extend(manifests::check_apiserver(m)),
        None => results.push(skipped(
            &node,
            super::AuditComponent::ApiServer,
            "kube-apiserver",
            &manifests_dir.join("kube-apiserver.yaml"),
        )),
    }
    match &etcd {
        Some(m) => {
            let mut is_cluster_ca = |flag: &str| -> bool {
                let Some(file) = m.flags.get(flag) else { return false };
                let p = PathBuf::from(file);
                if p == cluster_ca_path {
                    return true;
                }
                let Some(cluster) = &cluster_ca else { return false };
                if !node.exists(&p) {
                    return false;
                }
                node.certs(&p).is_some_and(|certs| certs.iter().any(|c| cluster.contains(c)))
            };
            let facts = EtcdCaFacts {
                client_ca_is_cluster_ca: is_cluster_ca("trusted-ca-file"),
                peer_ca_is_cluster_ca: is_cluster_ca("peer-trusted-ca-file"),
            };
            results.extend(manifests::check_etcd(m, facts));
        }
        None => results.push(skipped(&node, super::AuditComponent::Etcd, "etcd", &manifests_dir.join("etcd.yaml"))),
    }
    for (m, component) in [(&controller_manager, "kube-controller-manager"), (&scheduler, "kube-scheduler")] {
        if let Some(m) = m {
            results.push(manifests::check_insecure_port(m, component));
        }
    }

    // The PKI: the cert dir, the kubeconfigs, the kubelet's own directory.
    let kubelet_pki =
        PathBuf::from(flags.get("cert-dir").map(str::to_owned).unwrap_or_else(|| KUBELET_PKI_DIR.to_owned()));
    let facts = pki_facts(&mut node, &cert_dir, cluster_ca.as_deref(), &kubelet_pki, control_plane);
    let found_anything = apiserver.is_some()
        || etcd.is_some()
        || kubelet_present
        || !facts.keys.is_empty()
        || !facts.certs.is_empty()
        || node.exists(&cert_dir);
    results.extend(pki::check(&facts, &options.lifetimes));
    let sa = sa_facts(&mut node, apiserver.as_ref(), &cert_dir);
    let sa_max_age = time::Duration::try_from(options.sa_max_age.duration()).unwrap_or(time::Duration::MAX);
    results.extend(pki::check_sa(sa.as_ref(), sa_max_age, time::OffsetDateTime::now_utc()));

    let mut errors = node.errors;
    if !found_anything && errors.is_empty() {
        errors.push(InputError::new(
            options.root.display().to_string(),
            format!(
                "nothing to audit: none of {MANIFESTS_DIR}, {KUBELET_CONFIG}, {} exists under it",
                cert_dir.display()
            ),
        ));
    }
    AuditReport { root: options.root.clone(), cert_dir, control_plane, results, errors }
}

fn skipped(
    node: &NodeFs<'_>,
    component: super::AuditComponent,
    name: &'static str,
    node_path: &Path,
) -> super::CheckResult {
    let advice =
        if component == super::AuditComponent::Etcd { super::Advice::Etcd } else { super::Advice::Authentication };
    let path = node.shown(node_path);
    let message = if node.exists(node_path) {
        format!("{} could not be read (see the errors)", path.display())
    } else {
        format!("no {} on this node", path.display())
    };
    super::CheckResult::new(name, component, super::AuditStatus::Skipped, advice).file(&path).message(message)
}

/// A path named in a configuration file: absolute as is, relative to the file's directory.
fn node_path_of(value: &str, config: &Path) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() { p.to_owned() } else { config.parent().unwrap_or(Path::new("/")).join(p) }
}

/// The service-account keys kube-apiserver uses: the files its manifest names
/// (`--service-account-signing-key-file`, every `--service-account-key-file`), else kubeadm's
/// `sa.key` and `sa.pub` of the cert dir. `None` without a manifest and without those files.
fn sa_facts(node: &mut NodeFs<'_>, apiserver: Option<&Manifest>, cert_dir: &Path) -> Option<SaFacts> {
    use kubepki_pki::sa::{PublicKey, PublicKeySet};
    let flags = apiserver.map(|m| &m.flags);
    let signing_path = flags
        .and_then(|f| f.get("service-account-signing-key-file"))
        .map_or_else(|| cert_dir.join("sa.key"), PathBuf::from);
    let named: Vec<PathBuf> =
        flags.map(|f| f.all("service-account-key-file").into_iter().map(PathBuf::from).collect()).unwrap_or_default();
    let key_paths = if named.is_empty() { vec![cert_dir.join("sa.pub")] } else { named };
    if apiserver.is_none() && !node.exists(&signing_path) && !key_paths.iter().any(|p| node.exists(p)) {
        return None;
    }
    let signing_key = read_key_file(node, &signing_path, "private key", PublicKey::of_private_pem);
    let key_files = key_paths
        .iter()
        .map(|p| (node.shown(p), read_key_file(node, p, "public key file", PublicKeySet::parse)))
        .collect();
    let created_at =
        signing_path.parent().filter(|_| signing_path.file_name().is_some_and(|n| n == "sa.key")).and_then(|dir| {
            let kid = match &signing_key {
                SaFile::Read(key) => Some(key.key_id()),
                _ => None,
            };
            crate::inventory::sa_keys::sa_key_created_at(&node.real(dir), kid.as_deref())
        });
    Some(SaFacts {
        manifest: apiserver.map(|m| m.path.clone()),
        signing_key_file: node.shown(&signing_path),
        signing_key,
        key_files,
        created_at,
    })
}

/// Reads a service-account key file and parses it (`parse` gets the bytes and the path shown):
/// a file that exists but cannot be read is an input error (and [`SaFile::NotReadable`]).
fn read_key_file<T>(
    node: &mut NodeFs<'_>,
    path: &Path,
    what: &'static str,
    parse: impl FnOnce(&[u8], &str) -> kubepki_pki::Result<T>,
) -> SaFile<T> {
    if !node.exists(path) {
        return SaFile::Missing;
    }
    let Some(bytes) = node.read(path, MAX_PEM_FILE, what) else { return SaFile::NotReadable };
    let bytes = zeroize::Zeroizing::new(bytes);
    match parse(&bytes, &node.shown(path).display().to_string()) {
        Ok(value) => SaFile::Read(value),
        Err(e) => SaFile::Invalid(strip_path(&e.to_string())),
    }
}

/// Reads the keys, certificates and directories of the cert dir, the kubeconfig dir and the
/// kubelet's PKI directory.
fn pki_facts(
    node: &mut NodeFs<'_>,
    cert_dir: &Path,
    cluster_ca: Option<&[Certificate]>,
    kubelet_pki: &Path,
    control_plane: bool,
) -> PkiFacts {
    let mut facts = PkiFacts { control_plane, ..PkiFacts::default() };
    let mut seen_keys = BTreeSet::new();
    let from_cluster_ca =
        |c: &Certificate| cluster_ca.is_some_and(|cas| cas.iter().any(|ca| c.verify_issued_by(ca).is_ok()));

    let mut add_key = |node: &NodeFs<'_>, facts: &mut PkiFacts, path: &Path, ca: bool| {
        let Some(mode) = node.mode(path) else { return };
        if seen_keys.insert(node.real(path)) {
            facts.keys.push(KeyFile { path: node.shown(path), mode, ca });
        }
    };

    // The cert dir and its etcd/ directory.
    for sub in ["", "etcd"] {
        let dir = if sub.is_empty() { cert_dir.to_owned() } else { cert_dir.join(sub) };
        if !node.real(&dir).is_dir() {
            continue;
        }
        let names = node.list(&dir);
        if names.iter().any(|n| n.ends_with(".key"))
            && let Some(mode) = node.mode(&dir)
        {
            facts.dirs.push((node.shown(&dir), mode));
        }
        for name in &names {
            let path = dir.join(name);
            if let Some(stem) = name.strip_suffix(".crt") {
                let base = if sub.is_empty() { stem.to_owned() } else { format!("{sub}/{stem}") };
                let Some(certs) = node.certs(&path) else { continue };
                let display = CaKind::ALL
                    .into_iter()
                    .find(|k| k.base_name() == base)
                    .map(|k| k.name().to_owned())
                    .or_else(|| {
                        kubepki_pki::Profile::ALL
                            .into_iter()
                            .find(|p| p.spec().base_name == base)
                            .map(|p| p.name().to_owned())
                    })
                    .unwrap_or(base);
                for (i, cert) in certs.into_iter().enumerate() {
                    let name = if i == 0 { display.clone() } else { format!("{display}[{i}]") };
                    let issued = from_cluster_ca(&cert);
                    facts.certs.push(CertFile {
                        name,
                        path: node.shown(&path),
                        cert,
                        from_cluster_ca: issued,
                        super_admin: false,
                    });
                }
            } else if let Some(stem) = name.strip_suffix(".key") {
                let base = if sub.is_empty() { stem.to_owned() } else { format!("{sub}/{stem}") };
                let ca = CaKind::ALL.into_iter().any(|k| k.base_name() == base)
                    || facts
                        .certs
                        .iter()
                        .any(|c| c.cert.is_ca && c.path == node.shown(&dir.join(format!("{stem}.crt"))));
                add_key(node, &mut facts, &path, ca);
            }
        }
    }

    // Kubeconfigs: each one holds a key (or names one); its users' certificates.
    let kubeconfig_dir = Path::new(KUBECONFIG_DIR);
    for name in node.list(kubeconfig_dir).into_iter().filter(|n| n.ends_with(".conf")) {
        let path = kubeconfig_dir.join(&name);
        if !node.real(&path).is_file() {
            continue;
        }
        let Some(text) = node.read_text(&path, MAX_CONFIG_FILE, "kubeconfig") else { continue };
        let text = zeroize::Zeroizing::new(text);
        let shown = node.shown(&path).display().to_string();
        let kc = match Kubeconfig::from_yaml(&text, &shown) {
            Ok(kc) => kc,
            Err(e) => {
                node.errors.push(InputError::new(shown, strip_path(&e.to_string())));
                continue;
            }
        };
        for user in kc.user_names() {
            match kc.client_key(user) {
                Ok(Some(PemSource::Embedded(_))) => add_key(node, &mut facts, &path, false),
                Ok(Some(PemSource::File(f))) => {
                    add_key(node, &mut facts, &node_path_of(&f.to_string_lossy(), &path), false);
                }
                _ => {}
            }
            let certs = match kc.client_certificate(user) {
                Ok(Some(PemSource::Embedded(pem))) => {
                    Certificate::from_pem_bundle(&pem, &format!("{shown} user {user:?}")).map_err(|e| e.to_string())
                }
                Ok(Some(PemSource::File(f))) => {
                    let p = node_path_of(&f.to_string_lossy(), &path);
                    match node.certs(&p) {
                        Some(c) => Ok(c),
                        None => continue,
                    }
                }
                Ok(None) => continue,
                Err(e) => Err(e.to_string()),
            };
            match certs {
                Ok(certs) => {
                    let cert = certs.into_iter().next();
                    if let Some(cert) = cert {
                        let issued = from_cluster_ca(&cert);
                        let label = if kc.current().is_ok_and(|c| c.user == user) {
                            name.clone()
                        } else {
                            format!("{name}:{user}")
                        };
                        facts.certs.push(CertFile {
                            name: label,
                            path: node.shown(&path),
                            cert,
                            from_cluster_ca: issued,
                            super_admin: name == "super-admin.conf",
                        });
                    }
                }
                Err(why) => {
                    node.errors.push(InputError::new(shown.clone(), format!("user {user:?}: {}", strip_path(&why))))
                }
            }
        }
    }

    // The kubelet's directory: every key (rotated-out client certificates keep theirs), and
    // the certificates in use.
    if node.real(kubelet_pki).is_dir() {
        let names = node.list(kubelet_pki);
        let mut holds_keys = false;
        for name in &names {
            let path = kubelet_pki.join(name);
            if name.ends_with(".key") || name.ends_with(".pem") {
                holds_keys = true;
                add_key(node, &mut facts, &path, false);
            }
            let in_use = name == "kubelet.crt" || name.ends_with("-current.pem");
            if in_use && let Some(certs) = node.certs(&path) {
                let cert = certs.into_iter().next();
                if let Some(cert) = cert {
                    let issued = from_cluster_ca(&cert);
                    facts.certs.push(CertFile {
                        name: name.clone(),
                        path: node.shown(&path),
                        cert,
                        from_cluster_ca: issued,
                        super_admin: false,
                    });
                }
            }
        }
        if holds_keys && let Some(mode) = node.mode(kubelet_pki) {
            facts.dirs.push((node.shown(kubelet_pki), mode));
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_dot_dot_never_leave_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("etc/kubernetes")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/passwd", r.join("etc/kubernetes/escape")).unwrap();
        std::os::unix::fs::symlink("/etc", r.join("etc/kubernetes/abs")).unwrap();
        std::os::unix::fs::symlink("loop", r.join("etc/loop")).unwrap();
        assert_eq!(resolve_under(r, Path::new("/etc/kubernetes/escape")), r.join("etc/passwd"));
        assert_eq!(resolve_under(r, Path::new("/etc/kubernetes/abs/kubernetes")), r.join("etc/kubernetes"));
        assert_eq!(resolve_under(r, Path::new("/../../etc")), r.join("etc"));
        // A link to itself stops after a bounded number of hops.
        assert!(resolve_under(r, Path::new("/etc/loop")).starts_with(r));
    }
}
