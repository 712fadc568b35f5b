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
