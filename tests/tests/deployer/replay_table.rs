//! `authorizer.dpop_replay_store: dynamodb` (the `dpop_replay_table` kind)
//! against moto: the table's whole life (created with its key, on-demand
//! capacity, TTL and tag; a second apply changes nothing; TTL turned off
//! behind the deployer's back is turned on again, a run later when
//! DynamoDB's hour between TTL changes says so; pruned when the stack
//! stops asking; torn down), the function told where it is, and the
//! execution role given `dynamodb:PutItem` on it and nothing else. The
//! deployer runs as the pipeline, with the policy `deployer policy` prints,
//! judged by the proxy as IAM would.
//!
//! moto differs from DynamoDB in time: its tables are `ACTIVE` at once and
//! its tags read back at once, where DynamoDB keeps a new table `CREATING`
//! for seconds (refusing changes meanwhile) and lists its tags late; the
//! AWS-like layer in front of moto does what DynamoDB does
//! (`dynamodb_settling`), and the test checks the kind met it. TTL is
//! `ENABLED` at once in moto too (DynamoDB: `ENABLING`, up to an hour),
//! which the kind counts as on either way.

use aws_sdk_dynamodb::types::{KeyType, TimeToLiveSpecification, TimeToLiveStatus};
use e2e::aws_like::Behaviours;
use e2e::deploy::{Clients, StackDir, TIME_SCALE, clients, deployer, env, planned, snapshot, stack_yaml, step};
use e2e::moto::Proxy;
use serde_json::Value;

/// The example stack with DPoP on (and, as DPoP needs, no authorizer cache),
/// and the shared replay store when `shared`.
fn yaml(name: &str, shared: bool) -> String {
    let store = if shared { "  dpop_replay_store: dynamodb\n" } else { "" };
    stack_yaml(name, "")
        .replace("    CERT_BINDING: required\n", "    CERT_BINDING: required\n    DPOP: allowed\n")
        .replace("  cache_ttl_seconds: 300\n", &format!("  cache_ttl_seconds: 0\n{store}"))
}

/// The function's DPOP_REPLAY_STORE, if set.
async fn store_variable(aws: &Clients, name: &str) -> Option<String> {
    let function = aws.lambda.get_function().function_name(format!("{name}-authorizer")).send().await.ok()?;
    let environment = function.configuration()?.environment()?.variables()?.clone();
    environment.get("DPOP_REPLAY_STORE").cloned()
}

/// The execution role's inline policies, by name.
async fn inline_policies(aws: &Clients, name: &str) -> Vec<(String, Value)> {
    let role = format!("{name}-authorizer-exec");
    let names = aws.iam.list_role_policies().role_name(&role).send().await.expect("role policies");
    let mut policies = Vec::new();
    for policy in names.policy_names() {
        let read = aws.iam.get_role_policy().role_name(&role).policy_name(policy).send().await.expect("policy");
        let text = percent_encoding::percent_decode_str(read.policy_document()).decode_utf8_lossy().into_owned();
        policies.push((policy.clone(), serde_json::from_str(&text).expect("a policy document")));
    }
    policies
}

