//! The deployer binary against moto, as a pipeline runs it: apply, drift,
//! teardown, what is and is not the stack's, and a stack's whole life.
//! Requests go through a recording proxy, so tests can count what was sent.

use e2e::deploy::{
    SECRET, StackDir, api_id, apply_in_order, clean_slate, clients, deployer, edge_yaml, env, pending, planned,
    position, stack_yaml, step,
};
use e2e::moto::Proxy;

#[tokio::test]
async fn apply_creates_everything_then_a_second_apply_changes_nothing() {
    let stack = StackDir::new("t-apply", &stack_yaml("t-apply", ""));
    let proxy = Proxy::start().await;
    clean_slate(&stack, &proxy).await;
    let first = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(first.stdout.contains("+ lambda_function t-apply-authorizer"), "{}", first.stdout);
    assert!(!first.stdout.contains(SECRET) && !first.stderr.contains(SECRET), "secrets are never printed");

    let aws = clients().await;
    let role = aws.iam.get_role().role_name("t-apply-authorizer-exec").send().await.unwrap().role.unwrap();
    assert!(role.assume_role_policy_document().unwrap().contains("lambda.amazonaws.com"));
    // Bounded by the stack's boundary, which allows the function its own logs only.
    let boundary = role.permissions_boundary().and_then(|b| b.permissions_boundary_arn());
    assert_eq!(boundary, Some("arn:aws:iam::123456789012:policy/t-apply-role-boundary"));
    let policy = aws.iam.get_policy().policy_arn(boundary.unwrap()).send().await.unwrap();
    let current = policy.policy().unwrap().default_version_id().unwrap();
    let version = aws.iam.get_policy_version().policy_arn(boundary.unwrap()).version_id(current).send().await.unwrap();
    let document = percent_encoding::percent_decode_str(version.policy_version().unwrap().document().unwrap());
    let document: serde_json::Value = serde_json::from_str(&document.decode_utf8_lossy()).unwrap();
    let resources = |sid: &str| {
        let statements = document["Statement"].as_array().unwrap();
        statements.iter().find(|s| s["Sid"] == sid).map(|s| s["Resource"].clone()).unwrap_or_default()
    };
    assert_eq!(
        resources("FunctionWritesItsLogs"),
        serde_json::json!(["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/t-apply-authorizer:*"])
    );
    assert_eq!(
        resources("FunctionReadsItsSecret"),
        serde_json::json!([
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:oauth-gateway/t-apply/authorizer-??????"
        ])
    );
    assert_eq!(document["Statement"].as_array().unwrap().len(), 2, "and nothing else: {document}");
    assert!(aws.iam.get_role().role_name("t-apply-authorizer-invoke").send().await.is_err(), "no invoke role");
    let config = aws.lambda.get_function_configuration().function_name("t-apply-authorizer").send().await.unwrap();
    assert_eq!(config.runtime().map(|r| r.as_str()), Some("provided.al2023"));
    assert_eq!(config.handler(), Some("bootstrap"));
    assert_eq!((config.timeout(), config.memory_size()), (Some(5), Some(256)));
    let variables = config.environment().unwrap().variables().unwrap();
    // The secret is not in the environment (readable by whoever may read the
    // function): in Secrets Manager, which the function reads at init.
    assert_eq!(variables.get("INTROSPECTION_CLIENT_SECRET"), None);
    assert!(variables.values().all(|v| !v.contains(SECRET)), "{variables:?}");
    let secret_name = variables.get("AUTHORIZER_SECRETS").expect("where the secret is");
    assert_eq!(secret_name, "oauth-gateway/t-apply/authorizer");
    let version = variables.get("AUTHORIZER_SECRETS_VERSION").expect("which version");
    let secret = aws.secretsmanager.get_secret_value().secret_id(secret_name).version_id(version).send().await.unwrap();
    let secret: serde_json::Value = serde_json::from_str(secret.secret_string().unwrap()).unwrap();
    assert_eq!(secret, serde_json::json!({"INTROSPECTION_CLIENT_SECRET": SECRET}));
    let inline = aws.iam.get_role_policy().role_name("t-apply-authorizer-exec").policy_name("read-authorizer-secret");
    let inline = inline.send().await.unwrap();
    let inline = percent_encoding::percent_decode_str(inline.policy_document()).decode_utf8_lossy().into_owned();
    assert!(
        inline.contains("secretsmanager:GetSecretValue") && inline.contains("oauth-gateway/t-apply/authorizer-??????"),
        "{inline}"
    );
    assert_eq!(variables.get("CERT_BINDING").map(String::as_str), Some("required"));
    // Written from the `api` section, not by hand: the routes the API serves, the realm of its 401s.
    assert_eq!(variables.get("REALM").map(String::as_str), Some("pets"));
    let routes = variables.get("ROUTES").expect("ROUTES");
    assert!(routes.contains(r#""path":"/pets/{id}""#) && routes.contains(r#""default":"deny""#), "{routes}");

    let apis = aws.apigateway.get_rest_apis().send().await.unwrap();
    let api = apis.items().iter().find(|a| a.name() == Some("t-apply-api")).expect("the REST API");
    let api_id = api.id().unwrap();
    let authorizers = aws.apigateway.get_authorizers().rest_api_id(api_id).send().await.unwrap();
    let authorizer = &authorizers.items()[0];
    assert_eq!(authorizer.r#type().map(|t| t.as_str()), Some("REQUEST"));
    assert_eq!(authorizer.authorizer_result_ttl_in_seconds(), Some(300));
    assert!(authorizer.identity_source().unwrap().contains("context.identity.clientCert.clientCertPem"));
    // No role: API Gateway may invoke the function for this authorizer, by its resource policy.
    assert_eq!(authorizer.authorizer_credentials().unwrap_or_default(), "");
    let policy = aws.lambda.get_policy().function_name("t-apply-authorizer").send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "apigateway.amazonaws.com");
    assert_eq!(statement["Action"], "lambda:InvokeFunction");
    let source =
        format!("arn:aws:execute-api:eu-west-1:123456789012:{api_id}/authorizers/{}", authorizer.id().unwrap());
    assert_eq!(statement["Condition"]["ArnLike"]["AWS:SourceArn"], source.as_str());
    let resources = aws.apigateway.get_resources().rest_api_id(api_id).send().await.unwrap();
    let pet = resources.items().iter().find(|r| r.path() == Some("/pets/{id}")).expect("/pets/{id}");
    let method = aws
        .apigateway
        .get_method()
        .rest_api_id(api_id)
        .resource_id(pet.id().unwrap())
        .http_method("GET")
        .send()
        .await
        .unwrap();
    assert_eq!(method.authorization_type(), Some("CUSTOM"));
    assert_eq!(method.authorizer_id(), authorizer.id());
    let parameters = method.method_integration().unwrap().request_parameters().unwrap();
    assert_eq!(parameters.get("integration.request.header.X-Sub").map(String::as_str), Some("context.authorizer.sub"));
    assert_eq!(parameters.get("integration.request.path.id").map(String::as_str), Some("method.request.path.id"));
    let denied = aws
        .apigateway
        .get_gateway_response()
        .rest_api_id(api_id)
        .response_type(aws_sdk_apigateway::types::GatewayResponseType::AccessDenied)
        .send()
        .await
        .unwrap();
    assert_eq!(
        denied.response_parameters().unwrap().get("gatewayresponse.header.WWW-Authenticate").map(String::as_str),
        Some("context.authorizer.challenge")
    );
    let stage = aws.apigateway.get_stage().rest_api_id(api_id).stage_name("prod").send().await.unwrap();
    assert_eq!(stage.variables().unwrap().get("tier").map(String::as_str), Some("gold"));

    proxy.reset();
    let second = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stdout.contains("No changes"), "{}", second.stdout);
    assert_eq!(proxy.changes(), Vec::<String>::new(), "a second apply makes no mutating call");
    // Its only writes take and release the stack's lock.
    let take = "PUT /oauth-gateway-123456789012-eu-west-1/locks/t-apply.json";
    let release = "DELETE /oauth-gateway-123456789012-eu-west-1/locks/t-apply.json";
    let writes = proxy.lock_writes();
    assert!(writes.iter().all(|w| [take, release].contains(&w.as_str())), "{writes:?}");
    assert_eq!((writes.first().map(String::as_str), writes.last().map(String::as_str)), (Some(take), Some(release)));
    assert!(!proxy.calls().is_empty(), "it did read AWS");

    let diff = deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await;
    assert_eq!(diff.code, 0, "{}", diff.stdout);

    // A changed secret shows as a change, never as its value.
    let rotated = "rotated-secret-value-1234";
    let diff =
        deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &[("INTROSPECTION_SECRET", rotated)]).await;
    assert_eq!(diff.code, 2, "{}", diff.stdout);
    assert!(diff.stdout.contains("~ authorizer_secret oauth-gateway/t-apply/authorizer"), "{}", diff.stdout);
    assert!(diff.stdout.contains("value: (sensitive) → (sensitive)"), "{}", diff.stdout);
    let json = deployer(&stack, &proxy.url(), &["diff", "--json"], &[("INTROSPECTION_SECRET", rotated)]).await;
    for output in [&diff.stdout, &diff.stderr, &json.stdout, &json.stderr] {
        assert!(!output.contains(rotated) && !output.contains(SECRET), "a secret was printed:\n{output}");
    }
}

