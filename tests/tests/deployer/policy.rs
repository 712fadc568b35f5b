//! `deployer policy` as IAM would hold the deployer to it. Every run of the
//! deployer in these tests is judged by the proxy against the policy
//! printed for its stack (`e2e::access`), with the context AWS would send
//! (the tags of the resource acted on, the role's boundary, the request's
//! tags); here:
//!
//! - a stack's whole life (a first apply that waits for DNS validation and
//!   exits 3, its re-run, a no-op apply, plans and outputs as the read-only
//!   role, a rotation of truststore, secret, code and networks, pruning,
//!   teardown) passes under the printed policies, and taking any one
//!   statement away denies at least one of the calls those runs made;
//! - taking away a statement in a real run fails it, naming the call, also
//!   where AWS answers by permission (GetFunction's tags without
//!   `lambda:ListTags`, the service-linked role of the first custom domain);
//! - what the pipeline could do to make itself more powerful, or to reach
//!   what is not its stack's, is refused, by the evaluator and by the proxy
//!   acting on the account's real tags.

use std::collections::BTreeSet;

use aws_sdk_apigateway::types::{Op, PatchOperation};
use e2e::access::Judged;
use e2e::aws_like::Behaviours;
use e2e::deploy::{
    Clients, Role, StackDir, TIME_SCALE, clean_slate, clients, clients_as, clients_in, code_zip, deployer, deployer_as,
    edge_yaml, env, fresh_stack, must, stack_yaml, tiny_bootstrap,
};
use e2e::iam::{Decision, Request, allows_request, decide};
use e2e::moto::Proxy;
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";

/// A public hosted zone for `name`; its id without `/hostedzone/`.
async fn hosted_zone(aws: &Clients, name: &str) -> String {
    let created = aws
        .route53
        .create_hosted_zone()
        .name(name)
        .caller_reference(format!("{name}-{}", std::process::id()))
        .send()
        .await
        .expect("hosted zone");
    created.hosted_zone().expect("zone").id().trim_start_matches("/hostedzone/").to_owned()
}

/// An account (of the region) without API Gateway's CloudWatch role: the
/// setting cleared, the role deleted.
async fn without_account_role(aws: &Clients) {
    let unset = PatchOperation::builder().op(Op::Replace).path("/cloudwatchRoleArn").value("").build();
    aws.apigateway.update_account().patch_operations(unset).send().await.unwrap();
    let role = "oauth-gateway-apigateway-cloudwatch";
    if let Ok(attached) = aws.iam.list_attached_role_policies().role_name(role).send().await {
        for policy in attached.attached_policies() {
            let arn = policy.policy_arn().unwrap_or_default();
            aws.iam.detach_role_policy().role_name(role).policy_arn(arn).send().await.unwrap();
        }
        aws.iam.delete_role().role_name(role).send().await.unwrap();
    }
}

/// A region where the deployer never ran: without its lock bucket (which
/// it keeps once made, and the test's own teardown made).
async fn without_lock_bucket(aws: &Clients, region: &str) {
    let bucket = format!("oauth-gateway-123456789012-{region}");
    let Ok(listed) = aws.s3.list_objects_v2().bucket(&bucket).send().await else { return };
    for object in listed.contents() {
        aws.s3.delete_object().bucket(&bucket).key(object.key().unwrap_or_default()).send().await.unwrap();
    }
    aws.s3.delete_bucket().bucket(&bucket).send().await.unwrap();
}

