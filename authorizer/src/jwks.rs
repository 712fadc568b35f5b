//! The issuer's signing keys: fetched at start-up, cached across invocations,
//! refetched when a token names an unknown `kid` — at most once per
//! configured interval, with one fetch in flight shared by every waiter.
//!
//! Each key is checked when it is loaded, not when it is used: its `kty`/`crv`
//! (and `alg`, when the JWK names one) decide which algorithms it may verify;
//! keys for encryption (`use: enc`), symmetric keys, and keys of types this
//! authorizer does not support are dropped. Parsing a key once here is what
//! keeps the per-request path free of key parsing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use serde::Deserialize;

use crate::http::{self, FetchError};

/// A usable verification key.
pub struct VerificationKey {
    pub kid: Option<String>,
    /// The algorithms this key may verify (already intersected with configuration).
    pub algorithms: Vec<Algorithm>,
    pub key: DecodingKey,
}

#[derive(Default)]
pub struct KeySet {
    pub keys: Vec<VerificationKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no key with this kid in the issuer's JWKS")]
    UnknownKid,
    #[error("token has no kid and the JWKS has no single key for its algorithm")]
    NoKid,
    #[error("the token's alg is not allowed for the JWK it names")]
    AlgorithmMismatch,
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("fetching the JWKS: {0}")]
    Fetch(#[from] FetchError),
}

impl KeySet {
    /// Builds the usable keys of a JWKS document, keeping only `allowed` algorithms.
    pub fn from_jwks(document: &JwksDocument, allowed: &[Algorithm]) -> KeySet {
        let keys = document
            .keys
            .iter()
            // A key we cannot parse (an unknown kty, say) is skipped: one odd
            // key must not take the whole set down.
            .filter_map(|raw| serde_json::from_value::<Jwk>(raw.clone()).ok())
            .filter_map(|jwk| verification_key(&jwk, allowed))
            .collect();
        KeySet { keys }
    }

    /// The key for a token's `kid` and `alg`.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<&VerificationKey, KeyError> {
        self.position(kid, alg).map(|index| &self.keys[index])
    }

    /// Like [`KeySet::find`], as an index into `keys`.
    pub fn position(&self, kid: Option<&str>, alg: Algorithm) -> Result<usize, KeyError> {
        match kid {
            Some(kid) => {
                let index = self.keys.iter().position(|k| k.kid.as_deref() == Some(kid)).ok_or(KeyError::UnknownKid)?;
                if self.keys[index].algorithms.contains(&alg) { Ok(index) } else { Err(KeyError::AlgorithmMismatch) }
            }
            None => {
                let mut candidates = self.keys.iter().enumerate().filter(|(_, k)| k.algorithms.contains(&alg));
                match (candidates.next(), candidates.next()) {
                    (Some((index, _)), None) => Ok(index),
                    _ => Err(KeyError::NoKid),
                }
            }
        }
    }
}

fn verification_key(jwk: &Jwk, allowed: &[Algorithm]) -> Option<VerificationKey> {
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return None;
    }
    let by_type: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
        // Symmetric keys have no place in a public JWKS; anything else is unsupported.
        _ => return None,
    };
    let mut algorithms: Vec<Algorithm> = by_type.iter().copied().filter(|a| allowed.contains(a)).collect();
    if let Some(declared) = jwk.common.key_algorithm {
        // RFC 8725 §3.1: the JWK's own alg, when present, is the only one it may verify.
        algorithms.retain(|a| key_algorithm_matches(declared, *a));
    }
    if algorithms.is_empty() {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerificationKey { kid: jwk.common.key_id.clone(), algorithms, key })
}

fn key_algorithm_matches(declared: KeyAlgorithm, alg: Algorithm) -> bool {
    matches!(
        (declared, alg),
        (KeyAlgorithm::RS256, Algorithm::RS256)
            | (KeyAlgorithm::RS384, Algorithm::RS384)
            | (KeyAlgorithm::RS512, Algorithm::RS512)
            | (KeyAlgorithm::PS256, Algorithm::PS256)
            | (KeyAlgorithm::PS384, Algorithm::PS384)
            | (KeyAlgorithm::PS512, Algorithm::PS512)
            | (KeyAlgorithm::ES256, Algorithm::ES256)
            | (KeyAlgorithm::ES384, Algorithm::ES384)
            | (KeyAlgorithm::EdDSA, Algorithm::EdDSA)
    )
}

#[derive(Debug, Deserialize)]
pub struct JwksDocument {
    pub keys: Vec<serde_json::Value>,
}

