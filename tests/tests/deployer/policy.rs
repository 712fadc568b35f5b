//! `deployer policy` against what the deployer really sends: every call the
//! proxy records while a stack is applied from nothing, changed (a new
//! truststore, a new secret, new code), pruned (a route and the WAF taken
//! out) and torn down is mapped to what IAM authorises it as
//! (`e2e::iam_actions`) and judged against the policy printed for the stack
//! file of that run, by the tests' own evaluator (`e2e::iam`). An operation
//! the policy misses fails the test, named.

use std::collections::BTreeSet;

use aws_sdk_route53::types::ResourceRecordSet;
use e2e::aws_like::Behaviours;
use e2e::deploy::{SECRET, StackDir, TIME_SCALE, clients, code_zip, deployer, edge_yaml, stack_yaml, tiny_bootstrap};
use e2e::iam::{Request, allows_request};
use e2e::iam_actions::{Account, requests};
use e2e::moto::Proxy;

const ACCOUNT: &str = "123456789012";

/// The policy `deployer policy --json` prints for the stack as it is now.
async fn printed_policy(stack: &StackDir, proxy: &Proxy) -> serde_json::Value {
    let outcome = deployer(stack, &proxy.url(), &["policy", "--json", "--account", ACCOUNT], &[]).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    serde_json::from_str(&outcome.stdout).expect("a policy document")
}

/// Runs `args` through the proxy and returns every IAM request its calls
/// needed that `policy` does not allow (and records the actions used).
async fn denied_during(
    stack: &StackDir,
    proxy: &Proxy,
    policy: &serde_json::Value,
    args: &[&str],
    secret: &str,
    used: &mut BTreeSet<String>,
) -> Vec<String> {
    proxy.reset();
    let outcome = deployer(stack, &proxy.url(), args, &[("INTROSPECTION_SECRET", secret)]).await;
    assert_eq!(outcome.code, 0, "{args:?}:\n{}\n{}", outcome.stdout, outcome.stderr);
    let account = Account { id: ACCOUNT, region: "eu-west-1" };
    let mut denied: BTreeSet<String> = BTreeSet::new();
    let calls = proxy.calls();
    assert!(!calls.is_empty(), "{args:?} made calls");
    for call in &calls {
        for request in requests(call, &account) {
            used.insert(request.action.clone());
            if !allows_request(policy, &request) {
                denied.insert(format!("{args:?}: {} ({request})", call.service_operation));
            }
        }
    }
    denied.into_iter().collect()
}

