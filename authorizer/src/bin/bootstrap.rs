//! The Lambda function: configuration and keys at init, then one decision per
//! invocation. All logic lives in the `authorizer` library.

use std::sync::Arc;

use authorizer::Authorizer;
use authorizer::request::Incoming;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    authorizer::telemetry::init();

    // The environment's variables, and the secrets Secrets Manager holds for it.
    let config = authorizer::secrets::config_at_init(&authorizer::Clock::system()).await.map_err(|e| {
        tracing::error!(variable = %e.variable, "invalid configuration: {e}");
        e
    })?;
    let authorizer = Arc::new(Authorizer::new(config).await.map_err(|e| {
        tracing::error!("initialisation failed: {e}");
        e
    })?);

    // `Incoming` never fails to parse with a message that quotes the event.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Incoming>| {
        let authorizer = authorizer.clone();
        async move { authorizer::handle_incoming(&authorizer, &event.payload, &event.context.request_id).await }
    }))
    .await
}
