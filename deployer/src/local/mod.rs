//! `deployer local`: the stack served on 127.0.0.1 the way API Gateway would
//! serve it, so the whole chain can be seen before it is deployed: mTLS
//! handshake against the stack's truststore, the WAF allowlist, routing, the
//! REQUEST authorizer (the stack's own `bootstrap`, run under a local Lambda
//! Runtime API), its cache, the IAM policy against the method ARN, and the
//! HTTP_PROXY integration with the context-to-header mappings.
//!
//! The per-request path is [`edge::Edge::handle`]; this module builds the edge
//! from the stack and runs the TLS listener.

mod access_log;
mod cache;
mod dn;
mod edge;
mod event;
mod integration;
mod lambda;
pub(crate) mod path;
mod peer;
mod policy;
pub(crate) mod routes;
mod throttle;
mod tls;
mod waf;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_rustls::TlsAcceptor;

use crate::stack::{Architecture, Stack};

/// Stand-ins for what only exists in AWS.
pub const ACCOUNT: &str = "123456789012";
pub const API_ID: &str = "local";

pub struct Options {
    pub listen: SocketAddr,
    /// The authorizer binary to run instead of the stack's `code`.
    pub bootstrap: Option<PathBuf>,
    /// Replaces scheme, host and port of every route's backend.
    pub backend: Option<url::Url>,
    /// The server certificate (PEM chain) and key; generated when absent.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Where `target/` is (to build or unpack the bootstrap).
    pub workspace: PathBuf,
    /// Execution environments the authorizer may run in at once.
    pub concurrency: usize,
    /// A file each access-log line is appended to as well.
    pub access_log: Option<PathBuf>,
    /// A file the function's log goes to instead of stderr.
    pub function_log: Option<PathBuf>,
    /// The DynamoDB table accepted DPoP proofs are recorded in; `None`:
    /// each execution environment's memory.
    pub dpop_replay_table: Option<String>,
}

/// What the stack asks for that the local edge does not reproduce: said at
/// start, never silently ignored.
pub fn not_reproduced(stack: &Stack, concurrency: usize) -> Vec<String> {
    let mut notes = vec![
        format!("account {ACCOUNT} and API id {API_ID:?} stand in for yours in the method ARN"),
        format!(
            "at most {concurrency} authorizer execution environment(s) at once (--concurrency); Lambda scales further"
        ),
        format!(
            "the authorizer's memory ({} MB) is not enforced, and it runs without the IAM role",
            stack.authorizer.memory_mb
        ),
        "header names reach the authorizer and the backend lower-cased".to_owned(),
        "requestContext.domainName names the local port (API Gateway's is the domain alone, on 443)".to_owned(),
    ];
    if let Some(domain) = &stack.domain {
        notes.push(format!(
            "the custom domain's ACM certificate and security policy {}: a local certificate, TLS 1.2 and 1.3 with rustls' cipher suites",
            domain.security_policy
        ));
    } else {
        notes.push("no `domain:`: served over TLS without client certificates, like the execute-api endpoint".into());
    }
    notes.push("account-level throttling and usage plans are not modelled (the stage's rate and burst are)".into());
    if !peer::CHECKED {
        notes.push(
            "on this OS the local Lambda Runtime API cannot tell processes apart: any local user may reach it".into(),
        );
    }
    notes
}

