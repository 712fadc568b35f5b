//! One path resource of the REST API (`/pets`, `/pets/{id}`): the tree the
//! routes' methods hang on. Every prefix of every route's path is one; `/`
//! is the API's own (its root).
//!
//! API Gateway allows one variable path part per parent: renaming
//! `/pets/{id}` to `/pets/{petId}` means deleting the old resource before
//! creating the new one (`DELETES_FIRST`; nothing clients see changes until
//! the stage deploys). A resource no route needs any more is deleted with
//! what is left under it. In an adopted API only the declared resources are
//! touched, and never deleted.
//!
//! CreateResource of a path part that exists is refused with a
//! `ConflictException`: after a lost answer, that means "made", and the
//! resource is read back.

use std::sync::Arc;

use anyhow::Context as _;
use aws_sdk_apigateway::types::Resource;
use serde::{Deserialize, Serialize};

use super::kind::SharedReads;
use super::rest_api::{self, RestApi};
use super::kind::{Placement, AnyField, Context, Diff, Found, Kind, KindIo, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs, Val};

pub struct ApiResource;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub api_id: Val,
    pub path: String,
    /// The parent resource's id (the root's for a top-level path).
    pub parent_id: Val,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub api_id: String,
    pub id: String,
    pub path: String,
}

pub fn address(path: &str) -> Address {
    Address::new(ApiResource::NAME, path)
}

/// The id of the resource at `path`, for what hangs on it (`/` is the root).
pub fn id(context: &Context<'_>, path: &str) -> Val {
    if path == "/" { rest_api::root_resource_id(context) } else { Val::output(address(path), "id") }
}

/// `/pets/{id}` → `/pets`; a top-level path → `/`.
fn parent_path(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(at) => &path[..at],
    }
}

/// The API's resource tree with every method and integration on it: what
/// this kind and `api_route` read.
pub async fn tree(aws: Aws, api_id: String) -> anyhow::Result<Vec<Resource>> {
    aws.apigateway
        .get_resources()
        .rest_api_id(api_id)
        .limit(500)
        .embed("methods")
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .aws("GetResources")
}

/// The tree, read once per observation for this kind and `api_route`.
pub async fn shared_tree(scope_shared: &SharedReads, aws: &Aws, api_id: &str) -> anyhow::Result<Arc<Vec<Resource>>> {
    scope_shared.get(format!("GetResources {api_id}"), tree(aws.clone(), api_id.to_owned())).await
}

/// Every resource of the API but its root, by path.
fn states(api_id: &str, tree: &[Resource]) -> Vec<State> {
    tree.iter()
        .filter_map(|r| Some((r.path()?, r.id()?)))
        .filter(|(path, _)| *path != "/")
        .map(|(path, id)| State { api_id: api_id.to_owned(), id: id.to_owned(), path: path.to_owned() })
        .collect()
}

impl Kind for ApiResource {
    const NAME: &'static str = "api_resource";
    const PLACEMENT: Placement = Placement { deletes_first: true, ..Placement::IN_REST_API_DEPLOYED };
    /// No read back: CreateResource answers the resource: its state is that answer.
    const READ_BACK: bool = false;
    const DEPENDS_ON: &'static [&'static str] = &["rest_api"];
    const OBSERVED_UNDER: &'static [&'static str] = &["rest_api"];
    type Spec = Spec;
    type State = State;
    /// A path resource is its path: it has no field to change.
    type Field = AnyField;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let mut paths = std::collections::BTreeSet::new();
        for route in &context.stack.api.routes {
            paths.extend(route.template.resource_paths());
        }
        Ok(paths
            .into_iter()
            .map(|path| Spec { api_id: rest_api::id(context), parent_id: id(context, parent_path(&path)), path })
            .collect())
    }

    fn name(spec: &Spec) -> String {
        spec.path.clone()
    }

    fn diff(_: &Spec, _: &State) -> Diff<AnyField> {
        // A path resource is its path: nothing to change in place.
        Diff::default()
    }

    fn outputs(state: &State) -> Outputs {
        [("id".to_owned(), state.id.clone())].into()
    }

    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        vec![
            rest_api::inside(grants, Access::Read, &["GET"]),
            rest_api::inside(grants, Access::Write, &["POST", "DELETE"]),
        ]
    }
}

impl KindIo for ApiResource {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let Some(spec) = scope.desired.first() else { return Ok(Vec::new()) };
        let Some(api) = rest_api::of(scope.parents, &spec.api_id) else { return Ok(Vec::new()) };
        let api_address = Address::new(RestApi::NAME, &api.name);
        let declared: Vec<&str> = scope.desired.iter().map(|s| s.path.as_str()).collect();
        let tree = shared_tree(scope.shared, scope.aws, &api.state.id).await?;
        Ok(states(&api.state.id, &tree)
            .into_iter()
            .filter(|r| api.ownership == Ownership::Owned || declared.contains(&r.path.as_str()))
            .map(|r| {
                // It goes with its parent resource, or with the API.
                let parent = match parent_path(&r.path) {
                    "/" => api_address.clone(),
                    parent => address(parent),
                };
                Found::new(r.path.clone(), api.ownership, r).inside(parent)
            })
            .collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let api_id = spec.api_id.known()?;
        let tree = tree(aws.clone(), api_id.to_owned()).await?;
        let found = states(api_id, &tree).into_iter().find(|r| r.path == spec.path);
        Ok(found.map(|r| Found::new(r.path.clone(), Ownership::Owned, r)))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let api_id = spec.api_id.known()?;
        let part = spec.path.rsplit('/').next().unwrap_or_default();
        let created = aws
            .apigateway
            .create_resource()
            .rest_api_id(api_id)
            .parent_id(spec.parent_id.known()?)
            .path_part(part)
            .send()
            .await;
        match created {
            Ok(resource) => Ok(State {
                api_id: api_id.to_owned(),
                id: resource.id().context("CreateResource answered without an id")?.to_owned(),
                path: spec.path.clone(),
            }),
            // Made already: by this create, whose first answer was lost.
            Err(e) if crate::error::already_exists(&e) => super::kind::made_already::<Self>(aws, spec).await,
            Err(e) => Err(e).aws(&format!("CreateResource {}", spec.path)),
        }
    }

    async fn update(_: &Aws, _: &Spec, state: &State, _: &Diff<AnyField>) -> anyhow::Result<State> {
        Ok(state.clone())
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        // Deletes what is under it too (resources and methods).
        aws.apigateway
            .delete_resource()
            .rest_api_id(&state.api_id)
            .resource_id(&state.id)
            .send()
            .await
            .gone("DeleteResource")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(parent_path("/pets"), "/");
        assert_eq!(parent_path("/pets/{id}"), "/pets");
        assert_eq!(parent_path("/owners/{id}/pets"), "/owners/{id}");
    }

    #[test]
    fn nothing_about_a_path_resource_is_changed_in_place() {
        let spec = Spec { api_id: Val::Known("a1".into()), path: "/pets".into(), parent_id: Val::Known("r0".into()) };
        let state = State { api_id: "a1".into(), id: "r1".into(), path: "/pets".into() };
        assert!(ApiResource::diff(&spec, &state).is_empty());
    }
}
