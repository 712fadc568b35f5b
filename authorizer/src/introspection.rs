//! Opaque tokens through RFC 7662 token introspection, with a cache.
//!
//! The cache is keyed by SHA-256 of the token, never the token itself, so a
//! memory dump of a warm function yields no usable token. An active answer is
//! reused until `min(exp, now + TTL)`; an inactive one for a short negative
//! TTL (so a flood of junk tokens does not become a flood of introspection
//! calls). Failures to reach the server are never cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::config::{ClientAuthMethod, IntrospectionSettings};
use crate::http::{self, FetchError};
use crate::token::TokenInfo;

/// Beyond this many entries, expired ones are swept; if none are, the cache is
/// cleared. Bounded memory matters more than a perfect hit rate.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum IntrospectionError {
    #[error("token is not active")]
    Inactive,
    #[error("introspection response has no boolean `active`")]
    BadResponse,
    #[error("aud names no accepted audience")]
    Audience,
    #[error("iss is not an accepted issuer")]
    Issuer,
    #[error("introspection: {0}")]
    Fetch(#[from] FetchError),
}

pub type TokenKey = [u8; 32];

pub fn token_key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Clone)]
enum Cached {
    Active(Arc<TokenInfo>),
    Inactive,
}

/// Answers by token hash, each with its expiry (UNIX seconds).
pub struct IntrospectionCache {
    entries: Mutex<HashMap<TokenKey, (Cached, u64)>>,
}

impl IntrospectionCache {
    fn new() -> Self {
        IntrospectionCache { entries: Mutex::new(HashMap::new()) }
    }

    fn get(&self, key: &TokenKey, now: u64) -> Option<Cached> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|(_, expires)| *expires > now).map(|(cached, _)| cached.clone())
    }

    fn put(&self, key: TokenKey, cached: Cached, expires: u64, now: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, e)| *e > now);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (cached, expires));
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct Introspector {
    settings: IntrospectionSettings,
    http: reqwest::Client,
    cache: IntrospectionCache,
}

impl Introspector {
    pub fn new(settings: IntrospectionSettings, http: reqwest::Client) -> Introspector {
        Introspector { settings, http, cache: IntrospectionCache::new() }
    }

    pub fn cache(&self) -> &IntrospectionCache {
        &self.cache
    }

    /// `key` is [`token_key`] of `token` (the caller already has it).
    pub async fn introspect(&self, token: &str, key: &TokenKey) -> Result<Arc<TokenInfo>, IntrospectionError> {
        let key = *key;
        let now = unix_now();
        match self.cache.get(&key, now) {
            Some(Cached::Active(info)) => return self.accept(info),
            Some(Cached::Inactive) => return Err(IntrospectionError::Inactive),
            None => {}
        }

        let response: Map<String, Value> = http::json(self.request(token)).await?;
        match response.get("active") {
            Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => {
                let ttl = self.settings.negative_cache_ttl.as_secs();
                if ttl > 0 {
                    self.cache.put(key, Cached::Inactive, now + ttl, now);
                }
                return Err(IntrospectionError::Inactive);
            }
            _ => return Err(IntrospectionError::BadResponse),
        }
        let info = Arc::new(TokenInfo::from_claims(response));
        // An "active" token past its exp is not active, whatever the server said.
        if info.exp.is_some_and(|exp| exp <= now) {
            return Err(IntrospectionError::Inactive);
        }
        let ttl = self.settings.cache_ttl.as_secs();
        if ttl > 0 {
            let expires = info.exp.map_or(now + ttl, |exp| exp.min(now + ttl));
            self.cache.put(key, Cached::Active(info.clone()), expires, now);
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
        let request = self.http.post(s.endpoint.clone()).header(reqwest::header::ACCEPT, "application/json");
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

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
}
