//! Discovery of the local sources: the cert dir, kubeconfigs, the kubelet's PKI directory and
//! named files. Read-only: files are opened for reading and nothing else.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use kubepki_pki::fsio::{self, MAX_CONFIG_FILE, MAX_PEM_FILE};
use kubepki_pki::{CaKind, Certificate, Kubeconfig, KubeconfigKind, PemSource, PkiDir, PrivateKey, profiles::LEAVES};
use zeroize::Zeroizing;

use crate::inventory::resolve_under;
use crate::inventory::{
    CaState, Finding, Found, InputError, InventoryBuilder, Item, ItemState, Location, SourcePath, Sources, Stored,
};
use crate::text::error_chain;

/// The kubelet's rotating client certificate and key, one file.
pub(crate) const KUBELET_CLIENT_CURRENT: &str = "kubelet-client-current.pem";

/// The kubeconfigs kubeadm writes on every control-plane node (init and join
/// --control-plane), so missing there: not `super-admin.conf` (init only; kept off the node
/// by many) nor `kubelet.conf` (the kubelet's own, which kubeadm does not check either).
const CONTROL_PLANE_KUBECONFIGS: [KubeconfigKind; 3] =
    [KubeconfigKind::Admin, KubeconfigKind::ControllerManager, KubeconfigKind::Scheduler];

pub(crate) fn local(sources: &Sources, builder: &mut InventoryBuilder) {
    let dirs = [&sources.cert_dir, &sources.kubeconfig_dir].into_iter().flatten();
    let searched = dirs.chain(&sources.kubeconfigs).chain(&sources.kubelet_pki_dir).map(|s| s.path.clone());
    builder.inventory_mut().searched = searched.chain(sources.files.iter().cloned()).collect();
    let control_plane = sources.cert_dir.as_ref().is_some_and(|dir| cert_dir(dir, builder));
    let kubelet_dir = sources.kubelet_pki_dir.as_ref().map(|s| s.path.as_path());
    let root = sources.root.as_deref();
    let mut found = Found::default();
    let mut seen = BTreeSet::new();
    if let Some(dir) = &sources.kubeconfig_dir
        && let Some(files) = conf_files(dir, &mut found.errors)
    {
        builder.inventory_mut().kubeconfig_dir = Some(dir.path.clone());
        // The files there and the expected ones that are not, in name order.
        let mut expected: Vec<(PathBuf, Option<KubeconfigKind>)> = CONTROL_PLANE_KUBECONFIGS
            .into_iter()
            .filter(|_| control_plane)
            .map(|kind| (dir.path.join(kind.file_name()), Some(kind)))
            .filter(|(path, _)| !files.contains(path))
            .collect();
        expected.extend(files.into_iter().map(|path| (path, None)));
        expected.sort();
        for (path, absent) in expected {
            match absent {
                Some(kind) => found.items.push(missing_kubeconfig(kind, path)),
                None => {
                    seen.insert(canonical(&path));
                    kubeconfig(&path, true, kubelet_dir, root, &mut found);
                }
            }
        }
    }
    for source in &sources.kubeconfigs {
        if !seen.insert(canonical(&source.path)) {
            continue;
        }
        match fs::metadata(&source.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && !source.explicit => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                found.errors.push(InputError::new(source.path.display().to_string(), "does not exist"));
                continue;
            }
            _ => kubeconfig(&source.path, false, kubelet_dir, root, &mut found),
        }
    }
    if let Some(dir) = &sources.kubelet_pki_dir {
        kubelet(dir, root, &mut found);
    }
    found.extend(crate::inventory::scan::files(&sources.files));
    builder.add(found);
}

/// Where to read `path` on a node whose filesystem is at `root` (`check --root`): every
/// symbolic link on the way followed inside the root ([`resolve_under`]), so the kubelet's
/// absolute `kubelet-client-current.pem` link reads the copy's file. A path outside the root
/// is a path on the node. Without a root, `path` itself.
fn on_node(root: Option<&Path>, path: &Path) -> PathBuf {
    let Some(root) = root else { return path.to_owned() };
    let node_path = Path::new("/").join(path.strip_prefix(root).unwrap_or(path));
    resolve_under(root, &node_path)
}

fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// Reads a file: `Ok(None)` if it does not exist, the reason (naming the file) if it cannot
/// be read.
pub(crate) fn read_file(path: &Path, limit: u64, what: &'static str) -> Result<Option<Vec<u8>>, String> {
    fsio::read_optional(path, limit, what).map_err(|e| error_chain(&e))
}

/// The name of the `index`-th certificate of a source called `name`.
pub(crate) fn indexed_name(name: &str, index: usize) -> String {
    if index == 0 { name.to_owned() } else { format!("{name}[{index}]") }
}

/// Every certificate in `bytes`: PEM (a bundle yields several) or a single DER certificate.
/// `source` names the origin in the reason for a failure.
pub(crate) fn parse_certificates(bytes: &[u8], source: &str) -> Result<Vec<Certificate>, String> {
    if bytes.is_empty() {
        return Err(format!("{source}: the file is empty"));
    }
    if kubepki_pki::pem::looks_like_pem(bytes) {
        return Certificate::from_pem_bundle(bytes, source).map_err(|e| e.to_string());
    }
    Certificate::from_der(bytes.to_vec(), source)
        .map(|c| vec![c])
        .map_err(|_| format!("{source}: neither a PEM nor a DER certificate"))
}

/// Items for the certificates of one source; a failure is one invalid item.
pub(crate) fn items_from(
    name: &str,
    certs: Result<Vec<Certificate>, String>,
    location: impl Fn(usize) -> Location,
    expected_ca: Option<CaKind>,
) -> Vec<Item> {
    match certs {
        Ok(certs) => certs
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let mut item = Item::new(indexed_name(name, i), location(i), Ok(c));
                item.expected_ca = expected_ca;
                item
            })
            .collect(),
        Err(e) => {
            let mut item = Item::new(name, location(0), Err(e));
            item.expected_ca = expected_ca;
            vec![item]
        }
    }
}

/// Checks a PEM private key against `cert`: a finding if it does not match, an error if it
/// cannot be read. Keys of types kubepki does not load (Ed25519, unusual RSA sizes) are not
/// judged.
pub(crate) fn key_finding(cert: &Certificate, key_pem: &[u8], key_ref: &str) -> Result<Option<Finding>, InputError> {
    let text = std::str::from_utf8(key_pem).map_err(|_| InputError::new(key_ref, "not PEM: the key is not text"))?;
    match PrivateKey::from_pem(text, key_ref) {
        Ok(key) => Ok((!key.matches_spki(&cert.spki)).then(|| Finding::KeyMismatch { key: key_ref.to_owned() })),
        Err(kubepki_pki::Error::InvalidKey { reason, .. }) if reason.starts_with("unsupported key type") => Ok(None),
        Err(kubepki_pki::Error::InvalidKey { reason, .. }) => Err(InputError::new(key_ref, reason)),
        Err(e) => Err(InputError::new(key_ref, error_chain(&e))),
    }
}

/// A private key file as read: `Ok(None)` if it does not exist.
type KeyRead = Result<Option<Zeroizing<Vec<u8>>>, KeyError>;

/// Why a private key file could not be read.
enum KeyError {
    /// This user may not read it (a monitoring user on a root-owned tree): the pairing is
    /// not checked, which is no error of the certificate.
    Denied,
    /// Anything else, naming the file.
    Other(String),
}

