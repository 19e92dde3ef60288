//! The material in `examples/` is checked as CI would deploy it: the CronJob and the Prometheus
//! rules parsed and validated against the fields they must have, their expressions parsed and
//! their metric names found in what `kubepki check -o prometheus` prints, the systemd units'
//! keys checked (and `systemd-analyze verify` run where it exists), every kubepki flag they use
//! accepted by the binary. The library examples are built by `cargo test` itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::*;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn read(rel: &str) -> String {
    let p = examples_dir().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn yaml(rel: &str) -> Value {
    serde_saphyr::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The long flags `kubepki <command> --help` lists.
fn flags_of(command: &[&str]) -> BTreeSet<String> {
    let help = run(kubepki().args(command).arg("--help")).ok().stdout;
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.split('=').next().unwrap().trim_end_matches('.').to_owned())
        .collect()
}

/// Checks that `args` (a kubepki command line without the program) names a subcommand and only
/// flags that subcommand accepts.
fn assert_kubepki_args(args: &[String], context: &str) {
    let command = args.first().unwrap_or_else(|| panic!("{context}: no kubepki command"));
    let known = flags_of(&[command]);
    assert!(!known.is_empty(), "{context}: `kubepki {command} --help` lists no flags");
    for a in args.iter().skip(1).filter(|a| a.starts_with("--")) {
        let flag = a.split('=').next().unwrap();
        assert!(known.contains(flag), "{context}: kubepki {command} does not accept {flag} (it has {known:?})");
    }
}

/// A cron schedule of five fields, each `*`, a number in range, a list, range or step of them.
fn valid_cron(schedule: &str) -> bool {
    let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    fields.len() == 5
        && fields.iter().zip(ranges).all(|(f, (lo, hi))| {
            f.split(',').all(|part| {
                let (base, step) = part.split_once('/').unwrap_or((part, "1"));
                let step_ok = step.parse::<u32>().is_ok_and(|s| s > 0);
                let in_range = |s: &str| s.parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n));
                let base_ok = base == "*"
                    || in_range(base)
                    || base.split_once('-').is_some_and(|(a, b)| in_range(a) && in_range(b));
                step_ok && base_ok
            })
        })
}

#[test]
fn the_cronjob_runs_once_at_a_time_on_control_plane_nodes_with_the_host_pki() {
    let doc = yaml("cron/kubepki-rotate-cronjob.yaml");
    assert_eq!(doc["apiVersion"], "batch/v1");
    assert_eq!(doc["kind"], "CronJob");
    assert_eq!(doc["metadata"]["namespace"], "kube-system");
    let spec = &doc["spec"];
    let schedule = spec["schedule"].as_str().expect("spec.schedule");
    assert!(valid_cron(schedule), "invalid schedule {schedule:?}");
    assert_eq!(spec["concurrencyPolicy"], "Forbid");
    let pod = &spec["jobTemplate"]["spec"]["template"]["spec"];
    assert!(["Never", "OnFailure"].contains(&pod["restartPolicy"].as_str().unwrap()), "restartPolicy");
    assert!(pod["nodeSelector"].get("node-role.kubernetes.io/control-plane").is_some(), "control-plane nodeSelector");
    let tolerates = pod["tolerations"].as_array().expect("tolerations").iter().any(|t| {
        t["key"] == "node-role.kubernetes.io/control-plane"
            && t["effect"] == "NoSchedule"
            && (t["operator"] == "Exists" || t.get("value").is_some())
    });
    assert!(tolerates, "no toleration of the control-plane taint");
    let volumes = pod["volumes"].as_array().expect("volumes");
    let host_paths: BTreeSet<&str> = volumes.iter().filter_map(|v| v["hostPath"]["path"].as_str()).collect();
    assert!(host_paths.contains("/etc/kubernetes"), "hostPath /etc/kubernetes: {host_paths:?}");
    let volume_names: BTreeSet<&str> = volumes.iter().filter_map(|v| v["name"].as_str()).collect();
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    for m in c["volumeMounts"].as_array().expect("volumeMounts") {
        let name = m["name"].as_str().unwrap();
        assert!(volume_names.contains(name), "volumeMount {name} has no volume");
        let volume = volumes.iter().find(|v| v["name"] == name).unwrap();
        assert_eq!(m["mountPath"], volume["hostPath"]["path"], "{name} is mounted where the host has it");
    }
    let args: Vec<String> =
        c["args"].as_array().expect("args").iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    assert_kubepki_args(&args, "the CronJob");
    // One CronJob per control-plane node, generated by the command its header documents.
    let text = read("cron/kubepki-rotate-cronjob.yaml");
    assert!(text.contains(r#"sed "s/NODE_NAME/$node/g" examples/cron/kubepki-rotate-cronjob.yaml"#), "generator");
    assert!(text.contains("kubectl get nodes -l node-role.kubernetes.io/control-plane"), "generator");
    for node in ["cp-1", "cp-2"] {
        let doc: Value = serde_saphyr::from_str(&text.replace("NODE_NAME", node)).unwrap();
        let cronjob: k8s_openapi::api::batch::v1::CronJob = strict(&doc, "the CronJob");
        assert_eq!(cronjob.metadata.name.as_deref(), Some(format!("kubepki-rotate-{node}").as_str()));
        let pod = cronjob.spec.unwrap().job_template.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.node_name.as_deref(), Some(node));
    }
    // What rotate writes lives on the mounted host paths.
    for a in &args {
        if let Some((_, path)) = a.split_once('=').filter(|(f, _)| f.ends_with("-dir") || f.ends_with("-log")) {
            assert!(host_paths.iter().any(|h| path.starts_with(h)), "{a} is not on a hostPath volume");
        }
    }
}

/// The sections of a unit file and their `key=value` pairs (continuation lines joined).
fn unit(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut sections: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let joined = text.replace("\\\n", " ");
    for line in joined.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.to_owned(), Vec::new()));
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("not key=value: {line}"));
        sections.last_mut().expect("a key before any section").1.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    sections
}

