//! DPoP (RFC 9449) from the client's side: a key pair, proofs signed with it,
//! and the key's RFC 7638 thumbprint, computed here from the JWK members
//! rather than with the library the authorizer uses.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::keys::SigningKey;

pub struct DpopKey {
    pub key: SigningKey,
}

impl DpopKey {
    pub fn generate(alg: Algorithm) -> DpopKey {
        DpopKey { key: SigningKey::generate(alg, "dpop") }
    }

    /// The public JWK as a proof header carries it (no `kid`, no `alg`).
    pub fn public_jwk(&self) -> Value {
        let mut jwk = serde_json::to_value(&self.key.jwk).expect("jwk json");
        let members = jwk.as_object_mut().expect("jwk object");
        members.remove("kid");
        members.remove("alg");
        jwk
    }

    /// RFC 7638: SHA-256 over the required members in lexicographic order.
    pub fn thumbprint(&self) -> String {
        let jwk = self.public_jwk();
        let member = |name: &str| jwk[name].as_str().expect("jwk member").to_owned();
        let canonical = match jwk["kty"].as_str() {
            Some("RSA") => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, member("e"), member("n")),
            Some("EC") => {
                format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, member("crv"), member("x"), member("y"))
            }
            Some("OKP") => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, member("crv"), member("x")),
            other => panic!("no thumbprint for kty {other:?}"),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The header of an honest proof.
    pub fn header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": format!("{:?}", self.key.alg), "jwk": self.public_jwk() })
    }

    /// An honest proof for `method` on `url`, presented with `token`.
    pub fn proof(&self, method: &str, url: &str, token: &str) -> String {
        self.sign(&self.header(), &claims(method, url, token))
    }

    /// A proof with any header and claims, signed with this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let message =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.key.encoding, self.key.alg).expect("signing");
        format!("{message}.{signature}")
    }
}

/// `ath`: base64url SHA-256 of the access token.
pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// The claims of an honest proof, issued now with a fresh `jti`.
pub fn claims(method: &str, url: &str, token: &str) -> Value {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let jti = format!("jti-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    json!({ "jti": jti, "htm": method, "htu": url, "iat": crate::now(), "ath": ath(token) })
}
