//! The authorizer's Lambda function: code (a zip holding `bootstrap`),
//! runtime `provided.al2023`, handler, environment, timeout, memory,
//! architecture. Code is uploaded only when its SHA-256 changed; every
//! change waits until Lambda reports the update finished.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, LastUpdateStatus, Runtime, State};

use super::{Diff, OWNER_TAG, Resource};
use crate::aws::Aws;
use crate::stack::Setting;

pub struct Function {
    pub stack: String,
    pub name: String,
    pub role_arn: String,
    pub zip: Vec<u8>,
    /// base64(SHA-256(zip)), as Lambda reports `CodeSha256`.
    pub code_sha256: String,
    pub environment: BTreeMap<String, Setting>,
    pub timeout_seconds: i32,
    pub memory_mb: i32,
    pub architecture: &'static str,
}

#[derive(Debug)]
pub struct ObservedFunction {
    pub arn: String,
    pub code_sha256: String,
    pub role_arn: String,
    pub runtime: String,
    pub handler: String,
    pub environment: BTreeMap<String, String>,
    pub timeout_seconds: i32,
    pub memory_mb: i32,
    pub architecture: String,
    pub owner: Option<String>,
}

const RUNTIME: &str = "provided.al2023";
const HANDLER: &str = "bootstrap";

impl Function {
    pub fn arn(&self, aws: &Aws) -> String {
        format!("arn:aws:lambda:{}:{}:function:{}", aws.region, aws.account, self.name)
    }

    fn environment_values(&self) -> std::collections::HashMap<String, String> {
        self.environment.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect()
    }

    fn architecture(&self) -> Architecture {
        Architecture::from(self.architecture)
    }