/// Serves until the process is stopped; `on_ready` gets the bound address.
pub async fn serve(stack: &Stack, options: Options, on_ready: impl FnOnce(SocketAddr, &str)) -> anyhow::Result<()> {
    for note in not_reproduced(stack, options.concurrency) {
        eprintln!("note: {note}");
    }
    if let Some(path) = &options.access_log {
        access_log::also_to(path)?;
    }
    let binary = bootstrap_binary(stack, &options)?;
    let region =
        stack.region.clone().or_else(|| std::env::var("AWS_REGION").ok()).unwrap_or_else(|| "us-east-1".into());
    // `--env` overrides are in the stack already, checked with it. The
    // stack's replay table is AWS's: used here only when named.
    let store = authorizer::replay_store::VARIABLE;
    let mut variables: Vec<(String, String)> = stack
        .authorizer
        .environment
        .iter()
        .filter(|(k, _)| k.as_str() != store)
        .map(|(k, v)| (k.clone(), v.reveal().to_owned()))
        .collect();
    match &options.dpop_replay_table {
        Some(table) => {
            let on = stack.authorizer.dpop_on();
            anyhow::ensure!(on, "--dpop-replay-table: DPoP is off in the stack (DPOP: allowed or required)");
            let setting = authorizer::replay_store::ReplayStore::parse(&format!("dynamodb:{table}"))
                .map_err(|e| anyhow::anyhow!("--dpop-replay-table: {}", e.problem))?;
            variables.push((store.to_owned(), setting.to_string()));
            variables.extend(lambda::aws_access(&region).await.context("--dpop-replay-table")?);
        }
        None if stack.authorizer.dpop_replay_table => eprintln!(
            "note: DPoP proofs are remembered in each local execution environment's memory; \
             --dpop-replay-table NAME records them in a DynamoDB table (AWS_ENDPOINT_URL for a local one)"
        ),
        None => {}
    }
    let function_name = format!("{}-authorizer", stack.name);
    let environment = lambda::lambda_environment(&function_name, stack.authorizer.memory_mb, &region, variables);
    let timeout = Duration::from_secs(u64::try_from(stack.authorizer.timeout_seconds).unwrap_or(3));
    let mut function = lambda::Function::new(binary, environment, timeout, options.concurrency);
    if let Some(path) = &options.function_log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("--function-log {}", path.display()))?;
        function = function.logging_to(file);
    }
    function.warm_up().await?;

    let identity = match &options.tls {
        Some((cert, key)) => tls::ServerIdentity::from_files(cert, key)?,
        None => {
            let host = stack.domain.as_ref().map(|d| d.name.as_str()).unwrap_or("localhost");
            let identity = tls::ServerIdentity::generate(host)?;
            let path = crate::package::target_dir(&options.workspace).join("deployer/local/server.pem");
            write(&path, identity.pem.as_bytes())?;
            eprintln!("server certificate (generated): {}", path.display());
            identity
        }
    };
    let config = tls::server_config(stack.domain.as_ref().map(|d| d.truststore_pem.as_slice()), identity)?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("listening on {}", options.listen))?;
    let address = listener.local_addr()?;
    let edge = Arc::new(edge::Edge {
        api: event::ApiIdentity {
            partition: "aws".into(),
            region,
            account: ACCOUNT.into(),
            api_id: API_ID.into(),
            stage: stack.stage.name.clone(),
            domain: stack.domain.as_ref().map(|d| domain_name(&d.name, address.port())),
        },
        base_path: stack.domain.as_ref().map(|d| d.base_path.clone()).unwrap_or_default(),
        allowlist: stack.waf.as_deref().map(waf::Allowlist::new),
        routes: routes::Routes::new(&stack.api.routes),
        throttle: stack
            .stage
            .throttling
            .as_ref()
            .map(|t| throttle::Throttle::new(t.rate_limit, f64::from(t.burst_limit))),
        identity_sources: stack.authorizer.identity_sources.clone(),
        cache: cache::AuthorizerCache::new(Duration::from_secs(
            u64::try_from(stack.authorizer.cache_ttl_seconds).unwrap_or(0),
        )),
        function,
        integration: integration::Integration::new(options.backend.clone())?,
        stage_variables: stack.stage.variables.clone(),
        unauthorized_challenge: stack.api.unauthorized_challenge.clone(),
        body_timeout: crate::retry::scaled(BODY_TIMEOUT),
        requests: Default::default(),
    });
    let prefix = match &edge.base_path {
        base if base.is_empty() => String::new(),
        base => format!("/{base}"),
    };
    on_ready(address, &prefix);
    let acceptor = TlsAcceptor::from(config);
    loop {
        let (stream, peer) = listener.accept().await.context("accepting a connection")?;
        let acceptor = acceptor.clone();
        let edge = edge.clone();
        tokio::spawn(async move { serve_connection(acceptor, stream, peer, edge).await });
    }
}

