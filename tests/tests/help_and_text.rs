//! What a command shows about itself and its results: `--help` lists only the flags the
//! command reads, completion offers the values a flag takes, a negative duration is a clear
//! error, counts agree with their nouns, CA entries carry their SANs, `tree` sets apart what
//! it could not read, and colour is one decision.

use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// The long flags `kubepki <path> --help` lists.
fn flags(path: &[&str]) -> Vec<String> {
    let help = run(kubepki().args(path).arg("--help")).ok().stdout;
    help.lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("--")))
        .map(|w| w.trim_end_matches(',').to_owned())
        .collect()
}

#[test]
fn issue_kubelet_serving_kubelet_client_and_kubeconfig_user_list_only_the_flags_they_read() {
    let serving = flags(&["issue", "kubelet-serving"]);
    let client = flags(&["issue", "kubelet-client"]);
    let leaf = flags(&["issue", "apiserver"]);
    let user = flags(&["kubeconfig", "user"]);
    for ignored in ["--etcd-server-cert-extra-sans", "--apiserver-cert-extra-sans", "--service-cidr", "--external-etcd"]
    {
        assert!(!user.iter().any(|f| f == ignored), "kubeconfig user lists {ignored}: {user:?}");
    }
    for used in ["--kubeconfig-dir", "--cert-dir", "--control-plane-endpoint", "--cluster-name", "--config"] {
        assert!(user.iter().any(|f| f == used), "kubeconfig user lacks {used}: {user:?}");
    }
    for ignored in [
        "--etcd-server-cert-extra-sans",
        "--etcd-peer-cert-extra-sans",
        "--apiserver-cert-extra-sans",
        "--service-cidr",
        "--service-dns-domain",
        "--external-etcd",
        "--kubeconfig-dir",
    ] {
        assert!(!serving.iter().any(|f| f == ignored), "kubelet-serving lists {ignored}: {serving:?}");
        assert!(!client.iter().any(|f| f == ignored), "kubelet-client lists {ignored}: {client:?}");
    }
    for f in ["--apiserver-advertise-address", "--control-plane-endpoint", "--cluster-name"] {
        assert!(!serving.iter().any(|g| g == f), "kubelet-serving lists {f}");
        assert!(client.iter().any(|g| g == f), "kubelet-client lacks {f}: {client:?}");
    }
    for used in ["--config", "--cert-dir", "--node-name", "--encryption-algorithm", "--cert-validity", "--node-ip"] {
        assert!(serving.iter().any(|f| f == used), "kubelet-serving lacks {used}: {serving:?}");
    }
    // A leaf's SANs come from the cluster flags: it keeps them all.
    for used in ["--etcd-server-cert-extra-sans", "--service-cidr", "--apiserver-cert-extra-sans", "--kubeconfig-dir"] {
        assert!(leaf.iter().any(|f| f == used), "issue apiserver lacks {used}: {leaf:?}");
    }
    // The flags it shows still work: one node's serving certificate from a --config and flags.
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    run(kubepki()
        .args(["issue", "kubelet-serving", "--node-name", "w1", "--node-ip", "10.0.0.7", "--cert-dir"])
        .arg(dir.join("pki"))
        .arg("--out")
        .arg(dir.join("serving")))
    .ok();
    assert!(dir.join("serving/w1/kubelet.crt").exists());
}

#[test]
fn rotate_ca_ca_completes_and_lists_the_three_ca_names() {
    let help = run(kubepki().args(["rotate-ca", "trust", "--help"])).ok().stdout;
    assert!(help.contains("[possible values: ca, front-proxy-ca, etcd-ca]"), "{help}");
    let bash = run(kubepki().args(["completion", "bash"])).ok().stdout;
    assert!(bash.contains("compgen -W \"ca front-proxy-ca etcd-ca\""), "bash does not offer the CA names");
    let zsh = run(kubepki().args(["completion", "zsh"])).ok().stdout;
    assert!(zsh.contains(":CA:(ca front-proxy-ca etcd-ca)"), "zsh does not offer the CA names");
    let fish = run(kubepki().args(["completion", "fish"])).ok().stdout;
    let line = fish.lines().find(|l| l.contains("rotate-ca") && l.contains("-l ca ")).expect("fish completes --ca");
    // Values, not files (-f), starting with `ca`; the others follow on the next lines.
    assert!(line.contains("-r -f -a \"ca"), "{line}");
    assert!(fish.contains("\nfront-proxy-ca\\t") && fish.contains("\netcd-ca\\t"), "fish lacks the CA names");
    // Sourced in bash, completing `kubepki rotate-ca trust --ca ` offers exactly the three.
    let dir = TestDir::new();
    let script = dir.write("kubepki.bash", bash);
    let probe = format!(
        "source {}; COMP_WORDS=(kubepki rotate-ca trust --ca ''); COMP_CWORD=4; \
         COMP_LINE='kubepki rotate-ca trust --ca '; COMP_POINT=${{#COMP_LINE}}; \
         $(complete -p kubepki | sed -E 's/.*-F ([^ ]+).*/\\1/') kubepki '' --ca; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let r = run(Command::new("bash").arg("-c").arg(probe));
    let offered: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(offered, ["ca", "front-proxy-ca", "etcd-ca"], "{}", r.stderr);
}

#[test]
fn a_negative_duration_is_a_clear_input_error_not_an_unknown_flag() {
    let dir = TestDir::new();
    for (args, flag) in [
        (vec!["init", "--cert-validity", "-5h"], "--cert-validity"),
        (vec!["init", "--ca-validity", "-1d"], "--ca-validity"),
        (vec!["init", "--lock-timeout", "-5s"], "--lock-timeout"),
        (vec!["check", "--warn", "-5d"], "--warn"),
        (vec!["audit", "--max-leaf-lifetime", "-5h"], "--max-leaf-lifetime"),
        (vec!["verify", "--timeout", "-1s"], "--timeout"),
        (vec!["recover", "--threshold", "-5d"], "--threshold"),
        (vec!["recover", "--ca-validity", "-1d"], "--ca-validity"),
    ] {
        let r = run(kubepki().current_dir(dir.path()).args(&args).arg("--cert-dir").arg(dir.join("pki")));
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(flag) && r.stderr.contains("must not be negative"), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("unexpected argument"), "{args:?}: {}", r.stderr);
    }
    assert!(!dir.join("pki").exists(), "a refused init wrote the cert dir");
}

