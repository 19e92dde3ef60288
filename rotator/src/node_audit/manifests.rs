//! The static pod manifests of `/etc/kubernetes/manifests`: the flags kubeadm gives
//! kube-apiserver and etcd (and the controller manager and scheduler), judged against the advice.
//! Reading them is the inventory's ([`crate::inventory::manifests`]).

use super::{Advice, AuditComponent, AuditStatus, CheckResult};
use crate::inventory::manifests::Manifest;

fn result(
    m: &Manifest,
    component: AuditComponent,
    id: &'static str,
    status: AuditStatus,
    advice: Advice,
) -> CheckResult {
    CheckResult::new(id, component, status, advice).file(&m.path)
}

/// Judges kube-apiserver's flags.
pub(super) fn check_apiserver(m: &Manifest) -> Vec<CheckResult> {
    let f = &m.flags;
    let at = |id, status, advice| result(m, AuditComponent::ApiServer, id, status, advice);
    let mut out = Vec::new();

    out.push(match f.get("client-ca-file").filter(|v| !v.is_empty()) {
        Some(ca) => at("apiserver-client-ca", AuditStatus::Pass, Advice::Authentication)
            .message(format!("client certificates are verified against {ca}")),
        None => at("apiserver-client-ca", AuditStatus::Critical, Advice::Authentication)
            .message("no --client-ca-file: nodes, controllers and users cannot authenticate with certificates")
            .fix("add --client-ca-file=/etc/kubernetes/pki/ca.crt to the kube-apiserver command"),
    });

    let missing: Vec<&str> =
        ["tls-cert-file", "tls-private-key-file"].into_iter().filter(|n| f.get(n).is_none_or(str::is_empty)).collect();
    out.push(if missing.is_empty() {
        at("apiserver-tls-cert", AuditStatus::Pass, Advice::Tls)
            .message(format!("serves {}", f.get("tls-cert-file").unwrap_or_default()))
    } else {
        at("apiserver-tls-cert", AuditStatus::Critical, Advice::Tls)
            .message(format!(
                "no --{}: the API server serves a self-signed certificate clients cannot verify",
                missing.join(" or --")
            ))
            .fix(
                "add --tls-cert-file=/etc/kubernetes/pki/apiserver.crt and \
                 --tls-private-key-file=/etc/kubernetes/pki/apiserver.key (`kubepki issue apiserver` makes them)",
            )
    });

    out.push(match (f.boolean("anonymous-auth"), f.get("authentication-config")) {
        (Some(Ok(false)), _) => {
            at("apiserver-anonymous-auth", AuditStatus::Pass, Advice::Authentication).message("--anonymous-auth=false")
        }
        (Some(Ok(true)), _) => at("apiserver-anonymous-auth", AuditStatus::Info, Advice::Authentication)
            .message(
                "anonymous requests are allowed by an explicit --anonymous-auth=true; they are authorized as \
                 system:anonymous, so RBAC must not grant that user or system:unauthenticated more than health checks",
            )
            .fix("keep it only if load balancers need anonymous /healthz or /readyz; otherwise set --anonymous-auth=false"),
        (Some(Err(v)), _) => at("apiserver-anonymous-auth", AuditStatus::Warning, Advice::Authentication)
            .message(format!("--anonymous-auth={v} is not a boolean"))
            .fix("set --anonymous-auth=false"),
        (None, Some(config)) => at("apiserver-anonymous-auth", AuditStatus::Info, Advice::Authentication)
            .message(format!("anonymous authentication is decided in the authentication configuration {config}"))
            .fix("make sure its anonymous section is disabled or limited to the health endpoints"),
        (None, None) => at("apiserver-anonymous-auth", AuditStatus::Warning, Advice::Authentication)
            .message("no --anonymous-auth: anonymous requests are allowed by default (as system:anonymous)")
            .fix(
                "add --anonymous-auth=false, or write --anonymous-auth=true (or an authentication configuration) \
                 as an explicit decision if load balancers probe /healthz anonymously",
            ),
    });

    let missing: Vec<&str> =
        ["audit-log-path", "audit-policy-file"].into_iter().filter(|n| f.get(n).is_none_or(str::is_empty)).collect();
    out.push(if missing.is_empty() {
        at("apiserver-audit-log", AuditStatus::Pass, Advice::AuditLogging).message(format!(
            "audit log {} with policy {}",
            f.get("audit-log-path").unwrap_or_default(),
            f.get("audit-policy-file").unwrap_or_default()
        ))
    } else {
        at("apiserver-audit-log", AuditStatus::Warning, Advice::AuditLogging)
            .message(format!("no --{}: API actions are not audited", missing.join(" or --")))
            .fix(
                "write an audit policy (e.g. /etc/kubernetes/audit-policy.yaml), add --audit-policy-file and \
                 --audit-log-path=/var/log/kubernetes/audit/audit.log with hostPath mounts for both, and ship \
                 the log to a secure server",
            )
    });

    out.push(match f.get("kubelet-certificate-authority").filter(|v| !v.is_empty()) {
        Some(ca) => at("apiserver-kubelet-ca", AuditStatus::Pass, Advice::Kubelet)
            .message(format!("kubelet serving certificates are verified against {ca}")),
        None => at("apiserver-kubelet-ca", AuditStatus::Warning, Advice::Kubelet)
            .message(
                "no --kubelet-certificate-authority: the API server does not verify the kubelets it sends \
                 exec, logs and port-forward traffic to",
            )
            .fix(
                "give every kubelet a serving certificate from the cluster CA (serverTLSBootstrap: true, or \
                 `kubepki issue kubelet-serving`), then add \
                 --kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
            ),
    });

    let missing: Vec<&str> = ["kubelet-client-certificate", "kubelet-client-key"]
        .into_iter()
        .filter(|n| f.get(n).is_none_or(str::is_empty))
        .collect();
    out.push(if missing.is_empty() {
        at("apiserver-kubelet-client-cert", AuditStatus::Pass, Advice::Authentication).message(format!(
            "authenticates to kubelets as {}",
            f.get("kubelet-client-certificate").unwrap_or_default()
        ))
    } else {
        at("apiserver-kubelet-client-cert", AuditStatus::Warning, Advice::Authentication)
            .message(format!(
                "no --{}: the API server cannot authenticate to kubelets that refuse anonymous requests",
                missing.join(" or --")
            ))
            .fix(
                "add --kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt and \
                 --kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
            )
    });

    let authz_fix = "set --authorization-mode=Node,RBAC";
    out.push(match (f.list("authorization-mode"), f.get("authorization-config")) {
        (None, Some(config)) => at("apiserver-authorization-mode", AuditStatus::Info, Advice::Authorization)
            .message(format!("authorization is configured in {config}"))
            .fix("make sure its authorizers include Node and RBAC and not AlwaysAllow"),
        (None, None) => at("apiserver-authorization-mode", AuditStatus::Critical, Advice::Authorization)
            .message("no --authorization-mode: every authenticated request is allowed (AlwaysAllow)")
            .fix(authz_fix),
        (Some(modes), _) if modes.contains(&"AlwaysAllow") => {
            at("apiserver-authorization-mode", AuditStatus::Critical, Advice::Authorization)
                .message(format!("--authorization-mode={} allows every authenticated request", modes.join(",")))
                .fix(authz_fix)
        }
        (Some(modes), _) if !modes.contains(&"RBAC") => {
            at("apiserver-authorization-mode", AuditStatus::Critical, Advice::Authorization)
                .message(format!("--authorization-mode={} does not include RBAC", modes.join(",")))
                .fix(authz_fix)
        }
        (Some(modes), _) if !modes.contains(&"Node") => at(
            "apiserver-authorization-mode",
            AuditStatus::Warning,
            Advice::Authorization,
        )
        .message(format!(
            "--authorization-mode={} does not include Node: kubelets are not limited to their own node's objects",
            modes.join(",")
        ))
        .fix(authz_fix),
        (Some(modes), _) => at("apiserver-authorization-mode", AuditStatus::Pass, Advice::Authorization)
            .message(format!("--authorization-mode={}", modes.join(","))),
    });

    let insecure = f.get("insecure-port").filter(|p| p.trim() != "0");
    let secure_off = f.get("secure-port").filter(|p| p.trim() == "0");
    out.push(match (insecure, secure_off) {
        (Some(port), _) => at("apiserver-insecure-port", AuditStatus::Critical, Advice::Tls)
            .message(format!(
                "--insecure-port={port}: the API server answers plain HTTP without authentication or authorization"
            ))
            .fix("remove --insecure-port and --insecure-bind-address (or set --insecure-port=0)"),
        (None, Some(_)) => at("apiserver-insecure-port", AuditStatus::Critical, Advice::Tls)
            .message("--secure-port=0 turns off HTTPS")
            .fix("remove --secure-port=0 (kubeadm uses 6443)"),
        (None, None) => {
            at("apiserver-insecure-port", AuditStatus::Pass, Advice::Tls).message("no plain-HTTP port is served")
        }
    });

    let servers = f.list("etcd-servers").unwrap_or_default();
    let plain: Vec<&str> = servers.iter().copied().filter(|s| !s.starts_with("https://")).collect();
    let missing: Vec<&str> = ["etcd-cafile", "etcd-certfile", "etcd-keyfile"]
        .into_iter()
        .filter(|n| f.get(n).is_none_or(str::is_empty))
        .collect();
    out.push(if servers.is_empty() {
        at("apiserver-etcd-tls", AuditStatus::Warning, Advice::Etcd)
            .message("no --etcd-servers: cannot tell how the API server reaches etcd")
            .fix("set --etcd-servers to https:// URLs with --etcd-cafile, --etcd-certfile and --etcd-keyfile")
    } else if !plain.is_empty() {
        at("apiserver-etcd-tls", AuditStatus::Critical, Advice::Etcd)
            .message(format!("etcd is reached over plain HTTP ({})", plain.join(",")))
            .fix("serve etcd over TLS and set --etcd-servers to https:// URLs")
    } else if !missing.is_empty() {
        at("apiserver-etcd-tls", AuditStatus::Critical, Advice::Etcd)
            .message(format!(
                "no --{}: the API server does not authenticate etcd or itself to etcd",
                missing.join(", --")
            ))
            .fix(
                "add --etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt, \
                 --etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt and \
                 --etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
            )
    } else {
        at("apiserver-etcd-tls", AuditStatus::Pass, Advice::Etcd).message("etcd is reached over mutual TLS")
    });
    out
}

