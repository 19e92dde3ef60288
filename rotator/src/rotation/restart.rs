//! What to restart after files of the PKI changed: the components of this node that read them,
//! through which flag, whether each picks the change up by itself, and the command that restarts
//! it.
//!
//! The derivation is one function, [`restarts`], for every command that writes: given the
//! absolute paths of the files that changed (certificates, keys, kubeconfigs, CA bundles,
//! `sa.key`/`sa.pub`) and the node's [`NodePaths`], it reads the static pod manifests of
//! `<kubeconfig dir>/manifests` (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
//! parsed as `kubepki audit` parses them) and the kubelet's configuration, and names every
//! component one of whose flags names a changed file — directly, or through a kubeconfig the flag
//! names (`--kubeconfig` → `kubelet.conf` → `client-certificate`). When the node has none of the
//! four manifests (a hard-way node, or a tree copied for testing), kubeadm's own wiring of each
//! component is assumed, and each entry says so ([`Source::KubeadmDefault`]).
//!
//! The list is in restart order: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
//! the kubelet (the reasons are in `docs/rotation.md`, "What to restart").
//!
//! ```
//! use kubepki_rotator::rotation::restart::{self, NodePaths};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let (kubeconfig_dir, cert_dir) = (dir.path().to_owned(), dir.path().join("pki"));
//! // No manifests: kubeadm's wiring. The API server reads its etcd client certificate at start.
//! let node = NodePaths::new(&cert_dir, &kubeconfig_dir);
//! let list = restart::restarts(&[cert_dir.join("apiserver-etcd-client.crt")], &node);
//! assert_eq!(list.items.len(), 1);
//! assert_eq!(list.items[0].component.as_str(), "kube-apiserver");
//! assert!(list.items[0].command.as_deref().unwrap().contains("manifests/kube-apiserver.yaml"));
//! ```

use std::path::{Component as PathPart, Path, PathBuf};

use kubepki_pki::Kubeconfig;
use kubepki_pki::PemSource;
use kubepki_pki::fsio::{self, MAX_CONFIG_FILE};
use serde_json::{Value, json};

use crate::inventory::flags::Flags;
use crate::inventory::manifests::flags_of;

/// How long the kubelet takes to notice a static pod manifest came or went: its
/// `fileCheckFrequency`, 20 s by default.
pub const FILE_CHECK_FREQUENCY_SECS: u32 = 20;

/// A component that reads the PKI.
#[derive(Clone, Copy, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub enum Component {
    /// etcd, a static pod.
    Etcd,
    /// kube-apiserver, a static pod.
    ApiServer,
    /// kube-controller-manager, a static pod.
    ControllerManager,
    /// kube-scheduler, a static pod.
    Scheduler,
    /// The kubelet, a systemd service.
    Kubelet,
}

impl Component {
    /// Every component, in restart order.
    pub const ALL: [Self; 5] = [Self::Etcd, Self::ApiServer, Self::ControllerManager, Self::Scheduler, Self::Kubelet];

    /// `etcd`, `kube-apiserver`, `kube-controller-manager`, `kube-scheduler`, `kubelet`: the
    /// container's name in its manifest (and the manifest's file name), or the service's.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Etcd => "etcd",
            Self::ApiServer => "kube-apiserver",
            Self::ControllerManager => "kube-controller-manager",
            Self::Scheduler => "kube-scheduler",
            Self::Kubelet => "kubelet",
        }
    }

    fn is_static_pod(self) -> bool {
        self != Self::Kubelet
    }
}

/// Where a component's wiring was read.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Source {
    /// Its static pod manifest, or for the kubelet its configuration file.
    Manifest,
    /// Not on the node: kubeadm's default flags for it, with this cert dir and kubeconfig dir.
    KubeadmDefault,
}

impl Source {
    /// `manifest`, `kubeadm-default`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::KubeadmDefault => "kubeadm-default",
        }
    }
}

