//! kubeadm's v1beta3 and v1beta4 InitConfiguration and ClusterConfiguration as data — every
//! field of theirs and of the types they hold, named and typed as kubeadm's Go types
//! (`cmd/kubeadm/app/apis/kubeadm/v1beta{3,4}/types.go`) define them — and the strict check of
//! a document against them: an unknown or misplaced field, or a value of the wrong type, is
//! named by its path with the closest field kubeadm knows.

use serde_json::Value;

/// What a field holds, as kubeadm's Go type decodes it from JSON. `null` is accepted for
/// every kind, as Go leaves the zero value.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A string; also a `metav1.Duration`, a `metav1.Time` and a bootstrap token.
    Str,
    /// `true` or `false`.
    Bool,
    /// A whole number.
    Int,
    /// A list of strings.
    Strs,
    /// A map of strings to strings (v1beta3's `extraArgs`).
    StrMap,
    /// A map of strings to booleans (`featureGates`).
    BoolMap,
    /// An object with these fields.
    Obj(&'static [Field]),
    /// A list of objects with these fields.
    Objs(&'static [Field]),
    /// Any value: `valueFrom`, a Kubernetes core type (EnvVarSource) that grows with
    /// Kubernetes and that kubeadm passes through whole.
    Any,
}

/// One field of a kubeadm type.
#[derive(Debug)]
struct Field {
    name: &'static str,
    kind: Kind,
}

const fn f(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

use Kind::{Any, Bool, BoolMap, Int, Obj, Objs, Str, StrMap, Strs};

// The types both versions share.
const API_ENDPOINT: &[Field] = &[f("advertiseAddress", Str), f("bindPort", Int)];
const NETWORKING: &[Field] = &[f("serviceSubnet", Str), f("podSubnet", Str), f("dnsDomain", Str)];
const EXTERNAL_ETCD: &[Field] = &[f("endpoints", Strs), f("caFile", Str), f("certFile", Str), f("keyFile", Str)];
const HOST_PATH_MOUNT: &[Field] =
    &[f("name", Str), f("hostPath", Str), f("mountPath", Str), f("readOnly", Bool), f("pathType", Str)];
const PATCHES: &[Field] = &[f("directory", Str)];
/// `bootstraptoken/v1.BootstrapToken`.
const BOOTSTRAP_TOKEN: &[Field] =
    &[f("token", Str), f("description", Str), f("ttl", Str), f("expires", Str), f("usages", Strs), f("groups", Strs)];
/// `core/v1.Taint`.
const TAINT: &[Field] = &[f("key", Str), f("value", Str), f("effect", Str), f("timeAdded", Str)];

// v1beta3.
const V1BETA3_NODE_REGISTRATION: &[Field] = &[
    f("name", Str),
    f("criSocket", Str),
    f("taints", Objs(TAINT)),
    f("kubeletExtraArgs", StrMap),
    f("ignorePreflightErrors", Strs),
    f("imagePullPolicy", Str),
];
const V1BETA3_INIT: &[Field] = &[
    f("apiVersion", Str),
    f("kind", Str),
    f("bootstrapTokens", Objs(BOOTSTRAP_TOKEN)),
    f("nodeRegistration", Obj(V1BETA3_NODE_REGISTRATION)),
    f("localAPIEndpoint", Obj(API_ENDPOINT)),
    f("certificateKey", Str),
    f("skipPhases", Strs),
    f("patches", Obj(PATCHES)),
];
const V1BETA3_COMPONENT: &[Field] = &[f("extraArgs", StrMap), f("extraVolumes", Objs(HOST_PATH_MOUNT))];
const V1BETA3_API_SERVER: &[Field] = &[
    f("extraArgs", StrMap),
    f("extraVolumes", Objs(HOST_PATH_MOUNT)),
    f("certSANs", Strs),
    f("timeoutForControlPlane", Str),
];
const V1BETA3_DNS: &[Field] = &[f("imageRepository", Str), f("imageTag", Str)];
const V1BETA3_LOCAL_ETCD: &[Field] = &[
    f("imageRepository", Str),
    f("imageTag", Str),
    f("dataDir", Str),
    f("extraArgs", StrMap),
    f("serverCertSANs", Strs),
    f("peerCertSANs", Strs),
];
const V1BETA3_ETCD: &[Field] = &[f("local", Obj(V1BETA3_LOCAL_ETCD)), f("external", Obj(EXTERNAL_ETCD))];
const V1BETA3_CLUSTER: &[Field] = &[
    f("apiVersion", Str),
    f("kind", Str),
    f("etcd", Obj(V1BETA3_ETCD)),
    f("networking", Obj(NETWORKING)),
    f("kubernetesVersion", Str),
    f("controlPlaneEndpoint", Str),
    f("apiServer", Obj(V1BETA3_API_SERVER)),
    f("controllerManager", Obj(V1BETA3_COMPONENT)),
    f("scheduler", Obj(V1BETA3_COMPONENT)),
    f("dns", Obj(V1BETA3_DNS)),
    f("certificatesDir", Str),
    f("imageRepository", Str),
    f("featureGates", BoolMap),
    f("clusterName", Str),
];

// v1beta4.
const ARG: &[Field] = &[f("name", Str), f("value", Str)];
/// `core/v1.EnvVar`.
const ENV_VAR: &[Field] = &[f("name", Str), f("value", Str), f("valueFrom", Any)];
const TIMEOUTS: &[Field] = &[
    f("controlPlaneComponentHealthCheck", Str),
    f("kubeletHealthCheck", Str),
    f("kubernetesAPICall", Str),
    f("etcdAPICall", Str),
    f("tlsBootstrap", Str),
    f("discovery", Str),
    f("upgradeManifests", Str),
];
const V1BETA4_NODE_REGISTRATION: &[Field] = &[
    f("name", Str),
    f("criSocket", Str),
    f("taints", Objs(TAINT)),
    f("kubeletExtraArgs", Objs(ARG)),
    f("ignorePreflightErrors", Strs),
    f("imagePullPolicy", Str),
    f("imagePullSerial", Bool),
];
const V1BETA4_INIT: &[Field] = &[
    f("apiVersion", Str),
    f("kind", Str),
    f("bootstrapTokens", Objs(BOOTSTRAP_TOKEN)),
    f("dryRun", Bool),
    f("nodeRegistration", Obj(V1BETA4_NODE_REGISTRATION)),
    f("localAPIEndpoint", Obj(API_ENDPOINT)),
    f("certificateKey", Str),
    f("skipPhases", Strs),
    f("patches", Obj(PATCHES)),
    f("timeouts", Obj(TIMEOUTS)),
];
const V1BETA4_COMPONENT: &[Field] =
    &[f("extraArgs", Objs(ARG)), f("extraVolumes", Objs(HOST_PATH_MOUNT)), f("extraEnvs", Objs(ENV_VAR))];
const V1BETA4_API_SERVER: &[Field] = &[
    f("extraArgs", Objs(ARG)),
    f("extraVolumes", Objs(HOST_PATH_MOUNT)),
    f("extraEnvs", Objs(ENV_VAR)),
    f("certSANs", Strs),
];
const V1BETA4_DNS: &[Field] = &[f("imageRepository", Str), f("imageTag", Str), f("disabled", Bool)];
const PROXY: &[Field] = &[f("disabled", Bool)];
const V1BETA4_LOCAL_ETCD: &[Field] = &[
    f("imageRepository", Str),
    f("imageTag", Str),
    f("dataDir", Str),
    f("extraArgs", Objs(ARG)),
    f("extraEnvs", Objs(ENV_VAR)),
    f("serverCertSANs", Strs),
    f("peerCertSANs", Strs),
];
const V1BETA4_ETCD: &[Field] = &[f("local", Obj(V1BETA4_LOCAL_ETCD)), f("external", Obj(EXTERNAL_ETCD))];
const V1BETA4_CLUSTER: &[Field] = &[
    f("apiVersion", Str),
    f("kind", Str),
    f("etcd", Obj(V1BETA4_ETCD)),
    f("networking", Obj(NETWORKING)),
    f("kubernetesVersion", Str),
    f("controlPlaneEndpoint", Str),
    f("apiServer", Obj(V1BETA4_API_SERVER)),
    f("controllerManager", Obj(V1BETA4_COMPONENT)),
    f("scheduler", Obj(V1BETA4_COMPONENT)),
    f("dns", Obj(V1BETA4_DNS)),
    f("proxy", Obj(PROXY)),
    f("certificatesDir", Str),
    f("imageRepository", Str),
    f("featureGates", BoolMap),
    f("clusterName", Str),
    f("encryptionAlgorithm", Str),
    f("certificateValidityPeriod", Str),
    f("caCertificateValidityPeriod", Str),
];

/// The two kinds kubepki decodes.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) enum Decoded {
    /// `InitConfiguration`.
    Init,
    /// `ClusterConfiguration`.
    Cluster,
}

impl Decoded {
    fn other(self) -> Self {
        match self {
            Self::Init => Self::Cluster,
            Self::Cluster => Self::Init,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Init => "InitConfiguration",
            Self::Cluster => "ClusterConfiguration",
        }
    }
}

/// What a kubeadm document of a kind is to kubepki.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(super) enum KindUse {
    /// Decoded, strictly.
    Decoded(Decoded),
    /// Another kubeadm command's document (JoinConfiguration, ResetConfiguration,
    /// UpgradeConfiguration), skipped whole as `kubeadm init` skips it.
    Skipped,
}

