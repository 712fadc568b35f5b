//! JWT validation end to end through the library: real keys, a real JWKS
//! server on 127.0.0.1, real client certificates; every attack in its own test.

use std::sync::Arc;

use authorizer::Status;
use authorizer::policy::Effect;
use e2e::events::{self, METHOD_ARN};
use e2e::fixture::{self, assert_refused, claims, decide, jwks_server, jwt_vars, keys, pki};
use e2e::keys::{SigningKey, raw_jws};
use e2e::server::{Reply, TestServer};
use jsonwebtoken::{Algorithm, Header};
use serde_json::json;

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn valid_bound_tokens_of_every_algorithm_are_allowed() {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await;
    let k = keys();
    for key in [&k.rsa, &k.ps, &k.ec256, &k.ec384, &k.ed] {
        let token = key.sign(&claims());
        let event = events::request(Some(&bearer(&token)), Some(&pki().client));
        let decision = decide(&authorizer, &event).await;
        let response = decision.result.as_ref().unwrap_or_else(|e| panic!("{:?}: {e}", key.alg));
        assert_eq!(response.principal_id, "user-123");
        assert_eq!(response.context.client_id, "client-a");
        assert_eq!(response.context.scope, "pets:read profile");
        assert_eq!(response.context.iss, fixture::ISSUER);
        assert_eq!(response.context.aud, fixture::AUDIENCE);
        assert_eq!(response.context.cert_thumbprint, pki().client.thumbprint);
        assert!(response.context.challenge.is_none());
    }
    assert_eq!(server.request_count(), 1, "the JWKS is fetched once, at init");
}

#[tokio::test]
async fn full_policy_allows_readable_routes_and_denies_the_others() {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await;
    let token = keys().rsa.sign(&claims());
    let decision = decide(&authorizer, &events::request(Some(&bearer(&token)), Some(&pki().client))).await;
    let policy = serde_json::to_value(&decision.result.unwrap().policy_document).unwrap();
    let prefix = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/";
    assert_eq!(
        policy,
        json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [format!("{prefix}prod/GET/pets/*")]},
                {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [format!("{prefix}prod/POST/pets")]}
            ]
        })
    );
}

#[tokio::test]
async fn request_policy_shape_names_only_the_method_arn() {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[("POLICY_SHAPE", "request")])).await;
    let token = keys().ec256.sign(&claims());
    let response =
        decide(&authorizer, &events::request(Some(&bearer(&token)), Some(&pki().client))).await.result.unwrap();
    assert_eq!(response.policy_document.statements.len(), 1);
    assert_eq!(response.policy_document.statements[0].effect, Effect::Allow);
    assert_eq!(response.policy_document.statements[0].resources, [METHOD_ARN]);
}

#[tokio::test]
async fn token_payload_is_accepted() {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await;
    let mut unbound = claims();
    unbound.as_object_mut().unwrap().remove("cnf");
    let decision = decide(&authorizer, &events::token(&bearer(&keys().rsa.sign(&unbound)))).await;
    assert!(decision.result.is_ok(), "{decision:?}");
    // A TOKEN event has no certificate, so a bound token cannot be used with it.
    let decision = decide(&authorizer, &events::token(&bearer(&keys().rsa.sign(&claims())))).await;
    assert_refused(&decision, Status::Unauthorized, "binding_no_certificate");
}

