//! `deployer local` end to end: the real deployer and authorizer binaries,
//! real certificates and signed tokens, a JWKS server and a backend on
//! 127.0.0.1, and an HTTPS client presenting client certificates. Each test
//! covers one step of API Gateway's order and would fail without it.

use std::net::IpAddr;
use std::time::Duration;

use e2e::local::{LocalEdge, StackOptions, python_function, scratch_directory};
use serde_json::Value;

async fn get(
    edge: &LocalEdge,
    client: &reqwest::Client,
    path: &str,
    token: Option<&str>,
) -> (u16, Value, Option<String>) {
    let mut request = client.get(edge.url(path));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.expect("an HTTP answer");
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, challenge)
}

#[tokio::test]
async fn the_handshake_needs_a_current_certificate_of_the_truststore() {
    let edge = LocalEdge::start(StackOptions::default()).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:read", &pki.client);
    for (who, certificate) in
        [("no certificate", None), ("expired", Some(&pki.expired_client)), ("another CA", Some(&pki.foreign_client))]
    {
        let client = edge.client(certificate);
        let sent = client.get(edge.url("/pets/7")).bearer_auth(&token).send().await;
        assert!(sent.is_err(), "{who}: the handshake must fail, got {:?}", sent.map(|r| r.status()));
    }
    let refused = edge.wait_for_log(3).await;
    assert_eq!(refused.iter().filter(|l| l["tls"] == "refused").count(), 3, "{refused:?}");
    assert_eq!(edge.backend.request_count(), 0);
    let (status, _, _) = get(&edge, &edge.client(Some(&pki.client)), "/pets/7", Some(&token)).await;
    assert_eq!(status, 200, "the truststore's current certificate gets through");
    edge.stop().await;
}

#[tokio::test]
async fn an_address_outside_the_allowlist_is_403_from_the_waf() {
    let edge = LocalEdge::start(StackOptions::default()).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:read", &pki.client);
    let outside: IpAddr = "127.0.0.2".parse().expect("ip");
    let client = edge.client_from(Some(&pki.client), Some(outside));
    let (status, body, _) = get(&edge, &client, "/pets/7", Some(&token)).await;
    assert_eq!((status, body["message"].as_str()), (403, Some("Forbidden")));
    let logged = edge.requests_logged();
    assert_eq!(logged[0]["sourceIp"], "127.0.0.2");
    assert_eq!((edge.invocations().await, edge.backend.request_count()), (0, 0));
    edge.stop().await;
}

#[tokio::test]
async fn an_unknown_route_is_403_missing_authentication_token() {
    let edge = LocalEdge::start(StackOptions::default()).await;
    let pki = edge.pki.clone();
    let client = edge.client(Some(&pki.client));
    let token = edge.token("pets:read pets:write", &pki.client);
    for path in ["/cats/7", "/pets/7/toys", "/pets"] {
        let (status, body, _) = get(&edge, &client, path, Some(&token)).await;
        assert_eq!((status, body["message"].as_str()), (403, Some("Missing Authentication Token")), "GET {path}");
    }
    let deleted = client.delete(edge.url("/pets/7")).bearer_auth(&token).send().await.expect("answer");
    assert_eq!(deleted.status().as_u16(), 403, "DELETE has no route");
    // Outside the custom domain's base path.
    let outside =
        client.get(edge.url("/pets/7").replace("/v1/", "/v2/")).bearer_auth(&token).send().await.expect("answer");
    assert_eq!(outside.status().as_u16(), 403);
    assert_eq!((edge.invocations().await, edge.backend.request_count()), (0, 0));
    edge.stop().await;
}

#[tokio::test]
async fn a_missing_identity_source_is_401_without_invoking_the_authorizer() {
    let edge = LocalEdge::start(StackOptions::default()).await;
    let pki = edge.pki.clone();
    let client = edge.client(Some(&pki.client));
    let (status, body, challenge) = get(&edge, &client, "/pets/7", None).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("Unauthorized")));
    assert!(challenge.as_deref().is_some_and(|c| c.contains("realm=\"pets\"")), "{challenge:?}");
    let empty = client.get(edge.url("/pets/7")).header("Authorization", "").send().await.expect("answer");
    assert_eq!(empty.status().as_u16(), 401, "an empty identity source counts as missing");
    edge.wait_for_log(2).await;
    assert_eq!(edge.invocations().await, 0, "API Gateway answers 401 itself: {:?}", edge.requests_logged());
    edge.stop().await;
}

