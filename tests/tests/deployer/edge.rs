//! The deployer against moto: the mutual TLS custom domain, its truststore
//! (rotation, AWS's warnings, the bucket's ownership) and the WAF allowlist.

use e2e::deploy::{StackDir, api_id, body_of, clean_slate, clients, deployer, edge_yaml, env, stack_yaml};
use e2e::moto::Proxy;

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

    // What the deployer sent is checked, not what the stand-in hands back
    // (moto 5.2.5 drops mutualTlsAuthentication; scripts/moto_server.py
    // puts it back, so a second check would only test that correction).
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
    assert_eq!(proxy.changes(), Vec::<String>::new());

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
    assert_eq!(pending, ["  ~ ip_set t-edge-allow-ipv4"], "{}", diff.stdout);
    assert!(diff.stdout.contains(r#"addresses: ["0.0.0.0/1"] → ["203.0.113.0/24"]"#), "{}", diff.stdout);
    assert_eq!(deployer(&stack, &proxy.url(), &["apply"], &env()).await.code, 0);
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);

    // A new truststore: uploaded as a new object version, and the domain is
    // updated to that version. moto 5.2.5 answers UpdateDomainName with 500
    // (not implemented), so the request the deployer sent is what is checked.
    let new_ca = e2e::certs::Ca::new("Rotated Clients CA");
    stack.write("truststore.pem", &new_ca.pem);
    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert!(diff.stdout.contains("~ truststore t-edge-truststore"), "{}", diff.stdout);
    assert!(diff.stdout.contains("~ domain_name api.t-edge.example.com"), "{}", diff.stdout);
    assert!(diff.stdout.contains("(version_id of truststore t-edge-truststore, known after apply)"), "{}", diff.stdout);
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
    // Whether moto can do it or not, a failure may only be that update:
    // nothing else in the run depends on it.
    if rotate.code != 0 {
        assert!(rotate.stderr.contains("failed: domain_name api.t-edge.example.com: updating"), "{}", rotate.stderr);
        let failures = rotate.stderr.lines().filter(|l| l.contains("failed: "));
        assert!(
            failures.clone().all(|l| l.contains("failed: domain_name api.t-edge.example.com")),
            "{}",
            rotate.stderr
        );
        assert!(!rotate.stderr.contains("not done"), "{}", rotate.stderr);
    }

    proxy.reset();
    let teardown = deployer(&stack, &proxy.url(), &["teardown"], &env()).await;
    assert_eq!(teardown.code, 0, "{}", teardown.stderr);
    // The web ACL is detached before it is deleted (AWS refuses to delete
    // one in use; moto does not), and nothing of it is left.
    let order = proxy.changes();
    let position = |operation: &str| order.iter().position(|o| o == operation);
    assert!(position("DisassociateWebACL") < position("DeleteWebACL"), "{order:?}");
    assert!(position("DisassociateWebACL").is_some(), "{order:?}");
    let acls = aws.wafv2.list_web_acls().scope(aws_sdk_wafv2::types::Scope::Regional).send().await.unwrap();
    assert!(!acls.web_acls().iter().any(|a| a.name() == Some("t-edge-allowlist")), "the web ACL is gone");
    let sets = aws.wafv2.list_ip_sets().scope(aws_sdk_wafv2::types::Scope::Regional).send().await.unwrap();
    assert!(!sets.ip_sets().iter().any(|s| s.name().is_some_and(|n| n.starts_with("t-edge-"))));
    let error = aws.apigateway.get_domain_name().domain_name("api.t-edge.example.com").send().await.expect_err("gone");
    assert!(error.into_service_error().is_not_found_exception());
    let error = aws.s3.head_bucket().bucket("t-edge-truststore").send().await.expect_err("gone");
    assert!(error.into_service_error().is_not_found());
}

