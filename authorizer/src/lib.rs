//! An API Gateway REQUEST authorizer for OAuth 2.0 access tokens, with
//! RFC 8705 certificate binding and RFC 9449 DPoP.
//!
//! ```no_run
//! # async fn example(event: authorizer::request::AuthorizerEvent) -> Result<(), Box<dyn std::error::Error>> {
//! let config = authorizer::Config::from_env()?;       // every setting checked here
//! let authorizer = authorizer::Authorizer::new(config).await?; // discovery, JWKS fetched here
//! let decision = authorizer.authorize(&event).await;  // per request: no I/O but the IdP's and the DPoP replay table's
//! # Ok(()) }
//! ```
//!
//! The per-request path is [`Authorizer::authorize`], readable top to bottom.
//! Everything expensive (configuration, HTTP client, keys) is built in
//! [`Authorizer::new`].

pub mod algorithms;
pub mod arn;
pub mod authlete;
pub mod aws;
pub mod binding;
pub mod clock;
pub mod config;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod http;
pub mod introspection;
pub mod jwks;
pub mod jwt;
pub mod lambda;
pub mod policy;
pub mod replay_store;
pub mod request;
pub mod response;
pub mod routes;
pub mod secrets;
pub mod telemetry;
pub mod token;

use std::sync::Arc;

pub use clock::{Clock, ManualClock};
pub use config::{Config, ConfigError};
pub use error::{Rejection, Status};
pub use lambda::{LambdaError, handle, handle_incoming};
pub use request::AuthorizerEvent;
pub use response::AuthorizerResponse;
pub use token::TokenInfo;

use arn::MethodArn;
use authlete::{AuthleteClient, AuthleteVerdict};
use binding::{Possession, Presented};
use config::{PolicyShape, Validation};
use dpop::DpopMode;
use dpop::{DpopError, DpopVerifier, ProofContext, VerifiedProof};
use introspection::{Introspector, TokenKey};
use jwt::JwtVerifier;
use policy::{Effect, PolicyDocument};
use replay_store::{ReplayStore, SharedReplayStore};
use request::{ClientCert, Credentials, Scheme};
use response::Context;
use routes::Requirement;

/// A library user's extra check on a validated token (cf. aws-jwt-verify's
/// `customJwtCheck`): runs after signature, claims and binding are verified.
///
/// With a check installed, answers name only the request's own method ARN
/// (the `request` policy shape): the check decided about this request only,
/// and a cached policy must not allow what it never saw.
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
///
/// As with [`ClaimCheck`], answers then name only the request's method ARN.
pub trait ScopeResolver: Send + Sync {
    fn requirement(&self, request: &MethodArn<'_>) -> Option<Requirement>;
}

/// Why the function could not start: its configuration, or what init
/// fetches with it (discovery, the JWKS, the HTTP client's CAs).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Http(#[from] http::InitError),
    #[error("TOKEN_ISSUER: discovering the identity provider's endpoints: {0}")]
    Discovery(#[from] discovery::DiscoveryError),
    #[error("the discovery document of {issuer} names no {endpoint}; set {variable}")]
    NotDiscovered { issuer: String, endpoint: &'static str, variable: &'static str },
    #[error("fetching the JWKS at start-up: {0}")]
    Jwks(#[from] http::FetchError),
}

enum Validator {
    Jwt(JwtVerifier),
    Introspection(Introspector),
    JwtOrIntrospection(JwtVerifier, Introspector),
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
    dpop: DpopVerifier,
    /// `algs` of DPoP challenges, built once.
    dpop_algs: String,
    thumbprints: binding::ThumbprintCache,
    claim_check: Option<Arc<dyn ClaimCheck>>,
    scope_resolver: Option<Arc<dyn ScopeResolver>>,
}

/// What one request is, once its ARN and credentials have been read.
struct Request<'a> {
    event: &'a AuthorizerEvent,
    arn: MethodArn<'a>,
    credentials: Credentials<'a>,
    token_key: TokenKey,
}

/// A refusal, with the Deny answer when it is a 403.
struct Refusal {
    rejection: Rejection,
    deny: Option<AuthorizerResponse>,
}

impl<E: Into<Rejection>> From<E> for Refusal {
    fn from(error: E) -> Self {
        Refusal { rejection: error.into(), deny: None }
    }
}

impl Authorizer {
    /// Builds the HTTP client, runs discovery if an endpoint was left to it,
    /// and, for JWTs, fetches the JWKS: a function that cannot reach its keys
    /// fails its init rather than its requests.
    pub async fn new(config: Config) -> Result<Authorizer, InitError> {
        Authorizer::with_clock(config, Clock::system()).await
    }

