//! Warm, in-process cost of one decision, each beside its reference measured
//! in the same run (the machines are noisy; ratios travel, absolute numbers
//! less so):
//! - `rs256/bare_verify` vs `rs256/decision`: one RS256 signature check with
//!   jsonwebtoken (the floor) vs the whole decision for a valid bound token
//!   (header checks, key lookup, verification, claims, binding, scopes, policy);
//! - the same for ES256;
//! - `introspection/cache_hit`: the whole decision for an opaque token whose
//!   introspection answer is cached.
//!
//! Run: `cargo bench -p e2e --no-default-features --bench decision` (without
//! the `aws` feature, the AWS SDK stays out of this optimised build).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use e2e::events;
use e2e::fixture::{self, claims, keys, pki};
use e2e::keys::SigningKey;
use e2e::server::{Reply, TestServer};
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
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = decisions
}
criterion_main!(benches);
