//! Phased rotation of the service-account signing key (`sa.key`, `sa.pub`) with an overlap:
//! prepare → trust → reissue → retire, on the phase machinery of [`crate::rotation::phases`].
//!
//! | phase | `sa.key` (signs) | `sa.pub` (verifies) |
//! | --- | --- | --- |
//! | `prepare` | old | old (a new key is staged; nothing live changes) |
//! | `trust` | old | old, new |
//! | `reissue` | new | old, new (key and `sa.pub` in one journaled transaction) |
//! | `retire` | new | new — once no token the old key signed can still be valid |
//!
//! kube-apiserver signs with the one key of `--service-account-signing-key-file` and verifies a
//! token against every key of `--service-account-key-file` ([`kubepki_pki::sa`]), so a token
//! signed by either key verifies from `trust` to `retire`. The state lives in the cert dir's
//! state dir, `<cert dir>/../tmp/kubepki/<cert dir name>/sa-rotation/` (0700), beside the CA
//! rotations: `state.json`, the staged key (`new/sa.key`, 0600) and a backup per phase.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kubepki_pki::fsio;
use kubepki_pki::sa::{PublicKey, PublicKeySet};
use kubepki_pki::{KEY_MODE, KeyAlgorithm, PkiDir, PrivateKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::inventory::flags::Flags;
use crate::rotation::backup::{self, Backup};
use crate::rotation::phases::{self, Phase, PhaseRecord, now_rfc3339};

/// `ExpirationExtensionSeconds` of kube-apiserver (`pkg/serviceaccount/claims.go`): how long a
/// pod-bound token requested for [`WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS`] is really valid
/// while `--service-account-extend-token-expiration` is on (its default): one year.
pub const EXPIRATION_EXTENSION_SECONDS: u64 = 24 * 365 * 60 * 60;

/// `WarnOnlyBoundTokenExpirationSeconds` of kube-apiserver: the lifetime (1 h 7 s) the kubelet
/// asks for the token of a projected `kube-api-access-*` volume, which is extended to
/// [`EXPIRATION_EXTENSION_SECONDS`].
pub const WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS: u64 = 60 * 60 + 7;

/// The longest lifetime a token signed by the old key can still have after `reissue`, and why:
/// `retire` waits that long.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct TokenLifetime {
    /// The lifetime.
    pub longest: Duration,
    /// Why, naming the flags it comes from.
    pub why: String,
}

impl TokenLifetime {
    /// Given by the operator (`--max-token-lifetime`).
    pub fn given(longest: Duration) -> Self {
        Self { longest, why: "given with --max-token-lifetime".into() }
    }

    /// What kube-apiserver's flags allow (`flags` from its static pod manifest `source`, or
    /// kubeadm's defaults when there is none):
    ///
    /// - with `--service-account-extend-token-expiration` on (the default) and no
    ///   `--service-account-max-token-expiration` below 3607 s, a projected token is valid for
    ///   one year ([`EXPIRATION_EXTENSION_SECONDS`]), or the maximum if that is longer;
    /// - else the maximum, when set: every TokenRequest is capped to it;
    /// - else (extension off, no maximum) TokenRequest lifetimes have no bound: one year is
    ///   assumed, as with the extension.
    pub fn of_apiserver(flags: Option<&Flags>, source: &str) -> std::result::Result<Self, String> {
        let max =
            match flags.and_then(|f| f.get("service-account-max-token-expiration")) {
                Some(v) => Some(kubepki_pki::parse_duration(v).map_err(|e| {
                    format!("{source}: --service-account-max-token-expiration={v} is not a duration: {e}")
                })?),
                None => None,
            };
        let extend = match flags.and_then(|f| f.boolean("service-account-extend-token-expiration")) {
            Some(Ok(b)) => b,
            Some(Err(e)) => return Err(format!("{source}: --service-account-extend-token-expiration: {e}")),
            None => true,
        };
        let year = Duration::from_secs(EXPIRATION_EXTENSION_SECONDS);
        let warn_only = Duration::from_secs(WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS);
        let max_text = |m: Duration| format!("--service-account-max-token-expiration={}", go_duration(m));
        let (longest, why) = match max {
            Some(m) if extend && m >= warn_only => (
                m.max(year),
                format!(
                    "{source}: --service-account-extend-token-expiration is on, so a projected token requested for \
                     3607 s is valid for 1 year (ExpirationExtensionSeconds), and {} caps other tokens",
                    max_text(m)
                ),
            ),
            Some(m) => (m, format!("{source}: {} caps every token's lifetime", max_text(m))),
            None if extend => (
                year,
                format!(
                    "{source}: --service-account-extend-token-expiration is on (kube-apiserver's default), so a \
                     projected token requested for 3607 s is valid for 1 year (ExpirationExtensionSeconds)"
                ),
            ),
            None => (
                year,
                format!(
                    "{source}: without --service-account-max-token-expiration a TokenRequest's lifetime has no \
                     upper bound; kubepki assumes 1 year"
                ),
            ),
        };
        Ok(Self { longest, why })
    }