#[tokio::test]
async fn drift_shows_in_diff_and_apply_repairs_it() {
    let stack = StackDir::new("t-drift", &stack_yaml("t-drift", ""));
    let proxy = Proxy::start().await;
    clean_slate(&stack, &proxy).await;
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);

    // Behind the deployer's back: the authorizer cache TTL and the function timeout.
    let aws = clients().await;
    let apis = aws.apigateway.get_rest_apis().send().await.unwrap();
    let api_id = apis.items().iter().find(|a| a.name() == Some("t-drift-api")).unwrap().id().unwrap().to_owned();
    let authorizer_id =
        aws.apigateway.get_authorizers().rest_api_id(&api_id).send().await.unwrap().items()[0].id().unwrap().to_owned();
    aws.apigateway
        .update_authorizer()
        .rest_api_id(&api_id)
        .authorizer_id(&authorizer_id)
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/authorizerResultTtlInSeconds")
                .value("3600")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let diff = deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await;
    assert_eq!(diff.code, 2, "changes pending: {}\n{}", diff.stdout, diff.stderr);
    assert!(diff.stdout.contains("~ api_authorizer t-drift-oauth"), "{}", diff.stdout);
    assert!(diff.stdout.contains("authorizer_result_ttl_in_seconds: 3600 → 300"), "{}", diff.stdout);
    let pending: Vec<&str> = diff.stdout.lines().filter(|l| l.trim_start().starts_with(['+', '~', '-'])).collect();
    // The authorizer, and the stage that must be redeployed for the repair to reach clients.
    assert_eq!(pending.len(), 2, "exactly the drifted resource and its redeployment: {pending:?}");

    let json = deployer(&stack, &proxy.url(), &["diff", "--json"], &env()).await;
    let changed = planned(&json.stdout);
    assert_eq!(changed[0].kind, "api_authorizer");
    assert_eq!(changed[0].fields[0].1, "3600");
    assert_eq!(changed[1].kind, "stage");
    assert_eq!(changed[1].fields[0].0, "deployment");

    proxy.reset();
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let mutating = proxy.mutating();
    assert!(mutating.iter().any(|m| m.contains("/authorizers/")), "{mutating:?}");
    assert!(mutating.iter().any(|m| m.ends_with("/deployments")), "the repair is deployed: {mutating:?}");
    let ttl = aws.apigateway.get_authorizer().rest_api_id(&api_id).authorizer_id(&authorizer_id).send().await.unwrap();
    assert_eq!(ttl.authorizer_result_ttl_in_seconds(), Some(300));
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);

    // A route removed from stack.yaml is removed from the API it owns.
    let without_post = stack_yaml("t-drift", "")
        .replace("    - method: POST\n      path: /pets\n      scopes: [pets:write]\n      backend: https://backend.example.com/pets\n", "");
    assert_ne!(without_post, stack_yaml("t-drift", ""));
    stack.write("stack.yaml", &without_post);
    let diff = deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await;
    assert_eq!(diff.code, 2, "{}\n{}", diff.stdout, diff.stderr);
    assert!(diff.stdout.contains("  - api_route POST /pets"), "{}", diff.stdout);
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);
    let resources = aws.apigateway.get_resources().rest_api_id(&api_id).embed("methods").send().await.unwrap();
    let pets = resources.items().iter().find(|r| r.path() == Some("/pets")).unwrap();
    assert!(!pets.resource_methods().is_some_and(|m| m.contains_key("POST")), "POST /pets is gone");
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);
}

