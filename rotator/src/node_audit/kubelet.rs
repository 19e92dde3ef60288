//! The kubelet: its configuration file (`/var/lib/kubelet/config.yaml`) overridden by its flags
//! (`kubeadm-flags.env`, `/etc/default/kubelet`), judged against "Securing the Kubelet".

use std::path::PathBuf;

use serde_json::Value;

use super::{Advice, AuditComponent, AuditStatus, CheckResult};
use crate::inventory::flags::{Flags, parse_bool};

/// A setting's value and where it came from, for messages.
#[derive(Clone, Debug, Eq, PartialEq)]
pub(super) struct Setting<T> {
    /// The effective value.
    pub value: T,
    /// Where it was set: `authentication.anonymous.enabled in /var/lib/kubelet/config.yaml`,
    /// `--anonymous-auth in /var/lib/kubelet/kubeadm-flags.env`, or `the default`.
    pub origin: String,
}

/// The settings of the kubelet that the checks look at, after flags override the file.
#[derive(Clone, Debug, Eq, PartialEq)]
pub(super) struct KubeletSettings {
    /// `authentication.anonymous.enabled` / `--anonymous-auth`.
    pub anonymous_auth: Setting<bool>,
    /// `authorization.mode` / `--authorization-mode`.
    pub authorization_mode: Setting<String>,
    /// `authentication.x509.clientCAFile` / `--client-ca-file`.
    pub client_ca_file: Setting<Option<String>>,
    /// `readOnlyPort` / `--read-only-port`.
    pub read_only_port: Setting<i64>,
    /// `rotateCertificates` / `--rotate-certificates`.
    pub rotate_certificates: Setting<bool>,
    /// `serverTLSBootstrap` / `--rotate-server-certificates`.
    pub server_tls_bootstrap: Setting<bool>,
    /// `tlsCertFile` / `--tls-cert-file`.
    pub tls_cert_file: Setting<Option<String>>,
    /// `--cert-dir` (where the kubelet keeps `kubelet.crt` and its client certificates).
    pub cert_dir: String,
}

/// The effective settings: `config` (the file's path as shown, and its document; `None` when
/// the kubelet runs without one) overridden by `flags` (read from `flags_origin`). Values of
/// the wrong type are returned as problems, and the default is used in their place.
///
/// Defaults are those of `KubeletConfiguration` v1beta1 when there is a file (anonymous off,
/// Webhook authorization, read-only port 0), and the flags' defaults when there is none
/// (anonymous on, AlwaysAllow, port 10255).
pub(super) fn settings(
    config: Option<(&str, &Value)>,
    flags: &Flags,
    flags_origin: &str,
) -> (KubeletSettings, Vec<String>) {
    let mut problems = Vec::new();
    let file_defaults = config.is_some();
    let from_file = |pointer: &str| -> Option<(&Value, String)> {
        let (path, doc) = config?;
        let v = doc.pointer(pointer).filter(|v| !v.is_null())?;
        Some((v, format!("{} in {path}", pointer.trim_start_matches('/').replace('/', "."))))
    };
    let from_flag = |name: &str| flags.get(name).map(|v| (v, format!("--{name} in {flags_origin}")));
    let default = || "the default".to_owned();

    let mut boolean = |pointer: &str, flag: &str, default_value: bool| -> Setting<bool> {
        if let Some((v, origin)) = from_flag(flag) {
            match parse_bool(v) {
                Some(b) => return Setting { value: b, origin },
                None => problems.push(format!("{origin}: {v:?} is not a boolean")),
            }
        }
        if let Some((v, origin)) = from_file(pointer) {
            match v.as_bool() {
                Some(b) => return Setting { value: b, origin },
                None => problems.push(format!("{origin}: {v} is not a boolean")),
            }
        }
        Setting { value: default_value, origin: default() }
    };
    let anonymous_auth = boolean("/authentication/anonymous/enabled", "anonymous-auth", !file_defaults);
    let rotate_certificates = boolean("/rotateCertificates", "rotate-certificates", false);
    let server_tls_bootstrap = boolean("/serverTLSBootstrap", "rotate-server-certificates", false);

    let string = |pointer: &str, flag: &str| -> Setting<Option<String>> {
        if let Some((v, origin)) = from_flag(flag) {
            return Setting { value: Some(v.to_owned()).filter(|s| !s.is_empty()), origin };
        }
        if let Some((v, origin)) = from_file(pointer) {
            return Setting { value: v.as_str().map(str::to_owned).filter(|s| !s.is_empty()), origin };
        }
        Setting { value: None, origin: default() }
    };
    let client_ca_file = string("/authentication/x509/clientCAFile", "client-ca-file");
    let tls_cert_file = string("/tlsCertFile", "tls-cert-file");
    let mode = string("/authorization/mode", "authorization-mode");
    let authorization_mode = Setting {
        value: mode.value.unwrap_or_else(|| if file_defaults { "Webhook" } else { "AlwaysAllow" }.to_owned()),
        origin: mode.origin,
    };

    let read_only_port = match (from_flag("read-only-port"), from_file("/readOnlyPort")) {
        (Some((v, origin)), _) => match v.parse::<i64>() {
            Ok(p) => Setting { value: p, origin },
            Err(_) => {
                problems.push(format!("{origin}: {v:?} is not a port number"));
                Setting { value: 10255, origin }
            }
        },
        (None, Some((v, origin))) => match v.as_i64() {
            Some(p) => Setting { value: p, origin },
            None => {
                problems.push(format!("{origin}: {v} is not a port number"));
                Setting { value: 10255, origin }
            }
        },
        (None, None) => Setting { value: if file_defaults { 0 } else { 10255 }, origin: default() },
    };
    let cert_dir = flags.get("cert-dir").unwrap_or(kubepki_pki::paths::KUBELET_PKI_DIR).to_owned();
    let settings = KubeletSettings {
        anonymous_auth,
        authorization_mode,
        client_ca_file,
        read_only_port,
        rotate_certificates,
        server_tls_bootstrap,
        tls_cert_file,
        cert_dir,
    };
    (settings, problems)
}