    /// From the static pod manifest `<kubeconfig dir>/manifests/kube-apiserver.yaml` when it
    /// exists, else kubeadm's defaults (kubeadm sets neither flag).
    pub fn from_manifest(kubeconfig_dir: &Path) -> Result<Self> {
        let path = kubeconfig_dir.join("manifests/kube-apiserver.yaml");
        let invalid = |reason: String| Error::Config { path: path.clone(), reason };
        let Some(bytes) = fsio::read_optional(&path, fsio::MAX_CONFIG_FILE, "kube-apiserver manifest")? else {
            return Self::of_apiserver(None, "kubeadm's defaults (no kube-apiserver manifest)").map_err(invalid);
        };
        let text = String::from_utf8_lossy(&bytes);
        let doc: serde_json::Value =
            serde_saphyr::from_str(&text).map_err(|e| invalid(format!("not valid YAML: {e}")))?;
        let flags = crate::inventory::manifests::flags_of(&doc, "kube-apiserver").map_err(invalid)?;
        Self::of_apiserver(Some(&flags), &path.display().to_string()).map_err(invalid)
    }
}

/// The recorded state of the service-account key rotation.
#[derive(Clone, Debug, Deserialize, Eq, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The cert dir, canonical, as `prepare` found it.
    pub cert_dir: PathBuf,
    /// The last completed phase.
    pub phase: Phase,
    /// The `kid` of the key being replaced.
    pub old_key_id: String,
    /// The `kid` of the new key.
    pub new_key_id: String,
    /// The public key being replaced (a `PUBLIC KEY` PEM block): what `retire` removes.
    pub old_public_key: String,
    /// The new key's algorithm (`RSA-2048`, `ECDSA-P256`).
    pub algorithm: String,
    /// Every completed phase, in order.
    pub history: Vec<PhaseRecord>,
}

impl State {
    /// When `reissue` completed: tokens signed by the old key are issued no more (once every API
    /// server has restarted).
    pub fn reissued_at(&self) -> Option<OffsetDateTime> {
        let record = self.history.iter().rev().find(|r| r.phase == Phase::Reissued)?;
        OffsetDateTime::parse(&record.time, &time::format_description::well_known::Rfc3339).ok()
    }
}

/// What a phase did and what must happen next.
#[derive(Clone, Debug, Default)]
pub struct PhaseReport {
    /// Files written.
    pub written: Vec<PathBuf>,
    /// Notes.
    pub notes: Vec<String>,
}

/// The live key pair, checked: `sa.key` is one of the keys of `sa.pub`.
#[derive(Debug)]
pub struct Live {
    /// `sa.key`.
    pub key: PrivateKey,
    /// Its public half.
    pub public: PublicKey,
    /// `sa.pub`, as kube-apiserver reads it.
    pub trusted: PublicKeySet,
    /// `sa.pub`'s bytes.
    pub trusted_pem: Vec<u8>,
}

/// The service-account key rotation of one cert dir.
#[derive(Clone, Debug)]
pub struct SaRotation {
    cert_dir: PathBuf,
    dir: PathBuf,
}

/// Go's duration format for whole seconds, as kube-apiserver's flags take it: `8760h0m0s`.
fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}h{}m{}s", s / 3600, s / 60 % 60, s % 60)
}

fn phase_error(reason: String) -> Error {
    Error::SaRotation { reason }
}

