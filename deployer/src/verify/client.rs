//! How `deployer verify` reaches the API: its URL, the address to connect
//! to instead of the one DNS gives (`deployer local` on 127.0.0.1, a name
//! not yet in DNS), and a CA to trust for the server's certificate besides
//! the system's. One HTTP client per client certificate (or none), HTTP/1.1,
//! no redirects, bounded waits; every request is counted.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;

/// How long one request may take, handshake included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Target {
    /// The stage's URL through the custom domain (`https://api.example.com/v1`), no final `/`.
    pub base: url::Url,
    pub connect_to: Option<SocketAddr>,
    pub server_ca: Option<Vec<u8>>,
    requests: AtomicUsize,
}

impl Target {
    pub fn new(base: url::Url, connect_to: Option<SocketAddr>, server_ca: Option<Vec<u8>>) -> Target {
        Target { base, connect_to, server_ca, requests: AtomicUsize::new(0) }
    }

    /// The URL of `path` (`/pets/verify`) under the stage.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// A client presenting `identity` (certificate then key, PEM), or no certificate.
    pub fn client(&self, identity: Option<&[u8]>) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(0);
        if let (Some(address), Some(host)) = (self.connect_to, self.base.host_str()) {
            builder = builder.resolve(host, address);
        }
        if let Some(pem) = &self.server_ca {
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(pem).context("--server-ca is not a PEM certificate")?,
            );
        }
        if let Some(identity) = identity {
            builder = builder
                .identity(reqwest::Identity::from_pem(identity).context("the client certificate and key are not PEM")?);
        }
        builder.build().context("building the HTTPS client")
    }

    /// Sends `request`, counting it.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, String> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await.map_err(|e| chain(&e))?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let challenge = header("www-authenticate");
        let request_id = header("x-amzn-requestid");
        let body = response.text().await.unwrap_or_default();
        Ok(Answer { status, challenge, body, request_id })
    }

    /// Where a raw connection goes: `--connect-to`, or the URL's host and port.
    pub fn address(&self) -> String {
        match self.connect_to {
            Some(address) => address.to_string(),
            None => format!(
                "{}:{}",
                self.base.host_str().unwrap_or_default(),
                self.base.port_or_known_default().unwrap_or(443)
            ),
        }
    }

    /// Counts a request made without [`Target::send`].
    pub fn count_one(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

/// An HTTP answer, as far as the checks read it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub challenge: Option<String>,
    pub body: String,
    /// API Gateway's id of the request (`x-amzn-RequestId`): what its access log is searched by.
    pub request_id: Option<String>,
}

impl Answer {
    /// The authorizer's refusal: 401, or 403 with an RFC 6750 / RFC 9449
    /// challenge (API Gateway's ACCESS_DENIED response carries it). A
    /// backend's own 403 has none.
    pub fn refused_by_authorizer(&self) -> bool {
        self.status == 401 || (self.status == 403 && self.challenge.is_some())
    }
}

/// An error with its causes, one line: what the TLS stack said is in the causes.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
