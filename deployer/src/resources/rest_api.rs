//! The REST API itself: created (tagged, regional) or adopted by id. With an
//! mTLS domain, `disableExecuteApiEndpoint` is on: the default `execute-api`
//! endpoint would otherwise let clients bypass mutual TLS. AWS applies that
//! flag only with a new deployment, so a change here redeploys the stage.
//!
//! An adopted API is configured, never deleted; an API the stack created and
//! no longer declares (renamed) is deleted, and everything in it with it.

use anyhow::Context as _;
use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, Op, PatchOperation};
use serde::{Deserialize, Serialize};

use super::{Context, Diff, Found, Kind, OWNER_TAG, Observation, Ownership, Scope, owner_tags};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::plan::{Address, Outputs, Val};
use crate::stack::ApiSource;

pub struct RestApi;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub source: Source,
    pub disable_execute_api_endpoint: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Created and owned, under this name.
    Create(String),
    /// Adopted, by id.
    Adopt(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub name: String,
    pub disable_execute_api_endpoint: bool,
    pub regional: bool,
}

/// The address of the stack's REST API.
pub fn address(context: &Context<'_>) -> Address {
    Address::new(RestApi::NAME, name_of(&source(context)))
}

/// The stack's REST API id, for resources inside it.
pub fn id(context: &Context<'_>) -> Val {
    match source(context) {
        Source::Adopt(id) => Val::Known(id),
        Source::Create(_) => Val::output(address(context), "id"),
    }
}

fn source(context: &Context<'_>) -> Source {
    match &context.stack.api.source {
        ApiSource::Create(name) => Source::Create(name.clone()),
        ApiSource::Adopt(id) => Source::Adopt(id.clone()),
    }
}

fn name_of(source: &Source) -> String {
    match source {
        Source::Create(name) => name.clone(),
        Source::Adopt(id) => id.clone(),
    }
}

/// The REST API a child resource lives in, as observed: the one its spec's
/// `api_id` names. `None` when it does not exist (yet).
pub fn of(observation: &Observation, api_id: &Val) -> Option<Found<State>> {
    let apis = observation.of::<RestApi>();
    match api_id {
        Val::Known(id) => apis.into_iter().find(|api| api.state.id == *id),
        Val::Ref { output_of, .. } => apis.into_iter().find(|api| api.name == output_of.name),
    }
}

fn state_of(api: &aws_sdk_apigateway::types::RestApi) -> State {
    State {
        id: api.id().unwrap_or_default().to_owned(),
        name: api.name().unwrap_or_default().to_owned(),
        disable_execute_api_endpoint: api.disable_execute_api_endpoint(),
        regional: api.endpoint_configuration().is_some_and(|c| c.types().contains(&EndpointType::Regional)),
    }
}

async fn adopted(aws: &Aws, id: &str) -> anyhow::Result<Found<State>> {
    let api = aws
        .apigateway
        .get_rest_api()
        .rest_api_id(id)
        .send()
        .await
        .found("GetRestApi")?
        .with_context(|| format!("the REST API {id} to adopt does not exist"))?;
    Ok(Found::new(
        id,
        Ownership::Adopted,
        State {
            id: id.to_owned(),
            name: api.name().unwrap_or_default().to_owned(),
            disable_execute_api_endpoint: api.disable_execute_api_endpoint(),
            regional: api.endpoint_configuration().is_some_and(|c| c.types().contains(&EndpointType::Regional)),
        },
    ))
}

/// An API's resource tree as this process knows it (path → resource id),
/// behind one lock per API: routes are created concurrently, and two routes
/// under `/pets` must not both create `/pets` (API Gateway answers the
/// second with a conflict; moto creates a duplicate). `None` until read; an
/// API created by this process starts with its root, so its first route
/// need not read the tree at all.
pub type ResourceTree = std::sync::Arc<tokio::sync::Mutex<Option<std::collections::BTreeMap<String, String>>>>;

static RESOURCE_TREES: std::sync::LazyLock<std::sync::Mutex<std::collections::BTreeMap<String, ResourceTree>>> =
    std::sync::LazyLock::new(Default::default);

pub fn resource_tree(api_id: &str) -> ResourceTree {
    let mut trees = RESOURCE_TREES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    trees.entry(api_id.to_owned()).or_default().clone()
}

