//! The two log kinds against moto: the function's log group (made and
//! tagged before the function, with its retention) and the stage's access
//! log (its group, its JSON format, and API Gateway's account-level
//! CloudWatch role, set only when the stack says so and never removed); and
//! what else the stage records (`stage.monitoring`: X-Ray, per-method metrics).

use aws_sdk_apigateway::types::{Op, PatchOperation};
use e2e::deploy::{Clients, StackDir, api_id, clients, clients_in, deployer, env, planned, snapshot, stack_yaml, step};
use e2e::moto::Proxy;

async fn retention_and_tag(aws: &Clients, group: &str) -> Option<(Option<i32>, Option<String>)> {
    let groups = aws.logs.describe_log_groups().log_group_name_prefix(group).send().await.expect("groups");
    let found = groups.log_groups().iter().find(|g| g.log_group_name() == Some(group))?.clone();
    let tags = aws.logs.list_tags_for_resource().resource_arn(found.log_group_arn().unwrap()).send().await.unwrap();
    Some((found.retention_in_days(), tags.tags().and_then(|t| t.get("oauth-gateway:stack").cloned())))
}

#[tokio::test]
async fn the_functions_log_group_is_made_first_with_its_retention_and_an_untagged_one_is_taken_back() {
    let name = "t-logs-fn";
    let group = format!("/aws/lambda/{name}-authorizer");
    let stack = StackDir::new(name, &stack_yaml(name, ""));
    let proxy = Proxy::start().await;
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
    let aws = clients().await;

    // What Lambda leaves when it made the group itself: untagged, kept forever.
    aws.logs.create_log_group().log_group_name(&group).send().await.unwrap();
    let arn = format!("arn:aws:logs:eu-west-1:123456789012:log-group:{group}");
    // (moto keeps a deleted group's tags for a new group of the same name; AWS does not.)
    aws.logs.untag_resource().resource_arn(&arn).tag_keys("oauth-gateway:stack").send().await.unwrap();
    // The plan as a pipeline reads it (--json), values as a person reads them.
    let diff = deployer(&stack, &proxy.url(), &["diff", "--json"], &env()).await;
    let steps = planned(&diff.stdout);
    let group_step = step(&steps, &format!("log_group {group}")).unwrap_or_else(|| panic!("{steps:?}"));
    assert_eq!(group_step.action, "update");
    let expected = [("retention_days", "(none)", "90"), ("tagged", "false", "true")]
        .map(|(f, o, n)| (f.to_owned(), o.to_owned(), n.to_owned()));
    assert_eq!(group_step.fields, expected, "the default");

    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let group_done = apply.stderr.find(&format!("done: log_group {group}")).expect("the group's step");
    let function_made = apply.stderr.find("creating lambda_function").expect("the function's step");
    assert!(group_done < function_made, "the group is ready before the function exists: {}", apply.stderr);
    assert_eq!(retention_and_tag(&aws, &group).await, Some((Some(90), Some(name.to_owned()))));

    // A retention CloudWatch does not offer is refused before any call.
    let with = |days: &str| {
        stack_yaml(name, "").replace("  memory_mb: 256\n", &format!("  memory_mb: 256\n  log_retention_days: {days}\n"))
    };
    stack.write("stack.yaml", with("31"));
    proxy.reset();
    let refused = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert!(refused.stderr.contains("authorizer.log_retention_days: 31 is not a retention"), "{}", refused.stderr);
    assert!(proxy.calls().is_empty(), "no AWS call for an invalid stack");

    stack.write("stack.yaml", with("30"));
    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert!(diff.stdout.contains("retention_days: 90 → 30"), "{}", diff.stdout);
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);
    assert_eq!(retention_and_tag(&aws, &group).await, Some((Some(30), Some(name.to_owned()))));
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);

    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
    assert_eq!(retention_and_tag(&aws, &group).await, None, "removed with the stack");
    assert_eq!(snapshot(&aws, name).await, Vec::<String>::new());
}