#[tokio::test]
async fn missing_scope_is_a_deny_with_an_insufficient_scope_challenge() {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[("REALM", "pets-api")])).await;
    let token = keys().rsa.sign(&claims());
    let arn = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/POST/pets";
    let event = events::request_for(arn, "POST", "/pets", "/pets", Some(&bearer(&token)), Some(&pki().client));
    let decision = decide(&authorizer, &event).await;
    assert_refused(&decision, Status::Forbidden, "insufficient_scope");
    let deny = decision.into_lambda_result().expect("a Deny is an answer, not an error");
    let challenge = deny.context.challenge.as_deref().unwrap();
    assert!(challenge.starts_with("Bearer realm=\"pets-api\", error=\"insufficient_scope\""), "{challenge}");
    assert!(challenge.ends_with("scope=\"pets:write\""), "{challenge}");
    assert_eq!(deny.principal_id, "user-123");
    let deny_statement = deny.policy_document.statements.iter().find(|s| s.effect == Effect::Deny).unwrap();
    assert!(deny_statement.resources.iter().any(|r| r == arn));
}

#[tokio::test]
async fn closed_routes_are_denied_even_with_a_valid_token() {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await;
    let token = keys().rsa.sign(&claims());
    let arn = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/DELETE/pets/1";
    let event = events::request_for(arn, "DELETE", "/pets/{id}", "/pets/1", Some(&bearer(&token)), Some(&pki().client));
    assert_refused(&decide(&authorizer, &event).await, Status::Forbidden, "route_denied");
}

/// Runs one token through the standard setup and expects `status`/`reason`.
async fn refused(token: &str, status: Status, reason: &str) {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await;
    let decision = decide(&authorizer, &events::request(Some(&bearer(token)), Some(&pki().client))).await;
    assert_refused(&decision, status, reason);
    assert!(decision.into_lambda_result().is_err(), "never an Allow or Deny answer");
}

#[tokio::test]
async fn alg_none_is_refused() {
    let token = raw_jws(&json!({"alg": "none", "kid": "rsa-1"}), &claims(), b"");
    refused(&token, Status::Unauthorized, "jwt_malformed").await;
    // Case variants have slipped past libraries that compared "none" exactly.
    let token = raw_jws(&json!({"alg": "NONE", "kid": "rsa-1"}), &claims(), b"");
    refused(&token, Status::Unauthorized, "jwt_malformed").await;
}

#[tokio::test]
async fn hmac_signed_with_the_public_key_is_refused() {
    // The classic key-confusion attack: HS256 keyed with the RSA public key
    // an attacker downloaded from the JWKS.
    let public_pem = {
        let jwk = &keys().rsa.jwk;
        serde_json::to_vec(jwk).unwrap()
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let token = jsonwebtoken::encode(&header, &claims(), &jsonwebtoken::EncodingKey::from_secret(&public_pem)).unwrap();
    refused(&token, Status::Unauthorized, "jwt_algorithm_not_accepted").await;
}

#[tokio::test]
async fn signature_by_an_unpublished_key_with_a_published_kid_is_refused() {
    refused(&keys().attacker.sign(&claims()), Status::Unauthorized, "jwt_bad_signature").await;
}

#[tokio::test]
async fn kid_of_a_key_of_another_type_is_refused() {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("ec-256".into());
    refused(&keys().rsa.sign_with(header, &claims()), Status::Unauthorized, "jwks_alg_mismatch").await;
}

#[tokio::test]
async fn tampered_payload_and_signature_are_refused() {
    let token = keys().rsa.sign(&claims());
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut escalated = claims();
    escalated["scope"] = json!("pets:read pets:write admin");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let original_payload = parts[1].clone();
    parts[1] = b64.encode(escalated.to_string());
    refused(&parts.join("."), Status::Unauthorized, "jwt_bad_signature").await;

    parts[1] = original_payload;
    let mut signature = b64.decode(&parts[2]).unwrap();
    signature[10] ^= 0x01;
    parts[2] = b64.encode(signature);
    refused(&parts.join("."), Status::Unauthorized, "jwt_bad_signature").await;
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let now = e2e::now();
    let mut c = claims();
    c["exp"] = json!(now - 120);
    refused(&keys().rsa.sign(&c), Status::Unauthorized, "token_expired").await;
    let mut c = claims();
    c["nbf"] = json!(now + 600);
    refused(&keys().rsa.sign(&c), Status::Unauthorized, "token_not_yet_valid").await;
    let mut c = claims();
    c["iat"] = json!(now + 600);
    refused(&keys().rsa.sign(&c), Status::Unauthorized, "jwt_iat_in_future").await;
}

#[tokio::test]
async fn leeway_absorbs_small_clock_skew() {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[("JWT_LEEWAY_SECONDS", "60")])).await;
    let mut c = claims();
    c["exp"] = json!(e2e::now() - 20);
    let decision =
        decide(&authorizer, &events::request(Some(&bearer(&keys().rsa.sign(&c))), Some(&pki().client))).await;
    assert!(decision.result.is_ok(), "{decision:?}");
}

