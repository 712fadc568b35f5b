//! Gateway responses that carry RFC 6750 / RFC 9449 challenges: UNAUTHORIZED
//! (401) with a static `WWW-Authenticate` naming the accepted schemes (API
//! Gateway passes no authorizer context on a 401; the value comes from
//! `authorizer::error::unauthorized_challenge`), and ACCESS_DENIED (403) with
//! the authorizer's own challenge, `context.authorizer.challenge`.
//!
//! API Gateway answers every type, customised or not: a response it reports
//! as its default counts as absent.

use std::collections::BTreeMap;

use aws_sdk_apigateway::types::GatewayResponseType;
use serde::{Deserialize, Serialize};

use super::rest_api::{self, RestApi};
use super::kind::{Placement, Context, Diff, Found, Kind, KindIo, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs, Val};

pub struct GatewayResponse;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub api_id: Val,
    /// `UNAUTHORIZED` or `ACCESS_DENIED`.
    pub response_type: String,
    pub status: String,
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub api_id: String,
    pub response_type: String,
    pub status: String,
    pub parameters: BTreeMap<String, String>,
}

const WWW_AUTHENTICATE: &str = "gatewayresponse.header.WWW-Authenticate";

async fn read(aws: &Aws, api_id: &str, response_type: &str) -> anyhow::Result<Option<State>> {
    let response = aws
        .apigateway
        .get_gateway_response()
        .rest_api_id(api_id)
        .response_type(GatewayResponseType::from(response_type))
        .send()
        .await
        .found("GetGatewayResponse")?;
    Ok(response.filter(|r| !r.default_response()).map(|r| State {
        api_id: api_id.to_owned(),
        response_type: response_type.to_owned(),
        status: r.status_code().unwrap_or_default().to_owned(),
        parameters: r
            .response_parameters()
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }))
}

super::kind::fields! {
    StatusCode = "status_code",
    ResponseParameters = "response_parameters",
}

impl Kind for GatewayResponse {
    const NAME: &'static str = "gateway_response";
    const PLACEMENT: Placement = Placement::IN_REST_API_DEPLOYED;
    const DEPENDS_ON: &'static [&'static str] = &["rest_api"];
    const OBSERVED_UNDER: &'static [&'static str] = &["rest_api"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let api_id = rest_api::id(context);
        Ok(vec![
            Spec {
                api_id: api_id.clone(),
                response_type: "UNAUTHORIZED".into(),
                status: "401".into(),
                parameters: [(WWW_AUTHENTICATE.to_owned(), format!("'{}'", context.stack.api.unauthorized_challenge))]
                    .into(),
            },
            Spec {
                api_id,
                response_type: "ACCESS_DENIED".into(),
                status: "403".into(),
                parameters: [(WWW_AUTHENTICATE.to_owned(), "context.authorizer.challenge".to_owned())].into(),
            },
        ])
    }

    fn name(spec: &Spec) -> String {
        spec.response_type.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::StatusCode, state.status.as_str(), spec.status.as_str());
        diff.field(Field::ResponseParameters, &state.parameters, &spec.parameters);
        diff
    }

    fn outputs(_: &State) -> Outputs {
        Outputs::new()
    }

    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        vec![
            rest_api::inside(grants, Access::Read, &["GET"]),
            rest_api::inside(grants, Access::Write, &["PUT", "DELETE"]),
        ]
    }
}

impl KindIo for GatewayResponse {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let reads = scope.desired.iter().filter_map(|spec| {
            let api = rest_api::of(scope.parents, &spec.api_id)?;
            Some(async move {
                let state = read(scope.aws, &api.state.id, &spec.response_type).await?;
                let parent = Address::new(RestApi::NAME, &api.name);
                anyhow::Ok(state.map(|s| Found::new(spec.response_type.clone(), api.ownership, s).inside(parent)))
            })
        });
        Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let state = read(aws, spec.api_id.known()?, &spec.response_type).await?;
        Ok(state.map(|s| Found::new(spec.response_type.clone(), super::kind::Ownership::Owned, s)))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let api_id = spec.api_id.known()?;
        aws.apigateway
            .put_gateway_response()
            .rest_api_id(api_id)
            .response_type(GatewayResponseType::from(spec.response_type.as_str()))
            .status_code(&spec.status)
            .set_response_parameters(Some(spec.parameters.clone().into_iter().collect()))
            .send()
            .await
            .aws("PutGatewayResponse")?;
        Ok(State {
            api_id: api_id.to_owned(),
            response_type: spec.response_type.clone(),
            status: spec.status.clone(),
            parameters: spec.parameters.clone(),
        })
    }

    async fn update(aws: &Aws, spec: &Spec, _: &State, _: &Diff<Field>) -> anyhow::Result<State> {
        // PutGatewayResponse replaces the whole response: it is the update.
        Self::create(aws, spec).await
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        aws.apigateway
            .delete_gateway_response()
            .rest_api_id(&state.api_id)
            .response_type(GatewayResponseType::from(state.response_type.as_str()))
            .send()
            .await
            .gone("DeleteGatewayResponse")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff() {
        let spec = Spec {
            api_id: Val::Known("a1".into()),
            response_type: "UNAUTHORIZED".into(),
            status: "401".into(),
            parameters: [(WWW_AUTHENTICATE.to_owned(), "'Bearer realm=\"pets\"'".to_owned())].into(),
        };
        let state = State {
            api_id: "a1".into(),
            response_type: "UNAUTHORIZED".into(),
            status: "401".into(),
            parameters: spec.parameters.clone(),
        };
        assert!(GatewayResponse::diff(&spec, &state).is_empty());
        let other_realm = State {
            parameters: [(WWW_AUTHENTICATE.to_owned(), "'Bearer realm=\"api\"'".to_owned())].into(),
            ..state.clone()
        };
        assert!(GatewayResponse::diff(&spec, &other_realm).has(Field::ResponseParameters));
        let other_status = State { status: "403".into(), ..state };
        assert!(GatewayResponse::diff(&spec, &other_status).has(Field::StatusCode));
    }
}
