//! DPoP replay protection shared by every instance of the function
//! (`DPOP_REPLAY_STORE=dynamodb:TABLE`): real proofs, real tokens, two
//! authorizers standing for two Lambda instances, each with its own
//! in-process cache, recording in one table of moto's DynamoDB on loopback
//! (through the recording proxy where a test counts or breaks calls).
//!
//! moto differs from DynamoDB here in what it never does: it does not
//! throttle, lag or drop answers. Those are made by the proxy in front of it
//! (a `ThrottlingException` answer, a delay, a connection dropped after the
//! write), and what the authorizer sent is checked on the recorded calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use authorizer::{Authorizer, Clock, Config, Status};
use e2e::dpop::DpopKey;
use e2e::events::{self, url_of, with_dpop};
use e2e::fixture::{self, assert_refused, decide, jwks_server, jwt_vars, keys};
use e2e::moto::Proxy;
use e2e::server::{Reply, TestServer};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

const PATH: &str = "/pets/42";
/// Every call to the store is given this long (`HTTP_TIMEOUT_MS`).
const TIMEOUT_MS: u64 = 500;

/// A new table, shaped as the deployer makes it (key `proof`), in moto.
async fn table() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("dpop-replay-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    e2e::deploy::create_replay_table(&e2e::deploy::clients().await, &name).await;
    name
}

/// One instance of the function: its own caches, the shared table.
async fn instance(jwks: &TestServer, table: &str, endpoint: &str) -> Authorizer {
    let store = format!("dynamodb:{table}");
    let timeout = TIMEOUT_MS.to_string();
    let vars = jwt_vars(
        &jwks.url("/jwks"),
        &[("DPOP", "allowed"), ("CERT_BINDING", "off"), ("DPOP_REPLAY_STORE", &store), ("HTTP_TIMEOUT_MS", &timeout)],
    );
    let config = Config::from_map(&vars).expect("valid configuration");
    Authorizer::with_aws(config, Clock::system(), Some(fixture::aws_access(endpoint))).await.expect("initialises")
}

/// A DPoP-bound token and one fresh proof of it for `GET /pets/42`.
fn request(key: &DpopKey) -> Value {
    let mut claims = fixture::claims();
    claims["cnf"] = json!({ "jkt": key.thumbprint() });
    let token = keys().rsa.sign(&claims);
    let proof = key.proof("GET", &url_of(PATH), &token);
    with_dpop(events::request(Some(&format!("DPoP {token}")), None), &[&proof])
}

/// The PutItem calls a proxy passed.
fn puts(proxy: &Proxy) -> Vec<Value> {
    let calls = proxy.calls().into_iter().filter(|c| c.service_operation == "PutItem");
    calls.map(|c| serde_json::from_str(&c.request.body).expect("JSON")).collect()
}

async fn items(table: &str) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let clients = e2e::deploy::clients().await;
    clients.dynamodb.scan().table_name(table).send().await.expect("scan").items().to_vec()
}