/// Where the rotation keeps its state: `sa-rotation` in the cert dir's state dir
/// (`/etc/kubernetes/tmp/kubepki/pki/sa-rotation`).
pub fn state_dir(cert_dir: &Path) -> PathBuf {
    crate::inventory::sa_keys::rotation_state_dir(cert_dir)
}

/// Reads a cert dir's `sa.key` and `sa.pub` and checks that they belong together.
pub fn read_live(cert_dir: &Path) -> Result<Live> {
    let pki = PkiDir::new(cert_dir);
    let (key_path, pub_path) = (pki.key_path("sa"), pki.root().join("sa.pub"));
    let key_pem = zeroize::Zeroizing::new(fsio::read_required(&key_path, fsio::MAX_PEM_FILE, "service-account key")?);
    let key = PrivateKey::from_pem(&String::from_utf8_lossy(&key_pem), &key_path.display().to_string())?;
    let public = PublicKey::of(&key)?;
    let trusted_pem = fsio::read_required(&pub_path, fsio::MAX_PEM_FILE, "service-account public keys")?;
    let trusted = PublicKeySet::parse(&trusted_pem, &pub_path.display().to_string())?;
    if !trusted.contains(&public) {
        let kids: Vec<String> = trusted.keys.iter().map(PublicKey::key_id).collect();
        return Err(phase_error(format!(
            "{} (kid {}) is not one of the keys of {} (kids {}): kube-apiserver would refuse every token it signs; \
             put its public key into sa.pub (openssl pkey -in sa.key -pubout) or restore the pair from a backup, \
             then run the phase again",
            key_path.display(),
            public.key_id(),
            pub_path.display(),
            kids.join(", ")
        )));
    }
    Ok(Live { key, public, trusted, trusted_pem })
}

