//! RFC 7662 introspection and Authlete, against real HTTP servers on 127.0.0.1.

use std::time::Duration;

use authorizer::Status;
use e2e::events;
use e2e::fixture::{self, assert_refused, decide, pki, vars};
use e2e::server::{Recorded, Reply, TestServer};
use serde_json::{Value, json};

const TOKEN: &str = "2YotnFZFEjr1zCsicMWpAA";

fn event(cert: bool) -> Value {
    events::request(Some(&format!("Bearer {TOKEN}")), cert.then(|| &pki().client))
}

fn active_response() -> Value {
    json!({
        "active": true,
        "scope": "pets:read",
        "client_id": "client-a",
        "sub": "user-9",
        "exp": e2e::now() + 600,
        "iss": "https://idp.example.com/",
        "aud": ["api://pets", "api://other"],
        "token_type": "Bearer",
        "cnf": { "x5t#S256": pki().client.thumbprint }
    })
}

async fn introspector(server: &TestServer, extra: &[(&str, &str)]) -> authorizer::Authorizer {
    introspector_on(server, extra, authorizer::Clock::system()).await
}

async fn introspector_on(
    server: &TestServer,
    extra: &[(&str, &str)],
    clock: authorizer::Clock,
) -> authorizer::Authorizer {
    let mut v = vars(&[
        ("TOKEN_VALIDATION", "introspection"),
        ("INTROSPECTION_ENDPOINT", &server.url("/oauth2/introspect")),
        ("INTROSPECTION_CLIENT_ID", "resource server"),
        ("INTROSPECTION_CLIENT_SECRET", "s3cret:&"),
        ("ROUTES", fixture::ROUTES),
        ("HTTP_TIMEOUT_MS", "300"),
    ]);
    v.extend(vars(extra));
    fixture::authorizer_on(v, clock).await
}