/// In a region of its own: API Gateway's CloudWatch role is one setting per
/// account and region, and this test starts from an account without one.
#[tokio::test]
async fn the_stage_access_log_needs_the_account_role_set_only_on_request_and_never_removed() {
    let _account = e2e::deploy::ACCOUNT_SETTINGS.lock().await;
    let name = "t-logs-access";
    let region = "eu-central-1";
    let group = format!("/aws/apigateway/{name}/prod/access");
    let yaml =
        |access_log: &str| stack_yaml(name, access_log).replace("region: eu-west-1", &format!("region: {region}"));
    let stack = StackDir::new(name, &yaml(""));
    let proxy = Proxy::start().await;
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
    let aws = clients_in(region).await;
    // An account without the role. (AWS offers no way back to that; moto takes an empty value.)
    let unset = PatchOperation::builder().op(Op::Replace).path("/cloudwatchRoleArn").value("").build();
    aws.apigateway.update_account().patch_operations(unset).send().await.unwrap();
    let stage = || async {
        let api = api_id(&aws, &format!("{name}-api")).await;
        aws.apigateway.get_stage().rest_api_id(api).stage_name("prod").send().await.unwrap()
    };
    let account_role = || async {
        let account = aws.apigateway.get_account().send().await.unwrap();
        account.cloudwatch_role_arn().filter(|r| !r.is_empty()).map(str::to_owned)
    };

    // Without `account_role: create`, the account is not changed and the stage not written.
    // (moto would accept the stage's settings without the role; AWS refuses them.)
    stack.write("stack.yaml", yaml("  access_log: { retention_days: 30 }\n"));
    let refused = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("failed: access_log prod: creating access_log prod: API Gateway has no CloudWatch role"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("account_role: create"), "{}", refused.stderr);
    assert_eq!(account_role().await, None, "the account setting is not changed silently");
    assert!(stage().await.access_log_settings().is_none(), "the stage is not written");
    assert!(!proxy.mutating().iter().any(|m| m.contains("/account")), "{:?}", proxy.mutating());

    // With it: the role is made and set, the stage logs JSON to the stack's group.
    stack.write("stack.yaml", yaml("  access_log: { retention_days: 30, account_role: create }\n"));
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let role = account_role().await.expect("set");
    assert_eq!(role, "arn:aws:iam::123456789012:role/oauth-gateway-apigateway-cloudwatch");
    let iam_role = aws.iam.get_role().role_name("oauth-gateway-apigateway-cloudwatch").send().await.unwrap();
    assert!(iam_role.role().unwrap().assume_role_policy_document().unwrap().contains("apigateway.amazonaws.com"));
    let settings = stage().await.access_log_settings().cloned().expect("access log settings");
    assert_eq!(
        settings.destination_arn(),
        Some(format!("arn:aws:logs:{region}:123456789012:log-group:{group}").as_str())
    );
    let format: serde_json::Value = serde_json::from_str(settings.format().unwrap()).expect("a JSON format");
    for (field, variable) in [
        ("principalId", "$context.authorizer.principalId"),
        ("authorizerError", "$context.authorizer.error"),
        ("clientCertSubjectDN", "$context.identity.clientCert.subjectDN"),
        ("wafStatus", "$context.waf.status"),
    ] {
        assert_eq!(format[field], variable);
    }
    assert_eq!(retention_and_tag(&aws, &group).await, Some((Some(30), Some(name.to_owned()))));
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);
    assert!(snapshot(&aws, name).await.contains(&format!("  access_log prod {group}")));

    // Dropped from the stack: the stage's settings and the group go, the account's role stays.
    stack.write("stack.yaml", yaml(""));
    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert!(
        diff.stdout.contains("- access_log prod") && diff.stdout.contains(&format!("- log_group {group}")),
        "{}",
        diff.stdout
    );
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);
    assert!(stage().await.access_log_settings().is_none_or(|s| s.destination_arn().is_none()));
    assert_eq!(retention_and_tag(&aws, &group).await, None);
    assert_eq!(account_role().await.as_deref(), Some(role.as_str()));

    // Torn down with one: everything of the stack goes, the account setting and its role stay.
    stack.write("stack.yaml", yaml("  access_log: { account_role: create }\n"));
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);
    assert_eq!(retention_and_tag(&aws, &group).await.map(|(days, _)| days), Some(Some(365)), "the default");
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
    assert_eq!(snapshot(&aws, name).await, Vec::<String>::new());
    assert_eq!(account_role().await.as_deref(), Some(role.as_str()), "teardown never removes an account setting");
    assert!(aws.iam.get_role().role_name("oauth-gateway-apigateway-cloudwatch").send().await.is_ok());
}

