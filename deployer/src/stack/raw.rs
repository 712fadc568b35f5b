//! What stack.yaml says, as serde reads it: unknown fields refused, defaults
//! filled in, nothing checked beyond the shape. [`super::checks`] turns it
//! into a [`super::Stack`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStack {
    /// Name of the stack: tags every resource, prefixes every name.
    pub stack: String,
    pub region: Option<String>,
    pub authorizer: RawAuthorizer,
    pub api: RawApi,
    #[serde(default)]
    pub domain: Option<RawDomain>,
    #[serde(default)]
    pub waf: Option<RawWaf>,
    pub stage: RawStage,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorizer {
    /// `{build: authorizer}` or `{zip: path}` (a one-key map, not a YAML tag).
    #[serde(with = "serde_yaml::with::singleton_map")]
    #[schemars(with = "RawCode")]
    pub code: RawCode,
    #[serde(default = "default_memory")]
    pub memory_mb: i32,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: i32,
    #[serde(default)]
    pub architecture: Architecture,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default = "default_identity_sources")]
    pub identity_sources: Vec<String>,
    #[serde(default)]
    pub cache_ttl_seconds: i32,
    /// Accept certificate binding with a cache keyed only by the token
    /// (see the cache-replay note in docs/configuration.md). Off unless the file says so.
    #[serde(default)]
    pub allow_cache_replay_with_binding: bool,
    /// Days CloudWatch keeps the function's logs (`/aws/lambda/NAME`).
    #[serde(default = "default_authorizer_log_retention")]
    pub log_retention_days: i32,
    /// Where accepted DPoP proofs are remembered: `memory` (each function
    /// instance its own: a proof replayed to another instance within its
    /// window is accepted there) or `dynamodb` (a table the deployer makes,
    /// shared by every instance: a proof is accepted once, anywhere). Needs
    /// `DPOP` on.
    #[serde(default)]
    pub dpop_replay_store: DpopReplayStore,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DpopReplayStore {
    /// Each instance's own memory.
    #[default]
    Memory,
    /// A DynamoDB table every instance shares.
    Dynamodb,
}

/// 90 days: long enough to look back at an incident's denials, where
/// Lambda's own default is to keep them forever.
fn default_authorizer_log_retention() -> i32 {
    90
}

fn default_memory() -> i32 {
    128
}
fn default_timeout() -> i32 {
    5
}
fn default_identity_sources() -> Vec<String> {
    vec!["method.request.header.Authorization".into()]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawCode {
    /// Build a crate of this workspace (`authorizer`) for Lambda.
    Build(String),
    /// A zip holding `bootstrap`, relative to stack.yaml.
    Zip(PathBuf),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    #[default]
    X86_64,
    Arm64,
}

impl Architecture {
    pub fn as_lambda(self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    /// Create and own a REST API of this name...
    pub name: Option<String>,
    /// ...or adopt an existing one by id (never deleted by teardown).
    pub id: Option<String>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// What a request no route applies to needs (`deny`, the default, or
    /// scopes). Only reachable through a route that is also served, so
    /// `deny` is almost always right.
    #[serde(default)]
    pub default: Option<RawRule>,
    /// `realm` of the 401 challenge configured on the UNAUTHORIZED response,
    /// and of the authorizer's own challenges (its `REALM`).
    #[serde(default = "default_realm")]
    pub realm: String,
    /// The addresses clients reach the API on, through its custom domain
    /// and its default endpoint: `ipv4` (API Gateway's default) or
    /// `dualstack` (IPv4 and IPv6).
    #[serde(default)]
    pub ip_address_type: IpAddressType,
}

/// `api.ip_address_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IpAddressType {
    #[default]
    Ipv4,
    Dualstack,
}

impl IpAddressType {
    /// As API Gateway spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            IpAddressType::Ipv4 => "ipv4",
            IpAddressType::Dualstack => "dualstack",
        }
    }
}

/// `domain.execute_api`: what becomes of the API's default endpoint once the
/// custom domain serves the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecuteApi {
    /// Turned off: only the custom domain, with mutual TLS, reaches the API.
    Off,
    /// Left on while clients move to the domain (they reach the API without
    /// mutual TLS meanwhile).
    Keep,
}

fn default_realm() -> String {
    "api".into()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub method: String,
    pub path: String,
    pub backend: String,
    /// Request header → authorizer context key, e.g. `X-Sub: sub`.
    #[serde(default)]
    pub context_headers: BTreeMap<String, String>,
    /// The scopes a token needs for this route, or `any_valid_token` for a
    /// route any valid token may call. Required: a missing or empty list is
    /// refused rather than read as "any valid token".
    #[serde(default)]
    pub scopes: Option<RawScopes>,
    /// Whether the token needs all of `scopes` or any one of them.
    #[serde(default, rename = "match")]
    pub matching: ScopeMatch,
}

/// How a route's scopes are matched (the authorizer's `match`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScopeMatch {
    #[default]
    All,
    Any,
}

/// A route's `scopes`: a list, or the keyword that says any valid token.
/// (Read by hand, below: a derived untagged enum would read a keyword it
/// does not know as a type error naming no variant.)
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub enum RawScopes {
    List(Vec<String>),
    Keyword(AnyValidToken),
}

