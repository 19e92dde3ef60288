//! `kubepki tree`: the PKI as a tree — each CA of the cert dir, the leaves it signed, then the
//! kubeconfigs and kubelet certificates it signed — laid out from an [`Inventory`] (pure), and
//! rendered as text (with an expiry bar per certificate on a terminal), Graphviz dot or Mermaid.
//!
//! ```
//! use kubepki_rotator::inventory::Inventory;
//! use kubepki_rotator::tree::{Tree, TextStyle};
//!
//! let tree = Tree::build(&Inventory::default());
//! assert!(tree.roots.is_empty());
//! let at = time::OffsetDateTime::now_utc();
//! assert_eq!(tree.to_dot(at), "digraph kubepki {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n}\n");
//! assert!(tree.to_text(at, TextStyle::plain()).contains("no certificates"));
//! ```

use std::fmt::Write as _;

use time::OffsetDateTime;

use crate::inventory::sa_keys::{SaKeys, SigningKey, TrustedKeys};
use crate::inventory::{Inventory, Item, ItemState, Location, SourceKind};
use crate::text::{Tone, short_human_duration};

/// What a node of the tree is.
#[derive(Clone, Copy, Debug, Eq, Hash, PartialEq)]
pub enum NodeKind {
    /// A CA of the cert dir.
    Ca,
    /// A leaf of the cert dir.
    Leaf,
    /// A client certificate in a kubeconfig.
    Kubeconfig,
    /// A certificate of the kubelet's PKI directory.
    Kubelet,
    /// Anything else: a named file, a Secret, an endpoint, a kubeconfig's own CA.
    Other,
    /// The group of certificates no cert dir CA signed (not a certificate itself).
    Unlinked,
    /// The group of files that could not be read as certificates (not a certificate itself):
    /// who signed them is unknown.
    Unreadable,
    /// The service-account key pair (`sa.key`, `sa.pub`): keys, not certificates; no CA signs
    /// them.
    ServiceAccountKeys,
}

impl NodeKind {
    /// `ca`, `leaf`, `kubeconfig`, `kubelet`, `other`, `unlinked`, `unreadable`,
    /// `service-account-keys`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ca => "ca",
            Self::Leaf => "leaf",
            Self::Kubeconfig => "kubeconfig",
            Self::Kubelet => "kubelet",
            Self::Other => "other",
            Self::Unlinked => "unlinked",
            Self::Unreadable => "unreadable",
            Self::ServiceAccountKeys => "service-account-keys",
        }
    }

    /// Whether this is a group of certificates rather than a certificate.
    pub fn is_group(self) -> bool {
        matches!(self, Self::Unlinked | Self::Unreadable)
    }
}

/// One certificate in the tree.
#[derive(Clone, Debug)]
pub struct TreeNode {
    /// The item's name (`ca`, `apiserver`, `admin.conf`, `kubelet-client-current.pem`).
    pub name: String,
    /// What it is.
    pub kind: NodeKind,
    /// Where it is (a path, `NAMESPACE/NAME:KEY`, `HOST:PORT`).
    pub location: String,
    /// Its subject (`CN=kube-apiserver`), empty if it could not be read.
    pub subject: String,
    /// NotBefore and NotAfter, if it could be read.
    pub validity: Option<(OffsetDateTime, OffsetDateTime)>,
    /// Why it could not be read, or another remark.
    pub note: Option<String>,
    /// What it signed (for a CA).
    pub children: Vec<Self>,
}

impl TreeNode {
    fn from_item(item: &Item, kind: NodeKind) -> Self {
        let cert = item.cert();
        Self {
            name: item.name.clone(),
            kind,
            location: item.location.reference(),
            subject: cert.map(|c| c.subject.to_string()).unwrap_or_default(),
            validity: cert.map(|c| (c.not_before, c.not_after)),
            note: item.certificate.as_ref().err().map(|e| match item.state {
                ItemState::Present => format!("unreadable: {e}"),
                ItemState::Missing => format!("missing: {e}"),
                ItemState::KeyOnly => format!("broken pair: {e}"),
            }),
            children: Vec::new(),
        }
    }

    /// The share of its lifetime left at `at`, from 0 (expired) to 1 (not yet valid).
    pub fn remaining(&self, at: OffsetDateTime) -> Option<f64> {
        let (nb, na) = self.validity?;
        let total = (na - nb).as_seconds_f64();
        if total <= 0.0 {
            return Some(0.0);
        }
        Some(((na - at).as_seconds_f64() / total).clamp(0.0, 1.0))
    }

