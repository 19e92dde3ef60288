//! The rotator's layering rule, enforced: a module may use the modules of lower layers only
//! (docs/architecture.md draws them). Reading a cert dir never depends on the code that
//! rotates it, and the inventory, `check`, `tree` and the node audit never depend on the code
//! that talks to a cluster.
//!
//! Every `crate::<module>` path in code (comments aside) is checked against this table. The
//! crate's one error enum (`error.rs`) names every layer's failures and may be used from any
//! layer; `lib.rs` only declares and re-exports.

use std::fs;
use std::path::{Path, PathBuf};

/// The layers, bottom first. Modules of one layer do not use each other either.
const LAYERS: &[&[&str]] = &[
    &["text", "runtime"],
    &["verify"],
    &["inventory"],
    &["check", "tree"],
    &["node_audit", "rotation"],
    &["ca_rotation", "sa_rotation"],
    &["recover"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The wrong-way uses in one file of top-level module `module`: `(line, used module)`.
fn violations(module: &str, source: &str) -> Vec<(usize, String)> {
    let Some(own) = layer_of(module) else { return Vec::new() };
    let mut found = Vec::new();
    for (n, line) in source.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let used: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            // `kubepki_rotator::crate::` cannot occur; `$crate::` in a macro would be in-crate too.
            let before = &code[..at];
            if before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            if used == module {
                continue;
            }
            if let Some(theirs) = layer_of(&used)
                && theirs >= own
            {
                found.push((n + 1, used));
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_uses_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut placed = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_str().unwrap();
        let module = top.strip_suffix(".rs").unwrap_or(top);
        if matches!(module, "lib" | "error") {
            continue;
        }
        assert!(
            layer_of(module).is_some(),
            "{}: module `{module}` has no layer; add it to LAYERS here and to docs/architecture.md",
            relative.display()
        );
        placed += 1;
        for (line, used) in violations(module, &fs::read_to_string(file).unwrap()) {
            wrong.push(format!("{}:{line}: `{module}` uses `{used}`, which is not below it", relative.display()));
        }
    }
    assert!(placed > 40, "only {placed} files checked: is the source tree where this test looks?");
    assert!(wrong.is_empty(), "imports that go the wrong way (docs/architecture.md):\n{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_a_wrong_way_import_and_ignores_comments() {
    let source = "use crate::inventory::Item;\n// see crate::rotation::rotate\nuse crate::rotation::plan::Plan;\n";
    assert_eq!(violations("check", source), vec![(3, "rotation".to_owned())]);
    assert_eq!(violations("tree", "use crate::check::ExpiryStatus;\n"), vec![(1, "check".to_owned())], "a peer");
    assert!(violations("recover", source).is_empty());
    assert!(violations("check", "let x = kubepki_crate::rotation::y;\n").is_empty());
}
