//! One route of the REST API: its method (CUSTOM authorization with the
//! stack's authorizer) on its path resource (`api_resource`), and its
//! HTTP_PROXY integration, which forwards authorizer context keys as request
//! headers (`integration.request.header.X-Sub = context.authorizer.sub`).
//!
//! Every route of an API the stack created is the stack's: one it no longer
//! declares is deleted. In an adopted API only the declared ones are touched.
//! A changed integration is put again; a changed method is deleted and put
//! again (API Gateway refuses PutMethod on an existing method, which after a
//! lost answer means it was made).

use std::collections::BTreeMap;

use aws_sdk_apigateway::types::IntegrationType;
use serde::{Deserialize, Serialize};

use super::rest_api::{self, RestApi};
use super::kind::{Placement, Context, Diff, Found, Kind, KindIo, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs, Val};

pub struct ApiRoute;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub api_id: Val,
    /// The id of the path resource (`api_resource`) the method hangs on.
    pub resource_id: Val,
    pub authorizer_id: Val,
    pub method: String,
    pub path: String,
    /// The template's path parameters (`id` for `/pets/{id}`).
    pub parameters: Vec<String>,
    pub backend: String,
    pub context_headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub api_id: String,
    pub resource_id: String,
    pub method: String,
    pub path: String,
    pub authorization_type: String,
    pub authorizer_id: String,
    pub integration_type: String,
    pub integration_uri: String,
    pub method_parameters: BTreeMap<String, bool>,
    pub integration_parameters: BTreeMap<String, String>,
}

fn method_parameters(spec: &Spec) -> BTreeMap<String, bool> {
    spec.parameters.iter().map(|p| (format!("method.request.path.{p}"), true)).collect()
}

fn integration_parameters(spec: &Spec) -> BTreeMap<String, String> {
    let mut parameters: BTreeMap<String, String> = spec
        .parameters
        .iter()
        .map(|p| (format!("integration.request.path.{p}"), format!("method.request.path.{p}")))
        .collect();
    for (header, key) in &spec.context_headers {
        parameters.insert(format!("integration.request.header.{header}"), format!("context.authorizer.{key}"));
    }
    parameters
}

