//! One setting for an identity provider that issues JWT and opaque access
//! tokens: hybrid validation, discovery from the issuer alone, keys kept
//! fresh in the background, and an introspection endpoint that refuses to
//! introspect. Against a real OpenID provider stand-in on 127.0.0.1
//! (`e2e::provider`).

use std::sync::Arc;
use std::time::Duration;

use authorizer::{Authorizer, Config, Status};
use e2e::events;
use e2e::fixture::{self, AUDIENCE, assert_refused, decide, keys, pki};
use e2e::keys::SigningKey;
use e2e::provider::{JwksBehaviour, Metadata, Provider};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

fn claims_for(issuer: &str) -> Value {
    let mut claims = fixture::claims();
    claims["iss"] = json!(issuer);
    claims
}

fn introspection_answer(issuer: &str) -> Value {
    json!({"active": true, "scope": "pets:read", "sub": "user-9", "client_id": "client-a",
        "exp": e2e::now() + 300, "iss": issuer, "aud": AUDIENCE,
        "cnf": {"x5t#S256": pki().client.thumbprint}})
}

fn event(token: &str) -> Value {
    events::request(Some(&format!("Bearer {token}")), Some(&pki().client))
}

/// Hybrid mode with only the issuer configured: everything else discovered.
async fn hybrid(provider: &Provider, extra: &[(&str, &str)]) -> Result<Authorizer, authorizer::InitError> {
    hybrid_on(provider, extra, authorizer::Clock::system()).await
}

async fn hybrid_on(
    provider: &Provider,
    extra: &[(&str, &str)],
    clock: authorizer::Clock,
) -> Result<Authorizer, authorizer::InitError> {
    let issuer = provider.issuer();
    let mut vars = fixture::vars(&[
        ("TOKEN_VALIDATION", "jwt,introspection"),
        ("TOKEN_ISSUER", &issuer),
        ("AUDIENCE", AUDIENCE),
        ("INTROSPECTION_CLIENT_ID", "gateway"),
        ("INTROSPECTION_CLIENT_SECRET", "secret"),
        ("ROUTES", fixture::ROUTES),
        ("HTTP_TIMEOUT_MS", "500"),
    ]);
    vars.extend(fixture::vars(extra));
    Authorizer::with_clock(Config::from_map(&vars).expect("valid configuration"), clock).await
}

#[tokio::test]
async fn hybrid_mode_verifies_jwts_locally_and_introspects_the_rest() {
    let provider = Provider::start(Metadata::OpenIdConnect, "").await;
    let authorizer = hybrid(&provider, &[]).await.expect("starts from the issuer alone");
    let issuer = provider.issuer();
    for alg_key in [&keys().rsa, &keys().ec256] {
        let jwt = alg_key.sign(&claims_for(&issuer));
        let decision = decide(&authorizer, &event(&jwt)).await;
        assert!(decision.result.is_ok(), "{decision:?}");
    }
    assert_eq!(provider.requests_to("/introspect"), 0, "JWTs are verified locally");

    provider.issue_opaque("opaque-1", introspection_answer(&issuer));
    let decision = decide(&authorizer, &event("opaque-1")).await;
    assert_eq!(decision.result.expect("opaque token allowed").principal_id, "user-9");
    assert_eq!(provider.requests_to("/introspect"), 1);

    // Every rule of both modes: a bound opaque token on another certificate.
    let other_cert = events::request(Some("Bearer opaque-1"), Some(&pki().other_client));
    assert_refused(&decide(&authorizer, &other_cert).await, Status::Unauthorized, "binding_mismatch");
    // An opaque answer naming another audience.
    let mut foreign = introspection_answer(&issuer);
    foreign["aud"] = json!("api://other");
    provider.issue_opaque("opaque-2", foreign);
    assert_refused(
        &decide(&authorizer, &event("opaque-2")).await,
        Status::Unauthorized,
        "introspection_wrong_audience",
    );
}

