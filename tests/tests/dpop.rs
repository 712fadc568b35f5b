//! DPoP (RFC 9449) end to end through the library: real key pairs, proofs
//! signed with them, tokens bound to their thumbprints (in a JWT, or in an
//! introspection answer from a real server on 127.0.0.1). Every broken part
//! of a proof in its own case.

use authorizer::Status;
use base64::Engine as _;
use e2e::dpop::{self, DpopKey};
use e2e::events::{self, METHOD_ARN, url_of, with_dpop};
use e2e::fixture::{self, assert_refused, decide, jwks_server, jwt_vars, keys};
use e2e::keys::raw_jws;
use e2e::server::{Reply, TestServer};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

const PATH: &str = "/pets/42";

/// Claims of a valid token, bound to `key` instead of a certificate.
fn bound_to(key: &DpopKey) -> Value {
    let mut claims = fixture::claims();
    claims["cnf"] = json!({ "jkt": key.thumbprint() });
    claims
}

fn unbound() -> Value {
    let mut claims = fixture::claims();
    claims.as_object_mut().unwrap().remove("cnf");
    claims
}

/// `GET /pets/42` with `Authorization: {scheme} {token}` and these proofs.
fn event(scheme: &str, token: &str, proofs: &[&str]) -> Value {
    with_dpop(events::request(Some(&format!("{scheme} {token}")), None), proofs)
}

async fn authorizer(dpop_mode: &str) -> (TestServer, authorizer::Authorizer) {
    let server = jwks_server().await;
    let vars = jwt_vars(&server.url("/jwks"), &[("DPOP", dpop_mode), ("CERT_BINDING", "off")]);
    let authorizer = fixture::authorizer(vars).await;
    (server, authorizer)
}

#[tokio::test]
async fn a_valid_proof_with_its_bound_token_is_allowed_for_every_key_type() {
    let (_server, authorizer) = authorizer("allowed").await;
    for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA, Algorithm::RS256, Algorithm::PS256] {
        let key = DpopKey::generate(alg);
        let token = keys().rsa.sign(&bound_to(&key));
        let proof = key.proof("GET", &url_of(PATH), &token);
        let decision = decide(&authorizer, &event("DPoP", &token, &[&proof])).await;
        let response = decision.result.as_ref().unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(response.context.dpop_thumbprint, key.thumbprint(), "{alg:?}");
        assert_eq!(response.context.cert_thumbprint, "");
    }
}

#[tokio::test]
async fn every_broken_part_of_a_proof_is_refused() {
    let (_server, authorizer) = authorizer("allowed").await;
    let key = DpopKey::generate(Algorithm::ES256);
    let token = keys().rsa.sign(&bound_to(&key));
    let url = url_of(PATH);
    let now = e2e::now();
    let with_claim = |name: &str, value: Value| {
        let mut claims = dpop::claims("GET", &url, &token);
        claims[name] = value;
        key.sign(&key.header(), &claims)
    };
    let with_header = |name: &str, value: Value| {
        let mut header = key.header();
        header[name] = value;
        key.sign(&header, &dpop::claims("GET", &url, &token))
    };
    let without_claim = |name: &str| {
        let mut claims = dpop::claims("GET", &url, &token);
        claims.as_object_mut().unwrap().remove(name);
        key.sign(&key.header(), &claims)
    };
    let mut private_jwk = key.header();
    private_jwk["jwk"]["d"] = json!("c2VjcmV0");
    // HMAC keyed with the public key's bytes, as in the key-confusion attack.
    let hmac = {
        let header = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk()});
        let claims = dpop::claims("GET", &url, &token);
        let secret = jsonwebtoken::EncodingKey::from_secret(key.public_jwk().to_string().as_bytes());
        let message = format!(
            "{}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string()),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &secret, Algorithm::HS256).unwrap();
        format!("{message}.{signature}")
    };
    let other_key = DpopKey::generate(Algorithm::ES256);
    let cases: Vec<(&str, String, &str)> = vec![
        ("htm", with_claim("htm", json!("POST")), "dpop_htm_mismatch"),
        ("htm lower case", with_claim("htm", json!("get")), "dpop_htm_mismatch"),
        ("htu", with_claim("htu", json!(url_of("/pets/43"))), "dpop_htu_mismatch"),
        ("htu without base path", with_claim("htu", json!("https://api.example.com/pets/42")), "dpop_htu_mismatch"),
        ("htu of another host", with_claim("htu", json!("https://evil.example.com/v1/pets/42")), "dpop_htu_mismatch"),
        ("iat too old", with_claim("iat", json!(now - 300)), "dpop_iat_out_of_window"),
        ("iat in the future", with_claim("iat", json!(now + 300)), "dpop_iat_out_of_window"),
        ("ath", with_claim("ath", json!(dpop::ath("another-token"))), "dpop_ath_mismatch"),
        ("no ath", without_claim("ath"), "dpop_missing_claim"),
        ("no jti", without_claim("jti"), "dpop_missing_claim"),
        ("typ", with_header("typ", json!("JWT")), "dpop_typ"),
        (
            "no typ",
            {
                let mut header = key.header();
                header.as_object_mut().unwrap().remove("typ");
                key.sign(&header, &dpop::claims("GET", &url, &token))
            },
            "dpop_typ",
        ),
        (
            "alg none",
            raw_jws(
                &json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk()}),
                &dpop::claims("GET", &url, &token),
                b"",
            ),
            "dpop_algorithm_not_accepted",
        ),
        ("HMAC", hmac, "dpop_algorithm_not_accepted"),
        ("alg of another key type", with_header("alg", json!("RS256")), "dpop_bad_key"),
        ("private key in jwk", key.sign(&private_jwk, &dpop::claims("GET", &url, &token)), "dpop_bad_key"),
        (
            "no jwk",
            {
                let mut header = key.header();
                header.as_object_mut().unwrap().remove("jwk");
                key.sign(&header, &dpop::claims("GET", &url, &token))
            },
            "dpop_bad_key",
        ),
        ("jwk of another key", with_header("jwk", other_key.public_jwk()), "dpop_bad_signature"),
        ("signed by another key, its own jwk", other_key.proof("GET", &url, &token), "dpop_key_mismatch"),
        ("not a JWS", "not.a.proof".to_owned(), "dpop_malformed"),
    ];
    for (what, proof, reason) in cases {
        let decision = decide(&authorizer, &event("DPoP", &token, &[&proof])).await;
        assert_eq!(decision.status(), Some(Status::Unauthorized), "{what}: {decision:?}");
        assert_eq!(decision.reason(), reason, "{what}");
    }
    // After all that, the honest proof still works.
    let honest = key.proof("GET", &url, &token);
    assert!(decide(&authorizer, &event("DPoP", &token, &[&honest])).await.result.is_ok());
}

