//! The deployer against a stand-in that behaves like AWS where moto does not
//! (`e2e::aws_like`): throttling, eventual consistency, conflicts while a
//! change is in progress. Each behaviour alone, then all at once; times are
//! AWS's scaled by `e2e::deploy::TIME_SCALE`, for the proxy and the deployer
//! alike.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use e2e::aws_like::{Behaviours, LostAnswers};
use e2e::deploy::{
    SECRET, StackDir, TIME_SCALE, clean_apply_shape, clients, deployer, edge_yaml, env, shape, stack_yaml,
};
use e2e::moto::Proxy;
use e2e::server::Reply;

/// The full stack (domain, truststore, WAF) of `name`, torn down first.
async fn full_stack(name: &str, proxy: &Proxy) -> StackDir {
    e2e::deploy::fresh_stack(name, &stack_yaml(name, &edge_yaml(name)), proxy).await
}

/// apply from empty, a no-op apply, teardown: each succeeds, the account is
/// what a clean apply gives, then nothing of the stack is left.
async fn converges(name: &str, stack: &StackDir, proxy: &Proxy) {
    let apply = deployer(stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "{name}: apply\n{}\n{}", apply.stdout, apply.stderr);
    let aws = clients().await;
    assert_eq!(shape(&aws, name).await, clean_apply_shape().await, "{name}: what apply left");
    proxy.reset();
    let again = deployer(stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(again.code, 0, "{name}: no-op apply\n{}", again.stderr);
    assert!(again.stdout.contains("No changes"), "{name}: {}", again.stdout);
    assert_eq!(proxy.changes(), Vec::<String>::new(), "{name}: the no-op apply wrote");
    let teardown = deployer(stack, &proxy.url(), &["teardown"], &env()).await;
    assert_eq!(teardown.code, 0, "{name}: teardown\n{}", teardown.stderr);
    assert_eq!(shape(&aws, name).await, Vec::<String>::new(), "{name}: what teardown left");
}

/// One behaviour at a time: each must be met (its count is not zero) and
/// survived.
#[tokio::test]
async fn each_aws_behaviour_alone_is_survived() {
    let none = Behaviours::none(TIME_SCALE);
    let cases: [(&str, Behaviours, &str); 5] = [
        ("t-aws-acm", Behaviours { acm_in_use: true, ..none.clone() }, "acm_in_use"),
        ("t-aws-waf", Behaviours { waf_eventual: true, ..none.clone() }, "waf_eventual"),
        ("t-aws-token", Behaviours { waf_stale_tokens: true, ..none.clone() }, "waf_stale_token"),
        ("t-aws-iam", Behaviours { iam_propagation: true, ..none.clone() }, "iam_propagation"),
        ("t-aws-lambda", Behaviours { lambda_in_progress: true, ..none.clone() }, "lambda_in_progress"),
    ];
    // One after another: the quotas are per account, and each run is seconds.
    for (name, behaviours, counted) in cases {
        let proxy = Proxy::aws_like(behaviours).await;
        let stack = full_stack(name, &proxy).await;
        converges(name, &stack, &proxy).await;
        let counts = proxy.behaviour_counts();
        assert!(counts.get(counted).is_some_and(|n| *n > 0), "{name}: {counted} never happened: {counts:?}");
        println!("{name}: {counts:?}");
    }
}

/// A slower clock for runs that must meet API Gateway's domain quota: one
/// change per 30 s becomes 1.5 s, long enough for the next run to hit it.
const SLOW: f64 = 0.05;

fn slow_env() -> [(&'static str, &'static str); 2] {
    [("INTROSPECTION_SECRET", SECRET), ("DEPLOYER_TIME_SCALE", "0.05")]
}

/// Another pipeline of the same account changes a custom domain, as the
/// next run of ours is about to: API Gateway allows one such change every
/// 30 seconds per account.
async fn another_pipeline_changes_a_domain(proxy: &Proxy, domain: &str) {
    let through_proxy = e2e::deploy::clients_at(&proxy.url()).await;
    let patch = aws_sdk_apigateway::types::PatchOperation::builder()
        .op(aws_sdk_apigateway::types::Op::Replace)
        .path("/securityPolicy")
        .value("TLS_1_2")
        .build();
    // It waits its turn too (the quota is shared), a bounded number of times.
    for attempt in 0.. {
        let update = through_proxy.apigateway.update_domain_name().domain_name(domain).patch_operations(patch.clone());
        match update.send().await {
            Ok(_) => return,
            Err(e) if attempt < 20 => {
                assert!(format!("{e:?}").contains("TooManyRequestsException"), "{e:?}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("another pipeline never got its turn: {e:?}"),
        }
    }
}

#[tokio::test]
async fn api_gateway_throttling_is_waited_out() {
    let name = "t-aws-throttle";
    let proxy = Proxy::aws_like(Behaviours { throttling: true, ..Behaviours::none(SLOW) }).await;
    let stack = StackDir::new(name, &stack_yaml(name, &edge_yaml(name)));
    for command in [&["teardown"][..], &["apply"]] {
        let outcome = deployer(&stack, &proxy.url(), command, &slow_env()).await;
        assert_eq!(outcome.code, 0, "{command:?}: {}", outcome.stderr);
    }
    another_pipeline_changes_a_domain(&proxy, &format!("api.{name}.example.com")).await;
    let teardown = deployer(&stack, &proxy.url(), &["teardown"], &slow_env()).await;
    assert_eq!(teardown.code, 0, "{}", teardown.stderr);
    let counts = proxy.behaviour_counts();
    assert!(counts.get("throttling").is_some_and(|n| *n > 0), "DeleteDomainName was not throttled: {counts:?}");
    assert_eq!(shape(&clients().await, name).await, Vec::<String>::new());
}

/// Everything at once, with a truststore rotation and a Lambda change in
/// between; the wall time beside the same runs without any behaviour.
#[tokio::test]
async fn every_aws_behaviour_at_once_is_survived() {
    let aws = clients().await;
    let mut walls = Vec::new();
    for (name, behaviours) in [("t-aws-plain", Behaviours::none(SLOW)), ("t-aws-all", Behaviours::all(SLOW))] {
        let proxy = Proxy::aws_like(behaviours).await;
        let stack = StackDir::new(name, &stack_yaml(name, &edge_yaml(name)));
        assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &slow_env()).await.code, 0);
        let started = Instant::now();
        let apply = deployer(&stack, &proxy.url(), &["apply"], &slow_env()).await;
        assert_eq!(apply.code, 0, "{name}: {}\n{}", apply.stdout, apply.stderr);
        assert_eq!(shape(&aws, name).await, clean_apply_shape().await, "{name}");

        // A new truststore reaches the domain: through the proxy, which
        // models the domain as AWS does, the domain names the new version. And the function changes twice in one run (configuration,
        // then code): the second change must wait for the first.
        stack.write("truststore.pem", e2e::certs::Ca::new("Rotated Clients CA").pem);
        let yaml = stack_yaml(name, &edge_yaml(name)).replace("memory_mb: 256", "memory_mb: 512");
        stack.write("stack.yaml", &yaml);
        stack.write("code.zip", e2e::deploy::code_zip(&[e2e::deploy::tiny_bootstrap(), vec![0; 16]].concat()));
        let rotate = deployer(&stack, &proxy.url(), &["apply"], &slow_env()).await;
        assert_eq!(rotate.code, 0, "{name}: {}\n{}", rotate.stdout, rotate.stderr);
        let through_proxy = e2e::deploy::clients_at(&proxy.url()).await;
        let domain = format!("api.{name}.example.com");
        let read = through_proxy.apigateway.get_domain_name().domain_name(&domain).send().await.unwrap();
        let version =
            aws.s3.head_object().bucket(format!("{name}-truststore")).key("truststore.pem").send().await.unwrap();
        assert_eq!(
            read.mutual_tls_authentication().and_then(|m| m.truststore_version()),
            version.version_id(),
            "{name}: the domain uses the new truststore"
        );
        let function = aws.lambda.get_function_configuration().function_name(format!("{name}-authorizer")).send();
        assert_eq!(function.await.unwrap().memory_size(), Some(512));

        proxy.reset();
        let again = deployer(&stack, &proxy.url(), &["apply"], &slow_env()).await;
        assert_eq!(again.code, 0, "{name}: {}", again.stderr);
        assert_eq!(proxy.changes(), Vec::<String>::new(), "{name}: a no-op apply writes nothing");
        another_pipeline_changes_a_domain(&proxy, &domain).await;
        let teardown = deployer(&stack, &proxy.url(), &["teardown"], &slow_env()).await;
        assert_eq!(teardown.code, 0, "{name}: {}\n{}", teardown.stdout, teardown.stderr);
        assert_eq!(shape(&aws, name).await, Vec::<String>::new(), "{name}");
        walls.push(started.elapsed());

        let counts = proxy.behaviour_counts();
        // Throttling is not among them: whether the teardown's domain delete
        // comes within the quota's window of the other pipeline's change
        // depends on the machine's load (a loaded run took longer, and met
        // none); `api_gateway_throttling_is_waited_out` requires it, with
        // nothing else slowing the run down.
        if name == "t-aws-all" {
            for behaviour in [
                "acm_in_use",
                "waf_eventual",
                "waf_stale_token",
                "iam_propagation",
                "lambda_in_progress",
                "domain_update_filled_in",
            ] {
                assert!(counts.get(behaviour).is_some_and(|n| *n > 0), "{behaviour} never happened: {counts:?}");
            }
        }
        println!("{name}: behaviours met: {counts:?}");
    }
    println!(
        "wall time (apply, rotation, no-op apply, teardown; AWS time x{SLOW}): {:.1} s with every behaviour, {:.1} s without",
        walls[1].as_secs_f64(),
        walls[0].as_secs_f64()
    );
}

/// The changes that hurt on a real account, with every behaviour on at once
/// and 3% of answers lost: apply from empty, a route removed and a path
/// parameter renamed in one apply (the stage then serves exactly the
/// routes declared), the certificate expired and replaced, a no-op apply,
/// teardown.
#[tokio::test]
async fn the_changes_that_hurt_pass_with_every_behaviour_on_at_once() {
    let name = "t-aws-hurt";
    let domain = format!("api.{name}.example.com");
    let expired: Arc<Mutex<Option<String>>> = Arc::default();
    let known = expired.clone();
    let behaviours = Behaviours { lost_answers: Some(LostAnswers::rate(0.03, 11)), ..Behaviours::all(TIME_SCALE) };
    let proxy = Proxy::aws_like_rewriting(behaviours, move |request, reply| {
        let Some(arn) = known.lock().unwrap().clone() else { return };
        let describes = request.header("x-amz-target") == Some("CertificateManager.DescribeCertificate");
        if let (true, Ok(mut answer)) = (describes, serde_json::from_str::<serde_json::Value>(&reply.body))
            && request.body.contains(&arn)
        {
            answer["Certificate"]["Status"] = serde_json::json!("EXPIRED");
            reply.body = answer.to_string();
        }
    })
    .await;
    let stack = full_stack(name, &proxy).await;
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "apply: {}\n{}", apply.stdout, apply.stderr);
    let aws = clients().await;
    assert_eq!(shape(&aws, name).await, clean_apply_shape().await);

    let changed = stack_yaml(name, &edge_yaml(name))
        .replace("    - method: POST\n      path: /pets\n      scopes: [pets:write]\n      backend: https://backend.example.com/pets\n", "")
        .replace("{id}", "{petId}");
    stack.write("stack.yaml", &changed);
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "routes: {}\n{}", apply.stdout, apply.stderr);
    let apis = aws.apigateway.get_rest_apis().limit(500).send().await.unwrap();
    let api = apis.items().iter().find(|a| a.name() == Some(&format!("{name}-api"))).and_then(|a| a.id()).unwrap();
    let served = proxy.served_routes(api, "prod").expect("a deployment");
    assert_eq!(served.into_iter().collect::<Vec<_>>(), ["GET /pets/{petId}"]);

    let through_proxy = e2e::deploy::clients_at(&proxy.url()).await;
    let certificate = |through_proxy: &e2e::deploy::Clients| {
        let read = through_proxy.apigateway.get_domain_name().domain_name(&domain).send();
        async { read.await.unwrap().regional_certificate_arn().unwrap().to_owned() }
    };
    let old = certificate(&through_proxy).await;
    *expired.lock().unwrap() = Some(old.clone());
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "certificate: {}\n{}", apply.stdout, apply.stderr);
    assert_ne!(certificate(&through_proxy).await, old);
    assert!(aws.acm.describe_certificate().certificate_arn(&old).send().await.is_err(), "the old one is gone");

    let again = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(again.code, 0, "no-op: {}", again.stderr);
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
    let teardown = deployer(&stack, &proxy.url(), &["teardown"], &env()).await;
    assert_eq!(teardown.code, 0, "teardown: {}\n{}", teardown.stdout, teardown.stderr);
    assert_eq!(shape(&aws, name).await, Vec::<String>::new());
    let counts = proxy.behaviour_counts();
    for behaviour in ["lost_answer", "concurrent_modification", "acm_in_use", "s3_versioning_lag", "domain_updating"] {
        println!("{behaviour}: {:?}", counts.get(behaviour));
    }
    assert!(counts.get("lost_answer").is_some_and(|n| *n > 0), "{counts:?}");
}

