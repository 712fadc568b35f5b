//! The deployment and the stage. A deployment's description holds a hash of
//! the API configuration the stack wants, and whether the API's execute-api
//! endpoint was off when it was made (`config-sha256:HASH execute-api:off`);
//! a different hash means a new deployment. A change AWS applies only on a
//! deployment (a route, the authorizer, a gateway response) makes the
//! planner ask for one too (`deployment`, a forced field), so a repair
//! reaches clients.
//!
//! CreateDeployment takes no idempotency token: each carries a random run
//! token in its description, by which a deployment whose answer was lost is
//! found instead of being made twice.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_apigateway::types::{Op, PatchOperation};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::rest_api::{self, RestApi};
use super::kind::{Placement, Context, Diff, Found, Kind, KindIo, OWNER_TAG, Ownership, Scope, owner_tags};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs, Val};
use crate::retry::{self, Created};
use crate::stack::Throttling;

const HASH_PREFIX: &str = "config-sha256:";

pub struct Stage;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub api_id: Val,
    pub name: String,
    pub variables: BTreeMap<String, String>,
    pub throttling: Option<Throttling>,
    /// Hash of the desired API configuration.
    pub config_hash: String,
    /// The API's `disableExecuteApiEndpoint` as it is when this step runs
    /// (`"true"`/`"false"`), recorded with each deployment.
    pub execute_api_disabled: Val,
    /// The stage lives in an adopted API, so it carries the stack's tag
    /// itself; in an API the stack created it is the stack's as part of
    /// the API, and is created untagged (IAM sees the API's tags on it).
    #[serde(default)]
    pub in_adopted_api: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub api_id: String,
    pub name: String,
    pub deployment_id: String,
    /// The configuration hash of the deployment the stage points at.
    pub deployed_hash: String,
    /// Whether execute-api was off when that deployment was made (`None`:
    /// the deployment does not say).
    #[serde(default)]
    pub deployed_without_execute_api: Option<bool>,
    pub variables: BTreeMap<String, String>,
    pub throttling: Option<(f64, i32)>,
}

pub fn address(context: &Context<'_>) -> Address {
    Address::new(Stage::NAME, &context.stack.stage.name)
}

