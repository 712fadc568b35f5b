//! API Gateway's authorizer cache: the authorizer's answer (policy and
//! context) stored under the values of the identity sources, for the stack's
//! TTL. The cached policy is evaluated again against each request's own method
//! ARN, so a policy that allows more than the route it was issued for is
//! replayed to every request with the same identity values: why the deployer
//! refuses a certificate-bound stack whose identity sources omit the
//! certificate.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
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

/// Bytes beyond this evict the oldest too: identity sources are the client's
/// to choose (a certificate PEM, a long header), and a policy or context is
/// the authorizer's, so a count alone does not bound the memory.
const MAX_BYTES: usize = 32 * 1024 * 1024;

/// The identity-source values, in the stack's order.
type Key = Vec<String>;

struct Entry {
    stored: Instant,
    /// Shared with every request it answers (no copy of the policy per hit).
    authorization: Arc<Authorization>,
    bytes: usize,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Key, Entry>,
    /// The keys, oldest first (for eviction).
    order: VecDeque<Key>,
    /// What the keys and entries hold, about.
    bytes: usize,
}

pub struct AuthorizerCache {
    ttl: Duration,
    max_entries: usize,
    max_bytes: usize,
    entries: Mutex<Entries>,
}

impl AuthorizerCache {
    /// `ttl` zero turns caching off.
    pub fn new(ttl: Duration) -> AuthorizerCache {
        Self::bounded(ttl, MAX_ENTRIES, MAX_BYTES)
    }

    fn bounded(ttl: Duration, max_entries: usize, max_bytes: usize) -> AuthorizerCache {
        AuthorizerCache { ttl, max_entries, max_bytes, entries: Mutex::new(Entries::default()) }
    }

    pub fn get(&self, key: &[String]) -> Option<Arc<Authorization>> {
        self.get_at(key, Instant::now())
    }

    /// [`AuthorizerCache::get`] at `now` (tests move their own clock).
    fn get_at(&self, key: &[String], now: Instant) -> Option<Arc<Authorization>> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.map.get(key)?;
        (now.saturating_duration_since(entry.stored) < self.ttl).then(|| entry.authorization.clone())
    }

    pub fn put(&self, key: Vec<String>, authorization: Arc<Authorization>) {
        // With caching off (every request of an uncached stack comes here), weigh nothing.
        if self.ttl.is_zero() {
            return;
        }
        let bytes = size_of(&key, &authorization);
        if bytes > self.max_bytes {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else { return };
        let entries = &mut *entries;
        let entry = Entry { stored: Instant::now(), authorization, bytes };
        match entries.map.insert(key.clone(), entry) {
            Some(replaced) => entries.bytes -= replaced.bytes,
            None => entries.order.push_back(key),
        }
        entries.bytes += bytes;
        while entries.map.len() > self.max_entries || entries.bytes > self.max_bytes {
            let Some(oldest) = entries.order.pop_front() else { break };
            if let Some(evicted) = entries.map.remove(&oldest) {
                entries.bytes -= evicted.bytes;
            }
        }
    }
}

/// About what an entry holds: its key, policy, context and principal.
fn size_of(key: &[String], authorization: &Authorization) -> usize {
    let key_bytes: usize = key.iter().map(String::len).sum();
    let context_bytes: usize = authorization.context.iter().map(|(k, v)| k.len() + v.to_string().len()).sum();
    key_bytes
        + authorization.policy.to_string().len()
        + context_bytes
        + authorization.principal.as_ref().map_or(0, String::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(sub: &str) -> Arc<Authorization> {
        let mut context = serde_json::Map::new();
        context.insert("sub".into(), Value::String(sub.into()));
        Arc::new(Authorization { policy: Value::Null, context, principal: None })
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
    fn the_cache_is_bounded_in_bytes_as_well_as_entries() {
        let cache = AuthorizerCache::bounded(Duration::from_secs(60), 1_000, 10_000);
        let large = |i: usize| vec![format!("{i}-{}", "k".repeat(3_000))];
        for i in 0..4 {
            cache.put(large(i), answer("x"));
        }
        // Four entries of about 3 KB each do not fit in 10 KB: the oldest went.
        assert!(cache.get(&large(0)).is_none(), "the oldest went");
        assert!((1..4).all(|i| cache.get(&large(i)).is_some()));
        // One entry over the whole budget is not cached, and evicts nothing.
        cache.put(vec!["k".repeat(20_000)], answer("x"));
        assert!(cache.get(&["k".repeat(20_000)]).is_none());
        assert!((1..4).all(|i| cache.get(&large(i)).is_some()));
        // Replacing an entry counts its bytes once.
        for _ in 0..10 {
            cache.put(large(3), answer("y"));
        }
        assert!((1..4).all(|i| cache.get(&large(i)).is_some()));
    }

    #[test]
    fn entries_expire_and_a_zero_ttl_caches_nothing() {
        let cache = AuthorizerCache::new(Duration::from_millis(300));
        cache.put(vec!["a".into()], answer("a"));
        assert_eq!(cache.get(&["a".to_owned()]).map(|a| a.context["sub"].clone()), Some("a".into()));
        assert!(cache.get(&["b".to_owned()]).is_none());
        let later = Instant::now() + Duration::from_millis(310);
        assert!(cache.get_at(&["a".to_owned()], later).is_none(), "expired");
        let off = AuthorizerCache::new(Duration::ZERO);
        off.put(vec!["a".into()], answer("a"));
        assert!(off.get(&["a".to_owned()]).is_none());
    }
}