#[tokio::test]
async fn a_jwt_that_fails_verification_is_never_introspected() {
    let provider = Provider::start(Metadata::OpenIdConnect, "").await;
    let authorizer = hybrid(&provider, &[]).await.unwrap();
    let issuer = provider.issuer();
    let forged = keys().attacker.sign(&claims_for(&issuer));
    assert_refused(&decide(&authorizer, &event(&forged)).await, Status::Unauthorized, "jwt_bad_signature");
    let mut expired = claims_for(&issuer);
    expired["exp"] = json!(e2e::now() - 600);
    assert_refused(
        &decide(&authorizer, &event(&keys().rsa.sign(&expired))).await,
        Status::Unauthorized,
        "token_expired",
    );
    assert_eq!(provider.requests_to("/introspect"), 0);
}

#[tokio::test]
async fn a_token_the_introspection_endpoint_refuses_is_a_401_not_an_outage() {
    let provider = Provider::start(Metadata::OpenIdConnect, "").await;
    let authorizer = hybrid(&provider, &[]).await.unwrap();
    // The provider answers 400 unsupported_token_type for tokens it does not know.
    let decision = decide(&authorizer, &event("never-issued")).await;
    assert_refused(&decision, Status::Unauthorized, "introspection_refused_token");
    assert!(matches!(decision.into_lambda_result(), Err(authorizer::LambdaError::Unauthorized)));
    let again = decide(&authorizer, &event("never-issued")).await;
    assert_refused(&again, Status::Unauthorized, "introspection_refused_token");
    assert_eq!(provider.requests_to("/introspect"), 1, "refusals are cached like inactive answers");
}

#[tokio::test]
async fn discovery_finds_rfc_8414_metadata_under_an_issuer_with_a_path() {
    let provider = Provider::start(Metadata::OAuthOnly, "/realms/pets").await;
    let issuer = provider.issuer();
    assert!(issuer.ends_with("/realms/pets"));
    let authorizer = hybrid(&provider, &[]).await.expect("starts");
    let jwt = keys().ed.sign(&claims_for(&issuer));
    assert!(decide(&authorizer, &event(&jwt)).await.result.is_ok());
    assert_eq!(provider.requests_to("/realms/pets/.well-known/openid-configuration"), 1, "OIDC tried first");
    assert_eq!(provider.requests_to("/.well-known/oauth-authorization-server/realms/pets"), 1);
}

#[tokio::test]
async fn discovery_trusts_only_metadata_naming_the_configured_issuer() {
    let provider = Provider::start(Metadata::OpenIdConnect, "").await;
    provider.claim_issuer("https://evil.example.com");
    let error = hybrid(&provider, &[]).await.err().expect("init fails");
    assert!(error.to_string().contains("evil.example.com"), "{error}");
    assert_eq!(provider.requests_to("/jwks"), 0, "no key is fetched from an untrusted document");
}

#[tokio::test]
async fn configured_endpoints_win_over_discovered_ones() {
    let provider = Provider::start(Metadata::OpenIdConnect, "").await;
    let elsewhere = fixture::jwks_server().await;
    let authorizer = hybrid(&provider, &[("JWKS_URI", &elsewhere.url("/keys"))]).await.unwrap();
    assert_eq!(elsewhere.request_count(), 1, "the configured JWKS URI is used");
    assert_eq!(provider.requests_to("/jwks"), 0, "the discovered one is not");
    provider.issue_opaque("opaque-1", introspection_answer(&provider.issuer()));
    assert!(decide(&authorizer, &event("opaque-1")).await.result.is_ok(), "introspection endpoint discovered");

    // Everything configured: no discovery at all.
    let jwt_only = Config::from_map(&fixture::jwt_vars(&elsewhere.url("/keys"), &[])).unwrap();
    assert!(jwt_only.discovery.is_none());
}