/// The keys systemd knows in each section the examples use (systemd.unit(5), systemd.service(5),
/// systemd.exec(5), systemd.timer(5)), to catch a misspelling even without systemd-analyze.
fn known_keys(section: &str) -> &'static [&'static str] {
    match section {
        "Unit" => &["Description", "Documentation", "After", "Before", "Wants", "Requires", "ConditionPathExists"],
        "Service" => &[
            "Type",
            "ExecStart",
            "ExecStartPre",
            "ProtectSystem",
            "ReadWritePaths",
            "PrivateTmp",
            "NoNewPrivileges",
            "ProtectHome",
            "Environment",
            "TimeoutStartSec",
            "Nice",
            "IOSchedulingClass",
        ],
        "Timer" => &["OnCalendar", "RandomizedDelaySec", "Persistent", "OnBootSec", "AccuracySec", "Unit"],
        "Install" => &["WantedBy", "RequiredBy"],
        other => panic!("unexpected section [{other}]"),
    }
}

fn value<'a>(sections: &'a [(String, Vec<(String, String)>)], section: &str, key: &str) -> Option<&'a str> {
    sections.iter().find(|(s, _)| s == section)?.1.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn the_systemd_units_have_known_keys_and_a_valid_command() {
    let service = unit(&read("cron/kubepki-rotate.service"));
    let timer = unit(&read("cron/kubepki-rotate.timer"));
    for (name, sections) in [("service", &service), ("timer", &timer)] {
        for (section, keys) in sections.iter() {
            for (k, _) in keys {
                assert!(known_keys(section).contains(&k.as_str()), "{name}: unknown key {k} in [{section}]");
            }
        }
    }
    assert_eq!(value(&service, "Service", "Type"), Some("oneshot"));
    let exec = value(&service, "Service", "ExecStart").expect("ExecStart");
    let words = kubepki_rotator::inventory::flags::split_words(exec);
    assert!(words[0].starts_with('/') && words[0].ends_with("/kubepki"), "{exec}");
    assert_kubepki_args(&words[1..], "the service's ExecStart");
    // rotate writes the PKI and its log: both must be writable under ProtectSystem=strict.
    let writable = value(&service, "Service", "ReadWritePaths").unwrap_or_default();
    for dir in ["/etc/kubernetes", "/var/log/kubepki"] {
        assert!(writable.split_whitespace().any(|w| w == dir), "ReadWritePaths lacks {dir}");
    }
    assert!(value(&timer, "Timer", "OnCalendar").is_some(), "OnCalendar");
    assert_eq!(value(&timer, "Timer", "Persistent"), Some("true"));
    assert_eq!(value(&timer, "Install", "WantedBy"), Some("timers.target"));

    if have("systemd-analyze") {
        // Verified as installed, with the binary this test run built in place of the path.
        let dir = TestDir::new();
        let svc = read("cron/kubepki-rotate.service")
            .replace("/usr/local/bin/kubepki rotate", &format!("{} rotate", env!("CARGO_BIN_EXE_kubepki")));
        dir.write("kubepki-rotate.service", svc);
        dir.write("kubepki-rotate.timer", read("cron/kubepki-rotate.timer"));
        let r = run(Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.join("kubepki-rotate.service"))
            .arg(dir.join("kubepki-rotate.timer")));
        assert_eq!(r.code, 0, "systemd-analyze verify: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.trim().is_empty(), "systemd-analyze verify complained:\n{}", r.stderr);
    }
}

