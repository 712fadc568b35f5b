//! The REST API itself: created (tagged, regional) or adopted by id. With an
//! mTLS domain, `disableExecuteApiEndpoint` is on: the default
//! `execute-api` endpoint would otherwise let clients bypass mutual TLS.
//!
//! An adopted API is never deleted.

use anyhow::Context as _;
use aws_sdk_apigateway::types::{EndpointConfiguration, EndpointType, Op, PatchOperation};

use super::{Diff, OWNER_TAG, Resource, owner_tags};
use crate::aws::Aws;
use crate::error::describe;

pub struct RestApi {
    pub stack: String,
    /// `Ok(name)`: created and owned; `Err(id)`: adopted.
    pub source: Result<String, String>,
    pub disable_execute_api_endpoint: bool,
}

#[derive(Debug)]
pub struct ObservedApi {
    pub id: String,
    pub name: String,
    pub disable_execute_api_endpoint: bool,
    pub regional: bool,
    pub owner: Option<String>,
}

impl RestApi {
    pub fn adopted(&self) -> bool {
        self.source.is_err()
    }
}

fn observed(api: &aws_sdk_apigateway::types::RestApi) -> ObservedApi {
    ObservedApi {
        id: api.id().unwrap_or_default().to_owned(),
        name: api.name().unwrap_or_default().to_owned(),
        disable_execute_api_endpoint: api.disable_execute_api_endpoint(),
        regional: api.endpoint_configuration().is_some_and(|c| c.types().contains(&EndpointType::Regional)),
        owner: api.tags().and_then(|t| t.get(OWNER_TAG)).cloned(),
    }
}

impl Resource for RestApi {
    const KIND: &'static str = "rest_api";
    type Observed = ObservedApi;

    fn id(&self) -> String {
        match &self.source {
            Ok(name) => name.clone(),
            Err(id) => format!("{id} (adopted)"),
        }
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedApi>> {
        match &self.source {
            Err(id) => match aws.apigateway.get_rest_api().rest_api_id(id).send().await {
                Ok(api) => Ok(Some(ObservedApi {
                    id: api.id().unwrap_or_default().to_owned(),
                    name: api.name().unwrap_or_default().to_owned(),
                    disable_execute_api_endpoint: api.disable_execute_api_endpoint(),
                    regional: api.endpoint_configuration().is_some_and(|c| c.types().contains(&EndpointType::Regional)),
                    owner: api.tags().and_then(|t| t.get(OWNER_TAG)).cloned(),
                })),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => {
                    anyhow::bail!("the REST API {id} to adopt does not exist")
                }
                Err(e) => anyhow::bail!("{}", describe(&e)),
            },
            Ok(name) => {
                // Names are not unique in API Gateway: ours is the one with our tag.
                let mut position = None;
                loop {
                    let page = aws
                        .apigateway
                        .get_rest_apis()
                        .limit(500)
                        .set_position(position)
                        .send()
                        .await
                        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
                    let found = page
                        .items()
                        .iter()
                        .map(observed)
                        .find(|api| api.name == *name && api.owner.as_deref() == Some(self.stack.as_str()));
                    if found.is_some() {
                        return Ok(found);
                    }
                    match page.position() {
                        Some(next) if !page.items().is_empty() => position = Some(next.to_owned()),
                        _ => return Ok(None),
                    }
                }
            }
        }
    }

    fn diff(&self, o: &ObservedApi) -> Diff {
        let mut diff = Diff::default();
        diff.field("disable_execute_api_endpoint", o.disable_execute_api_endpoint, self.disable_execute_api_endpoint);
        if !self.adopted() {
            // The endpoint type of an API cannot be changed in place here.
            diff.field("endpoint_type", if o.regional { "REGIONAL" } else { "other" }, "REGIONAL");
            diff.replace = !o.regional;
        }
        diff
    }

    fn owned_by(&self, o: &ObservedApi, stack: &str) -> bool {
        self.adopted() || o.owner.as_deref() == Some(stack)
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedApi> {
        let Ok(name) = &self.source else { anyhow::bail!("an adopted REST API is never created") };
        let api = aws
            .apigateway
            .create_rest_api()
            .name(name)
            .description(format!("OAuth 2.0 / mTLS protected API of stack {}", self.stack))
            .endpoint_configuration(EndpointConfiguration::builder().types(EndpointType::Regional).build())
            .disable_execute_api_endpoint(self.disable_execute_api_endpoint)
            .set_tags(Some(owner_tags(&self.stack)))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
        Ok(ObservedApi {
            id: api.id().context("CreateRestApi answered without an id")?.to_owned(),
            name: name.clone(),
            disable_execute_api_endpoint: api.disable_execute_api_endpoint(),
            regional: true,
            owner: Some(self.stack.clone()),
        })
    }

    async fn update(&self, aws: &Aws, o: &ObservedApi, _diff: &Diff) -> anyhow::Result<ObservedApi> {
        let patch = PatchOperation::builder()
            .op(Op::Replace)
            .path("/disableExecuteApiEndpoint")
            .value(self.disable_execute_api_endpoint.to_string())
            .build();
        aws.apigateway
            .update_rest_api()
            .rest_api_id(&o.id)
            .patch_operations(patch)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
        self.find(aws).await?.context("REST API vanished during update")
    }

    async fn delete(&self, aws: &Aws, o: &ObservedApi) -> anyhow::Result<()> {
        if self.adopted() {
            return Ok(());
        }
        match aws.apigateway.delete_rest_api().rest_api_id(&o.id).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(()),
            Err(e) => anyhow::bail!("{}", describe(&e)),
        }
    }
}