/// AWS reports bad certificates in a truststore only as warnings and keeps
/// mutual TLS on, refusing the clients of those CAs. The deployer checks the
/// file itself first: an expired CA or a leaf certificate is refused before
/// any call, naming the certificate and the reason. With
/// `accept_truststore_warnings`, it goes up, and AWS's warnings (the proxy
/// gives them as AWS would) reach the outputs.
#[tokio::test]
async fn a_truststore_api_gateway_would_warn_about_is_refused_before_any_call_unless_accepted() {
    let name = "t-aws-warn";
    let proxy = Proxy::aws_like(Behaviours::none(TIME_SCALE)).await;
    let stack = full_stack(name, &proxy).await;
    let expired = e2e::certs::Ca::expired("Expired Clients CA");
    let leaf = e2e::certs::Ca::new("Clients CA").client("a-client", 7);
    stack.write("truststore.pem", format!("{}{}{}", e2e::certs::Ca::new("Clients CA").pem, expired.pem, leaf.pem));
    proxy.reset();
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 1, "{}", apply.stderr);
    for expected in [
        "stack.yaml: domain.truststore.file: ",
        "truststore.pem: certificate \"CN=Expired Clients CA\": expired on",
        "truststore.pem: certificate \"CN=a-client\": is not a CA certificate",
    ] {
        assert!(apply.stderr.contains(expected), "{expected}: {}", apply.stderr);
    }
    assert_eq!(proxy.calls().len(), 0, "refused before any call");

    let accepting = stack_yaml(name, &edge_yaml(name))
        .replace("  base_path: v1\n", "  base_path: v1\n  accept_truststore_warnings: true\n");
    stack.write("stack.yaml", &accepting);
    let accepted = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(accepted.code, 0, "{}\n{}", accepted.stdout, accepted.stderr);
    assert!(accepted.stderr.contains("truststore warning: Certificate CN=Expired Clients CA is expired"));
    let output = deployer(&stack, &proxy.url(), &["output", "--json"], &env()).await;
    let outputs: serde_json::Value = serde_json::from_str(&output.stdout).expect("outputs");
    let warnings = outputs["truststore_warnings"].as_array().expect("warnings");
    assert!(warnings.contains(&serde_json::json!("Certificate CN=Expired Clients CA is expired")), "{warnings:?}");
    assert!(warnings.contains(&serde_json::json!("Certificate CN=a-client is not a CA certificate")), "{warnings:?}");
    assert_eq!(outputs["invoke_url"], format!("https://api.{name}.example.com/v1"));
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
}

