//! The REST API itself: created (tagged, regional) or adopted by id. Its
//! default `execute-api` endpoint is another kind's business
//! (`execute_api`): a new API is only created with it already off when the
//! stack has a custom domain.
//!
//! An adopted API is configured, never deleted; an API the stack created and
//! no longer declares (renamed) is deleted, and everything in it with it.
//!
//! CreateRestApi takes no idempotency token, and API Gateway lets two APIs
//! share a name: a create whose answer was lost is looked for before it is
//! sent again (`retry::create_or_find`). Two APIs of the stack's name and tag
//! (made by an older run that lost an answer) are told apart here: the one
//! a stage serves from, else the one with any configuration, else the
//! oldest, is the stack's; an empty extra one is deleted; two that both
//! hold configuration stop `apply` naming both, since only a person can
//! tell which to keep.

use anyhow::Context as _;
use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, IpAddressType, Op, PatchOperation};
use serde::{Deserialize, Serialize};

use super::kind::{Placement, Context, Diff, Found, Kind, KindIo, OWNER_TAG, Observation, Ownership, Scope, owner_tags};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs, Val};
use crate::retry::{self, Created};
use crate::stack::ApiSource;

pub struct RestApi;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub source: Source,
    /// Whether a new API is created with `execute-api` off (the stack has a
    /// custom domain; a new API has no clients to cut off).
    pub created_without_execute_api: bool,
    /// `ipv4` or `dualstack` (`api.ip_address_type`), for an API the stack creates.
    #[serde(default = "ipv4")]
    pub ip_address_type: String,
}

