//! DPoP proofs (RFC 9449): the client proves, on every request, that it holds
//! the private key its token is bound to, so a token stolen without that key
//! is useless even where there is no mutual TLS.
//!
//! A proof is a JWS in the `DPoP` header. [`DpopVerifier::verify`] checks it
//! against the request it came with: `typ: dpop+jwt`, an asymmetric `alg` from
//! the allowlist that the key's type allows, the public key in the `jwk`
//! header (no private members), the signature, `htm` = the request's method,
//! `htu` = the URL the client called (§4.3 normalisation), `iat` within the
//! window, a `jti`, and `ath` = the hash of the access token. It returns the
//! key's RFC 7638 thumbprint, which [`crate::binding`] compares with the
//! token's `cnf.jkt`. [`DpopVerifier::remember`] then records the proof's
//! `jti` so the same proof is refused if it comes again.
//!
//! The replay cache lives in this function instance's memory: it stops a
//! proof being replayed to the same instance within the window. With
//! `DPOP_REPLAY_STORE=dynamodb:TABLE`, a proof this cache accepts is then
//! recorded in a table every instance shares ([`crate::replay_store`]), which
//! refuses it on every other instance too (see docs/authorizer.md, "DPoP").
//!
//! Time here is [`ProofClock`]: the authorizer's wall clock, read again
//! every [`REANCHOR`] of monotonic time and advanced by the monotonic clock
//! in between, so a wrong reading (a VM restored, NTP not yet synced at
//! start) lasts at most that long. The window and the replay cache run on
//! this one clock, and the cache refuses any proof whose acceptability ended
//! where it may already have dropped entries (`ReplayState::evicted_through`):
//! so a step back of the wall clock cannot make a proof whose entry is gone
//! acceptable again, and a step forward only expires entries of proofs that
//! are too old to be accepted anyway.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::str::FromStr as _;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::algorithms;
use crate::clock::Clock;
use crate::replay_store::{Recorded, ReplayStore, SharedReplayStore};

/// Whether `Authorization: DPoP` (RFC 9449) is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopMode {
    /// DPoP is refused, and so is every DPoP-bound token (it cannot be verified).
    Off,
    /// Bearer and DPoP requests are both accepted; a DPoP-bound token only with its proof.
    Allowed,
    /// Every request must be DPoP with a DPoP-bound token.
    Required,
}

#[derive(Debug, Clone)]
pub struct DpopSettings {
    pub mode: DpopMode,
    /// Where accepted proofs are remembered: this instance's memory, and
    /// with `DPOP_REPLAY_STORE` a table every instance shares.
    pub replay_store: ReplayStore,
    /// Algorithms a proof may be signed with.
    pub algorithms: Vec<Algorithm>,
    /// A proof's `iat` may be this far from now, either way; its `jti` is
    /// remembered as long as the proof could be accepted.
    pub iat_window: Duration,
}

impl Default for DpopSettings {
    /// Off, every supported algorithm, a minute's window, memory only.
    fn default() -> Self {
        DpopSettings {
            mode: DpopMode::Off,
            replay_store: ReplayStore::Memory,
            algorithms: algorithms::SUPPORTED.to_vec(),
            iat_window: Duration::from_secs(60),
        }
    }
}

/// Longer proofs are refused before any parsing (a proof with an RSA-4096 key is ~2 KiB).
const MAX_PROOF_BYTES: usize = 8 * 1024;

/// At most this many proofs are remembered at once; when that many are
/// still inside their window, new proofs are refused (closed, not forgotten).
pub const REPLAY_CACHE_ENTRIES: usize = 100_000;

/// JWK members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    #[error("DPoP is not accepted by this API")]
    NotAccepted,
    #[error("the request has no DPoP proof")]
    NoProof,
    #[error("the DPoP proof is not a well-formed JWS")]
    Malformed,
    #[error("the DPoP proof's typ is not dpop+jwt")]
    Type,
    #[error("the DPoP proof's alg is not accepted")]
    Algorithm,
    #[error("the DPoP proof's jwk is missing, private, or unusable with its alg")]
    Key,
    #[error("the DPoP proof's signature does not verify")]
    Signature,
    #[error("the DPoP proof lacks jti, htm, htu, iat or ath")]
    MissingClaim,
    #[error("the DPoP proof's htm is not the request's method")]
    Method,
    #[error("the DPoP proof's htu is not the request's URL")]
    Url,
    #[error("the DPoP proof's iat is outside the accepted window")]
    IssuedAt,
    #[error("the DPoP proof's ath is not the hash of the access token")]
    AccessTokenHash,
    #[error("the DPoP proof was used before")]
    Replayed,
    #[error("too many DPoP proofs inside their window to remember another")]
    ReplayCacheFull,
    #[error("the shared DPoP replay store could not record the proof")]
    ReplayStoreUnavailable,
}

