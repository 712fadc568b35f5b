//! The authorizer's Lambda function: code (a zip holding `bootstrap`),
//! runtime `provided.al2023`, handler, environment, timeout, memory,
//! architecture. Code is uploaded only when its SHA-256 changed, and only the
//! settings that differ are sent; every change waits until Lambda reports the
//! function ready, before and after.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, LastUpdateStatus, Runtime, State as Lifecycle};
use serde::{Deserialize, Serialize};

use super::kind::{Context, Diff, Found, Kind, KindIo, OWNER_TAG, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Outputs, Shown};
use crate::retry::{self, IAM_ROLE_PROPAGATION, LAMBDA_UPDATE_IN_PROGRESS, retry};
use crate::stack::names;
use crate::stack::Setting;

const RUNTIME: &str = "provided.al2023";
const HANDLER: &str = "bootstrap";

pub struct LambdaFunction;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub name: String,
    pub role_arn: String,
    /// The zip on disk (written by `package`), and base64(SHA-256) of it as
    /// Lambda reports `CodeSha256`. Empty when no code is needed (teardown).
    pub package: PathBuf,
    pub code_sha256: String,
    pub environment: BTreeMap<String, Setting>,
    pub timeout_seconds: i32,
    pub memory_mb: i32,
    pub architecture: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    pub arn: String,
    pub code_sha256: String,
    pub role_arn: String,
    pub runtime: String,
    pub handler: String,
    pub environment: BTreeMap<String, String>,
    pub timeout_seconds: i32,
    pub memory_mb: i32,
    pub architecture: String,
}

async fn read(aws: &Aws, stack: &str, name: &str) -> anyhow::Result<Option<Found<State>>> {
    let Some(output) = aws.lambda.get_function().function_name(name).send().await.found("GetFunction")? else {
        return Ok(None);
    };
    let state = state_of(name, &output)?;
    let owned = output.tags().and_then(|t| t.get(OWNER_TAG)).is_some_and(|owner| owner == stack);
    Ok(Some(Found::new(name, if owned { Ownership::Owned } else { Ownership::Foreign }, state)))
}

fn state_of(name: &str, output: &GetFunctionOutput) -> anyhow::Result<State> {
    let c = output.configuration().context("GetFunction answered without configuration")?;
    let environment = c
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let state = State {
        name: name.to_owned(),
        arn: c.function_arn().unwrap_or_default().to_owned(),
        code_sha256: c.code_sha256().unwrap_or_default().to_owned(),
        role_arn: c.role().unwrap_or_default().to_owned(),
        runtime: c.runtime().map(|r| r.as_str().to_owned()).unwrap_or_default(),
        handler: c.handler().unwrap_or_default().to_owned(),
        environment,
        timeout_seconds: c.timeout().unwrap_or_default(),
        memory_mb: c.memory_size().unwrap_or_default(),
        architecture: c.architectures().first().map_or("x86_64".to_owned(), |a| a.as_str().to_owned()),
    };
    Ok(state)
}

/// The function's environment: the stack's variables but the secret ones,
/// which it reads from Secrets Manager (`authorizer_secret`), and where they are.
fn function_environment(stack: &crate::stack::Stack) -> BTreeMap<String, Setting> {
    let secrets = super::authorizer_secret::secret_variables(stack);
    let mut environment: BTreeMap<String, Setting> = stack
        .authorizer
        .environment
        .iter()
        .filter(|(name, _)| !secrets.contains_key(name.as_str()))
        .map(|(n, s)| (n.clone(), s.clone()))
        .collect();
    environment.extend(super::authorizer_secret::function_variables(stack));
    environment
}

fn environment_values(spec: &Spec) -> std::collections::HashMap<String, String> {
    spec.environment.iter().map(|(k, v)| (k.clone(), v.reveal().to_owned())).collect()
}

