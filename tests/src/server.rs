//! A real HTTP/1.1 server on 127.0.0.1 (optionally over TLS) that answers
//! through a closure and records every request it receives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::certs::ServerCertificate;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the handler answers.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    /// Wait this long before answering (a slow identity provider).
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
    /// Close the connection instead of answering (a dropped connection).
    pub hang_up: bool,
}

impl Reply {
    pub fn json(body: impl ToString) -> Reply {
        Reply {
            status: 200,
            body: body.to_string(),
            content_type: "application/json",
            delay: Duration::ZERO,
            headers: Vec::new(),
            hang_up: false,
        }
    }
    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            content_type: "text/plain",
            delay: Duration::ZERO,
            headers: Vec::new(),
            hang_up: false,
        }
    }
    pub fn with_status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }
    /// No answer: the connection is closed.
    pub fn hang_up() -> Reply {
        Reply { hang_up: true, ..Reply::status(500, "") }
    }
    pub fn header(mut self, name: &str, value: impl ToString) -> Reply {
        self.headers.push((name.to_owned(), value.to_string()));
        self
    }
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// A handler that may wait (a long poll) before answering.
pub type AsyncHandler =
    dyn Fn(Recorded) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>> + Send + Sync;

pub struct TestServer {
    pub addr: SocketAddr,
    pub scheme: &'static str,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Plain HTTP on 127.0.0.1, on a free port.
    pub async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> TestServer {
        Self::spawn(sync_handler(handler), None).await
    }

    /// Plain HTTP with a handler that can await.
    pub async fn start_async(handler: Arc<AsyncHandler>) -> TestServer {
        Self::spawn(handler, None).await
    }

    /// HTTPS on 127.0.0.1 with a certificate for `localhost`.
    pub async fn start_tls(
        cert: &ServerCertificate,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.cert_der.clone().into()],
                tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
            )
            .expect("server TLS config");
        Self::spawn(sync_handler(handler), Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    /// HTTPS that requires a client certificate from `client_ca_pem`, with the
    /// TLS settings of `deployer local` (rustls, aws-lc-rs, TLS 1.2 and 1.3):
    /// the reference its benchmark compares against.
    pub async fn start_mtls(
        cert: &ServerCertificate,
        client_ca_pem: &str,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject as _;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in rustls::pki_types::CertificateDer::pem_slice_iter(client_ca_pem.as_bytes()) {
            roots.add(ca.expect("CA PEM")).expect("CA");
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .expect("client verifier");
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![cert.cert_der.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
            )
            .expect("server TLS config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self::spawn(sync_handler(handler), Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn spawn(handler: Arc<AsyncHandler>, tls: Option<tokio_rustls::TlsAcceptor>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let recorded = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                let recorded = recorded.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let handler = handler.clone();
                        let recorded = recorded.clone();
                        async move { answer(request, &*handler, &recorded).await }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        TestServer { addr, scheme, requests, task }
    }

    /// `http://127.0.0.1:PORT{path}` (or https://localhost:PORT for TLS).
    pub fn url(&self, path: &str) -> String {
        let host = if self.scheme == "https" { "localhost".to_owned() } else { self.addr.ip().to_string() };
        format!("{}://{}:{}{}", self.scheme, host, self.addr.port(), path)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests lock").clone()
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().expect("requests lock").len()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn sync_handler(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Arc<AsyncHandler> {
    let handler = Arc::new(handler);
    Arc::new(move |request: Recorded| {
        let reply = handler(&request);
        Box::pin(async move { reply })
    })
}

/// Why a connection was closed without an answer.
#[derive(Debug)]
struct HungUp;

impl std::fmt::Display for HungUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hung up on purpose")
    }
}

impl std::error::Error for HungUp {}

async fn answer(
    request: Request<Incoming>,
    handler: &AsyncHandler,
    recorded: &Mutex<Vec<Recorded>>,
) -> Result<Response<Full<Bytes>>, HungUp> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let request = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    recorded.lock().expect("requests lock").push(request.clone());
    let reply = handler(request).await;
    if reply.hang_up {
        return Err(HungUp);
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response =
        Response::builder().status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    if !reply.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        response = response.header("content-type", reply.content_type);
    }
    for (name, value) in &reply.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    Ok(response.body(Full::new(Bytes::from(reply.body))).expect("response"))
}