    /// Polls until the function is Active and its last update Successful.
    async fn wait_ready(&self, aws: &Aws) -> anyhow::Result<()> {
        for attempt in 0..120 {
            let output = aws
                .lambda
                .get_function_configuration()
                .function_name(&self.name)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", crate::error::describe(&e)))?;
            let active = output.state().is_none_or(|s| *s == State::Active);
            let updated = output.last_update_status().is_none_or(|s| *s == LastUpdateStatus::Successful);
            if matches!(output.state(), Some(State::Failed))
                || matches!(output.last_update_status(), Some(LastUpdateStatus::Failed))
            {
                anyhow::bail!(
                    "Lambda reports the function failed: {}",
                    output.state_reason().or(output.last_update_status_reason()).unwrap_or("no reason given")
                );
            }
            if active && updated {
                return Ok(());
            }
            if attempt % 10 == 0 {
                eprintln!("    waiting for Lambda function {} to be ready...", self.name);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        anyhow::bail!("Lambda function {} was not ready after 2 minutes", self.name)
    }
}

impl Resource for Function {
    const KIND: &'static str = "lambda_function";
    type Observed = ObservedFunction;

    fn id(&self) -> String {
        self.name.clone()
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedFunction>> {
        let output = match aws.lambda.get_function().function_name(&self.name).send().await {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(None),
            Err(e) => anyhow::bail!("{}", crate::error::describe(&e)),
        };
        let c = output.configuration().context("GetFunction answered without configuration")?;
        let environment = c
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(Some(ObservedFunction {
            arn: c.function_arn().unwrap_or_default().to_owned(),
            code_sha256: c.code_sha256().unwrap_or_default().to_owned(),
            role_arn: c.role().unwrap_or_default().to_owned(),
            runtime: c.runtime().map(|r| r.as_str().to_owned()).unwrap_or_default(),
            handler: c.handler().unwrap_or_default().to_owned(),
            environment,
            timeout_seconds: c.timeout().unwrap_or_default(),
            memory_mb: c.memory_size().unwrap_or_default(),
            architecture: c.architectures().first().map_or("x86_64".to_owned(), |a| a.as_str().to_owned()),
            owner: output.tags().and_then(|t| t.get(OWNER_TAG)).cloned(),
        }))
    }

    fn diff(&self, o: &ObservedFunction) -> Diff {
        let mut diff = Diff::default();
        diff.field("code_sha256", o.code_sha256.as_str(), self.code_sha256.as_str());
        diff.field("role", o.role_arn.as_str(), self.role_arn.as_str());
        diff.field("runtime", o.runtime.as_str(), RUNTIME);
        diff.field("handler", o.handler.as_str(), HANDLER);
        diff.field("timeout", o.timeout_seconds, self.timeout_seconds);
        diff.field("memory_size", o.memory_mb, self.memory_mb);
        diff.field("architecture", o.architecture.as_str(), self.architecture);
        // Environment, variable by variable, secrets masked on both sides.
        let names: std::collections::BTreeSet<&String> = o.environment.keys().chain(self.environment.keys()).collect();
        for name in names {
            let wanted = self.environment.get(name);
            let current = o.environment.get(name);
            if wanted.map(|w| &w.value) != current {
                let secret =
                    wanted.is_some_and(|w| w.secret) || authorizer::config::SECRET_VARIABLES.contains(&name.as_str());
                let show = |v: Option<&String>| match v {
                    None => "(unset)".to_owned(),
                    Some(_) if secret => "(sensitive)".to_owned(),
                    Some(v) => format!("{v:?}"),
                };
                // Compared above on the values; only the display is masked.
                diff.changed(&format!("environment.{name}"), show(current), show(wanted.map(|w| &w.value)));
            }
        }
        diff
    }

    fn owned_by(&self, o: &ObservedFunction, stack: &str) -> bool {
        o.owner.as_deref() == Some(stack)
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedFunction> {
        // A role created seconds ago may not be assumable by Lambda yet (IAM
        // is eventually consistent): retry that one error, for up to 2 minutes.
        let mut delay = Duration::from_secs(2);
        for attempt in 0.. {
            let result = aws
                .lambda
                .create_function()
                .function_name(&self.name)
                .role(&self.role_arn)
                .runtime(Runtime::from(RUNTIME))
                .handler(HANDLER)
                .code(FunctionCode::builder().zip_file(Blob::new(self.zip.clone())).build())
                .environment(Environment::builder().set_variables(Some(self.environment_values())).build())
                .timeout(self.timeout_seconds)
                .memory_size(self.memory_mb)
                .architectures(self.architecture())
                .description(format!("OAuth 2.0 / mTLS authorizer of stack {}", self.stack))
                .tags(OWNER_TAG, &self.stack)
                .send()
                .await;
            match result {
                Ok(_) => break,
                Err(e)
                    if attempt < 12
                        && crate::error::code(&e) == Some("InvalidParameterValueException")
                        && crate::error::describe(&e).contains("cannot be assumed") =>
                {
                    eprintln!("    IAM role not yet assumable by Lambda; retrying in {}s", delay.as_secs());
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(15));
                }
                Err(e) => anyhow::bail!("{}", crate::error::describe(&e)),
            }
        }
        self.wait_ready(aws).await?;
        self.find(aws).await?.context("function missing right after creation")
    }

    async fn update(&self, aws: &Aws, _observed: &ObservedFunction, diff: &Diff) -> anyhow::Result<ObservedFunction> {
        let changed = |prefix: &str| diff.fields.iter().any(|f| f.field.starts_with(prefix));
        if ["role", "runtime", "handler", "timeout", "memory_size", "environment"].iter().any(|f| changed(f)) {
            aws.lambda
                .update_function_configuration()
                .function_name(&self.name)
                .role(&self.role_arn)
                .runtime(Runtime::from(RUNTIME))
                .handler(HANDLER)
                .timeout(self.timeout_seconds)
                .memory_size(self.memory_mb)
                .environment(Environment::builder().set_variables(Some(self.environment_values())).build())
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", crate::error::describe(&e)))?;
            self.wait_ready(aws).await?;
        }
        if changed("code_sha256") || changed("architecture") {
            aws.lambda
                .update_function_code()
                .function_name(&self.name)
                .zip_file(Blob::new(self.zip.clone()))
                .architectures(self.architecture())
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", crate::error::describe(&e)))?;
            self.wait_ready(aws).await?;
        }
        self.find(aws).await?.context("function vanished during update")
    }

    async fn delete(&self, aws: &Aws, _observed: &ObservedFunction) -> anyhow::Result<()> {
        match aws.lambda.delete_function().function_name(&self.name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
            Err(e) => anyhow::bail!("{}", crate::error::describe(&e)),
        }
    }
}