fn code(spec: &Spec) -> anyhow::Result<Blob> {
    let zip = std::fs::read(&spec.package).with_context(|| format!("reading {}", spec.package.display()))?;
    anyhow::ensure!(
        crate::package::sha256(&zip) == spec.code_sha256,
        "{} changed since it was planned (its SHA-256 differs)",
        spec.package.display()
    );
    Ok(Blob::new(zip))
}

/// Polls until the function is Active and its last update finished: Lambda
/// refuses a change while the previous one is in progress.
/// Waits until Lambda has finished creating or changing the function (its
/// state `Active`, its last update `Successful`); returns its state then.
/// Lambda refuses another change before that (`ResourceConflictException`).
async fn wait_ready(aws: &Aws, name: &str) -> anyhow::Result<State> {
    retry::wait_until(&format!("Lambda function {name} to be ready"), Duration::from_secs(300), || async {
        let function = aws.lambda.get_function().function_name(name).send().await.aws("GetFunction")?;
        let c = function.configuration().context("GetFunction answered without configuration")?;
        if matches!(c.state(), Some(Lifecycle::Failed))
            || matches!(c.last_update_status(), Some(LastUpdateStatus::Failed))
        {
            anyhow::bail!(
                "Lambda reports the function failed: {}",
                c.state_reason().or(c.last_update_status_reason()).unwrap_or("no reason given")
            );
        }
        let active = c.state().is_none_or(|s| *s == Lifecycle::Active);
        let updated = c.last_update_status().is_none_or(|s| *s == LastUpdateStatus::Successful);
        Ok(if active && updated { Some(state_of(name, &function)?) } else { None })
    })
    .await
}

super::kind::fields! {
    CodeSha256 = "code_sha256",
    Role = "role",
    Runtime = "runtime",
    Handler = "handler",
    Timeout = "timeout",
    MemorySize = "memory_size",
    Architecture = "architecture",
    Environment = "environment",
}