/// One kubeadm API version.
#[derive(Debug)]
pub(super) struct Version {
    name: &'static str,
    init: &'static [Field],
    cluster: &'static [Field],
    /// Every kind of the version: kubeadm's `register.go`.
    kinds: &'static [&'static str],
}

static V1BETA3: Version = Version {
    name: "v1beta3",
    init: V1BETA3_INIT,
    cluster: V1BETA3_CLUSTER,
    kinds: &["InitConfiguration", "ClusterConfiguration", "JoinConfiguration"],
};

static V1BETA4: Version = Version {
    name: "v1beta4",
    init: V1BETA4_INIT,
    cluster: V1BETA4_CLUSTER,
    kinds: &[
        "InitConfiguration",
        "ClusterConfiguration",
        "JoinConfiguration",
        "ResetConfiguration",
        "UpgradeConfiguration",
    ],
};

/// The version named `v1beta3` or `v1beta4`.
pub(super) fn version(name: &str) -> Option<&'static Version> {
    [&V1BETA3, &V1BETA4].into_iter().find(|v| v.name == name)
}

impl Version {
    fn other(&self) -> &'static Self {
        if self.name == V1BETA3.name { &V1BETA4 } else { &V1BETA3 }
    }

    fn fields(&self, kind: Decoded) -> &'static [Field] {
        match kind {
            Decoded::Init => self.init,
            Decoded::Cluster => self.cluster,
        }
    }

    /// What kubepki does with a document of `kind`; an unknown kind is an error naming the
    /// closest kind of the version.
    pub(super) fn kind_use(&self, kind: &str) -> Result<KindUse, String> {
        match kind {
            "InitConfiguration" => Ok(KindUse::Decoded(Decoded::Init)),
            "ClusterConfiguration" => Ok(KindUse::Decoded(Decoded::Cluster)),
            k if self.kinds.contains(&k) => Ok(KindUse::Skipped),
            _ => {
                let mut reason = format!("kind {kind} is not a kind of kubeadm.k8s.io/{}", self.name);
                match closest(kind, self.kinds.iter().copied()).as_slice() {
                    [] => reason.push_str(&format!(" (its kinds: {})", self.kinds.join(", "))),
                    near => reason.push_str(&format!("; did you mean {}?", near.join(" or "))),
                }
                Err(reason)
            }
        }
    }

    /// Checks a document of `kind` field by field: every field must be one kubeadm defines at
    /// that place, with a value of the type it decodes. The error names the field's path and
    /// what is wrong (`apiServer.certSAN: unknown field; did you mean certSANs?`).
    pub(super) fn check(&self, kind: Decoded, doc: &Value) -> Result<(), String> {
        let mut path = Vec::new();
        check_value(doc, Obj(self.fields(kind)), &mut path, &Place { version: self, kind })
    }
}