/// Facts about the CA files etcd trusts, read from the node.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub(super) struct EtcdCaFacts {
    /// `--trusted-ca-file` is the cluster CA (`ca.crt`) rather than the etcd CA.
    pub client_ca_is_cluster_ca: bool,
    /// `--peer-trusted-ca-file` is the cluster CA.
    pub peer_ca_is_cluster_ca: bool,
}

/// Judges etcd's flags.
pub(super) fn check_etcd(m: &Manifest, facts: EtcdCaFacts) -> Vec<CheckResult> {
    let f = &m.flags;
    let at = |id, status, advice| result(m, AuditComponent::Etcd, id, status, advice);
    let mut out = Vec::new();

    // etcd's transport (pkg/transport TLSInfo.ServerConfig) asks for and verifies client
    // certificates (tls.RequireAndVerifyClientCert) when the client-cert-auth flag is true OR
    // a client CA file is given, on the client and the peer listener alike. So without the
    // flag but with a CA file, no certificate-less client gets in: what is missing is only the
    // explicit flag (which also makes etcd's own auth take the user from a certificate's CN).
    for (id, flag, ca_flag, what) in [
        ("etcd-client-cert-auth", "client-cert-auth", "trusted-ca-file", "clients"),
        ("etcd-peer-client-cert-auth", "peer-client-cert-auth", "peer-trusted-ca-file", "peers"),
    ] {
        let was = match f.boolean(flag) {
            Some(Ok(true)) => {
                out.push(at(id, AuditStatus::Pass, Advice::Etcd).message(format!("--{flag}=true")));
                continue;
            }
            Some(Ok(false)) => format!("--{flag}=false"),
            Some(Err(v)) => format!("--{flag}={v} (not a boolean)"),
            None => format!("no --{flag}"),
        };
        let fix = format!("add --{flag}=true to the etcd command, as kubeadm writes it");
        out.push(match f.get(ca_flag).filter(|v| !v.is_empty()) {
            Some(ca) => at(id, AuditStatus::Warning, Advice::Etcd)
                .message(format!(
                    "{was}, but --{ca_flag}={ca}: etcd already demands and verifies a certificate from \
                     {what} on its https URLs (it does so whenever it has a client CA); the requirement \
                     is implicit"
                ))
                .fix(fix),
            None => at(id, AuditStatus::Critical, Advice::Etcd)
                .message(format!("{was} and no --{ca_flag}: etcd does not require {what} to present a certificate"))
                .fix(format!("{fix}, with --{ca_flag}=/etc/kubernetes/pki/etcd/ca.crt")),
        });
    }

    // An absent listen URL means etcd's default, which is plain HTTP on localhost.
    let mut plain = Vec::new();
    for (flag, default) in [
        ("listen-client-urls", Some("http://localhost:2379")),
        ("advertise-client-urls", None),
        ("listen-peer-urls", Some("http://localhost:2380")),
        ("initial-advertise-peer-urls", None),
    ] {
        let urls = f.list(flag).map(|l| l.into_iter().map(str::to_owned).collect::<Vec<_>>());
        let urls = urls.or_else(|| default.map(|d| vec![format!("{d} (the default)")])).unwrap_or_default();
        plain.extend(urls.into_iter().filter(|u| !u.starts_with("https://")).map(|u| format!("--{flag} {u}")));
    }
    out.push(if plain.is_empty() {
        at("etcd-https-urls", AuditStatus::Pass, Advice::Tls).message("client and peer URLs are https only")
    } else {
        at("etcd-https-urls", AuditStatus::Critical, Advice::Tls)
            .message(format!("etcd listens or advertises over plain HTTP: {}", plain.join("; ")))
            .fix(
                "use https:// in --listen-client-urls, --advertise-client-urls, --listen-peer-urls and \
                 --initial-advertise-peer-urls (plain HTTP belongs only on --listen-metrics-urls, on 127.0.0.1)",
            )
    });

    let missing: Vec<&str> = ["cert-file", "key-file", "peer-cert-file", "peer-key-file"]
        .into_iter()
        .filter(|n| f.get(n).is_none_or(str::is_empty))
        .collect();
    out.push(if missing.is_empty() {
        at("etcd-tls-cert", AuditStatus::Pass, Advice::Etcd).message(format!(
            "serves {} to clients and {} to peers",
            f.get("cert-file").unwrap_or_default(),
            f.get("peer-cert-file").unwrap_or_default()
        ))
    } else {
        at("etcd-tls-cert", AuditStatus::Critical, Advice::Etcd)
            .message(format!("no --{}", missing.join(", --")))
            .fix(
                "add --cert-file=/etc/kubernetes/pki/etcd/server.crt, --key-file=/etc/kubernetes/pki/etcd/server.key, \
                 --peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt and --peer-key-file=/etc/kubernetes/pki/etcd/peer.key \
                 (`kubepki issue etcd-server`, `kubepki issue etcd-peer`)",
            )
    });

    let trusted = f.get("trusted-ca-file").filter(|v| !v.is_empty());
    let peer_trusted = f.get("peer-trusted-ca-file").filter(|v| !v.is_empty());
    let fix = "trust only the etcd CA: --trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt and \
               --peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt (`kubepki init` makes the etcd CA)";
    out.push(match (trusted, peer_trusted) {
        (None, _) | (_, None) => at("etcd-trusted-ca", AuditStatus::Critical, Advice::Etcd)
            .message(format!(
                "no --{}: etcd cannot verify client or peer certificates",
                if trusted.is_none() { "trusted-ca-file" } else { "peer-trusted-ca-file" }
            ))
            .fix(fix),
        (Some(ca), _) if facts.client_ca_is_cluster_ca => at("etcd-trusted-ca", AuditStatus::Critical, Advice::Etcd)
            .message(format!(
                "--trusted-ca-file={ca} is the cluster CA: every certificate it issued (each kubelet's, \
                 admin.conf's) is an etcd client with full access"
            ))
            .fix(fix),
        (_, Some(ca)) if facts.peer_ca_is_cluster_ca => at("etcd-trusted-ca", AuditStatus::Critical, Advice::Etcd)
            .message(format!(
                "--peer-trusted-ca-file={ca} is the cluster CA: any certificate it issued can join as a peer"
            ))
            .fix(fix),
        (Some(ca), Some(peer)) => at("etcd-trusted-ca", AuditStatus::Pass, Advice::Etcd)
            .message(format!("trusts {ca} for clients and {peer} for peers, not the cluster CA")),
    });
    out
}

