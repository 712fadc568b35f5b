//! The Lambda adapter: what the `bootstrap` binary runs. Init (the
//! configuration with its secrets, then [`Authorizer::new`]), and per
//! invocation the decision, its log line, and the answer in the form Lambda
//! and API Gateway expect: an Allow or Deny document, or an error whose
//! message API Gateway maps to 401 ("Unauthorized") or 500.

use std::time::Instant;

use crate::error::Status;
use crate::request::{self, AuthorizerEvent};
use crate::response::AuthorizerResponse;
use crate::{Authorizer, Clock, Decision, InitError};

/// Everything expensive, once per instance: the environment's variables and
/// the secrets they point at, then keys, clients and discovery. Every
/// failure is logged (a configuration error naming its variable) and
/// returned: the function does not start.
pub async fn init(clock: &Clock) -> Result<Authorizer, InitError> {
    let config = crate::secrets::config_at_init(clock).await.map_err(|e| {
        tracing::error!(variable = %e.variable, "invalid configuration: {e}");
        InitError::from(e)
    })?;
    Authorizer::new(config).await.inspect_err(|e| tracing::error!("initialisation failed: {e}"))
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
    // API Gateway's request id too: what its access log and `deployer verify` know the request by.
    let api_request_id = event.request_context.as_ref().and_then(|c| c.request_id.as_deref()).unwrap_or("");
    tracing::info!(
        request_id,
        api_request_id,
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

/// [`handle`] for what the runtime handed over. An event that did not
/// parse is answered 500 and logged without any of its content.
pub async fn handle_incoming(
    authorizer: &Authorizer,
    incoming: &request::Incoming,
    request_id: &str,
) -> Result<AuthorizerResponse, LambdaError> {
    match incoming {
        request::Incoming::Event(event) => handle(authorizer, event, request_id).await,
        request::Incoming::Unreadable => {
            tracing::error!(request_id, decision = "error", reason = "unreadable_event", "authorization decision");
            Err(LambdaError::Internal)
        }
    }
}