#[tokio::test]
async fn teardown_removes_the_stack_and_nothing_else() {
    let stack = StackDir::new("t-teardown", &stack_yaml("t-teardown", ""));
    let proxy = Proxy::start().await;
    clean_slate(&stack, &proxy).await;
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);

    // An untagged look-alike: same API name, not created by the stack.
    let aws = clients().await;
    let look_alike = aws.apigateway.create_rest_api().name("t-teardown-api").send().await.unwrap();
    let look_alike_id = look_alike.id().unwrap().to_owned();

    let teardown = deployer(&stack, &proxy.url(), &["teardown"], &env()).await;
    assert_eq!(teardown.code, 0, "{}\n{}", teardown.stdout, teardown.stderr);
    for role in ["t-teardown-authorizer-exec", "t-teardown-authorizer-invoke"] {
        let error = aws.iam.get_role().role_name(role).send().await.expect_err("the role is gone");
        assert!(error.into_service_error().is_no_such_entity_exception(), "{role}: not found, not another error");
    }
    let error = aws.lambda.get_function().function_name("t-teardown-authorizer").send().await.expect_err("gone");
    assert!(error.into_service_error().is_resource_not_found_exception());
    let apis = aws.apigateway.get_rest_apis().send().await.unwrap();
    let remaining: Vec<&str> =
        apis.items().iter().filter(|a| a.name() == Some("t-teardown-api")).filter_map(|a| a.id()).collect();
    assert_eq!(remaining, [look_alike_id.as_str()], "only the untagged look-alike is left");

    proxy.reset();
    let again = deployer(&stack, &proxy.url(), &["teardown"], &env()).await;
    assert_eq!(again.code, 0);
    assert_eq!(proxy.changes(), Vec::<String>::new(), "a second teardown is a no-op");
    aws.apigateway.delete_rest_api().rest_api_id(&look_alike_id).send().await.unwrap();
}

