//! Runs the release `bootstrap` as Lambda would (a process under a Runtime API
//! served on 127.0.0.1) beside `constant-lambda`, the do-nothing reference,
//! and reports, for each: cold start (exec → first request for work,
//! including the JWKS fetch from a loopback server; once more with the
//! JWKS URI found by discovery; and for opaque tokens, with the client
//! secret in the environment and read from SSM by reference; and with the
//! shared DPoP replay store configured), warm p50/p99 of one invocation through the
//! Runtime API, and peak RSS; then the budgets (cold: reference + 2 ms; warm:
//! reference + 2 × one bare RS256 verification, measured in this run), and the
//! stripped binary and zip sizes.
//!
//! Build first: `cargo build --release -p authorizer -p e2e --no-default-features --bins`, then
//! `target/release/bench-runtime [cold-runs] [warm-invocations]`. `BENCH_RUST_LOG=off`
//! runs the authorizer without its decision log line (to see what that line costs).

use std::io::Write as _;
use std::time::{Duration, Instant};

use e2e::events;
use e2e::fixture::{self, claims, keys, pki};
use e2e::provider::{Metadata, Provider};
use e2e::runtime_api::{Outcome, RuntimeApi, spawn_function};

const WAIT: Duration = Duration::from_secs(10);

struct Figures {
    cold_p50: Duration,
    warm_p50: Duration,
    warm_p99: Duration,
    peak_rss_kib: u64,
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

/// VmHWM: the peak resident set size of a live process.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One function under measurement.
struct Contender {
    binary: &'static str,
    env: Vec<(&'static str, String)>,
    event: serde_json::Value,
}

/// A cold start: exec → first request for work.
async fn cold_start(contender: &Contender) -> Duration {
    let path = e2e::workspace_binary("release", contender.binary);
    let api = RuntimeApi::start().await;
    let started = Instant::now();
    let mut child = spawn_function(&path, &api, &contender.env);
    let polled = api.wait_first_poll(WAIT).await.expect("function reached /next");
    let _ = child.kill().await;
    polled.duration_since(started)
}

/// Measures every contender, interleaved (one cold start of each in turn,
/// then one warm invocation of each in turn), so that the machine's drift
/// during the run weighs on all of them alike.
async fn measure(contenders: &[Contender], cold_runs: usize, warm: usize) -> Vec<Figures> {
    let mut cold: Vec<Vec<Duration>> = contenders.iter().map(|_| Vec::with_capacity(cold_runs)).collect();
    for _ in 0..cold_runs {
        for (i, contender) in contenders.iter().enumerate() {
            cold[i].push(cold_start(contender).await);
        }
    }

    let mut running = Vec::new();
    for contender in contenders {
        let api = RuntimeApi::start().await;
        let mut child = spawn_function(&e2e::workspace_binary("release", contender.binary), &api, &contender.env);
        // Lambda reads the function's stdout (its logs); so must we, or the
        // pipe fills and the function blocks on its next log line.
        let mut stdout = child.stdout.take().expect("piped stdout");
        let drain = tokio::spawn(async move {
            let mut sink = tokio::io::sink();
            let _ = tokio::io::copy(&mut stdout, &mut sink).await;
        });
        api.wait_first_poll(WAIT).await.expect("function reached /next");
        running.push((api, child, drain));
    }
    let mut latencies: Vec<Vec<Duration>> = contenders.iter().map(|_| Vec::with_capacity(warm)).collect();
    for _ in 0..warm {
        for (i, (contender, (api, _, _))) in contenders.iter().zip(&running).enumerate() {
            let started = Instant::now();
            let outcome = api.invoke(&contender.event, WAIT).await;
            latencies[i].push(started.elapsed());
            assert!(matches!(outcome, Some(Outcome::Response(_))), "{} must answer: {outcome:?}", contender.binary);
        }
    }
    let mut figures = Vec::new();
    for (i, (_, mut child, drain)) in running.into_iter().enumerate() {
        let peak = child.id().map(peak_rss_kib).unwrap_or(0);
        let _ = child.kill().await;
        drain.abort();
        figures.push(Figures {
            cold_p50: percentile(&mut cold[i], 0.5),
            warm_p50: percentile(&mut latencies[i], 0.5),
            warm_p99: percentile(&mut latencies[i], 0.99),
            peak_rss_kib: peak,
        });
    }
    figures
}

fn zip_size(binary: &std::path::Path) -> u64 {
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options).expect("zip entry");
    zip.write_all(&std::fs::read(binary).expect("read binary")).expect("zip write");
    zip.finish().expect("zip finish");
    buffer.get_ref().len() as u64
}

/// Median time of one bare RS256 verification of `token` (jsonwebtoken, the
/// library the authorizer uses): the unit of the warm-latency budget.
fn bare_rs256_verification(token: &str) -> Duration {
    let (message, signature) = token.rsplit_once('.').expect("three parts");
    let key = jsonwebtoken::DecodingKey::from_jwk(&keys().rsa.jwk).expect("decoding key");
    let mut samples: Vec<Duration> = (0..2000)
        .map(|_| {
            let started = Instant::now();
            let valid = jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key, keys().rsa.alg);
            let elapsed = started.elapsed();
            assert!(valid.expect("verifies"));
            elapsed
        })
        .collect();
    percentile(&mut samples, 0.5)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let cold_runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20).clamp(1, 200);
    let warm: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000).clamp(10, 20_000);

    let jwks = fixture::jwks_server().await;
    let common: Vec<(&'static str, String)> = vec![
        ("AUDIENCE", fixture::AUDIENCE.into()),
        ("ROUTES", fixture::ROUTES.into()),
        ("CERT_BINDING", "required".into()),
        ("RUST_LOG", std::env::var("BENCH_RUST_LOG").unwrap_or("info".into())),
    ];
    let mut env: Vec<(&'static str, String)> = common.clone();
    env.extend([
        ("TOKEN_VALIDATION", "jwt".into()),
        ("JWKS_URI", jwks.url("/jwks")),
        ("TOKEN_ISSUER", fixture::ISSUER.into()),
    ]);
    let token = keys().rsa.sign(&claims());
    let event = events::request(Some(&format!("Bearer {token}")), Some(&pki().client));

    // The same function configured with the issuer alone: discovery, then the JWKS.
    let provider = Provider::start(Metadata::OpenIdConnect, "").await;
    let mut discovery_env: Vec<(&'static str, String)> = common.clone();
    discovery_env.extend([("TOKEN_VALIDATION", "jwt".into()), ("TOKEN_ISSUER", provider.issuer())]);
    let mut discovered_claims = claims();
    discovered_claims["iss"] = serde_json::json!(provider.issuer());
    let discovered_token = keys().rsa.sign(&discovered_claims);
    let discovered_event = events::request(Some(&format!("Bearer {discovered_token}")), Some(&pki().client));

    // Opaque tokens, the client secret in the environment or read at init
    // from SSM by reference (one SigV4-signed GetParameter, here to a
    // loopback stand-in that answers at once: the authorizer's own cost).
    const CLIENT_SECRET: &str = "bench-client-secret";
    let active = serde_json::json!({"active": true, "scope": "pets:read", "sub": "u", "exp": e2e::now() + 3600, "aud": fixture::AUDIENCE,
        "cnf": {"x5t#S256": pki().client.thumbprint}});
    let introspection = e2e::server::TestServer::start(move |_| e2e::server::Reply::json(&active)).await;
    let ssm = e2e::server::TestServer::start(|_| {
        e2e::server::Reply::json(
            serde_json::json!({"Parameter": {"Name": "/bench/introspection", "Value": CLIENT_SECRET}}),
        )
    })
    .await;
    let mut opaque_env: Vec<(&'static str, String)> = common.clone();
    opaque_env.extend([
        ("TOKEN_VALIDATION", "introspection".into()),
        ("INTROSPECTION_ENDPOINT", introspection.url("/introspect")),
        ("INTROSPECTION_CLIENT_ID", "gateway".into()),
    ]);
    let mut in_env = opaque_env.clone();
    in_env.push(("INTROSPECTION_CLIENT_SECRET", CLIENT_SECRET.into()));
    let mut by_reference = opaque_env;
    by_reference.extend([
        ("AUTHORIZER_SECRET_REFERENCES", r#"{"INTROSPECTION_CLIENT_SECRET": "ssm:/bench/introspection"}"#.into()),
        ("AWS_REGION", "eu-west-1".into()),
        ("AWS_ACCESS_KEY_ID", "AKIDBENCH".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_ENDPOINT_URL_SSM", ssm.url("")),
    ]);
    let opaque_event = events::request(Some("Bearer opaque-token-1234567890"), Some(&pki().client));

    // The JWT function with DPoP on and the shared replay store configured:
    // its init builds the store (no call: the table is asked per request,
    // and these Bearer requests ask nothing of it).
    let mut with_store = env.clone();
    with_store.extend([
        ("DPOP", "allowed".into()),
        ("DPOP_REPLAY_STORE", "dynamodb:bench-dpop-replay".into()),
        ("AWS_REGION", "eu-west-1".into()),
        ("AWS_ACCESS_KEY_ID", "AKIDBENCH".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
    ]);

    let contenders = [
        Contender { binary: "constant-lambda", env: Vec::new(), event: event.clone() },
        Contender { binary: "bootstrap", env: env.clone(), event: event.clone() },
        Contender { binary: "bootstrap", env: discovery_env, event: discovered_event },
        Contender { binary: "bootstrap", env: in_env, event: opaque_event.clone() },
        Contender { binary: "bootstrap", env: by_reference, event: opaque_event },
        Contender { binary: "bootstrap", env: with_store, event: event.clone() },
    ];
    let figures = measure(&contenders, cold_runs, warm).await;
    let (reference, ours, discovering) = (&figures[0], &figures[1], &figures[2]);
    let (secret_in_env, secret_by_reference) = (&figures[3], &figures[4]);
    let replay_store = &figures[5];
    let bare = bare_rs256_verification(&token);

    let binary = e2e::workspace_binary("release", "bootstrap");
    let size = std::fs::metadata(&binary).expect("binary").len();
    let zipped = zip_size(&binary);
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("{cold_runs} cold starts, {warm} warm invocations each (valid bound RS256 JWT, CERT_BINDING=required)");
    println!("{:<34} {:>14} {:>14} {:>8}", "", "bootstrap", "constant-lambda", "ratio");
    for (name, a, b) in [
        ("cold start p50 (to /next)", ours.cold_p50, reference.cold_p50),
        ("cold start p50, with discovery", discovering.cold_p50, reference.cold_p50),
        ("warm p50", ours.warm_p50, reference.warm_p50),
        ("warm p99", ours.warm_p99, reference.warm_p99),
    ] {
        println!("{name:<34} {:>12.0}µs {:>12.0}µs {:>7.2}x", micros(a), micros(b), ratio(a, b));
    }
    println!(
        "{:<34} {:>12}KiB {:>12}KiB {:>7.2}x",
        "peak RSS",
        ours.peak_rss_kib,
        reference.peak_rss_kib,
        ours.peak_rss_kib as f64 / reference.peak_rss_kib.max(1) as f64
    );
    println!(
        "cold start above the reference: {:.0}µs (budget 2000µs); with discovery {:.0}µs",
        micros(ours.cold_p50) - micros(reference.cold_p50),
        micros(discovering.cold_p50) - micros(reference.cold_p50)
    );
    println!(
        "cold start p50, opaque tokens: client secret in the environment {:.0}µs, by SSM reference {:.0}µs \
         (+{:.0}µs for the signed GetParameter)",
        micros(secret_in_env.cold_p50),
        micros(secret_by_reference.cold_p50),
        micros(secret_by_reference.cold_p50) - micros(secret_in_env.cold_p50)
    );
    println!(
        "cold start p50 with DPOP_REPLAY_STORE=dynamodb:… (DPoP on): {:.0}µs ({:+.0}µs over the same function without it)",
        micros(replay_store.cold_p50),
        micros(replay_store.cold_p50) - micros(ours.cold_p50)
    );
    println!(
        "warm p50 above the reference: {:.0}µs (budget 2 × one bare RS256 verification = {:.0}µs; one = {:.1}µs)",
        micros(ours.warm_p50) - micros(reference.warm_p50),
        2.0 * micros(bare),
        micros(bare)
    );
    println!(
        "bootstrap binary: {} bytes ({:.2} MiB), zip: {} bytes ({:.2} MiB)",
        size,
        size as f64 / 1048576.0,
        zipped,
        zipped as f64 / 1048576.0
    );
}
