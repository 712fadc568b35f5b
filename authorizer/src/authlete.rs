//! Opaque (or JWT) tokens through Authlete's introspection API
//! (`POST {base}/api/auth/introspection`, HTTP Basic with the service API key
//! and secret). Authlete checks scopes and certificate binding itself when it
//! is given the required scopes and the client certificate; its `action`
//! says what to answer.
//!
//! Answers are not cached: Authlete's verdict depends on the scopes and the
//! certificate of each request, not on the token alone.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::AuthleteSettings;
use crate::http::{self, FetchError};
use crate::token::TokenInfo;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IntrospectionRequest<'a> {
    token: &'a str,
    scopes: &'a [String],
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
    Ok(TokenInfo),
    /// FORBIDDEN or BAD_REQUEST: answer Deny with this challenge.
    Forbidden {
        challenge: Option<String>,
    },
    /// UNAUTHORIZED: answer 401.
    Unauthorized {
        message: Option<String>,
    },
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
        required_scopes: &[String],
        client_cert_pem: Option<&str>,
    ) -> Result<AuthleteVerdict, AuthleteError> {
        let body = IntrospectionRequest { token, scopes: required_scopes, client_certificate: client_cert_pem };
        let request = self
            .http
            .post(self.endpoint.clone())
            .basic_auth(&self.settings.api_key, Some(&self.settings.api_secret))
            .json(&body);
        let response: IntrospectionResponse = http::json(request).await?;
        match response.action.as_str() {
            "OK" => Ok(AuthleteVerdict::Ok(token_info(response))),
            "FORBIDDEN" | "BAD_REQUEST" => Ok(AuthleteVerdict::Forbidden { challenge: response.response_content }),
            "UNAUTHORIZED" => Ok(AuthleteVerdict::Unauthorized { message: response.result_message }),
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
    let mut claims = Map::new();
    if let Some(thumbprint) = &response.certificate_thumbprint {
        claims.insert("cnf".into(), serde_json::json!({ "x5t#S256": thumbprint }));
    }
    TokenInfo {
        sub: response.subject,
        client_id,
        scopes: response.scopes.unwrap_or_default(),
        exp: response.expires_at.map(|ms| ms / 1000),
        iss: None,
        aud: Vec::new(),
        cnf_x5t_s256: response.certificate_thumbprint,
        claims,
    }
}