/// Whether `()`, `[]` and `{}` nest properly in `expr` (outside double-quoted strings).
fn balanced(expr: &str) -> bool {
    let mut stack = Vec::new();
    let mut in_string = false;
    for c in expr.chars() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return false;
                }
            }
            _ => {}
        }
    }
    stack.is_empty() && !in_string
}

/// The metric families `kubepki check -o prometheus` prints for a fresh PKI, and the labels of
/// their samples.
fn exported_metrics() -> (BTreeSet<String>, BTreeSet<String>) {
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    let out = run(kubepki()
        .args(["check", "--no-defaults", "--cert-dir"])
        .arg(dir.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(dir.path())
        .args(["-o", "prometheus"]))
    .ok()
    .stdout;
    let families = out
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    let labels = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('{').map(|(_, rest)| rest.split_once('}').unwrap().0.to_owned()))
        .flat_map(|ls| ls.split("\",").map(|kv| kv.split('=').next().unwrap().to_owned()).collect::<Vec<_>>())
        .collect();
    (families, labels)
}

#[test]
fn the_alert_rules_are_well_formed_and_use_only_metrics_kubepki_exports() {
    let doc = yaml("prometheus/kubepki-alerts.yaml");
    let (families, labels) = exported_metrics();
    assert!(families.contains("kubepki_certificate_expiration_timestamp_seconds"), "{families:?}");
    let groups = doc["groups"].as_array().expect("groups");
    assert!(!groups.is_empty());
    let mut alerts = BTreeSet::new();
    let mut used = BTreeSet::new();
    for g in groups {
        assert!(g["name"].as_str().is_some_and(|n| !n.is_empty()), "group without a name");
        for r in g["rules"].as_array().expect("rules") {
            let alert = r["alert"].as_str().expect("alert");
            assert!(alerts.insert(alert.to_owned()), "duplicate alert {alert}");
            let expr = r["expr"].as_str().unwrap_or_else(|| panic!("{alert}: expr"));
            assert!(balanced(expr), "{alert}: unbalanced brackets in {expr}");
            let for_ = r["for"].as_str().unwrap_or_else(|| panic!("{alert}: for"));
            assert!(kubepki_pki::parse_duration(for_).is_ok(), "{alert}: for {for_:?}");
            let severity = r["labels"]["severity"].as_str().unwrap_or_else(|| panic!("{alert}: labels.severity"));
            assert!(["warning", "critical"].contains(&severity), "{alert}: severity {severity}");
            for a in ["summary", "description"] {
                let text = r["annotations"][a].as_str().unwrap_or_else(|| panic!("{alert}: annotations.{a}"));
                assert!(balanced(&text.replace("{{", "(").replace("}}", ")")), "{alert}: {a} templates");
                // $labels.X must be a label kubepki exports, or one Prometheus adds.
                for part in text.split("$labels.").skip(1) {
                    let label: String = part.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    assert!(
                        labels.contains(&label) || label == "instance" || label == "job",
                        "{alert}: no label {label}"
                    );
                }
            }
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("kubepki_") {
                    assert!(families.contains(word), "{alert}: kubepki exports no metric {word} ({families:?})");
                    used.insert(word.to_owned());
                }
            }
        }
    }
    assert!(used.contains("kubepki_certificate_expiration_timestamp_seconds"));
    for a in ["KubePKICertificateExpiringSoon", "KubePKICertificateExpiringCritical", "KubePKICertificateExpired"] {
        assert!(alerts.contains(a), "no alert {a}");
    }
    if have("promtool") {
        let r = run(Command::new("promtool")
            .args(["check", "rules"])
            .arg(examples_dir().join("prometheus/kubepki-alerts.yaml")));
        assert_eq!(r.code, 0, "promtool check rules:\n{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(&format!("SUCCESS: {} rules found", alerts.len())), "{}", r.stdout);
    }
}

