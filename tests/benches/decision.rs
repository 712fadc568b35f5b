//! Warm, in-process cost of one decision, each beside its reference measured
//! in the same run (the machines are noisy; ratios travel, absolute numbers
//! less so):
//! - `rs256/bare_verify` vs `rs256/decision`: one RS256 signature check with
//!   jsonwebtoken (the floor) vs the whole decision for a valid bound token
//!   (header checks, key lookup, verification, claims, binding, scopes, policy);
//! - the same for ES256;
//! - `introspection/cache_hit`: the whole decision for an opaque token whose
//!   introspection answer is cached; `hybrid/opaque_cache_hit` the same in
//!   `jwt,introspection` mode (the JWT-shape test comes first);
//! - `dpop/two_bare_verifications` vs `dpop/decision`: an RS256 and an ES256
//!   verification (the token's and the proof's signatures, the floor) vs the
//!   whole decision for a DPoP-bound RS256 token with a fresh ES256 proof.
//!
//! Run: `cargo bench -p e2e --no-default-features --bench decision` (without
//! the `aws` feature, the AWS SDK stays out of this optimised build).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use e2e::dpop::DpopKey;
use e2e::events;
use e2e::fixture::{self, claims, keys, pki};
use e2e::keys::SigningKey;
use e2e::server::{Reply, TestServer};
use jsonwebtoken::Algorithm;
use serde_json::json;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn bench_jwt(c: &mut Criterion, rt: &tokio::runtime::Runtime, server: &TestServer, key: &SigningKey, label: &str) {
    let authorizer = rt.block_on(fixture::authorizer(fixture::jwt_vars(&server.url("/jwks"), &[])));
    let token = key.sign(&claims());
    let event = events::parse(&events::request(Some(&format!("Bearer {token}")), Some(&pki().client)));
    assert!(rt.block_on(authorizer.authorize(&event)).result.is_ok(), "the benchmarked token must be allowed");

    let (message, signature) = token.rsplit_once('.').expect("three parts");
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&key.jwk).expect("decoding key");
    assert!(jsonwebtoken::crypto::verify(signature, message.as_bytes(), &decoding, key.alg).unwrap());

    let mut group = c.benchmark_group(label);
    group.bench_function("bare_verify", |b| {
        b.iter(|| jsonwebtoken::crypto::verify(black_box(signature), black_box(message.as_bytes()), &decoding, key.alg))
    });
    group.bench_function("decision", |b| b.iter(|| rt.block_on(authorizer.authorize(black_box(&event)))));
    let raw_event = events::request(Some(&format!("Bearer {token}")), Some(&pki().client)).to_string();
    group.bench_function("decision_with_event_parsing", |b| {
        b.iter(|| {
            let event: authorizer::AuthorizerEvent = serde_json::from_str(black_box(&raw_event)).expect("event");
            rt.block_on(authorizer.authorize(&event))
        })
    });
    group.finish();
}