/// What a request offers a proof to be checked against.
#[derive(Debug, Clone, Copy)]
pub struct ProofContext<'a> {
    pub method: &'a str,
    /// The URL the client called, without query.
    pub url: &'a str,
    pub access_token: &'a str,
    /// UNIX seconds.
    pub now: u64,
}

/// A proof whose signature and claims were verified.
#[derive(Debug)]
pub struct VerifiedProof {
    /// RFC 7638 SHA-256 thumbprint of the proof's key.
    pub jkt: String,
    /// Identifies the proof for the replay cache (key and `jti`).
    replay_key: [u8; 32],
    /// Until when the proof could be accepted (UNIX seconds).
    acceptable_until: u64,
}

#[derive(Deserialize)]
struct ProofHeader {
    #[serde(default)]
    typ: Option<String>,
    alg: String,
    #[serde(default)]
    jwk: Option<Map<String, Value>>,
    #[serde(default)]
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct ProofClaims {
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    htm: Option<String>,
    #[serde(default)]
    htu: Option<String>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    ath: Option<String>,
}

/// How often [`ProofClock`] reads the wall clock again.
pub const REANCHOR: Duration = Duration::from_secs(60);

/// UNIX seconds: the wall clock's last reading, advanced at the monotonic
/// clock's pace until the next reading, [`REANCHOR`] later.
pub struct ProofClock {
    clock: Clock,
    /// The last wall reading and the monotonic reading it was taken at.
    anchor: Mutex<(u64, Duration)>,
}

impl ProofClock {
    pub fn new(clock: Clock) -> ProofClock {
        let anchor = Mutex::new((clock.unix_seconds(), clock.monotonic()));
        ProofClock { clock, anchor }
    }

    pub fn now(&self) -> u64 {
        let monotonic = self.clock.monotonic();
        let mut anchor = self.anchor.lock().unwrap_or_else(|e| e.into_inner());
        if monotonic.saturating_sub(anchor.1) >= REANCHOR {
            *anchor = (self.clock.unix_seconds(), monotonic);
        }
        anchor.0.saturating_add(monotonic.saturating_sub(anchor.1).as_secs())
    }
}

pub struct DpopVerifier {
    algorithms: Vec<Algorithm>,
    window_seconds: u64,
    replay: ReplayCache,
    /// The table every instance records proofs in, when configured.
    shared: Option<SharedReplayStore>,
    clock: ProofClock,
}

impl DpopVerifier {
    /// `shared` is the store `settings.replay_store` names, built by the
    /// caller (it needs the function's AWS access).
    pub fn new(settings: &DpopSettings, clock: Clock, shared: Option<SharedReplayStore>) -> DpopVerifier {
        DpopVerifier {
            algorithms: settings.algorithms.clone(),
            window_seconds: settings.iat_window.as_secs(),
            replay: ReplayCache::new(REPLAY_CACHE_ENTRIES),
            shared,
            clock: ProofClock::new(clock),
        }
    }

    /// The time proofs are judged and remembered by (see [`ProofClock`]).
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The algorithms a proof may use (for the `algs` of a challenge).
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    pub fn verify(&self, proof: &str, context: &ProofContext<'_>) -> Result<VerifiedProof, DpopError> {
        if proof.len() > MAX_PROOF_BYTES {
            return Err(DpopError::Malformed);
        }
        let mut parts = proof.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DpopError::Malformed);
        };
        let header: ProofHeader = decode_json(header_b64)?;