fn ipv4() -> String {
    "ipv4".into()
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
    /// `ipv4` or `dualstack` (API Gateway's answer, `ipv4` when it gives none).
    #[serde(default = "ipv4")]
    pub ip_address_type: String,
    /// The id of the resource `/`.
    #[serde(default)]
    pub root_resource_id: String,
    /// Other APIs of the same name and tag that hold configuration too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ambiguous_with: Vec<String>,
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

/// The id of the API's root resource `/`, for the resources under it.
pub fn root_resource_id(context: &Context<'_>) -> Val {
    Val::output(address(context), "root_resource_id")
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

/// A statement for `verbs` (`GET`, `POST`, …) on the stack's REST API and
/// everything in it, for the kinds that live there: by its id when it is
/// adopted; else on any REST API that carries the stack's tag. API Gateway
/// documents that a REST API's children (resources, methods, integrations,
/// authorizers, stages, deployments, gateway responses) inherit its tags
/// for IAM, so `aws:ResourceTag` reaches them, and no other team's API.
pub fn inside(grants: &Grants<'_>, access: Access, verbs: &[&str]) -> Statement {
    let actions: Vec<String> = verbs.iter().map(|verb| format!("apigateway:{verb}")).collect();
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    let suffix = if access == Access::Read { "Read" } else { "Write" };
    match &grants.stack.api.source {
        ApiSource::Adopt(id) => Statement::allow(
            &format!("AdoptedRestApi{suffix}"),
            access,
            &actions,
            vec![grants.apigateway(&format!("/restapis/{id}")), grants.apigateway(&format!("/restapis/{id}/*"))],
        ),
        ApiSource::Create(_) => stack_apis(grants, access, &actions),
    }
}

/// `actions` on every REST API carrying the stack's tag.
fn stack_apis(grants: &Grants<'_>, access: Access, actions: &[&str]) -> Statement {
    let suffix = if access == Access::Read { "Read" } else { "Write" };
    let statement =
        Statement::allow(&format!("StackRestApi{suffix}"), access, actions, vec![grants.apigateway("/restapis/*")]);
    grants.on_stack_resources(statement)
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

/// The state in a `RestApi` or a `CreateRestApiOutput` (same accessors,
/// different types).
macro_rules! state_of {
    ($api:expr) => {
        State {
            id: $api.id().unwrap_or_default().to_owned(),
            name: $api.name().unwrap_or_default().to_owned(),
            disable_execute_api_endpoint: $api.disable_execute_api_endpoint(),
            regional: $api.endpoint_configuration().is_some_and(|c| c.types().contains(&EndpointType::Regional)),
            ip_address_type: $api
                .endpoint_configuration()
                .and_then(|c| c.ip_address_type())
                .map_or_else(ipv4, |t| t.as_str().to_owned()),
            root_resource_id: $api.root_resource_id().unwrap_or_default().to_owned(),
            ambiguous_with: Vec::new(),
        }
    };
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
    Ok(Found::new(id, Ownership::Adopted, state_of!(api)))
}

/// Every REST API carrying the stack's tag, with its creation time. Names
/// are not unique in API Gateway: another API of the same name is someone
/// else's business.
async fn tagged(aws: &Aws, stack: &str) -> anyhow::Result<Vec<(State, i64)>> {
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
        .map(|api| (state_of!(api), api.created_date().map_or(0, |d| d.secs())))
        .collect())
}

/// What an API holds: whether a stage serves from it, and whether it holds
/// any configuration (a stage, an authorizer, a resource besides `/`).
async fn contents(aws: &Aws, id: &str) -> anyhow::Result<(bool, bool)> {
    let (stages, authorizers, resources) = tokio::join!(
        aws.apigateway.get_stages().rest_api_id(id).send(),
        aws.apigateway.get_authorizers().rest_api_id(id).limit(1).send(),
        aws.apigateway.get_resources().rest_api_id(id).limit(2).send(),
    );
    let staged = !stages.aws("GetStages")?.item().is_empty();
    let configured = staged
        || !authorizers.aws("GetAuthorizers")?.items().is_empty()
        || resources.aws("GetResources")?.items().len() > 1;
    Ok((staged, configured))
}

/// The stack's APIs: one per name; an extra one of the same name is named
/// `NAME (ID)` (and, owned and undeclared, deleted).
async fn owned(aws: &Aws, stack: &str) -> anyhow::Result<Vec<Found<State>>> {
    let mut by_name: std::collections::BTreeMap<String, Vec<(State, i64)>> = Default::default();
    for (state, created) in tagged(aws, stack).await? {
        by_name.entry(state.name.clone()).or_default().push((state, created));
    }
    let mut found = Vec::new();
    for (name, apis) in by_name {
        if apis.len() == 1 {
            found.extend(apis.into_iter().map(|(state, _)| Found::new(name.clone(), Ownership::Owned, state)));
            continue;
        }
        let reads = apis.iter().map(|(state, _)| contents(aws, &state.id));
        let read = futures::future::try_join_all(reads).await?;
        let mut ranked: Vec<((bool, bool), State, i64)> =
            read.into_iter().zip(apis).map(|(contents, (state, created))| (contents, state, created)).collect();
        // Serving first, then configured, then the oldest; the id settles a tie.
        ranked.sort_by(|a, b| (!a.0.0, !a.0.1, a.2, &a.1.id).cmp(&(!b.0.0, !b.0.1, b.2, &b.1.id)));
        let mut ranked = ranked.into_iter();
        let Some((_, mut kept, _)) = ranked.next() else { continue };
        for ((_, configured), extra, _) in ranked {
            if configured {
                kept.ambiguous_with.push(extra.id.clone());
            }
            found.push(Found::new(format!("{name} ({})", extra.id), Ownership::Owned, extra));
        }
        found.push(Found::new(name, Ownership::Owned, kept));
    }
    Ok(found)
}

/// The id of the stack's REST API (adopted, or the one it created), if it exists.
pub async fn find_id(aws: &Aws, stack: &crate::stack::Stack) -> anyhow::Result<Option<String>> {
    Ok(match &stack.api.source {
        ApiSource::Adopt(id) => Some(id.clone()),
        ApiSource::Create(name) => find_named(aws, &stack.name, name).await?.map(|found| found.state.id),
    })
}

/// The stack's API of this name, if any.
async fn find_named(aws: &Aws, stack: &str, name: &str) -> anyhow::Result<Option<Found<State>>> {
    Ok(owned(aws, stack).await?.into_iter().find(|api| api.name == name))
}

super::kind::fields! {
    EndpointType = "endpoint_type",
    IpAddressType = "ip_address_type",
}

impl Kind for RestApi {
    const NAME: &'static str = "rest_api";
    const PLACEMENT: Placement = Placement::REST_API;
    /// No read back: CreateRestApi answers the API (or it was found): its state is that answer.
    const READ_BACK: bool = false;
    const DEPENDS_ON: &'static [&'static str] = &[];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        Ok(vec![Spec {
            stack: context.stack.name.clone(),
            source: source(context),
            created_without_execute_api: context.stack.execute_api_off(),
            ip_address_type: context.stack.api.ip_address_type.as_str().to_owned(),
        }])
    }

    fn name(spec: &Spec) -> String {
        name_of(&spec.source)
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        if matches!(spec.source, Source::Create(_)) {
            // The endpoint type of an API cannot be changed in place here.
            diff.field(Field::EndpointType, if state.regional { "REGIONAL" } else { "other" }, "REGIONAL");
            diff.replace = !state.regional;
            // Changed in place, and served at once (no deployment needed).
            diff.text(Field::IpAddressType, state.ip_address_type.clone(), spec.ip_address_type.clone());
        }
        diff
    }

    fn blockers(_: Option<&Spec>, state: &State) -> Vec<String> {
        if state.ambiguous_with.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "REST APIs {} and {} are both named {:?}, carry the stack's tag and hold configuration; the deployer \
             cannot tell which to keep. Delete the one you do not want (aws apigateway delete-rest-api \
             --rest-api-id ID) and apply again",
            state.id,
            state.ambiguous_with.join(", "),
            state.name
        )]
    }

    /// Listing is on the collection, which has no tags; a create must tag
    /// the API as the stack's and nothing else (API Gateway authorises the
    /// tags sent with CreateRestApi as a PUT on the tags of an API not yet
    /// named); reading and deleting, only APIs that carry the stack's tag,
    /// also where the stack now adopts one (to prune what it made before).
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let mut statements = vec![
            Statement::allow("RestApiList", Access::Read, &["apigateway:GET"], vec![grants.apigateway("/restapis")]),
            stack_apis(grants, Access::Read, &["apigateway:GET"]),
            stack_apis(grants, Access::Write, &["apigateway:DELETE"]),
        ];
        match &grants.stack.api.source {
            ApiSource::Create(_) => statements.extend([
                stack_apis(grants, Access::Write, &["apigateway:PATCH"]),
                grants.tagged_as_stack(
                    Statement::allow(
                        "RestApiCreate",
                        Access::Write,
                        &["apigateway:POST"],
                        vec![grants.apigateway("/restapis")],
                    ),
                    &[OWNER_TAG],
                ),
                grants.tagged_as_stack(
                    Statement::allow(
                        "RestApiTagOnCreate",
                        Access::Write,
                        &["apigateway:PUT"],
                        vec![grants.apigateway_tags("/restapis/*")],
                    ),
                    &[OWNER_TAG],
                ),
            ]),
            ApiSource::Adopt(_) => statements.push(inside(grants, Access::Read, &["GET"])),
        }
        statements
    }

    fn outputs(state: &State) -> Outputs {
        [
            ("id".to_owned(), state.id.clone()),
            ("root_resource_id".to_owned(), state.root_resource_id.clone()),
            ("disable_execute_api_endpoint".to_owned(), state.disable_execute_api_endpoint.to_string()),
        ]
        .into()
    }
}

