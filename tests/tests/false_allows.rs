//! False Allows found by review, one test each: every answer is read the way
//! API Gateway reads it (the policy evaluated by an independent IAM model,
//! `e2e::iam`), for the request itself and for the other requests a cached
//! copy would be replayed to.

use std::sync::Arc;

use authorizer::arn::MethodArn;
use authorizer::{ClaimCheck, ClaimCheckFailure, Decision, ScopeResolver, Status, TokenInfo};
use e2e::events;
use e2e::fixture::{self, assert_refused, claims, decide, jwks_server, jwt_vars, keys, pki};
use e2e::iam;
use serde_json::json;

const PREFIX: &str = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn arn(resource: &str) -> String {
    format!("{PREFIX}{resource}")
}

/// An event for `VERB /path` on stage `prod`, with the standard bound token.
fn event_for(resource: &str, token: &str) -> serde_json::Value {
    let (verb, path) = resource.strip_prefix("prod/").unwrap().split_once('/').unwrap();
    let path = format!("/{path}");
    events::request_for(&arn(resource), verb, &path, &path, Some(&bearer(token)), Some(&pki().client))
}

/// The policy API Gateway receives (and caches) for a decision, if any.
fn answered_policy(decision: &Decision) -> Option<&authorizer::policy::PolicyDocument> {
    match (&decision.result, &decision.deny_response) {
        (Ok(response), _) => Some(&response.policy_document),
        (Err(rejection), Some(response)) if rejection.status() == Status::Forbidden => Some(&response.policy_document),
        _ => None,
    }
}

#[tokio::test]
async fn verb_and_stage_wildcards_never_swallow_path_segments() {
    let server = jwks_server().await;
    let routes = r#"{"routes": [
        {"method": "ANY", "path": "/public/{p}"},
        {"method": "GET", "path": "/pets/{id}", "scopes": ["pets:read"]}
    ], "default": "deny"}"#;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[("ROUTES", routes)])).await;
    let token = keys().rsa.sign(&claims());

    for closed in ["prod/DELETE/admin/users/public/x", "prod/DELETE/x/GET/pets/1", "prod/POST/prod/GET/pets/1"] {
        let decision = decide(&authorizer, &event_for(closed, &token)).await;
        assert_refused(&decision, Status::Forbidden, "route_denied");
    }
    // What API Gateway caches for the open routes must not open the closed ones.
    for open in ["prod/GET/public/x", "prod/DELETE/public/x", "prod/GET/pets/1"] {
        let decision = decide(&authorizer, &event_for(open, &token)).await;
        let policy = decision.result.as_ref().map(|r| &r.policy_document).expect("open route allowed");
        assert!(iam::allows(policy, &arn(open)));
        for closed in ["prod/DELETE/admin/users/public/x", "prod/DELETE/x/GET/pets/1", "prod/POST/prod/GET/pets/1"] {
            assert!(!iam::allows(policy, &arn(closed)), "the answer for {open} allows {closed}: {policy:?}");
        }
    }
}

/// Requires `admin` for GET /pets/42 only; the table requires `pets:read`.
struct AdminForPet42;
impl ScopeResolver for AdminForPet42 {
    fn requirement(&self, request: &MethodArn<'_>) -> Option<authorizer::routes::Requirement> {
        (request.path == "pets/42").then(|| authorizer::routes::Requirement::AllOf(vec!["admin".into()]))
    }
}

/// Lets a token through only on GET /pets/42.
struct OnlyPet42;
impl ClaimCheck for OnlyPet42 {
    fn check(&self, _: &TokenInfo, request: &MethodArn<'_>) -> Result<(), ClaimCheckFailure> {
        if request.path == "pets/42" { Ok(()) } else { Err(ClaimCheckFailure::Forbidden("only pet 42".into())) }
    }
}

#[tokio::test]
async fn with_a_hook_installed_the_policy_allows_nothing_the_hook_did_not_decide() {
    let server = jwks_server().await;
    let token = keys().rsa.sign(&claims()); // pets:read, no admin

    // The resolver denies GET /pets/42; the table alone would allow every
    // GET /pets/{id}. A cached Deny must not carry Allows from the table.
    let resolver =
        fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await.with_scope_resolver(Arc::new(AdminForPet42));
    let decision = decide(&resolver, &event_for("prod/GET/pets/42", &token)).await;
    assert_refused(&decision, Status::Forbidden, "insufficient_scope");
    let policy = answered_policy(&decision).expect("a Deny answer");
    assert!(!iam::allows(policy, &arn("prod/GET/pets/42")));
    assert!(!iam::allows(policy, &arn("prod/GET/pets/43")), "a Deny answer allows another route: {policy:?}");

    // The claim check allows GET /pets/42 only: its Allow must say no more.
    let check = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await.with_claim_check(Arc::new(OnlyPet42));
    let decision = decide(&check, &event_for("prod/GET/pets/42", &token)).await;
    let policy = answered_policy(&decision).expect("an Allow answer");
    assert!(iam::allows(policy, &arn("prod/GET/pets/42")));
    assert!(!iam::allows(policy, &arn("prod/GET/pets/43")), "the hook never saw GET /pets/43: {policy:?}");
    let decision = decide(&check, &event_for("prod/GET/pets/43", &token)).await;
    assert_refused(&decision, Status::Forbidden, "claim_check_denied");
    let policy = answered_policy(&decision).expect("a Deny answer");
    assert!(!iam::allows(policy, &arn("prod/GET/pets/43")));
    assert!(!iam::allows(policy, &arn("prod/GET/pets/44")), "a Deny answer allows another route: {policy:?}");
}