#[tokio::test]
async fn missing_exp_wrong_iss_and_wrong_aud_are_refused() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    refused(&keys().rsa.sign(&c), Status::Unauthorized, "jwt_missing_claim").await;
    let mut c = claims();
    c["iss"] = json!("https://evil.example.com/");
    refused(&keys().rsa.sign(&c), Status::Unauthorized, "jwt_wrong_issuer").await;
    let mut c = claims();
    c["iss"] = json!([fixture::ISSUER]);
    refused(&keys().rsa.sign(&c), Status::Unauthorized, "jwt_wrong_issuer").await;
    let mut c = claims();
    c["aud"] = json!("api://other");
    refused(&keys().rsa.sign(&c), Status::Unauthorized, "jwt_wrong_audience").await;
    let mut c = claims();
    c.as_object_mut().unwrap().remove("aud");
    refused(&keys().rsa.sign(&c), Status::Unauthorized, "jwt_missing_claim").await;
}

#[tokio::test]
async fn jku_x5u_and_jwk_headers_are_never_followed() {
    let trap = TestServer::start(|_| Reply::json(e2e::keys::jwks(&[&keys().attacker]))).await;
    let attacker = &keys().attacker;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("attacker-key".into());
    header.jku = Some(trap.url("/jwks"));
    refused(&attacker.sign_with(header, &claims()), Status::Unauthorized, "jwks_unknown_kid").await;

    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("attacker-key-2".into());
    header.x5u = Some(trap.url("/cert.pem"));
    refused(&attacker.sign_with(header, &claims()), Status::Unauthorized, "jwks_unknown_kid").await;

    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    header.jwk = Some(attacker.jwk.clone());
    refused(&attacker.sign_with(header, &claims()), Status::Unauthorized, "jwt_bad_signature").await;

    assert_eq!(trap.request_count(), 0, "the authorizer must never fetch a URL a token names");
}

#[tokio::test]
async fn unknown_crit_is_refused() {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    header.crit = Some(vec!["exp".into()]);
    refused(&keys().rsa.sign_with(header, &claims()), Status::Unauthorized, "jwt_unsupported_crit").await;
}

#[tokio::test]
async fn huge_tokens_and_garbage_are_refused() {
    let huge = "a".repeat(9000);
    refused(&huge, Status::Unauthorized, "token_too_large").await;
    refused("bm90.LWEtand0!!.Kg", Status::Unauthorized, "malformed_credentials").await;
    refused("bm90-a-jwt.at.all", Status::Unauthorized, "jwt_malformed").await;
    refused("onlyonepart", Status::Unauthorized, "jwt_malformed").await;
    let header_not_json = format!("{}.e30.AA", "eyJub3QganNvbg");
    refused(&header_not_json, Status::Unauthorized, "jwt_malformed").await;
}

#[tokio::test]
async fn at_jwt_typ_is_enforced_when_configured() {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[("JWT_REQUIRE_AT_JWT_TYP", "true")])).await;
    let event = |token: &str| events::request(Some(&bearer(token)), Some(&pki().client));
    let plain = keys().rsa.sign(&claims());
    assert_refused(&decide(&authorizer, &event(&plain)).await, Status::Unauthorized, "jwt_typ_not_at_jwt");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    header.typ = Some("at+jwt".into());
    let typed = keys().rsa.sign_with(header, &claims());
    assert!(decide(&authorizer, &event(&typed)).await.result.is_ok());
}

