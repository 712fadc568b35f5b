//! `code: { build: authorizer }`: the deployer builds the authorizer for
//! Lambda itself, for either architecture, whatever the host (cargo-zigbuild
//! with zig as the linker and glibc 2.34, as on provided.al2023; installed
//! by scripts/lambda-toolchain). Each zip is read back as Lambda got it and
//! its ELF checked; the x86_64 one then answers through a Lambda Runtime API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::deploy::{SECRET, StackDir, clients, deployer, stack_yaml};
use e2e::moto::Proxy;
use e2e::runtime_api::{Outcome, RuntimeApi, spawn_function};
use goblin::elf::header::{EM_AARCH64, EM_X86_64};

/// The test is about how the bootstrap is built for Lambda (zig, the target,
/// the glibc it links against), not about how fast it runs: unoptimised, a
/// release build takes about half the time on CI. `scripts/test` starts the
/// same build (these settings, this target directory, `HOME`) at the lowest
/// priority while the other suites run, so this test mostly finds it done;
/// a mismatch only costs the time of building here.
const FAST_RELEASE: [(&str, &str); 3] = [
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0"),
    ("CARGO_PROFILE_RELEASE_LTO", "false"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256"),
];

/// Where the Lambda builds go: a target directory of their own, so the
/// build `scripts/test` starts never holds the workspace's lock.
fn lambda_target() -> std::path::PathBuf {
    e2e::workspace_root().join("target/lambda-build")
}

/// The zip under `dir` whose base64 SHA-256 is `code_sha256`.
fn zip_with_hash(dir: &Path, code_sha256: &str) -> PathBuf {
    use base64::Engine as _;
    use sha2::Digest as _;
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    entries
        .flatten()
        .map(|e| e.path())
        .find(|path| {
            let bytes = std::fs::read(path).unwrap_or_default();
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&bytes)) == code_sha256
        })
        .unwrap_or_else(|| panic!("no zip in {} has the uploaded CodeSha256 {code_sha256}", dir.display()))
}

fn bootstrap_of(zip: &Path) -> Vec<u8> {
    use std::io::Read as _;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).expect("the zip")).expect("a zip");
    let mut entry = archive.by_name("bootstrap").expect("bootstrap at the root");
    assert!(entry.unix_mode().is_some_and(|m| m & 0o111 != 0), "bootstrap is executable");
    let mut binary = Vec::new();
    entry.read_to_end(&mut binary).expect("read");
    binary
}

/// The newest `GLIBC_x.y` version the ELF needs.
fn newest_glibc(elf: &goblin::elf::Elf<'_>) -> (u32, u32) {
    let mut newest = (0, 0);
    for needed in elf.verneed.iter().flat_map(|v| v.iter()) {
        for version in needed.iter() {
            let name = elf.dynstrtab.get_at(version.vna_name).unwrap_or_default();
            if let Some((major, minor)) = name.strip_prefix("GLIBC_").and_then(|v| v.split_once('.')) {
                let minor = minor.split('.').next().unwrap_or_default();
                if let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) {
                    newest = newest.max((major, minor));
                }
            }
        }
    }
    newest
}

#[tokio::test]
async fn the_authorizer_is_built_for_each_architecture_and_would_start_on_provided_al2023() {
    let aws = clients().await;
    for (architecture, machine, loader) in
        [("x86_64", EM_X86_64, "/lib64/ld-linux-x86-64.so.2"), ("arm64", EM_AARCH64, "/lib/ld-linux-aarch64.so.1")]
    {
        let name = format!("t-build-{}", architecture.replace('_', ""));
        let yaml = stack_yaml(&name, "").replace(
            "code: { zip: code.zip }",
            &format!("code: {{ build: authorizer }}\n  architecture: {architecture}"),
        );
        let stack = StackDir::in_workspace(&name, &yaml);
        let proxy = Proxy::start().await;
        let target = lambda_target().to_string_lossy().into_owned();
        let home = std::env::var("HOME").unwrap_or_default();
        let env: Vec<(&str, &str)> =
            [("INTROSPECTION_SECRET", SECRET), ("CARGO_TARGET_DIR", target.as_str()), ("HOME", home.as_str())]
                .into_iter()
                .chain(FAST_RELEASE)
                .collect();
        for command in [&["teardown"][..], &["apply"]] {
            let outcome = deployer(&stack, &proxy.url(), command, &env).await;
            assert_eq!(outcome.code, 0, "{architecture} {command:?}:\n{}\n{}", outcome.stdout, outcome.stderr);
        }
        let function = aws.lambda.get_function_configuration().function_name(format!("{name}-authorizer")).send();
        let function = function.await.expect("the function");
        let architectures: Vec<&str> = function.architectures().iter().map(|a| a.as_str()).collect();
        assert_eq!(architectures, [architecture]);
        let zip = zip_with_hash(&lambda_target().join("deployer"), function.code_sha256().expect("CodeSha256"));
        let binary = bootstrap_of(&zip);
        let elf = goblin::elf::Elf::parse(&binary).expect("an ELF");
        assert_eq!(elf.header.e_machine, machine, "{architecture}: the CPU");
        assert_eq!(elf.interpreter, Some(loader), "{architecture}: the loader Amazon Linux 2023 has");
        let glibc = newest_glibc(&elf);
        assert!(((2, 2)..=(2, 34)).contains(&glibc), "{architecture}: needs GLIBC_{}.{}", glibc.0, glibc.1);
        println!(
            "{architecture}: zip {} bytes, bootstrap {} bytes, GLIBC_{}.{}",
            std::fs::metadata(&zip).unwrap().len(),
            binary.len(),
            glibc.0,
            glibc.1
        );

        if architecture == "x86_64" {
            runs_through_the_runtime_api(&binary, &stack).await;
        }
        let teardown = deployer(&stack, &proxy.url(), &["teardown"], &env).await;
        assert_eq!(teardown.code, 0, "{}", teardown.stderr);
    }
}

/// The bootstrap Lambda would run, run as Lambda runs it: it asks for work
/// and answers an event (a token it cannot introspect: 401, as a 401 must be
/// spelled for API Gateway).
async fn runs_through_the_runtime_api(binary: &[u8], stack: &StackDir) {
    use std::os::unix::fs::PermissionsExt as _;
    let path = stack.path("bootstrap");
    std::fs::write(&path, binary).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let api = RuntimeApi::start().await;
    let env = [
        ("TOKEN_VALIDATION", "introspection".to_owned()),
        ("INTROSPECTION_ENDPOINT", "http://127.0.0.1:9/introspect".to_owned()),
        ("INTROSPECTION_CLIENT_ID", "gateway".to_owned()),
        ("INTROSPECTION_CLIENT_SECRET", SECRET.to_owned()),
    ];
    let mut child = spawn_function(&path, &api, &env);
    let wait = Duration::from_secs(20);
    assert!(api.wait_first_poll(wait).await.is_some(), "the built bootstrap asks for work: {:?}", api.init_error());
    let event = e2e::events::request(None, None);
    match api.invoke(&event, wait).await {
        Some(Outcome::Error(error)) => assert_eq!(error["errorMessage"], "Unauthorized"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    let _ = child.kill().await;
}