#[tokio::test]
async fn a_bound_token_with_its_certificate_reaches_the_backend_with_the_mapped_headers() {
    let edge = LocalEdge::start(StackOptions::default()).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:read", &pki.client);
    let (status, body, _) = get(&edge, &edge.client(Some(&pki.client)), "/pets/7?verbose=1", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "/pets/7?verbose=1", "path parameter and query passed on");
    let headers = &body["headers"];
    assert_eq!(headers["x-sub"], "user-123");
    assert_eq!(headers["x-client-id"], "client-a");
    assert_eq!(headers["x-client-cert-thumbprint"], pki.client.thumbprint.as_str());
    assert_eq!(headers["authorization"], format!("Bearer {token}"), "HTTP_PROXY passes the request's headers on");
    let line = &edge.wait_for_log(1).await[0];
    assert_eq!((line["status"].as_u64(), line["route"].as_str()), (Some(200), Some("/pets/{id}")));
    assert_eq!(line["authorizerCacheHit"], false);
    assert!(line["authorizerLatencyMs"].is_number() && line["integrationLatencyMs"].is_number(), "{line}");
    assert_eq!(line["principalId"], "user-123");
    let everything = format!("{:?}{}", edge.access_log(), edge.stderr());
    assert!(!everything.contains(&token), "the token must never be logged");
    assert!(!everything.contains("BEGIN CERTIFICATE"), "nor the certificate");
    edge.stop().await;
}

#[tokio::test]
async fn a_stolen_token_with_another_certificate_is_401_and_one_without_the_scope_403() {
    let edge = LocalEdge::start(StackOptions::default()).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:read", &pki.client);
    let (status, _, challenge) = get(&edge, &edge.client(Some(&pki.other_client)), "/pets/7", Some(&token)).await;
    assert_eq!(status, 401, "same CA, other certificate: the binding fails");
    assert!(challenge.is_some_and(|c| c.starts_with("Bearer")));
    let narrow = edge.token("profile", &pki.client);
    let (status, body, challenge) = get(&edge, &edge.client(Some(&pki.client)), "/pets/7", Some(&narrow)).await;
    assert_eq!(status, 403);
    assert_eq!(body["Message"], "User is not authorized to access this resource with an explicit deny");
    let challenge = challenge.expect("the authorizer's challenge on the 403");
    assert!(challenge.contains("insufficient_scope") && challenge.contains("pets:read"), "{challenge}");
    assert_eq!(edge.backend.request_count(), 0);
    edge.stop().await;
}

/// A Lambda function in Python speaking the Runtime API: `behaviour` runs
/// after it takes an event, then it answers Allow for the event's ARN.
#[tokio::test]
async fn an_authorizer_that_crashes_is_500_and_the_next_request_starts_it_again() {
    let crash_once = "    if not os.path.exists(marker):\n        open(marker, 'w').close()\n        os._exit(3)";
    let script = python_function("crash", crash_once);
    let options = StackOptions { bootstrap: Some(script.clone()), ..StackOptions::default() };
    let edge = LocalEdge::start(options).await;
    let pki = edge.pki.clone();
    let client = edge.client(Some(&pki.client));
    let token = edge.token("pets:read", &pki.client);
    let (status, body, _) = get(&edge, &client, "/pets/7", Some(&token)).await;
    assert_eq!((status, &body), (500, &serde_json::json!({"message": null})));
    let (status, body, _) = get(&edge, &client, "/pets/7", Some(&token)).await;
    assert_eq!(status, 200, "a new execution environment: {body}");
    assert_eq!(body["headers"]["x-sub"], "script");
    let logged = edge.requests_logged();
    assert!(logged[0]["note"].as_str().is_some_and(|n| n.contains("exited")), "{:?}", logged[0]);
    edge.stop().await;
    let _ = std::fs::remove_dir_all(script.parent().expect("directory"));
}

