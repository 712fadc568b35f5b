//! How many sequential rounds of AWS calls the deployer needs. Every call to
//! the local AWS stand-in is held for a fixed delay (as a real control plane
//! takes 100–300 ms), so wall time ÷ delay is the number of rounds, whatever
//! the machine. For the example stack (domain, truststore, WAF included):
//! apply from empty, a no-op apply, diff and teardown, each with its calls,
//! mutating calls and highest concurrency.
//!
//! Run: `scripts/bench-deployer [DELAY_MS]` (starts moto, builds, runs this);
//! with `ROUNDS_TRACE=1`, each call is listed with the round it started in.

use std::time::{Duration, Instant};

use e2e::deploy::{StackDir, deployer};
use e2e::moto::Proxy;

/// The shipped example stack, with a prebuilt zip instead of a release build
/// (building is not what is measured).
fn example_stack() -> StackDir {
    let example = std::fs::read_to_string(e2e::workspace_root().join("stack.yaml")).expect("stack.yaml");
    let yaml = example
        .replace("code: { build: authorizer }", "code: { zip: code.zip }")
        .replace("file: examples/truststore.pem", "file: truststore.pem")
        .replace("stack: pets-api ", "stack: rounds-bench ")
        .replace("name: pets-api ", "name: rounds-bench-api ")
        .replace("bucket: pets-api-truststore-example", "bucket: rounds-bench-truststore");
    StackDir::new("rounds-bench", &yaml)
}

#[tokio::main]
async fn main() {
    let delay_ms: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let delay = Duration::from_millis(delay_ms);
    let stack = example_stack();
    let proxy = Proxy::with_delay(delay).await;
    let env: [(&str, &str); 0] = [];
    // Start from an empty account.
    let cleanup = deployer(&stack, &proxy.url(), &["teardown"], &env).await;
    assert_eq!(cleanup.code, 0, "{}", cleanup.stderr);

    println!("delay per call: {delay_ms} ms");
    println!(
        "{:<34} {:>6} {:>9} {:>12} {:>9} {:>8}",
        "command", "calls", "mutating", "concurrency", "wall s", "rounds"
    );
    let run = |label: &'static str, args: &'static [&'static str]| {
        let (stack, proxy, env) = (&stack, &proxy, &env);
        async move {
            proxy.reset();
            let started = Instant::now();
            let outcome = deployer(stack, &proxy.url(), args, env).await;
            let wall = started.elapsed();
            assert_eq!(outcome.code, 0, "{label}: {}", outcome.stderr);
            let calls = proxy.calls();
            let mutating = calls.iter().filter(|c| c.mutating).count();
            if std::env::var_os("ROUNDS_TRACE").is_some() {
                // Which calls make up the rounds: each call's start, in delays since the command began.
                for call in &calls {
                    let at = call.at.duration_since(started).as_secs_f64() / delay.as_secs_f64();
                    eprintln!("    {at:>6.1}  {}", call.service_operation);
                }
            }
            println!(
                "{label:<34} {:>6} {:>9} {:>12} {:>9.2} {:>8.1}",
                calls.len(),
                mutating,
                proxy.highest_concurrency(),
                wall.as_secs_f64(),
                wall.as_secs_f64() / delay.as_secs_f64()
            );
        }
    };
    // The account's first stack: the lock bucket is created too.
    run("apply (from empty, first stack)", &["apply"]).await;
    run("apply (no-op)", &["apply"]).await;
    run("diff", &["diff"]).await;
    run("teardown (last stack)", &["teardown"]).await;
    // Another stack's lock in the bucket: the usual case for a new stack.
    let aws = e2e::deploy::clients().await;
    e2e::deploy::put_in_lock_bucket(&aws, "locks/another-stack.json", b"{}").await;
    run("apply (from empty)", &["apply"]).await;
    run("teardown", &["teardown"]).await;
    let bucket = e2e::deploy::LOCK_BUCKET;
    aws.s3.delete_object().bucket(bucket).key("locks/another-stack.json").send().await.expect("remove it");
    aws.s3.delete_bucket().bucket(bucket).send().await.expect("remove the bucket");
}