impl KindIo for RestApi {
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
            Source::Create(name) => find_named(aws, &spec.stack, name).await,
        }
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let Source::Create(name) = &spec.source else { anyhow::bail!("an adopted REST API is never created") };
        let created = retry::create_or_find(
            "CreateRestApi",
            || {
                aws.apigateway
                    .create_rest_api()
                    .name(name)
                    .description(format!("OAuth 2.0 / mTLS protected API of stack {}", spec.stack))
                    .endpoint_configuration(
                        EndpointConfiguration::builder()
                            .types(EndpointType::Regional)
                            .ip_address_type(IpAddressType::from(spec.ip_address_type.as_str()))
                            .build(),
                    )
                    .disable_execute_api_endpoint(spec.created_without_execute_api)
                    .set_tags(Some(owner_tags(&spec.stack)))
                    .customize()
                    .config_override(crate::aws::answer_may_be_lost())
                    .send()
            },
            || async { Ok(find_named(aws, &spec.stack, name).await?.map(|found| found.state)) },
        )
        .await?;
        let state = match created {
            Created::New(api) => {
                State { regional: true, ip_address_type: spec.ip_address_type.clone(), ..state_of!(api) }
            }
            Created::Found(state) => state,
        };
        anyhow::ensure!(!state.id.is_empty(), "CreateRestApi answered without an id");
        Ok(state)
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        // (The endpoint type is replaced, never updated.)
        if diff.has(Field::IpAddressType) {
            let patch = PatchOperation::builder()
                .op(Op::Replace)
                .path("/endpointConfiguration/ipAddressType")
                .value(&spec.ip_address_type)
                .build();
            aws.apigateway
                .update_rest_api()
                .rest_api_id(&state.id)
                .patch_operations(patch)
                .send()
                .await
                .aws("UpdateRestApi")?;
        }
        Ok(State { ip_address_type: spec.ip_address_type.clone(), ..state.clone() })
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        aws.apigateway.delete_rest_api().rest_api_id(&state.id).send().await.gone("DeleteRestApi")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            id: "a1".into(),
            name: "pets".into(),
            disable_execute_api_endpoint: true,
            regional: true,
            ip_address_type: "ipv4".into(),
            root_resource_id: "r0".into(),
            ambiguous_with: Vec::new(),
        }
    }

    #[test]
    fn diff() {
        let created = Spec {
            stack: "s".into(),
            source: Source::Create("pets".into()),
            created_without_execute_api: true,
            ip_address_type: "ipv4".into(),
        };
        assert!(RestApi::diff(&created, &state()).is_empty());
        let open = State { disable_execute_api_endpoint: false, ..state() };
        assert!(RestApi::diff(&created, &open).is_empty(), "execute-api is the execute_api kind's business");
        let edge = State { regional: false, ..state() };
        assert!(RestApi::diff(&created, &edge).replace, "an edge API is replaced by a regional one");
        let adopted = Spec { source: Source::Adopt("a1".into()), ..created.clone() };
        assert!(RestApi::diff(&adopted, &edge).is_empty(), "an adopted API's endpoint type is its owner's business");
        let dualstack = Spec { ip_address_type: "dualstack".into(), ..created };
        let diff = RestApi::diff(&dualstack, &state());
        assert!(diff.has(Field::IpAddressType) && !diff.replace, "the address type changes in place");
        let adopted = Spec { source: Source::Adopt("a1".into()), ..dualstack };
        assert!(RestApi::diff(&adopted, &state()).is_empty(), "and an adopted API's is its owner's");
    }

    #[test]
    fn two_configured_apis_of_one_name_block_apply_naming_both() {
        assert!(RestApi::blockers(None, &state()).is_empty());
        let ambiguous = State { ambiguous_with: vec!["b2".into()], ..state() };
        let blockers = RestApi::blockers(None, &ambiguous);
        assert_eq!(blockers.len(), 1);
        assert!(blockers[0].contains("a1 and b2") && blockers[0].contains("\"pets\""), "{}", blockers[0]);
    }
}
