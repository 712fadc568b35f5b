//! The function's own calls to AWS: Secrets Manager and SSM at init
//! (`crate::secrets`), DynamoDB per request (`crate::replay_store`). Each is
//! one JSON call, signed with SigV4 by hand (`aws-sigv4`): the SDK's
//! clients and config loading would add to every cold start for so few
//! operations.
//!
//! Region and credentials are Lambda's (`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), read once at init as every
//! runtime's SDK reads them: Lambda keeps them valid for the life of the
//! execution environment. The endpoint is the service's regional one, unless
//! `AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL` overrides it, as in
//! the AWS SDKs.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::Value;

use crate::clock::Clock;
use crate::config::ConfigError;

/// The services the function calls, each for its one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    SecretsManager,
    Ssm,
    DynamoDb,
}

impl Service {
    const ALL: [Service; 3] = [Service::SecretsManager, Service::Ssm, Service::DynamoDb];

    /// Its SigV4 signing name, and the first label of its endpoint.
    fn name(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "ssm",
            Service::DynamoDb => "dynamodb",
        }
    }

    /// The variable that overrides its endpoint, as in the AWS SDKs.
    fn endpoint_variable(self) -> &'static str {
        match self {
            Service::SecretsManager => "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            Service::Ssm => "AWS_ENDPOINT_URL_SSM",
            Service::DynamoDb => "AWS_ENDPOINT_URL_DYNAMODB",
        }
    }

    /// `X-Amz-Target` of the one call made to it.
    fn target(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager.GetSecretValue",
            Service::Ssm => "AmazonSSM.GetParameter",
            Service::DynamoDb => "DynamoDB_20120810.PutItem",
        }
    }

    /// Its JSON protocol's content type (DynamoDB speaks JSON 1.0).
    fn content_type(self) -> &'static str {
        match self {
            Service::DynamoDb => "application/x-amz-json-1.0",
            Service::SecretsManager | Service::Ssm => "application/x-amz-json-1.1",
        }
    }
}

/// Why a call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("signing: {0}")]
    Signing(String),
    /// No answer: the connection failed or the time ran out.
    #[error("{0}")]
    Transport(#[source] reqwest::Error),
    /// The service answered with an error: its code (`__type` without the
    /// namespace) and message, and the whole body (some errors carry data).
    #[error("HTTP {status} {code} {message}")]
    Service { status: u16, code: String, message: String, body: Value },
    #[error("an answer that is not JSON: {0}")]
    NotJson(String),
}

impl CallError {
    /// The service's error code, if it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Service { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The function's region and credentials, as Lambda sets them.
#[derive(Clone)]
pub struct AwsAccess {
    pub region: String,
    credentials: Credentials,
    endpoints: BTreeMap<Service, String>,
}

impl std::fmt::Debug for AwsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsAccess").field("region", &self.region).finish_non_exhaustive()
    }
}

