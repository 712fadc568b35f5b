//! `deployer local` as a user runs it: a stack file with a truststore of a
//! real CA, the real `deployer` and `bootstrap` binaries as processes, a JWKS
//! server and an echoing backend on 127.0.0.1, and an HTTPS client that
//! presents real client certificates.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::certs::{Ca, ClientCertificate, ServerCertificate};
use crate::fixture::{self, AUDIENCE, ISSUER};
use crate::server::{Reply, TestServer};

/// The domain the stack serves (the client resolves it to 127.0.0.1).
pub const DOMAIN: &str = "api.pets.test";

/// What a test changes in the stack.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub identity_sources: Vec<&'static str>,
    pub cache_ttl_seconds: u32,
    pub allow_cache_replay_with_binding: bool,
    pub throttling: Option<(f64, u32)>,
    pub timeout_seconds: u32,
    pub allow: Vec<&'static str>,
    /// Run this instead of the workspace's `bootstrap`.
    pub bootstrap: Option<PathBuf>,
    /// The stack's `code: { zip: … }`; then no `--bootstrap` is given and
    /// `deployer local` runs what the zip holds.
    pub code_zip: Option<PathBuf>,
    /// Adds `GET /pets/mine` (scope `pets:admin`), `ANY /files/{path+}`
    /// (scope `pets:read`), `POST /pets:purge` (`pets:admin`), `GET
    /// /users/@me` (`users:self`) and `GET /search`, whose backend URL has
    /// a query string of its own (`pets:read`).
    pub more_routes: bool,
    /// `api.default` (`deny` unless set).
    pub default_rule: &'static str,
    /// More authorizer settings (`DPOP: allowed`, …).
    pub environment: Vec<(&'static str, String)>,
    /// Variables for the `deployer local` process (`DEPLOYER_TIME_SCALE`).
    pub deployer_environment: Vec<(&'static str, String)>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            identity_sources: vec!["method.request.header.Authorization", "context.identity.clientCert.clientCertPem"],
            cache_ttl_seconds: 0,
            allow_cache_replay_with_binding: false,
            throttling: None,
            timeout_seconds: 5,
            allow: vec!["127.0.0.1/32"],
            bootstrap: None,
            code_zip: None,
            more_routes: false,
            default_rule: "deny",
            environment: Vec::new(),
            deployer_environment: Vec::new(),
        }
    }
}

/// The certificates of one run: a CA in the truststore and what it issued,
/// an expired certificate of the same CA, one of another CA, and the server's.
pub struct LocalPki {
    pub ca: Ca,
    pub client: ClientCertificate,
    pub other_client: ClientCertificate,
    pub expired_client: ClientCertificate,
    pub foreign_client: ClientCertificate,
    pub server_ca: Ca,
    pub server: ServerCertificate,
}

impl LocalPki {
    pub fn new() -> LocalPki {
        let ca = Ca::new("Pets client CA");
        let foreign = Ca::new("Somebody else's CA");
        let server_ca = Ca::new("Local server CA");
        LocalPki {
            client: ca.client("client-a", 0x2001),
            other_client: ca.client("client-b", 0x2002),
            expired_client: ca.expired_client("client-old", 0x2003),
            foreign_client: foreign.client("client-a", 0x2001),
            server: server_ca.server(DOMAIN),
            ca,
            server_ca,
        }
    }
}

impl Default for LocalPki {
    fn default() -> Self {
        Self::new()
    }
}

/// Which deployer, which stack, and any further `local` arguments.
pub struct Launch {
    pub deployer: PathBuf,
    pub stack: PathBuf,
    pub arguments: Vec<String>,
    /// Added to the inherited environment.
    pub environment: Vec<(String, String)>,
    /// Parse and keep the access log (tests); otherwise it is read and
    /// dropped, as a benchmark wants.
    pub keep_access_log: bool,
}

pub struct LocalEdge {
    process: tokio::process::Child,
    pub address: SocketAddr,
    /// `https://api.pets.test:PORT/v1`.
    pub base: String,
    access_log: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
    pub backend: TestServer,
    pub jwks: TestServer,
    pub pki: Arc<LocalPki>,
    pub directory: PathBuf,
}

