//! The web ACL attached to the API's stage. WAF may refuse the association
//! for minutes after the ACL or the stage is created
//! (`WAFUnavailableEntityException`, `WAFNonexistentItemException`): those
//! are retried (`retry::WAF_ASSOCIATION`).
//!
//! Observed on the stage the stack declares, in the stack's REST API (the
//! stage ARN is known from the API's id, so this is read as soon as the API
//! is): an association with the stack's web ACL is the stack's, and goes
//! (before the ACL) when `waf:` is removed. A stage the stack no longer
//! declares is deleted, and its association with it.

use serde::{Deserialize, Serialize};

use super::rest_api::RestApi;
use super::stage::Stage;
use super::kind::{Context, Diff, Found, Kind, KindIo, Ownership, Scope};
use crate::aws::Aws;
use crate::error::SdkResult as _;
use crate::grants::{Access, Grants, Statement};
use crate::plan::{Address, Outputs, Val};
use crate::retry::{WAF_ASSOCIATION, WAF_CHANGE, retry};

pub struct WebAclAssociation;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub web_acl_arn: Val,
    pub api_id: Val,
    pub stage: String,
    pub partition: String,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// `arn:{partition}:apigateway:{region}::/restapis/{api}/stages/{stage}`.
    pub stage_arn: String,
    pub web_acl_arn: String,
}

fn stage_arn(partition: &str, region: &str, api_id: &str, stage: &str) -> String {
    crate::stack::names::Arns { partition, region, account: "" }.stage(api_id, stage)
}

async fn read(aws: &Aws, stage_arn: &str) -> anyhow::Result<Option<State>> {
    let output =
        aws.wafv2.get_web_acl_for_resource().resource_arn(stage_arn).send().await.found("GetWebACLForResource")?;
    Ok(output
        .and_then(|o| o.web_acl().map(|acl| acl.arn().to_owned()))
        .map(|web_acl_arn| State { stage_arn: stage_arn.to_owned(), web_acl_arn }))
}

super::kind::fields! {
    WebAcl = "web_acl",
}

impl Kind for WebAclAssociation {
    const NAME: &'static str = "web_acl_association";
    const DEPENDS_ON: &'static [&'static str] = &["web_acl", "stage"];
    const OBSERVED_UNDER: &'static [&'static str] = &["rest_api"];
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        if context.stack.waf.is_none() {
            return Ok(Vec::new());
        }
        Ok(vec![Spec {
            web_acl_arn: Val::output(super::web_acl::address(&context.stack.name), "arn"),
            api_id: super::rest_api::id(context),
            stage: context.stack.stage.name.clone(),
            partition: context.partition.to_owned(),
            region: context.region.to_owned(),
        }])
    }

    fn name(spec: &Spec) -> String {
        spec.stage.clone()
    }

    fn diff(spec: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.text(Field::WebAcl, state.web_acl_arn.clone(), spec.web_acl_arn.shown());
        diff
    }

    fn outputs(_: &State) -> Outputs {
        Outputs::new()
    }

    /// WAF checks an association on the web ACL and on the stage; API
    /// Gateway checks `apigateway:SetWebACL` on the stage, which is where
    /// another team's stage is kept out (by the stack's tag, or the adopted
    /// API's id).
    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        let stage_name = &grants.stack.stage.name;
        let (stage, set_web_acl) = match &grants.stack.api.source {
            crate::stack::ApiSource::Adopt(id) => {
                let stage = grants.apigateway(&format!("/restapis/{id}/stages/{stage_name}"));
                (
                    stage.clone(),
                    Statement::allow("StageSetWebAcl", Access::Write, &["apigateway:SetWebACL"], vec![stage]),
                )
            }
            crate::stack::ApiSource::Create(_) => {
                let stage = grants.apigateway(&format!("/restapis/*/stages/{stage_name}"));
                let statement =
                    Statement::allow("StageSetWebAcl", Access::Write, &["apigateway:SetWebACL"], vec![stage.clone()]);
                (stage, grants.on_stack_resources(statement))
            }
        };
        let acl = super::waf::arns(grants, "webacl", &[crate::stack::names::web_acl(grants.name())]);
        vec![
            Statement::allow("StageWebAclRead", Access::Read, &["wafv2:GetWebACLForResource"], vec![stage.clone()]),
            Statement::allow(
                "StageWebAclAssociation",
                Access::Write,
                &["wafv2:AssociateWebACL"],
                [acl, vec![stage.clone()]].concat(),
            ),
            Statement::allow("StageWebAclDisassociation", Access::Write, &["wafv2:DisassociateWebACL"], vec![stage]),
            set_web_acl,
        ]
    }
}