/// AWS may warn about a certificate the deployer's own checks pass (its
/// rules are its own): a truststore update that AWS answers with warnings
/// puts the domain back on the version it used, so its clients keep
/// working, and `apply` fails naming the warning.
#[tokio::test]
async fn a_truststore_update_aws_warns_about_is_rolled_back() {
    let name = "t-aws-rollback";
    let first_version: Arc<Mutex<Option<String>>> = Arc::default();
    let known = first_version.clone();
    // Any version but the first gets a warning, in every answer that shows the domain.
    let proxy = Proxy::aws_like_rewriting(Behaviours::none(TIME_SCALE), move |request, reply| {
        let Some(first) = known.lock().unwrap().clone() else { return };
        if !request.path.starts_with("/domainnames/") || request.path.contains("basepathmappings") {
            return;
        }
        let Ok(mut domain) = serde_json::from_str::<serde_json::Value>(&reply.body) else { return };
        let mtls = &mut domain["mutualTlsAuthentication"];
        if mtls.is_object() && mtls["truststoreVersion"] != first.as_str() {
            mtls["truststoreWarnings"] = serde_json::json!(["Certificate CN=Rotated CA: unsupported key usage"]);
            reply.body = domain.to_string();
        }
    })
    .await;
    let stack = full_stack(name, &proxy).await;
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);
    let aws = clients().await;
    let bucket = format!("{name}-truststore");
    let version = aws.s3.head_object().bucket(&bucket).key("truststore.pem").send().await.unwrap();
    let v1 = version.version_id().expect("a versioned truststore").to_owned();
    *first_version.lock().unwrap() = Some(v1.clone());

    stack.write("truststore.pem", e2e::certs::Ca::new("Rotated CA").pem);
    proxy.reset();
    let rotate = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(rotate.code, 1, "{}\n{}", rotate.stdout, rotate.stderr);
    assert!(rotate.stderr.contains("Certificate CN=Rotated CA: unsupported key usage"), "{}", rotate.stderr);
    assert!(
        rotate.stderr.contains(&format!("the domain was set back to the truststore version it used before ({v1})")),
        "{}",
        rotate.stderr
    );
    let patches: Vec<String> = proxy
        .calls()
        .iter()
        .filter(|c| c.service_operation == format!("PATCH /domainnames/api.{name}.example.com"))
        .map(|c| c.request.body.clone())
        .collect();
    assert_eq!(patches.len(), 2, "the new version, then the old one back: {patches:?}");
    assert!(patches[1].contains(&v1), "{}", patches[1]);
    let through_proxy = e2e::deploy::clients_at(&proxy.url()).await;
    let domain = through_proxy.apigateway.get_domain_name().domain_name(format!("api.{name}.example.com"));
    let domain = domain.send().await.unwrap();
    assert_eq!(domain.mutual_tls_authentication().and_then(|m| m.truststore_version()), Some(v1.as_str()));
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
}

