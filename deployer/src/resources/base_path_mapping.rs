//! The base path of the custom domain mapped to the API's stage. It can only
//! exist once the stage does, so it comes after the stage in the order.
//! A mapping pointing elsewhere is replaced.

use anyhow::Context as _;

use super::{Diff, Resource};
use crate::aws::Aws;
use crate::error::describe;

pub struct BasePathMapping {
    pub domain: String,
    /// Empty for the root.
    pub base_path: String,
    pub api_id: String,
    pub stage: String,
}

#[derive(Debug)]
pub struct ObservedMapping {
    pub api_id: String,
    pub stage: String,
}

impl BasePathMapping {
    /// API Gateway's name for the root mapping.
    fn key(&self) -> &str {
        if self.base_path.is_empty() { "(none)" } else { &self.base_path }
    }
}

impl Resource for BasePathMapping {
    const KIND: &'static str = "base_path_mapping";
    type Observed = ObservedMapping;

    fn id(&self) -> String {
        format!("{}/{}", self.domain, self.base_path)
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedMapping>> {
        match aws.apigateway.get_base_path_mapping().domain_name(&self.domain).base_path(self.key()).send().await {
            Ok(m) => Ok(Some(ObservedMapping {
                api_id: m.rest_api_id().unwrap_or_default().to_owned(),
                stage: m.stage().unwrap_or_default().to_owned(),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(None),
            Err(e) => anyhow::bail!("{}", describe(&e)),
        }
    }

    fn diff(&self, o: &ObservedMapping) -> Diff {
        let mut diff = Diff::default();
        diff.field("rest_api_id", o.api_id.as_str(), self.api_id.as_str());
        diff.field("stage", o.stage.as_str(), self.stage.as_str());
        diff.replace = !diff.fields.is_empty();
        diff
    }

    fn owned_by(&self, _: &ObservedMapping, _: &str) -> bool {
        true // lives on the stack's own domain
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedMapping> {
        let mut request = aws
            .apigateway
            .create_base_path_mapping()
            .domain_name(&self.domain)
            .rest_api_id(&self.api_id)
            .stage(&self.stage);
        if !self.base_path.is_empty() {
            request = request.base_path(&self.base_path);
        }
        request.send().await.map_err(|e| anyhow::anyhow!("CreateBasePathMapping: {}", describe(&e)))?;
        self.find(aws).await?.context("mapping missing right after creation")
    }

    async fn update(&self, aws: &Aws, o: &ObservedMapping, _: &Diff) -> anyhow::Result<ObservedMapping> {
        self.delete(aws, o).await?;
        self.create(aws).await
    }

    async fn delete(&self, aws: &Aws, _: &ObservedMapping) -> anyhow::Result<()> {
        match aws.apigateway.delete_base_path_mapping().domain_name(&self.domain).base_path(self.key()).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(()),
            Err(e) => anyhow::bail!("DeleteBasePathMapping: {}", describe(&e)),
        }
    }
}
