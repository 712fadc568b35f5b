//! API Gateway's authorizer cache: the authorizer's answer (policy and
//! context) stored under the values of the identity sources, for the stack's
//! TTL. The cached policy is evaluated again against each request's own method
//! ARN, so a policy that allows more than the route it was issued for is
//! replayed to every request with the same identity values: why the deployer
//! refuses a certificate-bound stack whose identity sources omit the
//! certificate.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// An authorizer's successful answer.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub policy: Value,
    pub context: serde_json::Map<String, Value>,
    pub principal: Option<String>,
}

/// Entries beyond this evict the oldest (API Gateway's own cache is bounded too).
const MAX_ENTRIES: usize = 10_000;

/// The identity-source values, in the stack's order.
type Key = Vec<String>;

/// The entries, and their keys oldest first (for eviction).
type Entries = (HashMap<Key, (Instant, Authorization)>, VecDeque<Key>);

pub struct AuthorizerCache {
    ttl: Duration,
    entries: Mutex<Entries>,
}

impl AuthorizerCache {
    /// `ttl` zero turns caching off.
    pub fn new(ttl: Duration) -> AuthorizerCache {
        AuthorizerCache { ttl, entries: Mutex::new((HashMap::new(), VecDeque::new())) }
    }

    pub fn get(&self, key: &[String]) -> Option<Authorization> {
        let entries = self.entries.lock().ok()?;
        let (stored, authorization) = entries.0.get(key)?;
        (stored.elapsed() < self.ttl).then(|| authorization.clone())
    }

    pub fn put(&self, key: Vec<String>, authorization: Authorization) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else { return };
        let (map, order) = &mut *entries;
        if map.insert(key.clone(), (Instant::now(), authorization)).is_none() {
            order.push_back(key);
        }
        while map.len() > MAX_ENTRIES {
            match order.pop_front() {
                Some(oldest) => map.remove(&oldest),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(sub: &str) -> Authorization {
        let mut context = serde_json::Map::new();
        context.insert("sub".into(), Value::String(sub.into()));
        Authorization { policy: Value::Null, context, principal: None }
    }

    #[test]
    fn a_full_cache_evicts_its_oldest_entry_only() {
        let cache = AuthorizerCache::new(Duration::from_secs(60));
        for i in 0..=MAX_ENTRIES {
            cache.put(vec![i.to_string()], answer("x"));
        }
        assert!(cache.get(&["0".to_owned()]).is_none(), "the oldest went");
        assert!(cache.get(&["1".to_owned()]).is_some() && cache.get(&[MAX_ENTRIES.to_string()]).is_some());
    }

    #[test]
    fn entries_expire_and_a_zero_ttl_caches_nothing() {
        let cache = AuthorizerCache::new(Duration::from_millis(300));
        cache.put(vec!["a".into()], answer("a"));
        assert_eq!(cache.get(&["a".to_owned()]).map(|a| a.context["sub"].clone()), Some("a".into()));
        assert!(cache.get(&["b".to_owned()]).is_none());
        std::thread::sleep(Duration::from_millis(310));
        assert!(cache.get(&["a".to_owned()]).is_none(), "expired");
        let off = AuthorizerCache::new(Duration::ZERO);
        off.put(vec!["a".into()], answer("a"));
        assert!(off.get(&["a".to_owned()]).is_none());
    }
}
