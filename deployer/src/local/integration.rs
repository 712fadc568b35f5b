//! The HTTP_PROXY integration: the request passed on to the route's backend
//! (path parameters substituted, query string and headers kept), plus the
//! stack's `context_headers` taken from the authorizer's context; the
//! backend's answer passed back, up to API Gateway's 10 MB.
//!
//! A mapped header is what the backend trusts, so only the authorizer may
//! set it: every client header of that name (any case, any number of values)
//! is dropped first, and the mapped value set once, or not at all when the
//! authorizer's context has none. `X-Forwarded-For` gets the peer appended,
//! as API Gateway does.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use serde_json::Value;

use super::path::{COMPONENT, holds_dot_segment};

/// API Gateway's integration timeout.
const TIMEOUT: Duration = Duration::from_secs(29);

/// API Gateway's payload limit, for the backend's answer too.
pub const MAX_ANSWER: usize = 10 * 1024 * 1024;

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

pub struct Integration {
    client: reqwest::Client,
    /// Replaces the scheme, host and port of every backend (`--backend`).
    backend_override: Option<url::Url>,
}

pub struct BackendAnswer {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
}

pub struct Forward<'a> {
    pub method: &'a str,
    /// The client's address, appended to `X-Forwarded-For`.
    pub source: IpAddr,
    /// The route's `backend`, with `{param}` placeholders.
    pub backend: &'a str,
    pub path_parameters: &'a BTreeMap<String, String>,
    pub query: Option<&'a str>,
    pub headers: &'a [(String, String)],
    pub context_headers: &'a BTreeMap<String, String>,
    pub context: &'a serde_json::Map<String, Value>,
    pub body: Bytes,
}

impl Integration {
    pub fn new(backend_override: Option<url::Url>) -> anyhow::Result<Integration> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .context("the integration's HTTP client")?;
        Ok(Integration { client, backend_override })
    }

    pub fn url(
        &self,
        backend: &str,
        parameters: &BTreeMap<String, String>,
        query: Option<&str>,
    ) -> anyhow::Result<url::Url> {
        let mut filled = backend.to_owned();
        for (name, value) in parameters {
            // Routing never captures one; a URL resolver would climb out of the route with it.
            anyhow::ensure!(!holds_dot_segment(value), "path parameter {name} holds a dot segment");
            let encoded = percent_encoding::utf8_percent_encode(value, COMPONENT).to_string();
            // A greedy parameter keeps its slashes.
            filled = filled.replace(&format!("{{{name}+}}"), &encoded.replace("%2F", "/"));
            filled = filled.replace(&format!("{{{name}}}"), &encoded);
        }
        let mut url = url::Url::parse(&filled).with_context(|| format!("backend {backend:?}"))?;
        if let Some(base) = &self.backend_override {
            url.set_scheme(base.scheme()).map_err(|()| anyhow::anyhow!("--backend scheme"))?;
            url.set_host(base.host_str()).context("--backend host")?;
            url.set_port(base.port()).map_err(|()| anyhow::anyhow!("--backend port"))?;
        }
        // The integration's own query string stays; the client's follows it.
        let joined = match (url.query(), query) {
            (Some(own), Some(client)) if !own.is_empty() && !client.is_empty() => Some(format!("{own}&{client}")),
            (Some(own), _) if !own.is_empty() => Some(own.to_owned()),
            (_, client) => client.map(str::to_owned),
        };
        url.set_query(joined.as_deref());
        Ok(url)
    }

    pub async fn forward(&self, request: Forward<'_>) -> Result<BackendAnswer, IntegrationError> {
        let url =
            self.url(request.backend, request.path_parameters, request.query).map_err(IntegrationError::Failed)?;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| IntegrationError::Failed(anyhow::anyhow!("method: {e}")))?;
        let mut outgoing = self.client.request(method, url).body(request.body);
        // A client's copy of a mapped header is dropped in any case and with
        // `_` for `-` too (`X_Sub` beside `X-Sub`): many servers read both as one.
        let folded = |name: &str| name.to_ascii_lowercase().replace('_', "-");
        let mapped = |name: &str| request.context_headers.keys().any(|header| folded(header) == folded(name));
        let mut forwarded_for = Vec::new();
        for (name, value) in request.headers {
            let lower = name.to_ascii_lowercase();
            if lower == "x-forwarded-for" {
                forwarded_for.push(value.as_str());
            } else if !HOP_BY_HOP.contains(&lower.as_str()) && !mapped(name) {
                outgoing = outgoing.header(name, value);
            }
        }
        let source = request.source.to_string();
        forwarded_for.push(&source);
        outgoing = outgoing.header("x-forwarded-for", forwarded_for.join(", "));
        for (header, key) in request.context_headers {
            match request.context.get(key) {
                Some(Value::String(value)) => outgoing = outgoing.header(header, value),
                Some(Value::Null) | None => {}
                Some(other) => outgoing = outgoing.header(header, other.to_string()),
            }
        }
        // (The error without its URL: the logs never hold the client's query.)
        let answer = outgoing.send().await.map_err(|e| match e.is_timeout() {
            true => IntegrationError::Timeout,
            false => IntegrationError::Failed(e.without_url().into()),
        })?;
        let status = answer.status().as_u16();
        let headers = answer
            .headers()
            .iter()
            .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()))
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect();
        let body = read_capped(answer).await?;
        Ok(BackendAnswer { status, headers, body })
    }
}

