//! A node's filesystem seen from outside it: the file a node path names when the node's root is
//! mounted somewhere else (`--root`, a rescue disk, a container with the host at `/host`).
//! Symbolic links are followed inside the root, as if chrooted there, so that a link such as
//! the kubelet's `kubelet-client-current.pem` (an absolute target) names the node's file, not
//! the machine's running kubepki.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::path::{Component as PathComponent, Path, PathBuf};

const MAX_LINKS: usize = 40;

/// The file `node_path` names on the node whose filesystem is at `root`: every symbolic link on
/// the way is followed inside `root` (an absolute target starts again at `root`, `..` never
/// leaves it), as if the process were chrooted there. A component that does not exist ends the
/// resolution (the rest is joined as is).
///
/// ```
/// use kubepki_rotator::inventory::resolve_under;
///
/// let root = tempfile::tempdir().unwrap();
/// std::fs::create_dir_all(root.path().join("var/lib/kubelet/pki")).unwrap();
/// std::fs::write(root.path().join("var/lib/kubelet/pki/kubelet-client-2024.pem"), "").unwrap();
/// std::os::unix::fs::symlink(
///     "/var/lib/kubelet/pki/kubelet-client-2024.pem",
///     root.path().join("var/lib/kubelet/pki/kubelet-client-current.pem"),
/// )
/// .unwrap();
/// let resolved = resolve_under(root.path(), "/var/lib/kubelet/pki/kubelet-client-current.pem".as_ref());
/// assert_eq!(resolved, root.path().join("var/lib/kubelet/pki/kubelet-client-2024.pem"));
/// ```
pub fn resolve_under(root: &Path, node_path: &Path) -> PathBuf {
    let mut pending: VecDeque<OsString> = parts(node_path);
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let real = root.join(&candidate);
        let is_link = fs::symlink_metadata(&real).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link || links >= MAX_LINKS {
            resolved = candidate;
            continue;
        }
        links += 1;
        let Ok(target) = fs::read_link(&real) else {
            resolved = candidate;
            continue;
        };
        if target.is_absolute() {
            resolved = PathBuf::new();
        }
        let mut next = parts(&target);
        next.extend(pending);
        pending = next;
    }
    root.join(resolved)
}

fn parts(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            PathComponent::Normal(s) => Some(s.to_owned()),
            PathComponent::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}