/// What an earlier deployer made for API Gateway to invoke the authorizer:
/// a role of the stack's, with an inline policy, as the authorizer's credentials.
async fn earlier_deployers_invoke_role(aws: &Clients, name: &str) {
    let role = format!("{name}-authorizer-invoke");
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let created = aws
        .iam
        .create_role()
        .role_name(&role)
        .assume_role_policy_document(trust.to_string())
        .tags(aws_sdk_iam::types::Tag::builder().key("oauth-gateway:stack").value(name).build().unwrap())
        .send()
        .await
        .unwrap();
    let invoke = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}]});
    aws.iam
        .put_role_policy()
        .role_name(&role)
        .policy_name("invoke-authorizer")
        .policy_document(invoke.to_string())
        .send()
        .await
        .unwrap();
    let api = e2e::deploy::api_id(aws, &format!("{name}-api")).await;
    let authorizers = aws.apigateway.get_authorizers().rest_api_id(&api).send().await.unwrap();
    let credentials = PatchOperation::builder()
        .op(Op::Replace)
        .path("/authorizerCredentials")
        .value(created.role().unwrap().arn())
        .build();
    aws.apigateway
        .update_authorizer()
        .rest_api_id(&api)
        .authorizer_id(authorizers.items()[0].id().unwrap())
        .patch_operations(credentials)
        .send()
        .await
        .unwrap();
}

/// The statements of `policy` without the one named `sid`.
fn without(policy: &Value, sid: &str) -> Value {
    let mut policy = policy.clone();
    if let Some(statements) = policy["Statement"].as_array_mut() {
        statements.retain(|s| s["Sid"] != sid);
    }
    policy
}

fn sids(policy: &Value, effect: &str) -> Vec<String> {
    policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|s| s["Effect"] == effect)
        .map(|s| s["Sid"].as_str().expect("a Sid").to_owned())
        .collect()
}

/// The statements of `policy` no judged request needs: each, taken away,
/// leaves every request allowed.
fn unneeded(policy: &Value, judged: &[Judged]) -> Vec<String> {
    sids(policy, "Allow")
        .into_iter()
        .filter(|sid| {
            let smaller = without(policy, sid);
            judged.iter().all(|j| allows_request(&smaller, &j.request))
        })
        .collect()
}

/// For one statement, the first call that needs it.
fn needed_by(policy: &Value, sid: &str, judged: &[Judged]) -> Option<String> {
    let smaller = without(policy, sid);
    judged.iter().find(|j| !allows_request(&smaller, &j.request)).map(|j| format!("{} ({})", j.operation, j.request))
}