/// A stack file for `deployer local`, its files beside it.
pub fn write_stack(directory: &std::path::Path, options: &StackOptions, jwks_uri: &str, pki: &LocalPki) -> PathBuf {
    std::fs::create_dir_all(directory).expect("stack directory");
    std::fs::write(directory.join("truststore.pem"), &pki.ca.pem).expect("truststore");
    let throttling = match options.throttling {
        Some((rate, burst)) => format!("  throttling: {{ rate_limit: {rate}, burst_limit: {burst} }}\n"),
        None => String::new(),
    };
    let stack = format!(
        r#"stack: local-pets
region: eu-west-1
authorizer:
  code: {code}
  timeout_seconds: {timeout}
  environment:
    TOKEN_VALIDATION: jwt
    JWKS_URI: {jwks_uri}
    TOKEN_ISSUER: {ISSUER}
    AUDIENCE: {AUDIENCE}
    CERT_BINDING: required
{environment}  identity_sources: {sources}
  cache_ttl_seconds: {ttl}
  allow_cache_replay_with_binding: {replay}
api:
  name: local-pets
  realm: pets
  default: {default_rule}
  routes:
{more_routes}    - method: GET
      path: /pets/{{id}}
      scopes: [pets:read]
      backend: https://backend.example.com/pets/{{id}}
      context_headers: {{ X-Sub: sub, X-Client-Id: client_id, X-Client-Cert-Thumbprint: cert_thumbprint, X-Dpop-Thumbprint: dpop_thumbprint }}
    - method: POST
      path: /pets
      scopes: [pets:write]
      backend: https://backend.example.com/pets
      context_headers: {{ X-Sub: sub }}
domain:
  name: {DOMAIN}
  certificate: {{ request: true }}
  truststore: {{ file: truststore.pem, bucket: local-pets-truststore, key: truststore.pem }}
  base_path: v1
waf:
  allow: {allow}
stage:
  name: prod
  variables: {{ tier: gold }}
{throttling}"#,
        timeout = options.timeout_seconds,
        code = match &options.code_zip {
            Some(zip) => format!("{{ zip: {:?} }}", zip.display().to_string()),
            None => "{ build: authorizer }".to_owned(),
        },
        more_routes = match options.more_routes {
            true =>
                "    - method: GET\n      path: /pets/mine\n      scopes: [pets:admin]\n      \
                     backend: https://backend.example.com/pets/mine\n      context_headers: { X-Sub: sub }\n    \
                     - method: ANY\n      path: /files/{path+}\n      scopes: [pets:read]\n      \
                     backend: https://backend.example.com/files/{path+}\n    \
                     - method: POST\n      path: /pets:purge\n      scopes: [pets:admin]\n      \
                     backend: https://backend.example.com/purge\n    \
                     - method: GET\n      path: /users/@me\n      scopes: [users:self]\n      \
                     backend: https://backend.example.com/me\n    \
                     - method: GET\n      path: /search\n      scopes: [pets:read]\n      \
                     backend: https://backend.example.com/search?api_key=k1\n",
            false => "",
        },
        environment =
            options.environment.iter().map(|(name, value)| format!("    {name}: {value:?}\n")).collect::<String>(),
        sources = json!(options.identity_sources),
        ttl = options.cache_ttl_seconds,
        default_rule = options.default_rule,
        replay = options.allow_cache_replay_with_binding,
        allow = json!(options.allow),
    );
    let path = directory.join("stack.yaml");
    std::fs::write(&path, stack).expect("stack.yaml");
    path
}

/// A Lambda function written in Python against the Runtime API: it allows
/// the request's own method ARN with the context `{"sub": sub}`, after
/// running `behaviour` (indented Python that may change `sub` or exit).
pub fn python_function(name: &str, behaviour: &str) -> PathBuf {
    let directory = scratch_directory(name);
    std::fs::create_dir_all(&directory).expect("directory");
    let path = directory.join("bootstrap");
    let marker = directory.join("crashed-once");
    let script = format!(
        r#"#!/usr/bin/env python3
import json, os, time, urllib.request
base = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
marker = {marker:?}
sub = "script"
while True:
    with urllib.request.urlopen(base + "next") as answer:
        request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.load(answer)
{behaviour}
    policy = {{"Version": "2012-10-17", "Statement": [
        {{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}}]}}
    body = json.dumps({{"principalId": "script", "policyDocument": policy, "context": {{"sub": sub}}}})
    urllib.request.urlopen(urllib.request.Request(base + request_id + "/response", data=body.encode(), method="POST")).read()
"#
    );
    std::fs::write(&path, script).expect("script");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A fresh directory under the system's temporary directory.
pub fn scratch_directory(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("deployer-local-{name}-{}-{n}", std::process::id()))
}

/// A backend that answers 200 with what it received (method, path, headers).
pub async fn echo_backend() -> TestServer {
    TestServer::start(echo).await
}

/// The echo backend's answer: method, path and headers (the last value of each).
pub fn echo(request: &crate::server::Recorded) -> Reply {
    let headers: serde_json::Map<String, Value> =
        request.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone()))).collect();
    Reply::json(json!({"method": request.method, "path": request.path, "headers": headers}))
}