/// The provider withdraws a key (say it leaked): once the keys are older than
/// their maximum age, a warm authorizer stops trusting it.
#[tokio::test]
async fn a_withdrawn_key_stops_being_trusted_after_the_maximum_age() {
    let provider = Provider::start(Metadata::OpenIdConnect, "").await;
    let clock = fixture::manual_clock();
    let ages = [("JWKS_MAX_AGE_SECONDS", "600"), ("JWKS_REFETCH_INTERVAL_SECONDS", "60")];
    let authorizer = hybrid_on(&provider, &ages, clock.clock()).await.unwrap();
    let leaked = keys().ps.sign(&claims_for(&provider.issuer()));
    assert!(decide(&authorizer, &event(&leaked)).await.result.is_ok());

    let without_ps = e2e::keys::jwks(&[&keys().rsa, &keys().ec256, &keys().ec384, &keys().ed]);
    provider.set_jwks(JwksBehaviour::Serve { document: without_ps, cache_control: None });
    assert!(decide(&authorizer, &event(&leaked)).await.result.is_ok(), "still fresh: no fetch yet");
    assert_eq!(provider.requests_to("/jwks"), 1);
    clock.advance(Duration::from_secs(599));
    assert!(decide(&authorizer, &event(&leaked)).await.result.is_ok(), "a second before the maximum age");
    assert_eq!(provider.requests_to("/jwks"), 1);

    clock.advance(Duration::from_secs(2));
    // The first request after the age starts the refresh and is not held up by it.
    let _ = decide(&authorizer, &event(&leaked)).await;
    wait_for(|| provider.requests_to("/jwks") >= 2).await;
    tokio::task::yield_now().await;
    wait_for_async(|| async { decide(&authorizer, &event(&leaked)).await.status() == Some(Status::Unauthorized) })
        .await;
    let decision = decide(&authorizer, &event(&leaked)).await;
    assert_refused(&decision, Status::Unauthorized, "jwks_unknown_kid");
    let current = keys().rsa.sign(&claims_for(&provider.issuer()));
    assert!(decide(&authorizer, &event(&current)).await.result.is_ok(), "the keys still published still work");
}

#[tokio::test]
async fn the_providers_cache_control_shortens_the_age_and_a_failed_refresh_keeps_the_keys() {
    let provider = Provider::start(Metadata::OpenIdConnect, "").await;
    provider.set_jwks(JwksBehaviour::Serve {
        document: fixture::published_jwks(),
        cache_control: Some("public, max-age=120".into()),
    });
    let clock = fixture::manual_clock();
    let ages = [("JWKS_MAX_AGE_SECONDS", "3600"), ("JWKS_REFETCH_INTERVAL_SECONDS", "60")];
    let authorizer = Arc::new(hybrid_on(&provider, &ages, clock.clock()).await.unwrap());
    let token = keys().rsa.sign(&claims_for(&provider.issuer()));

    // The refresh hangs: requests go on with the keys held, never waiting for it.
    provider.set_jwks(JwksBehaviour::Hang);
    clock.advance(Duration::from_secs(121));
    for _ in 0..3 {
        assert!(decide(&authorizer, &event(&token)).await.result.is_ok());
    }
    wait_for(|| provider.requests_to("/jwks") == 2).await;
    assert!(decide(&authorizer, &event(&token)).await.result.is_ok(), "answered while the refresh is in flight");
    assert_eq!(provider.requests_to("/jwks"), 2, "one refresh at a time");

    // The refresh fails: the keys held stay in use.
    provider.set_jwks(JwksBehaviour::Fail(503));
    provider.release_jwks();
    let jwks = authorizer.jwks().expect("a JWKS cache");
    wait_for(|| !jwks.refresh_in_flight()).await;
    // A failed refresh is tried again after the refetch interval.
    clock.advance(Duration::from_secs(59));
    assert!(decide(&authorizer, &event(&token)).await.result.is_ok());
    assert!(!jwks.refresh_in_flight(), "not before the refetch interval");
    clock.advance(Duration::from_secs(2));
    for _ in 0..3 {
        assert!(decide(&authorizer, &event(&token)).await.result.is_ok());
        tokio::task::yield_now().await;
    }
    wait_for(|| provider.requests_to("/jwks") >= 3).await;
    assert!(decide(&authorizer, &event(&token)).await.result.is_ok());
    let rogue = SigningKey::generate(Algorithm::ES256, "never-published");
    let decision = decide(&authorizer, &event(&rogue.sign(&claims_for(&provider.issuer())))).await;
    assert_eq!(decision.status(), Some(Status::ServerError), "an unknown kid with the endpoint down: {decision:?}");
}

/// Polls `condition` for up to five seconds.
async fn wait_for(condition: impl Fn() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 5 s");
}

async fn wait_for_async<F: std::future::Future<Output = bool>>(condition: impl Fn() -> F) {
    for _ in 0..500 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not met within 5 s");
}