#[tokio::test]
async fn without_bootstrap_the_stack_runs_the_bootstrap_its_code_zip_holds() {
    let script = python_function("zipped", "    pass");
    let zip_path = script.with_file_name("authorizer.zip");
    std::fs::write(&zip_path, e2e::deploy::code_zip(&std::fs::read(&script).expect("script"))).expect("zip");
    let edge = LocalEdge::start(StackOptions { code_zip: Some(zip_path), ..StackOptions::default() }).await;
    let pki = edge.pki.clone();
    let (status, body, _) =
        get(&edge, &edge.client(Some(&pki.client)), "/pets/7", Some(&edge.token("pets:read", &pki.client))).await;
    assert_eq!((status, body["headers"]["x-sub"].as_str()), (200, Some("script")), "the zipped function answered");
    edge.stop().await;
    let _ = std::fs::remove_dir_all(script.parent().expect("directory"));
}

#[tokio::test]
async fn concurrent_requests_run_in_as_many_execution_environments_as_allowed() {
    // Each environment answers with its own process id, after holding the
    // invocation long enough for the other request to arrive.
    let script = python_function("pids", "    sub = str(os.getpid())\n    time.sleep(1)");
    for (concurrency, environments) in [("1", 1), ("2", 2)] {
        let options = StackOptions { bootstrap: Some(script.clone()), ..StackOptions::default() };
        let edge = LocalEdge::start_with(options, &["--concurrency", concurrency]).await;
        let pki = edge.pki.clone();
        let client = edge.client(Some(&pki.client));
        let token = edge.token("pets:read", &pki.client);
        let (a, b) =
            tokio::join!(get(&edge, &client, "/pets/7", Some(&token)), get(&edge, &client, "/pets/8", Some(&token)));
        assert_eq!((a.0, b.0), (200, 200));
        let pids: std::collections::BTreeSet<String> =
            [a.1, b.1].iter().map(|body| body["headers"]["x-sub"].as_str().unwrap_or_default().to_owned()).collect();
        assert_eq!(pids.len(), environments, "--concurrency {concurrency}: {pids:?}");
        edge.stop().await;
    }
    let _ = std::fs::remove_dir_all(script.parent().expect("directory"));
}

#[tokio::test]
async fn an_unreachable_backend_is_500_internal_server_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let backend = format!("http://{closed}");
    let edge = LocalEdge::start_with(StackOptions::default(), &["--backend", &backend]).await;
    let pki = edge.pki.clone();
    let (status, body, _) =
        get(&edge, &edge.client(Some(&pki.client)), "/pets/7", Some(&edge.token("pets:read", &pki.client))).await;
    assert_eq!((status, body["message"].as_str()), (500, Some("Internal server error")));
    let line = &edge.wait_for_log(1).await[0];
    assert!(line["note"].as_str().is_some_and(|n| n.contains("integration failed")), "{line}");
    edge.stop().await;
}

#[tokio::test]
async fn an_authorizer_over_its_timeout_is_500() {
    // The function never answers (an hour): any answer at all is the edge's
    // own, at the 1 s timeout; it then stops the function, as Lambda does.
    let script = python_function("slow", "    time.sleep(3600)");
    let options = StackOptions { bootstrap: Some(script.clone()), timeout_seconds: 1, ..StackOptions::default() };
    let edge = LocalEdge::start(options).await;
    let pki = edge.pki.clone();
    let (status, _, _) =
        get(&edge, &edge.client(Some(&pki.client)), "/pets/7", Some(&edge.token("pets:read", &pki.client))).await;
    assert_eq!(status, 500);
    assert!(edge.requests_logged()[0]["note"].as_str().is_some_and(|n| n.contains("timed out")));
    edge.stop().await;
    let _ = std::fs::remove_dir_all(script.parent().expect("directory"));
}

