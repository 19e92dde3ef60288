//! `kubepki tree`: the PKI made by `kubepki init` drawn as text, JSON, Graphviz dot and Mermaid,
//! checked structurally — every CA and leaf present, an edge from each CA to exactly what it
//! signed — and, where Graphviz is installed, the dot output laid out by `dot` itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// What `kubepki init` makes, by CA: the leaves of the cert dir and the kubeconfigs.
const SIGNED: [(&str, &[&str]); 3] = [
    (
        "ca",
        &[
            "apiserver",
            "apiserver-kubelet-client",
            "admin.conf",
            "controller-manager.conf",
            "kubelet.conf",
            "scheduler.conf",
            "super-admin.conf",
        ],
    ),
    ("front-proxy-ca", &["front-proxy-client"]),
    ("etcd-ca", &["etcd-server", "etcd-peer", "etcd-healthcheck-client", "apiserver-etcd-client"]),
];

fn tree(dir: &Path, output: &str) -> Run {
    run(kubepki()
        .args(["tree", "--no-defaults", "--cert-dir"])
        .arg(dir.join("pki"))
        .arg("--kubeconfig-dir")
        .arg(dir)
        .args(["-o", output]))
}

/// The expected edges: (CA, what it signed).
fn expected_edges() -> BTreeSet<(String, String)> {
    SIGNED.iter().flat_map(|(ca, leaves)| leaves.iter().map(move |l| (ca.to_string(), l.to_string()))).collect()
}

/// Node ids to names, and edges by name, from `  nX [label="NAME\n..."...];` and `  nX -> nY;`.
fn parse_dot(dot: &str) -> (BTreeMap<String, String>, BTreeSet<(String, String)>) {
    let mut names = BTreeMap::new();
    let mut edges = Vec::new();
    for line in dot.lines().map(str::trim) {
        if let Some((id, rest)) = line.split_once(" [label=\"") {
            let name = rest.split("\\n").next().unwrap().split('"').next().unwrap().to_owned();
            names.insert(id.to_owned(), name);
        } else if let Some((from, to)) = line.trim_end_matches(';').split_once(" -> ") {
            edges.push((from.to_owned(), to.to_owned()));
        }
    }
    let edges = edges.into_iter().map(|(f, t)| (names[&f].clone(), names[&t].clone())).collect();
    (names, edges)
}

#[test]
fn dot_has_every_ca_and_leaf_and_an_edge_from_each_ca_to_what_it_signed() {
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    let r = tree(dir.path(), "dot").ok();
    assert!(r.stdout.starts_with("digraph kubepki {\n") && r.stdout.ends_with("}\n"), "{}", r.stdout);
    let (names, edges) = parse_dot(&r.stdout);
    let all: BTreeSet<&str> = names.values().map(String::as_str).collect();
    for (ca, leaves) in SIGNED {
        assert!(all.contains(ca), "no {ca} in\n{}", r.stdout);
        for leaf in leaves {
            assert!(all.contains(leaf), "no {leaf} in\n{}", r.stdout);
        }
    }
    // 3 CAs, 12 leaves and kubeconfigs, and the service-account keys (no edge).
    assert_eq!(names.len(), 16, "{}", r.stdout);
    assert!(all.contains("sa.key / sa.pub"), "{}", r.stdout);
    assert_eq!(edges, expected_edges());
    // CAs are drawn bold, kubeconfigs as notes.
    assert!(r.stdout.contains("style=\"rounded,filled,bold\""));
    assert!(r.stdout.lines().any(|l| l.contains("label=\"admin.conf\\n") && l.contains("shape=note")), "{}", r.stdout);

    if have("dot") {
        let svg = Command::new("sh")
            .arg("-c")
            .arg("dot -Tsvg")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(r.stdout.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(svg.status.success(), "dot rejected the output: {}", String::from_utf8_lossy(&svg.stderr));
        let svg = String::from_utf8_lossy(&svg.stdout);
        assert!(svg.contains("<svg") && svg.contains("front") && svg.contains("super"), "{svg}");
    }
}

#[test]
fn mermaid_has_the_same_nodes_and_edges() {
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    let r = tree(dir.path(), "mermaid").ok();
    assert!(r.stdout.starts_with("flowchart LR\n"), "{}", r.stdout);
    let mut names = BTreeMap::new();
    let mut edges = BTreeSet::new();
    for line in r.stdout.lines().skip(1).map(str::trim) {
        if let Some((from, to)) = line.split_once(" --> ") {
            edges.insert((from.to_owned(), to.to_owned()));
        } else {
            let open = line.find(['[', '(', '{']).unwrap_or_else(|| panic!("not a node: {line}"));
            let (id, rest) = line.split_at(open);
            let label = rest.split('"').nth(1).unwrap();
            names.insert(id.to_owned(), label.split("<br/>").next().unwrap().to_owned());
        }
    }
    let edges: BTreeSet<(String, String)> =
        edges.into_iter().map(|(f, t)| (names[&f].clone(), names[&t].clone())).collect();
    assert_eq!(edges, expected_edges());
    assert_eq!(names.len(), 16, "the 15 certificates and the service-account keys");
    // CAs are stadiums, kubeconfigs subroutines.
    assert!(r.stdout.lines().any(|l| l.contains("([\"etcd-ca<br/>")), "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l.contains("[[\"kubelet.conf<br/>")), "{}", r.stdout);
}

#[test]
fn text_is_plain_when_piped_and_json_nests_children() {
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    let r = tree(dir.path(), "text").ok();
    assert!(!r.stdout.contains('█') && !r.stdout.contains('\x1b'), "{}", r.stdout);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("ca ") && lines[0].contains("9y"), "{}", r.stdout);
    assert!(lines[1].starts_with("├── apiserver "), "{}", r.stdout);
    assert!(r.stdout.contains("└── super-admin.conf"), "{}", r.stdout);
    // Leaves come before kubeconfigs under a CA.
    let leaf = r.stdout.find("apiserver-kubelet-client").unwrap();
    let conf = r.stdout.find("admin.conf").unwrap();
    assert!(leaf < conf, "{}", r.stdout);

    let doc: Value = serde_json::from_str(&tree(dir.path(), "json").ok().stdout).unwrap();
    let roots = doc["roots"].as_array().unwrap();
    let names: Vec<&str> = roots.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ca", "front-proxy-ca", "etcd-ca"]);
    let etcd: Vec<&str> =
        roots[2]["children"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(etcd, SIGNED[2].1);
    assert_eq!(roots[0]["kind"], "ca");
    assert_eq!(roots[0]["children"][0]["kind"], "leaf");
    assert!(roots[0]["children"].as_array().unwrap().iter().any(|c| c["kind"] == "kubeconfig"));
}

#[test]
fn a_certificate_no_cert_dir_ca_signed_is_grouped_apart() {
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    // A kubelet serving certificate that is self-signed, as the kubelet makes it.
    std::fs::create_dir_all(dir.join("kubelet")).unwrap();
    let r = run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "365"])
        .args(["-subj", "/CN=cp1@1700000000", "-keyout"])
        .arg(dir.join("kubelet/kubelet.key"))
        .arg("-out")
        .arg(dir.join("kubelet/kubelet.crt")));
    assert_eq!(r.code, 0, "openssl: {}", r.stderr);
    let r = run(kubepki()
        .args(["tree", "--no-defaults", "--cert-dir"])
        .arg(dir.join("pki"))
        .arg("--kubelet-pki-dir")
        .arg(dir.join("kubelet"))
        .args(["-o", "json"]))
    .ok();
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let last = doc["roots"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "unlinked", "{doc:#}");
    assert_eq!(last["children"][0]["kind"], "kubelet", "{doc:#}");
    let dot = run(kubepki()
        .args(["tree", "--no-defaults", "--cert-dir"])
        .arg(dir.join("pki"))
        .arg("--kubelet-pki-dir")
        .arg(dir.join("kubelet"))
        .args(["-o", "dot"]))
    .ok();
    let (_, edges) = parse_dot(&dot.stdout);
    assert!(edges.iter().all(|(from, _)| from != "not signed by a cert dir CA"), "{edges:?}");
}