/// The agent's rules: well-formed, checked by promtool, and their unit tests on example series
/// pass (`promtool test rules`). That they name only series the agent serves is checked against
/// a running agent (agent.rs).
#[test]
fn the_agent_alert_rules_pass_their_promtool_unit_tests() {
    let doc = yaml("prometheus/kubepki-agent-alerts.yaml");
    let rules: Vec<&Value> =
        doc["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).collect();
    let alerts: BTreeSet<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    for a in ["KubePKIAgentRotationFailed", "KubePKIAgentNotReporting", "KubePKIAgentAbsent"] {
        assert!(alerts.contains(a), "no alert {a}");
    }
    for r in &rules {
        assert!(balanced(r["expr"].as_str().unwrap()));
        assert!(["warning", "critical"].contains(&r["labels"]["severity"].as_str().unwrap()));
    }
    let tests = read("prometheus/kubepki-alerts.test.yaml");
    for a in &alerts {
        assert!(tests.contains(&format!("alertname: {a}")), "{a} has no unit test");
    }
    if have("promtool") {
        let dir = examples_dir().join("prometheus");
        let r = run(Command::new("promtool").args(["check", "rules"]).arg(dir.join("kubepki-agent-alerts.yaml")));
        assert_eq!(r.code, 0, "promtool check rules:\n{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(&format!("SUCCESS: {} rules found", alerts.len())), "{}", r.stdout);
        let r = run(Command::new("promtool").current_dir(&dir).args(["test", "rules", "kubepki-alerts.test.yaml"]));
        assert_eq!(r.code, 0, "promtool test rules:\n{}{}", r.stdout, r.stderr);
    }
}

#[test]
fn the_bracket_checker_finds_what_it_should() {
    assert!(balanced("sum by (instance) (x{status=~\"a|b\"}) > 0"));
    assert!(!balanced("sum(rate(x[5m])"));
    assert!(!balanced("x{a=\"b\")"));
    assert!(balanced("x{a=\")\"}"));
    assert!(valid_cron("17 3 * * *") && valid_cron("*/15 0-6 1,15 * 1-5"));
    assert!(!valid_cron("61 3 * * *") && !valid_cron("* * * *"));
}

/// `value` deserialised into the k8s-openapi type `T`, strictly: k8s-openapi's types accept
/// and drop fields they do not have, so the value is serialised again and must come back
/// unchanged: a field Kubernetes does not know (a typo, a field at the wrong level) or a value
/// of the wrong type fails, naming its path.
fn strict<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value, what: &str) -> T {
    let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    let mut differences = Vec::new();
    differ(value, &back, "", &mut differences);
    assert!(differences.is_empty(), "{what}: not as Kubernetes reads it: {differences:?}");
    typed
}

/// The paths where `given` and `read` differ.
fn differ(given: &Value, read: &Value, path: &str, out: &mut Vec<String>) {
    match (given, read) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => differ(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: unknown field")),
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}.{k}: added"));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                differ(v, w, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: {a} read as {b}")),
    }
}

#[test]
fn strict_reading_refuses_a_field_kubernetes_does_not_know() {
    let mut doc = yaml("kubernetes/kubepki-agent-workers.yaml");
    strict::<k8s_openapi::api::apps::v1::DaemonSet>(&doc, "as written");
    doc["spec"]["template"]["spec"]["nodeSelektor"] = serde_json::json!({"a": "b"});
    let refused = std::panic::catch_unwind(|| strict::<k8s_openapi::api::apps::v1::DaemonSet>(&doc, "typo"));
    let message = *refused.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains(".spec.template.spec.nodeSelektor: unknown field"), "{message}");
    let mut doc = yaml("kubernetes/kubepki-agent-workers.yaml");
    doc["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = serde_json::json!("9842");
    assert!(std::panic::catch_unwind(|| strict::<k8s_openapi::api::apps::v1::DaemonSet>(&doc, "type")).is_err());
}