/// Every REST API carrying the stack's tag. Names are not unique in API
/// Gateway: another API of the same name is someone else's business.
async fn owned(aws: &Aws, stack: &str) -> anyhow::Result<Vec<Found<State>>> {
    let apis: Vec<_> = aws
        .apigateway
        .get_rest_apis()
        .limit(500)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws("GetRestApis")?;
    Ok(apis
        .iter()
        .filter(|api| api.tags().and_then(|t| t.get(OWNER_TAG)).is_some_and(|owner| owner == stack))
        .map(|api| {
            let state = state_of(api);
            Found::new(state.name.clone(), Ownership::Owned, state)
        })
        .collect())
}

impl Kind for RestApi {
    const NAME: &'static str = "rest_api";
    const DEPENDS_ON: &'static [&'static str] = &[];
    const NEEDS_DEPLOYMENT: bool = true;
    type Spec = Spec;
    type State = State;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        Ok(vec![Spec {
            stack: context.stack.name.clone(),
            source: source(context),
            disable_execute_api_endpoint: context.stack.domain.is_some(),
        }])
    }

    fn name(spec: &Spec) -> String {
        name_of(&spec.source)
    }

    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let mut found = owned(scope.aws, scope.stack).await?;
        for spec in &scope.desired {
            if let Source::Adopt(id) = &spec.source {
                found.push(adopted(scope.aws, id).await?);
            }
        }
        Ok(found)
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        match &spec.source {
            Source::Adopt(id) => Ok(Some(adopted(aws, id).await?)),
            Source::Create(name) => Ok(owned(aws, &spec.stack).await?.into_iter().find(|api| api.name == *name)),
        }
    }

    fn diff(spec: &Spec, state: &State) -> Diff {
        let mut diff = Diff::default();
        diff.field(
            "disable_execute_api_endpoint",
            state.disable_execute_api_endpoint,
            spec.disable_execute_api_endpoint,
        );
        if matches!(spec.source, Source::Create(_)) {
            // The endpoint type of an API cannot be changed in place here.
            diff.field("endpoint_type", if state.regional { "REGIONAL" } else { "other" }, "REGIONAL");
            diff.replace = !state.regional;
        }
        diff
    }

    fn outputs(state: &State) -> Outputs {
        [("id".to_owned(), state.id.clone())].into()
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let Source::Create(name) = &spec.source else { anyhow::bail!("an adopted REST API is never created") };
        let api = aws
            .apigateway
            .create_rest_api()
            .name(name)
            .description(format!("OAuth 2.0 / mTLS protected API of stack {}", spec.stack))
            .endpoint_configuration(EndpointConfiguration::builder().types(EndpointType::Regional).build())
            .disable_execute_api_endpoint(spec.disable_execute_api_endpoint)
            .set_tags(Some(owner_tags(&spec.stack)))
            .send()
            .await
            .aws("CreateRestApi")?;
        let id = api.id().context("CreateRestApi answered without an id")?;
        if let Some(root) = api.root_resource_id() {
            *resource_tree(id).lock().await = Some([("/".to_owned(), root.to_owned())].into());
        }
        Ok(State {
            id: id.to_owned(),
            name: name.clone(),
            disable_execute_api_endpoint: api.disable_execute_api_endpoint(),
            regional: true,
        })
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff) -> anyhow::Result<State> {
        if diff.has("disable_execute_api_endpoint") {
            let patch = PatchOperation::builder()
                .op(Op::Replace)
                .path("/disableExecuteApiEndpoint")
                .value(spec.disable_execute_api_endpoint.to_string())
                .build();
            let api = aws
                .apigateway
                .update_rest_api()
                .rest_api_id(&state.id)
                .patch_operations(patch)
                .send()
                .await
                .aws("UpdateRestApi")?;
            return Ok(State { disable_execute_api_endpoint: api.disable_execute_api_endpoint(), ..state.clone() });
        }
        Ok(state.clone())
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        aws.apigateway.delete_rest_api().rest_api_id(&state.id).send().await.gone("DeleteRestApi")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State { id: "a1".into(), name: "pets".into(), disable_execute_api_endpoint: true, regional: true }
    }

    #[test]
    fn diff() {
        let created =
            Spec { stack: "s".into(), source: Source::Create("pets".into()), disable_execute_api_endpoint: true };
        assert!(RestApi::diff(&created, &state()).is_empty());
        let open = State { disable_execute_api_endpoint: false, ..state() };
        let diff = RestApi::diff(&created, &open);
        assert!(diff.has("disable_execute_api_endpoint") && !diff.replace);
        let edge = State { regional: false, ..state() };
        assert!(RestApi::diff(&created, &edge).replace, "an edge API is replaced by a regional one");
        let adopted = Spec { source: Source::Adopt("a1".into()), ..created };
        assert!(RestApi::diff(&adopted, &edge).is_empty(), "an adopted API's endpoint type is its owner's business");
    }
}