/// Every method of the API's resource tree, as routes.
fn routes(api_id: &str, tree: &[aws_sdk_apigateway::types::Resource]) -> Vec<State> {
    let mut routes = Vec::new();
    for resource in tree {
        let (Some(path), Some(resource_id)) = (resource.path(), resource.id()) else { continue };
        for (method_name, method) in resource.resource_methods().into_iter().flatten() {
            let integration = method.method_integration();
            routes.push(State {
                api_id: api_id.to_owned(),
                resource_id: resource_id.to_owned(),
                method: method_name.clone(),
                path: path.to_owned(),
                authorization_type: method.authorization_type().unwrap_or_default().to_owned(),
                authorizer_id: method.authorizer_id().unwrap_or_default().to_owned(),
                integration_type: integration
                    .and_then(|i| i.r#type())
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                integration_uri: integration.and_then(|i| i.uri()).unwrap_or_default().to_owned(),
                method_parameters: method
                    .request_parameters()
                    .map(|p| p.iter().map(|(k, v)| (k.clone(), *v)).collect())
                    .unwrap_or_default(),
                integration_parameters: integration
                    .and_then(|i| i.request_parameters())
                    .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            });
        }
    }
    routes
}

fn route_name(method: &str, path: &str) -> String {
    format!("{method} {path}")
}

async fn put_method(aws: &Aws, spec: &Spec, api_id: &str, resource_id: &str) -> anyhow::Result<()> {
    let put = aws
        .apigateway
        .put_method()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method(&spec.method)
        .authorization_type("CUSTOM")
        .authorizer_id(spec.authorizer_id.known()?)
        .set_request_parameters(Some(method_parameters(spec).into_iter().collect()))
        .send()
        .await;
    match put {
        // Only ever put where there was none (creates, or after its
        // delete): one that exists is this put's, its first answer lost.
        Err(e) if crate::error::already_exists(&e) => Ok(()),
        other => other.map(drop).aws("PutMethod"),
    }
}

async fn put_integration(aws: &Aws, spec: &Spec, api_id: &str, resource_id: &str) -> anyhow::Result<()> {
    aws.apigateway
        .put_integration()
        .rest_api_id(api_id)
        .resource_id(resource_id)
        .http_method(&spec.method)
        .r#type(IntegrationType::HttpProxy)
        .integration_http_method(&spec.method)
        .uri(&spec.backend)
        .set_request_parameters(Some(integration_parameters(spec).into_iter().collect()))
        .send()
        .await
        .aws("PutIntegration")?;
    Ok(())
}

/// The route as just put: what PutMethod and PutIntegration were given (no
/// read-back: the resource tree is the call API Gateway limits most).
fn written(spec: &Spec, api_id: &str, resource_id: &str) -> anyhow::Result<State> {
    Ok(State {
        api_id: api_id.to_owned(),
        resource_id: resource_id.to_owned(),
        method: spec.method.clone(),
        path: spec.path.clone(),
        authorization_type: "CUSTOM".into(),
        authorizer_id: spec.authorizer_id.known()?.to_owned(),
        integration_type: "HTTP_PROXY".into(),
        integration_uri: spec.backend.clone(),
        method_parameters: method_parameters(spec),
        integration_parameters: integration_parameters(spec),
    })
}

super::kind::fields! {
    AuthorizationType = "authorization_type",
    AuthorizerId = "authorizer_id",
    MethodRequestParameters = "method_request_parameters",
    IntegrationType = "integration_type",
    IntegrationUri = "integration_uri",
    IntegrationRequestParameters = "integration_request_parameters",
}

/// The fields of the method itself, rather than of its integration.
const METHOD_FIELDS: [Field; 3] = [Field::AuthorizationType, Field::AuthorizerId, Field::MethodRequestParameters];

impl Kind for ApiRoute {
    const NAME: &'static str = "api_route";
    const PLACEMENT: Placement = Placement::IN_REST_API_DEPLOYED;
    /// No read back: reading a route back costs a whole resource tree (GetResources, 5 per 2 s per
    /// account); its state is what PutMethod and PutIntegration were sent.
    const READ_BACK: bool = false;
    const DEPENDS_ON: &'static [&'static str] = &["rest_api", "api_resource", "api_authorizer"];
    const OBSERVED_UNDER: &'static [&'static str] = &["rest_api"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let authorizer = super::api_authorizer::address(context);
        Ok(context
            .stack
            .api
            .routes
            .iter()
            .map(|r| Spec {
                api_id: rest_api::id(context),
                resource_id: super::api_resource::id(context, &r.path),
                authorizer_id: Val::output(authorizer.clone(), "id"),
                method: r.method.clone(),
                path: r.path.clone(),
                parameters: r.template.parameters(),
                backend: r.backend.clone(),
                context_headers: r.context_headers.clone(),
            })
            .collect())
    }

    fn name(spec: &Spec) -> String {
        route_name(&spec.method, &spec.path)
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::AuthorizationType, state.authorization_type.as_str(), "CUSTOM");
        diff.text(Field::AuthorizerId, state.authorizer_id.clone(), spec.authorizer_id.shown());
        diff.field(Field::MethodRequestParameters, &state.method_parameters, &method_parameters(spec));
        diff.field(Field::IntegrationType, state.integration_type.as_str(), "HTTP_PROXY");
        diff.field(Field::IntegrationUri, state.integration_uri.as_str(), spec.backend.as_str());
        diff.field(Field::IntegrationRequestParameters, &state.integration_parameters, &integration_parameters(spec));
        // API Gateway changes a method's authorization or parameters only by
        // deleting the method (and its integration) and putting it again:
        // the plan says so.
        diff.replace = METHOD_FIELDS.iter().any(|f| diff.has(*f));
        diff
    }

    fn outputs(state: &State) -> Outputs {
        [("resource_id".to_owned(), state.resource_id.clone())].into()
    }

    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        vec![
            rest_api::inside(grants, Access::Read, &["GET"]),
            rest_api::inside(grants, Access::Write, &["PUT", "DELETE"]),
        ]
    }
}

