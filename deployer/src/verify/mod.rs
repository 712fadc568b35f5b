//! `deployer verify`: real requests to the deployed stage through its custom
//! domain (or to `deployer local`), each checking one thing the stack
//! promises. Everything this project knows of API Gateway's behaviour at
//! the edge rests on documentation and stand-ins; this shows it on the
//! account itself, after every `apply`, in the pipeline.
//!
//! - `checks`: the checks, in the order a request meets what they check;
//! - `client`: how the API is reached (URL, address, server CA, counted requests);
//! - `legacy_tls`: whether the server takes a TLS 1.1 hello;
//! - `facts`: what the stage's access log says of the requests sent;
//! - `tokens`: access tokens from the team's token command;
//! - `report`: the outcome, as a table, JSON or JUnit XML.
//!
//! It never prints a token or a key.

pub mod checks;
pub mod client;
pub mod facts;
pub mod legacy_tls;
pub mod report;
pub mod tokens;

use std::time::Instant;

pub use report::{Check, Outcome, Report};

use crate::stack::Stack;

/// The stage's URL through the custom domain: `https://NAME/BASE_PATH`.
pub fn default_url(stack: &Stack) -> anyhow::Result<url::Url> {
    let Some(domain) = &stack.domain else {
        anyhow::bail!("the stack has no custom domain: give --url (the stage's execute-api URL)")
    };
    let base = if domain.base_path.is_empty() { String::new() } else { format!("/{}", domain.base_path) };
    Ok(url::Url::parse(&format!("https://{}{base}", domain.name))?)
}

/// The default endpoint of the stack's API in `region`, from its id.
pub fn execute_api_url(api_id: &str, region: &str, stage: &str) -> anyhow::Result<url::Url> {
    Ok(url::Url::parse(&format!("https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"))?)
}

/// Runs every check.
pub async fn verify(inputs: &checks::Inputs<'_>) -> anyhow::Result<Report> {
    let started = Instant::now();
    let found = checks::run(inputs).await?;
    Ok(Report::new(inputs.target.base.to_string(), found, inputs.target.requests(), started.elapsed()))
}
