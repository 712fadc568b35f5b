//! The deployer against API Gateway's own rules on a REST API, which moto
//! does not enforce and the AWS-like layer does (`e2e::aws_like`): one write
//! to an API at a time (409 "concurrent modification"), one variable path
//! part per parent, deployments as snapshots (a stage serves the copy it
//! was deployed with), and creates whose answers are lost after AWS acted.

use std::time::Duration;

use e2e::aws_like::{Behaviours, LostAnswers};
use e2e::deploy::{
    TIME_SCALE, clean_apply_shape, clients, deployer, edge_yaml, env, fresh_stack, must, shape, stack_yaml,
};
use e2e::moto::Proxy;

/// API Gateway's rules on a REST API, and nothing else.
fn api_gateway_rules() -> Behaviours {
    Behaviours { concurrent_writes: true, api_rules: true, ..Behaviours::none(TIME_SCALE) }
}

/// Every call held this long: writes overlap as they do against AWS, where
/// each takes a while.
const CALL_TIME: Duration = Duration::from_millis(20);

/// The ids of the REST APIs called `name`, read straight from moto.
async fn api_ids(name: &str) -> Vec<String> {
    let apis = clients().await.apigateway.get_rest_apis().limit(500).send().await.expect("apis");
    apis.items().iter().filter(|a| a.name() == Some(name)).filter_map(|a| a.id().map(str::to_owned)).collect()
}

/// The first apply of the full stack meets API Gateway's one-write-at-a-time
/// rule and never trips it: writes to the API are serialised while the
/// other services' steps go on.
#[tokio::test]
async fn the_first_apply_never_writes_to_one_api_twice_at_once() {
    let name = "t-rest-serial";
    let proxy = Proxy::aws_like_with_delay(api_gateway_rules(), CALL_TIME).await;
    let stack = fresh_stack(name, &stack_yaml(name, &edge_yaml(name)), &proxy).await;
    proxy.reset();
    must(&stack, &proxy, &["apply"]).await;
    assert_eq!(shape(&clients().await, name).await, clean_apply_shape().await);
    let counts = proxy.behaviour_counts();
    assert_eq!(counts.get("concurrent_modification"), None, "a write overlapped another: {counts:?}");
    assert!(proxy.highest_concurrency() > 1, "other services' calls still run at the same time");
    must(&stack, &proxy, &["teardown"]).await;
    assert_eq!(shape(&clients().await, name).await, Vec::<String>::new());
}

/// Another writer changes the API while the deployer writes to it: API
/// Gateway answers 409 "concurrent modification", and the deployer tries
/// again rather than failing.
#[tokio::test]
async fn a_write_that_meets_another_writer_is_tried_again() {
    let name = "t-rest-contend";
    let proxy = Proxy::aws_like_with_delay(api_gateway_rules(), CALL_TIME).await;
    let stack = fresh_stack(name, &stack_yaml(name, ""), &proxy).await;
    must(&stack, &proxy, &["apply"]).await;
    let api = api_ids(&format!("{name}-api")).await.pop().expect("the API");

    // More routes, written while another pipeline keeps patching the API's
    // description: busy two fifths of the time, however long its writes take
    // on a loaded machine (it rests one and a half times its last write).
    let more_routes = stack_yaml(name, "").replace(
        "stage:\n",
        "    - method: GET\n      path: /owners/{id}\n      scopes: [pets:read]\n      backend: https://backend.example.com/owners/{id}\n    - method: DELETE\n      path: /pets/{id}\n      scopes: [pets:read]\n      backend: https://backend.example.com/pets/{id}\nstage:\n",
    );
    stack.write("stack.yaml", &more_routes);
    let other = e2e::deploy::clients_at(&proxy.url()).await;
    let writing = tokio::spawn(async move {
        let patch = aws_sdk_apigateway::types::PatchOperation::builder()
            .op(aws_sdk_apigateway::types::Op::Replace)
            .path("/description")
            .value("edited by another pipeline")
            .build();
        for _ in 0..2_000 {
            let started = std::time::Instant::now();
            let _ = other.apigateway.update_rest_api().rest_api_id(&api).patch_operations(patch.clone()).send().await;
            tokio::time::sleep(started.elapsed().max(CALL_TIME) * 3 / 2).await;
        }
    });
    let apply = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    writing.abort();
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    let counts = proxy.behaviour_counts();
    assert!(counts.get("concurrent_modification").is_some_and(|n| *n > 0), "no write met another: {counts:?}");
    assert_eq!(must(&stack, &proxy, &["diff", "--detailed-exitcode"]).await.code, 0);
    must(&stack, &proxy, &["teardown"]).await;
}

