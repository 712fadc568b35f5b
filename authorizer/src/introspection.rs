//! Opaque tokens through RFC 7662 token introspection, with a cache.
//!
//! The cache is keyed by SHA-256 of the token, never the token itself, so a
//! memory dump of a warm function yields no usable token. An active answer is
//! reused until `min(exp, now + TTL)`; an inactive one for a short negative
//! TTL (so a flood of junk tokens does not become a flood of introspection
//! calls). Failures to reach the server are never cached.
//!
//! The cache is bounded in entries and in bytes. When it is full, the answers
//! least worth keeping go first: quick_cache's CLOCK-PRO admits a new key as
//! "cold" and evicts cold keys before the ones read again, so a flood of
//! one-off junk tokens evicts other junk, not the tokens in use.

use std::sync::Arc;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::clock::Clock;
use crate::config::{ClientAuthMethod, IntrospectionSettings};
use crate::http::{self, FetchError};
use crate::token::TokenInfo;

/// At most this many answers are kept, whatever their size.
pub const MAX_ENTRIES: usize = 10_000;

/// What an entry costs beyond its answer's JSON: key, expiry, bookkeeping.
const ENTRY_OVERHEAD_BYTES: u64 = 96;

#[derive(Debug, thiserror::Error)]
pub enum IntrospectionError {
    #[error("token is not active")]
    Inactive,
    #[error("the introspection endpoint refused to introspect the token (HTTP 400)")]
    Refused,
    #[error("introspection response has no boolean `active`")]
    BadResponse,
    #[error("aud names no accepted audience")]
    Audience,
    #[error("iss is not an accepted issuer")]
    Issuer,
    #[error("introspection: {0}")]
    Fetch(#[from] FetchError),
}

/// RFC 6749 §5.2 error codes about the client (this resource server), not the token.
const CLIENT_ERRORS: &[&str] = &["invalid_client", "unauthorized_client"];

pub type TokenKey = [u8; 32];

pub fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Clone)]
enum Answer {
    Active(Arc<TokenInfo>),
    Inactive,
    /// The endpoint refused to introspect the token (HTTP 400).
    Refused,
}

#[derive(Clone)]
struct Entry {
    answer: Answer,
    /// UNIX seconds.
    expires: u64,
    /// What this entry weighs against the byte budget.
    bytes: u64,
}

/// Weighs entries in bytes, with a floor that makes the byte budget also an
/// entry budget: `budget / floor` = [`MAX_ENTRIES`].
#[derive(Clone)]
struct Weigher {
    floor: u64,
}

impl quick_cache::Weighter<TokenKey, Entry> for Weigher {
    fn weight(&self, _: &TokenKey, entry: &Entry) -> u64 {
        entry.bytes.max(self.floor)
    }
}

/// Answers by token hash, each with its expiry.
pub struct IntrospectionCache {
    entries: quick_cache::sync::Cache<TokenKey, Entry, Weigher>,
    max_bytes: u64,
}

impl IntrospectionCache {
    pub fn new(max_bytes: u64) -> Self {
        let floor = max_bytes.div_ceil(MAX_ENTRIES as u64).max(1);
        let entries = quick_cache::sync::Cache::with_weighter(MAX_ENTRIES, max_bytes, Weigher { floor });
        IntrospectionCache { entries, max_bytes }
    }

    fn get(&self, key: &TokenKey, now: u64) -> Option<Answer> {
        let entry = self.entries.get(key)?;
        if entry.expires > now {
            Some(entry.answer)
        } else {
            self.entries.remove(key);
            None
        }
    }

