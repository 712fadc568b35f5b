//! The authorizer's secrets (the introspection client secret, Authlete's
//! API secret), read once at init from AWS instead of the function's
//! environment, where every role allowed `lambda:GetFunction` (a plan role
//! among them) would read them in clear. Two ways, both optional:
//!
//! - `AUTHORIZER_SECRETS` names a Secrets Manager secret (its name or ARN)
//!   the deployer writes, and `AUTHORIZER_SECRETS_VERSION` the version to
//!   read, so a new version reaches new instances only with the
//!   configuration change that names it. Its value is a JSON object of
//!   secret variables (`{"INTROSPECTION_CLIENT_SECRET": "…"}`).
//! - `AUTHORIZER_SECRET_REFERENCES` maps a secret variable to a secret the
//!   team keeps itself: `{"INTROSPECTION_CLIENT_SECRET":
//!   "ssm:/pets/introspection"}` (an SSM SecureString, decrypted) or
//!   `"secretsmanager:NAME-OR-ARN"` (the secret's text, current version).
//!
//! Either joins the environment's variables before [`crate::Config::from_map`]
//! checks them all. Each read is one signed call ([`crate::aws`]: the
//! function's own credentials, the service's regional endpoint unless
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL_SSM` or
//! `AWS_ENDPOINT_URL` overrides it). Every failure is an
//! init error naming the variable: the function never starts with a secret
//! missing. Without either variable, nothing is read and nothing is built.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::aws::{AwsAccess, Service, text_at};
use crate::clock::Clock;
use crate::config::{ConfigError, SECRET_VARIABLES};

/// The variable naming the secret.
pub const SECRETS: &str = "AUTHORIZER_SECRETS";
/// The variable naming the version of it to read.
pub const SECRETS_VERSION: &str = "AUTHORIZER_SECRETS_VERSION";
/// The variable mapping secret variables to references.
pub const REFERENCES: &str = "AUTHORIZER_SECRET_REFERENCES";

/// How long each call may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where a secret variable's value is kept by the team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `ssm:NAME`: an SSM parameter (a SecureString, decrypted).
    Ssm(String),
    /// `secretsmanager:NAME-OR-ARN`: a secret's text, current version.
    SecretsManager(String),
}

impl Reference {
    /// `ssm:/pets/x` or `secretsmanager:pets/x`.
    pub fn parse(text: &str) -> Option<Reference> {
        let (service, id) = text.split_once(':')?;
        let id = id.trim();
        if id.is_empty() || id.chars().any(char::is_whitespace) {
            return None;
        }
        match service {
            "ssm" => Some(Reference::Ssm(id.to_owned())),
            "secretsmanager" => Some(Reference::SecretsManager(id.to_owned())),
            _ => None,
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Ssm(name) => write!(f, "ssm:{name}"),
            Reference::SecretsManager(id) => write!(f, "secretsmanager:{id}"),
        }
    }
}

/// The value of `AUTHORIZER_SECRET_REFERENCES` for `references` (what
/// [`References::from_lookup`] reads back).
pub fn references_variable(references: &BTreeMap<String, Reference>) -> String {
    let map: BTreeMap<&str, String> = references.iter().map(|(n, r)| (n.as_str(), r.to_string())).collect();
    serde_json::to_string(&map).unwrap_or_default()
}

/// One read at init: the answer, or a problem for `variable` saying what was read.
async fn read_one(
    aws: &AwsAccess,
    client: &reqwest::Client,
    clock: &Clock,
    service: Service,
    body: Value,
    variable: &str,
    what: &str,
) -> Result<Value, ConfigError> {
    let answer = aws.call(client, clock, service, &body, TIMEOUT).await;
    answer.map_err(|e| ConfigError::new(variable, format!("reading {what}: {e}")))
}

/// The deployer's secret: where it is and which version to read.
#[derive(Clone, Debug)]
pub struct Source {
    pub secret_id: String,
    pub version: Option<String>,
    pub aws: AwsAccess,
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
        let aws = AwsAccess::from_lookup(lookup, SECRETS)?;
        let version = lookup(SECRETS_VERSION).filter(|v| !v.is_empty());
        Ok(Some(Source { secret_id, version, aws }))
    }

    /// The secret's variables, read with one signed `GetSecretValue`.
    pub async fn read(&self, client: &reqwest::Client, clock: &Clock) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut body = serde_json::json!({"SecretId": self.secret_id});
        if let Some(version) = &self.version {
            body["VersionId"] = version.clone().into();
        }
        let answer =
            read_one(&self.aws, client, clock, Service::SecretsManager, body, SECRETS, &self.secret_id).await?;
        let value = text_at(&answer, "/SecretString")
            .ok_or_else(|| ConfigError::new(SECRETS, format!("{} holds no text value", self.secret_id)))?;
        parse(value)
    }
}

/// The team's own secrets, by secret variable.
#[derive(Clone, Debug)]
pub struct References {
    pub references: BTreeMap<String, Reference>,
    pub aws: AwsAccess,
}

impl References {
    /// From `AUTHORIZER_SECRET_REFERENCES` (a JSON object of secret
    /// variables to `ssm:…` or `secretsmanager:…`); `None` when not set.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<References>, ConfigError> {
        let Some(text) = lookup(REFERENCES).filter(|s| !s.is_empty()) else { return Ok(None) };
        let problem = |message: String| ConfigError::new(REFERENCES, message);
        let map: BTreeMap<String, String> = serde_json::from_str(&text)
            .map_err(|_| problem("is not a JSON object of secret variables to references".into()))?;
        let mut references = BTreeMap::new();
        for (name, reference) in map {
            if !SECRET_VARIABLES.contains(&name.as_str()) {
                return Err(problem(format!(
                    "names {name}, which is not a secret variable (expected {})",
                    SECRET_VARIABLES.join(", ")
                )));
            }
            let parsed = Reference::parse(&reference).ok_or_else(|| {
                problem(format!("{name}: {reference:?} is neither ssm:NAME nor secretsmanager:NAME-OR-ARN"))
            })?;
            references.insert(name, parsed);
        }
        let aws = AwsAccess::from_lookup(lookup, REFERENCES)?;
        Ok(Some(References { references, aws }))
    }

    /// Each variable's value, one signed call each.
    pub async fn read(&self, client: &reqwest::Client, clock: &Clock) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut values = BTreeMap::new();
        for (name, reference) in &self.references {
            let what = reference.to_string();
            let (service, body, pointer) = match reference {
                Reference::Ssm(parameter) => {
                    (Service::Ssm, serde_json::json!({"Name": parameter, "WithDecryption": true}), "/Parameter/Value")
                }
                Reference::SecretsManager(id) => {
                    (Service::SecretsManager, serde_json::json!({"SecretId": id}), "/SecretString")
                }
            };
            let answer = read_one(&self.aws, client, clock, service, body, name, &what).await?;
            let value = text_at(&answer, pointer)
                .ok_or_else(|| ConfigError::new(name, format!("{what} holds no text value")))?;
            values.insert(name.clone(), value.to_owned());
        }
        Ok(values)
    }
}

/// The configuration the function starts with: the environment's variables
/// and, with `AUTHORIZER_SECRETS` or `AUTHORIZER_SECRET_REFERENCES`, the
/// secrets they lead to.
pub async fn config_at_init(clock: &Clock) -> Result<crate::Config, ConfigError> {
    let mut variables = crate::Config::environment()?;
    let lookup = |name: &str| std::env::var(name).ok();
    let source = Source::from_lookup(&lookup)?;
    let references = References::from_lookup(&lookup)?;
    if source.is_some() || references.is_some() {
        let client = crate::http::client(TIMEOUT).map_err(|e| ConfigError::new(SECRETS, e.to_string()))?;
        if let Some(source) = source {
            variables = merged(variables, source.read(&client, clock).await?)?;
        }
        if let Some(references) = references {
            variables = merged(variables, references.read(&client, clock).await?)?;
        }
    }
    crate::Config::from_map(&variables)
}

fn problem(message: impl Into<String>) -> ConfigError {
    ConfigError::new(SECRETS, message)
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
            return Err(ConfigError::new(&name, "is set twice: in the environment, AUTHORIZER_SECRETS or a reference"));
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
    fn references_name_a_secret_variable_and_ssm_or_secrets_manager() {
        let env = |references: &'static str| {
            move |name: &str| match name {
                REFERENCES => Some(references.to_owned()),
                "AWS_REGION" => Some("eu-west-1".to_owned()),
                "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("key".to_owned()),
                _ => None,
            }
        };
        let both = r#"{"INTROSPECTION_CLIENT_SECRET": "ssm:/pets/introspection", "AUTHLETE_SERVICE_APISECRET": "secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:pets-AbCdEf"}"#;
        let read = References::from_lookup(&env(both)).expect("valid").expect("set");
        assert_eq!(read.references["INTROSPECTION_CLIENT_SECRET"], Reference::Ssm("/pets/introspection".into()));
        assert_eq!(
            read.references["AUTHLETE_SERVICE_APISECRET"],
            Reference::SecretsManager("arn:aws:secretsmanager:eu-west-1:123456789012:secret:pets-AbCdEf".into())
        );
        for (references, says) in [
            (r#"{"JWKS_URI": "ssm:/x"}"#, "JWKS_URI, which is not a secret variable"),
            (r#"{"INTROSPECTION_CLIENT_SECRET": "vault:/x"}"#, "neither ssm:NAME nor secretsmanager"),
            (r#"{"INTROSPECTION_CLIENT_SECRET": "ssm:"}"#, "neither ssm:NAME nor secretsmanager"),
            ("[]", "is not a JSON object"),
        ] {
            let error = References::from_lookup(&env(references)).expect_err(references);
            assert_eq!(error.variable, REFERENCES);
            assert!(error.problem.contains(says), "{error}");
        }
        assert!(References::from_lookup(&|_| None).expect("unset").is_none(), "nothing to read, nothing built");
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
        assert_eq!(source.aws.endpoint(Service::SecretsManager), "https://secretsmanager.cn-north-1.amazonaws.com.cn");
        assert_eq!(source.aws.endpoint(Service::Ssm), "https://ssm.cn-north-1.amazonaws.com.cn");
        assert_eq!(source.version.as_deref(), Some("0123"));
        assert!(!format!("{source:?}").contains("SECRET"), "no credential in Debug");
    }
}
