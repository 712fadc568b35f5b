//! An API Gateway REQUEST authorizer for OAuth 2.0 bearer tokens, with
//! RFC 8705 certificate binding.
//!
//! ```no_run
//! # async fn example(event: authorizer::request::AuthorizerEvent) -> Result<(), Box<dyn std::error::Error>> {
//! let config = authorizer::Config::from_env()?;       // every setting checked here
//! let authorizer = authorizer::Authorizer::new(config).await?; // JWKS fetched here
//! let decision = authorizer.authorize(&event).await;  // per request: no I/O but the IdP's
//! # Ok(()) }
//! ```
//!
//! The per-request path is [`Authorizer::authorize`], readable top to bottom.
//! Everything expensive (configuration, HTTP client, keys) is built in
//! [`Authorizer::new`].

pub mod authlete;
pub mod binding;
pub mod config;
pub mod error;
pub mod http;
pub mod introspection;
pub mod jwks;
pub mod jwt;
pub mod policy;
pub mod request;
pub mod response;
pub mod routes;
pub mod token;

use std::sync::Arc;
use std::time::Instant;

pub use config::{Config, ConfigError};
pub use error::{Rejection, Status};
pub use request::AuthorizerEvent;
pub use response::AuthorizerResponse;
pub use token::TokenInfo;

use authlete::{AuthleteClient, AuthleteVerdict};
use binding::Thumbprint;
use config::Validation;
use introspection::Introspector;
use jwt::JwtVerifier;
use policy::{Effect, MethodArn};
use response::Context;
use routes::Requirement;

/// A library user's extra check on a validated token (cf. aws-jwt-verify's
/// `customJwtCheck`): runs after signature, claims and binding are verified.
pub trait ClaimCheck: Send + Sync {
    fn check(&self, token: &TokenInfo, request: &MethodArn<'_>) -> Result<(), ClaimCheckFailure>;
}

/// How a custom claim check refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimCheckFailure {
    /// The token is not acceptable at all: 401.
    Unauthorized(String),
    /// The token is fine but may not do this: Deny (403).
    Forbidden(String),
}

/// A library user's own answer to "which scopes does this request need?",
/// consulted before the route table. `None` falls through to the table.
pub trait ScopeResolver: Send + Sync {
    fn requirement(&self, request: &MethodArn<'_>) -> Option<Requirement>;
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Http(#[from] http::InitError),
    #[error("fetching the JWKS at start-up: {0}")]
    Jwks(#[from] http::FetchError),
}

enum Validator {
    Jwt(JwtVerifier),
    Introspection(Introspector),
    Authlete(AuthleteClient),
}

/// The outcome of one request, with what the decision log needs.
#[derive(Debug)]
pub struct Decision {
    pub result: Result<AuthorizerResponse, Rejection>,
    /// The answer to send when the rejection is a Deny (403).
    pub deny_response: Option<AuthorizerResponse>,
    /// First 12 hex digits of SHA-256 of the token, for correlating logs.
    pub token_hash: Option<String>,
}

impl Decision {
    pub fn status(&self) -> Option<Status> {
        self.result.as_ref().err().map(Rejection::status)
    }

    pub fn reason(&self) -> &'static str {
        self.result.as_ref().err().map_or("allowed", Rejection::code)
    }

    /// "allow", "deny", "unauthorized" or "error".
    pub fn label(&self) -> &'static str {
        match self.status() {
            None => "allow",
            Some(Status::Forbidden) => "deny",
            Some(Status::Unauthorized) => "unauthorized",
            Some(Status::ServerError) => "error",
        }
    }
}

pub struct Authorizer {
    config: Config,
    validator: Validator,
    thumbprints: binding::ThumbprintCache,
    claim_check: Option<Arc<dyn ClaimCheck>>,
    scope_resolver: Option<Arc<dyn ScopeResolver>>,
}

impl Authorizer {
    /// Builds the HTTP client and, for JWTs, fetches the JWKS: a function
    /// that cannot reach its keys fails its init rather than its requests.
    pub async fn new(config: Config) -> Result<Authorizer, InitError> {
        let http = http::client(config.http_timeout)?;
        let validator = match &config.validation {
            Validation::Jwt(settings) => {
                let verifier = JwtVerifier::new(settings, http);
                verifier.jwks().hydrate().await?;
                Validator::Jwt(verifier)
            }
            Validation::Introspection(settings) => Validator::Introspection(Introspector::new(settings.clone(), http)),
            Validation::Authlete(settings) => Validator::Authlete(AuthleteClient::new(settings.clone(), http)),
        };
        Ok(Authorizer {
            config,
            validator,
            thumbprints: binding::ThumbprintCache::default(),
            claim_check: None,
            scope_resolver: None,
        })
    }