#[tokio::test]
async fn every_call_of_apply_rotation_pruning_and_teardown_is_allowed_by_the_printed_policy() {
    let name = "t-policy";
    let aws = clients().await;
    let zone_name = format!("{name}.example.com");
    let zone = aws
        .route53
        .create_hosted_zone()
        .name(&zone_name)
        .caller_reference(format!("{name}-{}", std::process::id()))
        .send()
        .await
        .expect("hosted zone");
    let zone = zone.hosted_zone().expect("zone").id().trim_start_matches("/hostedzone/").to_owned();
    let edge = edge_yaml(name).replace("  base_path: v1\n", &format!("  base_path: v1\n  hosted_zone_id: {zone}\n"));
    // An access log whose account role the deployer may set: the account's
    // setting and its role are judged too.
    let full = stack_yaml(name, &format!("  access_log: {{ account_role: create }}\n{edge}"));
    // The layer models the domain as AWS does (status, warnings), so the truststore
    // rotation is carried out as on AWS.
    let proxy = Proxy::aws_like(Behaviours::none(TIME_SCALE)).await;
    let stack = StackDir::new(name, &full);
    let policy = printed_policy(&stack, &proxy).await;
    let mut used = BTreeSet::new();
    let mut denied = Vec::new();

    // Without --account the policy is the caller's account's: the same.
    let outcome = deployer(&stack, &proxy.url(), &["policy", "--json"], &[]).await;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&outcome.stdout).ok(), Some(policy.clone()));

    // Plans and outputs need only what reads.
    let read_only =
        deployer(&stack, &proxy.url(), &["policy", "--json", "--read-only", "--account", ACCOUNT], &[]).await;
    let read_only: serde_json::Value = serde_json::from_str(&read_only.stdout).expect("a read-only policy");
    for args in [&["teardown"][..], &["apply"]] {
        denied.extend(denied_during(&stack, &proxy, &policy, args, SECRET, &mut used).await);
    }
    for args in [&["diff"][..], &["output"]] {
        denied.extend(denied_during(&stack, &proxy, &read_only, args, SECRET, &mut used).await);
    }
    // Rotation: a new truststore, a new secret, new code, another network allowed.
    let full = full.replace("allow: [203.0.113.0/24,", "allow: [203.0.113.0/24, 198.51.100.0/24,");
    stack.write("stack.yaml", &full);
    let policy = printed_policy(&stack, &proxy).await;
    stack.write("truststore.pem", e2e::certs::Ca::new("Rotated Clients CA").pem);
    let mut code = tiny_bootstrap();
    code.extend_from_slice(b"\0new build");
    stack.write("code.zip", code_zip(&code));
    let rotated = denied_during(&stack, &proxy, &policy, &["apply"], "a-rotated-secret", &mut used).await;
    denied.extend(rotated);

    // Pruning: a route and the WAF taken out, under the pruned file's policy.
    let pruned = full
        .replace("    - method: POST\n      path: /pets\n      backend: https://backend.example.com/pets\n", "")
        .replace("waf:\n  allow: [203.0.113.0/24, 198.51.100.0/24, \"2001:db8::/32\"]\n", "");
    assert_ne!(pruned, full);
    stack.write("stack.yaml", &pruned);
    let pruned_policy = printed_policy(&stack, &proxy).await;
    for args in [&["apply"][..], &["teardown"]] {
        denied.extend(denied_during(&stack, &proxy, &pruned_policy, args, "a-rotated-secret", &mut used).await);
    }
    assert!(denied.is_empty(), "calls the printed policy does not allow:\n{}", denied.join("\n"));

    // The flows used what matters most, so the check above is not vacuous.
    for action in [
        "iam:PassRole",
        "apigateway:SetWebACL",
        "apigateway:AddCertificateToDomain",
        "s3:GetObjectVersion",
        "route53:ChangeResourceRecordSets",
        "wafv2:DeleteWebACL",
        "lambda:UpdateFunctionCode",
        "wafv2:UpdateIPSet",
    ] {
        assert!(used.contains(action), "{action} was never needed: {used:?}");
    }
    // What the policy allows and the flows never needed stays small and known.
    let allowed: BTreeSet<String> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| s["Action"].as_array().expect("actions").iter().map(|a| a.as_str().expect("action").to_owned()))
        .collect();
    let unused: Vec<&String> = allowed.difference(&used).collect();
    eprintln!("policy: {} actions allowed, {} used by the flows; unused: {unused:?}", allowed.len(), used.len());
    let records = aws.route53.list_resource_record_sets().hosted_zone_id(&zone).send().await.expect("records");
    let types: Vec<&str> =
        records.resource_record_sets().iter().map(ResourceRecordSet::r#type).map(|t| t.as_str()).collect();
    assert_eq!(types.iter().filter(|t| ["NS", "SOA"].contains(t)).count(), types.len(), "torn down: {types:?}");
}

#[test]
fn a_request_outside_the_stack_is_refused_by_its_policy() {
    // The printed policy is judged by the same evaluator the test above
    // uses: here, that it refuses what the stack does not own.
    let path = e2e::workspace_root().join("stack.yaml");
    let stack = deployer::stack::Stack::load(&path, &|_| Some("x".into())).expect("the example stack");
    let target = deployer::policy::Target { account: ACCOUNT, region: "eu-west-1", partition: "aws" };
    let policy = serde_json::to_value(deployer::policy::document(&stack, &target)).expect("policy");
    let role = |name: &str| format!("arn:aws:iam::{ACCOUNT}:role/{name}");
    let pass = |role: String, service: &str| Request::new("iam:PassRole", role).with("iam:PassedToService", &[service]);
    assert!(allows_request(&policy, &pass(role("pets-api-authorizer-exec"), "lambda.amazonaws.com")));
    for refused in [
        pass(role("pets-api-authorizer-exec"), "ec2.amazonaws.com"),
        pass(role("admin"), "lambda.amazonaws.com"),
        Request::new("iam:AttachRolePolicy", role("pets-api-authorizer-exec"))
            .with("iam:PolicyARN", &["arn:aws:iam::aws:policy/AdministratorAccess"]),
        Request::new("lambda:UpdateFunctionCode", format!("arn:aws:lambda:eu-west-1:{ACCOUNT}:function:other")),
        Request::new("acm:RequestCertificate", "*").with("acm:DomainNames", &["evil.example.net"]),
        Request::new("s3:PutObject", "arn:aws:s3:::someone-elses-bucket/key"),
        Request::new("apigateway:DELETE", "arn:aws:apigateway:eu-west-1::/domainnames/other.example.com"),
        Request::new("wafv2:DeleteIPSet", format!("arn:aws:wafv2:eu-west-1:{ACCOUNT}:regional/ipset/other/1")),
    ] {
        assert!(!allows_request(&policy, &refused), "allowed: {refused}");
    }
}
