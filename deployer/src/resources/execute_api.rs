//! The REST API's default endpoint, `execute-api`. With a custom domain it is
//! off: clients could otherwise call the API without mutual TLS. Without
//! one, it is on. API Gateway applies the switch only with a new
//! deployment, which this step makes (and records in the deployment's
//! description, so a run killed between the switch and the deployment is
//! finished by the next).
//!
//! It is turned off only once the custom domain serves the stage: this kind
//! comes after the base path mapping (and the alias records), which come
//! after the domain, which waits for its certificate to be issued. (A new
//! API of a stack with a domain is created with it off: it has no clients
//! yet.) Removing `domain:` turns it back on before the domain is deleted.
//!
//! Turning it off on a stage clients call through it now cuts them off, in
//! the same apply that adds the domain, before they could move to the
//! domain's URL (they need its name, and client certificates). So that is
//! a decision the stack states: `domain.execute_api: keep` adds the domain
//! and leaves execute-api on while clients move (every plan says so), `off`
//! turns it off; left out, the plan is blocked there, naming both.

use anyhow::Context as _;
use aws_sdk_apigateway::types::{Op, PatchOperation};
use serde::{Deserialize, Serialize};

use super::rest_api::{self, RestApi};
use super::stage::{self, Stage};
use super::kind::{Placement, Context, Diff, Found, Kind, KindIo, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs, Val};

pub struct ExecuteApi;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub stack: String,
    pub api_id: Val,
    /// The API's address name, which this is named after.
    pub api: String,
    pub stage: String,
    /// Off (`disableExecuteApiEndpoint: true`) when the stack has a custom
    /// domain, unless it says `execute_api: keep`.
    pub disabled: bool,
    /// Whether the stack states `domain.execute_api` (`keep` or `off`).
    #[serde(default)]
    pub stated: bool,
    /// The stage's configuration hash, for the deployment this step makes.
    pub config_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub api_id: String,
    pub stage: String,
    /// The API's `disableExecuteApiEndpoint`.
    pub disabled: bool,
    /// The same, as of the deployment the stage serves (`None`: unknown).
    pub deployed_disabled: Option<bool>,
}

fn shown(disabled: Option<bool>) -> String {
    match disabled {
        Some(true) => "off".into(),
        Some(false) => "on".into(),
        None => "unknown".into(),
    }
}

/// The state, from the API's switch and the stage's deployment.
async fn read(aws: &Aws, api_id: &str, stack: &str, stage_name: &str, disabled: bool) -> anyhow::Result<Option<State>> {
    let stages = stage::read_all(aws, api_id, stack, false).await?;
    let Some(found) = stages.into_iter().find(|s| s.name == stage_name) else { return Ok(None) };
    Ok(Some(State {
        api_id: api_id.to_owned(),
        stage: stage_name.to_owned(),
        disabled,
        deployed_disabled: found.state.deployed_without_execute_api,
    }))
}

super::kind::fields! {
    ExecuteApi = "execute_api",
    DeployedExecuteApi = "deployed_execute_api",
}

impl Kind for ExecuteApi {
    const NAME: &'static str = "execute_api";
    const PLACEMENT: Placement = Placement::API_SETTING;
    const DEPENDS_ON: &'static [&'static str] = &["rest_api", "stage", "base_path_mapping", "alias_record"];
    const OBSERVED_UNDER: &'static [&'static str] = &["rest_api", "stage"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        Ok(vec![Spec {
            stack: context.stack.name.clone(),
            api_id: rest_api::id(context),
            api: rest_api::address(context).name,
            stage: context.stack.stage.name.clone(),
            disabled: context.stack.execute_api_off(),
            stated: context.stack.domain.as_ref().is_some_and(|d| d.execute_api.is_some()),
            config_hash: stage::config_hash(context),
        }])
    }

    fn name(spec: &Spec) -> String {
        spec.api.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.text(Field::ExecuteApi, shown(Some(state.disabled)), shown(Some(spec.disabled)));
        diff.text(Field::DeployedExecuteApi, shown(state.deployed_disabled), shown(Some(spec.disabled)));
        diff
    }

    /// Off on a stage that serves execute-api now only when the stack says so.
    fn change_needs_consent(spec: &Spec, state: &State) -> Option<String> {
        let serving = !state.disabled && state.deployed_disabled == Some(false);
        (spec.disabled && serving && !spec.stated).then(|| {
            format!(
                "execute_api {}: stage {} serves clients through execute-api now, and turning it off in this apply \
                 cuts them off before they can move to the custom domain. Say which: domain.execute_api: keep (add \
                 the domain, leave execute-api on while clients move; then off), or domain.execute_api: off (turn \
                 it off once the domain serves the stage, in this apply)",
                spec.api, spec.stage
            )
        })
    }

    fn outputs(_: &State) -> Outputs {
        Outputs::new()
    }

    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        vec![rest_api::inside(grants, Access::Read, &["GET"]), rest_api::inside(grants, Access::Write, &["PATCH"])]
    }
}

