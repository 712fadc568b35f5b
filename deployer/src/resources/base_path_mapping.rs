//! The base path of the custom domain mapped to the API's stage. It can only
//! exist once the domain and the stage do, and goes before the domain. A
//! mapping pointing elsewhere is updated in place (UpdateBasePathMapping):
//! a delete and a create would leave the path answering 404 in between.

use aws_sdk_apigateway::types::{Op, PatchOperation};
use serde::{Deserialize, Serialize};

use super::domain_name::{self, DomainName};
use super::kind::{Context, Diff, Found, Kind, KindIo, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Outputs, Val};

pub struct BasePathMapping;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub domain: String,
    /// Empty for the root.
    pub base_path: String,
    pub api_id: Val,
    pub stage: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub domain: String,
    /// Empty for the root.
    pub base_path: String,
    pub api_id: String,
    pub stage: String,
}

/// API Gateway's name for the root mapping.
const ROOT: &str = "(none)";

fn key(base_path: &str) -> &str {
    if base_path.is_empty() { ROOT } else { base_path }
}

fn name(domain: &str, base_path: &str) -> String {
    format!("{domain}/{base_path}")
}

async fn list(aws: &Aws, domain: &str) -> anyhow::Result<Vec<State>> {
    let Some(page) = aws
        .apigateway
        .get_base_path_mappings()
        .domain_name(domain)
        .limit(500)
        .send()
        .await
        .found("GetBasePathMappings")?
    else {
        return Ok(Vec::new());
    };
    Ok(page
        .items()
        .iter()
        .map(|m| State {
            domain: domain.to_owned(),
            base_path: m.base_path().filter(|p| *p != ROOT).unwrap_or_default().to_owned(),
            api_id: m.rest_api_id().unwrap_or_default().to_owned(),
            stage: m.stage().unwrap_or_default().to_owned(),
        })
        .collect())
}

super::kind::fields! {
    RestApiId = "rest_api_id",
    Stage = "stage",
}

impl Kind for BasePathMapping {
    const NAME: &'static str = "base_path_mapping";
    const DEPENDS_ON: &'static [&'static str] = &["domain_name", "stage"];
    const OBSERVED_UNDER: &'static [&'static str] = &["domain_name"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        Ok(context
            .stack
            .domain
            .iter()
            .map(|d| Spec {
                domain: d.name.clone(),
                base_path: d.base_path.clone(),
                api_id: super::rest_api::id(context),
                stage: context.stack.stage.name.clone(),
            })
            .collect())
    }

    fn name(spec: &Spec) -> String {
        name(&spec.domain, &spec.base_path)
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.text(Field::RestApiId, state.api_id.clone(), spec.api_id.shown());
        diff.field(Field::Stage, state.stage.as_str(), spec.stage.as_str());
        diff
    }

    fn outputs(_: &State) -> Outputs {
        Outputs::new()
    }

    /// Mappings inherit their domain's tags for IAM, as API Gateway
    /// documents: only those of a domain carrying the stack's tag.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let mappings = vec![
            grants.apigateway("/domainnames/*/basepathmappings"),
            grants.apigateway("/domainnames/*/basepathmappings/*"),
        ];
        vec![
            grants.on_stack_resources(Statement::allow(
                "StackBasePathsRead",
                Access::Read,
                &["apigateway:GET"],
                mappings.clone(),
            )),
            grants.on_stack_resources(Statement::allow(
                "StackBasePathsWrite",
                Access::Write,
                &["apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"],
                mappings,
            )),
        ]
    }
}

impl KindIo for BasePathMapping {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let mut found = Vec::new();
        // Mappings on the stack's domains, declared or not (a domain the
        // stack no longer declares still has its mappings to remove first).
        for domain in scope.parents.of::<DomainName>().iter().filter(|d| d.ownership == Ownership::Owned) {
            for mapping in list(scope.aws, &domain.name).await? {
                let parent = domain_name::address(&domain.name);
                found
                    .push(Found::new(name(&domain.name, &mapping.base_path), Ownership::Owned, mapping).inside(parent));
            }
        }
        Ok(found)
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let found = list(aws, &spec.domain).await?.into_iter().find(|m| m.base_path == spec.base_path);
        Ok(found.map(|m| Found::new(Self::name(spec), Ownership::Owned, m)))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let api_id = spec.api_id.known()?;
        let mut request =
            aws.apigateway.create_base_path_mapping().domain_name(&spec.domain).rest_api_id(api_id).stage(&spec.stage);
        if !spec.base_path.is_empty() {
            request = request.base_path(&spec.base_path);
        }
        match request.send().await {
            Ok(_) => {}
            // Made by this create, its first answer lost: bring it in line.
            Err(e) if crate::error::already_exists(&e) => return super::kind::made_already::<Self>(aws, spec).await,
            Err(e) => return Err(e).aws("CreateBasePathMapping"),
        }
        Ok(State {
            domain: spec.domain.clone(),
            base_path: spec.base_path.clone(),
            api_id: api_id.to_owned(),
            stage: spec.stage.clone(),
        })
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        let api_id = spec.api_id.known()?;
        let replace =
            |path: &str, value: &str| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
        let mut operations = Vec::new();
        if diff.has(Field::RestApiId) {
            operations.push(replace("/restapiId", api_id));
        }
        if diff.has(Field::Stage) {
            operations.push(replace("/stage", &spec.stage));
        }
        if !operations.is_empty() {
            aws.apigateway
                .update_base_path_mapping()
                .domain_name(&state.domain)
                .base_path(key(&state.base_path))
                .set_patch_operations(Some(operations))
                .send()
                .await
                .aws("UpdateBasePathMapping")?;
        }
        Ok(State { api_id: api_id.to_owned(), stage: spec.stage.clone(), ..state.clone() })
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        aws.apigateway
            .delete_base_path_mapping()
            .domain_name(&state.domain)
            .base_path(key(&state.base_path))
            .send()
            .await
            .gone("DeleteBasePathMapping")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff() {
        let spec =
            Spec { domain: "d".into(), base_path: "v1".into(), api_id: Val::Known("a1".into()), stage: "prod".into() };
        let state = State { domain: "d".into(), base_path: "v1".into(), api_id: "a1".into(), stage: "prod".into() };
        assert!(BasePathMapping::diff(&spec, &state).is_empty());
        let elsewhere = State { api_id: "a0".into(), ..state.clone() };
        let diff = BasePathMapping::diff(&spec, &elsewhere);
        assert!(diff.has(Field::RestApiId) && !diff.replace, "a mapping to another API is updated in place");
        let other_stage = State { stage: "dev".into(), ..state };
        assert!(BasePathMapping::diff(&spec, &other_stage).has(Field::Stage));
        assert_eq!(key(""), ROOT);
    }
}
