//! `kubepki kubeconfig`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use kubepki_pki::profile::Endpoint;
use kubepki_pki::{AltNames, CaKind, CertRequest, PkiDir, Subject, Usage, node};

use crate::cluster_flags::ClusterFlags;

/// `kubepki kubeconfig`.
#[derive(Args, Debug)]
pub(crate) struct KubeconfigArgs {
    #[command(subcommand)]
    command: KubeconfigCommand,
}

#[derive(Debug, Subcommand)]
enum KubeconfigCommand {
    /// Print a kubeconfig for a user, signed by the cluster CA (like `kubeadm kubeconfig user`).
    User {
        #[command(flatten)]
        cluster: ClusterFlags,
        /// The user name (the client certificate's CN).
        #[arg(long, value_name = "NAME")]
        client_name: String,
        /// A group (the client certificate's O); at most two.
        #[arg(long = "org", value_name = "GROUP")]
        orgs: Vec<String>,
        /// The client certificate's validity [default: --cert-validity, 8760h].
        #[arg(long, value_name = "DURATION")]
        validity: Option<String>,
        /// Accept a CA key readable by group or others.
        #[arg(long)]
        allow_insecure_permissions: bool,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: KubeconfigFormat,
    },
}

/// `-o` for `kubepki kubeconfig user`: the kubeconfig as YAML (as kubeadm prints it) or JSON
/// (which kubectl reads as well).
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, ValueEnum)]
enum KubeconfigFormat {
    /// YAML.
    #[default]
    Yaml,
    /// JSON.
    Json,
}

pub(crate) fn run(args: &KubeconfigArgs) -> Result<ExitCode> {
    let KubeconfigCommand::User { cluster, client_name, orgs, validity, allow_insecure_permissions, output } =
        &args.command;
    let cfg = cluster.resolve()?;
    let pki = PkiDir::new(&cfg.cert_dir).allow_insecure_permissions(*allow_insecure_permissions);
    let ca = pki
        .load_ca(CaKind::Ca)?
        .with_context(|| format!("no cluster CA at {} (run `kubepki init` first)", pki.cert_path("ca").display()))?;
    let lifetime = match validity {
        Some(v) => v.parse().context("--validity")?,
        None => cfg.cert_validity,
    };
    if client_name.trim().is_empty() {
        anyhow::bail!(crate::exit::coded(crate::exit::INPUT, anyhow::anyhow!("--client-name must not be empty")));
    }
    let request = CertRequest {
        subject: Subject::new(client_name.as_str(), orgs.iter().map(String::as_str)),
        sans: AltNames::new(),
        usage: Usage::Client,
    };
    let server = cfg.server_url(Endpoint::ControlPlane)?;
    let kc = node::user_kubeconfig(
        &ca,
        &cfg.cluster_name,
        &server,
        &request,
        cfg.encryption_algorithm,
        lifetime,
        time::OffsetDateTime::now_utc(),
    )?;
    let yaml = kc.to_yaml();
    match output {
        KubeconfigFormat::Yaml => print!("{}", *yaml),
        KubeconfigFormat::Json => {
            let doc: serde_json::Value = serde_saphyr::from_str(&yaml).context("cannot render the kubeconfig")?;
            crate::output::print_json(&doc)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
