//! How many sequential rounds of AWS calls the deployer needs. Every call to
//! the local AWS stand-in is held for a fixed delay (as a real control plane
//! takes 100–300 ms), so the time from the first call's start to the last
//! call's end, ÷ delay, is the number of rounds, whatever the machine (the
//! process's own start and exit are left out; wall time is shown too). For the example stack (domain, truststore, WAF included):
//! apply from empty, a no-op apply, diff and teardown, each with its calls,
//! mutating calls and highest concurrency.
//!
//! Twice, in one run: with API Gateway's one-write-at-a-time rule off, and
//! on (a write to a REST API that overlaps another gets 409, see
//! `e2e::aws_like`); then the ratio of the two applies from empty.
//!
//! Run: `scripts/bench-deployer [DELAY_MS]` (starts moto, builds, runs this);
//! with `ROUNDS_TRACE=1`, each call is listed with the round it started in.

use std::time::{Duration, Instant};

use e2e::aws_like::Behaviours;
use e2e::deploy::{StackDir, TIME_SCALE, deployer};
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

/// One command's figures.
struct Rounds {
    calls: usize,
    mutating: usize,
    concurrency: usize,
    wall: Duration,
    /// From the first call's start to the last call's end.
    calling: Duration,
    conflicts: usize,
}

async fn measure(stack: &StackDir, proxy: &Proxy, args: &[&str], delay: Duration) -> Rounds {
    proxy.reset();
    let conflicts_before = proxy.behaviour_counts().get("concurrent_modification").copied().unwrap_or(0);
    let env: [(&str, &str); 0] = [];
    let started = Instant::now();
    let outcome = deployer(stack, &proxy.url(), args, &env).await;
    let wall = started.elapsed();
    assert_eq!(outcome.code, 0, "{args:?}: {}", outcome.stderr);
    let calls = proxy.calls();
    if std::env::var_os("ROUNDS_TRACE").is_some() {
        // Which calls make up the rounds: each call's start, in delays since the command began.
        for call in &calls {
            let at = call.at.duration_since(started).as_secs_f64() / delay.as_secs_f64();
            eprintln!("    {at:>6.1}  {}", call.service_operation);
        }
    }
    let conflicts = proxy.behaviour_counts().get("concurrent_modification").copied().unwrap_or(0);
    let first = calls.iter().map(|c| c.at).min().expect("calls");
    let last = calls.iter().map(|c| c.at).max().expect("calls");
    Rounds {
        calls: calls.len(),
        mutating: calls.iter().filter(|c| c.mutating).count(),
        concurrency: proxy.highest_concurrency(),
        wall,
        calling: last.duration_since(first) + delay,
        conflicts: conflicts - conflicts_before,
    }
}

#[tokio::main]
async fn main() {
    let delay_ms: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let delay = Duration::from_millis(delay_ms);
    let stack = example_stack();
    let aws = e2e::deploy::clients().await;
    println!("delay per call: {delay_ms} ms");
    let mut applies = Vec::new();
    for (label, concurrent_writes) in [("409 rule off", false), ("409 rule on", true)] {
        let behaviours = Behaviours { concurrent_writes, ..Behaviours::none(TIME_SCALE) };
        let proxy = Proxy::aws_like_with_delay(behaviours, delay).await;
        // Start from an empty account.
        let env: [(&str, &str); 0] = [];
        let cleanup = deployer(&stack, &proxy.url(), &["teardown"], &env).await;
        assert_eq!(cleanup.code, 0, "{}", cleanup.stderr);
        println!("\n{label}");
        println!(
            "{:<34} {:>6} {:>9} {:>12} {:>10} {:>9} {:>8}",
            "command", "calls", "mutating", "concurrency", "409s met", "wall s", "rounds"
        );
        let commands: [(&str, &[&str]); 6] = [
            // The account's first stack: the lock bucket is created too.
            ("apply (from empty, first stack)", &["apply"]),
            ("apply (no-op)", &["apply"]),
            ("diff", &["diff"]),
            ("teardown (last stack)", &["teardown"]),
            // Another stack's lock in the bucket: the usual case for a new stack.
            ("apply (from empty)", &["apply"]),
            ("teardown", &["teardown"]),
        ];
        for (i, (command, args)) in commands.into_iter().enumerate() {
            if i == 4 {
                e2e::deploy::put_in_lock_bucket(&aws, "locks/another-stack.json", b"{}").await;
            }
            let r = measure(&stack, &proxy, args, delay).await;
            let rounds = r.calling.as_secs_f64() / delay.as_secs_f64();
            if i == 0 {
                applies.push(rounds);
            }
            println!(
                "{command:<34} {:>6} {:>9} {:>12} {:>10} {:>9.2} {:>8.1}",
                r.calls,
                r.mutating,
                r.concurrency,
                r.conflicts,
                r.wall.as_secs_f64(),
                rounds
            );
        }
        let bucket = e2e::deploy::LOCK_BUCKET;
        aws.s3.delete_object().bucket(bucket).key("locks/another-stack.json").send().await.expect("remove it");
        aws.s3.delete_bucket().bucket(bucket).send().await.expect("remove the bucket");
    }
    println!(
        "\napply from empty, 409 rule on ÷ off: {:.1} ÷ {:.1} rounds = {:.2}×",
        applies[1],
        applies[0],
        applies[1] / applies[0]
    );
}