impl LocalEdge {
    pub async fn start(options: StackOptions) -> LocalEdge {
        Self::start_with(options, &[]).await
    }

    /// Starts `deployer local` with `extra` arguments; panics if it does not
    /// come up.
    pub async fn start_with(options: StackOptions, extra: &[&str]) -> LocalEdge {
        match Self::try_start(options, extra).await {
            Ok(edge) => edge,
            Err(stderr) => panic!("deployer local did not start:\n{stderr}"),
        }
    }

    /// Starts `deployer local`, or returns what it printed on stderr when it
    /// exits instead.
    pub async fn try_start(options: StackOptions, extra: &[&str]) -> Result<LocalEdge, String> {
        let pki = Arc::new(LocalPki::new());
        let jwks = fixture::jwks_server().await;
        let backend = echo_backend().await;
        let directory = scratch_directory("edge");
        let stack = write_stack(&directory, &options, &jwks.url("/jwks"), &pki);
        let bootstrap = options.bootstrap.clone().unwrap_or_else(|| crate::workspace_binary("debug", "bootstrap"));
        let mut arguments = match options.code_zip {
            Some(_) => Vec::new(),
            None => vec!["--bootstrap".to_owned(), bootstrap.display().to_string()],
        };
        arguments.extend(extra.iter().map(|a| (*a).to_owned()));
        let launch = Launch {
            deployer: crate::workspace_binary("debug", "deployer"),
            stack,
            arguments,
            environment: options.deployer_environment.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            keep_access_log: true,
        };
        Self::launch(launch, pki, jwks, backend, directory).await
    }