#[tokio::test]
async fn an_existing_untagged_resource_is_not_taken_over() {
    let aws = clients().await;
    let _ = aws.iam.delete_role().role_name("t-squat-authorizer-exec").send().await;
    aws.iam
        .create_role()
        .role_name("t-squat-authorizer-exec")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .unwrap();
    let stack = StackDir::new("t-squat", &stack_yaml("t-squat", ""));
    let proxy = Proxy::start().await;
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 1);
    assert!(
        apply.stderr.contains("already exists without the tag of stack \"t-squat\"")
            && apply.stderr.contains("refusing to take over:\n  iam_role t-squat-authorizer-exec"),
        "{}",
        apply.stderr
    );
    // Refused at planning: nothing but the lock is written.
    assert_eq!(proxy.changes(), Vec::<String>::new());
    let _ = aws.iam.delete_role().role_name("t-squat-authorizer-exec").send().await;
}

/// Each invalid file: exit 1, a message naming the file and the field, and
/// not one request to AWS.
#[tokio::test]
async fn invalid_stacks_are_refused_before_any_aws_call() {
    let base = stack_yaml("t-invalid", "");
    // Names and values sum to under Lambda's 4 KB, the JSON Lambda measures
    // (every quote of ROUTES escaped) to over it.
    let many_scopes = format!("scopes: [{}]", (0..240).map(|i| format!("s{i:03}")).collect::<Vec<_>>().join(", "));
    let wide = base.replace("scopes: [pets:read]", &many_scopes).replace("scopes: [pets:write]", &many_scopes);
    let cases: Vec<(String, &str)> = vec![
        (wide, "bytes as Lambda measures it (the variables as JSON"),
        (base.replace("memory_mb: 256", "memroy_mb: 256"), "unknown field `memroy_mb`"),
        (
            base.replace("cache_ttl_seconds: 300", "cache_ttl_seconds: 7200"),
            "authorizer.cache_ttl_seconds: 7200 is outside 0..=3600",
        ),
        (base.replace("${env:INTROSPECTION_SECRET}", "${env:NOT_SET_ANYWHERE}"), "NOT_SET_ANYWHERE is not set"),
        (
            base.replace("TOKEN_VALIDATION: introspection", "TOKEN_VALIDATION: saml"),
            "authorizer.environment.TOKEN_VALIDATION: unknown validation mode",
        ),
        (
            base.replace("    - context.identity.clientCert.clientCertPem\n", "    - stageVariables.tenant\n"),
            "stage variable \"tenant\" is not defined",
        ),
        (
            base.replace("    - context.identity.clientCert.clientCertPem\n", ""),
            "API Gateway would replay a cached Allow",
        ),
        (format!("{base}waf:\n  allow: [203.0.113.7/24]\n"), "waf.allow[0]: \"203.0.113.7/24\" has host bits set"),
        (
            base.replace(
                "    - method: POST\n",
                "    - method: GET\n      path: /pets/{petId}/toys\n      scopes: [pets:read]\n      backend: https://backend.example.com/toys\n    - method: POST\n",
            ),
            "api.routes[1].path: {petId} beside {id} (api.routes[0].path) under /pets: API Gateway allows one \
             variable path part per parent",
        ),
        (format!("{base}waf:\n  allow: [2001:db8::/200]\n"), "waf.allow[0]"),
        (
            format!("{}waf:\n  allow: [203.0.113.0/24, 2001:db8::/32]\n", base.replace("dualstack", "ipv4")),
            "waf.allow[1]: 2001:db8::/32 is an IPv6 network, but the API answers on IPv4 only",
        ),
        (
            format!(
                "{base}domain:\n  name: api.example.com\n  certificate: {{ request: true }}\n  truststore: {{ file: truststore.pem, bucket: t-invalid-ts }}\n  execute_api: sometimes\n"
            ),
            "domain.execute_api",
        ),
        (
            format!(
                "{base}domain:\n  name: api.example.com\n  certificate: {{ request: true }}\n  truststore: {{ file: truststore.pem, bucket: t-invalid-ts }}\n  base_path: /v1\n"
            ),
            "domain.base_path: \"/v1\" must not start with '/'",
        ),
        (
            format!(
                "{base}domain:\n  name: api.example.com\n  certificate: {{ request: true }}\n  truststore: {{ file: truststore.pem, bucket: t-invalid-ts }}\n  base_path: v1//pets\n"
            ),
            "domain.base_path: \"v1//pets\" has an empty segment",
        ),
        (
            format!(
                "{base}domain:\n  name: api.example.com\n  certificate: {{ request: true }}\n  truststore: {{ file: truststore.pem, bucket: t-invalid-ts }}\n  base_path: v1/pets\n"
            ),
            "domain.base_path: \"v1/pets\" has more than one segment",
        ),
        (
            format!(
                "{base}domain:\n  name: api.example.com\n  certificate: {{ arn: \"arn:aws:acm:us-east-1:123456789012:certificate/abc\" }}\n  truststore: {{ file: truststore.pem, bucket: t-invalid-ts }}\n"
            ),
            "domain.certificate.arn: the certificate is in us-east-1, the stack in eu-west-1",
        ),
        (
            format!(
                "{base}domain:\n  name: api.example.com\n  certificate: {{ request: true }}\n  ownership_verification_certificate_arn: \"arn:aws:acm:eu-west-1:123456789012:certificate/p\"\n  truststore: {{ file: truststore.pem, bucket: t-invalid-ts }}\n"
            ),
            "domain.ownership_verification_certificate_arn: only for an imported or private certificate",
        ),
    ];
    for (yaml, expected) in cases {
        let stack = StackDir::new("t-invalid", &yaml);
        let proxy = Proxy::dead_end().await;
        // A secret that is not set is refused by what would write it; a
        // plan and a teardown run without it (a pull request's plan gets none).
        let commands: &[&[&str]] = if expected.contains("NOT_SET_ANYWHERE") {
            &[&["apply"], &["diff", "--out", "plan.json"]]
        } else {
            &[&["apply"], &["diff"], &["teardown"]]
        };
        for command in commands.iter().copied() {
            let outcome = deployer(&stack, &proxy.url(), command, &env()).await;
            assert_eq!(outcome.code, 1, "{command:?} must fail for: {expected}");
            assert!(outcome.stderr.contains(expected), "expected {expected:?} in:\n{}", outcome.stderr);
            assert!(outcome.stderr.contains("stack.yaml"), "names the file:\n{}", outcome.stderr);
        }
        assert_eq!(proxy.calls().len(), 0, "no request may reach AWS for: {expected}");
    }
    // A bootstrap Lambda could not start is refused before the first call.
    let stack = StackDir::new("t-invalid", &base);
    let garbage = e2e::deploy::code_zip(b"\x7fELF not really a binary");
    stack.write("code.zip", garbage);
    let proxy = Proxy::dead_end().await;
    let outcome = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(outcome.code, 1);
    assert!(outcome.stderr.contains("code.zip: refusing to upload it"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("not an ELF executable"), "{}", outcome.stderr);
    assert_eq!(proxy.calls().len(), 0);
    // serde_yaml's line number is passed on.
    let stack = StackDir::new("t-invalid", &base.replace("memory_mb: 256", "memroy_mb: 256"));
    let outcome = deployer(&stack, "http://127.0.0.1:9", &["diff"], &env()).await;
    assert!(outcome.stderr.contains("stack.yaml:5:"), "{}", outcome.stderr);
}

#[tokio::test]
async fn an_adopted_api_is_configured_but_never_deleted() {
    let aws = clients().await;
    let api = aws.apigateway.create_rest_api().name("t-adopt-existing").send().await.unwrap();
    let api_id = api.id().unwrap().to_owned();
    let yaml = stack_yaml("t-adopt", "").replace("  name: t-adopt-api\n", &format!("  id: {api_id}\n"));
    let stack = StackDir::new("t-adopt", &yaml);
    let proxy = Proxy::start().await;
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let authorizers = aws.apigateway.get_authorizers().rest_api_id(&api_id).send().await.unwrap();
    assert_eq!(authorizers.items().len(), 1, "the authorizer is added to the adopted API");
    let teardown = deployer(&stack, &proxy.url(), &["teardown"], &env()).await;
    assert_eq!(teardown.code, 0, "{}", teardown.stderr);
    assert!(
        teardown.stderr.contains(&format!("leaving rest_api {api_id}: adopted, not created by this stack")),
        "{}",
        teardown.stderr
    );
    assert!(aws.apigateway.get_rest_api().rest_api_id(&api_id).send().await.is_ok(), "the adopted API is still there");
    assert!(aws.lambda.get_function().function_name("t-adopt-authorizer").send().await.is_err());
    aws.apigateway.delete_rest_api().rest_api_id(&api_id).send().await.unwrap();
}

#[tokio::test]
async fn an_interrupted_apply_is_finished_by_the_next_one() {
    let stack = StackDir::new("t-interrupt", &stack_yaml("t-interrupt", ""));
    let proxy = Proxy::start().await;
    clean_slate(&stack, &proxy).await;
    // A process of the test's own (at AWS's own pace, to be killed half-way),
    // as the pipeline.
    let key = e2e::deploy::pipeline_key(&stack).await;
    let mut child = tokio::process::Command::new(e2e::workspace_binary("debug", "deployer"))
        .args(["apply", "--stack"])
        .arg(stack.path("stack.yaml"))
        .env("AWS_ENDPOINT_URL", proxy.url())
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("INTROSPECTION_SECRET", SECRET)
        // Its lock must run out quickly once it is killed.
        .env("DEPLOYER_LOCK_LEASE_SECONDS", "3")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the REST API exists, half-way through the API's contents.
    for _ in 0..600 {
        if proxy.mutating().iter().any(|m| m == "POST /restapis") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    child.kill().await.unwrap();
    assert!(proxy.changes().iter().any(|m| m == "POST /restapis"), "the first apply got as far as the REST API");

    // It left work undone, and the REST API it made is what the next run builds on.
    let pending = deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await;
    assert_eq!(pending.code, 2, "the killed run left changes pending:\n{}\n{}", pending.stdout, pending.stderr);
    assert!(pending.stdout.contains("+ api_route"), "{}", pending.stdout);

    let finish = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(finish.code, 0, "{}\n{}", finish.stdout, finish.stderr);
    assert!(finish.stderr.contains("the lease of"), "the killed run's lock was taken over:\n{}", finish.stderr);
    assert!(!finish.stdout.contains("+ rest_api"), "the API from the first run is reused:\n{}", finish.stdout);
    let aws = clients().await;
    let apis = aws.apigateway.get_rest_apis().send().await.unwrap();
    assert_eq!(apis.items().iter().filter(|a| a.name() == Some("t-interrupt-api")).count(), 1, "no duplicate API");
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
}

/// The whole life of a stack, in its own region (so its lock bucket is its
/// own): without a domain, then with domain and WAF, then without WAF, then
/// without domain, then torn down next to look-alikes it must not touch.
#[tokio::test]
async fn a_stack_grows_shrinks_and_is_torn_down_leaving_only_look_alikes() {
    const REGION: &str = "ap-southeast-2";
    let name = "t-life";
    let yaml = |extra: &str| stack_yaml(name, extra).replace("region: eu-west-1", &format!("region: {REGION}"));
    let with_domain_only = format!(
        "domain:\n  name: api.{name}.example.com\n  certificate: {{ request: true }}\n  truststore: {{ file: truststore.pem, bucket: {name}-truststore }}\n  base_path: v1\n"
    );
    let stack = StackDir::new(name, &yaml(""));
    let proxy = Proxy::start().await;
    clean_slate(&stack, &proxy).await;
    let aws = e2e::deploy::clients_in(REGION).await;
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);
    let api_id = api_id(&aws, "t-life-api").await;
    let api = aws.apigateway.get_rest_api().rest_api_id(&api_id).send().await.unwrap();
    assert!(!api.disable_execute_api_endpoint(), "without a domain, execute-api is the way in");

    // Adding the domain without saying what becomes of execute-api would
    // cut the stage's clients off in the same apply: blocked, nothing done.
    stack.write("stack.yaml", yaml(&edge_yaml(name)));
    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert!(diff.stdout.contains("Blocked: execute_api t-life-api: stage prod serves clients"), "{}", diff.stdout);
    let refused = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("nothing was changed") && refused.stderr.contains("execute_api: keep"));
    let domains = aws.apigateway.get_domain_names().send().await.unwrap();
    assert!(!domains.items().iter().any(|d| d.domain_name() == Some("api.t-life.example.com")), "nothing made");

    // Saying `off` turns execute-api off once the domain serves the stage
    // (the mapping is made), and deploys that.
    let cut_over = |edge: &str| edge.replace("  base_path: v1\n", "  base_path: v1\n  execute_api: off\n");
    stack.write("stack.yaml", yaml(&cut_over(&edge_yaml(name))));
    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert!(diff.stdout.contains("~ execute_api t-life-api"), "{}", diff.stdout);
    assert!(diff.stdout.contains("execute_api: on → off"), "{}", diff.stdout);
    assert!(diff.stdout.contains("deployed_execute_api: on → off"), "{}", diff.stdout);
    assert!(!diff.stdout.contains("~ stage prod"), "the stage has nothing to deploy before: {}", diff.stdout);
    let deployments_before = aws.apigateway.get_deployments().rest_api_id(&api_id).send().await.unwrap().items().len();
    proxy.reset();
    let grow = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(grow.code, 0, "{}\n{}", grow.stdout, grow.stderr);
    let calls = proxy.calls();
    let flag = calls
        .iter()
        .position(|c| {
            c.request.method == "PATCH"
                && c.request.path == format!("/restapis/{api_id}")
                && c.request.body.contains("/disableExecuteApiEndpoint")
        })
        .expect("the execute-api flag was set");
    let mapping = calls
        .iter()
        .position(|c| c.service_operation == "POST /domainnames/api.t-life.example.com/basepathmappings")
        .expect("the base path was mapped");
    assert!(mapping < flag, "execute-api goes off only once the custom domain serves the stage");
    let deployment = calls
        .iter()
        .position(|c| c.request.method == "POST" && c.request.path == format!("/restapis/{api_id}/deployments"))
        .expect("a deployment was created");
    assert!(flag < deployment, "the deployment comes after the flag it must carry");
    let api = aws.apigateway.get_rest_api().rest_api_id(&api_id).send().await.unwrap();
    assert!(api.disable_execute_api_endpoint());
    let deployments = aws.apigateway.get_deployments().rest_api_id(&api_id).send().await.unwrap();
    assert_eq!(deployments.items().len(), deployments_before + 1);
    let stage = aws.apigateway.get_stage().rest_api_id(&api_id).stage_name("prod").send().await.unwrap();
    let newest = deployments.items().iter().max_by_key(|d| d.created_date()).and_then(|d| d.id());
    assert_eq!(stage.deployment_id(), newest, "the stage serves the new deployment");
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);

    // Without waf: exactly the WAF resources go, association first.
    stack.write("stack.yaml", yaml(&with_domain_only));
    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert_eq!(
        pending(&diff.stdout),
        [
            "- ip_set t-life-allow-ipv4",
            "- ip_set t-life-allow-ipv6",
            "- web_acl t-life-allowlist",
            "- web_acl_association prod",
        ],
        "{}",
        diff.stdout
    );
    let order = apply_in_order(&stack, &proxy).await;
    let at = |operation: &str| position(&order, operation);
    assert!(at("DisassociateWebACL") < at("DeleteWebACL") && at("DeleteWebACL") < at("DeleteIPSet"), "{order:?}");
    let acls = aws.wafv2.list_web_acls().scope(aws_sdk_wafv2::types::Scope::Regional).send().await.unwrap();
    assert!(!acls.web_acls().iter().any(|a| a.name() == Some("t-life-allowlist")));
    let sets = aws.wafv2.list_ip_sets().scope(aws_sdk_wafv2::types::Scope::Regional).send().await.unwrap();
    assert!(!sets.ip_sets().iter().any(|s| s.name().is_some_and(|n| n.starts_with("t-life-"))));
    aws.apigateway.get_domain_name().domain_name("api.t-life.example.com").send().await.expect("the domain stays");

    // Without domain: the mapping, the domain, its certificate and
    // truststore go, in that order, and execute-api is on again.
    stack.write("stack.yaml", yaml(""));
    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert_eq!(
        pending(&diff.stdout),
        [
            "- base_path_mapping api.t-life.example.com/v1",
            "- certificate api.t-life.example.com",
            "- domain_name api.t-life.example.com",
            "- truststore t-life-truststore",
            "~ execute_api t-life-api",
        ],
        "{}",
        diff.stdout
    );
    let order = apply_in_order(&stack, &proxy).await;
    let at = |operation: &str| position(&order, operation);
    let domain = "/domainnames/api.t-life.example.com";
    assert!(at(&format!("PATCH /restapis/{api_id}")) < at(&format!("DELETE {domain}")), "execute-api first: {order:?}");
    assert!(at(&format!("DELETE {domain}/basepathmappings/v1")) < at(&format!("DELETE {domain}")), "{order:?}");
    assert!(at(&format!("DELETE {domain}")) < at("DeleteCertificate"), "{order:?}");
    let error = aws.apigateway.get_domain_name().domain_name("api.t-life.example.com").send().await.expect_err("gone");
    assert!(error.into_service_error().is_not_found_exception());
    let error = aws.s3.head_bucket().bucket("t-life-truststore").send().await.expect_err("gone");
    assert!(error.into_service_error().is_not_found());
    let api = aws.apigateway.get_rest_api().rest_api_id(&api_id).send().await.unwrap();
    assert!(!api.disable_execute_api_endpoint(), "execute-api is the way in again");
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);

    // Teardown of the full stack, next to look-alikes: an untagged API of
    // the same name and a certificate for the same domain name.
    stack.write("stack.yaml", yaml(&cut_over(&edge_yaml(name))));
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);
    let look_alike_api = aws.apigateway.create_rest_api().name("t-life-api").send().await.unwrap();
    let look_alike_api = look_alike_api.id().unwrap().to_owned();
    let look_alike_cert = aws.acm.request_certificate().domain_name("api.t-life.example.com").send().await.unwrap();
    let look_alike_cert = look_alike_cert.certificate_arn().unwrap().to_owned();
    let teardown = deployer(&stack, &proxy.url(), &["teardown"], &env()).await;
    assert_eq!(teardown.code, 0, "{}\n{}", teardown.stdout, teardown.stderr);

    let apis = aws.apigateway.get_rest_apis().send().await.unwrap();
    let apis: Vec<&str> =
        apis.items().iter().filter(|a| a.name() == Some("t-life-api")).filter_map(|a| a.id()).collect();
    assert_eq!(apis, [look_alike_api.as_str()]);
    let certificates = aws.acm.list_certificates().send().await.unwrap();
    let certificates: Vec<&str> = certificates
        .certificate_summary_list()
        .iter()
        .filter(|c| c.domain_name() == Some("api.t-life.example.com"))
        .filter_map(|c| c.certificate_arn())
        .collect();
    assert_eq!(certificates, [look_alike_cert.as_str()]);
    assert!(
        aws.apigateway
            .get_domain_names()
            .send()
            .await
            .unwrap()
            .items()
            .iter()
            .all(|d| d.domain_name() != Some("api.t-life.example.com"))
    );
    let functions = aws.lambda.list_functions().send().await.unwrap();
    assert!(!functions.functions().iter().any(|f| f.function_name().is_some_and(|n| n.starts_with("t-life-"))));
    for role in ["t-life-authorizer-exec", "t-life-authorizer-invoke"] {
        let error = aws.iam.get_role().role_name(role).send().await.expect_err("the role is gone");
        assert!(error.into_service_error().is_no_such_entity_exception());
    }
    let acls = aws.wafv2.list_web_acls().scope(aws_sdk_wafv2::types::Scope::Regional).send().await.unwrap();
    assert!(!acls.web_acls().iter().any(|a| a.name().is_some_and(|n| n.starts_with("t-life-"))));
    let sets = aws.wafv2.list_ip_sets().scope(aws_sdk_wafv2::types::Scope::Regional).send().await.unwrap();
    assert!(!sets.ip_sets().iter().any(|s| s.name().is_some_and(|n| n.starts_with("t-life-"))));
    let error = aws.s3.head_bucket().bucket("t-life-truststore").send().await.expect_err("gone");
    assert!(error.into_service_error().is_not_found(), "the truststore bucket is gone");
    // The lock bucket stays, empty, after the last stack of the account and
    // region: deleted, its name would be free for another account to take.
    let lock_bucket = format!("oauth-gateway-123456789012-{REGION}");
    assert!(aws.s3.head_bucket().bucket(&lock_bucket).send().await.is_ok(), "the lock bucket is kept");
    let left = aws.s3.list_objects_v2().bucket(&lock_bucket).send().await.expect("listing");
    assert_eq!(left.key_count().unwrap_or_default(), 0, "no lock is left behind");
    aws.apigateway.delete_rest_api().rest_api_id(&look_alike_api).send().await.unwrap();
    aws.acm.delete_certificate().certificate_arn(&look_alike_cert).send().await.unwrap();
}