    pub fn with_claim_check(mut self, check: Arc<dyn ClaimCheck>) -> Self {
        self.claim_check = Some(check);
        self
    }

    pub fn with_scope_resolver(mut self, resolver: Arc<dyn ScopeResolver>) -> Self {
        self.scope_resolver = Some(resolver);
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The JWKS cache, when validating JWTs.
    pub fn jwks(&self) -> Option<&jwks::JwksCache> {
        match &self.validator {
            Validator::Jwt(v) => Some(v.jwks()),
            _ => None,
        }
    }

    /// The introspection cache, when introspecting.
    pub fn introspection_cache(&self) -> Option<&introspection::IntrospectionCache> {
        match &self.validator {
            Validator::Introspection(i) => Some(i.cache()),
            _ => None,
        }
    }

    /// Decides one request. Never panics on input; every failure is a
    /// [`Rejection`], and no rejection becomes an Allow.
    pub async fn authorize(&self, event: &AuthorizerEvent) -> Decision {
        let mut token_hash = None;
        let mut validated = None;
        let result = self.decide(event, &mut token_hash, &mut validated).await;
        let deny_response = match &result {
            Err(rejection) if rejection.status() == Status::Forbidden => {
                self.deny_response(rejection, event, validated.as_deref())
            }
            _ => None,
        };
        Decision { result, deny_response, token_hash }
    }

    /// The decision itself. `token_hash` and `validated` (the token, once it
    /// is known to be genuine) are filled in as they become known, for the
    /// log line and for building a Deny.
    async fn decide(
        &self,
        event: &AuthorizerEvent,
        token_hash: &mut Option<String>,
        validated: &mut Option<Arc<TokenInfo>>,
    ) -> Result<AuthorizerResponse, Rejection> {
        // 1. Which route is being called.
        let raw_arn = event.method_arn().ok_or(Rejection::BadMethodArn)?;
        let arn = MethodArn::parse(raw_arn).map_err(|_| Rejection::BadMethodArn)?;

        // 2. The bearer token (RFC 6750 §2.1), refused early when oversized.
        let token = event.bearer_token()?;
        if token.len() > self.config.max_token_bytes {
            return Err(Rejection::TokenTooLarge);
        }
        let token_digest = introspection::token_key(token);
        *token_hash = Some(short_hex(&token_digest));

        // 3. The client certificate of the mTLS connection, if any.
        let client_cert = event.client_cert();
        let thumbprint = client_cert.map(|c| self.thumbprints.thumbprint(&c.pem)).transpose()?;
        if let Some(allowlist) = &self.config.cert_allowlist {
            let permitted = matches!((client_cert, &thumbprint), (Some(c), Some(t)) if allowlist.permits(c, t));
            if !permitted {
                return Err(Rejection::CertificateNotAllowed);
            }
        }

        // 4. What this route requires.
        let custom_requirement = self.scope_resolver.as_ref().and_then(|r| r.requirement(&arn));
        let requirements = || self.requirements(&arn, custom_requirement.as_ref());

        // 5. Is the token genuine, current and meant for us?
        let info: Arc<TokenInfo> = match &self.validator {
            Validator::Jwt(verifier) => Arc::new(verifier.verify(token).await?),
            Validator::Introspection(introspector) => introspector.introspect(token, &token_digest).await?,
            Validator::Authlete(client) => {
                let scopes = authlete_scopes(requirements());
                let pem = client_cert.map(|c| c.pem.as_str());
                match client.introspect(token, &scopes, pem).await? {
                    AuthleteVerdict::Ok(info) => Arc::new(info),
                    AuthleteVerdict::Unauthorized { .. } => {
                        return Err(Rejection::AuthleteUnauthorized);
                    }
                    AuthleteVerdict::Forbidden { challenge } => {
                        return Err(Rejection::AuthleteForbidden { challenge });
                    }
                }
            }
        };

        // 6. Is it being used by the client it was issued to (RFC 8705)?
        let bound_to = binding::check(self.config.binding, info.cnf_x5t_s256.as_deref(), thumbprint.as_ref())?;

        // From here on a refusal is a Deny that can name the token's subject.
        *validated = Some(info.clone());

        // 7. The library user's own checks.
        if let Some(check) = &self.claim_check {
            check.check(&info, &arn).map_err(|failure| match failure {
                ClaimCheckFailure::Unauthorized(why) => Rejection::ClaimCheck(why),
                ClaimCheckFailure::Forbidden(why) => Rejection::ClaimCheckForbidden(why),
            })?;
        }

        // 8. Does it carry the scopes this route requires?
        for requirement in requirements() {
            if !requirement.is_satisfied_by(|s| info.has_scope(s)) {
                return Err(match requirement {
                    Requirement::Deny => Rejection::RouteDenied,
                    other => Rejection::InsufficientScope { scopes: other.scopes().to_vec() },
                });
            }
        }

        // 9. Allow, with a policy that stays right if API Gateway caches it.
        Ok(self.response(Effect::Allow, &arn, raw_arn, &info, bound_to, None))
    }

    /// Requirements of this request: the custom resolver's, or every
    /// matching route's, or the default rule. An iterator, not a collection:
    /// the per-request path neither allocates nor clones scope lists here.
    fn requirements<'a>(
        &'a self,
        arn: &'a MethodArn<'_>,
        custom: Option<&'a Requirement>,
    ) -> impl Iterator<Item = &'a Requirement> + 'a {
        let table = &self.config.routes;
        let from_table = custom.is_none().then(|| {
            let mut matching = table.matching(arn.resource).map(|route| &route.requirement).peekable();
            let fallback = matching.peek().is_none().then_some(&table.default);
            matching.chain(fallback)
        });
        custom.into_iter().chain(from_table.into_iter().flatten())
    }

