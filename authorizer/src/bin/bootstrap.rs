//! The Lambda function: configuration and keys at init, then one decision per
//! invocation. All logic lives in the `authorizer` library.

use std::sync::Arc;

use authorizer::request::Incoming;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    authorizer::telemetry::init();

    // The environment's variables and their secrets, then keys and clients.
    let authorizer = Arc::new(authorizer::lambda::init(&authorizer::Clock::system()).await?);

    // `Incoming` never fails to parse with a message that quotes the event.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Incoming>| {
        let authorizer = authorizer.clone();
        async move { authorizer::lambda::handle_incoming(&authorizer, &event.payload, &event.context.request_id).await }
    }))
    .await
}