#[tokio::test]
async fn the_replay_table_lives_as_the_stack_says_and_the_function_may_only_record_in_it() {
    let name = "t-replay";
    let table = format!("{name}-dpop-replay");
    let stack = StackDir::new(name, &yaml(name, true));
    let proxy = Proxy::aws_like(Behaviours { dynamodb_settling: true, ..Behaviours::none(TIME_SCALE) }).await;
    let aws = clients().await;
    assert_eq!(deployer(&stack, &proxy.url(), &["teardown"], &env()).await.code, 0);
    let (url, variables) = (proxy.url(), env());
    let apply = |shared: bool| {
        stack.write("stack.yaml", yaml(name, shared));
        deployer(&stack, &url, &["apply", "--json"], &variables)
    };
    let action = |stdout: &str| {
        let steps = planned(stdout);
        step(&steps, &format!("dpop_replay_table {table}")).map(|s| (s.action.clone(), s.fields.clone()))
    };

    // Created, with what the store needs.
    let created = apply(true).await;
    assert_eq!(created.code, 0, "{}\n{}", created.stdout, created.stderr);
    assert_eq!(action(&created.stdout).map(|(a, _)| a).as_deref(), Some("create"));
    let described = aws.dynamodb.describe_table().table_name(&table).send().await.expect("the table exists");
    let made = described.table().expect("a table");
    let key: Vec<(&str, &KeyType)> = made.key_schema().iter().map(|k| (k.attribute_name(), k.key_type())).collect();
    assert_eq!(key, [("proof", &KeyType::Hash)]);
    // (moto reports the billing mode as requested: the request is the fact.)
    let create_call = proxy.calls().into_iter().find(|c| c.service_operation == "CreateTable").expect("CreateTable");
    let sent: Value = serde_json::from_str(&create_call.request.body).expect("JSON");
    assert_eq!(sent["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(sent["Tags"], serde_json::json!([{"Key": "oauth-gateway:stack", "Value": name}]));
    let ttl = aws.dynamodb.describe_time_to_live().table_name(&table).send().await.expect("TTL");
    let ttl = ttl.time_to_live_description().expect("a TTL description");
    assert_eq!(
        (ttl.time_to_live_status(), ttl.attribute_name()),
        (Some(&TimeToLiveStatus::Enabled), Some("expires_at"))
    );
    assert!(snapshot(&aws, name).await.contains(&format!("dpop_replay_table {table} tagged")));
    // What DynamoDB does after a create was met and waited out: the table
    // read CREATING, and its tag read back late.
    let met = proxy.behaviour_counts();
    assert!(met.get("dynamodb_creating").is_some_and(|n| *n >= 2), "{met:?}");
    assert!(met.get("dynamodb_tags_lag").is_some_and(|n| *n >= 1), "{met:?}");
    assert_eq!(met.get("dynamodb_in_use"), None, "no change sent to a table still CREATING: {met:?}");
    assert_eq!(store_variable(&aws, name).await, Some(format!("dynamodb:{table}")));

    // The execution role: PutItem on this table, nothing else of DynamoDB.
    let arn = made.table_arn().expect("an ARN").to_owned();
    let policies = inline_policies(&aws, name).await;
    let record = policies.iter().find(|(n, _)| n == "record-dpop-proofs").map(|(_, p)| p).expect("its inline policy");
    let statements = record["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 1, "{record}");
    assert_eq!(
        (&statements[0]["Effect"], &statements[0]["Action"]),
        (&Value::from("Allow"), &serde_json::json!(["dynamodb:PutItem"]))
    );
    assert_eq!(statements[0]["Resource"], serde_json::json!([arn]));
    let dynamodb_grants = policies
        .iter()
        .flat_map(|(_, p)| p["Statement"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["Action"].to_string().contains("dynamodb"))
        .count();
    assert_eq!(dynamodb_grants, 1, "one DynamoDB grant in all the role's inline policies");

    // A second apply: nothing to do.
    let again = apply(true).await;
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert_eq!(planned(&again.stdout), [], "no changes");

    // TTL turned off behind the deployer's back (straight to moto: as if an
    // hour after the create, when DynamoDB allows it).
    let off = TimeToLiveSpecification::builder().enabled(false).attribute_name("expires_at").build().unwrap();
    aws.dynamodb.update_time_to_live().table_name(&table).time_to_live_specification(off).send().await.unwrap();
    // Within DynamoDB's hour of the last TTL change, turning it on again is
    // refused: the step is left for a later run (exit 3), saying why.
    let refused = apply(true).await;
    assert_eq!(refused.code, 3, "{}\n{}", refused.stdout, refused.stderr);
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(said.contains("TTL was changed less than an hour ago"), "{said}");
    assert!(proxy.behaviour_counts().get("dynamodb_ttl_interval").is_some_and(|n| *n >= 1));
    // An hour later (a layer whose clock of TTL changes starts afresh): shown, and turned on again.
    let later = Proxy::aws_like(Behaviours { dynamodb_settling: true, ..Behaviours::none(TIME_SCALE) }).await;
    let restored = deployer(&stack, &later.url(), &["apply", "--json"], &variables).await;
    assert_eq!(restored.code, 0, "{}\n{}", restored.stdout, restored.stderr);
    let (updated, fields) = action(&restored.stdout).expect("a step for the table");
    assert_eq!(updated, "update");
    assert_eq!(fields, [("time_to_live".to_owned(), "(none)".to_owned(), "expires_at".to_owned())]);
    let ttl = aws.dynamodb.describe_time_to_live().table_name(&table).send().await.expect("TTL");
    assert_eq!(ttl.time_to_live_description().and_then(|d| d.time_to_live_status()), Some(&TimeToLiveStatus::Enabled));

    // The stack stops asking: the function stops using it, then it is deleted.
    let pruned = apply(false).await;
    assert_eq!(pruned.code, 0, "{}\n{}", pruned.stdout, pruned.stderr);
    assert_eq!(action(&pruned.stdout).map(|(a, _)| a).as_deref(), Some("delete"));
    assert!(aws.dynamodb.describe_table().table_name(&table).send().await.is_err(), "the table is gone");
    assert_eq!(store_variable(&aws, name).await, None);
    assert!(inline_policies(&aws, name).await.iter().all(|(n, _)| n != "record-dpop-proofs"));
    let updates = proxy.calls().into_iter().map(|c| c.service_operation).collect::<Vec<_>>();
    let configuration = updates.iter().rposition(|o| o.contains("/configuration")).expect("the function updated");
    let deleted = updates.iter().rposition(|o| o == "DeleteTable").expect("DeleteTable");
    assert!(configuration < deleted, "the function stops using the table before it is deleted: {updates:?}");
    assert_eq!(planned(&apply(false).await.stdout), [], "no changes");

    // Asked for again, then torn down with the rest.
    assert_eq!(apply(true).await.code, 0);
    assert!(aws.dynamodb.describe_table().table_name(&table).send().await.is_ok());
    let teardown = deployer(&stack, &proxy.url(), &["teardown"], &env()).await;
    assert_eq!(teardown.code, 0, "{}\n{}", teardown.stdout, teardown.stderr);
    assert!(aws.dynamodb.describe_table().table_name(&table).send().await.is_err(), "torn down");
    assert!(!snapshot(&aws, name).await.iter().any(|l| l.starts_with("dpop_replay_table")));
}