/// The cache of one issuer's keys.
pub struct JwksCache {
    uri: Url,
    http: reqwest::Client,
    allowed: Vec<Algorithm>,
    refetch_interval: Duration,
    keys: RwLock<Arc<KeySet>>,
    /// Held while a fetch is in flight; holds the time of the last refetch
    /// triggered by an unknown kid.
    refetch: tokio::sync::Mutex<Option<Instant>>,
    /// Bumped after every successful fetch, so a waiter can tell that the
    /// fetch it queued behind already brought new keys.
    generation: AtomicU64,
    fetches: AtomicU64,
}

impl JwksCache {
    pub fn new(uri: Url, http: reqwest::Client, allowed: Vec<Algorithm>, refetch_interval: Duration) -> JwksCache {
        JwksCache {
            uri,
            http,
            allowed,
            refetch_interval,
            keys: RwLock::new(Arc::default()),
            refetch: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
        }
    }

    /// Fetches the keys now (at init, before the first request). This does
    /// not open the refetch interval: a key rotated in just after a cold
    /// start is still picked up by the first token that uses it.
    pub async fn hydrate(&self) -> Result<usize, FetchError> {
        let _in_flight = self.refetch.lock().await;
        self.fetch().await
    }

    /// How many JWKS fetches this cache has made (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn current(&self) -> Arc<KeySet> {
        // A poisoned lock only means a panic elsewhere while swapping an Arc;
        // the Arc inside is still whole.
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn fetch(&self) -> Result<usize, FetchError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let document: JwksDocument = http::json(self.http.get(self.uri.clone())).await?;
        let set = Arc::new(KeySet::from_jwks(&document, &self.allowed));
        let count = set.keys.len();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = set;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(count)
    }

    /// The key set holding the key for (`kid`, `alg`), and that key's index.
    pub async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<(Arc<KeySet>, usize), JwksError> {
        let set = self.current();
        match set.position(kid, alg) {
            Err(KeyError::UnknownKid) => {}
            found => return Ok((set, found?)),
        }
        // Unknown kid: maybe the issuer rotated its keys.
        let generation_seen = self.generation.load(Ordering::Acquire);
        let mut last_fetch = self.refetch.lock().await;
        if self.generation.load(Ordering::Acquire) == generation_seen {
            if last_fetch.is_some_and(|at| at.elapsed() < self.refetch_interval) {
                // Penalty box: a stream of tokens with made-up kids must not
                // turn into a stream of requests to the identity provider.
                return Err(KeyError::UnknownKid.into());
            }
            *last_fetch = Some(Instant::now());
            self.fetch().await?;
        }
        drop(last_fetch);
        let set = self.current();
        let index = set.position(kid, alg)?;
        Ok((set, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(keys: serde_json::Value, allowed: &[Algorithm]) -> KeySet {
        let document: JwksDocument = serde_json::from_value(json!({ "keys": keys })).unwrap();
        KeySet::from_jwks(&document, allowed)
    }

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    #[test]
    fn keys_are_filtered_by_type_use_and_declared_alg() {
        let all = crate::config::SUPPORTED_ALGORITHMS;
        let keys = set(
            json!([
                {"kty":"RSA","kid":"rsa","n":N,"e":"AQAB"},
                {"kty":"RSA","kid":"rs256-only","alg":"RS256","n":N,"e":"AQAB"},
                {"kty":"RSA","kid":"enc","use":"enc","n":N,"e":"AQAB"},
                {"kty":"oct","kid":"hmac","k":"c2VjcmV0"},
                {"kty":"XYZ","kid":"unknown"}
            ]),
            all,
        );
        let kids: Vec<_> = keys.keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["rsa", "rs256-only"]);
        assert!(keys.find(Some("rsa"), Algorithm::PS256).is_ok());
        assert_eq!(keys.find(Some("rs256-only"), Algorithm::PS256).err(), Some(KeyError::AlgorithmMismatch));
        assert_eq!(keys.find(Some("rsa"), Algorithm::ES256).err(), Some(KeyError::AlgorithmMismatch));
        assert_eq!(keys.find(Some("hmac"), Algorithm::HS256).err(), Some(KeyError::UnknownKid));
        assert_eq!(keys.find(None, Algorithm::RS256).err(), Some(KeyError::NoKid), "two RS256 keys: ambiguous");
    }

    #[test]
    fn configured_algorithms_narrow_what_a_key_verifies() {
        let keys = set(json!([{"kty":"RSA","kid":"rsa","n":N,"e":"AQAB"}]), &[Algorithm::PS256]);
        assert_eq!(keys.keys[0].algorithms, [Algorithm::PS256]);
        assert!(keys.find(None, Algorithm::PS256).is_ok());
    }
}