    /// [`Authorizer::new`], reading the time from `clock` (tests move a
    /// [`ManualClock`] instead of waiting).
    pub async fn with_clock(config: Config, clock: Clock) -> Result<Authorizer, InitError> {
        // Only a shared replay store calls AWS per request: nothing read otherwise.
        let aws = match config.dpop.replay_store {
            ReplayStore::Memory => None,
            ReplayStore::DynamoDb { .. } => Some(aws::AwsAccess::from_env(replay_store::VARIABLE)?),
        };
        Authorizer::with_aws(config, clock, aws).await
    }

    /// [`Authorizer::with_clock`], calling AWS (the shared replay store) with
    /// `aws` rather than the process environment's region and credentials.
    pub async fn with_aws(config: Config, clock: Clock, aws: Option<aws::AwsAccess>) -> Result<Authorizer, InitError> {
        let http = http::client(config.http_timeout)?;
        let shared_replay_store = match (&config.dpop.replay_store, aws) {
            (ReplayStore::Memory, _) => None,
            (ReplayStore::DynamoDb { table }, Some(aws)) => {
                Some(SharedReplayStore::new(table.clone(), aws, http.clone(), clock.clone(), config.http_timeout))
            }
            (ReplayStore::DynamoDb { .. }, None) => {
                let problem = "needs the function's AWS region and credentials";
                return Err(ConfigError::new(replay_store::VARIABLE, problem).into());
            }
        };
        let discovered = match &config.discovery {
            Some(issuer) => Some((issuer.as_str(), discovery::discover(&http, issuer).await?)),
            None => None,
        };
        let jwks_uri = |configured: &Option<reqwest::Url>| {
            resolve(configured, &discovered, |e| e.jwks_uri.clone(), "jwks_uri", "JWKS_URI")
        };
        let introspection_endpoint = |configured: &Option<reqwest::Url>| {
            resolve(
                configured,
                &discovered,
                |e| e.introspection_endpoint.clone(),
                "introspection_endpoint",
                "INTROSPECTION_ENDPOINT",
            )
        };
        let validator = match &config.validation {
            Validation::Jwt(jwt) => {
                Validator::Jwt(JwtVerifier::new(jwt, jwks_uri(&jwt.jwks_uri)?, http, clock.clone()))
            }
            Validation::Introspection(settings) => {
                let endpoint = introspection_endpoint(&settings.endpoint)?;
                Validator::Introspection(Introspector::new(settings.clone(), endpoint, http, clock.clone()))
            }
            Validation::JwtOrIntrospection(jwt, settings) => {
                let verifier = JwtVerifier::new(jwt, jwks_uri(&jwt.jwks_uri)?, http.clone(), clock.clone());
                let endpoint = introspection_endpoint(&settings.endpoint)?;
                Validator::JwtOrIntrospection(
                    verifier,
                    Introspector::new(settings.clone(), endpoint, http, clock.clone()),
                )
            }
            Validation::Authlete(settings) => Validator::Authlete(AuthleteClient::new(settings.clone(), http)),
        };
        if let Validator::Jwt(verifier) | Validator::JwtOrIntrospection(verifier, _) = &validator {
            verifier.jwks().hydrate().await?;
        }
        Ok(Authorizer {
            dpop: DpopVerifier::new(&config.dpop, clock, shared_replay_store),
            dpop_algs: algorithms::names(&config.dpop.algorithms),
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
            Validator::Jwt(v) | Validator::JwtOrIntrospection(v, _) => Some(v.jwks()),
            _ => None,
        }
    }

    /// The introspection cache, when introspecting.
    pub fn introspection_cache(&self) -> Option<&introspection::IntrospectionCache> {
        match &self.validator {
            Validator::Introspection(i) | Validator::JwtOrIntrospection(_, i) => Some(i.cache()),
            _ => None,
        }
    }

    /// Decides one request. Never panics on input; every failure is a
    /// [`Rejection`], and no rejection becomes an Allow.
    pub async fn authorize(&self, event: &AuthorizerEvent) -> Decision {
        let request = match self.read(event) {
            Ok(request) => request,
            Err(rejection) => return Decision { result: Err(rejection), deny_response: None, token_hash: None },
        };
        let token_hash = Some(short_hex(&request.token_key));
        match self.decide(&request).await {
            Ok(response) => Decision { result: Ok(response), deny_response: None, token_hash },
            Err(Refusal { rejection, deny }) => Decision { result: Err(rejection), deny_response: deny, token_hash },
        }
    }

    /// Which route is called, with which token: refused early when the ARN
    /// could not be named in a policy or the token is oversized.
    fn read<'a>(&self, event: &'a AuthorizerEvent) -> Result<Request<'a>, Rejection> {
        let arn = MethodArn::parse(event.method_arn().ok_or(Rejection::NoMethodArn)?)?;
        let credentials = event.credentials()?;
        if credentials.token.len() > self.config.max_token_bytes {
            return Err(Rejection::TokenTooLarge);
        }
        Ok(Request { event, arn, credentials, token_key: introspection::token_key(credentials.token) })
    }