/// CreateRestApi's answer is lost after API Gateway made the API: the
/// deployer looks for it before asking again, so the account holds one API
/// of the stack, a no-op apply changes nothing and teardown leaves nothing.
#[tokio::test]
async fn a_lost_answer_to_create_rest_api_makes_no_second_api() {
    let name = "t-rest-lost";
    let lost = Behaviours { lost_answers: Some(LostAnswers::first("POST /restapis")), ..api_gateway_rules() };
    let proxy = Proxy::aws_like(lost).await;
    let stack = fresh_stack(name, &stack_yaml(name, &edge_yaml(name)), &proxy).await;
    must(&stack, &proxy, &["apply"]).await;
    assert_eq!(proxy.behaviour_counts().get("lost_answer"), Some(&1), "the answer was lost");
    assert_eq!(api_ids(&format!("{name}-api")).await.len(), 1, "one REST API");
    assert_eq!(shape(&clients().await, name).await, clean_apply_shape().await);
    proxy.reset();
    let again = must(&stack, &proxy, &["apply"]).await;
    assert!(again.stdout.contains("No changes"), "{}", again.stdout);
    assert_eq!(proxy.changes(), Vec::<String>::new());
    must(&stack, &proxy, &["teardown"]).await;
    assert_eq!(shape(&clients().await, name).await, Vec::<String>::new());
}

/// Two REST APIs of the stack's name and tag (as an older deployer left
/// after a lost answer): the one with configuration is the stack's and the
/// empty one goes; when both hold configuration, apply stops naming both,
/// and teardown removes both.
#[tokio::test]
async fn two_apis_of_the_stack_are_told_apart_or_refused_naming_both() {
    let name = "t-rest-twins";
    let api_name = format!("{name}-api");
    let proxy = Proxy::aws_like(api_gateway_rules()).await;
    let stack = fresh_stack(name, &stack_yaml(name, ""), &proxy).await;
    must(&stack, &proxy, &["apply"]).await;
    let kept = api_ids(&api_name).await.pop().expect("the API");
    let aws = clients().await;
    let twin = || {
        aws.apigateway
            .create_rest_api()
            .name(&api_name)
            .tags("oauth-gateway:stack", name)
            .endpoint_configuration(
                aws_sdk_apigateway::types::EndpointConfiguration::builder()
                    .types(aws_sdk_apigateway::types::EndpointType::Regional)
                    .build(),
            )
            .send()
    };
    let empty = twin().await.unwrap().id().unwrap().to_owned();
    let diff = must(&stack, &proxy, &["diff"]).await;
    assert!(diff.stdout.contains(&format!("- rest_api {api_name} ({empty})")), "{}", diff.stdout);
    must(&stack, &proxy, &["apply"]).await;
    assert_eq!(api_ids(&api_name).await, std::slice::from_ref(&kept), "the empty twin went, the configured API stayed");
    assert_eq!(must(&stack, &proxy, &["diff", "--detailed-exitcode"]).await.code, 0);

    // A twin with configuration of its own: only a person can choose.
    let configured = twin().await.unwrap();
    let resource = aws
        .apigateway
        .create_resource()
        .rest_api_id(configured.id().unwrap())
        .parent_id(configured.root_resource_id().unwrap())
        .path_part("orders")
        .send()
        .await
        .unwrap();
    assert!(resource.id().is_some());
    let configured = configured.id().unwrap().to_owned();
    proxy.reset();
    let refused = deployer(&stack, &proxy.url(), &["apply"], &env()).await;
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains(&format!("REST APIs {kept} and {configured} are both named \"{api_name}\"")),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("apply is blocked; nothing was changed"), "{}", refused.stderr);
    assert_eq!(proxy.changes(), Vec::<String>::new());
    must(&stack, &proxy, &["teardown"]).await;
    assert_eq!(api_ids(&api_name).await, Vec::<String>::new(), "teardown removes both");
}

