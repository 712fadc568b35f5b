//! Chaos: the deployer killed after each of its mutating calls, then run
//! again; and faults (500, 503, dropped connections) on a share of all
//! calls. Whatever happens, the next run must leave the account exactly as
//! one clean run does: no duplicate, nothing untagged, nothing left behind.

use std::time::{Duration, Instant};

use e2e::aws_like::{Behaviours, Faults, LostAnswers};
use e2e::deploy::{
    SECRET, StackDir, TIME_SCALE, clean_apply_shape, clients, deployer, edge_yaml, shape, spawn_deployer, stack_yaml,
};
use e2e::moto::Proxy;

/// Kill points run on this many stacks at once (each its own names).
const WORKERS: usize = 4;

fn env() -> [(&'static str, &'static str); 2] {
    // A killed run's lock runs out after a second, not a minute.
    [("INTROSPECTION_SECRET", SECRET), ("DEPLOYER_LOCK_LEASE_SECONDS", "1")]
}

async fn must(stack: &StackDir, proxy: &Proxy, args: &[&str]) {
    let outcome = deployer(stack, &proxy.url(), args, &env()).await;
    assert_eq!(outcome.code, 0, "{args:?}:\n{}\n{}", outcome.stdout, outcome.stderr);
}

/// Runs `args` and kills it once `n` mutating calls have gone through (the
/// proxy holds every call after that). `false` if it finished first.
async fn kill_after(stack: &StackDir, proxy: &Proxy, args: &[&str], n: usize) -> bool {
    proxy.freeze_after(n);
    let mut child = spawn_deployer(stack, &proxy.url(), args, &env()).await;
    let started = Instant::now();
    let killed = loop {
        if child.try_wait().expect("child status").is_some() {
            break false;
        }
        if proxy.passed_mutations() >= n {
            // Let the Nth call reach moto, then kill.
            tokio::time::sleep(Duration::from_millis(50)).await;
            child.kill().await.expect("kill");
            break true;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the run neither finished nor reached call {n}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    proxy.thaw();
    killed
}

/// The mutating calls of a clean apply and of a clean teardown of the full stack.
async fn calls_of_a_clean_run() -> (usize, usize) {
    let name = "t-kill-count";
    let stack = StackDir::new(name, &stack_yaml(name, &edge_yaml(name)));
    let proxy = Proxy::start().await;
    must(&stack, &proxy, &["teardown"]).await;
    proxy.reset();
    must(&stack, &proxy, &["apply"]).await;
    let apply = proxy.mutating().len();
    proxy.reset();
    must(&stack, &proxy, &["teardown"]).await;
    (apply, proxy.mutating().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_killed_after_any_mutating_call_is_finished_by_the_next() {
    let (apply_calls, teardown_calls) = calls_of_a_clean_run().await;
    let expected = clean_apply_shape().await;
    assert!(apply_calls > 20 && teardown_calls > 10, "{apply_calls} {teardown_calls}");

    let workers = (0..WORKERS).map(|worker| {
        let expected = expected.clone();
        async move {
            let name = format!("t-kill-{worker}");
            let stack = StackDir::new(&name, &stack_yaml(&name, &edge_yaml(&name)));
            let proxy = Proxy::start().await;
            let aws = clients().await;
            let mut tried = Vec::new();
            must(&stack, &proxy, &["teardown"]).await;
            // apply killed after call n, for every n this worker owns.
            for n in (1..apply_calls).filter(|n| n % WORKERS == worker) {
                let killed = kill_after(&stack, &proxy, &["apply"], n).await;
                must(&stack, &proxy, &["apply"]).await;
                assert_eq!(shape(&aws, &name).await, expected, "apply killed after call {n}, then run again");
                must(&stack, &proxy, &["teardown"]).await;
                tried.push(("apply", n, killed));
            }
            // teardown killed after call n.
            for n in (1..teardown_calls).filter(|n| n % WORKERS == worker) {
                must(&stack, &proxy, &["apply"]).await;
                let killed = kill_after(&stack, &proxy, &["teardown"], n).await;
                must(&stack, &proxy, &["teardown"]).await;
                assert_eq!(
                    shape(&aws, &name).await,
                    Vec::<String>::new(),
                    "teardown killed after call {n}, then again"
                );
                tried.push(("teardown", n, killed));
            }
            tried
        }
    });
    let tried: Vec<_> = futures_join(workers).await.into_iter().flatten().collect();
    let killed = tried.iter().filter(|(_, _, killed)| *killed).count();
    assert_eq!(tried.len(), apply_calls - 1 + teardown_calls - 1, "every kill point was tried");
    assert!(killed * 10 >= tried.len() * 9, "most runs were really killed: {killed} of {}", tried.len());
    println!(
        "kill points: {} for apply ({apply_calls} mutating calls), {} for teardown ({teardown_calls}); \
         {killed} killed before finishing; all converged on the next run",
        apply_calls - 1,
        teardown_calls - 1
    );
}

async fn futures_join<F: std::future::Future + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.expect("worker"));
    }
    outputs
}

/// Apply from empty, apply again (nothing to do), teardown (nothing left),
/// through `proxy`: what one clean apply gives every time, and
/// `behaviour` met at least once. After a run, `check` may look at the
/// account before teardown.
async fn converges_through(name: &str, proxy: &Proxy, behaviour: &str, check: impl AsyncFnOnce(&e2e::deploy::Clients)) {
    let aws = clients().await;
    let stack = StackDir::new(name, &stack_yaml(name, &edge_yaml(name)));
    must(&stack, proxy, &["teardown"]).await;
    must(&stack, proxy, &["apply"]).await;
    assert_eq!(shape(&aws, name).await, clean_apply_shape().await, "{name}: apply");
    check(&aws).await;
    let again = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(again.code, 0, "{name}: {}", again.stderr);
    assert!(again.stdout.contains("No changes"), "{name}: {}", again.stdout);
    must(&stack, proxy, &["teardown"]).await;
    assert_eq!(shape(&aws, name).await, Vec::<String>::new(), "{name}: teardown");
    let counts = proxy.behaviour_counts();
    let met = counts.get(behaviour).copied().unwrap_or(0);
    assert!(met > 0, "{name}: {behaviour} never happened");
    println!("{name}: {behaviour} {met} times over {} calls", proxy.calls().len());
}

/// 5% of all calls answered 500 or 503 or their connection dropped, before
/// they reach moto: the SDK's retries absorb them.
#[tokio::test]
async fn faults_on_any_call_do_not_stop_a_run() {
    for seed in [7, 1_234, 99_991] {
        let faults = Faults { rate: 0.05, seed };
        let proxy = Proxy::aws_like(Behaviours { faults: Some(faults), ..Behaviours::none(TIME_SCALE) }).await;
        converges_through(&format!("t-faults-{seed}"), &proxy, "fault", async |_| {}).await;
    }
}

/// 5% of mutating calls reach AWS and then lose their answer (500, 503 or
/// a dropped connection after AWS acted), with API Gateway's own rules on:
/// every create converges without a duplicate (one REST API, one
/// deployment), a second apply has nothing to do, and teardown leaves
/// nothing.
#[tokio::test]
async fn lost_answers_leave_no_duplicate_and_nothing_after_teardown() {
    for seed in [5, 4_242, 77_777] {
        let name = format!("t-lost-{seed}");
        let behaviours = Behaviours {
            lost_answers: Some(LostAnswers::rate(0.05, seed)),
            api_rules: true,
            concurrent_writes: true,
            ..Behaviours::none(TIME_SCALE)
        };
        let proxy = Proxy::aws_like(behaviours).await;
        let api_name = format!("{name}-api");
        converges_through(&name, &proxy, "lost_answer", async |aws| {
            let apis = aws.apigateway.get_rest_apis().limit(500).send().await.expect("apis");
            let api = apis.items().iter().find(|a| a.name() == Some(&api_name)).expect("the API");
            let deployments = aws.apigateway.get_deployments().rest_api_id(api.id().unwrap()).send().await.unwrap();
            assert_eq!(deployments.items().len(), 1, "{name}: one deployment");
        })
        .await;
    }
}
