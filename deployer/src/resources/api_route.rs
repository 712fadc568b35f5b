//! One route of the REST API: its resource (path), its method (CUSTOM
//! authorization with the stack's authorizer) and its HTTP_PROXY integration,
//! which forwards authorizer context keys as request headers
//! (`integration.request.header.X-Sub = context.authorizer.sub`).
//!
//! A changed method or integration is replaced (delete + put) rather than
//! patched: API Gateway refuses PutMethod on an existing method, and the
//! replacement is equally idempotent.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_apigateway::types::IntegrationType;

use super::{Diff, Resource};
use crate::aws::Aws;
use crate::error::describe;

pub struct ApiRoute {
    pub api_id: String,
    pub authorizer_id: String,
    pub method: String,
    pub path: String,
    pub backend: String,
    pub context_headers: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct ObservedRoute {
    pub resource_id: String,
    pub authorization_type: String,
    pub authorizer_id: String,
    pub integration_type: String,
    pub integration_uri: String,
    pub method_parameters: BTreeMap<String, bool>,
    pub integration_parameters: BTreeMap<String, String>,
}

impl ApiRoute {
    fn path_parameters(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|p| p.trim_end_matches('+').to_owned())
            .collect()
    }

    fn method_parameters(&self) -> BTreeMap<String, bool> {
        self.path_parameters().into_iter().map(|p| (format!("method.request.path.{p}"), true)).collect()
    }

    fn integration_parameters(&self) -> BTreeMap<String, String> {
        let mut parameters: BTreeMap<String, String> = self
            .path_parameters()
            .into_iter()
            .map(|p| (format!("integration.request.path.{p}"), format!("method.request.path.{p}")))
            .collect();
        for (header, key) in &self.context_headers {
            parameters.insert(format!("integration.request.header.{header}"), format!("context.authorizer.{key}"));
        }
        parameters
    }

    /// The resource id of `path`, creating missing parts when `create` is set.
    async fn resource_id(&self, aws: &Aws, create: bool) -> anyhow::Result<Option<String>> {
        let mut by_path: BTreeMap<String, String> = BTreeMap::new();
        let mut position = None;
        loop {
            let page = aws
                .apigateway
                .get_resources()
                .rest_api_id(&self.api_id)
                .limit(500)
                .set_position(position)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
            for resource in page.items() {
                if let (Some(path), Some(id)) = (resource.path(), resource.id()) {
                    by_path.insert(path.to_owned(), id.to_owned());
                }
            }
            match page.position() {
                Some(next) if !page.items().is_empty() => position = Some(next.to_owned()),
                _ => break,
            }
        }
        if let Some(id) = by_path.get(&self.path) {
            return Ok(Some(id.clone()));
        }
        if !create {
            return Ok(None);
        }
        let mut parent = by_path.get("/").cloned().context("the REST API has no root resource")?;
        let mut current = String::new();
        for part in self.path.trim_start_matches('/').split('/') {
            current = format!("{current}/{part}");
            parent = match by_path.get(&current) {
                Some(id) => id.clone(),
                None => {
                    let created = aws
                        .apigateway
                        .create_resource()
                        .rest_api_id(&self.api_id)
                        .parent_id(&parent)
                        .path_part(part)
                        .send()
                        .await
                        .map_err(|e| anyhow::anyhow!("creating resource {current}: {}", describe(&e)))?;
                    let id = created.id().context("CreateResource answered without an id")?.to_owned();
                    by_path.insert(current.clone(), id.clone());
                    id
                }
            };
        }
        Ok(Some(parent))
    }

    async fn put(&self, aws: &Aws, resource_id: &str) -> anyhow::Result<()> {
        aws.apigateway
            .put_method()
            .rest_api_id(&self.api_id)
            .resource_id(resource_id)
            .http_method(&self.method)
            .authorization_type("CUSTOM")
            .authorizer_id(&self.authorizer_id)
            .set_request_parameters(Some(self.method_parameters().into_iter().collect()))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PutMethod: {}", describe(&e)))?;
        aws.apigateway
            .put_integration()
            .rest_api_id(&self.api_id)
            .resource_id(resource_id)
            .http_method(&self.method)
            .r#type(IntegrationType::HttpProxy)
            .integration_http_method(&self.method)
            .uri(&self.backend)
            .set_request_parameters(Some(self.integration_parameters().into_iter().collect()))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PutIntegration: {}", describe(&e)))?;
        Ok(())
    }
}