/// Reads a private key file, telling a permission denied from other failures.
fn read_key(path: &Path) -> KeyRead {
    fsio::read_optional(path, MAX_PEM_FILE, "private key").map(|k| k.map(Zeroizing::new)).map_err(|e| match &e {
        kubepki_pki::Error::Read { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => KeyError::Denied,
        _ => KeyError::Other(error_chain(&e)),
    })
}

/// Judges the key read from `key_path` against the first item's certificate: a missing key
/// is a finding when `required`; a key this user may not read goes to `found.keys_not_read`.
/// Returns whether a key exists.
fn judge_key(items: &mut [Item], key: KeyRead, key_path: &Path, required: bool, found: &mut Found) -> bool {
    let key_ref = key_path.display().to_string();
    let exists = !matches!(key, Ok(None));
    let Some(cert) = items.first().and_then(Item::cert) else { return exists };
    match key {
        Ok(None) if required => items[0].findings.push(Finding::KeyMissing { key: key_ref }),
        Ok(None) => {}
        Ok(Some(bytes)) => match key_finding(cert, &bytes, &key_ref) {
            Ok(finding) => items[0].findings.extend(finding),
            Err(e) => found.errors.push(e),
        },
        Err(KeyError::Denied) => found.keys_not_read.push(key_path.to_owned()),
        Err(KeyError::Other(e)) => found.errors.push(InputError::new(key_ref, e)),
    }
    exists
}

/// Reads the key file at `key_path` and judges it against the first item's certificate.
fn check_key_file(items: &mut [Item], key_path: &Path, required: bool, found: &mut Found) -> bool {
    judge_key(items, read_key(key_path), key_path, required, found)
}

/// A cert dir certificate file and its key, read as one consistent pair ([`fsio::read_pair`],
/// with the cert dir's state dir `journal_dir`), so a rotation committing meanwhile cannot pair
/// a new certificate with an old key. On an error, each is read on its own to say which one
/// failed.
type Pair = (Result<Option<Vec<u8>>, String>, KeyRead);

fn read_cert_and_key(cert: &Path, key: &Path, journal_dir: &Path) -> Pair {
    match fsio::read_pair(cert, key, MAX_PEM_FILE, Some(journal_dir)) {
        Ok(pair) => (Ok(pair.cert), Ok(pair.key)),
        Err(_) => (read_file(cert, MAX_PEM_FILE, "certificate"), read_key(key)),
    }
}

/// Whether a source directory is there to read; a missing explicit one is an error.
fn dir_present(source: &SourcePath, what: &str, errors: &mut Vec<InputError>) -> bool {
    let input = source.path.display().to_string();
    match fs::metadata(&source.path) {
        Ok(m) if m.is_dir() => true,
        Ok(_) => {
            errors.push(InputError::new(input, format!("the {what} is not a directory")));
            false
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if source.explicit {
                errors.push(InputError::new(input, format!("the {what} does not exist")));
            }
            false
        }
        Err(e) => {
            errors.push(InputError::new(input, format!("cannot read the {what}: {e}")));
            false
        }
    }
}

/// Whether a cert dir is a control-plane node's: it holds a file kubeadm writes only there (a
/// CA key, `sa.key`/`sa.pub`, the front-proxy or etcd CA, any leaf or its key). A worker's
/// holds only `ca.crt`, and expects nothing else.
fn is_control_plane(pki: &PkiDir) -> bool {
    let cas = CaKind::ALL.into_iter().flat_map(|k| {
        let base = k.base_name();
        let cert = (k != CaKind::Ca).then(|| pki.cert_path(base));
        cert.into_iter().chain([pki.key_path(base)])
    });
    let leaves = LEAVES.iter().flat_map(|s| [pki.cert_path(s.base_name), pki.key_path(s.base_name)]);
    cas.chain(leaves).chain([pki.sa_key_path(), pki.sa_pub_path()]).any(|p| fs::symlink_metadata(p).is_ok())
}

/// The item for a certificate file that is absent while its key is there: a broken pair.
fn key_only(name: &str, location: Location, cert_path: &Path, key_path: &Path) -> Item {
    let (cert, key) = (cert_path.display().to_string(), key_path.display().to_string());
    let mut item = Item::new(name, location, Err(format!("{cert} does not exist but its key {key} does")));
    item.state = ItemState::KeyOnly;
    item.findings.push(Finding::CertificateMissing { cert, key });
    item
}

/// Whether a key read found a file (an unreadable one included).
fn key_exists(key: &KeyRead) -> bool {
    !matches!(key, Ok(None))
}

/// Reads the cert dir; returns whether it is a control-plane node's (see [`is_control_plane`]).
fn cert_dir(source: &SourcePath, builder: &mut InventoryBuilder) -> bool {
    let mut found = Found::default();
    if !dir_present(source, "cert dir", &mut found.errors) {
        builder.add(found);
        return false;
    }
    let pki = PkiDir::new(&source.path);
    let journal_dir = kubepki_pki::lock::state_dir(&source.path);
    builder.inventory_mut().cert_dir = Some(source.path.clone());
    let control_plane = is_control_plane(&pki);
    for kind in CaKind::ALL {
        let base = kind.base_name();
        let (cert_path, key_path) = (pki.cert_path(base), pki.key_path(base));
        let (cert, key) = read_cert_and_key(&cert_path, &key_path, &journal_dir);
        let location = |index| Location::CertDir {
            base: base.to_owned(),
            cert_path: cert_path.clone(),
            key_path: key_path.clone(),
            index,
        };
        let certs = match cert {
            Ok(None) if key_exists(&key) => {
                found.items.push(key_only(kind.name(), location(0), &cert_path, &key_path));
                continue;
            }
            Ok(None) => continue,
            Ok(Some(bytes)) => parse_certificates(&bytes, &cert_path.display().to_string()),
            Err(e) => Err(e),
        };
        let mut items = items_from(kind.name(), certs, location, None);
        let has_key = judge_key(&mut items, key, &key_path, false, &mut found);
        match &items[0].certificate {
            Ok(_) => {
                let certs = items.iter().filter_map(Item::cert).cloned().collect();
                let state = CaState {
                    kind,
                    cert_path: cert_path.clone(),
                    key_path: key_path.clone(),
                    certs,
                    external: !has_key,
                };
                builder.inventory_mut().cas.push(state);
            }
            Err(_) => builder.mark_unreadable_ca(kind),
        }
        found.items.extend(items);
    }
    for spec in &LEAVES {
        let (cert_path, key_path) = (pki.cert_path(spec.base_name), pki.key_path(spec.base_name));
        let (cert, key) = read_cert_and_key(&cert_path, &key_path, &journal_dir);
        let location = |index| Location::CertDir {
            base: spec.base_name.to_owned(),
            cert_path: cert_path.clone(),
            key_path: key_path.clone(),
            index,
        };
        let certs = match cert {
            Ok(None) if key_exists(&key) => {
                let mut item = key_only(spec.name, location(0), &cert_path, &key_path);
                item.expected_ca = Some(spec.ca);
                found.items.push(item);
                continue;
            }
            // As kubeadm's certlist: a control plane has every leaf of each CA it has (no
            // etcd CA: external etcd, no etcd leaves).
            Ok(None) if control_plane && fs::metadata(pki.cert_path(spec.ca.base_name())).is_ok() => {
                let reason = format!(
                    "neither {} nor its key {} exists; `kubepki issue {}` writes it again",
                    cert_path.display(),
                    key_path.display(),
                    spec.name
                );
                let mut item = Item::missing(spec.name, location(0), reason);
                item.expected_ca = Some(spec.ca);
                found.items.push(item);
                continue;
            }
            Ok(None) => continue,
            Ok(Some(bytes)) => parse_certificates(&bytes, &cert_path.display().to_string()),
            Err(e) => Err(e),
        };
        let mut items = items_from(spec.name, certs, location, Some(spec.ca));
        judge_key(&mut items, key, &key_path, true, &mut found);
        found.items.extend(items);
    }
    let service_account = crate::inventory::sa_keys::SaKeys::read(&source.path);
    // sa.key this user may not read is one more key not checked (sa.pub, 0600 too, is no key).
    let sa_key_not_read =
        service_account.as_ref().filter(|sa| sa.signing == crate::inventory::sa_keys::SigningKey::NotReadable);
    found.keys_not_read.extend(sa_key_not_read.map(|sa| sa.key_path.clone()));
    builder.inventory_mut().service_account = service_account;
    // A journal under a held lock is a write in progress, which its writer completes. (An
    // earlier kubepki kept its journal in the cert dir itself.)
    let journals =
        [kubepki_pki::lock::state_dir(&source.path), source.path.clone()].map(|d| d.join(fsio::JOURNAL_NAME));
    for journal in journals {
        if fs::symlink_metadata(&journal).is_ok() && !kubepki_pki::lock::is_held(&source.path) {
            builder.inventory_mut().warnings.push(format!(
                "{}: an interrupted kubepki write is pending; the next kubepki command that writes (init, rotate) \
                 completes it",
                journal.display()
            ));
        }
    }
    builder.add(found);
    control_plane
}

/// The item for one of kubeadm's kubeconfigs, absent from a control-plane node's kubeconfig dir.
fn missing_kubeconfig(kind: KubeconfigKind, path: PathBuf) -> Item {
    let reason = format!(
        "{} does not exist (kubeadm writes it on every control-plane node); `kubepki init` with this \
         cluster's flags or --config writes it again",
        path.display()
    );
    let location = Location::Kubeconfig {
        path,
        // The fixed CNs of these three: no node name is needed.
        user: kind.spec().common_name.resolve(""),
        cert: Stored::Embedded,
        key: Some(Stored::Embedded),
        index: 0,
    };
    let mut item = Item::missing(kind.file_name(), location, reason);
    item.expected_ca = Some(CaKind::Ca);
    item
}

/// The `*.conf` files of the kubeconfig dir, sorted; `None` if the directory is not there.
fn conf_files(source: &SourcePath, errors: &mut Vec<InputError>) -> Option<Vec<PathBuf>> {
    if !dir_present(source, "kubeconfig dir", errors) {
        return None;
    }
    let entries = match fs::read_dir(&source.path) {
        Ok(e) => e,
        Err(e) => {
            errors.push(InputError::new(source.path.display().to_string(), format!("cannot list: {e}")));
            return None;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf") && p.is_file())
        .collect();
    files.sort();
    Some(files)
}

/// The file a kubeconfig names, relative to the kubeconfig, on the node at `root` if any.
fn resolve(kubeconfig: &Path, file: &Path, root: Option<&Path>) -> PathBuf {
    let path =
        if file.is_relative() { kubeconfig.parent().unwrap_or(Path::new(".")).join(file) } else { file.to_owned() };
    on_node(root, &path)
}

/// The certificates a kubeconfig field refers to, or why not.
enum FieldCerts {
    /// Read (or why they could not be parsed).
    Read(Result<Vec<Certificate>, String>),
    /// The file the field names does not exist: this says so.
    Absent(String),
}

/// Reads the certificates a kubeconfig field refers to.
fn pem_source_certs(kubeconfig: &Path, source: &PemSource, what: &str, root: Option<&Path>) -> (Stored, FieldCerts) {
    match source {
        PemSource::Embedded(bytes) => (
            Stored::Embedded,
            FieldCerts::Read(parse_certificates(bytes, &format!("{}: {what}", kubeconfig.display()))),
        ),
        PemSource::File(file) => {
            let path = resolve(kubeconfig, file, root);
            let certs = match read_file(&path, MAX_PEM_FILE, "certificate") {
                Ok(None) => {
                    FieldCerts::Absent(format!("{} (named by {}) does not exist", path.display(), kubeconfig.display()))
                }
                Ok(Some(bytes)) => FieldCerts::Read(parse_certificates(&bytes, &path.display().to_string())),
                Err(e) => FieldCerts::Read(Err(e)),
            };
            (Stored::File(path), certs)
        }
    }
}

fn kubeconfig(
    path: &Path,
    in_kubeconfig_dir: bool,
    kubelet_dir: Option<&Path>,
    root: Option<&Path>,
    found: &mut Found,
) {
    let input = path.display().to_string();
    let text = match read_file(path, MAX_CONFIG_FILE, "kubeconfig") {
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(t) => Zeroizing::new(t),
            Err(_) => return found.errors.push(InputError::new(input, "not a kubeconfig: the file is not text")),
        },
        Ok(None) => return found.errors.push(InputError::new(input, "does not exist")),
        Err(e) => return found.errors.push(InputError::new(input, e)),
    };
    let kc = match Kubeconfig::from_yaml(&text, &input) {
        Ok(kc) => kc,
        Err(kubepki_pki::Error::Kubeconfig { reason, .. }) => return found.errors.push(InputError::new(input, reason)),
        Err(e) => return found.errors.push(InputError::new(input, error_chain(&e))),
    };
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| input.clone());
    let current = kc.current().ok();
    for user in kc.user_names() {
        let cert_source = match kc.client_certificate(user) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                found.errors.push(InputError::new(format!("{input}: user {user}"), error_chain(&e)));
                continue;
            }
        };
        let is_current = current.as_ref().is_some_and(|c| c.user == user);
        let name = if is_current { file_name.clone() } else { format!("{file_name}:{user}") };
        let (cert_stored, certs) =
            pem_source_certs(path, &cert_source, &format!("user {user} client-certificate-data"), root);
        let key_source = kc.client_key(user);
        let key_stored = match &key_source {
            Ok(Some(PemSource::Embedded(_))) => Some(Stored::Embedded),
            Ok(Some(PemSource::File(f))) => Some(Stored::File(resolve(path, f, root))),
            _ => None,
        };
        let location = |index| Location::Kubeconfig {
            path: path.to_owned(),
            user: user.to_owned(),
            cert: cert_stored.clone(),
            key: key_stored.clone(),
            index,
        };
        let expected_ca = in_kubeconfig_dir.then_some(CaKind::Ca);
        let mut items = match certs {
            FieldCerts::Read(certs) => items_from(&name, certs, location, expected_ca),
            FieldCerts::Absent(reason) => {
                let mut item = Item::missing(&name, location(0), reason);
                item.expected_ca = expected_ca;
                vec![item]
            }
        };
        if let Some(cert) = items[0].cert().cloned() {
            match key_source {
                Ok(Some(PemSource::Embedded(bytes))) => {
                    let bytes = Zeroizing::new(bytes);
                    match key_finding(&cert, &bytes, &format!("{input}: user {user} client-key-data")) {
                        Ok(f) => items[0].findings.extend(f),
                        Err(e) => found.errors.push(e),
                    }
                }
                Ok(Some(PemSource::File(f))) => {
                    check_key_file(&mut items, &resolve(path, &f, root), true, found);
                }
                Ok(None) => {
                    items[0].findings.push(Finding::KeyMissing { key: format!("{input}: user {user} client-key") })
                }
                Err(e) => found.errors.push(InputError::new(format!("{input}: user {user}"), error_chain(&e))),
            }
            // As kubeadm's kubelet-finalize phase: once the kubelet rotates its client
            // certificate into kubelet-client-current.pem, kubelet.conf must point at it.
            if let Some(current) = kubelet_dir.map(|d| d.join(KUBELET_CLIENT_CURRENT))
                && in_kubeconfig_dir
                && file_name == "kubelet.conf"
                && cert_stored == Stored::Embedded
                && on_node(root, &current).exists()
            {
                items[0].findings.push(Finding::KubeletConfEmbedded { current });
            }
        }
        found.items.extend(items);
    }
    for cluster in kc.cluster_names() {
        let ca_source = match kc.cluster_ca(cluster) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                found.errors.push(InputError::new(format!("{input}: cluster {cluster}"), error_chain(&e)));
                continue;
            }
        };
        let is_current = current.as_ref().is_some_and(|c| c.cluster == cluster);
        let name = if is_current { format!("{file_name}:ca") } else { format!("{file_name}:ca:{cluster}") };
        let (stored, certs) =
            match pem_source_certs(path, &ca_source, &format!("cluster {cluster} certificate-authority-data"), root) {
                (stored, FieldCerts::Read(certs)) => (stored, certs),
                (stored, FieldCerts::Absent(reason)) => (stored, Err(reason)),
            };
        let location = |index| Location::KubeconfigCa {
            path: path.to_owned(),
            cluster: cluster.to_owned(),
            ca: stored.clone(),
            index,
        };
        found.items.extend(items_from(&name, certs, location, None));
    }
}