#[test]
fn init_json_gives_each_ca_the_sans_its_certificate_carries() {
    let dir = TestDir::new();
    let r = init(dir.path(), &["-o", "json"]).ok();
    let doc: Value = serde_json::from_str(&r.stdout).unwrap();
    let items = doc["items"].as_array().unwrap();
    for (ca, base, dns) in [
        ("ca", "ca", "kubernetes"),
        ("front-proxy-ca", "front-proxy-ca", "front-proxy-ca"),
        ("etcd-ca", "etcd/ca", "etcd-ca"),
    ] {
        let item = items.iter().find(|i| i["name"] == ca).unwrap_or_else(|| panic!("no {ca}"));
        assert_eq!(item["kind"], "ca");
        assert_eq!(item["sans"], format!("DNS:{dns}"), "{item}");
        // What openssl reads from the certificate.
        let text = openssl_text(&dir.join(&format!("pki/{base}.crt")));
        assert!(text.contains(&format!("DNS:{dns}")), "{ca}: {text}");
    }
}

#[test]
fn counts_agree_with_their_nouns() {
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    let rotate = |extra: &[&str]| {
        run(kubepki()
            .arg("rotate")
            .arg("--cert-dir")
            .arg(dir.join("pki"))
            .arg("--kubeconfig-dir")
            .arg(dir.path())
            .args(["--force", "apiserver", "--keep-backups", "1"])
            .args(extra))
        .ok()
        .stdout
    };
    rotate(&[]);
    let second = rotate(&[]);
    assert!(second.contains("removed 1 older backup (--keep-backups)"), "{second}");
    let serving = run(kubepki()
        .args(["issue", "kubelet-serving", "--node-name", "w1", "--node-ip", "10.0.0.7", "--cert-dir"])
        .arg(dir.join("pki"))
        .arg("--out")
        .arg(dir.join("serving")))
    .ok()
    .stdout;
    assert!(serving.contains("[issue] 1 kubelet serving certificate written under"), "{serving}");
    let check = run(kubepki().args(["check", "--no-defaults", "--file"]).arg(dir.join("pki/apiserver.crt"))).stdout;
    assert!(check.contains("\n1 certificate: 1 ok;"), "{check}");
    for text in [&second, &serving, &check] {
        for wrong in [" 1 certificates", " 1 backups", " 1 older backups", " 1 files", " 1 endpoints", " 1 checks"] {
            assert!(!text.contains(wrong), "{wrong:?} in {text}");
        }
    }
}

#[test]
fn tree_shows_unreadable_files_as_unreadable_not_as_unsigned() {
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    std::fs::write(dir.join("pki/front-proxy-client.crt"), "not a certificate\n").unwrap();
    let tree = |output: &str| {
        run(kubepki()
            .args(["tree", "--no-defaults", "--cert-dir"])
            .arg(dir.join("pki"))
            .arg("--kubeconfig-dir")
            .arg(dir.path())
            .args(["-o", output]))
        .expect_code(1)
        .stdout
    };
    let text = tree("text");
    let (_, unreadable) = text.split_once("\nunreadable\n").unwrap_or_else(|| panic!("no unreadable group:\n{text}"));
    assert!(unreadable.contains("front-proxy-client") && unreadable.contains("neither a PEM nor a DER"), "{text}");
    assert!(!text.contains("not signed by a cert dir CA"), "{text}");
    let doc: Value = serde_json::from_str(&tree("json")).unwrap();
    let group =
        doc["roots"].as_array().unwrap().iter().find(|r| r["kind"] == "unreadable").expect("an unreadable root");
    assert_eq!(group["children"][0]["name"], "front-proxy-client", "{group}");
}

/// Colour is one decision for every command (stdout a terminal, `NO_COLOR` unset or empty, as
/// no-color.org has it) and one palette: check's `ok`, tree's bar of a fresh certificate and
/// audit's `CRITICAL` in the same green and red.
#[test]
fn check_audit_and_tree_colour_on_a_terminal_unless_no_color_is_set() {
    if !have("script") {
        return;
    }
    let d = TestDir::new();
    init(d.path(), &[]).ok();
    let pki = d.join("pki");
    let root = d.path().display();
    let commands = [
        (format!("check --no-defaults --cert-dir {}", pki.display()), "\x1b[32mok\x1b[0m"),
        (format!("tree --no-defaults --cert-dir {}", pki.display()), "\x1b[32m█"),
        // No kube-apiserver manifest under the root: its CA keys are a critical finding.
        (format!("audit --root {root} --cert-dir /pki"), "\x1b[31mCRITICAL\x1b[0m"),
    ];
    for (args, painted) in commands {
        for no_color in [None, Some("")] {
            let out = on_a_terminal(&args, d.path(), no_color);
            assert!(out.contains(painted), "{args} (NO_COLOR {no_color:?}): {out:?}");
        }
        let out = on_a_terminal(&args, d.path(), Some("1"));
        assert!(!out.contains('\x1b'), "{args} (NO_COLOR=1): {out:?}");
    }
}
