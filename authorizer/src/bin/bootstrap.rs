//! The Lambda function: configuration and keys at init, then one decision per
//! invocation. All logic lives in the `authorizer` library.

use std::sync::Arc;

use authorizer::{Authorizer, Config};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::value::RawValue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    authorizer::telemetry::init();

    let config = Config::from_env().map_err(|e| {
        tracing::error!(variable = %e.variable, "invalid configuration: {e}");
        e
    })?;
    let authorizer = Arc::new(Authorizer::new(config).await.map_err(|e| {
        tracing::error!("initialisation failed: {e}");
        e
    })?);

    // The event arrives as raw JSON and is parsed by the library: were the
    // runtime to parse it, its error message could quote a token.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let authorizer = authorizer.clone();
        async move { authorizer::handle_json(&authorizer, event.payload.get(), &event.context.request_id).await }
    }))
    .await
}
