//! Why a request was not allowed, and the single mapping from that reason to
//! what API Gateway is told: 401, 403 (Deny) or 500.
//!
//! Every reason has a stable snake_case code for the decision log. This is
//! the only module that knows which reason gives which status, so the table in
//! docs/authorizer.md ("What API Gateway gets back") has one source to follow.

use crate::algorithms;
use crate::arn::BadMethodArn;
use crate::authlete::AuthleteError;
use crate::binding::BindingError;
use crate::dpop::DpopError;
use crate::dpop::{DpopMode, DpopSettings};
use crate::introspection::IntrospectionError;
use crate::jwks::{JwksError, KeyError};
use crate::jwt::JwtError;
use crate::request::{CredentialsError, Scheme};

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
    #[error(transparent)]
    BadMethodArn(#[from] BadMethodArn),
    #[error("the event has no method ARN")]
    NoMethodArn,
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
    Dpop(#[from] DpopError),
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
            BadMethodArn(_) | NoMethodArn => Status::ServerError,
            Jwt(JwtError::Keys(JwksError::Fetch(_))) => Status::ServerError,
            Introspection(IntrospectionError::Fetch(_) | IntrospectionError::BadResponse) => Status::ServerError,
            Authlete(_) => Status::ServerError,
            Dpop(DpopError::ReplayCacheFull | DpopError::ReplayStoreUnavailable) => Status::ServerError,
            Credentials(_) | TokenTooLarge | Jwt(_) | Introspection(_) | AuthleteUnauthorized | Dpop(_)
            | Binding(_) | ClaimCheck(_) => Status::Unauthorized,
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
            BadMethodArn(crate::arn::BadMethodArn::Malformed) | NoMethodArn => "bad_method_arn",
            BadMethodArn(crate::arn::BadMethodArn::Wildcard) => "method_arn_wildcard",
            BadMethodArn(crate::arn::BadMethodArn::DotSegment) => "method_arn_dot_segment",
            BadMethodArn(crate::arn::BadMethodArn::EncodedLiteral) => "method_arn_encoded_literal",
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
            Introspection(IntrospectionError::Refused) => "introspection_refused_token",
            Introspection(IntrospectionError::BadResponse) => "introspection_bad_response",
            Introspection(IntrospectionError::Audience) => "introspection_wrong_audience",
            Introspection(IntrospectionError::Issuer) => "introspection_wrong_issuer",
            Introspection(IntrospectionError::Fetch(_)) => "introspection_unavailable",
            AuthleteUnauthorized => "authlete_unauthorized",
            AuthleteForbidden { .. } => "authlete_forbidden",
            Authlete(_) => "authlete_unavailable",
            Dpop(e) => match e {
                DpopError::NotAccepted => "dpop_not_accepted",
                DpopError::NoProof => "dpop_no_proof",
                DpopError::Malformed => "dpop_malformed",
                DpopError::Type => "dpop_typ",
                DpopError::Algorithm => "dpop_algorithm_not_accepted",
                DpopError::Key => "dpop_bad_key",
                DpopError::Signature => "dpop_bad_signature",
                DpopError::MissingClaim => "dpop_missing_claim",
                DpopError::Method => "dpop_htm_mismatch",
                DpopError::Url => "dpop_htu_mismatch",
                DpopError::IssuedAt => "dpop_iat_out_of_window",
                DpopError::AccessTokenHash => "dpop_ath_mismatch",
                DpopError::Replayed => "dpop_replayed",
                DpopError::ReplayCacheFull => "dpop_replay_cache_full",
                DpopError::ReplayStoreUnavailable => "dpop_replay_store_unavailable",
            },
            Binding(e) => match e {
                BindingError::NoCertificate => "binding_no_certificate",
                BindingError::Mismatch => "binding_mismatch",
                BindingError::Unbound => "binding_required",
                BindingError::BadCertificate => "bad_client_certificate",
                BindingError::Unverifiable => "binding_unverifiable",
                BindingError::DpopBoundAsBearer => "dpop_bound_token_as_bearer",
                BindingError::NotDpopBound => "token_not_dpop_bound",
                BindingError::DpopKeyMismatch => "dpop_key_mismatch",
                BindingError::DpopRequired => "dpop_required",
            },
            CertificateNotAllowed => "client_certificate_not_allowed",
            InsufficientScope { .. } => "insufficient_scope",
            RouteDenied => "route_denied",
            ClaimCheck(_) => "claim_check_failed",
            ClaimCheckForbidden(_) => "claim_check_denied",
        }
    }

    /// The `WWW-Authenticate` value sent with a Deny (`context.authorizer.challenge`):
    /// RFC 6750 §3 for a Bearer request, RFC 9449 §7.1 (with `algs`) for a DPoP one.
    pub fn challenge(&self, realm: &str, scheme: Scheme, dpop_algs: &str) -> String {
        let (name, algs) = match scheme {
            Scheme::Bearer => ("Bearer", String::new()),
            Scheme::Dpop => ("DPoP", format!(", algs=\"{dpop_algs}\"")),
        };
        match self {
            Rejection::AuthleteForbidden { challenge: Some(challenge) } => challenge.clone(),
            Rejection::InsufficientScope { scopes } => format!(
                "{name} realm=\"{realm}\", error=\"insufficient_scope\", error_description=\"The request requires higher privileges than provided by the access token\", scope=\"{}\"{algs}",
                scopes.join(" ")
            ),
            _ => format!(
                "{name} realm=\"{realm}\", error=\"insufficient_scope\", error_description=\"{}\"{algs}",
                self.to_string().replace(['"', '\\'], "'")
            ),
        }
    }
}

