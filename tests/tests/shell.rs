//! Shell completions and the manual page, generated from the command line's definition: each
//! shell gets a script that its own parser accepts, and the man page names every subcommand.
//! Also the one `-o/--output` flag every report-printing command shares.

use std::collections::BTreeSet;
use std::process::Command;

use crate::common::*;

/// The subcommands `kubepki [COMMAND...] --help` lists (without `help`).
fn subcommands(path: &[&str]) -> Vec<String> {
    let help = run(kubepki().args(path).arg("--help")).ok().stdout;
    let Some((_, rest)) = help.split_once("\nCommands:\n") else { return Vec::new() };
    rest.lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// Every runnable command line: `["init"]`, `["issue", "apiserver"]`, `["rotate-ca", "trust"]`, ...
fn leaf_commands() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut queue: Vec<Vec<String>> = subcommands(&[]).into_iter().map(|c| vec![c]).collect();
    while let Some(path) = queue.pop() {
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        let subs = subcommands(&refs);
        if subs.is_empty() {
            out.push(path);
        } else {
            queue.extend(subs.into_iter().map(|s| [path.clone(), vec![s]].concat()));
        }
    }
    out.sort();
    out
}

#[test]
fn every_shell_gets_a_completion_script_that_knows_every_subcommand() {
    let top = subcommands(&[]);
    for expected in ["init", "check", "rotate", "rotate-ca", "verify", "audit", "tree", "completion", "man"] {
        assert!(top.iter().any(|c| c == expected), "no {expected} in {top:?}");
    }
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = run(kubepki().args(["completion", shell])).ok();
        assert!(r.stdout.len() > 500, "{shell}: {}", r.stdout);
        for c in &top {
            assert!(r.stdout.contains(c.as_str()), "{shell} completion does not know {c}");
        }
        // Flags of a nested subcommand are there too.
        assert!(r.stdout.contains("max-leaf-lifetime"), "{shell}: no audit flags");
    }
    let unknown = run(kubepki().args(["completion", "tcsh"]));
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
}

