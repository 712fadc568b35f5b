//! The one table of signature algorithms: which ones the authorizer accepts
//! at all, which a key of a given type may verify, and how a configured list
//! is parsed. Access tokens (`jwt.rs`, `jwks.rs`) and DPoP proofs (`dpop.rs`)
//! both read it, so a key type can never verify an algorithm in one place
//! that another place refuses.

use std::str::FromStr as _;

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};

/// Every asymmetric algorithm the authorizer verifies. HMAC and `none` are
/// never accepted: a verifier that only holds public keys has no business
/// with symmetric ones (RFC 8725 §3.1).
pub const SUPPORTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

const RSA: &[Algorithm] =
    &[Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512];

/// The algorithms a key of this type may verify, before configuration or the
/// JWK's own `alg` narrow them. Symmetric keys and unsupported curves: none.
pub fn for_key_type(parameters: &AlgorithmParameters) -> &'static [Algorithm] {
    match parameters {
        AlgorithmParameters::RSA(_) => RSA,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => &[],
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
        _ => &[],
    }
}

/// The algorithms `jwk` may verify among `allowed`: its type decides, and its
/// own `alg`, when it names one, is the only one it may verify (RFC 8725 §3.1).
pub fn for_key(jwk: &Jwk, allowed: &[Algorithm]) -> Vec<Algorithm> {
    let declared = jwk.common.key_algorithm.map(Algorithm::try_from);
    for_key_type(&jwk.algorithm)
        .iter()
        .copied()
        .filter(|alg| allowed.contains(alg))
        .filter(|alg| match &declared {
            None => true,
            Some(Ok(declared)) => declared == alg,
            // A JWK declaring an algorithm we do not know (or an encryption
            // algorithm) verifies nothing.
            Some(Err(_)) => false,
        })
        .collect()
}

/// Parses `RS256,ES256,...` against [`SUPPORTED`]; the error says what is accepted.
pub fn parse_list(text: &str) -> Result<Vec<Algorithm>, String> {
    let mut algorithms = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let algorithm = Algorithm::from_str(name)
            .ok()
            .filter(|a| SUPPORTED.contains(a))
            .ok_or_else(|| format!("{name:?} is not supported: use {}", names(SUPPORTED)))?;
        if !algorithms.contains(&algorithm) {
            algorithms.push(algorithm);
        }
    }
    if algorithms.is_empty() {
        return Err("must list at least one algorithm".into());
    }
    Ok(algorithms)
}

/// `RS256 ES256 ...`, as a challenge's `algs` parameter lists them.
pub fn names(algorithms: &[Algorithm]) -> String {
    algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwk(value: serde_json::Value) -> Jwk {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn key_types_decide_and_a_declared_alg_narrows() {
        let n = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
        assert_eq!(for_key(&jwk(json!({"kty":"RSA","n":n,"e":"AQAB"})), SUPPORTED), RSA);
        assert_eq!(for_key(&jwk(json!({"kty":"RSA","alg":"PS256","n":n,"e":"AQAB"})), SUPPORTED), [Algorithm::PS256]);
        assert_eq!(for_key(&jwk(json!({"kty":"RSA","alg":"RS256","n":n,"e":"AQAB"})), &[Algorithm::PS256]), []);
        assert_eq!(for_key(&jwk(json!({"kty":"oct","k":"c2VjcmV0"})), SUPPORTED), []);
        assert_eq!(for_key(&jwk(json!({"kty":"oct","alg":"HS256","k":"c2VjcmV0"})), SUPPORTED), []);
    }

    #[test]
    fn lists_are_parsed_against_the_supported_set() {
        assert_eq!(parse_list("ES256, RS256,ES256"), Ok(vec![Algorithm::ES256, Algorithm::RS256]));
        for bad in ["HS256", "none", "RS1", ""] {
            assert!(parse_list(bad).is_err(), "{bad}");
        }
        assert_eq!(names(&[Algorithm::ES256, Algorithm::EdDSA]), "ES256 EdDSA");
    }
}