/// The static `WWW-Authenticate` value of every 401. API Gateway passes no
/// authorizer context on a 401, so it cannot carry an error code (RFC 6750
/// §3.1, RFC 9449 §7.1 `invalid_dpop_proof`): it names the schemes the API
/// accepts, and for DPoP the algorithms a proof may use.
pub fn unauthorized_challenge(realm: &str, dpop: &DpopSettings) -> String {
    let bearer = format!("Bearer realm=\"{realm}\"");
    let dpop_challenge = || format!("DPoP realm=\"{realm}\", algs=\"{}\"", algorithms::names(&dpop.algorithms));
    match dpop.mode {
        DpopMode::Off => bearer,
        DpopMode::Allowed => format!("{bearer}, {}", dpop_challenge()),
        DpopMode::Required => dpop_challenge(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::Algorithm;

    #[test]
    fn unauthorized_challenges_name_the_accepted_schemes() {
        let dpop = |mode| DpopSettings { mode, algorithms: vec![Algorithm::ES256], ..DpopSettings::default() };
        assert_eq!(unauthorized_challenge("pets", &dpop(DpopMode::Off)), "Bearer realm=\"pets\"");
        assert_eq!(
            unauthorized_challenge("pets", &dpop(DpopMode::Allowed)),
            "Bearer realm=\"pets\", DPoP realm=\"pets\", algs=\"ES256\""
        );
        assert_eq!(unauthorized_challenge("pets", &dpop(DpopMode::Required)), "DPoP realm=\"pets\", algs=\"ES256\"");
    }

    #[test]
    fn deny_challenges_follow_the_request_scheme() {
        let rejection = Rejection::InsufficientScope { scopes: vec!["a".into(), "b".into()] };
        let bearer = rejection.challenge("r", Scheme::Bearer, "ES256");
        assert!(bearer.starts_with("Bearer realm=\"r\", error=\"insufficient_scope\""), "{bearer}");
        assert!(bearer.ends_with("scope=\"a b\""), "{bearer}");
        let dpop = rejection.challenge("r", Scheme::Dpop, "ES256 EdDSA");
        assert!(dpop.starts_with("DPoP realm=\"r\", error=\"insufficient_scope\""), "{dpop}");
        assert!(dpop.ends_with("algs=\"ES256 EdDSA\""), "{dpop}");
    }
}
