//! The REQUEST authorizer on the REST API: the Lambda function it calls, its
//! identity sources and cache TTL. It calls the function with no role of
//! its own (no `authorizerCredentials`): the function's resource policy lets
//! API Gateway invoke it for this authorizer (`authorizer_permission`), so
//! no role exists that the pipeline could widen. A change reaches clients
//! only with a new deployment.
//!
//! Authorizers carry no tags: in an API the stack created, every authorizer
//! is the stack's; in an adopted API, only the one of the stack's name.

use anyhow::Context as _;
use aws_sdk_apigateway::types::{AuthorizerType, Op, PatchOperation};
use serde::{Deserialize, Serialize};

use super::rest_api::{self, RestApi};
use super::kind::{Placement, Context, Diff, Found, Kind, KindIo, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs, Val};
use crate::stack::names;

pub struct ApiAuthorizer;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub api_id: Val,
    pub name: String,
    /// `arn:{partition}:apigateway:{region}:lambda:path/2015-03-31/functions/{function}/invocations`.
    pub uri: String,
    pub identity_sources: Vec<String>,
    pub ttl_seconds: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub api_id: String,
    pub id: String,
    pub name: String,
    pub kind: String,
    pub uri: String,
    pub credentials: String,
    /// Identity sources as API Gateway lists them, spaces removed.
    pub identity_source: String,
    pub ttl_seconds: i32,
}

pub fn address(context: &Context<'_>) -> Address {
    Address::new(ApiAuthorizer::NAME, names::api_authorizer(&context.stack.name))
}

fn identity_source(spec: &Spec) -> String {
    spec.identity_sources.join(", ")
}

/// The state in an `Authorizer` or a `CreateAuthorizerOutput` (same
/// accessors, different types).
macro_rules! state_of {
    ($api_id:expr, $a:expr) => {
        State {
            api_id: $api_id.to_owned(),
            id: $a.id().unwrap_or_default().to_owned(),
            name: $a.name().unwrap_or_default().to_owned(),
            kind: $a.r#type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
            uri: $a.authorizer_uri().unwrap_or_default().to_owned(),
            credentials: $a.authorizer_credentials().unwrap_or_default().to_owned(),
            identity_source: $a.identity_source().unwrap_or_default().replace(' ', ""),
            ttl_seconds: $a.authorizer_result_ttl_in_seconds().unwrap_or(300),
        }
    };
}

async fn list(aws: &Aws, api_id: &str) -> anyhow::Result<Vec<State>> {
    let page = aws.apigateway.get_authorizers().rest_api_id(api_id).limit(500).send().await.aws("GetAuthorizers")?;
    Ok(page.items().iter().map(|a| state_of!(api_id, a)).collect())
}

super::kind::fields! {
    Type = "type",
    AuthorizerUri = "authorizer_uri",
    AuthorizerCredentials = "authorizer_credentials",
    IdentitySource = "identity_source",
    AuthorizerResultTtlInSeconds = "authorizer_result_ttl_in_seconds",
}

impl Kind for ApiAuthorizer {
    const NAME: &'static str = "api_authorizer";
    const PLACEMENT: Placement = Placement::IN_REST_API_DEPLOYED;
    /// No read back: CreateAuthorizer answers the authorizer: its state is that answer.
    const READ_BACK: bool = false;
    const DEPENDS_ON: &'static [&'static str] = &["rest_api", "lambda_function"];
    const OBSERVED_UNDER: &'static [&'static str] = &["rest_api"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let function_arn = context.arns().function(&context.stack.name);
        let a = &context.stack.authorizer;
        Ok(vec![Spec {
            api_id: rest_api::id(context),
            name: names::api_authorizer(&context.stack.name),
            uri: format!(
                "arn:{}:apigateway:{}:lambda:path/2015-03-31/functions/{function_arn}/invocations",
                context.partition, context.region
            ),
            identity_sources: a.identity_sources.clone(),
            ttl_seconds: a.cache_ttl_seconds,
        }])
    }

    fn name(spec: &Spec) -> String {
        spec.name.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::Type, state.kind.as_str(), "REQUEST");
        diff.replace = state.kind != "REQUEST";
        diff.field(Field::AuthorizerUri, state.uri.as_str(), spec.uri.as_str());
        // None: an earlier deployer's invoke role is taken off.
        diff.field(Field::AuthorizerCredentials, state.credentials.as_str(), "");
        diff.field(Field::IdentitySource, state.identity_source.clone(), identity_source(spec).replace(' ', ""));
        diff.field(Field::AuthorizerResultTtlInSeconds, state.ttl_seconds, spec.ttl_seconds);
        diff
    }

    fn outputs(state: &State) -> Outputs {
        [("id".to_owned(), state.id.clone())].into()
    }

    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        vec![
            rest_api::inside(grants, Access::Read, &["GET"]),
            rest_api::inside(grants, Access::Write, &["POST", "PATCH", "DELETE"]),
        ]
    }
}

