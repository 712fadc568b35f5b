//! The one HTTP client every call to the identity provider goes through.
//!
//! Built once at init and reused, so connections are kept alive across
//! invocations. It has a short overall timeout, follows no redirects (a
//! redirect could send the token to a host nobody configured), caps response
//! bodies, and only ever talks to URLs that came from configuration or
//! discovery: keys a token points at (`jku`, `x5u`, `jwk`) are never fetched.
//!
//! TLS trusts the Mozilla root programme compiled into the binary
//! (`webpki-roots`) plus the CAs in `SSL_CERT_FILE`, if set. Loading and
//! parsing the system's certificate directory instead cost ~4.5 ms of every
//! cold start (measured: most of the gap to a do-nothing function).

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::de::DeserializeOwned;

/// Responses larger than this are refused (a JWKS or introspection answer is a few KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("SSL_CERT_FILE: {0}")]
    CaBundle(String),
    #[error("building the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request failed: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    /// HTTP 400, with the OAuth `error` code of its body when it has one
    /// (RFC 6749 §5.2).
    #[error("HTTP 400 (error {})", .0.as_deref().unwrap_or("not given"))]
    BadRequest(Option<String>),
    #[error("response body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("response is not the expected JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// A parsed answer with what the cache logic needs to know about it.
pub struct Fetched<T> {
    pub body: T,
    /// The body's size in bytes.
    pub size: usize,
    /// `Cache-Control: max-age`, when the server sent one.
    pub max_age: Option<Duration>,
}

/// Builds the shared client. `SSL_CERT_FILE`, when set, adds the CAs it holds
/// to the compiled-in roots (for identity providers behind a private CA).
pub fn client(timeout: Duration) -> Result<reqwest::Client, InitError> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        let shown = path.to_string_lossy().into_owned();
        let pem = std::fs::read(&path).map_err(|e| InitError::CaBundle(format!("reading {shown}: {e}")))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| InitError::CaBundle(format!("{shown}: {e}")))?;
            roots.add(cert).map_err(|e| InitError::CaBundle(format!("{shown}: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(InitError::CaBundle(format!("{shown} holds no PEM certificate")));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("apigw-oauth-authorizer/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(50))
        .tcp_nodelay(true)
        .build()?;
    Ok(client)
}

/// Sends `request`, expects 200, and parses at most [`MAX_BODY_BYTES`] of JSON.
pub async fn json<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, FetchError> {
    fetch(request).await.map(|fetched| fetched.body)
}

/// [`json`], with the body's size and its `Cache-Control: max-age`.
pub async fn fetch<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<Fetched<T>, FetchError> {
    let mut response = request.send().await.map_err(FetchError::Transport)?;
    if response.status() == reqwest::StatusCode::BAD_REQUEST {
        return Err(FetchError::BadRequest(oauth_error(response).await));
    }
    if response.status() != reqwest::StatusCode::OK {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    if response.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(FetchError::TooLarge);
    }
    let max_age = response
        .headers()
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(max_age_of);
    let body = read_body(&mut response).await?;
    let parsed = serde_json::from_slice(&body).map_err(FetchError::Json)?;
    Ok(Fetched { body: parsed, size: body.len(), max_age })
}

/// The body, refused once it passes [`MAX_BODY_BYTES`].
async fn read_body(response: &mut reqwest::Response) -> Result<Vec<u8>, FetchError> {
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(4096).min(MAX_BODY_BYTES as u64) as usize);
    while let Some(chunk) = response.chunk().await.map_err(FetchError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The `error` member of an OAuth error body (RFC 6749 §5.2), if it has one.
async fn oauth_error(mut response: reqwest::Response) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    let body = read_body(&mut response).await.ok()?;
    serde_json::from_slice::<ErrorBody>(&body).ok().map(|b| b.error)
}

/// `max-age=N` in a Cache-Control value; `no-cache`/`no-store` mean 0.
fn max_age_of(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').map(str::trim).find_map(|directive| {
        let directive = directive.to_ascii_lowercase();
        if directive == "no-cache" || directive == "no-store" {
            return Some(Duration::ZERO);
        }
        let seconds = directive.strip_prefix("max-age=")?.trim_matches('"');
        seconds.parse().ok().map(Duration::from_secs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        assert_eq!(max_age_of("public, max-age=600"), Some(Duration::from_secs(600)));
        assert_eq!(max_age_of("Max-Age=\"30\""), Some(Duration::from_secs(30)));
        assert_eq!(max_age_of("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age_of("public"), None);
        assert_eq!(max_age_of("max-age=soon"), None);
    }
}