#[test]
fn the_bash_completion_parses_and_registers_itself() {
    let dir = TestDir::new();
    let script = dir.write("kubepki.bash", run(kubepki().args(["completion", "bash"])).ok().stdout);
    let r = run(Command::new("bash").arg("-n").arg(&script));
    assert_eq!(r.code, 0, "bash -n: {}", r.stderr);
    // Sourced, it registers a completion for kubepki, and completing `kubepki au` offers audit.
    let probe = format!(
        "source {}; complete -p kubepki; COMP_WORDS=(kubepki au); COMP_CWORD=1; COMP_LINE='kubepki au'; \
         COMP_POINT=10; $(complete -p kubepki | sed -E 's/.*-F ([^ ]+).*/\\1/') kubepki au kubepki; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let r = run(Command::new("bash").arg("-c").arg(probe));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("complete") && r.stdout.contains("kubepki"), "{}", r.stdout);
    assert!(r.stdout.lines().any(|l| l == "audit"), "completing `kubepki au`: {}", r.stdout);
}

#[test]
fn the_zsh_and_fish_completions_parse_where_those_shells_exist() {
    for (shell, check) in [("zsh", vec!["-n"]), ("fish", vec!["--no-execute"])] {
        if !have(shell) {
            continue;
        }
        let dir = TestDir::new();
        let script = dir.write(&format!("kubepki.{shell}"), run(kubepki().args(["completion", shell])).ok().stdout);
        let r = run(Command::new(shell).args(&check).arg(&script));
        assert_eq!(r.code, 0, "{shell} {check:?}: {}{}", r.stdout, r.stderr);
    }
}

#[test]
fn the_man_page_is_roff_and_names_every_subcommand() {
    let r = run(kubepki().arg("man")).ok();
    assert!(r.stdout.starts_with(".ie \\n(.g .ds Aq") || r.stdout.contains(".TH kubepki 1"), "{}", r.stdout);
    assert!(r.stdout.contains(".TH kubepki 1"), "{}", r.stdout);
    assert!(r.stdout.contains(".SH SUBCOMMANDS") || r.stdout.contains(".SH COMMANDS"), "{}", r.stdout);
    for c in subcommands(&[]) {
        assert!(r.stdout.contains(&format!("kubepki\\-{}", c.replace('-', "\\-"))), "man page lacks {c}");
    }

    // --out-dir writes one page per command, nested ones included.
    let dir = TestDir::new();
    run(kubepki().arg("man").arg("--out-dir").arg(dir.join("man1"))).ok();
    let pages: BTreeSet<String> = std::fs::read_dir(dir.join("man1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for c in leaf_commands() {
        let page = format!("kubepki-{}.1", c.join("-"));
        assert!(pages.contains(&page), "no {page} in {pages:?}");
    }
    let audit = std::fs::read_to_string(dir.join("man1/kubepki-audit.1")).unwrap();
    assert!(audit.contains("\\-\\-root"), "{audit}");
    if have("man") {
        let r = run(Command::new("man").args(["--warnings", "-l", "-Tutf8"]).arg(dir.join("man1/kubepki.1")));
        assert_eq!(r.code, 0, "man: {}", r.stderr);
    }
}

#[test]
fn every_command_that_prints_a_report_takes_the_same_output_flag() {
    // completion and man print a script and a page, agent serves its report over HTTP (and logs
    // JSON lines); everything else prints a report.
    let exempt = ["completion", "man", "agent"];
    let commands = leaf_commands();
    assert!(commands.len() > 15, "{commands:?}");
    for path in commands.iter().filter(|p| !exempt.contains(&p[0].as_str())) {
        let refs: Vec<&str> = path.iter().map(String::as_str).collect();
        let help = run(kubepki().args(&refs).arg("--help")).ok().stdout;
        assert!(help.contains("-o, --output <OUTPUT>"), "kubepki {} has no -o/--output:\n{help}", path.join(" "));
        assert!(help.contains("json"), "kubepki {} -o has no json:\n{help}", path.join(" "));
    }
}

#[test]
fn kubeconfig_user_prints_the_same_kubeconfig_as_json() {
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    let user =
        |output: &str| {
            run(kubepki()
                .args(["kubeconfig", "user", "--client-name", "alice", "--cert-dir"])
                .arg(dir.join("pki"))
                .args(["--node-name", "cp1", "--apiserver-advertise-address", "127.0.0.1", "-o", output]))
            .ok()
            .stdout
        };
    let json: serde_json::Value = serde_json::from_str(&user("json")).unwrap();
    assert_eq!(json["kind"], "Config");
    assert_eq!(json["current-context"], "alice@kubernetes");
    assert_eq!(json["users"][0]["name"], "alice");
    let yaml = user("yaml");
    assert!(yaml.contains("current-context: alice@kubernetes"), "{yaml}");
    // kubectl reads the JSON form as it reads the YAML one.
    if have("kubectl") {
        let file = dir.write("alice.json", json.to_string());
        let r = run(Command::new("kubectl")
            .args(["config", "view", "--kubeconfig"])
            .arg(&file)
            .args(["-o", "jsonpath={.users[0].name}"]));
        assert_eq!(r.stdout, "alice", "{}", r.stderr);
    }
}

/// The commands whose output a user pipes into `head` or `grep -q`, with a PKI under `dir`.
fn piped_commands(dir: &std::path::Path) -> Vec<(String, Command)> {
    let mut check = kubepki();
    check.arg("check").arg("--cert-dir").arg(dir.join("pki")).arg("--kubeconfig-dir").arg(dir);
    std::fs::create_dir_all(dir.join("kubelet")).unwrap();
    check.arg("--kubelet-pki-dir").arg(dir.join("kubelet"));
    let mut tree = kubepki();
    tree.arg("tree").arg("--cert-dir").arg(dir.join("pki")).arg("--kubeconfig-dir").arg(dir);
    let mut man = kubepki();
    man.arg("man");
    let mut completion = kubepki();
    completion.args(["completion", "bash"]);
    vec![("man".into(), man), ("completion bash".into(), completion), ("check".into(), check), ("tree".into(), tree)]
}

#[test]
fn a_closed_pipe_ends_every_printing_command_quietly_with_status_141() {
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    for (name, mut cmd) in piped_commands(dir.path()) {
        // A reader that is gone before the first write: every write fails with EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = cmd.stdin(std::process::Stdio::null()).stdout(writer).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "kubepki {name}: {:?}, stderr: {stderr}", out.status);
        assert!(stderr.is_empty(), "kubepki {name} printed on stderr: {stderr}");
    }
}

#[test]
fn piping_into_head_or_grep_q_prints_nothing_on_stderr() {
    let dir = TestDir::new();
    init(dir.path(), &[]).ok();
    for (name, cmd) in piped_commands(dir.path()) {
        let line = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ");
        for reader in ["head -1 >/dev/null", "grep -q ."] {
            // The writer ends with 0 when it wrote everything before the reader left, 141 when a
            // write found the pipe closed: never anything else, never a word on stderr.
            let script = format!("set -o pipefail; NO_COLOR=1 {line} 2>&3 | {reader}; echo ${{PIPESTATUS[0]}}");
            let r = run(Command::new("bash").arg("-c").arg(format!("{{ {script}; }} 3>&2")));
            let status = r.stdout.trim();
            assert!(status == "0" || status == "141", "kubepki {name} | {reader}: status {status}, {}", r.stderr);
            assert!(r.stderr.is_empty(), "kubepki {name} | {reader}: stderr {}", r.stderr);
        }
    }
}