    /// The decision itself, steps in the order they are taken.
    async fn decide(&self, request: &Request<'_>) -> Result<AuthorizerResponse, Refusal> {
        let arn = &request.arn;
        let scheme = request.credentials.scheme;

        // 1. The client certificate of the mTLS connection, if any.
        let client_cert = request.event.client_cert();
        let thumbprint = client_cert.map(|c| self.thumbprints.thumbprint(&c.pem)).transpose()?;
        if let Some(allowlist) = &self.config.cert_allowlist {
            let permitted = matches!((client_cert, &thumbprint), (Some(c), Some(t)) if allowlist.permits(c, t));
            if !permitted {
                // Not about a route: refused everywhere (the deployer makes
                // sure the cache is keyed by the certificate).
                return Err(self.deny(Rejection::CertificateNotAllowed, scheme, policy::deny_everywhere(arn), None));
            }
        }

        // 2. The DPoP proof, when the token is presented as DPoP (RFC 9449).
        let proof = match scheme {
            Scheme::Dpop => Some(self.verify_proof(request)?),
            Scheme::Bearer => None,
        };

        // 3. Is the token genuine, current and meant for us?
        let info = self.validate(request, client_cert).await?;

        // 4. Is it used by the holder it was issued to (certificate, DPoP key)?
        let presented =
            Presented { scheme, certificate: thumbprint.as_ref(), dpop_key: proof.as_ref().map(|p| p.jkt.as_str()) };
        let possession = binding::check(self.config.binding, self.config.dpop.mode, &info.cnf, presented)?;

        // 5. A proof is good for one request only (on every instance, with a shared replay store).
        if let Some(proof) = &proof {
            self.dpop.remember(proof).await?;
        }

        // 6. The library user's own checks.
        if let Some(check) = &self.claim_check {
            check.check(&info, arn).map_err(|failure| match failure {
                ClaimCheckFailure::Unauthorized(why) => Refusal::from(Rejection::ClaimCheck(why)),
                ClaimCheckFailure::Forbidden(why) => {
                    let rejection = Rejection::ClaimCheckForbidden(why);
                    let policy = self.policy(arn, &info, Effect::Deny);
                    self.deny(rejection, scheme, policy, Some((&info, &possession)))
                }
            })?;
        }

        // 7. Does it carry the scopes this route requires?
        let has = |scope: &str| info.has_scope(scope);
        let custom = self.scope_resolver.as_ref().and_then(|r| r.requirement(arn));
        let unmet = match &custom {
            Some(requirement) => (!requirement.is_satisfied_by(has)).then_some(requirement),
            None => self.config.routes.requirements(arn).find(|r| !r.is_satisfied_by(has)),
        };
        if let Some(requirement) = unmet {
            let rejection = match requirement {
                Requirement::Deny => Rejection::RouteDenied,
                other => Rejection::InsufficientScope { scopes: other.scopes().to_vec() },
            };
            let policy = self.policy(arn, &info, Effect::Deny);
            return Err(self.deny(rejection, scheme, policy, Some((&info, &possession))));
        }

        // 8. Allow, with a policy that stays right if API Gateway caches it.
        let policy = self.policy(arn, &info, Effect::Allow);
        Ok(answer(policy, Some((&info, &possession)), None))
    }

    /// Checks the request's DPoP proof against the request itself.
    fn verify_proof(&self, request: &Request<'_>) -> Result<VerifiedProof, Rejection> {
        if self.config.dpop.mode == DpopMode::Off {
            return Err(DpopError::NotAccepted.into());
        }
        let proof = request.event.dpop_proof()?.ok_or(DpopError::NoProof)?;
        let (Some(method), Some(url)) = (request.event.http_method(), request.event.request_url()) else {
            // A TOKEN event carries neither: DPoP cannot be checked there.
            return Err(DpopError::NoProof.into());
        };
        let context = ProofContext { method, url: &url, access_token: request.credentials.token, now: self.dpop.now() };
        Ok(self.dpop.verify(proof, &context)?)
    }