    fn put(&self, key: TokenKey, answer: Answer, expires: u64, answer_bytes: usize) {
        let bytes = answer_bytes as u64 + ENTRY_OVERHEAD_BYTES;
        self.entries.insert(key, Entry { answer, expires, bytes });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes the entries held weigh (never more than the budget).
    pub fn weight(&self) -> u64 {
        self.entries.weight()
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

pub struct Introspector {
    settings: IntrospectionSettings,
    endpoint: reqwest::Url,
    http: reqwest::Client,
    cache: IntrospectionCache,
    clock: Clock,
}

impl Introspector {
    /// `endpoint` is the configured one, or the one discovery found.
    pub fn new(
        settings: IntrospectionSettings,
        endpoint: reqwest::Url,
        http: reqwest::Client,
        clock: Clock,
    ) -> Introspector {
        let cache = IntrospectionCache::new(settings.cache_max_bytes);
        Introspector { settings, endpoint, http, cache, clock }
    }

    pub fn cache(&self) -> &IntrospectionCache {
        &self.cache
    }

    /// `key` is [`token_key`] of `token` (the caller already has it).
    pub async fn introspect(&self, token: &str, key: &TokenKey) -> Result<Arc<TokenInfo>, IntrospectionError> {
        let now = self.clock.unix_seconds();
        match self.cache.get(key, now) {
            Some(Answer::Active(info)) => return self.accept(info),
            Some(Answer::Inactive) => return Err(IntrospectionError::Inactive),
            Some(Answer::Refused) => return Err(IntrospectionError::Refused),
            None => {}
        }

        let negative_ttl = self.settings.negative_cache_ttl.as_secs();
        let fetched: http::Fetched<Map<String, Value>> = match http::fetch(self.request(token)).await {
            Ok(fetched) => fetched,
            // RFC 6749 §5.2: `invalid_client` / `unauthorized_client` are
            // about our own credentials, whatever the token: every token
            // would be refused while they last. An outage, never cached.
            Err(FetchError::BadRequest(Some(error))) if CLIENT_ERRORS.contains(&error.as_str()) => {
                return Err(IntrospectionError::Fetch(FetchError::BadRequest(Some(error))));
            }
            // RFC 7662 §2.3 and RFC 6749 §5.2: any other 400 is about the
            // request, and ours is well-formed, so it is about the token (a
            // provider that does not introspect this type of token): not
            // valid here, and not an outage.
            Err(FetchError::BadRequest(_)) => {
                if negative_ttl > 0 {
                    self.cache.put(*key, Answer::Refused, now + negative_ttl, 0);
                }
                return Err(IntrospectionError::Refused);
            }
            Err(other) => return Err(other.into()),
        };
        match fetched.body.get("active") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => {
                if negative_ttl > 0 {
                    self.cache.put(*key, Answer::Inactive, now + negative_ttl, 0);
                }
                return Err(IntrospectionError::Inactive);
            }
            _ => return Err(IntrospectionError::BadResponse),
        }
        let info = Arc::new(TokenInfo::from_claims(fetched.body));
        // An "active" token past its exp is not active, whatever the server said.
        if info.exp.is_some_and(|exp| exp <= now) {
            return Err(IntrospectionError::Inactive);
        }
        let ttl = self.settings.cache_ttl.as_secs();
        if ttl > 0 {
            let expires = info.exp.map_or(now + ttl, |exp| exp.min(now + ttl));
            self.cache.put(*key, Answer::Active(info.clone()), expires, fetched.size);
        }
        self.accept(info)
    }

    /// The audience and issuer checks, when configured. An answer without
    /// the member fails them: a token whose audience is unknown is not ours.
    fn accept(&self, info: Arc<TokenInfo>) -> Result<Arc<TokenInfo>, IntrospectionError> {
        let s = &self.settings;
        if !s.audiences.is_empty() && !info.aud.iter().any(|a| s.audiences.contains(a)) {
            return Err(IntrospectionError::Audience);
        }
        if !s.issuers.is_empty() && !info.iss.as_ref().is_some_and(|i| s.issuers.contains(i)) {
            return Err(IntrospectionError::Issuer);
        }
        Ok(info)
    }

    fn request(&self, token: &str) -> reqwest::RequestBuilder {
        let s = &self.settings;
        let request = self.http.post(self.endpoint.clone()).header(reqwest::header::ACCEPT, "application/json");
        match s.auth_method {
            // RFC 6749 §2.3.1: client id and secret are form-urlencoded before
            // going into the Basic credentials.
            ClientAuthMethod::ClientSecretBasic => request
                .basic_auth(form_urlencode(&s.client_id), Some(form_urlencode(&s.client_secret)))
                .form(&[("token", token), ("token_type_hint", "access_token")]),
            ClientAuthMethod::ClientSecretPost => request.form(&[
                ("token", token),
                ("token_type_hint", "access_token"),
                ("client_id", s.client_id.as_str()),
                ("client_secret", s.client_secret.as_str()),
            ]),
        }
    }
}

fn form_urlencode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(claims: usize) -> Answer {
        let mut map = Map::new();
        for i in 0..claims {
            map.insert(format!("claim{i}"), Value::String("x".repeat(100)));
        }
        Answer::Active(Arc::new(TokenInfo::from_claims(map)))
    }

    #[test]
    fn a_flood_of_junk_tokens_does_not_evict_a_token_in_use() {
        let cache = IntrospectionCache::new(1 << 20);
        let now = 1_700_000_000;
        let good = token_key("good");
        cache.put(good, active(3), now + 600, 400);
        for i in 0..(MAX_ENTRIES * 3) {
            assert!(cache.get(&good, now).is_some(), "the token in use was evicted after {i} junk tokens");
            cache.put(token_key(&format!("junk-{i}")), Answer::Inactive, now + 5, 0);
            assert!(cache.len() <= MAX_ENTRIES, "{} entries", cache.len());
        }
        assert!(cache.len() > MAX_ENTRIES / 2, "the cache was cleared instead of evicting: {} entries", cache.len());
    }

    #[test]
    fn large_answers_are_bounded_in_bytes() {
        let cache = IntrospectionCache::new(256 << 10);
        let now = 1_700_000_000;
        for i in 0..2_000 {
            cache.put(token_key(&format!("big-{i}")), active(40), now + 600, 4_200);
            assert!(cache.weight() <= cache.max_bytes(), "{} bytes held", cache.weight());
        }
        assert!(cache.len() <= (256 << 10) / 4_200 + 1, "{} large answers in 256 KiB", cache.len());
        assert!(cache.len() >= 10, "but not emptied: {}", cache.len());
    }

    #[test]
    fn expired_entries_are_misses() {
        let cache = IntrospectionCache::new(1 << 20);
        let now = 1_700_000_000;
        cache.put(token_key("t"), Answer::Inactive, now + 1, 0);
        assert!(cache.get(&token_key("t"), now).is_some());
        assert!(cache.get(&token_key("t"), now + 1).is_none());
        assert!(cache.is_empty(), "an expired entry is dropped when found");
    }
}
