//! Ready-made pieces for authorizer tests: one set of keys for the whole test
//! binary (RSA generation is slow), a JWKS server, standard claims, and
//! helpers to run an event through an [`Authorizer`].

use std::collections::BTreeMap;
use std::sync::OnceLock;

use authorizer::{Authorizer, Clock, Config, Decision, ManualClock, Status};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::certs::{Ca, ClientCertificate};
use crate::keys::{SigningKey, jwks};
use crate::server::{Reply, TestServer};

pub const ISSUER: &str = "https://idp.example.com/";
pub const AUDIENCE: &str = "api://pets";

/// Routes of the test API: reading pets needs `pets:read`, creating them
/// `pets:write`, anything else is closed.
pub const ROUTES: &str = r#"{
    "routes": [
        {"method": "GET", "path": "/pets/{id}", "scopes": ["pets:read"]},
        {"method": "POST", "path": "/pets", "scopes": ["pets:write"]}
    ],
    "default": "deny"
}"#;

pub struct Keys {
    pub rsa: SigningKey,
    pub ps: SigningKey,
    pub ec256: SigningKey,
    pub ec384: SigningKey,
    pub ed: SigningKey,
    /// Never published: what an attacker signs with.
    pub attacker: SigningKey,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: SigningKey::generate(Algorithm::RS256, "rsa-1"),
        ps: SigningKey::generate(Algorithm::PS256, "rsa-ps"),
        ec256: SigningKey::generate(Algorithm::ES256, "ec-256"),
        ec384: SigningKey::generate(Algorithm::ES384, "ec-384"),
        ed: SigningKey::generate(Algorithm::EdDSA, "ed-1"),
        attacker: SigningKey::generate(Algorithm::RS256, "rsa-1"),
    })
}

pub struct Pki {
    pub ca: Ca,
    pub client: ClientCertificate,
    pub other_client: ClientCertificate,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = Ca::new("Test CA");
        let client = ca.client("client-a", 0x1001);
        let other_client = ca.client("client-b", 0x1002);
        Pki { ca, client, other_client }
    })
}

/// The published JWKS: every key but the attacker's.
pub fn published_jwks() -> Value {
    let k = keys();
    jwks(&[&k.rsa, &k.ps, &k.ec256, &k.ec384, &k.ed])
}

pub async fn jwks_server() -> TestServer {
    let document = published_jwks();
    TestServer::start(move |_| Reply::json(&document)).await
}

/// Claims of a valid token bound to `pki().client`, allowed to read pets.
pub fn claims() -> Value {
    let now = crate::now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-123",
        "client_id": "client-a",
        "scope": "pets:read profile",
        "iat": now,
        "exp": now + 300,
        "jti": "3f2c",
        "cnf": { "x5t#S256": pki().client.thumbprint }
    })
}

pub fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The JWT configuration used by most tests, with `extra` settings on top.
pub fn jwt_vars(jwks_uri: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut v = vars(&[
        ("TOKEN_VALIDATION", "jwt"),
        ("JWKS_URI", jwks_uri),
        ("TOKEN_ISSUER", ISSUER),
        ("AUDIENCE", AUDIENCE),
        ("ROUTES", ROUTES),
        ("HTTP_TIMEOUT_MS", "500"),
    ]);
    v.extend(vars(extra));
    v
}

pub async fn authorizer(vars: BTreeMap<String, String>) -> Authorizer {
    authorizer_on(vars, Clock::system()).await
}

/// An authorizer reading the time from `clock`.
pub async fn authorizer_on(vars: BTreeMap<String, String>, clock: Clock) -> Authorizer {
    let config = Config::from_map(&vars).expect("valid test configuration");
    Authorizer::with_clock(config, clock).await.expect("authorizer initialises")
}

/// A clock at the current time that moves only when the test moves it
/// (tokens are still signed with the real time, so the two agree until then).
pub fn manual_clock() -> ManualClock {
    ManualClock::starting_at(crate::now())
}

/// Runs `event` and returns the decision.
pub async fn decide(authorizer: &Authorizer, event: &Value) -> Decision {
    authorizer.authorize(&crate::events::parse(event)).await
}

/// Asserts the decision is a refusal with `status` and `reason`.
pub fn assert_refused(decision: &Decision, status: Status, reason: &str) {
    assert_eq!(decision.status(), Some(status), "decision: {decision:?}");
    assert_eq!(decision.reason(), reason, "decision: {decision:?}");
}

/// What Lambda gives a function to call AWS with (region, credentials),
/// with its calls sent to `endpoint` (moto, or a proxy in front of it).
pub fn aws_access(endpoint: &str) -> authorizer::aws::AwsAccess {
    let endpoint = endpoint.to_owned();
    let lookup = move |name: &str| match name {
        "AWS_REGION" => Some("eu-west-1".to_owned()),
        "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("testing".to_owned()),
        "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
        _ => None,
    };
    authorizer::aws::AwsAccess::from_lookup(&lookup, "DPOP_REPLAY_STORE").expect("valid AWS access")
}