/// A delete that keeps failing (here: permission denied on the certificate)
/// stops only what depends on it: everything else goes, and teardown ends
/// with exit 1 and the list of what is left.
#[tokio::test]
async fn teardown_goes_past_a_failed_step_and_lists_what_is_left() {
    let name = "t-aws-partial";
    let plain = Proxy::start().await;
    let stack = full_stack(name, &plain).await;
    assert_eq!(deployer(&stack, &plain.url(), &["apply"], &env()).await.code, 0);

    let refusing = Proxy::refusing(|request| {
        (request.header("x-amz-target") == Some("CertificateManager.DeleteCertificate")).then(|| {
            Reply::json(serde_json::json!({"__type": "AccessDeniedException", "message": "not allowed"}))
                .with_status(400)
                .header("content-type", "application/x-amz-json-1.1")
        })
    })
    .await;
    let teardown = deployer(&stack, &refusing.url(), &["teardown"], &env()).await;
    assert_eq!(teardown.code, 1, "{}", teardown.stderr);
    assert!(teardown.stderr.contains("teardown did not complete; left in place:"), "{}", teardown.stderr);
    assert!(teardown.stderr.contains(&format!("failed: certificate api.{name}.example.com")), "{}", teardown.stderr);
    let aws = clients().await;
    assert_eq!(shape(&aws, name).await, ["certificate api.STACK.example.com tagged"], "only the certificate is left");
    let finish = deployer(&stack, &plain.url(), &["teardown"], &env()).await;
    assert_eq!(finish.code, 0, "{}", finish.stderr);
    assert_eq!(shape(&aws, name).await, Vec::<String>::new());
}