#[tokio::test]
async fn certificate_binding() {
    let server = jwks_server().await;
    let uri = server.url("/jwks");
    let bound = keys().rsa.sign(&claims());
    let mut c = claims();
    c.as_object_mut().unwrap().remove("cnf");
    let unbound = keys().rsa.sign(&c);
    let p = pki();

    let if_bound = fixture::authorizer(jwt_vars(&uri, &[])).await;
    let run = |authorizer, token: &str, cert| {
        let event = events::request(Some(&bearer(token)), cert);
        async move { decide(authorizer, &event).await }
    };
    assert_refused(&run(&if_bound, &bound, Some(&p.other_client)).await, Status::Unauthorized, "binding_mismatch");
    assert_refused(&run(&if_bound, &bound, None).await, Status::Unauthorized, "binding_no_certificate");
    assert!(run(&if_bound, &unbound, Some(&p.client)).await.result.is_ok());

    let required = fixture::authorizer(jwt_vars(&uri, &[("CERT_BINDING", "required")])).await;
    assert_refused(&run(&required, &unbound, Some(&p.client)).await, Status::Unauthorized, "binding_required");
    assert!(run(&required, &bound, Some(&p.client)).await.result.is_ok());

    let off = fixture::authorizer(jwt_vars(&uri, &[("CERT_BINDING", "off")])).await;
    let decision = run(&off, &bound, Some(&p.other_client)).await;
    assert_eq!(decision.result.as_ref().unwrap().context.cert_thumbprint, "");
}

#[tokio::test]
async fn url_encoded_and_garbage_certificates() {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await;
    let token = keys().rsa.sign(&claims());
    let mut event = events::request(Some(&bearer(&token)), Some(&pki().client));
    let encoded =
        percent_encoding::utf8_percent_encode(&pki().client.pem, percent_encoding::NON_ALPHANUMERIC).to_string();
    event["requestContext"]["identity"]["clientCert"]["clientCertPem"] = json!(encoded);
    assert!(decide(&authorizer, &event).await.result.is_ok());
    event["requestContext"]["identity"]["clientCert"]["clientCertPem"] = json!("-----BEGIN CERTIFICATE-----\nAAAA\n");
    assert_refused(&decide(&authorizer, &event).await, Status::Unauthorized, "bad_client_certificate");
}

#[tokio::test]
async fn client_certificate_allowlist() {
    let server = jwks_server().await;
    let allow = format!(r#"[{{"subject":"{}"}}]"#, pki().client.subject_dn);
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[("CLIENT_CERT_ALLOWLIST", &allow)])).await;
    let mut c = claims();
    c.as_object_mut().unwrap().remove("cnf");
    let token = keys().rsa.sign(&c);
    assert!(decide(&authorizer, &events::request(Some(&bearer(&token)), Some(&pki().client))).await.result.is_ok());
    let decision = decide(&authorizer, &events::request(Some(&bearer(&token)), Some(&pki().other_client))).await;
    assert_refused(&decision, Status::Forbidden, "client_certificate_not_allowed");
    let deny = decision.into_lambda_result().unwrap();
    assert!(deny.policy_document.statements.iter().all(|s| s.effect == Effect::Deny));
    let decision = decide(&authorizer, &events::request(Some(&bearer(&token)), None)).await;
    assert_refused(&decision, Status::Forbidden, "client_certificate_not_allowed");
}

#[tokio::test]
async fn unknown_kid_refetches_once_then_waits_out_the_interval() {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await;
    let rogue = SigningKey::generate(Algorithm::ES256, "rotated-in-later");
    for _ in 0..5 {
        let event = events::request(Some(&bearer(&rogue.sign(&claims()))), Some(&pki().client));
        assert_refused(&decide(&authorizer, &event).await, Status::Unauthorized, "jwks_unknown_kid");
    }
    assert_eq!(server.request_count(), 2, "init fetch + one refetch; the rest wait out the interval");
}