#[tokio::test]
async fn a_stacks_whole_life_runs_under_the_printed_policy_and_needs_every_statement() {
    // The account's CloudWatch role and setting are the test's: it makes
    // the role, then repairs the setting someone cleared.
    let _account = e2e::deploy::ACCOUNT_SETTINGS.lock().await;
    const REGION: &str = "ca-central-1";
    let name = "t-policy";
    let aws = clients_in(REGION).await;
    let zone = hosted_zone(&aws, &format!("{name}.example.com")).await;
    let edge = edge_yaml(name).replace("  base_path: v1\n", &format!("  base_path: v1\n  hosted_zone_id: {zone}\n"));
    let monitoring = "  monitoring: { xray_tracing: true, detailed_metrics: true }\n";
    let full = stack_yaml(name, &format!("  access_log: {{ account_role: create }}\n{monitoring}{edge}"))
        .replace("region: eu-west-1", &format!("region: {REGION}"));
    // ACM keeps the certificate pending until its record is written: the
    // first deployment of a pipeline is two runs.
    let proxy = Proxy::aws_like(Behaviours { acm_dns_validation: true, ..Behaviours::none(TIME_SCALE) }).await;
    let stack = fresh_stack(name, &full, &proxy).await;
    without_account_role(&aws).await;
    without_lock_bucket(&aws, REGION).await;
    let started = std::time::Instant::now();

    let first = deployer(&stack, &proxy.url(), &["apply", "--wait-for-certificate", "0"], &env()).await;
    assert_eq!(first.code, 3, "the first run waits for DNS validation:\n{}\n{}", first.stdout, first.stderr);
    must(&stack, &proxy, &["apply"]).await;
    let again = must(&stack, &proxy, &["apply"]).await;
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);

    // Plans and outputs as the role that can only read, given no secret (a
    // pull request's): the secret is not compared, the rest is.
    for args in [&["diff", "--detailed-exitcode"][..], &["output"]] {
        let outcome = deployer_as(Role::ReadOnly, &stack, &proxy.url(), args, &[]).await;
        assert_eq!(outcome.code, 0, "{args:?} as the read-only role:\n{}\n{}", outcome.stdout, outcome.stderr);
        if args[0] == "diff" {
            assert!(outcome.stdout.contains("No changes"), "{}", outcome.stdout);
            assert!(
                outcome.stdout.contains("Not compared: the authorizer's secret (INTROSPECTION_CLIENT_SECRET)"),
                "{}",
                outcome.stdout
            );
        }
    }
    let saved = deployer_as(Role::ReadOnly, &stack, &proxy.url(), &["diff", "--out", "plan.json"], &[]).await;
    assert_eq!(saved.code, 1, "a plan for apply needs every value:\n{}", saved.stderr);
    assert!(saved.stderr.contains("INTROSPECTION_SECRET is not set"), "{}", saved.stderr);

    // Drift, repaired: the execution role trusted by another service; the
    // account's CloudWatch setting cleared; the invoke role (and the
    // authorizer's credentials) an earlier deployer made.
    let role = format!("{name}-authorizer-exec");
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    aws.iam.update_assume_role_policy().role_name(&role).policy_document(trust.to_string()).send().await.unwrap();
    let unset = PatchOperation::builder().op(Op::Replace).path("/cloudwatchRoleArn").value("").build();
    aws.apigateway.update_account().patch_operations(unset).send().await.unwrap();
    earlier_deployers_invoke_role(&aws, name).await;
    let repaired = must(&stack, &proxy, &["apply"]).await;
    for change in ["~ iam_role", "- iam_role", "~ api_authorizer", "~ access_log"] {
        assert!(repaired.stdout.contains(change), "{change}: {}", repaired.stdout);
    }

    // Rotation: a new truststore, a new secret, new code, another network allowed.
    let full = full.replace("allow: [203.0.113.0/24,", "allow: [203.0.113.0/24, 198.51.100.0/24,");
    stack.write("stack.yaml", &full);
    stack.write("truststore.pem", e2e::certs::Ca::new("Rotated Clients CA").pem);
    let mut code = tiny_bootstrap();
    code.extend_from_slice(b"\0new build");
    stack.write("code.zip", code_zip(&code));
    let rotated = deployer(&stack, &proxy.url(), &["apply"], &[("INTROSPECTION_SECRET", "a-rotated-secret")]).await;
    assert_eq!(rotated.code, 0, "{}\n{}", rotated.stdout, rotated.stderr);

    // Pruning: a route and the WAF taken out, and the DNS records left to
    // someone else (the hosted zone no longer named).
    let pruned = full
        .replace("    - method: POST\n      path: /pets\n      scopes: [pets:write]\n      backend: https://backend.example.com/pets\n", "")
        .replace("waf:\n  allow: [203.0.113.0/24, 198.51.100.0/24, \"2001:db8::/32\"]\n", "")
        .replace(&format!("  hosted_zone_id: {zone}\n"), "");
    assert_ne!(pruned, full);
    stack.write("stack.yaml", &pruned);
    for args in [&["apply"][..], &["teardown"]] {
        let outcome = deployer(&stack, &proxy.url(), args, &[("INTROSPECTION_SECRET", "a-rotated-secret")]).await;
        assert_eq!(outcome.code, 0, "{args:?}:\n{}\n{}", outcome.stdout, outcome.stderr);
    }
    let took = started.elapsed();

    for role in [Role::Pipeline, Role::ReadOnly] {
        let principal = stack.principal(role).expect("a judged role");
        let (policy, judged) = (principal.policy(), principal.judged());
        let denied: Vec<&Judged> = judged.iter().filter(|j| j.decision != Decision::Allowed).collect();
        assert!(denied.is_empty(), "{role:?}: denied {denied:#?}");
        assert!(judged.len() > 50, "{role:?}: every call was judged ({})", judged.len());
        // Every statement is there for a call.
        let unneeded = unneeded(&policy, &judged);
        assert!(unneeded.is_empty(), "{role:?}: statements no call needed: {unneeded:?}");
        let statements = sids(&policy, "Allow");
        let needs: Vec<String> = statements
            .iter()
            .map(|sid| format!("{sid}: {}", needed_by(&policy, sid, &judged).unwrap_or_default()))
            .collect();
        eprintln!(
            "{role:?}: {} requests judged in {took:?} of runs; each of the {} statements is needed by at least one:\n  {}",
            judged.len(),
            statements.len(),
            needs.join("\n  ")
        );
    }
    // Plans read no secret: nothing the read-only role may call returns one.
    let read_only = stack.principal(Role::ReadOnly).unwrap();
    for statement in read_only.policy()["Statement"].as_array().unwrap() {
        for action in statement["Action"].as_array().unwrap() {
            assert!(
                !["secretsmanager:GetSecretValue", "ssm:GetParameter", "kms:Decrypt"]
                    .contains(&action.as_str().unwrap()),
                "{action} in the read-only policy"
            );
        }
    }
    // What AWS checks beyond the call was needed, so the sweep is not vacuous.
    let used: BTreeSet<String> =
        stack.principal(Role::Pipeline).unwrap().judged().into_iter().map(|j| j.request.action).collect();
    for action in [
        "iam:PassRole",
        "iam:CreateServiceLinkedRole",
        "lambda:ListTags",
        "lambda:AddPermission",
        "apigateway:SetWebACL",
        "apigateway:AddCertificateToDomain",
        "apigateway:RemoveCertificateFromDomain",
        "s3:GetObjectVersion",
        "acm:AddTagsToCertificate",
        "wafv2:TagResource",
        "route53:ChangeResourceRecordSets",
        "iam:GetPolicy",
        "iam:PutRolePolicy",
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
    ] {
        assert!(used.contains(action), "{action} was never needed: {used:?}");
    }
}

