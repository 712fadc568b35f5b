//! The deployer against moto, run by pipelines: saved plans carried out
//! exactly or refused, and the stack's lock between concurrent runs.

use e2e::deploy::{StackDir, api_id, clean_slate, clients, deployer, env, set_authorizer_ttl, stack_yaml};
use e2e::moto::Proxy;

/// `plan --out`, then `apply PLAN`: that plan and nothing else, or nothing
/// at all when stack.yaml or AWS moved since.
#[tokio::test]
async fn a_saved_plan_is_carried_out_exactly_or_refused() {
    let gold = stack_yaml("t-saved", "");
    let silver = gold.replace("tier: gold", "tier: silver");
    let stack = StackDir::new("t-saved", &gold);
    let proxy = Proxy::start().await;
    clean_slate(&stack, &proxy).await;
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);

    stack.write("stack.yaml", &silver);
    let plan_file = stack.path("plan.json");
    let plan_arg = plan_file.to_str().unwrap();
    let planned = deployer(&stack, &proxy.url(), &["plan", "--out", plan_arg], &env()).await;
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    assert!(planned.stdout.contains("~ stage prod"), "{}", planned.stdout);

    // stack.yaml changed since: refused before the first write.
    stack.write("stack.yaml", gold.replace("tier: gold", "tier: platinum"));
    proxy.reset();
    let stale = deployer(&stack, &proxy.url(), &["apply", plan_arg], &env()).await;
    assert_eq!(stale.code, 1);
    assert!(stale.stderr.contains("changed since the plan was made; nothing was changed"), "{}", stale.stderr);
    assert_eq!(proxy.mutating(), Vec::<String>::new(), "not one write, not even the lock");

    // AWS changed since: refused under the lock, before any change.
    stack.write("stack.yaml", &silver);
    let aws = clients().await;
    let api_id = api_id(&aws, "t-saved-api").await;
    let authorizer_id =
        aws.apigateway.get_authorizers().rest_api_id(&api_id).send().await.unwrap().items()[0].id().unwrap().to_owned();
    set_authorizer_ttl(&aws, &api_id, &authorizer_id, "3600").await;
    proxy.reset();
    let moved = deployer(&stack, &proxy.url(), &["apply", plan_arg], &env()).await;
    assert_eq!(moved.code, 1);
    assert!(moved.stderr.contains("AWS no longer matches what the saved plan was made from"), "{}", moved.stderr);
    assert!(moved.stderr.contains("api_authorizer t-saved-oauth: planned no change, now update"), "{}", moved.stderr);
    assert_eq!(proxy.changes(), Vec::<String>::new(), "nothing but the lock was written");
    let stage = aws.apigateway.get_stage().rest_api_id(&api_id).stage_name("prod").send().await.unwrap();
    assert_eq!(stage.variables().unwrap().get("tier").map(String::as_str), Some("gold"), "unchanged");

    // A fresh plan is carried out: exactly its steps.
    let planned = deployer(&stack, &proxy.url(), &["plan", "--out", plan_arg, "--json"], &env()).await;
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let steps: Vec<String> =
        e2e::deploy::planned(&planned.stdout).iter().map(|s| format!("{} {}", s.kind, s.action)).collect();
    assert_eq!(steps, ["api_authorizer update", "stage update"]);
    proxy.reset();
    let applied = deployer(&stack, &proxy.url(), &["apply", plan_arg], &env()).await;
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let changes = proxy.changes();
    assert!(
        changes.iter().all(|c| c.contains("/authorizers/") || c.contains("/stages/") || c.ends_with("/deployments")),
        "only the authorizer and the stage were written: {changes:?}"
    );
    let stage = aws.apigateway.get_stage().rest_api_id(&api_id).stage_name("prod").send().await.unwrap();
    assert_eq!(stage.variables().unwrap().get("tier").map(String::as_str), Some("silver"));
    let authorizer =
        aws.apigateway.get_authorizer().rest_api_id(&api_id).authorizer_id(&authorizer_id).send().await.unwrap();
    assert_eq!(authorizer.authorizer_result_ttl_in_seconds(), Some(300));
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);

    // A plan is for one stack: another stack's file is refused.
    let other = StackDir::new("t-saved-other", &stack_yaml("t-saved-other", ""));
    let refused = deployer(&other, &proxy.url(), &["apply", plan_arg], &env()).await;
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("the plan is for stack \"t-saved\""), "{}", refused.stderr);
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
}

