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
            check_bootstrap(&bootstrap_in(&zip).with_context(|| path.display().to_string())?, architecture)
                .with_context(|| format!("{}: refusing to upload it", path.display()))?;
            return Ok(Package { path: path.clone(), sha256: sha256(&zip) });
        }
        Code::Build(krate) => {
            let binary = build(krate, architecture, workspace)?;
            check_bootstrap(&binary, architecture).context("the bootstrap cargo built: refusing to upload it")?;
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

/// The `bootstrap` binary the stack deploys, as bytes: built, or read from the zip.
pub fn bootstrap(code: &Code, architecture: Architecture, workspace: &Path) -> anyhow::Result<Vec<u8>> {
    match code {
        Code::Zip(path) => {
            let zip = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            bootstrap_in(&zip).with_context(|| path.display().to_string())
        }
        Code::Build(krate) => build(krate, architecture, workspace),
    }
}

fn build(krate: &str, architecture: Architecture, workspace: &Path) -> anyhow::Result<Vec<u8>> {
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
    std::fs::read(target_dir(workspace).join("release/bootstrap")).context("reading the built bootstrap")
}

pub fn target_dir(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(Into::into).unwrap_or_else(|| workspace.join("target"))
}

/// The `bootstrap` entry of a deployment package.
fn bootstrap_in(zip: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).context("not a zip")?;
    let mut entry = archive.by_name("bootstrap").context("the zip holds no `bootstrap` at its root")?;
    let mut binary = Vec::new();
    entry.read_to_end(&mut binary).context("reading bootstrap from the zip")?;
    Ok(binary)
}

/// The newest glibc `provided.al2023` has.
const AL2023_GLIBC: (u32, u32, u32) = (2, 34, 0);

/// Whether `binary` can start as the `bootstrap` of a `provided.al2023`
/// function on `architecture`: an ELF for that CPU that needs no glibc
/// symbol newer than 2.34 (a static musl build needs none), or a script.
/// A binary built on a newer Linux uploads fine and fails at every start.
pub fn check_bootstrap(binary: &[u8], architecture: Architecture) -> anyhow::Result<()> {
    if binary.starts_with(b"#!") {
        return Ok(()); // run by its interpreter
    }
    let elf = goblin::elf::Elf::parse(binary)
        .map_err(|e| anyhow::anyhow!("bootstrap is not an ELF executable ({e}); Lambda cannot start it"))?;
    let (machine, wanted) = (
        elf.header.e_machine,
        match architecture {
            Architecture::X86_64 => goblin::elf::header::EM_X86_64,
            Architecture::Arm64 => goblin::elf::header::EM_AARCH64,
        },
    );
    anyhow::ensure!(
        machine == wanted,
        "bootstrap is built for {}, but the function runs on {}: build for {} (authorizer.architecture)",
        match machine {
            goblin::elf::header::EM_X86_64 => "x86_64",
            goblin::elf::header::EM_AARCH64 => "arm64",
            other => goblin::elf::header::machine_to_str(other),
        },
        architecture.as_lambda(),
        if architecture == Architecture::X86_64 { "x86_64-unknown-linux-musl" } else { "aarch64-unknown-linux-musl" }
    );
    let mut newest: Option<((u32, u32, u32), &str)> = None;
    for file in elf.verneed.iter().flat_map(|verneed| verneed.iter()) {
        for version in file.iter() {
            let Some(name) = elf.dynstrtab.get_at(version.vna_name) else { continue };
            if let Some(parsed) = name.strip_prefix("GLIBC_").and_then(glibc_version) {
                newest = newest.max(Some((parsed, name)));
            }
        }
    }
    if let Some((version, name)) = newest {
        anyhow::ensure!(
            version <= AL2023_GLIBC,
            "bootstrap needs {name}, but provided.al2023 has glibc 2.34 and would fail to start it: build it \
             statically (`--target x86_64-unknown-linux-musl`, or `cargo lambda build`) or on an older Linux"
        );
    }
    Ok(())
}

/// "2.34" or "2.2.5" → (2, 34, 0) or (2, 2, 5); `None` for GLIBC_PRIVATE.
fn glibc_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    Some((major, minor, patch))
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
    use super::*;

    /// This test binary, an ELF linked against this machine's glibc, with
    /// every two-digit glibc version it needs (`GLIBC_2.NN`, the length of
    /// `GLIBC_2.34`) rewritten to `version`: a binary linked against that.
    fn linked_against(version: &str) -> Vec<u8> {
        assert_eq!(version.len(), "GLIBC_2.34".len());
        let mut binary = std::fs::read("/proc/self/exe").expect("the test binary");
        let (start, end) = {
            let elf = goblin::elf::Elf::parse(&binary).expect("an ELF");
            let dynstr = elf
                .section_headers
                .iter()
                .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".dynstr"))
                .expect("a .dynstr section");
            (dynstr.sh_offset as usize, (dynstr.sh_offset + dynstr.sh_size) as usize)
        };
        let mut rewritten = 0;
        let mut i = start;
        while i + 11 <= end {
            let candidate = &binary[i..i + 11];
            let two_digits = candidate[..8] == *b"GLIBC_2." && candidate[8..10].iter().all(u8::is_ascii_digit);
            // Only whole strings: the next byte ends the string in .dynstr.
            if two_digits && candidate[10] == 0 && (i == 0 || binary[i - 1] == 0) {
                binary[i..i + 10].copy_from_slice(version.as_bytes());
                rewritten += 1;
            }
            i += 1;
        }
        assert!(rewritten > 0, "the test binary names no GLIBC_2.NN version");
        binary
    }

    #[test]
    fn a_bootstrap_must_start_on_provided_al2023() {
        check_bootstrap(&linked_against("GLIBC_2.17"), Architecture::X86_64).expect("old enough");
        check_bootstrap(&linked_against("GLIBC_2.34"), Architecture::X86_64).expect("al2023's own");
        let error = check_bootstrap(&linked_against("GLIBC_2.39"), Architecture::X86_64).expect_err("too new");
        assert!(error.to_string().contains("GLIBC_2.39"), "{error}");
        assert!(error.to_string().contains("musl"), "says what to do: {error}");

        let error = check_bootstrap(&linked_against("GLIBC_2.17"), Architecture::Arm64).expect_err("wrong CPU");
        assert!(error.to_string().contains("x86_64") && error.to_string().contains("arm64"), "{error}");

        let error = check_bootstrap(b"\x7fELF not really", Architecture::X86_64).expect_err("not an ELF");
        assert!(error.to_string().contains("not an ELF"), "{error}");
        let error = check_bootstrap(b"MZ\x90\x00 a Windows program", Architecture::X86_64).expect_err("not an ELF");
        assert!(error.to_string().contains("not an ELF"), "{error}");
        check_bootstrap(b"#!/bin/sh\nexec ./handler\n", Architecture::X86_64)
            .expect("scripts are run by their interpreter");
    }

    #[test]
    fn zips_are_reproducible() {
        let a = zip_bootstrap(b"\x7fELF binary").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = zip_bootstrap(b"\x7fELF binary").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, zip_bootstrap(b"\x7fELF other").unwrap());
    }
}