impl KindIo for ExecuteApi {
    /// From what the API and its stage say: no call of its own.
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let Some(spec) = scope.desired.first() else { return Ok(Vec::new()) };
        let Some(api) = rest_api::of(scope.parents, &spec.api_id) else { return Ok(Vec::new()) };
        let stages = scope.parents.of::<Stage>();
        let Some(stage) = stages.iter().find(|s| s.name == spec.stage && s.state.api_id == api.state.id) else {
            return Ok(Vec::new());
        };
        let state = State {
            api_id: api.state.id.clone(),
            stage: spec.stage.clone(),
            disabled: api.state.disable_execute_api_endpoint,
            deployed_disabled: stage.state.deployed_without_execute_api,
        };
        let parent = Address::new(RestApi::NAME, &api.name);
        Ok(vec![Found::new(spec.api.clone(), api.ownership, state).inside(parent)])
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let api_id = spec.api_id.known()?;
        let api = aws.apigateway.get_rest_api().rest_api_id(api_id).send().await.aws("GetRestApi")?;
        let state = read(aws, api_id, &spec.stack, &spec.stage, api.disable_execute_api_endpoint()).await?;
        Ok(state.map(|s| Found::new(spec.api.clone(), super::kind::Ownership::Owned, s)))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        // There is nothing to create: the API has the switch, the stage a deployment.
        let found = Self::find(aws, spec).await?.with_context(|| format!("stage {} does not exist", spec.stage))?;
        let diff = Self::diff(spec, &found.state);
        if diff.is_empty() { Ok(found.state) } else { Self::update(aws, spec, &found.state, &diff).await }
    }

    async fn update(aws: &Aws, spec: &Spec, state: &State, _: &Diff<Field>) -> anyhow::Result<State> {
        if state.disabled != spec.disabled {
            let patch = PatchOperation::builder()
                .op(Op::Replace)
                .path("/disableExecuteApiEndpoint")
                .value(spec.disabled.to_string())
                .build();
            let update = aws.apigateway.update_rest_api().rest_api_id(&state.api_id).patch_operations(patch);
            update.send().await.aws("UpdateRestApi")?;
        }
        // The switch reaches clients with a deployment made after it.
        let deployment = stage::deploy(aws, &state.api_id, &spec.config_hash, spec.disabled).await?;
        stage::point_at(aws, &state.api_id, &spec.stage, &deployment).await?;
        Ok(State { disabled: spec.disabled, deployed_disabled: Some(spec.disabled), ..state.clone() })
    }

    async fn delete(_: &Aws, _: &State) -> anyhow::Result<()> {
        // Nothing of its own: it goes with its API.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::kind::testing::{Case, check_diff};

    /// Off, as a stack with a custom domain and no `execute_api` line wants it.
    fn spec() -> Spec {
        Spec {
            stack: "s".into(),
            api_id: Val::Known("a1".into()),
            api: "pets".into(),
            stage: "prod".into(),
            disabled: true,
            stated: false,
            config_hash: "h".into(),
        }
    }

    #[test]
    fn diff() {
        let spec = spec();
        let state = State { api_id: "a1".into(), stage: "prod".into(), disabled: true, deployed_disabled: Some(true) };
        let cases: &[Case<State>] = &[
            (|s| s.disabled = false, "execute_api"),
            (|s| s.deployed_disabled = Some(false), "deployed_execute_api"),
            (|s| s.deployed_disabled = None, "deployed_execute_api"),
        ];
        check_diff::<ExecuteApi>(&spec, &state, cases);
    }

    #[test]
    fn turning_off_a_stage_clients_call_needs_the_stack_to_say_so() {
        let spec = spec();
        let serving =
            State { api_id: "a1".into(), stage: "prod".into(), disabled: false, deployed_disabled: Some(false) };
        let why = ExecuteApi::change_needs_consent(&spec, &serving).expect("blocked");
        assert!(why.contains("execute_api: keep") && why.contains("execute_api: off"), "{why}");
        let stated = Spec { stated: true, ..spec.clone() };
        assert_eq!(ExecuteApi::change_needs_consent(&stated, &serving), None, "off, as the stack says");
        // Switched off but not yet deployed: no client of the new switch yet to cut off.
        let undeployed = State { disabled: true, deployed_disabled: Some(false), ..serving.clone() };
        assert_eq!(ExecuteApi::change_needs_consent(&spec, &undeployed), None);
        let turning_on = Spec { disabled: false, ..spec };
        assert_eq!(ExecuteApi::change_needs_consent(&turning_on, &serving), None);
    }
}