/// A statement or an action taken away from the printed policy fails a real
/// run, and the failure names what was refused, also where AWS does not
/// refuse but answers differently.
#[tokio::test]
async fn a_permission_taken_away_fails_the_run_naming_it() {
    // The WAF association without `apigateway:SetWebACL`.
    let name = "t-policy-less";
    let proxy = Proxy::aws_like(Behaviours::none(TIME_SCALE)).await;
    let waf = "waf:\n  allow: [203.0.113.0/24]\n";
    let stack = fresh_stack(name, &stack_yaml(name, waf), &proxy).await;
    stack.edit_policy(|policy| *policy = without(policy, "StageSetWebAcl"));
    let refused = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("AssociateWebACL")
            && refused.stderr.contains("not authorized to perform: apigateway:SetWebACL"),
        "{}",
        refused.stderr
    );

    // GetFunction without `lambda:ListTags`: the function's tags are not
    // shown, so it reads as someone else's, and the refusal says why.
    stack.edit_policy(|policy| {
        for statement in policy["Statement"].as_array_mut().expect("statements") {
            if let Some(actions) = statement["Action"].as_array_mut() {
                actions.retain(|a| a != "lambda:ListTags");
            }
        }
    });
    let refused = deployer(&stack, &proxy.url(), &["diff"], &env()).await;
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        refused.stderr.contains(&format!("lambda_function {name}-authorizer"))
            && refused.stderr.contains("allowed lambda:ListTags"),
        "{}",
        refused.stderr
    );
    clean_slate(&stack, &proxy).await;

    // The account's first custom domain without `iam:CreateServiceLinkedRole`
    // (a proxy is a new account): CreateDomainName is refused, naming it.
    let name = "t-policy-slr";
    let proxy = Proxy::aws_like(Behaviours::none(TIME_SCALE)).await;
    let stack = fresh_stack(name, &stack_yaml(name, &edge_yaml(name)), &proxy).await;
    stack.edit_policy(|policy| *policy = without(policy, "ApiGatewayServiceLinkedRole"));
    let refused = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("CreateDomainName")
            && refused.stderr.contains("not authorized to perform: iam:CreateServiceLinkedRole"),
        "{}",
        refused.stderr
    );
    clean_slate(&stack, &proxy).await;
}