/// Where the files of the node whose components are looked at are: its cert dir, its kubeconfig
/// dir, its filesystem root.
#[derive(Clone, Debug)]
pub struct NodePaths {
    /// The cert dir (for kubeadm's default wiring).
    pub cert_dir: PathBuf,
    /// The kubeconfig dir; its `manifests/` holds the static pod manifests.
    pub kubeconfig_dir: PathBuf,
    /// The node's filesystem root, when the node's files are read from a copy or a mount: paths
    /// the manifests and the kubelet's configuration name are also looked for under it, and the
    /// kubelet's configuration is read at `<root>/var/lib/kubelet/config.yaml`. [default: the
    /// directory holding `etc/kubernetes` when the kubeconfig dir ends so (`/` for
    /// `/etc/kubernetes`); else none, and the kubelet gets kubeadm's wiring]
    pub root: Option<PathBuf>,
}

impl NodePaths {
    /// The node of this cert dir and kubeconfig dir (the root as described at [`NodePaths::root`]).
    pub fn new(cert_dir: &Path, kubeconfig_dir: &Path) -> Self {
        let root = kubeconfig_dir
            .strip_suffix_components(&["etc", "kubernetes"])
            .map(|r| if r.as_os_str().is_empty() { PathBuf::from("/") } else { r });
        Self { cert_dir: cert_dir.to_owned(), kubeconfig_dir: kubeconfig_dir.to_owned(), root }
    }

    /// `<kubeconfig dir>/manifests`.
    pub fn manifests_dir(&self) -> PathBuf {
        self.kubeconfig_dir.join("manifests")
    }

    /// Where a path the node's files name is found: as is, and under the root.
    fn candidates(&self, node_path: &Path) -> Vec<PathBuf> {
        let mut out = vec![node_path.to_owned()];
        if let Some(root) = self.root.as_ref().filter(|r| *r != Path::new("/"))
            && node_path.is_absolute()
        {
            out.push(crate::inventory::resolve_under(root, node_path));
        }
        out
    }

    /// The file a node path names, for reading: the first candidate that exists.
    fn readable(&self, node_path: &Path) -> Option<PathBuf> {
        self.candidates(node_path).into_iter().find(|p| p.exists())
    }
}

trait StripComponents {
    fn strip_suffix_components(&self, suffix: &[&str]) -> Option<PathBuf>;
}

impl StripComponents for Path {
    fn strip_suffix_components(&self, suffix: &[&str]) -> Option<PathBuf> {
        let parts: Vec<PathPart<'_>> = self.components().collect();
        let n = parts.len().checked_sub(suffix.len())?;
        let tail_matches = parts[n..].iter().zip(suffix).all(|(p, s)| p.as_os_str() == *s);
        tail_matches.then(|| parts[..n].iter().collect())
    }
}

/// One changed file a component reads.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Read {
    /// The changed file.
    pub file: PathBuf,
    /// How the component reaches it: `--etcd-certfile`, `--kubeconfig`, `--kubeconfig →
    /// client-certificate`, `clientCAFile`; several when more than one flag names it.
    pub flags: Vec<String>,
    /// Why the component picks this change up without a restart, if it does.
    pub reloads: Option<&'static str>,
}

/// One component to restart (or that reloads by itself).
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Restart {
    /// The component.
    pub component: Component,
    /// The changed files it reads.
    pub reads: Vec<Read>,
    /// Where its wiring was read.
    pub source: Source,
    /// Its static pod manifest (as the node names it; for kubeadm's wiring, where kubeadm
    /// would put it).
    pub manifest: Option<PathBuf>,
    /// The command that restarts it; `None` when it picks up every change by itself.
    pub command: Option<String>,
}

impl Restart {
    /// Whether every change it reads is picked up without a restart.
    pub fn reloads_itself(&self) -> bool {
        self.command.is_none()
    }

    /// Why it picks the changes up by itself, each reason once (empty when it does not).
    pub fn why(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for why in self.reads.iter().filter_map(|x| x.reloads) {
            if !out.contains(&why) {
                out.push(why);
            }
        }
        out
    }

