//! The local AWS stand-in: a moto server on 127.0.0.1, and a recording proxy
//! in front of it that counts what the deployer sends.
//!
//! `scripts/test` installs moto in `.venv-moto` and starts one server for the
//! whole run (`MOTO_ENDPOINT`); when that variable is not set, the first test
//! that needs moto starts a server from `.venv-moto` itself.
//!
//! The proxy exists because moto is not AWS (see shared notes on where it
//! differs): where moto drops a field, a test checks the request the
//! deployer sent instead of what moto answers.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::access::Judge;
use crate::aws_like::{AwsLike, Before, Behaviours};
use crate::server::{Recorded, Reply, TestServer};

/// The moto server's base URL.
pub fn endpoint() -> String {
    if let Ok(url) = std::env::var("MOTO_ENDPOINT") {
        return url;
    }
    static STARTED: OnceLock<(String, Mutex<Child>)> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            let root = crate::workspace_root();
            let python = root.join(".venv-moto/bin/python");
            let server = root.join("scripts/moto_server.py");
            assert!(
                root.join(".venv-moto/bin/moto_server").exists(),
                "moto is not installed: run ./scripts/test (it installs moto in .venv-moto and starts it)"
            );
            let port =
                std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
            // A static is never dropped, so the server is tied to this test
            // process by a watchdog: it is stopped once the tests are gone.
            let watchdog = format!(
                "\"{}\" \"{}\" -H 127.0.0.1 -p {port} & server=$!; while kill -0 {} 2>/dev/null; do sleep 1; done; kill $server",
                python.display(),
                server.display(),
                std::process::id()
            );
            let child = Command::new("sh")
                .args(["-c", &watchdog])
                .env("MOTO_ACM_VALIDATION_WAIT", "0")
                .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start moto");
            let url = format!("http://127.0.0.1:{port}");
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (url, Mutex::new(child))
        })
        .0
        .clone()
}

/// One request through the proxy, reduced to what tests ask about.
#[derive(Debug, Clone)]
pub struct Call {
    pub service_operation: String,
    pub mutating: bool,
    pub request: Recorded,
    /// When the proxy received it.
    pub at: std::time::Instant,
}

/// Classifies a request by protocol: JSON (`X-Amz-Target`), query (`Action=`
/// in the form body), or REST (the HTTP verb).
pub fn classify(request: &Recorded) -> (String, bool) {
    let is_read = |operation: &str| ["Get", "List", "Describe", "Head"].iter().any(|p| operation.starts_with(p));
    if let Some(target) = request.header("x-amz-target") {
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        let mutating = !is_read(&operation);
        return (operation, mutating);
    }
    if let Some(action) = request.body.split('&').find_map(|pair| pair.strip_prefix("Action=")) {
        let operation = action.to_owned();
        let mutating = !is_read(&operation);
        return (operation, mutating);
    }
    let path = request.path.split('?').next().unwrap_or("");
    (format!("{} {path}", request.method), !matches!(request.method.as_str(), "GET" | "HEAD"))
}

/// Changes an answer before the deployer sees it.
pub type Rewrite = dyn Fn(&Recorded, &mut Reply) + Send + Sync;

/// A recording proxy in front of moto. Every proxy judges the calls of the
/// principals the tests made known by their policies (`access`), as IAM
/// would: one proxy is one account.
pub struct Proxy {
    server: TestServer,
    calls: Arc<Mutex<Vec<Call>>>,
    concurrency: Arc<Concurrency>,
    freeze: Arc<Freeze>,
    layer: Option<Arc<AwsLike>>,
}

/// How many calls are in flight through the proxy, and the most there were.
#[derive(Default)]
struct Concurrency {
    now: AtomicUsize,
    highest: AtomicUsize,
}

/// "Stop after the Nth mutating call": the Nth is passed on, then every
/// later call is held unanswered, so the deployer can be killed at exactly
/// that point.
struct Freeze {
    limit: AtomicUsize,
    passed: AtomicUsize,
}

/// What a proxy does besides recording and passing calls on.
#[derive(Default)]
struct Options {
    delay: Duration,
    rewrite: Option<Arc<Rewrite>>,
    refuse: Option<Arc<Refuse>>,
    layer: Option<Arc<AwsLike>>,
    dead_end: bool,
    act: Option<Arc<Act>>,
}

/// Something done in the account before a call is passed on (`None`: pass
/// it on at once): another actor changing AWS while the deployer runs.
pub type Act = dyn Fn(&Recorded) -> Option<Acted> + Send + Sync;

/// What [`Act`] does, to be awaited before the call goes on.
pub type Acted = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Answers a call instead of moto (`None`: pass it on).
pub type Refuse = dyn Fn(&Recorded) -> Option<Reply> + Send + Sync;

impl Proxy {
    pub async fn start() -> Proxy {
        Self::start_with(Options::default()).await
    }