impl KindIo for WebAclAssociation {
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let our_acl = format!("/webacl/{}/", crate::stack::names::web_acl(scope.stack));
        let apis = scope.parents.of::<RestApi>();
        // Declared whether or not `waf:` still is: a stage that keeps an ACL
        // the stack no longer declares must be found to be detached.
        let stages: Vec<String> = scope.declared(Stage::NAME).map(str::to_owned).collect();
        let stages = stages.iter();
        let places = apis.iter().filter(|a| a.ownership != Ownership::Foreign).flat_map(|api| {
            stages
                .clone()
                .map(move |stage| (stage_arn(&scope.aws.partition, &scope.aws.region, &api.state.id, stage), stage))
        });
        let our_acl = &our_acl;
        let reads = places.map(|(arn, stage)| async move {
            let Some(state) = read(scope.aws, &arn).await? else { return anyhow::Ok(None) };
            // On the stack's stage, only the stack's ACL is the stack's association.
            let ownership =
                if state.web_acl_arn.contains(our_acl.as_str()) { Ownership::Owned } else { Ownership::Foreign };
            Ok(Some(Found::new(stage.clone(), ownership, state).inside(Address::new(Stage::NAME, stage))))
        });
        Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let arn = stage_arn(&spec.partition, &spec.region, spec.api_id.known()?, &spec.stage);
        Ok(read(aws, &arn).await?.map(|s| Found::new(spec.stage.clone(), Ownership::Owned, s)))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        let stage_arn = stage_arn(&spec.partition, &spec.region, spec.api_id.known()?, &spec.stage);
        let web_acl_arn = spec.web_acl_arn.known()?;
        retry(&WAF_ASSOCIATION, || {
            aws.wafv2.associate_web_acl().web_acl_arn(web_acl_arn).resource_arn(&stage_arn).send()
        })
        .await
        .aws("AssociateWebACL")?;
        Ok(State { stage_arn, web_acl_arn: web_acl_arn.to_owned() })
    }

    async fn update(aws: &Aws, spec: &Spec, _: &State, _: &Diff<Field>) -> anyhow::Result<State> {
        // Associating replaces the stage's current web ACL.
        Self::create(aws, spec).await
    }

    async fn delete(aws: &Aws, state: &State) -> anyhow::Result<()> {
        retry(&WAF_CHANGE, || aws.wafv2.disassociate_web_acl().resource_arn(&state.stage_arn).send())
            .await
            .gone("DisassociateWebACL")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_and_stage_arn() {
        let spec = Spec {
            web_acl_arn: Val::Known("arn:aws:wafv2:eu-west-1:1:regional/webacl/s-allowlist/i".into()),
            api_id: Val::Known("a1".into()),
            stage: "prod".into(),
            partition: "aws-cn".into(),
            region: "cn-north-1".into(),
        };
        let state = State {
            stage_arn: "arn:aws-cn:apigateway:cn-north-1::/restapis/a1/stages/prod".into(),
            web_acl_arn: "arn:aws:wafv2:eu-west-1:1:regional/webacl/s-allowlist/i".into(),
        };
        assert!(WebAclAssociation::diff(&spec, &state).is_empty());
        let other = State { web_acl_arn: "arn:aws:wafv2:eu-west-1:1:regional/webacl/other/j".into(), ..state.clone() };
        assert!(WebAclAssociation::diff(&spec, &other).has(Field::WebAcl));
        assert_eq!(stage_arn("aws-cn", "cn-north-1", "a1", "prod"), state.stage_arn);
    }
}