        // Everything that can be refused without verifying a signature first.
        if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
            return Err(DpopError::Type);
        }
        if header.crit.is_some() {
            return Err(DpopError::Malformed);
        }
        let alg = Algorithm::from_str(&header.alg)
            .ok()
            .filter(|a| self.algorithms.contains(a))
            .ok_or(DpopError::Algorithm)?;
        let jwk_members = header.jwk.ok_or(DpopError::Key)?;
        if PRIVATE_MEMBERS.iter().any(|m| jwk_members.contains_key(*m)) {
            return Err(DpopError::Key);
        }
        let jwk: Jwk = serde_json::from_value(Value::Object(jwk_members)).map_err(|_| DpopError::Key)?;
        if algorithms::for_key(&jwk, &[alg]).is_empty() {
            return Err(DpopError::Key);
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| DpopError::Key)?;

        let signed = &proof[..header_b64.len() + 1 + claims_b64.len()];
        let valid = jsonwebtoken::crypto::verify(signature_b64, signed.as_bytes(), &key, alg)
            .map_err(|_| DpopError::Signature)?;
        if !valid {
            return Err(DpopError::Signature);
        }

        let claims: ProofClaims = decode_json(claims_b64)?;
        let (Some(jti), Some(htm), Some(htu), Some(iat), Some(ath)) =
            (claims.jti, claims.htm, claims.htu, claims.iat, claims.ath)
        else {
            return Err(DpopError::MissingClaim);
        };
        if jti.is_empty() || jti.len() > 256 {
            return Err(DpopError::MissingClaim);
        }
        if htm != context.method {
            return Err(DpopError::Method);
        }
        if !same_target(&htu, context.url) {
            return Err(DpopError::Url);
        }
        let now = i64::try_from(context.now).unwrap_or(i64::MAX);
        let window = self.window_seconds as i64;
        if iat < now.saturating_sub(window) || iat > now.saturating_add(window) {
            return Err(DpopError::IssuedAt);
        }
        let expected_ath = URL_SAFE_NO_PAD.encode(Sha256::digest(context.access_token.as_bytes()));
        if ath != expected_ath {
            return Err(DpopError::AccessTokenHash);
        }

        let jkt = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| DpopError::Key)?;
        let replay_key =
            Sha256::new().chain_update(jkt.as_bytes()).chain_update([0]).chain_update(jti.as_bytes()).finalize();
        Ok(VerifiedProof { jkt, replay_key: replay_key.into(), acceptable_until: (iat + window).max(0) as u64 })
    }

    /// Records a verified proof as used; refuses one that was used before.
    /// Called once the proof has been accepted for this request. Expiry
    /// runs on this verifier's own clock, the one [`DpopVerifier::now`] gives.
    ///
    /// This instance's cache first (a replay to it costs no call), then the
    /// shared store, if any: a proof another instance recorded is a replay;
    /// a store that cannot answer refuses the request (500), and the proof
    /// is forgotten here again, so a retry of it asks the store anew.
    pub async fn remember(&self, proof: &VerifiedProof) -> Result<(), DpopError> {
        self.replay.insert(proof.replay_key, proof.acceptable_until, self.clock.now())?;
        let Some(shared) = &self.shared else { return Ok(()) };
        match shared.record(&proof.replay_key, proof.acceptable_until).await {
            Ok(Recorded::First) => Ok(()),
            Ok(Recorded::Replayed) => Err(DpopError::Replayed),
            Err(error) => {
                self.replay.forget(&proof.replay_key);
                tracing::error!(table = shared.table(), "{error}");
                Err(DpopError::ReplayStoreUnavailable)
            }
        }
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, DpopError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| DpopError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| DpopError::Malformed)
}

/// RFC 9449 §4.3: `htu` and the request URL, compared without query and
/// fragment, after RFC 3986 §6.2.2–6.2.3 normalisation (case of scheme and
/// host, default port, dot segments, percent-encoding).
fn same_target(htu: &str, request_url: &str) -> bool {
    let (Ok(claimed), Ok(actual)) = (url::Url::parse(htu), url::Url::parse(request_url)) else {
        return false;
    };
    claimed.scheme() == actual.scheme()
        && claimed.host_str() == actual.host_str()
        && claimed.port_or_known_default() == actual.port_or_known_default()
        && normalized_path(claimed.path()) == normalized_path(actual.path())
}

/// Decodes percent-encoded unreserved characters and upper-cases the hex of
/// the others, so `/a%7eb` and `/a~b`, `%2f` and `%2F` compare equal.
fn normalized_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = path.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(byte as char);
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
            continue;
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// The `jti`s of accepted proofs until they could no longer be accepted
/// anyway. Bounded: when full of live entries it refuses rather than forgets,
/// since forgetting one would let that proof be replayed.
struct ReplayCache {
    state: Mutex<ReplayState>,
    capacity: usize,
}

#[derive(Default)]
struct ReplayState {
    seen: HashSet<[u8; 32]>,
    /// The same keys, soonest expiry first, to drop them when they expire.
    expiries: BinaryHeap<Reverse<(u64, [u8; 32])>>,
    /// The latest expiry of an entry dropped: a proof acceptable only until
    /// then may have been seen and forgotten, so it is refused (after the
    /// clock stepped back, it would otherwise be accepted again).
    evicted_through: u64,
}

