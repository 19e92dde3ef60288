//! `kubepki kubeconfig`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use kubepki_pki::{
    AltNames, CaKind, CertRequest, CertificateAuthority, ClusterConfig, Endpoint, KubeadmConfig, Kubeconfig, PkiDir,
    Subject, Usage, node,
};

use crate::cluster_flags::{ClusterFlags, EndpointFlags, KubeconfigDirFlags, SignerFlags};
use crate::exit::{INPUT, coded};

/// `kubepki kubeconfig`.
#[derive(Args, Debug)]
pub(crate) struct KubeconfigArgs {
    #[command(subcommand)]
    command: KubeconfigCommand,
}

#[derive(Debug, Subcommand)]
enum KubeconfigCommand {
    /// Print a kubeconfig for a user, signed by the cluster CA (like `kubeadm kubeconfig user`).
    ///
    /// The cluster's name and server are those of the kubeconfig dir's admin.conf (its current
    /// context's cluster), unless --cluster-name, --control-plane-endpoint,
    /// --apiserver-advertise-address or --config give them; without admin.conf nor those, the
    /// server is this host's default-route address, said on stderr. admin.conf must trust the
    /// cert dir's CA; the kubeconfig's CA data is the cert dir's CA file.
    User {
        #[command(flatten)]
        signer: SignerFlags,
        #[command(flatten)]
        kubeconfigs: KubeconfigDirFlags,
        #[command(flatten)]
        endpoint: EndpointFlags,
        /// The user name (the client certificate's CN).
        #[arg(long, value_name = "NAME")]
        client_name: String,
        /// A group (an O of the client certificate); repeat it for each group. Go writes the
        /// groups in one RDN sorted as DER sorts a set (shorter names first), and so does kubepki.
        #[arg(long = "org", value_name = "GROUP")]
        orgs: Vec<String>,
        /// The client certificate's validity [default: --cert-validity, 8760h].
        #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
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
    let KubeconfigCommand::User {
        signer,
        kubeconfigs,
        endpoint,
        client_name,
        orgs,
        validity,
        allow_insecure_permissions,
        output,
    } = &args.command;
    // The SAN flags are not this command's: a kubeconfig's client certificate has none.
    let cluster = &ClusterFlags {
        signer: signer.clone(),
        kubeconfigs: kubeconfigs.clone(),
        endpoint: endpoint.clone(),
        ..ClusterFlags::default()
    };
    if client_name.trim().is_empty() {
        anyhow::bail!(coded(INPUT, anyhow::anyhow!("--client-name must not be empty")));
    }
    let target = Target::resolve(cluster)?;
    let cfg = &target.cfg;
    let pki = PkiDir::new(&cfg.cert_dir).allow_insecure_permissions(*allow_insecure_permissions);
    let ca = pki.load_ca(CaKind::Ca)?.ok_or_else(|| kubepki_pki::Error::Missing {
        path: pki.cert_path("ca"),
        what: "the cluster CA",
        fix: "run `kubepki init` first, or pass the cluster's --cert-dir".into(),
    })?;
    let (cluster_name, server) = target.cluster(&ca)?;
    let lifetime = match validity {
        Some(v) => v.parse().context("--validity")?,
        None => cfg.cert_validity,
    };
    let request = CertRequest {
        subject: Subject::new(client_name.as_str(), orgs.iter().map(String::as_str)),
        sans: AltNames::new(),
        usage: Usage::Client,
    };
    let kc = node::user_kubeconfig(
        &ca,
        &cluster_name,
        &server,
        &request,
        cfg.encryption_algorithm,
        kubepki_pki::Validity::starting_at(time::OffsetDateTime::now_utc(), lifetime),
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

/// The cluster a user kubeconfig is for: what the flags and `--config` say, the rest from the
/// kubeconfig dir's admin.conf, and this host's address only when neither names a server.
struct Target {
    cfg: ClusterConfig,
    /// admin.conf, when it is read: it describes what the flags and the file leave open.
    admin: Option<(PathBuf, Kubeconfig)>,
    /// The flags or the file name the API server (an endpoint or an advertise address).
    server_given: bool,
    /// The flags or the file name the cluster.
    name_given: bool,
}

impl Target {
    fn resolve(flags: &ClusterFlags) -> Result<Self> {
        let file = flags.kubeadm_file()?;
        let in_file = |f: fn(&KubeadmConfig) -> bool| file.as_ref().is_some_and(f);
        let server_given = flags.endpoint.control_plane_endpoint.is_some()
            || flags.endpoint.apiserver_advertise_address.is_some()
            || in_file(|k| k.control_plane_endpoint.is_some() || k.advertise_address.is_some());
        let name_given = flags.endpoint.cluster_name.is_some() || in_file(|k| k.cluster_name.is_some());
        let (_, kubeconfig_dir) = flags.dirs()?;
        let path = kubeconfig_dir.join("admin.conf");
        let admin = match server_given && name_given {
            true => None,
            false => Kubeconfig::read(&path)?.map(|kc| (path, kc)),
        };
        // This host's address is the server only when nothing else names one.
        let cfg = if server_given || admin.is_some() { flags.resolve_without_host()? } else { flags.resolve()? };
        Ok(Self { cfg, admin, server_given, name_given })
    }

    /// The cluster's name and server URL. admin.conf, when it is used, must trust `ca`.
    fn cluster(&self, ca: &CertificateAuthority) -> Result<(String, String)> {
        let Some((path, admin)) = &self.admin else {
            let server = self.cfg.server_url(Endpoint::ControlPlane)?;
            if !self.server_given {
                eprintln!(
                    "kubepki: the kubeconfig's server {server} is this host's address (its default route): {} does \
                     not exist, and no --control-plane-endpoint, --apiserver-advertise-address or --config names \
                     the API server",
                    self.cfg.kubeconfig_dir.join("admin.conf").display()
                );
            }
            return Ok((self.cfg.cluster_name.clone(), server));
        };
        let current = admin.current()?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        match admin.cluster_ca_certificates(&current.cluster, base_dir)? {
            Some(certs) if certs.iter().any(|c| c == &ca.cert) => {}
            Some(_) => anyhow::bail!(coded(
                INPUT,
                anyhow::anyhow!(
                    "{}: its cluster {:?} does not trust {} (its certificate-authority-data is another CA): it is \
                     another cluster's admin.conf, or the cert dir is not this cluster's; pass this cluster's \
                     --cert-dir and --kubeconfig-dir, or --cluster-name and --control-plane-endpoint so that \
                     admin.conf is not read",
                    path.display(),
                    current.cluster,
                    ca.cert_path.display()
                )
            )),
            None => eprintln!(
                "kubepki: warning: {}: its cluster {:?} names no CA, so it cannot be checked to be this cluster's",
                path.display(),
                current.cluster
            ),
        }
        let name = if self.name_given { self.cfg.cluster_name.clone() } else { current.cluster.clone() };
        let server = match (self.server_given, admin.server(&current.cluster).filter(|s| !s.is_empty())) {
            (true, _) => self.cfg.server_url(Endpoint::ControlPlane)?,
            (false, Some(server)) => server.to_owned(),
            (false, None) => anyhow::bail!(coded(
                INPUT,
                anyhow::anyhow!(
                    "{}: its cluster {:?} has no server; pass --control-plane-endpoint",
                    path.display(),
                    current.cluster
                )
            )),
        };
        Ok((name, server))
    }
}