async fn serve_connection(
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    edge: Arc<edge::Edge>,
) {
    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
    let tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return handshake_refused(peer, &e.to_string()),
        Err(_) => return handshake_refused(peer, "timed out"),
    };
    let client_cert = match tls.get_ref().1.peer_certificates().and_then(|chain| chain.first()) {
        Some(leaf) => match tls::ClientCert::from_der(leaf) {
            Ok(cert) => Some(cert),
            Err(e) => return handshake_refused(peer, &format!("{e:#}")),
        },
        None => None,
    };
    // Responses go out whole: no Nagle delay waiting for the client's ACK.
    let _ = tls.get_ref().0.set_nodelay(true);
    let connection = Arc::new(edge::Connection { source: peer.ip(), client_cert });
    let service = hyper::service::service_fn(move |request| {
        let edge = edge.clone();
        let connection = connection.clone();
        async move { Ok::<_, std::convert::Infallible>(edge.handle(request, &connection).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(crate::retry::scaled(HEADER_TIMEOUT))
        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
        .await;
}

/// How long a client may take to send a request's headers (a client that
/// trickles them would otherwise hold a connection for ever).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an authorised request's body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// `requestContext.domainName`: the host the client called. API Gateway
/// serves 443 only and never names a port; the local edge listens elsewhere,
/// so it names its port, and a DPoP proof's `htu` can be the URL the client
/// really called (`https://api.example.com:8443/v1/pets/7`).
fn domain_name(domain: &str, port: u16) -> String {
    match port {
        443 => domain.to_owned(),
        port => format!("{domain}:{port}"),
    }
}

/// A refused handshake has no request to log; one line says who and why.
fn handshake_refused(peer: SocketAddr, reason: &str) {
    access_log::write_line(
        serde_json::json!({"sourceIp": peer.ip().to_string(), "tls": "refused", "reason": reason}).to_string(),
    );
}

/// The binary to run: `--bootstrap`, or the stack's code (built, or taken
/// from its zip) written under `target/deployer/local/`.
fn bootstrap_binary(stack: &Stack, options: &Options) -> anyhow::Result<PathBuf> {
    if let Some(path) = &options.bootstrap {
        anyhow::ensure!(path.is_file(), "--bootstrap {}: no such file", path.display());
        return Ok(path.clone());
    }
    anyhow::ensure!(
        stack.authorizer.architecture == Architecture::X86_64 || cfg!(target_arch = "aarch64"),
        "the stack's bootstrap is arm64 and this machine cannot run it: give --bootstrap with a native build"
    );
    let binary = crate::package::bootstrap(&stack.authorizer.code, stack.authorizer.architecture, &options.workspace)?;
    let path = crate::package::target_dir(&options.workspace)
        .join("deployer/local")
        .join(format!("bootstrap-{}", &crate::package::sha256(&binary).replace(['/', '+', '='], "")[..12]));
    write(&path, &binary)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    Ok(path)
}

fn write(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::event::ApiIdentity;
    use super::path::RequestPath;
    use super::routes::Routes;

    /// A stack whose routes hold every kind of part, literals with `:` and
    /// `@`, and a default that lets some tokens through: where the edge's
    /// method ARN and the route table disagree, the default decides.
    const STACK: &str = "stack: judged\nauthorizer:\n  code: { zip: code.zip }\n  environment:\n    TOKEN_VALIDATION: jwt\n    JWKS_URI: https://idp.example.com/jwks\n    TOKEN_ISSUER: https://idp.example.com/\n    AUDIENCE: api\napi:\n  name: judged\n  default: { scopes: [pets:read] }\n  routes:\n    - { method: GET, path: '/pets/{id}', scopes: [pets:read], backend: 'https://b.example.com/pets/{id}' }\n    - { method: GET, path: /pets/mine, scopes: [pets:owner], backend: 'https://b.example.com/mine' }\n    - { method: POST, path: '/pets:purge', scopes: [pets:admin], backend: 'https://b.example.com/purge' }\n    - { method: DELETE, path: '/pets/{id}/tags:all', scopes: [pets:admin], backend: 'https://b.example.com/t' }\n    - { method: GET, path: '/users/@me/v1.2', scopes: [users:self], backend: 'https://b.example.com/me' }\n    - { method: ANY, path: '/files/{path+}', scopes: [files:read], backend: 'https://b.example.com/f/{path+}' }\n    - { method: GET, path: /health, scopes: any_valid_token, backend: 'https://b.example.com/health' }\nstage:\n  name: prod\n";

    #[test]
    fn for_a_path_of_every_route_the_edge_builds_an_arn_the_routes_own_rule_applies_to() {
        let dir = std::env::temp_dir().join(format!("local-judged-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("stack.yaml"), STACK).unwrap();
        let stack = crate::stack::Stack::load(&dir.join("stack.yaml"), &|_| None).expect("valid");
        std::fs::remove_dir_all(&dir).unwrap();
        let table = authorizer::routes::RouteTable::parse(stack.authorizer.environment["ROUTES"].reveal()).unwrap();
        let routes = Routes::new(&stack.api.routes);
        let api = ApiIdentity {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            api_id: "local".into(),
            stage: "prod".into(),
            domain: None,
        };
        for (route, own) in stack.api.routes.iter().zip(&table.routes) {
            let sample = route.template.sample("x7", "a/b");
            let verb = if route.method == "ANY" { "PATCH" } else { route.method.as_str() };
            let path = RequestPath::parse(&sample).expect("a valid path");
            let served = routes.find(verb, &path).expect("routed");
            assert_eq!(served.route.spec.path, route.path, "{verb} {sample} is served by its own route");
            let raw = api.method_arn(verb, &path.encoded());
            let arn = authorizer::arn::MethodArn::parse(&raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert!(own.applies_to(&arn), "{verb} {sample}: the route's own entry does not apply to {raw}");
            let applied: Vec<_> = table.requirements(&arn).collect();
            assert!(
                applied.contains(&&own.requirement),
                "{verb} {sample}: the route's own rule {:?} is not among {applied:?} for {raw}",
                own.requirement
            );
        }
    }
}