impl SaRotation {
    /// The rotation of `cert_dir` (made absolute and canonical here). Taken under the cert
    /// dir's lock once an interrupted write is completed or discarded
    /// ([`kubepki_pki::open_locked`]): what a phase killed before its commit point
    /// staged in the state directory (its state, the staged key, a backup) is removed here.
    pub fn new(cert_dir: &Path) -> Result<Self> {
        let cert_dir = backup::resolve(cert_dir)?;
        let dir = state_dir(&cert_dir);
        fsio::recover(&dir, &dir, &[])?;
        Ok(Self { dir, cert_dir })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cert dir, absolute.
    pub fn cert_dir(&self) -> &Path {
        &self.cert_dir
    }

    fn key_path(&self) -> PathBuf {
        self.cert_dir.join("sa.key")
    }

    fn pub_path(&self) -> PathBuf {
        self.cert_dir.join("sa.pub")
    }

    fn staged_path(&self) -> PathBuf {
        self.dir.join("new/sa.key")
    }

    /// The recorded state, if a rotation was started. A state recorded for another cert dir
    /// (a tree moved or copied) is refused.
    pub fn state(&self) -> Result<Option<State>> {
        let Some(state): Option<State> = phases::read_state(&self.dir, "service-account key rotation state")? else {
            return Ok(None);
        };
        if state.cert_dir != self.cert_dir {
            return Err(phase_error(format!(
                "{} records a rotation of the cert dir {}, not {} (was the tree moved or copied?): run rotate-sa \
                 with --cert-dir {}",
                self.dir.join(phases::STATE_FILE).display(),
                state.cert_dir.display(),
                self.cert_dir.display(),
                state.cert_dir.display()
            )));
        }
        Ok(Some(state))
    }

    /// The checked live pair.
    pub fn live(&self) -> Result<Live> {
        read_live(&self.cert_dir)
    }

    /// The staged new key.
    pub fn staged(&self) -> Result<PrivateKey> {
        let path = self.staged_path();
        let Some(pem) = fsio::read_optional(&path, fsio::MAX_PEM_FILE, "staged service-account key")? else {
            return Err(phase_error(format!("the staged key {} is missing: run abort, then prepare", path.display())));
        };
        let pem = zeroize::Zeroizing::new(pem);
        Ok(PrivateKey::from_pem(&String::from_utf8_lossy(&pem), &path.display().to_string())?)
    }

    /// A phase run again once done changes nothing: its report says so (and writes nothing).
    fn already(&self, phase: Phase) -> Result<Option<PhaseReport>> {
        Ok(self.state()?.filter(|s| s.phase == phase).map(|_| PhaseReport {
            notes: vec![format!("already at phase {}; nothing changed", phase.as_str())],
            ..PhaseReport::default()
        }))
    }

    fn require(&self, want: Phase) -> Result<State> {
        let state = self.state()?;
        match state {
            Some(s) if s.phase == want => Ok(s),
            other => {
                let have = other.map_or("not started", |s| s.phase.as_str());
                Err(phase_error(format!("this phase follows {}, but the rotation is at: {have}", want.as_str())))
            }
        }
    }

    /// Backs up the files of `contents` and writes them, with the state advanced to `phase`,
    /// in one journaled transaction: a crash leaves the phase done, files and state, or not at
    /// all.
    fn commit(&self, mut state: State, phase: Phase, contents: &[(PathBuf, Vec<u8>, u32)]) -> Result<Vec<PathBuf>> {
        let live: Vec<&Path> =
            contents.iter().map(|(p, _, _)| p.as_path()).filter(|p| p.starts_with(&self.cert_dir)).collect();
        let mut backups = Vec::new();
        if !live.is_empty() {
            let backup = phases::backup_dir(&self.dir, phase);
            Backup::create(&backup, &live)?;
            backups.push(backup);
        }
        let written: Vec<PathBuf> = contents.iter().map(|(p, _, _)| p.clone()).collect();
        state.phase = phase;
        state.history.push(PhaseRecord { phase, time: now_rfc3339(), backups, written: written.clone() });
        let state_path = self.dir.join(phases::STATE_FILE);
        let state_json = crate::text::json_record(&state, &state_path)?;
        fsio::create_dir_all(&self.dir.join("new"), 0o700)?;
        let mut tx = PkiDir::new(&self.cert_dir).transaction();
        for (path, bytes, mode) in contents {
            tx.add(path, bytes.clone(), *mode);
        }
        tx.add(state_path, state_json, 0o600);
        tx.commit()?;
        Ok(written)
    }

    /// The live key must be `want` (its kid), else a file changed behind the rotation.
    fn signing_key_is(&self, live: &Live, want: &str, which: &str) -> Result<()> {
        if live.public.key_id() == want {
            return Ok(());
        }
        Err(phase_error(format!(
            "{} is not the {which} key this rotation recorded (kid {}, found {}): it changed behind the rotation; \
             put it back or run abort",
            self.key_path().display(),
            want,
            live.public.key_id()
        )))
    }

    /// Phase 1: a new key pair in the staging area (`new/sa.key`, 0600), of `algorithm` or
    /// today's `sa.key`'s; nothing live changes. A repeat keeps the staged key.
    pub fn prepare(&self, algorithm: Option<KeyAlgorithm>) -> Result<PhaseReport> {
        let state = self.state()?;
        match &state {
            Some(s) if s.phase == Phase::Prepared => {
                return Ok(PhaseReport {
                    notes: vec![format!("already prepared; the staged key (kid {}) is kept", s.new_key_id)],
                    ..PhaseReport::default()
                });
            }
            Some(s) if s.phase != Phase::Retired => {
                return Err(phase_error(format!(
                    "a rotation is at phase {}: carry it on, or abort it, before preparing another",
                    s.phase.as_str()
                )));
            }
            _ => {}
        }
        let live = self.live()?;
        let algorithm = algorithm.unwrap_or(live.key.algorithm());
        self.stage(&live, &algorithm.generate()?, "staged")
    }

    /// Phase 1 on a further control-plane node: adopts the new key another node prepared, from
    /// `from`, a copy of that node's `sa-rotation/` directory (or of the `new/` in it): the same
    /// key, never a second one. A repeat with the same key keeps it.
    pub fn prepare_adopting(&self, from: &Path) -> Result<PhaseReport> {
        let file = [from.join("new").join("sa.key"), from.join("sa.key")]
            .into_iter()
            .find(|f| f.is_file())
            .ok_or_else(|| {
                phase_error(format!(
                    "{} holds no staged key (new/sa.key): copy the preparing node's {}",
                    from.display(),
                    self.dir.display()
                ))
            })?;
        let text = fsio::read_required(&file, fsio::MAX_PEM_FILE, "key file")?;
        let adopted = PrivateKey::from_pem(&String::from_utf8_lossy(&text), &file.display().to_string())?;
        let adopted_kid = PublicKey::of(&adopted)?.key_id();
        match self.state()? {
            Some(s) if s.phase == Phase::Prepared && s.new_key_id == adopted_kid => {
                return Ok(PhaseReport {
                    notes: vec![format!("already prepared with this key (kid {adopted_kid}); it is kept")],
                    ..PhaseReport::default()
                });
            }
            Some(s) if s.phase != Phase::Retired => {
                return Err(phase_error(format!(
                    "this node's rotation is at phase {} with key {}: abort it before adopting {adopted_kid}",
                    s.phase.as_str(),
                    s.new_key_id
                )));
            }
            _ => {}
        }
        let live = self.live()?;
        let mut report = self.stage(&live, &adopted, "adopted")?;
        report.notes.push(format!("from {}", file.display()));
        Ok(report)
    }

    /// Stages `new` beside the live key and records phase 1.
    fn stage(&self, live: &Live, new: &PrivateKey, how: &str) -> Result<PhaseReport> {
        let new_public = PublicKey::of(new)?;
        let state = State {
            cert_dir: self.cert_dir.clone(),
            phase: Phase::Prepared,
            old_key_id: live.public.key_id(),
            new_key_id: new_public.key_id(),
            old_public_key: live.public.to_pem(),
            algorithm: new_public.algorithm().to_string(),
            history: Vec::new(),
        };
        let staged = (self.staged_path(), new.to_pem().as_bytes().to_vec(), KEY_MODE);
        let written = self.commit(state, Phase::Prepared, &[staged])?;
        Ok(PhaseReport {
            written,
            notes: vec![format!("new {} key {how}, kid {}", new_public.algorithm(), new_public.key_id())],
        })
    }

    /// Phase 2: `sa.pub` = its keys + the new public key (old first); `sa.key` unchanged.
    pub fn trust(&self) -> Result<PhaseReport> {
        if let Some(note) = self.already(Phase::Trusted)? {
            return Ok(note);
        }
        let state = self.require(Phase::Prepared)?;
        let live = self.live()?;
        self.signing_key_is(&live, &state.old_key_id, "old")?;
        let new = PublicKey::of(&self.staged()?)?;
        let mut bytes = live.trusted_pem.clone();
        if !live.trusted.contains(&new) {
            if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                bytes.push(b'\n');
            }
            bytes.extend_from_slice(new.to_pem().as_bytes());
        }
        let path = self.pub_path();
        let mode = fsio::mode_of(&path)?;
        let written = self.commit(state, Phase::Trusted, &[(path, bytes, mode)])?;
        Ok(PhaseReport { written, notes: Vec::new() })
    }