#[tokio::test]
async fn rotated_keys_are_picked_up_with_one_shared_fetch() {
    let rotated = Arc::new(SigningKey::generate(Algorithm::ES256, "rotated"));
    let published = Arc::new(std::sync::Mutex::new(fixture::published_jwks()));
    let document = published.clone();
    let server = TestServer::start(move |_| Reply::json(document.lock().unwrap().clone())).await;
    let authorizer = Arc::new(fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await);
    published.lock().unwrap()["keys"].as_array_mut().unwrap().push(serde_json::to_value(&rotated.jwk).unwrap());

    let token = rotated.sign(&claims());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let authorizer = authorizer.clone();
            let event = events::request(Some(&bearer(&token)), Some(&pki().client));
            tokio::spawn(async move { decide(&authorizer, &event).await })
        })
        .collect();
    for task in tasks {
        let decision = task.await.unwrap();
        assert!(decision.result.is_ok(), "{decision:?}");
    }
    assert_eq!(server.request_count(), 2, "eight requests with a new kid share one refetch");
    assert_eq!(authorizer.jwks().unwrap().fetch_count(), 2);
}

#[tokio::test]
async fn jwks_endpoint_down_at_refetch_is_a_server_error() {
    let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = alive.clone();
    let document = fixture::published_jwks();
    let server = TestServer::start(move |_| {
        if flag.load(std::sync::atomic::Ordering::SeqCst) { Reply::json(&document) } else { Reply::status(503, "down") }
    })
    .await;
    let clock = fixture::manual_clock();
    let vars = jwt_vars(&server.url("/jwks"), &[("JWKS_REFETCH_INTERVAL_SECONDS", "60")]);
    let authorizer = fixture::authorizer_on(vars, clock.clock()).await;
    let rogue = SigningKey::generate(Algorithm::ES256, "new-kid");
    let rogue_event = events::request(Some(&bearer(&rogue.sign(&claims()))), Some(&pki().client));
    // An unknown kid refetches (the endpoint is up, the kid not in it), which
    // opens the refetch interval; the endpoint goes down; the next unknown kid
    // after the interval refetches and finds it down.
    assert_refused(&decide(&authorizer, &rogue_event).await, Status::Unauthorized, "jwks_unknown_kid");
    alive.store(false, std::sync::atomic::Ordering::SeqCst);
    clock.advance(std::time::Duration::from_secs(61));
    let decision = decide(&authorizer, &rogue_event).await;
    assert_refused(&decision, Status::ServerError, "jwks_unavailable");
    assert_eq!(server.request_count(), 3, "init, the first unknown kid, the one after the interval");
    assert!(matches!(decision.into_lambda_result(), Err(authorizer::LambdaError::Internal)));
    // Known keys keep working while the endpoint is down.
    let decision =
        decide(&authorizer, &events::request(Some(&bearer(&keys().rsa.sign(&claims()))), Some(&pki().client))).await;
    assert!(decision.result.is_ok());
}

#[tokio::test]
async fn jwks_junk_at_start_up_fails_init() {
    let server = TestServer::start(|_| Reply::json("<html>not json</html>")).await;
    let config = authorizer::Config::from_map(&jwt_vars(&server.url("/jwks"), &[])).unwrap();
    assert!(authorizer::Authorizer::new(config).await.is_err());
    let config = authorizer::Config::from_map(&jwt_vars("http://127.0.0.1:9/jwks", &[])).unwrap();
    assert!(authorizer::Authorizer::new(config).await.is_err());
}