/// The printed policy for the example stack, and requests it must refuse.
#[test]
fn what_would_make_the_pipeline_more_powerful_or_reach_another_stack_is_refused() {
    let path = e2e::workspace_root().join("stack.yaml");
    let stack = deployer::stack::Stack::load(&path, &|_| Some("x".into())).expect("the example stack");
    let target = deployer::policy::Target { account: ACCOUNT, region: "eu-west-1", partition: "aws" };
    let policy = serde_json::to_value(deployer::policy::document(&stack, &target)).expect("policy");
    let role = |name: &str| format!("arn:aws:iam::{ACCOUNT}:role/{name}");
    let execution = role("pets-api-authorizer-exec");
    let boundary = format!("arn:aws:iam::{ACCOUNT}:policy/pets-api-role-boundary");
    let api = |path: &str| format!("arn:aws:apigateway:eu-west-1::{path}");
    let ours = |request: Request| request.with("aws:ResourceTag/oauth-gateway:stack", &["pets-api"]);
    let theirs = |request: Request| request.with("aws:ResourceTag/oauth-gateway:stack", &["payments"]);
    let certificate = format!("arn:aws:acm:eu-west-1:{ACCOUNT}:certificate/0a1b");

    // What the pipeline needs is allowed (so the refusals below are about the difference).
    for allowed in [
        Request::new("iam:CreateRole", &execution).with("iam:PermissionsBoundary", &[&boundary]),
        ours(Request::new("apigateway:PATCH", api("/restapis/a1b2c3/stages/prod"))),
        ours(Request::new("acm:DeleteCertificate", &certificate)),
        Request::new(
            "lambda:AddPermission",
            format!("arn:aws:lambda:eu-west-1:{ACCOUNT}:function:pets-api-authorizer"),
        )
        .with("lambda:Principal", &["apigateway.amazonaws.com"]),
    ] {
        assert_eq!(decide(&policy, &allowed), Decision::Allowed, "refused: {allowed}");
    }

    for refused in [
        // A role without the boundary, or with another, or the boundary removed or changed.
        Request::new("iam:CreateRole", &execution),
        Request::new("iam:CreateRole", &execution)
            .with("iam:PermissionsBoundary", &["arn:aws:iam::aws:policy/AdministratorAccess"]),
        Request::new("iam:PutRolePermissionsBoundary", &execution)
            .with("iam:PermissionsBoundary", &["arn:aws:iam::aws:policy/AdministratorAccess"]),
        Request::new("iam:DeleteRolePermissionsBoundary", &execution),
        Request::new("iam:CreatePolicyVersion", &boundary),
        Request::new("iam:SetDefaultPolicyVersion", &boundary),
        Request::new("iam:DeletePolicy", &boundary),
        // Writing what a role may do: no inline policy (the example has no
        // secret to read) and none on a role without the boundary, no
        // managed policy but the logging one.
        Request::new("iam:PutRolePolicy", &execution).with("iam:PermissionsBoundary", &[&boundary]),
        Request::new("iam:PutRolePolicy", &execution),
        Request::new("iam:PutRolePolicy", &execution)
            .with("iam:PermissionsBoundary", &["arn:aws:iam::aws:policy/AdministratorAccess"]),
        Request::new("iam:AttachRolePolicy", &execution)
            .with("iam:PermissionsBoundary", &[&boundary])
            .with("iam:PolicyARN", &["arn:aws:iam::aws:policy/AdministratorAccess"]),
        Request::new("iam:PassRole", role("admin")).with("iam:PassedToService", &["lambda.amazonaws.com"]),
        // Another team's REST API, or an untagged one, and their stage's WAF.
        theirs(Request::new("apigateway:DELETE", api("/restapis/x9y8z7"))),
        theirs(Request::new("apigateway:PATCH", api("/restapis/x9y8z7/resources/r1/methods/GET"))),
        Request::new("apigateway:PUT", api("/restapis/x9y8z7/resources/r1/methods/GET")),
        theirs(Request::new("apigateway:SetWebACL", api("/restapis/x9y8z7/stages/prod"))),
        Request::new("apigateway:GET", api("/restapis/x9y8z7/stages/prod")),
        // Tagging an existing API as ours, or creating one tagged as another's.
        Request::new("apigateway:PUT", api("/tags/arn%3Aaws%3Aapigateway%3Aeu-west-1%3A%3A%2Frestapis%2Fx9y8z7"))
            .with("aws:RequestTag/oauth-gateway:stack", &["pets-api"])
            .with("aws:TagKeys", &["oauth-gateway:stack"]),
        Request::new("apigateway:POST", api("/restapis"))
            .with("aws:RequestTag/oauth-gateway:stack", &["payments"])
            .with("aws:TagKeys", &["oauth-gateway:stack"]),
        Request::new("apigateway:POST", api("/restapis")),
        // Another stack's certificate, or claiming an existing one.
        theirs(Request::new("acm:DeleteCertificate", &certificate)),
        Request::new("acm:DeleteCertificate", &certificate),
        Request::new("acm:AddTagsToCertificate", &certificate)
            .with("aws:RequestTag/oauth-gateway:stack", &["pets-api"])
            .with("aws:TagKeys", &["oauth-gateway:stack"]),
        Request::new("acm:RequestCertificate", "*")
            .with("acm:DomainNames", &["evil.example.net"])
            .with("aws:RequestTag/oauth-gateway:stack", &["pets-api"])
            .with("aws:TagKeys", &["oauth-gateway:stack"]),
        // Granting someone else the right to invoke the authorizer.
        Request::new(
            "lambda:AddPermission",
            format!("arn:aws:lambda:eu-west-1:{ACCOUNT}:function:pets-api-authorizer"),
        )
        .with("lambda:Principal", &["111122223333"]),
        Request::new("lambda:UpdateFunctionCode", format!("arn:aws:lambda:eu-west-1:{ACCOUNT}:function:other")),
        Request::new("s3:PutObject", "arn:aws:s3:::someone-elses-bucket/key"),
        Request::new("apigateway:DELETE", api("/domainnames/other.example.com")),
        Request::new("wafv2:DeleteIPSet", format!("arn:aws:wafv2:eu-west-1:{ACCOUNT}:regional/ipset/other/1")),
    ] {
        assert_ne!(decide(&policy, &refused), Decision::Allowed, "allowed: {refused}");
    }

    // The boundary: all the execution role can ever do, whatever it is given
    // (for a stack with a secret: the example validates JWTs and has none).
    let with_secret = StackDir::new("pets-api", &stack_yaml("pets-api", ""));
    let stack = deployer::stack::Stack::load(&with_secret.path("stack.yaml"), &|_| Some("x".into())).expect("a stack");
    let grants = deployer::policy::Grants::new(&stack, &target);
    let ceiling = deployer::resources::permissions_boundary::document(&deployer::resources::role_permissions(&grants));
    // A stack with a secret may give the role its inline policy (to read the
    // secret): whatever it says, the boundary is the role's ceiling.
    let policy = serde_json::to_value(deployer::policy::document(&stack, &target)).expect("policy");
    let inline =
        |boundary: &str| Request::new("iam:PutRolePolicy", &execution).with("iam:PermissionsBoundary", &[boundary]);
    assert!(allows_request(&policy, &inline(&boundary)));
    assert!(!allows_request(&policy, &inline("arn:aws:iam::aws:policy/AdministratorAccess")));
    let as_role = |request: Request| request.with("aws:PrincipalArn", &[&execution]);
    let own_group = format!("arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/lambda/pets-api-authorizer:log-stream:x");
    let own_secret =
        format!("arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:oauth-gateway/pets-api/authorizer-AbCdEf");
    assert!(allows_request(&ceiling, &as_role(Request::new("logs:PutLogEvents", &own_group))));
    assert!(allows_request(&ceiling, &as_role(Request::new("secretsmanager:GetSecretValue", &own_secret))));
    for beyond in [
        Request::new("iam:CreateUser", format!("arn:aws:iam::{ACCOUNT}:user/x")),
        Request::new("iam:PassRole", role("admin")),
        Request::new("lambda:UpdateFunctionCode", format!("arn:aws:lambda:eu-west-1:{ACCOUNT}:function:other")),
        Request::new("s3:GetObject", "arn:aws:s3:::any-bucket/any-key"),
        Request::new(
            "secretsmanager:GetSecretValue",
            format!("arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:prod/db-AbCdEf"),
        ),
        Request::new(
            "logs:GetLogEvents",
            format!("arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/lambda/payments:log-stream:x"),
        ),
        Request::new(
            "logs:PutLogEvents",
            format!("arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/lambda/payments:log-stream:x"),
        ),
    ] {
        assert!(!allows_request(&ceiling, &as_role(beyond.clone())), "the boundary allows the function {beyond}");
    }
}

