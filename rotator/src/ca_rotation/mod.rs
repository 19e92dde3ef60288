//! Phased CA rotation with an overlap bundle: prepare → trust → reissue → retire.
//!
//! | phase | what changes | signing CA | trusted |
//! | --- | --- | --- | --- |
//! | `prepare` | a new CA is made in the staging area; nothing live | old | old |
//! | `trust` | every trust point gets the bundle old + new | old | old, new |
//! | `reissue` | the new CA becomes the signer; every leaf and kubeconfig client certificate it signs is reissued with a new key | new | new, old |
//! | `retire` | the old CA leaves every bundle, once nothing in use chains to it | new | new |
//!
//! The state lives in the cert dir's state dir, `<cert dir>/../tmp/kubepki/<cert dir
//! name>/ca-rotation/<ca>/` (0700), outside the cert dir and kubeconfig dir: `state.json`,
//! the staged new CA, the retired old CA, and a backup per phase, so the procedure can be
//! resumed, repeated (each phase is idempotent) and aborted back to the last consistent
//! phase. Every path in the state is absolute (the cert dir and kubeconfig dir canonical), so
//! every phase works from any working directory. Each CA (`ca`, `front-proxy-ca`, `etcd-ca`)
//! rotates on its own.

use std::path::{Path, PathBuf};

use kubepki_pki::fsio::{self, Transaction};
use kubepki_pki::{
    CERT_MODE, CaKind, Certificate, CertificateAuthority, KeyAlgorithm, Kubeconfig, Lifetime, PemSource, PkiDir,
    SigningCa,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::rotation::backup::{self, Backup};
use crate::rotation::execute::{self, ExecuteOptions, Execution};
use crate::rotation::phases::{self, STATE_FILE, now_rfc3339};
use crate::rotation::plan::{self, PlanOptions};
use crate::rotation::targets::{self, Cas};

pub use crate::rotation::phases::{Phase, PhaseRecord};

/// The recorded state of one CA's rotation.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The CA (`ca`, `front-proxy-ca`, `etcd-ca`).
    pub ca: String,
    /// The cert dir, canonical, as `prepare` found it (absent in the state of an older kubepki).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_dir: Option<PathBuf>,
    /// The kubeconfig dir, canonical, as `prepare` found it: the kubeconfigs kept in step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_dir: Option<PathBuf>,
    /// The last completed phase.
    pub phase: Phase,
    /// SHA-256 fingerprint of the CA being replaced.
    pub old_fingerprint: String,
    /// SHA-256 fingerprint of the new CA.
    pub new_fingerprint: String,
    /// Every completed phase, in order.
    pub history: Vec<PhaseRecord>,
}

/// What a phase did and what must happen next.
#[derive(Clone, Debug, Default)]
pub struct PhaseReport {
    /// Files written.
    pub written: Vec<PathBuf>,
    /// Certificates reissued (reissue).
    pub reissued: Vec<String>,
    /// What must also be restarted or updated beyond this node's components (other nodes,
    /// pods, people), each a sentence.
    pub elsewhere: Vec<String>,
    /// Notes.
    pub notes: Vec<String>,
}

/// A CA rotation of one cert dir.
#[derive(Clone, Debug)]
pub struct CaRotation {
    ca: CaKind,
    cert_dir: PathBuf,
    kubeconfig_dir: PathBuf,
    kubeconfigs: Vec<PathBuf>,
    dir: PathBuf,
}

/// Where a CA rotation keeps its state: `ca-rotation/<ca>` in the cert dir's state dir
/// (`/etc/kubernetes/tmp/kubepki/pki/ca-rotation/<ca>`), outside the cert dir and the
/// kubeconfig dir, which stay kubeadm's. A rotation an earlier kubepki started keeps the place
/// it has, `<parent of the cert dir>/kubepki-ca-rotation/<ca>`, until it ends.
pub fn state_dir(cert_dir: &Path, ca: CaKind) -> PathBuf {
    let parent = cert_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let earlier = parent.join("kubepki-ca-rotation").join(ca.name());
    if earlier.join(STATE_FILE).exists() {
        return earlier;
    }
    kubepki_pki::lock::state_dir(cert_dir).join("ca-rotation").join(ca.name())
}