#[tokio::test]
async fn missing_multiple_and_malformed_credentials() {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await;
    let decision = decide(&authorizer, &events::request(None, Some(&pki().client))).await;
    assert_refused(&decision, Status::Unauthorized, "no_credentials");
    let token = keys().rsa.sign(&claims());
    let mut event = events::request(Some(&bearer(&token)), Some(&pki().client));
    event["multiValueHeaders"]["Authorization"] = json!([bearer(&token), bearer(&token)]);
    assert_refused(&decide(&authorizer, &event).await, Status::Unauthorized, "multiple_credentials");
    let event = events::request(Some(&format!("Basic {token}")), Some(&pki().client));
    assert_refused(&decide(&authorizer, &event).await, Status::Unauthorized, "malformed_credentials");
    let mut event = events::request(Some(&bearer(&token)), Some(&pki().client));
    event["methodArn"] = json!("arn:aws:s3:::bucket");
    assert_refused(&decide(&authorizer, &event).await, Status::ServerError, "bad_method_arn");
}

#[tokio::test]
async fn unauthorized_maps_to_the_exact_lambda_error_message() {
    let server = jwks_server().await;
    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await;
    let event = events::parse(&events::request(None, None));
    let error = authorizer::handle(&authorizer, &event, "req-1").await.unwrap_err();
    let diagnostic: lambda_runtime::Diagnostic = error.into();
    assert_eq!(diagnostic.error_message, "Unauthorized");
}

struct RequireTenant;
impl authorizer::ClaimCheck for RequireTenant {
    fn check(
        &self,
        token: &authorizer::TokenInfo,
        _: &authorizer::arn::MethodArn<'_>,
    ) -> Result<(), authorizer::ClaimCheckFailure> {
        match token.claims.get("tenant").and_then(|t| t.as_str()) {
            Some("acme") => Ok(()),
            Some(_) => Err(authorizer::ClaimCheckFailure::Forbidden("wrong tenant".into())),
            None => Err(authorizer::ClaimCheckFailure::Unauthorized("no tenant".into())),
        }
    }
}

struct EverythingNeedsAdmin;
impl authorizer::ScopeResolver for EverythingNeedsAdmin {
    fn requirement(&self, request: &authorizer::arn::MethodArn<'_>) -> Option<authorizer::routes::Requirement> {
        (request.verb == "GET").then(|| authorizer::routes::Requirement::AllOf(vec!["admin".into()]))
    }
}

#[tokio::test]
async fn custom_claim_check_and_scope_resolver() {
    let server = jwks_server().await;
    let authorizer =
        fixture::authorizer(jwt_vars(&server.url("/jwks"), &[])).await.with_claim_check(Arc::new(RequireTenant));
    let event = |c: &serde_json::Value| events::request(Some(&bearer(&keys().rsa.sign(c))), Some(&pki().client));
    assert_refused(&decide(&authorizer, &event(&claims())).await, Status::Unauthorized, "claim_check_failed");
    let mut c = claims();
    c["tenant"] = json!("globex");
    assert_refused(&decide(&authorizer, &event(&c)).await, Status::Forbidden, "claim_check_denied");
    c["tenant"] = json!("acme");
    assert!(decide(&authorizer, &event(&c)).await.result.is_ok());

    let authorizer = fixture::authorizer(jwt_vars(&server.url("/jwks"), &[]))
        .await
        .with_scope_resolver(Arc::new(EverythingNeedsAdmin));
    let decision = decide(&authorizer, &event(&claims())).await;
    assert_refused(&decision, Status::Forbidden, "insufficient_scope");
    let mut c = claims();
    c["scope"] = json!("admin");
    let response = decide(&authorizer, &event(&c)).await.result.unwrap();
    // The resolver allowed this ARN although the table would not: the policy must say so.
    assert!(
        response
            .policy_document
            .statements
            .iter()
            .any(|s| s.effect == Effect::Allow && s.resources.iter().any(|r| r == METHOD_ARN))
    );
}
