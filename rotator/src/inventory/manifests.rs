//! The static pod manifests of `/etc/kubernetes/manifests`, read down to their components'
//! flags: which files kube-apiserver, etcd, the controller manager and the scheduler actually
//! use. The node audit judges these flags; the restart list and `rotate-sa` follow them to the
//! files they name.

use std::path::PathBuf;

use serde_json::Value;

use crate::inventory::flags::Flags;

/// A static pod manifest, parsed down to its component's flags.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The file read.
    pub path: PathBuf,
    /// The flags of the component's container (`command` then `args`).
    pub flags: Flags,
}

/// The flags of the container named `container` in a Pod document (or of its only container),
/// from `command` followed by `args`.
///
/// ```
/// use kubepki_rotator::inventory::manifests::flags_of;
///
/// let pod = serde_json::json!({"kind": "Pod", "spec": {"containers": [
///     {"name": "etcd", "command": ["etcd", "--client-cert-auth=true"], "args": ["--data-dir=/var/lib/etcd"]}
/// ]}});
/// let flags = flags_of(&pod, "etcd").unwrap();
/// assert_eq!(flags.get("data-dir"), Some("/var/lib/etcd"));
/// ```
pub fn flags_of(pod: &Value, container: &str) -> Result<Flags, String> {
    if pod.get("kind").and_then(Value::as_str).is_some_and(|k| k != "Pod") {
        return Err(format!("not a Pod manifest (kind {})", pod["kind"]));
    }
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or("no spec.containers in the manifest")?;
    let c = containers
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        .or_else(|| (containers.len() == 1).then(|| &containers[0]))
        .ok_or_else(|| format!("no container named {container:?} in the manifest"))?;
    let mut words = Vec::new();
    for field in ["command", "args"] {
        match c.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    words.push(item.as_str().ok_or_else(|| format!("{field} holds {item}, not a string"))?);
                }
            }
            Some(other) => return Err(format!("{field} is {other}, not a list")),
        }
    }
    Ok(Flags::parse(words))
}