    /// Validates the token the way the configuration says.
    async fn validate(
        &self,
        request: &Request<'_>,
        client_cert: Option<&ClientCert>,
    ) -> Result<Arc<TokenInfo>, Refusal> {
        let token = request.credentials.token;
        let info = match &self.validator {
            Validator::Jwt(verifier) => Arc::new(verifier.verify(token).await?),
            Validator::Introspection(introspector) => introspector.introspect(token, &request.token_key).await?,
            // A JWT that fails here is refused: it is never retried by introspection.
            Validator::JwtOrIntrospection(verifier, _) if jwt::looks_like_jwt(token) => {
                Arc::new(verifier.verify(token).await?)
            }
            Validator::JwtOrIntrospection(_, introspector) => {
                introspector.introspect(token, &request.token_key).await?
            }
            Validator::Authlete(client) => match client.introspect(token, client_cert.map(|c| c.pem.as_str())).await? {
                AuthleteVerdict::Ok(info) => info,
                AuthleteVerdict::Unauthorized => return Err(Rejection::AuthleteUnauthorized.into()),
                AuthleteVerdict::Forbidden { challenge } => {
                    let arn = &request.arn;
                    let rejection = Rejection::AuthleteForbidden { challenge };
                    let scheme = request.credentials.scheme;
                    return Err(self.deny(rejection, scheme, policy::deny_everywhere(arn), None));
                }
            },
        };
        Ok(info)
    }

    /// The policy of an answer about `info` on `arn`. With a hook installed,
    /// or the `request` shape configured, only this ARN is named: nothing is
    /// said about routes nobody decided on.
    fn policy(&self, arn: &MethodArn<'_>, info: &TokenInfo, effect: Effect) -> PolicyDocument {
        let hooked = self.claim_check.is_some() || self.scope_resolver.is_some();
        if hooked || self.config.policy_shape == PolicyShape::Request {
            return policy::this_request(arn, effect);
        }
        policy::for_table(arn, &self.config.routes, |requirement| requirement.is_satisfied_by(|s| info.has_scope(s)))
    }

    /// A 403: the rejection with its Deny answer and challenge.
    fn deny(
        &self,
        rejection: Rejection,
        scheme: Scheme,
        policy: PolicyDocument,
        token: Option<(&TokenInfo, &Possession)>,
    ) -> Refusal {
        let challenge = rejection.challenge(&self.config.realm, scheme, &self.dpop_algs);
        Refusal { deny: Some(answer(policy, token, Some(challenge))), rejection }
    }
}

/// The endpoint to use: the configured one, else the discovered one.
fn resolve(
    configured: &Option<reqwest::Url>,
    discovered: &Option<(&str, discovery::Endpoints)>,
    pick: impl Fn(&discovery::Endpoints) -> Option<reqwest::Url>,
    endpoint: &'static str,
    variable: &'static str,
) -> Result<reqwest::Url, InitError> {
    if let Some(url) = configured {
        return Ok(url.clone());
    }
    let (issuer, endpoints) =
        discovered.as_ref().ok_or(InitError::NotDiscovered { issuer: String::new(), endpoint, variable })?;
    pick(endpoints).ok_or_else(|| InitError::NotDiscovered { issuer: (*issuer).to_owned(), endpoint, variable })
}

/// The answer API Gateway receives: policy, principal and flat context.
fn answer(
    policy_document: PolicyDocument,
    token: Option<(&TokenInfo, &Possession)>,
    challenge: Option<String>,
) -> AuthorizerResponse {
    let join = |items: &[String]| items.join(" ");
    let context = match token {
        None => Context { challenge, ..Context::default() },
        Some((info, possession)) => Context {
            sub: info.sub.clone().unwrap_or_default(),
            client_id: info.client_id.clone().unwrap_or_default(),
            scope: join(&info.scopes),
            exp: info.exp,
            iss: info.iss.clone().unwrap_or_default(),
            aud: join(&info.aud),
            cert_thumbprint: possession.certificate.clone().unwrap_or_default(),
            dpop_thumbprint: possession.dpop_key.clone().unwrap_or_default(),
            challenge,
        },
    };
    let principal_id = token.and_then(|(info, _)| info.principal()).unwrap_or("unknown").to_owned();
    AuthorizerResponse { principal_id, policy_document, context }
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