/// A hash of everything a deployment snapshots, from the desired state only
/// (ids excluded), so it is the same on every run until stack.yaml changes.
pub fn config_hash(context: &Context<'_>) -> String {
    let stack = context.stack;
    let a = &stack.authorizer;
    let mut text = format!(
        "authorizer {} {:?} {}\n",
        context.arns().function(&context.stack.name),
        a.identity_sources,
        a.cache_ttl_seconds
    );
    for r in &stack.api.routes {
        text.push_str(&format!("route {} {} {} {:?}\n", r.method, r.path, r.backend, r.context_headers));
    }
    text.push_str(&format!("challenge {}\n", stack.api.unauthorized_challenge));
    Sha256::digest(text.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// What a deployment's description says: its configuration hash and
/// whether execute-api was off.
fn described(description: Option<&str>) -> (String, Option<bool>) {
    let Some(rest) = description.and_then(|d| d.strip_prefix(HASH_PREFIX)) else { return ("unknown".into(), None) };
    let mut words = rest.split_whitespace();
    let hash = words.next().unwrap_or("unknown").to_owned();
    let execute_api = words.find_map(|w| w.strip_prefix("execute-api:")).map(|v| v == "off");
    (hash, execute_api)
}

/// Every stage of an API, with what the deployment each points at says.
/// In an API the stack owns (`api_is_the_stacks`) every stage is the
/// stack's; in an adopted one, those carrying its tag.
pub async fn read_all(
    aws: &Aws,
    api_id: &str,
    stack: &str,
    api_is_the_stacks: bool,
) -> anyhow::Result<Vec<Found<State>>> {
    let (stages, deployments) = tokio::join!(
        aws.apigateway.get_stages().rest_api_id(api_id).send(),
        aws.apigateway
            .get_deployments()
            .rest_api_id(api_id)
            .limit(500)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>(),
    );
    let deployments = deployments.aws("GetDeployments")?;
    let described_by = |deployment_id: &str| match deployments.iter().find(|d| d.id() == Some(deployment_id)) {
        Some(deployment) => described(deployment.description()),
        None => ("none".to_owned(), None),
    };
    Ok(stages
        .aws("GetStages")?
        .item()
        .iter()
        .map(|stage| {
            let deployment_id = stage.deployment_id().unwrap_or_default().to_owned();
            let (deployed_hash, deployed_without_execute_api) = described_by(&deployment_id);
            let state = State {
                api_id: api_id.to_owned(),
                name: stage.stage_name().unwrap_or_default().to_owned(),
                deployed_hash,
                deployed_without_execute_api,
                deployment_id,
                variables: stage
                    .variables()
                    .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                throttling: stage
                    .method_settings()
                    .and_then(|m| m.get("*/*"))
                    .map(|s| (s.throttling_rate_limit(), s.throttling_burst_limit())),
            };
            let owned =
                api_is_the_stacks || stage.tags().and_then(|t| t.get(OWNER_TAG)).is_some_and(|owner| owner == stack);
            Found::new(state.name.clone(), if owned { Ownership::Owned } else { Ownership::Foreign }, state)
        })
        .collect())
}

/// Makes a deployment of the API as it is now; returns its id. Found, not
/// made twice, when its answer is lost.
pub async fn deploy(aws: &Aws, api_id: &str, hash: &str, execute_api_disabled: bool) -> anyhow::Result<String> {
    let run = format!("{:016x}", (retry::jitter() * u64::MAX as f64) as u64 ^ u64::from(std::process::id()));
    let execute_api = if execute_api_disabled { "off" } else { "on" };
    let description = format!("{HASH_PREFIX}{hash} execute-api:{execute_api} run:{run}");
    let created = retry::create_or_find(
        "CreateDeployment",
        || {
            aws.apigateway
                .create_deployment()
                .rest_api_id(api_id)
                .description(&description)
                .customize()
                .config_override(crate::aws::answer_may_be_lost())
                .send()
        },
        || async {
            let deployments = aws.apigateway.get_deployments().rest_api_id(api_id).limit(500).send().await;
            let deployments = deployments.aws("GetDeployments")?;
            let mine = deployments.items().iter().find(|d| d.description() == Some(description.as_str()));
            Ok(mine.and_then(|d| d.id()).map(str::to_owned))
        },
    )
    .await?;
    match created {
        Created::New(deployment) => Ok(deployment.id().context("CreateDeployment answered without an id")?.to_owned()),
        Created::Found(id) => Ok(id),
    }
}

/// Points the stage at a deployment.
pub async fn point_at(aws: &Aws, api_id: &str, stage: &str, deployment_id: &str) -> anyhow::Result<()> {
    let operation = PatchOperation::builder().op(Op::Replace).path("/deploymentId").value(deployment_id).build();
    patch(aws, api_id, stage, vec![operation]).await
}

fn throttling_patch(spec: &Spec) -> Vec<PatchOperation> {
    let Some(t) = spec.throttling else { return Vec::new() };
    let replace = |path: &str, value: String| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
    vec![
        replace("/*/*/throttling/rateLimit", t.rate_limit.to_string()),
        replace("/*/*/throttling/burstLimit", t.burst_limit.to_string()),
    ]
}

/// Applies `operations` to the stage (nothing to apply: no call).
pub(super) async fn patch(
    aws: &Aws,
    api_id: &str,
    stage: &str,
    operations: Vec<PatchOperation>,
) -> anyhow::Result<()> {
    if operations.is_empty() {
        return Ok(());
    }
    aws.apigateway
        .update_stage()
        .rest_api_id(api_id)
        .stage_name(stage)
        .set_patch_operations(Some(operations))
        .send()
        .await
        .aws("UpdateStage")?;
    Ok(())
}

fn disabled(spec: &Spec) -> anyhow::Result<bool> {
    Ok(spec.execute_api_disabled.known()? == "true")
}

super::kind::fields! {
    DeployedConfiguration = "deployed_configuration",
    Variables = "variables",
    Throttling = "throttling",
    Deployment = "deployment",
}

impl Kind for Stage {
    const NAME: &'static str = "stage";
    const PLACEMENT: Placement = Placement { deploys: true, ..Placement::API_SETTING };
    /// The authorizer's invoke permission first: the deployment is live at once.
    const DEPENDS_ON: &'static [&'static str] =
        &["rest_api", "api_authorizer", "authorizer_permission", "api_route", "gateway_response"];
    const OBSERVED_UNDER: &'static [&'static str] = &["rest_api"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let stage = &context.stack.stage;
        Ok(vec![Spec {
            stack: context.stack.name.clone(),
            api_id: rest_api::id(context),
            name: stage.name.clone(),
            variables: stage.variables.clone(),
            throttling: stage.throttling,
            config_hash: config_hash(context),
            execute_api_disabled: Val::output(rest_api::address(context), "disable_execute_api_endpoint"),
            in_adopted_api: matches!(context.stack.api.source, crate::stack::ApiSource::Adopt(_)),
        }])
    }

    fn name(spec: &Spec) -> String {
        spec.name.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::DeployedConfiguration, state.deployed_hash.as_str(), spec.config_hash.as_str());
        diff.field(Field::Variables, &state.variables, &spec.variables);
        if let Some(t) = spec.throttling {
            diff.field(Field::Throttling, state.throttling, Some((t.rate_limit, t.burst_limit)));
        }
        diff
    }

    fn outputs(state: &State) -> Outputs {
        [("name".to_owned(), state.name.clone()), ("deployment_id".to_owned(), state.deployment_id.clone())].into()
    }

    /// In an adopted API, the stage's tags sent with CreateStage are a PUT
    /// on the tags of that one stage.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let mut statements = vec![
            rest_api::inside(grants, Access::Read, &["GET"]),
            rest_api::inside(grants, Access::Write, &["POST", "PATCH", "DELETE"]),
        ];
        if let crate::stack::ApiSource::Adopt(id) = &grants.stack.api.source {
            let stage = format!("/restapis/{id}/stages/{}", grants.stack.stage.name);
            statements.push(grants.tagged_as_stack(
                Statement::allow(
                    "AdoptedStageTagOnCreate",
                    Access::Write,
                    &["apigateway:PUT"],
                    vec![grants.apigateway_tags(&stage)],
                ),
                &[OWNER_TAG],
            ));
        }
        statements
    }
}