    /// Runs `deployer --stack STACK local` with the server certificate of
    /// `pki`, sending every route to `backend`.
    pub async fn launch(
        launch: Launch,
        pki: Arc<LocalPki>,
        jwks: TestServer,
        backend: TestServer,
        directory: PathBuf,
    ) -> Result<LocalEdge, String> {
        std::fs::create_dir_all(&directory).expect("directory");
        std::fs::write(directory.join("server.pem"), &pki.server.cert_pem).expect("server cert");
        std::fs::write(directory.join("server.key"), &pki.server.key_pem).expect("server key");
        // Every route goes to `backend`, unless the arguments name another.
        let backend_url = backend.url("");
        let default_backend = match launch.arguments.iter().any(|a| a == "--backend") {
            true => None,
            false => Some(["--backend", backend_url.as_str()]),
        };
        let mut command = tokio::process::Command::new(&launch.deployer);
        command
            .arg("--stack")
            .arg(&launch.stack)
            .args(["local", "--listen", "127.0.0.1:0"])
            .args(default_backend.iter().flatten())
            .args(&launch.arguments)
            .envs(launch.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg("--tls-cert")
            .arg(directory.join("server.pem"))
            .arg("--tls-key")
            .arg(directory.join("server.key"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut process = command.spawn().expect("spawn deployer local");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_lines = BufReader::new(process.stderr.take().expect("stderr")).lines();
        let collected = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                collected.lock().expect("stderr").push_str(&(line + "\n"));
            }
        });
        let mut lines = BufReader::new(process.stdout.take().expect("stdout")).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        let listening = match first {
            Ok(Ok(Some(line))) => {
                serde_json::from_str::<Value>(&line).ok().and_then(|v| v["listening"].as_str().map(str::to_owned))
            }
            _ => None,
        };
        let Some(listening) = listening else {
            let _ = tokio::time::timeout(Duration::from_secs(5), process.wait()).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = std::fs::remove_dir_all(&directory);
            return Err(stderr.lock().expect("stderr").clone());
        };
        let access_log = Arc::new(Mutex::new(Vec::new()));
        let log = access_log.clone();
        let keep = launch.keep_access_log;
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if !keep {
                    continue;
                }
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    log.lock().expect("log").push(value);
                }
            }
        });
        // https://127.0.0.1:PORT/v1 → the address, and the base URL by name.
        let rest = listening.strip_prefix("https://").expect("https URL");
        let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let address: SocketAddr = authority.parse().expect("socket address");
        let base = format!("https://{DOMAIN}:{}{prefix}", address.port());
        Ok(LocalEdge { process, address, base, access_log, stderr, backend, jwks, pki, directory })
    }

    /// Ends the authorizer's execution environments (their processes, as
    /// Lambda retires an instance): the next request starts a new one,
    /// with nothing in memory. Linux only (reads `/proc`).
    pub fn end_execution_environments(&self) -> usize {
        let Some(pid) = self.process.id() else { return 0 };
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
        let children: Vec<String> = tasks
            .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
            .flat_map(|text| text.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .filter(|child| {
                std::fs::read_to_string(format!("/proc/{child}/comm")).is_ok_and(|c| c.trim() == "bootstrap")
            })
            .collect();
        for child in &children {
            let _ = std::process::Command::new("kill").args(["-9", child]).status();
        }
        // Until each is reaped: the edge learns of an environment's exit
        // when it reaps it (a moment after the process dies), and until then
        // would send it the next request. Then a moment for the edge to note it.
        let reaped = |child: &String| !std::path::Path::new(&format!("/proc/{child}")).exists();
        for _ in 0..300 {
            if children.iter().all(reaped) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        children.len()
    }

    /// An HTTPS client that trusts the local server and presents `certificate`.
    pub fn client(&self, certificate: Option<&ClientCertificate>) -> reqwest::Client {
        self.client_from(certificate, None)
    }

    /// The same, its connections made from `source` (a loopback address).
    pub fn client_from(&self, certificate: Option<&ClientCertificate>, source: Option<IpAddr>) -> reqwest::Client {
        https_client(&self.pki, self.address, certificate, source)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A token bound to `certificate` with `scope`, signed by the published key.
    pub fn token(&self, scope: &str, certificate: &ClientCertificate) -> String {
        let mut claims = fixture::claims();
        claims["scope"] = scope.into();
        claims["cnf"] = json!({"x5t#S256": certificate.thumbprint});
        fixture::keys().rsa.sign(&claims)
    }

    /// Access-log lines so far (refused handshakes included).
    pub fn access_log(&self) -> Vec<Value> {
        self.access_log.lock().expect("log").clone()
    }

    /// Waits (bounded) until `count` access-log lines are there.
    pub async fn wait_for_log(&self, count: usize) -> Vec<Value> {
        for _ in 0..200 {
            let lines = self.access_log();
            if lines.len() >= count {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {count} access-log lines: {:?}", self.access_log())
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    /// Lines of the access log for requests (not refused handshakes).
    pub fn requests_logged(&self) -> Vec<Value> {
        self.access_log().into_iter().filter(|l| l.get("status").is_some()).collect()
    }

    /// How many times the authorizer ran, by its own account: the `bootstrap`
    /// logs one "authorization decision" line per invocation (to the stderr of
    /// `deployer local`). Waits briefly first: the line travels through a pipe.
    pub async fn invocations(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(150)).await;
        self.stderr().lines().filter(|l| l.contains("authorization decision")).count()
    }

    pub async fn stop(mut self) {
        let _ = self.process.kill().await;
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// An HTTPS client that trusts `pki`'s server CA, reaches [`DOMAIN`] at
/// `address`, presents `certificate` and connects from `source`.
pub fn https_client(
    pki: &LocalPki,
    address: SocketAddr,
    certificate: Option<&ClientCertificate>,
    source: Option<IpAddr>,
) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(pki.server_ca.pem.as_bytes()).expect("server CA");
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([root])
        .resolve(DOMAIN, address)
        .timeout(Duration::from_secs(20))
        .local_address(source);
    if let Some(certificate) = certificate {
        let identity = reqwest::Identity::from_pem(format!("{}{}", certificate.pem, certificate.key_pem).as_bytes())
            .expect("client identity");
        builder = builder.identity(identity);
    }
    builder.build().expect("client")
}

/// What came back to a request written byte for byte.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl LocalEdge {
    /// Writes `request_head` (request line and headers, without the blank
    /// line) exactly as given over a TLS connection presenting `certificate`,
    /// and reads the answer until the connection closes. HTTP clients
    /// normalise paths (`..`, `%2e`) before sending; this does not.
    pub async fn raw_request(&self, certificate: &ClientCertificate, request_head: &str) -> RawAnswer {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = self.raw_connection(certificate).await;
        let request = format!("{request_head}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
            .await
            .expect("an answer within 20 s")
            .expect("read");
        let text = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        RawAnswer { status, head: head.to_owned(), body: body.to_owned() }
    }

    /// A TLS connection to the edge that has done its handshake with
    /// `certificate` and sent nothing yet.
    pub async fn raw_connection(
        &self,
        certificate: &ClientCertificate,
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject as _;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(self.pki.server_ca.pem.as_bytes()) {
            roots.add(ca.expect("CA PEM")).expect("CA");
        }
        let chain = CertificateDer::pem_slice_iter(certificate.pem.as_bytes()).collect::<Result<Vec<_>, _>>();
        let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes()).expect("client key");
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_client_auth_cert(chain.expect("client chain"), key)
            .expect("client config");
        let tcp = tokio::net::TcpStream::connect(self.address).await.expect("connect");
        let name = ServerName::try_from(DOMAIN).expect("server name");
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake")
    }
}
