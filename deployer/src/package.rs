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

impl Package {
    /// The first 8 bytes of the zip's SHA-256, in hex: what names its copies.
    pub fn hex(&self) -> String {
        use base64::Engine as _;
        let digest = base64::engine::general_purpose::STANDARD.decode(&self.sha256).unwrap_or_default();
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// base64(SHA-256(bytes)), as Lambda reports `CodeSha256`.
pub fn sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

pub fn load(code: &Code, architecture: Architecture, workspace: &Path) -> anyhow::Result<Package> {
    let krate = match code {
        Code::Zip(path) => return from_zip(path, architecture),
        Code::Build(krate) => krate,
    };
    let binary = build(krate, architecture, workspace)?;
    check_bootstrap(&binary, architecture).context("the bootstrap cargo built: refusing to upload it")?;
    let zip = zip_bootstrap(&binary)?;
    let directory = target_dir(workspace).join("deployer");
    std::fs::create_dir_all(&directory).with_context(|| format!("creating {}", directory.display()))?;
    let mut package = Package { path: PathBuf::new(), sha256: sha256(&zip) };
    package.path = directory.join(format!("authorizer-{}.zip", package.hex()));
    std::fs::write(&package.path, &zip).with_context(|| format!("writing {}", package.path.display()))?;
    Ok(package)
}

/// The largest zip Lambda takes uploaded directly (CreateFunction,
/// UpdateFunctionCode).
pub const MAX_ZIP_BYTES: u64 = 50 * 1024 * 1024;

/// A zip on disk, as it is, once its `bootstrap` is checked.
pub fn from_zip(path: &Path, architecture: Architecture) -> anyhow::Result<Package> {
    let size = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    anyhow::ensure!(
        size <= MAX_ZIP_BYTES,
        "{} is {:.1} MB: Lambda takes a zip of at most 50 MB uploaded directly; refusing to upload it",
        path.display(),
        size as f64 / (1024.0 * 1024.0)
    );
    let zip = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    check_bootstrap(&bootstrap_in(&zip).with_context(|| path.display().to_string())?, architecture)
        .with_context(|| format!("{}: refusing to upload it", path.display()))?;
    Ok(Package { path: path.to_owned(), sha256: sha256(&zip) })
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

/// The Rust target of a Lambda architecture.
pub fn rust_target(architecture: Architecture) -> &'static str {
    match architecture {
        Architecture::X86_64 => "x86_64-unknown-linux-gnu",
        Architecture::Arm64 => "aarch64-unknown-linux-gnu",
    }
}

/// Builds `krate`'s `bootstrap` for Lambda, whatever the host: with
/// cargo-zigbuild, zig as the linker and the glibc of `provided.al2023`
/// (2.34) as the one linked against, for the function's architecture —
/// what cargo-lambda does. A plain `cargo build` links the host's glibc:
/// on today's CI images (glibc 2.39) that binary cannot start on Lambda,
/// and on macOS it is not even Linux.
fn build(krate: &str, architecture: Architecture, workspace: &Path) -> anyhow::Result<Vec<u8>> {
    let target = rust_target(architecture);
    let versioned = format!("{target}.{}.{}", AL2023_GLIBC.0, AL2023_GLIBC.1);
    eprintln!("    building {krate} for Lambda (cargo zigbuild --release --target {versioned})...");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        // --locked: the dependencies are Cargo.lock's, never newer ones resolved on the runner.
        .args([
            "zigbuild",
            "--release",
            "--locked",
            "--quiet",
            "-p",
            krate,
            "--bin",
            "bootstrap",
            "--target",
            &versioned,
        ])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(workspace)
        .stderr(std::process::Stdio::inherit());
    // zig keeps its cache under $HOME; a runner without one gets it in target/.
    if std::env::var_os("HOME").is_none() && std::env::var_os("ZIG_GLOBAL_CACHE_DIR").is_none() {
        command.env("ZIG_GLOBAL_CACHE_DIR", target_dir(workspace).join("zig-cache"));
    }
    let root = cargo_workspace_root(&cargo, workspace)?;
    let tools = local_toolchain(&root).with_context(|| {
        format!(
            "code.build builds with cargo-zigbuild and zig (zig links against provided.al2023's glibc 2.34, for \
             either architecture, from any host), taken only from {}, where scripts/lambda-toolchain installs them \
             pinned by hash (and adds the Rust targets): run it, or give code.zip",
            root.join(".venv-build").display()
        )
    })?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let paths = std::iter::once(tools).chain(std::env::split_paths(&path));
    command.env("PATH", std::env::join_paths(paths).context("PATH")?);
    let output = command.output().with_context(|| format!("running {cargo}"))?;
    if !output.status.success() {
        anyhow::bail!("building {krate} for {target} failed (if the target is missing: `rustup target add {target}`)");
    }
    let binary = executable(&output.stdout, "bootstrap").context("cargo built no `bootstrap` executable")?;
    std::fs::read(&binary).with_context(|| format!("reading the built {}", binary.display()))
}

/// The root of the Cargo workspace that builds from `directory`, as cargo
/// itself finds it (`cargo locate-project --workspace`).
fn cargo_workspace_root(cargo: &str, directory: &Path) -> anyhow::Result<PathBuf> {
    let output = Command::new(cargo)
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .current_dir(directory)
        .output()
        .with_context(|| format!("running {cargo} locate-project"))?;
    anyhow::ensure!(
        output.status.success(),
        "code.build builds a crate of the Cargo workspace that holds the stack file, and {} is in none: {}",
        directory.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let manifest = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    Ok(manifest.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// Where scripts/lambda-toolchain put cargo-zigbuild and zig: the Cargo
/// workspace's own `.venv-build/bin`, never one of a directory above it
/// (which whoever can write there would control).
fn local_toolchain(workspace: &Path) -> Option<PathBuf> {
    let bin = workspace.canonicalize().ok()?.join(".venv-build/bin");
    bin.join("cargo-zigbuild").exists().then_some(bin)
}

/// The path of executable `name` in cargo's JSON messages (what it built,
/// wherever its target directory is).
fn executable(messages: &[u8], name: &str) -> Option<PathBuf> {
    messages.split(|b| *b == b'\n').filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok()).find_map(
        |message| {
            let built = message["reason"] == "compiler-artifact" && message["target"]["name"] == name;
            built.then(|| message["executable"].as_str().map(PathBuf::from)).flatten()
        },
    )
}

pub fn target_dir(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(Into::into).unwrap_or_else(|| workspace.join("target"))
}

/// The `bootstrap` entry of a deployment package.
fn bootstrap_in(zip: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).context("not a zip")?;
    let mut entry = archive.by_name("bootstrap").context("the zip holds no `bootstrap` at its root")?;
    // Lambda runs `bootstrap` itself: without an execute bit in the zip, every
    // start fails with "permission denied".
    let mode = entry.unix_mode();
    anyhow::ensure!(
        mode.is_some_and(|m| m & 0o111 != 0),
        "its `bootstrap` is not executable (mode {}): `chmod +x bootstrap` before zipping, or let code.build make \
         the zip",
        mode.map_or("unknown".to_owned(), |m| format!("{:o}", m & 0o7777))
    );
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
        "bootstrap is built for {}, but the function runs on {}: build it for {} (code: {{ build: … }} does)",
        match machine {
            goblin::elf::header::EM_X86_64 => "x86_64",
            goblin::elf::header::EM_AARCH64 => "arm64",
            other => goblin::elf::header::machine_to_str(other),
        },
        architecture.as_lambda(),
        rust_target(architecture)
    );
    // A dynamic binary is started by its interpreter: it must be the glibc
    // loader Amazon Linux 2023 has (a dynamic musl binary's is not there).
    if let Some(interpreter) = elf.interpreter {
        let expected = match architecture {
            Architecture::X86_64 => "/lib64/ld-linux-x86-64.so.2",
            Architecture::Arm64 => "/lib/ld-linux-aarch64.so.1",
        };
        anyhow::ensure!(
            interpreter == expected,
            "bootstrap is started by {interpreter}, which provided.al2023 does not have ({expected} is its loader)"
        );
    }
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
             against glibc 2.34 (code: {{ build: … }} does, with cargo-zigbuild) or statically (musl)"
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

    #[test]
    fn the_build_tools_come_only_from_the_workspaces_own_venv() {
        let root = std::env::temp_dir().join(format!("toolchain-{}", std::process::id()));
        let workspace = root.join("checkout");
        let tool = |dir: &Path| {
            std::fs::create_dir_all(dir.join(".venv-build/bin")).unwrap();
            std::fs::write(dir.join(".venv-build/bin/cargo-zigbuild"), "").unwrap();
        };
        std::fs::create_dir_all(&workspace).unwrap();
        tool(&root);
        assert_eq!(local_toolchain(&workspace), None, "a .venv-build above the workspace is never used");
        tool(&workspace);
        let found = local_toolchain(&workspace).expect("the workspace's own");
        assert_eq!(found, workspace.canonicalize().unwrap().join(".venv-build/bin"));
        std::fs::remove_dir_all(&root).unwrap();

        // A stack file in a directory of this workspace: the workspace's root is where the tools are.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let here = cargo_workspace_root(&cargo, Path::new(env!("CARGO_MANIFEST_DIR"))).expect("in a workspace");
        assert_eq!(here, Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().canonicalize().unwrap());
    }

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

        // Started by musl's loader, which Amazon Linux 2023 does not have.
        let mut musl = linked_against("GLIBC_2.17");
        let glibc_loader = b"/lib64/ld-linux-x86-64.so.2";
        let at = musl.windows(glibc_loader.len()).position(|w| w == glibc_loader).expect("an interpreter");
        musl[at..at + glibc_loader.len()].copy_from_slice(b"/lib/ld-musl-x86_64.so.1\0\0\0");
        let error = check_bootstrap(&musl, Architecture::X86_64).expect_err("no such loader");
        assert!(error.to_string().contains("/lib/ld-musl-x86_64.so.1"), "{error}");
    }

    #[test]
    fn the_built_bootstrap_is_found_in_cargos_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"authorizer"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"bootstrap"},"executable":"/t/x86_64-unknown-linux-gnu/release/bootstrap"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            executable(messages.as_bytes(), "bootstrap"),
            Some(PathBuf::from("/t/x86_64-unknown-linux-gnu/release/bootstrap"))
        );
        assert_eq!(executable(messages.as_bytes(), "deployer"), None);
    }

    #[test]
    fn zips_are_reproducible() {
        let a = zip_bootstrap(b"\x7fELF binary").unwrap();
        let b = zip_bootstrap(b"\x7fELF binary").unwrap();
        assert_eq!(a, b);
        // No clock in it: the entry's time is the zip format's fixed epoch.
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&a)).unwrap();
        let entry = archive.by_index(0).unwrap();
        assert_eq!(entry.last_modified(), Some(zip::DateTime::default()));
        assert_ne!(a, zip_bootstrap(b"\x7fELF other").unwrap());
    }
}
