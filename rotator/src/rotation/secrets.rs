//! The Secrets of a `RotationConfiguration`, brought in step over one API client, and put back
//! when the run is rolled back.

use std::path::Path;
use std::time::Duration;

use crate::error::Result;
use crate::rotation::execute::Execution;
use crate::rotation::secret_sink::{self, DesiredSecret, RotationConfig, SecretTarget, Synced};
use crate::rotation::targets::{Cas, Discovery};

/// How long connecting to the API and each of its answers may take.
const API_TIMEOUT: Duration = Duration::from_secs(15);

/// One Secret of the configuration and what was done to it.
#[derive(Clone, Debug)]
pub struct SecretSynced {
    /// The target.
    pub target: SecretTarget,
    /// What changed (`None`: it was already in step); in a dry run, what would.
    pub change: Option<Synced>,
}

impl SecretSynced {
    /// What was done, in words: `in step`, `created`, `updated` (in a dry run `would create`,
    /// `would update`).
    pub fn action(&self, dry_run: bool) -> &'static str {
        match (&self.change, dry_run) {
            (None, _) => "in step",
            (Some(d), true) if d.created => "would create",
            (Some(_), true) => "would update",
            (Some(d), false) if d.created => "created",
            (Some(_), false) => "updated",
        }
    }
}

/// A session with the API that brings Secrets in step and can undo what it did.
pub struct SecretsSync {
    runtime: &'static tokio::runtime::Runtime,
    client: kube::Client,
    results: Vec<SecretSynced>,
    dry_run: bool,
}

impl std::fmt::Debug for SecretsSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsSync").field("results", &self.results).field("dry_run", &self.dry_run).finish()
    }
}

impl SecretsSync {
    /// A client for the configuration's `kubeconfig` and `context` (or as
    /// [`crate::inventory::secrets::client`] finds one). Blocking: call it from synchronous code.
    pub fn connect(config: &RotationConfig, dry_run: bool) -> Result<Self> {
        let runtime = crate::runtime::shared()?;
        let kubeconfig = config.kubeconfig.as_deref().map(Path::new);
        let client = runtime.block_on(secret_sink::client_for(kubeconfig, config.context.as_deref(), API_TIMEOUT))?;
        Ok(Self { runtime, client, results: Vec::new(), dry_run })
    }

    /// Brings each of `targets` in step with its source's certificate, key and CA bundle: the
    /// renewed ones of `execution`, else those in use. Stops at the first Secret that cannot be;
    /// what was done before it stays recorded, for [`Self::undo`].
    pub fn sync(
        &mut self,
        targets: &[SecretTarget],
        discovery: &Discovery,
        cas: &Cas,
        execution: Option<&Execution>,
    ) -> Result<()> {
        for target in targets {
            // Sources are checked against the discovery before anything is written.
            let Some(source) = discovery.targets.iter().find(|t| t.name == target.source) else { continue };
            let renewed = execution.and_then(|o| o.renewed.iter().find(|r| r.name == target.source));
            let (cert_pem, key_pem) = match renewed {
                Some(r) => (r.new.to_pem(), r.key_pem.clone()),
                None => (source.cert.to_pem(), source.key.to_pem()),
            };
            let ca_pem = cas.get(source.ca).map(|c| c.bundle_pem()).unwrap_or_default();
            let desired = DesiredSecret { target, cert_pem, key_pem, ca_pem };
            let change = self.runtime.block_on(secret_sink::sync_one(&self.client, &desired, self.dry_run))?;
            self.results.push(SecretSynced { target: target.clone(), change });
        }
        Ok(())
    }

    /// Whether any Secret was written.
    pub fn changed_any(&self) -> bool {
        !self.dry_run && self.results.iter().any(|r| r.change.is_some())
    }

    /// Puts back what was changed; returns what could not be.
    pub fn undo(&self) -> Vec<crate::Error> {
        if self.dry_run {
            return Vec::new();
        }
        let synced: Vec<Synced> = self.results.iter().filter_map(|r| r.change.clone()).collect();
        self.runtime.block_on(secret_sink::undo(&self.client, &synced))
    }

    /// Each Secret and what was done to it.
    pub fn into_results(self) -> Vec<SecretSynced> {
        self.results
    }
}
