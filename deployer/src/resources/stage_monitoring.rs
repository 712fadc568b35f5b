//! What the stage records of its requests beyond the access log
//! (`stage.monitoring`): AWS X-Ray traces (`tracingEnabled`), and
//! CloudWatch metrics per method as well as per stage (the `*/*` method
//! setting `metrics/enabled`). Both are stage settings, written with
//! UpdateStage and taking effect at once, without a new deployment.
//!
//! A stage that records either while the stack asks for neither is turned
//! back off (and the plan says so): a stage's settings are the stack's.
//! Execution logging (`logging/loglevel`) is not offered: it writes the
//! authorizer's context and request bodies to CloudWatch, which is what the
//! access log is designed not to do.

use aws_sdk_apigateway::types::{Op, PatchOperation};
use serde::{Deserialize, Serialize};

use super::kind::{Placement, Context, Diff, Found, Kind, KindIo, Ownership, Scope};
use super::rest_api::{self, RestApi};
use super::stage::Stage;
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs, Val};

pub struct StageMonitoring;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub api_id: Val,
    pub stage: String,
    pub xray_tracing: bool,
    pub detailed_metrics: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub api_id: String,
    pub stage: String,
    pub xray_tracing: bool,
    pub detailed_metrics: bool,
}

/// The stage's settings, if the stage exists.
async fn read(aws: &Aws, api_id: &str, stage: &str) -> anyhow::Result<Option<State>> {
    let read = aws.apigateway.get_stage().rest_api_id(api_id).stage_name(stage).send().await.found("GetStage")?;
    Ok(read.map(|read| State {
        api_id: api_id.to_owned(),
        stage: stage.to_owned(),
        xray_tracing: read.tracing_enabled(),
        detailed_metrics: read.method_settings().and_then(|m| m.get("*/*")).is_some_and(|s| s.metrics_enabled()),
    }))
}

/// Whether the stage records anything this kind manages.
fn records(state: &State) -> bool {
    state.xray_tracing || state.detailed_metrics
}

/// Sets each setting of `settings` on the stage.
async fn write(aws: &Aws, api_id: &str, stage: &str, settings: &[(Field, bool)]) -> anyhow::Result<()> {
    let operations = settings
        .iter()
        .map(|(field, on)| {
            let path = match field {
                Field::XrayTracing => "/tracingEnabled",
                Field::DetailedMetrics => "/*/*/metrics/enabled",
            };
            PatchOperation::builder().op(Op::Replace).path(path).value(on.to_string()).build()
        })
        .collect();
    super::stage::patch(aws, api_id, stage, operations).await
}

/// Each field with the value `spec` wants.
fn wanted(spec: &Spec) -> [(Field, bool); 2] {
    [(Field::XrayTracing, spec.xray_tracing), (Field::DetailedMetrics, spec.detailed_metrics)]
}

super::kind::fields! {
    XrayTracing = "xray_tracing",
    DetailedMetrics = "detailed_metrics",
}

impl Kind for StageMonitoring {
    const NAME: &'static str = "stage_monitoring";
    const PLACEMENT: Placement = Placement::API_SETTING;
    const DEPENDS_ON: &'static [&'static str] = &["stage"];
    const OBSERVED_UNDER: &'static [&'static str] = &["rest_api"];
    /// No read back: UpdateStage's answer is the stage as written.
    const READ_BACK: bool = false;
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let stage = &context.stack.stage;
        let Some(monitoring) = stage.monitoring.filter(|m| m.xray_tracing || m.detailed_metrics) else {
            return Ok(Vec::new());
        };
        Ok(vec![Spec {
            api_id: rest_api::id(context),
            stage: stage.name.clone(),
            xray_tracing: monitoring.xray_tracing,
            detailed_metrics: monitoring.detailed_metrics,
        }])
    }

    fn name(spec: &Spec) -> String {
        spec.stage.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::XrayTracing, state.xray_tracing, spec.xray_tracing);
        diff.field(Field::DetailedMetrics, state.detailed_metrics, spec.detailed_metrics);
        diff
    }

    fn outputs(_: &State) -> Outputs {
        Outputs::new()
    }

    /// The stage's settings, in the stack's REST API.
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        vec![rest_api::inside(grants, Access::Read, &["GET"]), rest_api::inside(grants, Access::Write, &["PATCH"])]
    }
}

impl KindIo for StageMonitoring {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        // Every stage the stack declares, whether or not it asks for
        // monitoring: one that records what it no longer asks for is found,
        // to be turned off.
        let apis = scope.parents.of::<RestApi>();
        let Some(api) = apis.iter().find(|a| a.ownership != Ownership::Foreign) else { return Ok(Vec::new()) };
        let mut found = Vec::new();
        for stage in scope.declared(Stage::NAME) {
            if let Some(state) = read(scope.aws, &api.state.id, stage).await?.filter(records) {
                found.push(Found::new(stage, Ownership::Owned, state).inside(Address::new(Stage::NAME, stage)));
            }
        }
        Ok(found)
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let state = read(aws, spec.api_id.known()?, &spec.stage).await?.filter(records);
        Ok(state.map(|s| Found::new(&spec.stage, Ownership::Owned, s)))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let api_id = spec.api_id.known()?;
        write(aws, api_id, &spec.stage, &wanted(spec)).await?;
        Ok(State {
            api_id: api_id.to_owned(),
            stage: spec.stage.clone(),
            xray_tracing: spec.xray_tracing,
            detailed_metrics: spec.detailed_metrics,
        })
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, diff: &Diff<Field>) -> anyhow::Result<State> {
        let changed: Vec<(Field, bool)> = wanted(spec).into_iter().filter(|(field, _)| diff.has(*field)).collect();
        write(aws, &state.api_id, &state.stage, &changed).await?;
        Ok(State { xray_tracing: spec.xray_tracing, detailed_metrics: spec.detailed_metrics, ..state.clone() })
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        let off = [(Field::XrayTracing, false), (Field::DetailedMetrics, false)];
        write(aws, &state.api_id, &state.stage, &off).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::check_diff;

    #[test]
    fn diff() {
        let spec = Spec { api_id: Val::Known("a1".into()), stage: "prod".into(), xray_tracing: true, detailed_metrics: true };
        let state = State { api_id: "a1".into(), stage: "prod".into(), xray_tracing: true, detailed_metrics: true };
        check_diff::<StageMonitoring>(
            &spec,
            &state,
            &[(|s| s.xray_tracing = false, "xray_tracing"), (|s| s.detailed_metrics = false, "detailed_metrics")],
        );
        assert!(!records(&State { xray_tracing: false, detailed_metrics: false, ..state }), "nothing to manage");
    }
}
