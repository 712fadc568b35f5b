//! The authorizer's secrets (the introspection client secret, Authlete's
//! API secret), read once at init from AWS Secrets Manager instead of the
//! function's environment, where every role allowed `lambda:GetFunction`
//! (a plan role among them) would read them in clear.
//!
//! `AUTHORIZER_SECRETS` names the secret (its name or ARN) and
//! `AUTHORIZER_SECRETS_VERSION` the version to read, so a new version reaches
//! new instances only with the configuration change that names it. The
//! secret's value is a JSON object of secret variables
//! (`{"INTROSPECTION_CLIENT_SECRET": "…"}`), which join the environment's
//! before [`crate::Config::from_map`] checks them all.
//!
//! One `GetSecretValue` call, signed with SigV4 by the function's own
//! credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, as Lambda sets them) to
//! `https://secretsmanager.{AWS_REGION}.amazonaws.com` (`AWS_ENDPOINT_URL_SECRETS_MANAGER`
//! or `AWS_ENDPOINT_URL` override it, as in the AWS SDKs). Every failure is
//! an init error naming `AUTHORIZER_SECRETS`: the function never starts
//! with a secret missing.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde::Deserialize;

use crate::clock::Clock;
use crate::config::{ConfigError, SECRET_VARIABLES};

/// The variable naming the secret.
pub const SECRETS: &str = "AUTHORIZER_SECRETS";
/// The variable naming the version of it to read.
pub const SECRETS_VERSION: &str = "AUTHORIZER_SECRETS_VERSION";

/// How long the one call may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where the secrets are, and with what credentials to ask.
#[derive(Clone)]
pub struct Source {
    pub secret_id: String,
    pub version: Option<String>,
    pub endpoint: String,
    pub region: String,
    credentials: Credentials,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("secret_id", &self.secret_id)
            .field("version", &self.version)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

fn problem(message: impl Into<String>) -> ConfigError {
    ConfigError::new(SECRETS, message)
}

impl Source {
    /// From the variables `lookup` gives (the process environment at init);
    /// `None` when `AUTHORIZER_SECRETS` is not set.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<Source>, ConfigError> {
        let Some(secret_id) = lookup(SECRETS).filter(|s| !s.is_empty()) else {
            if lookup(SECRETS_VERSION).is_some() {
                return Err(ConfigError::new(SECRETS_VERSION, format!("is set without {SECRETS}")));
            }
            return Ok(None);
        };
        let region = lookup("AWS_REGION")
            .or_else(|| lookup("AWS_DEFAULT_REGION"))
            .ok_or_else(|| problem("needs AWS_REGION (Lambda sets it)"))?;
        let key = |name: &str| lookup(name).ok_or_else(|| problem(format!("needs {name} (Lambda sets it)")));
        let credentials = Credentials::new(
            key("AWS_ACCESS_KEY_ID")?,
            key("AWS_SECRET_ACCESS_KEY")?,
            lookup("AWS_SESSION_TOKEN"),
            None,
            "environment",
        );
        let host = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
        let endpoint = lookup("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            .or_else(|| lookup("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://secretsmanager.{region}.{host}"));
        let version = lookup(SECRETS_VERSION).filter(|v| !v.is_empty());
        Ok(Some(Source { secret_id, version, endpoint, region, credentials }))
    }

    /// The secret's variables, read with one signed `GetSecretValue`.
    pub async fn read(&self, client: &reqwest::Client, clock: &Clock) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut body = serde_json::json!({"SecretId": self.secret_id});
        if let Some(version) = &self.version {
            body["VersionId"] = version.clone().into();
        }
        let body = body.to_string();
        let url = format!("{}/", self.endpoint.trim_end_matches('/'));
        let headers =
            [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "secretsmanager.GetSecretValue")];
        let signed = self.sign(&url, &headers, body.as_bytes(), clock)?;
        let mut request = client.post(&url).timeout(TIMEOUT).body(body);
        for (name, value) in headers.iter().copied().chain(signed.iter().map(|(n, v)| (n.as_str(), v.as_str()))) {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| problem(format!("reading {}: {e}", self.secret_id)))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| problem(format!("reading {}: {e}", self.secret_id)))?;
        if !status.is_success() {
            #[derive(Deserialize)]
            struct Failure {
                #[serde(rename = "__type")]
                kind: Option<String>,
                #[serde(alias = "Message")]
                message: Option<String>,
            }
            let failure: Option<Failure> = serde_json::from_str(&text).ok();
            let kind = failure.as_ref().and_then(|f| f.kind.as_deref()).unwrap_or("error");
            let message = failure.as_ref().and_then(|f| f.message.as_deref()).unwrap_or_default();
            return Err(problem(format!("reading {}: HTTP {} {kind} {message}", self.secret_id, status.as_u16())));
        }
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "SecretString")]
            secret_string: Option<String>,
        }
        let answer: Answer =
            serde_json::from_str(&text).map_err(|e| problem(format!("an answer that is not JSON: {e}")))?;
        let value = answer.secret_string.ok_or_else(|| problem(format!("{} holds no text value", self.secret_id)))?;
        parse(&value)
    }

    /// The SigV4 headers for the request.
    fn sign(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        clock: &Clock,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let identity: Identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("secretsmanager")
            .time(clock.system_time())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| problem(format!("signing: {e}")))?
            .into();
        let request = SignableRequest::new("POST", url, headers.iter().copied(), SignableBody::Bytes(body))
            .map_err(|e| problem(format!("signing: {e}")))?;
        let (instructions, _) = sign(request, &params).map_err(|e| problem(format!("signing: {e}")))?.into_parts();
        Ok(instructions.headers().map(|(n, v)| (n.to_owned(), v.to_owned())).collect())
    }
}

