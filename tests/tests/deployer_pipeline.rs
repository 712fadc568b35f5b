//! The deployer as a pipeline runs it, across jobs and runners: a saved plan
//! carries the zip it was made with to another checkout, a rotated secret
//! invalidates it, what AWS would refuse half-way is refused before the
//! first call, every S3 call names its bucket's owner, and a call that hangs
//! cannot hold the stack's lock forever.

use std::time::{Duration, Instant};

use e2e::deploy::{SECRET, StackDir, clients, code_zip, deployer, edge_yaml, stack_yaml, tiny_bootstrap};
use e2e::moto::Proxy;
use e2e::server::Reply;

fn env() -> [(&'static str, &'static str); 1] {
    [("INTROSPECTION_SECRET", SECRET)]
}

/// The zips saved beside a plan file.
fn artifacts(stack: &StackDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&stack.dir)
        .expect("the stack dir")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("plan.authorizer-") && n.ends_with(".zip"))
        .collect();
    names.sort();
    names
}

fn copy(from: &StackDir, to: &StackDir, file: &str) {
    to.write(file, std::fs::read(from.path(file)).expect("the file to copy"));
}

/// Plan in one checkout, apply in another whose own build differs (Rust
/// builds differ from runner to runner): the plan's zip is what is
/// uploaded; a missing or changed zip, or a secret rotated since, is
/// refused before any write.
#[tokio::test]
async fn a_saved_plan_carries_its_zip_to_another_checkout() {
    let name = "t-pipe-plan";
    let yaml = stack_yaml(name, "");
    let planned_in = StackDir::new("t-pipe-plan-job", &yaml);
    let applied_in = StackDir::new("t-pipe-apply-job", &yaml);
    copy(&planned_in, &applied_in, "truststore.pem");
    applied_in.write("code.zip", code_zip(&[tiny_bootstrap(), b"built elsewhere".to_vec()].concat()));
    let proxy = Proxy::start().await;
    assert_eq!(deployer(&planned_in, &proxy.url(), &["teardown"], &env()).await.code, 0);

    let plan = |stack: &StackDir| stack.path("plan.json").to_str().expect("utf-8").to_owned();
    let made = deployer(&planned_in, &proxy.url(), &["plan", "--out", &plan(&planned_in)], &env()).await;
    assert_eq!(made.code, 0, "{}", made.stderr);
    let zips = artifacts(&planned_in);
    assert_eq!(zips.len(), 1, "the plan's zip is saved beside it");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(planned_in.path("plan.json")).unwrap()).unwrap();
    assert_eq!(saved["artifact"]["file"], zips[0].as_str());
    let planned_sha = saved["artifact"]["sha256"].as_str().expect("the zip's hash").to_owned();

    // Only the plan reached the other job: refused, nothing written.
    copy(&planned_in, &applied_in, "plan.json");
    proxy.reset();
    let missing = deployer(&applied_in, &proxy.url(), &["apply", &plan(&applied_in)], &env()).await;
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains(&format!("{} is missing", zips[0])), "{}", missing.stderr);
    assert_eq!(proxy.calls().len(), 0, "refused before any call");

    // A zip of the same name but other contents: refused.
    applied_in.write(&zips[0], code_zip(b"#!/bin/sh\nexit 0\n"));
    let changed = deployer(&applied_in, &proxy.url(), &["apply", &plan(&applied_in)], &env()).await;
    assert_eq!(changed.code, 1);
    assert!(changed.stderr.contains("is not the zip the plan was made with"), "{}", changed.stderr);
    assert_eq!(proxy.calls().len(), 0, "refused before any call");

    // The secret was rotated between plan and apply: refused, nothing written.
    copy(&planned_in, &applied_in, &zips[0]);
    let rotated = [("INTROSPECTION_SECRET", "rotated-since-the-plan")];
    let stale = deployer(&applied_in, &proxy.url(), &["apply", &plan(&applied_in)], &rotated).await;
    assert_eq!(stale.code, 1);
    assert!(stale.stderr.contains("value it uses) changed since the plan was made"), "{}", stale.stderr);
    assert!(!stale.stderr.contains("rotated-since-the-plan") && !stale.stderr.contains(SECRET));
    assert_eq!(proxy.mutating(), Vec::<String>::new(), "not one write, not even the lock");

    // The plan and its zip: applied from the other checkout, the plan's zip uploaded.
    let applied = deployer(&applied_in, &proxy.url(), &["apply", &plan(&applied_in)], &env()).await;
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let aws = clients().await;
    let function = aws.lambda.get_function_configuration().function_name(format!("{name}-authorizer")).send();
    assert_eq!(function.await.unwrap().code_sha256(), Some(planned_sha.as_str()), "the zip the plan was made with");
    assert_eq!(deployer(&applied_in, &proxy.url(), &["teardown"], &env()).await.code, 0);
}