/// Only `NoSuchTagSet` means "untagged": a bucket whose tags cannot be read
/// is an error, not someone else's bucket and not the stack's.
#[tokio::test]
async fn a_bucket_whose_tags_cannot_be_read_is_an_error() {
    let name = "t-aws-denied";
    let plain = Proxy::start().await;
    let stack = full_stack(name, &plain).await;
    assert_eq!(deployer(&stack, &plain.url(), &["apply"], &env()).await.code, 0);
    let bucket = format!("/{name}-truststore");
    let denying = Proxy::refusing(move |request| {
        (request.method == "GET" && request.path.starts_with(&bucket) && request.path.contains("tagging")).then(|| {
            Reply::status(403, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>")
                .header("content-type", "application/xml")
        })
    })
    .await;
    let diff = deployer(&stack, &denying.url(), &["diff"], &env()).await;
    assert_eq!(diff.code, 1, "{}\n{}", diff.stdout, diff.stderr);
    assert!(diff.stderr.contains("GetBucketTagging: AccessDenied"), "{}", diff.stderr);
    assert!(!diff.stderr.contains("refusing to take over"), "{}", diff.stderr);
    assert_eq!(deployer(&stack, &plain.url(), &["teardown"], &env()).await.code, 0);
}

/// An imported (or private-CA) certificate needs a public ACM certificate
/// for the same domain beside it; without one, apply is refused before any
/// change, with it the domain is created with both.
#[tokio::test]
async fn an_imported_certificate_needs_an_ownership_verification_certificate() {
    let name = "t-aws-imported";
    let domain = format!("api.{name}.example.com");
    let aws = clients().await;
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate = rcgen::CertificateParams::new(vec![domain.clone()]).unwrap().self_signed(&key).unwrap();
    let imported = aws
        .acm
        .import_certificate()
        .certificate(aws_sdk_acm::primitives::Blob::new(certificate.pem()))
        .private_key(aws_sdk_acm::primitives::Blob::new(key.serialize_pem()))
        .send()
        .await
        .unwrap();
    let imported_arn = imported.certificate_arn().unwrap().to_owned();
    let public = aws.acm.request_certificate().domain_name(&domain).send().await.unwrap();
    let public_arn = public.certificate_arn().unwrap().to_owned();

    let with_arn = |extra: &str| {
        stack_yaml(name, &edge_yaml(name))
            .replace("certificate: { request: true }", &format!("certificate: {{ arn: \"{imported_arn}\" }}{extra}"))
    };
    let proxy = Proxy::aws_like(Behaviours::none(TIME_SCALE)).await;
    let stack = StackDir::new(name, &with_arn(""));
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
    proxy.reset();
    let refused = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("apply is blocked; nothing was changed"), "{}", refused.stderr);
    assert!(refused.stderr.contains("is IMPORTED: API Gateway needs domain.ownership_verification_certificate_arn"));
    assert_eq!(proxy.changes(), Vec::<String>::new());

    stack.write("stack.yaml", with_arn(&format!("\n  ownership_verification_certificate_arn: \"{public_arn}\"")));
    proxy.reset();
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let calls = proxy.calls();
    let create = calls.iter().find(|c| c.service_operation == "POST /domainnames").expect("CreateDomainName");
    let sent: serde_json::Value = serde_json::from_str(&create.request.body).unwrap();
    assert_eq!(sent["regionalCertificateArn"], imported_arn.as_str());
    assert_eq!(sent["ownershipVerificationCertificateArn"], public_arn.as_str());
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
    // Given by ARN, both certificates were the user's: teardown leaves them.
    for arn in [&imported_arn, &public_arn] {
        aws.acm.describe_certificate().certificate_arn(arn.as_str()).send().await.expect("still there");
        aws.acm.delete_certificate().certificate_arn(arn.as_str()).send().await.unwrap();
    }
}