fn form(request: &Recorded) -> Vec<(String, String)> {
    request
        .body
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let decode =
                |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

#[tokio::test]
async fn active_bound_token_is_allowed_and_cached() {
    let body = active_response();
    let server = TestServer::start(move |_| Reply::json(&body)).await;
    let authorizer = introspector(&server, &[]).await;
    let response = decide(&authorizer, &event(true)).await.result.expect("allowed");
    assert_eq!(response.principal_id, "user-9");
    assert_eq!(response.context.aud, "api://pets api://other");
    assert_eq!(response.context.cert_thumbprint, pki().client.thumbprint);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    let fields = form(&requests[0]);
    assert!(fields.contains(&("token".into(), TOKEN.into())), "{fields:?}");
    assert!(fields.iter().all(|(k, _)| k != "client_secret"), "basic auth keeps the secret out of the body");
    // RFC 6749 §2.3.1: id and secret are form-encoded, then base64'd.
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode("resource%20server:s3cret%3A%26");
    assert_eq!(requests[0].header("authorization"), Some(format!("Basic {expected}").as_str()));

    for _ in 0..3 {
        assert!(decide(&authorizer, &event(true)).await.result.is_ok());
    }
    assert_eq!(server.request_count(), 1, "answers are served from the cache");
    assert_eq!(authorizer.introspection_cache().unwrap().len(), 1);
    // The binding is checked on every request, cached or not.
    assert_refused(&decide(&authorizer, &event(false)).await, Status::Unauthorized, "binding_no_certificate");
}

#[tokio::test]
async fn client_secret_post_puts_credentials_in_the_body() {
    let body = active_response();
    let server = TestServer::start(move |_| Reply::json(&body)).await;
    let authorizer = introspector(&server, &[("INTROSPECTION_AUTH_METHOD", "client_secret_post")]).await;
    assert!(decide(&authorizer, &event(true)).await.result.is_ok());
    let request = &server.requests()[0];
    let fields = form(request);
    assert!(fields.contains(&("client_id".into(), "resource server".into())));
    assert!(fields.contains(&("client_secret".into(), "s3cret:&".into())));
    assert!(request.header("authorization").is_none());
}

#[tokio::test]
async fn audience_and_issuer_are_checked_when_configured() {
    let body = active_response();
    let server = TestServer::start(move |_| Reply::json(&body)).await;
    let checks = [("AUDIENCE", "api://pets"), ("TOKEN_ISSUER", "https://idp.example.com/")];
    let authorizer = introspector(&server, &checks).await;
    assert!(decide(&authorizer, &event(true)).await.result.is_ok());

    for (change, reason) in [
        (json!({"aud": "api://billing"}), "introspection_wrong_audience"),
        (json!({"aud": null}), "introspection_wrong_audience"),
        (json!({"iss": "https://evil.example.com/"}), "introspection_wrong_issuer"),
    ] {
        let mut body = active_response();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        let server = TestServer::start(move |_| Reply::json(&body)).await;
        let authorizer = introspector(&server, &checks).await;
        assert_refused(&decide(&authorizer, &event(true)).await, Status::Unauthorized, reason);
        // A cached answer is checked again, not trusted blindly.
        assert_refused(&decide(&authorizer, &event(true)).await, Status::Unauthorized, reason);
    }
}

#[tokio::test]
async fn inactive_tokens_are_refused_and_negatively_cached() {
    let server = TestServer::start(|_| Reply::json(json!({"active": false}))).await;
    let authorizer = introspector(&server, &[]).await;
    for _ in 0..3 {
        assert_refused(&decide(&authorizer, &event(true)).await, Status::Unauthorized, "token_inactive");
    }
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn active_but_expired_is_refused() {
    let mut body = active_response();
    body["exp"] = json!(e2e::now() - 5);
    let server = TestServer::start(move |_| Reply::json(&body)).await;
    let authorizer = introspector(&server, &[]).await;
    assert_refused(&decide(&authorizer, &event(true)).await, Status::Unauthorized, "token_inactive");
}

#[tokio::test]
async fn cache_never_outlives_exp() {
    let clock = fixture::manual_clock();
    let mut body = active_response();
    body["exp"] = json!(clock.clock().unix_seconds() + 60);
    let server = TestServer::start(move |_| Reply::json(&body)).await;
    let authorizer = introspector_on(&server, &[("INTROSPECTION_CACHE_TTL_SECONDS", "600")], clock.clock()).await;
    assert!(decide(&authorizer, &event(true)).await.result.is_ok());
    clock.advance(Duration::from_secs(59));
    assert!(decide(&authorizer, &event(true)).await.result.is_ok(), "a second before exp: still cached");
    assert_eq!(server.request_count(), 1);
    clock.advance(Duration::from_secs(2));
    // exp has passed: the cached entry is gone and the (stale) server answer
    // is refused because its exp is in the past.
    assert_refused(&decide(&authorizer, &event(true)).await, Status::Unauthorized, "token_inactive");
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn insufficient_scope_is_a_deny() {
    let mut body = active_response();
    body["scope"] = json!("profile");
    let server = TestServer::start(move |_| Reply::json(&body)).await;
    let authorizer = introspector(&server, &[]).await;
    let decision = decide(&authorizer, &event(true)).await;
    assert_refused(&decision, Status::Forbidden, "insufficient_scope");
    assert!(decision.into_lambda_result().unwrap().context.challenge.unwrap().contains("scope=\"pets:read\""));
}

#[tokio::test]
async fn server_down_slow_or_broken_is_a_server_error_and_not_cached() {
    let down = introspector_at("http://127.0.0.1:9/introspect").await;
    assert_refused(&decide(&down, &event(true)).await, Status::ServerError, "introspection_unavailable");

    let slow = TestServer::start(|_| Reply::json(active_response()).delayed(Duration::from_secs(2))).await;
    let authorizer = introspector(&slow, &[]).await;
    assert_refused(&decide(&authorizer, &event(true)).await, Status::ServerError, "introspection_unavailable");

    for reply in [
        || Reply::json("<html>oops</html>"),
        || Reply::status(500, "internal error"),
        || Reply::status(401, "bad client credentials"),
    ] {
        let server = TestServer::start(move |_| reply()).await;
        let authorizer = introspector(&server, &[]).await;
        assert_refused(&decide(&authorizer, &event(true)).await, Status::ServerError, "introspection_unavailable");
        assert_refused(&decide(&authorizer, &event(true)).await, Status::ServerError, "introspection_unavailable");
        assert_eq!(server.request_count(), 2, "failures are not cached");
    }
    let server = TestServer::start(|_| Reply::json(json!({"active": "yes"}))).await;
    let authorizer = introspector(&server, &[]).await;
    assert_refused(&decide(&authorizer, &event(true)).await, Status::ServerError, "introspection_bad_response");
}

#[tokio::test]
async fn a_400_about_our_client_is_an_outage_and_one_about_the_token_a_refusal() {
    // RFC 6749 §5.2: `invalid_client` and `unauthorized_client` say the
    // resource server's own credentials are wrong. Every token would be
    // refused (and cached as refused) for as long as that lasts: it is an
    // outage, 500, and never cached.
    for error in ["invalid_client", "unauthorized_client"] {
        let server = TestServer::start(move |_| {
            Reply::json(json!({"error": error, "error_description": "bad secret"})).with_status(400)
        })
        .await;
        let authorizer = introspector(&server, &[("INTROSPECTION_NEGATIVE_CACHE_TTL_SECONDS", "60")]).await;
        for _ in 0..2 {
            let decision = decide(&authorizer, &event(true)).await;
            assert_eq!(decision.status(), Some(Status::ServerError), "{error}: {decision:?}");
        }
        assert_eq!(server.request_count(), 2, "{error}: not cached");
    }
    // A 400 about the request (a token this server does not introspect) stays a refusal.
    let server = TestServer::start(|_| Reply::json(json!({"error": "invalid_request"})).with_status(400)).await;
    let authorizer = introspector(&server, &[("INTROSPECTION_NEGATIVE_CACHE_TTL_SECONDS", "60")]).await;
    for _ in 0..2 {
        assert_refused(&decide(&authorizer, &event(true)).await, Status::Unauthorized, "introspection_refused_token");
    }
    assert_eq!(server.request_count(), 1, "a refusal is cached for the negative TTL");
}

async fn introspector_at(url: &str) -> authorizer::Authorizer {
    fixture::authorizer(vars(&[
        ("TOKEN_VALIDATION", "introspection"),
        ("INTROSPECTION_ENDPOINT", url),
        ("INTROSPECTION_CLIENT_ID", "rs"),
        ("INTROSPECTION_CLIENT_SECRET", "x"),
        ("HTTP_TIMEOUT_MS", "300"),
    ]))
    .await
}

// ---------------------------------------------------------------- Authlete

async fn authlete(server: &TestServer) -> authorizer::Authorizer {
    fixture::authorizer(vars(&[
        ("TOKEN_VALIDATION", "authlete"),
        ("AUTHLETE_BASE_URL", &server.url("")),
        ("AUTHLETE_SERVICE_APIKEY", "1234567890"),
        ("AUTHLETE_SERVICE_APISECRET", "authlete-secret"),
        ("ROUTES", fixture::ROUTES),
        ("HTTP_TIMEOUT_MS", "300"),
    ]))
    .await
}

#[tokio::test]
async fn authlete_ok_is_allowed_and_gets_scopes_and_certificate() {
    let server = TestServer::start(|_| {
        Reply::json(json!({
            "action": "OK",
            "subject": "user-7",
            "clientId": 5_731_499_020_u64,
            "scopes": ["pets:read", "openid"],
            "expiresAt": (e2e::now() + 300) * 1000,
            "certificateThumbprint": pki().client.thumbprint,
            "resultMessage": "[A056001] The access token is valid."
        }))
    })
    .await;
    let authorizer = authlete(&server).await;
    let response = decide(&authorizer, &event(true)).await.result.expect("allowed");
    assert_eq!(response.principal_id, "user-7");
    assert_eq!(response.context.client_id, "5731499020");
    assert_eq!(response.context.scope, "pets:read openid");

    let request = &server.requests()[0];
    assert_eq!(request.path, "/api/auth/introspection");
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("1234567890:authlete-secret");
    assert_eq!(request.header("authorization"), Some(format!("Basic {basic}").as_str()));
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["token"], TOKEN);
    // The route table decides about scopes, so the policy covers every route.
    assert!(body.get("scopes").is_none(), "{body}");
    assert_eq!(body["clientCertificate"], json!(pki().client.pem));
}

#[tokio::test]
async fn authlete_actions_map_to_deny_401_and_500() {
    const CHALLENGE: &str = "Bearer error=\"insufficient_scope\",error_description=\"[A064302] The access token does not cover the required scope 'pets:read'.\",scope=\"pets:read\"";
    let cases: [(&str, Status, &str); 4] = [
        ("FORBIDDEN", Status::Forbidden, "authlete_forbidden"),
        ("BAD_REQUEST", Status::Unauthorized, "authlete_unauthorized"),
        ("UNAUTHORIZED", Status::Unauthorized, "authlete_unauthorized"),
        ("INTERNAL_SERVER_ERROR", Status::ServerError, "authlete_unavailable"),
    ];
    for (action, status, reason) in cases {
        let server = TestServer::start(move |_| {
            Reply::json(json!({"action": action, "responseContent": CHALLENGE, "resultMessage": "x"}))
        })
        .await;
        let authorizer = authlete(&server).await;
        let decision = decide(&authorizer, &event(true)).await;
        assert_refused(&decision, status, reason);
        if status == Status::Forbidden {
            let deny = decision.into_lambda_result().unwrap();
            assert_eq!(deny.context.challenge.as_deref(), Some(CHALLENGE));
            // Asked without scopes, Authlete's FORBIDDEN is about the token:
            // denied on every route, so a cached copy is right everywhere.
            let policy = serde_json::to_value(&deny.policy_document).unwrap();
            for resource in ["prod/GET/pets/42", "prod/POST/pets", "dev/DELETE/x"] {
                let arn = format!("arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/{resource}");
                assert!(!e2e::iam::iam_allows(&policy, &arn), "{resource}: {policy}");
            }
        }
    }
    let down = fixture::authorizer(vars(&[
        ("TOKEN_VALIDATION", "authlete"),
        ("AUTHLETE_BASE_URL", "http://127.0.0.1:9"),
        ("AUTHLETE_SERVICE_APIKEY", "k"),
        ("AUTHLETE_SERVICE_APISECRET", "s"),
    ]))
    .await;
    assert_refused(&decide(&down, &event(true)).await, Status::ServerError, "authlete_unavailable");
}