    /// Every node of this subtree, depth first (this one first).
    pub fn walk(&self) -> Vec<&Self> {
        let mut out = vec![self];
        for c in &self.children {
            out.extend(c.walk());
        }
        out
    }
}

/// The PKI as a forest: one root per cert dir CA, plus one for what no cert dir CA signed.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    /// The roots: the cert dir's CAs in kubeadm's order (`ca`, `front-proxy-ca`, `etcd-ca`,
    /// each CA file's further certificates after it), then an [`NodeKind::Unlinked`] group if
    /// anything is left over.
    pub roots: Vec<TreeNode>,
    /// The cert dir's service-account keys, if it has any: the signing key's kid and algorithm
    /// as the subject, how many keys `sa.pub` trusts and whether `sa.key` is one of them as the
    /// note. Drawn after the roots, with no edge.
    pub service_account: Option<TreeNode>,
}

fn kind_of(item: &Item) -> NodeKind {
    match (&item.location, item.source()) {
        (Location::CertDir { .. }, _) => {
            if item.cert().is_some_and(|c| c.is_ca) {
                NodeKind::Ca
            } else {
                NodeKind::Leaf
            }
        }
        (Location::Kubeconfig { .. }, _) => NodeKind::Kubeconfig,
        (_, SourceKind::Kubelet) => NodeKind::Kubelet,
        _ => NodeKind::Other,
    }
}

impl Tree {
    /// Lays out an inventory. Kubeconfig CA data that is a copy of the cert dir's CA is not
    /// shown again; a certificate that no cert dir CA signed goes under the unlinked group.
    pub fn build(inventory: &Inventory) -> Self {
        let items: Vec<&Item> = inventory.reported().collect();
        let mut roots: Vec<TreeNode> = Vec::new();
        let mut used = vec![false; items.len()];
        for ca in &inventory.cas {
            for (i, item) in items.iter().enumerate() {
                let is_this_ca =
                    matches!(&item.location, Location::CertDir { base, .. } if base == ca.kind.base_name());
                if !is_this_ca {
                    continue;
                }
                used[i] = true;
                let mut node = TreeNode::from_item(item, NodeKind::Ca);
                if item.location.index() == 0 {
                    for (j, child) in items.iter().enumerate() {
                        // A missing certificate (or a key without it) goes under the CA
                        // that should sign it.
                        let signed = child.ca_name.as_deref() == Some(ca.kind.name())
                            || (child.state != ItemState::Present && child.expected_ca == Some(ca.kind));
                        let is_ca_file =
                            matches!(&child.location, Location::CertDir { base, .. } if base == ca.kind.base_name());
                        if signed && !is_ca_file && !used[j] {
                            used[j] = true;
                            node.children.push(TreeNode::from_item(child, kind_of(child)));
                        }
                    }
                    // Leaves first, then kubeconfigs, then the kubelet's, then the rest.
                    node.children.sort_by_key(|c| match c.kind {
                        NodeKind::Ca | NodeKind::Leaf => 0,
                        NodeKind::Kubeconfig => 1,
                        NodeKind::Kubelet => 2,
                        NodeKind::Other | NodeKind::Unlinked | NodeKind::Unreadable | NodeKind::ServiceAccountKeys => 3,
                    });
                }
                roots.push(node);
            }
        }
        // What no CA took: files that are not readable certificates (their signer is
        // unknown), and readable certificates no cert dir CA signed.
        let (unreadable, unlinked): (Vec<&Item>, Vec<&Item>) = items
            .iter()
            .zip(&used)
            .filter(|(_, used)| !**used)
            .map(|(item, _)| *item)
            .partition(|item| item.certificate.is_err());
        for (name, kind, group) in [
            ("not signed by a cert dir CA", NodeKind::Unlinked, unlinked),
            ("unreadable", NodeKind::Unreadable, unreadable),
        ] {
            if !group.is_empty() {
                roots.push(TreeNode {
                    name: name.into(),
                    kind,
                    location: String::new(),
                    subject: String::new(),
                    validity: None,
                    note: None,
                    children: group.iter().map(|item| TreeNode::from_item(item, kind_of(item))).collect(),
                });
            }
        }
        Self { roots, service_account: inventory.service_account.as_ref().map(service_account_node) }
    }

