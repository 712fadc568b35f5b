//! What is read from a JWT or a DPoP proof before any signature is checked:
//! the shape test that routes a token in hybrid mode, the JOSE header, the
//! claims, and a DPoP proof's parsing (whose signature never verifies here).
#![no_main]

use authorizer::dpop::{DpopMode, DpopSettings};
use authorizer::dpop::{DpopVerifier, ProofContext};
use authorizer::{TokenInfo, jwt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = jwt::looks_like_jwt(text);
    let _ = jsonwebtoken::decode_header(text);
    if let Ok(serde_json::Value::Object(claims)) = serde_json::from_str(text) {
        let info = TokenInfo::from_claims(claims);
        let _ = info.principal();
    }
    let settings = DpopSettings { mode: DpopMode::Allowed, ..DpopSettings::default() };
    let verifier = DpopVerifier::new(&settings, authorizer::Clock::system(), None);
    let context =
        ProofContext { method: "GET", url: "https://api.example.com/v1/a", access_token: "t", now: 1_700_000_000 };
    assert!(verifier.verify(text, &context).is_err(), "an unsigned input verified as a DPoP proof");
});