#[tokio::test]
async fn a_proof_one_instance_accepted_is_refused_by_the_other_every_time() {
    let jwks = jwks_server().await;
    let table = table().await;
    let proxy = Proxy::start().await;
    let (a, b) = (instance(&jwks, &table, &proxy.url()).await, instance(&jwks, &table, &proxy.url()).await);
    const PROOFS: usize = 25;
    let key = DpopKey::generate(Algorithm::ES256);
    let mut accepted_twice = 0;
    for i in 0..PROOFS {
        // Odd proofs reach B first: each instance is the first for some.
        let (first, second) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let event = request(&key);
        let decision = decide(first, &event).await;
        assert!(decision.result.is_ok(), "proof {i}, first use: {decision:?}");
        let replayed = decide(second, &event).await;
        if replayed.result.is_ok() {
            accepted_twice += 1;
        }
        assert_refused(&replayed, Status::Unauthorized, "dpop_replayed");
        // Back to the instance that accepted it: refused from its own cache.
        assert_refused(&decide(first, &event).await, Status::Unauthorized, "dpop_replayed");
    }
    assert_eq!(accepted_twice, 0);
    // One write per accepted proof, one per replay to the other instance,
    // none for a replay to the instance that remembers it.
    let puts = puts(&proxy);
    assert_eq!(puts.len(), 2 * PROOFS, "{puts:#?}");
    assert_eq!(items(&table).await.len(), PROOFS, "one item per proof");

    // What an item is: a hash for key (not the jti as sent), an expiry at the
    // end of the proof's window (a minute by default) plus the clock margin.
    let put = &puts[0];
    assert_eq!(put["ConditionExpression"], "attribute_not_exists(#key)");
    assert_eq!(put["ExpressionAttributeNames"]["#key"], "proof");
    let key_text = put["Item"]["proof"]["S"].as_str().expect("a string key");
    assert_eq!(key_text.len(), 64);
    assert!(key_text.chars().all(|c| c.is_ascii_hexdigit()));
    let expires: u64 = put["Item"]["expires_at"]["N"].as_str().expect("a number").parse().expect("whole");
    let now = e2e::now() as u64;
    // (The first proof was signed at most this test's run ago: a loaded machine may take seconds.)
    assert!((now + 60 + 60 - 30..=now + 60 + 60).contains(&expires), "expires_at {expires}, now {now}");
}

#[tokio::test]
async fn the_same_proof_sent_to_two_instances_at_once_is_accepted_once() {
    let jwks = jwks_server().await;
    let table = table().await;
    let endpoint = e2e::moto::endpoint();
    let (a, b) = (instance(&jwks, &table, &endpoint).await, instance(&jwks, &table, &endpoint).await);
    let key = DpopKey::generate(Algorithm::ES256);
    for round in 0..20 {
        let event = request(&key);
        let (one, two) = tokio::join!(decide(&a, &event), decide(&b, &event));
        let accepted = [&one, &two].iter().filter(|d| d.result.is_ok()).count();
        assert_eq!(accepted, 1, "round {round}: {one:?} {two:?}");
        for decision in [&one, &two].into_iter().filter(|d| d.result.is_err()) {
            assert_refused(decision, Status::Unauthorized, "dpop_replayed");
        }
    }
}

/// Every way the store can fail to answer is a 500 (never an Allow), and
/// the proof is not remembered: sent again once the store answers, it is
/// accepted.
#[tokio::test]
async fn a_store_that_cannot_answer_fails_closed_and_remembers_nothing() {
    let jwks = jwks_server().await;
    let table = table().await;
    let key = DpopKey::generate(Algorithm::ES256);
    let fails_closed = |decision: &authorizer::Decision, case: &str| {
        assert_eq!(decision.status(), Some(Status::ServerError), "{case}: {decision:?}");
        assert_eq!(decision.reason(), "dpop_replay_store_unavailable", "{case}");
    };

    // Unreachable: nothing listens on the port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr");
    let unreachable = instance(&jwks, &table, &format!("http://{closed}")).await;
    fails_closed(&decide(&unreachable, &request(&key)).await, "unreachable");

    // Throttled on every attempt: three attempts, then a 500.
    let throttling = Arc::new(AtomicUsize::new(usize::MAX));
    let left = throttling.clone();
    let proxy = Proxy::refusing(move |_| {
        let throttle = left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        throttle.then(|| {
            Reply::status(
                400,
                r#"{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate exceeded"}"#,
            )
        })
    })
    .await;
    let throttled = instance(&jwks, &table, &proxy.url()).await;
    let event = request(&key);
    fails_closed(&decide(&throttled, &event).await, "throttled");
    assert_eq!(puts(&proxy).len(), 3, "the first attempt and two retries");
    // The same proof, the store answering again: accepted (nothing was
    // remembered of the failed request), and then a replay.
    throttling.store(0, Ordering::SeqCst);
    assert!(decide(&throttled, &event).await.result.is_ok(), "not remembered after a failure");
    assert_refused(&decide(&throttled, &event).await, Status::Unauthorized, "dpop_replayed");
    // Throttled once: the retry records it.
    throttling.store(1, Ordering::SeqCst);
    assert!(decide(&throttled, &request(&key)).await.result.is_ok(), "a retry after one throttling");

    // Slow past HTTP_TIMEOUT_MS: a 500 when the time is up, not when DynamoDB answers.
    let slow = Proxy::with_delay(Duration::from_millis(4 * TIMEOUT_MS)).await;
    let slow_instance = instance(&jwks, &table, &slow.url()).await;
    let started = Instant::now();
    fails_closed(&decide(&slow_instance, &request(&key)).await, "slow");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(3 * TIMEOUT_MS), "gave up after {took:?}");

    // The table missing: DynamoDB's own refusal, not tried again.
    let missing_proxy = Proxy::start().await;
    let missing = instance(&jwks, "no-such-replay-table", &missing_proxy.url()).await;
    fails_closed(&decide(&missing, &request(&key)).await, "table missing");
    assert_eq!(puts(&missing_proxy).len(), 1, "a missing table is not retried");
}

