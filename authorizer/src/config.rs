//! Environment variables → a validated [`Config`].
//!
//! Everything the authorizer needs to know is read and checked here, once, at
//! start-up. A bad or missing value is a [`ConfigError`] that names the
//! variable, so a misconfigured function fails its init instead of answering
//! requests half-configured. The deployer calls [`Config::from_map`] on the
//! variables in stack.yaml to refuse bad settings before deploying.
//!
//! This module does no I/O: endpoints left to discovery are `None` here and
//! filled in by [`crate::discovery`] when the authorizer starts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use reqwest::Url;

use crate::algorithms;
use crate::binding::{BindingMode, CertAllowlist};
use crate::dpop::{DpopMode, DpopSettings};
use crate::replay_store::ReplayStore;
use crate::routes::RouteTable;

/// One bad setting: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(variable: &str, problem: impl Into<String>) -> Self {
        ConfigError { variable: variable.to_owned(), problem: problem.into() }
    }
}

/// Every variable [`Config`] reads, in the order docs/configuration.md documents them.
pub const VARIABLES: &[&str] = &[
    "TOKEN_VALIDATION",
    "JWKS_URI",
    "TOKEN_ISSUER",
    "AUDIENCE",
    "JWT_ALGORITHMS",
    "JWT_LEEWAY_SECONDS",
    "JWT_REQUIRE_AT_JWT_TYP",
    "JWKS_REFETCH_INTERVAL_SECONDS",
    "JWKS_MAX_AGE_SECONDS",
    "INTROSPECTION_ENDPOINT",
    "INTROSPECTION_CLIENT_ID",
    "INTROSPECTION_CLIENT_SECRET",
    "INTROSPECTION_AUTH_METHOD",
    "INTROSPECTION_CACHE_TTL_SECONDS",
    "INTROSPECTION_NEGATIVE_CACHE_TTL_SECONDS",
    "INTROSPECTION_CACHE_MAX_BYTES",
    "AUTHLETE_BASE_URL",
    "AUTHLETE_SERVICE_APIKEY",
    "AUTHLETE_SERVICE_APISECRET",
    "CERT_BINDING",
    "CLIENT_CERT_ALLOWLIST",
    "DPOP",
    "DPOP_ALGORITHMS",
    "DPOP_IAT_WINDOW_SECONDS",
    "DPOP_REPLAY_STORE",
    "ROUTES",
    "POLICY_SHAPE",
    "REALM",
    "HTTP_TIMEOUT_MS",
    "MAX_TOKEN_BYTES",
];

/// Variables the function reads outside [`Config`]: the log filter, the
/// extra CAs for the identity provider's TLS, and where its secrets are
/// (`crate::secrets`).
pub const RUNTIME_VARIABLES: &[&str] =
    &["RUST_LOG", "SSL_CERT_FILE", "AUTHORIZER_SECRETS", "AUTHORIZER_SECRETS_VERSION", "AUTHORIZER_SECRET_REFERENCES"];

/// Variables whose values are secrets: never logged, masked by the deployer.
pub const SECRET_VARIABLES: &[&str] = &["INTROSPECTION_CLIENT_SECRET", "AUTHLETE_SERVICE_APISECRET"];

#[derive(Debug, Clone)]
pub struct Config {
    pub validation: Validation,
    /// The issuer, exactly as configured, whose discovery document supplies
    /// the endpoints left unset (`jwks_uri`, `introspection_endpoint`);
    /// `None` when all are configured.
    pub discovery: Option<String>,
    pub binding: BindingMode,
    pub dpop: DpopSettings,
    pub cert_allowlist: Option<CertAllowlist>,
    pub routes: RouteTable,
    pub policy_shape: PolicyShape,
    /// `realm` of every RFC 6750 challenge.
    pub realm: String,
    /// Timeout of every call to the identity provider.
    pub http_timeout: Duration,
    /// Longer Authorization values are refused before any parsing.
    pub max_token_bytes: usize,
}

