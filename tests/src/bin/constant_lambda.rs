//! The reference point for the runtime benchmark: a `lambda_runtime` function
//! that answers a constant Allow policy and does no work at all. What
//! `bootstrap` costs beyond it is what the authorizer itself costs.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<_, lambda_runtime::Error>(json!({
            "principalId": "user",
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}
            ]}
        }))
    }))
    .await
}
