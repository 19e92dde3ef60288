//! The local sources `check` and `tree` read, from their flags: one reading, so that both
//! commands see the same certificates — kubeadm's default locations, `$KUBECONFIG`'s files and
//! `~/.kube/config` ([`Sources::defaults`]) unless `--no-defaults`, each directory flag in
//! place of its default, the `--kubeconfig` files first.

use std::path::{Path, PathBuf};

use kubepki_rotator::inventory::{SourcePath, Sources, resolve_under};

/// The source flags of a reading command.
pub(crate) struct SourceFlags<'a> {
    /// `--cert-dir`.
    pub(crate) cert_dir: Option<&'a Path>,
    /// `--kubeconfig-dir`.
    pub(crate) kubeconfig_dir: Option<&'a Path>,
    /// Every `--kubeconfig`.
    pub(crate) kubeconfigs: &'a [PathBuf],
    /// `--kubelet-pki-dir`.
    pub(crate) kubelet_pki_dir: Option<&'a Path>,
    /// `--no-defaults`: only what the flags name.
    pub(crate) no_defaults: bool,
    /// `--root`: a node's filesystem copied or mounted here, where the directories are.
    pub(crate) root: Option<&'a Path>,
}

impl SourceFlags<'_> {
    /// The sources: defaults unless `--no-defaults`, with the flags overriding them.
    pub(crate) fn sources(&self) -> Sources {
        let mut s = if self.no_defaults {
            Sources::default()
        } else if self.root.is_some() {
            // The node's own locations; this machine's $KUBECONFIG and HOME are not the node's.
            Sources::defaults(None, None)
        } else {
            Sources::defaults(
                std::env::var_os("HOME").as_deref().map(Path::new),
                std::env::var_os("KUBECONFIG").as_deref(),
            )
        };
        if let Some(d) = self.cert_dir {
            s.cert_dir = Some(SourcePath::explicit(d));
        }
        if let Some(d) = self.kubeconfig_dir {
            s.kubeconfig_dir = Some(SourcePath::explicit(d));
        }
        if let Some(d) = self.kubelet_pki_dir {
            s.kubelet_pki_dir = Some(SourcePath::explicit(d));
        }
        s.kubeconfigs.splice(0..0, self.kubeconfigs.iter().map(SourcePath::explicit));
        if let Some(root) = self.root {
            for dir in [&mut s.cert_dir, &mut s.kubeconfig_dir, &mut s.kubelet_pki_dir].into_iter().flatten() {
                dir.path = resolve_under(root, &dir.path);
            }
            s.root = Some(root.to_owned());
        }
        s
    }
}
