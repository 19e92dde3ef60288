//! The rotation workflow called as a library, in this process (no `kubepki` binary):
//! `kubepki_rotator::rotate` on a kubeadm-made tree, and its rollback when the hook,
//! verification or a Secret fails after the files were written.

use std::path::Path;

use kubepki_pki::Certificate;
use kubepki_rotator::Error;
use kubepki_rotator::rotation::{self, Hook, RotateRequest};
use kubepki_rotator::verify::TargetKind;
use serde_json::{Value, json};

use crate::common::*;

/// A request for the kubeadm tree in `node` (`<node>/pki`, `<node>/*.conf`), with backups and
/// the audit log in `aux`, so that the node's tree holds only what readers read.
fn request(node: &Path, aux: &Path) -> RotateRequest {
    let mut request = RotateRequest::new(node.join("pki"), node);
    request.backup_dir = Some(aux.join("backups"));
    request.audit_log = Some(aux.join("audit.jsonl"));
    request
}

/// A dry run: takes the cert dir's lock as every run does (creating kubepki's state dir beside
/// the cert dir on a tree kubepki never touched), writes nothing, and says what is due.
fn dry_run(node: &Path, aux: &Path) -> usize {
    let mut request = request(node, aux);
    request.dry_run = true;
    request.plan.all = true;
    let report = rotation::rotate(&request).unwrap();
    assert!(report.execution.is_none());
    report.plan.renewals.len()
}

fn audit_lines(aux: &Path, action: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(aux.join("audit.jsonl")).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|v| v["action"] == action).collect()
}

fn cert(path: &Path) -> Certificate {
    Certificate::from_pem_bundle(&std::fs::read(path).unwrap(), "t").unwrap().remove(0)
}

/// The hook fails after every file was written: every file of the cert dir and every
/// kubeconfig is put back byte for byte (the node's whole tree hashes as before), the audit log
/// records a restore per renewed certificate, and the error names the hook and the backup.
/// A run whose hook succeeds is kept, and only then prunes the failed run's backup.
#[test]
fn a_failed_hook_restores_every_file_without_the_binary() {
    let (node, aux) = (TestDir::new(), TestDir::new());
    kubeadm_tree(node.path(), json!({}));
    let original = cert(&node.join("pki/apiserver.crt"));
    assert_eq!(dry_run(node.path(), aux.path()), 12, "7 leaves and 5 kubeconfigs");
    let before = tree_hash(node.path());

    let mut request = request(node.path(), aux.path());
    request.plan.all = true;
    // The hook sees the new files and the names, then fails.
    let seen = aux.join("seen.crt");
    request.hook = Some(Hook::shell(format!(
        "cp '{}' '{}' && printf %s \"$KUBEPKI_ROTATED\" > '{}' && exit 3",
        node.join("pki/apiserver.crt").display(),
        seen.display(),
        aux.join("rotated.txt").display()
    )));
    let err = rotation::rotate(&request).unwrap_err();
    let message = err.to_string();
    let Error::RolledBack { cause, undone } = err else { panic!("not rolled back: {message}") };
    assert!(matches!(*cause, Error::HookFailed { .. }), "{cause}");
    assert!(undone.is_complete(), "{:?}", undone.failures);
    assert!(message.starts_with(&format!("--exec {:?} failed (exit status: 3); ", request.hook.unwrap().command)));
    assert!(message.contains("every file this run wrote was restored from"), "{message}");
    // 7 certificates, 7 keys, 5 kubeconfigs.
    assert_eq!(undone.restored.len(), 19, "{:?}", undone.restored);
    for f in ["pki/apiserver.crt", "pki/apiserver.key", "pki/etcd/peer.key", "admin.conf", "kubelet.conf"] {
        assert!(undone.restored.contains(&node.join(f)), "{f} not in {:?}", undone.restored);
    }

    assert_ne!(cert(&seen).serial, original.serial, "the hook ran on the renewed files");
    assert_eq!(aux.read("rotated.txt").split(' ').count(), 12);
    assert_eq!(tree_hash(node.path()), before, "the node's tree is as before the run");
    let (renewed, restored) = (audit_lines(aux.path(), "renew"), audit_lines(aux.path(), "restore"));
    assert_eq!((renewed.len(), restored.len()), (12, 12));
    let api = restored.iter().find(|r| r["name"] == "apiserver").unwrap();
    assert_eq!(api["new"]["serial"], original.serial, "the restore record names the certificate put back");
    assert_eq!(api["old"]["serial"], cert(&seen).serial);

    // A kept run: the report says what was renewed, and --keep-backups 1 prunes the failed
    // run's backup now that this run's files are kept.
    let mut request = self::request(node.path(), aux.path());
    request.plan.all = true;
    request.keep_backups = Some(1);
    request.hook = Some(Hook::shell("test -n \"$KUBEPKI_BACKUP_DIR\""));
    let report = rotation::rotate(&request).unwrap();
    let execution = report.execution.as_ref().unwrap();
    assert_eq!(execution.renewed.len(), 12);
    assert_eq!(report.pruned.len(), 1, "{:?}", report.pruned);
    assert_ne!(cert(&node.join("pki/apiserver.crt")).serial, original.serial);
}

