//! The signing keys of the JWKS URI: fetched at start-up, cached across
//! invocations, and kept fresh two ways:
//! - a token naming an unknown `kid` triggers a refetch (maybe the issuer
//!   rotated its keys), at most once per configured interval, with one fetch
//!   in flight shared by every waiter;
//! - keys older than their maximum age (configured, or the identity
//!   provider's shorter `Cache-Control: max-age`) are refreshed in the
//!   background, so a key the provider withdrew (compromised) stops being
//!   trusted. No request ever waits for that refresh, and a refresh that fails
//!   keeps the keys already held.
//!
//! Each key is checked when it is loaded, not when it is used: its `kty`/`crv`
//! (and `alg`, when the JWK names one) decide which algorithms it may verify
//! ([`crate::algorithms`]); keys for encryption (`use: enc`), symmetric keys,
//! and keys of types this authorizer does not support are dropped. Parsing a
//! key once here is what keeps the per-request path free of key parsing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use serde::Deserialize;

use crate::algorithms;
use crate::clock::Clock;
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

    /// The key for a token's `kid` and `alg`, as an index into `keys`.
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
    let algorithms = algorithms::for_key(jwk, allowed);
    if algorithms.is_empty() {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerificationKey { kid: jwk.common.key_id.clone(), algorithms, key })
}

#[derive(Debug, Deserialize)]
pub struct JwksDocument {
    pub keys: Vec<serde_json::Value>,
}

/// How the cache keeps its keys fresh.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    /// An unknown `kid` triggers at most one fetch per this interval; also the
    /// shortest time a key set is kept, whatever the server's `max-age`.
    pub refetch_interval: Duration,
    /// Keys older than this are refreshed in the background.
    pub max_age: Duration,
}

/// The cache of one JWKS URI's keys. Cheap to clone: clones share the keys.
#[derive(Clone)]
pub struct JwksCache {
    shared: Arc<Shared>,
}

struct Shared {
    uri: Url,
    http: reqwest::Client,
    allowed: Vec<Algorithm>,
    freshness: Freshness,
    keys: RwLock<Arc<KeySet>>,
    /// Held while a fetch is in flight; holds when (on `clock`'s monotonic
    /// reading) an unknown kid last triggered a refetch.
    refetch: tokio::sync::Mutex<Option<Duration>>,
    /// Bumped after every successful fetch, so a waiter can tell that the
    /// fetch it queued behind already brought new keys.
    generation: AtomicU64,
    fetches: AtomicU64,
    /// When the keys go stale, in milliseconds on `clock`'s monotonic reading.
    stale_at_ms: AtomicU64,
    clock: Clock,
    refreshing: AtomicBool,
}

impl JwksCache {
    pub fn new(
        uri: Url,
        http: reqwest::Client,
        allowed: Vec<Algorithm>,
        freshness: Freshness,
        clock: Clock,
    ) -> JwksCache {
        JwksCache {
            shared: Arc::new(Shared {
                uri,
                http,
                allowed,
                freshness,
                keys: RwLock::new(Arc::default()),
                refetch: tokio::sync::Mutex::new(None),
                generation: AtomicU64::new(0),
                fetches: AtomicU64::new(0),
                stale_at_ms: AtomicU64::new(0),
                clock,
                refreshing: AtomicBool::new(false),
            }),
        }
    }

    /// Fetches the keys now (at init, before the first request). This does
    /// not open the refetch interval: a key rotated in just after a cold
    /// start is still picked up by the first token that uses it.
    pub async fn hydrate(&self) -> Result<usize, FetchError> {
        let _in_flight = self.shared.refetch.lock().await;
        self.shared.fetch().await
    }

    /// How many JWKS fetches this cache has made (for tests and metrics).
    pub fn fetch_count(&self) -> u64 {
        self.shared.fetches.load(Ordering::Relaxed)
    }

    /// Whether a background refresh is under way (for tests and metrics).
    pub fn refresh_in_flight(&self) -> bool {
        self.shared.refreshing.load(Ordering::Acquire)
    }