/// How a token is checked.
// Built once at start-up and never moved around: boxing the large variant
// would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Validation {
    Jwt(JwtSettings),
    Introspection(IntrospectionSettings),
    /// A JWT-shaped token is verified locally; anything else is introspected.
    JwtOrIntrospection(JwtSettings, IntrospectionSettings),
    Authlete(AuthleteSettings),
}

impl Validation {
    pub fn jwt(&self) -> Option<&JwtSettings> {
        match self {
            Validation::Jwt(jwt) | Validation::JwtOrIntrospection(jwt, _) => Some(jwt),
            _ => None,
        }
    }

    pub fn introspection(&self) -> Option<&IntrospectionSettings> {
        match self {
            Validation::Introspection(i) | Validation::JwtOrIntrospection(_, i) => Some(i),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// `None`: taken from the issuer's discovery document at start-up.
    pub jwks_uri: Option<Url>,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub leeway_seconds: u64,
    /// RFC 9068: require `typ: at+jwt`.
    pub require_at_jwt_typ: bool,
    /// An unknown `kid` triggers at most one JWKS fetch per this interval.
    pub refetch_interval: Duration,
    /// Keys older than this are refreshed in the background (a shorter
    /// `Cache-Control: max-age` from the identity provider wins).
    pub max_age: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
}

#[derive(Clone)]
pub struct IntrospectionSettings {
    /// `None`: taken from the issuer's discovery document at start-up.
    pub endpoint: Option<Url>,
    pub client_id: String,
    pub client_secret: String,
    pub auth_method: ClientAuthMethod,
    /// When set, the answer's `aud` must name one of these.
    pub audiences: Vec<String>,
    /// When set, the answer's `iss` must be one of these.
    pub issuers: Vec<String>,
    /// Upper bound of how long an active answer is reused (it never outlives `exp`).
    pub cache_ttl: Duration,
    /// How long an `active: false` answer is reused.
    pub negative_cache_ttl: Duration,
    /// Memory the answer cache may hold.
    pub cache_max_bytes: u64,
}

#[derive(Clone)]
pub struct AuthleteSettings {
    pub base_url: Url,
    pub api_key: String,
    pub api_secret: String,
}

// Manual Debug impls so that a secret can never reach a log line through `{:?}`.
impl std::fmt::Debug for IntrospectionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionSettings")
            .field("endpoint", &self.endpoint.as_ref().map(Url::as_str))
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("auth_method", &self.auth_method)
            .field("audiences", &self.audiences)
            .field("issuers", &self.issuers)
            .field("cache_ttl", &self.cache_ttl)
            .field("negative_cache_ttl", &self.negative_cache_ttl)
            .field("cache_max_bytes", &self.cache_max_bytes)
            .finish()
    }
}

impl std::fmt::Debug for AuthleteSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthleteSettings")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key)
            .field("api_secret", &"***")
            .finish()
    }
}