/// Verification fails after the hook (an API server that keeps serving the certificate it
/// loaded): the files are put back and the error names the failed check; a wrong URL is an
/// input error before anything is written.
#[test]
fn failed_verification_restores_every_file_without_the_binary() {
    let (node, aux) = (TestDir::new(), TestDir::new());
    kubeadm_tree(node.path(), json!({"address": "127.0.0.1"}));
    let pki = node.join("pki");
    dry_run(node.path(), aux.path());
    let before = tree_hash(node.path());

    let mut request = request(node.path(), aux.path());
    request.verify.endpoints.push((TargetKind::ApiServer, "http://127.0.0.1:1".into()));
    let err = rotation::rotate(&request).unwrap_err();
    assert!(matches!(err, Error::InvalidEndpoint { .. }), "{err}");
    assert_eq!(tree_hash(node.path()), before);

    let _api = HttpsServer::apiserver_on(free_port(), &pki);
    let mut request = self::request(node.path(), aux.path());
    request.plan.force = vec!["apiserver".into()];
    request.verify.endpoints = vec![(TargetKind::ApiServer, format!("https://{}", _api.addr))];
    request.verify.wait = std::time::Duration::from_secs(1);
    let err = rotation::rotate(&request).unwrap_err();
    let message = err.to_string();
    let Error::RolledBack { cause, undone } = err else { panic!("not rolled back: {message}") };
    let Error::VerificationFailed { problems, .. } = *cause else { panic!("{message}") };
    assert!(problems.iter().any(|p| p.contains("served-matches-disk")), "{problems:?}");
    assert_eq!(undone.restored.len(), 2, "apiserver.crt and .key: {:?}", undone.restored);
    assert!(message.contains("was restored from"), "{message}");
    assert_eq!(tree_hash(node.path()), before, "the node's tree is as before the run");
    assert_eq!(audit_lines(aux.path(), "restore").len(), 1);
}

/// Secrets mirror the renewed certificate through the real kube client; when the hook then
/// fails, the Secret that was replaced gets its previous data back, the one that was created
/// is deleted, and the files are put back.
#[test]
fn a_failed_hook_puts_secrets_back_without_the_binary() {
    use secrets_api::{SecretsApi, tls_secret};
    let (node, aux) = (TestDir::new(), TestDir::new());
    let reserved = SecretsApi::reserve();
    let endpoint = format!("127.0.0.1:{}", reserved.port());
    kubeadm_tree(node.path(), json!({"address": "127.0.0.1", "control_plane_endpoint": endpoint}));
    let pki = node.join("pki");
    let api = reserved.serve(&pki.join("apiserver.crt"), &pki.join("apiserver.key"), &pki.join("ca.crt"));
    let mut stale = tls_secret("kube-system", "front-proxy-client", "old cert", "old key", None);
    stale["data"]["extra"] = json!("a2VlcA==");
    let stale = api.insert(stale);
    // The API client's kubeconfig: a copy, so that it is not one of the files rotated.
    std::fs::copy(node.join("admin.conf"), aux.join("admin.conf")).unwrap();
    let config_text = format!(
        "apiVersion: kubepki.io/v1alpha1\nkind: RotationConfiguration\nkubeconfig: {}\nsecrets:\n\
         - secret: kube-system/front-proxy-client\n  source: front-proxy-client\n\
         - secret: backup/etcd-client\n  source: apiserver-etcd-client\n",
        aux.join("admin.conf").display()
    );
    let config =
        rotation::secret_sink::RotationConfig::parse_optional(&config_text, Path::new("k.yaml")).unwrap().unwrap();
    dry_run(node.path(), aux.path());
    let before = tree_hash(node.path());

    let mut request = request(node.path(), aux.path());
    request.plan.force = vec!["front-proxy-client".into()];
    request.config = config;
    request.hook = Some(Hook::shell("exit 1"));
    let err = rotation::rotate(&request).unwrap_err();
    let message = err.to_string();
    let Error::RolledBack { undone, .. } = err else { panic!("not rolled back: {message}") };
    assert!(undone.is_complete(), "{:?}", undone.failures);

    let requests = api.requests();
    let writes: Vec<&str> = requests.iter().map(String::as_str).filter(|r| !r.starts_with("GET ")).collect();
    assert_eq!(
        writes,
        [
            "PUT /api/v1/namespaces/kube-system/secrets/front-proxy-client?",
            "POST /api/v1/namespaces/backup/secrets?",
            "PUT /api/v1/namespaces/kube-system/secrets/front-proxy-client?",
            "DELETE /api/v1/namespaces/backup/secrets/etcd-client?",
        ],
        "synced, then undone: {requests:?}"
    );
    assert_eq!(api.get("kube-system", "front-proxy-client").unwrap()["data"], stale["data"]);
    assert!(api.get("backup", "etcd-client").is_none(), "the Secret it created is deleted");
    assert_eq!(tree_hash(node.path()), before, "the node's tree is as before the run");
}