/// The same refusals by the proxy, for the pipeline's own credentials,
/// judged with the tags the account really holds.
#[tokio::test]
async fn the_pipelines_credentials_cannot_reach_another_stack_or_loosen_a_role() {
    let name = "t-policy-reach";
    let proxy = Proxy::aws_like(Behaviours::none(TIME_SCALE)).await;
    let stack = fresh_stack(name, &stack_yaml(name, ""), &proxy).await;
    must(&stack, &proxy, &["apply"]).await;
    let admin = clients().await;
    let pipeline = clients_as(&proxy.url(), &stack.access_key(Role::Pipeline).expect("key")).await;

    // Another team's API and an untagged one, made by an administrator.
    let regional = aws_sdk_apigateway::types::EndpointConfiguration::builder()
        .types(aws_sdk_apigateway::types::EndpointType::Regional)
        .build();
    let theirs = admin
        .apigateway
        .create_rest_api()
        .name("payments-api")
        .tags("oauth-gateway:stack", "payments")
        .endpoint_configuration(regional.clone())
        .send()
        .await
        .expect("their API");
    let untagged = admin
        .apigateway
        .create_rest_api()
        .name("untagged-api")
        .endpoint_configuration(regional)
        .send()
        .await
        .expect("API");
    let denied = |code: Option<&str>| assert_eq!(code, Some("AccessDeniedException"));
    use aws_sdk_apigateway::error::ProvideErrorMetadata as _;
    for id in [theirs.id().unwrap(), untagged.id().unwrap()] {
        let deleted = pipeline.apigateway.delete_rest_api().rest_api_id(id).send().await;
        denied(deleted.as_ref().err().and_then(|e| e.code()));
        let tagged = pipeline
            .apigateway
            .tag_resource()
            .resource_arn(format!("arn:aws:apigateway:eu-west-1::/restapis/{id}"))
            .tags("oauth-gateway:stack", name)
            .send()
            .await;
        denied(tagged.as_ref().err().and_then(|e| e.code()));
    }
    // Its own API is within reach.
    let own = e2e::deploy::api_id(&admin, &format!("{name}-api")).await;
    assert!(pipeline.apigateway.get_stages().rest_api_id(&own).send().await.is_ok());

    // Another stack's certificate.
    let certificate = admin
        .acm
        .request_certificate()
        .domain_name("api.payments.example.com")
        .tags(aws_sdk_acm::types::Tag::builder().key("oauth-gateway:stack").value("payments").build().unwrap())
        .send()
        .await
        .expect("their certificate");
    let deleted =
        pipeline.acm.delete_certificate().certificate_arn(certificate.certificate_arn().unwrap()).send().await;
    assert_eq!(deleted.as_ref().err().and_then(|e| e.code()), Some("AccessDeniedException"));

    // The execution role loosened: an administrator's policy, its boundary
    // removed or replaced. (An inline policy is allowed: the boundary is the
    // role's ceiling, checked above.)
    let role = format!("{name}-authorizer-exec");
    let everything =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let attach =
        pipeline.iam.attach_role_policy().role_name(&role).policy_arn("arn:aws:iam::aws:policy/AdministratorAccess");
    let unbound = pipeline.iam.delete_role_permissions_boundary().role_name(&role);
    let rebound = pipeline
        .iam
        .put_role_permissions_boundary()
        .role_name(&role)
        .permissions_boundary("arn:aws:iam::aws:policy/AdministratorAccess");
    let codes = [
        attach.send().await.err().and_then(|e| e.code().map(str::to_owned)),
        unbound.send().await.err().and_then(|e| e.code().map(str::to_owned)),
        rebound.send().await.err().and_then(|e| e.code().map(str::to_owned)),
    ];
    assert_eq!(
        codes,
        [Some("AccessDenied".to_owned()), Some("AccessDenied".to_owned()), Some("AccessDenied".to_owned())]
    );
    let still = admin.iam.get_role().role_name(&role).send().await.unwrap().role.unwrap();
    assert!(still.permissions_boundary().is_some(), "the boundary stayed");

    // The boundary itself.
    let boundary = format!("arn:aws:iam::{ACCOUNT}:policy/{name}-role-boundary");
    let version = pipeline.iam.create_policy_version().policy_arn(&boundary).policy_document(everything.to_string());
    assert_eq!(
        version.set_as_default(true).send().await.err().and_then(|e| e.code().map(str::to_owned)).as_deref(),
        Some("AccessDenied")
    );

    admin.apigateway.delete_rest_api().rest_api_id(theirs.id().unwrap()).send().await.expect("cleanup");
    admin.apigateway.delete_rest_api().rest_api_id(untagged.id().unwrap()).send().await.expect("cleanup");
    admin
        .acm
        .delete_certificate()
        .certificate_arn(certificate.certificate_arn().unwrap())
        .send()
        .await
        .expect("cleanup");
    must(&stack, &proxy, &["teardown"]).await;
}