/// The certificate the kubelet serves on :10250.
#[derive(Clone, Debug, Eq, PartialEq)]
pub(super) enum ServingCert {
    /// `serverTLSBootstrap`: the kubelet asks the cluster CA for it through a CSR.
    Bootstrap,
    /// A file (`tlsCertFile`, or `kubelet.crt` in its cert dir).
    File {
        /// The file read.
        path: PathBuf,
        /// Whether the certificate is self-signed (subject = issuer, as the kubelet makes it).
        self_signed: bool,
    },
    /// No file yet: the kubelet makes a self-signed one when it starts.
    Missing {
        /// Where it would be.
        path: PathBuf,
    },
}

/// What the kubelet checks judge.
#[derive(Clone, Debug)]
pub(super) struct KubeletFacts {
    /// The configuration file (the path read), or the flags file when there is none.
    pub file: PathBuf,
    /// The effective settings.
    pub settings: KubeletSettings,
    /// Whether `clientCAFile` can be read as certificates: `None` if it is not set,
    /// `Some(Err(why))` if it is set but missing or unreadable.
    pub client_ca: Option<Result<(), String>>,
    /// The serving certificate.
    pub serving: ServingCert,
}

/// Judges the kubelet.
pub(super) fn check(f: &KubeletFacts) -> Vec<CheckResult> {
    let s = &f.settings;
    let at = |id, status, advice| CheckResult::new(id, AuditComponent::Kubelet, status, advice).file(&f.file);
    let mut out = Vec::new();

    let a = &s.anonymous_auth;
    out.push(if a.value {
        at("kubelet-anonymous-auth", AuditStatus::Critical, Advice::Kubelet)
            .message(format!("the kubelet API accepts anonymous requests ({} is true)", a.origin))
            .fix(
                "set authentication.anonymous.enabled: false in the kubelet configuration (and drop \
                 --anonymous-auth=true from its flags), then restart the kubelet",
            )
    } else {
        at("kubelet-anonymous-auth", AuditStatus::Pass, Advice::Kubelet)
            .message(format!("anonymous requests are refused ({})", a.origin))
    });

    let m = &s.authorization_mode;
    out.push(match m.value.as_str() {
        "Webhook" => at("kubelet-authorization-mode", AuditStatus::Pass, Advice::Authorization)
            .message(format!("requests are authorized by the API server (Webhook, {})", m.origin)),
        "AlwaysAllow" => at("kubelet-authorization-mode", AuditStatus::Critical, Advice::Authorization)
            .message(format!("every authenticated request to the kubelet is allowed (AlwaysAllow, {})", m.origin))
            .fix("set authorization.mode: Webhook in the kubelet configuration and restart the kubelet"),
        other => at("kubelet-authorization-mode", AuditStatus::Warning, Advice::Authorization)
            .message(format!("authorization mode {other:?} ({}) is not Webhook", m.origin))
            .fix("set authorization.mode: Webhook in the kubelet configuration and restart the kubelet"),
    });

    let ca = &s.client_ca_file;
    out.push(match (&ca.value, &f.client_ca) {
        (None, _) => at("kubelet-client-ca", AuditStatus::Warning, Advice::Kubelet)
            .message("no clientCAFile: x509 client certificates (the API server's among them) are not accepted")
            .fix(
                "set authentication.x509.clientCAFile: /etc/kubernetes/pki/ca.crt in the kubelet configuration \
                 and restart the kubelet",
            ),
        (Some(file), Some(Err(why))) => at("kubelet-client-ca", AuditStatus::Warning, Advice::Kubelet)
            .message(format!("clientCAFile {file} ({}) cannot be used: {why}", ca.origin))
            .fix("copy the cluster CA certificate (ca.crt) to that path, or point clientCAFile at it"),
        (Some(file), _) => at("kubelet-client-ca", AuditStatus::Pass, Advice::Kubelet)
            .message(format!("client certificates are verified against {file} ({})", ca.origin)),
    });

    let p = &s.read_only_port;
    out.push(if p.value == 0 {
        at("kubelet-read-only-port", AuditStatus::Pass, Advice::Tls)
            .message(format!("the unauthenticated read-only port is off ({})", p.origin))
    } else {
        at("kubelet-read-only-port", AuditStatus::Warning, Advice::Tls)
            .message(format!(
                "the kubelet serves pods and node data over plain HTTP without authentication on port {} ({})",
                p.value, p.origin
            ))
            .fix("set readOnlyPort: 0 in the kubelet configuration (and drop --read-only-port), then restart the kubelet")
    });

    let r = &s.rotate_certificates;
    out.push(if r.value {
        at("kubelet-rotate-certificates", AuditStatus::Pass, Advice::Rotation)
            .message(format!("the kubelet renews its client certificate itself ({})", r.origin))
    } else {
        at("kubelet-rotate-certificates", AuditStatus::Warning, Advice::Rotation)
            .message(format!("the kubelet's client certificate is never renewed ({} is false)", r.origin))
            .fix("set rotateCertificates: true in the kubelet configuration and restart the kubelet")
    });

    let bootstrap_fix = "set serverTLSBootstrap: true in the kubelet configuration and approve the kubelet-serving \
                         CSRs (kubectl certificate approve, or an approver), or issue one with `kubepki issue \
                         kubelet-serving`; then set --kubelet-certificate-authority on the API server";
    out.push(match &f.serving {
        ServingCert::Bootstrap => at("kubelet-serving-cert", AuditStatus::Pass, Advice::Kubelet).message(format!(
            "the serving certificate is requested from the cluster CA ({})",
            s.server_tls_bootstrap.origin
        )),
        ServingCert::File { path, self_signed: false } => {
            at("kubelet-serving-cert", AuditStatus::Pass, Advice::Kubelet)
                .file(path)
                .message(format!("the serving certificate {} is issued by a CA", path.display()))
        }
        ServingCert::File { path, self_signed: true } => at(
            "kubelet-serving-cert",
            AuditStatus::Warning,
            Advice::Kubelet,
        )
        .file(path)
        .message(format!(
            "the serving certificate {} is self-signed: the API server cannot verify it is talking to this kubelet",
            path.display()
        ))
        .fix(bootstrap_fix),
        ServingCert::Missing { path } => at("kubelet-serving-cert", AuditStatus::Warning, Advice::Kubelet)
            .message(format!(
                "no serving certificate at {} and no serverTLSBootstrap: the kubelet makes a self-signed one",
                path.display()
            ))
            .fix(bootstrap_fix),
    });
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn kubeadm_config() -> Value {
        json!({
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "authentication": {"anonymous": {"enabled": false}, "webhook": {"enabled": true}, "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"}},
            "authorization": {"mode": "Webhook"},
            "readOnlyPort": 0,
            "rotateCertificates": true,
        })
    }

    fn facts(settings: KubeletSettings, serving: ServingCert) -> KubeletFacts {
        KubeletFacts { file: "/var/lib/kubelet/config.yaml".into(), settings, client_ca: Some(Ok(())), serving }
    }

    fn status(results: &[CheckResult], id: &str) -> AuditStatus {
        results.iter().find(|r| r.id == id).map(|r| r.status).unwrap_or_else(|| panic!("no {id}"))
    }

    #[test]
    fn kubeadms_defaults_pass_except_the_self_signed_serving_certificate() {
        let doc = kubeadm_config();
        let (s, problems) = settings(Some(("config.yaml", &doc)), &Flags::default(), "flags");
        assert!(problems.is_empty());
        let serving = ServingCert::File { path: "/var/lib/kubelet/pki/kubelet.crt".into(), self_signed: true };
        let results = check(&facts(s, serving));
        for id in [
            "kubelet-anonymous-auth",
            "kubelet-authorization-mode",
            "kubelet-client-ca",
            "kubelet-read-only-port",
            "kubelet-rotate-certificates",
        ] {
            assert_eq!(status(&results, id), AuditStatus::Pass, "{id}");
        }
        assert_eq!(status(&results, "kubelet-serving-cert"), AuditStatus::Warning);
    }

    #[test]
    fn flags_override_the_file() {
        let doc = kubeadm_config();
        let flags = Flags::parse(["--anonymous-auth=true", "--read-only-port=10255", "--rotate-server-certificates"]);
        let (s, _) = settings(Some(("config.yaml", &doc)), &flags, "kubeadm-flags.env");
        assert!(s.anonymous_auth.value);
        assert_eq!(s.anonymous_auth.origin, "--anonymous-auth in kubeadm-flags.env");
        assert_eq!(s.read_only_port.value, 10255);
        assert!(s.server_tls_bootstrap.value);
        let results = check(&facts(s, ServingCert::Bootstrap));
        assert_eq!(status(&results, "kubelet-anonymous-auth"), AuditStatus::Critical);
        assert_eq!(status(&results, "kubelet-read-only-port"), AuditStatus::Warning);
        assert_eq!(status(&results, "kubelet-serving-cert"), AuditStatus::Pass);
    }

    #[test]
    fn without_a_file_the_flag_defaults_are_insecure() {
        let (s, _) = settings(None, &Flags::default(), "flags");
        let results = check(&facts(s, ServingCert::Missing { path: "/var/lib/kubelet/pki/kubelet.crt".into() }));
        assert_eq!(status(&results, "kubelet-anonymous-auth"), AuditStatus::Critical);
        assert_eq!(status(&results, "kubelet-authorization-mode"), AuditStatus::Critical);
        assert_eq!(status(&results, "kubelet-read-only-port"), AuditStatus::Warning);
        assert_eq!(status(&results, "kubelet-client-ca"), AuditStatus::Warning);
        assert_eq!(status(&results, "kubelet-serving-cert"), AuditStatus::Warning);
    }

    #[test]
    fn values_of_the_wrong_type_are_problems() {
        let doc = json!({"readOnlyPort": "off", "authentication": {"anonymous": {"enabled": "no"}}});
        let (s, problems) = settings(Some(("config.yaml", &doc)), &Flags::default(), "flags");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("authentication.anonymous.enabled in config.yaml"), "{problems:?}");
        assert_eq!(s.read_only_port.value, 10255);
    }
}