/// A deployment is a snapshot: a route removed from stack.yaml must be gone
/// from the API before the stage's new deployment is made, or the stage
/// keeps serving it. And a path resource no route needs any more goes.
#[tokio::test]
async fn a_removed_route_stops_answering() {
    let name = "t-rest-removed";
    let proxy = Proxy::aws_like(api_gateway_rules()).await;
    let stack = fresh_stack(name, &stack_yaml(name, ""), &proxy).await;
    must(&stack, &proxy, &["apply"]).await;
    let api = api_ids(&format!("{name}-api")).await.pop().expect("the API");
    let served = proxy.served_routes(&api, "prod").expect("the stage serves a deployment");
    assert!(served.contains("POST /pets") && served.contains("GET /pets/{id}"), "{served:?}");

    let without_get = stack_yaml(name, "").replace(
        "    - method: GET\n      path: /pets/{id}\n      scopes: [pets:read]\n      backend: https://backend.example.com/pets/{id}\n      context_headers: { X-Sub: sub, X-Client-Id: client_id }\n",
        "",
    );
    assert_ne!(without_get, stack_yaml(name, ""));
    stack.write("stack.yaml", &without_get);
    let diff = must(&stack, &proxy, &["diff"]).await;
    assert!(diff.stdout.contains("- api_route GET /pets/{id}"), "{}", diff.stdout);
    assert!(diff.stdout.contains("- api_resource /pets/{id}"), "{}", diff.stdout);
    must(&stack, &proxy, &["apply"]).await;
    let served = proxy.served_routes(&api, "prod").expect("the stage serves a deployment");
    assert_eq!(served.into_iter().collect::<Vec<_>>(), ["POST /pets"], "the removed route no longer answers");
    let paths = proxy.resource_paths(&api).expect("the API's tree");
    assert_eq!(paths.into_iter().collect::<Vec<_>>(), ["/", "/pets"], "the empty /pets/{{id}} is gone");
    assert_eq!(must(&stack, &proxy, &["diff", "--detailed-exitcode"]).await.code, 0);
    must(&stack, &proxy, &["teardown"]).await;
}

/// `/pets/{id}` renamed to `/pets/{petId}`: API Gateway allows one variable
/// path part per parent, so the old resource goes before the new one is
/// made, in one apply.
#[tokio::test]
async fn a_renamed_path_parameter_is_applied_in_one_run() {
    let name = "t-rest-rename";
    let proxy = Proxy::aws_like(api_gateway_rules()).await;
    let stack = fresh_stack(name, &stack_yaml(name, &edge_yaml(name)), &proxy).await;
    must(&stack, &proxy, &["apply"]).await;
    let api = api_ids(&format!("{name}-api")).await.pop().expect("the API");

    stack.write("stack.yaml", stack_yaml(name, &edge_yaml(name)).replace("{id}", "{petId}"));
    let apply = must(&stack, &proxy, &["apply"]).await;
    assert!(apply.stdout.contains("+ api_resource /pets/{petId}"), "{}", apply.stdout);
    assert!(apply.stdout.contains("- api_resource /pets/{id}"), "{}", apply.stdout);
    let paths = proxy.resource_paths(&api).expect("the API's tree");
    assert_eq!(paths.into_iter().collect::<Vec<_>>(), ["/", "/pets", "/pets/{petId}"]);
    let served = proxy.served_routes(&api, "prod").expect("the stage serves a deployment");
    assert_eq!(served.into_iter().collect::<Vec<_>>(), ["GET /pets/{petId}", "POST /pets"]);
    assert_eq!(proxy.behaviour_counts().get("api_rules"), None, "no rule was broken on the way");
    assert_eq!(must(&stack, &proxy, &["diff", "--detailed-exitcode"]).await.code, 0);
    must(&stack, &proxy, &["teardown"]).await;
    assert_eq!(shape(&clients().await, name).await, Vec::<String>::new());
}