/// Where a check runs: for the suggestions an unknown field gets.
struct Place<'a> {
    version: &'a Version,
    kind: Decoded,
}

/// One step of a field's path.
enum Step {
    Field(String),
    Index(usize),
}

fn render(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn found(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn check_value(value: &Value, kind: Kind, path: &mut Vec<Step>, place: &Place<'_>) -> Result<(), String> {
    let wrong = |want: &str, path: &[Step]| {
        let at = render(path);
        let at = if at.is_empty() { "the document".to_owned() } else { at };
        Err(format!("{at}: expected {want}, found {}", found(value)))
    };
    match (kind, value) {
        (_, Value::Null) | (Any, _) | (Str, Value::String(_)) | (Bool, Value::Bool(_)) => Ok(()),
        (Int, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(()),
        (Str, _) => wrong("a string", path),
        (Bool, _) => wrong("true or false", path),
        (Int, _) => wrong("a whole number", path),
        (Strs, Value::Array(items)) => each(items, Str, path, place),
        (Strs, _) => wrong("a list of strings", path),
        (Objs(fields), Value::Array(items)) => each(items, Obj(fields), path, place),
        (Objs(_), _) => wrong("a list of mappings", path),
        (StrMap | BoolMap, Value::Object(map)) => {
            let item = if matches!(kind, StrMap) { Str } else { Bool };
            for (key, v) in map {
                path.push(Step::Field(key.clone()));
                check_value(v, item, path, place)?;
                path.pop();
            }
            Ok(())
        }
        (StrMap, _) => wrong("a mapping of strings", path),
        (BoolMap, _) => wrong("a mapping of names to true or false", path),
        (Obj(fields), Value::Object(map)) => {
            for (key, v) in map {
                path.push(Step::Field(key.clone()));
                let Some(field) = fields.iter().find(|f| f.name == key) else {
                    return Err(unknown(key, fields, path, place));
                };
                check_value(v, field.kind, path, place)?;
                path.pop();
            }
            Ok(())
        }
        (Obj(_), _) => wrong("a mapping", path),
    }
}

fn each(items: &[Value], kind: Kind, path: &mut Vec<Step>, place: &Place<'_>) -> Result<(), String> {
    for (i, item) in items.iter().enumerate() {
        path.push(Step::Index(i));
        check_value(item, kind, path, place)?;
        path.pop();
    }
    Ok(())
}

/// The message for `name`, unknown among `fields` at `path` (which ends with it), with the
/// best hint there is, in this order: the same place in the other API version (a v1beta4 field
/// in a v1beta3 file); the closest names at this place (a typo); the same name elsewhere in
/// this kind (a misplaced field); the same name in the other kind (a field of
/// ClusterConfiguration in InitConfiguration); else the names valid here.
fn unknown(name: &str, fields: &[Field], path: &[Step], place: &Place<'_>) -> String {
    let at = render(path);
    let mut reason = format!("{at}: unknown field");
    let schema_path = |p: &[Step]| -> Vec<String> {
        p.iter().filter_map(|s| if let Step::Field(f) = s { Some(f.clone()) } else { None }).collect()
    };
    let parents = schema_path(&path[..path.len() - 1]);
    let other_version = place.version.other();
    if lookup(other_version.fields(place.kind), &parents).is_some_and(|fs| fs.iter().any(|f| f.name == name)) {
        reason.push_str(&format!(
            " in kubeadm.k8s.io/{} (a {} field; `kubeadm config migrate` converts a file between versions)",
            place.version.name, other_version.name
        ));
        return reason;
    }
    let near = closest(name, fields.iter().map(|f| f.name));
    if !near.is_empty() {
        reason.push_str(&format!("; did you mean {}?", near.join(" or ")));
        return reason;
    }
    let elsewhere = paths_named(name, place.version.fields(place.kind));
    if !elsewhere.is_empty() {
        reason.push_str(&format!("; did you mean {}?", elsewhere.join(" or ")));
        return reason;
    }
    let other_kind = place.kind.other();
    let there = paths_named(name, place.version.fields(other_kind));
    if !there.is_empty() {
        reason.push_str(&format!("; it belongs in {} ({})", other_kind.name(), there.join(" or ")));
        return reason;
    }
    let known: Vec<&str> = fields.iter().map(|f| f.name).filter(|n| !matches!(*n, "apiVersion" | "kind")).collect();
    reason.push_str(&format!(" (known fields here: {})", known.join(", ")));
    reason
}

/// The fields of the object at `parents` (field names from the top), if it is one.
fn lookup(top: &'static [Field], parents: &[String]) -> Option<&'static [Field]> {
    let mut fields = top;
    for name in parents {
        fields = match fields.iter().find(|f| f.name == name)?.kind {
            Obj(inner) | Objs(inner) => inner,
            _ => return None,
        };
    }
    Some(fields)
}

/// Every path of a field called `name` (case-insensitively) in `fields` and below, as
/// `apiServer.certSANs` (a list of objects shows as `taints[]`).
fn paths_named(name: &str, fields: &[Field]) -> Vec<String> {
    fn walk(name: &str, fields: &[Field], prefix: &str, out: &mut Vec<String>) {
        for field in fields {
            let here = if prefix.is_empty() { field.name.to_owned() } else { format!("{prefix}.{}", field.name) };
            if field.name.eq_ignore_ascii_case(name) {
                out.push(here.clone());
            }
            match field.kind {
                Obj(inner) => walk(name, inner, &here, out),
                Objs(inner) => walk(name, inner, &format!("{here}[]"), out),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(name, fields, "", &mut out);
    out
}

/// Whether `name` is close enough to `known` to be a typo of it (see [`closest`]).
pub(super) fn is_near(name: &str, known: &str) -> bool {
    !closest(name, std::iter::once(known)).is_empty()
}

/// The candidates at the smallest edit distance from `name` (case-insensitive, a swap of two
/// neighbours counting as one edit), if it is close enough to be a typo: at most a third of
/// the name's length, at least one edit, at most three.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    let lower = name.to_lowercase();
    let mut best: Vec<&str> = Vec::new();
    let mut best_distance = limit + 1;
    for candidate in candidates {
        let d = edit_distance(&lower, &candidate.to_lowercase());
        if d < best_distance {
            best_distance = d;
            best.clear();
        }
        if d == best_distance && !best.contains(&candidate) {
            best.push(candidate);
        }
    }
    best
}

/// The optimal-string-alignment distance: insertions, deletions, substitutions and swaps of
/// neighbours.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: the distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("certsan", "certsans"), 1);
        assert_eq!(edit_distance("cretsans", "certsans"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest("servicesubnet", ["serviceSubnet", "podSubnet"].into_iter()), ["serviceSubnet"]);
        assert!(closest("name", ["dryRun", "timeouts"].into_iter()).is_empty());
    }

    #[test]
    fn every_object_has_unique_field_names() {
        fn walk(fields: &[Field]) {
            for (i, field) in fields.iter().enumerate() {
                assert!(!fields[..i].iter().any(|g| g.name == field.name), "{} twice", field.name);
                if let Obj(inner) | Objs(inner) = field.kind {
                    walk(inner);
                }
            }
        }
        for v in [&V1BETA3, &V1BETA4] {
            walk(v.init);
            walk(v.cluster);
        }
    }
}