/// The kubelet's PKI files: (file, key file, the CA that must have signed it).
const KUBELET_FILES: [(&str, &str, Option<CaKind>); 3] = [
    (KUBELET_CLIENT_CURRENT, KUBELET_CLIENT_CURRENT, Some(CaKind::Ca)),
    ("kubelet-server-current.pem", "kubelet-server-current.pem", Some(CaKind::Ca)),
    ("kubelet.crt", "kubelet.key", None),
];

fn kubelet(source: &SourcePath, root: Option<&Path>, found: &mut Found) {
    if !dir_present(source, "kubelet PKI dir", &mut found.errors) {
        return;
    }
    for (file, key_file, expected_ca) in KUBELET_FILES {
        let path = source.path.join(file);
        let key_path = source.path.join(key_file);
        let certs = match read_file(&on_node(root, &path), MAX_PEM_FILE, "certificate") {
            Ok(None) => continue,
            Ok(Some(bytes)) => {
                let bytes = Zeroizing::new(bytes);
                parse_certificates(&bytes, &path.display().to_string())
            }
            Err(e) => Err(e),
        };
        let location = |index| Location::KubeletPem { path: path.clone(), key_path: key_path.clone(), index };
        let mut items = items_from(file, certs, location, expected_ca);
        let key = read_key(&on_node(root, &key_path));
        judge_key(&mut items, key, &key_path, true, found);
        found.items.extend(items);
    }
}