fn decisions(c: &mut Criterion) {
    let rt = runtime();
    let server = rt.block_on(fixture::jwks_server());
    bench_jwt(c, &rt, &server, &keys().rsa, "rs256");
    bench_jwt(c, &rt, &server, &keys().ec256, "es256");

    let answer = json!({
        "active": true, "scope": "pets:read", "sub": "user-1", "client_id": "c",
        "exp": e2e::now() + 3600, "cnf": {"x5t#S256": pki().client.thumbprint}
    });
    let introspection = rt.block_on(TestServer::start(move |_| Reply::json(&answer)));
    let authorizer = rt.block_on(fixture::authorizer(fixture::vars(&[
        ("TOKEN_VALIDATION", "introspection"),
        ("INTROSPECTION_ENDPOINT", &introspection.url("/introspect")),
        ("INTROSPECTION_CLIENT_ID", "rs"),
        ("INTROSPECTION_CLIENT_SECRET", "secret"),
        ("INTROSPECTION_CACHE_TTL_SECONDS", "3600"),
        ("ROUTES", fixture::ROUTES),
    ])));
    let event = events::parse(&events::request(Some("Bearer 2YotnFZFEjr1zCsicMWpAA"), Some(&pki().client)));
    assert!(rt.block_on(authorizer.authorize(&event)).result.is_ok());
    let mut group = c.benchmark_group("introspection");
    group.bench_function("cache_hit", |b| b.iter(|| rt.block_on(authorizer.authorize(black_box(&event)))));
    group.finish();
    assert_eq!(introspection.request_count(), 1, "every benchmarked decision was a cache hit");

    // In hybrid mode the JWT rules (audience, issuer) apply to introspection answers too.
    let mut hybrid_answer = answer_with_audience();
    hybrid_answer["iss"] = json!(fixture::ISSUER);
    let hybrid_introspection = rt.block_on(TestServer::start(move |_| Reply::json(&hybrid_answer)));
    let mut hybrid_vars = fixture::jwt_vars(&server.url("/jwks"), &[]);
    hybrid_vars.extend(fixture::vars(&[
        ("TOKEN_VALIDATION", "jwt,introspection"),
        ("INTROSPECTION_ENDPOINT", &hybrid_introspection.url("/introspect")),
        ("INTROSPECTION_CLIENT_ID", "rs"),
        ("INTROSPECTION_CLIENT_SECRET", "secret"),
        ("INTROSPECTION_CACHE_TTL_SECONDS", "3600"),
    ]));
    let hybrid = rt.block_on(fixture::authorizer(hybrid_vars));
    assert!(rt.block_on(hybrid.authorize(&event)).result.is_ok(), "the opaque token is allowed in hybrid mode");
    let mut group = c.benchmark_group("hybrid");
    group.bench_function("opaque_cache_hit", |b| b.iter(|| rt.block_on(hybrid.authorize(black_box(&event)))));
    group.finish();
    assert_eq!(hybrid_introspection.request_count(), 1, "every benchmarked hybrid decision was a cache hit");

    bench_dpop(c, &rt, &server);
}

fn answer_with_audience() -> serde_json::Value {
    json!({
        "active": true, "scope": "pets:read", "sub": "user-1", "client_id": "c", "aud": fixture::AUDIENCE,
        "exp": e2e::now() + 3600, "cnf": {"x5t#S256": pki().client.thumbprint}
    })
}

fn bench_dpop(c: &mut Criterion, rt: &tokio::runtime::Runtime, server: &TestServer) {
    let vars = fixture::jwt_vars(&server.url("/jwks"), &[("DPOP", "allowed"), ("CERT_BINDING", "off")]);
    let authorizer = rt.block_on(fixture::authorizer(vars));
    let key = DpopKey::generate(Algorithm::ES256);
    let mut claims = claims();
    claims["cnf"] = json!({ "jkt": key.thumbprint() });
    let token = keys().rsa.sign(&claims);
    let url = events::url_of("/pets/42");
    // A fresh proof per decision (each is single-use), signed outside the measurement.
    let fresh_event = || {
        let proof = key.proof("GET", &url, &token);
        events::parse(&events::with_dpop(events::request(Some(&format!("DPoP {token}")), None), &[&proof]))
    };
    assert!(rt.block_on(authorizer.authorize(&fresh_event())).result.is_ok(), "the benchmarked request is allowed");

    let (token_message, token_signature) = token.rsplit_once('.').expect("three parts");
    let token_key = jsonwebtoken::DecodingKey::from_jwk(&keys().rsa.jwk).expect("decoding key");
    let proof = key.proof("GET", &url, &token);
    let (proof_message, proof_signature) = proof.rsplit_once('.').expect("three parts");
    let proof_key = jsonwebtoken::DecodingKey::from_jwk(&key.key.jwk).expect("decoding key");
    let mut group = c.benchmark_group("dpop");
    group.bench_function("two_bare_verifications", |b| {
        b.iter(|| {
            let token_ok = jsonwebtoken::crypto::verify(
                black_box(token_signature),
                token_message.as_bytes(),
                &token_key,
                Algorithm::RS256,
            );
            let proof_ok = jsonwebtoken::crypto::verify(
                black_box(proof_signature),
                proof_message.as_bytes(),
                &proof_key,
                Algorithm::ES256,
            );
            (token_ok, proof_ok)
        })
    });
    group.bench_function("decision", |b| {
        b.iter_batched(
            fresh_event,
            |event| {
                let decision = rt.block_on(authorizer.authorize(black_box(&event)));
                debug_assert!(decision.result.is_ok());
                decision
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = decisions
}
criterion_main!(benches);
