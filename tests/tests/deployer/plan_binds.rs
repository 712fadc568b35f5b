//! The printed plan binds the executor: when AWS moves between the plan and
//! a step (another actor, a console edit during a long certificate wait),
//! the step fails naming what changed, and writes nothing nobody reviewed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_apigateway::types::{Op, PatchOperation};
use e2e::deploy::{StackDir, api_id, clients, deployer, env, stack_yaml};
use e2e::moto::{Proxy, classify};

#[tokio::test]
async fn a_step_whose_resource_moved_after_the_plan_fails_and_writes_nothing() {
    let stack = StackDir::new("t-binds", &stack_yaml("t-binds", ""));
    let setup = Proxy::start().await;
    assert_eq!(deployer(&stack, &setup.url(), &["teardown"], &env()).await.code, 0);
    assert_eq!(deployer(&stack, &setup.url(), &["apply"], &env()).await.code, 0);
    let aws = clients().await;
    let api_id = api_id(&aws, "t-binds-api").await;

    // The change to review: more memory for the function, another tier on the stage.
    let changed = stack_yaml("t-binds", "").replace("memory_mb: 256", "memory_mb: 512").replace("gold", "silver");
    stack.write("stack.yaml", &changed);
    let diff = deployer(&stack, &setup.url(), &["diff"], &env()).await;
    assert!(diff.stdout.contains("~ stage prod") && !diff.stdout.contains("throttling"), "{}", diff.stdout);

    // While the function is being updated (after the plan, before the stage's
    // step, which waits for it), someone changes the stage's throttling.
    let acted = Arc::new(AtomicBool::new(false));
    let (flag, moved_api) = (acted.clone(), api_id.clone());
    let proxy = Proxy::acting(move |request| {
        let (operation, _) = classify(request);
        let updating_function = operation.starts_with("PUT ") && operation.ends_with("/configuration");
        if !updating_function || flag.swap(true, Ordering::SeqCst) {
            return None;
        }
        let api_id = moved_api.clone();
        Some(Box::pin(async move {
            let operation = PatchOperation::builder().op(Op::Replace).path("/*/*/throttling/rateLimit").value("7");
            let aws = clients().await;
            let stage = aws.apigateway.update_stage().rest_api_id(api_id).stage_name("prod");
            stage.patch_operations(operation.build()).send().await.expect("the other actor's change");
        }))
    })
    .await;
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert!(acted.load(Ordering::SeqCst), "the function was updated, so AWS moved in between");
    assert_eq!(apply.code, 1, "{}\n{}", apply.stdout, apply.stderr);
    assert!(
        apply.stderr.contains("failed: stage prod: AWS changed since the plan: planned update of [variables:"),
        "{}",
        apply.stderr
    );
    assert!(
        apply.stderr.contains("now update of [variables:") && apply.stderr.contains("throttling:"),
        "{}",
        apply.stderr
    );

    // The function's step, which AWS did not move, was carried out; the stage
    // was not written: neither the reviewed tier nor the unreviewed throttling.
    let function = aws.lambda.get_function_configuration().function_name("t-binds-authorizer").send().await.unwrap();
    assert_eq!(function.memory_size(), Some(512));
    let stage = aws.apigateway.get_stage().rest_api_id(&api_id).stage_name("prod").send().await.unwrap();
    assert_eq!(stage.variables().and_then(|v| v.get("tier")).map(String::as_str), Some("gold"));
    let writes = proxy.mutating();
    assert!(!writes.iter().any(|w| w.contains("/stages/prod")), "no write to the stage: {writes:?}");

    // The next run plans again, prints the throttling it now restores, and converges.
    let diff = deployer(&stack, &setup.url(), &["diff"], &env()).await;
    assert!(diff.stdout.contains("throttling"), "{}", diff.stdout);
    assert_eq!(deployer(&stack, &setup.url(), &["apply"], &env()).await.code, 0);
    let stage = aws.apigateway.get_stage().rest_api_id(&api_id).stage_name("prod").send().await.unwrap();
    assert_eq!(stage.variables().and_then(|v| v.get("tier")).map(String::as_str), Some("silver"));
    assert_eq!(deployer(&stack, &setup.url(), &["teardown"], &env()).await.code, 0);
}
