//! The authorizer's deployment package: a zip holding `bootstrap`, built
//! byte-for-byte reproducibly (fixed timestamps and permissions), so the same
//! binary always gives the same `CodeSha256` and an unchanged function is
//! never re-uploaded.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::stack::{Architecture, Code};

/// The zip, on disk (the Lambda resource reads it when it uploads), and its
/// hash. A zip the deployer built lives under `target/deployer/`, named by
/// its hash.
pub struct Package {
    pub path: PathBuf,
    /// base64(SHA-256(zip)), Lambda's `CodeSha256`.
    pub sha256: String,
}

/// base64(SHA-256(bytes)), as Lambda reports `CodeSha256`.
pub fn sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

pub fn load(code: &Code, architecture: Architecture, workspace: &Path) -> anyhow::Result<Package> {
    let zip = match code {
        Code::Zip(path) => {
            let zip = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            return Ok(Package { path: path.clone(), sha256: sha256(&zip) });
        }
        Code::Build(krate) => {
            anyhow::ensure!(
                architecture == Architecture::X86_64,
                "code.build compiles for this machine (x86_64); for arm64 build with `cargo lambda build --arm64` and use code.zip"
            );
            eprintln!("    building {krate} (cargo build --release -p {krate} --bin bootstrap)...");
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--release", "--quiet", "-p", krate, "--bin", "bootstrap"])
                .current_dir(workspace)
                .status()
                .context("running cargo")?;
            anyhow::ensure!(status.success(), "building {krate} failed");
            let binary = std::fs::read(target_dir(workspace).join("release/bootstrap"))
                .context("reading the built bootstrap")?;
            zip_bootstrap(&binary)?
        }
    };
    let sha256 = sha256(&zip);
    let hex: String = Sha256::digest(&zip).iter().take(8).map(|b| format!("{b:02x}")).collect();
    let directory = target_dir(workspace).join("deployer");
    std::fs::create_dir_all(&directory).with_context(|| format!("creating {}", directory.display()))?;
    let path = directory.join(format!("authorizer-{hex}.zip"));
    std::fs::write(&path, &zip).with_context(|| format!("writing {}", path.display()))?;
    Ok(Package { path, sha256 })
}

fn target_dir(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(Into::into).unwrap_or_else(|| workspace.join("target"))
}

/// A zip with one entry, `bootstrap`, executable, with a fixed timestamp.
pub fn zip_bootstrap(binary: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options)?;
    zip.write_all(binary)?;
    zip.finish()?;
    Ok(buffer.into_inner())
}

#[cfg(test)]
mod tests {
    #[test]
    fn zips_are_reproducible() {
        let a = super::zip_bootstrap(b"\x7fELF binary").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = super::zip_bootstrap(b"\x7fELF binary").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, super::zip_bootstrap(b"\x7fELF other").unwrap());
    }
}
