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

/// Adding a kind is its module and its line in `kinds!`: every module of
/// `deployer/src/resources` that implements `Kind` is in the registry,
/// under its module's name; and every kind that can outlive its parent
/// has its line in the tests' account snapshot, which reads AWS
/// independently of the kinds (or says there why not). A kind deleted with
/// its parent (a stage's setting, a method) cannot be left behind on its
/// own, and needs no line.
#[test]
fn every_kind_is_registered_and_what_can_be_left_behind_is_in_the_tests_snapshot() {
    let root = e2e::workspace_root();
    let registry = deployer::resources::REGISTRY;
    let mut files = Vec::new();
    rust_files(&root.join("deployer/src/resources"), &mut files);
    let modules: Vec<String> = files
        .iter()
        .filter(|path| std::fs::read_to_string(path).is_ok_and(|text| text.contains("\nimpl Kind for ")))
        .filter_map(|path| Some(path.file_stem()?.to_string_lossy().into_owned()))
        .collect();
    assert!(modules.len() >= 21, "the walk found only {modules:?}");
    let snapshot = std::fs::read_to_string(root.join("tests/src/deploy.rs")).expect("tests/src/deploy.rs");
    let words = |text: &str| -> Vec<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map(str::to_owned).collect()
    };
    let mut missing = Vec::new();
    for module in &modules {
        if !registry.iter().any(|k| k.name() == module) {
            missing.push(format!("{module}: implements Kind but is not in REGISTRY under its module's name"));
        }
    }
    for kind in registry.iter().filter(|k| !k.placement().deleted_with_parent) {
        let kind = kind.name();
        let said_why =
            snapshot.lines().any(|l| l.contains("not in the snapshot:") && words(l).iter().any(|w| w == kind));
        let has_line = snapshot.contains(&format!("\"{kind} ")) || snapshot.contains(&format!("\"  {kind} "));
        if !said_why && !has_line {
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

/// The configuration reference lists every variable the authorizer reads,
/// and only those: the first column of its table against
/// `authorizer::config::VARIABLES` (the list the parser itself checks) and
/// `RUNTIME_VARIABLES` (those read beside it: logs, CAs, secrets).
#[test]
fn the_configuration_reference_lists_every_authorizer_variable_and_no_other() {
    let root = e2e::workspace_root();
    let page = std::fs::read_to_string(root.join("docs/configuration.md")).expect("docs/configuration.md");
    let table = page
        .split("## The authorizer's variables")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the variables' section");
    let documented: Vec<&str> = table
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
        .filter(|name| name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .collect();
    let read: Vec<&str> =
        authorizer::config::VARIABLES.iter().chain(authorizer::config::RUNTIME_VARIABLES).copied().collect();
    let undocumented: Vec<&&str> = read.iter().filter(|v| !documented.contains(v)).collect();
    let unknown: Vec<&&str> = documented.iter().filter(|v| !read.contains(v)).collect();
    assert!(undocumented.is_empty() && unknown.is_empty(), "not in the table: {undocumented:?}; not read: {unknown:?}");
}

/// The shipped `stack.yaml` is the commented example of every setting:
/// each property of the schema (generated from the parser's own types)
/// is written there as a key, set or commented out. Names are matched by
/// their last part (`xray_tracing:` for `stage.monitoring.xray_tracing`).
#[test]
fn every_stack_setting_is_in_the_example_stack() {
    let root = e2e::workspace_root();
    let schema: serde_json::Value = serde_json::from_str(&deployer::stack::schema::json_schema()).expect("JSON");
    let example = std::fs::read_to_string(root.join("stack.yaml")).expect("stack.yaml");
    let mut properties = Vec::new();
    let definitions = schema.get("$defs").cloned().unwrap_or_default();
    let mut todo = vec![(String::new(), schema.clone(), 0)];
    while let Some((path, node, depth)) = todo.pop() {
        if depth > 10 {
            continue;
        }
        if let Some(name) = node.get("$ref").and_then(|r| r.as_str()).and_then(|r| r.rsplit('/').next()) {
            todo.push((path.clone(), definitions[name].clone(), depth + 1));
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            for sub in node.get(key).and_then(|v| v.as_array()).into_iter().flatten() {
                todo.push((path.clone(), sub.clone(), depth + 1));
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(sub) = node.get(key).filter(|v| v.is_object()) {
                todo.push((path.clone(), sub.clone(), depth + 1));
            }
        }
        for (name, sub) in node.get("properties").and_then(|p| p.as_object()).into_iter().flatten() {
            let full = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
            properties.push((full.clone(), name.clone()));
            todo.push((full, sub.clone(), depth + 1));
        }
    }
    assert!(properties.len() > 40, "the walk found only {properties:?}");
    let keys: Vec<&str> = example
        .lines()
        .map(|line| line.trim_start().trim_start_matches('#').trim_start().trim_start_matches("- "))
        .flat_map(|line| line.split(['{', ',']))
        .filter_map(|part| part.trim().split_once(':').map(|(key, _)| key.trim()))
        .collect();
    let missing: Vec<&String> =
        properties.iter().filter(|(_, name)| !keys.contains(&name.as_str())).map(|(p, _)| p).collect();
    assert!(missing.is_empty(), "settings the example stack.yaml does not show: {missing:?}");
}