/// The methods of an API that no declared route covers, as routes to delete.
/// `declared` holds (METHOD, path) pairs.
pub async fn undeclared(aws: &Aws, api_id: &str, declared: &[(String, String)]) -> anyhow::Result<Vec<ApiRoute>> {
    let mut extra = Vec::new();
    let mut position = None;
    loop {
        let page = aws
            .apigateway
            .get_resources()
            .rest_api_id(api_id)
            .limit(500)
            .embed("methods")
            .set_position(position)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
        for resource in page.items() {
            let path = resource.path().unwrap_or_default();
            for method in resource.resource_methods().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()
            {
                if !declared.iter().any(|(m, p)| *m == method && p == path) {
                    extra.push(ApiRoute {
                        api_id: api_id.to_owned(),
                        authorizer_id: String::new(),
                        method,
                        path: path.to_owned(),
                        backend: String::new(),
                        context_headers: BTreeMap::new(),
                    });
                }
            }
        }
        match page.position() {
            Some(next) if !page.items().is_empty() => position = Some(next.to_owned()),
            _ => break,
        }
    }
    extra.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    Ok(extra)
}

impl Resource for ApiRoute {
    const KIND: &'static str = "api_route";
    type Observed = ObservedRoute;

    fn id(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedRoute>> {
        let Some(resource_id) = self.resource_id(aws, false).await? else { return Ok(None) };
        let method = match aws
            .apigateway
            .get_method()
            .rest_api_id(&self.api_id)
            .resource_id(&resource_id)
            .http_method(&self.method)
            .send()
            .await
        {
            Ok(method) => method,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => return Ok(None),
            Err(e) => anyhow::bail!("{}", describe(&e)),
        };
        let integration = method.method_integration();
        Ok(Some(ObservedRoute {
            resource_id,
            authorization_type: method.authorization_type().unwrap_or_default().to_owned(),
            authorizer_id: method.authorizer_id().unwrap_or_default().to_owned(),
            integration_type: integration.and_then(|i| i.r#type()).map(|t| t.as_str().to_owned()).unwrap_or_default(),
            integration_uri: integration.and_then(|i| i.uri()).unwrap_or_default().to_owned(),
            method_parameters: method
                .request_parameters()
                .map(|p| p.iter().map(|(k, v)| (k.clone(), *v)).collect())
                .unwrap_or_default(),
            integration_parameters: integration
                .and_then(|i| i.request_parameters())
                .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        }))
    }

    fn diff(&self, o: &ObservedRoute) -> Diff {
        let mut diff = Diff::default();
        diff.field("authorization_type", o.authorization_type.as_str(), "CUSTOM");
        diff.field("authorizer_id", o.authorizer_id.as_str(), self.authorizer_id.as_str());
        diff.field("integration_type", o.integration_type.as_str(), "HTTP_PROXY");
        diff.field("integration_uri", o.integration_uri.as_str(), self.backend.as_str());
        diff.field("method_request_parameters", &o.method_parameters, &self.method_parameters());
        diff.field("integration_request_parameters", &o.integration_parameters, &self.integration_parameters());
        diff
    }

    fn owned_by(&self, _: &ObservedRoute, _: &str) -> bool {
        true // lives inside the stack's API
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedRoute> {
        let resource_id = self.resource_id(aws, true).await?.context("resource path could not be created")?;
        self.put(aws, &resource_id).await?;
        self.find(aws).await?.context("route missing right after creation")
    }

    async fn update(&self, aws: &Aws, o: &ObservedRoute, _diff: &Diff) -> anyhow::Result<ObservedRoute> {
        self.delete(aws, o).await?;
        self.put(aws, &o.resource_id).await?;
        self.find(aws).await?.context("route vanished during update")
    }

    async fn delete(&self, aws: &Aws, o: &ObservedRoute) -> anyhow::Result<()> {
        match aws
            .apigateway
            .delete_method()
            .rest_api_id(&self.api_id)
            .resource_id(&o.resource_id)
            .http_method(&self.method)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(()),
            Err(e) => anyhow::bail!("{}", describe(&e)),
        }
    }
}
