//! The deployment and the stage. A new deployment is made only when the
//! API's configuration changed: a hash of the desired configuration is kept
//! in the deployment's description, and any route, authorizer or gateway
//! response repaired in this run forces one too (so a repair reaches clients).

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_apigateway::types::{Op, PatchOperation};

use super::{Diff, OWNER_TAG, Resource, owner_tags};
use crate::aws::Aws;
use crate::error::describe;
use crate::stack::Throttling;

const HASH_PREFIX: &str = "config-sha256:";

pub struct Stage {
    pub stack: String,
    pub api_id: String,
    pub name: String,
    pub variables: BTreeMap<String, String>,
    pub throttling: Option<Throttling>,
    /// Hash of the desired API configuration.
    pub config_hash: String,
    /// Something under the API changed in this run: deploy again.
    pub force_redeploy: bool,
}

#[derive(Debug)]
pub struct ObservedStage {
    pub deployed_hash: String,
    pub variables: BTreeMap<String, String>,
    pub throttling: Option<(f64, i32)>,
    pub owner: Option<String>,
}

impl Stage {
    async fn deploy(&self, aws: &Aws) -> anyhow::Result<String> {
        let deployment = aws
            .apigateway
            .create_deployment()
            .rest_api_id(&self.api_id)
            .description(format!("{HASH_PREFIX}{}", self.config_hash))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("CreateDeployment: {}", describe(&e)))?;
        Ok(deployment.id().context("CreateDeployment answered without an id")?.to_owned())
    }

    fn wanted_throttling(&self) -> Option<(f64, i32)> {
        self.throttling.map(|t| (t.rate_limit, t.burst_limit))
    }

    async fn patch(&self, aws: &Aws, operations: Vec<PatchOperation>) -> anyhow::Result<()> {
        if operations.is_empty() {
            return Ok(());
        }
        aws.apigateway
            .update_stage()
            .rest_api_id(&self.api_id)
            .stage_name(&self.name)
            .set_patch_operations(Some(operations))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("UpdateStage: {}", describe(&e)))?;
        Ok(())
    }

    fn throttling_patch(&self) -> Vec<PatchOperation> {
        let Some(t) = self.throttling else { return Vec::new() };
        let replace =
            |path: &str, value: String| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
        vec![
            replace("/*/*/throttling/rateLimit", t.rate_limit.to_string()),
            replace("/*/*/throttling/burstLimit", t.burst_limit.to_string()),
        ]
    }
}

impl Resource for Stage {
    const KIND: &'static str = "stage";
    type Observed = ObservedStage;

    fn id(&self) -> String {
        self.name.clone()
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedStage>> {
        let stage = match aws.apigateway.get_stage().rest_api_id(&self.api_id).stage_name(&self.name).send().await {
            Ok(stage) => stage,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => return Ok(None),
            Err(e) => anyhow::bail!("{}", describe(&e)),
        };
        let deployment_id = stage.deployment_id().unwrap_or_default().to_owned();
        let deployed_hash = match aws
            .apigateway
            .get_deployment()
            .rest_api_id(&self.api_id)
            .deployment_id(&deployment_id)
            .send()
            .await
        {
            Ok(d) => d.description().and_then(|d| d.strip_prefix(HASH_PREFIX)).unwrap_or("unknown").to_owned(),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => "none".to_owned(),
            Err(e) => anyhow::bail!("{}", describe(&e)),
        };
        let throttling = stage
            .method_settings()
            .and_then(|m| m.get("*/*"))
            .map(|s| (s.throttling_rate_limit(), s.throttling_burst_limit()));
        Ok(Some(ObservedStage {
            deployed_hash,
            variables: stage
                .variables()
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            throttling,
            owner: stage.tags().and_then(|t| t.get(OWNER_TAG)).cloned(),
        }))
    }

    fn diff(&self, o: &ObservedStage) -> Diff {
        let mut diff = Diff::default();
        diff.field("deployed_configuration", o.deployed_hash.as_str(), self.config_hash.as_str());
        if self.force_redeploy && o.deployed_hash == self.config_hash {
            diff.text("deployment", "current".into(), "redeploy (API changed in this run)".into());
        }
        diff.field("variables", &o.variables, &self.variables);
        if let Some(wanted) = self.wanted_throttling() {
            diff.field("throttling", o.throttling, Some(wanted));
        }
        diff
    }

    fn owned_by(&self, o: &ObservedStage, stack: &str) -> bool {
        o.owner.as_deref() == Some(stack)
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedStage> {
        let deployment_id = self.deploy(aws).await?;
        aws.apigateway
            .create_stage()
            .rest_api_id(&self.api_id)
            .stage_name(&self.name)
            .deployment_id(&deployment_id)
            .set_variables(Some(self.variables.clone().into_iter().collect()))
            .set_tags(Some(owner_tags(&self.stack)))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("CreateStage: {}", describe(&e)))?;
        self.patch(aws, self.throttling_patch()).await?;
        self.find(aws).await?.context("stage missing right after creation")
    }

    async fn update(&self, aws: &Aws, o: &ObservedStage, diff: &Diff) -> anyhow::Result<ObservedStage> {
        let mut operations = Vec::new();
        if diff.fields.iter().any(|f| f.field == "deployed_configuration" || f.field == "deployment") {
            let deployment_id = self.deploy(aws).await?;
            operations
                .push(PatchOperation::builder().op(Op::Replace).path("/deploymentId").value(deployment_id).build());
        }
        for (name, value) in &self.variables {
            if o.variables.get(name) != Some(value) {
                operations.push(
                    PatchOperation::builder().op(Op::Replace).path(format!("/variables/{name}")).value(value).build(),
                );
            }
        }
        for name in o.variables.keys().filter(|n| !self.variables.contains_key(*n)) {
            operations.push(PatchOperation::builder().op(Op::Remove).path(format!("/variables/{name}")).build());
        }
        if diff.fields.iter().any(|f| f.field == "throttling") {
            operations.extend(self.throttling_patch());
        }
        self.patch(aws, operations).await?;
        self.find(aws).await?.context("stage vanished during update")
    }

    async fn delete(&self, aws: &Aws, _: &ObservedStage) -> anyhow::Result<()> {
        match aws.apigateway.delete_stage().rest_api_id(&self.api_id).stage_name(&self.name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(()),
            Err(e) => anyhow::bail!("{}", describe(&e)),
        }
    }
}
