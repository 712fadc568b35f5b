//! The deployer as a pipeline runs it, across jobs and runners: a saved plan
//! carries the zip it was made with to another checkout, a rotated secret
//! invalidates it, what AWS would refuse half-way is refused before the
//! first call, every S3 call names its bucket's owner, and a call that hangs
//! cannot hold the stack's lock forever.

use std::time::{Duration, Instant};

use e2e::deploy::{SECRET, StackDir, clients, code_zip, deployer, edge_yaml, env, stack_yaml, tiny_bootstrap};
use e2e::moto::Proxy;
use e2e::server::Reply;

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
        (
            base.clone(),
            Some(e2e::deploy::code_zip_with_mode(&tiny_bootstrap(), 0o644)),
            "its `bootstrap` is not executable (mode 644)".into(),
        ),
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

/// The deployer command lines of a workflow's `run:` scripts: what follows
/// a program ending in `/deployer` up to the next shell operator, per job.
fn deployer_commands(workflow: &serde_yaml::Value) -> Vec<(String, Vec<String>)> {
    let mut commands = Vec::new();
    let jobs = workflow["jobs"].as_mapping().expect("jobs");
    for (job, definition) in jobs {
        let job = job.as_str().expect("job name").to_owned();
        for step in definition["steps"].as_sequence().expect("steps") {
            let Some(script) = step["run"].as_str() else { continue };
            for line in script.lines() {
                let Some(words) = shlex::split(line) else { continue };
                let Some(start) = words.iter().position(|w| w.ends_with("/deployer")) else { continue };
                let args: Vec<String> = words[start + 1..]
                    .iter()
                    .take_while(|w| !["|", "||", "&&", ";", ">", ">>"].contains(&w.as_str()))
                    .cloned()
                    .collect();
                commands.push((job.clone(), args));
            }
        }
    }
    commands
}

/// The GitHub Actions example: every deployer command line it runs is one
/// the deployer accepts, and its jobs hand the saved plan and its zip from
/// the plan job to the apply job, which never builds the authorizer.
#[test]
fn the_example_workflow_runs_the_deployer_as_it_accepts_and_applies_the_reviewed_plan() {
    let path = e2e::workspace_root().join("examples/github-actions/deploy.yml");
    let text = std::fs::read_to_string(&path).expect("the example workflow");
    let workflow: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    let commands = deployer_commands(&workflow);
    assert!(commands.len() >= 4, "{commands:?}");
    for (job, args) in &commands {
        let line = std::iter::once("deployer".to_owned()).chain(args.iter().cloned());
        if let Err(e) = deployer::cli::Cli::parse_args(line) {
            panic!("job {job}: `deployer {}` is refused:\n{e}", args.join(" "));
        }
    }
    let runs = |job: &str, words: &[&str]| {
        commands.iter().any(|(j, args)| j == job && words.iter().all(|w| args.iter().any(|a| a == w)))
    };
    assert!(runs("plan", &["plan", "--out", "plan.json", "--detailed-exitcode"]), "{commands:?}");
    assert!(runs("apply", &["apply", "plan.json"]), "the apply job applies the saved plan: {commands:?}");
    assert!(!runs("apply", &["plan"]), "the apply job does not plan again: {commands:?}");
    assert!(runs("apply", &["verify", "--junit"]), "the apply job verifies the deployed API: {commands:?}");

    let job = |name: &str| &workflow["jobs"][name];
    let uses = |name: &str, action: &str| {
        job(name)["steps"]
            .as_sequence()
            .expect("steps")
            .iter()
            .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action)))
    };
    let upload = uses("plan", "actions/upload-artifact").expect("the plan job uploads the plan");
    let uploaded = upload["with"]["path"].as_str().expect("paths");
    assert!(uploaded.contains("plan.json") && uploaded.contains("plan.authorizer-*.zip"), "{uploaded}");
    let download = uses("apply", "actions/download-artifact").expect("the apply job downloads it");
    assert_eq!(download["with"]["name"], upload["with"]["name"]);
    assert_eq!(job("apply")["needs"], "plan");
    assert_eq!(job("apply")["environment"], "production", "a reviewer approves before the apply");
    assert_eq!(workflow["permissions"]["id-token"], "write", "the role is assumed through OIDC");
    let role = |name: &str| {
        uses(name, "aws-actions/configure-aws-credentials").expect("credentials")["with"]["role-to-assume"].clone()
    };
    assert_ne!(role("plan"), role("apply"), "plans (of pull requests too) run with a role that cannot write");
    let apply_scripts: String =
        job("apply")["steps"].as_sequence().expect("steps").iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(!apply_scripts.contains("lambda-toolchain"), "the apply job never builds the authorizer");
    assert!(apply_scripts.contains("-eq 3"), "exit code 3 (waiting for DNS validation) is handled");
    // No AWS keys anywhere: only the role.
    assert!(!text.contains("AWS_SECRET_ACCESS_KEY") && !text.contains("aws-secret-access-key"));

    // A pull request's code gets the read-only role and no secret, and
    // plans without saving (a saved plan needs every value).
    let pull_request = job("pull-request-plan");
    assert_eq!(pull_request["if"], "github.event_name == 'pull_request'");
    assert_eq!(role("pull-request-plan"), role("plan"));
    assert!(runs("pull-request-plan", &["plan"]) && !runs("pull-request-plan", &["--out"]), "{commands:?}");
    assert!(!serde_yaml::to_string(pull_request).unwrap().contains("secrets."), "a pull request gets no secret");
    for name in ["plan", "apply"] {
        assert!(job(name)["if"].as_str().unwrap_or_default().contains("pull_request") || name == "apply");
    }
    assert_eq!(
        job("plan")["if"],
        "github.event_name != 'pull_request'",
        "the job with the secret never runs a pull request"
    );
    // Every action pinned by a full commit hash.
    for (name, definition) in workflow["jobs"].as_mapping().expect("jobs") {
        for step in definition["steps"].as_sequence().expect("steps") {
            if let Some(action) = step["uses"].as_str() {
                let reference = action.rsplit_once('@').map(|(_, r)| r).unwrap_or_default();
                assert!(
                    reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit()),
                    "{name:?}: {action} is not pinned by commit"
                );
            }
        }
    }
}
