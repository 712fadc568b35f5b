//! The Lambda function: configuration and keys at init, then one decision per
//! invocation. All logic lives in the `authorizer` library.

use std::sync::Arc;

use authorizer::{Authorizer, AuthorizerEvent, Config};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();

    let config = Config::from_env().map_err(|e| {
        tracing::error!(variable = %e.variable, "invalid configuration: {e}");
        e
    })?;
    let authorizer = Arc::new(Authorizer::new(config).await.map_err(|e| {
        tracing::error!("initialisation failed: {e}");
        e
    })?);

    lambda_runtime::run(service_fn(move |event: LambdaEvent<AuthorizerEvent>| {
        let authorizer = authorizer.clone();
        async move { authorizer::handle(&authorizer, &event.payload, &event.context.request_id).await }
    }))
    .await
}