/// What AWS would refuse after half the stack exists is refused before the
/// first call, with the file, the field and the reason: an environment over
/// Lambda's 4 KB, a stack with no route, a zip over 50 MB, a `bootstrap`
/// without its execute bit.
#[tokio::test]
async fn what_aws_would_refuse_half_way_is_refused_before_any_call() {
    let base = stack_yaml("t-pipe-preflight", "");
    let long_audience = "a".repeat(4200);
    let cases: Vec<(String, Option<Vec<u8>>, String)> = vec![
        (
            base.replace(
                "    CERT_BINDING: required\n",
                &format!("    CERT_BINDING: required\n    AUDIENCE: {long_audience}\n"),
            ),
            None,
            "authorizer.environment: is ".into(),
        ),
        (
            base.split("  routes:\n").next().unwrap().to_owned() + "  routes: []\nstage:\n  name: prod\n",
            None,
            "api.routes: a stack needs at least one route".into(),
        ),
        (base.clone(), Some(vec![0; 51 * 1024 * 1024]), "is 51.0 MB: Lambda takes a zip of at most 50 MB".into()),
        (base.clone(), Some(not_executable(&tiny_bootstrap())), "its `bootstrap` is not executable (mode 644)".into()),
    ];
    for (yaml, zip, expected) in cases {
        let stack = StackDir::new("t-pipe-preflight", &yaml);
        if let Some(zip) = zip {
            stack.write("code.zip", zip);
        }
        let proxy = Proxy::dead_end().await;
        let outcome = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
        assert_eq!(outcome.code, 1, "{expected}: {}", outcome.stderr);
        assert!(outcome.stderr.contains(&expected), "expected {expected:?} in:\n{}", outcome.stderr);
        assert_eq!(proxy.calls().len(), 0, "no call for: {expected}");
    }
}

/// A zip whose `bootstrap` has mode 644.
fn not_executable(contents: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    zip.start_file("bootstrap", zip::write::SimpleFileOptions::default().unix_permissions(0o644)).expect("entry");
    zip.write_all(contents).expect("write");
    zip.finish().expect("finish");
    buffer.into_inner()
}

/// Bucket names are global: every S3 call but CreateBucket names the account
/// the bucket must belong to, the lock bucket's as much as the truststore's.
#[tokio::test]
async fn every_s3_call_names_the_account_its_bucket_must_belong_to() {
    let name = "t-pipe-owner";
    let stack = StackDir::new(name, &stack_yaml(name, &edge_yaml(name)));
    let proxy = Proxy::start().await;
    for command in [&["teardown"][..], &["apply"], &["teardown"]] {
        let outcome = deployer(&stack, &proxy.url(), command, &env()).await;
        assert_eq!(outcome.code, 0, "{command:?}: {}", outcome.stderr);
    }
    let s3: Vec<_> = proxy
        .calls()
        .into_iter()
        .filter(|c| c.request.header("authorization").is_some_and(|a| a.contains("/s3/aws4_request")))
        .collect();
    let creates =
        |c: &e2e::moto::Call| c.request.method == "PUT" && c.request.body.contains("CreateBucketConfiguration");
    assert!(s3.iter().any(creates), "the truststore bucket was created");
    assert!(s3.iter().any(e2e::moto::is_lock_call), "the lock's calls are among them");
    assert!(s3.len() > 10, "{}", s3.len());
    for call in s3.iter().filter(|c| !creates(c)) {
        assert_eq!(
            call.request.header("x-amz-expected-bucket-owner"),
            Some("123456789012"),
            "{} {}",
            call.request.method,
            call.request.path
        );
    }
}

/// A call that never answers: the deployer gives up on it within its time
/// bounds and gives the lock back, rather than holding the stack forever.
#[tokio::test]
async fn a_call_that_hangs_cannot_hold_the_lock_forever() {
    let name = "t-pipe-hang";
    let stack = StackDir::new(name, &stack_yaml(name, ""));
    let proxy = Proxy::refusing(|request| {
        (request.method == "GET" && request.path.starts_with("/restapis"))
            .then(|| Reply::json("{}").delayed(Duration::from_secs(600)))
    })
    .await;
    let started = Instant::now();
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    let took = started.elapsed();
    assert_eq!(apply.code, 1, "{}", apply.stderr);
    assert!(apply.stderr.contains("GetRestApis") && apply.stderr.contains("timeout"), "{}", apply.stderr);
    assert!(took < Duration::from_secs(60), "gave up after {took:?}");
    let lock = proxy.lock_writes();
    assert_eq!(lock.last().map(|w| w.starts_with("DELETE")), Some(true), "the lock was given back: {lock:?}");
}