/// Judges kube-controller-manager's or kube-scheduler's plain-HTTP `--port`.
pub(super) fn check_insecure_port(m: &Manifest, component: &str) -> CheckResult {
    let id = if component == "kube-scheduler" { "scheduler-insecure-port" } else { "controller-manager-insecure-port" };
    match m.flags.get("port").filter(|p| p.trim() != "0") {
        Some(port) => result(m, AuditComponent::ControlPlane, id, AuditStatus::Critical, Advice::Tls)
            .message(format!("{component} --port={port} serves plain HTTP without authentication"))
            .fix(format!("set --port=0 on {component} (or remove it on releases where it is gone)")),
        None => result(m, AuditComponent::ControlPlane, id, AuditStatus::Pass, Advice::Tls)
            .message(format!("{component} serves no plain-HTTP port")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::inventory::flags::Flags;
    use crate::inventory::manifests::flags_of;

    fn manifest(words: &[&str]) -> Manifest {
        Manifest { path: "/etc/kubernetes/manifests/x.yaml".into(), flags: Flags::parse(words.iter().copied()) }
    }

    fn status(results: &[CheckResult], id: &str) -> AuditStatus {
        results.iter().find(|r| r.id == id).map(|r| r.status).unwrap_or_else(|| panic!("no {id}"))
    }

    #[test]
    fn a_hardened_apiserver_passes() {
        let m = manifest(&[
            "kube-apiserver",
            "--client-ca-file=/etc/kubernetes/pki/ca.crt",
            "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt",
            "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
            "--anonymous-auth=false",
            "--audit-log-path=/var/log/kubernetes/audit.log",
            "--audit-policy-file=/etc/kubernetes/audit-policy.yaml",
            "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
            "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
            "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
            "--authorization-mode=Node,RBAC",
            "--etcd-servers=https://127.0.0.1:2379",
            "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
            "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
            "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key",
        ]);
        let results = check_apiserver(&m);
        let bad: Vec<_> = results.iter().filter(|r| r.status != AuditStatus::Pass).collect();
        assert!(bad.is_empty(), "{bad:#?}");
    }

    #[test]
    fn authorization_modes_are_judged_by_what_they_include() {
        let cases = [
            ("--authorization-mode=Node,RBAC", AuditStatus::Pass),
            ("--authorization-mode=RBAC", AuditStatus::Warning),
            ("--authorization-mode=Node", AuditStatus::Critical),
            ("--authorization-mode=Node,RBAC,AlwaysAllow", AuditStatus::Critical),
            ("--authorization-config=/etc/kubernetes/authz.yaml", AuditStatus::Info),
            ("--v=2", AuditStatus::Critical),
        ];
        for (flag, expected) in cases {
            assert_eq!(
                status(&check_apiserver(&manifest(&[flag])), "apiserver-authorization-mode"),
                expected,
                "{flag}"
            );
        }
    }

    #[test]
    fn anonymous_auth_needs_a_decision() {
        let s = |flag| status(&check_apiserver(&manifest(&[flag])), "apiserver-anonymous-auth");
        assert_eq!(s("--anonymous-auth=false"), AuditStatus::Pass);
        assert_eq!(s("--anonymous-auth=true"), AuditStatus::Info);
        assert_eq!(s("--v=2"), AuditStatus::Warning);
    }

    #[test]
    fn an_insecure_port_is_critical_unless_zero() {
        let s = |flag| status(&check_apiserver(&manifest(&[flag])), "apiserver-insecure-port");
        assert_eq!(s("--insecure-port=8080"), AuditStatus::Critical);
        assert_eq!(s("--insecure-port=0"), AuditStatus::Pass);
        assert_eq!(s("--secure-port=0"), AuditStatus::Critical);
    }

    #[test]
    fn etcd_defaults_are_plain_http() {
        let results = check_etcd(&manifest(&["etcd", "--data-dir=/var/lib/etcd"]), EtcdCaFacts::default());
        for id in [
            "etcd-client-cert-auth",
            "etcd-peer-client-cert-auth",
            "etcd-https-urls",
            "etcd-tls-cert",
            "etcd-trusted-ca",
        ] {
            assert_eq!(status(&results, id), AuditStatus::Critical, "{id}");
        }
        let https = results.iter().find(|r| r.id == "etcd-https-urls").unwrap();
        assert!(https.message.contains("http://localhost:2379 (the default)"), "{}", https.message);
    }

    #[test]
    fn etcd_with_a_client_ca_but_no_cert_auth_flag_is_a_warning() {
        let ca = "/etc/kubernetes/pki/etcd/ca.crt";
        for (id, flag, ca_flag) in [
            ("etcd-client-cert-auth", "client-cert-auth", "trusted-ca-file"),
            ("etcd-peer-client-cert-auth", "peer-client-cert-auth", "peer-trusted-ca-file"),
        ] {
            let s = |words: &[&str]| status(&check_etcd(&manifest(words), EtcdCaFacts::default()), id);
            let (explicit, with_ca, off) =
                (format!("--{flag}=true"), format!("--{ca_flag}={ca}"), format!("--{flag}=false"));
            assert_eq!(s(&[&explicit, &with_ca]), AuditStatus::Pass, "{id}");
            assert_eq!(s(&[&with_ca]), AuditStatus::Warning, "{id}");
            assert_eq!(s(&[&off, &with_ca]), AuditStatus::Warning, "{id}");
            assert_eq!(s(&["--v=2"]), AuditStatus::Critical, "{id}");
            assert_eq!(s(&[&off]), AuditStatus::Critical, "{id}");
            assert_eq!(s(&[&off, &format!("--{ca_flag}=")]), AuditStatus::Critical, "{id}");
            let warning = check_etcd(&manifest(&[&with_ca]), EtcdCaFacts::default());
            let w = warning.iter().find(|r| r.id == id).unwrap();
            assert!(w.message.contains("already demands and verifies"), "{}", w.message);
            assert!(w.fix.contains(&explicit), "{}", w.fix);
        }
    }

    #[test]
    fn etcd_trusting_the_cluster_ca_is_critical() {
        let m = manifest(&[
            "--trusted-ca-file=/etc/kubernetes/pki/ca.crt",
            "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
        ]);
        let facts = EtcdCaFacts { client_ca_is_cluster_ca: true, peer_ca_is_cluster_ca: false };
        assert_eq!(status(&check_etcd(&m, facts), "etcd-trusted-ca"), AuditStatus::Critical);
        assert_eq!(status(&check_etcd(&m, EtcdCaFacts::default()), "etcd-trusted-ca"), AuditStatus::Pass);
    }

    #[test]
    fn flags_come_from_command_and_args_of_the_named_container() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [
            {"name": "sidecar", "command": ["--port=1"]},
            {"name": "kube-apiserver", "command": ["kube-apiserver", "--secure-port=6443"], "args": ["--secure-port=7443"]},
        ]}});
        let flags = flags_of(&pod, "kube-apiserver").unwrap();
        assert_eq!(flags.get("secure-port"), Some("7443"));
        assert!(flags_of(&pod, "etcd").unwrap_err().contains("no container named \"etcd\""));
        assert!(flags_of(&json!({"kind": "Deployment"}), "etcd").unwrap_err().contains("not a Pod"));
        assert!(flags_of(&json!({"kind": "Pod", "spec": {"containers": [{"command": "etcd"}]}}), "etcd").is_err());
    }
}