/// The one keyword `scopes` takes besides a list.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnyValidToken {
    AnyValidToken,
}

/// What `scopes: any_valid_token` is spelled as, for messages.
pub const ANY_VALID_TOKEN: &str = "any_valid_token";

impl<'de> Deserialize<'de> for RawScopes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Scopes;
        impl<'de> serde::de::Visitor<'de> for Scopes {
            type Value = RawScopes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a list of scopes (`[pets:read]`) or `{ANY_VALID_TOKEN}`")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RawScopes, E> {
                if text == ANY_VALID_TOKEN {
                    Ok(RawScopes::Keyword(AnyValidToken::AnyValidToken))
                } else {
                    Err(E::custom(format!(
                        "{text:?}: scopes are a list (`scopes: [{text}]`), or `{ANY_VALID_TOKEN}` for any valid token"
                    )))
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<RawScopes, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(RawScopes::List)
            }
        }
        deserializer.deserialize_any(Scopes)
    }
}

/// `api.default`: `deny`, or the scopes a token needs. A list, `{}` or a
/// map without `scopes` is refused (a derived untagged enum would read a
/// struct from a list, and `[]` or `[[]]` would mean "any valid token").
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum RawRule {
    Deny(DenyKeyword),
    Scopes(RawScopeRule),
}

impl<'de> Deserialize<'de> for RawRule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Rule;
        impl<'de> serde::de::Visitor<'de> for Rule {
            type Value = RawRule;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`deny` or `{ scopes: [...] }`")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RawRule, E> {
                match text {
                    "deny" => Ok(RawRule::Deny(DenyKeyword::Deny)),
                    _ => Err(E::custom(format!("{text:?}: write `deny` or `{{ scopes: [...] }}`"))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawRule, A::Error> {
                RawScopeRule::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(RawRule::Scopes)
            }
        }
        deserializer.deserialize_any(Rule)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScopeRule {
    /// Required, and not empty (checked): an empty list would let any
    /// valid token through where no route applies.
    pub scopes: Vec<String>,
    #[serde(default, rename = "match")]
    pub matching: ScopeMatch,
}

/// The one keyword `api.default` takes besides scopes.
#[derive(Debug, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DenyKeyword {
    Deny,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDomain {
    pub name: String,
    /// `{request: true}` or `{arn: ...}`.
    #[serde(with = "serde_yaml::with::singleton_map")]
    #[schemars(with = "RawCertificate")]
    pub certificate: RawCertificate,
    #[serde(default = "default_security_policy")]
    pub security_policy: String,
    pub truststore: RawTruststore,
    /// Base path mapped to the stage; empty for the root.
    #[serde(default)]
    pub base_path: String,
    /// Go on although API Gateway warns about certificates in the truststore.
    #[serde(default)]
    pub accept_truststore_warnings: bool,
    /// For an imported or private-CA certificate (`certificate: {arn: …}`):
    /// an ACM-issued public certificate for the same domain, which API
    /// Gateway requires to accept the other with mutual TLS.
    #[serde(default)]
    pub ownership_verification_certificate_arn: Option<String>,
    /// A Route 53 hosted zone the deployer writes the certificate's
    /// validation record and the domain's alias records in.
    #[serde(default)]
    pub hosted_zone_id: Option<String>,
    /// `off` or `keep`. Required to turn off the default endpoint of an API
    /// whose stage clients already call through it; `off` otherwise.
    #[serde(default)]
    pub execute_api: Option<ExecuteApi>,
}

fn default_security_policy() -> String {
    "TLS_1_2".into()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawCertificate {
    /// Request a certificate for the domain, validated by DNS.
    Request(bool),
    /// Use an existing ACM certificate.
    Arn(String),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTruststore {
    /// PEM bundle of the CAs that issue client certificates, relative to stack.yaml.
    pub file: PathBuf,
    pub bucket: String,
    #[serde(default = "default_truststore_key")]
    pub key: String,
}

fn default_truststore_key() -> String {
    "truststore.pem".into()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWaf {
    pub allow: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub name: String,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub throttling: Option<Throttling>,
    /// The stage's access log: one JSON line per request in a log group of
    /// the stack's.
    #[serde(default)]
    pub access_log: Option<RawAccessLog>,
    /// What the stage records of its requests beyond the access log.
    #[serde(default)]
    pub monitoring: Option<Monitoring>,
}

/// `stage.monitoring`. Both off when left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// AWS X-Ray traces of the stage's requests (the authorizer's and the
    /// backend's time within each).
    #[serde(default)]
    pub xray_tracing: bool,
    /// CloudWatch metrics (Count, Latency, 4XXError, ...) per method as well
    /// as per stage; CloudWatch bills them as custom metrics.
    #[serde(default)]
    pub detailed_metrics: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    #[serde(default = "default_access_log_retention")]
    pub retention_days: i32,
    /// `create`: make and set API Gateway's account-level CloudWatch role if
    /// the account has none. Left out, the account must have one already.
    #[serde(default)]
    pub account_role: Option<AccountRole>,
}

/// 365 days: an audit trail of who called what (PCI DSS keeps a year).
fn default_access_log_retention() -> i32 {
    365
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountRole {
    Create,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Throttling {
    pub rate_limit: f64,
    pub burst_limit: i32,
}