fn phase_error(ca: CaKind, reason: String) -> Error {
    Error::CaRotation { ca: ca.name().into(), reason }
}

/// What reads a CA's bundle beyond this node's components (whose restarts
/// [`crate::rotation::restart::restarts`] derives from the files a phase wrote): other nodes, pods,
/// aggregated API servers.
pub fn trust_points(ca: CaKind) -> Vec<String> {
    match ca {
        CaKind::EtcdCa => vec![
            "every other control-plane node: run this phase there too, then restart its etcd member and API \
             server, one member at a time, each rejoined before the next"
                .into(),
        ],
        CaKind::Ca => vec![
            "kubelet on every other node: copy the new ca.crt to its clientCAFile, update kubelet.conf, restart the kubelet"
                .into(),
            "pods using in-cluster credentials: restart them once kube-root-ca.crt has the new bundle".into(),
        ],
        CaKind::FrontProxyCa => vec![
            "aggregated API servers: restart them (they read requestheader-client-ca-file from the \
             extension-apiserver-authentication ConfigMap)"
                .into(),
        ],
    }
}

/// What presents certificates of this CA beyond this node's components.
fn leaf_users(ca: CaKind) -> Vec<String> {
    match ca {
        CaKind::EtcdCa => vec!["every other control-plane node: run this phase there too".into()],
        CaKind::Ca => vec![
            "kubelet on every other node: a kubelet.conf with a certificate of the new CA, then restart the kubelet"
                .into(),
            "people and scripts: use the new admin.conf / super-admin.conf".into(),
        ],
        CaKind::FrontProxyCa => Vec::new(),
    }
}