#[tokio::test]
async fn a_proof_is_good_for_one_request() {
    let (_server, authorizer) = authorizer("allowed").await;
    let key = DpopKey::generate(Algorithm::EdDSA);
    let token = keys().rsa.sign(&bound_to(&key));
    let proof = key.proof("GET", &url_of(PATH), &token);
    assert!(decide(&authorizer, &event("DPoP", &token, &[&proof])).await.result.is_ok());
    let replay = decide(&authorizer, &event("DPoP", &token, &[&proof])).await;
    assert_refused(&replay, Status::Unauthorized, "dpop_replayed");
    let fresh = key.proof("GET", &url_of(PATH), &token);
    assert!(decide(&authorizer, &event("DPoP", &token, &[&fresh])).await.result.is_ok());
}

#[tokio::test]
async fn schemes_must_match_what_the_token_is_bound_to() {
    let (_server, authorizer) = authorizer("allowed").await;
    let key = DpopKey::generate(Algorithm::ES256);
    let bound = keys().rsa.sign(&bound_to(&key));
    let proof = key.proof("GET", &url_of(PATH), &bound);
    // A stolen DPoP-bound token used as a bearer token, with or without a proof.
    for proofs in [&[][..], &[proof.as_str()][..]] {
        let decision = decide(&authorizer, &event("Bearer", &bound, proofs)).await;
        assert_refused(&decision, Status::Unauthorized, "dpop_bound_token_as_bearer");
    }
    // An unbound token presented as DPoP, even with a valid proof.
    let plain = keys().rsa.sign(&unbound());
    let proof = key.proof("GET", &url_of(PATH), &plain);
    assert_refused(
        &decide(&authorizer, &event("DPoP", &plain, &[&proof])).await,
        Status::Unauthorized,
        "token_not_dpop_bound",
    );
    // An unbound bearer token is fine when DPoP is only allowed.
    assert!(decide(&authorizer, &event("Bearer", &plain, &[])).await.result.is_ok());
    // DPoP without a proof, or with two.
    assert_refused(&decide(&authorizer, &event("DPoP", &bound, &[])).await, Status::Unauthorized, "dpop_no_proof");
    let (a, b) = (key.proof("GET", &url_of(PATH), &bound), key.proof("GET", &url_of(PATH), &bound));
    assert_refused(
        &decide(&authorizer, &event("DPoP", &bound, &[&a, &b])).await,
        Status::Unauthorized,
        "multiple_credentials",
    );
}

#[tokio::test]
async fn dpop_off_and_dpop_required() {
    let key = DpopKey::generate(Algorithm::ES256);
    let bound = keys().rsa.sign(&bound_to(&key));
    let plain = keys().rsa.sign(&unbound());

    let (_server, off) = authorizer("off").await;
    let proof = key.proof("GET", &url_of(PATH), &bound);
    assert_refused(&decide(&off, &event("DPoP", &bound, &[&proof])).await, Status::Unauthorized, "dpop_not_accepted");
    // Off, a DPoP-bound token cannot be verified: refused, never taken as a bearer token.
    assert_refused(
        &decide(&off, &event("Bearer", &bound, &[])).await,
        Status::Unauthorized,
        "dpop_bound_token_as_bearer",
    );

    let (_server, required) = authorizer("required").await;
    assert_refused(&decide(&required, &event("Bearer", &plain, &[])).await, Status::Unauthorized, "dpop_required");
    let proof = key.proof("GET", &url_of(PATH), &bound);
    assert!(decide(&required, &event("DPoP", &bound, &[&proof])).await.result.is_ok());
}