impl KindIo for ApiAuthorizer {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let Some(spec) = scope.desired.first() else { return Ok(Vec::new()) };
        let Some(api) = rest_api::of(scope.parents, &spec.api_id) else { return Ok(Vec::new()) };
        let parent = Address::new(RestApi::NAME, &api.name);
        Ok(list(scope.aws, &api.state.id)
            .await?
            .into_iter()
            .filter(|a| api.ownership == Ownership::Owned || a.name == spec.name)
            .map(|a| Found::new(a.name.clone(), api.ownership, a).inside(parent.clone()))
            .collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let api_id = spec.api_id.known()?;
        let found = list(aws, api_id).await?.into_iter().find(|a| a.name == spec.name);
        Ok(found.map(|a| Found::new(a.name.clone(), Ownership::Owned, a)))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let api_id = spec.api_id.known()?;
        let created = aws
            .apigateway
            .create_authorizer()
            .rest_api_id(api_id)
            .name(&spec.name)
            .r#type(AuthorizerType::Request)
            .authorizer_uri(&spec.uri)
            .identity_source(identity_source(spec))
            .authorizer_result_ttl_in_seconds(spec.ttl_seconds)
            .send()
            .await;
        match created {
            // API Gateway answers with the authorizer as created.
            Ok(created) => Ok(state_of!(api_id, created)),
            // Names are unique in an API: this create's first answer was lost.
            Err(e) if crate::error::already_exists(&e) => super::kind::made_already::<Self>(aws, spec).await,
            Err(e) => Err(e).aws("CreateAuthorizer"),
        }
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        let replace =
            |path: &str, value: String| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
        let mut patches = Vec::new();
        if diff.has(Field::AuthorizerUri) {
            patches.push(replace("/authorizerUri", spec.uri.clone()));
        }
        if diff.has(Field::AuthorizerCredentials) {
            patches.push(replace("/authorizerCredentials", String::new()));
        }
        if diff.has(Field::IdentitySource) {
            patches.push(replace("/identitySource", identity_source(spec)));
        }
        if diff.has(Field::AuthorizerResultTtlInSeconds) {
            patches.push(replace("/authorizerResultTtlInSeconds", spec.ttl_seconds.to_string()));
        }
        aws.apigateway
            .update_authorizer()
            .rest_api_id(&state.api_id)
            .authorizer_id(&state.id)
            .set_patch_operations(Some(patches))
            .send()
            .await
            .aws("UpdateAuthorizer")?;
        Ok(Self::find(aws, spec).await?.context("authorizer vanished during update")?.state)
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        aws.apigateway
            .delete_authorizer()
            .rest_api_id(&state.api_id)
            .authorizer_id(&state.id)
            .send()
            .await
            .gone("DeleteAuthorizer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::{Case, check_diff};

    fn spec() -> Spec {
        Spec {
            api_id: Val::Known("a1".into()),
            name: "s-oauth".into(),
            uri: "arn:aws:apigateway:eu-west-1:lambda:path/2015-03-31/functions/f/invocations".into(),
            identity_sources: vec![
                "method.request.header.Authorization".into(),
                "context.identity.clientCert.clientCertPem".into(),
            ],
            ttl_seconds: 300,
        }
    }

    fn state() -> State {
        State {
            api_id: "a1".into(),
            id: "z9".into(),
            name: "s-oauth".into(),
            kind: "REQUEST".into(),
            uri: spec().uri,
            credentials: String::new(),
            identity_source: "method.request.header.Authorization,context.identity.clientCert.clientCertPem".into(),
            ttl_seconds: 300,
        }
    }

    #[test]
    fn diff() {
        let cases: &[Case<State>] = &[
            (|s| s.uri = "arn:other".into(), "authorizer_uri"),
            (|s| s.credentials = "arn:aws:iam::1:role/s-authorizer-invoke".into(), "authorizer_credentials"),
            (|s| s.identity_source = "method.request.header.Authorization".into(), "identity_source"),
            (|s| s.ttl_seconds = 0, "authorizer_result_ttl_in_seconds"),
        ];
        check_diff::<ApiAuthorizer>(&spec(), &state(), cases);
        let token = State { kind: "TOKEN".into(), ..state() };
        assert!(ApiAuthorizer::diff(&spec(), &token).replace, "a TOKEN authorizer is replaced");
    }
}
