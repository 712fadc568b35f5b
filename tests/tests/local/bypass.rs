//! `deployer local`: nothing gets past what the authorizer decided. A client
//! that forges the headers the backend trusts, walks the path out of its
//! route, or hides a literal behind percent-encoding; a DPoP client calling
//! the URL it was given; stalled and oversized traffic. The backend records
//! every value of every header (not a map), and paths are written byte for
//! byte over TLS, since HTTP clients normalise them before sending.

use std::time::Duration;

use e2e::dpop::DpopKey;
use e2e::local::{LocalEdge, RawAnswer, StackOptions, python_function};
use e2e::server::{Reply, TestServer};
use serde_json::json;

/// `GET path` with a Bearer token, written byte for byte over TLS with the
/// truststore's client certificate.
async fn raw_get(edge: &LocalEdge, path: &str, token: &str) -> RawAnswer {
    let head = format!("GET {path} HTTP/1.1\r\nHost: api.pets.test\r\nAuthorization: Bearer {token}");
    edge.raw_request(&edge.pki.client, &head).await
}

/// The answer's `WWW-Authenticate`, or "".
fn challenge_of(answer: &reqwest::Response) -> String {
    answer.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Every value the backend received for `name`, in order.
fn values(edge: &LocalEdge, request: usize, name: &str) -> Vec<String> {
    let requests = edge.backend.requests();
    let recorded = requests.get(request).unwrap_or_else(|| panic!("the backend got no request #{request}"));
    recorded.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).collect()
}

#[tokio::test]
async fn a_header_named_like_a_mapping_reaches_the_backend_only_from_the_authorizer() {
    let edge = LocalEdge::start(StackOptions::default()).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:read", &pki.client);
    let answer = edge
        .client(Some(&pki.client))
        .get(edge.url("/pets/7"))
        .bearer_auth(&token)
        .header("X-Sub", "admin")
        .header("x-sub", "root")
        .header("X-CLIENT-ID", "evil")
        .header("X-Dpop-Thumbprint", "forged")
        .header("X-Forwarded-For", "10.9.9.9")
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(values(&edge, 0, "x-sub"), ["user-123"], "the mapped value, once");
    assert_eq!(values(&edge, 0, "x-client-id"), ["client-a"]);
    // A Bearer token has no DPoP key: the authorizer says so with "", and
    // the client's value is gone.
    assert_eq!(values(&edge, 0, "x-dpop-thumbprint"), [""]);
    assert_eq!(values(&edge, 0, "x-forwarded-for"), ["10.9.9.9, 127.0.0.1"], "the peer is appended");
    edge.stop().await;
}

#[tokio::test]
async fn an_authorizer_without_a_value_for_a_mapping_still_drops_the_clients_header() {
    // This authorizer's context holds `sub` only.
    let script = python_function("context-sub-only", "");
    let edge = LocalEdge::start(StackOptions { bootstrap: Some(script.clone()), ..StackOptions::default() }).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:read", &pki.client);
    let answer = edge
        .client(Some(&pki.client))
        .get(edge.url("/pets/7"))
        .bearer_auth(&token)
        .header("X-Client-Id", "evil")
        .header("X-Sub", "admin")
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(values(&edge, 0, "x-sub"), ["script"]);
    assert_eq!(values(&edge, 0, "x-client-id"), Vec::<String>::new(), "no value from the authorizer, none at all");
    edge.stop().await;
    let _ = std::fs::remove_dir_all(script.parent().expect("directory"));
}

