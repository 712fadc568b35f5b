//! What the shared DPoP replay store (`DPOP_REPLAY_STORE=dynamodb:TABLE`)
//! costs and what it buys, against moto's DynamoDB on loopback:
//!
//! - the latency of an accepted DPoP request (a fresh ES256 proof, a
//!   DPoP-bound RS256 token) with the store and without it (memory only),
//!   measured in one run in alternating rounds, each request one at a time
//!   as a Lambda instance takes them: p50, p99, and the difference;
//! - the reference for what the store adds: one bare signed PutItem of the
//!   same item shape to the same table (`authorizer::aws`, no decision),
//!   in the same rounds;
//! - requests per second of one instance with the store, one at a time;
//! - two instances on one table: each proof accepted by A is sent to B, and
//!   each proof is sent to both at once; how many were accepted twice.
//!
//!   scripts/bench-replay-store [ROUNDS] [REQUESTS_PER_ROUND]
//!
//! Proofs are signed before the clock starts: what is timed is the
//! authorizer's decision. moto answers a PutItem in Python on the same
//! machine; DynamoDB in the function's region answers in single-digit
//! milliseconds, so the difference measured here is the order of magnitude,
//! not DynamoDB's figure.

use std::time::{Duration, Instant};

use authorizer::aws::AwsAccess;
use authorizer::{Authorizer, Clock, Config};
use e2e::dpop::DpopKey;
use e2e::events::{self, url_of, with_dpop};
use e2e::fixture::{self, jwks_server, jwt_vars, keys};
use jsonwebtoken::Algorithm;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<usize> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let rounds = arguments.first().copied().unwrap_or(10);
    let per_round = arguments.get(1).copied().unwrap_or(200);

    let moto = e2e::moto::endpoint();
    let table = format!("bench-dpop-replay-{}", std::process::id());
    e2e::deploy::create_replay_table(&e2e::deploy::clients().await, &table).await;
    let jwks = jwks_server().await;
    let memory = instance(&jwks.url("/jwks"), None, &moto).await?;
    let shared = instance(&jwks.url("/jwks"), Some(&table), &moto).await?;
    let key = DpopKey::generate(Algorithm::ES256);

    // Warm both (connections, keys), then alternate rounds.
    let (mut without, mut with, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    timed(&memory, &events_for(&key, 20)).await?;
    timed(&shared, &events_for(&key, 20)).await?;
    let put = BarePut::new(&table, &moto)?;
    put.timed(20).await?;
    let mut shared_busy = Duration::ZERO;
    for _ in 0..rounds {
        let (a, b) = (events_for(&key, per_round), events_for(&key, per_round));
        without.extend(timed(&memory, &a).await?);
        let started = Instant::now();
        with.extend(timed(&shared, &b).await?);
        shared_busy += started.elapsed();
        bare.extend(put.timed(per_round).await?);
    }
    let (p50_without, p99_without) = percentiles(&mut without);
    let (p50_with, p99_with) = percentiles(&mut with);
    let (p50_bare, p99_bare) = percentiles(&mut bare);
    println!("requests per side: {}", without.len());
    println!("without the store (memory only): p50 {p50_without:?}  p99 {p99_without:?}");
    println!("with the store (moto DynamoDB):  p50 {p50_with:?}  p99 {p99_with:?}");
    println!(
        "added by the store: p50 +{:?}  p99 +{:?}  (ratio p50 {:.1}x)",
        p50_with.saturating_sub(p50_without),
        p99_with.saturating_sub(p99_without),
        p50_with.as_secs_f64() / p50_without.as_secs_f64()
    );
    println!(
        "reference, one bare signed PutItem: p50 {p50_bare:?}  p99 {p99_bare:?}  (added p50 / bare p50: {:.2}x)",
        p50_with.saturating_sub(p50_without).as_secs_f64() / p50_bare.as_secs_f64()
    );
    println!(
        "one instance with the store, one request at a time: {:.0} req/s",
        with.len() as f64 / shared_busy.as_secs_f64()
    );

    // Two instances, one table.
    let other = instance(&jwks.url("/jwks"), Some(&table), &moto).await?;
    let proofs = rounds * per_round / 2;
    let (mut accepted_twice, mut first_accepted) = (0, 0);
    for event in events_for(&key, proofs) {
        let parsed = events::parse(&event);
        if shared.authorize(&parsed).await.result.is_ok() {
            first_accepted += 1;
        }
        if other.authorize(&parsed).await.result.is_ok() {
            accepted_twice += 1;
        }
    }
    let mut raced_twice = 0;
    for event in events_for(&key, proofs) {
        let parsed = events::parse(&event);
        let (one, two) = tokio::join!(shared.authorize(&parsed), other.authorize(&parsed));
        if one.result.is_ok() && two.result.is_ok() {
            raced_twice += 1;
        }
    }
    println!(
        "two instances: {proofs} proofs accepted by A ({first_accepted} accepted) then sent to B: {accepted_twice} accepted twice; {proofs} proofs sent to both at once: {raced_twice} accepted twice"
    );
    anyhow::ensure!(first_accepted == proofs && accepted_twice == 0 && raced_twice == 0, "a proof was accepted twice");
    Ok(())
}

