//! `deployer local` under load: requests per second and p50/p99 latency of
//! `GET /v1/pets/7` through the edge on a cached Allow, against the same echo
//! handler served directly over the same mutual TLS (rustls, same
//! certificates). Both are measured in one run, in alternating rounds, so
//! the machine's noise falls on both; the figure that matters is the ratio.
//! Then the uncached figure: cache TTL 0, every request runs the authorizer.
//!
//!   scripts/bench-local [ROUNDS] [REQUESTS_PER_ROUND] [CONCURRENCY]
//!
//! Binaries come from target/$BENCH_PROFILE (default `local-bench`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::fixture;
use e2e::local::{
    DOMAIN, Launch, LocalEdge, LocalPki, StackOptions, echo, echo_backend, https_client, scratch_directory, write_stack,
};
use e2e::server::TestServer;

struct Sample {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<usize> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let rounds = arguments.first().copied().unwrap_or(5);
    let per_round = arguments.get(1).copied().unwrap_or(2000);
    let concurrency = arguments.get(2).copied().unwrap_or(8);
    let profile = std::env::var("BENCH_PROFILE").unwrap_or_else(|_| "local-bench".into());

    let pki = Arc::new(LocalPki::new());
    // The same handler behind both: the edge's cost is all the difference.
    let reference = TestServer::start_mtls(&pki.server, &pki.ca.pem, echo).await;
    let cached = start_edge(&pki, &profile, 300, 1, false).await?;
    let uncached = start_edge(&pki, &profile, 0, 1, false).await?;
    let uncached_two = start_edge(&pki, &profile, 0, 2, false).await?;
    let token = cached.token("pets:read", &pki.client);

    let direct = https_client(&pki, reference.addr, Some(&pki.client), None);
    let direct_url = format!("https://{DOMAIN}:{}/pets/7", reference.addr.port());
    let through = cached.client(Some(&pki.client));
    let through_url = cached.url("/pets/7");
    // Warm both: connections, and the one authorizer call the cache keeps.
    load(&direct, &direct_url, &token, concurrency * 4, concurrency).await?;
    load(&through, &through_url, &token, concurrency * 4, concurrency).await?;

    let (mut reference_samples, mut edge_samples) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        reference_samples.push(load(&direct, &direct_url, &token, per_round, concurrency).await?);
        edge_samples.push(load(&through, &through_url, &token, per_round, concurrency).await?);
    }
    let slow = uncached.client(Some(&pki.client));
    let uncached_sample = load(&slow, &uncached.url("/pets/7"), &token, per_round / 4, concurrency).await?;
    let invoked = uncached.invocations().await;
    let two = uncached_two.client(Some(&pki.client));
    let uncached_two_sample = load(&two, &uncached_two.url("/pets/7"), &token, per_round / 4, concurrency).await?;
    // Where a cached Allow's time goes, by the edge's own access log (kept
    // only here: parsing it costs this process CPU the rounds above need).
    let logged = start_edge(&pki, &profile, 300, 1, true).await?;
    let client = logged.client(Some(&pki.client));
    load(&client, &logged.url("/pets/7"), &token, per_round, concurrency).await?;
    let lines = logged.wait_for_log(per_round).await;
    let median = |key: &str| {
        let mut values: Vec<f64> = lines.iter().filter_map(|line| line[key].as_f64()).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let (inside, integration) = (median("latencyMs"), median("integrationLatencyMs"));

    println!(
        "deployer local, {rounds} rounds × {per_round} requests, {concurrency} concurrent, keep-alive, profile {profile}"
    );
    println!("{:<44} {:>10} {:>9} {:>9}", "", "req/s", "p50 ms", "p99 ms");
    let reference_row = row("backend over mTLS, direct (reference)", &reference_samples);
    let edge_row = row("through deployer local, cached Allow", &edge_samples);
    row("through deployer local, uncached (TTL 0)", std::slice::from_ref(&uncached_sample));
    row("  the same, --concurrency 2", std::slice::from_ref(&uncached_two_sample));
    println!(
        "overhead: {:.2}× the reference's throughput, p50 {:.2}× , p99 {:.2}× (cached Allow); uncached: {} authorizer invocations",
        edge_row.0 / reference_row.0,
        edge_row.1 / reference_row.1,
        edge_row.2 / reference_row.2,
        invoked
    );
    println!(
        "cached Allow, median inside the edge: {inside:.3} ms, of which {integration:.3} ms waiting for the backend \
         ({:.0}% the edge's own work)",
        100.0 * (inside - integration) / inside
    );
    logged.stop().await;
    cached.stop().await;
    uncached.stop().await;
    uncached_two.stop().await;
    Ok(())
}

async fn start_edge(
    pki: &Arc<LocalPki>,
    profile: &str,
    ttl: u32,
    concurrency: usize,
    keep_access_log: bool,
) -> anyhow::Result<LocalEdge> {
    let jwks = fixture::jwks_server().await;
    let backend = echo_backend().await;
    let directory = scratch_directory("bench");
    let options = StackOptions { cache_ttl_seconds: ttl, ..StackOptions::default() };
    let stack = write_stack(&directory, &options, &jwks.url("/jwks"), pki);
    let launch = Launch {
        deployer: e2e::workspace_binary(profile, "deployer"),
        stack,
        arguments: vec![
            "--bootstrap".into(),
            e2e::workspace_binary(profile, "bootstrap").display().to_string(),
            "--concurrency".into(),
            concurrency.to_string(),
        ],
        environment: Vec::new(),
        // The edge still writes every line; without `keep_access_log` only the parsing is spared.
        keep_access_log,
    };
    LocalEdge::launch(launch, pki.clone(), jwks, backend, directory)
        .await
        .map_err(|stderr| anyhow::anyhow!("deployer local did not start:\n{stderr}"))
}

/// `total` GETs from `concurrency` workers; every answer must be 200.
async fn load(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    total: usize,
    concurrency: usize,
) -> anyhow::Result<Sample> {
    let started = Instant::now();
    let workers = (0..concurrency).map(|worker| {
        let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
        let count = total / concurrency + usize::from(worker < total % concurrency);
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            for _ in 0..count {
                let sent = Instant::now();
                let answer = client.get(&url).bearer_auth(&token).send().await?;
                let status = answer.status();
                answer.bytes().await?;
                anyhow::ensure!(status == 200, "{url}: {status}");
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        })
    });
    let mut latencies = Vec::with_capacity(total);
    for worker in workers.collect::<Vec<_>>() {
        latencies.extend(worker.await??);
    }
    Ok(Sample { elapsed: started.elapsed(), latencies })
}

/// Prints one line; returns (req/s, p50 ms, p99 ms) over all samples.
fn row(name: &str, samples: &[Sample]) -> (f64, f64, f64) {
    let count: usize = samples.iter().map(|s| s.latencies.len()).sum();
    let elapsed: f64 = samples.iter().map(|s| s.elapsed.as_secs_f64()).sum();
    let mut all: Vec<Duration> = samples.iter().flat_map(|s| s.latencies.iter().copied()).collect();
    all.sort();
    let at = |q: f64| all.get(((all.len() as f64 - 1.0) * q).round() as usize).map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let figures = (count as f64 / elapsed, at(0.50), at(0.99));
    println!("{name:<44} {:>10.0} {:>9.3} {:>9.3}", figures.0, figures.1, figures.2);
    figures
}
