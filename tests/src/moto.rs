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
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::server::{Recorded, Reply, TestServer};

/// The moto server's base URL.
pub fn endpoint() -> String {
    if let Ok(url) = std::env::var("MOTO_ENDPOINT") {
        return url;
    }
    static STARTED: OnceLock<(String, Mutex<Child>)> = OnceLock::new();
    STARTED
        .get_or_init(|| {
            let server = crate::workspace_root().join(".venv-moto/bin/moto_server");
            assert!(
                server.exists(),
                "moto is not installed: run ./scripts/test (it installs moto in .venv-moto and starts it)"
            );
            let port =
                std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
            // A static is never dropped, so the server is tied to this test
            // process by a watchdog: it is stopped once the tests are gone.
            let watchdog = format!(
                "\"{}\" -H 127.0.0.1 -p {port} & server=$!; while kill -0 {} 2>/dev/null; do sleep 1; done; kill $server",
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

/// A recording proxy in front of moto.
pub struct Proxy {
    server: TestServer,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        Self::start_to(Some(endpoint())).await
    }

    /// A proxy with nothing behind it: records, and answers 500. For tests
    /// that expect no request at all.
    pub async fn dead_end() -> Proxy {
        Self::start_to(None).await
    }

    async fn start_to(upstream: Option<String>) -> Proxy {
        let calls: Arc<Mutex<Vec<Call>>> = Arc::new(Mutex::new(Vec::new()));
        let recorded = calls.clone();
        let client = reqwest::Client::new();
        let server = TestServer::start_async(Arc::new(move |request: Recorded| {
            let (service_operation, mutating) = classify(&request);
            recorded.lock().expect("calls").push(Call { service_operation, mutating, request: request.clone() });
            let client = client.clone();
            let upstream = upstream.clone();
            Box::pin(async move {
                let Some(upstream) = upstream else { return Reply::status(500, "no upstream") };
                forward(&client, &upstream, request).await
            })
        }))
        .await;
        Proxy { server, calls }
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

    pub fn reset(&self) {
        self.calls.lock().expect("calls").clear();
    }
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
