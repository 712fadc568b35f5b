//! Checks on the source tree itself: what a reviewer would otherwise have to
//! catch by eye.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `directory`, recursively.
fn rust_files(directory: &Path, found: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(directory).unwrap_or_else(|e| panic!("{}: {e}", directory.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_module_opens_with_a_line_that_says_what_it_is_for() {
    let root = e2e::workspace_root();
    let mut files = Vec::new();
    for directory in ["authorizer/src", "deployer/src", "tests/src", "tests/tests", "tests/benches"] {
        rust_files(&root.join(directory), &mut files);
    }
    assert!(files.len() > 50, "the walk found only {} files: is the root {}?", files.len(), root.display());
    let undocumented: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|path| path.strip_prefix(&root).unwrap_or(path).display().to_string())
        .collect();
    assert!(undocumented.is_empty(), "modules without a `//!` first line: {undocumented:?}");
}

/// The deployer's resource kinds, as their modules name them (`const NAME`),
/// with the module each is in.
fn kinds(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&root.join("deployer/src/resources"), &mut files);
    let mut kinds: Vec<(String, String)> = files
        .iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            let name = text.split("const NAME: &'static str = \"").nth(1)?.split('"').next()?.to_owned();
            Some((name, path.file_stem()?.to_string_lossy().into_owned()))
        })
        .collect();
    kinds.sort();
    kinds
}

/// Adding a kind means a module and its line in the registry; these keep
/// the places a newcomer reads (the graph in ARCHITECTURE.md) and the
/// tests' account snapshot from forgetting it.
#[test]
fn every_kind_is_registered_drawn_in_the_graph_and_in_the_tests_snapshot() {
    let root = e2e::workspace_root();
    let kinds = kinds(&root);
    assert!(kinds.len() >= 21, "the walk found only {kinds:?}");
    let registry = std::fs::read_to_string(root.join("deployer/src/resources/mod.rs")).expect("resources/mod.rs");
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let graph = architecture
        .split("The graph, as the kinds declare it")
        .nth(1)
        .and_then(|rest| rest.split("```").nth(1))
        .expect("the graph in ARCHITECTURE.md");
    let snapshot = std::fs::read_to_string(root.join("tests/src/deploy.rs")).expect("tests/src/deploy.rs");
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map(str::to_owned).collect()
    };
    let graph_words = words(graph);
    let mut missing = Vec::new();
    for (kind, module) in &kinds {
        if !registry.contains(&format!("Registered::<{module}::")) {
            missing.push(format!("{kind}: not in REGISTRY (deployer/src/resources/mod.rs)"));
        }
        if !graph_words.contains(kind) {
            missing.push(format!("{kind}: not in the graph of ARCHITECTURE.md"));
        }
        let said_why = snapshot.lines().any(|l| l.contains("not in the snapshot:") && words(l).contains(kind));
        let has_line = snapshot.contains(&format!("\"{kind} ")) || snapshot.contains(&format!("\"  {kind} "));
        if !has_line && !said_why {
            missing.push(format!("{kind}: no line in the tests' snapshot (tests/src/deploy.rs) and no reason"));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

/// What builds the Lambda binary is pinned by hash: every `pip install` of
/// scripts/lambda-toolchain reads a requirements file with
/// `--require-hashes`, and each file pins one version by the SHA-256 of its
/// files (a version alone can be re-uploaded under another file name).
#[test]
fn the_lambda_toolchain_is_installed_only_by_hash() {
    let root = e2e::workspace_root();
    let script = std::fs::read_to_string(root.join("scripts/lambda-toolchain")).expect("the script");
    let joined = script.replace("\\\n", " ");
    let installs: Vec<&str> = joined.split("pip\" install").skip(1).collect();
    assert_eq!(installs.len(), 2, "cargo-zigbuild and zig");
    for install in installs {
        let command = install.lines().next().unwrap_or_default();
        assert!(command.contains("--require-hashes") && command.contains("-r \"$requirements/"), "{command}");
    }
    for name in ["cargo-zigbuild", "ziglang"] {
        let text = std::fs::read_to_string(root.join(format!("scripts/requirements/{name}.txt"))).expect(name);
        let pins: Vec<&str> = text.lines().filter(|l| l.starts_with(&format!("{name}=="))).collect();
        assert_eq!(pins.len(), 1, "{name}: one pinned version");
        let hashes: Vec<&str> = text.split("--hash=sha256:").skip(1).map(|h| &h[..64.min(h.len())]).collect();
        assert!(!hashes.is_empty(), "{name}: no hash");
        assert!(hashes.iter().all(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())), "{hashes:?}");
    }
}