/// AWS reports bad certificates in a truststore only as warnings on the
/// domain and keeps mutual TLS on. moto never does, so the proxy adds the
/// warning to moto's answers, as AWS would give it.
#[tokio::test]
async fn truststore_warnings_stop_apply_unless_accepted_and_outputs_show_them() {
    let name = "t-warn";
    let domain_only = format!(
        "domain:\n  name: api.{name}.example.com\n  certificate: {{ request: true }}\n  truststore: {{ file: truststore.pem, bucket: {name}-truststore }}\n  base_path: v1\n"
    );
    let stack = StackDir::new(name, &stack_yaml(name, &domain_only));
    let warning = "Certificate CN=Expired Clients CA is expired";
    let sent = std::sync::Arc::new(std::sync::Mutex::new(None::<serde_json::Value>));
    let remembered = sent.clone();
    let proxy = Proxy::rewriting(move |request, reply| {
        if !request.path.starts_with("/domainnames") || request.path.contains("basepathmappings") {
            return;
        }
        if request.method == "POST" {
            let body: serde_json::Value = serde_json::from_str(&request.body).unwrap_or_default();
            *remembered.lock().unwrap() = body.get("mutualTlsAuthentication").cloned();
        }
        let Some(mut mtls) = remembered.lock().unwrap().clone() else { return };
        mtls["truststoreWarnings"] = serde_json::json!([warning]);
        let Ok(mut answer) = serde_json::from_str::<serde_json::Value>(&reply.body) else { return };
        let domains = match answer.get_mut("item") {
            Some(serde_json::Value::Array(items)) => items.iter_mut().collect::<Vec<_>>(),
            _ => vec![&mut answer],
        };
        for domain in domains {
            if domain["domainName"] == format!("api.{name}.example.com") {
                domain["mutualTlsAuthentication"] = mtls.clone();
            }
        }
        reply.body = answer.to_string();
    })
    .await;
    clean_slate(&stack, &proxy).await;

    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 1, "{}", apply.stderr);
    assert!(sent.lock().unwrap().is_some(), "the domain was created with mutual TLS");
    assert!(
        apply.stderr.contains("blocked: API Gateway warns about the truststore of api.t-warn.example.com"),
        "{}",
        apply.stderr
    );
    assert!(apply.stderr.contains(warning) && apply.stderr.contains("domain.accept_truststore_warnings"));

    let diff = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert!(diff.stdout.contains("Blocked: API Gateway warns about the truststore"), "{}", diff.stdout);
    let output = deployer(&stack, &proxy.url(), &["output", "--json"], &env()).await;
    assert_eq!(output.code, 0, "{}", output.stderr);
    let outputs: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(outputs["truststore_warnings"], serde_json::json!([warning]));
    assert_eq!(outputs["invoke_url"], "https://api.t-warn.example.com/v1");
    assert_eq!(outputs["execute_api_url"], serde_json::Value::Null, "execute-api is off with mutual TLS");
    let aws = clients().await;
    let domain = aws.apigateway.get_domain_name().domain_name("api.t-warn.example.com").send().await.unwrap();
    assert_eq!(outputs["domain"]["regional_domain_name"], domain.regional_domain_name().unwrap());
    assert_eq!(outputs["domain"]["regional_hosted_zone_id"], domain.regional_hosted_zone_id().unwrap());
    assert_eq!(outputs["api_id"], api_id(&aws, "t-warn-api").await);
    assert_eq!(outputs["function_name"], "t-warn-authorizer");

    // The stack says the warnings are accepted: apply goes through.
    stack.write("stack.yaml", stack_yaml(name, &format!("{domain_only}  accept_truststore_warnings: true\n")));
    let accepted = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(accepted.code, 0, "{}\n{}", accepted.stdout, accepted.stderr);
    assert!(accepted.stderr.contains(&format!("truststore warning: {warning}")), "still shown: {}", accepted.stderr);
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
}

/// An apply killed between CreateBucket and PutBucketTagging leaves the
/// truststore bucket untagged. The next apply takes it back while it is
/// empty; an untagged bucket holding anything is someone else's.
#[tokio::test]
async fn the_stacks_own_untagged_empty_truststore_bucket_is_taken_back() {
    let name = "t-takeback";
    let domain_only = format!(
        "domain:\n  name: api.{name}.example.com\n  certificate: {{ request: true }}\n  truststore: {{ file: truststore.pem, bucket: {name}-truststore }}\n  base_path: v1\n"
    );
    let stack = StackDir::new(name, &stack_yaml(name, &domain_only));
    let proxy = Proxy::start().await;
    clean_slate(&stack, &proxy).await;
    let aws = clients().await;
    let bucket = format!("{name}-truststore");
    let create_bucket = || {
        aws.s3
            .create_bucket()
            .bucket(&bucket)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send()
    };

    // Untagged and not empty: not the stack's, refused before any change.
    // (An earlier run on the same moto server may have left it.)
    if let Err(e) = create_bucket().await {
        assert_eq!(aws_sdk_s3::error::ProvideErrorMetadata::code(&e), Some("BucketAlreadyOwnedByYou"), "{e:?}");
    }
    // moto keeps a deleted bucket's tags for a new bucket of the same name (AWS
    // does not): clear them, or a second run on one moto server sees a tagged bucket.
    aws.s3.delete_bucket_tagging().bucket(&bucket).send().await.unwrap();
    aws.s3.put_object().bucket(&bucket).key("someone-elses.txt").body(b"data".to_vec().into()).send().await.unwrap();
    let refused = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains(&format!("truststore {bucket}")), "{}", refused.stderr);
    assert!(refused.stderr.contains("refusing to take over"), "{}", refused.stderr);

    // Untagged and empty: what a killed apply leaves; taken back and tagged.
    aws.s3.delete_object().bucket(&bucket).key("someone-elses.txt").send().await.unwrap();
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let tags = aws.s3.get_bucket_tagging().bucket(&bucket).send().await.expect("tagged now");
    assert!(tags.tag_set().iter().any(|t| t.key() == "oauth-gateway:stack" && t.value() == name));
    assert_eq!(deployer(&stack, &proxy.url(), &["diff", "--detailed-exitcode"], &env()).await.code, 0);
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
    let error = aws.s3.head_bucket().bucket(&bucket).send().await.expect_err("gone");
    assert!(error.into_service_error().is_not_found());
}