#[tokio::test]
async fn paths_with_dot_segments_are_refused_before_routing() {
    let edge = LocalEdge::start(StackOptions { more_routes: true, ..StackOptions::default() }).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:read pets:write pets:admin", &pki.client);
    for path in [
        "/v1/pets/..",
        "/v1/pets/%2e%2e",
        "/v1/pets/%2E",
        "/v1/pets/./7",
        "/v1/pets/..%2Fadmin",
        "/v1/pets/7/../../admin",
        "/v1/files/a/../../admin",
        "/v1/files/a%2F..%2F..%2Fadmin",
        "/v1/files/.%2e/x",
    ] {
        let answer = raw_get(&edge, path, &token).await;
        assert_eq!(answer.status, 400, "GET {path}: {answer:?}");
        assert!(answer.head.to_ascii_lowercase().contains("x-amzn-errortype: badrequestexception"), "{answer:?}");
    }
    assert_eq!(edge.backend.request_count(), 0, "{:?}", edge.backend.requests());
    assert_eq!(edge.invocations().await, 0, "refused before the authorizer");
    edge.stop().await;
}

#[tokio::test]
async fn a_slash_encoded_inside_a_parameter_matches_no_route() {
    let edge = LocalEdge::start(StackOptions::default()).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:read", &pki.client);
    let answer = raw_get(&edge, "/v1/pets/7%2Fadmin", &token).await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(answer.body.contains("Missing Authentication Token"), "{answer:?}");
    assert_eq!(edge.backend.request_count(), 0);
    edge.stop().await;
}

#[tokio::test]
async fn a_percent_encoded_literal_is_held_to_the_literal_routes_rule() {
    let edge = LocalEdge::start(StackOptions { more_routes: true, ..StackOptions::default() }).await;
    let pki = edge.pki.clone();
    let reader = edge.token("pets:read", &pki.client);
    for path in ["/v1/pets/mine", "/v1/pets/%6Dine", "/v1/pets/%6d%69%6e%65"] {
        let answer = raw_get(&edge, path, &reader).await;
        assert_eq!(answer.status, 403, "GET {path} needs pets:admin: {answer:?}");
        assert!(answer.head.contains("insufficient_scope"), "{answer:?}");
    }
    assert_eq!(edge.backend.request_count(), 0);
    let admin = edge.token("pets:read pets:admin", &pki.client);
    let answer = raw_get(&edge, "/v1/pets/%6Dine", &admin).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(edge.backend.requests()[0].path, "/pets/mine", "the backend gets the route the authorizer judged");
    edge.stop().await;
}

#[tokio::test]
async fn the_backend_gets_the_one_canonical_form_of_the_path() {
    let edge = LocalEdge::start(StackOptions { more_routes: true, ..StackOptions::default() }).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:read", &pki.client);
    for (sent, received) in [
        ("/v1/files/a%20b/c.txt", "/files/a%20b/c.txt"),
        ("/v1/files/%61/b", "/files/a/b"),
        ("/v1/pets/%37", "/pets/7"),
        ("/v1/pets/caf%C3%A9", "/pets/caf%C3%A9"),
    ] {
        let answer = raw_get(&edge, sent, &token).await;
        assert_eq!(answer.status, 200, "GET {sent}: {answer:?}");
        let requests = edge.backend.requests();
        assert_eq!(requests.last().map(|r| r.path.as_str()), Some(received), "GET {sent}");
    }
    edge.stop().await;
}

fn dpop_options() -> StackOptions {
    StackOptions { environment: vec![("DPOP", "allowed".into())], ..StackOptions::default() }
}

/// A token bound to the edge's client certificate and to `key`.
fn dpop_bound_token(edge: &LocalEdge, key: &DpopKey) -> String {
    let mut claims = e2e::fixture::claims();
    claims["cnf"] = json!({"x5t#S256": edge.pki.client.thumbprint, "jkt": key.thumbprint()});
    e2e::fixture::keys().rsa.sign(&claims)
}

