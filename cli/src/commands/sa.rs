//! `kubepki sa`: service-account key utilities.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use kubepki_pki::fsio;
use kubepki_pki::sa::PublicKeySet;

use crate::output::{self, Format};

/// `kubepki sa`.
#[derive(Args, Debug)]
pub(crate) struct SaArgs {
    #[command(subcommand)]
    command: SaCommand,
}

#[derive(Debug, Subcommand)]
enum SaCommand {
    /// Print the JSON Web Key Set (RFC 7517) of sa.pub (or FILE): each key with the kid
    /// kube-apiserver puts in the tokens it signs, use sig and alg (RS256, ES256, ES384, ES512).
    Jwks {
        /// A PEM file of public keys, private keys or certificates [default: <cert dir>/sa.pub].
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// The cert dir.
        #[arg(long, value_name = "DIR", default_value = kubepki_pki::paths::CERT_DIR)]
        cert_dir: PathBuf,
        /// Output format: the JWKS (json), or one line per key (table).
        #[arg(short, long, value_enum, default_value = "json")]
        output: Format,
    },
}

pub(crate) fn run(args: &SaArgs) -> Result<ExitCode> {
    match &args.command {
        SaCommand::Jwks { file, cert_dir, output } => {
            let path = file.clone().unwrap_or_else(|| cert_dir.join("sa.pub"));
            let bytes = fsio::read_required(&path, fsio::MAX_PEM_FILE, "service-account public keys")
                .with_context(|| format!("reading {}", path.display()))?;
            let set = PublicKeySet::parse(&bytes, &path.display().to_string())?;
            for why in &set.ignored {
                eprintln!("kubepki: {}: skipped {why} (kube-apiserver skips it too)", path.display());
            }
            match output {
                Format::Json => output::print_json(&set.to_jwks())?,
                Format::Table => {
                    let mut rows = vec![vec!["KID".to_owned(), "ALG".to_owned(), "KEY".to_owned()]];
                    for key in &set.keys {
                        rows.push(vec![
                            key.key_id(),
                            key.algorithm().jws_algorithm().into(),
                            key.algorithm().to_string(),
                        ]);
                    }
                    print!("{}", output::table(&rows));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