impl Kind for LambdaFunction {
    const NAME: &'static str = "lambda_function";
    /// No read back: the create waits until Lambda reports the function ready, and returns that read.
    const READ_BACK: bool = false;
    /// Its log group first, or Lambda makes one untagged and kept forever.
    /// Its secret first: the function reads it when it starts.
    const DEPENDS_ON: &'static [&'static str] = &["iam_role", "log_group", "authorizer_secret", "dpop_replay_table"];
    /// Lambda shows a function's tags in GetFunction only to a caller also
    /// allowed `lambda:ListTags`: without it, the stack's own function reads
    /// as untagged.
    const FOREIGN_HINT: &'static str =
        "GetFunction shows a function's tags only to a caller also allowed lambda:ListTags on it";
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let a = &context.stack.authorizer;
        let (package, code_sha256) = match context.package {
            Some(p) => (p.path.clone(), p.sha256.clone()),
            None => (PathBuf::new(), String::new()),
        };
        Ok(vec![Spec {
            stack: context.stack.name.clone(),
            name: names::function(&context.stack.name),
            role_arn: context.arns().role(&names::execution_role(&context.stack.name)),
            package,
            code_sha256,
            environment: function_environment(context.stack),
            timeout_seconds: a.timeout_seconds,
            memory_mb: a.memory_mb,
            architecture: a.architecture.as_lambda().to_owned(),
        }])
    }

    fn name(spec: &Spec) -> String {
        spec.name.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::CodeSha256, state.code_sha256.as_str(), spec.code_sha256.as_str());
        diff.field(Field::Role, state.role_arn.as_str(), spec.role_arn.as_str());
        diff.field(Field::Runtime, state.runtime.as_str(), RUNTIME);
        diff.field(Field::Handler, state.handler.as_str(), HANDLER);
        diff.field(Field::Timeout, state.timeout_seconds, spec.timeout_seconds);
        diff.field(Field::MemorySize, state.memory_mb, spec.memory_mb);
        diff.field(Field::Architecture, state.architecture.as_str(), spec.architecture.as_str());
        // Environment, variable by variable, secrets masked on both sides.
        let names: BTreeSet<&String> = state.environment.keys().chain(spec.environment.keys()).collect();
        for name in names {
            let wanted = spec.environment.get(name);
            let current = state.environment.get(name).map(String::as_str);
            // Not known to this run (a plan given no secret): not compared.
            if wanted.is_some_and(|w| w.is_unknown()) {
                continue;
            }
            if wanted.map(Setting::reveal) != current {
                let secret = wanted.is_some_and(|w| w.is_secret())
                    || authorizer::config::SECRET_VARIABLES.contains(&name.as_str());
                let show = |v: Option<&str>| match v {
                    None => Shown::Absent,
                    Some(_) if secret => Shown::Sensitive,
                    Some(v) => Shown::of(v),
                };
                // Compared above on the values; only the display is masked.
                diff.changed(Field::Environment, Some(name), show(current), show(wanted.map(Setting::reveal)));
            }
        }
        diff
    }

    fn outputs(state: &State) -> Outputs {
        [("arn".to_owned(), state.arn.clone()), ("name".to_owned(), state.name.clone())].into()
    }

    /// The function by name; `lambda:ListTags` beside GetFunction, without
    /// which GetFunction answers no tags (and the function would read as
    /// another's); tags sent with CreateFunction are a `lambda:TagResource`;
    /// the execution role passed to Lambda only.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let function = grants.arns.function(grants.name());
        let role = grants.arns.role(&names::execution_role(grants.name()));
        vec![
            Statement::allow(
                "AuthorizerFunctionRead",
                Access::Read,
                &["lambda:GetFunction", "lambda:ListTags"],
                vec![function.clone()],
            ),
            Statement::allow(
                "AuthorizerFunctionWrite",
                Access::Write,
                &[
                    "lambda:CreateFunction",
                    "lambda:TagResource",
                    "lambda:UpdateFunctionConfiguration",
                    "lambda:UpdateFunctionCode",
                    "lambda:DeleteFunction",
                ],
                vec![function],
            ),
            Statement::allow("PassExecutionRoleToLambda", Access::Write, &["iam:PassRole"], vec![role]).when(
                "StringEquals",
                "iam:PassedToService",
                "lambda.amazonaws.com",
            ),
        ]
    }

    /// The function writes its own log group, and nothing else.
    fn role_permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let role = grants.arns.role(&names::execution_role(grants.name()));
        let group = grants.arns.log_group(&names::function_log_group(grants.name()));
        vec![
            Statement::allow(
                "FunctionWritesItsLogs",
                Access::Write,
                &["logs:CreateLogStream", "logs:PutLogEvents"],
                vec![format!("{group}:*")],
            )
            .when("ArnEquals", "aws:PrincipalArn", role),
        ]
    }
}