impl CaRotation {
    /// The rotation of `ca` in `cert_dir`, whose kubeconfigs are `kubeconfigs` (those of
    /// `kubeconfig_dir` and any others). Every path is made absolute here, the directories
    /// canonical, so that the same rotation is found and recorded the same way from any
    /// working directory.
    pub fn new(cert_dir: &Path, kubeconfig_dir: &Path, kubeconfigs: Vec<PathBuf>, ca: CaKind) -> Result<Self> {
        let cert_dir = backup::resolve(cert_dir)?;
        let kubeconfigs = kubeconfigs
            .iter()
            .map(|k| match (k.parent(), k.file_name()) {
                // The file itself is not resolved: a kubeconfig that is a link stays one.
                (Some(dir), Some(name)) => Ok(backup::resolve(dir)?.join(name)),
                _ => backup::resolve(k),
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            ca,
            dir: state_dir(&cert_dir, ca),
            cert_dir,
            kubeconfig_dir: backup::resolve(kubeconfig_dir)?,
            kubeconfigs,
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The recorded state, if a rotation was started.
    ///
    /// A state written by an older kubepki, whose backup paths may be relative to the working
    /// directory of the phase that took them, is read with each backup resolved where kubepki
    /// always puts them (`<state dir>/backups/<phase>-<n>`), and completed with this cert dir
    /// and kubeconfig dir; the next phase saves it so. A state recorded for another cert dir (a
    /// tree moved or copied) is refused: its backups name files there.
    pub fn state(&self) -> Result<Option<State>> {
        let path = self.dir.join(STATE_FILE);
        let Some(mut state): Option<State> = phases::read_state(&self.dir, "CA rotation state")? else {
            return Ok(None);
        };
        let recorded = state.cert_dir.get_or_insert_with(|| self.cert_dir.clone());
        if *recorded != self.cert_dir {
            return Err(phase_error(
                self.ca,
                format!(
                    "{} records a rotation of the cert dir {}, not {} (was the tree moved or copied? its \
                     backups name files there): run rotate-ca with --cert-dir {}",
                    path.display(),
                    recorded.display(),
                    self.cert_dir.display(),
                    recorded.display()
                ),
            ));
        }
        state.kubeconfig_dir.get_or_insert_with(|| self.kubeconfig_dir.clone());
        for record in &mut state.history {
            for backup in record.backups.iter_mut().filter(|b| b.is_relative()) {
                let mut tail = backup.components().rev();
                if let (Some(name), Some(parent)) = (tail.next(), tail.next())
                    && parent.as_os_str() == "backups"
                {
                    *backup = self.dir.join("backups").join(name);
                }
            }
        }
        Ok(Some(state))
    }

    /// Refuses a phase that would keep other kubeconfigs in step than the rotation started with.
    fn same_kubeconfig_dir(&self, state: &State) -> Result<()> {
        match &state.kubeconfig_dir {
            Some(recorded) if *recorded != self.kubeconfig_dir => Err(phase_error(
                self.ca,
                format!(
                    "this rotation keeps the kubeconfigs of {} in step (recorded at prepare), not those of {}: \
                     run it with --kubeconfig-dir {}",
                    recorded.display(),
                    self.kubeconfig_dir.display(),
                    recorded.display()
                ),
            )),
            _ => Ok(()),
        }
    }

    fn save(&self, state: &State) -> Result<()> {
        phases::save_state(&self.dir, state)
    }

    fn pki(&self) -> PkiDir {
        PkiDir::new(&self.cert_dir)
    }

    /// The staging area, laid out as a cert dir (`<staging>/etcd/ca.crt` for etcd-ca).
    fn staging(&self) -> PkiDir {
        PkiDir::new(self.dir.join("new"))
    }

    fn live_ca(&self) -> Result<CertificateAuthority> {
        self.pki().load_ca(self.ca)?.ok_or_else(|| Error::Missing { path: self.pki().cert_path(self.ca.base_name()) })
    }

    fn staged_ca(&self) -> Result<CertificateAuthority> {
        self.staging()
            .load_ca(self.ca)?
            .ok_or_else(|| phase_error(self.ca, format!("the staged CA in {} is missing", self.dir.display())))
    }

    fn require(&self, want: Option<Phase>) -> Result<Option<State>> {
        let state = self.state()?;
        let have = state.as_ref().map(|s| s.phase);
        let ok = match (want, have) {
            (None, None) | (None, Some(Phase::Retired)) => true,
            (Some(w), Some(h)) => w == h,
            _ => false,
        };
        if !ok {
            let have = have.map_or("not started", Phase::as_str);
            let want = want.map_or("not started (or retired)", Phase::as_str);
            return Err(phase_error(self.ca, format!("this phase follows {want}, but the rotation is at: {have}")));
        }
        if let Some(s) = &state {
            self.same_kubeconfig_dir(s)?;
        }
        Ok(state)
    }

    fn record(&self, mut state: State, phase: Phase, backups: Vec<PathBuf>, written: Vec<PathBuf>) -> Result<State> {
        state.phase = phase;
        state.history.push(PhaseRecord { phase, time: now_rfc3339(), backups, written });
        self.save(&state)?;
        Ok(state)
    }

    /// A fresh backup directory for `phase`: `backups/<phase>-<n>`.
    fn backup_dir(&self, phase: Phase) -> PathBuf {
        phases::backup_dir(&self.dir, phase)
    }

    /// Phase 1: a new CA in the staging area, with the old CA's subject and algorithm and
    /// lifetime unless overridden; with `cross_sign`, also the new CA's key certified by the
    /// old CA (`cross-signed.crt`), for clients that can only be given one root. A repeat
    /// keeps the staged CA.
    pub fn prepare(
        &self,
        algorithm: Option<KeyAlgorithm>,
        lifetime: Option<Lifetime>,
        cross_sign: bool,
        now: OffsetDateTime,
    ) -> Result<PhaseReport> {
        let state = self.state()?;
        if let Some(s) = &state
            && s.phase == Phase::Prepared
        {
            return Ok(PhaseReport {
                notes: vec!["already prepared; the staged CA is kept".into()],
                ..PhaseReport::default()
            });
        }
        self.require(None)?;
        let old = self.live_ca()?;
        let old_key = old.key().ok_or_else(|| {
            phase_error(
                self.ca,
                format!("it is externally managed ({} is absent): kubepki cannot sign with it", old.key_path.display()),
            )
        })?;
        let algorithm = algorithm.unwrap_or(old_key.algorithm());
        let lifetime = lifetime
            .or_else(|| kubepki_pki::original_lifetime(old.cert.not_before, old.cert.not_after))
            .unwrap_or(Lifetime::DEFAULT_CA);
        let staging = self.staging();
        let new = SigningCa::generate(
            self.ca.name(),
            &old.cert.subject.common_name,
            algorithm,
            lifetime,
            now,
            staging.cert_path(self.ca.base_name()),
            staging.key_path(self.ca.base_name()),
        )?;
        self.stage(&old, &new, cross_sign.then_some(lifetime), now)
    }

    /// Phase 1 on a further control-plane node: adopts the new CA another node prepared,
    /// from `from`, a copy of that node's rotation directory (`ca-rotation/<ca>/`) or of its
    /// `new/` — the same certificate and key, never a second CA. The adopted CA must hold its
    /// key and carry the live CA's common name. A repeat with the same CA keeps it.
    pub fn prepare_adopting(&self, from: &Path) -> Result<PhaseReport> {
        let source = if from.join("new").is_dir() { from.join("new") } else { from.to_path_buf() };
        let adopted = PkiDir::new(&source).load_ca(self.ca)?.ok_or_else(|| {
            phase_error(
                self.ca,
                format!(
                    "{} holds no staged {} (expected {}): copy the preparing node's {}",
                    from.display(),
                    self.ca.name(),
                    PkiDir::new(&source).cert_path(self.ca.base_name()).display(),
                    self.dir.display()
                ),
            )
        })?;
        let state = self.state()?;
        if let Some(s) = &state
            && s.phase == Phase::Prepared
        {
            if s.new_fingerprint == adopted.cert.fingerprint_sha256() {
                return Ok(PhaseReport {
                    notes: vec!["already prepared with this CA; the staged CA is kept".into()],
                    ..PhaseReport::default()
                });
            }
            return Err(phase_error(
                self.ca,
                format!(
                    "this node staged another new CA ({}); `kubepki rotate-ca abort` it first, then adopt {}",
                    s.new_fingerprint,
                    adopted.cert.fingerprint_sha256()
                ),
            ));
        }
        self.require(None)?;
        let old = self.live_ca()?;
        let adopted = adopted
            .into_signing()
            .ok_or_else(|| phase_error(self.ca, format!("{}: the staged CA's key is missing", source.display())))?;
        if adopted.cert.subject.common_name != old.cert.subject.common_name {
            return Err(phase_error(
                self.ca,
                format!(
                    "the staged CA in {} is {:?}, not a new {:?} (a copy of another CA's rotation?)",
                    source.display(),
                    adopted.cert.subject.common_name,
                    old.cert.subject.common_name
                ),
            ));
        }
        let mut report = self.stage(&old, &adopted, None, OffsetDateTime::now_utc())?;
        report.notes.push(format!(
            "adopted the new CA {} prepared on another node ({})",
            adopted.cert.fingerprint_sha256(),
            source.display()
        ));
        Ok(report)
    }

    /// Stages `new` beside the live `old` CA and records phase 1; with `cross_sign`, the
    /// new CA's key certified by the old CA for that lifetime.
    fn stage(
        &self,
        old: &CertificateAuthority,
        new: &SigningCa,
        cross_sign: Option<Lifetime>,
        now: OffsetDateTime,
    ) -> Result<PhaseReport> {
        let staging = self.staging();
        fsio::create_dir_all(&self.dir, 0o700)?;
        let mut tx = Transaction::new(&self.dir);
        staging.stage_pair(&mut tx, self.ca.base_name(), new.key(), &new.cert.to_pem());
        let mut notes = Vec::new();
        if let Some(lifetime) = cross_sign {
            let signer = old.signer(&format!("{} (cross-signed)", self.ca.name()))?;
            let mut validity = kubepki_pki::Validity::starting_at(now, lifetime);
            validity.not_after = validity.not_after.min(old.cert.not_after);
            let der = signer.cross_sign(&new.cert.subject, new.key(), validity)?;
            let path = self.dir.join("cross-signed.crt");
            tx.add(&path, kubepki_pki::pem::encode("CERTIFICATE", &der), CERT_MODE);
            notes.push(format!("cross-signed certificate of the new CA: {}", path.display()));
        }
        let written = tx.commit()?;
        let state = State {
            ca: self.ca.name().into(),
            cert_dir: Some(self.cert_dir.clone()),
            kubeconfig_dir: Some(self.kubeconfig_dir.clone()),
            phase: Phase::Prepared,
            old_fingerprint: old.cert.fingerprint_sha256(),
            new_fingerprint: new.cert.fingerprint_sha256(),
            history: Vec::new(),
        };
        self.record(state, Phase::Prepared, Vec::new(), written.clone())?;
        Ok(PhaseReport { written, notes, ..PhaseReport::default() })
    }

    /// Writes `bundle` into the CA file (keeping the key), and into the kubeconfigs whose
    /// cluster CA contains any certificate of `replace` (cluster CA only), backing up first.
    fn write_trust(
        &self,
        bundle: &[Certificate],
        key: Option<&kubepki_pki::PrivateKey>,
        backup_dir: &Path,
    ) -> Result<Vec<PathBuf>> {
        let pki = self.pki();
        let base = self.ca.base_name();
        let bundle_pem: String = bundle.iter().map(Certificate::to_pem).collect();
        let mut tx = pki.transaction();
        let mut touched = vec![pki.cert_path(base)];
        match key {
            Some(key) => {
                pki.stage_pair(&mut tx, base, key, &bundle_pem);
                touched.push(pki.key_path(base));
            }
            None => tx.add(pki.cert_path(base), bundle_pem.clone().into_bytes(), CERT_MODE),
        }
        if self.ca == CaKind::Ca {
            for path in &self.kubeconfigs {
                if let Some(text) = kubeconfig_with_bundle(path, bundle, &bundle_pem)? {
                    tx.add(path, text.as_bytes(), fsio::mode_of(path)?);
                    touched.push(path.clone());
                }
            }
        }
        let files: Vec<&Path> = touched.iter().map(PathBuf::as_path).collect();
        Backup::create(backup_dir, &files)?;
        Ok(tx.commit()?)
    }

    /// Phase 2: every trust point gets old + new; signing stays with the old CA.
    pub fn trust(&self) -> Result<PhaseReport> {
        let Some(state) = self.require(Some(Phase::Prepared))? else {
            return Err(phase_error(self.ca, "not prepared".into()));
        };
        let old = self.live_ca()?;
        let key_path = old.key_path.clone();
        // prepare refused an external CA: a key gone since then was removed by hand.
        let old = old.into_signing().ok_or_else(|| {
            phase_error(
                self.ca,
                format!(
                    "{} is absent: the CA's key was removed since prepare; restore it (or `abort`) before trust",
                    key_path.display()
                ),
            )
        })?;
        let new = self.staged_ca()?;
        // Keep the old CA, with its key, in the state directory: retire removes it from disk.
        let old_dir = PkiDir::new(self.dir.join("old"));
        let mut tx = Transaction::new(&self.dir);
        old_dir.stage_pair(&mut tx, self.ca.base_name(), old.key(), &old.cert.to_pem());
        tx.commit()?;
        let mut bundle: Vec<Certificate> = old.certificates().cloned().collect();
        if !bundle.contains(&new.cert) {
            bundle.push(new.cert);
        }
        let backup = self.backup_dir(Phase::Trusted);
        let written = self.write_trust(&bundle, None, &backup)?;
        self.record(state, Phase::Trusted, vec![backup], written.clone())?;
        Ok(PhaseReport { written, elsewhere: trust_points(self.ca), ..PhaseReport::default() })
    }

    /// Phase 3: the new CA signs (CA file = new + old, key = new), and every leaf and kubeconfig
    /// client certificate signed by the old CA is reissued with a new key. Idempotent: a repeat
    /// reissues only what still chains to the old CA.
    pub fn reissue(&self, audit_log: Option<PathBuf>, now: OffsetDateTime) -> Result<(PhaseReport, Option<Execution>)> {
        let mut state = match self.state()? {
            Some(s) if s.phase == Phase::Trusted || s.phase == Phase::Reissued => s,
            other => {
                let have = other.map_or("not started", |s| s.phase.as_str());
                return Err(phase_error(self.ca, format!("reissue follows trust, but the rotation is at: {have}")));
            }
        };
        self.same_kubeconfig_dir(&state)?;
        // The new CA signs from here on: its key goes into the cert dir with it.
        let staged = self.staged_ca()?;
        let staged_key = staged.key_path.clone();
        let new = staged
            .into_signing()
            .ok_or_else(|| phase_error(self.ca, format!("{}: the staged CA's key is missing", staged_key.display())))?;
        let live = self.live_ca()?;
        let mut written = Vec::new();
        let mut backups = Vec::new();
        if live.cert != new.cert {
            let mut bundle = vec![new.cert.clone()];
            bundle.extend(live.certificates().filter(|c| **c != new.cert).cloned());
            let backup = self.backup_dir(Phase::Reissued);
            written = self.write_trust(&bundle, Some(new.key()), &backup)?;
            backups.push(backup);
        }
        let pki = self.pki();
        let cas = Cas::load(&pki)?;
        let discovery = targets::discover(&pki, &cas, &self.kubeconfigs, &[])?;
        let force: Vec<String> = discovery
            .targets
            .iter()
            .filter(|t| t.ca == self.ca && t.cert.verify_issued_by(&new.cert).is_err())
            .map(|t| t.name.clone())
            .collect();
        let mut report = PhaseReport { written, elsewhere: leaf_users(self.ca), ..PhaseReport::default() };
        let execution = if force.is_empty() {
            None
        } else {
            let options = PlanOptions { force, ..PlanOptions::new(now) };
            let mut the_plan = plan::plan(&discovery, &cas, &options)?;
            the_plan.renewals.retain(|r| r.ca == self.ca);
            let backup_dir = self.backup_dir(Phase::Reissued);
            let execution = execute::execute(
                &the_plan,
                &discovery,
                &cas,
                &pki,
                &ExecuteOptions { backup_dir: backup_dir.clone(), audit_log },
            )?;
            if execution.backup.is_some() {
                backups.push(backup_dir);
            }
            report.reissued = execution.renewed.iter().map(|r| r.name.clone()).collect();
            report.written.extend(execution.written.iter().cloned());
            Some(execution)
        };
        if state.phase == Phase::Trusted {
            self.record(state, Phase::Reissued, backups, report.written.clone())?;
        } else if !backups.is_empty() {
            // A repeated reissue: its backups belong to the same phase.
            if let Some(last) = state.history.last_mut() {
                last.backups.extend(backups);
                for w in &report.written {
                    if !last.written.contains(w) {
                        last.written.push(w.clone());
                    }
                }
            }
            self.save(&state)?;
        }
        Ok((report, execution))
    }

    /// Phase 4: the old CA leaves every bundle — refused while anything renewable still chains
    /// to it. It stays in the state directory (`old/`) and in the phase backups.
    pub fn retire(&self) -> Result<PhaseReport> {
        let Some(state) = self.require(Some(Phase::Reissued))? else {
            return Err(phase_error(self.ca, "not reissued".into()));
        };
        let new = self.staged_ca()?;
        let pki = self.pki();
        let cas = Cas::load(&pki)?;
        let discovery = targets::discover(&pki, &cas, &self.kubeconfigs, &[])?;
        let stale: Vec<String> = discovery
            .targets
            .iter()
            .filter(|t| t.ca == self.ca && t.cert.verify_issued_by(&new.cert).is_err())
            .map(|t| format!("{} ({})", t.name, t.location.path().display()))
            .collect();
        if !stale.is_empty() {
            return Err(phase_error(
                self.ca,
                format!("still signed by the old CA: {} (run reissue again)", stale.join(", ")),
            ));
        }
        let backup = self.backup_dir(Phase::Retired);
        let written = self.write_trust(std::slice::from_ref(&new.cert), new.key(), &backup)?;
        self.record(state, Phase::Retired, vec![backup], written.clone())?;
        Ok(PhaseReport {
            written,
            elsewhere: trust_points(self.ca),
            notes: vec![format!("the old CA is kept in {}", self.dir.join("old").display())],
            ..PhaseReport::default()
        })
    }

    /// Returns to the previous consistent phase: restores the backups the current phase took
    /// (prepare: removes the staged CA and the state).
    ///
    /// Every backup is checked whole before anything is restored, so that a phase is never
    /// half undone: if one is missing or lacks a file, nothing is restored, the state stays at
    /// the phase, and the error ([`Error::CaAbortIncomplete`]) names the backups and the files
    /// left as the phase wrote them.
    pub fn abort(&self) -> Result<(Option<Phase>, Vec<PathBuf>)> {
        let Some(state) = self.state()? else { return Err(phase_error(self.ca, "no rotation was started".into())) };
        let incomplete = |record: &PhaseRecord, reason: String| Error::CaAbortIncomplete {
            ca: self.ca.name().into(),
            phase: record.phase.as_str().into(),
            reason,
            left: record.written.clone(),
        };
        phases::abort(&self.dir, &self.cert_dir, state, incomplete)?
            .ok_or_else(|| phase_error(self.ca, "no phase to undo".into()))
    }
}

impl phases::Recorded for State {
    fn history_mut(&mut self) -> &mut Vec<PhaseRecord> {
        &mut self.history
    }

    fn set_phase(&mut self, phase: Phase) {
        self.phase = phase;
    }
}

/// A kubeconfig rewritten so that every cluster whose CA is one of `bundle` (or an earlier
/// bundle with one of them) carries `bundle_pem`; `None` if nothing changes.
pub(crate) fn kubeconfig_with_bundle(
    path: &Path,
    bundle: &[Certificate],
    bundle_pem: &str,
) -> Result<Option<zeroize::Zeroizing<String>>> {
    let mut kc = Kubeconfig::read_required(path)?;
    let source = path.display().to_string();
    let mut changed = false;
    for cluster in kc.cluster_names().into_iter().map(str::to_owned).collect::<Vec<_>>() {
        let Some(PemSource::Embedded(pem)) = kc.cluster_ca(&cluster)? else { continue };
        let Ok(have) = Certificate::from_pem_bundle(&pem, &source) else { continue };
        let ours = have.iter().any(|c| bundle.iter().any(|b| b.spki == c.spki && b.raw_subject == c.raw_subject));
        if ours && have != bundle {
            kc.set_cluster_ca(&cluster, bundle_pem)?;
            changed = true;
        }
    }
    Ok(changed.then(|| kc.to_yaml()))
}

/// A phase whose hook or verification failed is undone as [`CaRotation::abort`] undoes it.
impl crate::rotation::RestoreFiles for CaRotation {
    fn restore_files(&self) -> Result<crate::rotation::Restored> {
        let phase = self.state()?.map_or("no", |s| s.phase.as_str());
        Ok(phases::restored(phase, self.abort()?))
    }
}