#[test]
fn an_unreadable_input_is_reported_and_the_rest_drawn() {
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    dir.write("broken.conf", "clusters: [unclosed\n");
    let r = tree(dir.path(), "text").expect_code(1);
    assert!(r.stderr.contains("broken.conf"), "{}", r.stderr);
    assert!(r.stdout.contains("├── apiserver "), "{}", r.stdout);
}

/// `tree` reads the sources `check` reads: a kubeconfig named by `$KUBECONFIG`, outside the
/// kubeconfig dir, is drawn under the CA that signed it, and `check` reports the same file.
/// (tree used to build its own default sources and ignored `$KUBECONFIG`.)
#[test]
fn a_kubeconfig_named_by_the_kubeconfig_variable_is_drawn_as_check_reports_it() {
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    let elsewhere = dir.join("elsewhere");
    let kubelet = dir.join("kubelet");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(&kubelet).unwrap();
    let user = elsewhere.join("dev-user.conf");
    std::fs::copy(dir.join("admin.conf"), &user).unwrap();
    // Defaults on, every default directory pointed into the test dir, an empty HOME.
    let json = |command: &str| -> Value {
        let r = run(kubepki()
            .arg(command)
            .arg("--cert-dir")
            .arg(dir.join("pki"))
            .arg("--kubeconfig-dir")
            .arg(dir.path())
            .arg("--kubelet-pki-dir")
            .arg(&kubelet)
            .args(["-o", "json"])
            .env("HOME", dir.join("home"))
            .env("KUBECONFIG", &user));
        assert_eq!(r.code, 0, "{command}: {}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{command}: {e}\n{}", r.stdout))
    };
    let tree = json("tree");
    let ca = &tree["roots"][0];
    assert_eq!(ca["name"], "ca");
    let drawn = ca["children"].as_array().unwrap().iter().find(|c| c["location"] == user.display().to_string());
    let drawn = drawn.unwrap_or_else(|| panic!("{} is not drawn under ca: {tree:#}", user.display()));
    assert_eq!((drawn["name"].as_str(), drawn["kind"].as_str()), (Some("dev-user.conf"), Some("kubeconfig")));
    let check = json("check");
    let reported = check["items"].as_array().unwrap().iter().find(|i| i["name"] == "dev-user.conf");
    let reported = reported.unwrap_or_else(|| panic!("check does not report dev-user.conf: {check:#}"));
    assert_eq!(reported["caName"], "ca", "{reported:#}");
}