    /// The changed files, each with the flags that name it: `/etc/kubernetes/pki/ca.crt
    /// (--client-ca-file, --root-ca-file)`.
    pub fn reads_text(&self) -> String {
        self.reads
            .iter()
            .map(|r| format!("{} ({})", r.file.display(), r.flags.join(", ")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every component that reads what changed, in restart order.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct RestartList {
    /// The components, in restart order.
    pub items: Vec<Restart>,
    /// Manifests or configuration files that exist but could not be read (kubeadm's wiring was
    /// assumed for their component), each a sentence naming the file.
    pub problems: Vec<String>,
    /// The manifests dir looked at.
    pub manifests_dir: PathBuf,
}

impl RestartList {
    /// Whether any entry comes from kubeadm's default wiring rather than the node's files.
    pub fn from_defaults(&self) -> bool {
        // The kubelet's wiring (its kubelet.conf and config.yaml) is not in the manifests: only
        // the static pods tell whether the manifests were read.
        self.items.iter().any(|r| r.component.is_static_pod() && r.source == Source::KubeadmDefault)
    }

    /// The components that must be restarted (those that do not reload by themselves).
    pub fn to_restart(&self) -> impl Iterator<Item = &Restart> {
        self.items.iter().filter(|r| !r.reloads_itself())
    }

    /// The `restart` array of the JSON documents (described in `docs/rotation.md`).
    pub fn to_json(&self) -> Value {
        Value::Array(
            self.items
                .iter()
                .map(|r| {
                    json!({
                        "component": r.component.as_str(),
                        "files": r.reads.iter().map(|x| json!({
                            "path": x.file,
                            "flags": x.flags,
                            "reloads": x.reloads.is_some(),
                        })).collect::<Vec<_>>(),
                        "reloadsItself": r.reloads_itself(),
                        "why": r.reloads_itself().then(|| r.why().join("; ")),
                        "command": r.command,
                        "manifest": r.manifest,
                        "source": r.source.as_str(),
                    })
                })
                .collect(),
        )
    }

    /// The human-readable list, one line per item (no prefix): a heading, then per component
    /// what it reads and the command or why none is needed. Empty when nothing reads what
    /// changed.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.problems {
            out.push(format!("warning: {p}"));
        }
        if self.items.is_empty() {
            return out;
        }
        let static_pods = self.items.iter().any(|r| r.component.is_static_pod());
        let defaults = self.items.iter().any(|r| r.source == Source::KubeadmDefault);
        let origin = match (static_pods, self.from_defaults(), defaults) {
            (true, true, _) => format!(
                "derived from kubeadm's default wiring: {} holds no static pod manifest",
                self.manifests_dir.display()
            ),
            (true, false, _) => format!("derived from the static pod manifests in {}", self.manifests_dir.display()),
            (false, _, true) => "derived from kubeadm's default wiring of the kubelet".to_owned(),
            (false, _, false) => "derived from the kubelet's configuration".to_owned(),
        };
        out.push(format!("what reads the changed files, in restart order ({origin}):"));
        for (i, r) in self.items.iter().enumerate() {
            out.push(format!("  {}. {}: reads {}", i + 1, r.component.as_str(), r.reads_text()));
            match &r.command {
                Some(c) => out.push(format!("     restart: {c}")),
                None => out.push(format!("     nothing to do, it reloads by itself: {}", r.why().join("; "))),
            }
        }
        out
    }
}

/// Why a (component, flag) change is picked up without a restart; the versions are cited in
/// `docs/rotation.md`. Everything else is read at start-up only, or not known to be reloaded
/// (then a restart is the safe answer).
fn reloads(component: Component, flag: &str) -> Option<&'static str> {
    const ETCD: &str = "etcd (3.2 and later) reads its certificate and key on every new connection";
    const APISERVER_SERVING: &str =
        "kube-apiserver (1.17 and later) reloads its serving certificate from disk when the file changes";
    const APISERVER_CA: &str = "kube-apiserver (1.19 and later, 1.17.x/1.18.x patch releases) reloads its client CA \
                                bundles from disk when the file changes";
    const KUBELET_SERVING: &str = "the kubelet (1.31 and later, feature gate ReloadKubeletServerCertificateFile, on by \
                                   default) reloads tlsCertFile and tlsPrivateKeyFile when they change";
    match (component, flag) {
        (Component::Etcd, "--cert-file" | "--key-file" | "--peer-cert-file" | "--peer-key-file") => Some(ETCD),
        (Component::ApiServer, "--tls-cert-file" | "--tls-private-key-file") => Some(APISERVER_SERVING),
        (Component::ApiServer, "--client-ca-file" | "--requestheader-client-ca-file") => Some(APISERVER_CA),
        (Component::Kubelet, "tlsCertFile" | "tlsPrivateKeyFile") => Some(KUBELET_SERVING),
        _ => None,
    }
}

/// The flags whose value is a kubeconfig: its certificate files are read through it.
const KUBECONFIG_FLAGS: [&str; 3] = ["kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig"];

/// kubeadm's flags naming PKI files, for a node without manifests (kubeadm's
/// `getEtcdCommand`, `getAPIServerCommand`, `getControllerManagerCommand`,
/// `getSchedulerCommand`).
fn kubeadm_flags(component: Component, cert_dir: &Path, kubeconfig_dir: &Path) -> Vec<(String, PathBuf)> {
    let pki = |flag: &str, file: &str| (flag.to_owned(), cert_dir.join(file));
    let conf = |file: &str| KUBECONFIG_FLAGS.iter().map(|f| ((*f).to_owned(), kubeconfig_dir.join(file))).collect();
    match component {
        Component::Etcd => vec![
            pki("cert-file", "etcd/server.crt"),
            pki("key-file", "etcd/server.key"),
            pki("trusted-ca-file", "etcd/ca.crt"),
            pki("peer-cert-file", "etcd/peer.crt"),
            pki("peer-key-file", "etcd/peer.key"),
            pki("peer-trusted-ca-file", "etcd/ca.crt"),
        ],
        Component::ApiServer => vec![
            pki("client-ca-file", "ca.crt"),
            pki("tls-cert-file", "apiserver.crt"),
            pki("tls-private-key-file", "apiserver.key"),
            pki("kubelet-client-certificate", "apiserver-kubelet-client.crt"),
            pki("kubelet-client-key", "apiserver-kubelet-client.key"),
            pki("etcd-cafile", "etcd/ca.crt"),
            pki("etcd-certfile", "apiserver-etcd-client.crt"),
            pki("etcd-keyfile", "apiserver-etcd-client.key"),
            pki("service-account-key-file", "sa.pub"),
            pki("service-account-signing-key-file", "sa.key"),
            pki("requestheader-client-ca-file", "front-proxy-ca.crt"),
            pki("proxy-client-cert-file", "front-proxy-client.crt"),
            pki("proxy-client-key-file", "front-proxy-client.key"),
        ],
        Component::ControllerManager => {
            let mut f: Vec<(String, PathBuf)> = conf("controller-manager.conf");
            f.extend([
                pki("client-ca-file", "ca.crt"),
                pki("root-ca-file", "ca.crt"),
                pki("cluster-signing-cert-file", "ca.crt"),
                pki("cluster-signing-key-file", "ca.key"),
                pki("requestheader-client-ca-file", "front-proxy-ca.crt"),
                pki("service-account-private-key-file", "sa.key"),
            ]);
            f
        }
        Component::Scheduler => conf("scheduler.conf"),
        Component::Kubelet => vec![
            ("kubeconfig".to_owned(), kubeconfig_dir.join("kubelet.conf")),
            ("clientCAFile".to_owned(), cert_dir.join("ca.crt")),
        ],
    }
}

/// A path without `.` and `..` parts (lexically), for comparing.
fn normal(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in p.components() {
        match part {
            PathPart::CurDir => {}
            PathPart::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The changed files, each with its canonical form when it exists.
struct Changed(Vec<(PathBuf, Option<PathBuf>)>);

impl Changed {
    fn new(files: &[PathBuf]) -> Self {
        Self(files.iter().map(|f| (normal(f), std::fs::canonicalize(f).ok())).collect())
    }

    /// The changed file one of `candidates` is, if any.
    fn find(&self, candidates: &[PathBuf]) -> Option<&Path> {
        for c in candidates {
            let (n, canon) = (normal(c), std::fs::canonicalize(c).ok());
            for (file, file_canon) in &self.0 {
                if *file == n || (canon.is_some() && canon == *file_canon) {
                    return Some(file);
                }
            }
        }
        None
    }
}

/// The files a kubeconfig names (`client-certificate`, `client-key`, `certificate-authority` of
/// its current context), with the field, as written (relative ones against its directory).
fn kubeconfig_files(path: &Path) -> Vec<(&'static str, PathBuf)> {
    let Ok(Some(kc)) = Kubeconfig::read(path) else { return Vec::new() };
    let Ok(current) = kc.current() else { return Vec::new() };
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut out = Vec::new();
    let mut add = |field: &'static str, source: kubepki_pki::Result<Option<PemSource>>| {
        if let Ok(Some(PemSource::File(f))) = source {
            out.push((field, if f.is_absolute() { f } else { dir.join(f) }));
        }
    };
    add("client-certificate", kc.client_certificate(&current.user));
    add("client-key", kc.client_key(&current.user));
    add("certificate-authority", kc.cluster_ca(&current.cluster));
    out
}

/// The flags of a static pod component, read from its manifest: `None` when there is no
/// manifest; a problem when it cannot be read.
fn manifest_flags(path: &Path, component: Component) -> Option<Result<Vec<(String, PathBuf)>, String>> {
    let text = match fsio::read_optional(path, MAX_CONFIG_FILE, "manifest") {
        Ok(None) => return None,
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return Some(Err(format!("{}: {e}", path.display()))),
    };
    let doc: Value = match serde_saphyr::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            let e = e.to_string();
            return Some(Err(format!("{}: not valid YAML: {}", path.display(), e.lines().next().unwrap_or_default())));
        }
    };
    Some(flags_of(&doc, component.as_str()).map(|f| path_flags(&f)).map_err(|e| format!("{}: {e}", path.display())))
}

/// Every flag whose value is an absolute path (the others cannot name a PKI file).
fn path_flags(flags: &Flags) -> Vec<(String, PathBuf)> {
    flags
        .effective()
        .into_iter()
        .filter(|(_, v)| v.starts_with('/'))
        .map(|(n, v)| (n.to_owned(), PathBuf::from(v)))
        .collect()
}

/// The kubelet's wiring: `kubelet.conf` (kubeadm's `--kubeconfig`, in the kubeconfig dir) and
/// from its configuration file `clientCAFile`, `tlsCertFile`, `tlsPrivateKeyFile`.
fn kubelet_flags(node: &NodePaths) -> Option<Result<Vec<(String, PathBuf)>, String>> {
    let root = node.root.as_ref()?;
    let config = crate::inventory::resolve_under(root, Path::new(kubepki_pki::paths::KUBELET_CONFIG));
    let text = match fsio::read_optional(&config, MAX_CONFIG_FILE, "kubelet configuration") {
        Ok(None) => return None,
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return Some(Err(format!("{}: {e}", config.display()))),
    };
    let doc: Value = match serde_saphyr::from_str(&text) {
        Ok(v) => v,
        Err(_) => return Some(Err(format!("{}: not valid YAML", config.display()))),
    };
    let mut flags = vec![("kubeconfig".to_owned(), node.kubeconfig_dir.join("kubelet.conf"))];
    for (name, pointer) in [
        ("clientCAFile", "/authentication/x509/clientCAFile"),
        ("tlsCertFile", "/tlsCertFile"),
        ("tlsPrivateKeyFile", "/tlsPrivateKeyFile"),
    ] {
        if let Some(v) = doc.pointer(pointer).and_then(Value::as_str).filter(|v| !v.is_empty()) {
            let p = Path::new(v);
            let p = if p.is_absolute() { p.to_owned() } else { Path::new("/var/lib/kubelet").join(p) };
            flags.push((name.to_owned(), p));
        }
    }
    Some(Ok(flags))
}

/// The command that restarts `component` on this node: for a static pod, the documented way
/// (move its manifest out of the manifests dir, wait for the kubelet's `fileCheckFrequency`,
/// move it back); for the kubelet, systemd.
pub fn command(component: Component, manifest: Option<&Path>) -> String {
    match (component.is_static_pod(), manifest) {
        (true, Some(m)) => {
            let parked = m
                .parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new("/"))
                .join(format!("{}.yaml.kubepki-restart", component.as_str()));
            format!(
                "mv {m} {parked} && sleep {s} && mv {parked} {m}",
                m = shell_word(m),
                parked = shell_word(&parked),
                s = FILE_CHECK_FREQUENCY_SECS
            )
        }
        _ => "systemctl restart kubelet".to_owned(),
    }
}