#[tokio::test]
async fn a_dpop_proof_for_the_url_the_client_called_is_accepted_and_one_for_another_url_refused() {
    let edge = LocalEdge::start(dpop_options()).await;
    let pki = edge.pki.clone();
    let key = DpopKey::generate(jsonwebtoken::Algorithm::ES256);
    let token = dpop_bound_token(&edge, &key);
    let called = edge.url("/pets/7");
    assert!(called.starts_with("https://api.pets.test:") && called.ends_with("/v1/pets/7"), "{called}");
    let client = edge.client(Some(&pki.client));
    let send = |proof: String| {
        client.get(edge.url("/pets/7")).header("Authorization", format!("DPoP {token}")).header("DPoP", proof).send()
    };
    let answer = send(key.proof("GET", &called, &token)).await.expect("an answer");
    assert_eq!(answer.status().as_u16(), 200, "the URL the client called, port included");
    assert_eq!(values(&edge, 0, "x-dpop-thumbprint"), [key.thumbprint()]);
    for other in [
        "https://api.pets.test/v1/pets/7".to_owned(),
        called.replace("/pets/7", "/pets/8"),
        called.replace("api.pets.test", "api.other.test"),
    ] {
        let answer = send(key.proof("GET", &other, &token)).await.expect("an answer");
        assert_eq!(answer.status().as_u16(), 401, "a proof for {other}");
        let challenge = challenge_of(&answer);
        assert!(challenge.contains("DPoP"), "{challenge}");
    }
    assert_eq!(edge.backend.request_count(), 1);
    edge.stop().await;
}