impl AwsAccess {
    /// From Lambda's variables as `lookup` gives them; problems are
    /// reported against `variable`, the setting that needs AWS.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>, variable: &str) -> Result<AwsAccess, ConfigError> {
        let region = lookup("AWS_REGION")
            .or_else(|| lookup("AWS_DEFAULT_REGION"))
            .ok_or_else(|| ConfigError::new(variable, "needs AWS_REGION (Lambda sets it)"))?;
        let key = |name: &str| {
            lookup(name).ok_or_else(|| ConfigError::new(variable, format!("needs {name} (Lambda sets it)")))
        };
        let credentials = Credentials::new(
            key("AWS_ACCESS_KEY_ID")?,
            key("AWS_SECRET_ACCESS_KEY")?,
            lookup("AWS_SESSION_TOKEN"),
            None,
            "environment",
        );
        let host = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
        let endpoints = Service::ALL
            .into_iter()
            .map(|service| {
                let endpoint = lookup(service.endpoint_variable())
                    .or_else(|| lookup("AWS_ENDPOINT_URL"))
                    .unwrap_or_else(|| format!("https://{}.{region}.{host}", service.name()));
                (service, endpoint)
            })
            .collect();
        Ok(AwsAccess { region, credentials, endpoints })
    }

    /// From the process environment (the function's, at init).
    pub fn from_env(variable: &str) -> Result<AwsAccess, ConfigError> {
        AwsAccess::from_lookup(&|name| std::env::var(name).ok(), variable)
    }

    pub fn endpoint(&self, service: Service) -> &str {
        &self.endpoints[&service]
    }

    /// One signed JSON call to `service` (its one operation), given at most
    /// `timeout`: the answer's body.
    pub async fn call(
        &self,
        client: &reqwest::Client,
        clock: &Clock,
        service: Service,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let body = body.to_string();
        let url = format!("{}/", self.endpoint(service).trim_end_matches('/'));
        let headers = [("content-type", service.content_type()), ("x-amz-target", service.target())];
        let signed = self.sign(service, &url, &headers, body.as_bytes(), clock).map_err(CallError::Signing)?;
        let mut request = client.post(&url).timeout(timeout).body(body);
        for (name, value) in headers.iter().copied().chain(signed.iter().map(|(n, v)| (n.as_str(), v.as_str()))) {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(CallError::Transport)?;
        let status = response.status();
        let header_code = response.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = response.text().await.map_err(CallError::Transport)?;
        if !status.is_success() {
            // JSON errors: the code in `__type` (or the header), after the
            // namespace (`com.amazonaws.dynamodb.v20120810#…`); the message
            // as `message` or `Message` (some services send both).
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let code = text_at(&body, "/__type").map(str::to_owned).or(header_code).unwrap_or("error".into());
            let code = code.rsplit('#').next().unwrap_or_default().split(':').next().unwrap_or_default().to_owned();
            let message = text_at(&body, "/message").or_else(|| text_at(&body, "/Message")).unwrap_or_default();
            return Err(CallError::Service { status: status.as_u16(), code, message: message.to_owned(), body });
        }
        serde_json::from_str(&text).map_err(|e| CallError::NotJson(e.to_string()))
    }

    /// The SigV4 headers for the request.
    fn sign(
        &self,
        service: Service,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        clock: &Clock,
    ) -> Result<Vec<(String, String)>, String> {
        let identity: Identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(service.name())
            .time(clock.system_time())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let request = SignableRequest::new("POST", url, headers.iter().copied(), SignableBody::Bytes(body))
            .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
        Ok(instructions.headers().map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
    }
}

/// The string at JSON `pointer` in `value` (`/SecretString`,
/// `/Parameter/Value`).
pub fn text_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_regional_unless_overridden_per_service_or_for_all() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        };
        const BASE: &[(&str, &str)] =
            &[("AWS_REGION", "cn-north-1"), ("AWS_ACCESS_KEY_ID", "AKID"), ("AWS_SECRET_ACCESS_KEY", "SECRET")];
        let access = AwsAccess::from_lookup(&env(BASE), "X").expect("valid");
        assert_eq!(access.endpoint(Service::DynamoDb), "https://dynamodb.cn-north-1.amazonaws.com.cn");
        const OVERRIDDEN: &[(&str, &str)] = &[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "SECRET"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
        ];
        let access = AwsAccess::from_lookup(&env(OVERRIDDEN), "X").expect("valid");
        assert_eq!(access.endpoint(Service::DynamoDb), "http://127.0.0.1:8000");
        assert_eq!(access.endpoint(Service::Ssm), "http://127.0.0.1:5000");
        let missing = AwsAccess::from_lookup(&env(&[("AWS_REGION", "eu-west-1")]), "DPOP_REPLAY_STORE");
        let error = missing.expect_err("no keys");
        assert_eq!(error.variable, "DPOP_REPLAY_STORE");
        assert!(error.problem.contains("AWS_ACCESS_KEY_ID"), "{error}");
        assert!(!format!("{access:?}").contains("SECRET"), "no credential in Debug");
    }
}
