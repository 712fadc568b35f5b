//! Why a request was not allowed, and the single mapping from that reason to
//! what API Gateway is told: 401, 403 (Deny) or 500.
//!
//! Every reason has a stable snake_case code for the decision log. This is
//! the only module that knows which reason gives which status, so the README
//! table and the code cannot drift apart silently (see the tests below).

use crate::authlete::AuthleteError;
use crate::binding::BindingError;
use crate::introspection::IntrospectionError;
use crate::jwks::{JwksError, KeyError};
use crate::jwt::JwtError;
use crate::request::CredentialsError;

/// What API Gateway makes of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Error `Unauthorized` → HTTP 401.
    Unauthorized,
    /// Deny policy → HTTP 403, with the challenge in the context.
    Forbidden,
    /// Any other error → HTTP 500. Used when *we* cannot decide (identity
    /// provider down, broken configuration): never an Allow.
    ServerError,
}

#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("method ARN missing or malformed")]
    BadMethodArn,
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("token longer than the configured maximum")]
    TokenTooLarge,
    #[error(transparent)]
    Jwt(#[from] JwtError),
    #[error(transparent)]
    Introspection(#[from] IntrospectionError),
    #[error("Authlete refused the token")]
    AuthleteUnauthorized,
    #[error("Authlete denied the request")]
    AuthleteForbidden { challenge: Option<String> },
    #[error(transparent)]
    Authlete(#[from] AuthleteError),
    #[error(transparent)]
    Binding(#[from] BindingError),
    #[error("client certificate is not on the allowlist")]
    CertificateNotAllowed,
    #[error("token lacks the scopes this route requires")]
    InsufficientScope { scopes: Vec<String> },
    #[error("route is closed to every token")]
    RouteDenied,
    #[error("custom claim check refused the token: {0}")]
    ClaimCheck(String),
    #[error("custom claim check denied the request: {0}")]
    ClaimCheckForbidden(String),
}

impl Rejection {
    pub fn status(&self) -> Status {
        use Rejection::*;
        match self {
            BadMethodArn => Status::ServerError,
            Jwt(JwtError::Keys(JwksError::Fetch(_))) => Status::ServerError,
            Introspection(IntrospectionError::Fetch(_) | IntrospectionError::BadResponse) => Status::ServerError,
            Authlete(_) => Status::ServerError,
            Credentials(_) | TokenTooLarge | Jwt(_) | Introspection(_) | AuthleteUnauthorized | Binding(_)
            | ClaimCheck(_) => Status::Unauthorized,
            AuthleteForbidden { .. }
            | CertificateNotAllowed
            | InsufficientScope { .. }
            | RouteDenied
            | ClaimCheckForbidden(_) => Status::Forbidden,
        }
    }

    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        use Rejection::*;
        match self {
            BadMethodArn => "bad_method_arn",
            Credentials(CredentialsError::Missing) => "no_credentials",
            Credentials(CredentialsError::Multiple) => "multiple_credentials",
            Credentials(CredentialsError::Malformed) => "malformed_credentials",
            TokenTooLarge => "token_too_large",
            Jwt(e) => match e {
                JwtError::Malformed => "jwt_malformed",
                JwtError::Algorithm(_) => "jwt_algorithm_not_accepted",
                JwtError::Crit => "jwt_unsupported_crit",
                JwtError::Typ => "jwt_typ_not_at_jwt",
                JwtError::Signature => "jwt_bad_signature",
                JwtError::Expired => "token_expired",
                JwtError::NotYetValid => "token_not_yet_valid",
                JwtError::IssuedInFuture => "jwt_iat_in_future",
                JwtError::MissingClaim(_) => "jwt_missing_claim",
                JwtError::BadClaim(_) => "jwt_malformed_claim",
                JwtError::Issuer => "jwt_wrong_issuer",
                JwtError::Audience => "jwt_wrong_audience",
                JwtError::Keys(JwksError::Key(KeyError::UnknownKid)) => "jwks_unknown_kid",
                JwtError::Keys(JwksError::Key(KeyError::NoKid)) => "jwks_no_kid",
                JwtError::Keys(JwksError::Key(KeyError::AlgorithmMismatch)) => "jwks_alg_mismatch",
                JwtError::Keys(JwksError::Fetch(_)) => "jwks_unavailable",
            },
            Introspection(IntrospectionError::Inactive) => "token_inactive",
            Introspection(IntrospectionError::BadResponse) => "introspection_bad_response",
            Introspection(IntrospectionError::Audience) => "introspection_wrong_audience",
            Introspection(IntrospectionError::Issuer) => "introspection_wrong_issuer",
            Introspection(IntrospectionError::Fetch(_)) => "introspection_unavailable",
            AuthleteUnauthorized => "authlete_unauthorized",
            AuthleteForbidden { .. } => "authlete_forbidden",
            Authlete(_) => "authlete_unavailable",
            Binding(BindingError::NoCertificate) => "binding_no_certificate",
            Binding(BindingError::Mismatch) => "binding_mismatch",
            Binding(BindingError::Unbound) => "binding_required",
            Binding(BindingError::BadCertificate) => "bad_client_certificate",
            CertificateNotAllowed => "client_certificate_not_allowed",
            InsufficientScope { .. } => "insufficient_scope",
            RouteDenied => "route_denied",
            ClaimCheck(_) => "claim_check_failed",
            ClaimCheckForbidden(_) => "claim_check_denied",
        }
    }

    /// The RFC 6750 challenge sent with a Deny (`context.authorizer.challenge`).
    pub fn challenge(&self, realm: &str) -> String {
        match self {
            Rejection::AuthleteForbidden { challenge: Some(challenge) } => challenge.clone(),
            Rejection::InsufficientScope { scopes } => format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", error_description=\"The request requires higher privileges than provided by the access token\", scope=\"{}\"",
                scopes.join(" ")
            ),
            _ => format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", error_description=\"{}\"",
                self.to_string().replace(['"', '\\'], "'")
            ),
        }
    }
}