/// The shape of the IAM policy in an Allow or Deny answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyShape {
    /// One statement for the method ARN of this request.
    Request,
    /// Statements for every route of the table, so that a policy API Gateway
    /// caches for this token gives the right answer on the other routes too.
    Full,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_map(&Config::environment()?)
    }

    /// The variables [`Config`] reads, as the process environment has them.
    pub fn environment() -> Result<BTreeMap<String, String>, ConfigError> {
        let vars: BTreeMap<String, String> =
            VARIABLES.iter().filter_map(|name| std::env::var(name).ok().map(|v| ((*name).to_owned(), v))).collect();
        // A variable that is set but not valid UTF-8 would silently read as unset above.
        for name in VARIABLES {
            if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(name) {
                return Err(ConfigError::new(name, "is not valid UTF-8"));
            }
        }
        Ok(vars)
    }

    /// Parses a set of variables as the Lambda function would see them.
    pub fn from_map(vars: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let env = Vars(vars);
        let modes = env.required("TOKEN_VALIDATION")?;
        let mut parts: Vec<&str> = modes.split(',').map(str::trim).collect();
        parts.sort_unstable();
        let validation = match parts.as_slice() {
            ["jwt"] => Validation::Jwt(jwt_settings(&env)?),
            ["introspection"] => Validation::Introspection(introspection_settings(&env)?),
            ["introspection", "jwt"] => {
                Validation::JwtOrIntrospection(jwt_settings(&env)?, introspection_settings(&env)?)
            }
            ["authlete"] => Validation::Authlete(authlete_settings(&env)?),
            _ => {
                return Err(ConfigError::new(
                    "TOKEN_VALIDATION",
                    format!(
                        "unknown validation mode {modes:?}: expected jwt, introspection, jwt,introspection or authlete"
                    ),
                ));
            }
        };
        env.refuse_foreign_settings(&validation)?;
        let discovery = discovery_issuer(&env, &validation)?;

        let binding = match env.optional("CERT_BINDING") {
            None => BindingMode::IfBound,
            Some(value) => BindingMode::parse(value).ok_or_else(|| {
                ConfigError::new("CERT_BINDING", format!("{value:?}: expected required, if-bound or off"))
            })?,
        };
        let dpop = dpop_settings(&env, &validation)?;
        let cert_allowlist = env
            .optional("CLIENT_CERT_ALLOWLIST")
            .map(|json| CertAllowlist::parse(json).map_err(|e| ConfigError::new("CLIENT_CERT_ALLOWLIST", e)))
            .transpose()?;
        let routes = match env.optional("ROUTES") {
            None => RouteTable::allow_any_valid_token(),
            Some(json) => RouteTable::parse(json).map_err(|e| ConfigError::new("ROUTES", e.to_string()))?,
        };
        let policy_shape = match env.optional("POLICY_SHAPE").unwrap_or("full") {
            "full" => PolicyShape::Full,
            "request" => PolicyShape::Request,
            other => {
                return Err(ConfigError::new("POLICY_SHAPE", format!("{other:?}: expected full or request")));
            }
        };
        let realm = env.optional("REALM").unwrap_or("api").to_owned();
        if realm.is_empty() || realm.contains(['"', '\\']) || realm.chars().any(char::is_control) {
            return Err(ConfigError::new(
                "REALM",
                "must be non-empty, without quotes, backslashes or control characters",
            ));
        }
        let http_timeout = Duration::from_millis(env.number("HTTP_TIMEOUT_MS", 2000, 50..=30_000)?);
        let max_token_bytes = env.number("MAX_TOKEN_BYTES", 8192, 64..=65_536)? as usize;

        Ok(Config {
            validation,
            discovery,
            binding,
            dpop,
            cert_allowlist,
            routes,
            policy_shape,
            realm,
            http_timeout,
            max_token_bytes,
        })
    }
}

fn jwt_settings(env: &Vars) -> Result<JwtSettings, ConfigError> {
    let jwks_uri = env.optional_identity_provider_url("JWKS_URI")?;
    if jwks_uri.is_none() && env.optional("TOKEN_ISSUER").is_none() {
        return Err(ConfigError::new("JWKS_URI", "is required (or set TOKEN_ISSUER to discover it)"));
    }
    let algorithms = match env.optional("JWT_ALGORITHMS") {
        None => algorithms::SUPPORTED.to_vec(),
        Some(list) => algorithms::parse_list(list).map_err(|e| ConfigError::new("JWT_ALGORITHMS", e))?,
    };
    let refetch_interval = Duration::from_secs(env.number("JWKS_REFETCH_INTERVAL_SECONDS", 10, 1..=3600)?);
    Ok(JwtSettings {
        jwks_uri,
        issuers: env.list("TOKEN_ISSUER")?,
        audiences: env.list("AUDIENCE")?,
        algorithms,
        leeway_seconds: env.number("JWT_LEEWAY_SECONDS", 30, 0..=300)?,
        require_at_jwt_typ: env.boolean("JWT_REQUIRE_AT_JWT_TYP", false)?,
        refetch_interval,
        max_age: Duration::from_secs(env.number("JWKS_MAX_AGE_SECONDS", 300, 1..=86_400)?),
    })
}