/// The answer's body, or TooLarge as soon as it passes [`MAX_ANSWER`] (a
/// backend cannot make the edge hold more).
async fn read_capped(mut answer: reqwest::Response) -> Result<Bytes, IntegrationError> {
    if answer.content_length().is_some_and(|length| length > MAX_ANSWER as u64) {
        return Err(IntegrationError::TooLarge);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| match e.is_timeout() {
        true => IntegrationError::Timeout,
        false => IntegrationError::Failed(e.without_url().into()),
    })? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(IntegrationError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[derive(Debug)]
pub enum IntegrationError {
    Timeout,
    /// The backend's answer is over [`MAX_ANSWER`].
    TooLarge,
    Failed(anyhow::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_urls_take_parameters_query_and_the_override() {
        let parameters = BTreeMap::from([("id".to_owned(), "a b/c".to_owned()), ("path".to_owned(), "x/y".to_owned())]);
        let plain = Integration::new(None).expect("client");
        let url = plain.url("https://backend.example.com/pets/{id}", &parameters, Some("q=1")).expect("url");
        assert_eq!(url.as_str(), "https://backend.example.com/pets/a%20b%2Fc?q=1");
        let greedy = plain.url("https://b.example.com/files/{path+}", &parameters, None).expect("url");
        assert_eq!(greedy.as_str(), "https://b.example.com/files/x/y");
        let local = Integration::new(Some(url::Url::parse("http://127.0.0.1:9000").expect("url"))).expect("client");
        let url = local.url("https://backend.example.com/pets/{id}", &parameters, None).expect("url");
        assert_eq!(url.as_str(), "http://127.0.0.1:9000/pets/a%20b%2Fc");
        let keyed = plain.url("https://b.example.com/pets/{id}?api_key=k1&v=2", &parameters, Some("q=1")).expect("url");
        assert_eq!(keyed.query(), Some("api_key=k1&v=2&q=1"), "the integration's query kept, the client's after it");
        let keyed = plain.url("https://b.example.com/pets/{id}?api_key=k1", &parameters, None).expect("url");
        assert_eq!(keyed.query(), Some("api_key=k1"));
        let literal = BTreeMap::from([("id".to_owned(), "a:b@c".to_owned())]);
        let url = plain.url("https://b.example.com/pets/{id}", &literal, None).expect("url");
        assert_eq!(url.path(), "/pets/a:b@c");
        for value in ["..", ".", "a/../b", "../x"] {
            let parameters = BTreeMap::from([("path".to_owned(), value.to_owned())]);
            assert!(plain.url("https://b.example.com/files/{path+}", &parameters, None).is_err(), "{value}");
        }
    }
}