#[tokio::test]
async fn a_method_arn_holding_iam_wildcards_is_never_allowed() {
    let server = jwks_server().await;
    let token = keys().rsa.sign(&claims());
    for shape in ["request", "full"] {
        let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[("POLICY_SHAPE", shape)])).await;
        for resource in ["prod/GET/pets/*", "prod/GET/pets/4?", "prod/GET/pets/${aws:username}"] {
            let decision = decide(&authorizer, &event_for(resource, &token)).await;
            assert!(decision.result.is_err(), "{shape}: {resource} was allowed: {decision:?}");
            assert!(
                answered_policy(&decision).is_none_or(|p| p
                    .statements
                    .iter()
                    .all(|s| s.effect == authorizer::policy::Effect::Deny
                        || s.resources.iter().all(|r| !r.contains(['*', '?'])))),
                "{shape}: {decision:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_token_bound_by_a_method_the_authorizer_cannot_verify_is_refused() {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await;
    for cnf in [
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!({"jwk": {"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}}),
        json!({"x5t#S256": pki().client.thumbprint, "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!("not an object"),
    ] {
        let mut c = claims();
        c["cnf"] = cnf.clone();
        let event = events::request(Some(&bearer(&keys().rsa.sign(&c))), Some(&pki().client));
        let decision = decide(&authorizer, &event).await;
        assert_eq!(decision.status(), Some(Status::Unauthorized), "cnf {cnf}: {decision:?}");
    }
}

/// An Authlete stand-in that behaves as Authlete does: given scopes, it
/// answers FORBIDDEN when the token does not cover them.
async fn authlete_with_token_scopes(scopes: &'static [&'static str]) -> e2e::server::TestServer {
    e2e::server::TestServer::start(move |request| {
        let body: serde_json::Value = serde_json::from_str(&request.body).unwrap_or_default();
        let wanted: Vec<String> = serde_json::from_value(body["scopes"].clone()).unwrap_or_default();
        if wanted.iter().all(|w| scopes.contains(&w.as_str())) {
            e2e::server::Reply::json(json!({
                "action": "OK", "subject": "user-7", "clientId": 42, "scopes": scopes,
                "expiresAt": (e2e::now() + 300) * 1000, "certificateThumbprint": pki().client.thumbprint,
            }))
        } else {
            e2e::server::Reply::json(json!({
                "action": "FORBIDDEN", "subject": "user-7", "scopes": scopes,
                "responseContent": "Bearer error=\"insufficient_scope\"",
            }))
        }
    })
    .await
}

#[tokio::test]
async fn an_authlete_refusal_cached_for_one_route_is_right_on_the_others() {
    let server = authlete_with_token_scopes(&["pets:read"]).await;
    let authorizer = fixture::authorizer(fixture::vars(&[
        ("TOKEN_VALIDATION", "authlete"),
        ("AUTHLETE_BASE_URL", &server.url("")),
        ("AUTHLETE_SERVICE_APIKEY", "k"),
        ("AUTHLETE_SERVICE_APISECRET", "s"),
        ("ROUTES", fixture::ROUTES),
    ]))
    .await;
    let decision = decide(&authorizer, &event_for("prod/POST/pets", "opaque-token")).await;
    assert_eq!(decision.status(), Some(Status::Forbidden), "{decision:?}");
    let policy = answered_policy(&decision).expect("a Deny answer");
    assert!(!iam::allows(policy, &arn("prod/POST/pets")));
    assert!(iam::allows(policy, &arn("prod/GET/pets/1")), "the token may read pets: {policy:?}");
}

#[tokio::test]
async fn a_refused_certificate_is_denied_everywhere_and_nothing_else_is_said() {
    let server = jwks_server().await;
    let allow = format!(r#"[{{"subject":"{}"}}]"#, pki().client.subject_dn);
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[("CLIENT_CERT_ALLOWLIST", &allow)])).await;
    let token = keys().rsa.sign(&claims());
    let mut event = event_for("prod/GET/pets/1", &token);
    event["requestContext"]["identity"]["clientCert"]["subjectDN"] = json!(pki().other_client.subject_dn);
    event["requestContext"]["identity"]["clientCert"]["clientCertPem"] = json!(pki().other_client.pem);
    let decision = decide(&authorizer, &event).await;
    assert_refused(&decision, Status::Forbidden, "client_certificate_not_allowed");
    let policy = answered_policy(&decision).expect("a Deny answer");
    for resource in ["prod/GET/pets/1", "prod/POST/pets", "prod/DELETE/anything/at/all"] {
        assert!(!iam::allows(policy, &arn(resource)));
    }
}
