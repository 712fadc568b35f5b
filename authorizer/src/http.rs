//! The one HTTP client every call to the identity provider goes through.
//!
//! Built once at init and reused, so connections are kept alive across
//! invocations. It has a short overall timeout, follows no redirects (a
//! redirect could send the token to a host nobody configured), caps response
//! bodies, and only ever talks to URLs that came from configuration: keys a
//! token points at (`jku`, `x5u`, `jwk`) are never fetched.

use std::time::Duration;

use serde::de::DeserializeOwned;

/// Responses larger than this are refused (a JWKS or introspection answer is a few KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("SSL_CERT_FILE: {0}")]
    CaBundle(String),
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request failed: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    #[error("response body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("response is not the expected JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// Builds the shared client. `SSL_CERT_FILE`, when set, adds the CAs it holds
/// to the system's roots (for identity providers behind a private CA).
pub fn client(timeout: Duration) -> Result<reqwest::Client, InitError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("apigw-oauth-authorizer/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(50))
        .tcp_nodelay(true);
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        let pem = std::fs::read(&path)
            .map_err(|e| InitError::CaBundle(format!("reading {}: {e}", path.to_string_lossy())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| InitError::CaBundle(format!("{}: {e}", path.to_string_lossy())))?;
        if certs.is_empty() {
            return Err(InitError::CaBundle(format!("{} holds no PEM certificate", path.to_string_lossy())));
        }
        builder = builder.tls_certs_merge(certs);
    }
    Ok(builder.build()?)
}

/// Sends `request`, expects 200, and parses at most [`MAX_BODY_BYTES`] of JSON.
pub async fn json<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, FetchError> {
    let mut response = request.send().await.map_err(FetchError::Transport)?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    if response.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(4096).min(MAX_BODY_BYTES as u64) as usize);
    while let Some(chunk) = response.chunk().await.map_err(FetchError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(FetchError::Json)
}