/// Two pipelines apply the same stack at once (two processes, each behind
/// its own recording proxy): one waits for the other, and their writes
/// never overlap in time.
#[tokio::test]
async fn two_applies_at_once_never_interleave() {
    let gold = StackDir::new("t-race", &stack_yaml("t-race", ""));
    let silver = StackDir::new("t-race-silver", &stack_yaml("t-race", "").replace("tier: gold", "tier: silver"));
    let setup = Proxy::start().await;
    clean_slate(&gold, &setup).await;
    // Each call held 20 ms, so the first apply takes long enough for the
    // second to find the lock taken.
    let (first, second) = tokio::join!(
        Proxy::with_delay(std::time::Duration::from_millis(20)),
        Proxy::with_delay(std::time::Duration::from_millis(20))
    );
    let (first_url, second_url, secrets) = (first.url(), second.url(), env());
    let (a, b) = tokio::join!(
        deployer(&gold, &first_url, &["apply"], &secrets),
        deployer(&silver, &second_url, &["apply"], &secrets)
    );
    assert_eq!((a.code, b.code), (0, 0), "{}\n---\n{}", a.stderr, b.stderr);
    let waited = [&a, &b].iter().filter(|o| o.stderr.contains("waiting for the lock of stack \"t-race\"")).count();
    assert_eq!(waited, 1, "exactly one waited:\n{}\n---\n{}", a.stderr, b.stderr);

    let window = |proxy: &Proxy| {
        let writes: Vec<std::time::Instant> =
            proxy.calls().into_iter().filter(|c| c.mutating && !e2e::moto::is_lock_call(c)).map(|c| c.at).collect();
        assert!(!writes.is_empty(), "each apply wrote something");
        (*writes.iter().min().unwrap(), *writes.iter().max().unwrap())
    };
    let (a_window, b_window) = (window(&first), window(&second));
    assert!(a_window.1 < b_window.0 || b_window.1 < a_window.0, "the writes overlapped: {a_window:?} {b_window:?}");

    // The one that went second had the last word.
    let aws = clients().await;
    let api_id = api_id(&aws, "t-race-api").await;
    let stage = aws.apigateway.get_stage().rest_api_id(&api_id).stage_name("prod").send().await.unwrap();
    let last = if a_window.0 > b_window.0 { "gold" } else { "silver" };
    assert_eq!(stage.variables().unwrap().get("tier").map(String::as_str), Some(last));
    assert_eq!(deployer(&gold, &setup.url(), &["teardown"], &env()).await.code, 0);
}

/// Writes a lease into the stack's lock object, as another run would.
async fn plant_lease(aws: &e2e::deploy::Clients, stack: &str, holder: &str, expires_in: i64) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let lease =
        serde_json::json!({"holder": holder, "run": "planted", "acquired_at": now, "expires_at": now + expires_in});
    e2e::deploy::put_in_lock_bucket(aws, &format!("locks/{stack}.json"), lease.to_string().as_bytes()).await;
}

#[tokio::test]
async fn a_held_lock_makes_apply_wait_then_fail_naming_the_holder_and_a_run_out_lease_is_taken_over() {
    let stack = StackDir::new("t-locked", &stack_yaml("t-locked", ""));
    let proxy = Proxy::start().await;
    clean_slate(&stack, &proxy).await;
    let aws = clients().await;
    let holder = "ci@runner-7 pid 4242 (apply)";
    plant_lease(&aws, "t-locked", holder, 3600).await;

    let started = std::time::Instant::now();
    let blocked = deployer(&stack, &proxy.url(), &["apply", "--lock-timeout", "2"], &env()).await;
    assert_eq!(blocked.code, 1, "{}", blocked.stderr);
    assert!(blocked.stderr.contains(&format!("waiting for the lock of stack \"t-locked\", held by {holder}")));
    assert!(blocked.stderr.contains(&format!("stack \"t-locked\" is locked by {holder}")), "{}", blocked.stderr);
    assert!(started.elapsed() >= std::time::Duration::from_secs(2), "it waited the time it was given");
    assert_eq!(proxy.changes(), Vec::<String>::new(), "nothing was changed");
    let teardown = deployer(&stack, &proxy.url(), &["teardown", "--lock-timeout", "0"], &env()).await;
    assert_eq!(teardown.code, 1, "teardown waits for the same lock");

    // The holder crashed: its lease ran out, and the next run takes over.
    plant_lease(&aws, "t-locked", holder, -1).await;
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert!(apply.stderr.contains(&format!("the lease of {holder} ran out")), "{}", apply.stderr);
    let lock = aws.s3.get_object().bucket(e2e::deploy::LOCK_BUCKET).key("locks/t-locked.json").send().await;
    assert!(lock.expect_err("released").into_service_error().is_no_such_key(), "the lock is released after the run");
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
}