    /// Phase 3: `sa.key` = the new key, `sa.pub` keeps old and new (one journaled
    /// transaction). A repeat changes nothing (as for every phase).
    pub fn reissue(&self) -> Result<PhaseReport> {
        if let Some(note) = self.already(Phase::Reissued)? {
            return Ok(note);
        }
        let state = self.require(Phase::Trusted)?;
        let live = self.live()?;
        self.signing_key_is(&live, &state.old_key_id, "old")?;
        let staged = self.staged()?;
        let new = PublicKey::of(&staged)?;
        if !live.trusted.contains(&new) {
            return Err(phase_error(format!(
                "{} does not trust the new key (kid {}): it changed behind the rotation; run abort, then trust again",
                self.pub_path().display(),
                new.key_id()
            )));
        }
        let key_mode = fsio::mode_of(&self.key_path())?;
        let pub_mode = fsio::mode_of(&self.pub_path())?;
        let contents = [
            (self.key_path(), staged.to_pem().as_bytes().to_vec(), key_mode),
            (self.pub_path(), live.trusted_pem, pub_mode),
        ];
        let written = self.commit(state, Phase::Reissued, &contents)?;
        Ok(PhaseReport { written, notes: Vec::new() })
    }

    /// When `retire` becomes safe: `reissue`'s time + `lifetime`.
    pub fn retire_safe_at(state: &State, lifetime: &TokenLifetime) -> Option<OffsetDateTime> {
        Some(state.reissued_at()? + lifetime.longest)
    }