    /// A proxy that holds every call for `delay` before passing it on, as a
    /// real control plane takes 100–300 ms to answer.
    pub async fn with_delay(delay: Duration) -> Proxy {
        Self::start_with(Options { delay, ..Options::default() }).await
    }

    /// A proxy that lets `rewrite` change moto's answers: to give the
    /// deployer what AWS would answer where moto cannot.
    pub async fn rewriting(rewrite: impl Fn(&Recorded, &mut Reply) + Send + Sync + 'static) -> Proxy {
        Self::start_with(Options { rewrite: Some(Arc::new(rewrite)), ..Options::default() }).await
    }

    /// A proxy that answers the calls `refuse` picks itself, without moto:
    /// an error AWS could give that no behaviour here produces.
    pub async fn refusing(refuse: impl Fn(&Recorded) -> Option<Reply> + Send + Sync + 'static) -> Proxy {
        Self::start_with(Options { refuse: Some(Arc::new(refuse)), ..Options::default() }).await
    }

    /// A proxy that behaves like AWS where moto does not (see `aws_like`).
    pub async fn aws_like(behaviours: Behaviours) -> Proxy {
        Self::start_with(Options { layer: Some(Arc::new(AwsLike::new(behaviours))), ..Options::default() }).await
    }

    /// [`Proxy::aws_like`] with every call held for `delay` too, as a real
    /// control plane takes 100–300 ms to act.
    pub async fn aws_like_with_delay(behaviours: Behaviours, delay: Duration) -> Proxy {
        Self::start_with(Options { delay, layer: Some(Arc::new(AwsLike::new(behaviours))), ..Options::default() }).await
    }

    /// [`Proxy::aws_like`] whose answers `rewrite` may change last.
    pub async fn aws_like_rewriting(
        behaviours: Behaviours,
        rewrite: impl Fn(&Recorded, &mut Reply) + Send + Sync + 'static,
    ) -> Proxy {
        let layer = Some(Arc::new(AwsLike::new(behaviours)));
        Self::start_with(Options { rewrite: Some(Arc::new(rewrite)), layer, ..Options::default() }).await
    }

    /// A proxy that lets `act` change the account before passing a call on:
    /// AWS moving under a run, between its plan and one of its steps.
    pub async fn acting(act: impl Fn(&Recorded) -> Option<Acted> + Send + Sync + 'static) -> Proxy {
        Self::start_with(Options { act: Some(Arc::new(act)), ..Options::default() }).await
    }

    /// A proxy with nothing behind it: records, and answers 500. For tests
    /// that expect no request at all.
    pub async fn dead_end() -> Proxy {
        Self::start_with(Options { dead_end: true, ..Options::default() }).await
    }

    async fn start_with(options: Options) -> Proxy {
        let Options { delay, rewrite, refuse, layer, dead_end, act } = options;
        let upstream = (!dead_end).then(endpoint);
        let calls: Arc<Mutex<Vec<Call>>> = Arc::new(Mutex::new(Vec::new()));
        let concurrency = Arc::new(Concurrency::default());
        let freeze = Arc::new(Freeze { limit: AtomicUsize::new(usize::MAX), passed: AtomicUsize::new(0) });
        let (recorded, in_flight, frozen, aws) = (calls.clone(), concurrency.clone(), freeze.clone(), layer.clone());
        let judge = Arc::new(Judge::default());
        let client = reqwest::Client::new();
        let server = TestServer::start_async(Arc::new(move |request: Recorded| {
            let (service_operation, mutating) = classify(&request);
            let at = std::time::Instant::now();
            recorded.lock().expect("calls").push(Call { service_operation, mutating, request: request.clone(), at });
            let (client, upstream, rewrite, refuse) =
                (client.clone(), upstream.clone(), rewrite.clone(), refuse.clone());
            let acted = act.as_ref().and_then(|act| act(&request));
            let (in_flight, frozen, aws, judge) = (in_flight.clone(), frozen.clone(), aws.clone(), judge.clone());
            Box::pin(async move {
                if !frozen.lets_through(mutating) {
                    // Held until the test kills the deployer (bounded all the same).
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return Reply::hang_up();
                }
                if let Some(acted) = acted {
                    acted.await;
                }
                // IAM first, as AWS: a call the caller may not make goes no further.
                if let Some(denied) = judge.before(&request).await {
                    return denied;
                }
                let now = in_flight.now.fetch_add(1, Ordering::SeqCst) + 1;
                in_flight.highest.fetch_max(now, Ordering::SeqCst);
                let mut outgoing = request.clone();
                let refused = refuse.as_ref().and_then(|refuse| refuse(&request));
                let decided = match refused {
                    Some(reply) => Some(Before::Answer(reply)),
                    None => aws.as_ref().map(|layer| layer.before(&mut outgoing)),
                };
                // The delay stands for AWS's time to act: a write is in
                // flight (and overlaps others) for all of it.
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let mut reply = match (decided, upstream) {
                    (Some(Before::Answer(reply)), _) => reply,
                    (_, None) => Reply::status(500, "no upstream"),
                    (decided, Some(upstream)) => {
                        let mut reply = forward(&client, &upstream, outgoing).await;
                        if let Some(layer) = &aws {
                            layer.after(&request, &mut reply);
                        }
                        judge.after(&request, &mut reply);
                        // The write is over once moto answered.
                        drop(decided);
                        reply
                    }
                };
                if let Some(rewrite) = rewrite {
                    rewrite(&request, &mut reply);
                }
                in_flight.now.fetch_sub(1, Ordering::SeqCst);
                reply
            })
        }))
        .await;
        Proxy { server, calls, concurrency, freeze, layer }
    }