impl ReplayCache {
    fn new(capacity: usize) -> ReplayCache {
        ReplayCache { state: Mutex::new(ReplayState::default()), capacity }
    }

    /// Drops `key`'s entry (its expiry stays queued: dropping it later finds nothing).
    fn forget(&self, key: &[u8; 32]) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).seen.remove(key);
    }

    fn insert(&self, key: [u8; 32], until: u64, now: u64) -> Result<(), DpopError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(Reverse((expiry, expired))) = state.expiries.peek().copied() {
            if expiry >= now {
                break;
            }
            state.expiries.pop();
            state.seen.remove(&expired);
            state.evicted_through = state.evicted_through.max(expiry);
        }
        if until <= state.evicted_through {
            return Err(DpopError::IssuedAt);
        }
        if state.seen.contains(&key) {
            return Err(DpopError::Replayed);
        }
        if state.seen.len() >= self.capacity {
            return Err(DpopError::ReplayCacheFull);
        }
        state.seen.insert(key);
        state.expiries.push(Reverse((until, key)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proof_clock_follows_the_monotonic_clock_and_reads_the_wall_clock_again_every_minute() {
        let manual = crate::clock::ManualClock::starting_at(1_000_000);
        let clock = ProofClock::new(manual.clock());
        assert_eq!(clock.now(), 1_000_000);
        manual.advance(Duration::from_secs(2));
        assert_eq!(clock.now(), 1_000_002);
        // The wall clock steps: proofs keep their time until the next reading...
        manual.set_wall(999_000);
        manual.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), 1_000_003);
        // ...which takes the wall clock's time, back or forward: a wrong
        // reading lasts one period, not the instance's life.
        // (Moving the manual clock moves its wall clock too.)
        manual.advance(REANCHOR);
        assert_eq!(clock.now(), 999_061);
        manual.set_wall(2_000_000);
        assert_eq!(clock.now(), 999_061, "until the next reading");
        manual.advance(REANCHOR);
        assert_eq!(clock.now(), 2_000_060);
    }

    #[test]
    fn after_the_clock_steps_back_a_proof_whose_entry_was_dropped_is_refused() {
        let cache = ReplayCache::new(16);
        let window = 300;
        let (old, fresh) = ([1u8; 32], [2u8; 32]);
        cache.insert(old, 1_000 + window, 1_000).expect("first use");
        // Later, its entry is dropped when another proof is remembered.
        cache.insert(fresh, 2_000 + window, 2_000).expect("another proof");
        // The wall clock steps back to 1_100: `old` is inside the window again,
        // its entry is gone, and the cache still refuses it.
        assert_eq!(cache.insert(old, 1_000 + window, 1_100), Err(DpopError::IssuedAt));
        assert_eq!(cache.insert(fresh, 2_000 + window, 1_100), Err(DpopError::Replayed));
        cache.insert([3u8; 32], 2_100 + window, 2_100).expect("a new proof");
    }

    #[test]
    fn targets_compare_after_normalisation() {
        let url = "https://api.example.com/v1/pets/1";
        for same in [
            "https://api.example.com/v1/pets/1",
            "HTTPS://API.Example.com:443/v1/pets/1",
            "https://api.example.com/v1/pets/1?x=1#f",
            "https://api.example.com/v1/./pets/%31",
        ] {
            assert!(same_target(same, url), "{same}");
        }
        for other in [
            "https://api.example.com/v1/pets/2",
            "http://api.example.com/v1/pets/1",
            "https://api.example.com:8443/v1/pets/1",
            "https://evil.example.com/v1/pets/1",
            "https://api.example.com/pets/1",
            "not a url",
        ] {
            assert!(!same_target(other, url), "{other}");
        }
        assert_eq!(normalized_path("/a%7eb/%2f%2F"), "/a~b/%2F%2F");
    }

    #[test]
    fn replay_cache_refuses_replays_forgets_expired_and_closes_when_full() {
        let cache = ReplayCache::new(2);
        assert_eq!(cache.insert([1; 32], 100, 50), Ok(()));
        assert_eq!(cache.insert([1; 32], 100, 60), Err(DpopError::Replayed));
        assert_eq!(cache.insert([2; 32], 120, 60), Ok(()));
        assert_eq!(cache.insert([3; 32], 120, 60), Err(DpopError::ReplayCacheFull), "full of live proofs");
        assert_eq!(cache.insert([3; 32], 130, 101), Ok(()), "the first proof expired and made room");
        assert_eq!(cache.insert([2; 32], 120, 101), Err(DpopError::Replayed));
    }
}