/// `--dpop-replay-table`: the proofs every execution environment accepts
/// are recorded in one DynamoDB table (moto's here), so a proof replayed to
/// a new environment (the first one ended, as Lambda retires instances) is
/// refused; without it, the new environment's empty memory accepts it.
#[tokio::test]
async fn with_a_replay_table_a_new_execution_environment_refuses_a_proof_an_earlier_one_accepted() {
    let table = format!("local-dpop-replay-{}", std::process::id());
    let clients = e2e::deploy::clients().await;
    e2e::deploy::create_replay_table(&clients, &table).await;
    let aws = vec![
        ("AWS_ENDPOINT_URL", e2e::moto::endpoint()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
    ];

    for shared in [true, false] {
        let options = StackOptions { deployer_environment: aws.clone(), ..dpop_options() };
        let arguments: &[&str] = if shared { &["--dpop-replay-table", &table] } else { &[] };
        let edge = LocalEdge::start_with(options, arguments).await;
        let key = DpopKey::generate(jsonwebtoken::Algorithm::ES256);
        let token = dpop_bound_token(&edge, &key);
        let client = edge.client(Some(&edge.pki.client));
        let send = |proof: &str| {
            let request = client.get(edge.url("/pets/7")).header("Authorization", format!("DPoP {token}"));
            request.header("DPoP", proof.to_owned()).send()
        };
        let proof = key.proof("GET", &edge.url("/pets/7"), &token);
        assert_eq!(send(&proof).await.expect("an answer").status().as_u16(), 200, "first use (shared: {shared})");
        assert_eq!(send(&proof).await.expect("an answer").status().as_u16(), 401, "same environment");
        assert_eq!(edge.end_execution_environments(), 1, "one environment served both");
        let replayed = send(&proof).await.expect("an answer").status().as_u16();
        assert_eq!(replayed, if shared { 401 } else { 200 }, "a new environment (shared: {shared})");
        let fresh = key.proof("GET", &edge.url("/pets/7"), &token);
        assert_eq!(send(&fresh).await.expect("an answer").status().as_u16(), 200, "a new proof");
        edge.stop().await;
    }
    let items = clients.dynamodb.scan().table_name(&table).send().await.expect("scan");
    assert_eq!(items.count(), 2, "the two proofs accepted with the table, recorded in it");
}

#[tokio::test]
async fn env_overrides_meet_the_checks_the_stack_file_meets() {
    // The authorizer cache is on and keyed by the certificate: fine until
    // DPoP is switched on, when a cached answer would accept a replayed proof.
    let cached = StackOptions { cache_ttl_seconds: 300, ..StackOptions::default() };
    let refused = LocalEdge::try_start(cached.clone(), &["--env", "DPOP=allowed"]).await;
    let stderr = refused.err().expect("--env DPOP=allowed on a cached stack must be refused");
    assert!(stderr.contains("authorizer.cache_ttl_seconds") && stderr.contains("DPoP"), "{stderr}");
    let refused = LocalEdge::try_start(cached.clone(), &["--env", "TOKEN_VALIDATION=maybe"]).await;
    let stderr = refused.err().expect("an invalid value must be refused");
    assert!(stderr.contains("authorizer.environment.TOKEN_VALIDATION"), "{stderr}");
    let refused = LocalEdge::try_start(cached.clone(), &["--env", "NOT_A_SETTING=1"]).await;
    let stderr = refused.err().expect("an unknown setting must be refused");
    assert!(stderr.contains("NOT_A_SETTING") && stderr.contains("is not a setting the authorizer reads"), "{stderr}");
    // REALM and ROUTES come from the api section, not from --env either.
    let refused = LocalEdge::try_start(cached.clone(), &["--env", "REALM=elsewhere"]).await;
    let stderr = refused.err().expect("REALM is written from api.realm");
    assert!(stderr.contains("authorizer.environment.REALM") && stderr.contains("api.realm"), "{stderr}");
    // A valid override applies: with another audience the same token is refused.
    let edge = LocalEdge::start_with(cached, &["--env", "AUDIENCE=api://elsewhere"]).await;
    let token = edge.token("pets:read", &edge.pki.client);
    let answer = edge.client(Some(&edge.pki.client)).get(edge.url("/pets/7")).bearer_auth(&token).send().await;
    let answer = answer.expect("an answer");
    assert_eq!(answer.status().as_u16(), 401, "a token for api://pets, which other tests show is accepted");
    edge.stop().await;
}

fn scaled() -> StackOptions {
    // 10 s header and 30 s body timeouts become 0.5 s and 1.5 s.
    StackOptions { deployer_environment: vec![("DEPLOYER_TIME_SCALE", "0.05".into())], ..StackOptions::default() }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let edge = LocalEdge::start(scaled()).await;
    let pki = edge.pki.clone();
    let mut stream = edge.raw_connection(&pki.client).await;
    stream.write_all(b"GET /v1/pets/7 HTTP/1.1\r\nHost: api.pets.test\r\nX-Slow: ").await.expect("write");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(8), stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection is still open after 8 s (header timeout 0.5 s)");
    assert_eq!(edge.backend.request_count(), 0);
    edge.stop().await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_408_and_never_forwarded() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let edge = LocalEdge::start(scaled()).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:write", &pki.client);
    let mut stream = edge.raw_connection(&pki.client).await;
    let head = format!(
        "POST /v1/pets HTTP/1.1\r\nHost: api.pets.test\r\nAuthorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n0123456789"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(8), stream.read_to_end(&mut answer)).await;
    assert!(ended.is_ok(), "no answer within 8 s (body timeout 1.5 s)");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(edge.backend.request_count(), 0);
    edge.stop().await;
}

#[tokio::test]
async fn a_backend_answer_over_ten_megabytes_is_not_passed_on() {
    let large = TestServer::start(|_| Reply::status(200, &"x".repeat(10 * 1024 * 1024 + 1))).await;
    let small = TestServer::start(|_| Reply::status(200, "small")).await;
    for (backend, expected) in [(&large, 502), (&small, 200)] {
        let url = backend.url("");
        let edge = LocalEdge::start_with(StackOptions::default(), &["--backend", url.as_str()]).await;
        let pki = edge.pki.clone();
        let token = edge.token("pets:read", &pki.client);
        let answer = edge.client(Some(&pki.client)).get(edge.url("/pets/7")).bearer_auth(&token).send().await;
        let answer = answer.expect("an answer");
        assert_eq!(answer.status().as_u16(), expected, "backend at {url}");
        edge.stop().await;
    }
}

/// A route literal with `:` or `@` (API Gateway allows both) is judged by
/// its own scopes, however the client spells it: the method ARN spells it
/// as the route table does. Before, the ARN held `pets%3Apurge`, no route
/// applied, and a default that lets `pets:read` through decided.
#[tokio::test]
async fn a_literal_with_a_colon_or_an_at_sign_is_judged_by_its_own_route() {
    let options =
        StackOptions { more_routes: true, default_rule: "{ scopes: [pets:read] }", ..StackOptions::default() };
    let edge = LocalEdge::start(options).await;
    let pki = edge.pki.clone();
    let reader = edge.token("pets:read", &pki.client);
    for path in ["/v1/pets:purge", "/v1/pets%3Apurge", "/v1/pets%3apurge"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: api.pets.test\r\nAuthorization: Bearer {reader}\r\nContent-Length: 0"
        );
        let answer = edge.raw_request(&pki.client, &head).await;
        assert_eq!(answer.status, 403, "POST {path} needs pets:admin: {answer:?}");
        assert!(answer.head.contains("insufficient_scope"), "{answer:?}");
    }
    let me = raw_get(&edge, "/v1/users/@me", &reader).await;
    assert_eq!(me.status, 403, "GET /users/@me needs users:self: {me:?}");
    assert!(edge.backend.requests().is_empty(), "nothing reached the backend");

    let admin = edge.token("pets:admin", &pki.client);
    let head = format!(
        "POST /v1/pets:purge HTTP/1.1\r\nHost: api.pets.test\r\nAuthorization: Bearer {admin}\r\nContent-Length: 0"
    );
    assert_eq!(edge.raw_request(&pki.client, &head).await.status, 200);
    let own = edge.token("users:self", &pki.client);
    assert_eq!(raw_get(&edge, "/v1/users/%40me", &own).await.status, 200, "an encoded @ is the same route");
    let paths: Vec<String> = edge.backend.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/purge", "/me"]);
    edge.stop().await;
}

