//! The REQUEST authorizer on the REST API: the Lambda function it calls, the
//! role it assumes to call it, its identity sources and cache TTL.

use anyhow::Context as _;
use aws_sdk_apigateway::types::{AuthorizerType, Op, PatchOperation};

use super::{Diff, Resource};
use crate::aws::Aws;
use crate::error::describe;

pub struct ApiAuthorizer {
    pub api_id: String,
    pub name: String,
    pub function_arn: String,
    pub invoke_role_arn: String,
    pub identity_sources: Vec<String>,
    pub ttl_seconds: i32,
    pub region: String,
}

#[derive(Debug)]
pub struct ObservedAuthorizer {
    pub id: String,
    pub kind: String,
    pub uri: String,
    pub credentials: String,
    pub identity_source: String,
    pub ttl_seconds: i32,
}

impl ApiAuthorizer {
    fn uri(&self) -> String {
        format!("arn:aws:apigateway:{}:lambda:path/2015-03-31/functions/{}/invocations", self.region, self.function_arn)
    }

    fn identity_source(&self) -> String {
        self.identity_sources.join(", ")
    }
}

impl Resource for ApiAuthorizer {
    const KIND: &'static str = "api_authorizer";
    type Observed = ObservedAuthorizer;

    fn id(&self) -> String {
        self.name.clone()
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedAuthorizer>> {
        let page = aws
            .apigateway
            .get_authorizers()
            .rest_api_id(&self.api_id)
            .limit(500)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
        Ok(page.items().iter().find(|a| a.name() == Some(self.name.as_str())).map(|a| ObservedAuthorizer {
            id: a.id().unwrap_or_default().to_owned(),
            kind: a.r#type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
            uri: a.authorizer_uri().unwrap_or_default().to_owned(),
            credentials: a.authorizer_credentials().unwrap_or_default().to_owned(),
            identity_source: a.identity_source().unwrap_or_default().replace(' ', ""),
            ttl_seconds: a.authorizer_result_ttl_in_seconds().unwrap_or(300),
        }))
    }

    fn diff(&self, o: &ObservedAuthorizer) -> Diff {
        let mut diff = Diff::default();
        diff.field("type", o.kind.as_str(), "REQUEST");
        diff.replace = o.kind != "REQUEST";
        diff.field("authorizer_uri", o.uri.clone(), self.uri());
        diff.field("authorizer_credentials", o.credentials.as_str(), self.invoke_role_arn.as_str());
        diff.field("identity_source", o.identity_source.clone(), self.identity_source().replace(' ', ""));
        diff.field("authorizer_result_ttl_in_seconds", o.ttl_seconds, self.ttl_seconds);
        diff
    }

    fn owned_by(&self, _: &ObservedAuthorizer, _: &str) -> bool {
        true // lives inside the stack's API, under the stack's name
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedAuthorizer> {
        aws.apigateway
            .create_authorizer()
            .rest_api_id(&self.api_id)
            .name(&self.name)
            .r#type(AuthorizerType::Request)
            .authorizer_uri(self.uri())
            .authorizer_credentials(&self.invoke_role_arn)
            .identity_source(self.identity_source())
            .authorizer_result_ttl_in_seconds(self.ttl_seconds)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
        self.find(aws).await?.context("authorizer missing right after creation")
    }

    async fn update(&self, aws: &Aws, o: &ObservedAuthorizer, _diff: &Diff) -> anyhow::Result<ObservedAuthorizer> {
        let replace =
            |path: &str, value: String| PatchOperation::builder().op(Op::Replace).path(path).value(value).build();
        aws.apigateway
            .update_authorizer()
            .rest_api_id(&self.api_id)
            .authorizer_id(&o.id)
            .patch_operations(replace("/authorizerUri", self.uri()))
            .patch_operations(replace("/authorizerCredentials", self.invoke_role_arn.clone()))
            .patch_operations(replace("/identitySource", self.identity_source()))
            .patch_operations(replace("/authorizerResultTtlInSeconds", self.ttl_seconds.to_string()))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
        self.find(aws).await?.context("authorizer vanished during update")
    }

    async fn delete(&self, aws: &Aws, o: &ObservedAuthorizer) -> anyhow::Result<()> {
        match aws.apigateway.delete_authorizer().rest_api_id(&self.api_id).authorizer_id(&o.id).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(()),
            Err(e) => anyhow::bail!("{}", describe(&e)),
        }
    }
}