/// A write AWS answered but did not keep (here the log group's retention,
/// answered by the proxy and never passed on) must not make `apply` claim
/// the stack is in place: the state a create returns is read back from AWS,
/// and the check after the run finds the difference.
#[tokio::test]
async fn a_create_whose_write_aws_did_not_keep_is_not_reported_done() {
    let name = "t-logs-dropped";
    let stack = StackDir::new(name, &stack_yaml(name, ""));
    let setup = Proxy::start().await;
    assert_eq!(deployer(&stack, &setup.url(), &["teardown"], &env()).await.code, 0);
    let dropping = Proxy::refusing(|request| {
        let (operation, _) = e2e::moto::classify(request);
        (operation == "PutRetentionPolicy").then(|| e2e::server::Reply::json("{}"))
    })
    .await;
    let apply = deployer(&stack, &dropping.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 1, "{}\n{}", apply.stdout, apply.stderr);
    assert!(apply.stderr.contains("AWS still differs from the stack after the run"), "{}", apply.stderr);
    assert!(apply.stderr.contains("retention_days: (none) → 90"), "{}", apply.stderr);
    // The next run, with the writes reaching AWS, finishes the job.
    assert_eq!(deployer(&stack, &setup.url(), &["apply"], &env()).await.code, 0);
    assert_eq!(deployer(&stack, &setup.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);
    assert_eq!(deployer(&stack, &setup.url(), &["teardown"], &env()).await.code, 0);
}

/// An account whose CloudWatch role setting names a role IAM no longer has
/// (deleted by hand, a stack torn down elsewhere): API Gateway keeps the
/// setting without a word and writes no access log. The deployer says so,
/// names the role, writes nothing; with `account_role: create` it replaces
/// the setting with its own role. Before, the stale role counted as a role.
#[tokio::test]
async fn an_account_role_that_no_longer_exists_is_reported_and_replaced_only_on_request() {
    let _account = e2e::deploy::ACCOUNT_SETTINGS.lock().await;
    let name = "t-logs-stale";
    let region = "ap-southeast-2";
    let yaml =
        |access_log: &str| stack_yaml(name, access_log).replace("region: eu-west-1", &format!("region: {region}"));
    let stack = StackDir::new(name, &yaml(""));
    let proxy = Proxy::start().await;
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
    let aws = clients_in(region).await;
    let stale = "arn:aws:iam::123456789012:role/deleted-long-ago";
    let set = PatchOperation::builder().op(Op::Replace).path("/cloudwatchRoleArn").value(stale).build();
    aws.apigateway.update_account().patch_operations(set).send().await.unwrap();
    let account_role = || async {
        let account = aws.apigateway.get_account().send().await.unwrap();
        account.cloudwatch_role_arn().filter(|r| !r.is_empty()).map(str::to_owned)
    };

    stack.write("stack.yaml", yaml("  access_log: { retention_days: 30 }\n"));
    let refused = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains(&format!("is {stale}, a role that no longer exists")), "{}", refused.stderr);
    assert_eq!(account_role().await.as_deref(), Some(stale), "not changed without `create`");

    stack.write("stack.yaml", yaml("  access_log: { retention_days: 30, account_role: create }\n"));
    let applied = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let ours = account_role().await.unwrap_or_default();
    assert!(ours.ends_with("role/oauth-gateway-apigateway-cloudwatch"), "{ours}");
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
}

/// `deployer verify` reads what API Gateway did with its requests from the
/// stage's access log in CloudWatch, by request id. moto's API Gateway
/// writes no access log: the test writes the lines API Gateway would (the
/// stack's access-log format, one per request) and checks that verify finds
/// its requests' lines among others', and records what they say.
#[tokio::test]
async fn verify_records_what_the_stages_access_log_in_cloudwatch_says_of_its_requests() {
    use deployer::verify::facts::{self, Logs, Sent, Source};
    let aws = clients().await;
    let group = deployer::stack::names::access_log_group("t-facts", "prod");
    let _ = aws.logs.create_log_group().log_group_name(&group).send().await;
    let _ = aws.logs.create_log_stream().log_group_name(&group).log_stream_name("s1").send().await;
    let now =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap();
    let line = |id: &str, path: &str, status: u16| {
        let line = serde_json::json!({
            "requestId": id,
            "resourcePath": path,
            "status": status,
            "clientCertSubjectDN": "CN=client-a,O=Pets",
        });
        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
            .timestamp(now)
            .message(line.to_string())
            .build()
            .unwrap()
    };
    aws.logs
        .put_log_events()
        .log_group_name(&group)
        .log_stream_name("s1")
        .log_events(line("someone-else-1", "/other", 200))
        .log_events(line("3c1e-a", "/pets/{id}", 401))
        .log_events(line("3c1e-b", "/pets/{id}", 200))
        .send()
        .await
        .expect("the access log lines");
    // The authorizer's decision line, as its JSON log writes it.
    let function_group = deployer::stack::names::function_log_group("t-facts");
    let _ = aws.logs.create_log_group().log_group_name(&function_group).send().await;
    let _ = aws.logs.create_log_stream().log_group_name(&function_group).log_stream_name("s1").send().await;
    let decision = serde_json::json!({"level": "INFO", "fields": {
        "message": "authorization decision",
        "request_id": "lambda-1",
        "api_request_id": "3c1e-b",
        "method_arn": "arn:aws:execute-api:eu-west-1:123456789012:a1/prod/GET/pets/a.b",
        "decision": "allow",
    }});
    let event = aws_sdk_cloudwatchlogs::types::InputLogEvent::builder().timestamp(now).message(decision.to_string());
    aws.logs
        .put_log_events()
        .log_group_name(&function_group)
        .log_stream_name("s1")
        .log_events(event.build().unwrap())
        .send()
        .await
        .expect("the decision line");
    let cloudwatch = |group: String| Source::CloudWatch { logs: aws.logs.clone(), group, since_ms: now - 60_000 };
    let logs = Logs { access: cloudwatch(group), function: cloudwatch(function_group) };
    let sent = [
        Sent { label: "GET /pets/verify without a token".into(), request_id: "3c1e-a".into(), authorized: false },
        Sent { label: "GET /pets/a%2Eb".into(), request_id: "3c1e-b".into(), authorized: true },
    ];
    let check = facts::record(&logs, &sent).await;
    let deployer::verify::Outcome::Recorded(facts) = &check.outcome else { panic!("{check:?}") };
    assert!(facts.starts_with("subjectDN CN=client-a,O=Pets"), "{facts}");
    assert!(facts.contains("GET /pets/verify without a token → resourcePath /pets/{id}, status 401"), "{facts}");
    assert!(
        facts.contains(
            "GET /pets/a%2Eb → resourcePath /pets/{id}, status 200, method ARN \
             arn:aws:execute-api:eu-west-1:123456789012:a1/prod/GET/pets/a.b (allow)"
        ),
        "{facts}"
    );
    assert!(!facts.contains("/other"), "another request's line is not verify's: {facts}");
}