    fn response(
        &self,
        effect: Effect,
        arn: &MethodArn<'_>,
        raw_arn: &str,
        info: &TokenInfo,
        bound_to: Option<&Thumbprint>,
        challenge: Option<String>,
    ) -> AuthorizerResponse {
        let table = &self.config.routes;
        let has = |s: &str| info.has_scope(s);
        let policy_document = policy::build(
            self.config.policy_shape,
            arn,
            raw_arn,
            effect,
            table,
            |index| table.routes[index].requirement.is_satisfied_by(has),
            table.default.is_satisfied_by(has),
        );
        let join = |items: &[String]| (!items.is_empty()).then(|| items.join(" "));
        AuthorizerResponse {
            principal_id: info.principal().unwrap_or("unknown").to_owned(),
            policy_document,
            context: Context {
                sub: info.sub.clone(),
                client_id: info.client_id.clone(),
                scope: join(&info.scopes),
                exp: info.exp,
                iss: info.iss.clone(),
                aud: join(&info.aud),
                cert_thumbprint: bound_to.map(|t| t.0.clone()),
                challenge,
            },
        }
    }

    /// The Deny answer for a 403, or `None` if the event has no usable ARN
    /// (then the caller answers 500: still closed).
    fn deny_response(
        &self,
        rejection: &Rejection,
        event: &AuthorizerEvent,
        info: Option<&TokenInfo>,
    ) -> Option<AuthorizerResponse> {
        let raw_arn = event.method_arn()?;
        let arn = MethodArn::parse(raw_arn).ok()?;
        let challenge = rejection.challenge(&self.config.realm);
        if let Some(info) = info {
            return Some(self.response(Effect::Deny, &arn, raw_arn, info, None, Some(challenge)));
        }
        // No token of ours to describe (a certificate refused before the
        // token was looked at, or Authlete's own refusal). A refused
        // certificate is refused everywhere; Authlete's FORBIDDEN is about
        // this route only, so other routes must not be denied by a cached copy.
        let resource = match rejection {
            Rejection::CertificateNotAllowed => format!("{}*/*/*", arn.api_prefix),
            _ => raw_arn.to_owned(),
        };
        Some(AuthorizerResponse {
            principal_id: "unknown".to_owned(),
            policy_document: policy::PolicyDocument {
                version: "2012-10-17",
                statements: vec![policy::Statement {
                    action: "execute-api:Invoke",
                    effect: Effect::Deny,
                    resources: vec![resource],
                }],
            },
            context: Context { challenge: Some(challenge), ..Context::default() },
        })
    }
}

/// Authlete checks "all of" the scopes it is given; an any-of requirement is
/// checked here instead, on the scopes Authlete returns.
fn authlete_scopes<'a>(requirements: impl Iterator<Item = &'a Requirement>) -> Vec<String> {
    requirements
        .filter_map(|r| match r {
            Requirement::AllOf(scopes) => Some(scopes.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// First 12 hex digits of the token's SHA-256: enough to correlate log
/// lines, useless to reconstruct the token.
fn short_hex(digest: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(12);
    for byte in &digest[..6] {
        hex.push(HEX[usize::from(byte >> 4)] as char);
        hex.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    hex
}

/// The Lambda-facing error: its message is exactly what API Gateway expects.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// API Gateway turns exactly this message into a 401.
    #[error("Unauthorized")]
    Unauthorized,
    /// Anything else becomes a 500.
    #[error("Internal authorizer error")]
    Internal,
}

/// `lambda_runtime` reports the Diagnostic's `error_message` as the Lambda
/// error's `errorMessage`, which API Gateway compares with "Unauthorized".
impl From<LambdaError> for lambda_runtime::Diagnostic {
    fn from(error: LambdaError) -> Self {
        lambda_runtime::Diagnostic { error_type: "Authorizer".to_owned(), error_message: error.to_string() }
    }
}

impl Decision {
    /// What the Lambda function returns: the Allow or Deny answer, or an
    /// error whose message API Gateway maps to 401 or 500.
    pub fn into_lambda_result(self) -> Result<AuthorizerResponse, LambdaError> {
        match self.result {
            Ok(response) => Ok(response),
            Err(rejection) => match (rejection.status(), self.deny_response) {
                (Status::Forbidden, Some(response)) => Ok(response),
                (Status::Unauthorized, _) => Err(LambdaError::Unauthorized),
                // A Deny we could not build a response for stays closed as a 500.
                (Status::Forbidden, None) | (Status::ServerError, _) => Err(LambdaError::Internal),
            },
        }
    }
}

/// Runs one invocation and writes its decision log line.
pub async fn handle(
    authorizer: &Authorizer,
    event: &AuthorizerEvent,
    request_id: &str,
) -> Result<AuthorizerResponse, LambdaError> {
    let started = Instant::now();
    let decision = authorizer.authorize(event).await;
    let principal = match (&decision.result, &decision.deny_response) {
        (Ok(r), _) | (Err(_), Some(r)) => Some(r.principal_id.as_str()),
        _ => None,
    };
    tracing::info!(
        request_id,
        method_arn = event.method_arn().unwrap_or(""),
        decision = decision.label(),
        reason = decision.reason(),
        principal = principal.unwrap_or(""),
        token_hash = decision.token_hash.as_deref().unwrap_or(""),
        latency_us = started.elapsed().as_micros() as u64,
        detail = %decision.result.as_ref().err().map(ToString::to_string).unwrap_or_default(),
        "authorization decision"
    );
    decision.into_lambda_result()
}