fn introspection_settings(env: &Vars) -> Result<IntrospectionSettings, ConfigError> {
    let auth_method = match env.optional("INTROSPECTION_AUTH_METHOD").unwrap_or("client_secret_basic") {
        "client_secret_basic" => ClientAuthMethod::ClientSecretBasic,
        "client_secret_post" => ClientAuthMethod::ClientSecretPost,
        other => {
            return Err(ConfigError::new(
                "INTROSPECTION_AUTH_METHOD",
                format!("{other:?}: expected client_secret_basic or client_secret_post"),
            ));
        }
    };
    let endpoint = env.optional_identity_provider_url("INTROSPECTION_ENDPOINT")?;
    if endpoint.is_none() && env.optional("TOKEN_ISSUER").is_none() {
        return Err(ConfigError::new("INTROSPECTION_ENDPOINT", "is required (or set TOKEN_ISSUER to discover it)"));
    }
    Ok(IntrospectionSettings {
        endpoint,
        client_id: env.required("INTROSPECTION_CLIENT_ID")?.to_owned(),
        client_secret: env.required("INTROSPECTION_CLIENT_SECRET")?.to_owned(),
        auth_method,
        audiences: env.optional_list("AUDIENCE"),
        issuers: env.optional_list("TOKEN_ISSUER"),
        cache_ttl: Duration::from_secs(env.number("INTROSPECTION_CACHE_TTL_SECONDS", 60, 0..=3600)?),
        negative_cache_ttl: Duration::from_secs(env.number("INTROSPECTION_NEGATIVE_CACHE_TTL_SECONDS", 5, 0..=60)?),
        cache_max_bytes: env.number("INTROSPECTION_CACHE_MAX_BYTES", 8 << 20, 64 << 10..=1 << 30)?,
    })
}

fn authlete_settings(env: &Vars) -> Result<AuthleteSettings, ConfigError> {
    Ok(AuthleteSettings {
        base_url: env.identity_provider_url("AUTHLETE_BASE_URL")?,
        api_key: env.required("AUTHLETE_SERVICE_APIKEY")?.to_owned(),
        api_secret: env.required("AUTHLETE_SERVICE_APISECRET")?.to_owned(),
    })
}

/// The issuer to run discovery against, when an endpoint was left unset. It
/// must be a single issuer usable as a URL, because discovery is only trusted
/// when the document names exactly the configured issuer.
fn discovery_issuer(env: &Vars, validation: &Validation) -> Result<Option<String>, ConfigError> {
    let jwks_missing = validation.jwt().is_some_and(|j| j.jwks_uri.is_none());
    let introspection_missing = validation.introspection().is_some_and(|i| i.endpoint.is_none());
    if !jwks_missing && !introspection_missing {
        return Ok(None);
    }
    let missing = if jwks_missing { "JWKS_URI" } else { "INTROSPECTION_ENDPOINT" };
    let issuers = env.optional_list("TOKEN_ISSUER");
    let [issuer] = issuers.as_slice() else {
        return Err(ConfigError::new(
            missing,
            "is required when TOKEN_ISSUER lists several issuers (discovery needs exactly one)",
        ));
    };
    parse_identity_provider_url("TOKEN_ISSUER", issuer)
        .map(|_| Some(issuer.clone()))
        .map_err(|e| ConfigError::new("TOKEN_ISSUER", format!("{} (to discover {missing} from it)", e.problem)))
}