/// Without the operator's bootstrap, the pipeline changes nothing: the plan
/// is blocked, naming the command.
#[tokio::test]
async fn without_the_operators_bootstrap_apply_changes_nothing() {
    let name = "t-policy-unbootstrapped";
    let proxy = Proxy::aws_like(Behaviours::none(TIME_SCALE)).await;
    let stack = StackDir::new(name, &stack_yaml(name, ""));
    stack.auto_bootstrap.store(false, std::sync::atomic::Ordering::SeqCst);
    clean_slate(&stack, &proxy).await;
    let admin = clients().await;
    let boundary = format!("arn:aws:iam::{ACCOUNT}:policy/{name}-role-boundary");
    let _ = admin.iam.delete_policy().policy_arn(&boundary).send().await;
    proxy.reset();
    let blocked = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(blocked.code, 1, "{}", blocked.stdout);
    assert!(
        blocked.stderr.contains(&format!("permissions_boundary {name}-role-boundary is missing"))
            && blocked.stderr.contains("deployer bootstrap"),
        "{}",
        blocked.stderr
    );
    assert_eq!(proxy.changes(), Vec::<String>::new(), "nothing was written");
    // The operator's run, with what `deployer policy --operator` prints; then the pipeline's.
    let bootstrap = deployer_as(Role::Operator, &stack, &proxy.url(), &["bootstrap"], &[]).await;
    assert_eq!(bootstrap.code, 0, "{}\n{}", bootstrap.stdout, bootstrap.stderr);
    assert!(bootstrap.stdout.contains(&format!("+ permissions_boundary {name}-role-boundary")), "{}", bootstrap.stdout);
    must(&stack, &proxy, &["apply"]).await;
    let again = deployer_as(Role::Operator, &stack, &proxy.url(), &["bootstrap"], &[]).await;
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
    let operator = stack.principal(Role::Operator).expect("the operator").judged();
    assert!(
        operator.iter().any(|j| j.request.action == "iam:CreatePolicy")
            && operator.iter().all(|j| j.decision == Decision::Allowed)
    );
    must(&stack, &proxy, &["teardown"]).await;
    assert!(
        admin.iam.get_policy().policy_arn(&boundary).send().await.is_ok(),
        "teardown leaves the operator's boundary"
    );
}