/// `stage.monitoring` (the `stage_monitoring` kind): X-Ray tracing and
/// per-method metrics are turned on, changed one at a time, and turned off
/// when the stack stops asking for them; nothing else of the stage moves.
#[tokio::test]
async fn the_stages_tracing_and_per_method_metrics_follow_the_stack() {
    let name = "t-monitoring";
    let stack = StackDir::new(name, &stack_yaml(name, ""));
    let proxy = Proxy::start().await;
    let aws = clients().await;
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
    let recorded = || async {
        let api = api_id(&aws, &format!("{name}-api")).await;
        let stage = aws.apigateway.get_stage().rest_api_id(api).stage_name("prod").send().await.unwrap();
        let metrics = stage.method_settings().and_then(|m| m.get("*/*")).is_some_and(|s| s.metrics_enabled());
        (stage.tracing_enabled(), metrics, stage.deployment_id().map(str::to_owned))
    };
    let (url, variables) = (proxy.url(), env());
    // Each apply prints its plan as JSON (--json): what is asserted on.
    let apply = |monitoring: &'static str| {
        stack.write("stack.yaml", stack_yaml(name, monitoring));
        deployer(&stack, &url, &["apply", "--json"], &variables)
    };
    let only = |stdout: &str| -> (String, Vec<String>) {
        let steps = planned(stdout);
        let step =
            step(&steps, "stage_monitoring prod").unwrap_or_else(|| panic!("no stage_monitoring step: {steps:?}"));
        (step.action.clone(), step.fields.iter().map(|(field, old, new)| format!("{field}: {old} → {new}")).collect())
    };

    let both = apply("  monitoring: { xray_tracing: true, detailed_metrics: true }\n").await;
    assert_eq!(both.code, 0, "{}\n{}", both.stdout, both.stderr);
    assert_eq!(only(&both.stdout), ("create".to_owned(), vec![]));
    let (tracing, metrics, deployment) = recorded().await;
    assert_eq!((tracing, metrics), (true, true));
    let again = apply("  monitoring: { xray_tracing: true, detailed_metrics: true }\n").await;
    assert_eq!(planned(&again.stdout), [], "no changes");

    let tracing_only = apply("  monitoring: { xray_tracing: true }\n").await;
    assert_eq!(tracing_only.code, 0, "{}\n{}", tracing_only.stdout, tracing_only.stderr);
    assert_eq!(
        only(&tracing_only.stdout),
        ("update".to_owned(), vec!["detailed_metrics: true → false".to_owned()]),
        "only what changed"
    );
    assert_eq!(recorded().await, (true, false, deployment.clone()), "a stage setting needs no new deployment");

    let neither = apply("").await;
    assert_eq!(neither.code, 0, "{}\n{}", neither.stdout, neither.stderr);
    assert_eq!(only(&neither.stdout).0, "delete");
    assert_eq!(recorded().await, (false, false, deployment));
    assert_eq!(planned(&apply("").await.stdout), []);
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
}
