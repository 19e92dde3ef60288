//! `kubepki tree`: the PKI as a tree — CA → leaves → kubeconfigs.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use kubepki_rotator::inventory::{InventoryBuilder, Sources};
use kubepki_rotator::tree::{TextStyle, Tree, TreeNode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::output;
use crate::source_flags::SourceFlags;

const AFTER_HELP: &str = "\
Reads what `kubepki check` reads: the cert dir, every *.conf of the kubeconfig dir, $KUBECONFIG
and ~/.kube/config, and the kubelet PKI dir (defaults that do not exist are skipped), plus each
--kubeconfig. On a terminal each certificate gets a bar of the
lifetime it has left (coloured unless NO_COLOR is set); piped, the text is plain.
`-o dot | dot -Tsvg > pki.svg` draws it with Graphviz; `-o mermaid` goes into Markdown docs.
Exit codes: 0 drawn · 1 an input could not be read (what could be read is still drawn).";

/// `-o` for `kubepki tree`.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, ValueEnum)]
pub(crate) enum TreeFormat {
    /// Indented text with box-drawing branches (expiry bars on a terminal).
    #[default]
    #[value(alias = "table")]
    Text,
    /// The tree as nested JSON objects.
    Json,
    /// Graphviz dot.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

/// `kubepki tree`.
#[derive(Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct TreeArgs {
    /// The cert dir in kubeadm's layout [default: /etc/kubernetes/pki].
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// A directory of kubeconfigs: every *.conf in it [default: /etc/kubernetes].
    #[arg(long, value_name = "DIR")]
    kubeconfig_dir: Option<PathBuf>,
    /// Another kubeconfig file to include (repeatable).
    #[arg(long = "kubeconfig", value_name = "FILE")]
    kubeconfigs: Vec<PathBuf>,
    /// The kubelet's PKI dir [default: /var/lib/kubelet/pki].
    #[arg(long, value_name = "DIR")]
    kubelet_pki_dir: Option<PathBuf>,
    /// Read only the sources named on the command line (no default locations).
    #[arg(long)]
    no_defaults: bool,
    /// Draw as of this time: RFC 3339, a date, or relative to now (+90d, -12h).
    #[arg(long, value_name = "TIME", default_value = "now", allow_hyphen_values = true)]
    at: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: TreeFormat,
}

impl TreeArgs {
    /// The sources `check` reads from the same flags ($KUBECONFIG and ~/.kube/config too).
    fn sources(&self) -> Sources {
        SourceFlags {
            cert_dir: self.cert_dir.as_deref(),
            kubeconfig_dir: self.kubeconfig_dir.as_deref(),
            kubeconfigs: &self.kubeconfigs,
            kubelet_pki_dir: self.kubelet_pki_dir.as_deref(),
            no_defaults: self.no_defaults,
            root: None,
        }
        .sources()
    }
}

pub(crate) fn run(args: &TreeArgs) -> Result<ExitCode> {
    let at = kubepki_rotator::text::parse_time(&args.at, OffsetDateTime::now_utc())
        .map_err(|e| crate::exit::coded(crate::exit::INPUT, e))?;
    let inventory = InventoryBuilder::discover(&args.sources()).finish();
    let tree = Tree::build(&inventory);
    let text = match args.output {
        TreeFormat::Text => {
            // Bars on a terminal even without colour; none in a pipe.
            let style = if std::io::stdout().is_terminal() {
                TextStyle::terminal(output::colour())
            } else {
                TextStyle::plain()
            };
            tree.to_text(at, style)
        }
        TreeFormat::Json => {
            let doc = json!({
                "at": output::rfc3339(at),
                "roots": tree.roots.iter().map(node_json).collect::<Vec<_>>(),
                "serviceAccountKeys": tree.service_account.as_ref().map(node_json),
            });
            let mut s = serde_json::to_string_pretty(&doc).context("cannot render the tree")?;
            s.push('\n');
            s
        }
        TreeFormat::Dot => tree.to_dot(at),
        TreeFormat::Mermaid => tree.to_mermaid(at),
    };
    let mut out = std::io::stdout().lock();
    // A reader that stopped early (`| head`) ends the run quietly with 141 (exit::report).
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("cannot write to standard output")?;
    for e in &inventory.errors {
        eprintln!("error: {e}");
    }
    for w in &inventory.warnings {
        eprintln!("warning: {w}");
    }
    Ok(if inventory.has_unreadable_input() { ExitCode::from(crate::exit::FAILURE) } else { ExitCode::SUCCESS })
}

fn node_json(n: &TreeNode) -> Value {
    json!({
        "name": n.name,
        "kind": n.kind.as_str(),
        "location": n.location,
        "subject": n.subject,
        "notBefore": n.validity.map(|(nb, _)| output::rfc3339(nb)),
        "notAfter": n.validity.map(|(_, na)| output::rfc3339(na)),
        "note": n.note,
        "children": n.children.iter().map(node_json).collect::<Vec<_>>(),
    })
}
