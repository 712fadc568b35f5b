//! Opaque (or JWT) tokens through Authlete's introspection API
//! (`POST {base}/api/auth/introspection`, HTTP Basic with the service API key
//! and secret). Authlete checks the token and, given the client certificate,
//! its certificate binding; its `action` says what it thinks.
//!
//! Authlete is not given the route's scopes: the route table decides about
//! scopes, as for every other validation, so the policy answered lists every
//! route with the effect this token earns there, and a cached copy stays
//! right on the other routes. (Given scopes, Authlete answers FORBIDDEN for
//! this route only, and a cached Deny would wrongly close the others.)
//!
//! Answers are not cached: Authlete's verdict depends on the certificate of
//! each request, not on the token alone.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::AuthleteSettings;
use crate::http::{self, FetchError};
use crate::token::{Confirmation, TokenInfo};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IntrospectionRequest<'a> {
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_certificate: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntrospectionResponse {
    action: String,
    #[serde(default)]
    response_content: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    client_id: Option<Value>,
    #[serde(default)]
    client_id_alias: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    expires_at: Option<u64>,
    #[serde(default)]
    certificate_thumbprint: Option<String>,
    #[serde(default)]
    result_message: Option<String>,
}

/// What Authlete decided.
#[derive(Debug)]
pub enum AuthleteVerdict {
    Ok(Arc<TokenInfo>),
    /// FORBIDDEN (asked without scopes or subject, it is about the token, not
    /// the route): answer Deny everywhere, with this challenge.
    Forbidden {
        challenge: Option<String>,
    },
    /// UNAUTHORIZED, or BAD_REQUEST (the token is malformed): answer 401.
    Unauthorized,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthleteError {
    #[error("Authlete answered action {action}: {message}")]
    ServerError { action: String, message: String },
    #[error("Authlete: {0}")]
    Fetch(#[from] FetchError),
}

pub struct AuthleteClient {
    settings: AuthleteSettings,
    endpoint: reqwest::Url,
    http: reqwest::Client,
}

impl AuthleteClient {
    pub fn new(settings: AuthleteSettings, http: reqwest::Client) -> AuthleteClient {
        let mut endpoint = settings.base_url.clone();
        let base_path = endpoint.path().trim_end_matches('/').to_owned();
        endpoint.set_path(&format!("{base_path}/api/auth/introspection"));
        AuthleteClient { settings, endpoint, http }
    }

    pub async fn introspect(
        &self,
        token: &str,
        client_cert_pem: Option<&str>,
    ) -> Result<AuthleteVerdict, AuthleteError> {
        let body = IntrospectionRequest { token, client_certificate: client_cert_pem };
        let request = self
            .http
            .post(self.endpoint.clone())
            .basic_auth(&self.settings.api_key, Some(&self.settings.api_secret))
            .json(&body);
        let response: IntrospectionResponse = http::json(request).await?;
        match response.action.as_str() {
            "OK" => Ok(AuthleteVerdict::Ok(Arc::new(token_info(response)))),
            "FORBIDDEN" => Ok(AuthleteVerdict::Forbidden { challenge: response.response_content }),
            "UNAUTHORIZED" | "BAD_REQUEST" => Ok(AuthleteVerdict::Unauthorized),
            _ => Err(AuthleteError::ServerError {
                action: response.action,
                message: response.result_message.unwrap_or_default(),
            }),
        }
    }
}

fn token_info(response: IntrospectionResponse) -> TokenInfo {
    let client_id = response
        .client_id_alias
        .or_else(|| response.client_id.as_ref().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)));
    TokenInfo {
        sub: response.subject,
        client_id,
        scopes: response.scopes.unwrap_or_default(),
        exp: response.expires_at.map(|ms| ms / 1000),
        iss: None,
        aud: Vec::new(),
        cnf: Confirmation { x5t_s256: response.certificate_thumbprint, ..Confirmation::default() },
        claims: Map::new(),
    }
}