/// The REST API's resource tree is read once per run, not once per path or
/// route: API Gateway allows GetResources 5 times in 2 seconds.
#[tokio::test]
async fn new_routes_read_the_resource_tree_once() {
    let name = "t-aws-tree";
    let proxy = Proxy::aws_like(Behaviours { throttling: true, ..Behaviours::none(TIME_SCALE) }).await;
    let stack = full_stack(name, &proxy).await;
    proxy.reset();
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);
    let reads = |proxy: &Proxy| {
        proxy
            .calls()
            .iter()
            .filter(|c| c.service_operation.starts_with("GET ") && c.request.path.contains("/resources"))
            .count()
    };
    assert_eq!(
        reads(&proxy),
        0,
        "a new API's tree is known: it has its root only: {:?}",
        proxy.calls().iter().map(|c| &c.service_operation).collect::<Vec<_>>()
    );

    let more_routes = stack_yaml(name, &edge_yaml(name)).replace(
        "stage:\n",
        "    - method: GET\n      path: /owners/{id}\n      scopes: [pets:read]\n      backend: https://backend.example.com/owners/{id}\n    - method: GET\n      path: /owners/{id}/pets\n      scopes: [pets:read]\n      backend: https://backend.example.com/owners/{id}/pets\n    - method: DELETE\n      path: /pets/{id}\n      scopes: [pets:read]\n      backend: https://backend.example.com/pets/{id}\nstage:\n",
    );
    stack.write("stack.yaml", &more_routes);
    proxy.reset();
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert!(apply.stdout.contains("+ api_route DELETE /pets/{id}"), "{}", apply.stdout);
    // One read to observe, shared by the paths and the routes; the new
    // paths and routes are made from it, with no read of their own.
    assert_eq!(reads(&proxy), 1, "{:?}", proxy.calls().iter().map(|c| &c.service_operation).collect::<Vec<_>>());
    let teardown = deployer(&stack, &proxy.url(), &["teardown"], &env()).await;
    assert_eq!(teardown.code, 0, "{}", teardown.stderr);
}