impl KindIo for Stage {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let Some(spec) = scope.desired.first() else { return Ok(Vec::new()) };
        let Some(api) = rest_api::of(scope.parents, &spec.api_id) else { return Ok(Vec::new()) };
        let parent = Address::new(RestApi::NAME, &api.name);
        Ok(read_all(scope.aws, &api.state.id, scope.stack, api.ownership == Ownership::Owned)
            .await?
            .into_iter()
            // A stage that is not ours matters only where the stack wants one.
            .filter(|f| f.ownership == Ownership::Owned || f.name == spec.name)
            .map(|f| f.inside(parent.clone()))
            .collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let found = read_all(aws, spec.api_id.known()?, &spec.stack, !spec.in_adopted_api).await?;
        Ok(found.into_iter().find(|f| f.name == spec.name))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let api_id = spec.api_id.known()?;
        let deployment_id = deploy(aws, api_id, &spec.config_hash, disabled(spec)?).await?;
        let created = aws
            .apigateway
            .create_stage()
            .rest_api_id(api_id)
            .stage_name(&spec.name)
            .deployment_id(&deployment_id)
            .set_variables(Some(spec.variables.clone().into_iter().collect()))
            .set_tags(spec.in_adopted_api.then(|| owner_tags(&spec.stack)))
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Made by this create, its first answer lost: finish it as an update.
            Err(e) if crate::error::already_exists(&e) => {
                let found = Self::find(aws, spec).await?.context("CreateStage: it exists, but is not listed")?;
                anyhow::ensure!(
                    found.ownership == Ownership::Owned,
                    "stage {} exists and is not the stack's",
                    spec.name
                );
                point_at(aws, api_id, &spec.name, &deployment_id).await?;
                let pointed = State {
                    deployment_id,
                    deployed_hash: spec.config_hash.clone(),
                    deployed_without_execute_api: Some(disabled(spec)?),
                    ..found.state
                };
                return Self::update(aws, spec, &pointed, &Self::diff(spec, &pointed)).await;
            }
            Err(e) => return Err(e).aws("CreateStage"),
        }
        patch(aws, api_id, &spec.name, throttling_patch(spec)).await?;
        Ok(State {
            api_id: api_id.to_owned(),
            name: spec.name.clone(),
            deployment_id,
            deployed_hash: spec.config_hash.clone(),
            deployed_without_execute_api: Some(disabled(spec)?),
            variables: spec.variables.clone(),
            throttling: spec.throttling.map(|t| (t.rate_limit, t.burst_limit)),
        })
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        let mut operations = Vec::new();
        let mut deployment_id = state.deployment_id.clone();
        let mut deployed_without_execute_api = state.deployed_without_execute_api;
        if diff.has(Field::DeployedConfiguration) || diff.has(Field::Deployment) {
            deployment_id = deploy(aws, &state.api_id, &spec.config_hash, disabled(spec)?).await?;
            deployed_without_execute_api = Some(disabled(spec)?);
            operations
                .push(PatchOperation::builder().op(Op::Replace).path("/deploymentId").value(&deployment_id).build());
        }
        if diff.has(Field::Variables) {
            for (name, value) in &spec.variables {
                if state.variables.get(name) != Some(value) {
                    operations.push(
                        PatchOperation::builder()
                            .op(Op::Replace)
                            .path(format!("/variables/{name}"))
                            .value(value)
                            .build(),
                    );
                }
            }
            for name in state.variables.keys().filter(|n| !spec.variables.contains_key(*n)) {
                operations.push(PatchOperation::builder().op(Op::Remove).path(format!("/variables/{name}")).build());
            }
        }
        if diff.has(Field::Throttling) {
            operations.extend(throttling_patch(spec));
        }
        patch(aws, &state.api_id, &spec.name, operations).await?;
        Ok(State {
            deployment_id,
            deployed_hash: spec.config_hash.clone(),
            deployed_without_execute_api,
            variables: spec.variables.clone(),
            throttling: spec.throttling.map(|t| (t.rate_limit, t.burst_limit)).or(state.throttling),
            ..state.clone()
        })
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        aws.apigateway
            .delete_stage()
            .rest_api_id(&state.api_id)
            .stage_name(&state.name)
            .send()
            .await
            .gone("DeleteStage")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::{Case, check_diff};