/// An attempt whose write landed but whose answer was lost is retried, and
/// the retry meets the item that attempt wrote: the request's own, not a
/// replay. Another instance still refuses the proof.
#[tokio::test]
async fn a_retry_after_a_lost_answer_is_not_taken_for_a_replay() {
    let jwks = jwks_server().await;
    let table = table().await;
    let dropped = Arc::new(AtomicUsize::new(1));
    let left = dropped.clone();
    let proxy = Proxy::rewriting(move |request, reply| {
        let is_put = request.header("x-amz-target") == Some("DynamoDB_20120810.PutItem");
        if is_put && left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            *reply = Reply::hang_up();
        }
    })
    .await;
    let a = instance(&jwks, &table, &proxy.url()).await;
    let b = instance(&jwks, &table, &e2e::moto::endpoint()).await;
    let event = request(&DpopKey::generate(Algorithm::ES256));
    let decision = decide(&a, &event).await;
    assert!(decision.result.is_ok(), "{decision:?}");
    let puts = puts(&proxy);
    assert_eq!(puts.len(), 2, "the write, its answer dropped, then the retry");
    assert_eq!(puts[0]["Item"]["writer"], puts[1]["Item"]["writer"], "one writer id per request");
    assert_eq!(dropped.load(Ordering::SeqCst), 0, "the answer was dropped");
    assert_refused(&decide(&b, &event).await, Status::Unauthorized, "dpop_replayed");
}

#[tokio::test]
async fn the_setting_is_checked_at_init_naming_it() {
    let jwks = jwks_server().await;
    let with = |extra: &[(&str, &str)]| Config::from_map(&jwt_vars(&jwks.url("/jwks"), extra));
    let off = with(&[("DPOP_REPLAY_STORE", "dynamodb:pets-dpop-replay")]).expect_err("DPoP off");
    assert_eq!((off.variable.as_str(), off.problem.as_str()), ("DPOP_REPLAY_STORE", "is set but DPOP is off"));
    let bad = with(&[("DPOP", "allowed"), ("DPOP_REPLAY_STORE", "redis:x")]).expect_err("unknown store");
    assert_eq!(bad.variable, "DPOP_REPLAY_STORE");
    // Without the function's AWS access, the function does not start.
    let config = with(&[("DPOP", "allowed"), ("DPOP_REPLAY_STORE", "dynamodb:pets-dpop-replay")]).expect("valid");
    let error = Authorizer::with_aws(config, Clock::system(), None).await.err().expect("no AWS access");
    assert!(error.to_string().starts_with("DPOP_REPLAY_STORE:"), "{error}");
    // Without the setting, the store is memory and nothing of AWS is needed.
    let memory = with(&[("DPOP", "allowed")]).expect("valid");
    assert_eq!(memory.dpop.replay_store, authorizer::replay_store::ReplayStore::Memory);
    Authorizer::with_aws(memory, Clock::system(), None).await.expect("no AWS access needed");
}