    /// From now on, pass on `n` more mutating calls, then hold every call.
    pub fn freeze_after(&self, n: usize) {
        self.freeze.passed.store(0, Ordering::SeqCst);
        self.freeze.limit.store(n, Ordering::SeqCst);
    }

    /// Mutating calls passed on since `freeze_after`.
    pub fn passed_mutations(&self) -> usize {
        self.freeze.passed.load(Ordering::SeqCst)
    }

    /// Pass every call on again.
    pub fn thaw(&self) {
        self.freeze.limit.store(usize::MAX, Ordering::SeqCst);
    }

    /// How many calls each AWS behaviour answered instead of moto.
    pub fn behaviour_counts(&self) -> std::collections::BTreeMap<&'static str, usize> {
        self.layer.as_ref().map(|l| l.counts()).unwrap_or_default()
    }

    /// The routes a stage serves (its deployment's snapshot), for a REST API
    /// created through this proxy's AWS-like layer.
    pub fn served_routes(&self, api_id: &str, stage: &str) -> Option<std::collections::BTreeSet<String>> {
        self.layer.as_ref()?.served_routes(api_id, stage)
    }

    /// See [`crate::aws_like::AwsLike::validation_records_made_elsewhere`].
    pub fn validation_records_made_elsewhere(&self) {
        if let Some(layer) = &self.layer {
            layer.validation_records_made_elsewhere();
        }
    }

    /// The resource paths of a REST API created through this proxy's layer.
    pub fn resource_paths(&self, api_id: &str) -> Option<std::collections::BTreeSet<String>> {
        self.layer.as_ref()?.resource_paths(api_id)
    }

    /// The most calls that were in flight at once since the last reset.
    pub fn highest_concurrency(&self) -> usize {
        self.concurrency.highest.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        self.server.url("")
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    pub fn mutating(&self) -> Vec<String> {
        self.calls().into_iter().filter(|c| c.mutating).map(|c| c.service_operation).collect()
    }

    /// Mutating calls on AWS resources: all of them but those on the
    /// deployer's own lock (its S3 bucket `oauth-gateway-ACCOUNT-REGION`).
    pub fn changes(&self) -> Vec<String> {
        self.calls().into_iter().filter(|c| c.mutating && !is_lock_call(c)).map(|c| c.service_operation).collect()
    }

    /// Mutating calls on the deployer's lock.
    pub fn lock_writes(&self) -> Vec<String> {
        self.calls().into_iter().filter(|c| c.mutating && is_lock_call(c)).map(|c| c.service_operation).collect()
    }

    pub fn reset(&self) {
        self.calls.lock().expect("calls").clear();
        self.concurrency.highest.store(0, Ordering::SeqCst);
    }
}

impl Freeze {
    /// Whether a call may pass; counts the mutating ones that do.
    fn lets_through(&self, mutating: bool) -> bool {
        let limit = self.limit.load(Ordering::SeqCst);
        if !mutating {
            return self.passed.load(Ordering::SeqCst) < limit;
        }
        self.passed.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1)).is_ok()
    }
}

/// Whether a call is on the deployer's lock bucket (path-style S3).
pub fn is_lock_call(call: &Call) -> bool {
    call.request.path.starts_with("/oauth-gateway-")
}

async fn forward(client: &reqwest::Client, upstream: &str, request: Recorded) -> Reply {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut outgoing = client.request(method, format!("{upstream}{}", request.path));
    for (name, value) in &request.headers {
        if !["host", "content-length", "connection"].contains(&name.as_str()) {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.body(request.body).send().await {
        Err(e) => Reply::status(502, &format!("proxy: {e}")),
        Ok(response) => {
            let status = response.status().as_u16();
            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter(|(n, _)| !["content-length", "transfer-encoding", "connection"].contains(&n.as_str()))
                .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let body = response.text().await.unwrap_or_default();
            let mut reply = Reply::status(status, &body);
            reply.headers = headers;
            reply
        }
    }
}