/// Someone opens a route behind the deployer's back: its method put again
/// without the authorizer (authorization NONE, no integration). API Gateway
/// changes a method's authorization only by deleting and putting it, and
/// the plan says so: `-/+ api_route`; apply puts it back as the stack says.
#[tokio::test]
async fn a_method_opened_behind_the_deployers_back_is_replaced_as_the_stack_says() {
    let name = "t-opened";
    let stack = StackDir::new(name, &stack_yaml(name, ""));
    let proxy = Proxy::start().await;
    clean_slate(&stack, &proxy).await;
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);
    let aws = clients().await;
    let api = api_id(&aws, &format!("{name}-api")).await;
    let method = || async {
        let resources = aws.apigateway.get_resources().rest_api_id(&api).embed("methods").send().await.unwrap();
        let pet = resources.items().iter().find(|r| r.path() == Some("/pets/{id}")).expect("/pets/{id}").clone();
        let id = pet.id().unwrap_or_default().to_owned();
        let read = aws.apigateway.get_method().rest_api_id(&api).resource_id(&id).http_method("GET").send().await;
        (id, read.ok())
    };
    let (resource, _) = method().await;
    let open = aws.apigateway.delete_method().rest_api_id(&api).resource_id(&resource).http_method("GET");
    open.send().await.unwrap();
    let put = aws.apigateway.put_method().rest_api_id(&api).resource_id(&resource).http_method("GET");
    put.authorization_type("NONE").send().await.unwrap();

    let diff = deployer(&stack, &proxy.url(), &["diff", "--json"], &env()).await;
    let steps = planned(&diff.stdout);
    let route = step(&steps, "api_route GET /pets/{id}").unwrap_or_else(|| panic!("{steps:?}"));
    assert_eq!(route.action, "replace", "{route:?}");
    let authorization = ("authorization_type".to_owned(), "\"NONE\"".to_owned(), "\"CUSTOM\"".to_owned());
    assert!(route.fields.contains(&authorization), "{route:?}");
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let (_, repaired) = method().await;
    let repaired = repaired.expect("the method is back");
    assert_eq!(repaired.authorization_type(), Some("CUSTOM"));
    assert!(repaired.authorizer_id().is_some_and(|id| !id.is_empty()), "{repaired:?}");
    assert_eq!(repaired.method_integration().and_then(|i| i.uri()), Some("https://backend.example.com/pets/{id}"));
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
}