    /// Phase 4: the old public key leaves `sa.pub`. Refused before
    /// [`Self::retire_safe_at`] unless `force`.
    pub fn retire(&self, lifetime: &TokenLifetime, force: bool, now: OffsetDateTime) -> Result<PhaseReport> {
        if let Some(note) = self.already(Phase::Retired)? {
            return Ok(note);
        }
        let state = self.require(Phase::Reissued)?;
        let mut notes = Vec::new();
        if let Some(safe_at) = Self::retire_safe_at(&state, lifetime)
            && now < safe_at
        {
            let reissued = state.history.last().map_or("", |r| r.time.as_str());
            let why = format!(
                "a token the old key (kid {}) signed may be valid until {} (reissue at {reissued} + {}: {})",
                state.old_key_id,
                phases::rfc3339(safe_at),
                go_duration(lifetime.longest),
                lifetime.why
            );
            if !force {
                return Err(phase_error(format!(
                    "retire is refused until {}: {why}; such tokens stop verifying at retire. Run it then, give \
                     --max-token-lifetime if your API servers cap tokens shorter, or --force to retire now",
                    phases::rfc3339(safe_at)
                )));
            }
            notes.push(format!("--force: retired before {}; {why}", phases::rfc3339(safe_at)));
        }
        let live = self.live()?;
        self.signing_key_is(&live, &state.new_key_id, "new")?;
        let old = PublicKeySet::parse(state.old_public_key.as_bytes(), "the rotation state's old key")?;
        let kept = PublicKeySet {
            keys: live.trusted.keys.iter().filter(|k| !old.contains(k)).cloned().collect(),
            ignored: Vec::new(),
        };
        let path = self.pub_path();
        let mode = fsio::mode_of(&path)?;
        let written = self.commit(state, Phase::Retired, &[(path, kept.to_pem().into_bytes(), mode)])?;
        Ok(PhaseReport { written, notes })
    }

    /// Returns to the previous phase from the backups the current phase took (prepare: removes
    /// the staged key and the state). If a backup is missing or incomplete, nothing is
    /// restored ([`Error::SaAbortIncomplete`]).
    pub fn abort(&self) -> Result<(Option<Phase>, Vec<PathBuf>)> {
        let Some(state) = self.state()? else { return Err(phase_error("no rotation was started".into())) };
        let incomplete = |record: &PhaseRecord, reason: String| Error::SaAbortIncomplete {
            phase: record.phase.as_str().into(),
            reason,
            left: record.written.clone(),
        };
        phases::abort(&self.dir, &self.cert_dir, state, incomplete)?
            .ok_or_else(|| phase_error("no phase to undo".into()))
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

/// A phase whose hook failed is undone as [`SaRotation::abort`] undoes it.
impl crate::rotation::RestoreFiles for SaRotation {
    fn restore_files(&self) -> Result<crate::rotation::Restored> {
        let phase = self.state()?.map_or("no", |s| s.phase.as_str());
        Ok(phases::restored(phase, self.abort()?))
    }
}

/// How this node's service-account keys compare with another node's.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct PeerDifference {
    /// The other node's files (a cert dir or an `sa.pub`).
    pub peer: PathBuf,
    /// What differs, one line each (empty: the same).
    pub differences: Vec<String>,
}

/// Compares this node's `sa.key` and `sa.pub` (`live`) with a peer's cert dir copy (its
/// `sa.key`, when present, and `sa.pub`), or with a peer's `sa.pub` file.
pub fn compare_peer(live: &Live, peer: &Path) -> Result<PeerDifference> {
    let kids = |set: &PublicKeySet| -> Vec<String> {
        let mut k: Vec<String> = set.keys.iter().map(PublicKey::key_id).collect();
        k.dedup();
        k
    };
    let mut differences = Vec::new();
    let pub_path = if peer.is_dir() { peer.join("sa.pub") } else { peer.to_owned() };
    let theirs = fsio::read_required(&pub_path, fsio::MAX_PEM_FILE, "peer's sa.pub")?;
    let theirs = PublicKeySet::parse(&theirs, &pub_path.display().to_string())?;
    let (ours_kids, their_kids) = (kids(&live.trusted), kids(&theirs));
    if ours_kids != their_kids {
        differences.push(format!(
            "sa.pub trusts kids [{}] here, [{}] there",
            ours_kids.join(", "),
            their_kids.join(", ")
        ));
    }
    let key_path = peer.join("sa.key");
    if peer.is_dir()
        && let Some(pem) = fsio::read_optional(&key_path, fsio::MAX_PEM_FILE, "peer's sa.key")?
    {
        let pem = zeroize::Zeroizing::new(pem);
        let key = PrivateKey::from_pem(&String::from_utf8_lossy(&pem), &key_path.display().to_string())?;
        let kid = PublicKey::of(&key)?.key_id();
        if kid != live.public.key_id() {
            differences.push(format!("sa.key signs with kid {} here, {kid} there", live.public.key_id()));
        }
    }
    Ok(PeerDifference { peer: peer.to_owned(), differences })
}

/// The Secret type of a legacy, non-expiring ServiceAccount token.
pub const LEGACY_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";

/// The legacy token Secrets of every namespace (`NAMESPACE/NAME`), listed through the API with
/// the kubeconfig `kubeconfig`: their tokens never expire and verify only while the key that
/// signed them is in `sa.pub`.
/// The error is one line: the whole chain of causes.
pub fn legacy_token_secrets(kubeconfig: &Path, timeout: Duration) -> std::result::Result<Vec<String>, String> {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, ListParams};