fn dpop_settings(env: &Vars, validation: &Validation) -> Result<DpopSettings, ConfigError> {
    let mode = match env.optional("DPOP").unwrap_or("off") {
        "off" => DpopMode::Off,
        "allowed" => DpopMode::Allowed,
        "required" => DpopMode::Required,
        other => return Err(ConfigError::new("DPOP", format!("{other:?}: expected off, allowed or required"))),
    };
    if mode == DpopMode::Off {
        for name in ["DPOP_ALGORITHMS", "DPOP_IAT_WINDOW_SECONDS", crate::replay_store::VARIABLE] {
            if env.optional(name).is_some() {
                return Err(ConfigError::new(name, "is set but DPOP is off"));
            }
        }
    } else if matches!(validation, Validation::Authlete(_)) {
        // Authlete verifies DPoP proofs itself, given the proof, method and
        // URL; that exchange is not implemented, and a half check is worse
        // than none.
        return Err(ConfigError::new("DPOP", "is not supported with TOKEN_VALIDATION=authlete"));
    }
    let algorithms = match env.optional("DPOP_ALGORITHMS") {
        None => algorithms::SUPPORTED.to_vec(),
        Some(list) => algorithms::parse_list(list).map_err(|e| ConfigError::new("DPOP_ALGORITHMS", e))?,
    };
    Ok(DpopSettings {
        mode,
        algorithms,
        iat_window: Duration::from_secs(env.number("DPOP_IAT_WINDOW_SECONDS", 60, 1..=600)?),
        replay_store: match env.optional(crate::replay_store::VARIABLE) {
            None => ReplayStore::Memory,
            Some(text) => ReplayStore::parse(text)?,
        },
    })
}

/// Typed accessors over the raw variables, each error naming its variable.
struct Vars<'a>(&'a BTreeMap<String, String>);