fn shell_word(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c)) {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Which components of `node` read any of `changed` (absolute paths), how, and how to restart
/// each: see the module documentation. Reads only; a manifest that cannot be read is reported in
/// [`RestartList::problems`] and kubeadm's wiring assumed for its component.
pub fn restarts(changed: &[PathBuf], node: &NodePaths) -> RestartList {
    let changed = Changed::new(changed);
    let manifests_dir = node.manifests_dir();
    let mut list = RestartList { manifests_dir: manifests_dir.clone(), ..RestartList::default() };
    let static_pods = &Component::ALL[..4];
    let any_manifest = static_pods.iter().any(|c| manifests_dir.join(format!("{}.yaml", c.as_str())).exists());

    for component in Component::ALL {
        let manifest = component.is_static_pod().then(|| manifests_dir.join(format!("{}.yaml", component.as_str())));
        let read = match &manifest {
            Some(m) => manifest_flags(m, component),
            None => kubelet_flags(node),
        };
        let (flags, source) = match read {
            Some(Ok(flags)) => (flags, Source::Manifest),
            Some(Err(problem)) => {
                list.problems.push(format!("{problem}; kubeadm's wiring of {} is assumed", component.as_str()));
                (kubeadm_flags(component, &node.cert_dir, &node.kubeconfig_dir), Source::KubeadmDefault)
            }
            // A control-plane node without this manifest does not run it (an external etcd);
            // a node without any is not known: kubeadm's wiring is assumed.
            None if component.is_static_pod() && any_manifest => continue,
            None => (kubeadm_flags(component, &node.cert_dir, &node.kubeconfig_dir), Source::KubeadmDefault),
        };

        let mut reads: Vec<Read> = Vec::new();
        let mut add = |file: &Path, flag: String| {
            let reload = reloads(component, &flag);
            match reads.iter_mut().find(|r| r.file == file) {
                Some(r) => {
                    if !r.flags.contains(&flag) {
                        r.flags.push(flag);
                    }
                    r.reloads = r.reloads.and(reload);
                }
                None => reads.push(Read { file: file.to_owned(), flags: vec![flag], reloads: reload }),
            }
        };
        for (name, value) in &flags {
            let flag = if component == Component::Kubelet && name != "kubeconfig" {
                name.clone()
            } else {
                format!("--{name}")
            };
            if let Some(file) = changed.find(&node.candidates(value)) {
                add(file, flag.clone());
            }
            if KUBECONFIG_FLAGS.contains(&name.as_str())
                && let Some(kubeconfig) = node.readable(value)
            {
                for (field, referenced) in kubeconfig_files(&kubeconfig) {
                    if let Some(file) = changed.find(&node.candidates(&referenced)) {
                        add(file, format!("{flag} → {field}"));
                    }
                }
            }
        }
        if reads.is_empty() {
            continue;
        }
        let reloads_all = reads.iter().all(|r| r.reloads.is_some());
        list.items.push(Restart {
            component,
            command: (!reloads_all).then(|| command(component, manifest.as_deref())),
            reads,
            source,
            manifest,
        });
    }
    list
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    struct Tree {
        _dir: tempfile::TempDir,
        kubeconfig_dir: PathBuf,
        cert_dir: PathBuf,
    }

    impl Tree {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let kubeconfig_dir = dir.path().join("conf");
            let cert_dir = kubeconfig_dir.join("pki");
            fs::create_dir_all(kubeconfig_dir.join("manifests")).unwrap();
            Self { _dir: dir, kubeconfig_dir, cert_dir }
        }

        fn node(&self) -> NodePaths {
            NodePaths::new(&self.cert_dir, &self.kubeconfig_dir)
        }

        fn manifest(&self, component: &str, flags: &[String]) {
            let command: Vec<&str> = [component].into_iter().chain(flags.iter().map(String::as_str)).collect();
            let pod = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [
                {"name": component, "command": command}
            ]}});
            fs::write(self.kubeconfig_dir.join(format!("manifests/{component}.yaml")), pod.to_string()).unwrap();
        }

        fn pki(&self, file: &str) -> PathBuf {
            self.cert_dir.join(file)
        }
    }

    fn names(list: &RestartList) -> Vec<&'static str> {
        list.items.iter().map(|r| r.component.as_str()).collect()
    }

    #[test]
    fn without_manifests_kubeadms_wiring_is_assumed_and_said() {
        let t = Tree::new();
        let list = restarts(&[t.pki("apiserver-etcd-client.crt"), t.pki("apiserver-etcd-client.key")], &t.node());
        assert_eq!(names(&list), ["kube-apiserver"]);
        let r = &list.items[0];
        assert_eq!(r.source, Source::KubeadmDefault);
        assert_eq!(r.reads[0].flags, ["--etcd-certfile"]);
        assert_eq!(r.reads[1].flags, ["--etcd-keyfile"]);
        assert!(list.lines()[0].contains("kubeadm's default wiring"), "{:?}", list.lines());
    }

    #[test]
    fn a_manifest_is_followed_where_it_departs_from_kubeadm() {
        let t = Tree::new();
        t.manifest("kube-apiserver", &["--etcd-certfile=/srv/pki/etcd-client.crt".into()]);
        t.manifest("etcd", &[format!("--cert-file={}", t.pki("etcd/server.crt").display())]);
        let node = t.node();
        assert!(restarts(&[t.pki("apiserver-etcd-client.crt")], &node).items.is_empty());
        let list = restarts(&[PathBuf::from("/srv/pki/etcd-client.crt")], &node);
        assert_eq!(names(&list), ["kube-apiserver"]);
        assert_eq!(list.items[0].source, Source::Manifest);
        let manifest = t.kubeconfig_dir.join("manifests/kube-apiserver.yaml");
        assert!(list.items[0].command.as_deref().unwrap().starts_with(&format!("mv {} ", manifest.display())));
    }

    #[test]
    fn reloading_components_need_nothing_and_the_order_is_etcd_first() {
        let t = Tree::new();
        t.manifest(
            "etcd",
            &[
                format!("--cert-file={}", t.pki("etcd/server.crt").display()),
                format!("--trusted-ca-file={}", t.pki("etcd/ca.crt").display()),
            ],
        );
        t.manifest(
            "kube-apiserver",
            &[
                format!("--tls-cert-file={}", t.pki("apiserver.crt").display()),
                format!("--etcd-cafile={}", t.pki("etcd/ca.crt").display()),
            ],
        );
        let node = t.node();
        let served = restarts(&[t.pki("etcd/server.crt"), t.pki("apiserver.crt")], &node);
        assert_eq!(names(&served), ["etcd", "kube-apiserver"]);
        assert!(served.items.iter().all(Restart::reloads_itself));
        assert_eq!(served.to_restart().count(), 0);
        let ca = restarts(&[t.pki("etcd/ca.crt")], &node);
        assert_eq!(names(&ca), ["etcd", "kube-apiserver"]);
        assert!(ca.items.iter().all(|r| !r.reloads_itself()));
        // One file read through a reloading and a non-reloading flag: a restart.
        let both = restarts(&[t.pki("etcd/server.crt"), t.pki("etcd/ca.crt")], &node);
        assert!(!both.items[0].reloads_itself());
    }

    #[test]
    fn files_named_by_a_kubeconfig_are_read_through_its_flag() {
        let t = Tree::new();
        let conf = t.kubeconfig_dir.join("kubelet.conf");
        let kc = "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
                  clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443'}}]\n\
                  contexts: [{name: c, context: {cluster: k, user: u}}]\n\
                  users: [{name: u, user: {client-certificate: pki/client.pem, client-key: pki/client.pem}}]\n";
        fs::write(&conf, kc).unwrap();
        let list = restarts(&[t.pki("client.pem")], &t.node());
        assert_eq!(names(&list), ["kubelet"]);
        assert_eq!(list.items[0].reads[0].flags, ["--kubeconfig → client-certificate", "--kubeconfig → client-key"]);
        assert_eq!(list.items[0].command.as_deref(), Some("systemctl restart kubelet"));
    }

    #[test]
    fn a_node_copy_is_read_under_its_root() {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig_dir = dir.path().join("etc/kubernetes");
        fs::create_dir_all(kubeconfig_dir.join("manifests")).unwrap();
        let node = NodePaths::new(&kubeconfig_dir.join("pki"), &kubeconfig_dir);
        assert_eq!(node.root.as_deref(), Some(dir.path()));
        assert_eq!(
            NodePaths::new(Path::new("/etc/kubernetes/pki"), Path::new("/etc/kubernetes")).root,
            Some("/".into())
        );
        let pod = json!({"kind": "Pod", "spec": {"containers": [{"name": "kube-scheduler",
            "command": ["kube-scheduler", "--kubeconfig=/etc/kubernetes/scheduler.conf"]}]}});
        fs::write(kubeconfig_dir.join("manifests/kube-scheduler.yaml"), pod.to_string()).unwrap();
        let list = restarts(&[kubeconfig_dir.join("scheduler.conf")], &node);
        assert_eq!(names(&list), ["kube-scheduler"]);
        assert_eq!(list.items[0].reads[0].flags, ["--kubeconfig"]);
    }

    #[test]
    fn the_kubelets_configuration_under_the_root_names_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig_dir = dir.path().join("etc/kubernetes");
        fs::create_dir_all(dir.path().join("var/lib/kubelet")).unwrap();
        fs::create_dir_all(&kubeconfig_dir).unwrap();
        fs::write(
            dir.path().join("var/lib/kubelet/config.yaml"),
            "kind: KubeletConfiguration\nauthentication:\n  x509:\n    clientCAFile: /srv/ca.crt\n\
             tlsCertFile: /srv/kubelet.crt\ntlsPrivateKeyFile: /srv/kubelet.key\n",
        )
        .unwrap();
        let node = NodePaths::new(&kubeconfig_dir.join("pki"), &kubeconfig_dir);
        // The serving certificate is reloaded by the kubelet; its client CA is not.
        let serving = restarts(&[dir.path().join("srv/kubelet.crt")], &node);
        assert_eq!(names(&serving), ["kubelet"]);
        assert_eq!(serving.items[0].source, Source::Manifest);
        assert_eq!(serving.items[0].reads[0].flags, ["tlsCertFile"]);
        assert!(serving.items[0].reloads_itself());
        let ca = restarts(&[dir.path().join("srv/ca.crt")], &node);
        assert_eq!(ca.items[0].command.as_deref(), Some("systemctl restart kubelet"));
        // kubeadm's ca.crt is not what this kubelet reads.
        assert!(
            restarts(&[kubeconfig_dir.join("pki/ca.crt")], &node)
                .items
                .iter()
                .all(|r| r.component != Component::Kubelet)
        );
    }

    #[test]
    fn an_unreadable_manifest_is_a_problem_and_kubeadms_wiring_is_assumed() {
        let t = Tree::new();
        fs::write(t.kubeconfig_dir.join("manifests/etcd.yaml"), "kind: [").unwrap();
        let list = restarts(&[t.pki("etcd/ca.crt")], &t.node());
        // The manifests dir holds a manifest (etcd's): the others are not on this node.
        assert_eq!(names(&list), ["etcd"]);
        assert_eq!(list.items[0].source, Source::KubeadmDefault);
        assert!(list.problems[0].contains("etcd.yaml"), "{:?}", list.problems);
    }
}