#[tokio::test]
async fn a_dpop_request_without_the_scope_gets_a_dpop_challenge() {
    let (_server, authorizer) = authorizer("allowed").await;
    let key = DpopKey::generate(Algorithm::ES256);
    let token = keys().rsa.sign(&bound_to(&key));
    let post_arn = METHOD_ARN.replace("GET/pets/42", "POST/pets");
    let proof = key.proof("POST", &url_of("/pets"), &token);
    let event = with_dpop(
        events::request_for(&post_arn, "POST", "/pets", "/pets", Some(&format!("DPoP {token}")), None),
        &[&proof],
    );
    let decision = decide(&authorizer, &event).await;
    assert_refused(&decision, Status::Forbidden, "insufficient_scope");
    let challenge = decision.into_lambda_result().unwrap().context.challenge.unwrap();
    assert!(challenge.starts_with("DPoP realm=\"api\", error=\"insufficient_scope\""), "{challenge}");
    assert!(challenge.contains("algs=\"RS256"), "{challenge}");
}

#[tokio::test]
async fn an_opaque_token_bound_in_its_introspection_answer() {
    let key = DpopKey::generate(Algorithm::ES256);
    let jkt = key.thumbprint();
    let answer =
        json!({"active": true, "scope": "pets:read", "sub": "u", "exp": e2e::now() + 300, "cnf": {"jkt": jkt}});
    let server = TestServer::start(move |_| Reply::json(&answer)).await;
    let authorizer = fixture::authorizer(fixture::vars(&[
        ("TOKEN_VALIDATION", "introspection"),
        ("INTROSPECTION_ENDPOINT", &server.url("/introspect")),
        ("INTROSPECTION_CLIENT_ID", "rs"),
        ("INTROSPECTION_CLIENT_SECRET", "secret"),
        ("ROUTES", fixture::ROUTES),
        ("DPOP", "allowed"),
    ]))
    .await;
    let token = "opaque-2YotnFZFEjr1zCsicMWpAA";
    let proof = key.proof("GET", &url_of(PATH), token);
    assert!(decide(&authorizer, &event("DPoP", token, &[&proof])).await.result.is_ok());
    // Cached or not, the same rules hold.
    assert_refused(
        &decide(&authorizer, &event("Bearer", token, &[])).await,
        Status::Unauthorized,
        "dpop_bound_token_as_bearer",
    );
    assert_eq!(server.request_count(), 1);
}

/// RSA keys made with `openssl genpkey -algorithm RSA -pkeyopt
/// rsa_keygen_bits:N`: 1024 bits is too weak for RFC 9449's purpose and
/// under the size RFC 8725 §3.5 asks verifiers to require; 2048 is the floor.
const RSA_1024_PEM: &str = include_str!("../fixtures/rsa-1024.pem");
const RSA_2048_PEM: &str = include_str!("../fixtures/rsa-2048.pem");

/// A token bound to the RSA key in `pem`, and a proof signed with it (RS256,
/// by the `rsa` crate: aws-lc-rs will not load a key under 2048 bits).
fn rsa_proof(pem: &str) -> (String, String) {
    use rsa::pkcs8::DecodePrivateKey as _;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    use rsa::traits::PublicKeyParts as _;
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("the fixture key");
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let (n, e) = (b64(&private.n().to_bytes_be()), b64(&private.e().to_bytes_be()));
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let thumbprint = b64(&<sha2::Sha256 as sha2::Digest>::digest(canonical.as_bytes()));
    let mut claims = fixture::claims();
    claims["cnf"] = json!({ "jkt": thumbprint });
    let token = keys().rsa.sign(&claims);
    let header = json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": {"kty": "RSA", "n": n, "e": e}});
    let proof_claims = dpop::claims("GET", &url_of(PATH), &token);
    let signed = format!("{}.{}", b64(header.to_string().as_bytes()), b64(proof_claims.to_string().as_bytes()));
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(private);
    let proof = format!("{signed}.{}", b64(&signer.sign(signed.as_bytes()).to_bytes()));
    (token, proof)
}

#[tokio::test]
async fn a_proof_signed_with_an_rsa_key_under_2048_bits_is_refused() {
    let (_server, authorizer) = authorizer("allowed").await;
    let (token, proof) = rsa_proof(RSA_2048_PEM);
    let decision = decide(&authorizer, &event("DPoP", &token, &[&proof])).await;
    assert!(decision.result.is_ok(), "the same construction with 2048 bits is accepted: {decision:?}");
    let (token, proof) = rsa_proof(RSA_1024_PEM);
    let decision = decide(&authorizer, &event("DPoP", &token, &[&proof])).await;
    assert_eq!(decision.status(), Some(Status::Unauthorized), "{decision:?}");
    assert!(decision.reason().starts_with("dpop"), "{}", decision.reason());
}