impl Vars<'_> {
    fn optional(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> Result<&str, ConfigError> {
        self.optional(name).ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    /// A comma-separated, non-empty list.
    fn list(&self, name: &str) -> Result<Vec<String>, ConfigError> {
        let items = self.optional_list(name);
        if items.is_empty() {
            return Err(ConfigError::new(name, "is required but not set"));
        }
        Ok(items)
    }

    /// A comma-separated list that may be absent (then empty).
    fn optional_list(&self, name: &str) -> Vec<String> {
        self.optional(name)
            .map(|list| list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    }

    fn number(&self, name: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64, ConfigError> {
        let Some(text) = self.optional(name) else {
            return Ok(default);
        };
        let value: u64 = text.parse().map_err(|_| ConfigError::new(name, format!("{text:?} is not a whole number")))?;
        if !range.contains(&value) {
            return Err(ConfigError::new(name, format!("{value} is out of range {}..={}", range.start(), range.end())));
        }
        Ok(value)
    }

    fn boolean(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ConfigError::new(name, format!("{other:?}: expected true or false"))),
        }
    }

    fn identity_provider_url(&self, name: &str) -> Result<Url, ConfigError> {
        parse_identity_provider_url(name, self.required(name)?)
    }

    fn optional_identity_provider_url(&self, name: &str) -> Result<Option<Url>, ConfigError> {
        self.optional(name).map(|text| parse_identity_provider_url(name, text)).transpose()
    }

    /// Settings of another validation mode are refused rather than ignored:
    /// someone who set `JWKS_URI` with `TOKEN_VALIDATION=introspection`
    /// probably believes JWTs are being verified.
    fn refuse_foreign_settings(&self, validation: &Validation) -> Result<(), ConfigError> {
        const JWT: &[&str] = &["JWKS_", "JWT_", "TOKEN_ISSUER", "AUDIENCE"];
        const INTROSPECTION: &[&str] = &["INTROSPECTION_", "TOKEN_ISSUER", "AUDIENCE"];
        const AUTHLETE: &[&str] = &["AUTHLETE_"];
        let own: Vec<&str> = match validation {
            Validation::Jwt(_) => JWT.to_vec(),
            Validation::Introspection(_) => INTROSPECTION.to_vec(),
            Validation::JwtOrIntrospection(..) => [JWT, INTROSPECTION].concat(),
            Validation::Authlete(_) => AUTHLETE.to_vec(),
        };
        for name in self.0.keys() {
            let belongs_to_a_mode = [JWT, INTROSPECTION, AUTHLETE].concat().iter().any(|p| name.starts_with(p));
            let belongs_to_this_mode = own.iter().any(|p| name.starts_with(p));
            if belongs_to_a_mode && !belongs_to_this_mode && self.optional(name).is_some() {
                return Err(ConfigError::new(name, "is set but does not apply to this TOKEN_VALIDATION mode"));
            }
        }
        Ok(())
    }
}

/// An identity-provider URL: https, or http only on a loopback host (tests).
pub(crate) fn parse_identity_provider_url(name: &str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| ConfigError::new(name, format!("{text:?} is not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(ConfigError::new(name, "must use https (http is accepted only on loopback)"));
        }
        other => {
            return Err(ConfigError::new(name, format!("scheme {other:?} is not allowed: use https")));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(name, "must not carry credentials in the URL"));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn jwt_base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("TOKEN_VALIDATION", "jwt"),
            ("JWKS_URI", "https://idp.example.com/jwks"),
            ("TOKEN_ISSUER", "https://idp.example.com/"),
            ("AUDIENCE", "api://orders, api://billing"),
        ]
    }

    fn with(
        base: &[(&'static str, &'static str)],
        extra: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        let mut pairs = base.to_vec();
        pairs.extend_from_slice(extra);
        pairs
    }

    fn error_of(pairs: &[(&str, &str)]) -> ConfigError {
        Config::from_map(&vars(pairs)).expect_err("config should be refused")
    }

    #[test]
    fn minimal_jwt_config_takes_documented_defaults() {
        let config = Config::from_map(&vars(&jwt_base())).unwrap();
        let Validation::Jwt(jwt) = &config.validation else { panic!("expected jwt") };
        assert_eq!(jwt.audiences, ["api://orders", "api://billing"]);
        assert_eq!(jwt.leeway_seconds, 30);
        assert_eq!(jwt.algorithms, algorithms::SUPPORTED);
        assert_eq!(jwt.max_age, Duration::from_secs(300));
        assert_eq!(config.binding, BindingMode::IfBound);
        assert_eq!(config.dpop.mode, DpopMode::Off);
        assert_eq!(config.policy_shape, PolicyShape::Full);
        assert_eq!(config.http_timeout, Duration::from_secs(2));
        assert!(config.discovery.is_none(), "every endpoint is configured");
    }

    #[test]
    fn every_error_names_its_variable() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![], "TOKEN_VALIDATION"),
            (vec![("TOKEN_VALIDATION", "saml")], "TOKEN_VALIDATION"),
            (vec![("TOKEN_VALIDATION", "jwt,authlete")], "TOKEN_VALIDATION"),
            (vec![("TOKEN_VALIDATION", "jwt")], "JWKS_URI"),
            (vec![("TOKEN_VALIDATION", "jwt"), ("JWKS_URI", "http://idp.example.com/jwks")], "JWKS_URI"),
            (vec![("TOKEN_VALIDATION", "jwt"), ("JWKS_URI", "ftp://idp/jwks")], "JWKS_URI"),
            (vec![("TOKEN_VALIDATION", "jwt"), ("JWKS_URI", "https://u:p@idp/jwks")], "JWKS_URI"),
            (vec![("TOKEN_VALIDATION", "jwt"), ("JWKS_URI", "https://idp/jwks")], "TOKEN_ISSUER"),
            (vec![("TOKEN_VALIDATION", "introspection")], "INTROSPECTION_ENDPOINT"),
            (vec![("TOKEN_VALIDATION", "authlete")], "AUTHLETE_BASE_URL"),
        ];
        for (pairs, variable) in cases {
            assert_eq!(error_of(&pairs).variable, variable, "for {pairs:?}");
        }
        for (name, value) in [
            ("JWT_ALGORITHMS", "HS256"),
            ("JWT_ALGORITHMS", "none"),
            ("JWT_LEEWAY_SECONDS", "-1"),
            ("JWT_LEEWAY_SECONDS", "100000"),
            ("JWT_REQUIRE_AT_JWT_TYP", "yes"),
            ("JWKS_MAX_AGE_SECONDS", "0"),
            ("CERT_BINDING", "sometimes"),
            ("POLICY_SHAPE", "partial"),
            ("ROUTES", "{not json"),
            ("CLIENT_CERT_ALLOWLIST", "[{\"colour\":\"red\"}]"),
            ("REALM", "a\"b"),
            ("HTTP_TIMEOUT_MS", "0"),
            ("INTROSPECTION_ENDPOINT", "https://idp/introspect"),
            ("DPOP", "maybe"),
            ("DPOP_ALGORITHMS", "ES256"),
        ] {
            let error = error_of(&with(&jwt_base(), &[(name, value)]));
            assert_eq!(error.variable, name, "{name}={value}: {error}");
        }
        for (name, value) in [("DPOP_ALGORITHMS", "HS256"), ("DPOP_IAT_WINDOW_SECONDS", "0")] {
            let error = error_of(&with(&jwt_base(), &[("DPOP", "allowed"), (name, value)]));
            assert_eq!(error.variable, name, "{name}={value}: {error}");
        }
    }

    #[test]
    fn http_is_allowed_on_loopback_only() {
        for uri in ["http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]:9/jwks"] {
            let mut pairs = jwt_base();
            pairs[1] = ("JWKS_URI", uri);
            assert!(Config::from_map(&vars(&pairs)).is_ok(), "{uri}");
        }
    }

    #[test]
    fn hybrid_mode_needs_the_settings_of_both_and_accepts_either_order() {
        let introspection = [
            ("INTROSPECTION_ENDPOINT", "https://idp.example.com/introspect"),
            ("INTROSPECTION_CLIENT_ID", "rs"),
            ("INTROSPECTION_CLIENT_SECRET", "secret"),
        ];
        for mode in ["jwt,introspection", "introspection, jwt"] {
            let mut pairs = with(&jwt_base(), &introspection);
            pairs[0] = ("TOKEN_VALIDATION", mode);
            let config = Config::from_map(&vars(&pairs)).unwrap();
            assert!(matches!(config.validation, Validation::JwtOrIntrospection(..)), "{mode}");
            // The JWT rules apply to introspection answers too.
            assert_eq!(config.validation.introspection().unwrap().audiences, ["api://orders", "api://billing"]);
        }
        let mut pairs = jwt_base();
        pairs[0] = ("TOKEN_VALIDATION", "jwt,introspection");
        assert_eq!(error_of(&pairs).variable, "INTROSPECTION_CLIENT_ID");
    }

    #[test]
    fn an_unset_endpoint_is_discovered_from_a_single_issuer() {
        let config = Config::from_map(&vars(&[
            ("TOKEN_VALIDATION", "jwt"),
            ("TOKEN_ISSUER", "https://idp.example.com/realms/a"),
            ("AUDIENCE", "api"),
        ]))
        .unwrap();
        assert_eq!(config.discovery.as_deref(), Some("https://idp.example.com/realms/a"));
        assert!(config.validation.jwt().unwrap().jwks_uri.is_none());

        let several = error_of(&[
            ("TOKEN_VALIDATION", "jwt"),
            ("TOKEN_ISSUER", "https://a.example.com/, https://b.example.com/"),
            ("AUDIENCE", "api"),
        ]);
        assert_eq!(several.variable, "JWKS_URI");
        let not_a_url = error_of(&[("TOKEN_VALIDATION", "jwt"), ("TOKEN_ISSUER", "idp-1"), ("AUDIENCE", "api")]);
        assert_eq!(not_a_url.variable, "TOKEN_ISSUER");
        assert!(not_a_url.problem.contains("JWKS_URI"), "{not_a_url}");
    }

    #[test]
    fn dpop_is_refused_with_authlete() {
        let error = error_of(&[
            ("TOKEN_VALIDATION", "authlete"),
            ("AUTHLETE_BASE_URL", "https://api.authlete.com"),
            ("AUTHLETE_SERVICE_APIKEY", "k"),
            ("AUTHLETE_SERVICE_APISECRET", "s"),
            ("DPOP", "allowed"),
        ]);
        assert_eq!(error.variable, "DPOP");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = Config::from_map(&vars(&[
            ("TOKEN_VALIDATION", "introspection"),
            ("INTROSPECTION_ENDPOINT", "https://idp/introspect"),
            ("INTROSPECTION_CLIENT_ID", "rs"),
            ("INTROSPECTION_CLIENT_SECRET", "s3cr3t-value"),
        ]))
        .unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t-value"));
    }
}