    /// The key set holding the key for (`kid`, `alg`), and that key's index.
    pub async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<(Arc<KeySet>, usize), JwksError> {
        self.refresh_in_background_if_stale();
        let shared = &self.shared;
        let set = shared.current();
        match set.position(kid, alg) {
            Err(KeyError::UnknownKid) => {}
            found => return Ok((set, found?)),
        }
        // Unknown kid: maybe the issuer rotated its keys.
        let generation_seen = shared.generation.load(Ordering::Acquire);
        let mut last_fetch = shared.refetch.lock().await;
        if shared.generation.load(Ordering::Acquire) == generation_seen {
            let now = shared.clock.monotonic();
            if last_fetch.is_some_and(|at| now.saturating_sub(at) < shared.freshness.refetch_interval) {
                // Penalty box: a stream of tokens with made-up kids must not
                // turn into a stream of requests to the identity provider.
                return Err(KeyError::UnknownKid.into());
            }
            *last_fetch = Some(now);
            shared.fetch().await?;
        }
        drop(last_fetch);
        let set = shared.current();
        let index = set.position(kid, alg)?;
        Ok((set, index))
    }

    /// Starts one background refresh when the keys are past their age. The
    /// caller goes on with the keys it has. (On Lambda the task runs while
    /// the function is thawed: during this invocation and the next ones.)
    fn refresh_in_background_if_stale(&self) {
        let shared = &self.shared;
        if shared.now_ms() < shared.stale_at_ms.load(Ordering::Relaxed) {
            return;
        }
        if shared.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let outcome = {
                let _in_flight = shared.refetch.lock().await;
                shared.fetch().await
            };
            if let Err(error) = outcome {
                // Keep the keys we have; try again after the refetch interval.
                let retry = shared.now_ms() + shared.freshness.refetch_interval.as_millis() as u64;
                shared.stale_at_ms.store(retry, Ordering::Relaxed);
                tracing::warn!(%error, "refreshing the JWKS failed; the keys already held stay in use");
            }
            shared.refreshing.store(false, Ordering::Release);
        });
    }
}

impl Shared {
    fn current(&self) -> Arc<KeySet> {
        // A poisoned lock only means a panic elsewhere while swapping an Arc;
        // the Arc inside is still whole.
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn now_ms(&self) -> u64 {
        self.clock.monotonic().as_millis() as u64
    }

    async fn fetch(&self) -> Result<usize, FetchError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched: http::Fetched<JwksDocument> = http::fetch(self.http.get(self.uri.clone())).await?;
        let set = Arc::new(KeySet::from_jwks(&fetched.body, &self.allowed));
        let count = set.keys.len();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = set;
        self.generation.fetch_add(1, Ordering::Release);
        let freshness = self.freshness;
        let max_age =
            fetched.max_age.map_or(freshness.max_age, |m| m.min(freshness.max_age)).max(freshness.refetch_interval);
        self.stale_at_ms.store(self.now_ms() + max_age.as_millis() as u64, Ordering::Relaxed);
        Ok(count)
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
        let keys = set(
            json!([
                {"kty":"RSA","kid":"rsa","n":N,"e":"AQAB"},
                {"kty":"RSA","kid":"rs256-only","alg":"RS256","n":N,"e":"AQAB"},
                {"kty":"RSA","kid":"enc","use":"enc","n":N,"e":"AQAB"},
                {"kty":"oct","kid":"hmac","k":"c2VjcmV0"},
                {"kty":"XYZ","kid":"unknown"}
            ]),
            algorithms::SUPPORTED,
        );
        let kids: Vec<_> = keys.keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["rsa", "rs256-only"]);
        assert!(keys.position(Some("rsa"), Algorithm::PS256).is_ok());
        assert_eq!(keys.position(Some("rs256-only"), Algorithm::PS256), Err(KeyError::AlgorithmMismatch));
        assert_eq!(keys.position(Some("rsa"), Algorithm::ES256), Err(KeyError::AlgorithmMismatch));
        assert_eq!(keys.position(Some("hmac"), Algorithm::HS256), Err(KeyError::UnknownKid));
        assert_eq!(keys.position(None, Algorithm::RS256), Err(KeyError::NoKid), "two RS256 keys: ambiguous");
    }

    #[test]
    fn configured_algorithms_narrow_what_a_key_verifies() {
        let keys = set(json!([{"kty":"RSA","kid":"rsa","n":N,"e":"AQAB"}]), &[Algorithm::PS256]);
        assert_eq!(keys.keys[0].algorithms, [Algorithm::PS256]);
        assert!(keys.position(None, Algorithm::PS256).is_ok());
    }
}