/// The agent's container in a DaemonSet: its args (`$(NODE_IP)` given a value), the host paths
/// it mounts (path -> read-only), and the pod spec.
fn agent_daemonset(rel: &str) -> (Vec<String>, std::collections::BTreeMap<String, bool>, Value) {
    let doc = yaml(rel);
    let ds: k8s_openapi::api::apps::v1::DaemonSet = strict(&doc, rel);
    assert_eq!(ds.metadata.namespace.as_deref(), Some("kube-system"), "{rel}");
    let spec = ds.spec.unwrap();
    let template_labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    for (k, v) in spec.selector.match_labels.unwrap_or_default() {
        assert_eq!(template_labels.get(&k), Some(&v), "{rel}: the selector does not select the pods");
    }
    let pod = doc["spec"]["template"]["spec"].clone();
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "{rel}");
    let c = &containers[0];
    let args: Vec<String> =
        c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().replace("$(NODE_IP)", "10.0.0.1")).collect();
    for a in c["args"].as_array().unwrap().iter().filter_map(|a| a.as_str()) {
        if a.contains("$(NODE_IP)") {
            let env = c["env"].as_array().unwrap().iter().find(|e| e["name"] == "NODE_IP").expect("NODE_IP");
            assert_eq!(env["valueFrom"]["fieldRef"]["fieldPath"], "status.hostIP");
        }
    }
    // The real binary accepts the args as the container runs them.
    let check = run(kubepki().args(&args).arg("--check-args"));
    assert_eq!(check.code, 0, "{rel}: kubepki {args:?}: {}", check.stderr);
    let volumes = pod["volumes"].as_array().unwrap();
    let mut mounts = std::collections::BTreeMap::new();
    for m in c["volumeMounts"].as_array().unwrap() {
        let v = volumes.iter().find(|v| v["name"] == m["name"]).unwrap_or_else(|| panic!("{rel}: {m}"));
        let host = v["hostPath"]["path"].as_str().unwrap();
        assert_eq!(m["mountPath"], host, "{rel}: mounted where the host has it");
        mounts.insert(host.to_owned(), m["readOnly"] == true);
    }
    // Every path flag is on a mounted host path.
    for a in &args {
        if let Some((_, path)) = a.split_once('=').filter(|(f, _)| f.ends_with("-dir") || f.ends_with("-log")) {
            assert!(mounts.keys().any(|h| path.starts_with(h.as_str())), "{rel}: {a} is not on a hostPath volume");
        }
    }
    // The minimal securityContext, resource requests, and the port Prometheus is told to scrape.
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{rel}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{rel}");
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]), "{rel}");
    assert!(sc["capabilities"].get("add").is_none() && sc.get("privileged").is_none(), "{rel}");
    assert_eq!(pod["automountServiceAccountToken"], false, "{rel}");
    assert!(c["resources"]["requests"]["cpu"].is_string() && c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string(), "{rel}");
    let annotations = &doc["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true", "{rel}");
    let port = annotations["prometheus.io/port"].as_str().unwrap();
    assert_eq!(c["ports"][0]["containerPort"].to_string(), port, "{rel}");
    let listen = args.iter().find_map(|a| a.strip_prefix("--listen=")).expect("--listen");
    assert!(listen.ends_with(&format!(":{port}")), "{rel}: --listen {listen} is not the scraped port {port}");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{rel}");
    (args, mounts, pod)
}

#[test]
fn the_worker_agents_only_watch_every_other_node_read_only() {
    let (args, mounts, pod) = agent_daemonset("kubernetes/kubepki-agent-workers.yaml");
    assert!(args.iter().any(|a| a == "--no-rotate"), "{args:?}");
    assert_eq!(mounts.get("/etc/kubernetes"), Some(&true), "{mounts:?}");
    assert_eq!(mounts.get("/var/lib/kubelet/pki"), Some(&true), "{mounts:?}");
    assert!(mounts.values().all(|ro| *ro), "a worker agent mounts something writable: {mounts:?}");
    let terms = &pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    assert_eq!(terms[0]["matchExpressions"][0]["key"], "node-role.kubernetes.io/control-plane");
    assert_eq!(terms[0]["matchExpressions"][0]["operator"], "DoesNotExist");
    assert!(pod.get("hostNetwork").is_none(), "a worker agent needs no host network");
}

#[test]
fn the_control_plane_agents_renew_on_every_control_plane_node_taking_turns() {
    let (args, mounts, pod) = agent_daemonset("kubernetes/kubepki-agent-control-plane.yaml");
    assert!(!args.iter().any(|a| a == "--no-rotate"), "{args:?}");
    assert!(args.iter().any(|a| a.starts_with("--etcd-lock=https://127.0.0.1:")), "{args:?}");
    assert!(args.iter().any(|a| a.starts_with("--audit-log=")), "{args:?}");
    assert_eq!(mounts.get("/etc/kubernetes"), Some(&false), "the cert dir must be writable: {mounts:?}");
    assert_eq!(mounts.get("/var/lib/kubelet/pki"), Some(&true), "{mounts:?}");
    assert!(pod["nodeSelector"].get("node-role.kubernetes.io/control-plane").is_some());
    let tolerates = pod["tolerations"].as_array().unwrap().iter().any(|t| {
        t["key"] == "node-role.kubernetes.io/control-plane" && t["effect"] == "NoSchedule" && t["operator"] == "Exists"
    });
    assert!(tolerates, "no toleration of the control-plane taint");
    // etcd on the host's 127.0.0.1 is reachable only from the host's network namespace.
    assert_eq!(pod["hostNetwork"], true);
    // The manifests directory holds exactly these two.
    let mut files: Vec<String> = std::fs::read_dir(examples_dir().join("kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["kubepki-agent-control-plane.yaml", "kubepki-agent-workers.yaml"]);
}