impl KindIo for LambdaFunction {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let reads = scope.desired.iter().map(|spec| read(scope.aws, scope.stack, &spec.name));
        Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        read(aws, &spec.stack, &spec.name).await
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let code = code(spec)?;
        // A role created seconds ago may not be assumable by Lambda yet.
        let created = retry(&IAM_ROLE_PROPAGATION, || {
            aws.lambda
                .create_function()
                .function_name(&spec.name)
                .role(&spec.role_arn)
                .runtime(Runtime::from(RUNTIME))
                .handler(HANDLER)
                .code(FunctionCode::builder().zip_file(code.clone()).build())
                .environment(Environment::builder().set_variables(Some(environment_values(spec))).build())
                .timeout(spec.timeout_seconds)
                .memory_size(spec.memory_mb)
                .architectures(Architecture::from(spec.architecture.as_str()))
                .description(format!("OAuth 2.0 / mTLS authorizer of stack {}", spec.stack))
                .tags(OWNER_TAG, &spec.stack)
                .send()
        })
        .await;
        match created {
            Ok(_) => wait_ready(aws, &spec.name).await,
            // Made by this create, its first answer lost: bring it in line.
            Err(e) if crate::error::already_exists(&e) => {
                super::kind::made_already::<Self>(aws, spec).await?;
                wait_ready(aws, &spec.name).await
            }
            Err(e) => Err(e).aws("CreateFunction"),
        }
    }

    async fn update(aws: &Aws, spec: &Spec, _state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        let changed = |prefix: &str| diff.fields.iter().any(|f| f.field.starts_with(prefix));
        let mut state = wait_ready(aws, &spec.name).await?;
        let configuration = ["role", "runtime", "handler", "timeout", "memory_size", "environment"];
        if configuration.iter().any(|f| changed(f)) {
            let mut request = aws.lambda.update_function_configuration().function_name(&spec.name);
            if changed("role") {
                request = request.role(&spec.role_arn);
            }
            if changed("runtime") {
                request = request.runtime(Runtime::from(RUNTIME));
            }
            if changed("handler") {
                request = request.handler(HANDLER);
            }
            if changed("timeout") {
                request = request.timeout(spec.timeout_seconds);
            }
            if changed("memory_size") {
                request = request.memory_size(spec.memory_mb);
            }
            if changed("environment") {
                // Lambda replaces the whole set: every variable goes.
                request =
                    request.environment(Environment::builder().set_variables(Some(environment_values(spec))).build());
            }
            retry(&LAMBDA_UPDATE_IN_PROGRESS, || request.clone().send()).await.aws("UpdateFunctionConfiguration")?;
            state = wait_ready(aws, &spec.name).await?;
        }
        if changed("code_sha256") || changed("architecture") {
            let code = code(spec)?;
            retry(&LAMBDA_UPDATE_IN_PROGRESS, || {
                aws.lambda
                    .update_function_code()
                    .function_name(&spec.name)
                    .zip_file(code.clone())
                    .architectures(Architecture::from(spec.architecture.as_str()))
                    .send()
            })
            .await
            .aws("UpdateFunctionCode")?;
            state = wait_ready(aws, &spec.name).await?;
        }
        Ok(state)
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        aws.lambda.delete_function().function_name(&state.name).send().await.gone("DeleteFunction")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::{Case, check_diff};

    /// The example stack with `edit` applied to its text, loaded with
    /// `INTROSPECTION_SECRET` set.
    fn example_with(edit: impl Fn(String) -> String) -> crate::stack::Stack {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let unique = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("env-measure-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(dir.join("examples")).unwrap();
        std::fs::copy(root.join("examples/truststore.pem"), dir.join("examples/truststore.pem")).unwrap();
        let text = std::fs::read_to_string(root.join("stack.yaml")).unwrap();
        std::fs::write(dir.join("stack.yaml"), edit(text)).unwrap();
        let env = |name: &str| (name == "INTROSPECTION_SECRET").then(|| "s3cr\"t".to_owned());
        let stack = crate::stack::Stack::load(&dir.join("stack.yaml"), &env).expect("valid");
        std::fs::remove_dir_all(&dir).unwrap();
        stack
    }

    #[test]
    fn the_stack_check_measures_the_environment_the_function_gets() {
        let introspection = |secret: &'static str| {
            move |text: String| {
                text.replace("    TOKEN_VALIDATION: jwt\n", "")
                    .replace("    JWKS_URI: https://idp.example.com/.well-known/jwks.json\n", "")
                    .replace(
                        "    # TOKEN_VALIDATION: introspection\n    # INTROSPECTION_ENDPOINT: https://idp.example.com/oauth2/introspect\n    # INTROSPECTION_CLIENT_ID: pets-gateway\n    # INTROSPECTION_CLIENT_SECRET: ${env:PETS_INTROSPECTION_SECRET}\n",
                        &format!("    TOKEN_VALIDATION: introspection\n    INTROSPECTION_ENDPOINT: https://idp.example.com/oauth2/introspect\n    INTROSPECTION_CLIENT_ID: pets-gateway\n    INTROSPECTION_CLIENT_SECRET: {secret}\n"),
                    )
            }
        };
        for stack in [
            example_with(|text| text),
            example_with(introspection("${env:INTROSPECTION_SECRET}")),
            example_with(introspection("${ssm:/pets/introspection}")),
        ] {
            let sent: BTreeMap<String, String> =
                function_environment(&stack).into_iter().map(|(n, s)| (n, s.reveal().to_owned())).collect();
            let measured = crate::stack::function_environment_json(
                &stack.name,
                &stack.authorizer.environment,
                &stack.authorizer.secret_references,
            );
            let sizes =
                |map: &BTreeMap<String, String>| map.iter().map(|(n, v)| (n.clone(), v.len())).collect::<Vec<_>>();
            assert_eq!(sizes(&measured), sizes(&sent));
        }
        let secret = example_with(introspection("${env:INTROSPECTION_SECRET}"));
        assert!(function_environment(&secret).contains_key("AUTHORIZER_SECRETS_VERSION"), "the case is covered");
    }

    fn setting(value: &str, secret: bool) -> Setting {
        if secret { Setting::secret(value) } else { Setting::public(value) }
    }

    fn spec() -> Spec {
        Spec {
            stack: "s".into(),
            name: "s-authorizer".into(),
            role_arn: "arn:aws:iam::1:role/s-authorizer-exec".into(),
            package: PathBuf::from("/tmp/x.zip"),
            code_sha256: "abc=".into(),
            environment: [
                ("TOKEN_VALIDATION".to_owned(), setting("introspection", false)),
                ("INTROSPECTION_CLIENT_SECRET".to_owned(), setting("hunter2", true)),
            ]
            .into(),
            timeout_seconds: 5,
            memory_mb: 128,
            architecture: "x86_64".into(),
        }
    }

    fn state() -> State {
        State {
            name: "s-authorizer".into(),
            arn: "arn:aws:lambda:eu-west-1:1:function:s-authorizer".into(),
            code_sha256: "abc=".into(),
            role_arn: "arn:aws:iam::1:role/s-authorizer-exec".into(),
            runtime: RUNTIME.into(),
            handler: HANDLER.into(),
            environment: [
                ("TOKEN_VALIDATION".to_owned(), "introspection".to_owned()),
                ("INTROSPECTION_CLIENT_SECRET".to_owned(), "hunter2".to_owned()),
            ]
            .into(),
            timeout_seconds: 5,
            memory_mb: 128,
            architecture: "x86_64".into(),
        }
    }

    fn fields(diff: &Diff<Field>) -> Vec<&str> {
        diff.fields.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn diff_field_by_field() {
        let cases: &[Case<State>] = &[
            (|s| s.code_sha256 = "new=".into(), "code_sha256"),
            (|s| s.role_arn = "arn:aws:iam::1:role/other".into(), "role"),
            (|s| s.runtime = "provided.al2".into(), "runtime"),
            (|s| s.handler = "main".into(), "handler"),
            (|s| s.timeout_seconds = 3, "timeout"),
            (|s| s.memory_mb = 256, "memory_size"),
            (|s| s.architecture = "arm64".into(), "architecture"),
            (|s| drop(s.environment.remove("TOKEN_VALIDATION")), "environment.TOKEN_VALIDATION"),
            (|s| drop(s.environment.insert("ROUTES".into(), "{}".into())), "environment.ROUTES"),
        ];
        check_diff::<LambdaFunction>(&spec(), &state(), cases);
    }

    #[test]
    fn a_changed_secret_is_detected_and_never_shown() {
        let mut changed = state();
        changed.environment.insert("INTROSPECTION_CLIENT_SECRET".into(), "old-secret".into());
        let diff = LambdaFunction::diff(&spec(), &changed);
        assert_eq!(fields(&diff), ["environment.INTROSPECTION_CLIENT_SECRET"]);
        let shown = format!("{:?}", diff.fields);
        assert!(!shown.contains("hunter2") && !shown.contains("old-secret"), "{shown}");
        assert_eq!((&diff.fields[0].old, &diff.fields[0].new), (&Shown::Sensitive, &Shown::Sensitive));
    }
}
