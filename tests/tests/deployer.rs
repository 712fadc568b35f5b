//! The deployer binary against moto, as a pipeline runs it. Requests go
//! through a recording proxy, so tests can count what was sent.

use e2e::deploy::{SECRET, StackDir, clients, deployer, stack_yaml};
use e2e::moto::Proxy;

fn env() -> [(&'static str, &'static str); 1] {
    [("INTROSPECTION_SECRET", SECRET)]
}

/// Removes what an earlier run against the same moto server left behind, so a
/// test starts from an empty account whether moto is fresh or not.
async fn clean_slate(stack: &StackDir, proxy: &Proxy) {
    let outcome = deployer(stack, &proxy.url(), &["teardown"], &env()).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    proxy.reset();
}

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
    let config = aws.lambda.get_function_configuration().function_name("t-apply-authorizer").send().await.unwrap();
    assert_eq!(config.runtime().map(|r| r.as_str()), Some("provided.al2023"));
    assert_eq!(config.handler(), Some("bootstrap"));
    assert_eq!((config.timeout(), config.memory_size()), (Some(5), Some(256)));
    let variables = config.environment().unwrap().variables().unwrap();
    assert_eq!(variables.get("INTROSPECTION_CLIENT_SECRET").map(String::as_str), Some(SECRET));
    assert_eq!(variables.get("CERT_BINDING").map(String::as_str), Some("required"));

    let apis = aws.apigateway.get_rest_apis().send().await.unwrap();
    let api = apis.items().iter().find(|a| a.name() == Some("t-apply-api")).expect("the REST API");
    let api_id = api.id().unwrap();
    let authorizers = aws.apigateway.get_authorizers().rest_api_id(api_id).send().await.unwrap();
    let authorizer = &authorizers.items()[0];
    assert_eq!(authorizer.r#type().map(|t| t.as_str()), Some("REQUEST"));
    assert_eq!(authorizer.authorizer_result_ttl_in_seconds(), Some(300));
    assert!(authorizer.identity_source().unwrap().contains("context.identity.clientCert.clientCertPem"));
    assert!(authorizer.authorizer_credentials().unwrap().ends_with(":role/t-apply-authorizer-invoke"));
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
    assert_eq!(proxy.mutating(), Vec::<String>::new(), "a second apply makes no mutating call");
    assert!(!proxy.calls().is_empty(), "it did read AWS");

    let diff = deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await;
    assert_eq!(diff.code, 0, "{}", diff.stdout);

    // A changed secret shows as a change, never as its value.
    let rotated = "rotated-secret-value-1234";
    let diff =
        deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &[("INTROSPECTION_SECRET", rotated)]).await;
    assert_eq!(diff.code, 2, "{}", diff.stdout);
    assert!(
        diff.stdout.contains("environment.INTROSPECTION_CLIENT_SECRET: (sensitive) → (sensitive)"),
        "{}",
        diff.stdout
    );
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
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON plan");
    let changed: Vec<&serde_json::Value> =
        plan["changes"].as_array().unwrap().iter().filter(|c| c["action"] != "no_op").collect();
    assert_eq!(changed[0]["kind"], "api_authorizer");
    assert_eq!(changed[0]["fields"][0]["old"], "3600");

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
        .replace("    - method: POST\n      path: /pets\n      backend: https://backend.example.com/pets\n", "");
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
    assert!(aws.iam.get_role().role_name("t-teardown-authorizer-exec").send().await.is_err());
    assert!(aws.iam.get_role().role_name("t-teardown-authorizer-invoke").send().await.is_err());
    assert!(aws.lambda.get_function().function_name("t-teardown-authorizer").send().await.is_err());
    let apis = aws.apigateway.get_rest_apis().send().await.unwrap();
    let remaining: Vec<&str> =
        apis.items().iter().filter(|a| a.name() == Some("t-teardown-api")).filter_map(|a| a.id()).collect();
    assert_eq!(remaining, [look_alike_id.as_str()], "only the untagged look-alike is left");

    proxy.reset();
    let again = deployer(&stack, &proxy.url(), &["teardown"], &env()).await;
    assert_eq!(again.code, 0);
    assert_eq!(proxy.mutating(), Vec::<String>::new(), "a second teardown is a no-op");
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
    assert!(apply.stderr.contains("does not carry the tag of stack \"t-squat\""), "{}", apply.stderr);
    assert!(!proxy.mutating().iter().any(|m| m.contains("Role") && !m.starts_with("Create")), "{:?}", proxy.mutating());
    let _ = aws.iam.delete_role().role_name("t-squat-authorizer-exec").send().await;
}