/// `X_Sub` is `X-Sub` to many servers (CGI, nginx with underscores on,
/// most frameworks): a client's underscore twin of a mapped header is
/// dropped as the header itself is.
#[tokio::test]
async fn an_underscore_twin_of_a_mapped_header_never_reaches_the_backend() {
    let edge = LocalEdge::start(StackOptions::default()).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:read", &pki.client);
    let head = format!(
        "GET /v1/pets/7 HTTP/1.1\r\nHost: api.pets.test\r\nAuthorization: Bearer {token}\r\nX_Sub: admin\r\nx_client_id: evil\r\nX-Client_Id: evil2"
    );
    let answer = edge.raw_request(&pki.client, &head).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let requests = edge.backend.requests();
    let names: Vec<String> = requests[0].headers.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    assert!(!names.iter().any(|n| n.contains('_')), "an underscore twin was forwarded: {names:?}");
    assert_eq!(values(&edge, 0, "x-sub"), ["user-123"]);
    assert_eq!(values(&edge, 0, "x-client-id"), ["client-a"]);
    edge.stop().await;
}

/// The integration's own query string stays and the client's follows it,
/// as API Gateway's HTTP proxy does; the client's query is never logged.
#[tokio::test]
async fn the_backends_query_is_kept_and_the_clients_appended_but_never_logged() {
    let edge = LocalEdge::start(StackOptions { more_routes: true, ..StackOptions::default() }).await;
    let pki = edge.pki.clone();
    let token = edge.token("pets:read", &pki.client);
    let answer = raw_get(&edge, "/v1/search?q=private-term-6c1d&page=2", &token).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(edge.backend.requests()[0].path, "/search?api_key=k1&q=private-term-6c1d&page=2");
    assert_eq!(raw_get(&edge, "/v1/search", &token).await.status, 200);
    assert_eq!(edge.backend.requests()[1].path, "/search?api_key=k1");
    let logged = edge.wait_for_log(2).await;
    let text = format!("{logged:?}\n{}", edge.stderr());
    assert!(!text.contains("private-term-6c1d"), "the client's query was logged:\n{text}");
    edge.stop().await;
}