    /// Every node, depth first, then the service-account keys.
    pub fn nodes(&self) -> Vec<&TreeNode> {
        self.roots.iter().chain(&self.service_account).flat_map(TreeNode::walk).collect()
    }

    /// Graphviz dot: a left-to-right digraph with one node per certificate (CAs bold, kubeconfigs
    /// as notes), an edge from each CA to what it signed, and a fill colour by the share of the
    /// lifetime left at `at`.
    pub fn to_dot(&self, at: OffsetDateTime) -> String {
        let mut out = String::from(
            "digraph kubepki {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n",
        );
        let mut next = 0usize;
        for root in self.roots.iter().chain(&self.service_account) {
            dot_node(&mut out, root, None, at, &mut next);
        }
        out.push_str("}\n");
        out
    }

    /// A Mermaid flowchart (left to right), for docs: CAs as stadiums, kubeconfigs as
    /// subroutines, an edge from each CA to what it signed.
    pub fn to_mermaid(&self, at: OffsetDateTime) -> String {
        let mut out = String::from("flowchart LR\n");
        let mut next = 0usize;
        for root in self.roots.iter().chain(&self.service_account) {
            mermaid_node(&mut out, root, None, at, &mut next);
        }
        out
    }

    /// Indented text: each CA, and under it with box-drawing branches what it signed, with the
    /// time left, NotAfter, and (with `style.bars`) an expiry bar of the lifetime left.
    pub fn to_text(&self, at: OffsetDateTime, style: TextStyle) -> String {
        if self.roots.is_empty() && self.service_account.is_none() {
            return "no certificates found\n".into();
        }
        let mut lines: Vec<(String, Option<&TreeNode>)> = Vec::new();
        for root in self.roots.iter().chain(&self.service_account) {
            lines.push((root.name.clone(), Some(root)));
            let n = root.children.len();
            for (i, c) in root.children.iter().enumerate() {
                let branch = if i + 1 == n { "└── " } else { "├── " };
                lines.push((format!("{branch}{}", c.name), Some(c)));
            }
            lines.push((String::new(), None));
        }
        lines.pop();
        let width = lines.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0);
        let mut out = String::new();
        for (label, node) in lines {
            let Some(node) = node else {
                out.push('\n');
                continue;
            };
            let mut line = format!("{label:<width$}");
            if node.kind.is_group() {
                line = label;
            } else if node.kind == NodeKind::ServiceAccountKeys {
                let _ = write!(line, "  {}  {}", node.subject, node.note.as_deref().unwrap_or_default());
            } else if let Some((_, not_after)) = node.validity {
                let left = (not_after - at).whole_seconds();
                let residual = if left < 0 {
                    format!("expired {} ago", short_human_duration(-left))
                } else {
                    short_human_duration(left)
                };
                let share = node.remaining(at).unwrap_or(0.0);
                if style.bars {
                    let bar = bar(share, style.bar_width);
                    let _ = write!(line, "  {}", paint(&bar, share, left, style.color));
                }
                let residual = format!("{residual:>6}");
                let _ = write!(line, "  {}  {}", paint(&residual, share, left, style.color), date(not_after));
            } else if let Some(note) = &node.note {
                let _ = write!(line, "  {note}");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The node of the service-account keys: kid and algorithm (or why `sa.key` was not read) as
/// the subject, what `sa.pub` trusts as the note.
fn service_account_node(keys: &SaKeys) -> TreeNode {
    let subject = match (&keys.signing, keys.signing_key()) {
        (_, Some(key)) => format!("kid {}, {}", key.key_id(), key.algorithm()),
        (SigningKey::NotReadable, None) => "sa.key not readable by this user".to_owned(),
        (SigningKey::Missing, None) => "sa.key missing".to_owned(),
        (SigningKey::Invalid(why), None) => format!("sa.key unusable: {why}"),
        (SigningKey::Read(_), None) => String::new(),
    };
    let note = match (&keys.trusted, keys.signing_key_trusted()) {
        (TrustedKeys::Read(set), trusted) => {
            let n = set.keys.len();
            let keys = if n == 1 { "1 public key".to_owned() } else { format!("{n} public keys") };
            match trusted {
                Some(true) => format!("sa.pub trusts {keys}; sa.key is trusted"),
                Some(false) => format!("sa.pub trusts {keys}; sa.key is NOT trusted: tokens it signs do not verify"),
                None => format!("sa.pub trusts {keys}"),
            }
        }
        (TrustedKeys::NotReadable, _) => "sa.pub not readable by this user".to_owned(),
        (TrustedKeys::Missing, _) => "sa.pub missing".to_owned(),
        (TrustedKeys::Invalid(why), _) => format!("sa.pub unusable: {why}"),
    };
    TreeNode {
        name: "sa.key / sa.pub".into(),
        kind: NodeKind::ServiceAccountKeys,
        location: keys.key_path.display().to_string(),
        subject,
        validity: None,
        note: Some(note),
        children: Vec::new(),
    }
}

/// How [`Tree::to_text`] draws.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct TextStyle {
    /// Draw an expiry bar per certificate.
    pub bars: bool,
    /// Colour by urgency (ANSI).
    pub color: bool,
    /// Bar width in cells.
    pub bar_width: usize,
}

impl TextStyle {
    /// Plain text: no bars, no colour (for pipes and files).
    pub fn plain() -> Self {
        Self { bars: false, color: false, bar_width: 20 }
    }

    /// For a terminal: bars, coloured unless `color` is false (`NO_COLOR`).
    pub fn terminal(color: bool) -> Self {
        Self { bars: true, color, bar_width: 20 }
    }
}

/// A bar of `width` cells, filled by the share of the lifetime left.
pub fn bar(share: f64, width: usize) -> String {
    let filled = ((share.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

fn paint(s: &str, share: f64, seconds_left: i64, color: bool) -> String {
    if !color {
        return s.to_owned();
    }
    let tone = if seconds_left < 7 * 86400 {
        Tone::Critical
    } else if seconds_left < 30 * 86400 || share < 0.2 {
        Tone::Warning
    } else {
        Tone::Good
    };
    tone.paint(s)
}

fn date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// The lines of a node's label: name, subject, expiry.
fn label_lines(node: &TreeNode, at: OffsetDateTime) -> Vec<String> {
    let mut lines = vec![node.name.clone()];
    if !node.subject.is_empty() {
        lines.push(node.subject.clone());
    }
    if let Some((_, not_after)) = node.validity {
        let left = (not_after - at).whole_seconds();
        lines.push(if left < 0 {
            format!("expired {}", date(not_after))
        } else {
            format!("expires {} ({})", date(not_after), short_human_duration(left))
        });
    }
    if let Some(note) = &node.note {
        lines.push(note.clone());
    }
    lines
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ")
}

fn fill(node: &TreeNode, at: OffsetDateTime) -> &'static str {
    match (node.validity, node.remaining(at)) {
        (Some((_, na)), Some(share)) => {
            let left = (na - at).whole_seconds();
            if left < 7 * 86400 {
                "#f4b6b6"
            } else if left < 30 * 86400 || share < 0.2 {
                "#f9e0a8"
            } else {
                "#cdebc5"
            }
        }
        _ => "#e0e0e0",
    }
}

fn dot_node(out: &mut String, node: &TreeNode, parent: Option<usize>, at: OffsetDateTime, next: &mut usize) {
    let id = *next;
    *next += 1;
    let label = label_lines(node, at).iter().map(|l| dot_escape(l)).collect::<Vec<_>>().join("\\n");
    let shape = match node.kind {
        NodeKind::Ca => "shape=box, style=\"rounded,filled,bold\"",
        NodeKind::Kubeconfig => "shape=note, style=filled",
        NodeKind::Unlinked | NodeKind::Unreadable => "shape=plaintext, style=filled",
        NodeKind::Leaf | NodeKind::Kubelet | NodeKind::Other => "shape=box, style=filled",
        NodeKind::ServiceAccountKeys => "shape=component, style=filled",
    };
    let _ = writeln!(out, "  n{id} [label=\"{label}\", {shape}, fillcolor=\"{}\"];", fill(node, at));
    if let Some(p) = parent {
        let style = if node.kind.is_group() { " [style=invis]" } else { "" };
        let _ = writeln!(out, "  n{p} -> n{id}{style};");
    }
    for c in &node.children {
        // What sits under the unlinked group is not signed by it: no edge, only grouping.
        let parent = if node.kind.is_group() { None } else { Some(id) };
        dot_node(out, c, parent, at, next);
    }
}

fn mermaid_escape(s: &str) -> String {
    s.replace('&', "#amp;").replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;")
}

fn mermaid_node(out: &mut String, node: &TreeNode, parent: Option<usize>, at: OffsetDateTime, next: &mut usize) {
    let id = *next;
    *next += 1;
    let label = label_lines(node, at).iter().map(|l| mermaid_escape(l)).collect::<Vec<_>>().join("<br/>");
    let (open, close) = match node.kind {
        NodeKind::Ca => ("([", "])"),
        NodeKind::Kubeconfig => ("[[", "]]"),
        NodeKind::Unlinked | NodeKind::Unreadable => ("{{", "}}"),
        NodeKind::Leaf | NodeKind::Kubelet | NodeKind::Other => ("[", "]"),
        NodeKind::ServiceAccountKeys => ("[/", "/]"),
    };
    let _ = writeln!(out, "  n{id}{open}\"{label}\"{close}");
    if let Some(p) = parent {
        let _ = writeln!(out, "  n{p} --> n{id}");
    }
    for c in &node.children {
        let parent = if node.kind.is_group() { None } else { Some(id) };
        mermaid_node(out, c, parent, at, next);
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn leaf(name: &str, kind: NodeKind) -> TreeNode {
        TreeNode {
            name: name.into(),
            kind,
            location: format!("/pki/{name}.crt"),
            subject: format!("CN={name}"),
            validity: Some((datetime!(2025-01-01 0:00 UTC), datetime!(2026-01-01 0:00 UTC))),
            note: None,
            children: Vec::new(),
        }
    }

    fn sample() -> Tree {
        let mut ca = leaf("ca", NodeKind::Ca);
        ca.validity = Some((datetime!(2025-01-01 0:00 UTC), datetime!(2035-01-01 0:00 UTC)));
        ca.children = vec![leaf("apiserver", NodeKind::Leaf), leaf("admin.conf", NodeKind::Kubeconfig)];
        let mut unlinked = leaf("not signed by a cert dir CA", NodeKind::Unlinked);
        unlinked.validity = None;
        unlinked.children = vec![leaf("kubelet.crt", NodeKind::Kubelet)];
        Tree { roots: vec![ca, unlinked], service_account: None }
    }

    #[test]
    fn bars_fill_with_the_lifetime_left() {
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.5, 4), "██░░");
        assert_eq!(bar(0.0, 4), "░░░░");
        assert_eq!(bar(-3.0, 4), "░░░░");
    }

    #[test]
    fn text_draws_branches_and_bars_only_when_asked() {
        let at = datetime!(2025-07-02 12:00 UTC);
        let plain = sample().to_text(at, TextStyle::plain());
        assert!(plain.contains("├── apiserver"), "{plain}");
        assert!(plain.contains("└── admin.conf"), "{plain}");
        assert!(plain.contains("2026-01-01"), "{plain}");
        assert!(!plain.contains('█') && !plain.contains('\x1b'), "{plain}");
        let tty = sample().to_text(at, TextStyle::terminal(false));
        assert!(tty.contains("██████████░░░░░░░░░░"), "{tty}");
        assert!(!tty.contains('\x1b'));
        let coloured = sample().to_text(at, TextStyle::terminal(true));
        assert!(coloured.contains("\x1b[32m"), "{coloured}");
        // Colour does not change the layout: without the escapes, the text is the uncoloured one.
        let stripped = coloured.replace("\x1b[32m", "").replace("\x1b[33m", "").replace("\x1b[0m", "");
        assert_eq!(stripped, tty);
    }

    #[test]
    fn dot_has_an_edge_per_signature_and_none_from_the_unlinked_group() {
        let dot = sample().to_dot(datetime!(2025-07-02 12:00 UTC));
        assert!(dot.contains("n0 -> n1;") && dot.contains("n0 -> n2;"), "{dot}");
        assert_eq!(dot.matches("->").count(), 2, "{dot}");
        assert!(dot.contains("n4 [label=\"kubelet.crt\\nCN=kubelet.crt"), "{dot}");
    }

    #[test]
    fn mermaid_escapes_quotes() {
        let mut t = sample();
        t.roots[0].children[0].subject = "CN=\"quoted\" <x>".into();
        let m = t.to_mermaid(datetime!(2025-07-02 12:00 UTC));
        assert!(m.starts_with("flowchart LR\n"));
        assert!(m.contains("CN=#quot;quoted#quot; #lt;x#gt;"), "{m}");
        assert!(m.contains("n0 --> n1") && m.contains("n0 --> n2"), "{m}");
        assert_eq!(m.matches("-->").count(), 2, "{m}");
    }
}