#[tokio::test]
async fn an_authorizer_init_error_is_shown_and_requests_get_500() {
    // `--env` values are checked like the file's, so a bad setting never gets
    // this far: this function reports an init error the way a runtime does.
    let directory = scratch_directory("init-error");
    std::fs::create_dir_all(&directory).expect("directory");
    let script = directory.join("bootstrap");
    std::fs::write(
        &script,
        r#"#!/usr/bin/env python3
import json, os, urllib.request
url = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/init/error"
body = json.dumps({"errorType": "InitError", "errorMessage": "JWKS_URI: must be https"}).encode()
urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST")).read()
"#,
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let edge = LocalEdge::start(StackOptions { bootstrap: Some(script), ..StackOptions::default() }).await;
    let pki = edge.pki.clone();
    let (status, _, _) =
        get(&edge, &edge.client(Some(&pki.client)), "/pets/7", Some(&edge.token("pets:read", &pki.client))).await;
    assert_eq!(status, 500);
    let stderr = edge.stderr();
    assert!(stderr.contains("authorizer init error") && stderr.contains("JWKS_URI"), "{stderr}");
    edge.stop().await;
    let _ = std::fs::remove_dir_all(&directory);
}

#[tokio::test]
async fn the_cache_answers_without_invoking_until_the_ttl_and_checks_each_route() {
    let options = StackOptions { cache_ttl_seconds: 2, ..StackOptions::default() };
    let edge = LocalEdge::start(options).await;
    let pki = edge.pki.clone();
    let client = edge.client(Some(&pki.client));
    let token = edge.token("pets:read", &pki.client);
    assert_eq!(get(&edge, &client, "/pets/7", Some(&token)).await.0, 200);
    assert_eq!(get(&edge, &client, "/pets/8", Some(&token)).await.0, 200);
    assert_eq!(edge.invocations().await, 1, "the second request is a cache hit: {:?}", edge.requests_logged());
    assert_eq!(edge.requests_logged()[1]["authorizerCacheHit"], true);
    // The cached policy is evaluated against this request's ARN: no pets:write.
    let posted = client.post(edge.url("/pets")).bearer_auth(&token).body("{}").send().await.expect("answer");
    assert_eq!(posted.status().as_u16(), 403);
    assert_eq!(edge.invocations().await, 1, "still from the cache");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(get(&edge, &client, "/pets/7", Some(&token)).await.0, 200);
    assert_eq!(edge.invocations().await, 2, "expired after the TTL");
    edge.stop().await;
}

#[tokio::test]
async fn a_cache_keyed_by_the_token_alone_replays_an_allow_to_another_certificate() {
    // Why the deployer refuses such a stack unless told otherwise.
    let unsafe_cache = StackOptions {
        identity_sources: vec!["method.request.header.Authorization"],
        cache_ttl_seconds: 60,
        ..StackOptions::default()
    };
    let refused = LocalEdge::try_start(unsafe_cache.clone(), &[]).await.err().expect("the stack is refused");
    assert!(refused.contains("authorizer.cache_ttl_seconds") && refused.contains("replay"), "{refused}");

    let edge = LocalEdge::start(StackOptions { allow_cache_replay_with_binding: true, ..unsafe_cache }).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:read", &pki.client);
    assert_eq!(get(&edge, &edge.client(Some(&pki.client)), "/pets/7", Some(&token)).await.0, 200);
    let (status, _, _) = get(&edge, &edge.client(Some(&pki.other_client)), "/pets/7", Some(&token)).await;
    assert_eq!(status, 200, "the stolen token is replayed to another certificate from the cache");
    assert_eq!(edge.invocations().await, 1);
    edge.stop().await;

    let keyed = StackOptions { cache_ttl_seconds: 60, ..StackOptions::default() };
    let edge = LocalEdge::start(keyed).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:read", &pki.client);
    assert_eq!(get(&edge, &edge.client(Some(&pki.client)), "/pets/7", Some(&token)).await.0, 200);
    let (status, _, _) = get(&edge, &edge.client(Some(&pki.other_client)), "/pets/7", Some(&token)).await;
    assert_eq!(status, 401, "keyed by the certificate too, the other certificate is a cache miss and fails binding");
    edge.stop().await;
}

#[tokio::test]
async fn requests_over_the_stage_rate_get_429() {
    // One token every 20 s: however slow the machine, the third request finds none.
    let options = StackOptions { throttling: Some((0.05, 2)), ..StackOptions::default() };
    let edge = LocalEdge::start(options).await;
    let pki = edge.pki.clone();
    let client = edge.client(Some(&pki.client));
    let token = edge.token("pets:read", &pki.client);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, body, _) = get(&edge, &client, "/pets/7", Some(&token)).await;
        if status == 429 {
            assert_eq!(body["message"], "Too Many Requests");
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..2], &[200, 200], "the burst: {statuses:?}");
    assert_eq!(&statuses[2..], &[429, 429, 429], "over the rate: {statuses:?}");
    edge.stop().await;
}

#[tokio::test]
async fn what_the_edge_does_not_reproduce_is_said_at_start() {
    let edge = LocalEdge::start(StackOptions::default()).await;
    let stderr = edge.stderr();
    for expected in ["note: account 123456789012", "security policy", "at most 1 authorizer execution environment"] {
        assert!(stderr.contains(expected), "{expected:?} missing from:\n{stderr}");
    }
    edge.stop().await;
}