/// The configuration the function starts with: the environment's variables
/// and, with `AUTHORIZER_SECRETS`, the secret's.
pub async fn config_at_init(clock: &Clock) -> Result<crate::Config, ConfigError> {
    let mut variables = crate::Config::environment()?;
    if let Some(source) = Source::from_lookup(&|name| std::env::var(name).ok())? {
        let client = crate::http::client(TIMEOUT).map_err(|e| problem(e.to_string()))?;
        variables = merged(variables, source.read(&client, clock).await?)?;
    }
    crate::Config::from_map(&variables)
}

/// A secret's value: a JSON object of secret variables, each a string.
pub fn parse(value: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let map: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(value).map_err(|_| problem("the secret's value is not a JSON object of variables"))?;
    map.into_iter()
        .map(|(name, value)| {
            if !SECRET_VARIABLES.contains(&name.as_str()) {
                return Err(problem(format!(
                    "the secret holds {name}, which is not a secret variable (expected {})",
                    SECRET_VARIABLES.join(", ")
                )));
            }
            match value {
                serde_json::Value::String(text) => Ok((name, text)),
                _ => Err(problem(format!("{name} in the secret is not a string"))),
            }
        })
        .collect()
}

/// The environment's variables with the secret's added; a variable set in
/// both is refused (which one would win is not for a reader to guess).
pub fn merged(
    mut environment: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    for (name, value) in secrets {
        if environment.contains_key(&name) {
            return Err(ConfigError::new(&name, format!("is set both in the environment and in {SECRETS}")));
        }
        environment.insert(name, value);
    }
    Ok(environment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_holds_secret_variables_only_as_strings() {
        let parsed = parse(r#"{"INTROSPECTION_CLIENT_SECRET": "s3cr3t"}"#).expect("valid");
        assert_eq!(parsed.get("INTROSPECTION_CLIENT_SECRET").map(String::as_str), Some("s3cr3t"));
        for (value, says) in [
            (r#"{"JWKS_URI": "https://x"}"#, "JWKS_URI, which is not a secret variable"),
            (r#"{"INTROSPECTION_CLIENT_SECRET": 5}"#, "is not a string"),
            ("s3cr3t", "not a JSON object"),
        ] {
            let error = parse(value).expect_err(value);
            assert_eq!(error.variable, SECRETS);
            assert!(error.problem.contains(says), "{error}");
            assert!(!error.to_string().contains("s3cr3t"), "a secret in an error: {error}");
        }
    }

    #[test]
    fn a_variable_set_twice_is_refused_naming_it() {
        let environment: BTreeMap<String, String> = [("INTROSPECTION_CLIENT_SECRET".to_owned(), "a".to_owned())].into();
        let secrets: BTreeMap<String, String> = [("INTROSPECTION_CLIENT_SECRET".to_owned(), "b".to_owned())].into();
        let error = merged(environment, secrets).expect_err("twice");
        assert_eq!(error.variable, "INTROSPECTION_CLIENT_SECRET");
    }

    #[test]
    fn where_to_ask_comes_from_the_lambda_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        };
        assert!(Source::from_lookup(&env(&[])).expect("unset").is_none());
        let version_alone = Source::from_lookup(&env(&[(SECRETS_VERSION, "v")])).expect_err("alone");
        assert_eq!(version_alone.variable, SECRETS_VERSION);
        let no_keys = Source::from_lookup(&env(&[(SECRETS, "s"), ("AWS_REGION", "eu-west-1")])).expect_err("keys");
        assert!(no_keys.problem.contains("AWS_ACCESS_KEY_ID"), "{no_keys}");
        const FULL: &[(&str, &str)] = &[
            (SECRETS, "oauth-gateway/pets/authorizer"),
            (SECRETS_VERSION, "0123"),
            ("AWS_REGION", "cn-north-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "SECRET"),
        ];
        let source = Source::from_lookup(&env(FULL)).expect("valid").expect("set");
        assert_eq!(source.endpoint, "https://secretsmanager.cn-north-1.amazonaws.com.cn");
        assert_eq!(source.version.as_deref(), Some("0123"));
        assert!(!format!("{source:?}").contains("SECRET"), "no credential in Debug");
    }
}