/// Each invalid file: exit 1, a message naming the file and the field, and
/// not one request to AWS.
#[tokio::test]
async fn invalid_stacks_are_refused_before_any_aws_call() {
    let base = stack_yaml("t-invalid", "");
    let cases: Vec<(String, &str)> = vec![
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
        (format!("{base}waf:\n  allow: [2001:db8::/200]\n"), "waf.allow[0]"),
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
    ];
    for (yaml, expected) in cases {
        let stack = StackDir::new("t-invalid", &yaml);
        let proxy = Proxy::dead_end().await;
        for command in [&["apply"][..], &["diff"], &["teardown"]] {
            let outcome = deployer(&stack, &proxy.url(), command, &env()).await;
            assert_eq!(outcome.code, 1, "{command:?} must fail for: {expected}");
            assert!(outcome.stderr.contains(expected), "expected {expected:?} in:\n{}", outcome.stderr);
            assert!(outcome.stderr.contains("stack.yaml"), "names the file:\n{}", outcome.stderr);
        }
        assert_eq!(proxy.calls().len(), 0, "no request may reach AWS for: {expected}");
    }
    // serde_yaml's line number is passed on.
    let stack = StackDir::new("t-invalid", &base.replace("memory_mb: 256", "memroy_mb: 256"));
    let outcome = deployer(&stack, "http://127.0.0.1:9", &["diff"], &env()).await;
    assert!(outcome.stderr.contains("stack.yaml:5:"), "{}", outcome.stderr);
}

/// The domain, truststore and WAF parts of the stack.
fn edge_yaml(name: &str) -> String {
    format!(
        "domain:\n  name: api.{name}.example.com\n  certificate: {{ request: true }}\n  truststore: {{ file: truststore.pem, bucket: {name}-truststore }}\n  base_path: v1\nwaf:\n  allow: [203.0.113.0/24, \"2001:db8::/32\"]\n"
    )
}

fn body_of<'a>(proxy_calls: &'a [e2e::moto::Call], operation: &str) -> Vec<&'a str> {
    proxy_calls.iter().filter(|c| c.service_operation == operation).map(|c| c.request.body.as_str()).collect()
}

