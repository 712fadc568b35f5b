//! JWT access tokens: header checks, signature against the JWKS, claims.
//!
//! Order matters: everything that can be refused without a key (size, shape,
//! `alg` allowlist, `crit`, `typ`) is refused before a key is looked up, so a
//! forged token costs no JWKS fetch. `jku`, `x5u` and `jwk` headers are parsed
//! (they are part of the header) but never used: keys only ever come from the
//! configured JWKS URI (RFC 8725 §3.10).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use reqwest::Url;
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::config::JwtSettings;
use crate::jwks::{Freshness, JwksCache, JwksError};
use crate::token::TokenInfo;

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("not a well-formed JWT")]
    Malformed,
    #[error("alg {0:?} is not accepted")]
    Algorithm(Algorithm),
    #[error("unsupported critical header parameter")]
    Crit,
    #[error("typ is not at+jwt")]
    Typ,
    #[error("signature does not verify")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("iat is in the future")]
    IssuedInFuture,
    #[error("required claim {0} is missing")]
    MissingClaim(String),
    #[error("claim {0} is malformed")]
    BadClaim(String),
    #[error("iss is not an accepted issuer")]
    Issuer,
    #[error("aud names no accepted audience")]
    Audience,
    #[error(transparent)]
    Keys(#[from] JwksError),
}

pub struct JwtVerifier {
    jwks: JwksCache,
    /// One ready-made `Validation` per accepted algorithm, built at init.
    validations: Vec<(Algorithm, Validation)>,
    require_at_jwt_typ: bool,
    leeway_seconds: u64,
    clock: Clock,
}

impl JwtVerifier {
    /// `jwks_uri` is the configured one, or the one discovery found.
    pub fn new(settings: &JwtSettings, jwks_uri: Url, http: reqwest::Client, clock: Clock) -> JwtVerifier {
        let validations = settings
            .algorithms
            .iter()
            .map(|&alg| {
                let mut v = Validation::new(alg);
                v.set_issuer(&settings.issuers);
                v.set_audience(&settings.audiences);
                v.set_required_spec_claims(&["exp", "iss", "aud"]);
                v.leeway = settings.leeway_seconds;
                v.validate_exp = true;
                v.validate_nbf = true;
                v.validate_aud = true;
                (alg, v)
            })
            .collect();
        JwtVerifier {
            jwks: JwksCache::new(
                jwks_uri,
                http,
                settings.algorithms.clone(),
                Freshness { refetch_interval: settings.refetch_interval, max_age: settings.max_age },
                clock.clone(),
            ),
            validations,
            require_at_jwt_typ: settings.require_at_jwt_typ,
            leeway_seconds: settings.leeway_seconds,
            clock,
        }
    }

    pub fn jwks(&self) -> &JwksCache {
        &self.jwks
    }

    pub async fn verify(&self, token: &str) -> Result<TokenInfo, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        let validation = self
            .validations
            .iter()
            .find(|(alg, _)| *alg == header.alg)
            .map(|(_, v)| v)
            .ok_or(JwtError::Algorithm(header.alg))?;
        // RFC 7515 §4.1.11: a recipient must refuse a `crit` it does not
        // understand, and we implement no extension.
        if header.crit.is_some() {
            return Err(JwtError::Crit);
        }
        if self.require_at_jwt_typ && !header.typ.as_deref().is_some_and(is_at_jwt) {
            return Err(JwtError::Typ);
        }

        let (keys, index) = self.jwks.key_for(header.kid.as_deref(), header.alg).await?;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &keys.keys[index].key, validation)
            .map_err(|e| map_error(e.into_kind()))?
            .claims;

        // jsonwebtoken accepts an array `iss`; RFC 7519 says it is a string.
        if !claims.get("iss").is_some_and(Value::is_string) {
            return Err(JwtError::Issuer);
        }
        match claims.get("iat") {
            None => {}
            Some(iat) => {
                let iat = iat.as_u64().ok_or_else(|| JwtError::BadClaim("iat".into()))?;
                if iat > self.clock.unix_seconds().saturating_add(self.leeway_seconds) {
                    return Err(JwtError::IssuedInFuture);
                }
            }
        }
        Ok(TokenInfo::from_claims(claims))
    }
}

/// RFC 9068 §4: `at+jwt`, or the full media type, case-insensitively.
fn is_at_jwt(typ: &str) -> bool {
    typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
}

fn map_error(kind: ErrorKind) -> JwtError {
    match kind {
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidIssuer => JwtError::Issuer,
        ErrorKind::InvalidAudience => JwtError::Audience,
        ErrorKind::MissingRequiredClaim(claim) => JwtError::MissingClaim(claim),
        ErrorKind::InvalidClaimFormat(claim) => JwtError::BadClaim(claim),
        ErrorKind::InvalidSignature => JwtError::Signature,
        _ => JwtError::Malformed,
    }
}

/// Whether `token` has the shape of a signed JWT: three base64url parts, the
/// first a JSON object naming an `alg`. Nothing is trusted from it; it only
/// decides whether the token is verified here or sent to introspection. A
/// JWT that then fails verification is refused, never introspected instead.
pub fn looks_like_jwt(token: &str) -> bool {
    /// A JOSE header: an object with an `alg` member.
    #[derive(serde::Deserialize)]
    struct HeaderShape {
        #[serde(rename = "alg")]
        _alg: serde::de::IgnoredAny,
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    URL_SAFE_NO_PAD.decode(header).ok().is_some_and(|json| serde_json::from_slice::<HeaderShape>(&json).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k"}"#);
        assert!(looks_like_jwt(&format!("{header}.e30.c2ln")));
        assert!(!looks_like_jwt("2YotnFZFEjr1zCsicMWpAA"));
        assert!(!looks_like_jwt(&format!("{header}.e30")), "two parts");
        assert!(!looks_like_jwt(&format!("{header}.e30.c2ln.x.y")), "five parts: an encrypted JWT");
        assert!(!looks_like_jwt("abc.def.ghi"), "a first part that is not a JSON header");
        let no_alg = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT"}"#);
        assert!(!looks_like_jwt(&format!("{no_alg}.e30.c2ln")));
    }
}