    fn spec() -> Spec {
        Spec {
            stack: "s".into(),
            api_id: Val::Known("a1".into()),
            name: "prod".into(),
            variables: [("tier".to_owned(), "gold".to_owned())].into(),
            throttling: Some(Throttling { rate_limit: 100.0, burst_limit: 200 }),
            config_hash: "h1".into(),
            execute_api_disabled: Val::Known("true".into()),
            in_adopted_api: false,
        }
    }

    fn state() -> State {
        State {
            api_id: "a1".into(),
            name: "prod".into(),
            deployment_id: "d1".into(),
            deployed_hash: "h1".into(),
            deployed_without_execute_api: Some(true),
            variables: [("tier".to_owned(), "gold".to_owned())].into(),
            throttling: Some((100.0, 200)),
        }
    }

    #[test]
    fn diff() {
        let cases: &[Case<State>] = &[
            (|s| s.deployed_hash = "h0".into(), "deployed_configuration"),
            (|s| s.deployed_hash = "none".into(), "deployed_configuration"),
            (|s| drop(s.variables.insert("extra".into(), "x".into())), "variables"),
            (|s| s.throttling = Some((50.0, 200)), "throttling"),
            (|s| s.throttling = None, "throttling"),
        ];
        check_diff::<Stage>(&spec(), &state(), cases);
        let unthrottled = Spec { throttling: None, ..spec() };
        assert!(Stage::diff(&unthrottled, &state()).is_empty(), "no throttling asked: whatever is there stays");
    }

    #[test]
    fn a_deployment_says_what_it_was_made_from() {
        assert_eq!(described(Some("config-sha256:ab12 execute-api:off run:77")), ("ab12".into(), Some(true)));
        assert_eq!(described(Some("config-sha256:ab12 execute-api:on run:77")), ("ab12".into(), Some(false)));
        // Made by an older deployer, or by hand.
        assert_eq!(described(Some("config-sha256:ab12")), ("ab12".into(), None));
        assert_eq!(described(Some("manual")), ("unknown".into(), None));
        assert_eq!(described(None), ("unknown".into(), None));
    }
}