/// WAF's lists lag its creates: an apply right after another does not see
/// the IP sets and web ACL just made, plans to create them, is told they
/// exist, waits until they are listed and takes them (no duplicate).
#[tokio::test]
async fn a_run_right_after_another_waits_for_waf_to_list_what_exists() {
    let name = "t-aws-lag";
    // WAF's list lags 30 s of AWS time: 4.5 s here, so the second run
    // (a deployer process started after the first ends) lands inside it.
    const LAG_SCALE: f64 = 0.15;
    let env = [("INTROSPECTION_SECRET", SECRET), ("DEPLOYER_TIME_SCALE", "0.15")];
    let proxy = Proxy::aws_like(Behaviours { waf_list_lag: true, ..Behaviours::none(LAG_SCALE) }).await;
    let stack = StackDir::new(name, &stack_yaml(name, &edge_yaml(name)));
    for command in [&["teardown"][..], &["apply"], &["apply"]] {
        let outcome = deployer(&stack, &proxy.url(), command, &env).await;
        assert_eq!(outcome.code, 0, "{command:?}: {}\n{}", outcome.stdout, outcome.stderr);
    }
    let counts = proxy.behaviour_counts();
    assert!(counts.get("waf_list_lag").is_some_and(|n| *n > 0), "the second run saw everything: {counts:?}");
    assert!(counts.get("waf_duplicate").is_some_and(|n| *n > 0), "it never tried to create again: {counts:?}");
    assert_eq!(shape(&clients().await, name).await, clean_apply_shape().await, "no duplicate");
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env).await.code, 0);
}
