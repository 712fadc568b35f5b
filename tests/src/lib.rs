//! Support for the integration and end-to-end tests: real keys and signed
//! tokens, real X.509 certificates, HTTP servers on 127.0.0.1, API Gateway
//! events in their documented shape, and a Lambda Runtime API.
//!
//! Nothing here is a stand-in for the code under test: servers speak real
//! HTTP, tokens are really signed, certificates really issued.

#[cfg(feature = "aws")]
pub mod access;
#[cfg(feature = "aws")]
pub mod aws_like;
pub mod certs;
#[cfg(feature = "aws")]
pub mod deploy;
pub mod dpop;
pub mod events;
pub mod fixture;
pub mod iam;
#[cfg(feature = "aws")]
pub mod iam_actions;
pub mod keys;
#[cfg(feature = "aws")]
pub mod local;
#[cfg(feature = "aws")]
pub mod moto;
pub mod provider;
pub mod runtime_api;
pub mod server;

use std::path::PathBuf;

/// The workspace root (for finding built binaries and example files).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// A binary of the workspace, built by the test command before the tests run
/// (`cargo build --workspace --bins`; `cargo test` alone builds only the bins
/// of the package under test).
pub fn workspace_binary(profile: &str, name: &str) -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    let path = target.join(profile).join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins` (the README's test command does)",
        path.display()
    );
    path
}