#[tokio::test]
async fn mtls_domain_truststore_and_waf() {
    let name = "t-edge";
    let stack = StackDir::new(name, &stack_yaml(name, &edge_yaml(name)));
    let proxy = Proxy::start().await;
    clean_slate(&stack, &proxy).await;
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let calls = proxy.calls();
    let aws = clients().await;

    // moto 5.2.5 drops mutualTlsAuthentication from CreateDomainName, so what
    // the deployer sent is checked instead of what moto hands back.
    let create_domain = body_of(&calls, "POST /domainnames");
    assert_eq!(create_domain.len(), 1);
    let sent: serde_json::Value = serde_json::from_str(create_domain[0]).unwrap();
    assert_eq!(sent["mutualTlsAuthentication"]["truststoreUri"], format!("s3://{name}-truststore/truststore.pem"));
    let version = aws.s3.head_object().bucket(format!("{name}-truststore")).key("truststore.pem").send().await.unwrap();
    assert_eq!(sent["mutualTlsAuthentication"]["truststoreVersion"], version.version_id().unwrap());
    assert_eq!(sent["securityPolicy"], "TLS_1_2");
    assert_eq!(sent["endpointConfiguration"]["types"][0], "REGIONAL");
    // The bucket is versioned and private (moto's versioning answer is
    // unreadable by the Rust SDK, so this checks the requests too).
    assert!(calls.iter().any(|c| c.service_operation.starts_with("PUT")
        && c.request.path.contains("versioning")
        && c.request.body.contains("Enabled")));
    let block = aws.s3.get_public_access_block().bucket(format!("{name}-truststore")).send().await.unwrap();
    assert_eq!(block.public_access_block_configuration().unwrap().restrict_public_buckets(), Some(true));

    let apis = aws.apigateway.get_rest_apis().send().await.unwrap();
    let api = apis.items().iter().find(|a| a.name() == Some("t-edge-api")).unwrap();
    assert!(api.disable_execute_api_endpoint(), "mTLS is on: the default endpoint must be off");
    let mapping = aws
        .apigateway
        .get_base_path_mapping()
        .domain_name("api.t-edge.example.com")
        .base_path("v1")
        .send()
        .await
        .unwrap();
    assert_eq!((mapping.rest_api_id(), mapping.stage()), (api.id(), Some("prod")));
    let stage_arn = format!("arn:aws:apigateway:eu-west-1::/restapis/{}/stages/prod", api.id().unwrap());
    let acl = aws.wafv2.get_web_acl_for_resource().resource_arn(&stage_arn).send().await.unwrap();
    let acl = acl.web_acl().expect("a web ACL on the stage");
    assert!(acl.default_action().unwrap().block().is_some());
    assert_eq!(acl.rules().len(), 2);

    // No-op apply: not one mutating call, for every kind.
    proxy.reset();
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);
    assert_eq!(proxy.mutating(), Vec::<String>::new());

    // Drift: someone edits the IPv4 set.
    let sets = aws.wafv2.list_ip_sets().scope(aws_sdk_wafv2::types::Scope::Regional).send().await.unwrap();
    let v4 = sets.ip_sets().iter().find(|s| s.name() == Some("t-edge-allow-ipv4")).unwrap();
    aws.wafv2
        .update_ip_set()
        .name("t-edge-allow-ipv4")
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .id(v4.id().unwrap())
        .addresses("0.0.0.0/1")
        .lock_token(v4.lock_token().unwrap())
        .send()
        .await
        .unwrap();
    let diff = deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await;
    assert_eq!(diff.code, 2);
    let pending: Vec<&str> = diff.stdout.lines().filter(|l| l.trim_start().starts_with(['+', '~', '-'])).collect();
    assert_eq!(pending, ["  ~ waf_ip_set t-edge-allow-ipv4"], "{}", diff.stdout);
    assert!(diff.stdout.contains(r#"addresses: ["0.0.0.0/1"] → ["203.0.113.0/24"]"#), "{}", diff.stdout);
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);

    // A new truststore: uploaded as a new object version, and the domain is
    // updated to that version. moto 5.2.5 answers UpdateDomainName with 500
    // (not implemented), so the apply fails there; the request the deployer
    // sent is what is checked.
    let new_ca = e2e::certs::Ca::new("Rotated Clients CA");
    stack.write("truststore.pem", &new_ca.pem);
    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert!(diff.stdout.contains("~ truststore s3://t-edge-truststore/truststore.pem"), "{}", diff.stdout);
    assert!(diff.stdout.contains("~ domain_name api.t-edge.example.com"), "{}", diff.stdout);
    assert!(diff.stdout.contains("(new version after apply)"), "{}", diff.stdout);
    proxy.reset();
    let rotate = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    let new_version = aws.s3.head_object().bucket("t-edge-truststore").key("truststore.pem").send().await.unwrap();
    let new_version = new_version.version_id().unwrap().to_owned();
    assert_ne!(Some(new_version.as_str()), version.version_id());
    let rotation_calls = proxy.calls();
    let patches = body_of(&rotation_calls, "PATCH /domainnames/api.t-edge.example.com");
    // The SDK retries a 500 (its standard policy), so there may be several
    // attempts; each must carry exactly this patch.
    assert!(!patches.is_empty(), "an UpdateDomainName was sent: {:?}", proxy.mutating());
    for body in patches {
        let patch: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            patch["patchOperations"],
            serde_json::json!([{"op": "replace", "path": "/mutualTlsAuthentication/truststoreVersion", "value": new_version}])
        );
    }
    assert_eq!(rotate.code, 1, "moto cannot update domains: {}", rotate.stderr);
    assert!(rotate.stderr.contains("updating domain_name (api.t-edge.example.com)"), "{}", rotate.stderr);

    let teardown = deployer(&stack, &proxy.url(), &["teardown"], &env()).await;
    assert_eq!(teardown.code, 0, "{}", teardown.stderr);
    assert!(
        aws.wafv2
            .get_web_acl_for_resource()
            .resource_arn(&stage_arn)
            .send()
            .await
            .map(|o| o.web_acl().is_none())
            .unwrap_or(true)
    );
    let sets = aws.wafv2.list_ip_sets().scope(aws_sdk_wafv2::types::Scope::Regional).send().await.unwrap();
    assert!(!sets.ip_sets().iter().any(|s| s.name().is_some_and(|n| n.starts_with("t-edge-"))));
    assert!(aws.apigateway.get_domain_name().domain_name("api.t-edge.example.com").send().await.is_err());
    assert!(aws.s3.head_bucket().bucket("t-edge-truststore").send().await.is_err());
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
    assert!(teardown.stderr.contains("leaving the adopted REST API"), "{}", teardown.stderr);
    assert!(aws.apigateway.get_rest_api().rest_api_id(&api_id).send().await.is_ok(), "the adopted API is still there");
    assert!(aws.lambda.get_function().function_name("t-adopt-authorizer").send().await.is_err());
    aws.apigateway.delete_rest_api().rest_api_id(&api_id).send().await.unwrap();
}

#[tokio::test]
async fn an_interrupted_apply_is_finished_by_the_next_one() {
    let stack = StackDir::new("t-interrupt", &stack_yaml("t-interrupt", ""));
    let proxy = Proxy::start().await;
    clean_slate(&stack, &proxy).await;
    let mut child = tokio::process::Command::new(e2e::workspace_binary("debug", "deployer"))
        .args(["apply", "--stack"])
        .arg(stack.path("stack.yaml"))
        .env("AWS_ENDPOINT_URL", proxy.url())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "eu-west-1")
        .env("INTROSPECTION_SECRET", SECRET)
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
    assert!(proxy.mutating().iter().any(|m| m == "POST /restapis"), "the first apply got as far as the REST API");

    let finish = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(finish.code, 0, "{}\n{}", finish.stdout, finish.stderr);
    assert!(!finish.stdout.contains("+ rest_api"), "the API from the first run is reused:\n{}", finish.stdout);
    let aws = clients().await;
    let apis = aws.apigateway.get_rest_apis().send().await.unwrap();
    assert_eq!(apis.items().iter().filter(|a| a.name() == Some("t-interrupt-api")).count(), 1, "no duplicate API");
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
}
