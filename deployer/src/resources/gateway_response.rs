//! Gateway responses that carry RFC 6750 / RFC 9449 challenges: UNAUTHORIZED
//! (401) with a static `WWW-Authenticate` naming the accepted schemes (API
//! Gateway passes no authorizer context on a 401; the value comes from
//! `authorizer::error::unauthorized_challenge`), and ACCESS_DENIED (403) with
//! the authorizer's own challenge, `context.authorizer.challenge`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_apigateway::types::GatewayResponseType;

use super::{Diff, Resource};
use crate::aws::Aws;
use crate::error::describe;

pub struct GatewayResponse {
    pub api_id: String,
    pub kind: GatewayResponseType,
    pub status: &'static str,
    pub parameters: BTreeMap<String, String>,
}

impl GatewayResponse {
    /// `challenge` is a static header value: it holds no single quote
    /// (stack validation refuses quotes in the realm).
    pub fn unauthorized(api_id: &str, challenge: &str) -> GatewayResponse {
        GatewayResponse {
            api_id: api_id.to_owned(),
            kind: GatewayResponseType::Unauthorized,
            status: "401",
            parameters: [("gatewayresponse.header.WWW-Authenticate".to_owned(), format!("'{challenge}'"))].into(),
        }
    }

    pub fn access_denied(api_id: &str) -> GatewayResponse {
        GatewayResponse {
            api_id: api_id.to_owned(),
            kind: GatewayResponseType::AccessDenied,
            status: "403",
            parameters: [(
                "gatewayresponse.header.WWW-Authenticate".to_owned(),
                "context.authorizer.challenge".to_owned(),
            )]
            .into(),
        }
    }
}

#[derive(Debug)]
pub struct ObservedResponse {
    pub status: String,
    pub parameters: BTreeMap<String, String>,
}

impl Resource for GatewayResponse {
    const KIND: &'static str = "gateway_response";
    type Observed = ObservedResponse;

    fn id(&self) -> String {
        self.kind.as_str().to_owned()
    }

    async fn find(&self, aws: &Aws) -> anyhow::Result<Option<ObservedResponse>> {
        match aws
            .apigateway
            .get_gateway_response()
            .rest_api_id(&self.api_id)
            .response_type(self.kind.clone())
            .send()
            .await
        {
            Ok(r) => Ok(Some(ObservedResponse {
                status: r.status_code().unwrap_or_default().to_owned(),
                parameters: r
                    .response_parameters()
                    .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
            })),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(None),
            Err(e) => anyhow::bail!("{}", describe(&e)),
        }
    }

    fn diff(&self, o: &ObservedResponse) -> Diff {
        let mut diff = Diff::default();
        diff.field("status_code", o.status.as_str(), self.status);
        diff.field("response_parameters", &o.parameters, &self.parameters);
        diff
    }

    fn owned_by(&self, _: &ObservedResponse, _: &str) -> bool {
        true
    }

    async fn create(&self, aws: &Aws) -> anyhow::Result<ObservedResponse> {
        aws.apigateway
            .put_gateway_response()
            .rest_api_id(&self.api_id)
            .response_type(self.kind.clone())
            .status_code(self.status)
            .set_response_parameters(Some(self.parameters.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
        self.find(aws).await?.context("gateway response missing right after creation")
    }

    async fn update(&self, aws: &Aws, _: &ObservedResponse, _: &Diff) -> anyhow::Result<ObservedResponse> {
        // PutGatewayResponse replaces the whole response: it is the update.
        self.create(aws).await
    }

    async fn delete(&self, aws: &Aws, _: &ObservedResponse) -> anyhow::Result<()> {
        match aws
            .apigateway
            .delete_gateway_response()
            .rest_api_id(&self.api_id)
            .response_type(self.kind.clone())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => Ok(()),
            Err(e) => anyhow::bail!("{}", describe(&e)),
        }
    }
}