/// The reference: the same signed call the store makes, alone.
struct BarePut {
    table: String,
    aws: AwsAccess,
    http: reqwest::Client,
    clock: Clock,
    next: std::cell::Cell<u64>,
}

impl BarePut {
    fn new(table: &str, moto: &str) -> anyhow::Result<BarePut> {
        let (aws, http) = (fixture::aws_access(moto), reqwest::Client::builder().build()?);
        Ok(BarePut { table: table.to_owned(), aws, http, clock: Clock::system(), next: std::cell::Cell::new(0) })
    }

    /// `count` conditional puts of new keys, each timed.
    async fn timed(&self, count: usize) -> anyhow::Result<Vec<Duration>> {
        let mut latencies = Vec::with_capacity(count);
        for _ in 0..count {
            let n = self.next.replace(self.next.get() + 1);
            let item = serde_json::json!({
                "TableName": self.table,
                "Item": {
                    "proof": {"S": format!("{:064x}", u64::MAX - n)},
                    "expires_at": {"N": "4102444800"},
                    "writer": {"S": format!("{n:032x}")},
                },
                "ConditionExpression": "attribute_not_exists(#key)",
                "ExpressionAttributeNames": {"#key": "proof"},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            });
            let started = Instant::now();
            let service = authorizer::aws::Service::DynamoDb;
            self.aws.call(&self.http, &self.clock, service, &item, Duration::from_secs(2)).await?;
            latencies.push(started.elapsed());
        }
        Ok(latencies)
    }
}

/// One instance: DPoP on, the shared store in `table` when given.
async fn instance(jwks_uri: &str, table: Option<&str>, moto: &str) -> anyhow::Result<Authorizer> {
    let store = table.map(|t| format!("dynamodb:{t}"));
    let mut extra = vec![("DPOP", "allowed"), ("CERT_BINDING", "off"), ("HTTP_TIMEOUT_MS", "2000")];
    if let Some(store) = &store {
        extra.push(("DPOP_REPLAY_STORE", store));
    }
    let config = Config::from_map(&jwt_vars(jwks_uri, &extra))?;
    Ok(Authorizer::with_aws(config, Clock::system(), Some(fixture::aws_access(moto))).await?)
}

/// `count` requests, each a bound token with a fresh proof, signed now.
fn events_for(key: &DpopKey, count: usize) -> Vec<serde_json::Value> {
    let mut claims = fixture::claims();
    claims["cnf"] = serde_json::json!({ "jkt": key.thumbprint() });
    let token = keys().rsa.sign(&claims);
    (0..count)
        .map(|_| {
            let proof = key.proof("GET", &url_of("/pets/42"), &token);
            with_dpop(events::request(Some(&format!("DPoP {token}")), None), &[&proof])
        })
        .collect()
}

/// Each request's decision time, one at a time; every one must be allowed.
async fn timed(authorizer: &Authorizer, events: &[serde_json::Value]) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(events.len());
    for event in events {
        let parsed = events::parse(event);
        let started = Instant::now();
        let decision = authorizer.authorize(&parsed).await;
        latencies.push(started.elapsed());
        anyhow::ensure!(decision.result.is_ok(), "not allowed: {decision:?}");
    }
    Ok(latencies)
}

fn percentiles(latencies: &mut [Duration]) -> (Duration, Duration) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}