impl KindIo for ApiRoute {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let Some(spec) = scope.desired.first() else { return Ok(Vec::new()) };
        let Some(api) = rest_api::of(scope.parents, &spec.api_id) else { return Ok(Vec::new()) };
        let parent = Address::new(RestApi::NAME, &api.name);
        let declared: Vec<String> = scope.desired.iter().map(Self::name).collect();
        let tree = super::api_resource::shared_tree(scope.shared, scope.aws, &api.state.id).await?;
        let routes = routes(&api.state.id, &tree);
        Ok(routes
            .into_iter()
            .map(|r| Found::new(route_name(&r.method, &r.path), api.ownership, r).inside(parent.clone()))
            .filter(|f| f.ownership == Ownership::Owned || declared.contains(&f.name))
            .collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let name = Self::name(spec);
        let api_id = spec.api_id.known()?;
        let routes = routes(api_id, &super::api_resource::tree(aws.clone(), api_id.to_owned()).await?);
        Ok(routes
            .into_iter()
            .find(|r| r.method == spec.method && r.path == spec.path)
            .map(|r| Found::new(name, Ownership::Owned, r)))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let (api_id, resource_id) = (spec.api_id.known()?, spec.resource_id.known()?);
        put_method(aws, spec, api_id, resource_id).await?;
        put_integration(aws, spec, api_id, resource_id).await?;
        written(spec, api_id, resource_id)
    }

    /// The integration only: a change of the method itself is a replacement
    /// (`diff`), which the executor carries out as delete and create.
    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        anyhow::ensure!(!diff.replace, "api_route {}: a method change is a replacement, not an update", state.method);
        put_integration(aws, spec, &state.api_id, &state.resource_id).await?;
        written(spec, &state.api_id, &state.resource_id)
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        aws.apigateway
            .delete_method()
            .rest_api_id(&state.api_id)
            .resource_id(&state.resource_id)
            .http_method(&state.method)
            .send()
            .await
            .gone("DeleteMethod")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::{Case, check_diff};

    fn spec() -> Spec {
        Spec {
            api_id: Val::Known("a1".into()),
            resource_id: Val::Known("r1".into()),
            authorizer_id: Val::Known("z9".into()),
            method: "GET".into(),
            path: "/pets/{id}".into(),
            parameters: vec!["id".into()],
            backend: "https://backend.example.com/pets/{id}".into(),
            context_headers: [("X-Sub".to_owned(), "sub".to_owned())].into(),
        }
    }

    fn state() -> State {
        State {
            api_id: "a1".into(),
            resource_id: "r1".into(),
            method: "GET".into(),
            path: "/pets/{id}".into(),
            authorization_type: "CUSTOM".into(),
            authorizer_id: "z9".into(),
            integration_type: "HTTP_PROXY".into(),
            integration_uri: "https://backend.example.com/pets/{id}".into(),
            method_parameters: [("method.request.path.id".to_owned(), true)].into(),
            integration_parameters: [
                ("integration.request.path.id".to_owned(), "method.request.path.id".to_owned()),
                ("integration.request.header.X-Sub".to_owned(), "context.authorizer.sub".to_owned()),
            ]
            .into(),
        }
    }

    #[test]
    fn diff() {
        let cases: &[Case<State>] = &[
            (|s| s.integration_type = "HTTP".into(), "integration_type"),
            (|s| s.integration_uri = "https://elsewhere.example.com".into(), "integration_uri"),
            (
                |s| drop(s.integration_parameters.remove("integration.request.header.X-Sub")),
                "integration_request_parameters",
            ),
        ];
        check_diff::<ApiRoute>(&spec(), &state(), cases);
    }

    #[test]
    fn a_change_of_the_method_itself_is_a_replacement() {
        let cases: [Case<State>; 3] = [
            (|s| s.authorization_type = "NONE".into(), "authorization_type"),
            (|s| s.authorizer_id = "old".into(), "authorizer_id"),
            (|s| s.method_parameters.clear(), "method_request_parameters"),
        ];
        for (change, field) in cases {
            let mut state = state();
            change(&mut state);
            let diff = ApiRoute::diff(&spec(), &state);
            let fields: Vec<&str> = diff.fields.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(fields, [field]);
            assert!(diff.replace, "{field}: the method is deleted and put again");
        }
    }

    #[test]
    fn path_parameters_are_mapped_through_to_the_integration() {
        let spec = Spec { parameters: vec!["id".into(), "proxy".into()], ..spec() };
        assert_eq!(
            method_parameters(&spec).keys().collect::<Vec<_>>(),
            ["method.request.path.id", "method.request.path.proxy"]
        );
        let integration = integration_parameters(&spec);
        assert_eq!(integration["integration.request.path.proxy"], "method.request.path.proxy");
        assert_eq!(integration["integration.request.header.X-Sub"], "context.authorizer.sub");
    }
}