    let runtime = crate::runtime::shared().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let client = crate::rotation::secret_sink::client_for(Some(kubeconfig), None, timeout)
            .await
            .map_err(|e| crate::text::error_chain(&e))?;
        let api: Api<Secret> = Api::all(client);
        let params = ListParams::default().fields(&format!("type={LEGACY_TOKEN_TYPE}"));
        let list = api.list(&params).await.map_err(|e| {
            format!("listing Secrets with {}: {}", kubeconfig.display(), crate::inventory::secrets::api_error(&e))
        })?;
        // The field selector is the server's; the type is checked here too.
        Ok(list
            .items
            .iter()
            .filter(|s| s.type_.as_deref() == Some(LEGACY_TOKEN_TYPE))
            .map(|s| {
                format!(
                    "{}/{}",
                    s.metadata.namespace.as_deref().unwrap_or_default(),
                    s.metadata.name.as_deref().unwrap_or_default()
                )
            })
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(words: &[&str]) -> Flags {
        Flags::parse(words.iter().copied())
    }

    #[test]
    fn the_wait_follows_kube_apiserver_flags() {
        let year = Duration::from_secs(EXPIRATION_EXTENSION_SECONDS);
        assert_eq!(TokenLifetime::of_apiserver(None, "defaults").unwrap().longest, year);
        let capped =
            flags(&["--service-account-extend-token-expiration=false", "--service-account-max-token-expiration=48h"]);
        let lifetime = TokenLifetime::of_apiserver(Some(&capped), "m").unwrap();
        assert_eq!(lifetime.longest, Duration::from_secs(48 * 3600));
        assert!(lifetime.why.contains("caps every token"), "{}", lifetime.why);
        // A maximum below 3607 s stops the extension: the requested 3607 s is capped first.
        let below = flags(&["--service-account-max-token-expiration=1h"]);
        assert_eq!(TokenLifetime::of_apiserver(Some(&below), "m").unwrap().longest, Duration::from_secs(3600));
        let above = flags(&["--service-account-max-token-expiration=48h"]);
        assert_eq!(TokenLifetime::of_apiserver(Some(&above), "m").unwrap().longest, year);
        let long = flags(&["--service-account-max-token-expiration=17520h"]);
        assert_eq!(TokenLifetime::of_apiserver(Some(&long), "m").unwrap().longest, 2 * year);
        let bad = flags(&["--service-account-max-token-expiration=soon"]);
        assert!(TokenLifetime::of_apiserver(Some(&bad), "m").unwrap_err().contains("not a duration"));
    }
}
